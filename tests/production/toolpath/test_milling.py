"""The 2.5D milling planner on hand-made solids and the seed parts at their range corners:
offsets measured in the program's own coordinates, depths, tabs, refusals, and LinuxCNC's
rs274 interpreter accepting every program."""

import math
from typing import Any

import cadquery as cq
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from catalog.parts import DEMO_PARTS
from microfactory.errors import Rejected
from production.toolpath.cnc_tools import (
    DEFAULT_TOOL_TABLE,
    MillProfile,
    NoCuttingData,
    ToolTable,
)
from production.toolpath.milling import (
    ENGINE,
    MillSettings,
    plan_milling,
    plate_thickness_for,
)
from production.toolpath.prismatic import describe_part
from production.toolpath.program import MachineProgram
from production.toolpath.rs274 import rs274_errors
from tests.catalog.corners import corners
from tests.production.toolpath.cnc_parts import block_with_features, seed_solid, step_and_stl
from tests.production.toolpath.mill_gcode import Cut, arc_radius, cuts, lowest_z

pytestmark = pytest.mark.cad

MILL = MillProfile(machine_model="Test mill", travel_mm=(300, 300, 80))
PLATES = [2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0]  # a 6061 plate list, as the material has
SETTINGS = MillSettings()
BREAK = SETTINGS.breakthrough_mm


def plan(step: bytes | None, stl: bytes, thickness: float, **kwargs: Any) -> MachineProgram:
    arguments: dict[str, Any] = {
        "material": "aluminium-6061",
        "tools": DEFAULT_TOOL_TABLE,
        "machine": MILL,
        "dialect": "grbl",
    }
    arguments.update(kwargs)
    return plan_milling(step=step, stl=stl, stock_thickness_mm=thickness, **arguments)


@pytest.fixture(scope="module")
def block() -> tuple[bytes, bytes]:
    return step_and_stl(block_with_features())


@pytest.fixture(scope="module")
def block_programs(block: tuple[bytes, bytes]) -> dict[str, MachineProgram]:
    step, stl = block
    return {dialect: plan(step, stl, 12.0, dialect=dialect) for dialect in ("grbl", "linuxcnc")}


def of(found: list[Cut], operation: str) -> list[Cut]:
    return [c for c in found if c.operation == operation]


# Work coordinates of the block: the part's (-30, -20) corner at the 10 mm margin.
DX, DY = 40.0, 30.0


def test_the_block_program_is_accepted_by_rs274_in_both_dialects(
    block_programs: dict[str, MachineProgram],
) -> None:
    for dialect, program in block_programs.items():
        assert program.dialect == dialect and program.engine == ENGINE
        assert rs274_errors(program.gcode, tools=program.tools) == (), dialect
        text = program.gcode.decode()
        assert "G17 G21 G40 G49 G80 G90 G94" in text and text.rstrip().endswith("M5\nM30")
        assert "G41" not in text and "G42" not in text
    grbl, linuxcnc = (
        block_programs["grbl"].gcode.decode(),
        block_programs["linuxcnc"].gcode.decode(),
    )
    assert "M6" not in grbl and "G81" not in grbl and "G83" not in grbl and "M0" in grbl
    assert "T2 M6" in linuxcnc and "G43 H2" in linuxcnc and "G98 G81" in linuxcnc


def test_stock_tools_and_setup_are_described(block_programs: dict[str, MachineProgram]) -> None:
    program = block_programs["grbl"]
    assert (program.stock.x_mm, program.stock.y_mm, program.stock.thickness_mm) == (80, 60, 12)
    assert program.stock.material == "aluminium-6061"
    assert [(u.number, u.operations) for u in program.tools] == [
        (1, ("facing", "pocket", "profile")),
        (2, ("pocket",)),
        (14, ("drill",)),
    ]
    six = program.tools[0]
    assert six.spindle_rpm == round(150_000 / (math.pi * 6))
    assert six.feed_mm_min == pytest.approx(six.spindle_rpm * 2 * 0.048, abs=0.1)
    assert any("G54" in step for step in program.setup_steps)
    assert program.estimated_time_s > 0 and program.cut_length_mm > 0
    # Both dialects cut the same moves: the same estimate.
    assert block_programs["linuxcnc"].estimated_time_s == program.estimated_time_s


