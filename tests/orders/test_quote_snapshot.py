"""Orders placed within MF_QUOTE_SNAPSHOT_S of each other share one reading of the machines
and the live queue (production.machines.machines_read_once), and each adds the jobs placed
since: the second order of a burst is promised what it would be on a fresh reading, without
reading the machines again (#19, points 6b and 8)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order
from production.machines import forget_quote_snapshot
from tests.builders import make_machine, make_order, make_part, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def user(settings):
    settings.MF_PROMISE_DEFAULT_SPREAD = 0.0  # the promise adds up on the estimates alone
    settings.MF_QUOTE_SNAPSHOT_S = 5
    forget_quote_snapshot()
    make_part("block")
    make_machine()
    yield make_user("req")
    forget_quote_snapshot()


def place(user, *, now) -> Order:
    return make_order(user=user, quantity=3, now=now)


def machine_reads(captured: CaptureQueriesContext) -> int:
    return sum('FROM "production_machine"' in q["sql"] for q in captured.captured_queries)


def test_the_next_order_of_a_burst_queues_behind_the_first_without_reading_the_machines(
    user, settings
):
    start = timezone.now()
    first = place(user, now=start)
    later = start + timedelta(seconds=1)
    # What the second order is promised on a fresh reading (then undone) ...
    settings.MF_QUOTE_SNAPSHOT_S = 0
    with transaction.atomic():
        fresh = place(user, now=later).promised_at
        transaction.set_rollback(True)
    # ... and on the first order's reading, with the first order's job added to its queue.
    settings.MF_QUOTE_SNAPSHOT_S = 5
    with CaptureQueriesContext(connection) as captured:
        second = place(user, now=later)
    assert machine_reads(captured) == 0
    assert first.promised_at is not None and fresh is not None
    # Behind the first order's three copies; the jobs read a second ago reach the router a
    # second sooner than on a fresh reading, at most.
    assert second.promised_at is not None and second.promised_at > first.promised_at
    assert abs((second.promised_at - fresh).total_seconds()) <= 1


def test_past_the_period_the_machines_are_read_again(user):
    start = timezone.now()
    place(user, now=start)
    with CaptureQueriesContext(connection) as captured:
        place(user, now=start + timedelta(seconds=5))
    assert machine_reads(captured) > 0
