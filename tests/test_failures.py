"""Failure is data (docs/design.md): models that cannot be had, whose architecture is unknown or
cannot be built, whose forward raises, that run out of memory or out of disk end as
`blocked` with their reason in every later artifact and in the leaderboard, while the run
goes on and exits 0; `retry_blocked` runs them again, and nothing else. A crash in
npu-adapt's own code still fails its job, a dump or weight file changed after it was written
is an `error`, and a broken config.yaml stops everything before any job runs, in one sentence."""

import csv
import errno
import os
import re
import shutil

import numpy as np
import pytest
from broken_models import (
    BAD_FORWARD,
    DISK_FULL,
    FAILS,
    HEALTHY,
    NO_WEIGHTS,
    OUT_OF_MEMORY,
    TYPO_ARCH,
    broken_config,
)
from conftest import REPO, copy_of, load, run_snakemake, tiny_config

from npu_adapt import weights
from npu_adapt.config_types import DownloadSettings, ModelEntry
from npu_adapt.io import dump_tensors
from npu_adapt.jobs import TRACEBACK_MARK, ModelBlocked, disk_step, model_step

pytestmark = pytest.mark.e2e  # runs Snakemake or builds torch models

# Artifacts of one model, in the order the stages write them.
STAGES = (
    "inputs/index.json",
    "reference/index.json",
    "fp32/dump/index.json",
    "fp32/compare.json",
    "fp32/benchmark.json",
    "summary.json",
)


def leaderboard(workdir):
    with open(workdir / "results/leaderboard.csv") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


@pytest.mark.e2e
def test_the_healthy_model_passes_beside_the_broken_ones(broken_run):
    summary = load(broken_run / f"results/{HEALTHY}/summary.json")
    assert summary["status"] == "self-check" and "not a port" in summary["reason"]  # CPU float32 on both sides
    row = leaderboard(broken_run)[HEALTHY]
    assert row["status"] == "self-check" and float(row["latency_p50_ms_bs1"]) > 0


@pytest.mark.e2e
def test_weights_that_cannot_be_had_block_every_later_stage(broken_run):
    manifest = load(broken_run / f"weights/{NO_WEIGHTS}/manifest.json")
    assert manifest["status"] == "blocked" and manifest["pretrained"] is False
    assert "download" in manifest["reason"] and "offline" in manifest["reason"]
    for stage in STAGES:
        document = load(broken_run / f"results/{NO_WEIGHTS}/{stage}")
        assert document["status"] == "blocked", stage
        assert "offline" in document["reason"], stage  # the original reason is carried on
    row = leaderboard(broken_run)[NO_WEIGHTS]
    assert row["status"] == "blocked" and row["reason"].startswith("weights:") and "offline" in row["reason"]


@pytest.mark.e2e
def test_a_forward_that_raises_blocks_the_model_with_the_error(broken_run):
    inputs = load(broken_run / f"results/{BAD_FORWARD}/inputs/index.json")
    assert inputs["status"] == "ok" and inputs["tensors"][0]["shape"] == [1, 100]
    for dump in ("reference", "fp32/dump"):
        index = load(broken_run / f"results/{BAD_FORWARD}/{dump}/index.json")
        assert index["status"] == "blocked" and index["tensors"] == []
        assert index["reason"].startswith("forward: RuntimeError") and "traceback tail" in index["reason"]
    for stage in STAGES[3:]:
        document = load(broken_run / f"results/{BAD_FORWARD}/{stage}")
        assert document["status"] == "blocked" and "forward: RuntimeError" in document["reason"], stage
    row = leaderboard(broken_run)[BAD_FORWARD]
    assert row["status"] == "blocked" and row["reason"].startswith("reference: forward: RuntimeError")
    assert row["rel_l2"] == "null" and row["latency_p50_ms_bs1"] == "null"


@pytest.mark.e2e
def test_out_of_memory_at_every_batch_size_blocks_the_model(broken_run):
    compare = load(broken_run / f"results/{OUT_OF_MEMORY}/fp32/compare.json")
    assert compare["status"] == "self-check"  # batch 1 ran fine: only the benchmark cannot
    benchmark = load(broken_run / f"results/{OUT_OF_MEMORY}/fp32/benchmark.json")
    assert benchmark["status"] == "blocked"
    assert "no batch size fits in device memory" in benchmark["reason"] and "DeviceOutOfMemory" in benchmark["reason"]
    assert [(row["batch_size"], row["status"]) for row in benchmark["results"]] == [(4, "oom"), (8, "skipped")]
    summary = load(broken_run / f"results/{OUT_OF_MEMORY}/summary.json")
    assert summary["status"] == "blocked" and summary["reason"].startswith("fp32: benchmark:")
    row = leaderboard(broken_run)[OUT_OF_MEMORY]
    assert row["status"] == "blocked" and "DeviceOutOfMemory" in row["reason"]


