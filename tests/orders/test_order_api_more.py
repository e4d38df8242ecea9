"""The order API beyond placing: concurrency, filters, cancel/approve/reject, job status,
bad input (every refusal a 400 with field errors that creates nothing)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import Order, OrderLine, Status
from production.models import Job
from tests.builders import make_machine, make_order, make_part, make_user
from tests.orders.helpers import join_team, make_team

GOOD_LINE = {
    "part": "block",
    "parameters": {"width": 20, "height": 10, "hole_d": 5},
    "material": "pla",
    "quantity": 2,
}


pytestmark = pytest.mark.usefixtures("no_broker")


def nothing_created():
    return (
        not Order.objects.exists() and not OrderLine.objects.exists() and not Job.objects.exists()
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_place_one_order():
    make_part("block")
    make_machine()
    user = make_user("req")
    barrier = threading.Barrier(2)
    responses = []

    def place() -> None:
        client = APIClient()
        client.force_authenticate(user)
        barrier.wait()
        try:
            responses.append(
                client.post(
                    "/api/v1/orders/",
                    {"lines": [GOOD_LINE]},
                    format="json",
                    HTTP_IDEMPOTENCY_KEY="same-key",
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=place) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in responses) == [200, 201], [r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Order.objects.count() == 1 and Job.objects.count() == 1


@pytest.fixture
def catalog(db):
    make_part("block")
    make_machine()


def post(api, body, **headers):
    return api.post("/api/v1/orders/", body, format="json", **headers)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, path",
    [
        ({"lines": [{**GOOD_LINE, "quantity": -1}]}, ("lines",)),
        ({"lines": [GOOD_LINE], "due_date": "2001-01-01"}, ("due_date",)),
        ({"lines": [GOOD_LINE], "delivery_site": "atlantis"}, ("delivery_site",)),
        ({"lines": [{**GOOD_LINE, "material": "unobtainium"}]}, ("lines", "0", "material")),
        (
            {"lines": [{**GOOD_LINE, "parameters": {"width": 999, "height": 10, "hole_d": 5}}]},
            ("lines", "0", "parameters", "width"),
        ),
    ],
)
def test_bad_orders_are_a_400_with_field_errors(api, catalog, body, path):
    response = post(api, body)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    for key in path:
        errors = errors[key]
    assert errors
    assert nothing_created()


@pytest.mark.django_db
def test_an_oversized_body_is_refused_before_parsing(api, catalog, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = {"lines": [GOOD_LINE], "note": "x" * 4000}
    response = post(api, body)
    assert response.status_code == 413
    assert response.json() == {"message": "the request body is larger than 2000 bytes"}
    assert nothing_created()


@pytest.mark.django_db
def test_an_absurd_quantity_is_refused(api, catalog, settings):
    settings.ORDER_MAX_QUANTITY = 100
    response = post(api, {"lines": [{**GOOD_LINE, "quantity": 101}]})
    assert response.json()["errors"]["lines"]["0"]["quantity"] == [
        "Quantity must be from 1 to 100 parts"
    ]


@pytest.mark.django_db
def test_the_order_shows_its_status_quote_and_timeline(api, catalog):
    body = post(api, {"lines": [GOOD_LINE], "reference": "WO-1"}).json()
    assert body["status"] == "in_production"
    assert body["lines"][0]["status"] == "in_production"
    assert float(body["total_price"]) > 0 and body["lines"][0]["quote"]["quantity"] == 2
    assert [e["to_status"] for e in body["events"] if e["line"] is None] == [
        "submitted",
        "approved",
        "in_production",
    ]


@pytest.mark.django_db
def test_orders_are_listed_newest_first_with_filters_and_pages(api, user, catalog):
    orders = [make_order(user=user) for _ in range(3)]
    Order.objects.filter(pk=orders[0].pk).update(
        reference="WO-OLD", placed_at=timezone.now() - timedelta(days=10)
    )
    Order.objects.filter(pk=orders[1].pk).update(status=Status.CANCELLED)
    listing = api.get("/api/v1/orders/?limit=2").json()
    assert listing["count"] == 3 and len(listing["results"]) == 2 and listing["next"]
    assert [o["id"] for o in api.get("/api/v1/orders/").json()["results"]] == [
        orders[2].pk,
        orders[1].pk,
        orders[0].pk,
    ]
    ids = lambda query: [o["id"] for o in api.get(f"/api/v1/orders/?{query}").json()["results"]]  # noqa: E731
    assert ids("status=cancelled") == [orders[1].pk]
    assert ids("status=in_production,cancelled") == [orders[2].pk, orders[1].pk, orders[0].pk]
    assert ids("reference=old") == [orders[0].pk]
    before = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert ids(f"placed_before={before}") == [orders[0].pk]
    assert ids("part=block") and ids("part=nothing") == []
    assert api.get("/api/v1/orders/?status=lost").status_code == 400
    assert api.get("/api/v1/orders/?placed_after=yesterday").status_code == 400


@pytest.mark.django_db
def test_job_status_can_be_read(api, user, catalog):
    job = make_order(user=user).lines.get().jobs.get()
    body = api.get(f"/api/v1/jobs/{job.pk}/").json()
    assert (body["number"], body["status"]) == (job.number, "queued")


@pytest.mark.django_db
def test_cancelling_through_the_api(api, user, catalog):
    order = make_order(user=user)
    response = api.post(
        f"/api/v1/orders/{order.pk}/cancel/", {"reason": "not needed"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    again = api.post(f"/api/v1/orders/{order.pk}/cancel/", {}, format="json")
    assert again.status_code == 409


@pytest.mark.django_db
def test_a_running_order_cannot_be_cancelled_through_the_api(api, user, catalog):
    order = make_order(user=user)
    Job.objects.filter(line__order=order).update(status="running")
    response = api.post(f"/api/v1/orders/{order.pk}/cancel/", {}, format="json")
    assert response.status_code == 409
    assert "a machine has started" in response.json()["message"]
    assert Order.objects.get(pk=order.pk).status == "in_production"


@pytest.mark.django_db
def test_approving_and_rejecting_through_the_api(api, user, organisation, catalog):
    team = make_team(organisation, threshold="0.01")
    join_team(user, team)
    boss = join_team(make_user("boss", organisation=organisation, role="approver"), team)
    boss_api = APIClient()
    boss_api.force_authenticate(boss)
    first = post(api, {"lines": [GOOD_LINE]}).json()
    second = post(api, {"lines": [{**GOOD_LINE, "quantity": 3}]}).json()
    assert first["status"] == second["status"] == "awaiting_approval"
    assert api.post(f"/api/v1/orders/{first['id']}/approve/").status_code == 403
    approved = boss_api.post(f"/api/v1/orders/{first['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "in_production"
    assert len(approved.json()["lines"][0]["jobs"]) == 1
    no_reason = boss_api.post(f"/api/v1/orders/{second['id']}/reject/", {}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["errors"]
    rejected = boss_api.post(
        f"/api/v1/orders/{second['id']}/reject/", {"reason": "too dear"}, format="json"
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "too dear"


@pytest.mark.django_db
def test_a_quote_can_be_asked_for_without_ordering(api, catalog):
    response = api.post("/api/v1/quotes/", GOOD_LINE, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["quote"]["quantity"] == 2 and body["geometry"] == "envelope"
    assert any("fits on" in note["message"] for note in body["dfm"])
    bad = api.post("/api/v1/quotes/", {**GOOD_LINE, "parameters": {"width": 1}}, format="json")
    assert bad.status_code == 400 and "parameters" in bad.json()["errors"]
    assert nothing_created()


@pytest.mark.django_db
def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html and "cdn." not in html and "unpkg" not in html
