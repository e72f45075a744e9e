"""The typed config slices scripts receive (npu_adapt.config_types): each is built from the exact JSON
a rule passes (rules/*.smk), round-trips to it, and refuses an unknown or missing key by name."""

import json
from dataclasses import fields
from functools import cache

import pytest
import yaml
from conftest import REPO

from npu_adapt.config import merged, model_entry, model_targets, run_config
from npu_adapt.config_check import validate_config
from npu_adapt.config_types import (
    AccuracyOverrides,
    BenchmarkSettings,
    ConfigError,
    DownloadSettings,
    ModelEntry,
    ModelInputs,
    Placement,
    RunConfig,
)

SCHEMA = REPO / "schemas" / "config.schema.yaml"


@cache
def _default_config() -> str:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(config, SCHEMA)  # fills in the schema's defaults, as the Snakefile does
    return json.dumps(config)


def default_config() -> dict:
    """The repository's config.yaml, validated as the workflow validates it (a fresh copy)."""
    return json.loads(_default_config())


def canonical(value) -> str:
    """The rules' params spelling (rules/common.smk canonical)."""
    return json.dumps(value, sort_keys=True)


def schema_properties(*path: str) -> list[str]:
    node = yaml.safe_load(SCHEMA.read_text())
    for key in path:
        node = node[key]
    return list(node["properties"])


def field_names(cls) -> list[str]:
    return [field.name for field in fields(cls)]


def test_the_types_have_the_schemas_keys():
    assert field_names(BenchmarkSettings) == schema_properties("properties", "benchmark")
    assert field_names(BenchmarkSettings) == schema_properties("$defs", "benchmark")
    assert field_names(Placement) == schema_properties("$defs", "target")
    assert field_names(DownloadSettings) == schema_properties("properties", "download")
    model_keys = schema_properties("properties", "models", "additionalProperties")
    merged_elsewhere = ["reference", "targets", "accuracy", "benchmark"]
    assert sorted(field_names(ModelEntry)) == sorted(key for key in model_keys if key not in merged_elsewhere)
    assert field_names(ModelInputs) == schema_properties(
        "properties", "models", "additionalProperties", "properties", "inputs"
    )


def test_every_models_benchmark_and_placement_params_round_trip():
    config = default_config()
    for model in config["models"]:
        param = canonical(merged(config, model, "benchmark"))
        settings = BenchmarkSettings.from_param(param)
        assert canonical(settings.as_dict()) == param
        assert json.dumps(settings.as_dict()) == param  # benchmark.json's settings: the same keys, same order
        assert settings.batch_sizes == tuple(json.loads(param)["batch_sizes"])
        for placement in [*model_targets(config, model).values()]:
            param = canonical(placement.as_dict())
            assert Placement.from_param(param) == placement
        reference = canonical(merged(config, model, "reference"))
        assert canonical(Placement.from_param(reference).as_dict()) == reference
    giant = BenchmarkSettings.from_param(canonical(merged(config, "vit-giant-clip", "benchmark")))
    own = config["models"]["vit-giant-clip"]["benchmark"]  # the model's keys win, the rest is global
    assert (giant.batch_sizes, giant.max_seconds, giant.warmup) == (tuple(own["batch_sizes"]), own["max_seconds"], 0)
    assert giant.min_runs == config["benchmark"]["min_runs"] and "min_runs" not in own


@pytest.mark.parametrize(
    ("cls", "section", "change", "named"),
    [
        (BenchmarkSettings, "benchmark", {"max_second": 5}, "unknown key 'max_second'"),
        (BenchmarkSettings, "benchmark", {"warmup": None}, "missing key 'warmup'"),
        (Placement, "reference", {"dtyp": "float16"}, "unknown key 'dtyp'"),
        (Placement, "reference", {"precision": None}, "missing key 'precision'"),
        (DownloadSettings, "download", {"retry": 3}, "unknown key 'retry'"),
        (DownloadSettings, "download", {"offline": None}, "missing key 'offline'"),
    ],
)
def test_an_unknown_or_missing_key_is_refused_by_name(cls, section, change, named):
    config = default_config()
    values = config[section] if section == "download" else merged(config, "convnextv2-atto", section)
    values.update(change)
    values = {key: value for key, value in values.items() if value is not None or key == "threads"}
    with pytest.raises(ConfigError, match=named):
        cls.from_param(canonical(values))


def test_a_param_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="placement: expected a mapping of Placement keys, got list"):
        Placement.from_param("[]")
    with pytest.raises(ConfigError, match="benchmark: not the JSON of a config slice"):
        BenchmarkSettings.from_param("{batch_sizes: [1]")


def test_download_settings_round_trip():
    config = default_config()
    param = canonical(config["download"])  # the fetch_weights rule's params.download
    settings = DownloadSettings.from_param(param)
    assert canonical(settings.as_dict()) == param
    assert (settings.timeout, settings.retries, settings.offline) == (30, 2, False)
    assert (
        settings.backoff
        == yaml.safe_load(SCHEMA.read_text())["properties"]["download"]["properties"]["backoff"]["default"]
    )  # not in config.yaml: the schema's default, filled in by the validation


