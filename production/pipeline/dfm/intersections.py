"""Faces that cross each other: a folded surface, or bodies that overlap.

Two triangles that share no vertex cross when each has corners strictly on both sides of the
other's plane and their spans along the line where the planes meet overlap (Möller's
interval test). Touching is not crossing: faces lying on each other, or meeting along a
line, have corners on the other's plane, not beyond it. "Strictly" means by more than a
millionth of the part's size, far above float rounding and far below anything printable.
"""

import numpy as np

from .rays import RayCaster

_RELATIVE_TOLERANCE = 1e-6
_CHUNK = 500_000  # candidate pairs tested at once (a few hundred MB of temporaries)


def crossing_pairs(faces: np.ndarray, caster: RayCaster) -> np.ndarray:
    """(k, 2) indices of face pairs that cross, each pair once, lower index first."""
    triangles = caster.triangles
    tolerance = _RELATIVE_TOLERANCE * float(np.ptp(triangles.reshape(-1, 3), axis=0).max())
    a, b = caster.overlapping(triangles.min(axis=1), triangles.max(axis=1))
    keep = a < b
    a, b = a[keep], b[keep]
    shares_vertex = (faces[a][:, :, None] == faces[b][:, None, :]).any(axis=(1, 2))
    a, b = a[~shares_vertex], b[~shares_vertex]
    crossing = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), _CHUNK):
        part = slice(start, start + _CHUNK)
        crossing[part] = _cross(triangles[a[part]], triangles[b[part]], tolerance)
    return np.column_stack([a[crossing], b[crossing]])


def _cross(first: np.ndarray, second: np.ndarray, tolerance: float) -> np.ndarray:
    """Row-wise Möller interval test for triangle pairs."""
    first_normal = _unit_normals(first)
    second_normal = _unit_normals(second)
    to_second = np.einsum("ijk,ik->ij", first - second[:, None, 0], second_normal)
    to_first = np.einsum("ijk,ik->ij", second - first[:, None, 0], first_normal)
    straddle = _straddles(to_second, tolerance) & _straddles(to_first, tolerance)
    line = np.cross(first_normal, second_normal)
    low1, high1 = _span(first, to_second, line)
    low2, high2 = _span(second, to_first, line)
    overlap = np.minimum(high1, high2) - np.maximum(low1, low2)
    return straddle & (overlap > tolerance)


def _unit_normals(triangles: np.ndarray) -> np.ndarray:
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def _straddles(distance: np.ndarray, tolerance: float) -> np.ndarray:
    return (distance.max(axis=1) > tolerance) & (distance.min(axis=1) < -tolerance)


def _span(
    triangles: np.ndarray, distance: np.ndarray, line: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where a triangle meets the other's plane, as an interval along `line`."""
    position = np.einsum("ijk,ik->ij", triangles, line)
    low = np.full(len(triangles), np.inf)
    high = np.full(len(triangles), -np.inf)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        di, dj = distance[:, i], distance[:, j]
        crosses = (di * dj) < 0
        share = np.divide(di, di - dj, out=np.zeros_like(di), where=crosses)
        point = position[:, i] + (position[:, j] - position[:, i]) * share
        low = np.where(crosses, np.minimum(low, point), low)
        high = np.where(crosses, np.maximum(high, point), high)
    on_plane = distance == 0
    low = np.where(
        on_plane.any(axis=1), np.minimum(low, np.where(on_plane, position, np.inf).min(axis=1)), low
    )
    high = np.where(
        on_plane.any(axis=1),
        np.maximum(high, np.where(on_plane, position, -np.inf).max(axis=1)),
        high,
    )
    return low, high
