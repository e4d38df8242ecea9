"""Input limits (microfactory.limits): a deeply nested or oversized body is a 4xx with a message
on every endpoint that reads one, an id past 64 bits is a 404 on every route, and `?limit=` is
capped and checked. Every route is found by walking the URL resolver, so a new one is covered
(or fails the coverage assertion) without editing these tests."""

import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter
from rest_framework.test import APIClient
from rest_framework.views import APIView

from catalog.models import PartPreview
from microfactory.limits import ID_MAX, IdConverter, json_depth
from orders.models import Asset, Membership, Order, OrderEvent, SavedQuote
from orders.saved_quotes import quote_save
from orders.services import LineRequest
from orders.uploads import upload_create
from production import machines
from production.models import Job, Machine, MachineEvent, MachineTelemetry
from tests.builders import login_with_mfa, make_machine, make_order, make_part, make_user

# Deep enough to exhaust json.loads' recursion (a 500 before the limits), shallow enough that
# its 8000 bytes fit under the telemetry endpoint's own size limit (8192).
DEEP = 4000
WRITE_METHODS = ("post", "put", "patch")
GOOD_BLOCK = {"width": 20, "height": 10, "hole_d": 5}


def deep_body(levels: int) -> str:
    return '{"note": ' + "[" * levels + "]" * levels + "}"


