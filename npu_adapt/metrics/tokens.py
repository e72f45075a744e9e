"""Exact agreement of generated token ids."""

from __future__ import annotations

import numpy as np


def token_agreement(target: np.ndarray, reference: np.ndarray) -> dict:
    """Exact agreement of generated token ids, row by row (sequences may differ in length).

    ``first_mismatch`` is the position (index along the last axis) of the first differing
    token, in row ``first_mismatch_row``; a sequence that is a strict prefix of the other
    differs at its end. None when every row agrees exactly.
    """
    t = np.asarray(target).reshape(-1, target.shape[-1] if target.ndim else 1)
    r = np.asarray(reference).reshape(-1, reference.shape[-1] if reference.ndim else 1)
    matches = total = 0
    first_row = first = None
    for row, (t_row, r_row) in enumerate(zip(t, r)):
        common = min(t_row.size, r_row.size)
        differs = np.flatnonzero(t_row[:common] != r_row[:common])
        matches += common - differs.size
        total += max(t_row.size, r_row.size)
        position = int(differs[0]) if differs.size else (common if t_row.size != r_row.size else None)
        if first is None and position is not None:
            first_row, first = row, position
    return {
        "exact_match": first is None,
        "token_agreement": matches / total if total else 1.0,
        "first_mismatch": first,
        "first_mismatch_row": first_row,
        "length_target": int(t.shape[-1]),
        "length_reference": int(r.shape[-1]),
    }
