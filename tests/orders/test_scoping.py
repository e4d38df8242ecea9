"""A member of one organisation never sees or changes another's orders or jobs: every page
and endpoint that takes an order or job id answers 404, and lists leave them out. Every
operation of the API is accounted for here (API_ISOLATION, SHARED_OPERATIONS), checked
against the OpenAPI schema: a new operation fails the test until it is."""

import sys

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from orders.models import Order, OrderEvent
from production.models import Job, Machine
from tests.api_auth import user_api_headers
from tests.builders import (
    make_machine,
    make_order,
    make_organisation,
    make_part,
    make_site,
    make_user,
)
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

# Every route that takes an order or a job id, with how to call it ({order}, {job}).
OBJECT_ROUTES = [
    ("get", "/api/v1/orders/{order}/"),
    ("post", "/api/v1/orders/{order}/cancel/"),
    ("post", "/api/v1/orders/{order}/approve/"),
    ("post", "/api/v1/orders/{order}/reject/"),
    ("post", "/api/v1/orders/{order}/confirm-price/"),
    ("post", "/api/v1/orders/{order}/decline-price/"),
    ("get", "/api/v1/orders/{order}/reorder/"),
    ("post", "/api/v1/orders/{order}/reorder/"),
    # A line's process route (orders.routes), {line}: the order's first line.
    ("post", "/api/v1/orders/{order}/lines/{line}/route/"),
    ("get", "/api/v1/jobs/{job}/"),
    ("get", "/api/v1/jobs/{job}/artifacts/stl/"),
    ("get", "/api/v1/jobs/{job}/passport/"),
    # The passport page is public to whoever holds its token, printed on the traveler only.
    ("get", "/passport/{job}/not-the-token/"),
    ("get", "/passport/{job}/not-the-token/copies/1/"),
    ("get", "/orders/{order}/"),
    ("post", "/orders/{order}/cancel/"),
    ("post", "/orders/{order}/approve/"),
    ("post", "/orders/{order}/reject/"),
    ("get", "/orders/{order}/reorder/"),
    ("post", "/orders/{order}/reorder/"),
]


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


# The factory's own reads of a job (its cost: managers of the factory that makes it, and
# staff), kept apart per factory by tests/production/test_tenancy.py's API matrix.
FACTORY_ROUTES = {"api/v1/jobs/<id:job_id>/cost/"}


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
                if route.startswith("station/") or route in FACTORY_ROUTES:
                    continue
                if "<id:order_id>" in route or "<id:job_id>" in route:
                    found.add("/" + route)

    walk(get_resolver().url_patterns)
    return found


def test_every_route_with_an_order_or_job_id_is_checked_here():
    checked = {
        path.replace("{order}", "<id:order_id>")
        .replace("{job}", "<id:job_id>")
        .replace("{line}", "<id:line_id>")
        for _, path in OBJECT_ROUTES
    }
    normalised = {
        route.replace("<str:action>", "approve")
        .replace("<str:token>", "not-the-token")
        .replace("<id:copy>", "1")
        for route in routes_with_ids()
    }
    assert normalised  # the walk finds the routes (it matched none once <int:> became <id:>)
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
        url = path.format(order=order.pk, job=job.pk, line=order.lines.first().pk)
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
        "/quotes/",
        "/approvals/",
        "/parts/block/",
    ):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert APIClient().get(f"/api/v1/orders/{waiting.pk}/").status_code in (401, 403)


# --- every API operation, accounted for -------------------------------------------------------


def schema_path(path: str) -> str:
    """An OBJECT_ROUTES path as the schema writes it."""
    path = path.replace("{order}", "{order_id}").replace("{job}", "{job_id}")
    path = path.replace("{line}", "{line_id}")
    return path.replace("/artifacts/stl/", "/artifacts/{kind}/")


