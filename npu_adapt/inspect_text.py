"""How ``npu-adapt inspect`` prints: aligned text tables of tensors, metrics and layer rows."""

from __future__ import annotations

STAT_COLUMNS = ["name", "shape", "dtype", "min", "max", "mean", "std", "nan", "inf"]
METRIC_COLUMNS = [
    ("output", "output"),
    ("kind", "kind"),
    ("status", "status"),
    ("rel_l2", "rel_l2"),
    ("cosine", "cosine"),
    ("max_abs_diff", "max_abs"),
    ("mean_abs_diff", "mean_abs"),
    ("rmse", "rmse"),
    ("max_rel_diff", "max_rel"),
    ("within_rtol_frac", "in_tol"),
    ("top1_match", "top1"),
    ("top5_match", "top5"),
    ("token_agreement", "tokens"),
    ("first_mismatch", "1st_diff"),
    ("nan_target", "nan_t"),
    ("inf_target", "inf_t"),
    ("ascend_verdict", "ascend"),
    ("reason", "reason"),
]
LAYER_COLUMNS = [
    ("order", "#"),
    ("kind", "kind"),
    ("name", "name"),
    ("type", "type"),
    ("shape", "shape"),
    ("dtype_target", "dtype_t"),
    ("rel_l2", "rel_l2"),
    ("cosine", "cosine"),
    ("max_abs_diff", "max_abs"),
    ("mean_abs_diff", "mean_abs"),
    ("nan_target", "nan_t"),
    ("status", "status"),
    ("reason", "reason"),
]
LAYER_STATS_COLUMNS = [
    ("order", "#"),
    ("kind", "kind"),
    ("name", "name"),
    ("type", "type"),
    ("shape", "shape"),
    ("dtype_target", "dtype_t"),
    ("rel_l2_lower_bound", "rel_l2>="),
    ("norm_rel_change", "norm_chg"),
    ("mean_shift", "mean_shift"),
    ("max_rel_change", "max_chg"),
    ("nan_target", "nan_t"),
    ("bit_identical", "bits="),
    ("status", "status"),  # not `pass`: a warn row would read NO, as if it had diverged
    ("reason", "reason"),
]
NEIGHBOURS = 3  # rows shown on each side of the first divergence


def cell(key: str, value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, list):
        return "x".join(str(item) for item in value) or "scalar"
    if isinstance(value, float):
        # Cosine near 1 needs its nines; everything else reads best with 4 digits.
        return f"{value:.8f}" if key == "cosine" else f"{value:.4g}"
    return str(value)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain aligned text table; the last column (usually the reason) is not padded."""
    cells = [[title for _, title in columns]] + [[cell(key, row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line[:-1], widths)) + "  " + line[-1] for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join("  " + line.rstrip() for line in lines)


def placement(index: dict) -> str:
    text = f"{index.get('device')} ({index.get('device_name')}), {index.get('compute_dtype') or index.get('dtype')}"
    modes = index.get("precision_modes")
    if modes:
        text += ", float32 may use TF32/HF32" if modes.get("reduced_float32") else ", strict float32"
    if index.get("status") == "blocked":
        text += f"  BLOCKED: {index.get('reason')}"
    if index.get("test_perturbation"):
        text += f"  [TEST PERTURBATION {index['test_perturbation']}]"
    return text


def tensors_table(index: dict) -> str:
    return table(index.get("tensors", []), [(name, name) for name in STAT_COLUMNS])


def criteria_text(criteria: dict, klass: str | None = None) -> str:
    text = (
        f"pass: rel_l2 <= {criteria['rel_l2_max']}, cosine >= {criteria['cosine_min']}; "
        f"fail: rel_l2 > {criteria['rel_l2_fail']}, cosine < {criteria['cosine_floor']}"
    )
    extras = [f"top{k} agrees (near-ties warn)" for k in (1, 5) if criteria.get(f"top{k}")]
    within = f"|t - r| <= {criteria['atol']} + {criteria['rtol']}*|r|" + (
        f" for >= {criteria['within_min']}" if criteria.get("within_min") is not None else " (reported)"
    )
    return (f"{klass} defaults; " if klass else "") + ", ".join([text, *extras]) + f"; within tolerance: {within}"


def print_comparison(outputs: dict, out) -> None:
    """The metrics table; a metric that applies to none of the outputs (top-k without class
    scores, token agreement without generated ids) gets no column."""
    rows = [{"output": name, **metrics} for name, metrics in outputs.items()]
    optional = {"top1_match", "top5_match", "token_agreement", "first_mismatch"}
    columns = [
        (key, title)
        for key, title in METRIC_COLUMNS
        if key not in optional or any(row.get(key) is not None for row in rows)
    ]
    print(table(rows, columns), file=out)


def print_layers(layers: dict, full: bool, out) -> None:
    """The layer localisation: what was compared, the first divergence with its neighbours
    (or why there is none), and with ``full`` every row."""
    if not layers.get("enabled", True):
        print(f"\nlayers: not captured ({layers.get('reason')})", file=out)
        return
    if layers.get("status") == "blocked":  # nothing to compare: an upstream stage did not run
        print(f"\nlayers: blocked ({layers.get('reason')})", file=out)
        return
    rows = layers.get("rows") or []
    columns = LAYER_STATS_COLUMNS if layers.get("mode") == "stats" else LAYER_COLUMNS
    counts = f"{layers.get('modules')} module and {layers.get('apis', 0)} API rows"
    mode = layers.get("mode") or "tensors"
    print(f"\nlayers ({mode}): {counts} compared, {layers.get('diverged')} over the threshold", file=out)
    if layers.get("localisation"):
        print(f"  localisation: {layers['localisation']}", file=out)
    first = layers.get("first_divergence")
    if first:
        print(f"  first divergence: #{first['order']} {first['name']} ({first['type']}): {first['reason']}", file=out)
        if not full:
            around = rows[max(0, first["order"] - NEIGHBOURS) : first["order"] + NEIGHBOURS + 1]
            print(table(around, columns), file=out)
    else:
        print(f"  first divergence: none ({layers.get('reason')})", file=out)
        bounded = [row for row in rows if row.get("rel_l2_lower_bound") is not None]
        if bounded and not full:
            largest = max(bounded, key=lambda row: row["rel_l2_lower_bound"])
            where = f"#{largest['order']} {largest['name']} ({largest['type']})"
            print(f"  largest statistics change: {where}, rel_l2 >= {largest['rel_l2_lower_bound']:.4g}", file=out)
    if full and rows:
        print(table(rows, columns), file=out)
