"""The run's configuration, typed: the one place where the global sections and a model's own
overrides are merged, and where a model's targets are resolved.

The config reaching here has been validated against schemas/config.schema.yaml (which fills
in its defaults): nothing here repeats a default. A model's ``targets:`` entry may override
keys of a global target, add a target of its own, or drop one (``false``); keys a model's own
new target leaves out come from the schema's ``$defs/target`` defaults.
"""

from __future__ import annotations

import difflib
import re

import yaml

from npu_adapt.config_types import (
    BenchmarkSettings,
    ConfigError,
    ModelEntry,
    Placement,
    config_schema,
    from_mapping,
)

# Sections a model's own block overrides key by key (targets: see model_targets).
MERGED_SECTIONS = ("reference", "accuracy", "benchmark")


def _one_path_component_but(reserved: list[str]) -> str:
    """A wildcard constraint: one path component (the schema's pattern for the key), none of
    ``reserved``."""
    return "(?!(?:{})(?![A-Za-z0-9._-]))[A-Za-z0-9][A-Za-z0-9._-]*".format("|".join(map(re.escape, reserved)))


# The {model} and {target} wildcards match the names the schema allows, and never one of the
# names it refuses (`not: enum`), which the workflow writes beside a model's directory
# (results/all, leaderboard.csv, ...) or a target's (reference/, summary.json, ...). So
# results/{model}/{target}/compare.json cannot match results/{model}/{target}/layers/compare.json.
MODEL_KEY = _one_path_component_but(config_schema()["properties"]["models"]["propertyNames"]["not"]["enum"])
TARGET_KEY = _one_path_component_but(config_schema()["$defs"]["target_name"]["not"]["enum"])


class ByName(dict):
    """Configured things by name (the models, a model's targets). A name that is not there is a
    ConfigError naming it and the nearest configured names: a typo in a requested path
    (results/minlm/summary.json) says "no model 'minlm' in the config; did you mean minilm?"
    where a rule's input function would raise a bare KeyError."""

    def __init__(self, noun: str, where: str, items: dict):
        super().__init__(items)
        self.noun, self.where = noun, where

    def __missing__(self, name):
        close = difflib.get_close_matches(str(name), list(self), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"configured: {', '.join(self) or 'none'}"
        raise ConfigError(f"no {self.noun} {name!r} {self.where}; {hint}")


def by_model(items: dict) -> ByName:
    """``items`` keyed by the config's model names."""
    return ByName("model", "in the config", items)


def model_config(config: dict, model: str) -> dict:
    """A model's own entry as configured; a name that is not configured is ByName's ConfigError
    (the entries are copied into a ByName only then: this runs for every rule's params)."""
    entries = config["models"]
    return entries[model] if model in entries else by_model(entries)[model]


def model_entry(config: dict, model: str) -> ModelEntry:
    """The whole of a model's own entry (the ``npu-adapt bench`` command's)."""
    entry = model_config(config, model)
    own = {key: value for key, value in entry.items() if key not in (*MERGED_SECTIONS, "targets")}
    return from_mapping(ModelEntry, own, f"models.{model}")


def target_defaults() -> dict:
    """The schema's defaults of a target placement ($defs/target)."""
    properties = config_schema()["$defs"]["target"]["properties"]
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


def model_targets(config: dict, model: str) -> ByName:
    """The model's targets, by name, in config order: the global ``targets:`` with the
    model's own ``targets:`` entry applied (override keys, add, or drop with false)."""
    resolved = {name: dict(placement) for name, placement in config["targets"].items()}
    for name, override in (model_config(config, model).get("targets") or {}).items():
        if override is False:
            if name not in config["targets"]:
                # Dropping a target that is not there drops nothing: most likely a typo.
                raise ConfigError(
                    f"models.{model}.targets.{name}: false drops a global target, and there is none named "
                    f"{name!r}; targets: {', '.join(config['targets'])}"
                )
            resolved.pop(name)
        else:
            resolved[name] = {**target_defaults(), **resolved.get(name, {}), **override}
    if not resolved:
        raise ConfigError(f"models.{model}.targets: every target is dropped; keep at least one")
    placements = {name: Placement(**placement) for name, placement in resolved.items()}
    return ByName("target", f"for model {model!r}", placements)


def merged(config: dict, model: str, section: str) -> dict:
    """A global section (reference, accuracy, benchmark) with the model's overrides."""
    return {**config[section], **model_config(config, model).get(section, {})}


def benchmark_settings(config: dict, model: str) -> BenchmarkSettings:
    """The model's benchmark settings; a ConfigError when min_runs exceeds max_runs (a check
    the schema cannot express)."""
    settings = from_mapping(BenchmarkSettings, merged(config, model, "benchmark"), f"models.{model}.benchmark")
    if settings.min_runs > settings.max_runs:
        raise ConfigError(
            f"benchmark.min_runs ({settings.min_runs}) > benchmark.max_runs ({settings.max_runs}) for models.{model}"
        )
    return settings


def run_config(config: dict, model: str) -> dict:
    """The configuration that reproduces one model's run (printed in its model card): the
    global sections with the model's overrides merged in, its resolved targets, and the
    model's own entry."""
    entry = model_config(config, model)
    return {
        "seed": config["seed"],
        "download": config["download"],
        **{section: merged(config, model, section) for section in MERGED_SECTIONS},
        "targets": {name: placement.as_dict() for name, placement in model_targets(config, model).items()},
        "models": {model: {key: value for key, value in entry.items() if key not in (*MERGED_SECTIONS, "targets")}},
    }
