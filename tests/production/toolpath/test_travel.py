"""Travel: combing inside the part, retraction only where a travel crosses a perimeter, and
the order of islands and infill lines, measured against PrusaSlicer's G-code for the same
seed parts (no database)."""

import os
import shutil
import tempfile
from pathlib import Path

import cadquery as cq
import numpy as np
import pytest
import shapely
import trimesh
from cadquery import cqgi
from shapely.geometry import LineString, MultiPolygon, Polygon

from catalog.parts import DEMO_PARTS
from production.toolpath import plan_toolpath
from production.toolpath.combing import Comb, length_of
from production.toolpath.paths import _two_opt
from production.toolpath.prusaslicer import plan_toolpath as prusaslicer_toolpath
from production.toolpath.verify import verify_gcode
from tests.production.toolpath.gcode_reader import (
    TravelStats,
    make_profile,
    stl_of,
    travel_stats,
    two_boxes_stl,
)

pytestmark = pytest.mark.cad

needs_prusaslicer = pytest.mark.skipif(
    shutil.which("prusa-slicer") is None and not os.environ.get("CI"),
    reason="prusa-slicer is not installed (Debian package prusa-slicer)",
)

# Seed parts with holes, islands in holes and thin arms, quick to slice with both engines.
SEED_PARTS = ("spacer", "knob", "pipe_clamp", "cable_clip")
PROFILE = make_profile(layer_height_mm=0.2, first_layer_height_mm=0.2)
# Measured (docs/toolpaths.md): 0.90-1.78 x PrusaSlicer's travel count on these parts. The
# rest are the moves between perimeter loops, which PrusaSlicer makes too, and sparse infill
# in rings PrusaSlicer anchors along longer stretches of the perimeters than ours (2 lines).
TRAVEL_COUNT_RATIO = 2.0
# Our travel is 0.50-0.94 x PrusaSlicer's length; its own varies by a few % run to run.
TRAVEL_LENGTH_RATIO = 1.05


def seed_stl(slug: str) -> bytes:
    part = next(p for p in DEMO_PARTS if p.slug == slug)
    defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
    result = cqgi.parse(part.script).build(build_parameters=defaults)
    assert result.success, result.exception
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.stl"
        solid = result.results[0].shape.val()
        cq.exporters.export(
            cq.Workplane().add(solid), str(path), tolerance=0.01, angularTolerance=0.05
        )
        return path.read_bytes()


@pytest.fixture(scope="module")
def sliced() -> dict[str, tuple[bytes, bytes, bytes]]:
    """Per seed part: the STL, our G-code and PrusaSlicer's (when it is installed)."""
    found = {}
    for slug in SEED_PARTS:
        stl = seed_stl(slug)
        ours = plan_toolpath(stl, PROFILE).gcode
        theirs = (
            prusaslicer_toolpath(stl, PROFILE, binary="prusa-slicer", timeout_s=300).gcode
            if shutil.which("prusa-slicer")
            else b""
        )
        found[slug] = (stl, ours, theirs)
    return found


@needs_prusaslicer
@pytest.mark.parametrize("slug", SEED_PARTS)
def test_travel_is_no_worse_than_prusaslicers(slug: str, sliced) -> None:
    stl, ours, theirs = sliced[slug]
    mine, reference = travel_stats(ours), travel_stats(theirs)
    assert mine.travels <= TRAVEL_COUNT_RATIO * reference.travels, (mine, reference)
    assert mine.travel_mm <= TRAVEL_LENGTH_RATIO * reference.travel_mm, (mine, reference)
    assert mine.unretracted_crossings <= reference.unretracted_crossings, (mine, reference)
    assert not verify_gcode(ours, stl=stl, profile=PROFILE).failures


def test_without_combing_more_unretracted_travel_crosses_the_perimeters(sliced) -> None:
    stl, ours, _ = sliced["knob"]
    plain = travel_stats(plan_toolpath(stl, make_profile(**_settings(combing=False))).gcode)
    combed = travel_stats(ours)
    assert combed.unretracted_crossings * 3 < plain.unretracted_crossings


def _settings(**overrides: object) -> dict[str, object]:
    return {"layer_height_mm": 0.2, "first_layer_height_mm": 0.2, **overrides}


def test_the_same_part_gives_the_same_bytes(sliced) -> None:
    stl, ours, _ = sliced["cable_clip"]
    assert plan_toolpath(stl, PROFILE).gcode == ours


# --- the router -------------------------------------------------------------------------------

# A U, 30 wide and 30 deep: two 8 mm arms with a 14 mm gap between them, a 10 mm base.
U = Polygon([(0, 0), (30, 0), (30, 30), (22, 30), (22, 10), (8, 10), (8, 30), (0, 30)])


def u_comb(**settings: float) -> Comb:
    return Comb(
        MultiPolygon([U]),
        inset_mm=settings.get("inset_mm", 0.86),
        reach_mm=settings.get("reach_mm", 1.5),
        loop_mm=0.41,
    )


