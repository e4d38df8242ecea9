"""Ray casting against a triangle mesh: an R-tree of triangle boxes, then Möller–Trumbore.

trimesh's own ray module queries the R-tree with each ray's bounding box over the whole
mesh, which costs seconds per thousand rays on a large part. Wall thickness only needs short
rays (a few millimetres), whose boxes are small, so the same R-tree answers in milliseconds.
"""

from functools import cached_property

import numpy as np
from rtree import index

_PARALLEL = 1e-12  # |det| below this: the ray runs in the triangle's plane
# Box queries run in batches sized to return about _BATCH_PAIRS pairs each, judging by the
# batch before: a hostile mesh (thousands of faces piled into one spot) is noticed after a
# few megabytes, not after the R-tree has filled the memory.
_FIRST_BATCH, _MAX_BATCH, _BATCH_PAIRS = 64, 16_384, 1_000_000
MAX_PAIRS = 5_000_000  # a normal mesh makes ~15 pairs per face; this is 50 per face at 100k


class TooCrowded(Exception):
    """More box overlaps than MAX_PAIRS: faces are piled on top of each other."""


class RayCaster:
    """One per mesh, then cast as many batches as needed. The R-tree (0.2 s for 200k
    triangles) is built on the first cast: many meshes never need one."""

    def __init__(self, triangles: np.ndarray) -> None:
        self.triangles = triangles

    @cached_property
    def lows(self) -> np.ndarray:
        """Each triangle's box, low corner (np.minimum over the corners: .min(axis=1) over
        an axis of three is several times slower)."""
        corners = self.triangles
        return np.minimum(np.minimum(corners[:, 0], corners[:, 1]), corners[:, 2])

    @cached_property
    def highs(self) -> np.ndarray:
        corners = self.triangles
        return np.maximum(np.maximum(corners[:, 0], corners[:, 1]), corners[:, 2])

    @cached_property
    def tree(self) -> index.Index:
        properties = index.Property()
        properties.dimension = 3
        ids = np.arange(len(self.triangles), dtype=np.int64)
        return index.Index((ids, self.lows, self.highs), properties=properties)

    def overlapping(self, lows: np.ndarray, highs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query, triangle) index pairs whose boxes overlap; TooCrowded past MAX_PAIRS."""
        queries, triangles, found = [], [], 0
        start, batch = 0, _FIRST_BATCH
        while start < len(lows):
            end = start + batch
            ids, counts = self.tree.intersection_v(lows[start:end], highs[start:end])
            found += len(ids)
            if found > MAX_PAIRS:
                raise TooCrowded(f"more than {MAX_PAIRS} overlapping boxes")
            queries.append(
                np.repeat(np.arange(start, start + len(counts)), counts.astype(np.int64))
            )
            triangles.append(ids.astype(np.int64))
            per_query = max(len(ids) / max(len(counts), 1), 1.0)
            start, batch = end, int(min(max(_BATCH_PAIRS / per_query, _FIRST_BATCH), _MAX_BATCH))
        if not queries:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(queries), np.concatenate(triangles)

    def nearest_both_ways(
        self, points: np.ndarray, directions: np.ndarray, near: float, far: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Along each line through a point in its (unit) direction: the distance to and index
        of the nearest triangle behind the point and the nearest ahead of it, counting only
        those between `near` and `far` away (inf and -1 where none)."""
        count = len(points)
        ends = [points + directions * sign * reach for sign in (-1, 1) for reach in (near, far)]
        # One R-tree query per side: a box around both sides would hold twice the triangles.
        lows = np.concatenate([np.minimum(ends[0], ends[1]), np.minimum(ends[2], ends[3])])
        highs = np.concatenate([np.maximum(ends[0], ends[1]), np.maximum(ends[2], ends[3])])
        query, triangle = self.overlapping(lows, highs)
        line = query % count
        t, hit = segment_hits(points[line], directions[line], self.triangles[triangle])
        found = []
        for side in (-1.0, 1.0):
            distance = side * t
            keep = hit & (distance > near) & (distance <= far)
            found += _nearest(count, line[keep], triangle[keep], distance[keep])
        return found[0], found[1], found[2], found[3]

    def crossings(
        self, origin: np.ndarray, direction: np.ndarray, reach: float, ignore: np.ndarray
    ) -> int:
        """How many triangles one ray passes through, leaving out those where `ignore` is
        True: an odd count means the origin is inside the other triangles' solid."""
        _, triangle, _ = self._hits(origin[None, :], direction[None, :], reach)
        return int((~ignore[triangle]).sum())

    def _hits(
        self, origins: np.ndarray, directions: np.ndarray, reach: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ends = origins + directions * reach
        ray, triangle = self.overlapping(np.minimum(origins, ends), np.maximum(origins, ends))
        t, hit = segment_hits(origins[ray], directions[ray], self.triangles[triangle])
        hit &= (t > 0) & (t <= reach)
        return ray[hit], triangle[hit], t[hit]


def _nearest(
    count: int, line: np.ndarray, triangle: np.ndarray, distance: np.ndarray
) -> list[np.ndarray]:
    """Per line, the smallest distance and its triangle (inf and -1 where none)."""
    order = np.lexsort((distance, line))
    line, triangle, distance = line[order], triangle[order], distance[order]
    first = np.ones(len(line), dtype=bool)
    first[1:] = line[1:] != line[:-1]
    nearest = np.full(count, np.inf)
    face = np.full(count, -1, dtype=np.int64)
    nearest[line[first]] = distance[first]
    face[line[first]] = triangle[first]
    return [nearest, face]


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (n, 3) arrays: np.cross's arithmetic, without the copies
    and axis juggling that make it several times slower on large arrays."""
    ax, ay, az = a[:, 0], a[:, 1], a[:, 2]
    bx, by, bz = b[:, 0], b[:, 1], b[:, 2]
    return np.column_stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx])


def segment_hits(
    origins: np.ndarray, directions: np.ndarray, triangles: np.ndarray, margin: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Möller–Trumbore for matching rows: the ray parameter t, and whether the ray meets the
    triangle at least `margin` (in barycentric units) inside its edges."""
    v0 = triangles[:, 0]
    e1 = triangles[:, 1] - v0
    e2 = triangles[:, 2] - v0
    p = cross(directions, e2)
    det = np.einsum("ij,ij->i", e1, p)
    usable = np.abs(det) > _PARALLEL
    inverse = np.divide(1.0, det, out=np.zeros_like(det), where=usable)
    s = origins - v0
    u = np.einsum("ij,ij->i", s, p) * inverse
    q = cross(s, e1)
    v = np.einsum("ij,ij->i", directions, q) * inverse
    t = np.einsum("ij,ij->i", e2, q) * inverse
    inside = usable & (u >= margin) & (v >= margin) & (u + v <= 1 - margin)
    return t, inside
