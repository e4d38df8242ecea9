"""A member of one organisation never sees or changes another's orders or jobs: every page
and endpoint that takes an order or job id answers 404, and lists leave them out."""

from unittest.mock import patch

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from orders.models import Order, OrderEvent
from production.models import Job
from tests.builders import make_machine, make_order, make_organisation, make_part, make_user
from tests.orders.helpers import join_team, make_team

pytestmark = pytest.mark.django_db

# Every route that takes an order or a job id, with how to call it ({order}, {job}).
OBJECT_ROUTES = [
    ("get", "/api/v1/orders/{order}/"),
    ("post", "/api/v1/orders/{order}/cancel/"),
    ("post", "/api/v1/orders/{order}/approve/"),
    ("post", "/api/v1/orders/{order}/reject/"),
    ("get", "/api/v1/jobs/{job}/"),
    ("get", "/api/v1/jobs/{job}/artifacts/stl/"),
    ("get", "/api/v1/jobs/{job}/passport/"),
    # The passport page is public to whoever holds its token, printed on the traveler only.
    ("get", "/passport/{job}/not-the-token/"),
    ("get", "/orders/{order}/"),
    ("post", "/orders/{order}/cancel/"),
    ("post", "/orders/{order}/approve/"),
    ("post", "/orders/{order}/reject/"),
]


@pytest.fixture(autouse=True)
def _no_broker():
    with (
        patch("production.tasks.advance_job.apply_async"),
        patch("orders.tasks.deliver_webhook.apply_async"),
        patch("orders.tasks.email_requester.apply_async"),
    ):
        yield


@pytest.fixture
def theirs():
    make_part("block")
    make_machine()
    rival = make_organisation("rival")
    team = make_team(rival, threshold="0.01")
    waiting = make_order(user=join_team(make_user("their-req", organisation=rival), team))
    running = make_order(user=make_user("their-other", organisation=rival))
    return waiting, running


@pytest.fixture
def me(organisation):
    """An approver of our organisation: the role that may do the most."""
    return make_user("our-boss", organisation=organisation, role="approver")


def routes_with_ids() -> set[str]:
    found = set()

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                # The shop floor's station pages are production's: operators only, tested
                # in tests/production.
                if route.startswith("station/"):
                    continue
                if "<int:order_id>" in route or "<int:job_id>" in route:
                    found.add("/" + route)

    walk(get_resolver().url_patterns)
    return found


def test_every_route_with_an_order_or_job_id_is_checked_here():
    checked = {
        path.replace("{order}", "<int:order_id>").replace("{job}", "<int:job_id>")
        for _, path in OBJECT_ROUTES
    }
    normalised = {route.replace("<str:action>", "approve") for route in routes_with_ids()}
    missing = {
        route
        for route in normalised
        if route not in checked and route.replace("<str:kind>", "stl") not in checked
    }
    assert not missing, f"routes not covered by the scoping test: {missing}"


@pytest.mark.parametrize("method, path", OBJECT_ROUTES)
def test_another_organisations_objects_are_404_on_the_api_and_the_pages(me, theirs, method, path):
    waiting, running = theirs
    job = running.lines.get().jobs.get()
    before = (
        Order.objects.values_list("pk", "status").order_by("pk")[::1],
        Job.objects.values_list("pk", "status").order_by("pk")[::1],
        OrderEvent.objects.count(),
    )
    for order in (waiting, running):
        url = path.format(order=order.pk, job=job.pk)
        if url.startswith("/api/"):
            client = APIClient()
            client.force_authenticate(me)
            response = (
                getattr(client, method)(url, {"reason": "mine now"}, format="json")
                if method == "post"
                else client.get(url)
            )
        else:
            client = Client()
            client.force_login(me)
            response = (
                getattr(client, method)(url, {"reason": "mine now"})
                if method == "post"
                else client.get(url)
            )
        assert response.status_code == 404, (url, response.status_code)
    after = (
        Order.objects.values_list("pk", "status").order_by("pk")[::1],
        Job.objects.values_list("pk", "status").order_by("pk")[::1],
        OrderEvent.objects.count(),
    )
    assert before == after


def test_lists_show_only_the_own_organisations_orders(me, user, theirs):
    ours = make_order(user=user)
    api = APIClient()
    api.force_authenticate(me)
    assert [o["id"] for o in api.get("/api/v1/orders/").json()["results"]] == [ours.pk]
    for status in ("awaiting_approval", "in_production"):
        assert [o["id"] for o in api.get(f"/api/v1/orders/?status={status}").json()["results"]] in (
            [],
            [ours.pk],
        )
    page = Client()
    page.force_login(me)
    for url in ("/orders/", "/approvals/"):
        html = page.get(url).content.decode()
        for order in theirs:
            assert order.number not in html, url
    assert ours.number in page.get("/orders/").content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(theirs):
    waiting, _ = theirs
    for url in (
        "/",
        "/orders/",
        f"/orders/{waiting.pk}/",
        "/cart/",
        "/approvals/",
        "/parts/block/",
    ):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert APIClient().get(f"/api/v1/orders/{waiting.pk}/").status_code in (401, 403)
