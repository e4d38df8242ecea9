"""The 2.5D description of a part (prismatic.py) and the tool table's feeds (cnc_tools.py)."""

import math

import cadquery as cq
import pytest

from microfactory.errors import Rejected
from production.toolpath.cnc_tools import (
    DEFAULT_TOOL_TABLE,
    NoCuttingData,
    Tool,
    ToolTable,
    feeds_for,
)
from production.toolpath.prismatic import describe_mesh, describe_part, describe_solid
from tests.production.toolpath.cnc_parts import block_with_features, seed_solid, step_and_stl

pytestmark = pytest.mark.cad


@pytest.fixture(scope="module")
def block() -> tuple[bytes, bytes]:
    return step_and_stl(block_with_features())


def test_the_solid_gives_levels_pockets_and_exact_holes(block: tuple[bytes, bytes]) -> None:
    step, stl = block
    part = describe_part(step=step, stl=stl)
    assert part.source == "step"
    assert part.levels == pytest.approx((10.0, 7.0, 6.0, 0.0))
    assert part.bounds == pytest.approx((-30, -20, 30, 20))
    pocket = next(p for p in part.pockets if p.kind == "pocket")
    slot = next(p for p in part.pockets if p.kind == "slot")
    assert (pocket.top_z_mm, pocket.floor_z_mm, pocket.through) == (10.0, 6.0, False)
    assert pocket.region.polygon.area == pytest.approx(20 * 15, abs=1e-6)
    assert pocket.width_mm == pytest.approx(15, abs=0.01)
    assert (slot.top_z_mm, slot.floor_z_mm) == (10.0, 7.0)
    assert slot.width_mm == pytest.approx(4, abs=0.01)
    [hole] = part.holes
    assert (hole.x_mm, hole.y_mm, hole.diameter_mm) == (18.0, 10.0, 6.0)
    assert hole.through and hole.depth_mm == 10.0


def test_a_mesh_gives_the_same_description_within_its_chordal_error(
    block: tuple[bytes, bytes],
) -> None:
    step, stl = block
    from_solid, from_mesh = describe_part(step=step, stl=stl), describe_mesh(stl)
    assert from_mesh.source == "mesh"
    assert from_mesh.levels == pytest.approx(from_solid.levels)
    assert len(from_mesh.pockets) == len(from_solid.pockets)
    [hole] = from_mesh.holes
    assert hole.diameter_mm == pytest.approx(6.0, abs=0.01)
    assert (hole.x_mm, hole.y_mm) == pytest.approx((18, 10), abs=0.01)


def test_the_cover_plate_is_an_outline_with_its_holes() -> None:
    part = describe_solid(seed_solid("cover_plate"))
    assert part.levels == (3.0, 0.0)
    assert part.pockets == ()
    assert len(part.holes) == 6
    assert {h.diameter_mm for h in part.holes} == {4.5}
    assert all(h.through for h in part.holes)
    # The 5 mm corner radii are in the outline, their chords within 0.002 mm of the arcs:
    # the four arcs (31.4 mm) lose at most 0.002 mm x their length.
    outline = part.outline.polygon
    assert outline.area == pytest.approx(100 * 60 - (4 - math.pi) * 25, abs=0.07)


def test_a_cone_on_a_hole_is_its_countersink() -> None:
    part = describe_solid(seed_solid("cover_plate", countersunk=True))
    assert part.pockets == ()
    assert {
        (h.diameter_mm, h.countersink_diameter_mm, h.countersink_angle_deg) for h in part.holes
    } == {(4.5, 9.0, 90.0)}
    assert all(h.top_z_mm == 3.0 and h.through for h in part.holes)


def test_faces_a_flat_end_mill_cannot_reach_from_above_are_named() -> None:
    with pytest.raises(Rejected, match="rounded edge .* not 2.5D"):
        describe_solid(seed_solid("mounting_bracket"))
    wedge = cq.Workplane().box(20, 20, 10).faces(">Z").edges(">X").chamfer(3).val()
    with pytest.raises(Rejected, match="sloped face"):
        describe_solid(wedge)
    undercut = (
        cq.Workplane()
        .box(20, 20, 10, centered=(True, True, False))
        .cut(cq.Workplane().box(8, 30, 3, centered=(True, True, False)).translate((0, 0, 3)))
        .val()
    )
    with pytest.raises(Rejected, match="undercut"):
        describe_solid(undercut)
    dimple = (
        cq.Workplane()
        .box(20, 20, 10, centered=(True, True, False))
        .cut(cq.Solid.makeCone(0, 4, 4, cq.Vector(0, 0, 6.01)))
        .val()
    )
    with pytest.raises(Rejected, match=r"a cone \(a chamfer\) .* needs a chamfer tool"):
        describe_solid(dimple)


def test_vertical_walls_of_any_shape_are_2_5d() -> None:
    """An elliptic outline (no plane, no cylinder) is a wall like any other."""
    ellipse = cq.Workplane().ellipse(20, 10).extrude(5).val()
    part = describe_solid(ellipse)
    assert part.levels == (5.0, 0.0) and part.holes == () and part.pockets == ()
    # Chords within 0.002 mm of the 97 mm perimeter: at most 0.2 mm² short.
    assert part.outline.polygon.area == pytest.approx(math.pi * 20 * 10, abs=0.2)


def test_feeds_follow_surface_speed_and_chip_load() -> None:
    six = DEFAULT_TOOL_TABLE.largest_end_mill_within(6)
    assert six is not None and six.diameter_mm == 6
    feeds = feeds_for(six, "aluminium-6061")
    rpm = 150 * 1000 / (math.pi * 6)
    assert feeds.spindle_rpm == round(rpm)
    assert feeds.feed_mm_min == pytest.approx(rpm * 2 * 0.048, abs=0.1)
    # A spindle slower than the surface speed asks keeps the chip load: the feed drops with it.
    slow = feeds_for(six, "aluminium-6061", max_rpm=5000)
    assert slow.spindle_rpm == 5000
    assert slow.feed_mm_min == pytest.approx(5000 * 2 * 0.048, abs=0.1)
    assert feeds_for(six, "aluminium-6061", max_feed_mm_min=500).feed_mm_min == 500


def test_unknown_material_or_tool_kind_has_no_default_feeds() -> None:
    drill = DEFAULT_TOOL_TABLE.drill_for(5.0, tolerance_mm=0.05)
    assert drill is not None
    with pytest.raises(NoCuttingData, match="no cutting data .* unobtainium"):
        feeds_for(drill, "unobtainium")
    with pytest.raises(Rejected, match="slowest is 8000 rpm"):
        feeds_for(drill, "acrylic", min_rpm=8000)


def test_tool_tables_round_trip_and_refuse_duplicate_numbers() -> None:
    assert ToolTable.from_json(DEFAULT_TOOL_TABLE.to_json()) == DEFAULT_TOOL_TABLE
    tool = DEFAULT_TOOL_TABLE.tools[0]
    with pytest.raises(ValueError, match="unique"):
        ToolTable(tools=(tool, tool))
    with pytest.raises(ValueError, match="kind"):
        Tool(
            number=1,
            name="x",
            kind="ball",
            diameter_mm=1,
            flutes=2,
            flute_length_mm=3,
            max_depth_per_pass_mm=1,
        )
