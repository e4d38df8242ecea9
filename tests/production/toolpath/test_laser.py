"""Laser cutting of the seed cover plate at its parameter corners, measured against its parameters.

Each corner is built once (module fixture) by the real CadQuery script, then planned, read
back, verified, run through LinuxCNC's rs274 and exported to SVG and DXF.
"""

import dataclasses
import math
import re
import xml.etree.ElementTree as ET
from functools import cache
from typing import Any

import ezdxf
import pytest
import shapely
import trimesh
from shapely.geometry import MultiPolygon, Polygon, box

from catalog.geometry import BuildLimits, Geometry, build_geometry
from catalog.parts import DEMO_PARTS
from microfactory.errors import Rejected
from production.toolpath.laser import (
    LaserProfile,
    PartOutline,
    cut_setting,
    part_outline,
    plan_contours,
    plan_cutting,
    program_from_plan,
)
from production.toolpath.laser_verify import check_cutting, read_laser_gcode, verify_cutting
from production.toolpath.program import MachineProgram
from production.toolpath.rs274 import rs274_errors
from production.toolpath.vectors import cut_dxf, cut_svg
from tests.catalog.corners import corners

pytestmark = pytest.mark.cad  # builds parts in the CadQuery sandbox; no database

CO2 = LaserProfile(machine_model="test CO2 80 W", bed_mm=(600, 400), source="co2")
FIBRE = LaserProfile(machine_model="test fibre 1.5 kW", bed_mm=(300, 300), source="fibre")
MEASURE_MM = 0.01  # the brief's tolerance on every measured offset


def _part(slug: str) -> Any:
    return next(p for p in DEMO_PARTS if p.slug == slug)


@cache
def _build(slug: str, items: tuple[tuple[str, Any], ...]) -> Geometry:
    return build_geometry(_part(slug).script, dict(items), limits=BuildLimits(require_bwrap=False))


def _defaults(slug: str) -> dict[str, Any]:
    return {p["name"]: p["default"] for p in _part(slug).schema}


def _sheet(thickness: float) -> tuple[str, LaserProfile]:
    """The material and laser the table has for a plate this thick."""
    return ("stainless-steel", FIBRE) if thickness <= 2 else ("acrylic", CO2)


@dataclasses.dataclass(frozen=True)
class Planned:
    params: dict[str, Any]
    geometry: Geometry
    material: str
    machine: LaserProfile
    program: MachineProgram


def _plan(params: dict[str, Any]) -> Planned:
    geometry = _build("cover_plate", tuple(sorted(params.items())))
    material, machine = _sheet(params["thickness"])
    program = plan_cutting(
        step=geometry.step,
        stl=geometry.stl,
        material=material,
        thickness_mm=params["thickness"],
        machine=machine,
    )
    return Planned(params, geometry, material, machine, program)


COVER_CORNERS = corners(_part("cover_plate"))


@pytest.fixture(scope="module", params=sorted(COVER_CORNERS))
def corner(request: pytest.FixtureRequest) -> Planned:
    return _plan(COVER_CORNERS[request.param])


@pytest.fixture(scope="module")
def default_plate() -> Planned:
    return _plan(_defaults("cover_plate"))


def _hole_centres(params: dict[str, Any]) -> list[tuple[float, float]]:
    """The hole centres as cover_plate.py places them, about the plate's centre."""
    x0 = params["length"] / 2 - params["edge_margin"]
    y0 = params["width"] / 2 - params["edge_margin"]
    points = set()
    for i in range(params["holes_x"]):
        x = -x0 + 2 * x0 * i / (params["holes_x"] - 1)
        points |= {(round(x, 6), -y0), (round(x, 6), y0)}
    for j in range(params["holes_y"]):
        y = -y0 + 2 * y0 * j / (params["holes_y"] - 1)
        points |= {(-x0, round(y, 6)), (x0, round(y, 6))}
    return sorted(points)


