"""meshes.py and the plate G-code check: footprints, copies placed, one program verified per
copy. Small boxes and tubes, sliced by the builtin slicer; no database, no CAD kernel."""

from dataclasses import replace

import pytest
import shapely
import trimesh
from shapely.geometry import box

from microfactory.errors import Rejected
from production.plates.arrange import Bed, CopyToPlace, arrange, placed_footprint
from production.plates.meshes import (
    FOOTPRINT_TOLERANCE_MM,
    footprint,
    placed_meshes,
    plate_copies,
    plate_stl,
)
from production.plates.values import Placement, Plate
from production.toolpath import plan_toolpath
from production.toolpath.verify import check_plate_gcode, verify_plate_gcode
from tests.production.toolpath.gcode_reader import extrusions, make_profile

PROFILE = make_profile()
BED = Bed(PROFILE.bed_mm)


def l_bracket() -> trimesh.Trimesh:
    """An L-shaped block, 20 x 20 mm, 3 mm tall, its corner off the origin."""
    foot = trimesh.creation.box(extents=(20, 6, 3))
    leg = trimesh.creation.box(extents=(6, 14, 3))
    leg.apply_translation((-7, 10, 0))
    both = trimesh.util.concatenate([foot, leg])
    assert isinstance(both, trimesh.Trimesh)
    both.apply_translation((40, -30, 11.5))  # anywhere: placements use these coordinates
    return both


def tube() -> trimesh.Trimesh:
    return trimesh.creation.annulus(r_min=4, r_max=8, height=4)


def test_a_footprint_is_the_meshs_shadow_in_its_own_coordinates_grown_a_little() -> None:
    mesh = trimesh.creation.box(extents=(20, 10, 5))
    mesh.apply_translation((100, 50, 7))
    outline = footprint(mesh)
    assert outline.covers(box(90, 45, 110, 55))
    assert outline.bounds == pytest.approx((90, 45, 110, 55), abs=FOOTPRINT_TOLERANCE_MM + 1e-3)


def test_a_footprint_follows_the_outline_not_the_bounding_box_and_fills_holes() -> None:
    assert footprint(l_bracket()).area == pytest.approx(20 * 6 + 6 * 14, rel=0.03)
    ring = footprint(tube())
    assert isinstance(ring, shapely.Polygon) and not ring.interiors


def test_placed_meshes_stand_where_their_footprints_were_placed() -> None:
    mesh = l_bracket()
    plate = Plate((Placement(1, 1, 30.0, 60.0, 0.0), Placement(1, 2, 120.0, 90.0, 90.0)))
    outline = footprint(mesh)
    for placement, placed in zip(plate.placements, placed_meshes(plate, {1: mesh}), strict=True):
        expected = placed_footprint(outline, placement)
        assert expected.covers(shapely.MultiPoint(placed.vertices[:, :2]))
        assert float(placed.bounds[0][2]) == pytest.approx(0.0)


def arranged(parts: dict[int, trimesh.Trimesh], counts: dict[int, int]) -> Plate:
    copies = [
        CopyToPlace(job, n, footprint(parts[job]))
        for job, count in counts.items()
        for n in range(1, count + 1)
    ]
    (plate,) = arrange(copies, BED).plates
    return plate


def test_a_plate_of_two_parts_slices_into_one_program_verified_copy_by_copy() -> None:
    parts = {1: l_bracket(), 2: tube()}
    plate = arranged(parts, {1: 3, 2: 2})
    toolpath = plan_toolpath(plate_stl(plate, parts), PROFILE, arranged=True)
    report = verify_plate_gcode(toolpath.gcode, copies=plate_copies(plate, parts), profile=PROFILE)
    assert [row.label for row in report.copies] == [
        f"job {p.job} copy {p.copy}" for p in plate.placements
    ]
    assert all(row.status == "pass" for row in report.copies)
    assert {row.height_mm for row in report.copies} == {3.0, 4.0}
    assert report.to_json()["copies"][0]["status"] == "pass"


def test_a_copy_the_gcode_prints_elsewhere_fails_the_footprint_and_copies_checks() -> None:
    parts = {1: l_bracket()}
    plate = arranged(parts, {1: 3})
    toolpath = plan_toolpath(plate_stl(plate, parts), PROFILE, arranged=True)
    copies = list(plate_copies(plate, parts))
    moved = shapely.affinity.translate(copies[1].footprint, 0, 25)
    copies[1] = replace(copies[1], footprint=moved)
    report = check_plate_gcode(toolpath.gcode, copies=copies, profile=PROFILE)
    failed = {check.name: check.message for check in report.failures}
    assert set(failed) == {"footprint", "copies"}
    assert "outside every copy's footprint" in failed["footprint"]
    assert "job 1 copy 2 is printed to 0.00 mm" in failed["copies"]
    with pytest.raises(Rejected, match="does not match its plate"):
        verify_plate_gcode(toolpath.gcode, copies=copies, profile=PROFILE)


def test_a_copy_missing_from_the_gcode_fails_the_copies_check() -> None:
    parts = {1: l_bracket()}
    plate = arranged(parts, {1: 3})
    two = Plate(plate.placements[:2])
    toolpath = plan_toolpath(plate_stl(two, parts), PROFILE, arranged=True)
    report = check_plate_gcode(toolpath.gcode, copies=plate_copies(plate, parts), profile=PROFILE)
    assert {check.name for check in report.failures} == {"copies"}
    assert [row.status for row in report.copies] == ["pass", "pass", "fail"]


def test_the_skirt_goes_around_the_whole_plate() -> None:
    parts = {1: tube()}
    plate = arranged(parts, {1: 4})
    toolpath = plan_toolpath(plate_stl(plate, parts), PROFILE, arranged=True)
    skirt = [e for e in extrusions(toolpath.gcode) if e.layer == 0 and e.kind == "Skirt/Brim"]
    copies = shapely.union_all([c.footprint for c in plate_copies(plate, parts)])
    ring = shapely.MultiPoint([(e.x1, e.y1) for e in skirt]).convex_hull
    assert ring.covers(copies)


def test_an_arranged_stl_off_the_bed_is_rejected_not_moved() -> None:
    mesh = trimesh.creation.box(extents=(10, 10, 2))
    mesh.apply_translation((-2, 50, 1))
    stl = mesh.export(file_type="stl")
    assert isinstance(stl, bytes)
    with pytest.raises(Rejected, match="off the 250 x 210 mm bed"):
        plan_toolpath(stl, PROFILE, arranged=True)
