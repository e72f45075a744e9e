"""Code fingerprints of the workflow's rules (docs/design.md "Re-runs"): the sha256 of the
library code a script reaches, a param of its rule, so that editing a module re-runs exactly
the rules whose scripts use it (Snakemake itself tracks the script file).

What a script reaches is read from the source with ``ast``, lazy imports inside functions
included, name by name:

- ``from npu_adapt.x import name`` / ``import npu_adapt.x``: module ``x`` and what it reaches;
- a package: the names taken from it. A name its ``__init__`` re-exports (``from .sub import
  name``) reaches ``sub`` (and the ``__init__`` text that says so), not the package's other
  modules; a name defined in the ``__init__`` reaches the ``__init__`` and what it imports.
  ``from npu_adapt import devices`` followed by ``devices.acquire_device(...)`` takes
  ``acquire_device``; a package used otherwise than through its attributes counts whole;
- relative imports (``from . import x``, ``from .sources import Source``) as their absolute
  spelling;
- npu_adapt.adapters counts all its modules: it loads its family modules by name.

Pure standard library (read by rules/common.smk when Snakemake parses the workflow).
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

LIBRARY = "npu_adapt"
# Packages that load their modules by name (importlib), unseen by ast: they count whole.
WHOLE_PACKAGES = {"npu_adapt.adapters"}


class Library:
    """The npu_adapt modules of one checkout (``root`` holds the npu_adapt folder)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, module: str) -> Path:
        return self.root.joinpath(*module.split("."))

    def is_package(self, module: str) -> bool:
        return (self.folder(module) / "__init__.py").is_file()

    def is_module(self, module: str) -> bool:
        return self.is_package(module) or self.folder(module).with_suffix(".py").is_file()

    def file_of(self, module: str) -> Path:
        return (
            self.folder(module) / "__init__.py" if self.is_package(module) else self.folder(module).with_suffix(".py")
        )

    def module_of(self, path: Path) -> str:
        parts = path.relative_to(self.root).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    def package_of(self, path: Path) -> str:
        """The package a file's relative imports start from."""
        module = self.module_of(path)
        return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _absolute(library: Library, path: Path, node: ast.ImportFrom) -> str:
    """The module an ``import from`` names, relative imports resolved against ``path``."""
    if not node.level:
        return node.module or ""
    base = library.package_of(path).split(".") if path.is_relative_to(library.root) else []
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _attributes_used(tree: ast.AST, name: str) -> set[str] | None:
    """The attributes a file takes from the local ``name`` (``name.attr``), or None when it
    also uses ``name`` otherwise (passed on, patched, ...): then the whole object counts."""
    attributes, other_uses = set(), 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
            attributes.add(node.attr)
            other_uses -= 1  # its Name node is walked too
        elif isinstance(node, ast.Name) and node.id == name:
            other_uses += 1
    return attributes if attributes and other_uses == 0 else None


def imports_of(library: Library, path: Path) -> list[tuple[str, frozenset[str] | None]]:
    """What one Python file imports from the library: ``(module, names)`` pairs, names None
    for the whole module."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(library, path, node)
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if alias.name != "*" and library.is_module(submodule):
                    names = (
                        _attributes_used(tree, alias.asname or alias.name) if library.is_package(submodule) else None
                    )
                    found.append((submodule, None if names is None else frozenset(names)))
                else:
                    found.append((module, None if alias.name == "*" else frozenset([alias.name])))
    return [(module, names) for module, names in found if module.split(".")[0] == LIBRARY]


def _reexports(library: Library, package: str) -> dict[str, tuple[str, str]]:
    """The names a package's ``__init__`` imports: name -> (module, name there)."""
    path = library.file_of(package)
    bindings = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            module = _absolute(library, path, node)
            for alias in node.names:
                bindings[alias.asname or alias.name] = (module, alias.name)
    return bindings


def reached_files(root: Path, script: Path) -> set[Path]:
    """Every library file the script ``script`` reaches (see the module's docstring)."""
    library = Library(root)
    files: set[Path] = set()
    followed: set[Path] = set()
    todo = [Path(script)]
    reexports = cache(lambda package: _reexports(library, package))

    def reach(module: str, names: frozenset[str] | None, seen: frozenset = frozenset()) -> None:
        if not library.is_module(module) or (module, names) in seen:
            return
        seen = seen | {(module, names)}
        if library.is_package(module) and module in WHOLE_PACKAGES:
            for path in sorted(library.folder(module).glob("*.py")):
                todo.append(path)
            return
        if not library.is_package(module) or names is None:
            todo.append(library.file_of(module))
            return
        for name in names:
            if library.is_module(f"{module}.{name}"):
                reach(f"{module}.{name}", None, seen)
            elif name in reexports(module) and reexports(module)[name][0] != module:
                files.add(library.file_of(module))  # its text says which object the name is
                source, original = reexports(module)[name]
                reach(source, frozenset([original]), seen)
            else:  # defined in the __init__ itself
                todo.append(library.file_of(module))

    while todo:
        path = todo.pop()
        if path in followed:
            continue
        followed.add(path)
        if path.is_relative_to(library.root / LIBRARY):
            files.add(path)
        for module, names in imports_of(library, path):
            reach(module, names)
    return files


def library_code(root: Path, script: Path) -> str:
    """Fingerprint of the library code that ``script`` reaches: sha256 over each file's path
    (relative to ``root``) and bytes."""
    digest = hashlib.sha256()
    for path in sorted(reached_files(root, script)):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
