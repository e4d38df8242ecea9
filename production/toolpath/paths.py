"""What the nozzle draws on each layer (skirt, brim, perimeters, gap fill, solid, bridge and
sparse infill), in printing order."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import LinearRing, orient

from production.toolpath.combing import around_ring
from production.toolpath.profile import FdmProfile
from production.toolpath.slicing import Slice, as_multipolygon, polygons_of

SKIRT_GAP_MM = 3.0  # between the part's first layer (or its brim) and the innermost skirt loop
# Of a line spacing: infill ends reach that far into the innermost perimeter (PrusaSlicer's
# `infill_overlap`, same default).
INFILL_OVERLAP = 0.25
SOLID_MARGIN_MM = 3.0  # PrusaSlicer's EXTERNAL_INFILL_MARGIN, the same anchoring
SPARSE_LINK = 2.0  # of the sparse line spacing: longest link joining two infill lines
SOLID_LINK = 2.5  # of the solid line spacing: longest link joining two solid infill lines
LINK_TOLERANCE_MM = 0.05  # a link along the infill area's edge may graze it by this much
GAP_MIN_WIDTH = 0.25  # of a line width: thinner gaps are left empty
# Of a line width: a ring-shaped sliver left inside the innermost perimeters that is thinner
# than this gets no loop of its own; the perimeters on either side widen into it instead, as
# PrusaSlicer's Arachne does. The same material, without a third, slow, thin loop.
SLIVER_MAX_WIDTH = 0.5
GAP_EDGE_MM = 0.005


class Kind(StrEnum):
    """The names PrusaSlicer writes after `;TYPE:`, which G-code viewers colour lines by."""

    SKIRT = "Skirt/Brim"
    EXTERNAL_PERIMETER = "External perimeter"
    PERIMETER = "Perimeter"
    SOLID_INFILL = "Solid infill"
    SPARSE_INFILL = "Internal infill"
    GAP_FILL = "Gap fill"
    BRIDGE = "Bridge infill"


@dataclass(frozen=True)
class Path:
    kind: Kind
    points: np.ndarray  # (n, 2) bed mm, in drawing order; a loop repeats its first point
    width_mm: float | None = None  # None: the profile's line width


@dataclass(frozen=True)
class LayerPlan:
    z_mm: float
    height_mm: float
    region: MultiPolygon  # travel that stays inside it needs no retraction
    paths: tuple[Path, ...]


def plan_layers(
    slices: Sequence[Slice], profile: FdmProfile, *, start: tuple[float, float]
) -> list[LayerPlan]:
    """Every layer's paths, each island and path begun where the previous one ended."""
    for layer in slices:
        shapely.prepare(layer.region)  # speeds up the many `contains` checks below
    top, bottom = profile.top_layers, profile.bottom_layers
    position = np.array(start, dtype=float)
    plans = []
    below_sparse: BaseGeometry = MultiPolygon()
    for index, layer in enumerate(slices):
        # The layers whose material decides whether this one is near a top surface (the
        # `top` layers above) or a bottom one (the `bottom` layers below); None when the
        # first or last layer is that close.
        neighbours = (
            None
            if index - bottom < 0 or index + top >= len(slices)
            else [s.region for s in slices[index - bottom : index + top + 1] if s is not layer]
        )
        paths: list[Path] = []
        if index == 0:
            paths += _skirt(layer.region, profile, position)
            if profile.brim_width_mm > 0:
                brim_from = paths[-1].points[-1] if paths else position
                paths += _brim(layer.region, profile, layer.height_mm, brim_from)
        around = _Around(
            neighbours=neighbours,
            below=slices[index - 1].region if index > 0 else None,
            below_sparse=below_sparse,
        )
        angle = 45.0 if index % 2 == 0 else -45.0
        sparse_here: list[BaseGeometry] = []
        if paths:
            position = paths[-1].points[-1]
        for island in _island_order(list(layer.region.geoms), position):
            if paths:
                position = paths[-1].points[-1]
            island_paths, sparse = _island_paths(
                island, around, angle, profile, layer.height_mm, position
            )
            paths += island_paths
            sparse_here.append(sparse)
        below_sparse = shapely.union_all(sparse_here) if sparse_here else MultiPolygon()
        if paths:
            position = paths[-1].points[-1]
        plans.append(LayerPlan(layer.z_mm, layer.height_mm, layer.region, tuple(paths)))
    return plans


