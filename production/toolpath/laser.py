"""Laser cutting of flat parts: the part's outline, cut around at half the kerf, as GRBL G-code.

Pure: bytes and a machine profile in, a MachineProgram out (no Django, no clock, no network).

1. The outline (`part_outline`) is the part's top-view silhouette: what the beam must never
   touch at any height. From the STEP (a CadQuery revision) it is the union of the solid's
   horizontal planar faces, their edges sampled to 1 µm, so a 4.5 mm hole stays a 4.5 mm hole;
   it is checked against the mesh's silhouette and the mesh's is used when they disagree
   (an uploaded STL has only the mesh: its arcs are chords, within the STL's tolerance).
2. The part must be a plate of the sheet's thickness; what does not go through the sheet
   (countersinks, pockets, chamfers) is left for after cutting, with a warning.
3. The cut path is the outline grown by half the kerf (shapely buffer): outer contours move
   outward and holes inward, so the beam's edge runs along the part's edge. A web or hole the
   beam cannot pass is refused rather than cut away.
4. Contours are cut innermost first (a hole's slug, then the outline that frees the part: a
   part cut free first can shift and spoil its holes), nearest-first within a depth, each
   entered by a lead-in from the waste side so the pierce mark stays off the part.
5. GRBL laser mode ($32=1): M4 (dynamic power, scaled with the actual speed) with S in the
   machine's $30 range, M5 before every travel, G0 travels, G21 G90 G17.

The G54 origin is the sheet's front-left corner on its top face (program.py): the part's
silhouette sits `sheet_margin_mm` in from the sheet's front and left edges.
"""

import io
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
import trimesh
from shapely.geometry import LinearRing, LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from microfactory.errors import Rejected
from production.toolpath.motion import MachineLimits, estimate_s
from production.toolpath.program import SHEET_THINNER_MM, MachineProgram, Stock, ToolUse

if TYPE_CHECKING:
    import cadquery as cq  # at run time only inside _step_silhouette: OCP loads on first use

ENGINE = "microfactory-laser 1"
SOURCES = ("co2", "fibre")

# How closely the STEP's curved edges are sampled, and how far the STEP and mesh silhouettes
# may differ in area before the mesh is trusted instead (a STEP whose horizontal faces do not
# cover the part's top view: a dome, a part with chamfered or sloped tops on every side).
STEP_DEFLECTION_MM = 0.001
SILHOUETTE_AGREEMENT = 0.02
# A top or bottom face smaller than the silhouette by more than this (mm²) means something
# does not go through the sheet: a countersink, a pocket, a chamfer.
THROUGH_AREA_MM2 = 0.01


@dataclass(frozen=True)
class LaserProfile:
    """One laser cutter: its bed, its source, and its GRBL settings."""

    machine_model: str  # written into the program's header
    bed_mm: tuple[float, float]  # x, y travel of the head
    source: str = "co2"  # "co2" | "fibre": which rows of CUT_TABLE apply
    max_s: int = 1000  # GRBL $30: the S value of full power
    travel_mm_min: float = 6000.0  # G0 speed, for the time estimate
    # The time estimate's motion model (production.toolpath.motion): GRBL plans with a
    # junction deviation, not a jerk; a 10 mm/s jerk gives corner speeds of the same order.
    acceleration_mm_s2: float = 1500.0
    jerk_mm_s: float = 10.0
    lead_in_mm: float = 2.0  # the pierce happens this far off the part, on the waste side
    sheet_margin_mm: float = 5.0  # from the sheet's front and left edges to the part

    def __post_init__(self) -> None:
        # A bad profile is our configuration error, not an unmakeable part: crash loudly.
        if self.source not in SOURCES:
            raise ValueError(f"unknown laser source {self.source!r}; expected one of {SOURCES}")
        positive = (*self.bed_mm, self.max_s, self.travel_mm_min, self.acceleration_mm_s2)
        if min(positive) <= 0 or self.jerk_mm_s < 0:
            raise ValueError(
                "bed_mm, max_s, travel_mm_min and acceleration_mm_s2 must be positive, "
                "jerk_mm_s not negative"
            )
        if self.lead_in_mm < 0 or self.sheet_margin_mm < self.lead_in_mm:
            raise ValueError("lead_in_mm cannot be negative nor exceed sheet_margin_mm")