@pytest.mark.e2e
def test_a_crash_in_our_own_code_fails_the_job_with_its_traceback_in_the_log(broken_run, tmp_path):
    workdir = copy_of(broken_run, tmp_path)
    # Input the code does not expect (not a model failure): reading it raises in our code.
    (workdir / f"results/{HEALTHY}/inputs/index.json").write_text("{not json")
    target = f"results/{HEALTHY}/reference/index.json"
    done = run_snakemake(workdir, target, check=False)
    assert done.returncode != 0
    assert "Error in rule dump_reference" in done.stderr + done.stdout
    log = (workdir / f"logs/{HEALTHY}/dump_reference.log").read_text()
    assert "crash in npu-adapt" in log and "Traceback (most recent call last)" in log
    assert "JSONDecodeError" in log
    assert not (workdir / target).exists()  # Snakemake removed the failed job's output


@pytest.mark.e2e
def test_a_bad_config_key_stops_the_run_before_any_job(tmp_path):
    config = tiny_config()
    config["models"]["tiny-bert"]["acuracy"] = {"rel_l2_max": 0.1}  # misspelt key
    done = run_snakemake(tmp_path, "results/all", config=config, check=False)
    assert done.returncode != 0
    assert "acuracy" in done.stderr and "Error validating config file" in done.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


@pytest.mark.e2e
def test_every_model_gets_a_leaderboard_row_beside_the_broken_ones(broken_run):
    rows = leaderboard(broken_run)
    assert set(rows) == set(broken_config()["models"])
    assert {model: row["status"] for model, row in rows.items()} == {
        HEALTHY: "self-check",  # CPU float32 on both sides
        NO_WEIGHTS: "blocked",
        BAD_FORWARD: "blocked",
        OUT_OF_MEMORY: "blocked",
        TYPO_ARCH: "blocked",
        DISK_FULL: "blocked",
        FAILS: "fail",  # a verdict on the port, beside the models that could not be judged
    }
    assert all(row["reason"] and row["reason"] != "null" for model, row in rows.items() if model != HEALTHY)


OFFLINE_FALLBACK = "(tried because download: FileNotFoundError: download.offline is true"


@pytest.mark.e2e
def test_an_unknown_architecture_blocks_its_model_with_the_nearest_names(broken_run):
    cause = (
        "random-init: SourceError: timm has no architecture 'convnxt_atto' (timm:convnxt_atto.fcmae_ft_in1k); "
        "did you mean convnext_atto, convnextv2_atto"
    )
    manifest = load(broken_run / f"weights/{TYPO_ARCH}/manifest.json")
    assert manifest["status"] == "blocked" and manifest["files"] == [] and manifest["dir"] is None
    assert manifest["reason"].startswith(cause) and OFFLINE_FALLBACK in manifest["reason"], manifest["reason"]
    assert TRACEBACK_MARK not in manifest["reason"]  # a typo is no crash: the message says it all
    assert not (broken_run / f"weights/{TYPO_ARCH}/random-init").exists()
    assert leaderboard(broken_run)[TYPO_ARCH]["reason"].startswith(f"weights: {cause}")
    assert "crash in npu-adapt" not in (broken_run / f"logs/{TYPO_ARCH}/fetch_weights.log").read_text()


def test_a_config_that_cannot_build_a_model_blocks_its_weights_with_the_cause(tmp_path):
    """The fetch stage itself, in this process (the broken run shows how a fetch's block reaches
    every later stage and the leaderboard): hidden_size 30 with 4 attention heads."""
    bert = tiny_config()["models"]["tiny-bert"]
    entry = ModelEntry(**{**bert, "arch_config": "tests/data/tiny-bert-bad-heads.json"})
    offline = DownloadSettings(timeout=30, retries=0, backoff=2, offline=True)
    manifest = weights.fetch("bad-heads", entry, tmp_path, offline, 0, REPO)
    assert manifest["status"] == "blocked" and manifest["files"] == [] and manifest["dir"] is None
    assert manifest["reason"].startswith(
        "random-init: ValueError: The hidden size (30) is not a multiple of the number of attention heads (4)"
    )
    assert OFFLINE_FALLBACK in manifest["reason"] and manifest["pretrained"] is False
    assert not (tmp_path / "bad-heads" / "random-init").exists()


