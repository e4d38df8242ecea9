"""Does a milling program make the part, and only the part? Pure: bytes in, a report out.

The G-code is read back block by block (G0/G1, G2/G3 arcs in the XY plane, helical with Z,
G81/G83 drilling cycles with R/Q/Z and G98/G99, G20/G21, G90/G91, M3/M4/M5, M6 Tn or GRBL's
manual change: a "(TOOL CHANGE: load Tn ...)" comment and M0, S, F, comments) and its material
removal simulated on a z-map: a numpy height map of the stock's top, one cell per
`resolution_mm`, that every move lowers wherever the tool passes (a flat end mill cuts a flat
disc of its diameter; a drill or a countersink a cone of its point angle; arcs are cut as
chords within `chord_tolerance_mm`). The simulated stock is compared with the part's own
height map, rasterised from its mesh into the same grid.

Placement, as the planners' work offset (production/toolpath/program.py): G54 X0 Y0 Z0 is
the stock's front-left corner on its top face; the part's bounding box starts at x, y =
stock.margin_mm and its bottom sits on the stock's bottom (z = -thickness), so a part as
thick as the plate has its top at z = 0 and a thinner one needs facing.

The checks (`check_program` returns them all; `verify_program` raises Rejected naming every
failure, as the FDM verifier does):
- numbers, commands: every word is a number, every command one we can simulate;
- tools, spindle and feed: a tool from the program's table is in the spindle, turning, with
  a feed rate, whenever the program cuts;
- machine travel: every position lies within the machine's travel (`Envelope`);
- stock: every cutting move's tool centre lies within the stock grown by the tool radius and
  a clearance, and nothing goes below the stock's bottom by more than a breakthrough allowance;
- rapids: no rapid move touches material (it would crash; a rapid into a cleared pocket is
  fine, so this is measured on the simulation, not against the stock's top);
- gouge: nowhere is the simulated surface below the part's by more than a tolerance;
- remaining stock: every cell of a machined face (pocket floors, through holes, the part's
  top when faced) that a tool of the program can reach is cut to within a tolerance, and the
  band around the outline is cut through except for its tabs (each shorter than 25 mm);
- tabs: a through profile leaves material joining every body of the part to the stock's edge
  (connected cells on the z-map), so the part does not come loose under the cutter.

Laterally the z-map resolves to one cell: a gouge or an uncut sliver narrower than a cell
along a wall is not seen (cells at a wall are left out of both checks).
"""

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import trimesh
from scipy import ndimage

from microfactory.errors import Rejected
from production.toolpath.program import Stock, ToolUse
from production.toolpath.verify import FAIL, Check, compared, first_problem

Grid = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

RESOLUTION_MM = 0.2  # MF_CNC_ZMAP_RESOLUTION_MM
CHORD_TOLERANCE_MM = 0.01  # arcs become chords this close to the arc
GOUGE_TOLERANCE_MM = 0.05  # deeper into the part than this is a gouge
REMAINING_TOLERANCE_MM = 0.1  # more material than this left on a machined face is too much
STOCK_CLEARANCE_MM = 1.0  # beyond the tool's radius outside the stock, for lead-ins
BREAKTHROUGH_MM = 1.0  # below the stock's bottom, into the spoilboard, for through cuts
# Tabs are short: uncut material longer than this along the outline is a profile not cut
# through (measured in the band around the outline, where a tab is wider than on the tool's
# path by up to the tool's diameter).
MAX_TAB_MM = 25.0
INCH_MM = 25.4
# Our programs are small; a file this long is not one of ours (and would take minutes).
MAX_SEGMENTS = 2_000_000

_WORD = re.compile(r"([A-Z])\s*([+-]?(?:\d+\.?\d*|\.\d+))")
_COMMENT = re.compile(r"\([^)]*\)|;.*$")
_POINT_ANGLES = {"drill": 118.0, "countersink": 90.0}
_ANGLE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?) ?(?:deg|°)", re.IGNORECASE)
# Our GRBL post's manual tool change: this comment, then M0 (production/toolpath/posts.py).
_MANUAL_CHANGE = re.compile(r"\(TOOL CHANGE: load T(\d+)\b", re.IGNORECASE)
_ACCEPTED_G = {
    4.0: "dwell",
    17.0: "XY plane",
    40.0: "no cutter compensation",
    43.0: "tool length offset",
    49.0: "no tool length offset",
    54.0: "work offset",
    61.0: "exact path",
    64.0: "path blending",
    80.0: "cycle cancel",
    94.0: "feed per minute",
    98.0: "retract to the initial Z",
    99.0: "retract to R",
}
_ACCEPTED_M = {0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 30.0}
_UNSUPPORTED_G = {
    18.0: "the XZ plane (G18)",
    19.0: "the YZ plane (G19)",
    28.0: "a move to the machine's home (G28): not in work coordinates",
    41.0: "cutter compensation (G41): our planners offset the path themselves",
    42.0: "cutter compensation (G42): our planners offset the path themselves",
    82.0: "a drilling cycle with dwell (G82)",
    73.0: "a chip-breaking cycle (G73)",
    91.1: "incremental arc centres (G91.1)",
    93.0: "inverse-time feed (G93)",
}


@dataclass(frozen=True)
class Envelope:
    """The machine's travel in work coordinates (mm): where the tool's tip can go."""

    x: tuple[float, float]
    y: tuple[float, float]
    z: tuple[float, float]

    @classmethod
    def for_travel(
        cls, travel_mm: tuple[float, float, float], stock: Stock, *, spoilboard_mm: float = 3.0
    ) -> "Envelope":
        """The stock clamped at the front-left corner of the table, on a spoilboard: the tool
        reaches `spoilboard_mm` below the stock's bottom and travel_z above that."""
        tx, ty, tz = travel_mm
        low = -stock.thickness_mm - spoilboard_mm
        return cls((0.0, tx), (0.0, ty), (low, low + tz))


