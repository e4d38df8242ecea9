"""Dates and speed (orders.delivery): a needed-by date or as soon as possible, standard or
expedited delivery with what each costs and when it is promised; the promise kept on the
order and shown; an expedited order routed first by the real router; dates that cannot be
made refused with what can."""

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from orders.delivery import expedite_fee, needed_by_refusal, speed_options
from orders.models import Order
from orders.services import (
    IdempotencyConflict,
    LineRequest,
    OrderInvalid,
    OrderRequest,
    order_place,
)
from production import machines
from production.models import Artifact, Job, JobArtifact, Machine
from production.public import Promise
from tests.builders import make_machine, make_order, make_part
from tests.orders.test_order_api import GOOD_LINE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

HOUR = 3600.0
DAY = 24 * HOUR


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


@pytest.fixture(autouse=True)
def _promise_on_estimates(settings):
    """No jobs have run yet: the promise is the simulated finish on the estimates alone (no
    spread allowed for), so it adds up as the quote's lead time does."""
    settings.MF_PROMISE_DEFAULT_SPREAD = 0.0


def waiting_work(user, *, seconds: float) -> Job:
    """Another order's job still in the pipeline, planned at `seconds` of machine time: work a
    standard order waits behind and an expedited one does not."""
    job = make_order(user=user, parameters={"width": 30, "height": 12, "hole_d": 6}).lines.get()
    job = job.jobs.get()
    Job.objects.filter(pk=job.pk).update(toolpath_meta={"estimated_time_s": seconds})
    return job


def place(user, **fields) -> Order:
    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="block",
                    parameters={"width": 20, "height": 10, "hole_d": 5},
                    material="pla",
                    quantity=2,
                )
            ],
            **fields,
        ),
    )
    return order


# --- the arithmetic ------------------------------------------------------------------------


def test_the_expedite_fee_is_a_share_of_the_total_but_never_below_the_minimum():
    assert expedite_fee(Decimal("200.00"), percent=Decimal(25), minimum=Decimal(20)) == Decimal(
        "50.00"
    )
    assert expedite_fee(Decimal("12.00"), percent=Decimal(25), minimum=Decimal(20)) == Decimal(
        "20.00"
    )
    assert expedite_fee(Decimal("33.33"), percent=Decimal(10), minimum=Decimal(0)) == Decimal(
        "3.33"
    )


def promise(now: datetime, hours: float, *, expected_hours: float | None = None) -> Promise:
    return Promise(
        ready_at=now + timedelta(hours=hours),
        expected_at=now + timedelta(hours=hours if expected_hours is None else expected_hours),
        confidence=0.9,
        jobs_ahead=0,
        samples=0,
    )


def speeds_for(total: str, now: datetime, standard_h: float | None, expedited_h: float | None):
    return speed_options(
        Decimal(total),
        standard=None if standard_h is None else promise(now, standard_h),
        expedited=None if expedited_h is None else promise(now, expedited_h),
        now=now,
        percent=Decimal(25),
        minimum=Decimal(20),
        currency="EUR",
    )


def test_each_speed_is_promised_as_simulated_and_expedited_pays_the_fee():
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    speeds = speed_options(
        Decimal("100.00"),
        standard=promise(now, 7, expected_hours=6),
        expedited=promise(now, 3),
        now=now,
        percent=Decimal(25),
        minimum=Decimal(20),
        currency="EUR",
    )
    assert speeds.standard.lead_time_s == 7 * 3600 and speeds.standard.fee == 0
    assert speeds.standard.total == Decimal("100.00")
    assert speeds.standard.promised_at == now + timedelta(hours=7)
    assert speeds.standard.expected_at == now + timedelta(hours=6)
    assert speeds.standard.confidence == 0.9
    assert speeds.expedited.lead_time_s == 3 * 3600 and speeds.expedited.fee == Decimal("25.00")
    assert speeds.expedited.total == Decimal("125.00")
    assert speeds.expedited.promised_at == now + timedelta(hours=3)
    # Urgent is never promised later than standard.
    odd = speeds_for("100.00", now, 3, 5)
    assert odd.expedited.promised_at == odd.standard.promised_at == now + timedelta(hours=3)