def _plate_distance(x: float, y: float, params: dict[str, Any]) -> float:
    """Signed distance from (x, y), about the plate's centre, to its rounded-rectangle edge."""
    r = params["corner_r"]
    qx = abs(x) - (params["length"] / 2 - r)
    qy = abs(y) - (params["width"] / 2 - r)
    return math.hypot(max(qx, 0), max(qy, 0)) + min(max(qx, qy), 0) - r


def _centred(planned: Planned) -> tuple[float, float]:
    """Where the plate's centre lands on the sheet."""
    margin = planned.machine.sheet_margin_mm
    return margin + planned.params["length"] / 2, margin + planned.params["width"] / 2


def test_hole_cuts_run_half_a_kerf_inside_each_hole(corner: Planned) -> None:
    kerf = cut_setting(
        source=corner.machine.source,
        material=corner.material,
        thickness_mm=corner.params["thickness"],
    ).kerf_mm
    cx, cy = _centred(corner)
    cuts = read_laser_gcode(corner.program.gcode).cuts
    rings = [cut.ring for cut in cuts]
    expected = corner.params["hole_d"] / 2 - kerf / 2
    centres = _hole_centres(corner.params)
    for hx, hy in centres:
        (ring,) = [
            r
            for r in rings
            if Polygon(r).contains(shapely.Point(cx + hx, cy + hy))
            and Polygon(r).area < math.pi * corner.params["hole_d"] ** 2
        ]
        radii = [math.dist(p, (cx + hx, cy + hy)) for p in ring]
        assert min(radii) == pytest.approx(expected, abs=MEASURE_MM)
        assert max(radii) == pytest.approx(expected, abs=MEASURE_MM)
    assert len(rings) == len(centres) + 1


def test_the_outline_cut_runs_half_a_kerf_outside_the_plate(corner: Planned) -> None:
    kerf = cut_setting(
        source=corner.machine.source,
        material=corner.material,
        thickness_mm=corner.params["thickness"],
    ).kerf_mm
    cx, cy = _centred(corner)
    outline = read_laser_gcode(corner.program.gcode).cuts[-1].ring
    midpoints = [
        ((ax + bx) / 2, (ay + by) / 2)
        for (ax, ay), (bx, by) in zip(outline, outline[1:], strict=False)
    ]
    distances = [_plate_distance(x - cx, y - cy, corner.params) for x, y in [*outline, *midpoints]]
    assert min(distances) == pytest.approx(kerf / 2, abs=MEASURE_MM)
    assert max(distances) == pytest.approx(kerf / 2, abs=MEASURE_MM)


def test_holes_are_cut_before_the_outline_and_every_contour_closes(corner: Planned) -> None:
    cuts = read_laser_gcode(corner.program.gcode).cuts
    assert all(cut.ring for cut in cuts)
    for cut in cuts:
        assert math.dist(cut.ring[0], cut.ring[-1]) <= 0.002
    *holes, outline = [Polygon(cut.ring) for cut in cuts]
    assert all(outline.contains(hole) for hole in holes)
    assert all(not hole.contains(other) for hole in holes for other in holes if other is not hole)


def test_every_cut_starts_with_a_lead_in_from_the_waste_side(corner: Planned) -> None:
    cuts = read_laser_gcode(corner.program.gcode).cuts
    *holes, outline = cuts
    for cut in holes:
        assert cut.lead_in, "a hole's pierce point lies inside the hole"
        assert Polygon(cut.ring).contains(shapely.Point(cut.lead_in[0]))
    assert outline.lead_in
    assert not Polygon(outline.ring).contains(shapely.Point(outline.lead_in[0]))
    assert math.dist(*outline.lead_in) == pytest.approx(corner.machine.lead_in_mm, abs=1e-3)


def test_the_verifier_passes_each_corner_program(corner: Planned) -> None:
    report = verify_cutting(
        corner.program.gcode,
        step=corner.geometry.step,
        stl=corner.geometry.stl,
        material=corner.material,
        thickness_mm=corner.params["thickness"],
        machine=corner.machine,
    )
    assert report.contours == len(_hole_centres(corner.params)) + 1
    assert report.min_clearance_mm >= report.kerf_mm / 2 - 0.002
    assert report.cut_length_mm == pytest.approx(corner.program.cut_length_mm, rel=1e-3)
    assert report.sheet_mm == pytest.approx((corner.program.stock.x_mm, corner.program.stock.y_mm))


