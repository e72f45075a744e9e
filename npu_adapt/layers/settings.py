"""What a model's ``layers*`` keys ask for: the capture mode, its scope, and the size guard."""

from __future__ import annotations

DEFAULT_MAX_BYTES = 2_000_000_000
DEFAULT_AUTO_PARAMS = 100_000_000


def resolve_mode(entry: dict, params: int | None) -> tuple[str | None, str]:
    """(mode, why): ``stats``, ``tensors`` or None (no capture), from ``layers`` (``true`` is
    ``tensors``; ``auto``, the default, is ``stats`` above ``layers_auto_params`` parameters,
    else no capture: a big model always gets a statistics-level localisation, a small one
    only when asked)."""
    layers = entry.get("layers", "auto")
    if layers is True:
        return "tensors", "layers: true (tensors)"
    if layers is False or layers is None:
        return None, "layers: false for this model"
    if layers == "auto":
        threshold = entry.get("layers_auto_params", DEFAULT_AUTO_PARAMS)
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


def scope(entry: dict) -> dict:
    """The LayerCapture arguments of a model's ``layer_*`` keys."""
    return {
        "pattern": entry.get("layer_pattern"),
        "kinds": tuple(entry.get("layer_kinds", ("module", "api"))),
        "inputs": bool(entry.get("layer_inputs", False)),
    }


def size_refusal(estimated_bytes: int, entry: dict) -> str | None:
    """Why a ``tensors`` capture of ``estimated_bytes`` is refused, or None when it fits."""
    limit = entry.get("layers_max_bytes", DEFAULT_MAX_BYTES)
    if estimated_bytes <= limit:
        return None
    return (
        f"layer capture refused: layers: tensors would write an estimated {estimated_bytes / 1e9:.3g} GB "
        f"({estimated_bytes:,} bytes, from one forward's shapes) per side > layers_max_bytes {limit:,}; "
        "set layers: stats (a few hundred bytes per tensor), or narrow layer_pattern / layer_kinds, "
        "or raise layers_max_bytes"
    )
