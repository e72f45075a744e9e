"""The typed config slices the workflow's scripts receive: one frozen dataclass per slice a
rule passes (rules/*.smk ``params:``, the exact JSON of the config keys its script reads, so a
job re-runs exactly when its slice changes), each built once by ``from_param`` from that JSON.

The config reaching here has been validated against schemas/config.schema.yaml, which fills in
its defaults: nothing here repeats a default. An unknown or missing key is a ConfigError naming
it. Apart from npu_adapt/config.py (the merge of the global and per-model sections, read by the
rules when Snakemake parses the workflow), so that editing the merge re-runs no job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from functools import cache
from pathlib import Path
from typing import ClassVar, Self

import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


@cache
def config_schema() -> dict:
    """schemas/config.schema.yaml, read once per process. With libyaml's loader where PyYAML
    has it (8x faster): every Snakemake start and most jobs read it."""
    return yaml.load(SCHEMA.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class ConfigError(ValueError):
    """A config problem, in one sentence naming the key."""


def from_mapping(cls, values, where: str):
    """``cls`` (a dataclass of config keys) built from a mapping of exactly its fields: an unknown
    key or a missing one is a ConfigError naming it (a field with a default may be left out)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} keys, got {type(values).__name__}")
    known = {field.name for field in fields(cls)}
    required = [field.name for field in fields(cls) if field.default is MISSING and field.default_factory is MISSING]
    if unknown := sorted(set(values) - known):
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (the keys of {cls.__name__}: {sorted(known)})")
    if missing := [name for name in required if name not in values]:
        raise ConfigError(f"{where}: missing key {missing[0]!r} of {cls.__name__}")
    return cls(**values)


def parse_param(text: str, where: str):
    """A rule's param: the JSON text of a config slice (rules/common.smk canonical)."""
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: not the JSON of a config slice ({exc})") from None


class ConfigSlice:
    """A typed slice, built once by ``from_param`` from the JSON its rule passes (``PARAM``
    names it in errors)."""

    PARAM: ClassVar[str]

    @classmethod
    def from_param(cls, text: str) -> Self:
        return from_mapping(cls, parse_param(text, cls.PARAM), cls.PARAM)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Placement(ConfigSlice):
    """Where and how a model runs: device (auto, npu, cuda, cpu), dtype, float32 precision modes."""

    PARAM = "placement"  # the dump and benchmark rules' params.placement

    device: str
    dtype: str
    precision: str


@dataclass(frozen=True)
class BenchmarkSettings(ConfigSlice):
    """A model's benchmark settings: the global ``benchmark:`` with the model's own overrides
    (the schema's ``benchmark`` properties, every one filled in by its validation)."""

    PARAM = "benchmark"  # the benchmark rule's params.settings

    batch_sizes: tuple[int, ...]
    warmup: int
    min_runs: int
    min_seconds: float
    max_runs: int
    max_seconds: float
    baseline: str
    threads: int | None
    prompt_len: int | None
    new_tokens: int

    def __post_init__(self):
        object.__setattr__(self, "batch_sizes", tuple(self.batch_sizes))

    def measure_options(self) -> dict:
        """timing.measure's run counts and time budget, as these settings set them."""
        keys = ("warmup", "min_runs", "max_runs", "min_seconds", "max_seconds")
        return {key: getattr(self, key) for key in keys}

    def as_dict(self) -> dict:
        """benchmark.json's ``settings``: keys sorted, as the rule's param has them."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in sorted(asdict(self).items())}


@dataclass(frozen=True)
class DownloadSettings(ConfigSlice):
    """The ``download:`` section (fetch_weights): timeout, retries, backoff, offline."""

    PARAM = "download"  # the fetch_weights rule's params.download

    timeout: float
    retries: int
    backoff: float
    offline: bool


def accuracy_block(block, where: str) -> dict:
    """A copy of an ``accuracy:`` block (the keys it sets), each key one of the schema's."""
    known = config_schema()["$defs"]["accuracy"]["properties"]
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: expected a mapping of accuracy keys, got {type(block).__name__}")
    if unknown := sorted(set(block) - set(known)):
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (the accuracy keys: {list(known)})")
    return dict(block)


