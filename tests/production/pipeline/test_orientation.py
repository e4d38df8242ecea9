"""Choosing the print orientation on parts where the easy answer is wrong: a V-pulley whose
annular web is a bridge (it lies flat, not on its rim), a cube with an engraved letter on its
bottom (it stays as modelled), an L-bracket (on its long leg, no support), a rod longer than
the bed is tall (turned to lie down). The chosen orientation and the runner-up are in the
report (pure: no database)."""

import tempfile
from pathlib import Path

import cadquery as cq
import pytest

from production.pipeline.dfm.orientation import ranked
from production.pipeline.validation import MachineLimits, dfm_report

pytestmark = pytest.mark.cad

MK4 = MachineLimits("mk4", "fdm", (250.0, 210.0, 220.0), 0.4, "Prusa MK4")


def stl(shape: cq.Workplane) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.stl"
        cq.exporters.export(shape, str(path), tolerance=0.01, angularTolerance=0.2)
        return path.read_bytes()


def v_pulley() -> cq.Workplane:
    """A 70 mm V-pulley: a 20 mm hub, a 4 mm web 5 mm over the bed spanning the 12 mm between
    hub and rim, and a 14 mm rim with a V groove (45° flanks)."""
    hub = cq.Workplane("XY").circle(10).circle(4).extrude(20)
    web = cq.Workplane("XY").workplane(offset=5).circle(22).circle(9).extrude(4)
    rim = (
        cq.Workplane("XZ")
        .polyline([(21, 0), (35, 0), (35, 2), (30, 7), (35, 12), (35, 14), (21, 14)])
        .close()
        .revolve(360, (0, 0, 0), (0, 1, 0))
    )
    return hub.union(web).union(rim)


def engraved_cube() -> cq.Workplane:
    cube = cq.Workplane("XY").box(20, 20, 20).translate((0, 0, 10))
    letter = cq.Workplane("XY").text("X", 10, -0.5, combine=False, halign="center", valign="center")
    return cube.cut(letter.translate((0, 0, 0.5)))


def l_bracket() -> cq.Workplane:
    """Modelled standing on its short leg's end: the long leg overhangs sideways."""
    return (
        cq.Workplane("XZ")
        .polyline([(0, 0), (5, 0), (5, 55), (40, 55), (40, 60), (0, 60)])
        .close()
        .extrude(-20)
    )


def rod() -> cq.Workplane:
    """240 mm tall as modelled: only lying down does it fit the 220 mm high build volume."""
    return cq.Workplane("XY").rect(20, 12).extrude(240)


@pytest.fixture(scope="module")
def reports():
    return {
        name: dfm_report(stl(make()), machines=[MK4])
        for name, make in [
            ("pulley", v_pulley),
            ("cube", engraved_cube),
            ("bracket", l_bracket),
            ("rod", rod),
        ]
    }


def test_a_v_pulley_lies_flat_its_web_a_bridge_not_support(reports):
    report = reports["pulley"]
    chosen = report.orientation
    assert chosen.label == "as modelled (−Z down)"
    assert chosen.support_area_mm2 == 0 and chosen.height_mm == pytest.approx(20, abs=0.01)
    assert chosen.tipping_ratio < 1
    on_rim = [c for c in report.orientation_candidates if c.height_mm > 60]
    assert on_rim and all(c.cost > chosen.cost + 500 for c in on_rim)


def test_a_stable_flat_face_of_a_round_part_beats_its_rim_whatever_the_rim_costs(reports):
    report = reports["pulley"]
    rim = min((c for c in report.orientation_candidates if c.height_mm > 60), key=lambda c: c.cost)
    assert rim.tipping_ratio > 5  # 70 mm high on a few mm of rim


def test_a_cube_with_an_engraved_bottom_stays_as_modelled(reports):
    report = reports["cube"]
    assert report.orientation.label == "as modelled (−Z down)"
    best_other = min(c.cost for c in report.orientation_candidates[1:])
    assert best_other < report.orientation.cost  # cheaper by a few mm² of contact: not enough


def test_an_l_bracket_is_laid_on_a_leg_without_support(reports):
    chosen = reports["bracket"].orientation
    assert chosen.label != "as modelled (−Z down)"
    assert chosen.support_area_mm2 == 0 and chosen.stable


def test_a_part_taller_than_the_printer_is_laid_down_to_fit(reports):
    report = reports["rod"]
    assert report.orientation.fits and report.orientation.height_mm <= 220
    modelled = report.orientation_candidates[0]
    assert not modelled.fits
    # Routing and the slicer place the part as modelled: the report says how to turn it.
    volume = next(c for c in report.checks if c.name == "build_volume")
    assert "lying down" in volume.message or "rotate" in volume.message, volume.message


def test_the_report_names_the_chosen_orientation_and_the_runner_up_with_scores(reports):
    report = reports["pulley"]
    check = next(c for c in report.checks if c.name == "orientation")
    first, second = ranked(report.orientation_candidates)[:2]
    assert first == report.orientation
    assert f"print {first.label}" in check.message
    assert f"runner-up {second.label} (score {second.cost:.0f} against {first.cost:.0f}" in (
        check.message
    )
    assert all(c.support_volume_mm3 >= 0 for c in report.orientation_candidates)
