"""The queue simulator's event loop (production.simulation.engine) and the promise it makes
(production.simulation.promise.promise_from) on fixed queues: pure, no database."""

from datetime import UTC, datetime, time, timedelta

from production import routing
from production.calendars import Shift, SiteCalendar
from production.simulation.engine import SimJob, SimMachine, simulate
from production.simulation.metrics import percentile, run_figures
from production.simulation.promise import PromiseLine, Spread, promise_from
from production.simulation.snapshot import LiveFactory

MONDAY_2PM = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # a Monday
HOUR = 3600.0
# Open Monday to Friday, 08:00-16:00 UTC.
DAY_SHIFT = SiteCalendar(shifts=tuple(Shift(day, time(8), time(16)) for day in range(5)))


def printer(key: str = "mk4-1", *, materials=("pla",), site: str = "north", **fields):
    return routing.MachineFacts(
        key=key,
        name=key.upper(),
        site=site.title(),
        model="Prusa MK4",
        process="fdm",
        state="idle",
        build_volume_mm=(250, 210, 220),
        nozzle_mm=0.4,
        flavour="marlin",
        materials=frozenset(materials),
        loadable=frozenset({"pla", "petg"}),
        site_slug=site,
        **fields,
    )


def job(key: str, hours: float, *, ready_at: datetime = MONDAY_2PM, material: str = "pla", **kw):
    return SimJob(
        needs=routing.JobNeeds(
            process="fdm",
            material=material,
            extents_mm=(40, 30, 20),
            key=key,
            estimated_time_s=hours * HOUR,
        ),
        ready_at=ready_at,
        **kw,
    )


def at(day: int, hour: float) -> datetime:
    """Day 0 is Monday 30 November 2026."""
    return datetime(2026, 11, 30, tzinfo=UTC) + timedelta(days=day, hours=hour)


def fixed_queue() -> LiveFactory:
    """One printer, open 08:00-16:00 on weekdays: a job running until 15:00, two of half an
    hour queued behind it."""
    return LiveFactory(
        machines=(
            SimMachine(
                facts=printer(),
                calendar=DAY_SHIFT,
                running=job("running", 1.0),
                running_until=MONDAY_2PM + timedelta(hours=1),
                queued=(job("q1", 0.5), job("q2", 0.5)),
            ),
        ),
        waiting=(),
        transit={},
    )


def test_the_promise_is_the_simulated_finish_of_a_fixed_queue_with_opening_hours():
    line = PromiseLine(process="fdm", material="pla", extents_mm=(40, 30, 20), run_s=HOUR)
    exact = Spread(expected=1.0, late=1.0, confidence=0.9, samples=50)
    promise = promise_from(
        fixed_queue(),
        [line],
        now=MONDAY_2PM,
        expedite=False,
        delivery_site=None,
        overhead_s=900,
        changeover=900,
        spread=exact,
    )
    # Running until 15:00, then 15:00-15:30 and 15:30-16:00; the site is closed at 16:00, so
    # the order's hour starts when it opens on Tuesday at 08:00 and ends at 09:00.
    assert promise is not None
    assert promise.ready_at == promise.expected_at == at(1, 9)
    assert promise.jobs_ahead == 3 and promise.confidence_percent == 90
    # Every job half as slow again: the running one ends at 15:30, the first queued one runs
    # 15:30-16:15 (it started while open), the second waits for Tuesday 08:00-08:45, and the
    # order's 1.5 h end at 10:15. Promised then; expected at the median (estimates): 09:00.
    slow = promise_from(
        fixed_queue(),
        [line],
        now=MONDAY_2PM,
        expedite=False,
        delivery_site=None,
        overhead_s=900,
        changeover=900,
        spread=Spread(expected=1.0, late=1.5, confidence=0.9, samples=50),
    )
    assert slow is not None
    assert slow.ready_at == at(1, 10.25) and slow.expected_at == at(1, 9)


def test_a_changeover_runs_before_a_job_in_another_material():
    result = simulate(
        [SimMachine(facts=printer())],
        [job("petg", 1.0, material="petg")],
        start=MONDAY_2PM,
        changeover_s=900,
    )
    outcome = result.outcomes["petg"]
    assert outcome.changeover_s == 900
    assert outcome.started_at == MONDAY_2PM + timedelta(minutes=15)
    assert outcome.finished_at == MONDAY_2PM + timedelta(hours=1, minutes=15)
    assert result.busy["mk4-1"][0].start == MONDAY_2PM


def test_the_real_router_spreads_jobs_over_machines_and_queues_wait_for_room():
    machines = [
        SimMachine(facts=printer("a", queue_limit=1)),
        SimMachine(facts=printer("b", queue_limit=1)),
    ]
    jobs = [job(f"j{i}", 2.0) for i in range(4)]
    result = simulate(machines, jobs, start=MONDAY_2PM, changeover_s=0)
    assert {o.machine for o in result.outcomes.values()} == {"a", "b"}
    # Each holds one job at a time: the third and fourth are routed when one finishes.
    routed = sorted(o.routed_at for o in result.outcomes.values())
    assert routed == [MONDAY_2PM, MONDAY_2PM, at(0, 16), at(0, 16)]
    for intervals in result.busy.values():
        for earlier, later in zip(intervals, intervals[1:], strict=False):
            assert earlier.end <= later.start


def test_a_job_no_machine_could_make_is_reported_with_the_routers_reason():
    result = simulate(
        [SimMachine(facts=printer())],
        [job("abs", 1.0, material="abs")],
        start=MONDAY_2PM,
        changeover_s=0,
    )
    assert result.outcomes == {}
    assert "no fdm machine has abs loaded" in result.rejected["abs"]


def test_a_day_shift_opens_at_the_next_opening():
    assert DAY_SHIFT.next_open(at(0, 10)) == at(0, 10)
    assert DAY_SHIFT.next_open(at(0, 16)) == at(1, 8)
    assert DAY_SHIFT.next_open(at(4, 17)) == at(7, 8)  # Friday evening -> Monday


def test_figures_of_a_run_lead_times_utilisation_and_on_time():
    result = simulate(
        [SimMachine(facts=printer())],
        [job("a", 1.0), job("b", 1.0)],
        start=MONDAY_2PM,
        changeover_s=0,
    )
    figures = run_figures(
        result,
        placed_at={"a": MONDAY_2PM, "b": MONDAY_2PM},
        targets={"a": MONDAY_2PM + timedelta(hours=1), "b": MONDAY_2PM + timedelta(hours=1)},
        period=(MONDAY_2PM, MONDAY_2PM + timedelta(hours=4)),
        machines=["mk4-1"],
    )
    assert figures.lead_median_s == 1.5 * HOUR and figures.lead_p90_s == 1.9 * HOUR
    assert figures.on_time == 0.5
    assert figures.utilisation == {"mk4-1": 0.5}
    assert percentile([], 0.5) is None


def test_an_idle_machine_starts_its_queue_at_once():
    machine = SimMachine(facts=printer(), queued=(job("q1", 1.0), job("q2", 1.0)))
    result = simulate([machine], [], start=MONDAY_2PM, changeover_s=0)
    assert result.outcomes["q1"].started_at == MONDAY_2PM
    assert result.outcomes["q2"].finished_at == MONDAY_2PM + timedelta(hours=2)