def test_a_travel_between_the_arms_goes_round_through_the_base_not_across_the_gap() -> None:
    comb = u_comb()
    a, b = np.array([4.0, 28.0]), np.array([26.0, 28.0])
    assert comb.crosses(a, b)
    route = comb.route(a, b)
    assert route is not None
    assert tuple(route[0]) == (4.0, 28.0) and tuple(route[-1]) == (26.0, 28.0)
    inside = U.buffer(-0.86 + 0.05)
    assert inside.covers(LineString(route))
    assert route[:, 1].min() < 10  # down into the base
    straight = 22.0
    # Pulled taut round the gap's two inner corners: about 2 x 18.9 + 14 + 2 x 0.86
    assert straight < length_of(route) < 60
    assert len(route) <= 6


def test_a_travel_along_one_arm_goes_straight() -> None:
    comb = u_comb()
    a, b = np.array([4.0, 28.0]), np.array([4.0, 2.0])
    assert not comb.crosses(a, b)
    route = comb.route(a, b)
    assert route is not None and len(route) == 2


def test_an_end_on_the_outer_perimeter_joins_the_comb_area_by_a_short_leg() -> None:
    comb = u_comb()
    a, b = np.array([0.23, 28.0]), np.array([29.77, 28.0])  # on the outer loops of both arms
    route = comb.route(a, b)
    assert route is not None
    assert np.hypot(*(route[1] - route[0])) == pytest.approx(0.86 - 0.23, abs=0.05)
    assert comb.end_crosses(a, b)  # its join crosses the inner loop: the writer retracts


def test_no_route_between_islands_or_from_outside() -> None:
    right = shapely.affinity.translate(U, 40, 0)
    comb = Comb(MultiPolygon([U, right]), inset_mm=0.86, reach_mm=1.5, loop_mm=0.41)
    assert comb.route(np.array([4.0, 28.0]), np.array([44.0, 28.0])) is None
    assert comb.route(np.array([-5.0, 5.0]), np.array([4.0, 28.0])) is None


def test_a_part_too_thin_for_a_comb_area_routes_nothing() -> None:
    thin = Polygon([(0, 0), (1.2, 0), (1.2, 30), (0, 30)])
    comb = Comb(MultiPolygon([thin]), inset_mm=0.86, reach_mm=1.5, loop_mm=0.41)
    assert comb.route(np.array([0.6, 1.0]), np.array([0.6, 29.0])) is None
    assert not comb.crosses(np.array([0.6, 1.0]), np.array([0.6, 29.0]))


# The U with a 4 mm square hole in its left arm's foot, twice (40 mm apart); comb area 0.86 mm
# inside, travel ends join it from up to 1.5 mm, the inner loop's centre line 0.41 mm out.
HOLED_U = U.difference(Polygon([(2, 2), (6, 2), (6, 6), (2, 6)]))
# (from, to, crosses a perimeter, an end's join crosses a loop)
TRAVELS = [
    ((12.0, 5.0), (18.0, 5.0), False, False),  # inside the base
    ((4.0, 28.0), (4.0, 12.0), False, False),  # along an arm
    ((4.0, 28.0), (26.0, 28.0), True, False),  # across the gap between the arms
    ((4.0, 8.5), (4.0, 1.0), True, False),  # across the hole
    ((25.0, 5.0), (50.0, 5.0), True, False),  # to the other island
    ((12.0, 5.0), (12.0, 0.68), False, False),  # to the inner perimeter: a short join
    ((12.0, 5.0), (12.0, 0.23), False, True),  # to the outer perimeter: its join crosses
    ((12.0, 0.23), (20.0, 0.23), True, True),  # 8 mm along the outer perimeter
    ((-2.0, 5.0), (12.0, 5.0), True, True),  # from off the part
]


@pytest.mark.parametrize(("a", "b", "crossing", "joining"), TRAVELS)
def test_which_travels_cross_the_perimeters(a, b, crossing, joining) -> None:
    region = MultiPolygon([HOLED_U, shapely.affinity.translate(HOLED_U, 40, 0)])
    comb = Comb(region, inset_mm=0.86, reach_mm=1.5, loop_mm=0.41)
    a, b = np.array(a), np.array(b)
    assert (comb.crosses(a, b), comb.end_crosses(a, b)) == (crossing, joining)


def test_a_layers_travels_decided_at_once_get_the_same_answers() -> None:
    region = MultiPolygon([HOLED_U, shapely.affinity.translate(HOLED_U, 40, 0)])
    comb = Comb(region, inset_mm=0.86, reach_mm=1.5, loop_mm=0.41)
    comb.decide_travels(np.array([a for a, *_ in TRAVELS]), np.array([b for _, b, *_ in TRAVELS]))
    found = [
        (comb.crosses(np.array(a), np.array(b)), comb.end_crosses(np.array(a), np.array(b)))
        for a, b, *_ in TRAVELS
    ]
    assert found == [(crossing, joining) for *_, crossing, joining in TRAVELS]


