"""arrange.py: copies placed on as few plates as fit, apart, on the bed, none lost. Pure."""

import itertools
import math
import random

import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from production.plates.arrange import (
    Bed,
    CopyToPlace,
    arrange,
    bed_for,
    lower_bound_plates,
    placed_footprint,
)
from production.plates.values import Arrangement, Placement, TooManyPlates
from production.toolpath.gcode import purge_line
from tests.production.toolpath.gcode_reader import make_profile

BED = Bed((250.0, 210.0), margin_mm=5.0)
SQUARE = box(0, 0, 20, 20)
L_SHAPE = Polygon([(0, 0), (40, 0), (40, 10), (10, 10), (10, 40), (0, 40)])
TRIANGLE = Polygon([(0, 0), (50, 0), (0, 30)])
DISC = Point(0, 0).buffer(12)  # centred on the origin, as a turned part usually is
RING = Point(0, 0).buffer(30).difference(Point(0, 0).buffer(20))


def copies_of(footprint: Polygon, count: int, job: int = 1) -> list[CopyToPlace]:
    return [CopyToPlace(job=job, copy=n, footprint=footprint) for n in range(1, count + 1)]


def mix() -> list[CopyToPlace]:
    return [
        *copies_of(SQUARE, 12, job=1),
        *copies_of(L_SHAPE, 9, job=2),
        *copies_of(TRIANGLE, 7, job=3),
        *copies_of(DISC, 15, job=4),
        *copies_of(RING, 3, job=5),
    ]


def placed_shapes(copies: list[CopyToPlace], arrangement: Arrangement) -> list[list[Polygon]]:
    footprint = {(c.job, c.copy): c.footprint for c in copies}
    return [
        [placed_footprint(footprint[(p.job, p.copy)], p) for p in plate.placements]
        for plate in arrangement.plates
    ]


def test_copies_keep_the_spacing_from_each_other_on_every_plate() -> None:
    copies = mix()
    arrangement = arrange(copies, BED, spacing_mm=4.0)
    for shapes in placed_shapes(copies, arrangement):
        for a, b in itertools.combinations(shapes, 2):
            assert a.distance(b) >= 4.0 - 1e-6


def test_copies_lie_inside_the_bed_less_its_margin_and_clear_of_keep_out_zones() -> None:
    clip = box(0, 90, 30, 120)  # a bed clip on the left edge
    purge = box(0, 0, 70, 6)
    bed = Bed((250.0, 210.0), margin_mm=5.0, keep_outs=(clip, purge))
    copies = mix()
    arrangement = arrange(copies, bed, spacing_mm=3.0)
    inside = box(5, 5, 245, 205)
    for shapes in placed_shapes(copies, arrangement):
        for shape in shapes:
            assert inside.buffer(1e-6).contains(shape)
            assert shape.distance(clip) >= 5.0 - 1e-6
            assert shape.distance(purge) >= 5.0 - 1e-6


def test_every_requested_copy_is_placed_or_reported_unplaced_exactly_once() -> None:
    too_big = box(0, 0, 300, 20)
    copies = [*mix(), *copies_of(too_big, 2, job=9)]
    arrangement = arrange(copies, BED)
    placed = [(p.job, p.copy) for plate in arrangement.plates for p in plate.placements]
    unplaced = [(u.job, u.copy) for u in arrangement.unplaced]
    assert sorted(placed + unplaced) == sorted((c.job, c.copy) for c in copies)
    assert unplaced == [(9, 1), (9, 2)]
    assert arrangement.copies_placed == len(copies) - 2


def test_the_same_copies_give_the_same_plan() -> None:
    first = arrange(mix(), BED)
    assert arrange(mix(), BED) == first
    assert len(first.plates) >= 1


def test_quantity_five_of_a_small_part_fits_one_plate() -> None:
    arrangement = arrange(copies_of(DISC, 5), BED)
    assert [len(plate.placements) for plate in arrangement.plates] == [5]
    assert [p.copy for p in arrangement.plates[0].placements] == [1, 2, 3, 4, 5]


def test_more_copies_than_one_plate_holds_spread_over_several_plates() -> None:
    # 50 x 40 mm with 6 mm between: 4 x 4 on the 240 x 200 mm inside the margin.
    arrangement = arrange(copies_of(box(0, 0, 50, 40), 40), BED, rotations_deg=[0])
    assert [len(plate.placements) for plate in arrangement.plates] == [16, 16, 8]
    assert not arrangement.unplaced


def test_a_part_that_fits_the_bed_only_alone_gets_a_plate_to_itself() -> None:
    big = box(0, 0, 200, 180)  # leaves 40 mm beside it, less the spacing
    wide = box(0, 0, 60, 60)
    copies = [*copies_of(wide, 2, job=1), *copies_of(big, 2, job=2)]
    arrangement = arrange(copies, BED, rotations_deg=[0])
    jobs = [sorted({p.job for p in plate.placements}) for plate in arrangement.plates]
    assert jobs == [[2], [2], [1]]


def test_a_copy_too_big_for_the_bed_is_unplaced_with_the_reason() -> None:
    arrangement = arrange(copies_of(box(0, 0, 260, 100), 1), BED)
    assert arrangement.plates == ()
    (unplaced,) = arrangement.unplaced
    assert "260.0 x 100.0 mm" in unplaced.reason
    assert "240 x 200 mm inside the bed's 5 mm margin" in unplaced.reason


def test_a_copy_that_fits_only_turned_is_turned() -> None:
    long = box(0, 0, 30, 220)  # taller than the bed's 200 mm inside, not wider than 240
    arrangement = arrange(copies_of(long, 2), BED)
    rotations = {p.rotation_deg for plate in arrangement.plates for p in plate.placements}
    assert rotations <= {90.0, 270.0}
    assert arrangement.copies_placed == 2


