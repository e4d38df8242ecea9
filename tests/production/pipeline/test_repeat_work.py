"""Repeat work (issue #19, 6b): a configuration made before does not pay again for what its
stored artifacts already say. Reused G-code keeps the check's report stored with it when the
same checker made it, and among machines routing ranks alike the one whose program is stored
gets the job (no slicing for another printer model). No database."""

from dataclasses import replace

import pytest

from microfactory.errors import Rejected
from production import runner
from production.pipeline import steps
from production.pipeline.steps import JobSoFar, Setup
from production.pipeline.values import Stored
from production.routing import MachineFacts
from tests.production.pipeline.test_steps import MK4, PAPERWORK, Shelf, mesh_part
from tests.production.test_runner import holed_box_stl

pytestmark = pytest.mark.cad

# Another printer model, first by name: routing's first choice when both are alike.
ALPHA = replace(
    MK4, key="alpha-1", name="Alpha-1", model="Alpha", build_volume_mm=(300.0, 300.0, 300.0)
)


def validated(machines: tuple[MachineFacts, ...], shelf: Shelf) -> JobSoFar:
    setup = Setup(
        machines=machines,
        build_limits=runner.build_limits(),
        validation_limits=runner.validation_limits(),
        reuse=shelf,
    )
    so_far = JobSoFar(part=mesh_part(holed_box_stl()), paperwork=PAPERWORK, setup=setup)
    for step in steps.STEPS[:2]:
        so_far = step.after(so_far)
    return so_far


def store(shelf: Shelf, planned: steps.PlannedToolpath, *, gcode: bytes | None = None) -> None:
    assert planned.repaired is not None
    shelf.files[("repaired", planned.repaired.key)] = Stored(planned.repaired.content)
    program = planned.gcode if gcode is None else gcode
    shelf.files[("gcode", planned.key)] = Stored(program, planned.program_meta())


def test_reused_gcode_keeps_the_report_its_checker_stored_and_another_checker_checks_again():
    shelf = Shelf()
    so_far = validated((MK4,), shelf)
    first = steps.plan_toolpath(so_far)
    assert first.program_meta()["verifier"] == steps.verifier_version()
    assert first.program_meta()["verification"] == first.meta.verification
    # A stored program that would no longer pass the check (its last half cut off): with the
    # report of the same checker it is not read again...
    store(shelf, first, gcode=first.gcode[: len(first.gcode) // 2])

    again = steps.plan_toolpath(so_far)

    assert again.reused and again.meta.verification == first.meta.verification
    # ...made by another checker (or stored before reports were kept), it is checked again.
    stored = shelf.files[("gcode", first.key)]
    shelf.files[("gcode", first.key)] = Stored(stored.content, {**stored.meta, "verifier": "old"})
    with pytest.raises(Rejected):
        steps.plan_toolpath(so_far)


def test_among_machines_alike_the_one_whose_program_is_stored_gets_the_job():
    shelf = Shelf()
    for_mk4 = steps.plan_toolpath(validated((MK4,), shelf))
    store(shelf, for_mk4)

    both = validated((ALPHA, MK4), shelf)
    chosen = steps.plan_toolpath(both)

    assert chosen.meta.planned_for == "mk4-1" and chosen.reused
    assert chosen.gcode == for_mk4.gcode
    # Nothing stored: routing's order (by name among equals) decides, as before.
    assert steps.plan_toolpath(validated((ALPHA, MK4), Shelf())).meta.planned_for == "alpha-1"


def test_a_stored_program_does_not_win_over_a_machine_routing_ranks_higher():
    shelf = Shelf()
    store(shelf, steps.plan_toolpath(validated((MK4,), shelf)))
    busy_mk4 = replace(MK4, state="printing")

    chosen = steps.plan_toolpath(validated((ALPHA, busy_mk4), shelf))

    assert chosen.meta.planned_for == "alpha-1" and not chosen.reused
