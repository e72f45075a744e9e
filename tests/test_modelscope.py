"""modelscope: sources downloaded by the real ModelScope client from a ModelScope look-alike on
127.0.0.1 (tests/modelscope_server.py), reached through MODELSCOPE_ENDPOINT: manifest, sha256
against the hub's listing, repair of a changed file, 404 ending blocked or in the random-init
fallback, and retries of a failing listing."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

# One listing attempt inside the client, so these tests see our own retries (download.retries)
# alone; read by modelscope_hub when first imported (npu_adapt.weights.download imports it lazily).
os.environ.setdefault("MODELSCOPE_REPO_TREE_PAGE_MAX_ATTEMPTS", "1")

import pytest
import torch
from conftest import REPO
from modelscope_server import ModelScopeServer

from npu_adapt.adapters import get_adapter
from npu_adapt.config_types import DownloadSettings, ModelEntry
from npu_adapt.weights import RECORD, fetch, verified_dir
from npu_adapt.weights.download import modelscope_endpoint

pytestmark = pytest.mark.e2e  # builds torch models

GPT2_ENTRY = {
    "source": "modelscope:npu-adapt/tiny-gpt2",
    "family": "hf_causal_lm",
    "arch_config": "npu_adapt/model_configs/tiny-gpt2.json",
    "fallback": "none",
}
QUICK = DownloadSettings(timeout=10, retries=2, backoff=0.05, offline=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The look-alike serving a GPT-2 built from the shipped tiny-gpt2 config (seed 3), with a
    README and a pickle a fetch must skip, at revisions master and v1.0."""
    root = tmp_path_factory.mktemp("modelscope")
    adapter = get_adapter(ModelEntry(**GPT2_ENTRY), REPO)
    model = adapter.random_init(3)
    adapter.save(model, root / "gpt2")
    (root / "gpt2" / "README.md").write_text("# tiny-gpt2\n")
    torch.save(model.state_dict(), root / "gpt2" / "pytorch_model.bin")  # safetensors win
    with ModelScopeServer() as server:
        server.add_repo("npu-adapt/tiny-gpt2", root / "gpt2", revisions=("master", "v1.0"))
        server.root = root
        yield server


@pytest.fixture
def endpoint(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", hub.url)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "modelscope_cache"))
    hub.requests.clear()
    return hub


def test_endpoint_setting_is_read_as_the_client_reads_it(monkeypatch):
    monkeypatch.delenv("MODELSCOPE_ENDPOINT", raising=False)
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "mirror.example.cn")  # the older clients' setting
    with pytest.warns(FutureWarning):
        assert modelscope_endpoint() == "https://mirror.example.cn"
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://127.0.0.1:9/")
    assert modelscope_endpoint() == "http://127.0.0.1:9"