@dataclass(frozen=True)
class Segment:
    """One straight piece of tool motion (arcs and cycles become several)."""

    line: int
    rapid: bool
    tool: int  # 0: no tool in the spindle
    start: tuple[float, float, float]
    end: tuple[float, float, float]


@dataclass(frozen=True)
class Simulation:
    """The stock after the program: z of the top surface per cell, rows along y."""

    resolution_mm: float
    zmap: Grid = field(repr=False, compare=False)  # shape (ny, nx); cell (j, i) centred at
    floor_mm: float = 0.0  # ((i + .5) r, (j + .5) r); floor: the stock's bottom (-thickness)
    part: Grid | None = field(default=None, repr=False, compare=False)  # the part's, or None
    # per cell, the radius of the tool that last lowered it (0: never cut)
    cut_by: Grid | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class CncCheck:
    """The report on a milling program: figures measured on the z-map, and every check."""

    resolution_mm: float
    grid: tuple[int, int]  # cells along x, y
    segments: int
    cut_length_mm: float
    rapid_length_mm: float
    removed_mm3: float
    lowest_z_mm: float
    max_gouge_mm: float  # the part's surface minus the simulated one, deepest
    max_remaining_mm: float  # the simulated surface minus the part's on machined faces
    band_cleared: float  # share of the band around the outline cut through (1.0: no band)
    longest_tab_mm: float  # the longest uncut stretch of that band, along the outline
    tabs: int  # pieces of material bridging the band around the outline
    part_held: bool  # every body of the part joined to the stock's edge by material
    checks: tuple[Check, ...]
    simulation: Simulation = field(repr=False, compare=False)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == FAIL)

    def to_json(self) -> dict[str, Any]:
        report = asdict(self)
        del report["simulation"]
        return report


def verify_program(
    gcode: bytes,
    *,
    stl: bytes,
    stock: Stock,
    tools: Sequence[ToolUse],
    envelope: Envelope,
    resolution_mm: float = RESOLUTION_MM,
    gouge_tolerance_mm: float = GOUGE_TOLERANCE_MM,
    remaining_tolerance_mm: float = REMAINING_TOLERANCE_MM,
    require_tabs: bool = True,
) -> CncCheck:
    """The report on a program that makes its part; Rejected naming every failure."""
    report = check_program(
        gcode,
        stl=stl,
        stock=stock,
        tools=tools,
        envelope=envelope,
        resolution_mm=resolution_mm,
        gouge_tolerance_mm=gouge_tolerance_mm,
        remaining_tolerance_mm=remaining_tolerance_mm,
        require_tabs=require_tabs,
    )
    if report.failures:
        raise Rejected(
            "the milling program does not make its part: "
            + "; ".join(check.message for check in report.failures)
        )
    return report