def test_no_machine_taking_work_promises_nothing_and_refuses_no_date():
    speeds = speeds_for("40.00", datetime(2026, 12, 1, tzinfo=UTC), None, None)
    assert speeds.standard.promised_at is None and speeds.expedited.promised_at is None
    assert speeds.expedited.fee == Decimal("20.00")  # the price of speed is still known
    assert needed_by_refusal(needed_by=date(2026, 12, 1), expedite=False, quote=speeds) is None


def test_a_date_too_soon_says_what_can_make_it():
    now = timezone.make_aware(datetime(2026, 12, 1, 8, 0))
    speeds = speeds_for("40.00", now, 3 + 3 * 24, 3)
    tomorrow, later = date(2026, 12, 2), date(2026, 12, 4)
    offer = needed_by_refusal(needed_by=tomorrow, expedite=False, quote=speeds)
    assert offer == (
        "standard delivery is promised for 2026-12-04 11:00, after 2026-12-02: expedite it "
        "(+20.00 EUR, promised for 2026-12-01 11:00), or choose 2026-12-04 or later"
    )
    assert needed_by_refusal(needed_by=tomorrow, expedite=True, quote=speeds) is None
    assert needed_by_refusal(needed_by=later, expedite=False, quote=speeds) is None
    assert needed_by_refusal(needed_by=None, expedite=False, quote=speeds) is None
    # Before even the expedited promise: the earliest dates, expedited and standard.
    today_early = speeds_for("40.00", now, 20 + 3 * 24, 20)
    refusal = needed_by_refusal(needed_by=date(2026, 12, 1), expedite=False, quote=today_early)
    assert refusal is not None
    assert "the earliest possible is 2026-12-02 04:00 when expedited (+20.00 EUR)" in refusal
    assert "choose 2026-12-02 or later with expedite, or 2026-12-05 or later" in refusal
    assert needed_by_refusal(needed_by=date(2026, 12, 1), expedite=True, quote=today_early) == (
        "even expedited, the earliest possible is 2026-12-02 04:00: choose 2026-12-02 or later"
    )


# --- the quote shows both choices --------------------------------------------------------------


def test_the_quote_api_shows_standard_and_expedited_with_the_fee_and_promises(api, user, settings):
    settings.MF_EXPEDITE_FEE_PERCENT = Decimal(25)
    settings.MF_EXPEDITE_FEE_MIN = Decimal("1.00")
    waiting_work(user, seconds=2 * DAY)
    before = timezone.now()
    response = api.post("/api/v1/quotes/", GOOD_LINE, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    total = Decimal(body["quote"]["total"])
    standard, expedited = body["delivery"]["standard"], body["delivery"]["expedited"]
    assert body["delivery"]["currency"] == "EUR"
    assert Decimal(standard["fee"]) == 0 and Decimal(standard["total"]) == total
    fee = (total / 4).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(expedited["fee"]) == fee and Decimal(expedited["total"]) == total + fee
    # Expedited skips the two days of waiting work (one machine can take it); standard does not.
    assert expedited["lead_time_s"] == body["quote"]["lead_time_s"]
    # The waiting job runs as its quote's plate plan: its plate's setup once, then its copy.
    setup = settings.ORDER_QUOTE_RATES.plate_setup_s
    assert standard["lead_time_s"] == expedited["lead_time_s"] + 2 * DAY + setup
    promised = datetime.fromisoformat(expedited["promised_at"])
    assert promised >= before + timedelta(seconds=expedited["lead_time_s"] - 1)  # rounded
    assert datetime.fromisoformat(standard["promised_at"]) - promised == timedelta(
        days=2, seconds=setup
    )


def test_the_cart_shows_both_choices_with_the_fee_and_promised_dates(user, settings):
    settings.MF_EXPEDITE_FEE_MIN = Decimal("20.00")
    waiting_work(user, seconds=2 * DAY)
    browser = Client()
    browser.force_login(user)
    form = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}
    assert browser.post("/parts/block/add/", form).status_code == 302
    html = browser.get("/cart/").content.decode()
    speed = re.search(r'<fieldset id="delivery-speed">(.*?)</fieldset>', html, re.S).group(1)
    assert "Standard:" in speed and "Expedited:" in speed
    assert "(+20.00 expedite fee)" in speed  # a small order pays the minimum
    promised = re.findall(r"promised for <strong>(\d{4}-\d\d-\d\d \d\d:\d\d)</strong>", speed)
    assert len(promised) == 2 and promised[0] > promised[1]  # standard later than expedited
    assert 'id="speed-same"' not in speed


