"""Schemathesis over every operation of the API as every role: no answer is a 5xx, and every
answer's status code, content type and body are what the OpenAPI schema says (#18, point 4).

How it runs: the schema is the one the app serves (GET /api/v1/schema/); the requests go to
Django's WSGI application in-process, inside the test's transaction (no server, no broker:
tasks are queued on commit, which never comes, as in the other unit tests). Each (role,
operation) pair is one test: Hypothesis draws requests that fit the schema and requests that
do not (schemathesis' positive and negative modes), first with every value generated (ids
that do not exist: 404s, bodies that do not validate: 400s), then with the path's ids, slugs
and keys fixed to objects of the test's own world, and, where an operation takes a body, once
more with a body that is valid, so that the answers that do real work are checked too.

Throttles: tests/conftest.py raises every rate for every test, so no example is refused a
429 for a write made by another; the login lockout (django-axes) never sees API requests,
whose tokens do not go through authenticate(). Examples are derandomised: a run is repeatable.
"""

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import trimesh
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client, override_settings
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.models import PartPreview
from catalog.previews import preview_build, preview_request
from orders.models import Order
from orders.saved_quotes import quote_save
from orders.services import LineRequest
from orders.uploads import upload_create
from production import machines
from production.dfm_previews import preview_dfm_check, preview_dfm_request
from production.models import PreviewDfm, Site
from tests.api_auth import machine_api_headers, user_api_headers
from tests.builders import (
    make_machine,
    make_material,
    make_order,
    make_organisation,
    make_part,
    make_ready_job,
    make_user,
)
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

ROLES = [
    "anonymous",
    "requester",
    "approver",
    "manager",
    "operator",
    "catalog_admin",
    "staff",
    "machine",  # a machine's telemetry token, the production machine API's credentials
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,  # the status code is one the operation documents
    content_type_conformance,
    response_schema_conformance,  # the body fits the documented schema for that status
]
# Examples per mode (positive, negative) and variant (generated, fixed ids, valid body): the
# whole module, 8 roles x 20 operations, takes about a minute of CPU. FUZZ_SCALE=10 in the
# environment draws ten times as many, to look harder once.
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = {"generated": 8 * SCALE, "fixed": 8 * SCALE, "valid": 3 * SCALE}
GOOD = {"width": 20, "height": 10, "hole_d": 5}  # a block the builders' part accepts


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the schema, read when the tests are collected."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted((method.upper(), path) for path, item in paths.items() for method in item)


OPERATIONS = _operations()


# --- the application and its schema ---------------------------------------------------------


@pytest.fixture(scope="module")
def api_schema() -> schemathesis.BaseSchema:
    """The schema as the app serves it (no database needed to serve it)."""
    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


