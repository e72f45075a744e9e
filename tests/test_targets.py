"""Several targets in one run: the targets: mapping, results per model and target, the
leaderboard's rows, and the error budget against a CPU run in the same dtype."""

import csv
import re

import numpy as np
import pytest
import yaml
from conftest import REPO, copy_of, load, run_snakemake, tiny_config

from npu_adapt.compare import compare_dumps, error_ratio
from npu_adapt.config import MODEL_KEY, TARGET_KEY, ConfigError, legacy_target_message, model_targets, run_config
from npu_adapt.config_check import validate_config
from npu_adapt.io import dump_tensors, load_tensors, read_json, write_json

SCHEMA = REPO / "schemas" / "config.schema.yaml"


def validated(config: dict) -> dict:
    validate_config(config, SCHEMA)
    return config


def test_a_model_overrides_adds_and_drops_targets():
    config = validated(
        tiny_config(
            targets={"fp32": {"device": "cpu"}, "bf16": {"dtype": "bfloat16"}},
        )
    )
    config["models"]["tiny-convnext"]["targets"] = {"bf16": False, "strict": {"precision": "strict"}, "fp32": {}}
    bert, convnext = model_targets(config, "tiny-bert"), model_targets(config, "tiny-convnext")
    assert list(bert) == ["fp32", "bf16"]
    assert bert["fp32"].as_dict() == {"device": "cpu", "dtype": "float32", "precision": "default"}
    assert bert["bf16"].as_dict() == {"device": "auto", "dtype": "bfloat16", "precision": "default"}  # schema defaults
    assert list(convnext) == ["fp32", "strict"]
    assert convnext["strict"].as_dict() == {"device": "auto", "dtype": "float32", "precision": "strict"}
    reproduce = run_config(config, "tiny-convnext")
    assert reproduce["targets"] == {name: p.as_dict() for name, p in convnext.items()}
    assert "targets" not in reproduce["models"]["tiny-convnext"]
    config["models"]["tiny-bert"]["targets"] = {"fp32": False, "bf16": False}
    with pytest.raises(ConfigError, match="models.tiny-bert.targets: every target is dropped"):
        model_targets(config, "tiny-bert")
    # Dropping a target the run does not have is a typo, named, never a silent no-op.
    config["models"]["tiny-bert"]["targets"] = {"bf61": False}
    with pytest.raises(ConfigError, match=r"models.tiny-bert.targets.bf61: .* none named 'bf61'; targets: fp32, bf16"):
        model_targets(config, "tiny-bert")


def test_a_models_task_defaults_to_its_familys():
    families = {
        "timm_image": "image-classification",  # the class scores are logits, compared by top-1
        "hf_encoder": "feature-extraction",
        "hf_seq2seq": "text2text-generation",
        "hf_causal_lm": "text-generation",
    }
    models = {family: {"source": "local:m", "family": family} for family in families}
    models["set"] = {"source": "timm:m", "family": "timm_image", "task": "feature-extraction"}
    config = validated({"models": models})
    tasks = {name: entry["task"] for name, entry in config["models"].items()}
    assert tasks == {**families, "set": "feature-extraction"}


def test_a_config_with_the_old_single_target_is_refused_with_its_targets_equivalent():
    config = tiny_config(target={"device": "npu", "dtype": "bfloat16"})
    message = legacy_target_message(config)
    assert "`target:` is replaced by `targets:`" in message
    assert yaml.safe_load(message.split("Write instead:\n")[1]) == {
        "targets": {"bf16": {"device": "npu", "dtype": "bfloat16"}}
    }
    with pytest.raises(ConfigError, match="is replaced by `targets:`"):
        validate_config(config, SCHEMA)
    config = tiny_config()
    config["models"]["tiny-bert"]["target"] = {"dtype": "float16"}
    assert "models.tiny-bert.target" in legacy_target_message(config) and "fp16:" in legacy_target_message(config)


@pytest.mark.parametrize("name", ["reference", "layers", "cpu-same-dtype", "summary.json", "a/b"])
def test_a_target_name_that_cannot_be_its_own_directory_is_refused(name):
    with pytest.raises(ConfigError, match=f"targets: the name '{name}' is not allowed|targets.*{name}"):
        validated(tiny_config(targets={name: {"dtype": "float16"}}))


