"""The run's configuration, typed: the one place where the global sections and a model's own
overrides are merged, and where a model's targets are resolved.

The config reaching here has been validated against schemas/config.schema.yaml (which fills
in its defaults): nothing here repeats a default. A model's ``targets:`` entry may override
keys of a global target, add a target of its own, or drop one (``false``); keys a model's own
new target leaves out come from the schema's ``$defs/target`` defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from functools import cache
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
# Sections a model's own block overrides key by key (targets: see model_targets).
MERGED_SECTIONS = ("reference", "accuracy", "benchmark")
# Names a target's directory (results/{model}/{target}/) may not take: the model's own
# directories and files beside it.
RESERVED_TARGET_KEYS = ("inputs", "reference", "layers", "cpu-same-dtype", "summary.json", "README.md", "summary.html")
TARGET_KEY = "(?!(?:{})(?![A-Za-z0-9._-]))[A-Za-z0-9][A-Za-z0-9._-]*".format(
    "|".join(re.escape(name) for name in RESERVED_TARGET_KEYS)
)


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


@dataclass(frozen=True)
class Placement:
    """Where and how a model runs: device (auto, npu, cuda, cpu), dtype, float32 precision modes."""

    device: str
    dtype: str
    precision: str

    @classmethod
    def from_param(cls, text: str) -> Placement:
        """The dump and benchmark rules' ``params.placement``."""
        return from_mapping(cls, parse_param(text, "placement"), "placement")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BenchmarkSettings:
    """A model's benchmark settings: the global ``benchmark:`` with the model's own overrides
    (the schema's ``benchmark`` properties, every one filled in by its validation)."""

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

    @classmethod
    def from_param(cls, text: str) -> BenchmarkSettings:
        """The benchmark rule's ``params.settings``."""
        return from_mapping(cls, parse_param(text, "benchmark"), "benchmark")

    def as_dict(self) -> dict:
        """benchmark.json's ``settings``: keys sorted, as the rule's param has them."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in sorted(asdict(self).items())}


@dataclass(frozen=True)
class DownloadSettings:
    """The ``download:`` section (fetch_weights): timeout, retries, backoff, offline."""

    timeout: float
    retries: int
    backoff: float
    offline: bool

    @classmethod
    def from_param(cls, text: str) -> DownloadSettings:
        """The fetch_weights rule's ``params.download``."""
        return from_mapping(cls, parse_param(text, "download"), "download")

    def as_dict(self) -> dict:
        return asdict(self)


def accuracy_block(block, where: str) -> dict:
    """A copy of an ``accuracy:`` block (the keys it sets), each key one of the schema's."""
    known = _schema()["$defs"]["accuracy"]["properties"]
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: expected a mapping of accuracy keys, got {type(block).__name__}")
    if unknown := sorted(set(block) - set(known)):
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (the accuracy keys: {list(known)})")
    return dict(block)


@dataclass(frozen=True)
class AccuracyOverrides:
    """The compare rule's criteria overrides: the global ``accuracy:`` block (``config``) and
    the model's own (``model``), each holding only the keys the config sets (a key set to null
    differs from an unset one: it replaces the dtype default), over the dtype defaults."""

    config: dict
    model: dict

    def __post_init__(self):
        for name in ("config", "model"):
            object.__setattr__(self, name, accuracy_block(getattr(self, name), f"accuracy.{name}"))

    @classmethod
    def from_param(cls, text: str) -> AccuracyOverrides:
        """The compare rule's ``params.criteria``."""
        return from_mapping(cls, parse_param(text, "accuracy"), "accuracy")


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
class ModelEntry:
    """One model's own keys (``models.NAME`` without the sections merged elsewhere: reference,
    targets, accuracy, benchmark). A rule passes its script only the keys the script reads
    (so editing another key re-runs nothing): a field is None when the config leaves it unset
    or the job's slice does not carry it; ``family`` is in every slice."""

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

    @classmethod
    def from_param(cls, text: str) -> ModelEntry:
        """A rule's ``params.model``: the model's keys its script reads."""
        return from_mapping(cls, parse_param(text, "model"), "model")

    def as_dict(self) -> dict:
        """The keys set, as the config has them (no model key can be null: None is unset)."""
        return {key: _set_keys(value) for key, value in asdict(self).items() if value is not None}


