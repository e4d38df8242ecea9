"""Arrangement: which plate each copy goes on, where, and turned how. Pure and deterministic.

Footprints (each part's outline on the bed, holes filled) go in; plates of placements come out,
as few as the bottom-left fill below finds, and a reason for every copy it cannot place.

How: a bottom-left fill over a raster of the bed (`cell_mm` squares), first fit over plates,
largest footprints first. Every footprint, turned by each allowed rotation and grown by half the
spacing, is rastered *conservatively*: a cell is marked when any point of it is within reach, so
two copies whose marked cells do not meet are at least `spacing_mm` apart in exact geometry (the
raster only ever costs a little density, never a collision). For each pair of rastered shapes
the no-fit raster (where one may not go when the other sits at the origin: a binary
correlation, by FFT) is computed once and stamped onto a plate's map of forbidden positions
each time a copy lands there. A copy then takes, over its rotations, the free position whose
centre of area is lowest, then leftmost. The bed's margin is exact (from the footprint's
bounds); keep-out zones are rastered like parts. Positions are whole cells, so the same input
gives the same plan on every run.

The fill runs up to four times (STRATEGIES: largest area or longest side first; pulled to the
front or to the left) over the same no-fit cache and keeps the plan with the fewest plates,
stopping as soon as one reaches the spacing-aware area bound no plan can beat. The pull
matters for round parts (rows against offset columns: 16 or 18 discs of 45 mm on a plate).

Why not spyrrow (sparrow): see pyproject.toml, next to shapely.
"""

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.signal import fftconvolve
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from production.plates.values import (
    Arrangement,
    KeepOutZone,
    Placement,
    Plate,
    TooManyPlates,
    Unplaced,
)
from production.toolpath import gcode
from production.toolpath.profile import FdmProfile

CELL_MM = 0.5  # raster pitch: a gap between two copies grows by at most ~1.4 cells
# A larger bed gets larger cells, so a plate's maps stay small (a few MB) and quick to search.
MAX_CELLS_PER_SIDE = 600
# PrusaSlicer's own default distance between arranged objects (`duplicate_distance`).
SPACING_MM = 6.0
# From the bed's edge: clips, and the skirt that goes around the whole plate.
MARGIN_MM = 5.0
ROTATIONS_DEG = (0.0, 90.0, 180.0, 270.0)


@dataclass(frozen=True)
class Bed:
    """The bed a plate is arranged on: its size, the margin kept from its edge, and zones no
    part may cover (clips, a purge area, a damaged patch), as polygons in bed coordinates with
    the origin at the front-left corner. Parts keep the margin from keep-out zones too."""

    size_mm: tuple[float, float]
    margin_mm: float = MARGIN_MM
    keep_outs: tuple[Polygon, ...] = ()

    def __post_init__(self) -> None:
        width, depth = self.size_mm
        if not (width > 0 and depth > 0):
            raise ValueError(f"the bed must have a positive size, not {self.size_mm}")
        if self.margin_mm < 0 or 2 * self.margin_mm >= min(width, depth):
            raise ValueError(f"a margin of {self.margin_mm} mm leaves no bed")

    @property
    def usable(self) -> BaseGeometry:
        """Where a footprint may lie: the bed less its margin and the grown keep-out zones."""
        width, depth = self.size_mm
        m = self.margin_mm
        area: BaseGeometry = box(m, m, width - m, depth - m)
        if self.keep_outs:
            area = area.difference(shapely.union_all(self.keep_outs).buffer(m))
        return area

    @property
    def usable_area_mm2(self) -> float:
        return float(self.usable.area)


def bed_for(
    profile: FdmProfile,
    *,
    margin_mm: float = MARGIN_MM,
    keep_outs: Sequence[Polygon] = (),
    keep_out_zones: Sequence[KeepOutZone] = (),
) -> Bed:
    """The bed of a printer profile, with the purge line both engines draw before the first
    layer (gcode.purge_line) kept out: a copy there would be printed over by it. Also kept
    out: `keep_out_zones`, the machine's rectangles (Machine.keep_out_zones, read with
    values.keep_out_zones_from_json), and any other `keep_outs` polygons."""
    purge = shapely.LineString(gcode.purge_line(profile)).buffer(profile.line_width_mm)
    zones = tuple(zone_polygon(zone) for zone in keep_out_zones)
    return Bed(profile.bed_mm, margin_mm=margin_mm, keep_outs=(purge, *zones, *keep_outs))


