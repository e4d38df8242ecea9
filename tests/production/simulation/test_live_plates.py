"""The promise on the live queue (production.simulation.snapshot, promise.order_promise) with
plates on the machines and QC in the sites' opening hours: on the database, with real Plate,
PlateCopy and SiteHours rows."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
from django.utils import timezone

from production import public
from production.machines import changeover_s
from production.models import Job, Machine, Plate, SiteHours
from production.simulation.engine import simulate
from production.simulation.snapshot import live_factory
from tests.builders import make_machine
from tests.production.test_plating import make_plate, plated_job

pytestmark = pytest.mark.django_db

MONDAY_2PM = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
SETUP_S = 300.0


@pytest.fixture(autouse=True)
def _exact_estimates(settings) -> None:
    """No job has run yet: the promise is the simulated finish on the estimates alone; a
    plate's setup as the quote counts it."""
    settings.MF_PROMISE_DEFAULT_SPREAD = 0.0
    settings.ORDER_QUOTE_RATES = replace(settings.ORDER_QUOTE_RATES, plate_setup_s=SETUP_S)


def qc_s(copies: int, settings) -> timedelta:
    rates = settings.ORDER_QUOTE_RATES
    return timedelta(seconds=rates.qc_job_s + rates.qc_copy_s * copies)


def on_machine(plate: Plate, machine: Machine, *, status: str, progress: float | None = None):
    """The plate routed to the machine (or running there), its jobs with it."""
    Plate.objects.filter(pk=plate.pk).update(
        status=status, machine=machine, progress=progress, status_changed_at=MONDAY_2PM
    )
    job_status = Job.Status.RUNNING if status == Plate.Status.RUNNING else Job.Status.ROUTED
    Job.objects.filter(plate_copies__plate=plate).update(status=job_status, machine=machine)


def test_a_routed_plate_is_one_run_of_its_setup_and_program_and_its_jobs_finish_with_it(
    user, settings
):
    machine = make_machine()
    first, second = plated_job(user, quantity=3), plated_job(user, quantity=2)
    plate = make_plate([first, second], estimated_time_s=3000)
    on_machine(plate, machine, status=Plate.Status.ROUTED)

    factory = live_factory(now=MONDAY_2PM)

    (printer,) = factory.machines
    assert printer.running is None
    # One run, not one per job (nor 5 copies x 600 s): the plate's setup and program.
    assert [(j.key, j.needs.estimated_time_s) for j in printer.queued] == [
        (f"plate-{plate.pk}", SETUP_S + 3000)
    ]
    assert factory.waiting == ()
    assert factory.plates == {f"plate-{plate.pk}": tuple(sorted((str(first.pk), str(second.pk))))}
    result = simulate(factory.machines, [], start=MONDAY_2PM, changeover_s=changeover_s())
    done = MONDAY_2PM + timedelta(seconds=SETUP_S + 3000)
    assert factory.finished_at(result, str(first.pk)) == factory.finished_at(result, str(second.pk))
    assert factory.finished_at(result, str(first.pk)) == done

    # An order quoted now (its traveler ready at 14:15) waits behind the plate: it starts
    # at 14:55, runs its hour, and has passed QC after the allowance.
    line = public.PromiseLine(process="fdm", material="pla", extents_mm=(20, 10, 10), run_s=3600)
    promise = public.order_promise([line], now=MONDAY_2PM, expedite=False)
    assert promise is not None
    assert promise.ready_at == done + timedelta(hours=1) + qc_s(1, settings)
    assert promise.jobs_ahead == 1  # the plate, once


def test_a_running_plate_runs_what_its_program_has_left(user):
    machine = make_machine()
    job = plated_job(user, quantity=4)
    plate = make_plate([job], estimated_time_s=4000)
    on_machine(plate, machine, status=Plate.Status.RUNNING, progress=25.0)

    factory = live_factory(now=MONDAY_2PM)

    (printer,) = factory.machines
    assert printer.running is not None and printer.running.key == f"plate-{plate.pk}"
    assert printer.running_until == MONDAY_2PM + timedelta(seconds=3000)  # 75 % of 4000 s
    assert printer.queued == ()
    result = simulate(factory.machines, [], start=MONDAY_2PM, changeover_s=0)
    assert factory.finished_at(result, str(job.pk)) == MONDAY_2PM + timedelta(seconds=3000)


