"""Code fingerprints (npu_adapt.fingerprints, the ``code`` param of every rule through
rules/common.smk's library_code): editing a library module changes the fingerprint of exactly
the scripts that reach it. Computed over copies of the library, without Snakemake
(tests/test_rerun.py checks the re-runs they cause in a real workflow)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import REPO

from npu_adapt.fingerprints import library_code, reached_files

SCRIPTS = (
    "fetch_weights.py",
    "make_inputs.py",
    "dump_outputs.py",
    "compare.py",
    "benchmark.py",
    "check_env.py",
    "summarize.py",
    "leaderboard.py",
)


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for part in ("npu_adapt", "scripts"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def fingerprints(root: Path) -> dict[str, str]:
    return {script: library_code(root, root / "scripts" / script) for script in SCRIPTS}


def changed_by_editing(root: Path, module: str) -> set[str]:
    before = fingerprints(root)
    with open(root / "npu_adapt" / module, "a") as handle:
        handle.write("\n# an edit\n")
    after = fingerprints(root)
    return {script for script in SCRIPTS if before[script] != after[script]}


def test_a_download_edit_reruns_the_fetch_alone_and_a_pool_edit_not_the_comparison(tmp_path):
    root = checkout(tmp_path)
    # Dumps and benchmarks load weights through weights.verify (verified_dir), never the download code.
    assert changed_by_editing(root, "weights/download.py") == {"fetch_weights.py"}
    assert changed_by_editing(root, "weights/verify.py") == {
        "fetch_weights.py",
        "make_inputs.py",
        "dump_outputs.py",
        "benchmark.py",
    }
    # The device pool: the jobs that take a device; the comparison reads files only.
    assert changed_by_editing(root, "devices/pool.py") == {"dump_outputs.py", "benchmark.py"}
    # The environment report: check_env (and the jobs recording the device's name).
    assert "check_env.py" in changed_by_editing(root, "devices/report.py")
    assert "compare.py" not in changed_by_editing(root, "devices/runtime.py")
    # The adapters load their families by name: any family module counts for every model job.
    assert changed_by_editing(root, "adapters/hf_seq2seq.py") == {
        "fetch_weights.py",
        "make_inputs.py",
        "dump_outputs.py",
        "benchmark.py",
    }


def test_a_stage_module_edit_reruns_its_own_rule_alone(tmp_path):
    root = checkout(tmp_path)
    assert changed_by_editing(root, "compare_stage.py") == {"compare.py"}
    assert changed_by_editing(root, "benchmark_stage.py") == {"benchmark.py"}
    assert changed_by_editing(root, "plots.py") == {"benchmark.py"}
    assert changed_by_editing(root, "leaderboard_stage.py") == {"leaderboard.py"}
    assert changed_by_editing(root, "html_board.py") == {"leaderboard.py"}  # not the summaries


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_relative_imports_and_reexports_reach_only_the_modules_that_define_the_names(tmp_path):
    write(
        tmp_path,
        {
            "npu_adapt/pkg/__init__.py": "from .a import used\nfrom . import b\n\n\ndef own():\n    from .c import x\n",
            "npu_adapt/pkg/a.py": "from ..helper import h\n\n\ndef used():\n    return h\n",
            "npu_adapt/pkg/b.py": "B = 1\n",
            "npu_adapt/pkg/c.py": "x = 1\n",
            "npu_adapt/helper.py": "h = 1\n",
            "scripts/name.py": "from npu_adapt.pkg import used\n",
            "scripts/attribute.py": "from npu_adapt import pkg\n\npkg.used()\n",
            "scripts/whole.py": "from npu_adapt import pkg\n\nprint(pkg)\n",
            "scripts/own.py": "from npu_adapt.pkg import own\n",
            "scripts/submodule.py": "from npu_adapt.pkg import b\n",
        },
    )

    def reached(script: str) -> set[str]:
        return {
            path.relative_to(tmp_path / "npu_adapt").as_posix()
            for path in reached_files(tmp_path, tmp_path / "scripts" / script)
        }

    # A re-exported name: the module defining it (relative imports followed), and the __init__ naming it.
    assert reached("name.py") == {"pkg/__init__.py", "pkg/a.py", "helper.py"}
    assert reached("attribute.py") == reached("name.py")
    # The package used as an object, or a name defined in its __init__: the __init__ and all it imports.
    assert (
        reached("whole.py") == reached("own.py") == {"pkg/__init__.py", "pkg/a.py", "pkg/b.py", "pkg/c.py", "helper.py"}
    )
    assert reached("submodule.py") == {"pkg/b.py"}
    before = library_code(tmp_path, tmp_path / "scripts" / "name.py")
    (tmp_path / "npu_adapt/pkg/c.py").write_text("x = 2\n")
    assert library_code(tmp_path, tmp_path / "scripts" / "name.py") == before
    (tmp_path / "npu_adapt/helper.py").write_text("h = 2\n")
    assert library_code(tmp_path, tmp_path / "scripts" / "name.py") != before