def zone_polygon(zone: KeepOutZone) -> Polygon:
    return box(zone.x_mm, zone.y_mm, zone.x_mm + zone.width_mm, zone.y_mm + zone.depth_mm)


@dataclass(frozen=True)
class CopyToPlace:
    """One copy of a job's part. `footprint` is the part's outline as it stands on the bed (its
    print orientation), in the part's own XY coordinates; copies of one part share it."""

    job: int
    copy: int
    footprint: Polygon | MultiPolygon


def placed_footprint(footprint: BaseGeometry, placement: Placement) -> BaseGeometry:
    """The footprint where the placement puts it: turned about the origin, then moved."""
    turned = affinity.rotate(footprint, placement.rotation_deg, origin=(0.0, 0.0))
    return affinity.translate(turned, placement.x_mm, placement.y_mm)


def lower_bound_plates(footprint_area_mm2: float, bed: Bed) -> int:
    """No arrangement can use fewer plates: total footprint area over the usable bed area."""
    return max(1, math.ceil(footprint_area_mm2 / bed.usable_area_mm2 - 1e-9))


def arrange(
    copies: Sequence[CopyToPlace],
    bed: Bed,
    *,
    spacing_mm: float = SPACING_MM,
    rotations_deg: Sequence[float] = ROTATIONS_DEG,
    max_plates: int | None = None,
    cell_mm: float | None = None,
) -> Arrangement:
    """Place every copy on as few plates as the fill finds, each copy at least `spacing_mm`
    from every other, inside the bed less its margin, clear of keep-out zones.

    A copy that fits the bed only alone gets a plate to itself; one that fits no plate is
    returned in `unplaced` with the reason. Raises TooManyPlates (with the number needed) when
    the plan needs more than `max_plates`. The same input gives the same plan.

    `cell_mm` is the raster's pitch: by default 0.5 mm, coarser on beds over 300 mm.
    """
    if spacing_mm < 0:
        raise ValueError(f"spacing cannot be negative, not {spacing_mm}")
    if cell_mm is None:
        cell_mm = max(CELL_MM, max(bed.size_mm) / MAX_CELLS_PER_SIDE)
    if not cell_mm > 0:
        raise ValueError(f"the raster cell must be positive, not {cell_mm}")
    if not rotations_deg:
        raise ValueError("at least one rotation must be allowed")
    rotations = tuple(dict.fromkeys(float(r) % 360.0 for r in rotations_deg))
    raster = _Raster(bed, spacing_mm=spacing_mm, cell_mm=cell_mm)

    named = {(copy.job, copy.copy) for copy in copies}
    if len(named) != len(copies):
        raise ValueError("each (job, copy) may be asked for once")
    parts: dict[bytes, int] = {}  # footprint WKB -> part index: copies of a part share rasters
    part_outlines: list[BaseGeometry] = []
    part_of_copy: list[int] = []
    for copy in copies:
        footprint = _outline(copy.footprint)
        key = shapely.to_wkb(footprint)
        if key not in parts:
            parts[key] = len(part_outlines)
            part_outlines.append(footprint)
        part_of_copy.append(parts[key])

    # Several first-fit-decreasing fills, each a different order or pull; the one with the
    # fewest plates wins (then the emptiest last plate: its copies are the easiest to move to
    # another run). Stops early at a fill no plan can beat. All fills share the raster's no-fit
    # cache, so each after the first costs a fraction of it.
    fewest = _spaced_bound(part_of_copy, part_outlines, raster)
    plan = _Planning(copies, part_of_copy, part_outlines, rotations, fewest)
    best = plan.best_fill(raster, STRATEGIES)
    plates, unplaced = best.plates, best.unplaced

    if max_plates is not None and len(plates) > max_plates:
        raise TooManyPlates(copies=len(copies), needed=len(plates), allowed=max_plates)
    return Arrangement(
        plates=tuple(Plate(tuple(plate.placements)) for plate in plates),
        unplaced=tuple(sorted(unplaced, key=lambda u: (u.job, u.copy))),
    )