def test_keep_out_zones_that_leave_no_room_are_the_reason() -> None:
    walls = Bed((250.0, 210.0), margin_mm=5.0, keep_outs=(box(100, 0, 150, 210),))
    arrangement = arrange(copies_of(box(0, 0, 120, 50), 1), walls, rotations_deg=[0])
    (unplaced,) = arrangement.unplaced
    assert "keep-out zones" in unplaced.reason


def test_more_plates_than_allowed_are_refused_with_the_number() -> None:
    copies = copies_of(box(0, 0, 100, 100), 9)  # two per plate: 5 plates
    with pytest.raises(TooManyPlates, match="9 copies need 5 plates; one plan may hold at most 4"):
        arrange(copies, BED, rotations_deg=[0], max_plates=4)
    assert len(arrange(copies, BED, rotations_deg=[0], max_plates=5).plates) == 5


def test_footprints_pack_closer_than_their_bounding_boxes() -> None:
    # Right triangles pair up into rectangles, turned 180 degrees: their boxes could not.
    count = 40  # their boxes, 50 x 30 mm: 24 per plate
    arrangement = arrange(copies_of(TRIANGLE, count), BED, spacing_mm=2.0)
    boxes = arrange(copies_of(shapely.box(*TRIANGLE.bounds), count), BED, spacing_mm=2.0)
    assert len(arrangement.plates) == 1
    assert len(boxes.plates) == 2


def test_small_copies_fill_the_room_large_ones_leave() -> None:
    copies = [*copies_of(box(0, 0, 150, 150), 1, job=1), *copies_of(SQUARE, 10, job=2)]
    arrangement = arrange(copies, BED)
    assert len(arrangement.plates) == 1


def test_holes_are_filled_so_no_copy_sits_inside_another() -> None:
    copies = [*copies_of(RING, 1, job=1), *copies_of(Point(0, 0).buffer(5), 30, job=2)]
    arrangement = arrange(copies, BED)
    (ring, *others) = placed_shapes(copies, arrangement)[0]
    hole = Polygon(ring.interiors[0])
    assert all(not hole.intersects(other) for other in others)


def test_a_placement_turns_about_the_origin_then_moves() -> None:
    placed = placed_footprint(box(0, 0, 10, 2), Placement(1, 1, 100.0, 50.0, 90.0))
    assert placed.bounds == pytest.approx((98.0, 50.0, 100.0, 60.0))


def test_the_plan_survives_json() -> None:
    arrangement = arrange([*mix(), *copies_of(box(0, 0, 300, 5), 1, job=9)], BED)
    assert Arrangement.from_json(arrangement.to_json()) == arrangement


def test_the_lower_bound_is_the_area_over_the_usable_bed() -> None:
    assert lower_bound_plates(48_000.0, BED) == 1
    assert lower_bound_plates(48_001.0, BED) == 2
    clipped = Bed((250.0, 210.0), margin_mm=5.0, keep_outs=(box(0, 0, 20, 20),))
    # The corner zone grown by the margin covers 20 x 20 mm of the inside, less the rounded
    # corner the growing leaves.
    corner = 20 * 20 - (5 * 5 - math.pi * 5**2 / 4)
    assert clipped.usable_area_mm2 == pytest.approx(240 * 200 - corner, abs=0.5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"spacing_mm": -1.0}, "spacing cannot be negative"),
        ({"cell_mm": 0.0}, "raster cell must be positive"),
        ({"rotations_deg": []}, "at least one rotation"),
    ],
)
def test_nonsense_settings_are_our_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        arrange(copies_of(SQUARE, 1), BED, **options)  # type: ignore[arg-type]


def test_the_same_copy_asked_for_twice_is_our_error() -> None:
    with pytest.raises(ValueError, match="each \\(job, copy\\) may be asked for once"):
        arrange([*copies_of(SQUARE, 2), *copies_of(DISC, 1)], BED)


def test_a_bed_whose_margin_leaves_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no bed"):
        Bed((100.0, 100.0), margin_mm=50.0)


def test_a_printers_bed_keeps_copies_off_the_purge_line_even_without_a_margin() -> None:
    profile = make_profile()
    bed = bed_for(profile, margin_mm=0.0)
    purge = shapely.LineString(purge_line(profile))
    copies = copies_of(SQUARE, 40)
    for shapes in placed_shapes(copies, arrange(copies, bed, spacing_mm=2.0)):
        assert all(shape.distance(purge) >= profile.line_width_mm - 1e-6 for shape in shapes)
    assert bed.size_mm == profile.bed_mm


def test_the_spacing_holds_for_any_turn_cell_and_outline() -> None:
    # Star-ish outlines at odd angles on a coarse, odd raster: the raster errs only on the
    # safe side, whatever lands where.
    rng = random.Random(5)
    outlines = []
    for _ in range(6):
        points = []
        for step in range(9):
            angle = 2 * math.pi * step / 9
            radius = rng.uniform(4, 18)
            points.append((radius * math.cos(angle) + 3, radius * math.sin(angle) - 2))
        outlines.append(Polygon(points))
    copies = [
        CopyToPlace(job=job, copy=n, footprint=outline)
        for job, outline in enumerate(outlines, start=1)
        for n in range(1, 9)
    ]
    arrangement = arrange(copies, BED, spacing_mm=2.7, rotations_deg=[0, 37, 90, 200], cell_mm=0.7)
    inside = box(5, 5, 245, 205).buffer(1e-6)
    for shapes in placed_shapes(copies, arrangement):
        assert all(inside.contains(shape) for shape in shapes)
        for a, b in itertools.combinations(shapes, 2):
            assert a.distance(b) >= 2.7 - 1e-6
    assert arrangement.copies_placed == len(copies)