TWO_OPT_PASSES = 8  # 2-opt passes over the island order; each one only shortens it


def _island_order(islands: list[Polygon], position: np.ndarray) -> list[Polygon]:
    """The order to print a layer's islands in: nearest-neighbour from the nozzle (by distance
    to each island's outline), then improved by 2-opt on the islands' representative points,
    so a plate of parts is printed in one sweep rather than zigzagging back for stragglers."""
    if len(islands) <= 2:
        here = Point(position)
        return sorted(islands, key=here.distance)
    order: list[int] = []
    left = list(range(len(islands)))
    here = Point(position)
    while left:
        nearest = min(left, key=lambda i: islands[i].distance(here))
        left.remove(nearest)
        order.append(nearest)
        here = islands[nearest].representative_point()
    centres = np.array([position, *(islands[i].representative_point().coords[0] for i in order)])
    tour = _two_opt(centres)
    return [islands[order[i - 1]] for i in tour[1:]]


def _two_opt(points: np.ndarray) -> list[int]:
    """A shorter open path through the points, starting at the first: reverse any stretch
    whose reversal shortens the path, best first, until none does (or TWO_OPT_PASSES)."""
    tour = list(range(len(points)))
    for _ in range(TWO_OPT_PASSES):
        improved = False
        for i in range(len(tour) - 2):
            a, b = points[tour[i]], points[tour[i + 1]]
            rest = np.array(tour[i + 2 :])
            c = points[rest]
            after = np.array(tour[i + 3 :] + [-1])
            d = points[after]
            old = np.hypot(*(b - a)) + np.where(after >= 0, np.hypot(*(d - c).T), 0.0)
            new = np.hypot(*(c - a).T) + np.where(after >= 0, np.hypot(*(d - b).T), 0.0)
            gain = old - new
            best = int(np.argmax(gain))
            if gain[best] > 1e-9:
                j = i + 2 + best
                tour[i + 1 : j + 1] = tour[i + 1 : j + 1][::-1]
                improved = True
        if not improved:
            break
    return tour


def _skirt(region: MultiPolygon, profile: FdmProfile, position: np.ndarray) -> list[Path]:
    width = profile.line_width_mm
    hull = region.convex_hull
    if profile.brim_width_mm > 0:
        hull = hull.buffer(profile.brim_width_mm)
    bed_x, bed_y = profile.bed_mm
    paths = []
    for loop in reversed(range(profile.skirt_loops)):  # outermost first, ending near the part
        outline = hull.buffer(SKIRT_GAP_MM + width / 2 + loop * width)
        x0, y0, x1, y1 = outline.bounds
        if x0 < 0 or y0 < 0 or x1 > bed_x or y1 > bed_y:
            continue  # a part near the bed's size gets fewer loops rather than none on the bed
        for polygon in polygons_of(outline):
            paths.append(_loop(Kind.SKIRT, orient(polygon).exterior, position))
            position = paths[-1].points[-1]
    return paths


def _brim(
    region: MultiPolygon, profile: FdmProfile, height: float, position: np.ndarray
) -> list[Path]:
    """Loops around the outline of the first layer, the innermost touching the part, so the
    part holds on to a wider foot. Holes get none; loops that would leave the bed are dropped."""
    spacing = profile.spacing_mm(height)
    loops = int(profile.brim_width_mm / spacing + 1e-9)
    outline = shapely.union_all([Polygon(p.exterior) for p in region.geoms])
    bed = shapely.box(0, 0, *profile.bed_mm)
    paths: list[Path] = []
    for loop in reversed(range(loops)):  # outermost first, ending at the part
        grown = outline.buffer(profile.line_width_mm / 2 + loop * spacing)
        if not bed.contains(grown):
            continue
        for polygon in polygons_of(grown):
            paths.append(_loop(Kind.SKIRT, orient(polygon).exterior, position))
            position = paths[-1].points[-1]
    return paths