@dataclass(frozen=True)
class CutSetting:
    power_percent: float  # of the source's full power
    speed_mm_min: float
    passes: int
    kerf_mm: float  # width of the cut at this power and speed


# (source, material slug, sheet thickness mm) -> how to cut it. Starting points from the
# published cutting charts of ~80 W CO2 tubes (acrylic, plywood) and ~1.5 kW fibre sources with
# nitrogen assist (stainless steel), rounded down to the slower side; a shop calibrates its own
# machine with a test card and edits these rows. A combination that is not here is refused:
# a guessed power either does not cut through or burns the part.
CUT_TABLE: dict[tuple[str, str, float], CutSetting] = {
    ("co2", "acrylic", 2.0): CutSetting(
        power_percent=50, speed_mm_min=1200, passes=1, kerf_mm=0.12
    ),
    ("co2", "acrylic", 3.0): CutSetting(power_percent=65, speed_mm_min=900, passes=1, kerf_mm=0.15),
    ("co2", "acrylic", 4.0): CutSetting(power_percent=70, speed_mm_min=600, passes=1, kerf_mm=0.16),
    ("co2", "acrylic", 5.0): CutSetting(power_percent=75, speed_mm_min=480, passes=1, kerf_mm=0.18),
    ("co2", "acrylic", 6.0): CutSetting(power_percent=85, speed_mm_min=360, passes=1, kerf_mm=0.2),
    ("co2", "acrylic", 8.0): CutSetting(power_percent=95, speed_mm_min=240, passes=1, kerf_mm=0.25),
    ("co2", "acrylic", 10.0): CutSetting(power_percent=95, speed_mm_min=240, passes=2, kerf_mm=0.3),
    ("co2", "plywood", 3.0): CutSetting(
        power_percent=60, speed_mm_min=1200, passes=1, kerf_mm=0.15
    ),
    ("co2", "plywood", 4.0): CutSetting(power_percent=70, speed_mm_min=800, passes=1, kerf_mm=0.18),
    ("co2", "plywood", 6.0): CutSetting(power_percent=85, speed_mm_min=420, passes=1, kerf_mm=0.22),
    ("fibre", "stainless-steel", 1.0): CutSetting(
        power_percent=60, speed_mm_min=12000, passes=1, kerf_mm=0.1
    ),
    ("fibre", "stainless-steel", 1.5): CutSetting(
        power_percent=80, speed_mm_min=8000, passes=1, kerf_mm=0.12
    ),
    ("fibre", "stainless-steel", 2.0): CutSetting(
        power_percent=100, speed_mm_min=5000, passes=1, kerf_mm=0.15
    ),
}


def cut_setting(*, source: str, material: str, thickness_mm: float) -> CutSetting:
    """The table's row for this source, material and thickness; Rejected when there is none."""
    for (row_source, row_material, row_thickness), setting in CUT_TABLE.items():
        if (row_source, row_material) == (source, material) and math.isclose(
            row_thickness, thickness_mm, abs_tol=0.01
        ):
            return setting
    known = sorted(t for s, m, t in CUT_TABLE if (s, m) == (source, material))
    if not known:
        raise Rejected(f"no laser cutting data for {material} on a {source} laser")
    raise Rejected(
        f"no laser cutting data for {thickness_mm:g} mm {material} on a {source} laser "
        f"(known: {', '.join(f'{t:g}' for t in known)} mm)"
    )


@dataclass(frozen=True)
class PartOutline:
    """The part seen from above, in its own coordinates: what the beam must not touch."""

    shape: MultiPolygon
    thickness_mm: float  # the part's z extent
    source: str  # "step" | "mesh": where the silhouette came from
    warnings: tuple[str, ...] = ()


