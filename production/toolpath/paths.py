"""What the nozzle draws on each layer (skirt, brim, perimeters, gap fill, solid, bridge and
sparse infill), in printing order."""

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import LinearRing, orient

from production.toolpath.combing import arc_lengths, around_ring
from production.toolpath.profile import FdmProfile
from production.toolpath.slicing import NOTHING, Slice, as_multipolygon, point_at, polygons_of

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
# In spacings: what is left inside the perimeters up to this thick is tiled with gap-fill
# lines along it rather than crossed by short infill lines (whose ends would overlap the
# perimeters on both sides and leave corners at both ends).
THIN_STRIP = 3.5
# Of a gap-fill band: a strip is thinned by this much on either side before its medial axis
# is taken, so the axis has no branches into the strip's corners.
CENTRE_THINNING = 0.35
# A strip filling this much of its smallest enclosing rectangle is straight: its centre line
# is the rectangle's long axis, no medial axis needed.
RECTANGULAR = 0.97
GAP_REFILLS = 2  # rounds of gap fill for what the previous round's lines left of a gap
LEFTOVER_MIN_AREA = 0.25  # of a line width squared: smaller gaps are specks


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
    return list(iter_layers(slices, profile, start=start))


def iter_layers(
    slices: Sequence[Slice], profile: FdmProfile, *, start: tuple[float, float]
) -> Iterator[LayerPlan]:
    """plan_layers one layer at a time, each as soon as it is planned."""
    # Caches of this part's gaps and islands, not stores across parts.
    _centre_lines.cache_clear()
    _walls.cache_clear()
    # Each region prepared (for the many `contains` checks below) and its bytes taken once:
    # the layers of a straight stretch share one region object.
    by_region: dict[int, bytes] = {}
    for layer in slices:
        if id(layer.region) not in by_region:
            shapely.prepare(layer.region)
            by_region[id(layer.region)] = layer.region.wkb
    top, bottom = profile.top_layers, profile.bottom_layers
    position = np.array(start, dtype=float)
    below_sparse: BaseGeometry = NOTHING
    # A layer's paths follow from its region, its neighbours' regions, where the layer
    # below has sparse infill, its infill angle and height, and where the nozzle starts. The
    # layers of a prismatic stretch (most of a tall simple part) repeat all of that every
    # other layer: such a layer is planned once and its paths reused, the same paths.
    wkb = [by_region[id(layer.region)] for layer in slices]
    planned: dict[tuple[object, ...], tuple[tuple[Path, ...], BaseGeometry]] = {}
    for index, layer in enumerate(slices):
        # The layers whose material decides whether this one is near a top surface (the
        # `top` layers above) or a bottom one (the `bottom` layers below); None when the
        # first or last layer is that close.
        near = (
            None
            if index - bottom < 0 or index + top >= len(slices)
            else [i for i in range(index - bottom, index + top + 1) if i != index]
        )
        neighbours = None if near is None else [slices[i].region for i in near]
        angle = 45.0 if index % 2 == 0 else -45.0
        key = (
            wkb[index],
            None if near is None else tuple(wkb[i] for i in near),
            wkb[index - 1] if index > 0 else None,
            below_sparse.wkb,
            angle,
            layer.height_mm,
            position.tobytes(),
        )
        if index > 0 and key in planned:
            layer_paths, below_sparse = planned[key]
        else:
            layer_paths, below_sparse = _layer_paths(
                index, layer, neighbours, slices, below_sparse, angle, profile, position
            )
            planned[key] = (layer_paths, below_sparse)
        if layer_paths:
            position = layer_paths[-1].points[-1]
        yield LayerPlan(layer.z_mm, layer.height_mm, layer.region, layer_paths)


def _layer_paths(
    index: int,
    layer: Slice,
    neighbours: list[MultiPolygon] | None,
    slices: Sequence[Slice],
    below_sparse: BaseGeometry,
    angle: float,
    profile: FdmProfile,
    position: np.ndarray,
) -> tuple[tuple[Path, ...], BaseGeometry]:
    """One layer's paths (the skirt and brim first on the first layer), and where it has
    sparse infill."""
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
    sparse_union = shapely.union_all(sparse_here) if sparse_here else NOTHING
    return tuple(paths), sparse_union


TWO_OPT_PASSES = 8  # 2-opt passes over the island order; each one only shortens it


