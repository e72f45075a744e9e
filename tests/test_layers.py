"""Layer inspection at scale: statistics mode, API-level capture, the size guard, msprobe's
dump layout. Real torch models throughout (tiny random-init BERT, small nets); every
statistic checked against numpy on the captured tensors themselves."""

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, PERTURBED, load

from npu_adapt import seams
from npu_adapt.__main__ import main as cli
from npu_adapt.config_types import ModelEntry


def tiny_bert(dtype: str = "float32"):
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig.from_pretrained(DATA / "tiny-bert.json")).eval()
    return model.to(getattr(torch, dtype))


def bert_inputs():
    import torch

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (1, 12), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def capture(model, directory: Path, mode: str, **scope) -> list[dict]:
    """One forward of ``model`` under a LayerCapture; its layer index.json written."""
    import torch

    from npu_adapt.layers import LayerCapture, write_layer_index

    with torch.inference_mode(), LayerCapture(model, directory, mode, **scope) as layer_capture:
        model(**bert_inputs())
    write_layer_index(
        directory,
        {"status": "ok", "reason": None, "mode": mode, "layer_kinds": list(scope.get("kinds", ("module", "api")))},
        layer_capture.entries,
    )
    return layer_capture.entries


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --- capture -------------------------------------------------------------------------


@pytest.mark.e2e
def test_api_rows_show_the_ops_between_modules_with_the_module_they_ran_in(tmp_path):
    import torch

    class Attention(torch.nn.Module):  # not a leaf: its matmul/softmax are no module's output
        def __init__(self):
            super().__init__()
            self.query = torch.nn.Linear(4, 4)

        def forward(self, x):
            q = self.query(x)
            return torch.softmax(q @ x.transpose(-1, -2), dim=-1) @ x

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = Attention()
            self.norm = torch.nn.LayerNorm(4)

        def forward(self, x):
            return self.norm(x + self.attention(x))

    from npu_adapt.layers import LayerCapture

    torch.manual_seed(0)
    net, x = Net().eval(), torch.randn(1, 3, 4)
    with torch.inference_mode(), LayerCapture(net, tmp_path, "tensors", inputs=True) as layer_capture:
        out = net(x)
    rows = [(e["layer_kind"], e["name"], e["module"]) for e in layer_capture.entries if e["io"] == "output"]
    assert rows == [
        ("api", "Functional.linear.0", "attention.query"),
        ("module", "attention.query", "attention.query"),
        ("api", "Tensor.matmul.0", "attention"),
        ("api", "Torch.softmax.0", "attention"),
        ("api", "Tensor.matmul.1", "attention"),
        ("api", "Tensor.add.0", ""),
        ("api", "Functional.layer_norm.0", "norm"),
        ("module", "norm", "norm"),
    ]
    by_name = {e["name"]: e for e in layer_capture.entries}
    assert by_name["Torch.softmax.0"]["parent"] == "Module.attention.Attention.forward.0"
    assert by_name["norm"]["parent"] == "Module.root.Net.forward.0"
    # Inputs come before their call's output (layer_inputs), and hold what went in.
    names = [e["name"] for e in layer_capture.entries]
    assert names.index("norm.input[0]") < names.index("Functional.layer_norm.0") < names.index("norm")
    assert np.array_equal(np.load(tmp_path / by_name["norm.input[0]"]["file"]), (x + net.attention(x)).detach().numpy())
    assert np.array_equal(np.load(tmp_path / by_name["norm"]["file"]), out.numpy())
    softmax = torch.softmax(net.attention.query(x) @ x.transpose(-1, -2), dim=-1)
    assert np.allclose(
        np.load(tmp_path / by_name["Torch.softmax.0"]["file"]), softmax.detach().numpy(), rtol=0, atol=1e-7
    )
    assert [e["order"] for e in layer_capture.entries] == list(range(len(names)))
    # Layout-only ops (transpose) are no rows; scopes by kind and by name.
    assert not any("transpose" in name for name in names)
    with torch.inference_mode(), LayerCapture(net, None, "shapes", pattern=r"^attention$", kinds=("api",)) as scoped:
        net(x)
    assert [e["name"] for e in scoped.entries] == ["Tensor.matmul.0", "Torch.softmax.0", "Tensor.matmul.1"]


