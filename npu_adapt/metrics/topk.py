"""Top-k agreement of class scores, row by row, with near-ties told apart from real disagreements."""

from __future__ import annotations

import numpy as np

from npu_adapt.metrics import chunks


def _tie_margins(t: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether the top-k class sets agree, and where they do not, the reference's
    margin between the classes involved: the lowest reference score of the classes the
    target dropped minus the highest of those it took in (for k=1, r[ref argmax] -
    r[target argmax]). A small margin means the reference itself nearly tied."""
    if k == 1:
        top_t, top_r = t.argmax(axis=-1)[:, None], r.argmax(axis=-1)[:, None]
    else:
        top_t = np.sort(np.argpartition(-t, k - 1, axis=-1)[:, :k], axis=-1)
        top_r = np.sort(np.argpartition(-r, k - 1, axis=-1)[:, :k], axis=-1)
    same = (top_t == top_r).all(axis=-1)
    margins = np.zeros(same.shape)
    for row in np.flatnonzero(~same):
        dropped = np.setdiff1d(top_r[row], top_t[row])
        taken = np.setdiff1d(top_t[row], top_r[row])
        margins[row] = r[row, dropped].min() - r[row, taken].max()
    return same, margins


def topk_agreement(target: np.ndarray, reference: np.ndarray, k: int, band: float = 0.0) -> dict:
    """Top-k agreement of class scores, row by row (all axes but the last).

    ``match``: the fraction of rows whose top-k sets agree; ``first_mismatch_row``: the first
    row (flattened over the leading axes) where they do not. A disagreeing row whose
    reference margin (:func:`_tie_margins`) is within ``band`` times the row's RMS is a
    near-tie (``near_ties``, largest margin in ``max_tie_margin``); the others are
    ``mismatches`` (first in ``first_hard_row``)."""
    classes = target.shape[-1] if target.ndim else 1
    k = min(k, classes)
    rows = agree = ties = 0
    first = first_hard = tie_margin = tie_band = None
    for index in chunks.blocks(target.shape[:-1], max(1, chunks.CHUNK_ELEMENTS // max(classes, 1))):
        t = np.array(target[index], dtype=np.float64).reshape(-1, classes)
        r = np.array(reference[index], dtype=np.float64).reshape(-1, classes)
        same, margins = _tie_margins(t, r, k)
        bands = band * np.sqrt(np.mean(r * r, axis=-1))
        for row in np.flatnonzero(~same):
            first = rows + int(row) if first is None else first
            if margins[row] <= bands[row]:
                ties += 1
                if tie_margin is None or margins[row] > tie_margin:
                    tie_margin, tie_band = float(margins[row]), float(bands[row])
            elif first_hard is None:
                first_hard = rows + int(row)
        rows += same.size
        agree += int(same.sum())
    return {
        "match": agree / rows if rows else 1.0,
        "first_mismatch_row": first,
        "near_ties": ties,
        "mismatches": rows - agree - ties,
        "first_hard_row": first_hard,
        "max_tie_margin": tie_margin,
        "tie_band": tie_band,
    }