@dataclass(frozen=True)
class _Around:
    """What the layers around one layer hold, for deciding how to fill it."""

    neighbours: list[MultiPolygon] | None  # within top/bottom_layers; None: near the ends
    below: MultiPolygon | None  # the layer under it; None for the first layer
    below_sparse: BaseGeometry  # where the layer under it has sparse infill


def _island_paths(
    island: Polygon,
    around: _Around,
    angle: float,
    profile: FdmProfile,
    height: float,
    position: np.ndarray,
) -> tuple[list[Path], BaseGeometry]:
    """The island's perimeters, gap fill and infill, and where its infill is sparse."""
    width = profile.line_width_mm
    spacing = profile.spacing_mm(height)
    paths: list[Path] = []
    gaps: list[BaseGeometry] = []
    innermost: list[int] = []  # where the innermost perimeter's loops are in `paths`
    # `room` is what the next loop may use; its centre line runs half a line inside it.
    room: BaseGeometry = island
    loops_done = 0
    for level in range(profile.perimeters):  # outer perimeter first
        centre = room.buffer(-width / 2, join_style="mitre")
        if profile.gap_fill:
            # Whatever of the room the loop cannot reach: walls too thin for it, or the
            # sliver left between loops on either side of a thin wall.
            # (Shrinking the room by a hair first keeps its edges off the loop's, which
            # would make the difference slow and leave slivers.)
            reached = centre.buffer(width / 2, join_style="mitre") if not centre.is_empty else None
            gaps.append(
                room
                if reached is None
                else room.buffer(-GAP_EDGE_MM, join_style="mitre").difference(reached)
            )
        rings: list[LinearRing] = []
        for polygon in polygons_of(centre):
            oriented = orient(polygon)  # outlines counter-clockwise, holes clockwise
            rings += [oriented.exterior, *oriented.interiors]
        if not rings:
            break  # the island is too thin for more loops
        loops_done += 1
        innermost = []
        kind = Kind.EXTERNAL_PERIMETER if level == 0 else Kind.PERIMETER
        while rings:
            here = Point(position)
            ring = rings.pop(min(range(len(rings)), key=lambda i: rings[i].distance(here)))
            innermost.append(len(paths))
            paths.append(_loop(kind, ring, position, seam=profile.seam))
            position = paths[-1].points[-1]
        room = centre.buffer(-(spacing - width / 2), join_style="mitre")

    if profile.gap_fill and gaps:
        gap_paths = _gap_fill(shapely.union_all(gaps), profile, height, position)
        paths += gap_paths
        if gap_paths:
            position = paths[-1].points[-1]

    if profile.perimeters and loops_done < profile.perimeters:
        return paths, MultiPolygon()  # no room left inside the perimeters
    # Infill reaches a little into the innermost perimeter, so the two bond.
    inset = (
        width / 2 + (profile.perimeters - 0.5 - INFILL_OVERLAP) * spacing
        if profile.perimeters
        else width / 2
    )
    area = island.buffer(-inset, join_style="mitre")
    if profile.gap_fill and not area.is_empty:
        # A strip too narrow for two infill lines gets one line along it, not a row of specks.
        overlap = INFILL_OVERLAP * spacing
        thin = [p for p in polygons_of(area) if 2 * p.area / p.length < width + 2 * overlap]
        if thin:
            narrowed = shapely.union_all(thin).buffer(-overlap, join_style="mitre")
            narrowed = _widen_into_slivers(narrowed, paths, innermost, width)
            paths += _gap_fill(
                narrowed, profile, height, paths[-1].points[-1] if paths else position
            )
            area = area.difference(shapely.union_all(thin))
    if area.is_empty:
        return paths, MultiPolygon()
    bare = _exposed(area, around.neighbours)
    # Solid pieces thinner than a line are noise from comparing near-identical sections; the
    # rest reaches SOLID_MARGIN_MM further in, so it rests on (and holds) the sparse infill
    # around it rather than ending at the very edge of the surface above or below.
    solid = as_multipolygon(
        area.intersection(
            bare.buffer(-width / 2, join_style="mitre").buffer(width / 2 + SOLID_MARGIN_MM)
        )
    )
    sparse = as_multipolygon(area.difference(solid))
    if profile.infill_density < 1 and profile.solid_infill_below_area_mm2 > 0:
        small = [p for p in sparse.geoms if p.area < profile.solid_infill_below_area_mm2]
        if small:
            solid = as_multipolygon(shapely.union_all([solid, *small]))
            sparse = as_multipolygon(area.difference(solid))
    # Solid infill over air or over sparse infill spans gaps: it is laid as a bridge, round
    # threads of the nozzle's diameter, which sag less than flattened ones.
    unsupported = (
        MultiPolygon()
        if around.below is None
        else shapely.union_all([area.difference(around.below), around.below_sparse])
    )
    bridge = as_multipolygon(
        solid.intersection(
            unsupported.buffer(-width / 2, join_style="mitre").buffer(width / 2, join_style="mitre")
        )
    )
    if not bridge.is_empty:
        solid = as_multipolygon(solid.difference(bridge))
    segments = [
        (Kind.BRIDGE, s) for s in _scan_lines(bridge, angle, profile.bridge_spacing_mm, width)
    ]
    segments += [(Kind.SOLID_INFILL, s) for s in _scan_lines(solid, angle, spacing, width)]
    if profile.infill_density > 0:
        sparse_spacing = spacing / profile.infill_density
        segments += [
            (Kind.SPARSE_INFILL, s) for s in _scan_lines(sparse, angle, sparse_spacing, width)
        ]
    links: dict[Kind, tuple[BaseGeometry, float]] = {
        Kind.SOLID_INFILL: (solid, SOLID_LINK * spacing),
        Kind.BRIDGE: (bridge, SOLID_LINK * profile.bridge_spacing_mm),
    }
    if profile.infill_density > 0:
        links[Kind.SPARSE_INFILL] = (sparse, SPARSE_LINK * sparse_spacing)
    paths += _linked(_nearest_segments(segments, position), links)
    return paths, sparse