def test_accuracy_overrides_keep_only_the_keys_set_and_refuse_unknown_ones():
    config = default_config()
    config["models"]["convnextv2-atto"]["accuracy"] = {"rel_l2_max": 0.02, "token_prefix": None}
    param = canonical({"config": config["accuracy"], "model": config["models"]["convnextv2-atto"]["accuracy"]})
    overrides = AccuracyOverrides.from_param(param)  # the compare rule's params.criteria
    assert overrides.config == {} and overrides.model == {"rel_l2_max": 0.02, "token_prefix": None}
    assert canonical({"config": overrides.config, "model": overrides.model}) == param
    with pytest.raises(ConfigError, match="accuracy.model: unknown key 'rel_l2'"):
        AccuracyOverrides.from_param(canonical({"config": {}, "model": {"rel_l2": 0.1}}))
    with pytest.raises(ConfigError, match="accuracy: missing key 'model'"):
        AccuracyOverrides.from_param(canonical({"config": {}}))
    with pytest.raises(ConfigError, match="accuracy: unknown key 'models'"):
        AccuracyOverrides.from_param(canonical({"config": {}, "model": {}, "models": {}}))


# The model keys each rule passes its script (rules/*.smk params.model).
LAYER_KEYS = ("layers", "layer_pattern", "layer_kinds", "layer_inputs", "layers_max_bytes", "layers_auto_params")
MODEL_SLICES = {
    "fetch_weights": ("source", "family", "arch_config", "fallback", "allow_patterns", "trust_remote_code"),
    "make_inputs": ("family", "inputs"),
    "benchmark": ("family", "inputs", "task"),
    "dump": ("family", "inputs", "task", *LAYER_KEYS),
}


def slice_of(entry: dict, keys) -> dict:
    """rules/common.smk model_entry: the keys the entry has among ``keys``."""
    return {key: entry[key] for key in keys if key in entry}


def test_every_rules_model_slice_builds_a_model_entry():
    config = default_config()
    for model, entry in config["models"].items():
        for rule, keys in MODEL_SLICES.items():
            param = canonical(slice_of(entry, keys))
            typed = ModelEntry.from_param(param)
            for key in keys:  # each key the slice carries is its attribute; the others are None
                value = getattr(typed, key)
                if key == "inputs" and value is not None:
                    assert {k: v for k, v in vars(value).items() if v is not None} == entry["inputs"]
                elif isinstance(value, tuple):
                    assert list(value) == entry[key]
                else:
                    assert value == entry.get(key), (model, rule, key)
            assert all(getattr(typed, key) is None for key in ("license", "base_model") if key not in keys)
    flan = ModelEntry.from_param(canonical(slice_of(config["models"]["flan-t5-small"], MODEL_SLICES["dump"])))
    assert (flan.inputs.decoder_len, flan.inputs.max_new_tokens, flan.inputs.image_size) == (8, 8, None)
    assert (flan.layers, flan.layer_kinds, flan.layers_max_bytes) == ("auto", ("module", "api"), 2_000_000_000)
    whole = model_entry(config, "vit-giant-clip")  # the bench command's: benchmark: is merged elsewhere
    assert (whole.source, whole.fallback, whole.trust_remote_code) == (
        "timm:vit_giant_patch14_clip_224.laion2b",
        "random-init",
        False,
    )


def test_a_model_entry_refuses_an_unknown_or_missing_key_by_name():
    with pytest.raises(ConfigError, match="model: unknown key 'sorce'"):
        ModelEntry.from_param(canonical({"sorce": "timm:x", "family": "timm_image"}))
    with pytest.raises(ConfigError, match="model: missing key 'family'"):
        ModelEntry.from_param(canonical({"source": "timm:x"}))
    with pytest.raises(ConfigError, match="inputs: unknown key 'seqlen'"):
        ModelEntry.from_param(canonical({"family": "hf_encoder", "inputs": {"seqlen": 8}}))


def test_the_run_config_round_trips_to_the_summarize_rules_param():
    config = default_config()
    config["models"]["flan-t5-small"]["accuracy"] = {"token_prefix": None}  # a null set is kept
    config["models"]["flan-t5-small"]["inputs"] = {}  # as an empty mapping
    for model in config["models"]:
        param = canonical(run_config(config, model))  # params.settings of the summarize rule
        run = RunConfig.from_param(param)
        assert json.dumps(run.as_dict()) == param  # summary.json's config: the same document
        assert run.models[model].family == config["models"][model]["family"]
        assert run.targets == dict(sorted(model_targets(config, model).items()))  # canonical JSON sorts them
    flan = RunConfig.from_param(canonical(run_config(config, "flan-t5-small")))
    assert flan.accuracy == {"token_prefix": None} and flan.models["flan-t5-small"].inputs == ModelInputs()
    assert isinstance(flan.benchmark, BenchmarkSettings) and isinstance(flan.reference, Placement)
    broken = run_config(config, "flan-t5-small")
    broken["targets"]["bf16"]["dtyp"] = "float16"
    with pytest.raises(ConfigError, match="targets.bf16: unknown key 'dtyp'"):
        RunConfig.from_param(canonical(broken))
