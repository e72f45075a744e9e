"""Arrays cut into blocks of consecutive elements (C order), one float64 block in memory at a
time: every metric streams through these, so arrays opened with ``np.load(mmap_mode="r")``
compare in bounded memory whatever their size or memory layout."""

from __future__ import annotations

import math

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # 4M elements: 32 MB of float64 per operand


def blocks(shape: tuple, size: int):
    """Index tuples cutting an array of ``shape`` into consecutive C-order blocks of at most
    ``size`` elements (whole leading-axis slices where they fit). They depend on the shape
    alone, so two arrays of one shape are cut identically whatever their memory layout."""
    if not shape:
        yield ()
        return
    row = math.prod(shape[1:])
    if row <= size:
        step = max(1, size // max(row, 1))
        for start in range(0, shape[0], step):
            yield (slice(start, start + step),)
    else:
        for i in range(shape[0]):
            for rest in blocks(shape[1:], size):
                yield (i, *rest)


def chunks(array: np.ndarray):
    """The array's elements in C order, as float64 blocks (one block in memory at a time)."""
    for index in blocks(array.shape, CHUNK_ELEMENTS):
        yield np.array(array[index], dtype=np.float64, order="C").reshape(-1)