@pytest.mark.parametrize(
    ("wildcard", "refused", "allowed"),
    [
        (
            MODEL_KEY,
            ["all", "env.json", "leaderboard.csv", "report.html", "a/b"],
            ["all2", "report.html.d", "tiny-bert"],
        ),
        (TARGET_KEY, ["inputs", "layers", "cpu-same-dtype", "summary.json", "a/b"], ["layers2", "fp32", "bf16"]),
    ],
)
def test_a_wildcard_matches_the_names_the_schema_allows_and_none_it_refuses(wildcard, refused, allowed):
    assert not any(re.fullmatch(wildcard, name) for name in refused)
    assert all(re.fullmatch(wildcard, name) for name in allowed)


def test_the_error_ratio_and_why_it_is_undefined():
    assert error_ratio(0.03, 0.01) == (pytest.approx(3.0), None)
    assert error_ratio(0.0, 0.0) == (1.0, None)
    assert error_ratio(0.01, 0.0)[0] is None and "matches the reference exactly" in error_ratio(0.01, 0.0)[1]
    assert error_ratio(None, 0.01)[0] is None


# --- one run with two targets ------------------------------------------------------------


@pytest.fixture(scope="module")
def two_targets(tiny_run, tmp_path_factory):
    """The tiny models with an fp32 and a bf16 target on ``auto``; tiny-convnext drops bf16.
    A fake CUDA device (the device module's seam) makes ``auto`` an accelerator while the
    Snakefile plans the jobs, so bf16 gets its CPU same-dtype yardstick; in the job the
    device is then really resolved, and with no GPU here it runs on the CPU.
    The plan is a dry-run in an empty directory (every job of the config); the run itself goes
    on in a copy of the tiny run, whose jobs this config leaves unchanged (weights, inputs, the
    reference dumps) Snakemake keeps, as any re-run with a changed config does (tests/test_rerun.py)."""
    config = tiny_config(targets={"fp32": {"dtype": "float32"}, "bf16": {"dtype": "bfloat16"}})
    config["models"]["tiny-convnext"]["targets"] = {"bf16": False}
    fresh = tmp_path_factory.mktemp("two_targets_plan")
    env = {"NPU_ADAPT_FAKE_DEVICE_COUNT": "cuda:1", "NPU_ADAPT_LOCK_DIR": str(fresh / "locks")}
    plan = run_snakemake(fresh, "-n", "results/all", config=config, env=env).stdout
    workdir = copy_of(tiny_run, tmp_path_factory.mktemp("two_targets"))
    env["NPU_ADAPT_LOCK_DIR"] = str(workdir / "locks")
    run_snakemake(workdir, "results/all", config=config, env=env)
    return workdir, plan


@pytest.mark.e2e
def test_one_row_per_model_and_target_with_the_self_check_flagged(two_targets):
    workdir, plan = two_targets
    with open(workdir / "results/leaderboard.csv", newline="") as handle:
        rows = {(row["model"], row["target"]): row for row in csv.DictReader(handle)}
    assert sorted(rows) == [("tiny-bert", "bf16"), ("tiny-bert", "fp32"), ("tiny-convnext", "fp32")]
    for model in ("tiny-bert", "tiny-convnext"):
        fp32 = rows[(model, "fp32")]
        assert (fp32["self_check"], fp32["status"], fp32["target_dtype"]) == ("true", "self-check", "float32")
    bf16 = rows[("tiny-bert", "bf16")]
    assert (bf16["self_check"], bf16["status"], bf16["target_dtype"]) == ("false", "pass", "bfloat16")
    compare = load(workdir / "results/tiny-bert/bf16/compare.json")
    assert compare["criteria_class"] == "bfloat16" and compare["self_check"] is False  # its own dtype's criteria
    hidden = compare["outputs"]["last_hidden_state"]
    assert 1e-4 < hidden["rel_l2"] < 0.05 and hidden["dtype_target"] == "bfloat16"
    assert hidden["stored_dtype_target"] == "float32"  # bfloat16 widened exactly into the .npy
    # The summary covers every target of the model; the card names each.
    summary = load(workdir / "results/tiny-bert/summary.json")
    assert list(summary["targets"]) == ["fp32", "bf16"]
    assert summary["targets"]["bf16"]["accuracy"] == compare
    # The model's status: bf16's pass (fp32's self-check shows determinism only), convnext's own self-check.
    assert (summary["status"], summary["reason"]) == ("pass", None)
    convnext = load(workdir / "results/tiny-convnext/summary.json")
    assert list(convnext["targets"]) == ["fp32"] and convnext["status"] == "self-check"
    card = (workdir / "results/tiny-bert/README.md").read_text()
    assert "bf16" in card and "fp32" in card
    # The reference is dumped once per model; each target has its own dump, compare, benchmark.
    jobs = dict(line.split() for line in plan.split("Job stats:")[1].split("total")[0].splitlines()[3:] if line)
    assert jobs["dump_reference"] == "2" and jobs["dump_target"] == jobs["compare"] == jobs["benchmark"] == "3"
    assert jobs["dump_cpu_same_dtype"] == "1"  # bf16 of tiny-bert; fp32's yardstick is the reference itself