def _island_order(islands: list[Polygon], position: np.ndarray) -> list[Polygon]:
    """The order to print a layer's islands in: nearest-neighbour from the nozzle (by distance
    to each island's outline), then improved by 2-opt on the islands' representative points,
    so a plate of parts is printed in one sweep rather than zigzagging back for stragglers."""
    if len(islands) <= 2:
        here = point_at(position)
        return sorted(islands, key=here.distance)
    order: list[int] = []
    left = list(range(len(islands)))
    here = point_at(position)
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


@dataclass(frozen=True)
class _Walls:
    """An island's perimeter loops and what they leave: a pure function of the island's
    outline and the layer's height, so built once per distinct island (_walls)."""

    loops: tuple[tuple[LinearRing, ...], ...]  # each level's rings, outer level first
    gaps: BaseGeometry | None  # for gap fill, between and inside the loops (None: no gap fill)
    area: BaseGeometry  # for infill, reaching INFILL_OVERLAP into the innermost loop


@functools.lru_cache(maxsize=1024)
def _walls(island_wkb: bytes, height: float, profile: FdmProfile) -> _Walls:
    """The perimeters' rings, the gaps and the infill area of one island (its WKB).

    Cached by the island's bytes: the layers of a prismatic stretch repeat their islands
    (the mounting bracket's 306 islands are 135 distinct ones), and where the layers around
    them or the nozzle's start differ, only the seams, the infill and the order change.
    """
    island = shapely.from_wkb(island_wkb)
    width = profile.line_width_mm
    spacing = profile.spacing_mm(height)
    gaps: list[BaseGeometry] = []
    loops: list[tuple[LinearRing, ...]] = []
    # Everything below is measured in spacings: a line of width w lays the material of a
    # flat-sided band one spacing wide, and such bands tile a wall without overlapping. The
    # outer loop's band starts `bulge` inside the outline (its round side fills that).
    # `room` is what the next loops' bands may take, a band on either side of the wall.
    bulge = (width - spacing) / 2
    room: BaseGeometry = island.buffer(-bulge, join_style="mitre")
    for _ in range(profile.perimeters):  # outer perimeter first
        # A loop goes only where both its sides fit side by side: where the room is at least
        # two spacings thick. Where it is thinner, two full loops would overlap (a thin tube
        # wall); gap fill tiles that rest with lines of the width it needs.
        rest = room.buffer(-spacing, join_style="mitre")
        centre = rest.buffer(spacing / 2, join_style="mitre") if not rest.is_empty else rest
        if profile.gap_fill:
            # (Shrinking the room by a hair first keeps its edges off the loops', which
            # would make the difference slow and leave slivers.)
            # What the loop's band reaches: round at corners, as a line turns (a mitred
            # corner would claim a sharp spike of room the loop never covers).
            reached = centre.buffer(spacing / 2) if not rest.is_empty else None
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
            room = NOTHING
            break  # the island is too thin for more loops
        loops.append(tuple(rings))
        room = rest

    if profile.perimeters and len(loops) < profile.perimeters:
        room = NOTHING  # no room left inside the perimeters
    # What is left inside the perimeters: strips up to THIN_STRIP spacings thick are tiled
    # with lines along them (gap fill), the rest is infill.
    area: BaseGeometry = NOTHING
    if not room.is_empty:
        pieces = polygons_of(room)
        thin = [p for p in pieces if _thickness(p) < THIN_STRIP * spacing]
        if profile.gap_fill and thin:
            gaps += thin
            pieces = [p for p in pieces if _thickness(p) >= THIN_STRIP * spacing]
        if pieces:
            # Infill reaches a little into the innermost perimeter, so the two bond.
            area = shapely.union_all(pieces).buffer(INFILL_OVERLAP * spacing, join_style="mitre")
    if not profile.perimeters:
        area = island.buffer(-width / 2, join_style="mitre")
    gap = shapely.union_all(gaps) if profile.gap_fill and gaps else None
    return _Walls(loops=tuple(loops), gaps=gap, area=area)


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
    innermost: list[int] = []  # where the innermost perimeter's loops are in `paths`
    walls = _walls(island.wkb, height, profile)
    for level, level_rings in enumerate(walls.loops):  # outer perimeter first
        rings = list(level_rings)
        innermost = []
        kind = Kind.EXTERNAL_PERIMETER if level == 0 else Kind.PERIMETER
        while rings:
            here = point_at(position)
            ring = rings.pop(min(range(len(rings)), key=lambda i: rings[i].distance(here)))
            innermost.append(len(paths))
            paths.append(_loop(kind, ring, position, seam=profile.seam))
            position = paths[-1].points[-1]
    area = walls.area
    if walls.gaps is not None:
        gap = _widen_into_slivers(walls.gaps, paths, innermost, width)
        gap_paths = _gap_fill(gap, profile, height, position)
        paths += gap_paths
        if gap_paths:
            position = paths[-1].points[-1]
    if area.is_empty:
        return paths, NOTHING
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
    bridge = NOTHING
    if around.below is not None and not solid.is_empty:  # (sparse infill is never a bridge)
        unsupported = shapely.union_all([area.difference(around.below), around.below_sparse])
        bridge = as_multipolygon(
            solid.intersection(
                unsupported.buffer(-width / 2, join_style="mitre").buffer(
                    width / 2, join_style="mitre"
                )
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
    firsts = np.array([path.points[0] for path in paths])
    lasts = np.array([path.points[-1] for path in paths])
    ends, starts = lasts[:-1], firsts[1:]
    gaps = np.hypot(*(starts - ends).T)
    lengths = np.hypot(*(lasts - firsts).T)
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
        shapely.prepare(room)  # for the many links tested against it at once
        edges = shapely.get_rings(polygons_of(area))  # outlines and holes, for _along_edge
        walked: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # ... and their points
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
            along = _along_edge(edges, walked, ends[index], starts[index], longest)
            if along is not None:
                links[index] = along
    # Runs of joined lines, each stacked once (a zigzag of a whole layer joins hundreds).
    runs = [[0]]
    for index in range(len(paths) - 1):
        if index in links:
            runs[-1].append(index + 1)
        else:
            runs.append([index + 1])
    merged = []
    for run in runs:
        first = paths[run[0]]
        if len(run) == 1:
            merged.append(Path(first.kind, points[run[0]], first.width_mm))
            continue
        pieces = [points[run[0]]]
        for index in run[1:]:
            pieces += [links[index - 1], points[index]]
        merged.append(Path(first.kind, np.vstack(pieces), first.width_mm))
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
    rings: np.ndarray,
    walked: dict[int, tuple[np.ndarray, np.ndarray]],
    start: np.ndarray,
    end: np.ndarray,
    longest: float,
) -> np.ndarray | None:
    """The corners of the area's edge (its `rings`, outlines and holes in order) between two
    points on it, the shorter way round, if both lie on the same ring and that way is no
    longer than `longest`. `walked` keeps the points and arc lengths of the rings walked
    (index -> both), for the next link along the same ring."""
    here, there = point_at(start), point_at(end)
    on = (shapely.distance(rings, here) <= LINK_TOLERANCE_MM) & (
        shapely.distance(rings, there) <= LINK_TOLERANCE_MM
    )
    if not on.any():
        return None
    index = int(on.argmax())  # the first ring both lie on
    ring = rings[index]
    if index not in walked:
        corners = shapely.get_coordinates(ring)
        walked[index] = (corners, arc_lengths(corners))
    corners, along = walked[index]
    points = np.array(
        around_ring(
            corners,
            shapely.line_locate_point(ring, here),
            shapely.line_locate_point(ring, there),
            along,
        )
    )
    if np.hypot(*np.diff(points, axis=0).T).sum() > longest:
        return None
    return points


def _gap_fill(
    gaps: BaseGeometry, profile: FdmProfile, height: float, position: np.ndarray, depth: int = 0
) -> list[Path]:
    """Tile every gap at least GAP_MIN_WIDTH of a line thick with lines along it: as many as
    fit at about one spacing each, all of the same width, so they fill it side by side and
    overlap neither each other nor the loops around it (Arachne's variable width, in steps
    of a whole gap). Pairs of lines are loops round the gap, an odd one out runs down its
    middle: a loop round a ring-shaped gap, its medial axis along a strip."""
    width = profile.line_width_mm
    paths: list[Path] = []
    for gap in polygons_of(gaps):
        if gap.area < LEFTOVER_MIN_AREA * width**2 or _thickness(gap) < GAP_MIN_WIDTH * width:
            continue  # specks, or a corner the loops rounded off
        tiles = _tiled(gap, profile, height, position)
        paths += tiles
        if tiles:
            position = tiles[-1].points[-1]
        if depth >= GAP_REFILLS:
            continue
        # A gap of uneven thickness (an arm meeting a thicker part) keeps what its lines,
        # planned for its average thickness, do not reach: tile that too.
        bands = [
            (LinearRing(t.points[:-1]) if _closed(t.points) else LineString(t.points)).buffer(
                (float(t.width_mm or width) - (width - profile.spacing_mm(height))) / 2
            )
            for t in tiles
        ]
        left = gap.buffer(-GAP_EDGE_MM, join_style="mitre")
        if bands:
            left = left.difference(shapely.union_all(bands))
        more = _gap_fill(left, profile, height, position, depth=depth + 1)
        paths += more
        if more:
            position = more[-1].points[-1]
    return paths


def _closed(points: np.ndarray) -> bool:
    return len(points) >= 4 and bool(np.allclose(points[0], points[-1]))


def _tiled(gap: Polygon, profile: FdmProfile, height: float, position: np.ndarray) -> list[Path]:
    """The lines that tile one gap, for its average thickness."""
    width = profile.line_width_mm
    spacing = profile.spacing_mm(height)
    bulge = width - spacing  # what a round-sided line adds to its band, both sides
    paths: list[Path] = []
    thickness = _thickness(gap)
    count = max(1, round(thickness / spacing))
    band = thickness / count
    line_width = band + bulge
    for k in range(count // 2):
        inset = gap.buffer(-(k + 0.5) * band, join_style="mitre")
        rings = [r for p in polygons_of(inset) for r in _rings(orient(p))]
        while rings:
            here = point_at(position)
            ring = rings.pop(min(range(len(rings)), key=lambda i: rings[i].distance(here)))
            if ring.length < width:
                continue
            paths.append(_loop(Kind.GAP_FILL, ring, position, line_width))
            position = paths[-1].points[-1]
    if count % 2 == 0:
        return paths
    core = gap.buffer(-(count // 2) * band, join_style="mitre") if count > 1 else gap
    for piece in polygons_of(core):
        if piece.interiors:
            # A ring: the loop half a band in from its outline.
            middle = Polygon(piece.exterior).buffer(-band / 2, join_style="mitre")
            for polygon in polygons_of(middle):
                paths.append(_loop(Kind.GAP_FILL, orient(polygon).exterior, position, line_width))
                position = paths[-1].points[-1]
            continue
        straight = _straight_centre_line(piece, band)
        lines = (straight,) if straight is not None else _centre_lines(piece.wkb, band)
        for points in lines:
            if np.hypot(*(points[-1] - position)) < np.hypot(*(points[0] - position)):
                points = points[::-1]
            paths.append(Path(Kind.GAP_FILL, points, line_width))
            position = points[-1]
    return paths


def _straight_centre_line(strip: Polygon, band: float) -> np.ndarray | None:
    """The centre line of a strip that is (nearly) a rectangle, down its long axis and ending
    half a band from its ends; None for any other shape, which needs the medial axis."""
    box = strip.minimum_rotated_rectangle
    if not isinstance(box, Polygon) or strip.area < RECTANGULAR * box.area:
        return None
    corners = np.asarray(box.exterior.coords)[:4]
    sides = np.hypot(*np.diff(np.vstack([corners, corners[:1]]), axis=0).T)
    long = 0 if sides[0] >= sides[1] else 1
    ends = np.array(
        [(corners[long] + corners[long - 1]) / 2, (corners[long + 1] + corners[(long + 2) % 4]) / 2]
    )
    length = float(np.hypot(*(ends[1] - ends[0])))
    if length < 2 * band:
        return None
    along = (ends[1] - ends[0]) / length
    return np.array([ends[0] + along * band / 2, ends[1] - along * band / 2])


def _rings(polygon: Polygon) -> list[LinearRing]:
    return [polygon.exterior, *polygon.interiors]


def _thickness(polygon: Polygon) -> float:
    """How thick a strip-like polygon is: area / half the rim for a ring (which has no ends);
    for a strip with ends, the rectangle with this area and rim (area = t (rim / 2 - t))."""
    rim, area = float(polygon.length), float(polygon.area)
    if rim <= 0:
        return 0.0
    if polygon.interiors:
        return 2 * area / rim
    discriminant = max(rim * rim / 4 - 4 * area, 0.0)
    return (rim / 2 - math.sqrt(discriminant)) / 2


@functools.lru_cache(maxsize=256)
def _centre_lines(strip_wkb: bytes, band: float) -> tuple[np.ndarray, ...]:
    """The medial axis of a strip about `band` thick, as polylines ending half a band from
    its ends: the Voronoi edges of its densified rim that lie inside it.

    The strip is thinned first to a sliver along its middle, so the axis's branches into its
    corners are a few µm long and fall away with the edges that come near the rim. Cached
    by the strip's bytes: the layers of a prismatic part have the same gaps, and the Voronoi
    diagram is the costly part of gap fill.
    """
    strip = shapely.from_wkb(strip_wkb)
    sliver = strip.buffer(-CENTRE_THINNING * band, join_style="mitre")
    found: list[np.ndarray] = []
    for piece in polygons_of(sliver):
        half = _thickness(piece) / 2
        step = max(1.5 * half, 0.01)  # points on either side closer than it is thick
        # Fewer, evenly spread points: the diagram's cost grows with them.
        rim = shapely.segmentize(piece.simplify(half / 4), step)
        points = shapely.get_coordinates(rim)
        edges = shapely.get_parts(
            shapely.voronoi_polygons(shapely.multipoints(points), only_edges=True)
        )
        shapely.prepare(piece)
        inside = edges[shapely.contains_properly(piece, edges)]
        if not len(inside):
            continue
        # Branches towards the rim (corners, the rounded ends) come within a fraction of
        # the sliver's half thickness of it; the axis itself keeps about that distance.
        ends = shapely.get_coordinates(inside).reshape(-1, 2, 2)
        boundary = piece.boundary
        near = shapely.distance(boundary, shapely.points(ends.reshape(-1, 2))).reshape(-1, 2)
        axis = inside[near.min(axis=1) >= 0.5 * half]
        if not len(axis):
            continue
        merged = shapely.line_merge(shapely.multilinestrings(list(axis)))
        for line in shapely.get_parts(merged):
            if isinstance(line, LineString) and line.length >= band:
                found.append(np.asarray(line.coords))
    return tuple(found)


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
    pieces = polygons_of(gaps)
    for gap in pieces:
        thickness = 2 * gap.area / gap.length if gap.length > 0 else 0.0
        if not gap.interiors or thickness >= SLIVER_MAX_WIDTH * width:
            rest.append(gap)
            continue
        beside = [i for i in innermost if gap.distance(LineString(paths[i].points)) < width]
        if not beside:
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
    if len(rest) == len(pieces):
        return gaps  # (no sliver: the gaps as they came, already one union)
    return shapely.union_all(rest) if rest else NOTHING


def _exposed(area: BaseGeometry, neighbours: list[MultiPolygon] | None) -> BaseGeometry:
    """Where the infill area lies within `top_layers` / `bottom_layers` of a top or bottom
    surface: under or over a spot where one of the neighbouring layers has no material. That
    part of the layer is printed solid, the rest sparse."""
    if neighbours is None:
        return area
    gaps = [area.difference(region) for region in neighbours if not region.contains(area)]
    return shapely.union_all(gaps) if gaps else NOTHING


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
    corners = shapely.get_coordinates(ring)[:-1]
    if seam == "nearest" or len(corners) < 3:
        start = int(np.argmin(np.hypot(corners[:, 0] - position[0], corners[:, 1] - position[1])))
    elif seam == "corner":
        start = _hidden_corner(corners)
    else:
        start = _rear_most(corners)
    # From the seam round to the seam again.
    return Path(kind, corners[(np.arange(len(corners) + 1) + start) % len(corners)], width_mm)


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
    """Greedy order: always draw the line with the nearest end next, from that end (of equally
    near ends, a start before an end, then the first line)."""
    if not segments:
        return []
    # The lines left to draw, their starts then their ends, in one array each for x and y:
    # one distance per end and one argmin a step, whose first minimum is the start before the
    # end and the first line before later ones. A drawn line's ends move to infinity; once
    # half the lines in the arrays are drawn, they are dropped (the order of the rest kept).
    tips = np.array([points[0] for _, points in segments] + [p[1] for _, p in segments])
    x, y = tips[:, 0].copy(), tips[:, 1].copy()
    lines = np.arange(len(segments))  # which line each start (and end) in x, y belongs to
    left = len(segments)
    paths = []
    for _ in range(len(segments)):
        at = int(np.hypot(x - position[0], y - position[1]).argmin())
        half = len(lines)
        slot = at % half
        kind, points = segments[int(lines[slot])]
        if at >= half:
            points = points[::-1]
        paths.append(Path(kind, points))
        position = points[-1]
        x[slot] = x[slot + half] = np.inf
        left -= 1
        if 2 * left <= half:
            keep = np.isfinite(x[:half])
            lines = lines[keep]
            keep = np.concatenate([keep, keep])
            x, y = x[keep], y[keep]
    return paths
