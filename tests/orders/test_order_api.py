import json
from unittest.mock import patch

import pytest
from rest_framework.test import APIClient

from orders.models import Order, OrderLine
from production.models import Job, JobEvent
from tests.builders import make_machine, make_order, make_organisation, make_part, make_user

pytestmark = pytest.mark.django_db

GOOD_LINE = {
    "part": "block",
    "parameters": {"width": 20, "height": 10, "hole_d": 5},
    "material": "pla",
    "quantity": 2,
}


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


def post(api, body, **headers):
    return api.post("/api/v1/orders/", body, format="json", **headers)


def nothing_created():
    return (
        not Order.objects.exists() and not OrderLine.objects.exists() and not Job.objects.exists()
    )


def test_placing_an_order_queues_one_job_per_line_on_commit(
    api, django_capture_on_commit_callbacks
):
    with patch("production.tasks.advance_job.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=True):
            response = post(
                api, {"lines": [GOOD_LINE, {**GOOD_LINE, "quantity": 5}], "reference": "WO-17"}
            )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [line["quantity"] for line in body["lines"]] == [2, 5]
    assert [job["status"] for line in body["lines"] for job in line["jobs"]] == ["queued", "queued"]
    assert send.call_count == 2
    assert {call.kwargs["queue"] for call in send.call_args_list} == {"geometry"}
    json.dumps([call.kwargs["args"] for call in send.call_args_list])  # must survive the broker
    assert JobEvent.objects.filter(to_status="queued").count() == 2


def test_nothing_is_sent_to_the_broker_before_the_order_commits(
    api, django_capture_on_commit_callbacks
):
    with patch("production.tasks.advance_job.apply_async") as send:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            post(api, {"lines": [GOOD_LINE]})
        assert send.call_count == 0
    assert len(callbacks) == 1


def test_a_retried_request_with_the_same_idempotency_key_places_one_order(api):
    with patch("production.tasks.advance_job.apply_async"):
        first = post(api, {"lines": [GOOD_LINE]}, HTTP_IDEMPOTENCY_KEY="cmms-4711")
        second = post(api, {"lines": [GOOD_LINE]}, HTTP_IDEMPOTENCY_KEY="cmms-4711")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 1 and Job.objects.count() == 1


def test_reusing_an_idempotency_key_for_another_order_is_a_conflict(api):
    post(api, {"lines": [GOOD_LINE]}, HTTP_IDEMPOTENCY_KEY="k1")
    response = post(api, {"lines": [{**GOOD_LINE, "quantity": 9}]}, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 409
    assert "already used" in response.json()["message"]
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    "line, path, message",
    [
        (
            {**GOOD_LINE, "part": "flux-capacitor"},
            ("part",),
            "no part 'flux-capacitor' in the catalog",
        ),
        (
            {**GOOD_LINE, "parameters": {"width": 20, "height": 10}},
            ("parameters", "hole_d"),
            "Hole diameter is required",
        ),
        (
            {**GOOD_LINE, "parameters": {"width": 2, "height": 10, "hole_d": 1}},
            ("parameters", "width"),
            "Width must be at least 5 mm (got 2 mm)",
        ),
        (
            {**GOOD_LINE, "parameters": {"width": 20, "height": 10, "hole_d": 19}},
            ("parameters", "hole_d"),
            "the hole must leave 1 mm of wall "
            "(hole diameter 19 mm must be at most width - 2 = 18 mm)",
        ),
        (
            {**GOOD_LINE, "material": "unobtainium"},
            ("material",),
            "Material 'unobtainium' is not offered for this part; choose PLA (pla)",
        ),
        ({**GOOD_LINE, "quantity": 10_000}, ("quantity",), "Quantity must be from 1 to 500 parts"),
    ],
)
def test_bad_lines_are_a_400_naming_the_field_and_create_nothing(api, line, path, message):
    response = post(api, {"lines": [GOOD_LINE, line]})
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]["lines"]["1"]
    for key in path:
        errors = errors[key]
    assert message in errors
    assert nothing_created()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"lines": [{**GOOD_LINE, "quantity": "two"}]}, "lines"),
        ({"lines": [{**GOOD_LINE, "quantity": 0}]}, "lines"),
        ({"lines": []}, "lines"),
        ({}, "lines"),
        ({"lines": "everything"}, "lines"),
        ({"lines": [GOOD_LINE], "due_date": "tomorrow"}, "due_date"),
        ({"lines": [GOOD_LINE], "priority": "yesterday"}, "priority"),
        ({"lines": [{**GOOD_LINE, "parameters": ["width", 3]}]}, "lines"),
    ],
)
def test_malformed_requests_are_a_400_with_field_errors(api, body, field):
    response = post(api, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert nothing_created()


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.post("/api/v1/orders/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert nothing_created()


def test_too_many_lines_are_refused(api, settings):
    settings.ORDER_MAX_LINES = 2
    response = post(api, {"lines": [GOOD_LINE] * 3})
    assert response.status_code == 400
    assert response.json()["errors"] == {"lines": ["at most 2 lines per order"]}


def test_a_retired_part_cannot_be_ordered(api):
    from catalog.models import PartFamily

    PartFamily.objects.filter(slug="block").update(retired=True)
    response = post(api, {"lines": [GOOD_LINE]})
    assert response.json()["errors"]["lines"]["0"]["part"] == [
        "'Block' is retired and can no longer be ordered"
    ]


def test_another_organisations_order_is_a_404_everywhere(api):
    stranger = make_user("spy", organisation=make_organisation("rival"))
    theirs = make_order(user=stranger)
    job = theirs.lines.get().jobs.get()
    assert api.get(f"/api/v1/orders/{theirs.pk}/").status_code == 404
    assert api.get(f"/api/v1/jobs/{job.pk}/artifacts/stl/").status_code == 404
    assert api.get("/api/v1/orders/").json()["results"] == []


def test_anonymous_requests_are_refused():
    response = APIClient().post("/api/v1/orders/", {"lines": [GOOD_LINE]}, format="json")
    assert response.status_code in (401, 403)
    assert nothing_created()


def test_reading_an_order_takes_a_fixed_number_of_queries(api, user, django_assert_max_num_queries):
    order = make_order(user=user, lines=3)
    with django_assert_max_num_queries(12):
        response = api.get(f"/api/v1/orders/{order.pk}/")
    assert response.status_code == 200
    assert len(response.json()["lines"]) == 3


def test_the_parts_api_lists_published_parts_with_their_schema(api):
    parts = api.get("/api/v1/parts/").json()["results"]
    assert [p["slug"] for p in parts] == ["block"]
    assert [p["name"] for p in parts[0]["revision"]["parameter_schema"]] == [
        "width",
        "height",
        "hole_d",
    ]


def test_the_openapi_schema_describes_the_order_endpoint(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/orders/" in response.json()["paths"]