def part_outline(*, step: bytes | None, stl: bytes) -> PartOutline:
    """The part's top-view silhouette: from the STEP's faces where it has one, else the mesh."""
    mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
    if not isinstance(mesh, trimesh.Trimesh) or mesh.is_empty:
        raise Rejected("the part's mesh is empty")
    thickness = float(mesh.bounds[1][2] - mesh.bounds[0][2])
    from_mesh = _mesh_silhouette(mesh)
    if from_mesh.is_empty:
        raise Rejected("the part has no area seen from above")
    warnings: list[str] = []
    shape, source = from_mesh, "mesh"
    if step:
        try:
            from_step = _step_silhouette(step)
        except ValueError:  # CadQuery's answer to a STEP it cannot read
            from_step = MultiPolygon()
        if abs(from_step.area - from_mesh.area) <= SILHOUETTE_AGREEMENT * from_mesh.area:
            shape, source = from_step, "step"
        else:
            warnings.append(
                "the STEP's flat faces do not give the part's top view: cut from the mesh's "
                "outline (arcs as chords)"
            )
    if _not_through(mesh, from_mesh):
        warnings.append(
            "some features do not go through the sheet (countersinks, pockets or chamfers): "
            "the laser cuts the through outline only; finish them after cutting"
        )
    return PartOutline(shape=shape, thickness_mm=thickness, source=source, warnings=tuple(warnings))


def _multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Polygon)]
    return MultiPolygon([shapely.geometry.polygon.orient(p, 1.0) for p in polygons if p.area > 0])


def _not_through(mesh: trimesh.Trimesh, silhouette: MultiPolygon) -> bool:
    """Whether the flat top or bottom face is smaller than the silhouette: a straight-walled
    plate's are the silhouette itself (the same mesh, the same chords)."""
    (_, _, bottom), (_, _, top) = mesh.bounds
    for z, facing in ((top, 1.0), (bottom, -1.0)):
        flat = (mesh.face_normals[:, 2] * facing > 1 - 1e-9) & (
            abs(mesh.triangles[:, :, 2] - z).max(axis=1) < 1e-6
        )
        triangles = shapely.polygons(mesh.triangles[flat][:, :, :2])
        if shapely.union_all(triangles).area < silhouette.area - THROUGH_AREA_MM2:
            return True
    return False


def _mesh_silhouette(mesh: trimesh.Trimesh) -> MultiPolygon:
    # Every vertical line through a closed solid leaves it through an upward-facing triangle,
    # so the union of those triangles seen from above is the silhouette.
    up = mesh.triangles[mesh.face_normals[:, 2] > 1e-9][:, :, :2]
    triangles = shapely.polygons(up)
    triangles = triangles[shapely.area(triangles) > 1e-12]
    return _multipolygon(shapely.make_valid(shapely.union_all(triangles)))


def _step_silhouette(step: bytes) -> MultiPolygon:
    # Imported here: OpenCascade loads only in the worker that plans a laser job.
    import cadquery as cq

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "part.step")
        with open(path, "wb") as handle:
            handle.write(step)
        solid = cq.importers.importStep(path).val()
    if not isinstance(solid, cq.Shape):
        raise Rejected("the STEP file holds no solid")
    regions = []
    for face in solid.Faces():
        if face.geomType() != "PLANE" or abs(face.normalAt().z) < 1 - 1e-9:
            continue
        outer = _wire_points(face.outerWire(), face)
        inner = [_wire_points(wire, face) for wire in face.innerWires()]
        regions.append(shapely.make_valid(Polygon(outer, inner)))
    if not regions:
        return MultiPolygon()
    return _multipolygon(shapely.make_valid(shapely.union_all(regions)))


