"""Reordering a past order or one of its lines: the same revision and configuration, or the
latest revision with what changed shown first; through the API and the pages."""

import pytest
from django.test import Client

from catalog.models import PartFamily
from catalog.parameters import parse_schema
from orders.models import Order, OrderEvent, Status
from orders.reorders import carried_values, parameter_changes
from orders.services import LineRequest, OrderRequest, order_place
from tests.builders import (
    BLOCK_SCHEMA,
    make_machine,
    make_material,
    make_order,
    make_organisation,
    make_part,
    make_user,
)
from tests.orders.helpers import join_team, make_team

# Revision 2 of the block: hole_d renamed hole_diameter (same label), width narrowed to at
# most 30 mm, a chamfer added.
BLOCK_V2 = [
    {"name": "width", "label": "Width", "type": "length", "default": 20, "min": 5, "max": 30},
    {"name": "height", "label": "Height", "type": "length", "default": 10, "min": 2, "max": 400},
    {
        "name": "hole_diameter",
        "label": "Hole diameter",
        "type": "length",
        "default": 5,
        "min": 1,
        "max": 50,
    },
    {"name": "chamfer", "label": "Chamfer", "type": "length", "default": 0.5, "min": 0, "max": 2},
]
BLOCK_V2_RULES = [{"rule": "hole_diameter <= width - 2", "message": "leave 1 mm of wall"}]


pytestmark = pytest.mark.usefixtures("no_broker")


@pytest.fixture
def catalog():
    make_part("block")
    make_part("washer", materials=[make_material("petg"), make_material("pla")])
    make_machine()


def _two_line_order(user):
    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="block",
                    parameters={"width": 24, "height": 8, "hole_d": 6},
                    material="pla",
                    quantity=3,
                ),
                LineRequest(
                    part="washer",
                    parameters={"width": 20, "height": 10, "hole_d": 5},
                    material="petg",
                    quantity=1,
                ),
            ]
        ),
    )
    return order


def configuration(line):
    return (
        line.revision_id,
        line.parameters,
        line.parameters_hash,
        line.material_id,
        line.quantity,
    )


# --- what changed between revisions (pure) ---------------------------------------------------


def test_the_changes_between_two_schemas_name_renames_ranges_additions_and_removals():
    old = parse_schema(BLOCK_SCHEMA)
    new = parse_schema([*BLOCK_V2[:3], BLOCK_V2[3]])
    changes = {(c.kind, c.parameter): c.text for c in parameter_changes(old, new)}
    assert changes == {
        ("renamed", "hole_diameter"): "Hole diameter: renamed from hole_d to hole_diameter",
        ("added", "chamfer"): "Chamfer: new parameter, set to its default 0.5 mm",
        ("range", "width"): "Width: range now 5 to 30 mm, was 5 to 400 mm",
    }
    values = carried_values(
        {"width": 24, "height": 8, "hole_d": 6}, new, parameter_changes(old, new)
    )
    assert values == {"width": 24, "height": 8, "hole_diameter": 6, "chamfer": 0.5}
    gone = parameter_changes(new, parse_schema(BLOCK_V2[:2]))
    assert [(c.kind, c.parameter) for c in gone] == [
        ("removed", "hole_diameter"),
        ("removed", "chamfer"),
    ]


def test_the_same_schema_has_no_changes():
    specs = parse_schema(BLOCK_SCHEMA)
    assert parameter_changes(specs, specs) == ()


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reordering_an_order_places_the_same_configuration(api, user, catalog):
    source = _two_line_order(user)
    response = api.post(f"/api/v1/orders/{source.pk}/reorder/", {}, format="json")
    assert response.status_code == 201, response.content
    placed = Order.objects.get(pk=response.json()["id"])
    assert placed.pk != source.pk and placed.status == Status.IN_PRODUCTION
    assert [e["source_order"] for e in response.json()["events"] if e["source_order"]] == [
        source.pk
    ]
    assert [configuration(line) for line in placed.lines.all()] == [
        configuration(line) for line in source.lines.all()
    ]
    assert placed.lines.first().parameters == {"height": 8, "hole_d": 6, "width": 24}
    event = OrderEvent.objects.get(order=placed, source_order__isnull=False)
    assert event.source_order == source and event.to_status == Status.SUBMITTED
    assert event.reason == f"reorder of {source.number}: same revision and configuration"
    # Each new line has its own jobs (placed through order_place like any order).
    assert all(line.jobs.count() == 1 for line in placed.lines.all())


