"""FDM printability: orientation, walls, small features, overhangs, first layer, tipping."""

import numpy as np
import pytest
import trimesh

from production.pipeline.validation import MachineLimits, ValidationReport, dfm_report

pytestmark = pytest.mark.cad  # DFM checks on meshes; no database

MK4 = MachineLimits("mk4", "fdm", (250.0, 210.0, 220.0), 0.4, "Prusa MK4")


def report_for(mesh: trimesh.Trimesh, *machines: MachineLimits) -> ValidationReport:
    return dfm_report(mesh.export(file_type="stl"), machines=machines or (MK4,))


def check(report: ValidationReport, name: str):
    return next(c for c in report.checks if c.name == name)


def candidate(report: ValidationReport, label: str):
    return next(c for c in report.orientation_candidates if c.label == label)


def revolved(profile: list[tuple[float, float]]) -> trimesh.Trimesh:
    """A solid of revolution about Z from (radius, z) points."""
    return trimesh.creation.revolve(profile, sections=64)


def prism(rectangles: list[tuple[float, float, float, float]], depth: float) -> trimesh.Trimesh:
    """Extrude a profile drawn in the XZ plane as rectangles (x0, z0, x1, z1) along Y.

    Rectangles must meet corner to corner (no corner in the middle of another's edge)."""
    faces, corners = [], []
    for x0, z0, x1, z1 in rectangles:
        base = len(corners)
        corners += [(x0, z0), (x1, z0), (x1, z1), (x0, z1)]
        faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    outline = trimesh.Trimesh(
        [(x, 0.0, z) for x, z in corners], faces, process=True
    ).outline()  # the profile's rim
    vertices = [(x, 0.0, z) for x, z in corners] + [(x, depth, z) for x, z in corners]
    count = len(corners)
    walls = []
    for entity in outline.entities:
        points = outline.vertices[entity.points]
        for a, b in zip(points[:-1], points[1:], strict=True):
            ia = corners.index((a[0], a[2]))
            ib = corners.index((b[0], b[2]))
            walls += [(ia, ib, ib + count), (ia, ib + count, ia + count)]
    far_cap = [(a + count, c + count, b + count) for a, b, c in faces]  # facing the other way
    mesh = trimesh.Trimesh(vertices, faces + far_cap + walls, process=True)
    trimesh.repair.fix_normals(mesh)
    assert mesh.is_watertight and mesh.volume > 0
    return mesh


# --- fixture shapes -------------------------------------------------------------------------

MUSHROOM = [(0, 0), (3, 0), (3, 20), (15, 20), (15, 24), (0, 24)]  # cap on a stem
BOBBIN = [(0, 0), (15, 0), (15, 3), (3, 3), (3, 20), (15, 20), (15, 23), (0, 23)]
PIN = [(0, 0), (1.5, 0), (1.5, 40), (0, 40)]  # 3 mm across, 40 mm tall
# ⊤ standing on its stem: the bar's arms hang free (cantilevers).
T_SHAPE = [(0, 10, 4, 12), (4, 10, 6, 12), (6, 10, 10, 12), (4, 0, 6, 10)]
# ∩: a 6 mm wide, 6 mm high passage under a 4 mm roof: the roof bridges it.
ARCH = [(0, 0, 3, 6), (9, 0, 12, 6), (0, 6, 3, 10), (3, 6, 9, 10), (9, 6, 12, 10)]


def test_a_tube_thinner_than_the_nozzle_fails_and_a_finer_nozzle_warns():
    tube = trimesh.creation.annulus(r_min=4.7, r_max=5, height=20)  # 0.3 mm wall
    fine = MachineLimits("fine", "fdm", (200, 200, 200), 0.25, "fine")
    report = report_for(tube, MK4, fine)
    mk4, fine_checks = ({c.name: c for c in m.checks} for m in report.machines)
    assert (mk4["min_wall"].status, mk4["min_wall"].value) == ("fail", "0.3 mm")
    assert (fine_checks["min_wall"].status, fine_checks["min_wall"].limit) == (
        "warn", "≥ 0.5 mm (fails below 0.25 mm)"
    )  # fmt: skip
    assert report.capable == ("fine",)


def test_walls_thicker_than_the_rays_reach_are_reported_as_at_least_that():
    report = report_for(trimesh.creation.box((20, 20, 20)))
    assert check(report, "min_wall").value == "≥ 3.2 mm"


