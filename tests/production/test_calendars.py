"""Opening hours and closures per site (#15, point 5) and the router's ETAs that wait for them."""

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from production import machines
from production.calendars import (
    NeverOpen,
    Shift,
    SiteCalendar,
    calendar_for_site,
    calendars_for_sites,
)
from production.models import Job, SiteClosure, SiteHours
from production.routing import JobNeeds, MachineFacts, choose, plan_routes
from tests.builders import make_machine, make_ready_job, make_site

WEEKDAYS_8_TO_16 = SiteCalendar(
    timezone="Europe/Berlin",
    shifts=tuple(Shift(day, time(8), time(16)) for day in range(5)),
)
# Thursday 3 December 2026, 12:00 UTC = 13:00 in Berlin (winter, UTC+1).
THURSDAY_NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in December 2026, UTC."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_a_site_without_hours_is_always_open():
    calendar = SiteCalendar()
    assert calendar.always_open
    assert calendar.next_open(THURSDAY_NOON) == THURSDAY_NOON
    assert calendar.open_seconds(at(3, 0), at(4, 0)) == 24 * 3600


def test_shifts_are_read_in_the_sites_time_zone():
    # 08:00-16:00 Berlin is 07:00-15:00 UTC in December.
    assert WEEKDAYS_8_TO_16.open_intervals(at(3, 0), at(4, 0)) == [(at(3, 7), at(3, 15))]
    assert WEEKDAYS_8_TO_16.is_open(at(3, 14, 59))
    assert not WEEKDAYS_8_TO_16.is_open(at(3, 15))


def test_next_open_skips_the_night_and_the_weekend():
    friday_evening = at(4, 18)
    assert WEEKDAYS_8_TO_16.next_open(friday_evening) == at(7, 7)  # Monday 08:00 Berlin
    assert WEEKDAYS_8_TO_16.next_open(at(3, 9)) == at(3, 9)  # open now: now


def test_a_week_of_open_time_is_forty_hours():
    assert WEEKDAYS_8_TO_16.open_seconds(at(7, 0), at(14, 0)) == 40 * 3600


def test_an_overnight_shift_runs_into_the_next_day():
    nights = SiteCalendar(shifts=(Shift(0, time(22), time(6)),))  # Monday 22:00 to Tuesday 06:00
    assert nights.open_intervals(at(7, 0), at(9, 0)) == [(at(7, 22), at(8, 6))]
    assert nights.is_open(at(8, 5))  # still Monday's shift on Tuesday morning
    whole_day = SiteCalendar(shifts=(Shift(2, time(0), time(0)),))
    assert whole_day.open_seconds(at(9, 0), at(10, 0)) == 24 * 3600  # a Wednesday


def test_closures_cut_open_time_whatever_the_hours():
    holiday = (at(24, 23), at(27, 7))  # Christmas, Friday 25th (and Saturday, Sunday) closed
    calendar = replace(WEEKDAYS_8_TO_16, closures=(holiday,))
    assert calendar.open_seconds(at(21, 0), at(28, 0)) == 4 * 8 * 3600
    assert calendar.next_open(at(24, 16)) == at(28, 7)
    # A closure on a site without hours closes it too.
    assert SiteCalendar(closures=(holiday,)).next_open(at(25, 12)) == at(27, 7)


def test_daylight_saving_time_moves_the_shift_in_utc():
    summer = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)  # Berlin is UTC+2 in July
    (opening,) = WEEKDAYS_8_TO_16.open_intervals(summer, summer + timedelta(days=1))
    assert opening == (summer.replace(hour=6), summer.replace(hour=14))


def test_a_job_starts_when_the_site_opens_and_runs_unattended_to_its_end():
    start, finish = WEEKDAYS_8_TO_16.start_and_finish(at(3, 20), 10 * 3600)
    assert start == at(4, 7)
    assert finish == at(4, 17)  # past closing: a print does not stop at 16:00


def test_people_work_counts_open_time_only():
    # Thursday 15:50 Berlin: 10 minutes before closing; 40 minutes of work end at 08:30 Friday.
    assert WEEKDAYS_8_TO_16.after_open_seconds(at(3, 14, 50), 40 * 60) == at(4, 7, 30)
    # Friday 15:50: 30 minutes over the weekend, on Monday.
    assert WEEKDAYS_8_TO_16.after_open_seconds(at(4, 14, 50), 40 * 60) == at(7, 7, 30)
    # Started at night: from the opening; within a shift: straight on.
    assert WEEKDAYS_8_TO_16.after_open_seconds(at(3, 2), 600) == at(3, 7, 10)
    assert WEEKDAYS_8_TO_16.after_open_seconds(at(3, 9), 600) == at(3, 9, 10)
    # Two full days' work (16 h) from Thursday's opening end at Friday's closing.
    assert WEEKDAYS_8_TO_16.after_open_seconds(at(3, 7), 16 * 3600) == at(4, 15)
    assert SiteCalendar().after_open_seconds(at(3, 23), 3600) == at(4, 0)
    assert WEEKDAYS_8_TO_16.after_open_seconds(at(5, 12), 0) == at(5, 12)  # nothing to do
    with pytest.raises(NeverOpen):
        SiteCalendar(closures=((at(1, 0), at(1, 0) + timedelta(days=400)),)).after_open_seconds(
            at(3, 12), 60
        )


