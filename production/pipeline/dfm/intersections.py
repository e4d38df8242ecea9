"""Faces that cross each other: a folded surface, or bodies that overlap.

Two triangles that share no vertex cross when each has corners strictly on both sides of the
other's plane and their spans along the line where the planes meet overlap (Möller's
interval test). Touching is not crossing: faces lying on each other, or meeting along a
line, have corners on the other's plane, not beyond it. "Strictly" means by more than a
millionth of the part's size, far above float rounding and far below anything printable.

Which pairs to test: those whose bounding boxes overlap and that share no vertex, found with
the uniform grid the wall rays use too (rays.Grid: cells as big as most faces' boxes, the
faces sharing a cell side by side and, within it, by the low x of their boxes, so that each
face's candidates are a sweep along x) rather than one R-tree query per face, which costs
seconds at 100k faces. The few faces too big for the grid are looked up in the R-tree.
"""

import numpy as np

from . import rays
from .arrays import row_max, row_min
from .rays import RayCaster, TooCrowded, cross

_RELATIVE_TOLERANCE = 1e-6
_CHUNK = 500_000  # pairs given the exact test at once (a few hundred MB of temporaries)


def crossing_pairs(faces: np.ndarray, caster: RayCaster) -> np.ndarray:
    """(k, 2) indices of face pairs that cross, each pair once, lower index first."""
    triangles = caster.triangles
    tolerance = _RELATIVE_TOLERANCE * float(caster.size.max())
    a, b = apart_pairs(faces, caster)
    crossing = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), _CHUNK):
        part = slice(start, start + _CHUNK)
        crossing[part] = _cross(triangles[a[part]], triangles[b[part]], tolerance)
    a, b = a[crossing], b[crossing]
    order = np.lexsort((b, a))  # by the first face, then the second
    return np.column_stack([a[order], b[order]])


