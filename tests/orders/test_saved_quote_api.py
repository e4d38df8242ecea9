"""The saved-quote API: create from lines, list, read, share, PDF, order at the held prices
(once, while valid), re-quote; every operation scoped to the caller's organisation."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from pypdf import PdfReader
from rest_framework.test import APIClient

from catalog.models import Material
from orders.models import Order, SavedQuote
from tests.builders import make_machine, make_organisation, make_part, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

GOOD = {"width": 20, "height": 10, "hole_d": 5}
LINE = {"part": "block", "parameters": GOOD, "material": "pla", "quantity": 2}


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def rival():
    return client_of(make_user("rival", organisation=make_organisation("rival"), role="approver"))


def test_a_quote_is_saved_from_lines_and_ordered_at_its_prices_once(api, settings):
    settings.MF_QUOTE_VALID_DAYS = 10
    created = api.post(
        "/api/v1/saved-quotes/", {"lines": [LINE], "reference": "WO-3"}, format="json"
    )
    assert created.status_code == 201, created.json()
    quote = created.json()
    assert quote["number"].startswith(f"Q-{timezone.localdate().year}-")
    assert quote["valid_until"] == (timezone.localdate() + timedelta(days=10)).isoformat()
    assert quote["valid"] is True and quote["order"] is None and quote["organisation"] == "acme"
    [line] = quote["lines"]
    assert (line["part"], line["quantity"], line["parameters"]) == ("block", 2, GOOD)
    assert api.get(f"/api/v1/saved-quotes/{quote['id']}/").json() == quote
    Material.objects.filter(slug="pla").update(price_per_kg=Decimal("500"))
    fresh = api.post("/api/v1/quotes/", LINE, format="json").json()["quote"]
    assert Decimal(fresh["total"]) > Decimal(line["price"])
    ordered = api.post(
        f"/api/v1/saved-quotes/{quote['id']}/order/", {"priority": "high"}, format="json"
    )
    assert ordered.status_code == 201, ordered.json()
    order = ordered.json()
    assert (order["lines"][0]["unit_price"], order["lines"][0]["price"]) == (
        line["unit_price"],
        line["price"],
    )
    assert order["total_price"] == quote["total_price"] and order["reference"] == "WO-3"
    again = api.post(f"/api/v1/saved-quotes/{quote['id']}/order/", {}, format="json")
    assert again.status_code == 409 and order["number"] in again.json()["message"]
    assert api.get(f"/api/v1/saved-quotes/{quote['id']}/").json()["order"] == order["id"]


def test_an_expired_quote_is_refused_and_can_be_quoted_again(api):
    quote = api.post("/api/v1/saved-quotes/", {"lines": [LINE]}, format="json").json()
    SavedQuote.objects.filter(pk=quote["id"]).update(
        valid_until=timezone.localdate() - timedelta(days=1)
    )
    refused = api.post(f"/api/v1/saved-quotes/{quote['id']}/order/", {}, format="json")
    assert refused.status_code == 409
    assert "its prices are no longer held" in refused.json()["message"]
    assert not Order.objects.exists()
    assert api.get(f"/api/v1/saved-quotes/{quote['id']}/").json()["valid"] is False
    requoted = api.post(f"/api/v1/saved-quotes/{quote['id']}/requote/")
    assert requoted.status_code == 201
    fresh = requoted.json()
    assert fresh["id"] != quote["id"] and fresh["valid"] is True
    assert fresh["lines"][0]["parameters"] == GOOD


def test_bad_lines_are_refused_with_each_lines_errors(api):
    response = api.post(
        "/api/v1/saved-quotes/",
        {"lines": [LINE, {**LINE, "parameters": {**GOOD, "hole_d": 19}}]},
        format="json",
    )
    assert response.status_code == 400
    assert "parameters" in response.json()["errors"]["lines"]["1"]
    assert api.post("/api/v1/saved-quotes/", {"lines": []}, format="json").status_code == 400
    assert not SavedQuote.objects.exists()


def test_the_pdf_and_sharing(api, user):
    quote = api.post("/api/v1/saved-quotes/", {"lines": [LINE]}, format="json").json()
    pdf = api.get(f"/api/v1/saved-quotes/{quote['id']}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert quote["number"] in text and quote["valid_until"] in text
    shared = api.post(f"/api/v1/saved-quotes/{quote['id']}/share/")
    assert shared.status_code == 200 and shared.json()["shared_by"] == user.username


def test_the_list_shows_only_the_own_organisations_quotes(api, rival):
    ours = api.post("/api/v1/saved-quotes/", {"lines": [LINE]}, format="json").json()
    theirs = rival.post("/api/v1/saved-quotes/", {"lines": [LINE]}, format="json").json()
    assert theirs["organisation"] == "rival"
    assert [q["id"] for q in api.get("/api/v1/saved-quotes/").json()["results"]] == [ours["id"]]
    assert [q["id"] for q in rival.get("/api/v1/saved-quotes/").json()["results"]] == [theirs["id"]]


def test_another_organisations_quote_is_a_404_on_every_operation(api, rival):
    quote = api.post("/api/v1/saved-quotes/", {"lines": [LINE]}, format="json").json()
    before = list(SavedQuote.objects.values_list("pk", "shared_at", "order").order_by("pk"))
    for method, path in (
        ("get", "/api/v1/saved-quotes/{id}/"),
        ("get", "/api/v1/saved-quotes/{id}/pdf/"),
        ("post", "/api/v1/saved-quotes/{id}/share/"),
        ("post", "/api/v1/saved-quotes/{id}/requote/"),
        ("post", "/api/v1/saved-quotes/{id}/order/"),
    ):
        response = getattr(rival, method)(path.format(id=quote["id"]), {}, format="json")
        assert response.status_code == 404, (path, response.status_code)
    assert list(SavedQuote.objects.values_list("pk", "shared_at", "order").order_by("pk")) == (
        before
    )
    assert not Order.objects.exists()
