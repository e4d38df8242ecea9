"""E-mails about orders (orders.notifications), as the services send them: queued when the
transaction that changed the order commits, then sent by the task's body (run here in the
test process, as a worker would: Django's test mail outbox holds what it sent).

The demo walk uses seed_demo's users and parts and takes an order through the real steps:
placing, approval, the pipeline (geometry, checks, G-code, traveler), the price check on the
built part, the router, the station (start, finish, measure, QC) and the follower that
completes the order.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from unittest.mock import patch

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from catalog.models import PartFamily
from catalog.parameters import defaults, parse_schema
from orders import tasks
from orders.models import Order, Status, Team
from orders.notifications import email_approvers, email_requester
from orders.services import (
    LineRequest,
    OrderRequest,
    order_approve,
    order_follow_jobs,
    order_place,
    order_price_confirm,
    order_reject,
    orders_follow_jobs,
)
from production import machines, runner, station
from production.models import Job
from tests.builders import make_machine, make_order, make_part, make_user
from tests.orders.helpers import join_team, make_team

pytestmark = pytest.mark.django_db

BLOCK = {"width": 20, "height": 10, "hole_d": 5}
# The built block (tests/orders/test_price_check.py): dearer than its envelope estimate.
BLOCK_VOLUME = 20 * 20 * 10 - 3.14159265 * 2.5**2 * 10
# What `make run` sets MF_SITE_URL to for PORT=8123: no request here, so links use it.
SITE = "http://127.0.0.1:8123"


@pytest.fixture(autouse=True)
def _site(settings) -> None:
    settings.SITE_URL = SITE


@contextmanager
def mails_on_commit(django_capture_on_commit_callbacks) -> Iterator[None]:
    """Run the block's transactions' on-commit callbacks; the e-mail tasks they queue are
    run at once (their bodies, as a worker would), the other tasks not at all (no broker)."""
    queued: list[tuple[Callable[[int], None], int]] = []

    def enqueue(task: Callable[[int], None]) -> Callable[..., None]:
        def apply_async(*, args: list[int], countdown: float | None = None) -> None:
            queued.append((task, *args))

        return apply_async

    with (
        patch.object(tasks.email_requester, "apply_async", enqueue(tasks.email_requester)),
        patch.object(tasks.email_approvers, "apply_async", enqueue(tasks.email_approvers)),
        patch("orders.tasks.deliver_webhook.apply_async"),
        patch("production.tasks.advance_job.apply_async"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            yield
        for task, order_id in queued:
            task(order_id)


def mails_to(address: str) -> list[mail.EmailMessage]:
    return [message for message in mail.outbox if address in message.to]


def test_an_order_of_the_demo_team_is_mailed_for_approval_and_on_completion(
    django_capture_on_commit_callbacks,
) -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    users = get_user_model().objects
    requester, approver = users.get(username="requester"), users.get(username="approver")
    operator = users.get(username="operator")
    assert requester.email == "requester@demo.example"
    assert approver.email == "approver@demo.example"
    # The team's policy: every order is approved first.
    Team.objects.filter(slug="line-maintenance").update(approval_threshold=Decimal("0.01"))
    revision = PartFamily.objects.get(slug="spacer").current_revision()
    line = LineRequest(
        part="spacer",
        parameters=defaults(parse_schema(revision.parameter_schema)),
        material="pla",
        quantity=1,
    )

    with mails_on_commit(django_capture_on_commit_callbacks):
        order, _ = order_place(user=requester, request=OrderRequest(lines=[line], reference="P-7"))
    assert order.status == Status.AWAITING_APPROVAL
    (asked,) = mail.outbox
    assert asked.to == ["approver@demo.example"]  # the team's approver, not the requester
    assert asked.subject == f"Order {order.number} needs your approval"
    assert f"{SITE}/orders/{order.pk}/" in asked.body and "approval threshold" in asked.body

    with mails_on_commit(django_capture_on_commit_callbacks):
        order_approve(order=order, user=approver)
    assert len(mail.outbox) == 1  # approving tells nobody

    # The worker's pipeline, then the followers (the price is checked on the built part).
    (job,) = Job.objects.filter(line__order=order)
    while runner.job_advance(job_id=job.pk, actor="test"):
        pass
    with mails_on_commit(django_capture_on_commit_callbacks):
        orders_follow_jobs(now=timezone.now())
    order.refresh_from_db()
    if order.status == Status.PRICE_CONFIRMATION:  # built, it costs more than the estimate
        assert {m.subject for m in mail.outbox[1:]} == {
            f"Order {order.number}: please confirm the new price",
            f"Order {order.number}: a new price to confirm",
        }
        with mails_on_commit(django_capture_on_commit_callbacks):
            order_price_confirm(order=order, user=approver)
    sent_before_completion = len(mail.outbox)
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    job.refresh_from_db()
    assert job.status == Job.Status.ROUTED, job.reason

    # At the station: start, finish, measure every check at its nominal size, pass QC.
    now = timezone.now()
    station.job_start(job_id=job.pk, operator=operator, now=now)
    station.job_finish(job_id=job.pk, operator=operator, now=now)
    checks = station.job_traveler(Job.objects.get(pk=job.pk), now=now).qc_checks
    values = {check.label: check.nominal_mm for check in checks}
    station.job_measure(job_id=job.pk, values=values, checks=checks, operator=operator, now=now)
    station.job_qc(job_id=job.pk, passed=1, scrapped=0, checks=checks, operator=operator, now=now)

    with mails_on_commit(django_capture_on_commit_callbacks):
        orders_follow_jobs(now=timezone.now())
    order.refresh_from_db()
    assert order.status == Status.COMPLETED
    (done,) = mail.outbox[sent_before_completion:]
    assert done.to == ["requester@demo.example"]
    assert done.subject == f"Order {order.number} is complete"
    assert f"{SITE}/orders/{order.pk}/" in done.body


@pytest.fixture
def team_order(user, organisation, django_capture_on_commit_callbacks):
    """An order of `user`'s team waiting for approval, with an approver in the team, a
    manager of the whole organisation and an approver of another team."""
    make_part("block")
    make_machine()
    user.email = "req@example.com"
    user.save()
    team = make_team(organisation, threshold="0.01")
    join_team(user, team)
    join_team(make_user("boss", organisation=organisation, role="approver"), team)
    make_user("chief", organisation=organisation, role="manager")
    other = make_team(organisation, slug="facilities")
    join_team(make_user("other", organisation=organisation, role="approver"), other)
    for username in ("boss", "chief", "other"):
        get_user_model().objects.filter(username=username).update(email=f"{username}@example.com")
    with mails_on_commit(django_capture_on_commit_callbacks):
        order = make_order(user=user, parameters=BLOCK)
    return order


def test_approval_is_asked_of_the_teams_approvers_and_the_organisations_managers(team_order):
    assert team_order.status == Status.AWAITING_APPROVAL
    (asked,) = mail.outbox
    assert sorted(asked.to) == ["boss@example.com", "chief@example.com"]
    assert "needs your approval" in asked.subject and team_order.number in asked.subject
    assert f"{SITE}/orders/{team_order.pk}/" in asked.body
    assert str(team_order.total_price) in asked.body


def test_a_rejected_order_is_mailed_to_its_requester_with_the_reason(
    team_order, django_capture_on_commit_callbacks
):
    boss = get_user_model().objects.get(username="boss")
    with mails_on_commit(django_capture_on_commit_callbacks):
        order_reject(order=team_order, user=boss, reason="use the stock part")
    rejected = mails_to("req@example.com")
    assert [m.subject for m in rejected] == [f"Order {team_order.number} was rejected"]
    assert "use the stock part" in rejected[0].body and SITE in rejected[0].body


def test_a_new_price_to_confirm_is_mailed_to_the_requester_and_the_approvers(
    team_order, django_capture_on_commit_callbacks
):
    boss = get_user_model().objects.get(username="boss")
    with mails_on_commit(django_capture_on_commit_callbacks):
        order_approve(order=team_order, user=boss)
    # The job built and measured its part: bigger than the estimate assumed.
    Job.objects.filter(line__order=team_order).update(
        dfm_report={"volume_mm3": BLOCK_VOLUME, "extents_mm": [20.0, 20.0, 10.0]},
        status=Job.Status.TRAVELER_READY,
    )
    mail.outbox.clear()
    with mails_on_commit(django_capture_on_commit_callbacks):
        order_follow_jobs(order_id=team_order.pk, now=timezone.now())
    team_order.refresh_from_db()
    assert team_order.status == Status.PRICE_CONFIRMATION
    to_requester = mails_to("req@example.com")
    to_approvers = mails_to("boss@example.com")
    assert [m.subject for m in to_requester] == [
        f"Order {team_order.number}: please confirm the new price"
    ]
    assert [m.subject for m in to_approvers] == [
        f"Order {team_order.number}: a new price to confirm"
    ]
    assert sorted(to_approvers[0].to) == ["boss@example.com", "chief@example.com"]
    for message in (*to_requester, *to_approvers):
        assert f"{SITE}/orders/{team_order.pk}/" in message.body
        assert "above the estimated" in message.body


def test_no_approval_mail_without_an_approver_address_or_once_decided(team_order, user):
    get_user_model().objects.filter(username__in=["boss", "chief"]).update(email="")
    assert not email_approvers(order_id=team_order.pk)
    assert not email_requester(order_id=team_order.pk)  # waiting: nothing for the requester
    Order.objects.filter(pk=team_order.pk).update(status=Status.CANCELLED)
    get_user_model().objects.filter(username="boss").update(email="boss@example.com")
    assert not email_approvers(order_id=team_order.pk)
