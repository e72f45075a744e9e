"""Weight sources: the ``SCHEME:NAME[@REVISION]`` strings of the config, parsed here and only
here (:class:`Source`), and the directories that ``local:`` and ``pkg:`` sources name."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("hf", "modelscope", "timm", "local", "pkg")
HUB_SCHEMES = ("hf", "modelscope", "timm")


class SourceError(ValueError):
    """A source names something that cannot hold weights: a ``local:`` or ``pkg:`` path, or a
    ``timm:`` architecture timm does not have."""


@dataclass
class Source:
    scheme: str  # hf, modelscope, timm, local, pkg
    name: str
    revision: str | None

    @classmethod
    def parse(cls, text: str) -> Source:
        scheme, sep, rest = text.partition(":")
        if not sep or scheme not in SCHEMES or not rest:
            raise ValueError(f"source {text!r}: expected hf:, modelscope:, timm:, local: or pkg: and a name")
        if scheme not in HUB_SCHEMES:
            return cls(scheme, rest, None)  # a path may contain '@'
        name, _, revision = rest.partition("@")
        parts = name.split("/")
        if not all(parts) or len(parts) != (1 if scheme == "timm" else 2):
            expected = "timm:ARCH.TAG" if scheme == "timm" else f"{scheme}:ORG/NAME"
            raise ValueError(f"source {text!r}: expected {expected}[@REVISION]")
        return cls(scheme, name, revision or None)


def resolve_installed(source: Source) -> tuple[Path, dict]:
    """The directory a ``local:`` or ``pkg:`` source names, and its provenance.

    ``local:PATH``: ``~`` is expanded, a relative path is taken from the working directory
    (where results/ and weights/ are), symlinks are resolved; it must be an existing directory.
    ``pkg:PACKAGE/SUBDIR``: a directory inside the installed package, never outside it."""
    if source.scheme == "local":
        path = Path(source.name).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"local:{source.name}: {path} does not exist")
        if not path.is_dir():
            raise NotADirectoryError(
                f"local:{source.name}: {path} is a file; name the directory holding config.json and the weights"
            )
        return path, {}
    package, _, subdir = source.name.partition("/")
    spec = importlib.util.find_spec(package) if all(p.isidentifier() for p in package.split(".")) else None
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"pkg:{source.name}: no installed Python package {package!r}")
    root = Path(list(spec.submodule_search_locations)[0]).resolve()
    path = (root / subdir).resolve()
    if not path.is_relative_to(root):
        raise SourceError(f"pkg:{source.name}: {path} is outside the package {root}")
    if not path.is_dir():
        raise FileNotFoundError(f"pkg:{source.name}: the package has no directory {subdir!r} ({path})")
    distributions = importlib.metadata.packages_distributions().get(package) or [package]
    try:
        version = importlib.metadata.version(distributions[0])
    except importlib.metadata.PackageNotFoundError:
        version = None
    return path, {"package": {"name": distributions[0], "version": version}}