@pytest.mark.e2e
def test_the_error_budget_is_the_ratio_to_the_cpu_run_in_the_same_dtype(two_targets):
    workdir, _ = two_targets
    results = workdir / "results/tiny-bert"
    compare = load(results / "bf16/compare.json")
    assert compare["error_budget"] == {
        "cpu_same_dtype": "results/tiny-bert/cpu-same-dtype/bfloat16/index.json",
        "reason": None,
    }
    yardstick = load(results / "cpu-same-dtype/bfloat16/index.json")
    assert (yardstick["device"], yardstick["dtype"]) == ("cpu", "bfloat16")
    for name, metrics in compare["outputs"].items():
        # With no GPU the target also ran on the CPU in bfloat16: the very yardstick, ratio 1.
        assert metrics["cpu_same_dtype_rel_l2"] == metrics["rel_l2"] > 0, name
        assert metrics["error_ratio_vs_cpu_same_dtype"] == 1.0 and metrics["error_ratio_reason"] is None
    fp32 = load(results / "fp32/compare.json")
    assert fp32["error_budget"]["cpu_same_dtype"] is None
    assert "the reference is the CPU run in float32" in fp32["error_budget"]["reason"]
    with open(workdir / "results/leaderboard.csv", newline="") as handle:
        rows = {(row["model"], row["target"]): row for row in csv.DictReader(handle)}
    assert rows[("tiny-bert", "bf16")]["error_ratio_vs_cpu_same_dtype"] == "1.0"
    assert rows[("tiny-bert", "fp32")]["error_ratio_vs_cpu_same_dtype"] == "null"


@pytest.mark.e2e
def test_max_error_ratio_fails_a_target_well_inside_its_dtype_band(two_targets, tmp_path):
    """A target three times as far from the reference as the CPU bfloat16 run (2x the CPU
    run's own error added) still passes bfloat16's absolute band; max_error_ratio 1.5 fails it."""
    workdir, _ = two_targets
    results = workdir / "results/tiny-bert"
    reference, yardstick = results / "reference/index.json", results / "cpu-same-dtype/bfloat16/index.json"
    ref, cpu = load_tensors(reference), load_tensors(yardstick)
    worse = {name: cpu[name] + 2 * (cpu[name] - ref[name]) for name in ref}
    index = {key: value for key, value in read_json(yardstick).items() if key != "tensors"}
    index["tensors"] = dump_tensors(tmp_path / "worse", worse)
    for entry in index["tensors"]:
        entry["compute_dtype"] = "bfloat16"
    write_json(tmp_path / "worse/index.json", index)
    loose = compare_dumps("tiny-bert", reference, tmp_path / "worse/index.json", {}, {}, yardstick, None)
    strict = compare_dumps(
        "tiny-bert", reference, tmp_path / "worse/index.json", {"max_error_ratio": 1.5}, {}, yardstick, None
    )
    assert loose["status"] == "pass" and strict["status"] == "fail"
    for name, metrics in strict["outputs"].items():
        assert metrics["error_ratio_vs_cpu_same_dtype"] == pytest.approx(3.0, rel=0.02), name
        assert metrics["rel_l2"] < 0.04  # inside bfloat16's band: only the ratio fails it
        assert "error_ratio_vs_cpu_same_dtype 3 > max_error_ratio 1.5" in metrics["reason"]
    assert strict["criteria_source"]["max_error_ratio"] == "config (accuracy.max_error_ratio)"
    assert np.isclose(loose["outputs"]["pooler_output"]["rel_l2"], strict["outputs"]["pooler_output"]["rel_l2"])