def test_rs274_accepts_each_corner_program(corner: Planned) -> None:
    assert rs274_errors(corner.program.gcode, tools=corner.program.tools) == ()


def test_the_program_is_grbl_laser_mode_with_power_from_the_table(corner: Planned) -> None:
    text = corner.program.gcode.decode()
    setting = cut_setting(
        source=corner.machine.source,
        material=corner.material,
        thickness_mm=corner.params["thickness"],
    )
    assert "G21 G90 G17" in text and text.rstrip().endswith("M30")
    assert f"{corner.material} sheet {corner.params['thickness']:g} mm" in text
    s_values = {int(s) for s in re.findall(r"^M4 S(\d+)$", text, flags=re.M)}
    assert s_values == {round(corner.machine.max_s * setting.power_percent / 100)}
    assert not re.search(r"^M3\b", text, flags=re.M)  # M4: dynamic power, never constant M3
    # Every travel follows an M5 (or the program's start).
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("G0 "):
            previous = [x for x in lines[:n] if x.startswith(("M4", "M5"))]
            assert previous[-1] == "M5"
    program = corner.program
    # Accelerating and braking only add to length / speed; on these parts by well under half.
    at_speed = (
        60 * program.cut_length_mm / setting.speed_mm_min
        + 60 * program.rapid_length_mm / corner.machine.travel_mm_min
    )
    assert at_speed < program.estimated_time_s < 1.5 * at_speed
    assert program.tools[0].kind == "laser" and program.tools[0].diameter_mm == setting.kerf_mm


def test_countersinks_are_left_for_after_cutting_with_a_warning(corner: Planned) -> None:
    warned = any("do not go through" in w for w in corner.program.warnings)
    assert warned == corner.params["countersunk"]


def test_svg_and_dxf_hold_the_same_closed_contours(corner: Planned, tmp_path: Any) -> None:
    contours = len(read_laser_gcode(corner.program.gcode).cuts)
    svg = ET.fromstring(cut_svg(corner.program))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    stock = corner.program.stock
    assert svg.get("viewBox") == f"0 0 {stock.x_mm:.3f} {stock.y_mm:.3f}"
    assert svg.get("width") == f"{stock.x_mm:.3f}mm"
    cut_paths = svg.findall("svg:g[@id='cut']/svg:path", ns)
    assert len(cut_paths) == contours
    assert all(p.get("d", "").endswith("Z") for p in cut_paths)

    path = tmp_path / "cut.dxf"
    path.write_bytes(cut_dxf(corner.program))
    document = ezdxf.readfile(path)
    closed = [e for e in document.modelspace().query("LWPOLYLINE[layer=='CUT']") if e.closed]
    assert len(closed) == contours
    assert document.units == ezdxf.units.MM


def test_the_svg_flips_y_so_the_drawing_matches_the_sheet(default_plate: Planned) -> None:
    cuts = read_laser_gcode(default_plate.program.gcode).cuts
    svg = ET.fromstring(cut_svg(default_plate.program))
    first = svg.find("{http://www.w3.org/2000/svg}g/{http://www.w3.org/2000/svg}path")
    assert first is not None
    x, y = (float(v) for v in first.get("d", "").split()[1].split(","))
    assert (x, default_plate.program.stock.y_mm - y) == pytest.approx(cuts[0].ring[0], abs=1e-3)


# --- refusals ---------------------------------------------------------------------------------

# The lowest and highest corners: the part is an L at every size.
BRACKET_CORNERS = corners(_part("mounting_bracket"), limit=2)