def check_program(
    gcode: bytes,
    *,
    stl: bytes,
    stock: Stock,
    tools: Sequence[ToolUse],
    envelope: Envelope,
    resolution_mm: float = RESOLUTION_MM,
    chord_tolerance_mm: float = CHORD_TOLERANCE_MM,
    gouge_tolerance_mm: float = GOUGE_TOLERANCE_MM,
    remaining_tolerance_mm: float = REMAINING_TOLERANCE_MM,
    stock_clearance_mm: float = STOCK_CLEARANCE_MM,
    breakthrough_mm: float = BREAKTHROUGH_MM,
    max_tab_mm: float = MAX_TAB_MM,
    require_tabs: bool = True,
) -> CncCheck:
    """Every check's outcome for a milling program against its part, failed or not."""
    if resolution_mm <= 0:
        raise ValueError("the z-map resolution must be positive")
    radii = {tool.number: tool.diameter_mm / 2 for tool in tools}
    reader = _Reader(
        radii=radii,
        chord_tolerance_mm=chord_tolerance_mm,
        start_z=envelope.z[1],
    )
    reader.read(gcode)
    # A pointed tool's full diameter is below the bottom only when its point is too.
    slopes = _slopes(tools)
    tips = {number: radii[number] * slope for number, slope in slopes.items()}
    _check_positions(reader, stock, envelope, radii, tips, stock_clearance_mm, breakthrough_mm)

    part = part_height_map(stl, stock=stock, resolution_mm=resolution_mm)
    sim, rapid_hits = _simulate(
        reader.segments, stock, radii, slopes, resolution_mm, gouge_tolerance_mm
    )
    sim = Simulation(resolution_mm, sim.zmap, sim.floor_mm, part, sim.cut_by)
    for line, depth in rapid_hits:
        reader.problem("rapids", f"line {line} is a rapid move through {depth:.2f} mm of material")

    floor = -stock.thickness_mm
    cutters = [radii[t] for t in {s.tool for s in reader.segments if not s.rapid} if t in radii]
    # Without any cutting tool, judge the faces as the table's smallest tool would reach them.
    smallest = min(cutters or list(radii.values()) or [resolution_mm])
    gouge, gouge_at = _gouge(sim.zmap, part, resolution_mm)
    assert sim.cut_by is not None
    remaining, remaining_at = _remaining(
        sim.zmap, part, sim.cut_by, floor, smallest, resolution_mm, remaining_tolerance_mm
    )
    solid = part > floor + gouge_tolerance_mm
    band_mm = smallest + resolution_mm
    band = _band(solid, band_mm, resolution_mm)
    material = sim.zmap > floor + remaining_tolerance_mm
    band_cells = int(band.sum())
    cleared = 1.0 if band_cells == 0 else float((band & ~material).sum()) / band_cells
    pieces, tabs = ndimage.label(band & material, structure=_SQUARE)
    sizes = np.bincount(pieces.ravel())[1:] if tabs else np.zeros(1, dtype=np.int64)
    longest_tab = float(sizes.max()) * resolution_mm**2 / band_mm
    longest_at = _centre(pieces == int(np.argmax(sizes)) + 1, resolution_mm)
    held = _held(material, solid)

    ny, nx = sim.zmap.shape
    cell_area = resolution_mm**2
    removed = float((0.0 - sim.zmap).sum()) * cell_area
    cut = sum(_length(s) for s in reader.segments if not s.rapid)
    rapid = sum(_length(s) for s in reader.segments if s.rapid)
    lowest = min((min(s.start[2], s.end[2]) for s in reader.segments), default=0.0)
    checks = [
        first_problem(
            "numbers", reader.problems, "finite decimal numbers", "every word is a number"
        ),
        first_problem(
            "commands",
            reader.problems,
            "G0-G3 (XY plane), G81/G83, G20/G21, G90/G91, M3-M6, M30",
            "every command is one the simulation reads",
        ),
        first_problem(
            "tools",
            reader.problems,
            "T" + ", T".join(str(n) for n in sorted(radii)) if radii else "no tools",
            "every tool the program calls is in its tool table",
        ),
        first_problem(
            "spindle and feed",
            reader.problems,
            "a tool in the spindle, turning (M3/M4), feed > 0",
            "every cutting move has a turning tool and a feed rate",
        ),
        first_problem(
            "machine travel",
            reader.problems,
            "X {:g}..{:g}, Y {:g}..{:g}, Z {:g}..{:g} mm".format(
                *envelope.x, *envelope.y, *envelope.z
            ),
            "every move stays within the machine's travel",
        ),
        first_problem(
            "stock",
            reader.problems,
            f"stock {stock.x_mm:g} x {stock.y_mm:g} x {stock.thickness_mm:g} mm + tool radius + "
            f"{stock_clearance_mm:g} mm; Z >= {floor - breakthrough_mm:g} mm",
            "every cut stays within the stock",
        ),
        first_problem("rapids", reader.problems, "no material", "no rapid move touches material"),
        compared(
            "gouge",
            gouge <= gouge_tolerance_mm,
            f"{gouge:.3f} mm",
            f"<= {gouge_tolerance_mm:g} mm",
            f"the part's surface is cut {gouge:.3f} mm deep at {_at(gouge_at)}"
            if gouge > gouge_tolerance_mm
            else "nothing is cut below the part's surface",
        ),
        compared(
            "remaining stock",
            remaining <= remaining_tolerance_mm and longest_tab <= max_tab_mm,
            f"{remaining:.3f} mm; longest tab {longest_tab:.1f} mm",
            f"<= {remaining_tolerance_mm:g} mm on machined faces; outline cut through but "
            f"for tabs <= {max_tab_mm:g} mm",
            f"{remaining:.3f} mm of material is left on a machined face at {_at(remaining_at)}"
            if remaining > remaining_tolerance_mm
            else f"the outline is not cut through for {longest_tab:.1f} mm at {_at(longest_at)}"
            if longest_tab > max_tab_mm
            else "every machined face is cut to size",
        ),
        compared(
            "tabs",
            held or not require_tabs,
            f"{tabs} tab(s)" if held else "cut free",
            "material joins the part to the stock",
            f"{tabs} tab(s) hold the part in the stock"
            if held
            else "the part is cut free of the stock: no tab holds it",
        ),
    ]
    return CncCheck(
        resolution_mm=resolution_mm,
        grid=(nx, ny),
        segments=len(reader.segments),
        cut_length_mm=round(cut, 1),
        rapid_length_mm=round(rapid, 1),
        removed_mm3=round(removed, 1),
        lowest_z_mm=round(lowest, 3),
        max_gouge_mm=round(gouge, 3),
        max_remaining_mm=round(remaining, 3),
        band_cleared=round(cleared, 3),
        longest_tab_mm=round(longest_tab, 1),
        tabs=tabs,
        part_held=held,
        checks=tuple(checks),
        simulation=sim,
    )


def simulate_program(
    gcode: bytes,
    *,
    stock: Stock,
    tools: Sequence[ToolUse],
    resolution_mm: float = RESOLUTION_MM,
    chord_tolerance_mm: float = CHORD_TOLERANCE_MM,
) -> Simulation:
    """The stock after the program, without the checks (for renders and benchmarks)."""
    radii = {tool.number: tool.diameter_mm / 2 for tool in tools}
    reader = _Reader(radii=radii, chord_tolerance_mm=chord_tolerance_mm, start_z=0.0)
    reader.read(gcode)
    sim, _ = _simulate(
        reader.segments, stock, radii, _slopes(tools), resolution_mm, GOUGE_TOLERANCE_MM
    )
    return sim


def read_segments(gcode: bytes, *, chord_tolerance_mm: float = CHORD_TOLERANCE_MM) -> list[Segment]:
    """The program's motion as straight segments, in order (arcs and cycles expanded)."""
    reader = _Reader(radii={}, chord_tolerance_mm=chord_tolerance_mm, start_z=0.0)
    reader.read(gcode)
    return reader.segments


# --- the part's height map ---------------------------------------------------------------------