def test_with_nothing_waiting_the_cart_says_standard_is_as_fast(user):
    browser = Client()
    browser.force_login(user)
    form = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}
    browser.post("/parts/block/add/", form)
    html = browser.get("/cart/").content.decode()
    assert "standard is promised as soon as expedited" in html


# --- placing: the promise kept, shown, and dates refused -------------------------------------


def test_an_expedited_order_pays_the_fee_is_urgent_and_keeps_its_promise(api, user, settings):
    settings.MF_EXPEDITE_FEE_PERCENT = Decimal(25)
    settings.MF_EXPEDITE_FEE_MIN = Decimal("20.00")
    before = timezone.now()
    response = api.post("/api/v1/orders/", {"lines": [GOOD_LINE], "expedite": True}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get(pk=body["id"])
    line = order.lines.get()
    assert order.expedite and order.priority == Order.Priority.URGENT
    assert order.expedite_fee == Decimal("20.00") and order.total_price == line.price + Decimal(20)
    # Promised from the moment it was quoted, by the quoted lead time (no work waiting): the
    # simulated finish, to the second (the quote rounds its lead time to whole seconds).
    quoted_from = order.promised_at - timedelta(seconds=line.lead_time_s)
    assert before - timedelta(seconds=1) <= quoted_from <= order.placed_at
    assert body["expedite"] is True and body["expedite_fee"] == "20.00"
    assert datetime.fromisoformat(body["promised_at"].replace("Z", "+00:00")) == order.promised_at
    listed = api.get("/api/v1/orders/").json()["results"][0]
    assert listed["expedite"] is True and listed["promised_at"] == body["promised_at"]


def test_the_promised_date_is_stored_and_shown_on_the_order_page(user):
    waiting_work(user, seconds=DAY)
    before = timezone.now()
    standard = place(user, due_date=timezone.localdate() + timedelta(days=5))
    line = standard.lines.get()
    assert not standard.expedite and standard.expedite_fee == 0
    assert standard.total_price == line.price and standard.priority == Order.Priority.NORMAL
    # Standard waits behind the day of work not yet on a machine.
    assert standard.promised_at >= before + timedelta(seconds=line.lead_time_s - 1 + DAY)
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/orders/{standard.pk}/").content.decode()
    promise = re.search(r'<p id="order-promise">(.*?)</p>', page, re.S).group(1)
    shown = timezone.localtime(standard.promised_at).strftime("%Y-%m-%d %H:%M")
    assert "Standard delivery" in promise and f"promised for <strong>{shown}</strong>" in promise
    assert f"needed by {standard.due_date.isoformat()}" in promise


def test_a_needed_by_date_in_the_past_is_a_400_and_a_form_error(api, user):
    response = api.post(
        "/api/v1/orders/", {"lines": [GOOD_LINE], "due_date": "2001-01-01"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["due_date"][0].startswith("is in the past")
    browser = Client()
    browser.force_login(user)
    form = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}
    browser.post("/parts/block/add/", form)
    html = browser.post(
        "/cart/",
        {
            "idempotency_key": "x",
            "due_date": "2001-01-01",
            "priority": "normal",
            "speed": "expedited",
        },
    ).content.decode()
    assert 'id="due-date-errors"' in html and "is in the past" in html
    assert not Order.objects.exists()


def test_a_date_only_expedite_can_make_offers_expedite_and_the_earliest_date(api, user):
    waiting_work(user, seconds=4 * DAY)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    orders_before = Order.objects.count()
    refused = api.post(
        "/api/v1/orders/", {"lines": [GOOD_LINE], "due_date": tomorrow}, format="json"
    )
    assert refused.status_code == 400, refused.content
    (message,) = refused.json()["errors"]["due_date"]
    assert message.startswith("standard delivery is promised for ")
    assert "expedite it (+" in message and "or choose " in message
    assert Order.objects.count() == orders_before  # nothing placed
    placed = api.post(
        "/api/v1/orders/",
        {"lines": [GOOD_LINE], "due_date": tomorrow, "expedite": True},
        format="json",
    )
    assert placed.status_code == 201, placed.content
    assert placed.json()["due_date"] == tomorrow and placed.json()["expedite"] is True


def test_a_date_even_expedite_cannot_make_gives_the_earliest_on_the_page(user):
    # Three days of work already on the only machine: no speed makes tomorrow.
    busy = waiting_work(user, seconds=3 * DAY)
    Job.objects.filter(pk=busy.pk).update(
        status=Job.Status.ROUTED, machine=Machine.objects.get(slug="mk4-1")
    )
    browser = Client()
    browser.force_login(user)
    form = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}
    browser.post("/parts/block/add/", form)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = browser.post(
        "/cart/",
        {"idempotency_key": "y", "due_date": tomorrow, "priority": "normal", "speed": "expedited"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "even expedited, the earliest possible is " in html
    assert Order.objects.count() == 1  # only the busy job's order


def test_the_fingerprint_tells_an_expedited_retry_from_a_standard_one(user):
    key = "retry-17"
    first, created = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="block", parameters=GOOD_LINE["parameters"], material="pla", quantity=1
                )
            ],
            idempotency_key=key,
        ),
    )
    assert created
    with pytest.raises(IdempotencyConflict, match="already used for a different order"):
        order_place(
            user=user,
            request=OrderRequest(
                lines=[
                    LineRequest(
                        part="block", parameters=GOOD_LINE["parameters"], material="pla", quantity=1
                    )
                ],
                idempotency_key=key,
                expedite=True,
            ),
        )