@pytest.mark.parametrize("name", sorted(BRACKET_CORNERS))
def test_the_l_shaped_mounting_bracket_is_refused_as_not_a_flat_plate(name: str) -> None:
    params = BRACKET_CORNERS[name]
    geometry = _build("mounting_bracket", tuple(sorted(params.items())))
    material, machine = _sheet(params["thickness"])
    with pytest.raises(Rejected, match="not a flat plate") as refusal:
        plan_cutting(
            step=geometry.step,
            stl=geometry.stl,
            material=material,
            thickness_mm=params["thickness"],
            machine=machine,
        )
    assert f"the part is {params['leg_b']:.2f} mm thick" in str(refusal.value)


@pytest.mark.parametrize(
    ("material", "thickness", "message"),
    [
        ("acrylic", 7.0, "no laser cutting data for 7 mm acrylic on a co2 laser"),
        ("pla", 3.0, "no laser cutting data for pla on a co2 laser"),
        ("stainless-steel", 3.0, "no laser cutting data for stainless-steel on a co2 laser"),
    ],
)
def test_unknown_material_and_thickness_are_refused_not_guessed(
    material: str, thickness: float, message: str
) -> None:
    with pytest.raises(Rejected, match=message):
        cut_setting(source="co2", material=material, thickness_mm=thickness)


def test_a_part_thicker_or_thinner_than_the_sheet_is_refused(default_plate: Planned) -> None:
    geometry = default_plate.geometry  # 3 mm
    with pytest.raises(Rejected, match="not a flat plate of the sheet: the part is 3.00 mm"):
        plan_cutting(
            step=geometry.step, stl=geometry.stl, material="acrylic", thickness_mm=2, machine=CO2
        )
    with pytest.raises(Rejected, match="cuts through the whole 5 mm sheet"):
        plan_cutting(
            step=geometry.step, stl=geometry.stl, material="acrylic", thickness_mm=5, machine=CO2
        )


def test_a_sheet_larger_than_the_bed_is_refused(default_plate: Planned) -> None:
    small = dataclasses.replace(CO2, bed_mm=(100.0, 100.0))
    with pytest.raises(Rejected, match=r"sheet \(110.0 x 70.0 mm\) does not fit"):
        plan_cutting(
            step=default_plate.geometry.step,
            stl=default_plate.geometry.stl,
            material="acrylic",
            thickness_mm=3,
            machine=small,
        )


def test_a_slot_narrower_than_the_kerf_is_refused() -> None:
    slotted = box(0, 0, 40, 20).difference(box(10, 9.95, 30, 10.05))  # 0.1 mm slot, 0.15 kerf
    outline = PartOutline(shape=MultiPolygon([slotted]), thickness_mm=3.0, source="mesh")
    with pytest.raises(Rejected, match="narrower than the 0.15 mm kerf"):
        plan_contours(outline=outline, material="acrylic", thickness_mm=3, machine=CO2)


def test_an_island_inside_a_hole_is_cut_before_the_hole_around_it() -> None:
    frame = box(0, 0, 60, 60).difference(box(10, 10, 50, 50))
    island = box(20, 20, 40, 40).difference(box(28, 28, 32, 32))
    outline = PartOutline(shape=MultiPolygon([frame, island]), thickness_mm=3.0, source="mesh")
    plan = plan_contours(outline=outline, material="acrylic", thickness_mm=3, machine=CO2)
    areas = [Polygon(c.ring).area for c in plan.contours]
    # the island's hole, the island, the frame's hole, the frame.
    assert [c.depth for c in plan.contours] == [3, 2, 1, 0]
    assert areas == sorted(areas)


# --- the verifier refuses what is wrong ---------------------------------------------------------


def _check(planned: Planned, gcode: bytes) -> set[str]:
    report = check_cutting(
        gcode,
        step=planned.geometry.step,
        stl=planned.geometry.stl,
        material=planned.material,
        thickness_mm=planned.params["thickness"],
        machine=planned.machine,
    )
    return {check.name for check in report.failures}


def test_the_verifier_refuses_a_travel_with_the_beam_on(default_plate: Planned) -> None:
    gcode = default_plate.program.gcode.replace(b"M5\n(contour 2", b"(contour 2", 1)
    assert _check(default_plate, gcode) == {"beam_off_on_travels"}
    with pytest.raises(Rejected, match="travels .G0. with the beam on"):
        verify_cutting(
            gcode,
            step=default_plate.geometry.step,
            stl=default_plate.geometry.stl,
            material="acrylic",
            thickness_mm=3,
            machine=CO2,
        )


