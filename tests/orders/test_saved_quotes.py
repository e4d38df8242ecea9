"""Saved quotes: saved from the cart with a number and a validity date, shared with the
approvers, downloaded as a real PDF, ordered at the held prices while valid (and refused,
with a re-quote offered, once expired); another organisation's quote is a 404."""

import io
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from catalog.models import Material
from orders.carts import cart_add_line, cart_lines
from orders.models import Order, SavedQuote
from orders.quotes import line_facts, line_quote
from orders.saved_quotes import (
    QuoteExpired,
    QuoteOrdered,
    quote_order,
    quote_save,
    quote_share,
)
from orders.services import LineRequest, line_check
from tests.builders import make_machine, make_organisation, make_part, make_user
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

GOOD = {"width": 20, "height": 10, "hole_d": 5}
LINE = LineRequest(part="block", parameters=GOOD, material="pla", quantity=3)


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


@pytest.fixture
def team(organisation, user):
    team = make_team(organisation, slug="line-3", threshold=None)
    join_team(user, team)
    return team


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def at(day: str, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(f"{day}T{hour:02d}:00"))


def fresh_total(line: LineRequest) -> Decimal:
    return line_quote(line_facts(**line_check(line), now=timezone.now())).total


def test_the_cart_is_saved_as_a_numbered_quote_valid_for_the_setting_days(user, team, settings):
    settings.MF_QUOTE_VALID_DAYS = 7
    cart_add_line(user=user, line=LINE)
    cart_add_line(
        user=user, line=LineRequest(part="block", parameters=GOOD, material="pla", quantity=1)
    )
    client = browser(user)
    assert "Save quote" in client.get("/cart/").content.decode()
    response = client.post("/cart/save-quote/", {"reference": "WO-77"})
    quote = SavedQuote.objects.get()
    assert response["Location"] == f"/quotes/{quote.pk}/"
    assert re.fullmatch(rf"Q-{quote.created_at.year}-\d{{6}}", quote.number)
    assert quote.number.endswith(f"{quote.pk:06d}")
    assert quote.valid_until == timezone.localdate(quote.created_at) + timedelta(days=7)
    assert (quote.team, quote.created_by, quote.reference) == (team, user, "WO-77")
    lines = list(quote.lines.all())
    assert [(line.quantity, line.parameters, line.material.slug) for line in lines] == [
        (3, GOOD, "pla"),
        (1, GOOD, "pla"),
    ]
    assert all(
        line.unit_price > 0 and line.quote_json["total"] == str(line.price) for line in lines
    )
    assert quote.total_price == sum(line.price for line in lines)
    assert cart_lines(user=user) == []  # the lines moved into the quote
    page = client.get(f"/quotes/{quote.pk}/").content.decode()
    assert quote.number in page and quote.valid_until.isoformat() in page
    assert quote.number in client.get("/quotes/").content.decode()


def test_an_empty_cart_saves_no_quote(user):
    response = browser(user).post("/cart/save-quote/", follow=True)
    assert "the cart is empty" in response.content.decode()
    assert not SavedQuote.objects.exists()