# (order, pull) of the fills arrange() tries, best kept. Order: largest area first. Pulls:
# towards the front, then the left ("bottom"), or the left, then the front ("left"): a row of
# discs pulled to the front packs 4 + 4 + 4 + 4 on a 240 x 200 mm bed where columns pulled to
# the left pack 4 + 3 + 4 + 3 + 4. "-corner": rotations compared by their box's corner, not
# their centre (boxes stay lined up). Longest-side-first orders and a "bottom-corner" pull
# were tried on the seed mixes (benchmarks/plates.py) and never saved a plate: left out.
STRATEGIES: tuple[tuple[str, str], ...] = (
    ("area", "bottom"),
    ("area", "left"),
    ("area", "left-corner"),
)


def _by_area(outline: BaseGeometry) -> tuple[float, ...]:
    return (-round(float(outline.area), 6),)


_SORT_KEYS: dict[str, Callable[[BaseGeometry], tuple[float, ...]]] = {"area": _by_area}


@dataclass
class _Fill:
    plates: list["_Plate"]
    unplaced: list[Unplaced]

    @property
    def score(self) -> tuple[int, int, float]:
        last = self.plates[-1].area if self.plates else 0.0
        return (len(self.plates), len(self.unplaced), last)


@dataclass(frozen=True)
class _Planning:
    """What every fill of one arrange() call shares: the copies, their parts' outlines."""

    copies: Sequence[CopyToPlace]
    part_of_copy: Sequence[int]
    part_outlines: Sequence[BaseGeometry]
    rotations: Sequence[float]
    fewest: int  # no plan uses fewer plates

    def best_fill(self, raster: "_Raster", strategies: Sequence[tuple[str, str]]) -> _Fill:
        """The fill with the fewest plates over `strategies`, stopping at the bound."""
        part_shapes = [raster.shapes_of(outline, self.rotations) for outline in self.part_outlines]
        best: _Fill | None = None
        for sort_key, gravity in strategies:
            keys = [_SORT_KEYS[sort_key](outline) for outline in self.part_outlines]
            order = sorted(range(len(self.copies)), key=lambda i: (keys[self.part_of_copy[i]], i))
            fill = _fill(
                self.copies, order, self.part_of_copy, part_shapes, raster, gravity, self.rotations
            )
            if best is None or fill.score < best.score:
                best = fill
            if len(best.plates) <= self.fewest:
                break
        assert best is not None
        return best


def _fill(
    copies: Sequence[CopyToPlace],
    order: Sequence[int],
    part_of_copy: Sequence[int],
    part_shapes: Sequence[Sequence[int]],
    raster: "_Raster",
    gravity: str,
    rotations: Sequence[float],
) -> _Fill:
    """One first-fit fill of the copies in `order`, each to the first plate with room."""
    plates: list[_Plate] = []
    unplaced: list[Unplaced] = []
    refusals: dict[int, str] = {}  # part -> why no plate can take it
    for index in order:
        copy, part = copies[index], part_of_copy[index]
        if part not in refusals:
            shapes = [s for s in part_shapes[part] if raster.shapes[s].fits]
            if not shapes:
                refusals[part] = _too_big(copy.footprint, raster.bed, rotations)
            elif _first_fit(copy, part, shapes, plates, raster, gravity):
                continue
            else:
                refusals[part] = "the keep-out zones leave no place on the bed where the part fits"
        unplaced.append(Unplaced(job=copy.job, copy=copy.copy, reason=refusals[part]))
    return _Fill(plates, unplaced)


def _spaced_bound(
    part_of_copy: Sequence[int], part_outlines: Sequence[BaseGeometry], raster: "_Raster"
) -> int:
    """Fewer plates than this no plan can use: every footprint grown by half the spacing
    (grown footprints on one plate never overlap) over the usable bed grown by as much."""
    half = raster.half_spacing
    grown = [float(outline.buffer(half).area) for outline in part_outlines]
    total = sum(grown[part] for part in part_of_copy)
    room = float(raster.bed.usable.buffer(half).area)
    return max(1, math.ceil(total / room - 1e-9)) if room > 0 else 1


