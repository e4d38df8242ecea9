"""Ray casting against a triangle mesh: find the candidate triangles, then Möller–Trumbore.

trimesh's own ray module queries an R-tree with each ray's bounding box over the whole
mesh, which costs seconds per thousand rays on a large part. Wall thickness only needs short
rays (a few millimetres), whose boxes are small. Those rays walk a uniform grid of triangle
boxes, all rays in step (numpy), which finds the same triangles several times faster than
one R-tree query per ray (~20 µs each in libspatialindex, for ~4 triangles a query); the
R-tree stays for the other queries and for meshes the grid does not suit.
"""

from functools import cached_property

import numpy as np
from rtree import index

from .arrays import column_max, column_min, stable_order, unique

_PARALLEL = 1e-12  # |det| below this: the ray runs in the triangle's plane
# Box queries run in batches sized to return about _BATCH_PAIRS pairs each, judging by the
# batch before: a hostile mesh (thousands of faces piled into one spot) is noticed after a
# few megabytes, not after the R-tree has filled the memory.
_FIRST_BATCH, _MAX_BATCH, _BATCH_PAIRS = 64, 16_384, 1_000_000
MAX_PAIRS = 5_000_000  # a normal mesh makes ~15 pairs per face; this is 50 per face at 100k
_SPAN = 2  # faces whose box spans more grid cells than 1 + this along an axis are "big"
_BRUTE_PAIRS = 2_000_000  # rays times big faces tested one by one, at most
# Above this many triangles the grid's millions of entries take longer to build than the
# R-tree (measured at 1M: 2 s against 1 s on the 2-core machine); below it, far less.
_GRID_MAX_TRIANGLES = 200_000
_MAX_STEPS = 1_000  # grid cells one ray may walk through; past that the R-tree answers
# Cells this many times the median face's box: fewer (cell, face) entries, and the
# self-intersection sweep keeps the extra faces per cell from becoming pairs.
_CELL_FACTOR = 1.5
_OFFSETS = np.array(
    [(x, y, z) for x in range(_SPAN + 1) for y in range(_SPAN + 1) for z in range(_SPAN + 1)]
)
# Per offset, a bit for each axis along which it is not the face's lowest cell.
_RAISED = ((_OFFSETS > 0) * [1, 2, 4]).sum(axis=1).astype(np.int8)
# Per span pattern (x, y and z spans in cells, each 0.._SPAN, as one number): how many of the
# offsets a box with those spans covers, and which, in order (padded with 0).
_COVERED_COUNT = np.array(
    [int((_OFFSETS <= spans).all(axis=1).sum()) for spans in _OFFSETS], dtype=np.int64
)
_COVERED = np.array(
    [np.pad(np.flatnonzero((_OFFSETS <= spans).all(axis=1)), (0, len(_OFFSETS)))[: len(_OFFSETS)]
     for spans in _OFFSETS]
)  # fmt: skip


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
        lows: np.ndarray = np.minimum(np.minimum(corners[:, 0], corners[:, 1]), corners[:, 2])
        return lows

    @cached_property
    def highs(self) -> np.ndarray:
        corners = self.triangles
        highs: np.ndarray = np.maximum(np.maximum(corners[:, 0], corners[:, 1]), corners[:, 2])
        return highs

    @cached_property
    def size(self) -> np.ndarray:
        """The mesh's extents (its corners' box), from the triangles' boxes: a third of the
        rows of the corners'."""
        extents: np.ndarray = column_max(self.highs) - column_min(self.lows)
        return extents

    @cached_property
    def lows_by_axis(self) -> list[np.ndarray]:
        """lows[:, axis] for each axis, contiguous."""
        return [np.ascontiguousarray(self.lows[:, axis]) for axis in range(3)]

    @cached_property
    def highs_by_axis(self) -> list[np.ndarray]:
        return [np.ascontiguousarray(self.highs[:, axis]) for axis in range(3)]

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
            # rtree ships no annotations for intersection_v.
            ids, counts = self.tree.intersection_v(lows[start:end], highs[start:end])  # type: ignore[no-untyped-call]
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
        pairs = self._walked(points, directions, far)
        if pairs is None:
            ends = [points + directions * sign * reach for sign in (-1, 1) for reach in (near, far)]
            # One R-tree query per side: a box around both sides would hold twice the triangles.
            lows = np.concatenate([np.minimum(ends[0], ends[1]), np.minimum(ends[2], ends[3])])
            highs = np.concatenate([np.maximum(ends[0], ends[1]), np.maximum(ends[2], ends[3])])
            query, triangle = self.overlapping(lows, highs)
            line = query % count
        else:
            line, triangle = pairs
        t, hit = segment_hits(points[line], directions[line], self.triangles[triangle])
        found = []
        for side in (-1.0, 1.0):
            distance = side * t
            keep = hit & (distance > near) & (distance <= far)
            found += _nearest(count, line[keep], triangle[keep], distance[keep])
        return found[0], found[1], found[2], found[3]

    @cached_property
    def grid(self) -> "Grid | None":
        """Shared by the wall rays and the self-intersection test."""
        return Grid.of(self.lows, self.highs)

    def _walked(
        self, points: np.ndarray, directions: np.ndarray, far: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(line, triangle) pairs for the segments from each point `far` back to `far` ahead:
        every triangle such a segment can meet, and few others. None where the grid does not
        suit the mesh (then the R-tree answers)."""
        if len(self.triangles) > _GRID_MAX_TRIANGLES:
            return None
        grid = self.grid
        if grid is None or len(grid.big) * len(points) > _BRUTE_PAIRS:
            return None
        starts = points - directions * far
        ends = points + directions * far
        walked = grid.walk(starts, ends)
        if walked is None:
            return None
        line, cell = walked
        position = np.searchsorted(grid.cells, cell)
        position[position == len(grid.cells)] = 0
        occupied = grid.cells[position] == cell
        line, position = line[occupied], position[occupied]
        sizes = grid.sizes[position]
        if int(sizes.sum()) > MAX_PAIRS:
            return None  # faces piled up: the R-tree's batches find out how badly
        entry = np.repeat(grid.starts[position] - np.cumsum(sizes) + sizes, sizes)
        entry += np.arange(len(entry))
        line = np.repeat(line, sizes)
        triangle = grid.faces[entry]
        if len(grid.big):
            # Faces too big for the grid: every line meets every one of them, they are few.
            line = np.concatenate([line, np.repeat(np.arange(len(points)), len(grid.big))])
            triangle = np.concatenate([triangle, np.tile(grid.big, len(points))])
        # Only the boxes that overlap the segment's box (what the R-tree would return).
        # Axis by axis on what is left, gathering from 1-D columns by positions (numpy gathers
        # from a column of a 2-D array, or by a boolean mask, several times slower).
        low, high = np.minimum(starts, ends), np.maximum(starts, ends)
        for axis in range(3):
            keep = np.flatnonzero(
                (self.lows_by_axis[axis][triangle] <= high[:, axis][line])
                & (low[:, axis][line] <= self.highs_by_axis[axis][triangle])
            )
            line, triangle = line[keep], triangle[keep]
        # A triangle in several of a segment's cells counts once.
        key = unique(line * len(self.triangles) + triangle)
        return key // len(self.triangles), key % len(self.triangles)

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


class Grid:
    """Triangles binned into a uniform grid of cells about as wide as their boxes, for walking
    rays cell by cell and for the self-intersection test's face pairs (one grid per mesh,
    built once). Triangles whose boxes span more than _SPAN + 1 cells along an axis are
    left out of it (`big`): callers test those against every ray.

    Each (cell, face) entry also says which of the face's cells it is (`corners`: a bit per
    axis along which the cell lies past the face's lowest one). Within a cell the entries of
    faces that begin in an earlier x cell (x bit set) come first, then those that begin in
    this one, each part by the faces' low x (`rank`: each face's place in `by_low_x`, the
    faces ordered by the low x of their boxes): the self-intersection test reads the faces a
    box may overlap along x off that order as ranges.
    """

    def __init__(
        self,
        origin: np.ndarray,
        cell_mm: float,
        counts: np.ndarray,
        entries: tuple[np.ndarray, np.ndarray, np.ndarray],
        big: np.ndarray,
        by_low_x: np.ndarray,
    ) -> None:
        keys, faces, corners = entries
        rank = np.empty(len(by_low_x), dtype=np.int64)
        rank[by_low_x] = np.arange(len(by_low_x))
        # By cell, x bit set first, then by low x: one int64 sort when they pack into one key.
        begins_here = (corners & 1) == 0
        n = max(len(rank), 1)
        if len(keys) and int(keys.max()) < 2**62 // (2 * n):
            order = stable_order((keys * 2 + begins_here) * n + rank[faces])  # all distinct
        else:
            order = np.lexsort((rank[faces], begins_here, keys))
        keys, self.faces, self.corners = keys[order], faces[order], corners[order]
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else keys
        self.cells = keys[first]  # the occupied cells' keys, sorted
        self.starts = first  # where each occupied cell's faces start in self.faces
        self.sizes = np.diff(np.r_[first, len(keys)])
        self.origin, self.cell_mm, self.counts, self.big = origin, cell_mm, counts, big
        self.by_low_x, self.rank = by_low_x, rank

    @classmethod
    def of(cls, lows: np.ndarray, highs: np.ndarray) -> "Grid | None":
        if len(lows) == 0:
            return None
        sides = highs - lows
        size = np.maximum(np.maximum(sides[:, 0], sides[:, 1]), sides[:, 2])
        span_mm = float((column_max(highs) - column_min(lows)).max())
        # Cell coordinates must pack into one int64 key: at most 2**20 cells along an axis.
        cell_mm = max(float(np.median(size)) * _CELL_FACTOR, span_mm / 2**20, 1e-9)
        origin = column_min(lows) - cell_mm  # a spare cell below: no negative coordinates
        # Boxes grow by a hair so that a ray walked through the cells with float rounding
        # still finds a triangle it meets exactly on a cell's side.
        hair = 1e-6 * cell_mm
        low_cell = np.floor((lows - hair - origin) / cell_mm).astype(np.int64)
        high_cell = np.floor((highs + hair - origin) / cell_mm).astype(np.int64)
        spans = high_cell - low_cell
        fits = (spans[:, 0] <= _SPAN) & (spans[:, 1] <= _SPAN) & (spans[:, 2] <= _SPAN)
        small, big = np.flatnonzero(fits), np.flatnonzero(~fits)
        counts = column_max(high_cell) + 1
        # One entry per (cell, face): which of the (_SPAN + 1)**3 cells from its lowest one
        # each face's box covers, read off a table by the face's spans (cheaper than testing
        # every face against every offset).
        shape = spans[small] if len(big) else spans
        pattern = (shape[:, 0] * (_SPAN + 1) + shape[:, 1]) * (_SPAN + 1) + shape[:, 2]
        many = _COVERED_COUNT[pattern]
        face = np.repeat(small, many)
        within = np.arange(len(face)) - np.repeat(np.cumsum(many) - many, many)
        offset = _COVERED[np.repeat(pattern, many), within]
        # A cell's key is linear in its coordinates: the face's lowest cell's key plus the
        # offset's (the same keys as packing each entry's cell, for a gather per entry).
        keys = _keys(low_cell, counts)[face] + _keys(_OFFSETS, counts)[offset]
        by_low_x = np.argsort(lows[:, 0], kind="stable")
        return cls(origin, cell_mm, counts, (keys, face, _RAISED[offset]), big, by_low_x)

    def walk(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(segment, cell key) for every grid cell each segment passes through (Amanatides
        and Woo's walk, all segments in step); cells outside the grid are left out. None
        when a segment crosses more than _MAX_STEPS cells (tiny cells, long rays)."""
        begin = (starts - self.origin) / self.cell_mm  # in cells
        run = (ends - self.origin) / self.cell_mm - begin
        cell = np.floor(begin).astype(np.int64)
        step = np.sign(run).astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(run != 0, 1 / np.abs(run), np.inf)  # segment fraction per cell
            boundary = np.where(step > 0, cell + 1, cell) - begin
            reach = np.where(run != 0, boundary / run, np.inf)  # fraction to the next side
        last = np.floor(begin + run).astype(np.int64)
        steps = int(np.abs(last - cell).sum(axis=1).max()) if len(cell) else 0
        if steps > _MAX_STEPS:
            return None
        segment = np.arange(len(cell))
        found_segment, found_key = [], []
        active = np.ones(len(cell), dtype=bool)
        for _ in range(steps + 2):  # one more than the cells apart: float rounding
            inside = active & ((cell >= 0) & (cell < self.counts)).all(axis=1)
            found_segment.append(segment[inside])
            found_key.append(
                (cell[inside, 0] * self.counts[1] + cell[inside, 1]) * self.counts[2]
                + cell[inside, 2]
            )
            axis = reach.argmin(axis=1)
            nearest = reach[segment, axis]
            active &= nearest <= 1
            cell[segment, axis] += step[segment, axis]
            reach[segment, axis] += delta[segment, axis]
        return np.concatenate(found_segment), np.concatenate(found_key)


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


def _keys(cells: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One int64 per (x, y, z) cell, for sorting."""
    keys: np.ndarray = (cells[:, 0] * counts[1] + cells[:, 1]) * counts[2] + cells[:, 2]
    return keys
