"""The dashboard's kept finished days (production.dashboards.cache): the figures served from
the cache equal those computed from the events, a change dated in a finished day is seen at
once, a change now keeps the finished days; and the period selector names from/to days."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from production import lifecycle
from production.dashboards import figures
from production.dashboards.cache import dashboard_generation
from production.dashboards.period import period_of_days
from production.lifecycle import By
from production.models import Job, Machine, MachineEvent
from tests.production.dashboard_scenario import DAY, HOUR, T0, at, build_floor

pytestmark = pytest.mark.django_db
ALL = figures.Scope(None)
LATER = T0 + timedelta(days=30)
# Five days around the scenario's, all ended long before LATER: every one is kept.
PERIOD = period_of_days(DAY - timedelta(days=2), DAY + timedelta(days=2), now=LATER)


@pytest.fixture
def floor(user):
    return build_floor(user)


def uncached() -> figures.Oee:
    cache.clear()
    return figures.oee(ALL, PERIOD)


def kept_keys() -> list[str]:
    return [key for key in cache._cache if ":dashboard:" in key and "generation" not in key]  # type: ignore[attr-defined]


def test_kept_days_give_the_same_figures_as_the_events(floor) -> None:
    first = uncached()
    sites = Machine.objects.values("site").distinct().count()
    assert len(kept_keys()) == sites * len(PERIOD.days)  # one entry per site and finished day
    # From the cache: the machine state changes are not read again.
    with CaptureQueriesContext(connection) as queries:
        again = figures.oee(ALL, PERIOD)
    assert not [q for q in queries.captured_queries if "machineevent" in q["sql"]]
    assert again == first
    assert figures.dashboard(ALL, PERIOD, now=LATER).oee == first


def test_a_period_ending_today_keeps_the_ended_days_and_computes_today(floor) -> None:
    now = at(15) + timedelta(days=1)  # in the afternoon of the day after the scenario's
    period = period_of_days(DAY - timedelta(days=1), DAY + timedelta(days=1), now=now)
    cache.clear()
    first = figures.oee(ALL, period)
    sites = Machine.objects.values("site").distinct().count()
    assert len(kept_keys()) == sites * 2  # the two ended days; today is never kept
    assert figures.oee(ALL, period) == first
    m1_today = [row for row in first.daily if row.machine == "M1"][-1]
    assert m1_today.planned_s == 15 * HOUR


def test_a_change_dated_in_a_finished_day_is_seen_at_once(floor) -> None:
    before = figures.oee(ALL, PERIOD)  # kept
    generation = dashboard_generation()
    m1 = Machine.objects.get(slug="m1")
    back = at(20) + timedelta(days=1)  # the evening after the scenario's day: long ended
    assert lifecycle.machine_move(m1, to=Machine.State.MAINTENANCE, actor="test", now=back)
    assert dashboard_generation() > generation
    after = figures.oee(ALL, PERIOD)
    assert after != before
    assert after == uncached()
    day = {row.day: row for row in after.daily if row.machine == "M1"}[DAY + timedelta(days=1)]
    assert day.down_s == 4 * HOUR


def test_a_machines_first_change_rewrites_its_past(floor) -> None:
    m3 = Machine.objects.get(slug="m3")
    assert not MachineEvent.objects.filter(machine=m3).exists()
    before = figures.oee(ALL, PERIOD)  # M3 idle throughout: its current state
    assert lifecycle.machine_move(m3, to=Machine.State.OFFLINE, actor="test", now=timezone.now())
    # A machine with no change up to the period's end is read as in its current state, now
    # offline: the kept days with it idle are not served.
    after = figures.oee(ALL, PERIOD)
    assert after == uncached()
    m3_before, m3_after = (
        {row.machine: row for row in oee.machines}["M3"] for oee in (before, after)
    )
    assert (m3_before.down_s, m3_after.down_s) == (0, len(PERIOD.days) * 24 * HOUR)


def test_a_change_now_keeps_the_finished_days(floor) -> None:
    figures.oee(ALL, PERIOD)
    generation, kept = dashboard_generation(), set(kept_keys())
    m1 = Machine.objects.get(slug="m1")
    assert lifecycle.machine_move(m1, to=Machine.State.IDLE, actor="test", now=timezone.now())
    assert dashboard_generation() == generation
    assert set(kept_keys()) == kept
    assert figures.oee(ALL, PERIOD) == uncached()


@pytest.mark.usefixtures("floor")
def test_the_period_selector_names_the_from_to_days(organisation, settings) -> None:
    from tests.builders import make_user

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client = Client()
    client.force_login(make_user("boss", organisation=organisation, role="manager"))
    html = client.get("/station/dashboard/?from=2026-11-01&to=2026-11-03").content.decode()
    assert '<option value="" selected>2026-11-01 to 2026-11-03</option>' in html
    assert "selected>last" not in html
    html = client.get("/station/dashboard/?days=7").content.decode()
    assert '<option value="7" selected>last 7 days</option>' in html
    assert '<option value="" selected>' not in html


def test_a_machine_added_after_the_days_were_kept_is_counted(floor) -> None:
    from tests.builders import make_machine

    figures.oee(ALL, PERIOD)  # kept without M4
    make_machine("m4")
    after = figures.oee(ALL, PERIOD)
    assert after == uncached()
    assert {row.machine for row in after.machines} >= {"M1", "M2", "M3"}
    assert len(after.machines) == 5  # four machines and the floor's total


# --- kept stage days (the job moves of each ended day) ---------------------------------------


def stage_queries(scope: figures.Scope, now) -> tuple[list[figures.StageRow], int]:
    with CaptureQueriesContext(connection) as queries:
        rows = figures.stages(scope, PERIOD, now=now)
    return rows, len([q for q in queries.captured_queries if "jobevent" in q["sql"]])


def stages_uncached(scope: figures.Scope, now) -> list[figures.StageRow]:
    cache.clear()
    return figures.stages(scope, PERIOD, now=now)


def test_kept_stage_days_give_the_same_figures_as_the_events(floor) -> None:
    now = timezone.now()
    site = figures.Scope((floor.m1.site_id,))
    for scope in (ALL, site):
        first = stages_uncached(scope, now)
        again, reads = stage_queries(scope, now)
        assert reads == 1  # today's moves only: every ended day since the period's start is kept
        assert again == first
    # The scenario's known answer, whichever way it was read: awaiting QC waited 4 h on its
    # day, and job C 10 minutes the day after.
    bottleneck = next(row for row in again if row.bottleneck)
    assert (bottleneck.status, bottleneck.waited_s) == ("awaiting_qc", 4 * HOUR + 600)


def test_a_job_of_an_ended_day_that_changes_site_is_counted_at_its_new_site(floor, user) -> None:
    from production.machines import machine_set_state
    from tests.builders import make_machine, make_site
    from tests.production.dashboard_scenario import _job

    north = figures.Scope((floor.m1.site_id,))
    south_site = make_site("south")
    south = figures.Scope((south_site.pk,))
    m9 = make_machine("m9", site=south_site)
    # Placed and routed to M1 on the scenario's day, long ended; still waiting there.
    job = _job(user, placed=at(15))
    assert lifecycle.job_move(
        job, to=Job.Status.ROUTED, by=By.ROUTER, step="route", actor="t", now=at(16),
        machine=floor.m1,
    )  # fmt: skip
    now = timezone.now()
    before = {scope: figures.stages(scope, PERIOD, now=now) for scope in (north, south)}
    routed = {row.status: row for row in before[north]}[Job.Status.ROUTED]

    # M1 goes down: the job goes back to be routed, at no site; its day counts at none.
    machine_set_state(machine_id=floor.m1.pk, state=Machine.State.MAINTENANCE, now=now, actor="t")
    job.refresh_from_db()
    assert (job.status, job.machine_id) == (Job.Status.TOOLPATH_READY, None)
    off = figures.stages(north, PERIOD, now=now)
    assert off == stages_uncached(north, now)
    assert {row.status: row for row in off}[Job.Status.TOOLPATH_READY].left == (
        {row.status: row for row in before[north]}[Job.Status.TOOLPATH_READY].left - 1
    )
    assert off != before[north]

    # Routed to the south: its past moves (placed, routed on the scenario's day) count there.
    figures.stages(south, PERIOD, now=now)  # kept without it
    assert lifecycle.job_move(
        job, to=Job.Status.ROUTED, by=By.ROUTER, step="route", actor="t", now=now, machine=m9
    )
    after = figures.stages(south, PERIOD, now=now)
    assert after == stages_uncached(south, now)
    assert {row.status: row for row in after}[Job.Status.TOOLPATH_READY].left == 1
    assert routed.jobs_now == 1  # it was waiting at M1 before


def test_a_job_routed_the_day_it_was_placed_keeps_the_kept_stage_days(floor, user) -> None:
    from production.dashboards.cache import site_generations
    from tests.builders import make_ready_job

    site_id = floor.m1.site_id
    generation = site_generations([site_id])
    job = make_ready_job(user=user)  # its events are of now
    now = timezone.now()
    assert lifecycle.job_move(
        job, to=Job.Status.ROUTED, by=By.ROUTER, step="route", actor="t", now=now,
        machine=floor.m1,
    )  # fmt: skip
    assert site_generations([site_id]) == generation


def test_a_machine_moved_to_another_site_in_the_admin_takes_its_jobs_past_along(
    floor, user
) -> None:
    from django.contrib import admin
    from django.test import RequestFactory

    from tests.builders import make_site

    south_site = make_site("south")
    north = figures.Scope((floor.m1.site_id,))
    before = figures.stages(north, PERIOD, now=timezone.now())
    model_admin = admin.site._registry[Machine]
    request = RequestFactory().post("/")
    request.user = user
    form_class = model_admin.get_form(request, floor.m3)
    shown = form_class(instance=floor.m3)  # the change page as the admin shows it
    data = {name: shown[name].value() for name in shown.fields}
    data = {name: value for name, value in data.items() if value is not None}
    form = form_class({**data, "site": south_site.pk}, instance=floor.m3, initial=shown.initial)
    assert form.is_valid(), form.errors
    model_admin.save_model(request, form.save(commit=False), form, change=True)
    # Job E ran on M3 on the scenario's day: it is no longer the north's.
    after = figures.stages(north, PERIOD, now=timezone.now())
    assert after == stages_uncached(north, timezone.now())
    assert after != before


def test_kept_scrap_days_give_the_same_figures_as_the_jobs(floor) -> None:
    """The scrap trend's ended days come from the cache (no query of the jobs), equal to the
    figure computed from the jobs; a period ending today computes today only."""
    site = figures.Scope((floor.m1.site_id,))
    for scope in (ALL, site):
        cache.clear()
        first = figures.scrap_trend(scope, PERIOD, now=LATER)
        assert first  # the scenario's QC verdicts
        with CaptureQueriesContext(connection) as queries:
            again = figures.scrap_trend(scope, PERIOD, now=LATER)
        assert not queries.captured_queries  # every day of the period has ended: all kept
        assert again == first
    now = at(15) + timedelta(days=1)  # the afternoon of the day after the scenario's
    period = period_of_days(DAY - timedelta(days=1), DAY + timedelta(days=1), now=now)
    cache.clear()
    first = figures.scrap_trend(ALL, period, now=now)
    with CaptureQueriesContext(connection) as queries:
        again = figures.scrap_trend(ALL, period, now=now)
    assert len(queries.captured_queries) == len(figures.SCRAP_DIMENSIONS)  # today's, per dimension
    assert again == first