def _first_fit(
    copy: CopyToPlace,
    part: int,
    shapes: Sequence[int],
    plates: list["_Plate"],
    raster: "_Raster",
    gravity: str,
) -> bool:
    """Put the copy on the first plate with room for it, or on a new plate; False when even
    an empty plate has none (keep-out zones in the way)."""
    for plate in plates:
        if part in plate.full:
            continue
        spot = plate.best_spot(shapes, gravity)
        if spot is not None:
            plate.place(copy, *spot)
            return True
        plate.full.add(part)  # forbidden positions only grow: it stays full
        for shape_id in shapes:
            plate.maps.pop(shape_id, None)
    plate = _Plate(raster)
    spot = plate.best_spot(shapes, gravity)
    if spot is None:
        return False
    plate.place(copy, *spot)
    plates.append(plate)
    return True


def _outline(footprint: BaseGeometry) -> BaseGeometry:
    """The footprint with its holes filled: no copy is placed inside another's hole."""
    polygons = [p for p in shapely.get_parts(footprint) if isinstance(p, Polygon) and p.area > 0]
    if not polygons:
        raise ValueError("a footprint must have an area")
    filled = shapely.union_all([Polygon(p.exterior) for p in polygons])
    return shapely.normalize(filled)


def _too_big(footprint: BaseGeometry, bed: Bed, rotations: Iterable[float]) -> str:
    minx, miny, maxx, maxy = footprint.bounds
    width, depth = bed.size_mm
    m = bed.margin_mm
    turns = ", ".join(f"{r:g}°" for r in rotations)
    return (
        f"the part's footprint ({maxx - minx:.1f} x {maxy - miny:.1f} mm) does not fit the "
        f"{width - 2 * m:g} x {depth - 2 * m:g} mm inside the bed's {m:g} mm margin "
        f"at any allowed rotation ({turns})"
    )


@dataclass
class _Shape:
    """One footprint at one rotation, rastered; where on the bed its translations may go."""

    polygon: BaseGeometry  # turned, not yet moved
    rotation: float
    fits: bool
    u_range: tuple[int, int]  # allowed translations in whole cells, inclusive
    v_range: tuple[int, int]
    grown: np.ndarray  # cells within half the spacing (rows y, columns x)
    grown_at: tuple[int, int]  # cell index of grown[0, 0] when the translation is (0, 0)
    body: np.ndarray  # cells the footprint itself touches, against keep-out zones
    body_at: tuple[int, int]
    centre: tuple[float, float]  # of area, turned, not yet moved
    corner: tuple[float, float]  # front-left of its box, turned, not yet moved


@dataclass
class _NoFit:
    """Where a candidate shape may not go, relative to an obstacle at translation (0, 0)."""

    blocked: np.ndarray
    at: tuple[int, int]  # (u, v) of blocked[0, 0]


