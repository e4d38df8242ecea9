"""The dashboard's promise accuracy (#15.3): orders with a promised time, judged by when their
last job passed QC, on the scenario's day (tests/production/dashboard_scenario.py): A was
promised for 09:00 and passed at 09:30 (30 min late); B, here promised for 11:00, passed at
10:00 (an hour early); E has no promise."""

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from orders.models import Order
from production.dashboards import figures
from production.dashboards.period import period_of_days
from tests.builders import make_machine, make_organisation, make_site, make_user
from tests.production.dashboard_scenario import DAY, T0, at, build_floor

pytestmark = pytest.mark.django_db
ALL = figures.Scope(None)
LATER = T0 + timedelta(days=30)
QUERY = f"from={DAY:%Y-%m-%d}&to={DAY:%Y-%m-%d}"


@pytest.fixture
def floor(user):
    floor = build_floor(user)
    Order.objects.filter(pk=floor.b.line.order_id).update(promised_at=at(11))
    orders = [job.line.order_id for job in (floor.a, floor.b, floor.e, floor.c)]
    Order.objects.filter(pk__in=orders).update(status=Order.Status.COMPLETED)
    return floor


@pytest.fixture
def manager(organisation):
    return make_user("boss", organisation=organisation, role="manager")


def test_promises_kept_and_the_median_error(floor) -> None:
    row = figures.promises(ALL, period_of_days(DAY, DAY, now=LATER))
    assert (row.orders, row.kept, row.kept_share) == (2, 1, 0.5)
    assert row.median_late_s == 30 * 60
    assert row.median_error_s == (30 * 60 - 60 * 60) / 2  # between 30 min late and 1 h early


def test_an_order_is_judged_in_the_period_its_last_job_passed(floor) -> None:
    # A second job of A's order passes the next day: A is judged then, no longer on 11-02.
    from production.models import Job

    second = Job.objects.get(pk=floor.a.pk)
    second.pk = None
    second.save()
    Job.objects.filter(pk=second.pk).update(status_changed_at=at(8, day=1))  # not the clock's
    on_the_day = figures.promises(ALL, period_of_days(DAY, DAY, now=LATER))
    assert (on_the_day.orders, on_the_day.kept) == (1, 1)  # B alone
    next_day = period_of_days(DAY + timedelta(days=1), DAY + timedelta(days=1), now=LATER)
    late = figures.promises(ALL, next_day)
    assert (late.orders, late.kept, late.median_late_s) == (1, 0, 23 * 3600)


def test_orders_not_completed_or_made_at_another_factory_are_not_judged(floor) -> None:
    Order.objects.filter(pk=floor.b.line.order_id).update(status=Order.Status.IN_PRODUCTION)
    rival = make_organisation("rival")
    theirs = figures.Scope(
        (make_machine("theirs", site=make_site("south", operator=rival)).site_id,)
    )
    period = period_of_days(DAY, DAY, now=LATER)
    assert figures.promises(ALL, period).orders == 1  # A
    assert figures.promises(theirs, period) == figures.PromiseRow(0, 0, None, None, None)


@pytest.mark.usefixtures("_plain_static")
def test_the_page_the_csv_and_the_api_show_promise_accuracy(floor, manager) -> None:
    client = Client()
    client.force_login(manager)
    html = client.get(f"/station/dashboard/?{QUERY}").content.decode()
    # Words and numbers, no colour needed to read it.
    assert '<b id="promises-kept">1 of 2 orders (50 %)</b>' in html
    assert '<b id="promises-error">15 min early</b>' in html
    assert '<b id="promises-late">30 min late</b>' in html
    response = client.get(f"/station/dashboard/?{QUERY}&format=csv&figure=promises")
    (row,) = csv.DictReader(io.StringIO(response.content.decode()))
    assert row == {
        "orders": "2",
        "kept": "1",
        "kept_share": "0.5",
        "median_late_s": "1800",
        "median_error_s": "-900",
    }
    api = APIClient()
    api.force_authenticate(manager)
    body = api.get(f"/api/v1/dashboard/promises/?{QUERY}").json()
    assert body == {
        "orders": 2,
        "kept": 1,
        "kept_share": 0.5,
        "median_late_s": 1800.0,
        "median_error_s": -900.0,
    }
    assert api.get(f"/api/v1/dashboard/?{QUERY}").json()["promises"] == body
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert '"/api/v1/dashboard/promises/"' in schema


@pytest.fixture
def _plain_static(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