@pytest.mark.e2e
def test_statistics_are_those_of_the_captured_tensors_and_the_estimate_is_the_dump_size(tmp_path):
    import torch

    from npu_adapt.layers import LayerCapture

    reference = tiny_bert()
    tensors = capture(reference, tmp_path / "tensors", "tensors", inputs=True)
    stats = capture(reference, tmp_path / "stats", "stats", inputs=True)
    shapes = capture(reference, tmp_path / "shapes", "shapes", inputs=True)
    assert [e["name"] for e in tensors] == [e["name"] for e in stats] == [e["name"] for e in shapes]
    written = sum((tmp_path / "tensors" / e["file"]).stat().st_size for e in tensors)
    with torch.inference_mode(), LayerCapture(reference, None, "shapes", inputs=True) as estimate:
        reference(**bert_inputs())
    assert estimate.bytes == written  # the size guard's estimate is exact
    for saved, stat in zip(tensors, stats):
        array = np.load(tmp_path / "tensors" / saved["file"]).astype(np.float64)
        assert stat["shape"] == list(array.shape) and stat["numel"] == array.size
        assert stat["min"] == array.min() and stat["max"] == array.max()
        assert stat["mean"] == pytest.approx(array.mean(), rel=1e-12, abs=1e-15)
        assert stat["norm"] == pytest.approx(np.linalg.norm(array.ravel()), rel=1e-12)
        assert stat["nan"] == stat["inf"] == 0 and stat["compute_dtype"] == saved["compute_dtype"]
    size = (tmp_path / "stats/index.json").stat().st_size
    assert size < written / 3, (size, written)


def test_statistics_of_non_finite_values_and_the_checksum():
    import torch

    from npu_adapt.layers import tensor_statistics

    values = torch.tensor([[1.0, -2.0, float("nan")], [float("inf"), 4.0, float("-inf")]])
    stats = tensor_statistics(values)
    assert (stats["nan"], stats["inf"], stats["numel"]) == (1, 2, 6)
    assert (stats["min"], stats["max"], stats["mean"]) == (-2.0, 4.0, 1.0)
    assert stats["norm"] == pytest.approx(math.sqrt(21))
    same = tensor_statistics(values.clone())["checksum"]
    nudged = values.clone()
    nudged[0, 0] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))
    assert same == stats["checksum"] != tensor_statistics(nudged)["checksum"]
    empty = tensor_statistics(torch.zeros(0))
    assert empty["norm"] is None and empty["checksum"] is None
    nothing_finite = tensor_statistics(torch.full((3,), float("nan"), dtype=torch.bfloat16))
    assert nothing_finite["mean"] is None and nothing_finite["nan"] == 3


# --- localisation --------------------------------------------------------------------


@pytest.mark.e2e
def test_statistics_bound_never_exceeds_the_measured_error_of_a_bfloat16_target(tmp_path):
    """Soundness of the statistics-level verdict: on every row, the rel_l2 lower bound
    proven by the statistics is at most the rel_l2 measured on the tensors themselves."""
    from npu_adapt.layers import compare_layers

    reference, target = tiny_bert("float32"), tiny_bert("bfloat16")
    for mode in ("stats", "tensors"):
        capture(reference, tmp_path / mode / "reference", mode)
        capture(target, tmp_path / mode / "target", mode)
    criteria = {"rel_l2_max": 0.01}
    by_stats = compare_layers(tmp_path / "stats/reference/index.json", tmp_path / "stats/target/index.json", criteria)
    by_tensors = compare_layers(
        tmp_path / "tensors/reference/index.json", tmp_path / "tensors/target/index.json", criteria
    )
    assert by_stats["mode"] == "stats" and "statistics-level" in by_stats["localisation"]
    assert [row["name"] for row in by_stats["rows"]] == [row["name"] for row in by_tensors["rows"]]
    assert by_stats["apis"] > 0 and by_stats["modules"] > 0
    for stat_row, tensor_row in zip(by_stats["rows"], by_tensors["rows"]):
        assert stat_row["dtype_reference"] == "float32" and stat_row["dtype_target"] in ("bfloat16", "float32")
        assert stat_row["rel_l2_lower_bound"] <= tensor_row["rel_l2"] * (1 + 1e-9) + 1e-15, stat_row["name"]
        if not stat_row["pass"]:  # flagged by statistics: certainly over the threshold
            assert tensor_row["rel_l2"] >= 0.01
    assert any(row["rel_l2_lower_bound"] > 0 for row in by_stats["rows"])  # bfloat16 really moved the statistics


