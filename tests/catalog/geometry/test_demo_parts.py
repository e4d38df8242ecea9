"""The seed library: every part builds at its defaults and at the corners of its parameter
ranges into one watertight solid that fits the printer, and its schema matches its script.

Each build is its own sandboxed process (2-4 s, most of it importing OpenCascade), so one
test per part builds its defaults and three corners two at a time (CI has two cores).
"""

import ast
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import trimesh

from catalog.geometry import BuildLimits, Geometry, build_geometry
from catalog.parameters import parse_rules, parse_schema
from catalog.parts import DEMO_PARTS, DemoPart
from catalog.qc import parse_qc_checks, parse_work_instructions
from tests.catalog.corners import corners

pytestmark = pytest.mark.cad  # CadQuery builds of every demo part; no database

LIMITS = BuildLimits(require_bwrap=False)
PRINTER_MM = 200
MATERIALS = {"pla", "petg", "abs", "pa12-cf"}
# Plate and sheet stock for the milled and laser-cut parts (issue #16).
STOCK_MATERIALS = {"cnc_mill": {"aluminium-6061"}, "laser": {"acrylic"}}
TYPES = {"length", "angle", "integer", "number", "choice", "boolean"}
PARALLEL_BUILDS = 2


def defaults(part: DemoPart) -> dict[str, Any]:
    return {parameter["name"]: parameter["default"] for parameter in part.schema}


def build_all(script: str, configurations: dict[str, dict[str, Any]]) -> dict[str, Geometry]:
    """Build each configuration, two at a time: each build is its own process."""
    with ThreadPoolExecutor(PARALLEL_BUILDS) as pool:
        builds = {
            name: pool.submit(build_geometry, script, values, limits=LIMITS)
            for name, values in configurations.items()
        }
    return {name: build.result() for name, build in builds.items()}


def assert_one_printable_solid(geometry: Geometry) -> None:
    mesh = trimesh.load_mesh(io.BytesIO(geometry.stl), file_type="stl")
    assert mesh.is_watertight
    assert mesh.body_count == 1
    assert mesh.volume == pytest.approx(geometry.volume_mm3, rel=0.01)
    assert max(geometry.bbox_mm) <= PRINTER_MM
    assert list(mesh.extents) == pytest.approx(geometry.bbox_mm, abs=0.1)
    assert geometry.glb.startswith(b"glTF")


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


def test_the_library_holds_at_least_twelve_parts_with_hyphen_free_unique_slugs() -> None:
    slugs = [part.slug for part in DEMO_PARTS]
    assert len(slugs) >= 12
    assert len(set(slugs)) == len(slugs)


@pytest.mark.parametrize("part", DEMO_PARTS, ids=lambda part: part.slug)
def test_every_demo_part_builds_at_its_defaults_and_corners_into_one_printable_solid(
    part: DemoPart,
) -> None:
    configurations = {"defaults": defaults(part), **corners(part, limit=3)}
    assert len(configurations) >= 3, "the part's rules leave fewer than two corners to test"

    built = build_all(part.script, configurations)

    for name, geometry in built.items():
        try:
            assert_one_printable_solid(geometry)
        except AssertionError as error:
            raise AssertionError(
                f"{part.slug} at {name} {configurations[name]}: {error}"
            ) from error


def test_a_bigger_bore_makes_a_lighter_collar_of_the_same_size() -> None:
    collar = next(part for part in DEMO_PARTS if part.slug == "shaft_collar")

    built = build_all(
        collar.script, {"default": defaults(collar), "bored": {**defaults(collar), "bore_d": 30}}
    )

    default, bored = built["default"], built["bored"]
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
        if parameter["type"] in ("length", "angle", "integer", "number"):
            assert parameter["min"] <= parameter["default"] <= parameter["max"]
        if parameter["type"] == "choice":
            assert parameter["default"] in parameter["choices"]
    for rule in part.rules:
        assert eval(rule["rule"], {"__builtins__": {"min": min}}, defaults(part)), rule["message"]
    parse_rules(part.rules)
    assert part.process in ("fdm", "cnc_mill", "laser")
    allowed = MATERIALS if part.process == "fdm" else STOCK_MATERIALS[part.process]
    for process in part.alternative_processes:  # a route in plate or sheet needs its stock
        assert set(part.materials) & STOCK_MATERIALS[process], process
        allowed = allowed | STOCK_MATERIALS[process]
    assert part.materials and set(part.materials) <= allowed


@pytest.mark.parametrize("part", DEMO_PARTS, ids=lambda part: part.slug)
def test_every_part_says_what_it_is_how_to_finish_it_and_what_to_measure(
    part: DemoPart,
) -> None:
    assert part.category and part.description and part.tags
    assert parse_work_instructions(part.work_instructions)
    checks = parse_qc_checks(part.qc_checks, parse_schema(part.schema))
    assert checks and all(check.parameter for check in checks)