def _linked(paths: list[Path], areas: dict[Kind, tuple[BaseGeometry, float]]) -> list[Path]:
    """Infill lines of one kind joined end to start by an extruded link no longer than that
    kind's `longest` where the link stays inside its infill area: straight, or (sparse infill)
    along the area's edge the shorter way round. A zigzag holds to the perimeters better than
    loose lines and needs no travel between them (PrusaSlicer anchors its lines the same way).

    Solid and bridge lines already reach the area's edge, so a link along it would be extra
    material: the two ends it joins are pulled back along their lines by half its length
    first, and the link runs between them, half a spacing in from the edge, as PrusaSlicer
    lays its connections on the infill area shrunk by half a spacing. The same material,
    the corners between the line ends filled."""
    if len(paths) < 2:
        return paths
    points = [path.points.copy() for path in paths]
    ends = np.array([path.points[-1] for path in paths[:-1]])
    starts = np.array([path.points[0] for path in paths[1:]])
    gaps = np.hypot(*(starts - ends).T)
    lengths = np.array([np.hypot(*(path.points[-1] - path.points[0])) for path in paths])
    links: dict[int, np.ndarray] = {}
    for kind, (area, longest) in areas.items():
        if area.is_empty:
            continue
        kinds = np.array([path.kind == kind for path in paths])
        near = kinds[:-1] & kinds[1:] & (gaps <= longest)
        pulled = kind != Kind.SPARSE_INFILL
        if pulled:
            # Both ends of a line may be pulled back: each by at most a quarter of it.
            near &= gaps <= 0.5 * np.minimum(lengths[:-1], lengths[1:])
        candidates = np.flatnonzero(near)
        if not len(candidates):
            continue
        link_from, link_to = ends[candidates], starts[candidates]
        if pulled:
            half = (gaps[candidates] / 2)[:, None]
            link_from = link_from - half * _direction(paths, candidates, last=True)
            link_to = link_to + half * _direction(paths, candidates + 1, last=False)
        room = area.buffer(LINK_TOLERANCE_MM)
        straight = shapely.covers(room, shapely.linestrings(np.stack([link_from, link_to], axis=1)))
        for row, (index, inside) in enumerate(
            zip(candidates.tolist(), straight.tolist(), strict=True)
        ):
            if inside:
                links[index] = np.empty((0, 2))
                points[index][-1] = link_from[row]
                points[index + 1][0] = link_to[row]
                continue
            if pulled:
                continue
            along = _along_edge(area, ends[index], starts[index], longest)
            if along is not None:
                links[index] = along
    merged = [Path(paths[0].kind, points[0], paths[0].width_mm)]
    for index, path in enumerate(paths[1:]):
        if index in links:
            last = merged[-1]
            joined = np.vstack([last.points, links[index], points[index + 1]])
            merged[-1] = Path(last.kind, joined, last.width_mm)
        else:
            merged.append(Path(path.kind, points[index + 1], path.width_mm))
    return merged


