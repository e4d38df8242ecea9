"""Thin walls between one and seven line widths, sliced by the builtin engine, measured layer by
layer against the analytic wall (tests/production/toolpath/wall_coverage.py says how): every
layer covers at least 97 % of the wall and no more than 3 % of it is covered twice.

A straight wall (a box 20 mm long), a tube (12 mm across, 256-gon: its section is the
analytic annulus within 2 µm) and a clip arm (a 240° arc of the wall's thickness, the shape
whose straight-line gap fill used to miss) for every thickness. The figures are in
docs/toolpaths.md ("Thin walls")."""

import functools

import numpy as np
import pytest
import trimesh
from shapely import affinity
from shapely.geometry import Polygon

from production.toolpath import plan_toolpath
from tests.production.toolpath.gcode_reader import BED_CENTRE, make_profile, stl_of
from tests.production.toolpath.wall_coverage import LayerFill, layer_fills

THICKNESSES = (0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0)
HEIGHT = 3.0  # 15 layers: solid bottom and top, and the layers between
OUTER_RADIUS = 6.0
SIDES = 256
MIN_COVERAGE = 0.97
MAX_TWICE = 0.03


def wall_sides(shape: str, thickness: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """The wall's two sides, point for point (outer, inner), and whether they close."""
    if shape == "straight":
        along = np.linspace(0, 20, 2)
        return (
            np.column_stack([along, np.full(2, thickness)]),
            np.column_stack([along, np.zeros(2)]),
            False,
        )
    # A tube, or a clip arm: 240° of one, open at the bottom, with square ends.
    closed = shape == "tube"
    turn = (
        np.arange(SIDES) / SIDES * 2 * np.pi
        if closed
        else np.linspace(-np.pi / 6, 7 * np.pi / 6, 2 * SIDES // 3 + 1)
    )
    unit = np.column_stack([np.cos(turn), np.sin(turn)])
    return OUTER_RADIUS * unit, (OUTER_RADIUS - thickness) * unit, closed


def wall_outline(shape: str, thickness: float) -> Polygon:
    outer, inner, closed = wall_sides(shape, thickness)
    if closed:
        return Polygon(outer, [inner[::-1]])
    return Polygon(np.vstack([outer, inner[::-1]]))


def wall_mesh(shape: str, thickness: float) -> trimesh.Trimesh:
    """The wall extruded HEIGHT up: quads between its sides (trimesh cannot triangulate
    polygons without an optional engine)."""
    outer, inner, closed = wall_sides(shape, thickness)
    n = len(outer)
    ring = np.vstack([outer, inner])  # outer 0..n-1, inner n..2n-1
    vertices = np.vstack(
        [np.column_stack([ring, np.zeros(2 * n)]), np.column_stack([ring, np.full(2 * n, HEIGHT)])]
    )
    top = 2 * n
    faces = []
    steps = range(n) if closed else range(n - 1)
    for i in steps:
        j = (i + 1) % n
        o0, o1, i0, i1 = i, j, n + i, n + j
        faces += [[o0, i1, o1], [o0, i0, i1]]  # bottom
        faces += [[top + o0, top + o1, top + i1], [top + o0, top + i1, top + i0]]  # top
        faces += [[o0, o1, top + o1], [o0, top + o1, top + o0]]  # outer side
        faces += [[i0, top + i1, i1], [i0, top + i0, top + i1]]  # inner side
    if not closed:
        for a, b in ((n, 0), (n - 1, 2 * n - 1)):  # the square ends
            faces += [[a, b, top + b], [a, top + b, top + a]]
    mesh = trimesh.Trimesh(vertices, np.array(faces))
    trimesh.repair.fix_normals(mesh)
    assert mesh.is_watertight
    return mesh


@functools.cache
def measured(shape: str, thickness: float) -> list[LayerFill]:
    outline = wall_outline(shape, thickness)
    mesh = wall_mesh(shape, thickness)
    toolpath = plan_toolpath(stl_of(mesh), make_profile())
    # The planner centres the part's bounding box on the bed.
    x0, y0, x1, y1 = outline.bounds
    placed = affinity.translate(
        outline, BED_CENTRE[0] - (x0 + x1) / 2, BED_CENTRE[1] - (y0 + y1) / 2
    )
    return layer_fills(toolpath.gcode, placed)


CASES = [(shape, t) for shape in ("straight", "tube", "clip") for t in THICKNESSES]


@pytest.mark.parametrize(("shape", "thickness"), CASES, ids=[f"{s}-{t}mm" for s, t in CASES])
def test_every_layer_of_the_wall_is_covered_once(shape: str, thickness: float) -> None:
    fills = measured(shape, thickness)
    assert len(fills) == 1 + round((HEIGHT - 0.25) / 0.2)
    worst_coverage = min(fills, key=lambda f: f.coverage)
    worst_twice = max(fills, key=lambda f: f.twice)
    assert worst_coverage.coverage >= MIN_COVERAGE, worst_coverage
    assert worst_twice.twice <= MAX_TWICE, worst_twice