@pytest.mark.django_db
def test_reordering_one_line_places_only_that_line(api, user, catalog):
    source = _two_line_order(user)
    washer = source.lines.get(revision__family__slug="washer")
    response = api.post(
        f"/api/v1/orders/{source.pk}/reorder/", {"lines": [washer.pk]}, format="json"
    )
    assert response.status_code == 201, response.content
    placed = Order.objects.get(pk=response.json()["id"])
    assert [configuration(line) for line in placed.lines.all()] == [configuration(washer)]
    assert "1 of its 2 lines" in placed.events.get(source_order=source).reason


@pytest.mark.django_db
def test_a_reorder_keeps_priority_and_site_but_takes_its_own_reference(api, user, catalog):
    source = _two_line_order(user)
    Order.objects.filter(pk=source.pk).update(priority="high", reference="WO-1")
    body = api.post(
        f"/api/v1/orders/{source.pk}/reorder/", {"reference": "WO-2"}, format="json"
    ).json()
    assert (body["priority"], body["reference"]) == ("high", "WO-2")


@pytest.mark.django_db
def test_a_retried_reorder_with_the_same_key_places_one_order(api, user, catalog):
    source = make_order(user=user)
    url = f"/api/v1/orders/{source.pk}/reorder/"
    first = api.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="again")
    second = api.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="again")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 2
    assert OrderEvent.objects.filter(source_order=source).count() == 1


@pytest.mark.django_db
def test_a_reorder_above_the_threshold_waits_for_an_approver(api, user, organisation, catalog):
    source = make_order(user=user)
    join_team(user, make_team(organisation, threshold="0.01"))
    body = api.post(f"/api/v1/orders/{source.pk}/reorder/", {}, format="json").json()
    assert body["status"] == "awaiting_approval"


@pytest.mark.django_db
def test_the_latest_revision_shows_its_differences_before_ordering(api, user, catalog):
    source = make_order(user=user, parameters={"width": 24, "height": 8, "hole_d": 6})
    make_part("block", schema=BLOCK_V2, rules=BLOCK_V2_RULES)
    url = f"/api/v1/orders/{source.pk}/reorder/"
    same = api.get(url).json()
    assert same["changed"] is False and same["lines"][0]["revision"] == 1
    plan = api.get(url + "?revision=latest").json()
    assert plan["orderable"] is True and plan["changed"] is True
    (line,) = plan["lines"]
    assert (line["source_revision"], line["revision"]) == (1, 2)
    assert {(c["kind"], c["parameter"]) for c in line["changes"]} == {
        ("renamed", "hole_diameter"),
        ("added", "chamfer"),
        ("range", "width"),
    }
    assert line["parameters"] == {"chamfer": 0.5, "height": 8, "hole_diameter": 6, "width": 24}
    assert Order.objects.count() == 1  # looking placed nothing
    placed = api.post(url, {"revision": "latest"}, format="json")
    assert placed.status_code == 201, placed.content
    new_line = Order.objects.get(pk=placed.json()["id"]).lines.get()
    assert new_line.revision.number == 2
    assert new_line.parameters == line["parameters"]
    assert "block rev 1 -> 2" in new_line.order.events.get(source_order=source).reason.lower()


