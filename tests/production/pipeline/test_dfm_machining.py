"""CNC milling and laser cutting: stock size, 2.5D and flat-plate shapes."""

import trimesh

from production.pipeline.validation import MachineLimits, ValidationReport, dfm_report

from .test_dfm_printability import ARCH, prism, revolved

MILL = MachineLimits("mill", "cnc_mill", (300.0, 200.0, 100.0), name="the mill")
LASER = MachineLimits("laser", "laser", (600.0, 400.0, 10.0), name="the laser")


def machine_checks(mesh: trimesh.Trimesh, machine: MachineLimits) -> dict:
    report: ValidationReport = dfm_report(mesh.export(file_type="stl"), machines=[machine])
    assert report.orientation is None  # print orientation is an FDM matter
    return {c.name: c for c in report.machines[0].checks}


def test_a_plate_is_laser_cut_from_sheet():
    checks = machine_checks(trimesh.creation.box((100, 60, 3)), LASER)
    assert checks["build_volume"].status == "pass"
    assert (checks["flat_plate"].status, checks["flat_plate"].value) == (
        "pass",
        "3.0 mm plate (Z normal)",
    )


def test_a_plate_thicker_than_the_laser_cuts_fails():
    checks = machine_checks(trimesh.creation.box((100, 60, 12)), LASER)
    assert (
        checks["flat_plate"].message
        == "the plate is 12.0 mm thick; the laser cuts sheet up to 10 mm"
    )


def test_a_shape_with_steps_is_not_a_plate():
    checks = machine_checks(prism(ARCH, depth=10), LASER)
    # The arch's outline is straight through along Y, so it *is* a plate that way.
    assert checks["flat_plate"].value == "10.0 mm plate (Y normal)"
    stepped = revolved([(0, 0), (10, 0), (10, 3), (5, 3), (5, 6), (0, 6)])
    assert machine_checks(stepped, LASER)["flat_plate"].value == "not a plate"


def test_a_passage_open_at_the_side_is_milled_from_that_side():
    checks = machine_checks(prism(ARCH, depth=10), MILL)
    assert checks["two_and_a_half_d"].status == "pass"
    assert checks["two_and_a_half_d"].value in ("2.5D from +Y", "2.5D from -Y")


def test_a_cone_needs_3d_finishing_and_a_sphere_cannot_be_milled_in_one_setup():
    cone = revolved([(0, 0), (5, 0), (15, 10), (0, 10)])
    sloped = machine_checks(cone, MILL)["two_and_a_half_d"]
    assert (sloped.status, sloped.value.endswith("mm² sloped")) == ("warn", True)
    assert "needs 3D finishing with a ball-end cutter" in sloped.message
    ball = machine_checks(trimesh.creation.icosphere(subdivisions=2, radius=10), MILL)
    assert ball["two_and_a_half_d"].status == "fail"


def test_stock_larger_than_the_mill_takes_fails():
    checks = machine_checks(trimesh.creation.box((350, 50, 20)), MILL)
    assert checks["build_volume"].message == (
        "the part (350.0 x 50.0 x 20.0 mm) is larger than the mill's build volume "
        "(300 x 200 x 100 mm)"
    )