@pytest.mark.e2e
def test_statistics_name_the_perturbed_module_as_the_first_divergence(tmp_path, monkeypatch):
    from npu_adapt.layers import apply_test_perturbation, compare_layers

    monkeypatch.setenv(seams.PERTURB_LAYER, f"{PERTURBED}:1.5")
    reference, target = tiny_bert(), tiny_bert()
    assert apply_test_perturbation(target, "target") == f"{PERTURBED}:1.5"
    capture(reference, tmp_path / "reference", "stats")
    capture(target, tmp_path / "target", "stats")
    result = compare_layers(tmp_path / "reference/index.json", tmp_path / "target/index.json", {"rel_l2_max": 0.01})
    first = result["first_divergence"]
    assert (first["name"], first["kind"], first["type"]) == (PERTURBED, "module", "Linear")
    # The output is scaled by 1.5 (in float32): its norm by 1.5.
    assert first["norm_rel_change"] == pytest.approx(0.5, rel=1e-6) and first["rel_l2_lower_bound"] >= 0.5 - 1e-6
    rows = result["rows"]
    before = rows[: first["order"]]
    assert before and all(row["pass"] and row["bit_identical"] is True for row in before)
    # The API call inside the module ran unperturbed; the seam itself adds no row.
    assert rows[first["order"] - 1]["module"] == PERTURBED and rows[first["order"] - 1]["kind"] == "api"
    assert not any(row["reason"] and "in target but not" in row["reason"] for row in rows)


def test_stats_rows_that_cannot_be_compared_fail_with_the_reason(tmp_path):
    from npu_adapt.layers import compare_layers, write_layer_index

    row = {
        "name": "a",
        "layer_kind": "module",
        "module": "a",
        "type": "Linear",
        "shape": [4],
        "numel": 4,
        "min": -1.0,
        "max": 1.0,
        "mean": 0.0,
        "norm": 2.0,
        "nan": 0,
        "inf": 0,
        "checksum": 5,
        "compute_dtype": "float32",
    }
    write_layer_index(
        tmp_path / "reference", {"status": "ok", "mode": "stats"}, [row, {**row, "name": "b"}, {**row, "name": "c"}]
    )
    write_layer_index(
        tmp_path / "target",
        {"status": "ok", "mode": "stats"},
        [{**row, "nan": 1, "norm": 2.0}, {**row, "name": "b", "shape": [2, 2]}, {**row, "name": "d"}],
    )
    result = compare_layers(tmp_path / "reference/index.json", tmp_path / "target/index.json", {})
    reasons = {row["name"]: row["reason"] for row in result["rows"]}
    assert reasons["a"] == "NaN/Inf: target 1 NaN 0 Inf, reference 0 NaN 0 Inf"
    assert reasons["b"] == "shape mismatch: target [2, 2] vs reference [4]"
    assert reasons["c"] == "missing from target" and reasons["d"] == "in target but not in reference"
    assert result["first_divergence"]["name"] == "a" and result["diverged"] == 4
    write_layer_index(tmp_path / "target", {"status": "ok", "mode": "tensors"}, [])
    mixed = compare_layers(tmp_path / "reference/index.json", tmp_path / "target/index.json", {})
    assert mixed["status"] == "blocked" and "layers: stats, the target layers: tensors" in mixed["reason"]


def test_layer_settings_auto_mode_and_size_guard():
    from npu_adapt.layers import resolve_mode, size_refusal

    def entry(**keys):
        return ModelEntry(family="hf_encoder", **keys)

    assert resolve_mode(entry(layers=True), 10)[0] == "tensors"
    assert resolve_mode(entry(layers="stats"), 10)[0] == "stats"
    assert resolve_mode(entry(layers=False), 10**12) == (None, "layers: false for this model")
    mode, why = resolve_mode(entry(layers="auto", layers_auto_params=100_000_000), 10**9)
    assert mode == "stats" and "1,000,000,000 parameters > layers_auto_params 100,000,000" in why
    assert resolve_mode(entry(layers="auto", layers_auto_params=10**9), 10**9)[0] is None
    assert size_refusal(2_000_000_000, entry(layers_max_bytes=2_000_000_000)) is None
    refusal = size_refusal(3_900_000_000, entry(layers_max_bytes=2_000_000_000))
    assert "estimated 3.9 GB (3,900,000,000 bytes" in refusal and "set layers: stats" in refusal
    assert size_refusal(10, entry(layers_max_bytes=9)) is not None