# --- in the G-code ----------------------------------------------------------------------------


def u_stl() -> bytes:
    solid = cq.Workplane("XY").polyline(list(U.exterior.coords)[:-1]).close().extrude(3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "u.stl"
        cq.exporters.export(solid, str(path))
        return path.read_bytes()


def unretracted_travel_over_the_gap(gcode: bytes, *, retracted_too: bool = False) -> int:
    """Unretracted travel moves (any, `retracted_too`) after the first layer that pass over
    the U's gap; the part is centred on the 250 x 210 bed, so the gap is x 118-132, y 100-120."""
    gap = shapely.box(118.2, 100.2, 131.8, 120)
    count, x, y, e, retracted, layer = 0, 0.0, 0.0, 0.0, False, -1
    for line in gcode.decode().splitlines():
        if line.startswith(";LAYER_CHANGE"):
            layer += 1
        words = {w[0]: float(w[1:]) for w in line.split(";")[0].split()[1:] if w[0] in "XYE"}
        if line.startswith("G92"):
            e = 0.0
            continue
        if not line.startswith(("G0", "G1")):
            continue
        nx, ny, ne = words.get("X", x), words.get("Y", y), words.get("E", e)
        if (nx, ny) == (x, y):
            retracted = ne < e if ne != e else retracted
        elif ne == e and layer >= 1 and (retracted_too or not retracted):
            count += int(LineString([(x, y), (nx, ny)]).intersects(gap))
        elif ne > e:
            retracted = False
        x, y, e = nx, ny, ne
    return count


def test_the_u_is_printed_without_unretracted_travel_over_its_gap() -> None:
    stl = u_stl()
    combed = plan_toolpath(stl, make_profile()).gcode
    assert unretracted_travel_over_the_gap(combed) == 0
    assert not verify_gcode(combed, stl=stl, profile=make_profile()).failures


def test_a_detour_limit_of_one_sends_the_travel_straight_and_retracted() -> None:
    comb = u_comb()
    a, b = np.array([4.0, 28.0]), np.array([26.0, 28.0])
    route = comb.route(a, b)
    assert route is not None and length_of(route) > 1.0 * 22
    with pytest.raises(ValueError, match="comb_max_detour"):
        make_profile(comb_max_detour=0.5)


def test_travel_between_separate_boxes_still_retracts() -> None:
    stats: TravelStats = travel_stats(plan_toolpath(two_boxes_stl(10, 10, 2), PROFILE).gcode)
    layers = 10
    assert stats.retractions >= 2 * layers  # the layer change, and the jump to the other box


# --- ordering ---------------------------------------------------------------------------------


def test_two_opt_never_lengthens_a_path_and_keeps_its_start() -> None:
    rng = np.random.default_rng(7)
    points = rng.random((40, 2)) * 100

    def length(order: list[int]) -> float:
        return float(np.hypot(*np.diff(points[order], axis=0).T).sum())

    tour = _two_opt(points)
    assert tour[0] == 0 and sorted(tour) == list(range(40))
    assert length(tour) < 0.5 * length(list(range(40)))
    assert _two_opt(points) == tour


def test_a_plate_of_boxes_is_visited_in_a_sweep() -> None:
    mesh_stl = _boxes_stl(columns=4, rows=3, pitch=20.0, size=8.0, height=1.0)
    stats = travel_stats(plan_toolpath(mesh_stl, PROFILE).gcode)
    # 12 boxes 20 mm apart: a sweep is ~11 x 20 mm of jumps a layer, plus the moves inside.
    layers = 5
    assert stats.travel_mm < layers * 12 * 20 * 1.6


def _boxes_stl(*, columns: int, rows: int, pitch: float, size: float, height: float) -> bytes:
    boxes = []
    for i in range(columns):
        for j in range(rows):
            box = trimesh.creation.box(extents=(size, size, height))
            box.apply_translation((pitch * i, pitch * j, 0))
            boxes.append(box)
    joined = trimesh.util.concatenate(boxes)
    assert isinstance(joined, trimesh.Trimesh)
    return stl_of(joined)


def test_without_combing_the_nozzle_crosses_the_gap_retracted() -> None:
    stl = u_stl()
    plain = plan_toolpath(stl, make_profile(combing=False)).gcode
    assert unretracted_travel_over_the_gap(plain, retracted_too=True) > 0
    combed = plan_toolpath(stl, make_profile()).gcode
    # Combing goes round through the base, except where that is more than comb_max_detour
    # times the jump (near the arms' open ends): there it jumps, retracted.
    assert unretracted_travel_over_the_gap(combed) == 0
    assert unretracted_travel_over_the_gap(combed, retracted_too=True) < (
        unretracted_travel_over_the_gap(plain, retracted_too=True)
    )
    assert travel_stats(combed).retractions < travel_stats(plain).retractions