class _Raster:
    """The rastered shapes and the no-fit rasters between them, shared by all plates."""

    def __init__(self, bed: Bed, *, spacing_mm: float, cell_mm: float) -> None:
        self.bed = bed
        self.cell = cell_mm
        # Half a cell's diagonal catches every cell a shape touches; buffer() draws arcs as
        # chords inside the true offset, hence the small relative and absolute slack.
        self.reach = cell_mm * math.sqrt(2) / 2
        self.half_spacing = spacing_mm / 2
        self.shapes: list[_Shape] = []
        self.no_fits: dict[tuple[int, int], _NoFit] = {}
        self.keep_outs = [
            self._cells(zone.buffer(bed.margin_mm), self.reach) for zone in bed.keep_outs
        ]
        self.keep_out_maps: dict[int, np.ndarray] = {}

    def shapes_of(self, footprint: BaseGeometry, rotations: Sequence[float]) -> list[int]:
        """The footprint's shapes, one per rotation that looks different on the raster (a
        round part needs only one: fewer candidates, fewer no-fit rasters)."""
        found: list[int] = []
        for rotation in rotations:
            shape_id = self._shape(footprint, rotation)
            new = self.shapes[shape_id]
            if any(self._same(self.shapes[earlier], new) for earlier in found):
                self.shapes.pop()
                continue
            found.append(shape_id)
        return found

    @staticmethod
    def _same(a: _Shape, b: _Shape) -> bool:
        width = (a.u_range[1] - a.u_range[0], a.v_range[1] - a.v_range[0])
        return (
            width == (b.u_range[1] - b.u_range[0], b.v_range[1] - b.v_range[0])
            and a.grown.shape == b.grown.shape
            and a.body.shape == b.body.shape
            and bool(np.array_equal(a.grown, b.grown))
            and bool(np.array_equal(a.body, b.body))
        )

    def _shape(self, footprint: BaseGeometry, rotation: float) -> int:
        turned = affinity.rotate(footprint, rotation, origin=(0.0, 0.0)) if rotation else footprint
        minx, miny, maxx, maxy = turned.bounds
        width, depth = self.bed.size_mm
        m, c = self.bed.margin_mm, self.cell
        u_range = (math.ceil((m - minx) / c - 1e-9), math.floor((width - m - maxx) / c + 1e-9))
        v_range = (math.ceil((m - miny) / c - 1e-9), math.floor((depth - m - maxy) / c + 1e-9))
        fits = u_range[0] <= u_range[1] and v_range[0] <= v_range[1]
        grown, grown_at = self._cells(turned, self.half_spacing + self.reach)
        body, body_at = self._cells(turned, self.reach) if self.keep_outs else (grown, grown_at)
        centre = turned.centroid
        self.shapes.append(
            _Shape(
                turned,
                rotation,
                fits,
                u_range,
                v_range,
                grown,
                grown_at,
                body,
                body_at,
                (float(centre.x), float(centre.y)),
                (float(minx), float(miny)),
            )
        )
        return len(self.shapes) - 1

    def _cells(self, geometry: BaseGeometry, reach: float) -> tuple[np.ndarray, tuple[int, int]]:
        """Cells whose centre lies within `reach` of the geometry, and the index of [0, 0]."""
        pad = reach * 1.005 + 0.01
        minx, miny, maxx, maxy = geometry.bounds
        c = self.cell
        x0, y0 = math.floor((minx - pad) / c), math.floor((miny - pad) / c)
        x1, y1 = math.ceil((maxx + pad) / c), math.ceil((maxy + pad) / c)
        xs = (np.arange(x0, x1) + 0.5) * c
        ys = (np.arange(y0, y1) + 0.5) * c
        grown = geometry.buffer(pad, quad_segs=16)
        shapely.prepare(grown)
        inside = shapely.intersects_xy(grown, xs[np.newaxis, :], ys[:, np.newaxis])
        return np.asarray(inside, dtype=bool), (x0, y0)

    def forbidden(self, shape_id: int) -> np.ndarray:
        """A fresh map of translations the shape may not take on an empty plate."""
        base = self.keep_out_maps.get(shape_id)
        if base is None:
            shape = self.shapes[shape_id]
            (u0, u1), (v0, v1) = shape.u_range, shape.v_range
            base = np.zeros((v1 - v0 + 1, u1 - u0 + 1), dtype=bool)
            for cells, at in self.keep_outs:
                no_fit = _no_fit(cells, (0, 0), shape.body, shape.body_at)
                _stamp(base, no_fit, (at[0], at[1]), shape)
            self.keep_out_maps[shape_id] = base
        return base.copy()

    def no_fit(self, placed: int, candidate: int) -> _NoFit:
        found = self.no_fits.get((placed, candidate))
        if found is None:
            mirror = self.no_fits.get((candidate, placed))
            if mirror is not None:
                # B may not sit at t from A exactly where A may not sit at -t from B.
                rows, columns = mirror.blocked.shape
                at = (-mirror.at[0] - columns + 1, -mirror.at[1] - rows + 1)
                found = _NoFit(mirror.blocked[::-1, ::-1], at)
            else:
                a, b = self.shapes[placed], self.shapes[candidate]
                found = _no_fit(a.grown, a.grown_at, b.grown, b.grown_at)
            self.no_fits[(placed, candidate)] = found
        return found


def _no_fit(
    obstacle: np.ndarray,
    obstacle_at: tuple[int, int],
    mask: np.ndarray,
    mask_at: tuple[int, int],
) -> _NoFit:
    """Translations of `mask` whose cells meet `obstacle`'s (both at translation (0, 0))."""
    # A correlation: cell k of the mask meets cell k' of the obstacle when the translation is
    # obstacle_at + k' - mask_at - k. The FFT's sums are whole counts: 0.5 separates them.
    overlap = fftconvolve(obstacle.astype(np.float64), mask[::-1, ::-1].astype(np.float64))
    rows, columns = mask.shape
    at = (obstacle_at[0] - mask_at[0] - columns + 1, obstacle_at[1] - mask_at[1] - rows + 1)
    return _NoFit(overlap > 0.5, at)


