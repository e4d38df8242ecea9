"""Demo history (seed_demo --history-weeks), the what-if replay over it and over a built
floor, the what-if page, and promise accuracy: on the database."""

import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from orders.models import Order
from production import lifecycle
from production.lifecycle import TRANSITIONS, By
from production.models import Job, JobEvent, Machine, MachineEvent
from production.simulation.promise import promise_accuracy
from production.simulation.whatif import Change, replay_load, whatif_run
from tests.builders import make_machine, make_order, make_part, make_user

pytestmark = pytest.mark.django_db
WEEKS = 2


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    """Pages link site.css; tests run without collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def demo():
    started = time.perf_counter()
    call_command("seed_demo", "--no-order", "--history-weeks", str(WEEKS), verbosity=0)
    return time.perf_counter() - started


def history_start() -> datetime:
    first = Job.objects.order_by("created_at").values_list("created_at", flat=True).first()
    assert first is not None
    return datetime.combine(first.date(), clock.min, tzinfo=UTC)


def test_the_seeded_history_chains_every_jobs_events_and_machines_never_overlap(demo):
    jobs = Job.objects.all()
    assert jobs.count() > 30 and set(jobs.values_list("status", flat=True)) == {"done"}
    assert Order.objects.filter(reference__startswith="HIST-", status="completed").count() > 20
    events: dict[int, list[JobEvent]] = {}
    for event in JobEvent.objects.order_by("finished_at", "pk"):
        events.setdefault(event.job_id, []).append(event)
    for job in jobs:
        chain = events[job.pk]
        assert chain[0].from_status == "" and chain[-1].to_status == job.status == "done"
        for before, after in zip(chain, chain[1:], strict=False):
            assert after.from_status == before.to_status
            assert before.finished_at <= after.finished_at
        for event in chain:  # every move one the lifecycle allows someone to make
            assert (event.from_status, event.to_status) in TRANSITIONS
        running = next(e for e in chain if e.to_status == "running")
        assert running.finished_at == job.started_at
        assert job.created_at == chain[0].finished_at <= job.started_at < job.finished_at
    # A machine runs one job at a time.
    by_machine: dict[int, list[Job]] = {}
    for job in jobs.order_by("started_at"):
        by_machine.setdefault(job.machine_id, []).append(job)
    for runs in by_machine.values():
        for earlier, later in zip(runs, runs[1:], strict=False):
            assert earlier.finished_at <= later.started_at
    # Its state changes chain, alternate busy and idle, and leave it as it is.
    for machine in Machine.objects.filter(pk__in=by_machine):
        changes = list(MachineEvent.objects.filter(machine=machine).order_by("at", "pk"))
        assert changes and changes[0].from_state == "idle" and changes[-1].to_state == "idle"
        for before, after in zip(changes, changes[1:], strict=False):
            assert after.from_state == before.to_state and before.at <= after.at
        busy = [
            (c.at, n.at) for c, n in zip(changes, changes[1:], strict=False) if c.to_state == "busy"
        ]
        for job in by_machine[machine.pk]:  # each run inside a busy stretch
            assert any(a <= job.started_at and job.finished_at <= b for a, b in busy)
    # Fast enough for `make run` and the tests that seed the demo.
    assert demo < 30
    # Seeding again writes no second history.
    jobs_before = Job.objects.count()
    call_command("seed_demo", "--no-order", "--history-weeks", str(WEEKS), verbosity=0)
    assert Job.objects.count() == jobs_before


def test_the_what_if_with_no_change_puts_every_job_where_it_really_went_and_promises_are_measured(
    demo,
):
    replay = replay_load(start=history_start(), end=timezone.now(), site_slugs=None)
    assert len(replay.jobs) == Job.objects.count()
    result = whatif_run(replay, Change("none"))
    assert result.same_as_actual == 1.0
    assert result.before == result.after
    assert result.before.not_made == 0 and result.before.jobs == len(replay.jobs)
    # Removing the only machine of ABS and PA12-CF leaves those jobs unmade.
    without = whatif_run(replay, Change("remove", machine="voron-1"))
    assert without.after.not_made > 0 and without.after.utilisation.get("voron-1") is None
    # Promise accuracy (for the dashboard) compares each promise with the last QC pass.
    since, until = history_start(), timezone.now()
    accuracy = promise_accuracy(placed_from=since, placed_until=until)
    expected_kept = 0
    orders = Order.objects.filter(reference__startswith="HIST-", promised_at__isnull=False)
    for order in orders:
        passed = JobEvent.objects.filter(job__line__order=order, to_status="done")
        last = max(passed.values_list("finished_at", flat=True))
        expected_kept += last <= order.promised_at
    assert accuracy.orders == orders.count() > 0
    assert accuracy.kept == expected_kept
    assert accuracy.kept_share is not None and 0 < accuracy.kept_share <= 1


def test_removing_a_machine_lengthens_lead_times():
    user = make_user()
    make_part("block")
    make_machine("mk4-1")
    make_machine("mk4-2")
    start = timezone.now() - timedelta(days=2)
    jobs = []
    for _ in range(6):
        job = make_order(user=user).lines.get().jobs.get()
        jobs.append(job)
    past = []
    # Six one-hour jobs placed at once: two machines make them in three hours, one in six.
    for job in jobs:
        past.append(job.pk)
    Job.objects.filter(pk__in=past).update(
        dfm_report={"extents_mm": [20, 10, 10]},
        toolpath_meta={"estimated_time_s": 3600.0},
        created_at=start,
        machine=Machine.objects.get(slug="mk4-1"),
    )
    replay = replay_load(start=start, end=timezone.now(), site_slugs=None)
    assert len(replay.jobs) == 6
    result = whatif_run(replay, Change("remove", machine="mk4-2"))
    before, after = result.before, result.after
    assert before.lead_p90_s is not None and after.lead_p90_s is not None
    assert after.lead_p90_s > before.lead_p90_s and after.lead_median_s > before.lead_median_s
    assert after.utilisation["mk4-1"] == 2 * before.utilisation["mk4-1"]
    added = whatif_run(replay, Change("add", machine="mk4-1", site="north"))
    assert added.after.lead_p90_s < before.lead_p90_s


def test_the_what_if_page_is_for_managers_and_refuses_long_periods(demo, settings):
    manager, operator = Client(), Client()
    manager.force_login(make_user_named("manager"))
    operator.force_login(make_user_named("operator"))
    page = manager.get("/station/what-if/")
    assert page.status_code == 200 and 'id="whatif-form"' in page.content.decode()
    since = history_start().date().isoformat()
    run = manager.get(
        "/station/what-if/", {"run": 1, "since": since, "change": "remove", "machine": "mk4-1"}
    )
    html = run.content.decode()
    assert run.status_code == 200, html
    assert 'id="whatif-figures"' in html and "remove MK4 #1" in html
    assert 'id="whatif-fidelity"' in html and "100 % of the jobs" in html
    assert operator.get("/station/what-if/").status_code == 403
    customer = Client()
    customer.force_login(make_user_named("requester"))
    assert customer.get("/station/what-if/").status_code == 404
    bad = manager.get("/station/what-if/", {"run": 1, "since": "yesterday"})
    assert bad.status_code == 400 and "is not a date" in bad.content.decode()
    settings.MF_WHATIF_MAX_JOBS = 5
    refused = manager.get("/station/what-if/", {"run": 1, "since": since})
    assert refused.status_code == 400
    assert "a what-if replays at most 5 (MF_WHATIF_MAX_JOBS)" in refused.content.decode()


def make_user_named(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def test_history_refuses_a_chain_the_lifecycle_does_not_allow():
    user = make_user()
    make_part("block")
    make_machine()
    line = make_order(user=user).lines.get()
    now = timezone.now()
    skipping = lifecycle.PastJob(
        fields={"line": line, "quantity": 1},
        moves=(
            lifecycle.PastMove(to="queued", by=By.CUSTOMER, step="create", at=now, actor="x"),
            lifecycle.PastMove(to="running", by=By.OPERATOR, step="start", at=now, actor="x"),
        ),
    )
    before = Job.objects.count()
    with pytest.raises(Exception, match="cannot go from queued to running"):
        lifecycle.history_record(jobs=[skipping], machine_changes=[])
    assert Job.objects.count() == before


def test_the_promise_on_the_live_queue_is_its_simulated_finish_with_the_sites_hours(settings):
    """Two one-hour jobs routed to the only printer, a site open 08:00-16:00 on weekdays: an
    order of one hour quoted on Monday at 14:00 is ready on Tuesday at 09:00."""
    from production import public
    from production.models import SiteHours

    settings.MF_PROMISE_DEFAULT_SPREAD = 0.0  # no jobs have run yet: the estimates alone
    user = make_user()
    make_part("block")
    machine = make_machine()
    for weekday in range(5):
        SiteHours.objects.create(
            site=machine.site, weekday=weekday, opens=clock(8), closes=clock(16)
        )
    monday_2pm = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    for _ in range(2):
        job = make_order(user=user).lines.get().jobs.get()
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.ROUTED,
            machine=machine,
            toolpath_meta={"estimated_time_s": 3600.0},
            dfm_report={"extents_mm": [20, 10, 10]},
        )
    line = public.PromiseLine(process="fdm", material="pla", extents_mm=(20, 10, 10), run_s=3600)
    promise = public.order_promise([line], now=monday_2pm, expedite=False)
    # 14:00-15:00 and 15:00-16:00 for the jobs queued; the order's traveler is ready at
    # 14:15, it waits behind them, the site closes at 16:00 and opens on Tuesday at 08:00;
    # finished at 09:00, it has passed QC after the allowance (MF_PROMISE_QC_*).
    assert promise is not None
    rates = settings.ORDER_QUOTE_RATES
    qc = timedelta(seconds=rates.qc_job_s + rates.qc_copy_s)
    assert promise.ready_at == promise.expected_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + qc
    assert promise.jobs_ahead == 2


def test_the_dashboard_reads_the_seeded_history_figures_that_agree_with_its_jobs(demo):
    from production.dashboards import figures
    from production.dashboards.period import period_of_days

    now = timezone.now()
    period = period_of_days(history_start().date(), now.date(), now=now)
    board = figures.dashboard(figures.Scope(None), period, now=now)
    done = Job.objects.filter(status="done", finished_at__gte=period.start)
    # Every job of the history passed QC inside the period: throughput and lead times count
    # them all, from the same events.
    assert sum(row.jobs for row in board.throughput) == board.lead_times.jobs == done.count()
    assert board.lead_times.median_s is not None and board.lead_times.median_s > 0
    # The machines ran and stood idle with no work (the replay leaves none idle while work
    # waits), typed as machine_move types them.
    floor = board.oee.machines[-1]
    assert floor.run_s > 0 and floor.no_work_s > 0 and floor.waiting_s == 0
    assert 0 < (floor.utilisation or 0) < 1
    assert set(MachineEvent.objects.values_list("loss", flat=True)) <= {"", "no_work"}
