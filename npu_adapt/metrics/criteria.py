"""Accuracy criteria: the defaults per compute dtype (read from the config schema, the one
place they are defined), the config's overrides over them, and the order of statuses."""

from __future__ import annotations

from functools import cache

from npu_adapt.config_types import SCHEMA, config_schema

CRITERIA_KEYS = (
    "rel_l2_max",
    "rel_l2_fail",
    "cosine_min",
    "cosine_floor",
    "atol",
    "rtol",
    "within_min",
    "top1",
    "top5",
    "token_prefix",
    "max_error_ratio",
)
# Output and model status, best to worst (a model's is its worst output's).
STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}


@cache
def _dtype_table() -> dict:
    if not SCHEMA.is_file():
        raise FileNotFoundError(
            f"{SCHEMA}: the config schema (it defines the default accuracy criteria per dtype) is missing"
        )
    return config_schema()["$defs"]["dtype_criteria"]


def criteria_classes() -> list[str]:
    """The compute-dtype classes that have default criteria (float32, float32_tf32, ...)."""
    return list(_dtype_table())


def dtype_criteria(criteria_class: str) -> dict:
    """The default criteria of a compute-dtype class (a copy), from the config schema."""
    table = _dtype_table()
    if criteria_class not in table:
        raise ValueError(f"no default accuracy criteria for {criteria_class!r}; known: {', '.join(table)}")
    return dict(table[criteria_class]["criteria"])


def criteria_class(compute_dtype: str, reduced_float32: bool = False) -> str:
    """Which default criteria apply: float16 and bfloat16 by name; float32 splits on whether
    the device may run float32 matmuls/convolutions in TF32/HF32 (10-bit mantissa)."""
    if compute_dtype == "float32" and reduced_float32:
        return "float32_tf32"
    return compute_dtype if compute_dtype in _dtype_table() else "float32"


def resolve_criteria(
    criteria_class: str, config: dict | None = None, model: str | None = None, model_overrides: dict | None = None
) -> tuple[dict, dict]:
    """The criteria that apply and where each came from: the dtype default, overridden by the
    global ``accuracy:`` block (``config``), overridden by the model's own block."""
    criteria = dtype_criteria(criteria_class)
    sources = dict.fromkeys(criteria, f"dtype default ({criteria_class})")
    for layer, where in (
        (config or {}, "config (accuracy.{key})"),
        (model_overrides or {}, f"model override (models.{model}.accuracy.{{key}})"),
    ):
        for key, value in layer.items():
            criteria[key] = value
            sources[key] = where.format(key=key)
    return criteria, sources


def worst_status(statuses) -> str:
    """The worst of output statuses (pass < warn < fail < error); pass for none."""
    return max(statuses, key=STATUS_RANK.__getitem__, default="pass")
