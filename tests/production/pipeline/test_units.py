"""Meshes drawn in inches, metres or centimetres: recognised, offered a scale, and checked in
millimetres once the scale is accepted (pure: no database)."""

import tempfile
from pathlib import Path

import cadquery as cq
import pytest
import trimesh

from production.pipeline.dfm.units import guess_unit
from production.pipeline.validation import MachineLimits, ValidationReport, dfm_report

pytestmark = pytest.mark.cad

MK4 = MachineLimits("mk4", "fdm", (250.0, 210.0, 220.0), 0.4, "Prusa MK4")
MILL = MachineLimits("mill", "cnc_mill", (300.0, 200.0, 100.0), 0.0, "a mill")


def extruded(outline: list[tuple[float, float]], depth: float, scale: float) -> bytes:
    """The outline extruded by depth, drawn at 1/scale (as a file in another unit would be)."""
    solid = cq.Workplane("XY").polyline(outline).close().extrude(depth).val().scale(1 / scale)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.stl"
        cq.exporters.export(solid, str(path), tolerance=0.0001, angularTolerance=0.1)
        return path.read_bytes()


def bracket(scale: float) -> bytes:
    """An L: a 40 x 20 x 4 mm base with a 3 mm wall standing 10 mm high, drawn at 1/scale."""
    return extruded([(0, 0), (40, 0), (40, 10), (37, 10), (37, 4), (0, 4)], 20, scale)


def test_an_inch_mesh_is_recognised_and_its_scaled_size_offered():
    report = dfm_report(bracket(25.4), machines=[MK4])
    assert report.unit_guess is not None
    assert report.unit_guess.unit == "inch"
    assert report.unit_guess.scale == 25.4
    assert report.unit_guess.extents_mm == pytest.approx((40, 10, 20), abs=0.02)
    units = next(c for c in report.checks if c.name == "units")
    assert "looks drawn in inches: 40.0 x 10.0 x 20.0 mm" in units.message
    assert "x25.4" in units.message


def test_a_metre_mesh_is_smaller_than_anything_makeable_and_fails_with_the_scale():
    report = dfm_report(bracket(1000), machines=[MK4])
    assert report.status == "fail"
    assert report.unit_guess is not None and report.unit_guess.unit == "m"
    assert report.unit_guess.extents_mm == pytest.approx((40, 10, 20), abs=0.02)
    assert report.first_failure is not None and report.first_failure.name == "units"
    assert "metres: 40.0 x 10.0 x 20.0 mm" in report.first_failure.message


def test_accepting_the_scale_checks_the_part_in_millimetres_and_it_passes():
    report = dfm_report(bracket(25.4), machines=[MK4], scale=25.4)
    assert report.unit_guess is None
    assert report.scale == 25.4
    assert report.extents_mm == pytest.approx((40, 10, 20), abs=0.02)
    assert report.volume_mm3 == pytest.approx((40 * 4 + 3 * 6) * 20, rel=1e-3)
    assert report.status == "pass", [c.message for c in report.checks if c.status != "pass"]


def test_the_same_part_in_millimetres_raises_no_question():
    report = dfm_report(bracket(1), machines=[MK4])
    assert report.unit_guess is None
    assert all(c.name != "units" for c in report.checks)


def test_a_large_part_with_a_thin_fin_is_thin_not_in_inches():
    # 200 mm long with a 0.2 mm fin: in inches it would be 5 m long and fit no machine.
    outline = [(0, 0), (200, 0), (200, 5), (100.1, 5), (100.1, 15), (99.9, 15), (99.9, 5), (0, 5)]
    report = dfm_report(extruded(outline, 40, 1), machines=[MK4])
    assert report.unit_guess is None
    assert report.status == "fail"  # the fin is too thin, whatever the unit


def test_the_hole_fill_limit_applies_in_millimetres_after_scaling():
    # A box missing one triangle of its top: a hole with a 105 mm rim, far over the 10 mm fill
    # limit. Drawn in inches the rim is 4.1 file units: read as is it would be filled; scaled,
    # the mesh is refused as open.
    box = trimesh.creation.box((40, 20, 10))
    box.update_faces(
        [i for i, c in enumerate(box.triangles_center) if not (c[2] > 4.9 and c[0] > 0)]
    )
    box.apply_scale(1 / 25.4)
    mesh = box.export(file_type="stl")
    as_is = {c.name: c for c in dfm_report(mesh, machines=[MK4]).checks}
    scaled = dfm_report(mesh, machines=[MK4], scale=25.4)
    assert as_is["watertight"].status == "warn"
    assert scaled.first_failure is not None and scaled.first_failure.name == "watertight"
    assert "104.7 mm" in scaled.first_failure.message


def test_the_guess_survives_the_stored_report():
    report = dfm_report(bracket(25.4), machines=[MK4])
    again = ValidationReport.from_json(report.to_json())
    assert again == report


def test_cnc_only_candidates_are_asked_about_size_alone():
    report = dfm_report(bracket(1000), machines=[MILL])
    assert report.unit_guess is not None and report.unit_guess.unit == "m"


@pytest.mark.parametrize(
    ("extents", "unit"),
    [
        ((1.5, 0.75, 0.25), "inch"),  # 38.1 x 19.05 x 6.35 mm fits; 1.5 m does not
        ((0.12, 0.045, 0.0125), "m"),  # round mm in metres; inches: 3 mm
        ((1.125, 0.625, 0.3125), "inch"),  # whole 1/32 in; 1.1 m fits no machine
        ((1.0, 0.5, 0.25), "inch"),  # a tie in roundness goes to inches
    ],
)
def test_the_unit_with_round_sizes_wins(extents, unit):
    guess = guess_unit(extents, walls_too_thin=True, build_volumes_mm=[(250, 210, 220)])
    assert guess is not None and guess.unit == unit


def test_a_scale_out_of_range_is_a_programming_error():
    with pytest.raises(ValueError, match="scale"):
        dfm_report(bracket(1), machines=[MK4], scale=0)
