#!/usr/bin/env bash
# The workflow on a real accelerator (CUDA here; the same path an NPU takes through
# npu_adapt/devices.py): default config.yaml with its fp32 and bf16 targets forced to cuda,
# in one run. Used on a lent GPU machine, whose image has torch but not snakemake:
# wheels of snakemake and its dependencies are carried in .device/wheels.
# Usage: bash bench/device_check.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/device_check}
mkdir -p "$out"
python3 -m pip install -q --no-index --find-links .device/wheels snakemake==9.27.1 2>&1 | tail -2
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, timm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0), 'transformers', transformers.__version__, 'timm', timm.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
work=$out/run
mkdir -p "$work"
python3 - "$work/config.yaml" <<'PY'
import sys, yaml
config = yaml.safe_load(open("config.yaml"))
config["targets"] = {"fp32": {"device": "cuda", "dtype": "float32"}, "bf16": {"device": "cuda", "dtype": "bfloat16"}}
yaml.safe_dump(config, open(sys.argv[1], "w"), sort_keys=False)
PY
start=$(date +%s)
timeout 420 snakemake --configfile "$work/config.yaml" --snakefile Snakefile --directory "$work" \
  results/all --cores 8 --resources cuda=1 npu=1 --quiet rules > "$work/snakemake.log" 2>&1
echo "== exit $? in $(( $(date +%s) - start )) s"
cat "$work/results/leaderboard.csv"
for model in convnextv2-atto vit-giant-clip; do
  for target in fp32 bf16; do echo "-- $model $target"; cat "$work/results/$model/$target/benchmark.csv"; done
done
cp "$work/results/leaderboard.csv" "$out/leaderboard.csv"
tar czf "$out/results.tgz" --exclude="*.npy" -C "$work" results logs