@pytest.fixture
def app() -> Iterator[WSGIHandler]:
    """Django's WSGI application, serving inside the test's transaction: as Django's test
    client does, requests must not close the connection that holds it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# --- the world every role meets ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BuiltPreview:
    """What a real build and DFM check of the GOOD block produced (files, measures, report)."""

    files: dict[str, bytes]
    values: dict[str, Any]
    report: dict[str, Any]


@pytest.fixture(scope="module")
def built_preview(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> BuiltPreview:
    """Build the GOOD block's preview and check its DFM once per module (CadQuery in its
    sandbox, then the validation step: about 7 s), keep what they produced, roll back."""
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media")),
        transaction.atomic(),
    ):
        revision = make_part("block")
        make_machine("mk4-1")
        preview, _ = preview_request(revision=revision, parameters=GOOD, user=make_user("x"))
        assert preview_build(preview_id=preview.pk) == "ready"
        preview.refresh_from_db()
        dfm = preview_dfm_request(preview=preview, material=make_material())
        assert preview_dfm_check(dfm_id=dfm.pk) == "ready"
        dfm.refresh_from_db()
        built = BuiltPreview(
            files={kind: getattr(preview, kind).read() for kind in ("glb", "svg", "stl")},
            values={"bbox_mm": preview.bbox_mm, "volume_mm3": preview.volume_mm3},
            report=dfm.report,
        )
        transaction.set_rollback(True)
    return built


@dataclasses.dataclass(frozen=True)
class World:
    headers: dict[str, dict[str, str]]  # by role
    path_values: dict[str, Any]  # by path parameter name
    slugs: dict[str, str]  # by the path's first segment: parts/, machines/
    orders: dict[str, int]  # queued, waiting


@pytest.fixture
def world(built_preview: BuiltPreview) -> World:
    """One organisation with a member of each role, a staff user of the factory, a machine
    with its token running one of the organisation's jobs, an order waiting for approval, a
    ready preview with its DFM report, and a rival organisation's order."""
    acme = make_organisation("acme")
    users = {
        role: make_user(role, organisation=acme, role=role)
        for role in ("requester", "approver", "manager", "operator", "catalog_admin")
    }
    staff = make_user("staff", organisation=make_organisation("works"), role="operator")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    revision = make_part("block")
    machine = make_machine("mk4-1")

    # A job routed, dispatched and started on the machine, as the services do it.
    job = make_ready_job(user=users["requester"])
    now = timezone.now()
    assert machines.jobs_route_waiting(now=now, actor="router") == {job.pk: "mk4-1"}
    assert machines.machine_dispatch(machine_id=machine.pk, now=now, actor="router") == [job.pk]
    machines.telemetry_record(
        machine_id=machine.pk,
        report=machines.TelemetryReport(
            state="busy", progress=42.5, temperatures={"tool0": 215.0}, job_id=job.pk
        ),
        now=now,
        actor="machine mk4-1",
    )
    # An order whose job is still queued (no machine yet), and a machine never seen: the
    # answers' nulls.
    queued = make_order(user=users["requester"])
    make_machine("idle-1")
    # An order over its team's threshold, to a delivery site: waiting for an approver.
    waiting = make_order(user=join_team(users["requester"], make_team(acme, threshold="0.01")))
    Order.objects.filter(pk=waiting.pk).update(delivery_site=Site.objects.get(slug="north"))
    make_order(user=make_user("theirs", organisation=make_organisation("rival")))

    preview, _ = preview_request(revision=revision, parameters=GOOD, user=users["requester"])
    for kind, data in built_preview.files.items():
        getattr(preview, kind).save(f"{preview.key}.{kind}", ContentFile(data), save=False)
    preview.status = PartPreview.Status.READY
    preview.finished_at = now
    for name, value in built_preview.values.items():
        setattr(preview, name, value)
    preview.save()
    dfm = preview_dfm_request(preview=preview, material=make_material())
    PreviewDfm.objects.filter(pk=dfm.pk).update(
        status=PreviewDfm.Status.READY, report=built_preview.report, finished_at=now
    )

    # A saved quote of the organisation's, valid, and a rival's (orders.saved_quotes).
    quote = quote_save(user=users["requester"], lines=[LineRequest("block", GOOD, "pla", 1)])
    quote_save(
        user=User.objects.get(username="theirs"), lines=[LineRequest("block", GOOD, "pla", 2)]
    )
    # A customer's own model (orders.uploads), its build still to come.
    upload = upload_create(
        user=users["requester"],
        name="Spacer",
        upload=SimpleUploadedFile("spacer.stl", trimesh.creation.box().export(file_type="stl")),
    )

    headers = {role: user_api_headers(user) for role, user in users.items()}
    headers["staff"] = user_api_headers(staff)
    headers["machine"] = machine_api_headers(machine)
    headers["anonymous"] = {}
    return World(
        headers=headers,
        path_values={
            "job_id": job.pk,
            "key": preview.key,
            "quote_id": quote.pk,
            "upload_id": upload.pk,
            "line_id": queued.lines.get().pk,
        },
        slugs={"parts": "block", "machines": "mk4-1"},
        orders={"queued": queued.pk, "waiting": waiting.pk},
    )


def fixed_values(world: World, method: str, path: str) -> dict[str, Any]:
    """Values for the operation's path parameters (and its query or body, where one valid
    value opens the way to the real work) naming the world's own objects."""
    params: dict[str, Any] = {}
    section = path.split("/")[3]  # /api/v1/<section>/...
    if "{slug}" in path:
        params["slug"] = world.slugs[section]
    if "{order_id}" in path:
        acting = path.endswith(("/approve/", "/reject/", "/cancel/"))
        params["order_id"] = world.orders["waiting" if acting else "queued"]
    for name in ("job_id", "key", "quote_id", "upload_id", "line_id"):
        if "{" + name + "}" in path:
            params[name] = world.path_values[name]
    return {"path_parameters": params} if params else {}


