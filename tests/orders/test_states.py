"""The order state machine: approvals, cancellation, following jobs to the end."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from microfactory.errors import DomainError
from orders.models import FINAL, TRANSITIONS, Order, OrderEvent, Status
from orders.services import (
    NotAllowed,
    OrderInvalid,
    order_approve,
    order_cancel,
    order_follow_jobs,
    order_reject,
)
from production.models import Job, Machine
from tests.builders import make_machine, make_order, make_part, make_user
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


@pytest.fixture
def team(organisation):
    return make_team(organisation, threshold="5.00")


@pytest.fixture
def approver(organisation, team):
    return join_team(make_user("boss", organisation=organisation, role="approver"), team)


def history(order, line=None):
    events = OrderEvent.objects.filter(order=order, line=line)
    return [(e.from_status, e.to_status, e.actor_label) for e in events]


def test_transitions_only_lead_forward_and_final_states_lead_nowhere():
    assert FINAL == {Status.COMPLETED, Status.CANCELLED, Status.REJECTED}
    assert all(not TRANSITIONS[s] for s in FINAL)
    assert Status.DRAFT not in {to for moves in TRANSITIONS.values() for to in moves}
    assert Status.IN_PRODUCTION not in TRANSITIONS[Status.AWAITING_APPROVAL]


def test_without_a_threshold_an_order_goes_straight_to_production(user):
    order = make_order(user=user)
    assert order.status == Status.IN_PRODUCTION
    assert history(order) == [
        ("draft", "submitted", "req"),
        ("submitted", "approved", "system"),
        ("approved", "in_production", "system"),
    ]
    line = order.lines.get()
    assert line.status == Status.IN_PRODUCTION and line.jobs.count() == 1
    assert [e[1] for e in history(order, line)] == ["submitted", "approved", "in_production"]


def test_the_quote_is_stored_with_the_line_and_the_order_total(user):
    order = make_order(user=user, quantity=3)
    line = order.lines.get()
    assert line.quote["quantity"] == 3 and Decimal(line.quote["total"]) == line.price
    assert order.total_price == line.price > 0
    assert line.lead_time_s and line.lead_time_s > 0


def test_an_order_over_the_team_threshold_waits_for_approval_without_jobs(user, team):
    join_team(user, team)
    order = make_order(user=user, quantity=20)
    assert order.total_price > Decimal("5")
    assert order.status == Status.AWAITING_APPROVAL
    assert not Job.objects.filter(line__order=order).exists()
    assert (
        "above Maintenance's approval threshold"
        in OrderEvent.objects.filter(order=order).last().reason
    )


def test_an_order_under_the_threshold_needs_no_approval(user, organisation):
    join_team(user, make_team(organisation, threshold="100000"))
    assert make_order(user=user).status == Status.IN_PRODUCTION


def test_approving_creates_the_jobs_and_records_the_approver(user, team, approver):
    join_team(user, team)
    order = make_order(user=user, quantity=20)
    order = order_approve(order=order, user=approver)
    assert order.status == Status.IN_PRODUCTION and order.decided_by == approver
    assert Job.objects.filter(line__order=order).count() == 1
    assert history(order)[-2:] == [
        ("awaiting_approval", "approved", "boss"),
        ("approved", "in_production", "boss"),
    ]


def test_a_second_approval_is_refused(user, team, approver):
    join_team(user, team)
    order = order_approve(order=make_order(user=user, quantity=20), user=approver)
    with pytest.raises(DomainError, match="not awaiting approval"):
        order_approve(order=order, user=approver)
    assert Job.objects.filter(line__order=order).count() == 1


def test_rejecting_needs_a_reason_and_ends_the_order(user, team, approver):
    join_team(user, team)
    order = make_order(user=user, quantity=20)
    with pytest.raises(OrderInvalid):
        order_reject(order=order, user=approver, reason="  ")
    order = order_reject(order=order, user=approver, reason="over budget this quarter")
    assert order.status == Status.REJECTED and order.reason == "over budget this quarter"
    assert order.lines.get().status == Status.REJECTED
    assert history(order)[-1] == ("awaiting_approval", "rejected", "boss")


@pytest.mark.parametrize("role", ["requester", "operator", "catalog_admin"])
def test_only_approvers_and_managers_decide(user, team, organisation, role):
    join_team(user, team)
    order = make_order(user=user, quantity=20)
    other = make_user(f"someone-{role}", organisation=organisation, role=role)
    with pytest.raises(NotAllowed):
        order_approve(order=order, user=other)


def test_nobody_approves_their_own_order(team, organisation):
    manager = join_team(make_user("mgr", organisation=organisation, role="manager"), team)
    order = make_order(user=manager, quantity=20)
    with pytest.raises(NotAllowed, match="someone else"):
        order_approve(order=order, user=manager)


def test_cancelling_before_any_machine_started_cancels_the_jobs(user):
    order = make_order(user=user, lines=2)
    order = order_cancel(order=order, user=user, reason="wrong size")
    assert order.status == Status.CANCELLED
    assert set(Job.objects.filter(line__order=order).values_list("status", flat=True)) == {
        "cancelled"
    }
    assert all(line.status == Status.CANCELLED for line in order.lines.all())
    job = Job.objects.filter(line__order=order).first()
    assert job.events.last().step == "cancel"


@pytest.mark.parametrize(
    "started", ["dispatched", "running", "paused", "awaiting_qc", "done", "scrapped"]
)
def test_an_order_cannot_be_cancelled_once_a_machine_started(user, started):
    order = make_order(user=user, lines=2)
    Job.objects.filter(pk=Job.objects.filter(line__order=order).first().pk).update(status=started)
    with pytest.raises(DomainError, match="a machine has started"):
        order_cancel(order=order, user=user)
    order.refresh_from_db()
    assert order.status == Status.IN_PRODUCTION
    assert Job.objects.filter(line__order=order, status="cancelled").count() == 0


def test_a_job_on_a_manual_machines_list_is_not_started_yet(user):
    order = make_order(user=user)
    machine = make_machine("manual-1")
    Job.objects.filter(line__order=order).update(status="dispatched", machine=machine)
    assert order_cancel(order=order, user=user).status == Status.CANCELLED
    networked = make_order(user=user)
    Machine.objects.filter(pk=machine.pk).update(connector="octoprint")
    Job.objects.filter(line__order=networked).update(status="dispatched", machine=machine)
    with pytest.raises(DomainError, match="a machine has started"):
        order_cancel(order=networked, user=user)


def test_a_final_order_cannot_be_cancelled(user):
    order = order_cancel(order=make_order(user=user), user=user)
    with pytest.raises(DomainError, match="can no longer be cancelled"):
        order_cancel(order=order, user=user)


def test_another_requester_of_the_organisation_cannot_cancel(user, organisation):
    order = make_order(user=user)
    with pytest.raises(NotAllowed):
        order_cancel(order=order, user=make_user("colleague", organisation=organisation))


def test_an_order_completes_when_its_jobs_made_every_part(user):
    order = make_order(user=user, lines=2)
    now = timezone.now()
    jobs = list(Job.objects.filter(line__order=order))
    Job.objects.filter(pk=jobs[0].pk).update(status="done")
    Job.objects.filter(pk=jobs[1].pk).update(status="awaiting_qc")
    order = order_follow_jobs(order_id=order.pk, now=now)
    assert order.status == Status.IN_PRODUCTION
    assert [line.status for line in order.lines.all()] == ["completed", "in_production"]
    Job.objects.filter(pk=jobs[1].pk).update(status="done")
    order = order_follow_jobs(order_id=order.pk, now=now + timedelta(seconds=1))
    assert order.status == Status.COMPLETED
    assert history(order)[-1] == ("in_production", "completed", "system")
    # Following again changes nothing.
    count = OrderEvent.objects.count()
    order_follow_jobs(order_id=order.pk, now=now + timedelta(seconds=2))
    assert OrderEvent.objects.count() == count


def test_an_order_whose_parts_cannot_be_made_is_rejected_with_the_reason(user):
    order = make_order(user=user)
    Job.objects.filter(line__order=order).update(status="rejected", reason="wall < 1.2 mm")
    order = order_follow_jobs(order_id=order.pk, now=timezone.now())
    assert order.status == Status.REJECTED
    assert "wall < 1.2 mm" in order.reason and "wall < 1.2 mm" in order.lines.get().reason


def test_a_failed_job_replaced_by_one_that_made_the_parts_completes_the_line(user):
    order = make_order(user=user)
    line = order.lines.get()
    failed = line.jobs.get()
    Job.objects.filter(pk=failed.pk).update(status="failed", reason="nozzle clog")
    Job.objects.create(
        line=line,
        quantity=line.quantity,
        status="done",
        replaces=failed,
        status_changed_at=timezone.now(),
    )
    assert order_follow_jobs(order_id=order.pk, now=timezone.now()).status == Status.COMPLETED


def test_copies_scrapped_at_qc_keep_the_line_open_until_remade(user):
    order = make_order(user=user, quantity=3)
    line = order.lines.get()
    first = line.jobs.get()
    Job.objects.filter(pk=first.pk).update(status="done", qc_passed=2, qc_scrapped=1)
    remake = Job.objects.create(
        line=line, quantity=1, status="queued", replaces=first, status_changed_at=timezone.now()
    )
    assert order_follow_jobs(order_id=order.pk, now=timezone.now()).status == Status.IN_PRODUCTION
    Job.objects.filter(pk=remake.pk).update(status="done", qc_passed=1)
    assert order_follow_jobs(order_id=order.pk, now=timezone.now()).status == Status.COMPLETED


def test_idempotency_keys_expire(user, settings):
    settings.ORDER_IDEMPOTENCY_KEY_TTL_H = 24
    first = make_order(user=user, key="k-1")
    Order.objects.filter(pk=first.pk).update(placed_at=timezone.now() - timedelta(hours=25))
    second = make_order(user=user, key="k-1")
    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.idempotency_key is None and second.idempotency_key == "k-1"
