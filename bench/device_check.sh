#!/usr/bin/env bash
# The workflow on a real accelerator (CUDA here; the same path an NPU takes through
# npu_adapt/devices.py): default config.yaml with target.device forced to cuda, float32
# and bfloat16. Used on a lent GPU machine, whose image has torch but not snakemake:
# wheels of snakemake and its dependencies are carried in .device/wheels.
# Usage: bash bench/device_check.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/device_check}
mkdir -p "$out"
python3 -m pip install -q --no-index --find-links .device/wheels snakemake==9.27.1 2>&1 | tail -2
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, timm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0), 'transformers', transformers.__version__, 'timm', timm.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
for dtype in float32 bfloat16; do
  work=$out/$dtype
  mkdir -p "$work"
  python3 - "$work/config.yaml" "$dtype" "$out/weights" <<'PY'
import sys, yaml
config = yaml.safe_load(open("config.yaml"))
config["target"] = {"device": "cuda", "dtype": sys.argv[2]}
config["weights_dir"] = sys.argv[3]  # both runs share the materialised weights
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
PY
  start=$(date +%s)
  timeout 230 snakemake --configfile "$work/config.yaml" --snakefile Snakefile --directory "$work" \
    results/all --cores 8 --resources cuda=1 npu=1 --quiet rules > "$work/snakemake.log" 2>&1
  echo "== $dtype: exit $? in $(( $(date +%s) - start )) s"
  cat "$work/results/leaderboard.csv"
  for model in convnextv2-atto vit-giant-clip; do echo "-- $model"; cat "$work/results/$model/benchmark.csv"; done
  cp "$work/results/leaderboard.csv" "$out/leaderboard_$dtype.csv"
  tar czf "$out/results_$dtype.tgz" --exclude="*.npy" -C "$work" results logs
done
rm -rf "$out/weights"