def part_height_map(stl: bytes, *, stock: Stock, resolution_mm: float) -> Grid:
    """The part's top surface per z-map cell, placed in the stock; the stock's bottom where
    there is no part (outside its outline, through holes)."""
    import io

    mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
    (x0, y0, z0), _ = mesh.bounds
    shift = np.array([stock.margin_mm - x0, stock.margin_mm - y0, -stock.thickness_mm - z0])
    triangles = np.asarray(mesh.triangles, dtype=float) + shift
    normals = np.asarray(mesh.face_normals, dtype=float)
    floor = -stock.thickness_mm
    nx, ny = _cells(stock, resolution_mm)
    height = np.full((ny, nx), floor, dtype=float)
    # Only the faces that look up are the top surface a flat tool meets from above. A 2.5D
    # part's are flat: each level is filled at once by scanlines; the sloped rest one by one.
    up = triangles[normals[:, 2] > 1e-6]
    flat = np.ptp(up[:, :, 2], axis=1) < 1e-6
    levels = np.round(up[flat][:, 0, 2], 4)
    for level in np.unique(levels):
        covered = _covered(up[flat][levels == level][:, :, :2], nx, ny, resolution_mm)
        np.maximum(height, np.where(covered, level, floor), out=height)
    for a, b, c in up[~flat]:
        _raster_sloped(height, a, b, c, resolution_mm, floor)
    top: Grid = np.minimum(height, 0.0)  # nothing stands above the stock's top
    return top


def _covered(triangles: Grid, nx: int, ny: int, resolution_mm: float) -> Mask:
    """The cells whose centres some triangle (xy, shape (T, 3, 2)) covers, by scanlines.

    Every edge adds its winding (+1 going up, -1 going down, signed by its triangle's
    orientation) where it crosses a row of cell centres, at the first centre to its right;
    summed along the row, that is the number of triangles covering each centre. Edges shared
    by two triangles of a face cancel, so the face fills as one polygon, holes and all.
    """
    starts = triangles.reshape(-1, 2)
    ends = triangles[:, [1, 2, 0], :].reshape(-1, 2)
    (ax, ay), (bx, by) = starts.T, ends.T
    u, v = triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    area = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    winding = np.repeat(np.sign(area), 3) * np.sign(by - ay)
    # Rows whose centre y lies in [low, high): a vertex on a row counts once.
    first = np.ceil(np.minimum(ay, by) / resolution_mm - 0.5).astype(np.int64)
    last = np.ceil(np.maximum(ay, by) / resolution_mm - 0.5).astype(np.int64)
    first, last = np.clip(first, 0, ny), np.clip(last, 0, ny)
    counts = np.where(winding != 0, last - first, 0)
    edge = np.repeat(np.arange(len(counts)), counts)
    row = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(counts) - counts, counts)
    y = (row + 0.5) * resolution_mm
    # From the lower end up, so an edge shared by two triangles (each running it one way)
    # crosses a row at bit-for-bit the same x, and its windings cancel in the same cell.
    upward = by > ay
    lx, ly = np.where(upward, ax, bx)[edge], np.where(upward, ay, by)[edge]
    hx, hy = np.where(upward, bx, ax)[edge], np.where(upward, by, ay)[edge]
    x = lx + (y - ly) * (hx - lx) / (hy - ly)
    column = np.clip(np.ceil(x / resolution_mm - 0.5).astype(np.int64), 0, nx)
    crossings = np.zeros((ny, nx + 1))
    np.add.at(crossings, (row, column), winding[edge])
    covered: Mask = np.cumsum(crossings[:, :nx], axis=1) != 0
    return covered


def _raster_sloped(
    height: Grid,
    a: Grid,
    b: Grid,
    c: Grid,
    resolution_mm: float,
    floor: float,
) -> None:
    """Raise `height` to a sloped triangle's z over the cells whose centres it covers."""
    ny, nx = height.shape
    lo = np.minimum(np.minimum(a, b), c)
    hi = np.maximum(np.maximum(a, b), c)
    i0, i1 = _span(lo[0], hi[0], resolution_mm, nx)
    j0, j1 = _span(lo[1], hi[1], resolution_mm, ny)
    v0, v1 = b[:2] - a[:2], c[:2] - a[:2]
    det = v0[0] * v1[1] - v0[1] * v1[0]
    if i0 >= i1 or j0 >= j1 or abs(det) < 1e-12:
        return
    wx = (np.arange(i0, i1) + 0.5) * resolution_mm - a[0]
    wy = ((np.arange(j0, j1) + 0.5) * resolution_mm - a[1])[:, None]
    u = (wx * v1[1] - wy * v1[0]) / det
    v = (v0[0] * wy - v0[1] * wx) / det
    inside = (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9)
    z = a[2] + u * (b[2] - a[2]) + v * (c[2] - a[2])
    box = height[j0:j1, i0:i1]
    np.maximum(box, np.where(inside, z, floor), out=box)


def _cells(stock: Stock, resolution_mm: float) -> tuple[int, int]:
    return (
        max(1, math.ceil(stock.x_mm / resolution_mm - 1e-9)),
        max(1, math.ceil(stock.y_mm / resolution_mm - 1e-9)),
    )


def _span(lo: float, hi: float, resolution_mm: float, count: int) -> tuple[int, int]:
    """The cells whose centres may lie in [lo, hi]."""
    first = max(0, math.floor(lo / resolution_mm - 0.5))
    last = min(count, math.ceil(hi / resolution_mm - 0.5) + 1)
    return first, last


# --- the simulation ------------------------------------------------------------------------


def _slopes(tools: Sequence[ToolUse]) -> dict[int, float]:
    """Pointed tools: 1 / tan(half the point angle), the cone's rise per mm from its axis.
    The angle is the one in the tool's name ("20.5 mm 90 deg countersink"), else 118° for a
    drill and 90° for a countersink; flat end mills are not here."""
    slopes = {}
    for tool in tools:
        if tool.kind not in _POINT_ANGLES:
            continue
        named = _ANGLE_IN_NAME.search(tool.name)
        angle = float(named.group(1)) if named else _POINT_ANGLES[tool.kind]
        slopes[tool.number] = 1 / math.tan(math.radians(angle / 2))
    return slopes


