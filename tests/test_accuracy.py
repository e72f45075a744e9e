"""End to end: the real workflow on tiny random-init models, compared in low precision and
with a deliberately perturbed layer; every number checked against numpy computed here."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import PERTURBED, REPO, load, run_snakemake, tiny_config

from npu_adapt.__main__ import main as cli
from npu_adapt.metrics import dtype_criteria

BF16 = {**dtype_criteria("bfloat16"), "rel_l2_max": 0.005, "cosine_min": 0.995}  # as bf16_run configures tiny-bert


def expected_status(metrics: dict, criteria: dict) -> str:
    """The verdict, recomputed here from the metrics and the criteria."""
    if metrics["rel_l2"] > criteria["rel_l2_fail"] or metrics["cosine"] < criteria["cosine_floor"]:
        return "fail"
    return (
        "warn" if metrics["rel_l2"] > criteria["rel_l2_max"] or metrics["cosine"] < criteria["cosine_min"] else "pass"
    )


TINY_T5 = {
    "source": "hf:npu-adapt/tiny-t5",
    "family": "hf_seq2seq",
    "arch_config": "tests/data/tiny-t5.json",
    "fallback": "random-init",
    "inputs": {"seq_len": 10, "decoder_len": 6, "max_new_tokens": 6},
}


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory) -> Path:
    """tiny-bert and tiny-t5 with a bfloat16 CPU target, every leaf module captured, pass
    criteria set globally (cosine) and per model (rel_l2)."""
    config = tiny_config(targets={"bf16": {"device": "cpu", "dtype": "bfloat16"}}, accuracy={"cosine_min": 0.995})
    bert = {**config["models"]["tiny-bert"], "layers": True, "accuracy": {"rel_l2_max": 0.005}}
    config["models"] = {"tiny-bert": bert, "tiny-t5": {**TINY_T5, "layers": True}}
    workdir = tmp_path_factory.mktemp("bf16_run")
    run_snakemake(workdir, "results/tiny-bert/bf16/compare.json", "results/tiny-t5/bf16/compare.json", config=config)
    return workdir


def numpy_metrics(target: np.ndarray, reference: np.ndarray, atol: float, rtol: float) -> dict:
    """docs/design.md's definitions, written independently on whole float64 arrays."""
    t, r = target.astype(np.float64).ravel(), reference.astype(np.float64).ravel()
    diff = np.abs(t - r)
    return {
        "max_abs_diff": diff.max(),
        "mean_abs_diff": diff.mean(),
        "rmse": np.sqrt(np.mean((t - r) ** 2)),
        "rel_l2": np.linalg.norm(t - r) / np.linalg.norm(r),
        "max_rel_diff": np.max(diff / (np.abs(r) + 1e-6 * np.abs(r).max() + np.finfo(np.float64).tiny)),
        "cosine": np.dot(t, r) / (np.linalg.norm(t) * np.linalg.norm(r)),
        "within_rtol_frac": np.mean(diff <= atol + rtol * np.abs(r)),
    }


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.e2e
def test_low_precision_metrics_are_reproduced_by_numpy(bf16_run):
    results = bf16_run / "results/tiny-bert"
    compare = load(results / "bf16/compare.json")
    assert compare["target"]["dtype"] == "bfloat16" and compare["reference"]["dtype"] == "float32"
    assert compare["criteria"] == BF16 and compare["criteria_class"] == "bfloat16"
    assert compare["criteria_source"]["rel_l2_max"] == "model override (models.tiny-bert.accuracy.rel_l2_max)"
    assert compare["criteria_source"]["cosine_min"] == "config (accuracy.cosine_min)"
    assert compare["criteria_source"]["rel_l2_fail"] == "dtype default (bfloat16)"
    assert set(compare["outputs"]) == {"last_hidden_state", "pooler_output", "sentence_embedding"}
    rows = {row["output"]: row for row in read_csv(results / "bf16/compare.csv")}
    for name, metrics in compare["outputs"].items():
        reference = np.load(results / "reference" / f"{name}.npy")
        target = np.load(results / "bf16/dump" / f"{name}.npy")
        assert reference.dtype == np.float32 and target.dtype == np.float32  # bfloat16 widened exactly
        assert not np.array_equal(target, reference)  # bfloat16 really ran
        expected = numpy_metrics(target, reference, 1e-5, 1e-2)  # bfloat16: Ascend's "dual hundredths" rtol
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, key)
            assert float(rows[name][key]) == pytest.approx(value, rel=1e-9, abs=1e-12), (name, key)
        assert metrics["status"] == expected_status(expected, BF16)
        assert metrics["dtype_target"] == rows[name]["dtype_target"] == "bfloat16"
        assert metrics["nan_target"] == 0 and metrics["top1_match"] is None
        verdict = (
            "No"
            if (expected["cosine"] < 0.99 and expected["max_abs_diff"] > 0.001)
            or expected["cosine"] < 0.9
            or expected["max_abs_diff"] > 1
            else "Yes"
        )
        assert metrics["ascend_verdict"] == verdict
    statuses = {m["status"] for m in compare["outputs"].values()}
    assert compare["status"] == next(s for s in ("fail", "warn", "pass") if s in statuses)


