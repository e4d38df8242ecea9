"""Searching an organisation's orders, on the orders page and through the API's list: by
words (order number, reference, part name), part, status, requester and date placed. Bad
parameters are a 400 naming them (API) or form errors (page)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, Status
from orders.search import SEARCH_FIELDS
from tests.builders import (
    make_machine,
    make_material,
    make_order,
    make_organisation,
    make_part,
    make_user,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def orders(user, organisation):
    """Three of ours (a block for WO-PUMP-7 ten days ago, a cancelled washer, a block placed
    by a colleague) and one of a rival's, a block too."""
    make_part("block")
    washer = make_part("washer", materials=[make_material("pla")])
    washer.family.name = "Spring washer"
    washer.family.save(update_fields=["name"])
    make_machine()
    old = make_order(user=user)
    Order.objects.filter(pk=old.pk).update(
        reference="WO-PUMP-7", placed_at=timezone.now() - timedelta(days=10)
    )
    cancelled = make_order(user=user, part="washer")
    Order.objects.filter(pk=cancelled.pk).update(status=Status.CANCELLED)
    colleague = make_order(user=make_user("colleague", organisation=organisation))
    theirs = make_order(user=make_user("rival", organisation=make_organisation("rival")))
    Order.objects.filter(pk=theirs.pk).update(reference="WO-PUMP-7")
    return old, cancelled, colleague


def ids(api, query):
    response = api.get(f"/api/v1/orders/?{query}")
    assert response.status_code == 200, response.content
    return [order["id"] for order in response.json()["results"]]


def test_orders_are_found_by_part(api, orders):
    old, cancelled, colleague = orders
    assert ids(api, "part=washer") == [cancelled.pk]
    assert ids(api, "part=spring") == [cancelled.pk]  # a word of its name
    assert ids(api, "part=block") == [colleague.pk, old.pk]
    assert ids(api, "part=gear") == []


def test_orders_are_found_by_status(api, orders):
    old, cancelled, colleague = orders
    assert ids(api, "status=cancelled") == [cancelled.pk]
    assert ids(api, "status=in_production") == [colleague.pk, old.pk]
    assert ids(api, "status=cancelled,in_production") == [colleague.pk, cancelled.pk, old.pk]


def test_orders_are_found_by_date_placed(api, orders):
    old, cancelled, colleague = orders
    five_days_ago = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert ids(api, f"placed_before={five_days_ago}") == [old.pk]
    assert ids(api, f"placed_after={five_days_ago}") == [colleague.pk, cancelled.pk]
    moment = (timezone.now() - timedelta(days=11)).isoformat().replace("+00:00", "Z")
    assert ids(api, f"placed_after={moment}&placed_before={five_days_ago}") == [old.pk]


def test_orders_are_found_by_words_number_reference_and_requester(api, orders):
    old, cancelled, colleague = orders
    assert ids(api, "q=pump") == [old.pk]  # the rival's WO-PUMP-7 stays theirs
    assert ids(api, "q=wo-pump-7 block") == [old.pk]  # every word must match
    assert ids(api, "q=wo-pump-7 washer") == []
    assert ids(api, f"q={cancelled.number}") == [cancelled.pk]
    assert ids(api, f"q={cancelled.pk}") == [cancelled.pk]
    assert ids(api, "q=spring") == [cancelled.pk]
    assert ids(api, "requester=colleague") == [colleague.pk]
    assert ids(api, "requester=rival") == []
    assert ids(api, "reference=pump") == [old.pk]


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=lost", "status"),
        ("status=cancelled,lost", "status"),
        ("placed_after=yesterday", "placed_after"),
        ("placed_before=2026-13-40", "placed_before"),
        ("q=" + "x" * 101, "q"),
    ],
)
def test_bad_search_parameters_are_a_400_naming_them(api, orders, query, field):
    response = api.get(f"/api/v1/orders/?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_the_orders_page_searches_with_the_same_filters(user, orders):
    old, cancelled, colleague = orders
    page = Client()
    page.force_login(user)

    def numbers(query):
        html = page.get(f"/orders/?{query}").content.decode()
        return [o.number for o in (old, cancelled, colleague) if o.number in html]

    assert numbers("") == [old.number, cancelled.number, colleague.number]
    assert numbers("q=pump") == [old.number]
    assert numbers("part=washer&status=") == [cancelled.number]
    assert numbers("status=cancelled") == [cancelled.number]
    five_days_ago = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert numbers(f"placed_before={five_days_ago}") == [old.number]
    assert numbers("requester=colleague&placed_after=&placed_before=") == [colleague.number]
    assert "No order matches this search." in page.get("/orders/?q=gear").content.decode()
    bad = page.get("/orders/?placed_after=yesterday&status=lost")
    html = bad.content.decode()
    assert bad.status_code == 400 and 'id="search-errors"' in html
    assert "placed_after: must be an ISO date" in html and "unknown status lost" in html


def test_the_search_fields_are_one_list():
    """Adding the work-order reference or an asset to the search is one line in
    orders.search.SEARCH_FIELDS: each is an order field path the search box matches."""
    assert "reference" in SEARCH_FIELDS
    for path in SEARCH_FIELDS:
        assert not Order.objects.filter(**{f"{path}__icontains": "x"}).exists()  # a valid path


def test_another_organisations_orders_are_never_found(orders):
    rival = Order.objects.get(organisation__slug="rival")
    api = APIClient()
    api.force_authenticate(make_user("ours-2", organisation=make_organisation("acme")))
    assert rival.pk not in ids(api, f"q={rival.pk}")
    assert rival.pk not in ids(api, "reference=pump")