def _set_keys(value):
    return {key: item for key, item in value.items() if item is not None} if isinstance(value, dict) else value


@dataclass(frozen=True)
class RunConfig:
    """The configuration that reproduces one model's run (:func:`run_config`, the summarize
    rule's ``params.settings``): the global sections with the model's overrides merged in,
    its resolved targets by name, and the model's own entry under ``models``."""

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

    @classmethod
    def from_param(cls, text: str) -> RunConfig:
        return from_mapping(cls, parse_param(text, "run config"), "run config")

    def as_dict(self) -> dict:
        """summary.json's ``config``: the rule's param as it was (keys sorted, as canonical JSON has them)."""
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


def model_entry(config: dict, model: str) -> ModelEntry:
    """The whole of a model's own entry (the ``npu-adapt bench`` command's)."""
    entry = config["models"][model]
    own = {key: value for key, value in entry.items() if key not in (*MERGED_SECTIONS, "targets")}
    return from_mapping(ModelEntry, own, f"models.{model}")


@cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def target_defaults() -> dict:
    """The schema's defaults of a target placement ($defs/target)."""
    properties = _schema()["$defs"]["target"]["properties"]
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


def legacy_target_message(config: dict) -> str | None:
    """The sentence refusing a config that still uses the single ``target:`` (globally or in a
    model), with the equivalent ``targets:`` to paste; None when there is none."""
    where = [("target", config["target"])] if isinstance(config.get("target"), dict) else []
    where += [
        (f"models.{model}.target", entry["target"])
        for model, entry in (config.get("models") or {}).items()
        if isinstance(entry, dict) and isinstance(entry.get("target"), dict)
    ]
    if not where:
        return None
    key, placement = where[0]
    name = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(placement.get("dtype", "float32"), "main")
    equivalent = yaml.safe_dump({"targets": {name: placement}}, sort_keys=False).strip()
    return (
        f"config: `{key}:` is replaced by `targets:`, a mapping of named targets "
        f"(several per run, results under results/MODEL/TARGET/). Write instead:\n{equivalent}"
        + (" (inside the model's entry)" if key.startswith("models.") else "")
    )


def model_targets(config: dict, model: str) -> dict[str, Placement]:
    """The model's targets, by name, in config order: the global ``targets:`` with the
    model's own ``targets:`` entry applied (override keys, add, or drop with false)."""
    resolved = {name: dict(placement) for name, placement in config["targets"].items()}
    for name, override in (config["models"][model].get("targets") or {}).items():
        if override is False:
            resolved.pop(name, None)
        else:
            resolved[name] = {**target_defaults(), **resolved.get(name, {}), **override}
    if not resolved:
        raise ConfigError(f"models.{model}.targets: every target is dropped; keep at least one")
    return {name: Placement(**placement) for name, placement in resolved.items()}


def merged(config: dict, model: str, section: str) -> dict:
    """A global section (reference, accuracy, benchmark) with the model's overrides."""
    return {**config[section], **config["models"][model].get(section, {})}


def reference_placement(config: dict, model: str) -> Placement:
    return from_mapping(Placement, merged(config, model, "reference"), f"models.{model}.reference")


def benchmark_settings(config: dict, model: str) -> BenchmarkSettings:
    return from_mapping(BenchmarkSettings, merged(config, model, "benchmark"), f"models.{model}.benchmark")


def check_target_keys(config: dict) -> None:
    """Target names that cannot be a results directory, refused before any job runs."""
    names = set(config["targets"])
    for entry in config["models"].values():
        names |= set(entry.get("targets") or {})
    for name in sorted(names):
        if not re.fullmatch(TARGET_KEY, name):
            raise ConfigError(
                f"config: targets.{name}: a target name is one path component and none of {list(RESERVED_TARGET_KEYS)}"
            )


def run_config(config: dict, model: str) -> dict:
    """The configuration that reproduces one model's run (printed in its model card): the
    global sections with the model's overrides merged in, its resolved targets, and the
    model's own entry."""
    entry = config["models"][model]
    return {
        "seed": config["seed"],
        "download": config["download"],
        **{section: merged(config, model, section) for section in MERGED_SECTIONS},
        "targets": {name: placement.as_dict() for name, placement in model_targets(config, model).items()},
        "models": {model: {key: value for key, value in entry.items() if key not in (*MERGED_SECTIONS, "targets")}},
    }
