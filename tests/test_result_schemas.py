"""Every JSON file the workflow writes matches its schema in schemas/results/ (the contract's
exact keys, docs/design.md "JSON shapes"): the files of a real tiny run, and the documents of
the paths a complete run does not take (a failed and a blocked comparison)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import REPO
from referencing import Registry, Resource

from npu_adapt.compare import compare_dumps
from npu_adapt.io import dump_tensors, write_json

SCHEMAS = REPO / "schemas" / "results"

# Which schema each file of a run answers to (paths relative to the run's directory).
SCHEMA_OF = {
    "weights/*/manifest.json": "manifest",
    "results/env.json": "env",
    "results/*/inputs/index.json": "index",
    "results/*/reference/index.json": "index",
    "results/*/*/dump/index.json": "index",
    "results/*/*/compare.json": "compare",
    "results/*/*/benchmark.json": "benchmark",
    "results/*/summary.json": "summary",
    "results/all": "run-manifest",
}


def load_schemas() -> dict[str, dict]:
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text()) for path in SCHEMAS.glob("*.schema.json")
    }


def validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator of schema ``name``; the others resolve its $refs (summary embeds compare
    and benchmark)."""
    schemas = load_schemas()
    registry = Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in schemas.values())
    return jsonschema.Draft202012Validator(schemas[name], registry=registry, format_checker=jsonschema.FormatChecker())


def errors(name: str, document: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator(name).iter_errors(document)
    ]


def test_every_schema_is_valid_json_schema_and_names_its_required_keys():
    schemas = load_schemas()
    assert set(schemas) == set(SCHEMA_OF.values())
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"{name}.schema.json" and schema["additionalProperties"] is True, name
        assert set(schema["required"]) <= set(schema["properties"]), name


@pytest.mark.e2e
def test_every_json_file_of_a_run_matches_its_schema(tiny_run):
    checked = {}
    for pattern, name in SCHEMA_OF.items():
        paths = sorted(tiny_run.glob(pattern))
        assert paths, f"the run wrote no {pattern}"
        for path in paths:
            assert not errors(name, json.loads(path.read_text())), (path, errors(name, json.loads(path.read_text())))
            checked[str(path.relative_to(tiny_run))] = name
    # Two models: a manifest, three indexes, compare, benchmark and summary each, plus env and the run manifest.
    assert len(checked) == 2 * 7 + 2


@pytest.mark.e2e
def test_a_run_file_missing_a_contract_key_or_with_an_unknown_status_is_rejected(tiny_run):
    summary = json.loads((tiny_run / "results/tiny-convnext/summary.json").read_text())
    assert not errors("summary", summary)
    del summary["targets"]["fp32"]["accuracy"]["outputs"]["logits"]["cosine"]
    assert errors("summary", summary) == ["targets/fp32/accuracy/outputs/logits: 'cosine' is a required property"]
    index = json.loads((tiny_run / "results/tiny-bert/fp32/dump/index.json").read_text())
    index["status"] = "pass"
    assert errors("index", index) == ["status: 'pass' is not one of ['ok', 'blocked', 'error']"]


def write_dump(directory: Path, role: str, arrays: dict, status: str = "ok", reason: str | None = None) -> Path:
    """An index.json as the dump jobs write it (npu_adapt.io.dump_tensors), on the CPU."""
    index = {
        "model": "m",
        "role": role,
        "device": "cpu",
        "device_name": "host",
        "dtype": "float32",
        "status": status,
        "reason": reason,
    }
    index["tensors"] = dump_tensors(directory, arrays)
    write_json(directory / "index.json", index)
    return directory / "index.json"


def test_failed_and_blocked_comparisons_match_the_schemas(tmp_path):
    good = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    reference = write_dump(tmp_path / "reference", "reference", {"a": good, "b": good})
    target = write_dump(tmp_path / "target", "target", {"a": good + 0.5, "c": good})
    failed = compare_dumps("m", reference, target, {})
    assert failed["status"] == "fail" and set(failed["outputs"]) == {"a", "b", "c"}
    assert not errors("compare", failed) and not errors("index", json.loads(target.read_text()))

    blocked_target = write_dump(
        tmp_path / "blocked", "target", {}, status="blocked", reason="forward: RuntimeError: boom"
    )
    blocked = compare_dumps("m", reference, blocked_target, {})
    assert blocked["status"] == "blocked"
    assert not errors("compare", blocked) and not errors("index", json.loads(blocked_target.read_text()))
    # A blocked document must say why.
    assert errors("compare", {**blocked, "reason": None}) == ["reason: None is not of type 'string'"]
    assert errors("index", {**json.loads(blocked_target.read_text()), "reason": None}) == [
        "reason: None is not of type 'string'"
    ]


@pytest.mark.parametrize("status", ["pass", "warn", "fail", "self-check", "error", "blocked"])
def test_the_shared_status_vocabulary_is_accepted_and_nothing_else(tmp_path, status):
    reference = write_dump(tmp_path / "reference", "reference", {"a": np.ones(3)})
    document = {**compare_dumps("m", reference, reference, {}), "status": status, "reason": "why"}
    assert not errors("compare", document)
    assert errors("compare", {**document, "status": status.upper()})
