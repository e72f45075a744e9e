"""Loading a model from its weights: once per job, memory-mapped, without the random
initialisation that the weights overwrite (issue 8, the workflow's own cost). Real timm
models and real Snakemake runs of the tiny config."""

import gc
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import DATA, copy_of, load, run_snakemake, tiny_config
from safetensors.torch import load_file

from npu_adapt.adapters.timm_image import TimmImageAdapter
from npu_adapt.benchmark import benchmark_model
from npu_adapt.config_types import BenchmarkSettings, ModelEntry
from npu_adapt.runner import LoadedModel
from npu_adapt.weights import list_files

pytestmark = pytest.mark.e2e  # runs Snakemake or builds torch models

BUILD_LINE = " from its weights in "


def saved_timm(tmp_path, source: str) -> tuple[TimmImageAdapter, object]:
    adapter = TimmImageAdapter(ModelEntry(source=source, family="timm_image", task="image-classification"))
    adapter.save(adapter.random_init(seed=3), tmp_path)
    return adapter, tmp_path


def conventional_load(weights_dir):
    """What a timm user writes: build (randomly initialised), then copy the weights in."""
    import timm  # seconds to import: not at collection, which `pytest -m "not e2e"` also pays

    config = load(weights_dir / "config.json")
    model = timm.create_model(
        config["architecture"], num_classes=config["num_classes"], pretrained_cfg_overlay=config["pretrained_cfg"]
    )
    model.load_state_dict(load_file(str(weights_dir / "model.safetensors")))
    return model.eval()


@pytest.mark.parametrize(
    "source, reason",
    [
        ("timm:convnextv2_atto.fcmae_ft_in1kk", "no tag 'fcmae_ft_in1kk' for convnextv2_atto (timm:convnextv2_atto."),
        ("timm:test_vit.in1k", "no tag 'in1k' for test_vit (timm:test_vit.in1k); did you mean r160_in1k?"),
        ("timm:convnxt_atto", "no architecture 'convnxt_atto' (timm:convnxt_atto); did you mean convnext_atto,"),
    ],
)
def test_a_typo_in_a_timm_name_is_named_with_the_nearest_names(source, reason):
    from npu_adapt.weights import SourceError

    adapter = TimmImageAdapter(ModelEntry(source=source, family="timm_image"))
    with pytest.raises(SourceError, match=r"^timm has ") as refused:
        adapter.random_init(seed=0)
    assert reason in str(refused.value)
    if "kk" in source:  # the nearest tags come first
        assert "; did you mean fcmae_ft_in1k" in str(refused.value)


# test_vit_relpos keeps relative-position buffers out of its state dict: the adapter must
# build those for real, not leave them uninitialised.
@pytest.mark.parametrize("source", ["timm:test_convnext.r160_in1k", "timm:test_vit_relpos"])
def test_timm_load_equals_the_conventional_load_bit_for_bit(tmp_path, source):
    adapter, weights_dir = saved_timm(tmp_path, source)
    model, reference = adapter.load(weights_dir), conventional_load(weights_dir)
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    assert not any(tensor.is_meta for tensor in tensors.values())
    reference_tensors = {**dict(reference.named_parameters()), **dict(reference.named_buffers())}
    assert tensors.keys() == reference_tensors.keys()
    assert all(torch.equal(tensors[name], reference_tensors[name]) for name in tensors)
    size = load(weights_dir / "config.json")["pretrained_cfg"]["input_size"][-1]
    pixels = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32))
    with torch.inference_mode():
        outputs, expected = (
            adapter.run(model, {"pixel_values": pixels}),
            adapter.run(reference, {"pixel_values": pixels}),
        )
    assert outputs.keys() == expected.keys() == {"features", "logits"}
    assert all(torch.equal(outputs[name], expected[name]) for name in outputs)


def test_benchmark_model_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    _, weights_dir = saved_timm(tmp_path, "timm:test_convnext.r160_in1k")
    manifest = {"model": "tiny", "dir": str(weights_dir), "files": list_files(weights_dir)}
    loaded = LoadedModel(
        ModelEntry(source="timm:test_convnext.r160_in1k", family="timm_image"), manifest, "cpu", "float32"
    )
    pixels = np.zeros((1, 3, 64, 64), dtype=np.float32)
    settings = BenchmarkSettings(  # max_runs ends it
        batch_sizes=(1, 2),
        warmup=0,
        min_runs=2,
        min_seconds=0,
        max_runs=2,
        max_seconds=30,
        baseline="none",
        threads=None,
        prompt_len=None,
        new_tokens=16,
    )
    rows = benchmark_model(loaded, {"pixel_values": pixels}, settings)
    assert [(row["batch_size"], row["status"], row["runs"]) for row in rows] == [(1, "ok", 2), (2, "ok", 2)]
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_each_model_job_builds_the_model_once_with_the_cpu_baseline_on(tiny_run, tmp_path):
    config = tiny_config(
        benchmark={"batch_sizes": [1], "warmup": 0, "min_runs": 2, "max_runs": 2, "max_seconds": 30, "baseline": "cpu"}
    )
    config["models"] = {"tiny-convnext": config["models"]["tiny-convnext"]}
    # In a copy of the tiny run (timestamps kept): the dumps' jobs and logs are the tiny run's
    # (their config slices are this config's), and the changed benchmark settings re-run the benchmark.
    workdir = copy_of(tiny_run, tmp_path)
    run_snakemake(
        workdir,
        "results/tiny-convnext/fp32/benchmark.json",
        "results/tiny-convnext/reference/index.json",
        config=config,
    )
    bench = load(workdir / "results/tiny-convnext/fp32/benchmark.json")
    # The target runs on the CPU in float32 here: the baseline measures that same model.
    assert (bench["device"], bench["dtype"], bench["baseline"]["status"]) == ("cpu", "float32", "ok")
    assert bench["results"][0]["speedup_vs_cpu"] > 0
    for job in ("dump_reference", "dump_target", "benchmark"):
        assert (
            workdir / f"logs/tiny-convnext/{job}.log"
            if job == "dump_reference"
            else workdir / f"logs/tiny-convnext/fp32/{job}.log"
        ).read_text().count(BUILD_LINE) == 1, job
    # Snakemake's own per-job timing (bench/workflow_overhead.py reads it).
    header, row = (workdir / "benchmarks/tiny-convnext/fp32/benchmark.tsv").read_text().splitlines()[:2]
    assert header.split("\t")[0] == "s" and float(row.split("\t")[0]) > 0


def test_import_code_imports_the_model_class_that_load_would_import_first(tmp_path):
    # A fresh interpreter: this one may hold transformers' BERT modules already.
    (tmp_path / "config.json").write_text((DATA / "tiny-bert.json").read_text())
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from npu_adapt.adapters.hf_encoder import HFEncoderAdapter\n"
        "from npu_adapt.config_types import ModelEntry\n"
        "adapter = HFEncoderAdapter(ModelEntry(source='hf:x/y', family='hf_encoder'))\n"
        "before = 'transformers.models.bert.modeling_bert' in sys.modules\n"
        f"adapter.import_code(Path({str(tmp_path)!r}))\n"
        "print(before, 'transformers.models.bert.modeling_bert' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # Imported by import_code, so the build log's time is the build's own, not transformers'.
    assert done.stdout.split() == ["False", "True"]
