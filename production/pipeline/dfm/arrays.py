"""Reductions of thin arrays ((n, 3) points, (n, 3, 3) triangles), written out per column.

numpy reduces `a.min(axis=0)` of an (n, 3) array, or `a.max(axis=1)`, with an inner loop
three elements long per row: 5-10x slower than the same arithmetic on whole columns
(at 100k triangles each such call costs 10-20 ms; validation made dozens). These do the
same operations in the same order, so they return the same bits: min and max are exact,
and numpy sums a short axis left to right, ((a + b) + c), as row_sum does.
"""

import numpy as np


def column_min(points: np.ndarray) -> np.ndarray:
    """points.min(axis=0) of an (n, k) array."""
    return np.array([points[:, i].min() for i in range(points.shape[1])])


def column_max(points: np.ndarray) -> np.ndarray:
    """points.max(axis=0) of an (n, k) array."""
    return np.array([points[:, i].max() for i in range(points.shape[1])])


def row_min(values: np.ndarray) -> np.ndarray:
    """values.min(axis=1) for a short axis 1 (any trailing axes are kept)."""
    low = values[:, 0]
    for i in range(1, values.shape[1]):
        low = np.minimum(low, values[:, i])
    return low


def row_max(values: np.ndarray) -> np.ndarray:
    """values.max(axis=1) for a short axis 1 (any trailing axes are kept)."""
    high = values[:, 0]
    for i in range(1, values.shape[1]):
        high = np.maximum(high, values[:, i])
    return high


def row_sum(values: np.ndarray) -> np.ndarray:
    """values.sum(axis=1) for a short axis 1 (any trailing axes are kept), left to right."""
    total = values[:, 0]
    for i in range(1, values.shape[1]):
        total = total + values[:, i]
    return total


def row_mean(values: np.ndarray) -> np.ndarray:
    """values.mean(axis=1) for a short axis 1 (any trailing axes are kept)."""
    mean: np.ndarray = row_sum(values) / values.shape[1]
    return mean


def along(points: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """points @ direction for (n, 3) points and one direction, without BLAS: OpenBLAS runs a
    product this thin on every core and its threads then spin, costing more CPU than the
    arithmetic (on the shared machine, ~0.05-0.1 s of CPU per 100k-triangle validation)."""
    x, y, z = (float(v) for v in direction)
    product: np.ndarray = points[:, 0] * x + points[:, 1] * y + points[:, 2] * z
    return product


def turned(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """points @ rows.T for (n, 3) points and (k, 3) rows, one along() per row: (n, k)."""
    return np.column_stack([along(points, row) for row in rows])


def unique(values: np.ndarray) -> np.ndarray:
    """np.unique of a 1-D integer array (sorted distinct values) by one sort: numpy 2's
    hashing np.unique is ~20x slower on hundreds of thousands of int64 keys."""
    ordered = np.sort(values.ravel())
    if len(ordered) == 0:
        return ordered
    distinct: np.ndarray = ordered[np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])]
    return distinct


def stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") of a 1-D integer array. When the keys leave room, each
    key gets its position packed into its low bits and one plain sort does it: numpy's
    stable argsort of 64-bit keys (timsort) is ~7x slower, its quicksort argsort ~1.7x."""
    count = len(keys)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    bits = max(count - 1, 1).bit_length()
    low = int(keys.min())
    if int(keys.max()) - low >= 2 ** (62 - bits):
        order: np.ndarray = np.argsort(keys, kind="stable")
        return order
    packed = ((keys.astype(np.int64) - low) << bits) | np.arange(count, dtype=np.int64)
    packed.sort()
    packed &= (1 << bits) - 1
    return packed