def _direction(paths: list[Path], indices: np.ndarray, *, last: bool) -> np.ndarray:
    """Unit vectors along the lines `indices` at their last (pointing out) or first (pointing
    in) end."""
    vectors = np.array(
        [
            paths[i].points[-1] - paths[i].points[-2]
            if last
            else paths[i].points[1] - paths[i].points[0]
            for i in indices.tolist()
        ]
    )
    unit: np.ndarray = vectors / np.hypot(*vectors.T)[:, None]
    return unit


def _along_edge(
    area: BaseGeometry, start: np.ndarray, end: np.ndarray, longest: float
) -> np.ndarray | None:
    """The corners of the area's edge between two points on it, the shorter way round, if
    both lie on the same ring and that way is no longer than `longest`."""
    here, there = Point(start), Point(end)
    for polygon in polygons_of(area):
        for ring in (polygon.exterior, *polygon.interiors):
            if ring.distance(here) > LINK_TOLERANCE_MM or ring.distance(there) > LINK_TOLERANCE_MM:
                continue
            points = np.array(
                around_ring(np.asarray(ring.coords), ring.project(here), ring.project(there))
            )
            if np.hypot(*np.diff(points, axis=0).T).sum() > longest:
                return None
            return points
    return None


def _gap_fill(
    gaps: BaseGeometry, profile: FdmProfile, height: float, position: np.ndarray
) -> list[Path]:
    """One line through the middle of every gap at least GAP_MIN_WIDTH of a line wide, as wide
    as the gap: a straight line along a long, thin gap; a loop along a ring-shaped one."""
    width = profile.line_width_mm
    paths: list[Path] = []
    for gap in polygons_of(gaps):
        rim = gap.length  # outline and holes
        if rim <= 0:
            continue
        thickness = 2 * gap.area / rim  # of a long strip: area / length
        if not GAP_MIN_WIDTH * width <= thickness <= width:
            continue  # specks, or a corner the loops rounded off
        line_width = thickness + height * (1 - math.pi / 4)  # spacing == the gap's thickness
        if gap.interiors:
            middle = Polygon(gap.exterior).buffer(-thickness / 2, join_style="mitre")
            for polygon in polygons_of(middle):
                paths.append(_loop(Kind.GAP_FILL, orient(polygon).exterior, position, line_width))
                position = paths[-1].points[-1]
            continue
        box = np.asarray(gap.minimum_rotated_rectangle.exterior.coords)[:4]
        sides = np.hypot(*np.diff(np.vstack([box, box[:1]]), axis=0).T)
        long = 0 if sides[0] >= sides[1] else 1
        ends = np.array(
            [(box[long] + box[long - 1]) / 2, (box[long + 1] + box[(long + 2) % 4]) / 2]
        )
        if np.hypot(*(ends[1] - ends[0])) < width:
            continue
        for piece in shapely.get_parts(gap.intersection(LineString(ends))):
            if not isinstance(piece, LineString) or piece.length < width:
                continue
            points = np.asarray(piece.coords)
            if np.hypot(*(points[-1] - position)) < np.hypot(*(points[0] - position)):
                points = points[::-1]
            paths.append(Path(Kind.GAP_FILL, points, line_width))
            position = points[-1]
    return paths


