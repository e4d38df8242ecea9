"""Firm and estimated quotes, and the price check on the built part: an estimated line's job
is held from the router until its built part is priced again; a lower price is passed on, a
rise within MF_QUOTE_TOLERANCE is absorbed, a larger rise waits for the requester's (or an
approver's) confirmation, recorded with who and when, or is declined."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.estimator import GeometryEstimator, sample_configurations, variables_for
from catalog.estimator_fit import Sample, fit_estimator
from catalog.models import PartPreview, RevisionEstimator
from catalog.parameters import parse_rules, parse_schema
from catalog.previews import preview_key
from microfactory.errors import DomainError
from orders.models import Order, OrderEvent, OrderLine, Status
from orders.quoting import KEPT, PASSED_ON, TO_CONFIRM, price_change
from orders.services import (
    LineRequest,
    NotAllowed,
    line_check,
    order_cancel,
    order_follow_jobs,
    order_price_confirm,
    order_price_decline,
)
from production.machines import jobs_route_waiting
from production.models import Job
from tests.builders import make_machine, make_order, make_organisation, make_part, make_user
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

BLOCK = {"width": 20, "height": 10, "hole_d": 5}
BLOCK_VOLUME = 20 * 20 * 10 - 3.14159265 * 2.5**2 * 10  # the built block: 3,804 mm³


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


def build(order: Order, *, volume: float, extents=(20.0, 20.0, 10.0), traveler=True) -> Job:
    """The job built and measured its part (what the validation step stores), and made its
    traveler: it now waits for the router."""
    job = Job.objects.get(line__order=order)
    Job.objects.filter(pk=job.pk).update(
        dfm_report={"volume_mm3": volume, "extents_mm": list(extents)},
        status=Job.Status.TRAVELER_READY if traveler else Job.Status.VALIDATED,
    )
    return Job.objects.get(pk=job.pk)


def follow(order: Order) -> Order:
    order_follow_jobs(order_id=order.pk, now=timezone.now())
    return Order.objects.get(pk=order.pk)


def routed() -> dict[int, str]:
    return jobs_route_waiting(now=timezone.now(), actor="router")


def an_order_to_confirm(user) -> tuple[Order, Job]:
    order = make_order(user=user, parameters=BLOCK)
    job = build(order, volume=BLOCK_VOLUME)
    return follow(order), job


def test_a_quote_without_built_geometry_is_estimated_and_its_job_waits_for_the_price(user):
    order = make_order(user=user, parameters=BLOCK)
    line = order.lines.get()

    assert line.quote["firm"] is False and line.quote["geometry_basis"] == "envelope"
    assert line.price_check == OrderLine.PriceCheck.PENDING
    job = build(order, volume=BLOCK_VOLUME, traveler=True)
    assert job.hold and routed() == {}  # traveler ready, but held: no machine gets it


def test_a_quote_on_a_built_preview_is_firm_and_its_job_is_never_held(user):
    checked = line_check(LineRequest(part="block", parameters=BLOCK, material="pla", quantity=1))
    revision, parameters = checked["revision"], checked["parameters"]
    PartPreview.objects.create(
        key=preview_key(revision=revision, parameters=parameters),
        revision=revision,
        parameters=parameters,
        parameters_hash="x",
        engine="test",
        status=PartPreview.Status.READY,
        volume_mm3=BLOCK_VOLUME,
        bbox_mm=[20, 20, 10],
        queued_at=timezone.now(),
    )
    order = make_order(user=user, parameters=BLOCK)
    line = order.lines.get()

    assert line.quote["firm"] is True and line.price_check == OrderLine.PriceCheck.FIRM
    job = build(order, volume=BLOCK_VOLUME * 3)  # even a surprise changes nothing
    assert job.hold == "" and follow(order).status == Status.IN_PRODUCTION
    assert OrderLine.objects.get(pk=line.pk).price == line.price
    assert routed() == {job.pk: "mk4-1"}


def test_a_configuration_built_before_by_a_job_is_quoted_firm(user):
    first = make_order(user=user, parameters=BLOCK)
    build(first, volume=BLOCK_VOLUME)

    again = make_order(user=user, parameters=BLOCK).lines.get()

    assert again.quote["geometry_basis"] == "job" and again.quote["firm"] is True
    assert again.quote["volume_mm3"] == pytest.approx(BLOCK_VOLUME, rel=1e-6)


def test_the_revisions_fitted_estimator_is_used_before_the_envelope_guess(user):
    revision = line_check(LineRequest(part="block", parameters=BLOCK, material="pla", quantity=1))[
        "revision"
    ]
    specs, rules = parse_schema(revision.parameter_schema), parse_rules(revision.rules)

    def block(v: dict) -> Sample:
        volume = (v["width"] ** 2 - 3.14159265 * (v["hole_d"] / 2) ** 2) * v["height"]
        return Sample(v, volume, (v["width"], v["width"], v["height"]))

    samples = [block(v) for v in sample_configurations(specs, rules, seed="t", count=40)]
    fitted: GeometryEstimator = fit_estimator(variables_for(specs), samples)
    # Publishing queued the fit; a worker did it (here: the synthetic samples above).
    RevisionEstimator.objects.filter(revision=revision).update(
        status=RevisionEstimator.Status.READY, fitted=fitted.to_json()
    )

    line = make_order(user=user, parameters=BLOCK).lines.get()

    assert line.quote["geometry_basis"] == "estimator" and line.quote["firm"] is False
    assert line.quote["volume_mm3"] == pytest.approx(BLOCK_VOLUME, rel=1e-3)
    order = line.order
    build(order, volume=BLOCK_VOLUME)
    assert follow(order).status == Status.IN_PRODUCTION  # built as estimated: no question
    assert OrderLine.objects.get(pk=line.pk).price_check == OrderLine.PriceCheck.KEPT


def test_a_cheaper_built_part_passes_the_lower_price_on_and_releases_the_job(user):
    order = make_order(user=user, parameters=BLOCK)
    quoted = order.lines.get().price
    # Far less than the envelope guess (350 mm³), and no taller (5 mm).
    job = build(order, volume=10.0, extents=(20.0, 10.0, 5.0))

    order = follow(order)
    line = order.lines.get()

    assert line.price_check == OrderLine.PriceCheck.LOWERED
    assert line.quoted_price == quoted and line.price < quoted
    assert line.price == Decimal(line.built_quote["total"])
    assert order.total_price == line.price and order.status == Status.IN_PRODUCTION
    assert Job.objects.get(pk=job.pk).hold == "" and routed() == {job.pk: "mk4-1"}


def test_a_rise_within_the_tolerance_keeps_the_quoted_price(user, settings):
    settings.ORDER_QUOTE_TOLERANCE = 10.0 / 100
    order = make_order(user=user, parameters=BLOCK)
    line = order.lines.get()
    # The built part a little larger than quoted: 1 % more volume.
    build(order, volume=line.quote["volume_mm3"] * 1.01, extents=(20.0, 10.0, 5.0))

    order = follow(order)
    line = order.lines.get()

    assert line.price_check == OrderLine.PriceCheck.KEPT and line.quoted_price is None
    assert line.price == Decimal(line.quote["total"]) <= Decimal(line.built_quote["total"])
    assert order.status == Status.IN_PRODUCTION


def test_a_larger_rise_waits_for_a_confirmation_and_nothing_is_made_meanwhile(user):
    order, job = an_order_to_confirm(user)
    line = order.lines.get()

    assert order.status == Status.PRICE_CONFIRMATION
    assert line.status == Status.PRICE_CONFIRMATION
    assert line.price_check == OrderLine.PriceCheck.TO_CONFIRM
    assert Decimal(line.built_quote["total"]) > line.price  # the price itself is unchanged
    assert routed() == {} and Job.objects.get(pk=job.pk).hold
    event = order.events.last()
    assert (event.to_status, event.actor_label) == (Status.PRICE_CONFIRMATION, "system")
    assert "above the estimated" in event.reason and line.quote["total"] in event.reason
    assert follow(order).status == Status.PRICE_CONFIRMATION  # following again changes nothing


def test_confirming_applies_the_new_price_records_who_and_when_and_releases_the_job(user):
    order, job = an_order_to_confirm(user)
    quoted = order.lines.get().price
    at = timezone.now() + timedelta(minutes=3)

    order_price_confirm(order=order, user=user, now=at)

    order = Order.objects.get(pk=order.pk)
    line = order.lines.get()
    assert order.status == Status.IN_PRODUCTION and line.status == Status.IN_PRODUCTION
    assert line.price_check == OrderLine.PriceCheck.CONFIRMED
    assert (line.quoted_price, line.price) == (quoted, Decimal(line.built_quote["total"]))
    assert order.total_price == line.price
    assert (order.price_decided_by, order.price_decided_at) == (user, at)
    event = OrderEvent.objects.filter(order=order, line=None).last()
    assert (event.from_status, event.to_status, event.actor, event.at) == (
        Status.PRICE_CONFIRMATION,
        Status.IN_PRODUCTION,
        user,
        at,
    )
    assert f"{quoted} -> {line.price}" in event.reason
    assert routed() == {job.pk: "mk4-1"}
    with pytest.raises(DomainError, match="not awaiting a price confirmation"):
        order_price_confirm(order=order, user=user)


def test_declining_cancels_the_line_and_its_held_job_and_ends_the_order(user):
    order, job = an_order_to_confirm(user)

    order_price_decline(order=order, user=user, reason="too dear")

    order = Order.objects.get(pk=order.pk)
    line = order.lines.get()
    assert order.status == Status.CANCELLED and line.status == Status.CANCELLED
    assert line.price_check == OrderLine.PriceCheck.DECLINED
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert order.price_decided_by == user and order.total_price == 0
    assert OrderEvent.objects.filter(line=line, to_status=Status.CANCELLED, actor=user).exists()


def test_only_the_requester_or_a_decider_of_the_organisation_may_decide(user, organisation):
    order, _ = an_order_to_confirm(user)
    colleague = make_user("colleague", organisation=organisation)
    stranger = make_user("stranger", organisation=make_organisation("elsewhere"))

    with pytest.raises(NotAllowed):
        order_price_confirm(order=order, user=colleague)
    with pytest.raises(NotAllowed):
        order_price_decline(order=order, user=stranger)
    approver = make_user("boss", organisation=organisation, role="approver")
    order_price_confirm(order=order, user=approver)
    assert Order.objects.get(pk=order.pk).price_decided_by == approver


def test_above_the_approval_threshold_the_requester_cannot_confirm_alone(user, organisation):
    team = make_team(organisation, threshold="6.00")
    join_team(user, team)
    approver = join_team(make_user("boss", organisation=organisation, role="approver"), team)
    # Quoted under the threshold (approved at once), built over it.
    order = make_order(user=user, parameters=BLOCK)
    assert order.status == Status.IN_PRODUCTION and order.total_price < Decimal("6.00")
    build(order, volume=BLOCK_VOLUME * 20)
    order = follow(order)

    with pytest.raises(NotAllowed, match="only an approver or a manager"):
        order_price_confirm(order=order, user=user)
    order_price_confirm(order=order, user=approver)
    assert Order.objects.get(pk=order.pk).status == Status.IN_PRODUCTION


def test_an_order_awaiting_a_price_can_be_cancelled_whole(user):
    order, job = an_order_to_confirm(user)

    order_cancel(order=order, user=user, reason="no longer needed")

    assert Order.objects.get(pk=order.pk).status == Status.CANCELLED
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_the_api_confirms_and_declines_and_refuses_what_it_must(user, api):
    order, _ = an_order_to_confirm(user)
    other = APIClient()
    other.force_authenticate(make_user("outsider", organisation=make_organisation("elsewhere")))

    assert other.post(f"/api/v1/orders/{order.pk}/confirm-price/").status_code == 404
    detail = api.get(f"/api/v1/orders/{order.pk}/").json()
    assert detail["status"] == "price_confirmation"
    assert detail["lines"][0]["price_check"] == "to_confirm"
    assert detail["lines"][0]["built_quote"]["total"] > detail["lines"][0]["price"]
    response = api.post(f"/api/v1/orders/{order.pk}/confirm-price/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "in_production" and body["price_decided_by"] == "req"
    assert body["lines"][0]["price_check"] == "confirmed"
    again = api.post(f"/api/v1/orders/{order.pk}/decline-price/", {"reason": "x"})
    assert again.status_code == 409 and "not awaiting" in again.json()["message"]


def test_the_order_page_asks_for_the_confirmation(user, client):
    order, _ = an_order_to_confirm(user)
    client.force_login(user)

    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert 'id="price-confirmation"' in page and 'id="confirm-price"' in page
    response = client.post(f"/orders/{order.pk}/confirm-price/")
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == Status.IN_PRODUCTION


def test_the_quote_api_says_whether_a_quote_is_firm(api):
    body = api.post(
        "/api/v1/quotes/",
        {"part": "block", "parameters": BLOCK, "material": "pla", "quantity": 1},
        format="json",
    ).json()

    assert body["firm"] is False and body["quote"]["firm"] is False
    assert body["geometry"] == "envelope"


@pytest.mark.parametrize(
    ("built", "change"),
    [("9.99", PASSED_ON), ("10.00", KEPT), ("10.50", KEPT), ("10.51", TO_CONFIRM)],
)
def test_lower_is_passed_on_up_to_the_tolerance_is_kept_above_is_confirmed(built, change):
    assert price_change(quoted=Decimal("10.00"), built=Decimal(built), tolerance=0.05) == change


def test_the_requester_is_emailed_to_confirm_the_new_price(user):
    from django.core import mail

    from orders.notifications import email_requester

    user.email = "req@example.com"
    user.save()
    order, _ = an_order_to_confirm(user)

    assert email_requester(order_id=order.pk) is True
    (sent,) = mail.outbox
    assert "confirm the new price" in sent.subject and "above the estimated" in sent.body