def _simulate(
    segments: Iterable[Segment],
    stock: Stock,
    radii: dict[int, float],
    slopes: dict[int, float],
    resolution_mm: float,
    rapid_tolerance_mm: float,
) -> tuple[Simulation, list[tuple[int, float]]]:
    """The z-map after every segment, and the rapids that removed material (line, depth)."""
    nx, ny = _cells(stock, resolution_mm)
    floor = -stock.thickness_mm
    zmap = np.zeros((ny, nx))
    cut_by = np.zeros((ny, nx))
    hits: list[tuple[int, float]] = []
    for segment in segments:
        radius = radii.get(segment.tool, 0.0)
        if radius <= 0:
            continue  # no tool in the spindle (reported by the reader): nothing cuts
        slope = slopes.get(segment.tool, 0.0)
        depth = _sweep(zmap, cut_by, segment, radius, slope, resolution_mm, floor)
        if segment.rapid and depth > rapid_tolerance_mm:
            hits.append((segment.line, depth))
    return Simulation(resolution_mm, zmap, floor, cut_by=cut_by), hits


def _sweep(
    zmap: Grid,
    cut_by: Grid,
    segment: Segment,
    radius: float,
    slope: float,
    resolution_mm: float,
    floor: float,
) -> float:
    """Lower the z-map where a flat disc of `radius` passes along the segment (and mark the
    cells it lowered in `cut_by`); return the deepest material removed.

    A cell is cut when its centre lies within the radius of the segment's XY line (a capsule);
    for a flat tool its new height is the lowest tool-tip z among the positions that cover it:
    the tip's z is linear along the segment, so that is one end of the interval of positions
    within reach. A pointed tool (drill, countersink: `slope` = 1 / tan(half its point angle))
    cuts a cone: the tip's z at the nearest position plus slope x the distance from it, exact
    for plunges and level moves (the only ones our planners make with them).
    """
    (x0, y0, z0), (x1, y1, z1) = segment.start, segment.end
    if min(z0, z1) >= 0.0:
        return 0.0  # above the stock's top: the common case for rapids
    ny, nx = zmap.shape
    i0, i1 = _span(min(x0, x1) - radius, max(x0, x1) + radius, resolution_mm, nx)
    j0, j1 = _span(min(y0, y1) - radius, max(y0, y1) + radius, resolution_mm, ny)
    if i0 >= i1 or j0 >= j1:
        return 0.0
    px = (np.arange(i0, i1) + 0.5) * resolution_mm - x0
    py = ((np.arange(j0, j1) + 0.5) * resolution_mm - y0)[:, None]
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    reach2 = radius * radius + 1e-9
    length2 = dx * dx + dy * dy
    if length2 < 1e-12:
        covered = px * px + py * py <= reach2
        cone = slope * np.sqrt(px * px + py * py)
        cut = np.where(covered, np.maximum(min(z0, z1) + cone, floor), np.inf)
    elif slope > 0:
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
        off2 = (px - t * dx) ** 2 + (py - t * dy) ** 2
        covered = off2 <= reach2
        cut = np.where(covered, np.maximum(z0 + dz * t + slope * np.sqrt(off2), floor), np.inf)
    else:
        t = (px * dx + py * dy) / length2
        off2 = px * px + py * py - t * t * length2  # squared distance to the line
        half = np.sqrt(np.maximum(reach2 - off2, 0.0) / length2)
        covered = (off2 <= reach2) & (t + half >= 0.0) & (t - half <= 1.0)
        low = np.clip(t - half, 0.0, 1.0)
        high = np.clip(t + half, 0.0, 1.0)
        tip = z0 + dz * np.where(dz >= 0, low, high)
        cut = np.where(covered, np.maximum(tip, floor), np.inf)
    box = zmap[j0:j1, i0:i1]
    lowered = box - cut
    removed = float(np.max(lowered, initial=0.0))
    if removed > 0:
        cut_by[j0:j1, i0:i1][lowered > 0] = radius
        np.minimum(box, cut, out=box)
    return removed


# --- the checks on the z-map -------------------------------------------------------------


_CROSS = ndimage.generate_binary_structure(2, 1)
_SQUARE = ndimage.generate_binary_structure(2, 2)


def _gouge(zmap: Grid, part: Grid, resolution_mm: float) -> tuple[float, tuple[float, float]]:
    """The deepest cut into the part, and where. Cells at a wall (a neighbour lower in the
    part) are judged by that neighbour: the grid cannot place a wall closer than a cell."""
    protected = ndimage.grey_erosion(part, footprint=_SQUARE, mode="nearest")
    depth = protected - zmap
    return _worst(depth, resolution_mm)


def _remaining(
    zmap: Grid,
    part: Grid,
    cut_by: Grid,
    floor: float,
    smallest: float,
    resolution_mm: float,
    tolerance_mm: float,
) -> tuple[float, tuple[float, float]]:
    """The most material left on a machined face where its tool can reach, and where.

    A machined face is every cell the part leaves below the stock's top inside its outline
    (holes filled): pocket floors, through holes, a faced top; one face is a connected set of
    such cells at one depth. Its tool is the largest that cut any of its cells (`smallest`,
    the program's smallest cutter, for a face nothing cut). A cell at depth L is reachable when
    a disc of that tool's radius fits where the part is at or below L (a morphological
    opening), so the fillet a tool leaves in a sharp inside corner is not counted (DFM judges
    corner radii); nor are cells at a wall (a higher neighbour).
    """
    outline = ndimage.binary_fill_holes(part > floor + tolerance_mm)
    faces = outline & (part < -tolerance_mm)
    if not faces.any():
        return 0.0, (0.0, 0.0)
    at_wall = ndimage.grey_dilation(part, footprint=_SQUARE, mode="nearest") > part + tolerance_mm
    faces &= ~at_wall
    reachable = np.zeros_like(faces)
    levels = np.unique(np.round(part[faces], 2))
    for level in levels:
        here = faces & (np.abs(part - level) <= 0.005 + 1e-9)
        pieces, count = ndimage.label(here, structure=_SQUARE)
        largest = np.zeros(count + 1)
        np.maximum.at(largest, pieces[here], cut_by[here])
        for radius in np.unique(largest[1:]):
            tool = float(radius) if radius > 0 else smallest
            which = np.flatnonzero(largest[1:] == radius) + 1
            faces_here = np.isin(pieces, which)
            reachable |= _reach(part <= level + tolerance_mm, faces_here, tool, resolution_mm)
    left = np.where(reachable, zmap - part, -np.inf)
    return _worst(left, resolution_mm)