def test_download_manifest_sha256_revision_and_repair(endpoint, tmp_path, caplog):
    hub = endpoint
    entry = {**GPT2_ENTRY, "source": "modelscope:npu-adapt/tiny-gpt2@v1.0"}
    with caplog.at_level("INFO", logger="npu_adapt"):
        manifest = fetch("gpt2", ModelEntry(**entry), tmp_path, QUICK, 0, REPO)
    assert any(m.startswith("download model.safetensors: 100%") for m in caplog.messages), (
        caplog.messages
    )  # progress in the log
    assert manifest["status"] == "ok" and manifest["pretrained"] is True and manifest["reason"] is None
    assert manifest["endpoint"] == hub.url and manifest["revision"] == "v1.0"
    assert manifest["verification"] == "every file's sha256 matches the source's listing"
    served = hub.repos["npu-adapt/tiny-gpt2"].files
    # Safetensors and config only: no README (not a default pattern), no pickle beside safetensors.
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        name: sha256(served[name]) for name in ("config.json", "model.safetensors")
    }
    assert all("Revision=v1.0" in path for _, path in hub.requests if path.startswith("/api/v1/models/"))
    directory = verified_dir(manifest)
    assert directory == tmp_path / "gpt2" / "download" and (directory / RECORD).is_file()
    # The downloaded weights are the served model's, bit for bit.
    adapter = get_adapter(ModelEntry(**entry), REPO)
    loaded = adapter.load(directory).state_dict()
    original = adapter.load(hub.root / "gpt2").state_dict()
    assert loaded.keys() == original.keys() and all(torch.equal(loaded[k], original[k]) for k in loaded)

    # Unchanged files are not downloaded again; a changed one (same size) is, and matches again.
    downloads = hub.downloads("npu-adapt/tiny-gpt2")
    again = fetch("gpt2", ModelEntry(**entry), tmp_path, QUICK, 0, REPO)
    assert hub.downloads("npu-adapt/tiny-gpt2") == downloads and again["files"] == manifest["files"]
    weights = directory / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(255 - b for b in data[-8:])
    weights.write_bytes(bytes(data))
    repaired = fetch("gpt2", ModelEntry(**entry), tmp_path, QUICK, 0, REPO)
    assert hub.downloads("npu-adapt/tiny-gpt2", "model.safetensors") == 2
    assert sha256(weights.read_bytes()) == sha256(served["model.safetensors"])
    assert [f["sha256"] for f in repaired["files"]] == [f["sha256"] for f in manifest["files"]]


def test_not_found_is_blocked_or_falls_back_without_retries(endpoint, tmp_path):
    hub = endpoint
    missing = {**GPT2_ENTRY, "source": "modelscope:npu-adapt/no-such-model"}
    blocked = fetch("missing", ModelEntry(**missing), tmp_path, QUICK, 0, REPO)
    assert blocked["status"] == "blocked" and blocked["pretrained"] is False and blocked["files"] == []
    assert "not found (HTTP 404)" in blocked["reason"] and "gave up after 1 attempt]" in blocked["reason"]
    assert hub.listings("npu-adapt/no-such-model") == 1  # a 404 is never retried
    assert (
        fetch(
            "rev", ModelEntry(**{**GPT2_ENTRY, "source": "modelscope:npu-adapt/tiny-gpt2@v9"}), tmp_path, QUICK, 0, REPO
        )["status"]
        == "blocked"
    )

    fallback = fetch("missing", ModelEntry(**{**missing, "fallback": "random-init"}), tmp_path, QUICK, 5, REPO)
    assert fallback["status"] == "ok" and fallback["pretrained"] is False and fallback["seed"] == 5
    assert (
        fallback["reason"].startswith("random-init (seed 5) because download: DownloadError")
        and "HTTP 404" in fallback["reason"]
    )
    assert {f["path"] for f in fallback["files"]} == {"config.json", "model.safetensors"}
    config = (tmp_path / "missing" / "random-init" / "config.json").read_text()
    assert config == (REPO / "npu_adapt/model_configs/tiny-gpt2.json").read_text()


def test_failing_listing_is_retried_then_gives_up(endpoint, tmp_path):
    hub = endpoint
    hub.fail_listing["npu-adapt/tiny-gpt2"] = 2
    manifest = fetch(
        "gpt2", ModelEntry(**GPT2_ENTRY), tmp_path, QUICK, 0, REPO
    )  # retries: 2, so the third listing answers
    assert manifest["status"] == "ok" and manifest["pretrained"] is True
    assert hub.listings("npu-adapt/tiny-gpt2") == 3 + 1  # ours (two 503s, then the listing), snapshot_download's

    hub.requests.clear()
    hub.fail_listing["npu-adapt/tiny-gpt2"] = 10
    gone = fetch("gpt2-blocked", ModelEntry(**GPT2_ENTRY), tmp_path, replace(QUICK, retries=1), 0, REPO)
    assert (
        gone["status"] == "blocked"
        and "server error (HTTP 503)" in gone["reason"]
        and "gave up after 2 attempts" in gone["reason"]
    )
    assert hub.listings("npu-adapt/tiny-gpt2") == 2
    hub.fail_listing.clear()