def walk(
    patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str, URLPattern]]:
    """(route, name with its namespace, pattern) for every route of the project."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            yield prefix + str(entry.pattern), f"{namespace}{entry.name}", entry


def routes() -> list[tuple[str, str, URLPattern]]:
    return list(walk(get_resolver().url_patterns))


def api_write_routes() -> dict[str, list[str]]:
    """Every DRF route that takes a body: its name and methods."""
    found = {}
    for _route, name, pattern in routes():
        view = getattr(pattern.callback, "cls", None)
        if isinstance(view, type) and issubclass(view, APIView):
            methods = [m for m in WRITE_METHODS if hasattr(view, m)]
            if methods:
                found[name] = methods
    return found


# --- the depth scanner ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"1", 0),
        (b'"[[[{{{"', 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'["\\"[[[", ["\\\\"], "]]]"]', 2),  # escaped quotes and brackets inside strings
        (b"[" * 100_000 + b"]" * 100_000, 100_000),
        (b"[[], [], []]", 2),
    ],
)
def test_the_scanner_counts_nesting_outside_strings(text, depth):
    assert json_depth(text) == depth
    if depth < 500:
        assert text == b"1" or json.loads(text) is not None


# --- deep and oversized bodies ------------------------------------------------------------------


@pytest.fixture
def world(settings):
    """A staff manager, an order, a published part, a machine with a telemetry token."""
    settings.CATALOG_PREVIEW_MAX_IN_FLIGHT = 100
    boss = make_user("boss", role="manager")
    boss.is_staff = True
    boss.save(update_fields=["is_staff"])
    make_part("block")
    with patch("production.tasks.advance_job.apply_async"):
        order = make_order(user=boss)
    quote = quote_save(
        user=boss,
        lines=[LineRequest(part="block", parameters=GOOD_BLOCK, material="pla", quantity=1)],
    )
    machine = make_machine("mk4-1")
    stl = trimesh.creation.box().export(file_type="stl")
    upload = upload_create(user=boss, name="Spacer", upload=SimpleUploadedFile("s.stl", stl))
    api = APIClient()
    api.force_authenticate(boss)
    return {
        "api": api,
        "token": machines.machine_token_issue(machine=machine),
        "urls": {
            "api:orders": reverse("api:orders"),
            "api:order-cancel": reverse("api:order-cancel", args=[order.pk]),
            "api:order-approve": reverse("api:order-approve", args=[order.pk]),
            "api:order-reject": reverse("api:order-reject", args=[order.pk]),
            "api:order-confirm-price": reverse("api:order-confirm-price", args=[order.pk]),
            "api:order-decline-price": reverse("api:order-decline-price", args=[order.pk]),
            "api:order-reorder": reverse("api:order-reorder", args=[order.pk]),
            "api:order-line-route": reverse(
                "api:order-line-route", args=[order.pk, order.lines.get().pk]
            ),
            "api:quote": reverse("api:quote"),
            "api:part-validate": reverse("api:part-validate", args=["block"]),
            "api:part-previews": reverse("api:part-previews", args=["block"]),
            "api:machine-detail": reverse("api:machine-detail", args=["mk4-1"]),
            "api:machine-telemetry": reverse("api:machine-telemetry", args=["mk4-1"]),
            "api:assets": reverse("api:assets"),
            "api:saved-quotes": reverse("api:saved-quotes"),
            "api:saved-quote-share": reverse("api:saved-quote-share", args=[quote.pk]),
            "api:saved-quote-requote": reverse("api:saved-quote-requote", args=[quote.pk]),
            "api:saved-quote-order": reverse("api:saved-quote-order", args=[quote.pk]),
            "api:uploads": reverse("api:uploads"),
            "api:upload-quote": reverse("api:upload-quote", args=[upload.pk]),
            "api:upload-scale": reverse("api:upload-scale", args=[upload.pk]),
        },
    }


def snapshot() -> list[Any]:
    return [
        list(Order.objects.order_by("pk").values_list("pk", "status", "note")),
        OrderEvent.objects.count(),
        list(Job.objects.order_by("pk").values_list("pk", "status")),
        list(Machine.objects.values_list("state", "queue_limit", "hourly_rate", "last_seen_at")),
        MachineEvent.objects.count(),
        MachineTelemetry.objects.count(),
        PartPreview.objects.count(),
        Asset.objects.count(),
        list(SavedQuote.objects.order_by("pk").values_list("pk", "shared_at", "order")),
    ]


def send(world: dict[str, Any], name: str, method: str, body: str | bytes) -> Any:
    headers = {}
    if name == "api:machine-telemetry":
        headers["HTTP_AUTHORIZATION"] = f"Machine {world['token']}"
    return getattr(world["api"], method)(
        world["urls"][name], data=body, content_type="application/json", **headers
    )


def every_write(world: dict[str, Any]) -> Iterator[tuple[str, str]]:
    writes = api_write_routes()
    # Every DRF route that takes a body is in the fixture: a new one must be added there.
    assert set(writes) == set(world["urls"])
    for name, methods in sorted(writes.items()):
        for method in methods:
            yield name, method


@pytest.mark.django_db
def test_a_deeply_nested_body_is_a_400_on_every_write_endpoint_and_changes_nothing(world):
    before = snapshot()
    answered = []
    for name, method in every_write(world):
        response = send(world, name, method, deep_body(DEEP))
        assert response.status_code == 400, (name, response.status_code, response.content[:300])
        assert response.json() == {"message": "the JSON body is nested deeper than 32 levels"}
        answered.append(name)
    assert snapshot() == before
    assert len(answered) == 21


@pytest.mark.django_db
def test_a_body_at_the_depth_limit_is_parsed(world, settings):
    settings.MF_JSON_MAX_DEPTH = 5
    line = {"part": "block", "material": "pla", "quantity": 1}
    shallow = json.dumps({**line, "parameters": {"width": [[[20]]]}})  # 5 levels
    response = send(world, "api:quote", "post", shallow)
    assert response.status_code == 400
    assert "parameters" in json.dumps(response.json()["errors"])  # the serializer judged it
    deeper = json.dumps({**line, "parameters": {"width": [[[[20]]]]}})
    response = send(world, "api:quote", "post", deeper)
    assert response.json() == {"message": "the JSON body is nested deeper than 5 levels"}


@pytest.mark.django_db
def test_an_oversized_body_is_a_413_on_every_write_endpoint_and_changes_nothing(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = snapshot()
    body = json.dumps({"note": "x" * 2000, "reason": "x" * 2000})
    for name, method in every_write(world):
        response = send(world, name, method, body)
        assert response.status_code == 413, (name, response.status_code, response.content[:300])
        assert response.json() == {"message": "the request body is larger than 1000 bytes"}
    assert snapshot() == before


@pytest.mark.django_db
def test_an_oversized_form_body_is_a_413_too(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = world["api"].patch(
        world["urls"]["api:machine-detail"],
        data="state=maintenance&connector_url=" + "x" * 2000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413, response.content
    assert response.json() == {"message": "the request body is larger than 1000 bytes"}
    assert Machine.objects.get().state == Machine.State.IDLE


# --- ids in paths ---------------------------------------------------------------------------


def test_no_route_takes_an_unbounded_integer():
    unbounded = [
        route
        for route, _name, pattern in routes()
        if any(isinstance(c, IntConverter) for c in pattern.pattern.converters.values())
    ]
    assert unbounded == []


def id_routes() -> list[tuple[str, URLPattern]]:
    found = [
        (name, pattern)
        for _route, name, pattern in routes()
        if any(isinstance(c, IdConverter) for c in pattern.pattern.converters.values())
    ]
    assert len(found) >= 13  # orders, jobs, artifacts, station jobs, order pages, the cart
    return found


FILLERS = {"slug": "block", "kind": "svg", "action": "cancel", "key": "k"}


def url_with_id(name: str, pattern: URLPattern, number: int) -> str:
    kwargs = {
        param: number if isinstance(converter, IdConverter) else FILLERS.get(param, "x")
        for param, converter in pattern.pattern.converters.items()
    }
    return reverse(name, kwargs=kwargs)


@pytest.mark.django_db
@pytest.mark.parametrize("number", [2**64, 10**30, ID_MAX + 1, ID_MAX])
def test_an_id_out_of_range_is_a_404_on_every_route(number):
    boss = make_user("boss", role="manager")
    boss.is_staff = True
    boss.is_superuser = True
    boss.save(update_fields=["is_staff", "is_superuser"])
    pages = Client(raise_request_exception=False)
    login_with_mfa(pages, boss)  # staff: past the second factor
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(boss)
    for name, pattern in id_routes():
        url = url_with_id(name, pattern, number)
        client = api if name.startswith("api:") else pages
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            # Beyond ID_MAX no route matches; ID_MAX itself reaches the views, which find
            # nothing, take no POST, or send back to the cart: never a 500.
            if number == ID_MAX:
                assert response.status_code in (302, 404, 405), (method, url, response)
            else:
                assert response.status_code == 404, (method, url, response.status_code)


@pytest.mark.django_db
def test_an_id_out_of_range_in_a_body_or_a_scanned_code_is_refused(world):
    response = send(world, "api:machine-telemetry", "post", json.dumps({"current_job": 2**64}))
    assert response.status_code == 400
    assert response.json()["errors"]["current_job"] == [
        f"Ensure this value is less than or equal to {ID_MAX}."
    ]
    pages = Client(raise_request_exception=False)
    login_with_mfa(pages, Membership.objects.get(role="manager").user)  # staff, past MFA
    for code in ("J-" + "9" * 25, str(2**64), "9" * 5000, f"/station/jobs/{'9' * 5000}/"):
        response = pages.get("/station/scan/", {"code": code})
        assert (response.status_code, response["Location"]) == (302, "/station/")


@pytest.mark.django_db
def test_the_admin_refuses_a_huge_id_without_a_500():
    boss = make_user("boss", role="manager")
    boss.is_staff = True
    boss.is_superuser = True
    boss.save(update_fields=["is_staff", "is_superuser"])
    pages = Client(raise_request_exception=False)
    login_with_mfa(pages, boss)  # staff: past the second factor
    for model in ("orders/order", "production/job", "production/machine"):
        response = pages.get(f"/admin/{model}/{2**64}/change/")
        assert response.status_code in (302, 404), (model, response.status_code)


# --- pages of a list ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_limit_is_capped(api, user, settings):
    settings.API_PAGE_MAX_LIMIT = 2
    make_part("block")
    with patch("production.tasks.advance_job.apply_async"):
        for _ in range(3):
            make_order(user=user)
    page = api.get("/api/v1/orders/?limit=1000").json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert "limit=2" in page["next"]
    assert len(api.get("/api/v1/orders/?limit=1&offset=2").json()["results"]) == 1
    # Past the last row, however far (int() refuses 4300 digits, SQLite 64 bits): an empty page.
    for offset in ("3", str(2**64), "1" + "0" * 5000):
        page = api.get(f"/api/v1/orders/?offset={offset}")
        assert page.status_code == 200 and page.json()["results"] == []
    assert len(api.get("/api/v1/orders/?limit=1" + "0" * 5000).json()["results"]) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=%EF%BC%91", "limit"),  # a full-width digit one: isdigit() but not ASCII
        ("offset=x", "offset"),
        ("offset=-5", "offset"),
    ],
)
def test_a_limit_or_offset_that_is_not_a_whole_number_is_a_400(api, query, field):
    for path in ("/api/v1/orders/", "/api/v1/parts/"):
        response = api.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query, response.content)
        assert response.json()["errors"][field] == [
            f"must be a whole number, at least {1 if field == 'limit' else 0}"
        ]


@pytest.mark.django_db
def test_the_schema_describes_the_cap(api, settings):
    schema = api.get("/api/v1/schema/?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/orders/"]["get"]["parameters"]}
    assert parameters["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": settings.API_PAGE_MAX_LIMIT,
    }
    assert f"than {settings.API_PAGE_MAX_LIMIT} returns" in parameters["limit"]["description"]
    assert parameters["offset"]["schema"] == {"type": "integer", "minimum": 0, "maximum": ID_MAX}


# --- NUL characters: PostgreSQL refused every lookup by them with a 500 ----------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "headers", "status", "where"),
    [
        ("/api/v1/orders/?reference=a%00", {}, 400, "the query"),
        ("/api/v1/orders/?part=%00", {}, 400, "the query"),
        ("/api/v1/orders/?%00=1", {}, 400, "the query"),
        ("/orders/?reference=%00", {}, 400, "the query"),
        ("/api/v1/orders/", {"HTTP_AUTHORIZATION": "Token ab\x00cd"}, 400, "a header"),
        ("/api/v1/orders/", {"HTTP_IDEMPOTENCY_KEY": "key\x00"}, 400, "a header"),
        ("/api/v1/previews/ab%00cd/", {}, 404, None),
        ("/api/v1/previews/ab%00cd/stl/", {}, 404, None),
        ("/api/v1/jobs/1/artifacts/st%00l/", {}, 404, None),
    ],
)
def test_a_nul_character_is_refused_before_any_lookup(user, url, headers, status, where):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    method = client.post if "IDEMPOTENCY" in str(headers) else client.get
    response = method(url, **headers)
    assert response.status_code == status, response.content
    if url.startswith("/api/"):
        expected = "Not found." if where is None else f"{where} contains a NUL character"
        assert response.json() == {"message": expected}
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_a_nul_character_in_a_cookie_is_refused_before_the_session_is_read():
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"
    response = client.get("/api/v1/orders/")
    assert response.status_code == 400
    assert response.json() == {"message": "a cookie contains a NUL character"}