def test_the_pocket_walls_are_one_tool_radius_from_the_tool_centre(
    block_programs: dict[str, MachineProgram],
) -> None:
    found = cuts(block_programs["grbl"].gcode)
    pocket = Polygon(box(DX - 22, DY - 7.5, DX - 2, DY + 7.5))  # 20 x 15 at part (-12, 0)
    six = [c for c in of(found, "pocket") if c.tool == 1 and c.kind == "feed"]
    points = [Point(c.end[:2]) for c in six if c.end[2] < 12 - 10]  # below the pocket's top
    assert points
    distances = [pocket.exterior.distance(p) for p in points]
    assert all(pocket.contains(p) for p in points)
    assert min(distances) == pytest.approx(3.0, abs=0.01)  # the finishing pass: no gouge
    assert sum(d < 3.0 + 0.01 for d in distances) >= 4  # it follows the walls
    # The floor: 4 mm below the part's top (faced to Z-2), in step-downs of at most 3 mm.
    assert lowest_z(six) == pytest.approx(-6.0, abs=1e-4)
    depths = sorted({round(c.end[2], 4) for c in six if c.start[:2] == c.end[:2]})
    assert depths[0] == -6.0
    assert all(b - a <= 3.0 + 1e-9 for a, b in zip(depths, depths[1:], strict=False))


def test_the_slot_is_cut_by_the_3mm_end_mill_a_radius_from_its_walls(
    block_programs: dict[str, MachineProgram],
) -> None:
    found = cuts(block_programs["grbl"].gcode)
    slot_cuts = [c for c in of(found, "pocket") if c.tool == 2 and c.kind == "feed"]
    # The 4 mm slot, 20 mm long overall, centred at part (15, -12): a 16 mm centre line.
    centre = LineString([(DX + 15 - 8, DY - 12), (DX + 15 + 8, DY - 12)])
    slot = centre.buffer(2.0, quad_segs=256)
    points = [Point(c.end[:2]) for c in slot_cuts if c.end[2] < -2]
    distances = [slot.exterior.distance(p) for p in points]
    assert all(slot.contains(p) for p in points)
    assert min(distances) == pytest.approx(1.5, abs=0.01)  # never closer: no gouge
    assert lowest_z(slot_cuts) == pytest.approx(-2 - 3, abs=1e-4)


def test_the_profile_runs_one_radius_outside_the_outline_with_tabs(
    block_programs: dict[str, MachineProgram],
) -> None:
    found = cuts(block_programs["grbl"].gcode)
    outline = box(DX - 30, DY - 20, DX + 30, DY + 20)
    profile = [c for c in of(found, "profile") if c.kind == "feed" and c.end[2] < -2]
    assert {c.tool for c in profile} == {1}
    distances = [outline.exterior.distance(Point(c.end[:2])) for c in profile]
    assert min(distances) == pytest.approx(3.0, abs=0.01)
    assert max(distances) == pytest.approx(3.0, abs=0.01)
    # Through the plate and breakthrough_mm into the spoilboard, no deeper.
    assert lowest_z(profile) == pytest.approx(-12 - BREAK, abs=1e-4)
    # Tabs: the last passes (below the tab's top) rise to it four times each.
    tab_top = -12 + SETTINGS.tab_height_mm
    on_tabs = [c for c in profile if c.start[2] == c.end[2] == pytest.approx(tab_top)]
    rises = [c for c in profile if c.start[2] < tab_top - 1e-6 and c.end[2] == tab_top]
    passes_below = len({c.end[2] for c in profile if c.end[2] < tab_top - 1e-6})
    assert passes_below >= 1 and len(rises) == 4 * passes_below
    tab_length = sum(math.dist(c.start[:2], c.end[:2]) for c in on_tabs) / len(rises)
    assert tab_length == pytest.approx(SETTINGS.tab_width_mm + 6, abs=0.05)


def test_the_through_hole_is_drilled_through_the_plate(
    block_programs: dict[str, MachineProgram],
) -> None:
    found = cuts(block_programs["linuxcnc"].gcode)
    drilled = of(found, "drill")
    drill = DEFAULT_TOOL_TABLE.drill_for(6, tolerance_mm=0.05)
    assert drill is not None and {c.tool for c in drilled} == {drill.number}
    plunges = [c for c in drilled if c.kind == "feed"]
    assert [c.end[:2] for c in plunges] == [(DX + 18, DY + 10)]
    # The full diameter exits the plate: the tip goes its own length deeper.
    assert lowest_z(plunges) == pytest.approx(-12 - BREAK - drill.tip_length_mm, abs=1e-3)