@pytest.mark.django_db
def test_values_the_latest_revision_refuses_are_flagged_and_nothing_is_placed(api, user, catalog):
    source = make_order(user=user, parameters={"width": 40, "height": 8, "hole_d": 6})
    make_part("block", schema=BLOCK_V2, rules=BLOCK_V2_RULES)
    url = f"/api/v1/orders/{source.pk}/reorder/"
    plan = api.get(url + "?revision=latest").json()
    assert plan["orderable"] is False
    assert "30" in plan["lines"][0]["problems"]["parameters"]["width"][0]
    refused = api.post(url, {"revision": "latest"}, format="json")
    assert refused.status_code == 400
    problems = refused.json()["errors"]["lines"][str(source.lines.get().pk)]
    assert "width" in problems["parameters"]
    assert Order.objects.count() == 1
    # The same revision is still orderable.
    assert api.post(url, {"revision": "same"}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_retired_part_cannot_be_reordered(api, user, catalog):
    source = make_order(user=user)
    PartFamily.objects.filter(slug="block").update(retired=True)
    plan = api.get(f"/api/v1/orders/{source.pk}/reorder/").json()
    assert "retired" in plan["lines"][0]["problems"]["part"][0]
    assert api.post(f"/api/v1/orders/{source.pk}/reorder/", {}, format="json").status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"lines": []},
        {"lines": [999999]},
        {"lines": ["x"]},
        {"revision": "oldest"},
        {"reference": "x" * 101},
    ],
)
def test_bad_reorder_requests_are_400_and_place_nothing(api, user, catalog, body):
    source = make_order(user=user)
    response = api.post(f"/api/v1/orders/{source.pk}/reorder/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["message"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["lines=abc", "lines=999999", "revision=x", "lines=1,,2"])
def test_bad_reorder_queries_are_400(api, user, catalog, query):
    source = make_order(user=user)
    assert api.get(f"/api/v1/orders/{source.pk}/reorder/?{query}").status_code == 400


@pytest.mark.django_db
def test_another_organisations_order_cannot_be_reordered(api, catalog):
    theirs = make_order(user=make_user("rival-req", organisation=make_organisation("rival")))
    url = f"/api/v1/orders/{theirs.pk}/reorder/"
    assert api.get(url).status_code == 404
    assert api.post(url, {}, format="json").status_code == 404
    page = Client()
    page.force_login(make_user("ours", organisation=make_organisation("acme")))
    assert page.get(f"/orders/{theirs.pk}/reorder/").status_code == 404
    assert page.post(f"/orders/{theirs.pk}/reorder/", {}).status_code == 404
    assert Order.objects.count() == 1


# --- the pages --------------------------------------------------------------------------------


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_order_page_reorders_in_one_click(browser, user, catalog):
    source = _two_line_order(user)
    html = browser.get(f"/orders/{source.pk}/").content.decode()
    assert 'id="reorder-same"' in html and "Reorder this line" in html
    assert 'id="reorder-latest"' not in html  # no newer revision
    key = "k" * 32
    response = browser.post(
        f"/orders/{source.pk}/reorder/", {"revision": "same", "idempotency_key": key}
    )
    placed = Order.objects.exclude(pk=source.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/orders/{placed.pk}/"
    assert [configuration(line) for line in placed.lines.all()] == [
        configuration(line) for line in source.lines.all()
    ]
    # A double click sends the same form again: the same order.
    again = browser.post(
        f"/orders/{source.pk}/reorder/", {"revision": "same", "idempotency_key": key}
    )
    assert again["Location"] == f"/orders/{placed.pk}/" and Order.objects.count() == 2
    assert placed.number in browser.get(f"/orders/{source.pk}/").content.decode()
    new_page = browser.get(f"/orders/{placed.pk}/").content.decode()
    assert f"reorder of {source.number}" in new_page and 'class="reorder-source"' in new_page


@pytest.mark.django_db
def test_the_reorder_page_shows_the_latest_revisions_changes_before_placing(browser, user, catalog):
    source = make_order(user=user, parameters={"width": 24, "height": 8, "hole_d": 6})
    make_part("block", schema=BLOCK_V2, rules=BLOCK_V2_RULES)
    assert 'id="reorder-latest"' in browser.get(f"/orders/{source.pk}/").content.decode()
    html = browser.get(f"/orders/{source.pk}/reorder/?revision=latest").content.decode()
    assert "rev 1 → <strong>rev 2</strong>" in html
    assert "Hole diameter: renamed from hole_d to hole_diameter" in html
    assert "Chamfer: new parameter" in html and 'id="confirm-reorder"' in html
    assert Order.objects.count() == 1
    browser.post(
        f"/orders/{source.pk}/reorder/",
        {"revision": "latest", "line": source.lines.get().pk, "idempotency_key": "x1"},
    )
    assert Order.objects.exclude(pk=source.pk).get().lines.get().revision.number == 2


@pytest.mark.django_db
def test_the_reorder_page_flags_values_that_no_longer_validate(browser, user, catalog):
    source = make_order(user=user, parameters={"width": 40, "height": 8, "hole_d": 6})
    make_part("block", schema=BLOCK_V2, rules=BLOCK_V2_RULES)
    html = browser.get(f"/orders/{source.pk}/reorder/?revision=latest").content.decode()
    assert 'class="errorlist reorder-problems"' in html and "width:" in html
    assert 'id="reorder-blocked"' in html and 'id="confirm-reorder"' not in html
    refused = browser.post(f"/orders/{source.pk}/reorder/", {"revision": "latest"})
    assert refused.status_code == 400 and Order.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["revision=x", "line=abc", "line=999999"])
def test_the_reorder_page_shows_form_errors(browser, user, catalog, query):
    source = make_order(user=user)
    response = browser.get(f"/orders/{source.pk}/reorder/?{query}")
    assert response.status_code == 400
    assert 'id="reorder-form-errors"' in response.content.decode()
