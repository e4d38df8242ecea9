"""The manager dashboard (production/dashboards): figures with known answers on a built day
(tests/production/dashboard_scenario.py), the page, its CSV, the API, who sees it, and its
query budget."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from production import lifecycle
from production.dashboards import figures
from production.dashboards.period import Period, period_of_days
from production.models import Job, Machine, MachineEvent
from tests.builders import make_machine, make_organisation, make_ready_job, make_site, make_user
from tests.production.dashboard_scenario import DAY, HOUR, T0, at, build_floor

pytestmark = pytest.mark.django_db
ALL = figures.Scope(None)
LATER = T0 + timedelta(days=30)  # "now" for the figures: long after the scenario
S = Job.Status


def shift(hours_from: float = 8, hours_to: float = 16) -> Period:
    """The 8 planned hours of 2026-11-02 (sites have no opening hours in these tests)."""
    return Period(DAY, DAY, at(hours_from), at(hours_to), T0.tzinfo)  # type: ignore[arg-type]


def by_machine(rows: list[figures.OeeRow]) -> dict[str, figures.OeeRow]:
    return {row.machine: row for row in rows}


@pytest.fixture
def floor(user):
    return build_floor(user)


@pytest.fixture
def manager(organisation):
    return make_user("boss", organisation=organisation, role="manager")


def test_one_machine_down_2_of_8_planned_hours_is_75_percent_available(floor) -> None:
    rows = by_machine(figures.oee(ALL, shift()).machines)
    m1 = rows["M1"]
    assert (m1.planned_s, m1.run_s, m1.down_s) == (8 * HOUR, 6 * HOUR, 2 * HOUR)
    assert m1.availability == pytest.approx(0.75)
    assert m1.utilisation == pytest.approx(0.75)
    # A: 4 copies x 1350 s = 1.5 h estimated, 2 h run; QC 3 passed, 1 scrapped.
    assert m1.performance == pytest.approx(0.75)
    assert m1.quality == pytest.approx(0.75)
    assert m1.oee == pytest.approx(0.75**3)


def test_each_loss_reason_is_counted_apart(floor) -> None:
    m2 = by_machine(figures.oee(ALL, shift()).machines)["M2"]
    hours = {
        name: getattr(m2, f"{name}_s") / HOUR
        for name in ("run", "paused", "material", "down", "no_work", "waiting", "failed")
    }
    assert hours == {
        "run": 3,
        "paused": 1,
        "material": 1,
        "down": 1,
        "no_work": 2,
        "waiting": 0,
        "failed": 1,  # F ran 12:00-13:00 and failed on it
    }
    # Stops (paused, material, down) 3 of 8 h; no work is no loss of the machine's.
    assert m2.availability == pytest.approx(5 / 8)
    assert m2.utilisation == pytest.approx(3 / 8)
    # B finished before the shift; nothing was judged in it for M2 but B's QC at 10:00.
    assert (m2.passed, m2.scrapped, m2.quality) == (1, 0, 1.0)


def test_a_machine_without_events_is_idle_with_no_work_and_has_no_oee(floor) -> None:
    m3 = by_machine(figures.oee(ALL, shift()).machines)["M3"]
    assert (m3.no_work_s, m3.run_s, m3.availability) == (8 * HOUR, 0, 1.0)
    assert m3.oee is None


def test_the_floors_total_adds_the_machines_up(floor) -> None:
    total = by_machine(figures.oee(ALL, shift()).machines)[figures.ALL_MACHINES]
    assert total.planned_s == 24 * HOUR
    assert total.run_s == 9 * HOUR
    assert total.availability == pytest.approx((24 - 2 - 3) / 24)


def test_days_and_weeks_split_the_machine_time(floor) -> None:
    period = period_of_days(DAY - timedelta(days=1), DAY + timedelta(days=1), now=LATER)
    oee = figures.oee(ALL, period)
    m1_days = {row.day: row for row in oee.daily if row.machine == "M1"}
    assert m1_days[DAY].planned_s == 24 * HOUR
    # Busy from 07:00 on 11-02, down 10:00-12:00, busy since: 15 h run that day, all the next.
    assert (m1_days[DAY].run_s, m1_days[DAY].down_s) == (15 * HOUR, 2 * HOUR)
    assert m1_days[DAY + timedelta(days=1)].run_s == 24 * HOUR
    m1_week = [row for row in oee.weekly if row.machine == "M1"]
    # 11-01 is a Sunday: two ISO weeks.
    assert [row.day for row in m1_week] == [date(2026, 10, 26), date(2026, 11, 2)]
    assert sum(row.planned_s for row in m1_week) == 72 * HOUR


def test_the_bottleneck_is_the_stage_with_the_most_waiting(floor) -> None:
    rows = {
        row.status: row
        for row in figures.stages(ALL, period_of_days(DAY, DAY, now=LATER), now=LATER)
    }
    assert rows[S.TOOLPATH_READY].waited_s == (30 + 5 + 10 + 10) * 60
    assert rows[S.TOOLPATH_READY].left == 4
    assert rows[S.ROUTED].waited_s == (30 + 30 + 30 + 50) * 60
    assert rows[S.AWAITING_QC].waited_s == 240 * 60
    assert rows[S.AWAITING_QC].left == 3
    assert rows[S.AWAITING_QC].mean_wait_s == 80 * 60
    assert [status for status, row in rows.items() if row.bottleneck] == [S.AWAITING_QC]
    # Running is not waiting, however long E ran.
    assert not rows[S.RUNNING].waiting and rows[S.RUNNING].waited_s > 240 * 60


def test_work_in_progress_counts_the_jobs_in_each_stage_now(floor, user) -> None:
    make_ready_job(user=user)
    rows = {
        row.status: row
        for row in figures.stages(ALL, period_of_days(DAY, DAY, now=LATER), now=LATER)
    }
    assert rows[S.TOOLPATH_READY].jobs_now == 1
    assert sum(row.jobs_now for row in rows.values()) == 1  # the others are done, failed, scrapped


def test_scrap_rate_per_day_by_material_part_and_machine(floor) -> None:
    period = period_of_days(DAY, DAY + timedelta(days=1), now=LATER)
    rows = [
        (r.day, r.by, r.name, r.passed, r.scrapped, r.rate)
        for r in figures.scrap_trend(ALL, period, now=LATER)
    ]
    nov3 = DAY + timedelta(days=1)
    assert (DAY, "material", "PLA", 4, 1, 0.2) in rows  # A 3+1, E 1
    assert (DAY, "material", "PETG", 1, 0, 0.0) in rows
    assert (nov3, "material", "PLA", 0, 2, 1.0) in rows  # C scrapped whole
    assert (DAY, "machine", "M1", 3, 1, 0.25) in rows
    assert (nov3, "machine", "M1", 0, 2, 1.0) in rows
    assert (DAY, "part", "Block", 5, 1, pytest.approx(1 / 6)) in rows


def test_lead_time_median_p90_and_on_time_rate(floor) -> None:
    lead = figures.lead_times(ALL, period_of_days(DAY, DAY + timedelta(days=1), now=LATER))
    assert lead.jobs == 3
    assert (lead.median_s, lead.p90_s) == (4 * HOUR, 8 * HOUR)
    assert (lead.judged, lead.on_time, lead.on_time_rate) == (2, 1, 0.5)


def test_throughput_per_day(floor) -> None:
    rows = figures.throughput(ALL, period_of_days(DAY, DAY + timedelta(days=1), now=LATER))
    assert [(r.day, r.jobs, r.parts) for r in rows] == [
        (DAY, 3, 5),
        (DAY + timedelta(days=1), 0, 0),
    ]


def test_a_move_to_a_state_infers_its_loss_and_a_named_loss_is_kept(user) -> None:
    machine = make_machine("mx")
    now = timezone.now()
    assert lifecycle.machine_move(machine, to=Machine.State.OFFLINE, actor="t", now=now)
    assert lifecycle.machine_move(machine, to=Machine.State.IDLE, actor="t", now=now)
    job = make_ready_job(user=user)
    Job.objects.filter(pk=job.pk).update(status=S.ROUTED, machine=machine)
    assert lifecycle.machine_move(machine, to=Machine.State.PAUSED, actor="t", now=now)
    assert lifecycle.machine_move(machine, to=Machine.State.IDLE, actor="t", now=now)
    assert lifecycle.machine_move(
        machine, to=Machine.State.PAUSED, actor="t", now=now, loss="material"
    )
    losses = list(MachineEvent.objects.filter(machine=machine).values_list("loss", flat=True))
    assert losses == ["down", "no_work", "paused", "waiting", "material"]
    with pytest.raises(Exception, match="unknown machine loss"):
        lifecycle.machine_move(machine, to=Machine.State.IDLE, actor="t", now=now, loss="lunch")


# --- the page, CSV, API, access ------------------------------------------------------------


@pytest.fixture
def _plain_static(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


QUERY = f"from={DAY:%Y-%m-%d}&to={DAY + timedelta(days=1):%Y-%m-%d}"


@pytest.mark.usefixtures("_plain_static")
def test_the_manager_page_shows_the_figures_and_the_bottleneck(floor, manager) -> None:
    client = Client()
    client.force_login(manager)
    page = client.get(f"/station/dashboard/?{QUERY}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="bottleneck"' in html and "awaiting QC" in html
    assert 'id="chart-oee"' in html and "vendor/chartjs/chart.umd.min.js" in html
    assert 'id="dashboard-data"' in html
    assert "format=csv&amp;figure=oee-daily" in html


def test_every_figure_downloads_as_csv(floor, manager) -> None:
    client = Client()
    client.force_login(manager)
    response = client.get(f"/station/dashboard/?{QUERY}&format=csv&figure=lead-times")
    assert response["Content-Type"].startswith("text/csv")
    assert "lead-times-2026-11-02_2026-11-03.csv" in response["Content-Disposition"]
    (row,) = csv.DictReader(io.StringIO(response.content.decode()))
    assert (row["median_s"], row["p90_s"], row["on_time_rate"]) == ("14400", "28800", "0.5")
    for name in ("stages", "oee-machines", "oee-daily", "oee-weekly", "scrap", "throughput"):
        response = client.get(f"/station/dashboard/?{QUERY}&format=csv&figure={name}")
        assert response.status_code == 200
        assert len(response.content.decode().splitlines()) > 1, name
    assert client.get(f"/station/dashboard/?{QUERY}&format=csv&figure=nope").status_code == 404


def test_the_api_gives_each_figure_and_documents_it(floor, manager) -> None:
    api = APIClient()
    api.force_authenticate(manager)
    body = api.get(f"/api/v1/dashboard/?{QUERY}").json()
    assert body["period"]["first_day"] == "2026-11-02"
    assert body["lead_times"]["median_s"] == 4 * HOUR
    assert [s["status"] for s in body["stages"] if s["bottleneck"]] == ["awaiting_qc"]
    oee = api.get("/api/v1/dashboard/oee/?from=2026-11-02&to=2026-11-02").json()
    m1 = next(row for row in oee["machines"] if row["machine"] == "M1")
    assert m1["down_s"] == 2 * HOUR and m1["day"] is None
    assert len(api.get(f"/api/v1/dashboard/scrap/?{QUERY}").json()) == 9
    assert api.get(f"/api/v1/dashboard/throughput/?{QUERY}").json()[0]["parts"] == 5
    assert api.get(f"/api/v1/dashboard/lead-times/?{QUERY}").json()["on_time"] == 1
    assert len(api.get(f"/api/v1/dashboard/stages/?{QUERY}").json()) == len(figures.STAGES)
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("", "stages/", "oee/", "scrap/", "lead-times/", "throughput/"):
        assert f'"/api/v1/dashboard/{path}"' in schema


@pytest.mark.parametrize(
    "query, status",
    [
        ("days=0", 400),
        ("days=many", 400),
        ("from=2026-11-05&to=2026-11-01", 400),
        ("from=yesterday", 400),
        ("from=2020-01-01&to=2026-01-01", 400),
        ("site=not-ours", 404),
    ],
)
def test_a_bad_period_or_site_is_refused_clearly(manager, query, status) -> None:
    make_site()  # the manager's factory runs a floor
    api = APIClient()
    api.force_authenticate(manager)
    response = api.get(f"/api/v1/dashboard/?{query}")
    assert response.status_code == status
    client = Client()
    client.force_login(manager)
    assert client.get(f"/station/dashboard/?{query}").status_code == status


def test_operators_and_customers_cannot_see_the_dashboard(organisation, user) -> None:
    operator = make_user("op", organisation=organisation, role="operator")
    for who in (operator, user):
        client = Client()
        client.force_login(who)
        assert client.get("/station/dashboard/").status_code == 403
        api = APIClient()
        api.force_authenticate(who)
        assert api.get("/api/v1/dashboard/").status_code == 403
    assert Client().get("/station/dashboard/").status_code == 302  # to the login page


def test_a_manager_sees_only_the_sites_of_their_factory(floor, manager) -> None:
    rival = make_organisation("rival")
    make_machine("theirs", site=make_site("south", operator=rival))
    api = APIClient()
    api.force_authenticate(manager)
    names = {
        row["machine"] for row in api.get(f"/api/v1/dashboard/oee/?{QUERY}").json()["machines"]
    }
    assert names == {"M1", "M2", "M3", figures.ALL_MACHINES}
    assert api.get("/api/v1/dashboard/?site=south").status_code == 404
    theirs = APIClient()
    theirs.force_authenticate(make_user("rival-boss", organisation=rival, role="manager"))
    body = theirs.get(f"/api/v1/dashboard/?{QUERY}").json()
    assert {row["machine"] for row in body["oee"]["machines"]} == {"THEIRS", figures.ALL_MACHINES}
    assert body["lead_times"]["jobs"] == 0


def _more_floor(user, machines: int) -> None:
    for n in range(machines):
        machine = make_machine(f"extra-{n}")
        job = make_ready_job(user=user)
        now = at(5, n)
        assert lifecycle.job_move(
            job, to=S.ROUTED, by=lifecycle.By.ROUTER, step="r", actor="t", now=now, machine=machine
        )
        assert lifecycle.machine_move(machine, to=Machine.State.BUSY, actor="t", now=now)


@pytest.mark.usefixtures("_plain_static")
def test_the_page_and_the_api_cost_the_same_queries_for_3_machines_or_9(
    floor, manager, user
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(manager)
    api = APIClient()
    api.force_authenticate(manager)

    def count(path: str, via: Client | APIClient) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert via.get(path).status_code == 200
        return len(captured)

    page, whole = (
        count(f"/station/dashboard/?{QUERY}", client),
        count(f"/api/v1/dashboard/?{QUERY}", api),
    )
    _more_floor(user, 6)
    assert count(f"/station/dashboard/?{QUERY}", client) == page
    assert count(f"/api/v1/dashboard/?{QUERY}", api) == whole
    assert page <= 25, page


def test_now_caps_the_period_so_time_to_come_is_not_planned(floor) -> None:
    now = at(12)
    period = period_of_days(DAY, DAY, now=now)
    assert period.end == now
    m1 = by_machine(figures.oee(ALL, period).machines)["M1"]
    assert m1.planned_s == 12 * HOUR


def test_planned_time_is_the_sites_opening_hours(floor) -> None:
    """The site open 08:00-16:00 on Mondays (2026-11-02 is one): over the whole day, M1 is
    planned 8 h, down 2 of them (10:00-12:00): 75 % available; its running outside the
    opening hours is not counted."""
    from datetime import time

    from production.models import SiteHours

    SiteHours.objects.create(site=floor.m1.site, weekday=0, opens=time(8), closes=time(16))
    period = period_of_days(DAY, DAY, now=LATER)
    m1 = by_machine(figures.oee(ALL, period).machines)["M1"]
    assert (m1.planned_s, m1.run_s, m1.down_s) == (8 * HOUR, 6 * HOUR, 2 * HOUR)
    assert m1.availability == pytest.approx(0.75)