@pytest.mark.e2e
def test_a_full_disk_blocks_only_the_model_being_written_and_says_it_is_the_environment(broken_run):
    manifest = load(broken_run / f"weights/{DISK_FULL}/manifest.json")
    assert manifest["status"] == "blocked"
    # safetensors writes through Rust: "I/O error: File too large (os error 27)", told apart by its errno.
    assert manifest["reason"].startswith("environment: file size limit exceeded (EFBIG): "), manifest["reason"]
    assert "(os error 27) (random-init) (tried because download:" in manifest["reason"]
    assert not (broken_run / f"weights/{DISK_FULL}/random-init").exists()  # the half-written file is gone
    assert leaderboard(broken_run)[DISK_FULL]["reason"].startswith("weights: environment: ")


def test_disk_full_while_writing_a_dump_is_an_environment_block(tmp_path):
    (tmp_path / "x.npy").symlink_to("/dev/full")  # every write there fails with ENOSPC
    with pytest.raises(
        ModelBlocked, match=r"^environment: disk full \(ENOSPC\).*: No space left on device \(writing the dump\)$"
    ):
        with disk_step("writing the dump"):
            dump_tensors(tmp_path, {"x": np.zeros(1000, dtype=np.float32)})
    with pytest.raises(ModelBlocked, match=r"^environment: disk full \(ENOSPC\)"):
        with model_step("save"), open("/dev/full", "wb") as handle:
            handle.write(b"\0" * 1000)
            handle.flush()
    with pytest.raises(OSError) as raised, disk_step("writing"):  # not a disk problem: ours, not caught
        open(tmp_path / "missing" / "x", "wb")
    assert raised.value.errno == errno.ENOENT


def test_a_bug_in_our_download_code_fails_instead_of_becoming_random_init(monkeypatch, tmp_path):
    def buggy_fetch_hub(*args, **kwargs):
        return {}["commit"]  # a bug of ours: KeyError, not a download failure

    monkeypatch.setattr(weights.download, "fetch_hub", buggy_fetch_hub)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    entry = {"source": "timm:test_convnext.r160_in1k", "family": "timm_image", "fallback": "random-init"}
    with pytest.raises(KeyError):
        weights.fetch(
            "m",
            ModelEntry(**entry),
            tmp_path,
            DownloadSettings(timeout=30, retries=0, backoff=2, offline=False),
            0,
            REPO,
        )
    assert not (tmp_path / "m" / "random-init").exists()


def blocked_stage_files(workdir) -> dict:
    return {
        path: path.stat().st_mtime_ns
        for path in sorted(workdir.glob("results/*/*.json")) + sorted(workdir.glob("results/*/*/index.json"))
    }


def models_run(done) -> set:
    return set(re.findall(r"wildcards: model=([\w.-]+)", done.stdout + done.stderr))


@pytest.mark.e2e
def test_retry_blocked_reruns_the_blocked_models_and_nothing_else(broken_run, tmp_path):
    workdir = copy_of(broken_run, tmp_path)
    config = broken_config()
    # A model blocked at its weights (three kinds), one at its benchmark, and the two that were
    # judged: the one blocked at its dumps would re-run as the benchmark's does.
    del config["models"][BAD_FORWARD]
    before = blocked_stage_files(workdir)
    dry = run_snakemake(workdir, "results/all", "-n", "--config", "retry_blocked=true", config=config)
    assert (
        f"weights/{DISK_FULL}/manifest.json" in dry.stdout + dry.stderr
        and "a real run re-runs" in dry.stdout + dry.stderr
    )
    assert blocked_stage_files(workdir) == before  # a dry run moves nothing
    # The disk has room again (no file size limit) and the device memory too (no fake OOM).
    done = run_snakemake(workdir, "results/all", "--cores", "2", "--config", "retry_blocked=true", config=config)
    assert models_run(done) == {NO_WEIGHTS, OUT_OF_MEMORY, TYPO_ARCH, DISK_FULL}
    after = blocked_stage_files(workdir)
    judged = [path for path in before if f"/{HEALTHY}/" in str(path) or f"/{FAILS}/" in str(path)]
    assert judged and all(after[path] == before[path] for path in judged)  # a fail is a verdict, not a block
    rows = leaderboard(workdir)
    assert rows[DISK_FULL]["status"] == "self-check" and rows[OUT_OF_MEMORY]["status"] == "self-check"
    assert rows[TYPO_ARCH]["status"] == "blocked" and rows[HEALTHY]["status"] == "self-check"
    # The weights CoaT shares between modules were saved once and load back to the same model.
    assert load(workdir / f"results/{DISK_FULL}/fp32/compare.json")["outputs"]["logits"]["rel_l2"] == 0.0
    assert (workdir / f"weights/{DISK_FULL}/manifest.json.blocked").is_file()  # the old reason stays readable
    again = run_snakemake(workdir, "results/all", config=config)
    assert models_run(again) == set()  # the retried outputs are settled: a plain run has nothing to do