@pytest.mark.e2e
def test_a_yardstick_that_did_not_come_leaves_max_error_ratio_unjudged_as_a_warn(two_targets, tmp_path):
    """The CPU same-dtype run blocked (out of memory on the host, say): with max_error_ratio set
    the output is a warn saying why, never a silent pass; without it, the reason is recorded."""
    workdir, _ = two_targets
    results = workdir / "results/tiny-bert"
    reference, target = results / "reference/index.json", results / "bf16/dump/index.json"
    cause = "run: OutOfMemoryError: CPU out of memory at batch size 1"
    index = {**read_json(results / "cpu-same-dtype/bfloat16/index.json"), "status": "blocked", "reason": cause}
    write_json(tmp_path / "blocked/index.json", {**index, "tensors": []})
    yardstick = tmp_path / "blocked/index.json"
    why = f"upstream cpu_same_dtype blocked: {cause}"
    strict = compare_dumps("tiny-bert", reference, target, {"max_error_ratio": 1.5}, {}, yardstick, None)
    assert strict["status"] == "warn" and strict["error_budget"]["reason"] == why
    for metrics in strict["outputs"].values():
        assert metrics["error_ratio_vs_cpu_same_dtype"] is None and metrics["error_ratio_reason"] == why
        assert metrics["status"] == "warn" and metrics["reason"].endswith(f"max_error_ratio not judged: {why}")
    loose = compare_dumps("tiny-bert", reference, target, {}, {}, yardstick, None)
    assert loose["status"] == "pass" and loose["error_budget"]["reason"] == why


@pytest.mark.e2e
def test_the_cards_reproduce_config_plans_nothing_on_the_run_it_describes(two_targets, tmp_path):
    """The card's configuration, saved as the card says and run with its command, finds the
    card up to date: its targets keep the config's order (fp32, then bf16), as the run had them."""
    workdir = copy_of(two_targets[0], tmp_path)
    card = (workdir / "results/tiny-bert/README.md").read_text()
    saved = yaml.safe_load(re.search(r"```yaml\n(.*?)```", card, re.S).group(1))
    assert list(saved["targets"]) == ["fp32", "bf16"] and list(saved["models"]) == ["tiny-bert"]
    (workdir / "tiny-bert.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    command = f"results/tiny-bert/README.md --configfile {workdir / 'tiny-bert.yaml'} --replace-workflow-config"
    assert command.replace(str(workdir) + "/", "") in card
    env = {"NPU_ADAPT_FAKE_DEVICE_COUNT": "cuda:1", "NPU_ADAPT_LOCK_DIR": str(workdir / "locks")}  # as the run had
    done = run_snakemake(workdir, "-n", *command.split(), env=env)
    assert "Nothing to be done" in done.stdout + done.stderr, done.stdout[-3000:]


@pytest.mark.e2e
def test_the_old_target_key_stops_snakemake_with_the_equivalent(tmp_path):
    done = run_snakemake(tmp_path, "-n", config=tiny_config(target={"dtype": "bfloat16"}), check=False)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "`target:` is replaced by `targets:`" in said and "bf16:" in said


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"targets": {"bf16": {"dtyp": "bfloat16"}}},
            "models.m.targets.bf16: Additional properties are not allowed ('dtyp'",
        ),
        ({"targets": {"bf16": {"dtype": "bf16"}}}, "models.m.targets.bf16.dtype: 'bf16' is not one of ['float32',"),
        (
            {"targets": {"bf16": True}},
            "models.m.targets.bf16: True is not valid: False was expected; or True is not of",
        ),
        ({"layers": "stat"}, "models.m.layers: 'stat' is not one of ['auto', 'stats', 'tensors']"),
    ],
)
def test_a_value_of_several_allowed_kinds_is_refused_naming_what_is_wrong(change, message):
    # Not jsonschema's "is not valid under any of the given schemas" (anyOf).
    config = {"models": {"m": {"source": "timm:m", "family": "timm_image", **change}}}
    with pytest.raises(ConfigError) as refused:
        validate_config(config, SCHEMA)
    assert message in str(refused.value)


def test_a_name_that_is_not_configured_is_refused_with_the_nearest_ones():
    config = validated(tiny_config(targets={"fp32": {"device": "cpu"}, "bf16": {"dtype": "bfloat16"}}))
    nearest = r"^no model 'tiny-bret' in the config; did you mean tiny-bert, tiny-convnext\?$"
    with pytest.raises(ConfigError, match=nearest):
        model_targets(config, "tiny-bret")
    with pytest.raises(ConfigError, match=r"^no target 'bf61' for model 'tiny-bert'; did you mean bf16\?$"):
        model_targets(config, "tiny-bert")["bf61"]
    with pytest.raises(ConfigError, match=r"^no target 'int8' for model 'tiny-bert'; configured: fp32, bf16$"):
        model_targets(config, "tiny-bert")["int8"]


@pytest.mark.e2e
def test_a_typo_in_a_requested_path_names_the_model_and_the_nearest_ones(tmp_path):
    # A bare KeyError from a rule's input function before: the typo is named, with the fix.
    done = run_snakemake(tmp_path, "-n", "results/tiny-bret/summary.json", config=tiny_config(), check=False)
    assert done.returncode != 0
    assert "no model 'tiny-bret' in the config; did you mean tiny-bert, tiny-convnext?" in done.stdout + done.stderr
