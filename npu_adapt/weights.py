"""Weights from every source (DESIGN.md "Weights"), with a manifest of what was loaded.

Sources: ``hf:ORG/NAME[@REV]``, ``modelscope:ORG/NAME[@REV]``, ``timm:ARCH.TAG`` (the
``timm/ARCH.TAG`` repository of the Hugging Face hub), ``local:PATH`` and
``pkg:PACKAGE/SUBDIR``. When a download fails and the entry allows it
(``fallback: random-init``), the architecture is built with a fixed seed and materialised
as safetensors under ``weights/{model}/random-init/``; the manifest then says
``pretrained: false`` with the download error as the reason.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from npu_adapt.io import sha256_file

log = logging.getLogger("npu_adapt")

DEFAULT_PATTERNS = ["config.json", "*.safetensors", "tokenizer*", "vocab*", "special_tokens_map.json", "spiece.model", "merges.txt"]


@dataclass
class Source:
    scheme: str  # hf, modelscope, timm, local, pkg
    name: str
    revision: str | None

    @classmethod
    def parse(cls, text: str) -> "Source":
        scheme, sep, rest = text.partition(":")
        if not sep or scheme not in ("hf", "modelscope", "timm", "local", "pkg"):
            raise ValueError(f"source {text!r}: expected hf:, modelscope:, timm:, local: or pkg:")
        name, _, revision = rest.partition("@") if scheme in ("hf", "modelscope", "timm") else (rest, "", "")
        return cls(scheme, name, revision or None)

    @property
    def hub_repo(self) -> str:
        return f"timm/{self.name}" if self.scheme == "timm" else self.name


def list_files(directory: Path) -> list[dict]:
    """Every regular file under ``directory`` with its size and sha256 (sorted by path)."""
    files = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and ".cache" not in p.parts):
        files.append({"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)})
    return files


def download(source: Source, dest: Path, entry: dict, settings: dict) -> Path:
    """Fetch ``source`` into ``dest``; raise on failure (the caller decides what follows)."""
    patterns = entry.get("allow_patterns") or DEFAULT_PATTERNS
    if source.scheme in ("hf", "timm"):
        from huggingface_hub import snapshot_download

        log.info("downloading %s (revision %s) from the Hugging Face hub into %s", source.hub_repo, source.revision or "main", dest)
        snapshot_download(
            source.hub_repo,
            revision=source.revision,
            local_dir=str(dest),
            allow_patterns=patterns,
            etag_timeout=settings.get("timeout", 60),
        )
        return dest
    if source.scheme == "modelscope":
        if importlib.util.find_spec("modelscope") is None:
            raise ModuleNotFoundError("modelscope is not installed (pip install modelscope)")
        from modelscope import snapshot_download as ms_download

        log.info("downloading %s from ModelScope into %s", source.name, dest)
        ms_download(source.name, revision=source.revision, local_dir=str(dest), allow_patterns=patterns)
        return dest
    raise ValueError(f"{source.scheme}: is not a download source")


def resolve_installed(source: Source, base_dir: Path) -> Path:
    """The directory a ``local:`` or ``pkg:`` source names; it must exist."""
    if source.scheme == "local":
        path = (base_dir / Path(source.name).expanduser()).resolve()
        if not path.exists():
            raise FileNotFoundError(f"local: weights path {path} does not exist")
        return path
    package, _, subdir = source.name.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"pkg: Python package {package!r} is not installed")
    path = (Path(list(spec.submodule_search_locations)[0]) / subdir).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"pkg: {package} has no directory {subdir!r} ({path})")
    return path


def materialise_random_init(entry: dict, dest: Path, seed: int, base_dir: Path) -> None:
    """Build the architecture with ``seed`` and save it, so every later job loads the same
    bytes (reference and target then differ only in device and dtype)."""
    from npu_adapt.adapters import get_adapter

    adapter = get_adapter(entry, base_dir)
    log.info("building %s architecture with seed %d (random init)", entry["family"], seed)
    model = adapter.random_init(seed)
    adapter.save(model, dest)


def fetch(model: str, entry: dict, weights_root: Path, settings: dict, seed: int, base_dir: Path) -> dict:
    """Make the model's weights available locally; return its manifest."""
    from npu_adapt.jobs import describe_exception

    source = Source.parse(entry["source"])
    manifest = {
        "model": model,
        "source": entry["source"],
        "revision": source.revision,
        "pretrained": True,
        "reason": None,
        "trust_remote_code": bool(entry.get("trust_remote_code", False)),
        "status": "ok",
    }
    if source.scheme in ("local", "pkg"):
        directory = resolve_installed(source, base_dir)
    else:
        directory = weights_root / model / "download"
        try:
            if settings.get("offline"):
                raise ConnectionError("download.offline is true: no download attempted")
            download(source, directory, entry, settings)
        except Exception as exc:
            reason = describe_exception(exc, "download")
            log.warning("download of %s failed: %s", entry["source"], reason)
            if entry.get("fallback") != "random-init":
                manifest.update(status="blocked", pretrained=False, reason=reason, dir=None, files=[])
                return manifest
            directory = weights_root / model / "random-init"
            materialise_random_init(entry, directory, seed, base_dir)
            manifest.update(pretrained=False, reason=f"random-init (seed {seed}) because {reason}", seed=seed)
    manifest["dir"] = str(directory)
    manifest["files"] = list_files(directory)
    log.info("%d weight files, %.1f MB, in %s", len(manifest["files"]), sum(f["bytes"] for f in manifest["files"]) / 1e6, directory)
    return manifest
