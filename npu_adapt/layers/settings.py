"""What a model's ``layers*`` keys ask for: the capture mode, its scope, and the size guard."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from npu_adapt.config_types import ModelEntry


def resolve_mode(entry: ModelEntry, params: int | None) -> tuple[str | None, str]:
    """(mode, why): ``stats``, ``tensors`` or None (no capture), from ``layers`` (``true`` is
    ``tensors``; ``auto``, the default, is ``stats`` above ``layers_auto_params`` parameters,
    else no capture: a big model always gets a statistics-level localisation, a small one
    only when asked)."""
    layers = entry.layers
    if layers is True:
        return "tensors", "layers: true (tensors)"
    if layers is False or layers is None:
        return None, "layers: false for this model"
    if layers == "auto":
        threshold = entry.layers_auto_params
        if params is not None and params > threshold:
            return (
                "stats",
                f"layers: auto: {params:,} parameters > layers_auto_params {threshold:,}, statistics captured",
            )
        return (
            None,
            f"layers: auto: {params:,} parameters <= layers_auto_params {threshold:,} "
            "(set layers: stats or tensors to capture)",
        )
    return layers, f"layers: {layers}"


def scope(entry: ModelEntry) -> dict:
    """The LayerCapture arguments of a model's ``layer_*`` keys."""
    return {"pattern": entry.layer_pattern, "kinds": entry.layer_kinds, "inputs": entry.layer_inputs}


def size_refusal(estimated_bytes: int, entry: ModelEntry) -> str | None:
    """Why a ``tensors`` capture of ``estimated_bytes`` is refused, or None when it fits."""
    limit = entry.layers_max_bytes
    if estimated_bytes <= limit:
        return None
    return (
        f"layer capture refused: layers: tensors would write an estimated {estimated_bytes / 1e9:.3g} GB "
        f"({estimated_bytes:,} bytes, from one forward's shapes) per side > layers_max_bytes {limit:,}; "
        "set layers: stats (a few hundred bytes per tensor), or narrow layer_pattern / layer_kinds, "
        "or raise layers_max_bytes"
    )