def test_the_verifier_refuses_an_open_contour(default_plate: Planned) -> None:
    lines = default_plate.program.gcode.decode().splitlines()
    first_m5 = lines.index("M5", lines.index("M4 S650"))
    del lines[first_m5 - 1]  # the move that closes the first hole
    assert "contours_closed" in _check(default_plate, "\n".join(lines).encode())


def test_the_verifier_refuses_cuts_without_kerf_compensation(default_plate: Planned) -> None:
    outline = part_outline(step=default_plate.geometry.step, stl=default_plate.geometry.stl)
    kerf = cut_setting(source="co2", material="acrylic", thickness_mm=3).kerf_mm
    hugging = dataclasses.replace(
        outline, shape=MultiPolygon([outline.shape.buffer(-kerf / 2, quad_segs=16)])
    )
    plan = plan_contours(outline=hugging, material="acrylic", thickness_mm=3, machine=CO2)
    program = program_from_plan(plan, material="acrylic", thickness_mm=3, machine=CO2)
    failures = _check(default_plate, program.gcode)
    assert "kerf_clearance" in failures and "part_edges_cut" in failures


def test_the_verifier_refuses_the_outline_cut_before_the_holes(default_plate: Planned) -> None:
    outline = part_outline(step=default_plate.geometry.step, stl=default_plate.geometry.stl)
    plan = plan_contours(outline=outline, material="acrylic", thickness_mm=3, machine=CO2)
    backwards = dataclasses.replace(plan, contours=plan.contours[::-1])
    program = program_from_plan(backwards, material="acrylic", thickness_mm=3, machine=CO2)
    assert _check(default_plate, program.gcode) == {"inner_before_outer"}


def test_the_verifier_refuses_moves_off_the_sheet_and_arcs(default_plate: Planned) -> None:
    off = default_plate.program.gcode.replace(b"G0 X0 Y0", b"G0 X-3 Y0")
    assert _check(default_plate, off) == {"on_sheet_and_bed"}
    arc = default_plate.program.gcode.replace(b"G0 X0 Y0", b"G2 X0 Y0 I1 J1")
    assert "readable" in _check(default_plate, arc)


def test_the_mesh_outline_alone_is_within_the_stl_tolerance(default_plate: Planned) -> None:
    from_step = part_outline(step=default_plate.geometry.step, stl=default_plate.geometry.stl)
    from_mesh = part_outline(step=None, stl=default_plate.geometry.stl)
    assert from_step.source == "step" and from_mesh.source == "mesh"
    # The STL's chords lie within its 0.05 mm tolerance of the true arcs.
    assert from_step.shape.hausdorff_distance(from_mesh.shape) <= 0.05 + 1e-6


def test_rs274_refuses_a_laser_program_without_its_feed(default_plate: Planned) -> None:
    unfed = re.sub(rb" F\d+", b"", default_plate.program.gcode)
    (error,) = rs274_errors(unfed, tools=default_plate.program.tools)
    assert "zero feed rate" in error


def test_an_uploaded_mesh_without_step_is_cut_from_its_own_outline(default_plate: Planned) -> None:
    stl = default_plate.geometry.stl
    program = plan_cutting(step=None, stl=stl, material="acrylic", thickness_mm=3, machine=CO2)
    report = verify_cutting(
        program.gcode, step=None, stl=stl, material="acrylic", thickness_mm=3, machine=CO2
    )
    assert report.contours == 7
    # Against the exact STEP outline the mesh's cut is within the STL's tolerance too.
    exact = check_cutting(
        program.gcode,
        step=default_plate.geometry.step,
        stl=stl,
        material="acrylic",
        thickness_mm=3,
        machine=CO2,
    )
    assert exact.min_clearance_mm >= exact.kerf_mm / 2 - 0.05