def test_the_quote_pdf_is_a_real_pdf_with_number_validity_lines_team_and_requester(user, team):
    user.first_name, user.last_name = "Ana", "Fitter"
    user.save()
    quote = quote_save(user=user, lines=[LINE], reference="WO-12")
    response = browser(user).get(f"/quotes/{quote.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f'filename="{quote.number}.pdf"' in response["Content-Disposition"]
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    line = quote.lines.get()
    for expected in (
        quote.number,
        quote.valid_until.isoformat(),
        "Line-3",  # the team
        "Ana Fitter",  # the requester
        "WO-12",
        "Block",
        "Hole diameter: 5 mm",
        f"{line.unit_price} EUR",
        f"{quote.total_price} EUR",
    ):
        assert expected in text, expected


def test_the_price_is_held_until_the_validity_date_then_refused(user, team, settings):
    settings.MF_QUOTE_VALID_DAYS = 30
    saved_at = at("2026-11-02")
    quote = quote_save(user=user, lines=[LINE], now=saved_at)
    late = quote_save(user=user, lines=[LINE], now=saved_at)
    held = quote.lines.get()
    assert quote.valid_until.isoformat() == "2026-12-02"
    # Material got dearer since: a fresh quote costs more, the saved one does not.
    Material.objects.filter(slug="pla").update(price_per_kg=Decimal("250"))
    assert fresh_total(LINE) > held.price
    # The last valid day, late in the evening: the held prices.
    order = quote_order(quote=quote, user=user, reference="WO-1", now=at("2026-12-02", 23))
    line = order.lines.get()
    assert (line.unit_price, line.price, order.total_price) == (
        held.unit_price,
        held.price,
        quote.total_price,
    )
    assert line.quote["total"] == str(held.price)
    quote.refresh_from_db()
    assert quote.order == order and order.reference == "WO-1"
    # The day after: refused, and nothing is placed.
    with pytest.raises(QuoteExpired, match=r"expired on 2026-12-02.*Re-quote"):
        quote_order(quote=late, user=user, now=at("2026-12-03", 0))
    assert Order.objects.count() == 1
    # A quote is ordered once.
    with pytest.raises(QuoteOrdered, match=order.number):
        quote_order(quote=quote, user=user, now=at("2026-12-02", 23))


def test_the_quote_page_orders_at_held_prices_and_refuses_an_expired_quote(user, team):
    quote = quote_save(user=user, lines=[LINE])
    expired = quote_save(user=user, lines=[LINE])
    held = quote.lines.get()
    Material.objects.filter(slug="pla").update(price_per_kg=Decimal("250"))
    client = browser(user)
    form = {"reference": "WO-5", "priority": "high", "delivery_site": "north", "due_date": ""}
    first = client.post(f"/quotes/{quote.pk}/", form)
    order = Order.objects.get()
    assert first["Location"] == f"/orders/{order.pk}/"
    assert order.lines.get().unit_price == held.unit_price and order.priority == "high"
    again = client.post(f"/quotes/{quote.pk}/", form)  # a double click: the same order
    assert again["Location"] == f"/orders/{order.pk}/" and Order.objects.count() == 1
    # An expired quote: a clear refusal and a re-quote at today's prices.
    SavedQuote.objects.filter(pk=expired.pk).update(
        valid_until=timezone.localdate() - timedelta(days=1)
    )
    page = client.post(f"/quotes/{expired.pk}/", form).content.decode()
    assert "its prices are no longer held" in page and 'id="requote"' in page
    assert 'id="order-quote"' not in page and Order.objects.count() == 1
    response = client.post(f"/quotes/{expired.pk}/requote/")
    fresh = SavedQuote.objects.latest("pk")
    assert response["Location"] == f"/quotes/{fresh.pk}/" and fresh.pk != expired.pk
    assert fresh.total_price == fresh_total(LINE) > expired.total_price
    assert fresh.valid_until > timezone.localdate()


def test_a_shared_quote_is_listed_for_the_approvers(organisation, user, team):
    boss = join_team(make_user("boss", organisation=organisation, role="approver"), team)
    quote = quote_save(user=user, lines=[LINE])
    approvals = browser(boss).get("/approvals/").content.decode()
    assert quote.number not in approvals
    response = browser(user).post(f"/quotes/{quote.pk}/share/")
    assert response.status_code == 302
    quote.refresh_from_db()
    assert quote.shared_by == user and quote.shared_at is not None
    approvals = browser(boss).get("/approvals/").content.decode()
    assert quote.number in approvals and str(quote.total_price) in approvals
    # Another organisation's approver never sees it.
    rival = make_user("rival-boss", organisation=make_organisation("rival"), role="approver")
    assert quote.number not in browser(rival).get("/approvals/").content.decode()
    # Once ordered, it leaves the approvers' list.
    quote_order(quote=quote, user=boss)
    assert quote.number not in browser(boss).get("/approvals/").content.decode()


def test_another_organisations_quote_is_a_404_everywhere(user, team):
    quote = quote_share(quote=quote_save(user=user, lines=[LINE]), user=user)
    rival = browser(make_user("rival", organisation=make_organisation("rival"), role="approver"))
    for method, url in (
        ("get", f"/quotes/{quote.pk}/"),
        ("post", f"/quotes/{quote.pk}/"),
        ("get", f"/quotes/{quote.pk}/pdf/"),
        ("post", f"/quotes/{quote.pk}/share/"),
        ("post", f"/quotes/{quote.pk}/requote/"),
    ):
        assert getattr(rival, method)(url).status_code == 404, (method, url)
    assert quote.number not in rival.get("/quotes/").content.decode()
    assert SavedQuote.objects.count() == 1 and not Order.objects.exists()
    quote.refresh_from_db()
    assert quote.shared_by == user