# --- the workflow ----------------------------------------------------------------------
# The run: conftest.py's perturbed_run (session-scoped, shared with tests/test_accuracy.py);
# these tests read its bert-auto and bert-big.


@pytest.mark.e2e
def test_auto_captures_statistics_above_the_threshold_and_names_the_divergence(perturbed_run):
    results = perturbed_run / "results/bert-auto"
    index = load(results / "fp32/layers/dump/index.json")
    assert index["mode"] == "stats" and "parameters > layers_auto_params 1,000" in index["mode_reason"]
    assert not list((results / "fp32/layers/dump").glob("*.npy"))
    assert {entry["io"] for entry in index["tensors"]} == {"input", "output"}
    layers = load(results / "fp32/layers/compare.json")
    assert layers["first_divergence"]["name"] == PERTURBED and layers["mode"] == "stats"
    table = read_csv(results / "fp32/layers/compare.csv")
    assert [row["name"] for row in table] == [row["name"] for row in layers["rows"]]
    assert {row["kind"] for row in table} == {"module", "api"} and "rel_l2_lower_bound" in table[0]
    summary = load(results / "fp32/compare.json")["layers"]
    assert summary["mode"] == "stats" and summary["first_divergence"]["name"] == PERTURBED
    card = (results / "README.md").read_text()
    assert "statistics-level" in card and PERTURBED in card


@pytest.mark.e2e
def test_the_size_guard_refuses_a_tensors_capture_over_the_limit(perturbed_run):
    results = perturbed_run / "results/bert-big"
    index = load(results / "fp32/layers/dump/index.json")
    assert index["status"] == "blocked" and index["estimated_bytes"] > 100_000
    assert f"estimated {index['estimated_bytes'] / 1e9:.3g} GB ({index['estimated_bytes']:,} bytes" in index["reason"]
    assert "set layers: stats" in index["reason"] and not list((results / "fp32/layers/dump").glob("*.npy"))
    compare = load(results / "fp32/compare.json")
    assert compare["layers"]["status"] == "blocked" and "layers_max_bytes 100,000" in compare["layers"]["reason"]
    assert compare["status"] in ("pass", "fail") and compare["outputs"]  # the model itself was still compared
    assert load(results / "fp32/dump/index.json")["status"] == "ok"


@pytest.mark.e2e
def test_inspect_shows_the_first_divergence_with_its_neighbours(perturbed_run, capsys):
    assert cli(["inspect", str(perturbed_run / "results/bert-auto")]) == 2  # the perturbed model fails (exit 2)
    text = capsys.readouterr().out
    layers = load(perturbed_run / "results/bert-auto/fp32/layers/compare.json")
    order = layers["first_divergence"]["order"]
    assert f"layers (stats): {layers['modules']} module and {layers['apis']} API rows compared" in text
    assert "localisation: statistics-level" in text and f"first divergence: #{order} {PERTURBED} (Linear)" in text
    shown = [row["name"] for row in layers["rows"][order - 3 : order + 4]]
    lines = text.split("first divergence:")[1].splitlines()
    assert all(any(f" {name} " in line for line in lines) for name in shown)
    diverged = next(line for line in lines if line.split()[:1] == [str(order)])  # its row in the table
    status = next(row["status"] for row in layers["rows"] if row["order"] == order)
    assert status == "fail" and " fail " in diverged  # its status as compare.json has it, not yes/NO
    assert cli(["inspect", str(perturbed_run / "results/bert-big")]) == 2  # perturbed too: its outputs fail
    assert "layers_max_bytes 100,000" in capsys.readouterr().out


# --- msprobe interop -----------------------------------------------------------------