def _reach(open_cells: Mask, wanted: Mask, radius: float, resolution_mm: float) -> Mask:
    """The `wanted` cells a disc of `radius` covers while it stays within `open_cells` (a
    morphological opening, by two Euclidean distance transforms; beyond the grid counts as
    open: the tool may pass outside the stock).

    Only a window around the wanted cells is computed: a disc covering one of them lies
    within 2 radii of it, and a wrong erosion at the window's edge reaches no wanted cell.
    """
    rows, columns = np.nonzero(wanted)
    if rows.size == 0:
        return np.zeros_like(wanted)
    pad = math.ceil(2 * radius / resolution_mm) + 2
    j0, j1 = max(0, int(rows.min()) - pad), int(rows.max()) + pad + 1
    i0, i1 = max(0, int(columns.min()) - pad), int(columns.max()) + pad + 1
    window = open_cells[j0:j1, i0:i1]
    centres = ndimage.distance_transform_edt(window) * resolution_mm > radius + 1e-9
    reached = np.zeros_like(wanted)
    if centres.any():
        near = ndimage.distance_transform_edt(~centres) * resolution_mm <= radius + 1e-9
        reached[j0:j1, i0:i1] = near & wanted[j0:j1, i0:i1]
    return reached


def _band(solid: Mask, width_mm: float, resolution_mm: float) -> Mask:
    """Cells outside the part's outline within `width_mm` of it: what its profile cut clears."""
    outline = ndimage.binary_fill_holes(solid)
    if outline.all() or not outline.any():
        return np.zeros_like(solid)
    distance = ndimage.distance_transform_edt(~outline) * resolution_mm
    band: Mask = (distance > 0) & (distance <= width_mm)
    return band


def _held(material: Mask, solid: Mask) -> bool:
    """Is every body of the part joined by material to the stock's edge?"""
    labels, _ = ndimage.label(material, structure=_CROSS)
    edge = np.zeros_like(material)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    anchored = set(np.unique(labels[edge & material]).tolist())
    bodies, count = ndimage.label(solid, structure=_CROSS)
    for body in range(1, count + 1):
        cells = labels[(bodies == body) & material]
        if cells.size and not set(np.unique(cells).tolist()) & anchored:
            return False
    return True


def _worst(values: Grid, resolution_mm: float) -> tuple[float, tuple[float, float]]:
    if values.size == 0:
        return 0.0, (0.0, 0.0)
    j, i = np.unravel_index(int(np.argmax(values)), values.shape)
    worst = max(float(values[j, i]), 0.0)
    return worst, ((i + 0.5) * resolution_mm, (j + 0.5) * resolution_mm)


def _centre(cells: Mask, resolution_mm: float) -> tuple[float, float]:
    if not cells.any():
        return 0.0, 0.0
    rows, columns = np.nonzero(cells)
    return (float(columns.mean()) + 0.5) * resolution_mm, (float(rows.mean()) + 0.5) * resolution_mm


def _at(point: tuple[float, float]) -> str:
    return f"X{point[0]:.1f} Y{point[1]:.1f}"


def _length(segment: Segment) -> float:
    return math.dist(segment.start, segment.end)


# --- positions, checked while reading ----------------------------------------------------


def _check_positions(
    reader: "_Reader",
    stock: Stock,
    envelope: Envelope,
    radii: dict[int, float],
    tips: dict[int, float],
    clearance_mm: float,
    breakthrough_mm: float,
) -> None:
    tolerance = 1e-6
    bottom = -stock.thickness_mm - breakthrough_mm
    (ex0, ex1), (ey0, ey1), (ez0, ez1) = envelope.x, envelope.y, envelope.z
    for segment in reader.segments:
        x, y, z = segment.end
        if not (
            ex0 - tolerance <= x <= ex1 + tolerance
            and ey0 - tolerance <= y <= ey1 + tolerance
            and ez0 - tolerance <= z <= ez1 + tolerance
        ):
            reader.problem(
                "machine travel",
                f"line {segment.line} moves to X{x:.3f} Y{y:.3f} Z{z:.3f}, outside the "
                "machine's travel",
            )
        if min(segment.start[2], z) < bottom - tips.get(segment.tool, 0.0) - tolerance:
            reader.problem(
                "stock",
                f"line {segment.line} goes to Z{min(segment.start[2], z):.3f}, more than "
                f"{breakthrough_mm:g} mm below the stock's bottom (and a pointed tool's point)",
            )
        if segment.rapid:
            continue
        reach = radii.get(segment.tool, 0.0) + clearance_mm
        for px, py, _ in (segment.start, segment.end):
            if not (
                -reach - tolerance <= px <= stock.x_mm + reach + tolerance
                and -reach - tolerance <= py <= stock.y_mm + reach + tolerance
            ):
                reader.problem(
                    "stock",
                    f"line {segment.line} cuts at X{px:.3f} Y{py:.3f}, outside the "
                    f"{stock.x_mm:g} x {stock.y_mm:g} mm stock by more than the tool's "
                    f"radius and {clearance_mm:g} mm",
                )
                break


