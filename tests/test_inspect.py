"""`python -m npu_adapt inspect`: a model's evidence, one dump, two dumps, two index dirs."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, load

from npu_adapt.__main__ import main as cli


def run_cli(*args: str) -> tuple[int, str]:
    """The real command line, as a user types it."""
    done = subprocess.run(
        [sys.executable, "-m", "npu_adapt", "inspect", *args], capture_output=True, text=True, cwd=REPO
    )
    return done.returncode, done.stdout + done.stderr


def test_two_dumps_are_compared_with_every_metric(tmp_path):
    reference = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    np.save(tmp_path / "ref.npy", reference)
    np.save(tmp_path / "close.npy", (reference * 1.001).astype(np.float16))
    np.save(tmp_path / "far.npy", reference + np.array([[0, 0, 0, 1]], dtype=np.float32))
    code, text = run_cli(str(tmp_path / "close.npy"), str(tmp_path / "ref.npy"))
    assert code == 0, text
    assert "float16" in text and "float32" in text
    for column in ("rel_l2", "cosine", "max_abs", "mean_abs", "rmse", "max_rel", "in_tol", "ascend"):
        assert column in text
    assert "\nPASS" in text
    assert "float16 defaults" in text  # the criteria of the target's compute dtype
    code, text = run_cli(str(tmp_path / "far.npy"), str(tmp_path / "ref.npy"))
    assert code == 2  # fail
    # rel_l2 = 1 / sqrt(30) = 0.18257; cosine = 34 / sqrt(30 * 39) = 0.99399909
    assert "  0.1826  " in text and "  0.99399909  " in text
    assert "FAIL: rel_l2 0.182574 > rel_l2_fail 0.001; cosine 0.993999 < cosine_min 0.99999" in text
    code, text = run_cli(str(tmp_path / "far.npy"), str(tmp_path / "ref.npy"), "--rel-l2-fail", "0.5")
    assert code == 1 and "WARN: rel_l2 0.182574 > rel_l2_max 0.0001" in text  # warn
    code, text = run_cli(
        str(tmp_path / "far.npy"),
        str(tmp_path / "ref.npy"),
        "--rel-l2-max",
        "0.5",
        "--rel-l2-fail",
        "0.5",
        "--cosine-min",
        "0.99",
    )
    assert code == 0, text
    (tmp_path / "bad.npy").write_bytes(b"not a numpy file")
    code, text = run_cli(str(tmp_path / "bad.npy"), str(tmp_path / "ref.npy"))
    assert code == 3 and "ERROR: cannot read dump" in text


def test_nan_and_shape_mismatch_fail_with_the_reason_instead_of_crashing(tmp_path):
    np.save(tmp_path / "ref.npy", np.ones((2, 3), dtype=np.float32))
    np.save(tmp_path / "nan.npy", np.array([[1, 1, np.nan], [1, 1, 1]], dtype=np.float32))
    np.save(tmp_path / "wide.npy", np.ones((2, 4), dtype=np.float32))
    code, text = run_cli(str(tmp_path / "nan.npy"), str(tmp_path / "ref.npy"))
    assert code == 2 and "FAIL: 1 NaN/Inf in target where reference is finite" in text
    code, text = run_cli(str(tmp_path / "wide.npy"), str(tmp_path / "ref.npy"))
    assert code == 2 and "FAIL: shape mismatch: target [2, 4] vs reference [2, 3]" in text
    code, text = run_cli(str(tmp_path / "missing.npy"))
    assert code == 3 and "no such file or directory" in text


def test_one_dump_shows_its_stats(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[-1.0, 0.0, np.inf, 3.0]], dtype=np.float32))
    code, text = run_cli(str(tmp_path / "a.npy"))
    assert code == 0
    row = next(line for line in text.splitlines() if "a.npy" in line).split()
    # name shape dtype min max mean std (over the finite values) nan inf
    assert row[1:] == ["1x4", "float32", "-1", "3", "0.6667", "1.7", "0", "1"]


def test_the_kind_beside_a_dump_selects_token_agreement(tmp_path):
    for role, ids in (("reference", [[0, 7, 3, 1]]), ("target", [[0, 7, 4, 1]])):
        (tmp_path / role).mkdir()
        np.save(tmp_path / role / "generated_ids.npy", np.array(ids, dtype=np.int64))
        index = {"tensors": [{"name": "generated_ids", "file": "generated_ids.npy", "kind": "token_ids"}]}
        (tmp_path / role / "index.json").write_text(json.dumps(index))
    code, text = run_cli(str(tmp_path / "target/generated_ids.npy"), str(tmp_path / "reference/generated_ids.npy"))
    assert code == 2 and "FAIL: generated tokens differ from position 2 (row 0)" in text
    assert "tokens" in text and "1st_diff" in text


def test_a_tensor_is_judged_in_its_own_compute_dtype_as_the_workflow_judges_it(tmp_path):
    # In a bfloat16 run, a layer that computed in float32 (an upcast norm) has float32's criteria.
    reference = np.linspace(1.0, 2.0, 64, dtype=np.float32)
    for role, values in (("reference", reference), ("target", reference * np.float32(1.002))):
        (tmp_path / role).mkdir()
        tensors = []
        for name, dtype in (("norm", "float32"), ("proj", "bfloat16")):
            np.save(tmp_path / role / f"{name}.npy", values)
            tensors.append({"name": name, "file": f"{name}.npy", "compute_dtype": dtype})
        (tmp_path / role / "index.json").write_text(json.dumps({"compute_dtype": "bfloat16", "tensors": tensors}))
    code, text = run_cli(str(tmp_path / "target/norm.npy"), str(tmp_path / "reference/norm.npy"))
    assert code == 2 and "norm.npy (target, float32)" in text and "> rel_l2_fail 0.001" in text
    code, text = run_cli(str(tmp_path / "target/proj.npy"), str(tmp_path / "reference/proj.npy"))
    assert code == 0 and "proj.npy (target, bfloat16)" in text and "bfloat16 defaults" in text


@pytest.mark.e2e
def test_inspect_a_model_from_a_real_run(tiny_run, capsys):
    model_dir = tiny_run / "results/tiny-convnext"
    assert cli(["inspect", str(model_dir)]) == 0  # CPU float32 against CPU float32: a self-check
    text = capsys.readouterr().out
    compare = load(model_dir / "fp32/compare.json")
    assert compare["status"] == "self-check"
    assert "model tiny-convnext, target fp32" in text
    assert f"comparison: {compare['status'].upper()}" in text
    for role in ("inputs", "reference outputs on cpu", "target outputs on cpu"):
        assert role in text
    for tensor in load(model_dir / "fp32/dump/index.json")["tensors"]:
        line = next(line for line in text.splitlines() if line.strip().startswith(tensor["name"] + " "))
        assert "x".join(map(str, tensor["shape"])) in line and tensor["dtype"] in line
    logits = compare["outputs"]["logits"]
    line = next(line for line in text.splitlines() if line.strip().startswith("logits ") and "class_scores" in line)
    assert f"{logits['cosine']:.8f}" in line and f"{logits['top1_match']:.4g}" in line
    # layers: auto (the default) captures nothing below layers_auto_params, and says so.
    params = load(model_dir / "summary.json")["params"]
    assert f"layers: not captured (layers: auto: {params:,} parameters <= layers_auto_params 100,000,000" in text


@pytest.mark.parametrize("argv", [["inspect"], ["inspect", "a", "b", "c"]])
def test_usage_errors_exit_with_status_3(argv):
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 3  # 2 means fail


def test_an_export_that_cannot_be_made_exits_with_status_3_not_a_verdicts_code(tmp_path, capsys):
    (tmp_path / "results/my-model").mkdir(parents=True)  # no target directory to export
    assert cli(["inspect", str(tmp_path / "results/my-model"), "--export-msprobe", str(tmp_path / "out")]) == 3
    assert "name one target directory" in capsys.readouterr().err


def test_a_model_name_alone_points_at_its_results_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "results/my-model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert cli(["inspect", "my-model"]) == 3
    assert capsys.readouterr().err.strip() == (
        "npu-adapt inspect: no such file or directory: my-model; did you mean results/my-model?"
    )
    assert cli(["inspect", "other"]) == 3
    assert capsys.readouterr().err.strip() == "npu-adapt inspect: no such file or directory: other"


def test_two_directories_without_an_index_exit_with_status_3_naming_the_directory(tmp_path, capsys):
    (tmp_path / "fp32/dump").mkdir(parents=True)
    (tmp_path / "fp32/dump/index.json").write_text("{}")
    (tmp_path / "bf16").mkdir()  # a target directory, not its dump
    assert cli(["inspect", str(tmp_path / "bf16"), str(tmp_path / "fp32/dump")]) == 3  # 1 would read as warn
    assert capsys.readouterr().err.startswith(f"npu-adapt inspect: {tmp_path / 'bf16'} holds no index.json: ")


def test_blocked_layers_say_why_instead_of_an_empty_table():
    import io

    from npu_adapt.inspect_text import print_layers

    # What compare writes for a model whose weights never came (a typo in an hf: id, offline).
    reason = "upstream reference blocked: upstream weights blocked: environment: download: DNS lookup failed"
    blocked = {"enabled": True, "status": "blocked", "mode": None, "reason": reason, "modules": 0, "rows": []}
    out = io.StringIO()
    print_layers(blocked, False, out)
    assert out.getvalue().strip() == f"layers: blocked ({reason})"