@pytest.mark.e2e
def test_shared_and_tied_tensors_are_saved_once_and_load_back_identically(tmp_path):
    import torch
    from safetensors import safe_open

    from npu_adapt.adapters import get_adapter

    entries = {
        "coat": {"source": "timm:coat_lite_tiny", "family": "timm_image", "task": "image-classification", "inputs": {}},
        "t5": {
            "source": "hf:x/t5",
            "family": "hf_seq2seq",
            "arch_config": "tests/data/tiny-t5.json",
            "inputs": {"seq_len": 8, "decoder_len": 4, "max_new_tokens": 3},
        },
    }
    for name, entry in entries.items():
        adapter = get_adapter(ModelEntry(**entry), REPO)
        model = adapter.random_init(0)
        adapter.save(model, tmp_path / name)
        with safe_open(tmp_path / name / "model.safetensors", "pt") as saved:
            assert len(list(saved.keys())) < len(model.state_dict())  # shared tensors stored once
        loaded = adapter.load(tmp_path / name)
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (name, key)
        inputs = {key: torch.from_numpy(value) for key, value in adapter.make_inputs(tmp_path / name, 0).items()}
        with torch.inference_mode():
            expected, got = adapter.run(model, inputs), adapter.run(loaded, inputs)
        assert all(torch.equal(expected[key], got[key]) for key in expected)