@pytest.mark.e2e
def test_generated_tokens_and_logits_of_the_seq2seq_model(bf16_run):
    results = bf16_run / "results/tiny-t5"
    compare = load(results / "bf16/compare.json")
    generated = compare["outputs"]["generated_ids"]
    reference = np.load(results / "reference/generated_ids.npy")
    target = np.load(results / "bf16/dump/generated_ids.npy")
    assert generated["kind"] == "token_ids" and reference.dtype == np.int64
    differs = [i for i in range(min(reference.shape[1], target.shape[1])) if reference[0, i] != target[0, i]]
    if reference.shape != target.shape and not differs:
        differs = [min(reference.shape[1], target.shape[1])]
    assert generated["exact_match"] is (not differs)
    assert generated["first_mismatch"] == (differs[0] if differs else None)
    # bfloat16's token_prefix 4: a difference in the first 4 tokens fails, a later one warns.
    assert generated["status"] == ("pass" if not differs else "fail" if differs[0] < 4 else "warn")
    logits = compare["outputs"]["logits"]
    reference, target = np.load(results / "reference/logits.npy"), np.load(results / "bf16/dump/logits.npy")
    assert logits["kind"] == "class_scores"
    assert logits["top1_match"] == pytest.approx(np.mean(reference.argmax(-1) == target.argmax(-1)), abs=1e-12)
    top5 = lambda a: np.sort(np.argsort(-a, axis=-1, kind="stable")[..., :5], axis=-1)  # noqa: E731
    assert logits["top5_match"] == pytest.approx(np.mean((top5(reference) == top5(target)).all(-1)), abs=1e-12)
    assert logits["rel_l2"] == pytest.approx(numpy_metrics(target, reference, 1e-5, 1e-3)["rel_l2"], rel=1e-9)


@pytest.mark.e2e
def test_layer_dumps_cover_every_leaf_module_in_execution_order(bf16_run):
    import transformers

    layers = bf16_run / "results/tiny-bert/layers"
    target_layers = bf16_run / "results/tiny-bert/bf16/layers"
    reference, target = load(layers / "reference/index.json"), load(target_layers / "dump/index.json")
    assert (reference["role"], target["role"], target["dtype"]) == ("reference", "target", "bfloat16")
    model = transformers.BertModel(transformers.BertConfig.from_pretrained(REPO / "tests/data/tiny-bert.json"))
    leaves = {name for name, module in model.named_modules() if name and not list(module.children())}
    names = [entry["name"] for entry in reference["tensors"]]
    modules = [entry["name"] for entry in reference["tensors"] if entry["layer_kind"] == "module"]
    # Every leaf that runs; BERT's attention dropout modules never run (the SDPA kernel takes
    # the dropout probability as an argument instead of calling the module).
    assert set(modules) <= leaves and all(".attention.self.dropout" in name for name in leaves - set(modules))
    assert names == [entry["name"] for entry in target["tensors"]]
    assert modules[0] == "embeddings.word_embeddings" and modules[-1] == "pooler.activation"
    assert [entry["order"] for entry in reference["tensors"]] == list(range(len(names)))
    # API rows (layers: true captures both kinds) sit between them, in execution order.
    apis = [entry for entry in reference["tensors"] if entry["layer_kind"] == "api"]
    assert apis and {"Functional.linear", "Functional.layer_norm", "Tensor.add"} <= {entry["type"] for entry in apis}
    # Stored as float32 (numpy has no bfloat16), labelled with the dtype the model computed in.
    assert {e["compute_dtype"] for e in target["tensors"] if e["layer_kind"] == "module"} == {"bfloat16"}
    assert {e["compute_dtype"] for e in reference["tensors"] if e["layer_kind"] == "module"} == {"float32"}
    # Every captured output is what the file holds, in the index's shape and dtype.
    for entry in target["tensors"]:
        array = np.load(target_layers / "dump" / entry["file"])
        assert list(array.shape) == entry["shape"] and str(array.dtype) == entry["dtype"]
        assert entry["min"] == pytest.approx(float(array.min()))

    table = read_csv(target_layers / "compare.csv")
    assert [row["name"] for row in table] == names
    assert [row["dtype_target"] for row in table] == [entry["compute_dtype"] for entry in target["tensors"]]
    for row, ref_entry, tgt_entry in zip(table, reference["tensors"], target["tensors"]):
        expected = numpy_metrics(
            np.load(target_layers / "dump" / tgt_entry["file"]),
            np.load(layers / "reference" / ref_entry["file"]),
            1e-5,
            1e-2,
        )
        for key in ("rel_l2", "cosine", "max_abs_diff", "mean_abs_diff"):
            assert float(row[key]) == pytest.approx(expected[key], rel=1e-9, abs=1e-12), (row["name"], key)
        assert row["status"] == expected_status(expected, BF16), row["name"]
    summary = load(bf16_run / "results/tiny-bert/bf16/compare.json")["layers"]
    first = next((row for row in table if row["status"] == "fail"), None)  # a warn is within what bfloat16 allows
    assert summary["enabled"] is True and summary["modules"] == len(modules) and summary["apis"] == len(apis)
    assert (summary["first_divergence"] or {}).get("name") == (first["name"] if first else None)
    assert summary["diverged"] == sum(row["status"] == "fail" for row in table)