# The msprobe command of this interpreter's environment (`make test` runs .venv/bin/pytest
# without activating the venv, so .venv/bin is not on PATH), else one on PATH.
MSPROBE = shutil.which("msprobe", path=str(Path(sys.executable).parent)) or shutil.which("msprobe")


def msprobe_compare(target: Path, golden: Path, out: Path) -> list[dict]:
    done = subprocess.run(
        [MSPROBE, "compare", "--target_path", str(target), "--golden_path", str(golden), "--output_path", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = sorted(out.glob("compare_result*.csv"))
    assert results, done.stdout[-3000:] + done.stderr[-3000:]
    return read_csv(results[-1])


@pytest.mark.e2e
def test_msprobe_compare_reads_an_exported_statistics_dump(perturbed_run, tmp_path):
    pytest.importorskip("msprobe", reason="mindstudio-probe (msprobe) is not installed")
    if not MSPROBE:
        pytest.skip("the msprobe command is not on PATH")
    out = tmp_path / "msprobe"
    assert cli(["inspect", str(perturbed_run / "results/bert-auto"), "--export-msprobe", str(out)]) == 0
    dump = load(out / "target/step0/rank0/dump.json")
    assert (dump["task"], dump["level"], dump["framework"]) == ("statistics", "mix", "pytorch")
    key = f"Module.{PERTURBED}.Linear.forward.0"
    assert (
        set(dump["data"][key]) >= {"input_args", "output"}
        and dump["data"][key]["output"][0]["dtype"] == "torch.float32"
    )
    rows = msprobe_compare(out / "target/step0", out / "reference/step0", out / "compare")
    ours = {row["name"]: row for row in load(perturbed_run / "results/bert-auto/fp32/layers/compare.json")["rows"]}
    theirs = {row["NPU Name"]: row for row in rows}
    assert f"{key}.output.0" in theirs and "Functional.linear.0.forward.output.0" in theirs
    # msprobe's relative norm error (in %) is our norm_rel_change, row for row.
    assert float(theirs[f"{key}.output.0"]["NormRelativeErr"].rstrip("%")) == pytest.approx(
        100 * ours[PERTURBED]["norm_rel_change"], rel=1e-6
    )
    assert theirs[f"{key}.input.0"]["NormRelativeErr"].rstrip("%") in ("0", "0.0")


@pytest.mark.e2e
def test_msprobe_compare_reads_an_exported_tensors_dump(tmp_path, monkeypatch):
    pytest.importorskip("msprobe", reason="mindstudio-probe (msprobe) is not installed")
    if not MSPROBE:
        pytest.skip("the msprobe command is not on PATH")
    from npu_adapt.layers import apply_test_perturbation, compare_layers
    from npu_adapt.layers.msprobe import export_msprobe

    monkeypatch.setenv(seams.PERTURB_LAYER, f"{PERTURBED}:1.5")
    target = tiny_bert()
    apply_test_perturbation(target, "target")
    capture(tiny_bert(), tmp_path / "run/layers/reference", "tensors")
    capture(target, tmp_path / "run/fp32/layers/dump", "tensors")
    written = export_msprobe(tmp_path / "run/fp32", tmp_path / "msprobe")
    assert written["target"]["task"] == "tensor" and "msprobe compare --target_path" in written["command"]
    rows = msprobe_compare(
        tmp_path / "msprobe/target/step0", tmp_path / "msprobe/reference/step0", tmp_path / "msprobe/compare"
    )
    ours = {
        row["name"]: row
        for row in compare_layers(
            tmp_path / "run/layers/reference/index.json", tmp_path / "run/fp32/layers/dump/index.json", {}
        )["rows"]
    }
    theirs = {row["NPU Name"]: row for row in rows}
    key = f"Module.{PERTURBED}.Linear.forward.0.output.0"
    assert float(theirs[key]["Cosine"]) == pytest.approx(ours[PERTURBED]["cosine"], abs=1e-6)
    assert float(theirs[key]["MaxAbsErr"]) == pytest.approx(ours[PERTURBED]["max_abs_diff"], rel=1e-5)
    assert float(theirs["Functional.linear.0.forward.output.0"]["Cosine"]) == pytest.approx(1.0, abs=1e-9)
    assert json.loads((tmp_path / "msprobe/target/step0/rank0/construct.json").read_text())[
        "Functional.linear.0.forward"
    ].startswith("Module.")