@pytest.mark.e2e
def test_a_tampered_dump_or_weight_file_is_an_error_never_a_pass(tiny_run, tmp_path, monkeypatch):
    workdir = copy_of(tiny_run, tmp_path)
    # The reference logits nudged by one ulp (rel_l2 ~1e-7: it would pass), same size, mtime put back.
    reference = workdir / "results/tiny-convnext/reference/logits.npy"
    target = workdir / "results/tiny-convnext/fp32/dump/logits.npy"
    stat = reference.stat()
    np.save(reference, np.nextafter(np.load(reference), np.float32(np.inf)))
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert reference.stat().st_size == stat.st_size
    # One byte of the weights changed, same size, mtime put back: caught by the full hash of a small file.
    safetensors = workdir / "weights/tiny-bert/random-init/model.safetensors"
    stat = safetensors.stat()
    data = bytearray(safetensors.read_bytes())
    data[-1] ^= 0x01
    safetensors.write_bytes(bytes(data))
    os.utime(safetensors, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    run_snakemake(
        workdir,
        "results/all",
        "-R",
        "results/tiny-convnext/fp32/compare.json",
        "results/tiny-bert/reference/index.json",
        config=tiny_config(),
    )
    compare = load(workdir / "results/tiny-convnext/fp32/compare.json")
    assert compare["status"] == "error"
    assert (
        compare["reason"].startswith("logits: integrity: ")
        and f"{reference.relative_to(workdir)}: sha256 " in compare["reason"]
        and "(changed)" in compare["reason"]
    )
    assert compare["outputs"]["logits"]["pass"] is False and compare["outputs"]["features"]["pass"] is True
    bert = load(workdir / "results/tiny-bert/reference/index.json")
    assert bert["status"] == "error" and bert["tensors"] == []
    assert bert["reason"].startswith("load: WeightsMismatch: ") and "model.safetensors: sha256 " in bert["reason"]
    assert "--forcerun weights/tiny-bert/manifest.json" in bert["reason"]  # the per-model fix
    rows = leaderboard(workdir)
    assert (
        rows["tiny-convnext"]["status"] == "error"
        and "reference/logits.npy: sha256 " in rows["tiny-convnext"]["reason"]
    )
    assert rows["tiny-bert"]["status"] == "error" and rows["tiny-bert"]["reason"].startswith("reference: load:")
    # inspect checks the same records and says so.
    from npu_adapt.__main__ import main

    monkeypatch.chdir(workdir)
    assert main(["inspect", "results/tiny-convnext"]) == 3  # error
    assert main(["inspect", str(target.relative_to(workdir)), str(reference.relative_to(workdir))]) == 3
    assert main(["inspect", "results/tiny-bert/inputs"]) == 0


@pytest.mark.e2e
def test_a_dump_deleted_after_its_run_makes_the_card_an_error_and_keeps_the_leaderboard(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    gone = workdir / "results/tiny-convnext/fp32/dump/logits.npy"
    gone.unlink()
    run_snakemake(workdir, "results/all", "--forcerun", "results/tiny-convnext/summary.json", config=tiny_config())
    summary = load(workdir / "results/tiny-convnext/summary.json")
    assert summary["status"] == "error" and f"{gone.relative_to(workdir)}: missing" in summary["reason"]
    assert not any(entry["path"].endswith("fp32/dump/logits.npy") for entry in summary["evidence"])
    rows = leaderboard(workdir)
    assert rows["tiny-convnext"]["status"] == "error" and rows["tiny-bert"]["status"] == "self-check"


@pytest.mark.e2e
def test_inspect_reports_integrity(tiny_run, tmp_path, capsys):
    from npu_adapt.__main__ import main

    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run / "results/tiny-bert", workdir / "tiny-bert")
    assert main(["inspect", str(workdir / "tiny-bert")]) == 0
    assert "integrity: all 3 files match the size and sha256 recorded in index.json" in capsys.readouterr().out
    dump = workdir / "tiny-bert/fp32/dump/pooler_output.npy"
    dump.write_bytes(dump.read_bytes()[:-4])
    assert main(["inspect", str(workdir / "tiny-bert")]) == 3
    out = capsys.readouterr().out
    assert f"integrity ERROR: {dump}: " in out and "bytes, expected" in out and "(truncated or changed)" in out
    assert main(["inspect", str(workdir / "tiny-bert/fp32/dump")]) == 3


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models:\n  all: {source: 'timm:test_convnext', family: timm_image}\n",
            "Error validating config file: models: the name 'all' is not allowed: "
            "it is a file of the whole run under results/",
        ),
        ("models:\n", "Error validating config file: `models:` is empty; list at least one model under it"),
        (  # the schema takes the scheme; a name the fetch job could not parse stops the run here
            "models:\n  gpt: {source: 'hf:gpt2', family: hf_causal_lm}\n",
            "config.yaml: models.gpt.source: source 'hf:gpt2': expected hf:ORG/NAME[@REVISION]",
        ),
        ("seed: 1\n", "Error validating config file: 'models' is a required property"),
        (
            "models:\n  a: {source: 'timm:x'\n  b: 1\n",
            "config.yaml: YAML syntax error at line 3, column 3: while parsing a flow mapping: expected ',' or '}'",
        ),
    ],
)
def test_config_errors_are_one_sentence_naming_the_problem(tmp_path, text, expected):
    (tmp_path / "config.yaml").write_text(text)
    done = run_snakemake(tmp_path, "results/all", "-n", check=False)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert expected in output, output
    assert "On schema" not in output and len(output.splitlines()) < 15  # not the whole schema


def test_integrity_hashes_small_files_always_and_large_ones_when_their_mtime_moved(tmp_path):
    from npu_adapt import integrity
    from npu_adapt.io import sha256_file

    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(2 << 20))
    stat = path.stat()
    record = {"sha256": sha256_file(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        integrity.configure({"integrity": {"full_hash_below_mb": 1}})  # a 2 MB file is "large"
        assert integrity.file_problem(path, record) is None
        with open(path, "r+b") as handle:  # same size, one byte changed, mtime put back
            handle.write(b"\xff" if handle.read(1) != b"\xff" else b"\x00")
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert integrity.file_problem(path, record) is None  # the documented blind spot: large, stat unchanged
        assert "sha256" in integrity.file_problem(path, record, always_hash=True)
        integrity.configure({"integrity": {"full_hash_below_mb": 4}})  # now under the threshold: always hashed
        assert re.fullmatch(
            r".*weights\.bin: sha256 \w{16}\.\.\., expected \w{16}\.\.\. \(changed\)",
            integrity.file_problem(path, record),
        )
        integrity.configure({"integrity": {"full_hash_below_mb": 1}})
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # the mtime moved: hashed although large
        assert "(changed)" in integrity.file_problem(path, record)
        path.write_bytes(b"short")
        assert integrity.file_problem(path, record).endswith(f"5 bytes, expected {2 << 20} (truncated or changed)")
    finally:
        integrity.configure(None)