def _stamp(forbidden: np.ndarray, no_fit: _NoFit, moved: tuple[int, int], shape: _Shape) -> None:
    """Mark in `forbidden` (the shape's map) the no-fit raster of an obstacle moved by `moved`."""
    u = no_fit.at[0] + moved[0] - shape.u_range[0]
    v = no_fit.at[1] + moved[1] - shape.v_range[0]
    rows, columns = no_fit.blocked.shape
    top, bottom = max(v, 0), min(v + rows, forbidden.shape[0])
    left, right = max(u, 0), min(u + columns, forbidden.shape[1])
    if top < bottom and left < right:
        forbidden[top:bottom, left:right] |= no_fit.blocked[
            top - v : bottom - v, left - u : right - u
        ]


@dataclass
class _Plate:
    raster: _Raster
    placements: list[Placement] = field(default_factory=list)
    placed: list[tuple[int, int, int]] = field(default_factory=list)  # (shape, u, v)
    # shape -> (forbidden positions (v, u), how many of `placed` are stamped on them)
    maps: dict[int, tuple[np.ndarray, int]] = field(default_factory=dict)
    full: set[int] = field(default_factory=set)  # parts that no longer fit here
    area: float = 0.0  # of the footprints placed here

    def best_spot(self, shapes: Sequence[int], gravity: str) -> tuple[int, int, int] | None:
        """(shape, u, v) of the best free position over the part's rotations: lowest, then
        leftmost (`gravity` "bottom"), or leftmost, then lowest ("left"); rotations compared
        by their centre of area, or with "-corner" by their box's front-left corner."""
        pull, _, by = gravity.partition("-")
        best: tuple[tuple[float, float], tuple[int, int, int]] | None = None
        for shape_id in shapes:
            forbidden = self._map(shape_id)
            if pull == "left":
                # Column-major order: the first free index is the leftmost column, then row.
                free = np.flatnonzero(~forbidden.T)
                if not len(free):
                    continue
                column, row = divmod(int(free[0]), forbidden.shape[0])
            else:
                # Row-major order: the first free index is the lowest row, then leftmost column.
                free = np.flatnonzero(~forbidden)
                if not len(free):
                    continue
                row, column = divmod(int(free[0]), forbidden.shape[1])
            shape = self.raster.shapes[shape_id]
            u, v = shape.u_range[0] + column, shape.v_range[0] + row
            # Lowest centre of area, then leftmost: a part turned to sit low slides into the
            # pocket its neighbours leave (a triangle beside a triangle turned 180°). By the
            # corner: a box keeps its turn when turning would only move its centre, so it lines
            # up with the next (cover plates 2 x 3 beside the purge line, not 5 in a jumble).
            reference = shape.corner if by == "corner" else shape.centre
            x = reference[0] + u * self.raster.cell
            y = reference[1] + v * self.raster.cell
            score = (x, y) if pull == "left" else (y, x)
            if best is None or score < best[0]:
                best = (score, (shape_id, u, v))
        return None if best is None else best[1]

    def place(self, copy: CopyToPlace, shape_id: int, u: int, v: int) -> None:
        shape = self.raster.shapes[shape_id]
        self.area += float(shape.polygon.area)
        c = self.raster.cell
        self.placements.append(Placement(copy.job, copy.copy, u * c, v * c, shape.rotation))
        self.placed.append((shape_id, u, v))

    def _map(self, shape_id: int) -> np.ndarray:
        """The shape's forbidden positions, brought up to date with the copies placed since it
        was last asked for. Lazily: a part whose copies are all placed is never asked again,
        so no no-fit raster is computed for it."""
        forbidden, stamped = self.maps.get(shape_id, (None, 0))
        if forbidden is None:
            forbidden = self.raster.forbidden(shape_id)
        shape = self.raster.shapes[shape_id]
        for placed, u, v in self.placed[stamped:]:
            _stamp(forbidden, self.raster.no_fit(placed, shape_id), (u, v), shape)
        self.maps[shape_id] = (forbidden, len(self.placed))
        return forbidden