@dataclass(frozen=True)
class AccuracyOverrides(ConfigSlice):
    """The compare rule's criteria overrides: the global ``accuracy:`` block (``config``) and
    the model's own (``model``), each holding only the keys the config sets (a key set to null
    differs from an unset one: it replaces the dtype default), over the dtype defaults."""

    PARAM = "accuracy"  # the compare rule's params.criteria

    config: dict
    model: dict

    def __post_init__(self):
        for name in ("config", "model"):
            object.__setattr__(self, name, accuracy_block(getattr(self, name), f"accuracy.{name}"))


@dataclass(frozen=True)
class ModelInputs:
    """A model's ``inputs:`` options; None: not set (the adapter's own choice applies)."""

    text: str | None = None
    seq_len: int | None = None
    decoder_len: int | None = None
    max_new_tokens: int | None = None
    image_size: int | None = None
    pooling: str | None = None


@dataclass(frozen=True)
class ModelEntry(ConfigSlice):
    """One model's own keys (``models.NAME`` without the sections merged elsewhere: reference,
    targets, accuracy, benchmark). A rule passes its script only the keys the script reads
    (so editing another key re-runs nothing): a field is None when the config leaves it unset
    or the job's slice does not carry it; ``family`` is in every slice."""

    PARAM = "model"  # a rule's params.model: the model's keys its script reads

    family: str
    source: str | None = None
    task: str | None = None
    arch_config: str | None = None
    fallback: str | None = None
    allow_patterns: tuple[str, ...] | None = None
    trust_remote_code: bool | None = None
    license: str | None = None
    base_model: str | None = None
    inputs: ModelInputs | None = None
    layers: bool | str | None = None
    layer_pattern: str | None = None
    layer_kinds: tuple[str, ...] | None = None
    layer_inputs: bool | None = None
    layers_max_bytes: int | None = None
    layers_auto_params: int | None = None

    def __post_init__(self):
        if isinstance(self.inputs, Mapping):
            object.__setattr__(self, "inputs", from_mapping(ModelInputs, self.inputs, "inputs"))
        for name in ("allow_patterns", "layer_kinds"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def as_dict(self) -> dict:
        """The keys set, as the config has them (no model key can be null: None is unset)."""
        return {key: _set_keys(value) for key, value in asdict(self).items() if value is not None}


def _set_keys(value):
    return {key: item for key, item in value.items() if item is not None} if isinstance(value, dict) else value


@dataclass(frozen=True)
class RunConfig(ConfigSlice):
    """The configuration that reproduces one model's run (:func:`run_config`, the summarize
    rule's ``params.settings``): the global sections with the model's overrides merged in,
    its resolved targets by name, and the model's own entry under ``models``."""

    PARAM = "run config"  # the summarize rule's params.settings

    seed: int
    download: DownloadSettings
    reference: Placement
    accuracy: dict
    benchmark: BenchmarkSettings
    targets: dict[str, Placement]
    models: dict[str, ModelEntry]

    def __post_init__(self):
        for name, cls in (("download", DownloadSettings), ("reference", Placement), ("benchmark", BenchmarkSettings)):
            if isinstance(getattr(self, name), Mapping):
                object.__setattr__(self, name, from_mapping(cls, getattr(self, name), name))
        object.__setattr__(self, "accuracy", accuracy_block(self.accuracy, "accuracy"))
        typed = {"targets": Placement, "models": ModelEntry}
        for name, cls in typed.items():
            values = {
                key: value if isinstance(value, cls) else from_mapping(cls, value, f"{name}.{key}")
                for key, value in getattr(self, name).items()
            }
            object.__setattr__(self, name, values)

    def as_dict(self) -> dict:
        """The rule's param as it was (keys sorted, as canonical JSON has them); summary.json's ``config``
        once summarize has put the targets back in the config's order."""
        document = {
            "seed": self.seed,
            "download": self.download.as_dict(),
            "reference": self.reference.as_dict(),
            "accuracy": self.accuracy,
            "benchmark": self.benchmark.as_dict(),
            "targets": {name: placement.as_dict() for name, placement in self.targets.items()},
            "models": {name: entry.as_dict() for name, entry in self.models.items()},
        }
        return json.loads(json.dumps(document, sort_keys=True))
