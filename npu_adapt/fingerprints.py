"""Code fingerprints of the workflow's rules (docs/design.md "Re-running only what changed"):
the sha256 of the library code a script reaches, a param of its rule, so that editing a module
re-runs exactly the rules whose scripts use it (Snakemake itself tracks the script file).

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
from typing import NamedTuple

LIBRARY = "npu_adapt"
# Packages that load their modules by name (importlib), unseen by ast: they count whole.
WHOLE_PACKAGES = {"npu_adapt.adapters"}


class Library:
    """The npu_adapt modules of one checkout (``root`` holds the npu_adapt folder), as they are
    while one script's files are followed (what is a module is looked up once)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._packages: dict[str, bool] = {}
        self._modules: dict[str, bool] = {}

    def folder(self, module: str) -> Path:
        return self.root.joinpath(*module.split("."))

    def is_package(self, module: str) -> bool:
        if module not in self._packages:
            self._packages[module] = (self.folder(module) / "__init__.py").is_file()
        return self._packages[module]

    def is_module(self, module: str) -> bool:
        if module not in self._modules:
            self._modules[module] = self.is_package(module) or self.folder(module).with_suffix(".py").is_file()
        return self._modules[module]

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


class ParsedFile(NamedTuple):
    imports: list[ast.stmt]  # every import statement, lazy ones included
    attributes: dict[str, set[str]]  # the attributes taken from each local name (``name.attr``)
    other_uses: dict[str, int]  # how often each name is used otherwise
    top_level_from_imports: list[ast.ImportFrom]  # what a package's ``__init__`` re-exports


@cache
def _parse(path: Path, stamp: tuple[int, int]) -> ParsedFile:
    """One file's imports and name uses. Parsed once per process and version of the file
    (``stamp``: mtime and size): Snakemake parses the workflow with one call per rule."""
    tree = ast.parse(path.read_text())
    statements, attributes, other_uses = [], {}, {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            statements.append(node)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            attributes.setdefault(node.value.id, set()).add(node.attr)
            other_uses[node.value.id] = other_uses.get(node.value.id, 0) - 1  # its Name node is walked too
        elif isinstance(node, ast.Name):
            other_uses[node.id] = other_uses.get(node.id, 0) + 1
    top_level = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    return ParsedFile(statements, attributes, other_uses, top_level)


def imports_of(library: Library, path: Path) -> list[tuple[str, frozenset[str] | None]]:
    """What one Python file imports from the library: ``(module, names)`` pairs; names None
    for the whole module. A package imported as a name and used only through its attributes
    (``devices.acquire_device``) is taken as those names; used otherwise (passed on,
    patched), as a whole."""
    stat = path.stat()
    statements, attributes, other_uses, _ = _parse(path, (stat.st_mtime_ns, stat.st_size))
    found = []
    for node in statements:
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
            continue
        module = _absolute(library, path, node)
        if module.split(".")[0] != LIBRARY:
            continue
        for alias in node.names:
            submodule, local = f"{module}.{alias.name}", alias.asname or alias.name
            if alias.name == "*":
                found.append((module, None))
            elif library.is_package(submodule):
                used = attributes.get(local)
                found.append((submodule, frozenset(used) if used and not other_uses.get(local) else None))
            elif library.is_module(submodule):
                found.append((submodule, None))
            else:
                found.append((module, frozenset([alias.name])))
    return [(module, names) for module, names in found if module.split(".")[0] == LIBRARY]


def _reexports(library: Library, package: str) -> dict[str, tuple[str, str]]:
    """The names a package's ``__init__`` imports: name -> (module, name there)."""
    path = library.file_of(package)
    stat = path.stat()
    bindings = {}
    for node in _parse(path, (stat.st_mtime_ns, stat.st_size)).top_level_from_imports:
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
