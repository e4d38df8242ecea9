"""The milling planner's own programs pass verification: the cover plate at its parameter
ranges' corners and a block with a pocket, a slot and a hole, in both dialects, checked on the
z-map against the part and by LinuxCNC's rs274; and the verifier still catches a fault slipped
into one of them.

The mounting bracket (the other demo part the issue names) has no program to verify: the
planner refuses it, an L, at every corner as not 2.5D (tests/production/toolpath/test_milling.py).
"""

import functools
from typing import Any

import numpy as np
import pytest

from catalog.parts import DEMO_PARTS
from production.toolpath.cnc_render import render_simulation
from production.toolpath.cnc_tools import DEFAULT_TOOL_TABLE, MillProfile
from production.toolpath.cnc_verify import (
    CncCheck,
    Envelope,
    check_program,
    simulate_program,
)
from production.toolpath.milling import MillSettings, plan_milling, plate_thickness_for
from production.toolpath.program import MachineProgram
from production.toolpath.rs274 import rs274_errors
from production.toolpath.verify import PASS
from tests.catalog.corners import corners
from tests.production.toolpath.cnc_parts import block_with_features, seed_solid, step_and_stl

pytestmark = pytest.mark.cad

MILL = MillProfile(machine_model="Test mill", travel_mm=(300, 300, 80))
PLATES = [2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0]
COVER_PLATE = next(p for p in DEMO_PARTS if p.slug == "cover_plate")
CORNERS = {**corners(COVER_PLATE), "defaults": {}}


@functools.cache
def cover_plate(corner: str) -> tuple[bytes, bytes, float]:
    values = CORNERS[corner]
    # 0.02 mm: a countersink's facets stand at most that far proud of its cone (the simulated
    # countersink cuts the true cone), well within the gouge tolerance; finer takes 10 s.
    step, stl = step_and_stl(seed_solid("cover_plate", **values), stl_tolerance_mm=0.02)
    thickness = values.get("thickness", 3.0)
    return step, stl, plate_thickness_for(height_mm=thickness, thicknesses_mm=PLATES)


@functools.cache
def block() -> tuple[bytes, bytes]:
    return step_and_stl(block_with_features())


def plan(step: bytes, stl: bytes, thickness: float, **options: Any) -> MachineProgram:
    arguments: dict[str, Any] = {"dialect": "grbl", "settings": MillSettings()}
    arguments.update(options)
    return plan_milling(
        step=step,
        stl=stl,
        material="aluminium-6061",
        stock_thickness_mm=thickness,
        tools=DEFAULT_TOOL_TABLE,
        machine=MILL,
        **arguments,
    )


def verify(program: MachineProgram, stl: bytes, gcode: bytes | None = None) -> CncCheck:
    return check_program(
        program.gcode if gcode is None else gcode,
        stl=stl,
        stock=program.stock,
        tools=program.tools,
        envelope=Envelope.for_travel(MILL.travel_mm, program.stock),
    )


def assert_passes(report: CncCheck, what: str) -> None:
    assert {check.status for check in report.checks} == {PASS}, (what, report.failures)
    assert report.max_gouge_mm == 0.0 and report.max_remaining_mm <= 0.1, what
    assert report.part_held and report.tabs >= 1, what


@pytest.mark.parametrize("corner", sorted(CORNERS))
def test_the_cover_plates_programs_make_it_at_every_corner(corner: str) -> None:
    step, stl, thickness = cover_plate(corner)
    grbl = plan(step, stl, thickness, dialect="grbl")
    assert_passes(verify(grbl, stl), corner)
    # LinuxCNC's program (canned cycles, M6) cuts exactly the same stock.
    linuxcnc = plan(step, stl, thickness, dialect="linuxcnc")
    same = [
        simulate_program(program.gcode, stock=program.stock, tools=program.tools).zmap
        for program in (grbl, linuxcnc)
    ]
    assert np.array_equal(*same), corner
    for program in (grbl, linuxcnc):
        assert rs274_errors(program.gcode, tools=program.tools) == (), (corner, program.dialect)


@pytest.mark.parametrize("clearing", ["offset", "zigzag"])
def test_the_blocks_pocket_slot_hole_and_facing_are_cut_to_size(clearing: str) -> None:
    step, stl = block()
    for dialect in ("grbl", "linuxcnc"):
        # 12 mm plate for the 10 mm block: the top is faced 2 mm down too
        program = plan(step, stl, 12.0, dialect=dialect, settings=MillSettings(clearing=clearing))
        report = verify(program, stl)
        assert_passes(report, f"{clearing} {dialect}")
        assert report.lowest_z_mm < -12.0
        assert rs274_errors(program.gcode, tools=program.tools) == ()
        zmap = report.simulation.zmap
        # faced: the part's top and the plate beyond the outline stand at z = -2
        assert float(zmap.max()) == pytest.approx(-2.0)
    assert render_simulation(report.simulation).startswith(b"\x89PNG")


def test_a_fault_slipped_into_a_planned_program_is_caught() -> None:
    step, stl = block()
    program = plan(step, stl, 10.0)
    text = program.gcode.decode()
    # The first profile pass moved 1.5 mm towards the part: its walls are cut into.
    start = text.index("(profile")
    head, tail = text[:start], text[start:]
    lines = tail.splitlines()
    moved = []
    for line in lines:
        words = line.split()
        if words and words[0] == "G1" and any(w.startswith("X") for w in words):
            words = [
                f"X{float(w[1:]) - 1.5:.4f}" if w.startswith("X") and float(w[1:]) > 50 else w
                for w in words
            ]
        moved.append(" ".join(words))
    report = verify(program, stl, (head + "\n".join(moved) + "\n").encode())
    assert "gouge" in {check.name for check in report.failures}
    assert report.max_gouge_mm >= 4.0  # the first pass's depth, at least
    # And without its tabs, the part would come loose.
    untabbed = plan(step, stl, 10.0, settings=MillSettings(tab_count=0))
    loose = verify(untabbed, stl)
    assert {check.name for check in loose.failures} == {"tabs"} and not loose.part_held