def _wire_points(wire: "cq.Wire", face: "cq.Face") -> list[tuple[float, float]]:
    """A wire's points in order, each edge sampled within STEP_DEFLECTION_MM, vertices kept."""
    from OCP.BRepAdaptor import BRepAdaptor_Curve
    from OCP.BRepTools import BRepTools_WireExplorer
    from OCP.GCPnts import GCPnts_QuasiUniformDeflection
    from OCP.TopAbs import TopAbs_REVERSED

    points: list[tuple[float, float]] = []
    explorer = BRepTools_WireExplorer(wire.wrapped, face.wrapped)
    while explorer.More():
        edge = explorer.Current()
        curve = BRepAdaptor_Curve(edge)
        sampler = GCPnts_QuasiUniformDeflection(
            curve, STEP_DEFLECTION_MM, curve.FirstParameter(), curve.LastParameter()
        )
        sampled = [sampler.Value(i) for i in range(1, sampler.NbPoints() + 1)]
        xy = [(p.X(), p.Y()) for p in sampled]
        if edge.Orientation() == TopAbs_REVERSED:
            xy.reverse()
        points.extend(xy if not points else xy[1:])
        explorer.Next()
    return points


@dataclass(frozen=True)
class Contour:
    """One closed cut, in sheet coordinates, in cutting order."""

    kind: str  # "hole" | "outline"
    depth: int  # how many other contours enclose it: deeper ones are cut first
    lead_in: tuple[tuple[float, float], ...]  # pierce point, then the ring's start; () if none
    ring: tuple[tuple[float, float], ...]  # closed: the first point is repeated at the end


@dataclass(frozen=True)
class CutPlan:
    sheet_mm: tuple[float, float]
    offset_mm: tuple[float, float]  # added to the part's x, y to place it on the sheet
    part: MultiPolygon  # the silhouette, placed on the sheet
    contours: tuple[Contour, ...]
    setting: CutSetting
    warnings: tuple[str, ...]


def placement(
    outline: PartOutline, *, margin_mm: float
) -> tuple[MultiPolygon, tuple[float, float], tuple[float, float]]:
    """The silhouette moved `margin_mm` in from the sheet's front-left corner (the G54 origin),
    the sheet's size, and the (dx, dy) that moved it."""
    minx, miny, maxx, maxy = outline.shape.bounds
    dx, dy = margin_mm - minx, margin_mm - miny
    placed = _multipolygon(shapely.affinity.translate(outline.shape, dx, dy))
    return placed, (maxx - minx + 2 * margin_mm, maxy - miny + 2 * margin_mm), (dx, dy)


