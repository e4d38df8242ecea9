"""Mesh integrity: safe repairs are applied and reported as warnings; the rest fails."""

import numpy as np
import pytest
import trimesh

from production.pipeline.dfm.intersections import apart_pairs
from production.pipeline.dfm.rays import RayCaster
from production.pipeline.validation import (
    MachineLimits,
    ValidationLimits,
    ValidationReport,
    dfm_report,
)

pytestmark = pytest.mark.cad  # mesh repair; no database

MACHINES = [MachineLimits("mk4")]


def report_for(mesh: trimesh.Trimesh) -> ValidationReport:
    return dfm_report(mesh.export(file_type="stl"), machines=MACHINES)


def check(report: ValidationReport, name: str):
    return next(c for c in report.checks if c.name == name)


def sphere(radius: float = 10.0, subdivisions: int = 3) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)


def without_face(mesh: trimesh.Trimesh, face: int = 0) -> trimesh.Trimesh:
    mesh.update_faces(np.arange(len(mesh.faces)) != face)
    return mesh


def test_a_clean_box_passes_every_integrity_check():
    report = report_for(trimesh.creation.box((10, 10, 10)))
    names = [
        "merged_vertices", "degenerate_faces", "duplicate_faces", "non_manifold_edges",
        "winding", "watertight", "normals", "volume", "self_intersections", "bodies",
    ]  # fmt: skip
    assert [check(report, name).status for name in names] == ["pass"] * len(names)


def test_a_tiny_volume_is_shown_as_it_is_not_as_zero():
    volume = check(report_for(trimesh.creation.box((0.2, 0.2, 0.2))), "volume")
    assert (volume.value, volume.message) == ("0.008 mm³", "volume 0.008 mm³")
    assert check(report_for(trimesh.creation.box((10, 10, 10))), "volume").value == "1000.0 mm³"


def test_a_small_hole_is_filled_and_reported():
    report = report_for(without_face(sphere()))
    watertight = check(report, "watertight")
    assert watertight.status == "warn"
    assert watertight.message == "filled 1 small hole(s) in the mesh, up to 4.4 mm round"
    assert report.volume_mm3 == pytest.approx(sphere().volume, rel=0.01)


def test_a_small_hole_with_many_edges_is_filled_with_a_fan():
    mesh = sphere(subdivisions=4)
    ring = np.flatnonzero(np.isin(mesh.faces, mesh.faces[0]).any(axis=1))  # faces around face 0
    mesh.update_faces(~np.isin(np.arange(len(mesh.faces)), ring))
    report = report_for(mesh)
    assert (
        check(report, "watertight").message
        == "filled 1 small hole(s) in the mesh, up to 6.3 mm round"
    )
    assert report.status != "fail"


def test_a_big_hole_is_not_guessed_at():
    report = report_for(without_face(sphere(30, subdivisions=1)))
    watertight = check(report, "watertight")
    assert (watertight.status, watertight.value) == ("fail", "1 hole(s), the largest 51.3 mm round")
    assert report.first_failure is watertight
    assert report.orientation is None  # nothing past a broken mesh is measured


def test_an_inside_out_box_is_turned_the_right_way_out():
    box = trimesh.creation.box((10, 10, 10))
    box.invert()
    report = report_for(box)
    assert check(report, "normals").message == "turned 1 inside-out shell(s) the right way out"
    assert report.volume_mm3 == pytest.approx(1000)


def test_a_cavity_keeps_its_inward_normals_and_is_not_a_second_body():
    outer = trimesh.creation.box((20, 20, 20))
    cavity = trimesh.creation.box((10, 10, 10))
    cavity.invert()
    report = report_for(trimesh.util.concatenate([outer, cavity]))
    assert check(report, "normals").status == "pass"
    assert check(report, "bodies").message == "one solid body, 1 closed internal cavity"
    assert report.volume_mm3 == pytest.approx(8000 - 1000)


def test_faces_wound_against_their_neighbours_are_turned():
    box = trimesh.creation.box((10, 10, 10))
    faces = box.faces.copy()
    faces[[0, 5]] = faces[[0, 5]][:, ::-1]
    report = report_for(trimesh.Trimesh(box.vertices, faces, process=False))
    assert check(report, "winding").message == "turned 2 faces round to agree with their neighbours"
    assert report.volume_mm3 == pytest.approx(1000)


def test_duplicate_and_degenerate_faces_are_removed():
    box = trimesh.creation.box((10, 10, 10))
    degenerate = [[0, 0, 1]]  # two corners on one vertex: no area
    faces = np.vstack([box.faces, box.faces[:2], degenerate])
    report = report_for(trimesh.Trimesh(box.vertices, faces, process=False))
    assert check(report, "duplicate_faces").message == "removed 2 faces that repeated another face"
    assert check(report, "degenerate_faces").message == "removed 1 faces with no area"
    assert report.status == "warn"


