"""The demo catalog: every part builds at its defaults, and its schema matches its script."""

import ast
import functools
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import trimesh

from catalog.geometry import BuildLimits, Geometry, build_geometry
from catalog.parts import DEMO_PARTS, DemoPart

LIMITS = BuildLimits(require_bwrap=False)
PRINTER_MM = 200
MATERIALS = {"pla", "petg", "abs", "pa12-cf"}
TYPES = {"length", "angle", "integer", "choice", "boolean"}


def defaults(part: DemoPart) -> dict[str, Any]:
    return {parameter["name"]: parameter["default"] for parameter in part.schema}


@functools.cache
def built_at_defaults() -> dict[str, Geometry]:
    """Every demo part at its defaults, built side by side: each build is its own process."""
    with ThreadPoolExecutor() as pool:
        builds = {
            part.slug: pool.submit(build_geometry, part.script, defaults(part), limits=LIMITS)
            for part in DEMO_PARTS
        }
    return {slug: build.result() for slug, build in builds.items()}


def script_parameters(script: str) -> dict[str, Any]:
    """What cqgi treats as parameters: top-level assignments of a constant."""
    tree = ast.parse(script)
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }


@pytest.mark.parametrize("part", DEMO_PARTS, ids=lambda part: part.slug)
def test_every_demo_part_builds_at_its_defaults_into_one_watertight_printable_solid(
    part: DemoPart,
) -> None:
    geometry = built_at_defaults()[part.slug]

    mesh = trimesh.load_mesh(io.BytesIO(geometry.stl), file_type="stl")
    assert mesh.is_watertight
    assert mesh.body_count == 1
    assert mesh.volume == pytest.approx(geometry.volume_mm3, rel=0.01)
    assert max(geometry.bbox_mm) <= PRINTER_MM
    assert list(mesh.extents) == pytest.approx(geometry.bbox_mm, abs=0.1)


def test_a_bigger_bore_makes_a_lighter_collar_of_the_same_size() -> None:
    collar = next(part for part in DEMO_PARTS if part.slug == "shaft_collar")
    default = built_at_defaults()["shaft_collar"]

    bored = build_geometry(collar.script, {**defaults(collar), "bore_d": 30}, limits=LIMITS)

    assert bored.volume_mm3 < default.volume_mm3
    assert bored.bbox_mm == default.bbox_mm


@pytest.mark.parametrize("part", DEMO_PARTS, ids=lambda part: part.slug)
def test_every_schema_names_exactly_its_scripts_parameters_with_the_same_defaults(
    part: DemoPart,
) -> None:
    assert script_parameters(part.script) == defaults(part)


@pytest.mark.parametrize("part", DEMO_PARTS, ids=lambda part: part.slug)
def test_every_schema_is_well_formed_and_its_defaults_follow_its_own_rules(
    part: DemoPart,
) -> None:
    for parameter in part.schema:
        assert parameter["type"] in TYPES
        assert parameter["label"] and parameter["help"]
        if parameter["type"] in ("length", "angle", "integer"):
            assert parameter["min"] <= parameter["default"] <= parameter["max"]
        if parameter["type"] == "choice":
            assert parameter["default"] in parameter["choices"]
    for rule in part.rules:
        assert eval(rule["rule"], {"__builtins__": {}}, defaults(part)), rule["message"]
    assert part.process == "fdm"
    assert part.materials and set(part.materials) <= MATERIALS