def plan_contours(
    *,
    outline: PartOutline,
    material: str,
    thickness_mm: float,
    machine: LaserProfile,
) -> CutPlan:
    """The contours to cut and their order; Rejected for a part the laser cannot make."""
    if outline.thickness_mm > thickness_mm + 0.01:
        raise Rejected(
            f"not a flat plate of the sheet: the part is {outline.thickness_mm:.2f} mm thick, "
            f"the {material} sheet {thickness_mm:g} mm"
        )
    if outline.thickness_mm < thickness_mm - SHEET_THINNER_MM:
        raise Rejected(
            f"the part is {outline.thickness_mm:.2f} mm thick and the laser cuts through the "
            f"whole {thickness_mm:g} mm sheet: choose a sheet of the part's thickness"
        )
    setting = cut_setting(source=machine.source, material=material, thickness_mm=thickness_mm)
    part, sheet, offset = placement(outline, margin_mm=machine.sheet_margin_mm)
    if sheet[0] > machine.bed_mm[0] or sheet[1] > machine.bed_mm[1]:
        raise Rejected(
            f"the sheet ({sheet[0]:.1f} x {sheet[1]:.1f} mm) does not fit the laser's bed "
            f"({machine.bed_mm[0]:g} x {machine.bed_mm[1]:g} mm)"
        )
    half = setting.kerf_mm / 2
    cut = _multipolygon(part.buffer(half, quad_segs=16))
    holes = sum(len(p.interiors) for p in part.geoms)
    if len(cut.geoms) != len(part.geoms) or sum(len(p.interiors) for p in cut.geoms) != holes:
        raise Rejected(
            f"a hole, slot or gap of the part is narrower than the {setting.kerf_mm:g} mm kerf: "
            "the beam would cut it away"
        )
    rings = [("outline", p.exterior) for p in cut.geoms]
    rings += [("hole", ring) for p in cut.geoms for ring in p.interiors]
    areas = [Polygon(ring) for _, ring in rings]
    depths = [
        sum(1 for j, other in enumerate(areas) if j != i and other.contains(area))
        for i, area in enumerate(areas)
    ]
    warnings = list(outline.warnings)
    contours: list[Contour] = []
    position = (0.0, 0.0)
    remaining = list(range(len(rings)))
    while remaining:
        deepest = max(depths[i] for i in remaining)
        level = [i for i in remaining if depths[i] == deepest]
        # Nearest first within a depth: a greedy tour, good enough for a few dozen contours.
        index, start = min(
            ((i, _nearest_vertex(rings[i][1], position)) for i in level),
            key=lambda found: math.dist(rings[found[0]][1].coords[found[1]], position),
        )
        remaining.remove(index)
        kind, ring = rings[index]
        coords = list(ring.coords)[:-1]
        ordered = coords[start:] + coords[:start] + [coords[start]]
        lead_in = _lead_in(
            ordered, part=part, sheet=sheet, half_kerf=half, length=machine.lead_in_mm
        )
        if machine.lead_in_mm > 0 and not lead_in:
            warnings.append(f"no room for a lead-in on a {kind}: pierced on the cut path")
        contours.append(Contour(kind=kind, depth=deepest, lead_in=lead_in, ring=tuple(ordered)))
        position = ordered[-1]
    return CutPlan(
        sheet_mm=sheet,
        offset_mm=offset,
        part=part,
        contours=tuple(contours),
        setting=setting,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _nearest_vertex(ring: LinearRing, position: tuple[float, float]) -> int:
    coords = list(ring.coords)[:-1]
    return min(range(len(coords)), key=lambda i: math.dist(coords[i], position))


def _lead_in(
    ring: Sequence[tuple[float, float]],
    *,
    part: MultiPolygon,
    sheet: tuple[float, float],
    half_kerf: float,
    length: float,
) -> tuple[tuple[float, float], ...]:
    """A straight lead-in onto ring[0] from the waste side, shortened until it fits; () if none."""
    if length <= 0:
        return ()
    (px, py), (x, y), (nx_, ny_) = ring[-2], ring[0], ring[1]
    # Rings are oriented (exteriors counter-clockwise, holes clockwise), so the waste lies to
    # the right of the direction of travel for both: average the two edges' right normals.
    normal = [0.0, 0.0]
    for ax, ay, bx, by in ((px, py, x, y), (x, y, nx_, ny_)):
        size = math.hypot(bx - ax, by - ay) or 1.0
        normal[0] += (by - ay) / size
        normal[1] -= (bx - ax) / size
    size = math.hypot(*normal)
    if size < 1e-9:
        return ()
    ux, uy = normal[0] / size, normal[1] / size
    for _ in range(4):
        pierce = (x + ux * length, y + uy * length)
        segment = LineString([pierce, (x, y)])
        inside_sheet = 0 <= pierce[0] <= sheet[0] and 0 <= pierce[1] <= sheet[1]
        if inside_sheet and segment.distance(part) >= half_kerf - 1e-6:
            return (pierce, (x, y))
        length /= 2
    return ()


def plan_cutting(
    *,
    step: bytes | None,
    stl: bytes,
    material: str,
    thickness_mm: float,
    machine: LaserProfile,
) -> MachineProgram:
    """The laser program cutting this flat part from a sheet; Rejected if it cannot be cut."""
    outline = part_outline(step=step, stl=stl)
    plan = plan_contours(
        outline=outline, material=material, thickness_mm=thickness_mm, machine=machine
    )
    return program_from_plan(plan, material=material, thickness_mm=thickness_mm, machine=machine)


def program_from_plan(
    plan: CutPlan, *, material: str, thickness_mm: float, machine: LaserProfile
) -> MachineProgram:
    """The GRBL laser-mode G-code of a plan, with its lengths and time estimate."""
    setting = plan.setting
    s_value = round(machine.max_s * setting.power_percent / 100)
    width, depth = plan.sheet_mm
    lines = [
        f"(Microfactory laser program, {ENGINE})",
        f"(machine: {machine.machine_model}, {machine.source} laser)",
        f"(controller: GRBL laser mode $32=1, full power S{machine.max_s} = $30)",
        f"(material: {material} sheet {thickness_mm:g} mm thick)",
        f"(cut: {setting.power_percent:g} percent power, {setting.speed_mm_min:g} mm/min, "
        f"{setting.passes} pass{'es' if setting.passes > 1 else ''}, kerf {setting.kerf_mm:g} mm)",
        f"(sheet: {width:.1f} x {depth:.1f} mm, G54 origin at its front-left corner, top face)",
        f"(contours: {len(plan.contours)}, inner before outer)",
        "G21 G90 G17",
        "G54",
        "M5",
    ]
    position = (0.0, 0.0)
    cut_length = travel_length = 0.0
    travel_mm_s, cut_mm_s = machine.travel_mm_min / 60, setting.speed_mm_min / 60
    moves: list[np.ndarray] = []  # rows of motion.estimate_s: dx, dy, dz, de, mm/s

    def move(start: tuple[float, float], end: tuple[float, float], speed: float) -> float:
        moves.append(np.array([end[0] - start[0], end[1] - start[1], 0.0, 0.0, speed]))
        return math.dist(start, end)

    for number, contour in enumerate(plan.contours, start=1):
        entry = contour.lead_in[0] if contour.lead_in else contour.ring[0]
        lines.append(f"(contour {number} of {len(plan.contours)}: {contour.kind})")
        lines.append(f"G0 X{entry[0]:.3f} Y{entry[1]:.3f}")
        travel_length += move(position, entry, travel_mm_s)
        lines.append(f"M4 S{s_value}")
        path = list(contour.lead_in[1:]) + list(contour.ring[1:])
        # Further passes go round the ring again without switching the beam off.
        path += list(contour.ring[1:]) * (setting.passes - 1)
        feed = f" F{setting.speed_mm_min:g}"
        here = entry
        for x, y in path:
            lines.append(f"G1 X{x:.3f} Y{y:.3f}{feed}")
            feed = ""
            cut_length += move(here, (x, y), cut_mm_s)
            here = (x, y)
        lines.append("M5")
        position = here
    lines.append("G0 X0 Y0")
    travel_length += move(position, (0.0, 0.0), travel_mm_s)
    lines += ["M5", "M30", ""]
    # Trapezoids with jerk-limited corners, not length / speed: a fibre laser at 8 m/min spends
    # a third of its time on small holes accelerating and braking (benchmarks/README.md).
    limits = MachineLimits(
        acceleration_mm_s2=machine.acceleration_mm_s2,
        jerk_xy_mm_s=machine.jerk_mm_s,
        max_feedrate_mm_s=(1e6, 1e6, 1e6, 1e6),  # the feeds written are the limits
    )
    estimated = estimate_s(moves, limits)
    setup = (
        f"Lay a sheet of {thickness_mm:g} mm {material}, at least {width:.0f} x {depth:.0f} mm, "
        "flat on the bed.",
        f"Check the controller: $32=1 (laser mode) and $30={machine.max_s}.",
        "Focus the beam on the sheet's top face.",
        "Jog to the sheet's front-left corner and set G54 X0 Y0 there.",
        "Run the air assist and the extraction while cutting.",
    )
    tool = ToolUse(
        number=1,
        name=f"{machine.source.upper()} laser, {setting.kerf_mm:g} mm kerf",
        kind="laser",
        diameter_mm=setting.kerf_mm,
        operations=("cut",),
        feed_mm_min=setting.speed_mm_min,
        power_percent=setting.power_percent,
    )
    return MachineProgram(
        process="laser",
        gcode="\n".join(lines).encode(),
        dialect="grbl",
        engine=ENGINE,
        estimated_time_s=estimated,
        stock=Stock(
            x_mm=width,
            y_mm=depth,
            thickness_mm=thickness_mm,
            material=material,
            margin_mm=machine.sheet_margin_mm,
        ),
        tools=(tool,),
        setup_steps=setup,
        warnings=plan.warnings,
        cut_length_mm=cut_length,
        rapid_length_mm=travel_length,
    )
