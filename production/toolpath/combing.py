"""Combing: travel routed inside the part, clear of its perimeters, instead of straight across.

A straight travel that would cross the perimeters (leave the part, or cut through a wall
between two rooms of the same island) oozes a string over them unless the nozzle retracts.
Inside the innermost perimeter (the *comb area*: the layer's region shrunk by the perimeters'
width) the nozzle oozes onto infill that is printed over anyway, so there a travel needs no
retraction. A route in the comb area follows the straight line while it is inside, walks the
boundary ring it leaves through the shorter way round to where the line comes back in, and
is then pulled taut (each corner dropped while the shortcut stays inside).
"""

import numpy as np
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from production.toolpath.slicing import point_at, polygons_of, segment_at

# The comb area is simplified this much (fewer corners to walk); the room a leg may cross is
# the comb area grown by twice that, so the simplified boundary always lies inside it.
SIMPLIFY_MM = 0.02
ROOM_MARGIN_MM = 2 * SIMPLIFY_MM
TOUCH_MM = 1e-6
TAUT_BATCH = 8  # later points tried at once when pulling a route taut (_taut)


class Comb:
    """Routes travel inside one layer's part.

    `inset_mm` is how far inside the outline the comb area begins: the inner edge of the
    innermost perimeter. A travel end outside the comb area (on a perimeter, or an infill end
    that reaches into the innermost one) joins it by its shortest leg, if that leg is no
    longer than `reach_mm` and stays in the region. An end further than `loop_mm` outside the
    comb area lies on a perimeter outside the innermost one: its join crosses that loop.
    """

    def __init__(
        self, region: MultiPolygon, *, inset_mm: float, reach_mm: float, loop_mm: float
    ) -> None:
        self.region = region
        self.loop_mm = loop_mm
        area = region.buffer(-inset_mm, join_style="mitre") if inset_mm > 0 else region
        self.polygons = [
            p for p in polygons_of(area.simplify(SIMPLIFY_MM, preserve_topology=True)) if p.area > 0
        ]
        self.room: BaseGeometry = shapely.union_all(
            [p.buffer(ROOM_MARGIN_MM, join_style="mitre") for p in self.polygons]
        )
        self._polygons = np.array(self.polygons, dtype=object)  # (for shapely's ufuncs)
        self.reach_mm = reach_mm
        shapely.prepare(self.room)
        shapely.prepare(self.region)
        self._rings = [shapely.get_rings(p) for p in self.polygons]  # outline, then holes
        # Each ring's points and how far along it they are, for walking round it.
        self._ring_points = [
            [(points, arc_lengths(points)) for points in map(shapely.get_coordinates, rings)]
            for rings in self._rings
        ]
        # Travels decided by decide_travels: (a, b) -> (crosses, end_crosses).
        self._decided: dict[tuple[float, float, float, float], tuple[bool, bool]] = {}

    def decide_travels(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Answer crosses() and end_crosses() for the travels starts[i] -> ends[i] all at once,
        for those calls to look up: a few GEOS calls for a layer's travels instead of several
        Python calls each (which cost more than the tests themselves). The writer decides a
        layer's travels before it writes them; a travel not decided yet is decided alone."""
        count = len(starts)
        segments = shapely.linestrings(np.stack([starts, ends], axis=1))
        # Crossing: the straight travel leaves the region, or leaves the comb area and comes
        # back in (through a wall between two rooms, or out and back across a notch), or runs
        # further through the perimeters than a join would. (A travel with an end on a
        # perimeter crosses the loops between that end and the comb area whichever way it
        # goes, so a short stretch at an end does not count.)
        crosses = ~shapely.covers(self.region, segments)
        end_crosses = np.zeros(count, dtype=bool)
        if self.polygons:
            # Out of the room: the stretches outside it decide.
            out = np.flatnonzero(~crosses & ~shapely.covers(self.room, segments))
            pieces, owner = shapely.get_parts(
                shapely.difference(segments[out], self.room), return_index=True
            )
            kept = ~shapely.is_empty(pieces)
            pieces, owner = pieces[kept], out[owner[kept]]
            at_end = (shapely.distance(pieces, shapely.points(starts[owner])) <= TOUCH_MM) | (
                shapely.distance(pieces, shapely.points(ends[owner])) <= TOUCH_MM
            )
            crosses[owner[~at_end | (shapely.length(pieces) > self.reach_mm)]] = True
            # Joining the comb area from an end crosses a perimeter loop.
            far = shapely.distance(self.room, shapely.points(np.vstack([starts, ends])))
            end_crosses = (far[:count] > self.loop_mm) | (far[count:] > self.loop_mm)
        for a, b, crossing, joining in zip(
            starts.tolist(), ends.tolist(), crosses.tolist(), end_crosses.tolist(), strict=True
        ):
            self._decided[(a[0], a[1], b[0], b[1])] = (crossing, joining)

    def crosses(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the straight travel crosses the perimeters (decide_travels says how)."""
        return self._decision(a, b)[0]

    def end_crosses(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether joining the comb area from either end crosses a perimeter loop."""
        return self._decision(a, b)[1]

    def _decision(self, a: np.ndarray, b: np.ndarray) -> tuple[bool, bool]:
        key = (float(a[0]), float(a[1]), float(b[0]), float(b[1]))
        decided = self._decided.get(key)
        if decided is None:
            self.decide_travels(np.array([key[:2]]), np.array([key[2:]]))
            decided = self._decided[key]
        return decided

    def route(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """The travel from a to b as points (a and b included) inside the comb area, or None
        when there is no such route (different islands, an end too far outside)."""
        if not self.polygons:
            return None
        if not self.crosses(a, b):
            return np.array([a, b], dtype=float)
        a_in, a_polygon = self._join(a)
        b_in, b_polygon = self._join(b)
        if a_in is None or b_in is None or a_polygon != b_polygon:
            return None
        middle = self._walk(a_polygon, a_in, b_in)
        if middle is None:
            return None
        return _deduplicated(np.vstack([a, _taut(_deduplicated(middle), self.room), b]))

    def _join(self, point: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Where the travel end enters the comb area, and which of its polygons that is."""
        here = point_at(point)
        distances = shapely.distance(self._polygons, here)
        index = int(np.argmin(distances))
        if distances[index] <= TOUCH_MM:
            return np.asarray(point, dtype=float), index
        if distances[index] > self.reach_mm:
            return None, index
        boundary = self.polygons[index].boundary
        entry = boundary.interpolate(boundary.project(here))
        entry_point = np.array([entry.x, entry.y])
        if not self.region.covers(segment_at(point, entry_point)):
            return None, index
        return entry_point, index

    def _walk(self, index: int, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """From a to b inside polygon `index`: along the straight line where it is inside,
        and around the ring it leaves the polygon through, the shorter way, where it is not."""
        rings = self._rings[index]
        segment = segment_at(a, b)
        length = segment.length
        crossings: dict[float, tuple[int, float]] = {}  # along the line: (ring, along the ring)
        # Every ring at once: what it has in common with the line, how near it passes each end.
        common = shapely.intersection(rings, segment)
        ends = shapely.points(np.array([a, b], dtype=float))
        near = shapely.distance(rings[:, None], ends[None, :]) <= TOUCH_MM
        met = ~shapely.is_empty(common) | near.any(axis=1)
        for ring_index in np.flatnonzero(met).tolist():
            hits = shapely.get_parts(common[ring_index])
            # Where the line runs along an edge, both ends of that stretch are crossings.
            touches = shapely.points(
                np.vstack(
                    [
                        shapely.get_coordinates(hits[~shapely.is_empty(hits)]),
                        np.array([a, b], dtype=float)[near[ring_index]],
                    ]
                )
            )
            on_ring = shapely.line_locate_point(rings[ring_index], touches).tolist()
            for along, at in zip(
                shapely.line_locate_point(segment, touches).tolist(), on_ring, strict=True
            ):
                if all(abs(along - t) > TOUCH_MM for t in crossings):
                    crossings[along] = (ring_index, at)
        stops = sorted({0.0, length, *crossings})
        legs = [
            (start, end)
            for start, end in zip(stops[:-1], stops[1:], strict=True)
            if end - start > TOUCH_MM
        ]
        # Which stretches between crossings run inside, all at once (the middle of each).
        inside = shapely.covers(
            self.room,
            shapely.line_interpolate_point(segment, [(start + end) / 2 for start, end in legs]),
        ).tolist()
        leg_ends = shapely.get_coordinates(
            shapely.line_interpolate_point(segment, [end for _, end in legs])
        ).tolist()
        points = [tuple(a)]
        for (start, end), covered, leg_end in zip(legs, inside, leg_ends, strict=True):
            if covered:
                points.append(tuple(leg_end))
                continue
            leave, enter = crossings.get(start), crossings.get(end)
            if leave is None or enter is None or leave[0] != enter[0]:
                return None
            ring_points, along = self._ring_points[index][leave[0]]
            points.extend(around_ring(ring_points, leave[1], enter[1], along))
        points.append(tuple(b))
        return np.array(points, dtype=float)


def around_ring(
    ring: np.ndarray, start: float, end: float, along: np.ndarray | None = None
) -> list[tuple[float, float]]:
    """The points of the closed ring (coords, first repeated last) from arc length `start` to
    `end`, whichever way round is shorter, both ends included. `along`: the ring's
    arc_lengths, if known."""
    if along is None:
        along = arc_lengths(ring)
    total = float(along[-1])
    forward = (end - start) % total
    if forward <= total - forward:
        return _forward(ring, along, start, forward)
    return _forward(ring, along, end, total - forward)[::-1]


def arc_lengths(ring: np.ndarray) -> np.ndarray:
    """How far along the ring each of its points is."""
    steps = np.hypot(*np.diff(ring, axis=0).T)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _forward(
    ring: np.ndarray, along: np.ndarray, start: float, distance: float
) -> list[tuple[float, float]]:
    total = float(along[-1])
    # The ring's corners strictly between `start` and `distance` further on, in that order
    # (a stable sort, as the corners come), with both ends; one numpy pass, no Python loop.
    inner = along[1:-1]
    ahead = (inner - start) % total
    chosen = np.flatnonzero((ahead > 0) & (ahead < distance))
    chosen = chosen[np.argsort(ahead[chosen], kind="stable")]
    stops = np.concatenate([[start], inner[chosen], [(start + distance) % total]])
    index = np.minimum(np.searchsorted(along, stops, side="right") - 1, len(ring) - 2)
    step = along[index + 1] - along[index]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(step <= 0, 0.0, (stops - along[index]) / step)
    points = ring[index] + t[:, None] * (ring[index + 1] - ring[index])
    return [(float(x), float(y)) for x, y in points.tolist()]


def _deduplicated(points: np.ndarray) -> np.ndarray:
    steps = np.hypot(*np.diff(points, axis=0).T)
    return np.vstack([points[:1], points[1:][steps > TOUCH_MM]])


def _taut(points: np.ndarray, room: BaseGeometry) -> np.ndarray:
    """Drop corners while the shortcut stays in the room: from each kept point, jump to the
    furthest later point it sees.

    The later points are tried furthest first, a few, then twice as many nearer ones, and so
    on: a route round a hole of a hundred corners usually sees far, and the first batch that
    has a point in sight has the furthest one.
    """
    if len(points) <= 2:
        return points
    kept = [0]
    last = len(points) - 1
    while kept[-1] < last:
        i = kept[-1]
        nearest = i + 2  # (seeing none of them, the route goes on to the next, i + 1)
        end, batch = last, TAUT_BATCH
        found = i + 1
        while end >= nearest:
            later = np.arange(max(end - batch + 1, nearest), end + 1)
            legs = shapely.linestrings(
                np.stack([np.broadcast_to(points[i], (len(later), 2)), points[later]], axis=1)
            )
            seen = later[shapely.covers(room, legs)]
            if len(seen):
                found = int(seen.max())
                break
            end, batch = later[0] - 1, 2 * batch
        kept.append(found)
    return points[kept]


def length_of(points: np.ndarray) -> float:
    return float(np.hypot(*np.diff(points, axis=0).T).sum())