# --- routing: expedite goes first through the real router ------------------------------------


def ready_to_route(order: Order) -> Job:
    """The order's job as the pipeline leaves it (traveler ready, G-code attached), its price
    settled: what the router takes."""
    job = order.lines.get().jobs.get()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.TRAVELER_READY,
        hold="",
        dfm_report={"extents_mm": [20, 20, 10]},
        toolpath_meta={"estimated_time_s": 600, "layers": 1},
    )
    gcode = b"G28\nM84\n"
    key = hashlib.sha256(gcode).hexdigest()
    artifact = Artifact.objects.filter(kind=Artifact.Kind.GCODE, input_key=key).first()
    if artifact is None:
        artifact = Artifact(kind=Artifact.Kind.GCODE, input_key=key, sha256=key, size=len(gcode))
        artifact.file.save("part.gcode", ContentFile(gcode), save=False)
        artifact.save()
    JobArtifact.objects.create(job=job, artifact=artifact, kind=Artifact.Kind.GCODE)
    return job


@pytest.mark.parametrize("standard_due_in_days", [None, 3])
def test_an_expedited_order_is_routed_before_an_earlier_standard_one(user, standard_due_in_days):
    """One machine with room for one job; the standard order came first (and may name a
    needed-by date), the expedited one names none: the router gives the expedited job the
    machine and the standard one waits."""
    Machine.objects.filter(slug="mk4-1").update(queue_limit=1)
    due = (
        None
        if standard_due_in_days is None
        else timezone.localdate() + timedelta(days=standard_due_in_days)
    )
    standard = ready_to_route(place(user, due_date=due))
    expedited = ready_to_route(place(user, expedite=True))
    assert standard.pk < expedited.pk  # by arrival alone, standard would go first
    routed = machines.jobs_route_waiting(now=timezone.now(), actor="test")
    assert routed == {expedited.pk: "mk4-1"}
    assert Job.objects.get(pk=standard.pk).status == Job.Status.TRAVELER_READY


def test_without_expedite_the_first_order_is_routed_first(user):
    """The control: two standard orders, the same machine, the first one takes it."""
    Machine.objects.filter(slug="mk4-1").update(queue_limit=1)
    first = ready_to_route(place(user))
    second = ready_to_route(place(user))
    assert machines.jobs_route_waiting(now=timezone.now(), actor="test") == {first.pk: "mk4-1"}
    assert Job.objects.get(pk=second.pk).status == Job.Status.TRAVELER_READY


def test_the_order_request_refuses_a_date_it_cannot_make_with_a_field_error(user):
    waiting_work(user, seconds=4 * DAY)
    with pytest.raises(OrderInvalid) as refused:
        place(user, due_date=timezone.localdate() + timedelta(days=1))
    assert list(refused.value.errors) == ["due_date"]