@pytest.mark.e2e
def test_repeated_module_calls_are_captured_separately(bf16_run):
    names = [entry["name"] for entry in load(bf16_run / "results/tiny-t5/layers/reference/index.json")["tensors"]]
    # generate() runs the decoder once per new token: later calls get #1, #2, ...
    assert "decoder.final_layer_norm" in names and "decoder.final_layer_norm#1" in names
    assert names.index("decoder.final_layer_norm") < names.index("decoder.final_layer_norm#1")
    assert len(names) == len(set(names))


@pytest.mark.e2e
def test_perturbed_layer_is_named_as_the_first_divergence(perturbed_run):
    results = perturbed_run / "results/tiny-bert"
    compare = load(results / "fp32/compare.json")
    assert compare["target"]["test_perturbation"] == f"{PERTURBED}:1.5"
    first = compare["layers"]["first_divergence"]
    assert first["name"] == PERTURBED and first["type"] == "Linear"
    assert first["rel_l2"] == pytest.approx(0.5, rel=1e-6)  # the output scaled by 1.5
    table = read_csv(results / "fp32/layers/compare.csv")
    names = [row["name"] for row in table]
    assert all(row["module"].startswith("encoder.") for row in table)  # layer_pattern ^encoder\.
    assert not any(row["module"].startswith(("embeddings.", "pooler.")) for row in table)
    before = table[: names.index(PERTURBED)]
    assert before and all(float(row["rel_l2"]) == 0.0 and row["status"] == "pass" for row in before)
    assert table[names.index(PERTURBED)]["status"] == "fail"
    layers_json = load(results / "fp32/layers/compare.json")
    assert layers_json["first_divergence"]["order"] == names.index(PERTURBED)
    assert layers_json["diverged"] == sum(row["status"] == "fail" for row in table)


@pytest.mark.e2e
def test_inspect_prints_the_model_and_its_layer_table(perturbed_run, capsys):
    assert cli(["inspect", str(perturbed_run / "results/tiny-bert"), "--layers"]) == 2  # the perturbed model fails
    text = capsys.readouterr().out
    layer_compare = json.loads((perturbed_run / "results/tiny-bert/fp32/layers/compare.json").read_text())
    assert f"first divergence: #{layer_compare['first_divergence']['order']} {PERTURBED} (Linear)" in text
    assert f"TEST PERTURBATION {PERTURBED}:1.5" in text
    for name in ("last_hidden_state", "sentence_embedding", "encoder.layer.0.attention.self.query", "input_ids"):
        assert name in text
    layers = perturbed_run / "results/tiny-bert"
    assert (
        cli(["inspect", str(layers / "fp32/layers/dump"), str(layers / "layers/reference")]) == 2
    )  # DIR_A DIR_B: fail
    text = capsys.readouterr().out
    assert "FAIL" in text and PERTURBED in text


# The capture and the layer comparison on their own (no workflow): names, order, failures.