def test_no_move_goes_below_the_plate_by_more_than_breakthrough(
    block_programs: dict[str, MachineProgram],
) -> None:
    for program in block_programs.values():
        found = cuts(program.gcode)
        deepest_drill = max(t.tip_length_mm for t in DEFAULT_TOOL_TABLE.drills)
        assert lowest_z([c for c in found if c.operation != "drill"]) >= -12 - BREAK - 1e-6
        assert lowest_z(found) >= -12 - BREAK - deepest_drill - 1e-6
        assert max(max(c.start[2], c.end[2]) for c in found) <= SETTINGS.safe_z_mm + 1e-6


def test_zigzag_clearing_and_a_mesh_only_part_plan_too(block: tuple[bytes, bytes]) -> None:
    step, stl = block
    zigzag = plan(step, stl, 10.0, settings=MillSettings(clearing="zigzag", tab_count=0))
    from_mesh = plan(None, stl, 10.0, dialect="linuxcnc")
    for program in (zigzag, from_mesh):
        assert rs274_errors(program.gcode, tools=program.tools) == ()
    assert not [c for c in cuts(zigzag.gcode) if c.operation == "facing"]  # 10 mm: no facing
    found = cuts(from_mesh.gcode)
    pocket = Polygon(box(DX - 22, DY - 7.5, DX - 2, DY + 7.5))
    points = [Point(c.end[:2]) for c in of(found, "pocket") if c.tool == 1 and c.end[2] < -1]
    assert min(pocket.exterior.distance(p) for p in points) == pytest.approx(3.0, abs=0.01)


def test_a_hole_no_drill_matches_is_milled_in_a_helix(block: tuple[bytes, bytes]) -> None:
    step, stl = step_and_stl(block_with_features(hole_d=4.5))
    program = plan(step, stl, 10.0, dialect="linuxcnc")
    assert rs274_errors(program.gcode, tools=program.tools) == ()
    helix = [c for c in cuts(program.gcode) if c.operation == "helical" and c.kind == "arc"]
    assert helix and {c.tool for c in helix} == {2}  # the 3 mm end mill
    assert {round(arc_radius(c), 4) for c in helix} == {0.75}  # (4.5 - 3) / 2
    assert {c.centre for c in helix} == {(DX + 18, DY + 10)}
    assert lowest_z(helix) == pytest.approx(-10 - BREAK, abs=1e-4)
    steps = [c.start[2] - c.end[2] for c in helix]
    assert max(steps) <= 1.5 + 1e-6  # the 3 mm end mill's step-down per turn


def test_refusals_name_the_feature_and_the_tool_it_needs(block: tuple[bytes, bytes]) -> None:
    step, stl = block
    with pytest.raises(Rejected, match=r"the 8 mm plate is thinner than the part \(10.00 mm\)"):
        plan(step, stl, 8.0)
    with pytest.raises(NoCuttingData, match="no cutting data .* titanium"):
        plan(step, stl, 10.0, material="titanium")
    narrow_step, narrow_stl = step_and_stl(block_with_features(slot_width=1.2))
    big_mills = ToolTable(tools=tuple(t for t in DEFAULT_TOOL_TABLE.tools if t.diameter_mm >= 2))
    with pytest.raises(
        Rejected,
        match=r"the 1.20 mm slot at .* needs an end mill smaller than 1.20 mm; "
        r"the smallest is 2 mm",
    ):
        plan(narrow_step, narrow_stl, 10.0, tools=big_mills)
    tiny_step, tiny_stl = step_and_stl(block_with_features(hole_d=1.5))
    with pytest.raises(
        Rejected, match=r"the 1.5 mm hole at .* needs a 1.5 mm drill .* the smallest is 2 mm"
    ):
        plan(tiny_step, tiny_stl, 10.0, tools=big_mills)
    with pytest.raises(Rejected, match="does not fit the mill's 50 x 50 mm travel"):
        plan(step, stl, 10.0, machine=MillProfile(machine_model="tiny", travel_mm=(50, 50, 50)))


def test_the_plate_is_the_thinnest_of_the_material_that_holds_the_part() -> None:
    assert plate_thickness_for(height_mm=3.0, thicknesses_mm=PLATES) == 3.0
    assert plate_thickness_for(height_mm=3.2, thicknesses_mm=PLATES) == 4.0
    with pytest.raises(Rejected, match="no plate of the material is 14.00 mm thick or more"):
        plate_thickness_for(height_mm=14.0, thicknesses_mm=PLATES)


def _part(slug: str) -> Any:
    return next(p for p in DEMO_PARTS if p.slug == slug)