UPLOADS_ISOLATION = (
    "tests.orders.test_uploads::test_another_organisation_can_neither_see_nor_order_an_upload"
)
# The operations that read or write an organisation's rows, and the test that shows another
# organisation's members can neither see nor change them.
API_ISOLATION = {
    ("GET", "/api/v1/orders/"): "test_lists_show_only_the_own_organisations_orders",
    ("POST", "/api/v1/orders/"): "test_an_idempotency_key_is_the_organisations_own",
    **{
        (method.upper(), schema_path(path)): (
            "test_another_organisations_objects_are_404_on_the_api_and_the_pages"
        )
        for method, path in OBJECT_ROUTES
        if path.startswith("/api/")
    },
    # Assets (orders.assets): scoped to the organisation like orders.
    **dict.fromkeys(
        [("GET", "/api/v1/assets/"), ("GET", "/api/v1/assets/{asset_id}/")],
        "tests.orders.test_assets::"
        "test_another_organisations_assets_are_404_on_every_page_and_endpoint",
    ),
    ("POST", "/api/v1/assets/"): (
        "tests.orders.test_assets::"
        "test_the_asset_api_lists_reads_and_registers_the_organisations_assets"
    ),
    # Saved quotes (orders.api.saved_quotes), scoped as orders are.
    ("GET", "/api/v1/saved-quotes/"): (
        "tests.orders.test_saved_quote_api::test_the_list_shows_only_the_own_organisations_quotes"
    ),
    ("POST", "/api/v1/saved-quotes/"): (
        "tests.orders.test_saved_quote_api::test_the_list_shows_only_the_own_organisations_quotes"
    ),
    **{
        (method, f"/api/v1/saved-quotes/{{quote_id}}/{action}"): (
            "tests.orders.test_saved_quote_api::"
            "test_another_organisations_quote_is_a_404_on_every_operation"
        )
        for method, action in (
            ("GET", ""),
            ("GET", "pdf/"),
            ("POST", "share/"),
            ("POST", "requote/"),
            ("POST", "order/"),
        )
    },
    # Customers' own models: listed, read and quoted only by their organisation; one uploaded
    # is the uploader's organisation's.
    **{
        operation: UPLOADS_ISOLATION
        for operation in [
            ("GET", "/api/v1/uploads/"),
            ("POST", "/api/v1/uploads/"),
            ("GET", "/api/v1/uploads/{upload_id}/"),
            ("POST", "/api/v1/uploads/{upload_id}/quote/"),
            ("POST", "/api/v1/uploads/{upload_id}/scale/"),
        ]
    },
}
# The operations on rows that belong to no customer organisation, and why; each shared
# operation that only some may call names the test that keeps the others out.
SHARED_OPERATIONS = {
    ("GET", "/api/v1/parts/"): "the catalog is shared by every organisation",
    ("GET", "/api/v1/parts/{slug}/"): "the catalog is shared by every organisation",
    ("POST", "/api/v1/parts/{slug}/validate/"): "checks a configuration; stores nothing",
    ("POST", "/api/v1/parts/{slug}/previews/"): "previews are a cache of the shared catalog",
    ("GET", "/api/v1/previews/{key}/"): "previews are a cache of the shared catalog",
    ("GET", "/api/v1/previews/{key}/{kind}/"): "previews are a cache of the shared catalog",
    ("GET", "/api/v1/previews/{key}/dfm/"): "previews are a cache of the shared catalog",
    ("POST", "/api/v1/quotes/"): "prices a configuration; reads and stores no order",
    ("GET", "/api/v1/machines/"): "test_members_of_any_organisation_cannot_reach_the_machines",
    ("GET", "/api/v1/machines/{slug}/"): (
        "test_members_of_any_organisation_cannot_reach_the_machines"
    ),
    ("PATCH", "/api/v1/machines/{slug}/"): (
        "test_members_of_any_organisation_cannot_reach_the_machines"
    ),
    ("GET", "/api/v1/jobs/{job_id}/cost/"): "tests.production.test_tenancy::test_api_access_matrix",
    # The manager dashboard's figures (#15.2): a factory's managers, their own sites only.
    **{
        ("GET", f"/api/v1/dashboard/{figure}"): (
            "tests.production.test_dashboards::test_a_manager_sees_only_the_sites_of_their_factory"
        )
        for figure in (
            *("", "stages/", "oee/", "scrap/", "lead-times/", "promises/", "throughput/"),
        )
    },
    ("POST", "/api/v1/machines/{slug}/telemetry/"): (
        "tests.production.test_machines::test_a_token_for_one_machine_cannot_report_for_another"
    ),
}


def schema_operations() -> set[tuple[str, str]]:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def test_every_api_operation_is_accounted_for():
    operations = schema_operations()
    assert not set(API_ISOLATION) & set(SHARED_OPERATIONS)
    unaccounted = operations - set(API_ISOLATION) - set(SHARED_OPERATIONS)
    assert not unaccounted, f"say how these keep organisations apart: {sorted(unaccounted)}"
    gone = (set(API_ISOLATION) | set(SHARED_OPERATIONS)) - operations
    assert not gone, f"no longer in the schema: {sorted(gone)}"
    # Every test named exists (a module path before "::", else this module).
    named = [*API_ISOLATION.values(), *(v for v in SHARED_OPERATIONS.values() if "test_" in v)]
    for name in named:
        module, _, test = name.rpartition("::")
        if module:
            __import__(module)
        assert callable(getattr(sys.modules[module or __name__], test, None)), name


def test_an_idempotency_key_is_the_organisations_own(me, user, theirs):
    """The same Idempotency-Key from two organisations places two orders, each its own: the
    second never gets the first's order back."""
    parameters = {"width": 20, "height": 10, "hole_d": 5}
    body = {
        "lines": [{"part": "block", "parameters": parameters, "material": "pla", "quantity": 1}]
    }
    rival = theirs[1].placed_by
    answers = []
    for member in (user, rival, user):
        client = APIClient()
        headers = {f"HTTP_{name.upper()}": v for name, v in user_api_headers(member).items()}
        client.credentials(**headers)
        answers.append(
            client.post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        )
    ours, rivals, again = (a.json() for a in answers)
    assert [a.status_code for a in answers] == [201, 201, 200]
    assert (ours["organisation"], rivals["organisation"]) == ("acme", "rival")
    assert rivals["id"] != ours["id"] == again["id"]


@pytest.mark.parametrize("role", ["requester", "approver", "manager", "operator", "catalog_admin"])
def test_members_of_any_organisation_cannot_reach_the_machines(organisation, role):
    """Machines belong to the factory that operates their site: the API shows and changes them
    for staff and that factory's floor (tests/production/test_tenancy.py), never for the
    members of a customer organisation, whatever their role."""
    make_machine("mk4-1", site=make_site("plant", operator=make_organisation("factory")))
    client = APIClient()
    client.force_authenticate(make_user(f"a-{role}", organisation=organisation, role=role))
    assert client.get("/api/v1/machines/").status_code == 403
    assert client.get("/api/v1/machines/mk4-1/").status_code == 403
    changed = client.patch("/api/v1/machines/mk4-1/", {"state": "maintenance"}, format="json")
    assert changed.status_code == 403
    assert Machine.objects.get(slug="mk4-1").state == "idle"