@pytest.mark.e2e
def test_capture_names_repeated_calls_and_tuple_outputs(tmp_path):
    import torch

    from npu_adapt.layers import LayerCapture

    class Split(torch.nn.Module):
        def forward(self, x):
            return x[:, :2], x[:, 2:]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = torch.nn.Linear(4, 4)
            self.split = Split()
            self.head = torch.nn.Sequential(torch.nn.ReLU())

        def forward(self, x):
            a, b = self.split(self.shared(self.shared(x)))
            return self.head(torch.cat([b, a], dim=1))

    net, x = Net().eval(), torch.randn(1, 4)
    (tmp_path / "stale.npy").write_bytes(b"from an earlier run")
    with torch.inference_mode(), LayerCapture(net, tmp_path, kinds=("module",)) as capture:
        out = net(x)
    assert [e["name"] for e in capture.entries] == ["shared", "shared#1", "split[0]", "split[1]", "head.0"]
    assert [e["type"] for e in capture.entries] == ["Linear", "Linear", "Split", "Split", "ReLU"]
    assert not (tmp_path / "stale.npy").exists()
    assert np.array_equal(np.load(tmp_path / capture.entries[-1]["file"]), out.numpy())
    assert np.array_equal(np.load(tmp_path / capture.entries[0]["file"]), net.shared(x).detach().numpy())
    with LayerCapture(net, tmp_path / "only", pattern=r"^head\.", kinds=("module",)) as limited:
        net(x)
    assert [e["name"] for e in limited.entries] == ["head.0"]
    net(x)  # hooks are removed on exit
    assert len(limited.entries) == 1


def write_layer_dump(directory, tensors: dict, status="ok", reason=None):
    directory.mkdir(parents=True)
    entries = []
    for order, (name, array) in enumerate(tensors.items()):
        np.save(directory / f"{order:05d}_{name}.npy", array)
        entries.append(
            {
                "name": name,
                "file": f"{order:05d}_{name}.npy",
                "module": name,
                "type": "Linear",
                "order": order,
                "shape": list(array.shape),
            }
        )
    (directory / "index.json").write_text(json.dumps({"status": status, "reason": reason, "tensors": entries}))


def test_layer_comparison_names_the_first_module_over_the_threshold(tmp_path):
    from npu_adapt.layers import compare_layers

    a = np.arange(1, 9, dtype=np.float32)
    write_layer_dump(tmp_path / "layers/reference", {"l0": a, "l1": a, "l2": a, "l3": a})
    write_layer_dump(
        tmp_path / "layers/target", {"l0": a, "l1": a * 1.001, "l2": a * 1.02, "l3": np.full(8, np.nan, np.float32)}
    )
    result = compare_layers(
        tmp_path / "layers/reference/index.json",
        tmp_path / "layers/target/index.json",
        {"rel_l2_max": 0.01, "rel_l2_fail": 0.015, "cosine_min": 0.99},
    )
    assert [row["status"] for row in result["rows"]] == ["pass", "pass", "fail", "fail"]
    assert result["first_divergence"]["name"] == "l2" and result["first_divergence"]["order"] == 2
    assert result["first_divergence"]["rel_l2"] == pytest.approx(0.02, rel=1e-5)
    assert result["diverged"] == 2 and "8 NaN/Inf in target" in result["rows"][3]["reason"]


def test_layer_comparison_without_a_target_dump_is_blocked_not_a_crash(tmp_path):
    from npu_adapt.layers import compare_layers

    write_layer_dump(tmp_path / "layers/reference", {"l0": np.ones(2)})
    paths = (tmp_path / "layers/reference/index.json", tmp_path / "layers/target/index.json")
    missing = compare_layers(*paths, {})
    assert missing["status"] == "blocked" and "missing" in missing["reason"] and missing["rows"] == []
    write_layer_dump(tmp_path / "layers/target", {}, status="blocked", reason="forward: RuntimeError: x")
    blocked = compare_layers(*paths, {})
    assert blocked["status"] == "blocked" and blocked["reason"] == "upstream target blocked: forward: RuntimeError: x"
    # Evidence that differs from its record stays an error here too, as in compare.json (and
    # retry_blocked leaves it alone).
    write_layer_dump(tmp_path / "layers/in-error", {}, status="error", reason="load: WeightsMismatch: x")
    in_error = compare_layers(paths[0], tmp_path / "layers/in-error/index.json", {})
    assert in_error["status"] == "error" and in_error["reason"] == "upstream target error: load: WeightsMismatch: x"