@pytest.mark.parametrize("corner", sorted(corners(_part("cover_plate"))))
def test_the_cover_plate_at_its_range_corners(corner: str) -> None:
    values = corners(_part("cover_plate"))[corner]
    step, stl = step_and_stl(seed_solid("cover_plate", **values), stl_tolerance_mm=0.2)
    plate = plate_thickness_for(height_mm=values["thickness"], thicknesses_mm=PLATES)
    holes = values["holes_x"] * 2 + (values["holes_y"] - 2) * 2
    for dialect in ("grbl", "linuxcnc"):
        program = plan(step, stl, plate, dialect=dialect)
        assert rs274_errors(program.gcode, tools=program.tools) == (), (corner, dialect)
        found = cuts(program.gcode)
        centres = {c.centre for c in of(found, "helical") if c.kind == "arc"}
        centres |= {c.end[:2] for c in of(found, "drill") if c.kind == "feed"}
        assert len(centres) == holes
        milled = [c for c in found if c.operation not in ("drill", "countersink")]
        assert lowest_z(milled) >= -plate - BREAK - 1e-6
        outline_tool = next(u for u in program.tools if "profile" in u.operations)
        profile = [c for c in of(found, "profile") if c.kind == "feed"]
        margin = SETTINGS.margin_mm
        x_max = margin + values["length"] + outline_tool.diameter_mm / 2
        assert max(c.end[0] for c in profile) == pytest.approx(x_max, abs=0.01)
        sinks = [c for c in of(found, "countersink") if c.kind == "feed"]
        if values["countersunk"]:
            # A 90-degree point is as wide as the countersink D / 2 below the part's top.
            top = values["thickness"] - plate
            assert {c.end[:2] for c in sinks} == centres
            assert all(c.end[2] == pytest.approx(top - values["hole_d"]) for c in sinks)
        else:
            assert not sinks


def test_a_countersink_wider_than_every_countersink_tool_is_refused() -> None:
    step, stl = step_and_stl(seed_solid("cover_plate", countersunk=True), stl_tolerance_mm=0.2)
    no_sinks = ToolTable(
        tools=tuple(t for t in DEFAULT_TOOL_TABLE.tools if t.kind != "countersink")
    )
    with pytest.raises(
        Rejected,
        match=r"the 90 deg countersink of 9 mm at .* needs a 90 deg countersink tool wider "
        r"than 9 mm; the tool table has none",
    ):
        plan(step, stl, 3.0, tools=no_sinks)


@pytest.mark.parametrize("corner", sorted(corners(_part("mounting_bracket"))))
def test_the_l_bracket_is_refused_naming_its_bend(corner: str) -> None:
    """The L-bracket is not 2.5D from any side: its bend's fillets (and the upright leg's
    holes) run along a horizontal axis. It needs a second set-up or a bent sheet."""
    values = corners(_part("mounting_bracket"))[corner]
    step, stl = step_and_stl(seed_solid("mounting_bracket", **values), stl_tolerance_mm=0.2)
    with pytest.raises(Rejected, match="rounded edge .* not 2.5D"):
        plan(step, stl, 12.0)


def test_islands_open_steps_and_cut_outs() -> None:
    """A pocket around a boss keeps the tool a radius off the boss; a step open to the side
    and a window through the part are cleared; rs274 accepts all three."""
    plate = cq.Workplane().box(80, 60, 12, centered=(True, True, False))
    island = plate.faces(">Z").workplane().rect(50, 40).cutBlind(-5)
    island = island.union(cq.Workplane().box(10, 10, 12, centered=(True, True, False)))
    step = plate.cut(
        cq.Workplane().box(20, 60, 6, centered=(True, True, False)).translate((30, 0, 6))
    )
    window = plate.faces(">Z").workplane().rect(30, 10).cutThruAll()
    kinds = {}
    for name, shape in (("island", island), ("step", step), ("window", window)):
        step_bytes, stl = step_and_stl(shape.val())
        kinds[name] = [p.kind for p in describe_part(step=step_bytes, stl=stl).pockets]
        program = plan(step_bytes, stl, 12.0, dialect="linuxcnc")
        assert rs274_errors(program.gcode, tools=program.tools) == (), name
        if name == "island":
            boss = box(50 - 5, 40 - 5, 50 + 5, 40 + 5)  # the 10 mm boss, at the plate middle
            pocket_cuts = [c for c in of(cuts(program.gcode), "pocket") if c.end[2] < 0]
            nearest = min(boss.distance(Point(c.end[:2])) for c in pocket_cuts)
            assert nearest == pytest.approx(3.0, abs=0.01)
    assert kinds == {"island": ["pocket"], "step": ["step"], "window": ["cut-out"]}