# --- the reader ---------------------------------------------------------------------------


@dataclass
class _Reader:
    """The interpreter's state while reading the program, and what was found wrong."""

    radii: dict[int, float]
    chord_tolerance_mm: float
    start_z: float  # where the tool is before the first move: retracted, at the travel's top
    x: float = 0.0
    y: float = 0.0
    z: float = math.nan
    inches: bool = False
    relative: bool = False
    motion: float | None = None  # the modal motion: 0, 1, 2, 3, 81, 83; None after G80
    retract_to_r: bool = False  # G99
    cycle_z: float = 0.0  # the Z at which a drilling cycle started (G98 retracts there)
    cycle_r: float | None = None
    cycle_bottom: float | None = None
    feed: float = 0.0
    spindle: bool = False
    tool: int = 0  # in the spindle
    selected: int = 0  # T word, before M6
    segments: list[Segment] = field(default_factory=list)
    problems: dict[str, tuple[str, int]] = field(default_factory=dict)

    def problem(self, check: str, message: str) -> None:
        first, count = self.problems.get(check, (message, 0))
        self.problems[check] = (first, count + 1)

    def read(self, gcode: bytes) -> None:
        self.z = self.start_z
        try:
            text = gcode.decode("utf-8")
        except UnicodeDecodeError as error:
            self.problem("numbers", f"byte {error.start} is not text")
            text = gcode.decode("utf-8", errors="replace")
        for number, raw in enumerate(text.splitlines(), start=1):
            manual = _MANUAL_CHANGE.search(raw)
            if manual:
                self.selected = int(manual.group(1))
                self._known_tool(number)
            code = _COMMENT.sub(" ", raw).upper().strip()
            if not code or code == "%":
                continue
            words = _WORD.findall(code)
            leftover = _WORD.sub("", code).strip()
            if leftover:
                self.problem("numbers", f"line {number} has {leftover[:20]!r}: {_show(raw)}")
            self._block(number, raw, [(letter, float(value)) for letter, value in words])
            if len(self.segments) > MAX_SEGMENTS:
                self.problem("commands", f"the program has more than {MAX_SEGMENTS} moves")
                return

    def _known_tool(self, number: int) -> None:
        if self.selected not in self.radii:
            self.problem("tools", f"line {number} calls T{self.selected}, not in the tool table")

    def _block(self, number: int, raw: str, words: list[tuple[str, float]]) -> None:
        values: dict[str, float] = {}
        gcodes: list[float] = []
        mcodes: list[float] = []
        for letter, value in words:
            if letter == "G":
                gcodes.append(round(value, 1))
            elif letter == "M":
                mcodes.append(round(value, 1))
            elif letter in "NO":
                if letter == "O":
                    self.problem("commands", f"line {number} calls a subroutine: {_show(raw)}")
            else:
                values[letter] = value
        motion: float | None = None
        for code in gcodes:
            if code in (0.0, 1.0, 2.0, 3.0, 81.0, 83.0):
                motion = code
            elif code == 20.0:
                self.inches = True
            elif code == 21.0:
                self.inches = False
            elif code == 90.0:
                self.relative = False
            elif code == 91.0:
                self.relative = True
            elif code == 98.0:
                self.retract_to_r = False
            elif code == 99.0:
                self.retract_to_r = True
            elif code == 80.0:
                self.motion = None
            elif code in _UNSUPPORTED_G:
                self.problem("commands", f"line {number} is {_UNSUPPORTED_G[code]}: {_show(raw)}")
            elif code not in _ACCEPTED_G:
                self.problem("commands", f"line {number} has G{code:g}, not read: {_show(raw)}")
        scale = INCH_MM if self.inches else 1.0
        if "F" in values:
            if values["F"] <= 0:
                self.problem("numbers", f"line {number} has a feed rate of {values['F']:g}")
            self.feed = values["F"] * scale
        if "T" in values:
            self.selected = int(values["T"])
            self._known_tool(number)
        for code in mcodes:
            if code in (3.0, 4.0):
                self.spindle = True
            elif code == 5.0:
                self.spindle = False
            elif code == 6.0 or (code == 0.0 and self.selected != self.tool):
                # M6, or the pause (M0) in which the operator loads the tool the comment
                # named: GRBL has no tool changer. Either way the spindle stops.
                self.tool = self.selected
                self.spindle = False
            elif code in (2.0, 30.0):
                self.spindle = False
            elif code not in _ACCEPTED_M:
                self.problem("commands", f"line {number} has M{code:g}, not read: {_show(raw)}")
        if 4.0 in gcodes:
            return  # a dwell's P is seconds, not a position
        if motion is not None:
            self.motion = motion
            if motion in (81.0, 83.0):
                self.cycle_z = self.z
        axes = {k: values[k] * scale for k in "XYZ" if k in values}
        if not axes and motion is None:
            return
        if self.motion is None:
            if axes:
                self.problem("commands", f"line {number} moves with no motion mode: {_show(raw)}")
            return
        if self.motion in (81.0, 83.0):
            self._cycle(number, raw, axes, values, scale)
            return
        target = self._target(axes)
        if self.motion in (2.0, 3.0):
            self._arc(number, raw, target, values, scale)
        else:
            self._straight(number, target, rapid=self.motion == 0.0)

    def _target(self, axes: dict[str, float]) -> tuple[float, float, float]:
        here = {"X": self.x, "Y": self.y, "Z": self.z}
        return tuple(  # type: ignore[return-value]
            here[k] + axes[k] if self.relative and k in axes else axes.get(k, here[k])
            for k in "XYZ"
        )

    def _straight(self, number: int, target: tuple[float, float, float], *, rapid: bool) -> None:
        if not rapid:
            self._cutting(number)
        start = (self.x, self.y, self.z)
        if target != start:
            self.segments.append(Segment(number, rapid, self.tool, start, target))
        self.x, self.y, self.z = target

    def _cutting(self, number: int) -> None:
        if self.tool == 0:
            self.problem("spindle and feed", f"line {number} cuts with no tool in the spindle")
        elif not self.spindle:
            self.problem("spindle and feed", f"line {number} cuts with the spindle stopped")
        elif self.feed <= 0:
            self.problem("spindle and feed", f"line {number} cuts with no feed rate")

    def _arc(
        self,
        number: int,
        raw: str,
        target: tuple[float, float, float],
        values: dict[str, float],
        scale: float,
    ) -> None:
        x0, y0, z0 = self.x, self.y, self.z
        x1, y1, z1 = target
        clockwise = self.motion == 2.0
        if "R" in values:
            centre = _centre_from_radius(x0, y0, x1, y1, values["R"] * scale, clockwise)
            if centre is None:
                self.problem("numbers", f"line {number} has an arc radius too small: {_show(raw)}")
                self._straight(number, target, rapid=False)
                return
            cx, cy = centre
        else:
            if "I" not in values and "J" not in values:
                self.problem("numbers", f"line {number} is an arc with no centre: {_show(raw)}")
                self._straight(number, target, rapid=False)
                return
            cx, cy = x0 + values.get("I", 0.0) * scale, y0 + values.get("J", 0.0) * scale
        radius = math.hypot(x0 - cx, y0 - cy)
        if abs(math.hypot(x1 - cx, y1 - cy) - radius) > max(0.002, 0.001 * radius):
            self.problem(
                "numbers",
                f"line {number} ends an arc off its circle (radius {radius:.3f} mm at the start, "
                f"{math.hypot(x1 - cx, y1 - cy):.3f} mm at the end): {_show(raw)}",
            )
        a0 = math.atan2(y0 - cy, x0 - cx)
        a1 = math.atan2(y1 - cy, x1 - cx)
        sweep = a1 - a0
        if clockwise:
            sweep = sweep if sweep < 0 else sweep - math.tau
        else:
            sweep = sweep if sweep > 0 else sweep + math.tau
        if abs(x1 - x0) < 1e-9 and abs(y1 - y0) < 1e-9:
            sweep = -math.tau if clockwise else math.tau  # a full circle (a helix turn)
        turns = int(values.get("P", 1.0)) - 1  # LinuxCNC: P extra full turns
        sweep += math.copysign(math.tau * max(turns, 0), sweep)
        if radius <= self.chord_tolerance_mm:
            steps = 1
        else:
            step = 2 * math.acos(max(-1.0, 1 - self.chord_tolerance_mm / radius))
            steps = max(1, math.ceil(abs(sweep) / step))
        self._cutting(number)
        for k in range(1, steps + 1):
            angle = a0 + sweep * k / steps
            point = (
                (x1, y1, z1)
                if k == steps
                else (
                    cx + radius * math.cos(angle),
                    cy + radius * math.sin(angle),
                    z0 + (z1 - z0) * k / steps,
                )
            )
            self.segments.append(Segment(number, False, self.tool, (self.x, self.y, self.z), point))
            self.x, self.y, self.z = point

    def _cycle(
        self,
        number: int,
        raw: str,
        axes: dict[str, float],
        values: dict[str, float],
        scale: float,
    ) -> None:
        """G81/G83: to XY at the clearance height, down to R, feed to Z, back up. Pecking
        (G83's Q) changes the chips, not the hole, so it is simulated as one feed."""
        if self.relative:
            self.problem(
                "commands", f"line {number} is a drilling cycle in G91 (not read): {_show(raw)}"
            )
            return
        if "R" in values:
            self.cycle_r = values["R"] * scale
        if "Z" in axes:
            self.cycle_bottom = axes["Z"]
        if self.cycle_r is None or self.cycle_bottom is None:
            self.problem(
                "numbers", f"line {number} is a drilling cycle without R or Z: {_show(raw)}"
            )
            return
        if self.motion == 83.0 and values.get("Q", 1.0) <= 0:
            self.problem("numbers", f"line {number} pecks by Q{values['Q']:g}: {_show(raw)}")
        r_plane, bottom = self.cycle_r, self.cycle_bottom
        clear = max(self.z, r_plane)
        x, y = axes.get("X", self.x), axes.get("Y", self.y)
        self._straight(number, (self.x, self.y, clear), rapid=True)
        self._straight(number, (x, y, clear), rapid=True)
        self._straight(number, (x, y, r_plane), rapid=True)
        self._straight(number, (x, y, bottom), rapid=False)
        back = r_plane if self.retract_to_r else max(self.cycle_z, r_plane)
        self._straight(number, (x, y, back), rapid=True)


def _centre_from_radius(
    x0: float, y0: float, x1: float, y1: float, radius: float, clockwise: bool
) -> tuple[float, float] | None:
    """The centre of an R-format arc: a negative R takes the long way (more than 180°)."""
    chord = math.hypot(x1 - x0, y1 - y0)
    if chord < 1e-9 or abs(radius) < chord / 2 - 1e-6:
        return None
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    rise = math.sqrt(max(radius * radius - chord * chord / 4, 0.0))
    ux, uy = (x1 - x0) / chord, (y1 - y0) / chord
    # Left of the chord for a short counter-clockwise arc; right for a short clockwise one.
    side = 1.0 if (radius > 0) != clockwise else -1.0
    return mx - uy * rise * side, my + ux * rise * side


def _show(raw: str) -> str:
    """A G-code line quoted in a message: short and printable."""
    text = "".join(ch if ch.isprintable() else "?" for ch in raw.strip())
    return repr(text[:60])