def _widen_into_slivers(
    gaps: BaseGeometry, paths: list[Path], innermost: list[int], width: float
) -> BaseGeometry:
    """Widen the innermost perimeter loops (`paths[i]` for i in `innermost`, replaced in place)
    over every ring-shaped gap thinner than SLIVER_MAX_WIDTH of a line that runs between them;
    return the gaps still to fill.

    The loops along a sliver share its area: each gets `area / their total length` wider and
    moves half that towards the sliver, so its outer edge stays where it was and its inner
    edge closes the sliver from its side.
    """
    rest = []
    for gap in polygons_of(gaps):
        thickness = 2 * gap.area / gap.length if gap.length > 0 else 0.0
        beside = [i for i in innermost if gap.distance(LineString(paths[i].points)) < width]
        if not gap.interiors or thickness >= SLIVER_MAX_WIDTH * width or not beside:
            rest.append(gap)
            continue
        lines = {i: LinearRing(paths[i].points[:-1]) for i in beside}
        extra = gap.area / sum(line.length for line in lines.values())
        for i, line in lines.items():
            path = paths[i]
            shifted = [line.offset_curve(side * extra / 2, join_style="mitre") for side in (1, -1)]
            towards = min(shifted, key=gap.distance)  # the side the sliver is on
            ring = LinearRing(towards.coords) if isinstance(towards, LineString) else line
            old_width = width if path.width_mm is None else path.width_mm
            paths[i] = _loop(path.kind, ring, path.points[0], old_width + extra)
    return shapely.union_all(rest) if rest else MultiPolygon()


def _exposed(area: BaseGeometry, neighbours: list[MultiPolygon] | None) -> BaseGeometry:
    """Where the infill area lies within `top_layers` / `bottom_layers` of a top or bottom
    surface: under or over a spot where one of the neighbouring layers has no material. That
    part of the layer is printed solid, the rest sparse."""
    if neighbours is None:
        return area
    gaps = [area.difference(region) for region in neighbours if not region.contains(area)]
    return shapely.union_all(gaps) if gaps else MultiPolygon()


def _loop(
    kind: Kind,
    ring: LinearRing,
    position: np.ndarray,
    width_mm: float | None = None,
    *,
    seam: str = "nearest",
) -> Path:
    """The closed ring as a path starting (the seam) where `seam` says: at its vertex nearest
    the nozzle, the rear-most one ("aligned": the seams of all layers line up), or hidden in
    its sharpest corner ("corner")."""
    corners = np.asarray(ring.coords)[:-1]
    if seam == "nearest" or len(corners) < 3:
        start = int(np.argmin(np.hypot(*(corners - position).T)))
    elif seam == "corner":
        start = _hidden_corner(corners)
    else:
        start = _rear_most(corners)
    corners = np.roll(corners, -start, axis=0)
    return Path(kind, np.vstack([corners, corners[:1]]), width_mm)


SEAM_CORNER_DEG = 20.0  # a turn sharper than this is a corner a seam can hide in


def _rear_most(corners: np.ndarray) -> int:
    """The vertex with the largest Y (the back of the bed), the leftmost of equals: the same
    spot on every layer of a straight wall."""
    return int(np.lexsort((corners[:, 0], -np.round(corners[:, 1], 3)))[0])