def test_a_bad_laser_profile_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown laser source"):
        LaserProfile(machine_model="x", bed_mm=(100, 100), source="diode")
    with pytest.raises(ValueError, match="lead_in_mm"):
        LaserProfile(machine_model="x", bed_mm=(100, 100), lead_in_mm=6, sheet_margin_mm=5)


# A flat L (a corner plate lying flat): the cover plate has no inside corner, this one does.
# The inside fillet is concave seen from the waste: its cut runs at inner_r - kerf/2 from the
# fillet's centre (the outline's offset shrinks a concave arc).
FLAT_L = """
import cadquery as cq

leg_a = 80.0
leg_b = 60.0
w = 25.0
thickness = 3.0
inner_r = 4.0
hole_d = 5.5

plate = (
    cq.Workplane("XY")
    .polyline([(0, 0), (leg_a, 0), (leg_a, w), (w, w), (w, leg_b), (0, leg_b)])
    .close()
    .extrude(thickness)
)
plate = plate.edges("|Z").edges(cq.selectors.NearestToPointSelector((w, w, 0))).fillet(inner_r)
for x, y in ((w + 30, w / 2), (w / 2, w + 20)):
    plate = plate.cut(
        cq.Workplane("XY").circle(hole_d / 2).extrude(thickness + 2).translate((x, y, -1))
    )
show_object(plate)  # noqa: F821
"""


def test_a_flat_l_plate_is_cut_with_its_inside_corner_half_a_kerf_off(tmp_path: Any) -> None:
    built = build_geometry(FLAT_L, {}, limits=BuildLimits(require_bwrap=False))
    program = plan_cutting(step=built.step, stl=built.stl, material="acrylic", thickness_mm=3,
                           machine=CO2)  # fmt: skip
    half = cut_setting(source="co2", material="acrylic", thickness_mm=3).kerf_mm / 2
    margin, w, r = CO2.sheet_margin_mm, 25.0, 4.0
    *holes, outline = read_laser_gcode(program.gcode).cuts
    centre = (margin + w + r, margin + w + r)
    corner = [
        p for p in outline.ring
        if margin + w - 1 < p[0] < centre[0] and margin + w - 1 < p[1] < centre[1]
    ]  # fmt: skip
    assert len(corner) > 10
    for point in corner:
        assert math.dist(point, centre) == pytest.approx(r - half, abs=MEASURE_MM)
    assert len(holes) == 2
    for x, y in ((w + 30, w / 2), (w / 2, w + 20)):
        hole_centre = (margin + x, margin + y)
        (ring,) = [c.ring for c in holes if Polygon(c.ring).contains(shapely.Point(hole_centre))]
        radii = [math.dist(p, hole_centre) for p in ring]
        assert min(radii) == pytest.approx(5.5 / 2 - half, abs=MEASURE_MM)
        assert max(radii) == pytest.approx(5.5 / 2 - half, abs=MEASURE_MM)
    report = verify_cutting(program.gcode, step=built.step, stl=built.stl, material="acrylic",
                            thickness_mm=3, machine=CO2)  # fmt: skip
    assert report.contours == 3
    assert rs274_errors(program.gcode, tools=program.tools) == ()


def test_a_sheet_cut_in_two_passes_goes_round_each_ring_twice(tmp_path: Any) -> None:
    plate = trimesh.creation.box(extents=(40, 30, 10))  # 10 mm acrylic: 2 passes in the table
    stl = plate.export(file_type="stl")
    program = plan_cutting(step=None, stl=stl, material="acrylic", thickness_mm=10, machine=CO2)
    (cut,) = read_laser_gcode(program.gcode).cuts
    assert len(cut.points) == len(cut.lead_in) + 2 * (len(cut.ring) - 1)
    assert Polygon(cut.ring).area == pytest.approx((40 + 0.3) * (30 + 0.3), rel=1e-3)
    report = verify_cutting(
        program.gcode, step=None, stl=stl, material="acrylic", thickness_mm=10, machine=CO2
    )
    assert report.cut_length_mm == pytest.approx(2 * 2 * (40 + 30) + 2, rel=0.01)
    assert rs274_errors(program.gcode, tools=program.tools) == ()