def test_a_site_that_never_opens_is_refused_by_name():
    closed = SiteCalendar(closures=((at(1, 0), at(1, 0) + timedelta(days=400)),))
    with pytest.raises(NeverOpen, match="not open on any day"):
        closed.next_open(at(2, 0))


# --- the router --------------------------------------------------------------------------------

NEEDS = JobNeeds(process="fdm", material="pla", extents_mm=(20, 20, 10), estimated_time_s=3600)


def facts(key: str, *, calendar: SiteCalendar | None = None, eta_s: float = 0.0) -> MachineFacts:
    return MachineFacts(
        key=key,
        name=key,
        site=key,
        model="MK4",
        process="fdm",
        state="idle",
        build_volume_mm=(250, 210, 220),
        nozzle_mm=0.4,
        flavour="marlin",
        materials=frozenset({"pla"}),
        queue_eta_s=eta_s,
        calendar=calendar,
    )


def test_the_router_counts_the_wait_for_a_closed_site():
    friday_evening = at(4, 18)
    closed_now = facts("berlin", calendar=WEEKDAYS_8_TO_16)
    busy_but_open = facts("night-shift", eta_s=5 * 3600)
    choice = choose(NEEDS, [closed_now, busy_but_open], now=friday_evening)
    assert choice.machine.key == "night-shift"
    assert choice.finish_s == 6 * 3600
    # On a Thursday at noon the Berlin site is open and idle: it wins.
    choice = choose(NEEDS, [closed_now, busy_but_open], now=THURSDAY_NOON)
    assert (choice.machine.key, choice.finish_s) == ("berlin", 3600)


def test_a_plan_queues_jobs_past_closing_onto_the_next_opening():
    late = at(3, 14, 30)  # 15:30 Berlin: one job starts, the next waits for Friday 08:00
    two = [replace(NEEDS, key="1"), replace(NEEDS, key="2")]
    plan = plan_routes(two, [facts("berlin", calendar=WEEKDAYS_8_TO_16)], late)
    assert plan == {"1": "berlin", "2": "berlin"}


# --- from the database -------------------------------------------------------------------------


@pytest.mark.django_db
def test_calendars_are_read_in_three_queries_whatever_the_number_of_sites():
    sites = [make_site(f"s{i}") for i in range(4)]
    for site in sites:
        site.timezone = "Europe/Berlin"
        site.save()
        SiteHours.objects.create(site=site, weekday=0, opens=time(8), closes=time(16))
        SiteClosure.objects.create(site=site, starts_at=at(24, 23), ends_at=at(27, 7))
    with CaptureQueriesContext(connection) as queries:
        calendars = calendars_for_sites(s.pk for s in sites)
    assert len(queries) == 3
    assert calendars[sites[0].pk].shifts == (Shift(0, time(8), time(16)),)
    assert calendars[sites[0].pk].closures == ((at(24, 23), at(27, 7)),)
    assert calendar_for_site(sites[1].pk).timezone == "Europe/Berlin"


@pytest.mark.django_db
def test_a_site_time_zone_must_be_a_real_zone():
    site = make_site("x")
    site.timezone = "Mars/Olympus"
    with pytest.raises(ValidationError, match="not a time zone"):
        site.full_clean()


@pytest.mark.django_db
def test_routing_facts_carry_the_calendar_of_sites_with_hours_only():
    open_site, shop = make_site("always"), make_site("shop")
    SiteHours.objects.create(site=shop, weekday=0, opens=time(8), closes=time(16))
    make_machine("a", site=open_site)
    make_machine("b", site=shop)
    by_key = {f.key: f for f in machines.routing_facts()}
    assert by_key["a"].calendar is None
    calendar = by_key["b"].calendar
    assert calendar is not None and calendar.shifts == (Shift(0, time(8), time(16)),)


@pytest.mark.django_db
def test_a_queued_job_not_started_waits_for_the_opening_in_the_queue_eta(user):
    shop = make_site("shop")
    SiteHours.objects.create(site=shop, weekday=0, opens=time(8), closes=time(16))  # Mondays
    printer = make_machine("mk4-1", site=shop)
    job = make_ready_job(user=user, estimated_time_s=600)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.ROUTED, machine=printer)
    calendar = calendar_for_site(shop.pk)
    queues = machines.machine_queues(calendars={printer.pk: calendar}, now=THURSDAY_NOON)
    monday_eight_utc = at(7, 8)  # the site's zone is UTC
    assert queues[printer.pk].eta_s == (monday_eight_utc - THURSDAY_NOON).total_seconds() + 600
    # Without calendars the queue is its minutes of work.
    assert machines.machine_queues(now=THURSDAY_NOON)[printer.pk].eta_s == 600
