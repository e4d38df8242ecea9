"""Every milled and laser-cut demo part (catalog.parts: the milled and laser cover plates and
flat brackets) at its defaults and its parameter ranges' corners: the planner's program passes
its verifier (no gouge, no stock left, tabs held, for milling on the z-map; every contour
closed and cut outside the part by half the kerf, for laser) and LinuxCNC's rs274 accepts it.
The machines are the demo's: seed_demo's GRBL mill (the whole tool table) and CO2 laser."""

import functools

import pytest

from catalog.parts import DEMO_PARTS
from production.toolpath.cnc_tools import DEFAULT_TOOL_TABLE, MillProfile
from production.toolpath.cnc_verify import Envelope, check_program
from production.toolpath.laser import LaserProfile, plan_cutting
from production.toolpath.laser_verify import check_cutting
from production.toolpath.milling import plan_milling, plate_thickness_for
from production.toolpath.rs274 import rs274_errors
from production.toolpath.verify import PASS
from tests.catalog.corners import corners
from tests.production.toolpath.cnc_parts import seed_solid, step_and_stl

pytestmark = pytest.mark.cad

MILL = MillProfile(machine_model="Demo GRBL mill", travel_mm=(300, 200, 60))
LASER = LaserProfile(machine_model="Demo CO2 laser", bed_mm=(600, 400))
PLATES = {"aluminium-6061": [3.0, 6.0, 10.0]}
SHEETS = {"acrylic": [3.0, 5.0]}
PARTS = {p.slug: p for p in DEMO_PARTS if p.process in ("cnc_mill", "laser")}
CASES = [
    (slug, name) for slug, part in sorted(PARTS.items()) for name in ("defaults", *corners(part))
]


def values(slug: str, name: str) -> dict[str, object]:
    part = PARTS[slug]
    defaults = {p["name"]: p["default"] for p in part.schema}
    return {**defaults, **({} if name == "defaults" else corners(part)[name])}


@functools.cache
def geometry(slug: str, name: str) -> tuple[bytes, bytes, float]:
    chosen = values(slug, name)
    step, stl = step_and_stl(seed_solid(slug, **chosen), stl_tolerance_mm=0.02)
    return step, stl, float(chosen["thickness"])  # type: ignore[arg-type]


def test_the_demo_has_milled_and_laser_cut_parts():
    processes = sorted(p.process for p in PARTS.values())
    assert processes.count("cnc_mill") >= 2 and processes.count("laser") >= 2


@pytest.mark.parametrize(("slug", "name"), CASES)
def test_a_demo_part_program_passes_its_verifier_and_rs274(slug, name):
    part = PARTS[slug]
    step, stl, thickness = geometry(slug, name)
    material = part.materials[0]
    if part.process == "cnc_mill":
        plate = plate_thickness_for(height_mm=thickness, thicknesses_mm=PLATES[material])
        program = plan_milling(
            step=step,
            stl=stl,
            material=material,
            stock_thickness_mm=plate,
            tools=DEFAULT_TOOL_TABLE,
            machine=MILL,
            dialect="grbl",
        )
        report = check_program(
            program.gcode,
            stl=stl,
            stock=program.stock,
            tools=program.tools,
            envelope=Envelope.for_travel(MILL.travel_mm, program.stock),
        )
        assert {check.status for check in report.checks} == {PASS}, (name, report.failures)
    else:
        assert thickness in SHEETS[material]
        program = plan_cutting(
            step=step, stl=stl, material=material, thickness_mm=thickness, machine=LASER
        )
        cut = check_cutting(
            program.gcode,
            step=step,
            stl=stl,
            material=material,
            thickness_mm=thickness,
            machine=LASER,
        )
        assert {check.status for check in cut.checks} == {"pass"}, (name, cut)
    assert rs274_errors(program.gcode, tools=program.tools) == (), name