def test_a_flange_thinner_than_the_nozzle_is_a_small_feature_that_will_not_print():
    flange = revolved([(0, 0), (10, 0), (10, 5), (14, 5), (14, 5.3), (10, 5.3), (10, 10), (0, 10)])
    report = report_for(flange)
    assert check(report, "min_wall").value == "0.3 mm"
    small = check(report, "small_features")
    assert small.status == "warn"
    assert "details thinner than the 0.4 mm nozzle, which will not print" in small.message


def test_a_gap_narrower_than_the_nozzle_will_close_up():
    a = trimesh.creation.box((10, 10, 10))
    b = trimesh.creation.box((10, 10, 10))
    b.apply_translation((10.2, 0, 0))
    small = check(report_for(trimesh.util.concatenate([a, b])), "small_features")
    assert small.status == "warn"
    assert "faces gaps narrower than 0.4 mm, which will close up" in small.message


def test_a_mushroom_is_printed_cap_down_with_no_support():
    report = report_for(revolved(MUSHROOM))
    assert candidate(report, "as modelled (−Z down)").support_area_mm2 == pytest.approx(
        np.pi * (15**2 - 3**2), rel=0.02
    )
    assert report.orientation.label == "upside down (+Z down)"
    assert check(report, "overhang").status == "pass"
    assert check(report, "orientation").message.startswith("print upside down (+Z down): 0 mm²")


def test_a_bobbin_needs_support_whichever_way_up():
    report = report_for(revolved(BOBBIN))
    overhang = check(report, "overhang")
    assert overhang.status == "warn"
    assert overhang.value == "678 mm²"
    assert overhang.message.startswith(
        "678 mm² of overhang steeper than 45° needs support as modelled"
    )


def test_cantilevered_arms_need_support_but_a_bridged_passage_does_not():
    tee = report_for(prism(T_SHAPE, depth=10))
    arch = report_for(prism(ARCH, depth=10))
    assert candidate(tee, "as modelled (−Z down)").support_area_mm2 == pytest.approx(2 * 4 * 10)
    assert candidate(arch, "as modelled (−Z down)").support_area_mm2 == 0
    assert tee.orientation.label == "upside down (+Z down)"  # ⊥: the bar on the bed


def test_a_45_degree_chamfer_needs_no_support_but_a_shallower_one_does():
    funnel_45 = revolved([(0, 0), (5, 0), (15, 10), (0, 10)])
    funnel_30 = revolved([(0, 0), (5, 0), (22.3, 10), (0, 10)])  # 60° from vertical
    as_modelled = "as modelled (−Z down)"
    assert candidate(report_for(funnel_45), as_modelled).support_area_mm2 == 0
    assert candidate(report_for(funnel_30), as_modelled).support_area_mm2 > 800


def test_a_tall_thin_pin_warns_of_tipping_and_a_small_first_layer():
    report = report_for(revolved(PIN))
    assert report.orientation.label == "as modelled (−Z down)"  # lying, it would roll
    tipping = check(report, "tipping")
    assert (tipping.status, tipping.value) == ("warn", "13.4 : 1")
    assert "40.0 mm high on a 3.0 mm base" in tipping.message
    first = check(report, "first_layer")
    assert (first.status, first.value) == ("warn", "7 mm²")
    assert first.message == "only 7 mm² touches the bed: print with a brim so it stays put"


def test_a_square_pin_is_laid_down():
    report = report_for(trimesh.creation.box((3, 3, 40)))
    assert report.orientation.label == "on its side (−X down)"
    assert report.orientation.height_mm == 3
    assert check(report, "tipping").status == "pass"
    assert report.extents_mm == (3, 3, 40)  # routing still sees the part as modelled


def test_a_sphere_has_nothing_to_stand_on():
    report = report_for(trimesh.creation.icosphere(subdivisions=3, radius=10))
    assert check(report, "orientation").status == "warn"
    assert check(report, "first_layer").message.startswith("no flat face rests on the bed")
    assert check(report, "tipping").value == "no base"


def test_a_large_flat_face_is_a_candidate_orientation():
    wedge = trimesh.convex.convex_hull(
        [(x, y, z) for x, z in [(0, 0), (40, 0), (0, 40)] for y in (0, 10)]
    )
    labels = [c.label for c in report_for(wedge).orientation_candidates]
    assert "flat face down (normal 0.71, 0.00, 0.71)" in labels
