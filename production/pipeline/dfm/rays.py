"""Ray casting against a triangle mesh: an R-tree of triangle boxes, then Möller–Trumbore.

trimesh's own ray module queries the R-tree with each ray's bounding box over the whole
mesh, which costs seconds per thousand rays on a large part. Wall thickness only needs short
rays (a few millimetres), whose boxes are small, so the same R-tree answers in milliseconds.
"""

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
    """Build once per mesh (0.2 s for 200k triangles), then cast as many batches as needed."""

    def __init__(self, triangles: np.ndarray) -> None:
        self.triangles = triangles
        properties = index.Property()
        properties.dimension = 3
        ids = np.arange(len(triangles), dtype=np.int64)
        self.tree = index.Index(
            (ids, triangles.min(axis=1), triangles.max(axis=1)), properties=properties
        )

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

    def first_hits(
        self, origins: np.ndarray, directions: np.ndarray, reach: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distance to and index of the first triangle each ray meets within `reach`
        (inf and -1 where none). Directions must be unit vectors."""
        ray, triangle, t = self._hits(origins, directions, reach)
        order = np.lexsort((t, ray))
        ray, triangle, t = ray[order], triangle[order], t[order]
        first = np.ones(len(ray), dtype=bool)
        first[1:] = ray[1:] != ray[:-1]
        distance = np.full(len(origins), np.inf)
        face = np.full(len(origins), -1, dtype=np.int64)
        distance[ray[first]] = t[first]
        face[ray[first]] = triangle[first]
        return distance, face

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


def segment_hits(
    origins: np.ndarray, directions: np.ndarray, triangles: np.ndarray, margin: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Möller–Trumbore for matching rows: the ray parameter t, and whether the ray meets the
    triangle at least `margin` (in barycentric units) inside its edges."""
    v0 = triangles[:, 0]
    e1 = triangles[:, 1] - v0
    e2 = triangles[:, 2] - v0
    p = np.cross(directions, e2)
    det = np.einsum("ij,ij->i", e1, p)
    usable = np.abs(det) > _PARALLEL
    inverse = np.divide(1.0, det, out=np.zeros_like(det), where=usable)
    s = origins - v0
    u = np.einsum("ij,ij->i", s, p) * inverse
    q = np.cross(s, e1)
    v = np.einsum("ij,ij->i", directions, q) * inverse
    t = np.einsum("ij,ij->i", e2, q) * inverse
    inside = usable & (u >= margin) & (v >= margin) & (u + v <= 1 - margin)
    return t, inside