def test_vertices_a_hair_apart_are_merged():
    box = trimesh.creation.box((10, 10, 10))
    triangles = box.triangles.copy()
    triangles[0, 0] += 3e-5  # a crack far below anything printable
    mesh = trimesh.Trimesh(triangles.reshape(-1, 3), np.arange(36).reshape(-1, 3), process=False)
    report = report_for(mesh)
    assert (
        check(report, "merged_vertices").message
        == "merged 1 vertices that were less than 0.0001 mm apart"
    )
    assert check(report, "watertight").status == "pass"


def test_an_edge_shared_by_three_faces_fails():
    box = trimesh.creation.box((10, 10, 10))
    fin = np.vstack([box.vertices, [[20, 20, 20]]])
    edge = box.faces[0][:2]
    mesh = trimesh.Trimesh(fin, np.vstack([box.faces, [[edge[0], edge[1], 8]]]), process=False)
    report = report_for(mesh)
    assert check(report, "non_manifold_edges").status == "fail"
    assert report.first_failure.message.startswith("1 edge(s) are shared by more than two faces")


def test_overlapping_bodies_warn_that_they_will_be_merged():
    a = trimesh.creation.box((10, 10, 10))
    b = trimesh.creation.box((10, 10, 10))
    b.apply_translation((5, 5, 5))
    report = report_for(trimesh.util.concatenate([a, b]))
    crossing = check(report, "self_intersections")
    assert crossing.status == "warn"
    assert crossing.message == "2 bodies overlap: they will be merged into one when sliced"


def test_a_surface_folded_through_itself_fails():
    box = trimesh.creation.box((10, 10, 10))
    vertices = box.vertices.copy()
    top = vertices[:, 2] > 0
    vertices[top & (vertices[:, 0] > 0), 2] = -10  # pull one top edge down through the bottom
    report = report_for(trimesh.Trimesh(vertices, box.faces, process=False))
    assert check(report, "self_intersections").status == "fail"
    assert "folds through itself" in report.first_failure.message


def test_self_intersections_are_skipped_above_the_limit_with_a_warning():
    limits = ValidationLimits(self_intersection_max_triangles=100)
    report = dfm_report(sphere().export(file_type="stl"), machines=MACHINES, limits=limits)
    assert check(report, "self_intersections").message == (
        "self-intersections were not checked: the mesh has more than 100 triangles"
    )


def test_each_shell_turns_its_fewer_faces():
    mostly_right = trimesh.creation.box((10, 10, 10))
    faces = mostly_right.faces.copy()
    faces[[0, 5]] = faces[[0, 5]][:, ::-1]
    mostly_wrong = trimesh.creation.box((10, 10, 10))
    mostly_wrong.apply_translation((30, 0, 0))
    turned = mostly_wrong.faces.copy()
    turned[2:] = turned[2:][:, ::-1]  # ten of twelve faces wound the other way
    mesh = trimesh.util.concatenate(
        [
            trimesh.Trimesh(mostly_right.vertices, faces, process=False),
            trimesh.Trimesh(mostly_wrong.vertices, turned, process=False),
        ]
    )
    report = report_for(mesh)
    assert check(report, "winding").message == "turned 4 faces round to agree with their neighbours"
    assert check(report, "normals").message == "turned 1 inside-out shell(s) the right way out"
    assert report.volume_mm3 == pytest.approx(2000)


def test_the_grid_finds_the_same_face_pairs_as_comparing_every_pair():
    # Tiny faces (a fine sphere) inside long slivers (a coarse cylinder): both halves of
    # the search, the grid and the R-tree for faces too big for it.
    mesh = trimesh.util.concatenate(
        [sphere(4, 3), trimesh.creation.cylinder(radius=3, height=30, sections=24)]
    )
    faces = np.asarray(mesh.faces)
    triangles = np.asarray(mesh.triangles)
    a, b = apart_pairs(faces, RayCaster(triangles))
    found = set(zip(a.tolist(), b.tolist(), strict=True))
    lows, highs = triangles.min(axis=1), triangles.max(axis=1)
    overlap = ((lows[:, None] <= highs[None]) & (lows[None] <= highs[:, None])).all(axis=2)
    shared = (faces[:, None, :, None] == faces[None, :, None, :]).any(axis=(2, 3))
    a, b = np.nonzero(np.triu(overlap & ~shared, k=1))
    assert found == set(zip(a.tolist(), b.tolist(), strict=True))
    assert len(found) > 0