def test_a_planned_plate_waits_for_the_router_as_one_job(user):
    make_machine()
    first, second = plated_job(user, quantity=3), plated_job(user, quantity=2)
    plate = make_plate([first, second], estimated_time_s=2500)  # ready: not routed yet

    factory = live_factory(now=MONDAY_2PM)

    assert [(j.key, j.needs.estimated_time_s) for j in factory.waiting] == [
        (f"plate-{plate.pk}", SETUP_S + 2500)
    ]
    result = simulate(
        factory.machines, factory.waiting, start=MONDAY_2PM, changeover_s=changeover_s()
    )
    assert result.outcomes[f"plate-{plate.pk}"].machine == "mk4-1"
    assert factory.finished_at(result, str(second.pk)) == MONDAY_2PM + timedelta(
        seconds=SETUP_S + 2500
    )


def test_a_job_awaiting_its_plates_runs_as_its_quotes_plate_plan(user):
    make_machine()
    job = plated_job(user, quantity=4)  # 600 s a copy, not planned on a plate yet
    line = job.line
    line.quote = {**line.quote, "quantity": 4, "plates": 2, "copies_per_plate": 2,
                  "plate_setup_s": SETUP_S}  # fmt: skip
    line.save(update_fields=["quote"])

    factory = live_factory(now=MONDAY_2PM)

    assert [(j.key, j.needs.estimated_time_s) for j in factory.waiting] == [
        (str(job.pk), 2 * SETUP_S + 4 * 600)
    ]


def test_qc_after_a_finish_just_before_closing_is_done_the_next_morning(user, settings):
    """A site open 08:00-18:00 on weekdays; an order of one copy quoted on Monday at 14:00
    reaches the idle printer at 14:15 and, running 3 h 40 min, finishes at 17:55: its QC
    (30 min a job, 2 min a copy) takes 5 minutes on Monday and the rest on Tuesday morning."""
    machine = make_machine()
    for weekday in range(5):
        SiteHours.objects.create(
            site=machine.site, weekday=weekday, opens=clock(8), closes=clock(18)
        )
    line = public.PromiseLine(
        process="fdm", material="pla", extents_mm=(20, 10, 10), run_s=3 * 3600 + 40 * 60
    )

    promise = public.order_promise([line], now=MONDAY_2PM, expedite=False)

    assert promise is not None
    allowance = qc_s(1, settings)
    tuesday_8am = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert promise.ready_at == tuesday_8am + allowance - timedelta(minutes=5)
    # Without opening hours the same QC would end on Monday evening.
    SiteHours.objects.all().delete()
    always = public.order_promise([line], now=MONDAY_2PM, expedite=False)
    assert always is not None
    assert always.ready_at == datetime(2026, 11, 30, 17, 55, tzinfo=UTC) + allowance
    assert timezone.is_aware(promise.ready_at)


def test_the_run_time_spread_reads_a_plated_jobs_run_against_its_plates_estimate(user, settings):
    from production.simulation.promise import run_time_spread

    settings.MF_PROMISE_MIN_SAMPLES = 1
    machine = make_machine()
    first, second = plated_job(user, quantity=3), plated_job(user, quantity=2)  # 600 s a copy
    plate = make_plate([first, second], estimated_time_s=3000)
    ran = {"started_at": MONDAY_2PM, "finished_at": MONDAY_2PM + timedelta(seconds=3300)}
    Plate.objects.filter(pk=plate.pk).update(status=Plate.Status.DONE, machine=machine, **ran)
    Job.objects.filter(pk__in=[first.pk, second.pk]).update(status=Job.Status.DONE, **ran)
    alone = plated_job(user, quantity=1)  # its own run: twice its 600 s
    Job.objects.filter(pk=alone.pk).update(
        status=Job.Status.DONE,
        started_at=MONDAY_2PM,
        finished_at=MONDAY_2PM + timedelta(seconds=1200),
    )

    spread = run_time_spread(confidence=0.9)

    # The plate ran 3300 s of its 3000 (1.1) for each of its two jobs, not 3300 s of 3 or 2
    # copies' 600 s; the single job 2.0.
    assert spread.samples == 3
    assert spread.expected == pytest.approx(1.1)
    assert spread.late == pytest.approx(1.1 + (2.0 - 1.1) * 0.8)  # 90 %: rank 1.8 of 0..2