def valid_request(method: str, path: str) -> dict[str, Any] | None:
    """A request the operation accepts, for the operations that take a body or a query."""
    line = {"part": "block", "parameters": GOOD, "material": "pla", "quantity": 1}
    return {
        ("POST", "/api/v1/orders/"): {"body": {"lines": [line]}},
        ("POST", "/api/v1/quotes/"): {"body": line},
        ("POST", "/api/v1/saved-quotes/"): {"body": {"lines": [line], "reference": "WO-1"}},
        ("POST", "/api/v1/saved-quotes/{quote_id}/order/"): {"body": {"priority": "high"}},
        ("POST", "/api/v1/orders/{order_id}/reorder/"): {"body": {"revision": "same"}},
        # The route it has already: a 409 (the block has one process).
        ("POST", "/api/v1/orders/{order_id}/lines/{line_id}/route/"): {
            "body": {"process": "fdm", "material": "pla"}
        },
        ("POST", "/api/v1/uploads/{upload_id}/quote/"): {"body": {"material": "pla"}},
        ("POST", "/api/v1/parts/{slug}/validate/"): {"body": {"parameters": GOOD}},
        ("POST", "/api/v1/parts/{slug}/previews/"): {"body": {"parameters": GOOD}},
        ("GET", "/api/v1/previews/{key}/dfm/"): {"query": {"material": "pla"}},
        ("POST", "/api/v1/machines/{slug}/telemetry/"): {
            "body": {"state": "busy", "progress": 50.0, "temperatures": {"bed": 60.0}}
        },
        ("PATCH", "/api/v1/machines/{slug}/"): {"body": {"queue_limit": 5}},
    }.get((method, path))


# --- the test ---------------------------------------------------------------------------------


def negatable(operation: Any, values: dict[str, Any]) -> bool:
    """Whether the request has a part left to make invalid once `values` are fixed: a path,
    query or header parameter that is not fixed and whose schema says more than "a string"
    (on the wire everything is one), or a body that is not fixed. The credentials' header is
    each role's own, never generated."""
    fixed = values.get("path_parameters", {})
    parameters = [
        *(p for p in operation.path_parameters if p.name not in fixed),
        *operation.query,
        *(p for p in operation.headers if p.name != "Authorization"),
    ]
    return any(_constrained(p.definition.get("schema", {})) for p in parameters) or (
        "body" not in values and any(True for _ in operation.body)
    )


def _constrained(schema: dict[str, Any]) -> bool:
    return schema.get("type", "string") != "string" or bool(
        {"enum", "pattern", "format", "minLength", "maxLength"} & set(schema)
    )


def run_examples(strategy: Any, app: WSGIHandler, examples: int) -> int:
    """Send `examples` requests drawn from the strategy; the first failing check fails the
    test (Hypothesis then shrinks it to the smallest request that fails). Returns how many
    were sent."""
    sent = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,  # nothing written under .hypothesis/
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(app=app, checks=CHECKS)

    check()
    return sent


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_every_answer_is_what_the_schema_says(
    api_schema: schemathesis.BaseSchema,
    app: WSGIHandler,
    world: World,
    role: str,
    method: str,
    path: str,
) -> None:
    operation = api_schema[path][method]
    fixed = fixed_values(world, method, path)
    variants = [("generated", {}), ("fixed", fixed)] if fixed else [("generated", {})]
    valid = valid_request(method, path)
    if valid is not None:
        variants.append(("valid", {**fixed, **valid, "media_type": "application/json"}))
    sent = 0
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        for variant, values in variants:
            if mode.is_negative and not negatable(operation, values):
                continue  # nothing left in the request to make invalid
            strategy = operation.as_strategy(
                generation_mode=mode, headers=world.headers[role], **values
            )
            try:
                sent += run_examples(strategy, app, EXAMPLES[variant])
            except Unsatisfiable:
                # schemathesis found no way to break what negatable() saw (a required query
                # parameter's pattern, say): there is no negative example to send.
                assert mode.is_negative, (variant, values)
    assert sent > 0
    print(f"{role} {method} {path}: {sent} requests")