def apart_pairs(faces: np.ndarray, caster: RayCaster) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of faces whose boxes overlap (touching counts) and that share no vertex,
    once each, lower index first. TooCrowded when the grid would hand out more candidate
    pairs than rays.MAX_PAIRS allows (faces piled into one spot)."""
    lows, highs = caster.lows, caster.highs
    corners = faces.astype(np.int32) if faces.max() < 2**31 else faces
    grid = caster.grid  # the wall rays' grid: built once for both
    found_a, found_b = [], []
    if grid is not None and len(grid.faces):
        face, corner, sizes = grid.faces, grid.corners, grid.sizes
        # A sweep along x per cell. Two boxes that share a cell and overlap count in only one
        # of their shared cells, the one holding the low corner of their overlap: there, along
        # each axis, at least one of the two is in its own lowest cell (its `corner` bit is
        # clear). Along x the grid's order gives those pairs as ranges: a cell's entries of
        # faces beginning in an earlier x cell come first, then those beginning in this one,
        # each part by low x. An entry beginning here pairs with the later ones beginning here
        # whose low x is at most its high x; an entry from an earlier cell (so with a lower
        # low x than any beginning here) with those beginning here up to the same limit.
        n = len(lows)
        cell = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        begins_here = (corner & 1) == 0
        placed = (cell * 2 + begins_here) * n + grid.rank[face]  # sorted, as the grid is
        # Faces ranked below `reach` in low-x order have a low x at most this face's high x.
        reach = np.searchsorted(lows[grid.by_low_x, 0], highs[:, 0], side="right")[face]
        end = np.searchsorted(placed, (cell * 2 + 1) * n + reach)
        here = np.searchsorted(placed, (np.arange(len(sizes), dtype=np.int64) * 2 + 1) * n)
        begin = np.where(begins_here, np.arange(len(face)) + 1, np.repeat(here, sizes))
        later = np.maximum(end - begin, 0)
        sharing = int((sizes * (sizes - 1) // 2).sum())  # pairs of entries sharing a cell
        if sharing > 4 * rays.MAX_PAIRS:
            raise TooCrowded(f"more than {4 * rays.MAX_PAIRS} faces sharing grid cells")
        # Per entry, in cell order, one array per bound and corner: the pairs below read them
        # from nearby memory, and numpy gathers from 1-D arrays fastest.
        bounds = [side[axis][face] for side in (caster.lows_by_axis, caster.highs_by_axis)
                  for axis in (1, 2)]  # fmt: skip
        vertices = [np.ascontiguousarray(corners[:, i])[face] for i in range(3)]
        # The pairs go k-th partner by k-th partner: step k pairs every entry with more than k
        # partners with its k-th (begin + k). Each step's arrays are at most one per entry,
        # so nothing is repeated out per pair and no step outgrows the caches. Indices stay
        # int64 and filters go through np.flatnonzero: numpy converts int32 indices to int64
        # on every gather (3x the cost), and indexing by a boolean mask is several times
        # slower than by the mask's positions.
        active = np.flatnonzero(later)
        step = 0
        while len(active):
            first, second = active, begin[active] + step
            # Counted once (see above): along x the ranges saw to it, y and z are left.
            keep = np.flatnonzero((corner[first] & corner[second]) == 0)
            first, second = first[keep], second[keep]
            for axis in range(2):  # y, then z: the sweep kept only pairs overlapping along x
                low, high = bounds[axis], bounds[axis + 2]
                keep = np.flatnonzero((low[first] <= high[second]) & (low[second] <= high[first]))
                first, second = first[keep], second[keep]
            apart = np.flatnonzero(
                ~_share_vertex(
                    [column[first] for column in vertices], [column[second] for column in vertices]
                )
            )
            found_a.append(face[first[apart]])
            found_b.append(face[second[apart]])
            step += 1
            active = active[np.flatnonzero(later[active] > step)]
    big = grid.big if grid is not None else np.arange(len(lows))
    if len(big):
        # Faces too big for the grid: ask the R-tree. A pair of two of them comes back twice.
        query, other = caster.overlapping(lows[big], highs[big])
        query = big[query]
        keep = ~(np.isin(other, big) & (query >= other))
        query, other = query[keep], other[keep]
        keep = ~_share_vertex(list(corners[query].T), list(corners[other].T))
        found_a.append(query[keep])
        found_b.append(other[keep])
    a = np.concatenate(found_a) if found_a else np.zeros(0, dtype=np.int64)
    b = np.concatenate(found_b) if found_b else np.zeros(0, dtype=np.int64)
    return np.minimum(a, b), np.maximum(a, b)


def _share_vertex(first: list[np.ndarray], second: list[np.ndarray]) -> np.ndarray:
    """Row-wise: two faces, as their three vertex-index columns, have a vertex in common."""
    shared = np.zeros(len(first[0]), dtype=bool)
    for mine in first:
        for theirs in second:
            shared |= mine == theirs
    return shared


def _cross(first: np.ndarray, second: np.ndarray, tolerance: float) -> np.ndarray:
    """Row-wise Möller interval test for triangle pairs. Most pairs have the first triangle
    wholly on one side of the second's plane: the rest of the test runs on the others only
    (the same arithmetic per row, so the same answers)."""
    crossing = np.zeros(len(first), dtype=bool)
    second_normal = _unit_normals(second)
    to_second = np.einsum("ijk,ik->ij", first - second[:, None, 0], second_normal)
    left = np.flatnonzero(_straddles(to_second, tolerance))
    first, second, second_normal, to_second = (
        first[left], second[left], second_normal[left], to_second[left]
    )  # fmt: skip
    first_normal = _unit_normals(first)
    to_first = np.einsum("ijk,ik->ij", second - first[:, None, 0], first_normal)
    straddle = _straddles(to_first, tolerance)
    line = cross(first_normal, second_normal)
    low1, high1 = _span(first, to_second, line)
    low2, high2 = _span(second, to_first, line)
    overlap = np.minimum(high1, high2) - np.maximum(low1, low2)
    crossing[left] = straddle & (overlap > tolerance)
    return crossing


def _unit_normals(triangles: np.ndarray) -> np.ndarray:
    normals = cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    return unit


def _straddles(distance: np.ndarray, tolerance: float) -> np.ndarray:
    straddles: np.ndarray = (row_max(distance) > tolerance) & (row_min(distance) < -tolerance)
    return straddles


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
    touches = on_plane[:, 0] | on_plane[:, 1] | on_plane[:, 2]
    low = np.where(touches, np.minimum(low, row_min(np.where(on_plane, position, np.inf))), low)
    high = np.where(touches, np.maximum(high, row_max(np.where(on_plane, position, -np.inf))), high)
    return low, high
