"""The self-intersection kernel and the grid it shares with the wall rays (issue #19 point 7):
the face pairs and crossings it finds are those of comparing every pair with every other."""

import numpy as np
import pytest
import trimesh

from production.pipeline.dfm import arrays, rays
from production.pipeline.dfm.intersections import _cross, apart_pairs, crossing_pairs
from production.pipeline.dfm.rays import RayCaster
from production.pipeline.validation import MachineLimits, dfm_report

pytestmark = pytest.mark.cad  # mesh geometry; no database


def brute_apart(faces: np.ndarray, triangles: np.ndarray) -> set[tuple[int, int]]:
    """Every pair whose boxes overlap (touching counts) and that shares no vertex."""
    lows, highs = triangles.min(axis=1), triangles.max(axis=1)
    overlap = ((lows[:, None] <= highs[None]) & (lows[None] <= highs[:, None])).all(axis=2)
    shared = (faces[:, None, :, None] == faces[None, :, None, :]).any(axis=(2, 3))
    a, b = np.nonzero(np.triu(overlap & ~shared, k=1))
    return set(zip(a.tolist(), b.tolist(), strict=True))


def found_apart(faces: np.ndarray, triangles: np.ndarray) -> set[tuple[int, int]]:
    a, b = apart_pairs(faces, RayCaster(triangles))
    found = list(zip(a.tolist(), b.tolist(), strict=True))
    assert len(found) == len(set(found)), "a pair was found twice"
    return set(found)