def _hidden_corner(corners: np.ndarray) -> int:
    """The sharpest concave corner (turning right: the material lies left of a loop, outline
    or hole, as orient() turns them), where a seam hides in the inner angle; else the
    sharpest convex one; a round loop has neither and gets the rear-most point."""
    incoming = corners - np.roll(corners, 1, axis=0)
    outgoing = np.roll(corners, -1, axis=0) - corners
    turn = np.degrees(
        np.arctan2(
            incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0],
            (incoming * outgoing).sum(axis=1),
        )
    )
    if turn.min() < -SEAM_CORNER_DEG:
        return int(np.argmin(turn))
    if turn.max() > SEAM_CORNER_DEG:
        return int(np.argmax(turn))
    return _rear_most(corners)


def _scan_lines(
    area: BaseGeometry, angle: float, spacing: float, shortest: float
) -> list[np.ndarray]:
    """Parallel lines `spacing` apart, clipped to the area, as (2, 2) arrays of end points.

    The lines lie on a grid fixed to the bed origin, so sparse lines of layers with the same
    angle stack on each other. Clipping is the classic scanline fill: every ring edge is
    crossed by the lines between its ends, and along each line the crossings pair up into
    inside stretches (even-odd, so holes stay empty). Pieces shorter than `shortest` are
    specks a nozzle cannot draw.
    """
    polygons = polygons_of(area)
    if not polygons:
        return []
    along = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    across = np.array([-along[1], along[0]])
    rings = [np.asarray(r.coords) for p in polygons for r in (p.exterior, *p.interiors)]
    tails = np.vstack([ring[:-1] for ring in rings])
    heads = np.vstack([ring[1:] for ring in rings])
    tail_u, tail_v = tails @ along, tails @ across  # u along the lines, v across them
    head_u, head_v = heads @ along, heads @ across
    # Line k lies at v = k * spacing and crosses an edge when low <= v < high: half-open, so
    # a line through a vertex counts it once, for the one edge that starts or ends there.
    first = np.ceil(np.minimum(tail_v, head_v) / spacing).astype(np.int64)
    stop = np.ceil(np.maximum(tail_v, head_v) / spacing).astype(np.int64)
    counts = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(len(tails)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    line = first[edge] + step
    v = line * spacing
    t = (v - tail_v[edge]) / (head_v[edge] - tail_v[edge])
    u = tail_u[edge] + t * (head_u[edge] - tail_u[edge])
    order = np.lexsort((u, line))
    line, u = line[order], u[order]
    enter, leave = u[0::2], u[1::2]  # every line crosses closed rings an even number of times
    offset = line[0::2] * spacing
    keep = leave - enter >= shortest
    starts = offset[keep, None] * across + enter[keep, None] * along
    ends = offset[keep, None] * across + leave[keep, None] * along
    return list(np.stack([starts, ends], axis=1))


def _nearest_segments(segments: list[tuple[Kind, np.ndarray]], position: np.ndarray) -> list[Path]:
    """Greedy order: always draw the line with the nearest end next, from that end."""
    if not segments:
        return []
    starts = np.array([points[0] for _, points in segments])
    ends = np.array([points[1] for _, points in segments])
    done = np.zeros(len(segments), dtype=bool)
    paths = []
    for _ in range(len(segments)):
        to_start = np.where(done, np.inf, np.hypot(*(starts - position).T))
        to_end = np.where(done, np.inf, np.hypot(*(ends - position).T))
        nearest_start, nearest_end = int(np.argmin(to_start)), int(np.argmin(to_end))
        if to_start[nearest_start] <= to_end[nearest_end]:
            index, points = nearest_start, segments[nearest_start][1]
        else:
            index, points = nearest_end, segments[nearest_end][1][::-1]
        done[index] = True
        paths.append(Path(segments[index][0], points))
        position = points[-1]
    return paths
