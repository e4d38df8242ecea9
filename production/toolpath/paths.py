"""What the nozzle draws on each layer (skirt, perimeters, infill), in printing order."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import LinearRing, orient

from production.toolpath.profile import FdmProfile
from production.toolpath.slicing import Slice, as_multipolygon, polygons_of

SKIRT_GAP_MM = 3.0  # between the part's first layer and the innermost skirt loop
INFILL_OVERLAP = 0.15  # of a line width: infill ends reach that far into the innermost perimeter


class Kind(StrEnum):
    """The names PrusaSlicer writes after `;TYPE:`, which G-code viewers colour lines by."""

    SKIRT = "Skirt/Brim"
    EXTERNAL_PERIMETER = "External perimeter"
    PERIMETER = "Perimeter"
    SOLID_INFILL = "Solid infill"
    SPARSE_INFILL = "Internal infill"


@dataclass(frozen=True)
class Path:
    kind: Kind
    points: np.ndarray  # (n, 2) bed mm, in drawing order; a loop repeats its first point


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
    depth = profile.top_bottom_layers
    position = np.array(start, dtype=float)
    plans = []
    for index, layer in enumerate(slices):
        # The layers whose material decides whether this one is near a top or bottom
        # surface; None when the first or last layer is that close.
        neighbours = (
            None
            if index - depth < 0 or index + depth >= len(slices)
            else [s.region for s in slices[index - depth : index + depth + 1] if s is not layer]
        )
        paths: list[Path] = []
        if index == 0:
            paths += _skirt(layer.region, profile, position)
        angle = 45.0 if index % 2 == 0 else -45.0
        islands = list(layer.region.geoms)
        while islands:
            if paths:
                position = paths[-1].points[-1]
            here = Point(position)
            island = islands.pop(min(range(len(islands)), key=lambda i: islands[i].distance(here)))
            paths += _island_paths(island, neighbours, angle, profile, position)
        if paths:
            position = paths[-1].points[-1]
        plans.append(LayerPlan(layer.z_mm, layer.height_mm, layer.region, tuple(paths)))
    return plans


def _skirt(region: MultiPolygon, profile: FdmProfile, position: np.ndarray) -> list[Path]:
    width = profile.line_width_mm
    hull = region.convex_hull
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


def _island_paths(
    island: Polygon,
    neighbours: list[MultiPolygon] | None,
    angle: float,
    profile: FdmProfile,
    position: np.ndarray,
) -> list[Path]:
    width = profile.line_width_mm
    paths: list[Path] = []
    for level in range(profile.perimeters):  # outer perimeter first
        inset = island.buffer(-(width / 2 + level * width), join_style="mitre")
        rings: list[LinearRing] = []
        for polygon in polygons_of(inset):
            oriented = orient(polygon)  # outlines counter-clockwise, holes clockwise
            rings += [oriented.exterior, *oriented.interiors]
        if not rings:
            break  # the island is too thin for more loops
        kind = Kind.EXTERNAL_PERIMETER if level == 0 else Kind.PERIMETER
        while rings:
            here = Point(position)
            ring = rings.pop(min(range(len(rings)), key=lambda i: rings[i].distance(here)))
            paths.append(_loop(kind, ring, position))
            position = paths[-1].points[-1]

    inset = profile.perimeters * width - INFILL_OVERLAP * width if profile.perimeters else width / 2
    area = island.buffer(-inset, join_style="mitre")
    if area.is_empty:
        return paths
    # Solid pieces thinner than a line are noise from comparing near-identical sections.
    bare = _exposed(area, neighbours)
    solid = as_multipolygon(
        area.intersection(
            bare.buffer(-width / 2, join_style="mitre").buffer(width / 2, join_style="mitre")
        )
    )
    segments = [(Kind.SOLID_INFILL, s) for s in _scan_lines(solid, angle, width, width)]
    if profile.infill_density > 0:
        sparse = area.difference(solid)
        spacing = width / profile.infill_density
        segments += [(Kind.SPARSE_INFILL, s) for s in _scan_lines(sparse, angle, spacing, width)]
    paths += _nearest_segments(segments, position)
    return paths


def _exposed(area: BaseGeometry, neighbours: list[MultiPolygon] | None) -> BaseGeometry:
    """Where the infill area lies within `top_bottom_layers` of a top or bottom surface: under
    or over a spot where one of the neighbouring layers has no material. That part of the
    layer is printed solid, the rest sparse."""
    if neighbours is None:
        return area
    gaps = [area.difference(region) for region in neighbours if not region.contains(area)]
    return shapely.union_all(gaps) if gaps else MultiPolygon()


def _loop(kind: Kind, ring: LinearRing, position: np.ndarray) -> Path:
    """The closed ring as a path starting (the seam) at its vertex nearest the nozzle."""
    corners = np.asarray(ring.coords)[:-1]
    seam = int(np.argmin(np.hypot(*(corners - position).T)))
    corners = np.roll(corners, -seam, axis=0)
    return Path(kind, np.vstack([corners, corners[:1]]))


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