def arrays_of(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    faces = np.asarray(mesh.faces)
    return faces, np.asarray(mesh.vertices)[faces]


def jittered_torus(scale: float, seed: int) -> trimesh.Trimesh:
    torus = trimesh.creation.torus(20, 5, major_sections=40, minor_sections=20)
    torus.vertices += np.random.default_rng(seed).normal(scale=scale, size=torus.vertices.shape)
    return torus


def touching_cubes() -> trimesh.Trimesh:
    """A 3 x 3 x 2 stack of unit cubes meeting face to face: every box touches its neighbours
    exactly, on the grid's cell sides."""
    cubes = []
    for x in range(3):
        for y in range(3):
            for z in range(2):
                cube = trimesh.creation.box((1, 1, 1))
                cube.apply_translation((x, y, z))
                cubes.append(cube)
    return trimesh.util.concatenate(cubes)


def triangle_soup(seed: int) -> trimesh.Trimesh:
    """Loose triangles of very different sizes, none sharing a vertex: small ones for the
    grid, a few long ones too big for it (the R-tree's share)."""
    rng = np.random.default_rng(seed)
    count = 300
    centres = rng.uniform(0, 20, (count, 1, 3))
    sizes = np.where(rng.random((count, 1, 1)) < 0.05, 15.0, rng.uniform(0.2, 2.0, (count, 1, 1)))
    triangles = centres + rng.normal(size=(count, 3, 3)) * sizes
    return trimesh.Trimesh(triangles.reshape(-1, 3), np.arange(3 * count).reshape(-1, 3))


@pytest.mark.parametrize(
    "mesh",
    [
        pytest.param(jittered_torus(0.3, 1), id="jittered torus"),
        pytest.param(jittered_torus(1.0, 2), id="badly jittered torus"),
        pytest.param(touching_cubes(), id="cubes touching face to face"),
        pytest.param(triangle_soup(3), id="triangle soup with big faces"),
        pytest.param(
            trimesh.util.concatenate(
                [
                    trimesh.creation.icosphere(3, 5),
                    trimesh.creation.icosphere(3, 5).apply_translation((6, 1, 0)),
                ]
            ),
            id="overlapping spheres",
        ),
    ],
)
def test_the_grid_sweep_finds_exactly_the_overlapping_pairs_that_share_no_vertex(mesh):
    faces, triangles = arrays_of(mesh)
    expected = brute_apart(faces, triangles)
    assert found_apart(faces, triangles) == expected
    assert expected  # each case has pairs to find


def test_crossing_pairs_are_those_of_testing_every_pair():
    torus = jittered_torus(1.0, 4)
    faces, triangles = arrays_of(torus)
    a, b = (np.array(side) for side in zip(*sorted(brute_apart(faces, triangles)), strict=True))
    tolerance = 1e-6 * float(np.ptp(triangles.reshape(-1, 3), axis=0).max())
    crossing = _cross(triangles[a], triangles[b], tolerance)
    expected = np.column_stack([a[crossing], b[crossing]])
    found = crossing_pairs(faces, RayCaster(triangles))
    assert len(expected) > 10  # the jitter folds the surface through itself
    assert np.array_equal(found, expected)  # the same pairs, in the same (sorted) order


def test_a_surface_pushed_through_itself_is_still_found():
    folded = trimesh.creation.icosphere(4, 10)
    vertices = folded.vertices.copy()
    vertices[vertices[:, 2] > 7, 2] -= 16  # the top cap pushed down through the bottom
    folded.vertices = vertices
    report = dfm_report(folded.export(file_type="stl"), machines=[MachineLimits("mk4")])
    crossing = next(c for c in report.checks if c.name == "self_intersections")
    assert crossing.status == "fail"
    assert crossing.value.endswith("crossing face pair(s)")


@pytest.mark.parametrize(
    ("offset", "manifold"),
    [
        # Welded, bodies sharing a face or an edge have edges of four faces: the report fails
        # them as non-manifold before any self-intersection test, so only the pairs are asked.
        pytest.param((10, 0, 0), False, id="sharing a face"),
        pytest.param((10, 10, 0), False, id="sharing an edge"),
        pytest.param((10, 10, 10), True, id="sharing a corner"),
        pytest.param((3, 4, 10), True, id="resting on top, offset"),
    ],
)
def test_bodies_that_touch_without_crossing_are_not_flagged(offset, manifold):
    box = trimesh.creation.box((10, 10, 10))
    pair = trimesh.util.concatenate([box, box.copy().apply_translation(offset)])
    faces, triangles = arrays_of(pair)
    assert brute_apart(faces, triangles)  # their boxes touch: the narrow phase decides
    assert len(crossing_pairs(faces, RayCaster(triangles))) == 0
    if manifold:
        report = dfm_report(pair.export(file_type="stl"), machines=[MachineLimits("mk4")])
        crossing = next(c for c in report.checks if c.name == "self_intersections")
        assert (crossing.status, crossing.value) == ("pass", "0")


def test_the_wall_rays_find_the_same_walls_through_the_shared_grid_as_through_the_r_tree(
    monkeypatch,
):
    mesh = trimesh.util.concatenate(
        [jittered_torus(0.05, 5), trimesh.creation.box((60, 60, 2)).apply_translation((0, 0, 8))]
    )
    _, triangles = arrays_of(mesh)
    rng = np.random.default_rng(6)
    points = triangles[rng.integers(0, len(triangles), 500)].mean(axis=1)
    directions = rng.normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    caster = RayCaster(triangles)
    crossing_pairs(np.asarray(mesh.faces), caster)  # the self-intersection test builds the grid
    assert caster.grid is not None
    through_grid = caster.nearest_both_ways(points, directions, 1e-6, 12.0)
    monkeypatch.setattr(rays, "_GRID_MAX_TRIANGLES", 0)  # the R-tree answers instead
    through_tree = RayCaster(triangles).nearest_both_ways(points, directions, 1e-6, 12.0)
    for grid_side, tree_side in zip(through_grid, through_tree, strict=True):
        assert np.array_equal(grid_side, tree_side)
    assert np.isfinite(through_grid[0]).sum() > 100  # many lines meet a wall each way
    assert np.isfinite(through_grid[2]).sum() > 100


def test_the_array_helpers_give_numpys_answers_bit_for_bit():
    rng = np.random.default_rng(7)
    points = rng.normal(size=(5000, 3)) * rng.uniform(0, 1e3, (5000, 1)) + 20
    triangles = rng.normal(size=(4000, 3, 3)) * 37.0
    assert np.array_equal(arrays.column_min(points), points.min(axis=0))
    assert np.array_equal(arrays.column_max(points), points.max(axis=0))
    assert np.array_equal(arrays.row_min(points), points.min(axis=1))
    assert np.array_equal(arrays.row_max(triangles), triangles.max(axis=1))
    assert np.array_equal(arrays.row_sum(triangles), triangles.sum(axis=1))
    assert np.array_equal(arrays.row_mean(triangles), triangles.mean(axis=1))
    assert np.array_equal(arrays.row_mean(points[:, :2]), points[:, :2].mean(axis=1))
    direction = np.array([0.6, -0.48, 0.64])
    assert np.allclose(arrays.along(points, direction), points @ direction, rtol=0, atol=1e-9)
    rows = rng.normal(size=(4, 3))
    assert np.allclose(arrays.turned(points, rows), points @ rows.T, rtol=0, atol=1e-9)
    for keys in (
        np.zeros(0, dtype=np.int64),
        np.array([4]),
        rng.integers(-50, 50, 10_000),
        rng.integers(0, 2**40, 10_000),
        rng.integers(-(2**62), 2**62, 1000),  # too wide to pack: numpy's own stable sort
    ):
        assert np.array_equal(arrays.unique(keys), np.unique(keys))
        assert np.array_equal(arrays.stable_order(keys), np.argsort(keys, kind="stable"))
