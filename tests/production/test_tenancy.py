"""Tenancy: who sees and acts on what at the station and through the machine and job API.

Two factories, each operating a site with a machine; two customer organisations. The matrix
takes every station URL from production/urls.py and every machine and job route of the API
from the project's URLconf: a URL added without a row here fails the test.

The rule it checks (production/views.py, production/tenancy.py):
- the factory's operators and managers, and staff: 200 (a download, a page), a scan opens the
  job (or, for a spool's code sent from a machine's page, loads the spool there), an action
  redirects to the job's (or the spool's) page; an order's costs are its managers' and staff's
  (the factory's operators get 403);
- an operator of another factory: 404 for every job, machine, site and spool of the first (the
  station home lists only their own machines; a scan of the job says "No job found", of the
  spool "No spool found", as for a number nobody has);
- a member of a customer organisation, even the one that ordered the job, even its manager:
  404 on every station URL, before anything is looked up;
- anonymous: sent to log in.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import URLPattern, URLResolver
from pypdf import PdfWriter
from rest_framework.test import APIClient

from microfactory import urls as project_urls
from orders.models import Order
from production import spools, tenancy
from production import urls as station_urls
from production.models import Artifact, Job, JobEvent, Machine, Plate, PlateCopy, Site, Spool
from tests.builders import (
    login_with_mfa,
    make_machine,
    make_material,
    make_organisation,
    make_site,
    make_user,
)
from tests.production.test_station import attach, make_station_job

pytestmark = pytest.mark.django_db

# Every action the job page can post (production.views.station_job_action).
ACTIONS = ("start", "pause", "continue", "finish", "measure", "pass", "scrap")
# Every action the spool page can post (production.views.station_spool_action).
SPOOL_ACTIONS = ("load", "unload")
PLATE_ACTIONS = ("start", "finish", "qc")
OWNERS = ("operator", "manager", "staff")
OUTSIDERS = ("other-factory", "customer", "customer-manager", "anonymous")


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _fast_setup(settings) -> None:
    """Pages link site.css without collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@dataclass
class World:
    users: dict[str, User | None]
    machine: Machine  # factory A's, in Munich
    other_machine: Machine  # factory B's, in Hamburg
    job: Job  # ordered by acme, at factory A's machine
    other_customers_job: Job  # ordered by globex, at factory A's machine too
    spool: Spool  # at factory A's site, not loaded
    # Routed to factory A's machine with a copy of a third job of acme's: made by the plate
    # requests only (_plate), so the other tests see the world they always did.
    plate: Plate | None = None


@pytest.fixture
def world() -> World:
    factory_a, factory_b = make_organisation("factory-a"), make_organisation("factory-b")
    acme, globex = make_organisation("acme"), make_organisation("globex")
    machine = make_machine("mk4-a", site=make_site("munich", operator=factory_a))
    other_machine = make_machine("mk4-b", site=make_site("hamburg", operator=factory_b))
    requester = make_user("req", organisation=acme)
    staff = make_user("staff", organisation=globex)
    staff.is_staff = True
    staff.save()
    users: dict[str, User | None] = {
        "operator": make_user("op-a", organisation=factory_a, role="operator"),
        "manager": make_user("mgr-a", organisation=factory_a, role="manager"),
        "staff": staff,
        "other-factory": make_user("op-b", organisation=factory_b, role="operator"),
        "customer": requester,
        "customer-manager": make_user("mgr-acme", organisation=acme, role="manager"),
        "anonymous": None,
    }
    job = make_station_job(user=requester, machine=machine, traveler_pdf=blank_pdf())
    buyer = make_user("buyer", organisation=globex)
    other_customers_job = make_station_job(user=buyer, machine=machine, traveler_pdf=blank_pdf())
    spool = spools.spool_receive(
        material=make_material("pla"), site=machine.site, lot_number="L-1", initial_g=1000
    )
    return World(users, machine, other_machine, job, other_customers_job, spool)


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None and user.is_staff:
        login_with_mfa(client, user)  # staff pass the second factor first
    elif user is not None:
        client.force_login(user)
    return client


# --- the station matrix ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    data: dict[str, Any]
    redirect: str = ""  # where an owner's request is sent (default: the job page for a POST)


def _job(world: World) -> str:
    return f"/station/jobs/{world.job.pk}/"


def _spool(world: World) -> str:
    return f"/station/spools/{world.spool.pk}/"


def _plate(world: World) -> str:
    if world.plate is None:
        requester = world.users["customer"]
        assert requester is not None
        plated = make_station_job(user=requester, machine=world.machine, traveler_pdf=blank_pdf())
        world.plate = Plate.objects.create(
            status=Plate.Status.ROUTED,
            status_changed_at=plated.status_changed_at,
            machine=world.machine,
            material=plated.line.material,
            batch_key="k",
            gcode=plated.job_artifacts.get(kind="gcode").artifact,
            traveler=plated.job_artifacts.get(kind="traveler").artifact,
        )
        PlateCopy.objects.create(
            plate=world.plate, job=plated, copy_index=1, number=1, x_mm=50, y_mm=50
        )
    return f"/station/plates/{world.plate.pk}/"


# URL name -> the requests that exercise it against factory A's machine and acme's job.
STATION_REQUESTS: dict[str, Callable[[World], list[Request]]] = {
    "station": lambda w: [Request("get", "/station/", {})],
    "station-scan": lambda w: [
        Request("get", "/station/scan/", {"code": w.job.number, "machine": w.machine.slug}),
        # A spool's label scanned on the machine's page loads it there.
        Request(
            "post",
            "/station/scan/",
            {"code": w.spool.number, "machine": w.machine.slug},
            redirect=f"/station/machines/{w.machine.slug}/",
        ),
    ],
    "station-machine": lambda w: [Request("get", f"/station/machines/{w.machine.slug}/", {})],
    "station-machine-travelers": lambda w: [
        Request("get", f"/station/machines/{w.machine.slug}/travelers.pdf", {})
    ],
    "station-machine-labels": lambda w: [
        Request("get", f"/station/machines/{w.machine.slug}/labels.pdf", {})
    ],
    "station-site-spools": lambda w: [
        Request("get", f"/station/sites/{w.machine.site.slug}/spools/", {})
    ],
    "station-spool": lambda w: [Request("get", _spool(w), {})],
    "station-spool-label": lambda w: [Request("get", f"{_spool(w)}label.pdf", {})],
    "station-spool-action": lambda w: [
        Request("post", f"{_spool(w)}{action}/", {"machine": w.machine.slug}, redirect=_spool(w))
        for action in SPOOL_ACTIONS
    ],
    "station-job": lambda w: [Request("get", _job(w), {})],
    "station-job-label": lambda w: [Request("get", f"{_job(w)}label.pdf", {})],
    "station-job-traveler": lambda w: [Request("get", f"{_job(w)}traveler.pdf", {})],
    "station-order-costs": lambda w: [
        Request("get", f"/station/orders/{w.job.line.order_id}/costs/", {})
    ],
    "station-job-action": lambda w: [
        Request("post", f"{_job(w)}{action}/", {"scrapped": "1", "reason": "warped"})
        for action in ACTIONS
    ],
    "station-plate": lambda w: [Request("get", _plate(w), {})],
    "station-plate-traveler": lambda w: [Request("get", f"{_plate(w)}traveler.pdf", {})],
    "station-plate-gcode": lambda w: [Request("get", f"{_plate(w)}plate.gcode", {})],
    "station-plate-labels": lambda w: [Request("get", f"{_plate(w)}labels.pdf", {})],
    "station-plate-action": lambda w: [
        Request("post", f"{_plate(w)}{action}/", {"reason": "warped"}, redirect=_plate(w))
        for action in PLATE_ACTIONS
    ],
    # The floor view (production.floor): all the user's sites, one, their live parts, a move.
    "floor": lambda w: [Request("get", "/station/floor/", {})],
    "floor-live": lambda w: [Request("get", "/station/floor-live/", {})],
    "floor-site": lambda w: [Request("get", f"/station/floor/{w.machine.site.slug}/", {})],
    "floor-site-live": lambda w: [
        Request("get", f"/station/floor-live/{w.machine.site.slug}/", {})
    ],
    # A waiting plate's move page: the machines it could go to (the move itself:
    # tests/production/test_floor.py).
    "floor-plate-move": lambda w: [
        Request("get", _plate(w).replace("/station/", "/station/floor/") + "move/", {})
    ],
    "floor-move": lambda w: [
        Request("get", f"/station/floor/jobs/{w.job.pk}/move/", {}),
        # Already first in its queue: refused with a message, back to the floor.
        Request(
            "post",
            f"/station/floor/jobs/{w.job.pk}/move/",
            {"up": "1"},
            redirect=f"/station/floor/{w.machine.site.slug}/",
        ),
    ],
}
# The station's pages that list every machine of the user's sites: 200 for anyone on a floor.
SITE_LISTS = {"/station/", "/station/floor/", "/station/floor-live/"}


# Pages of production's URLconf that are not the station's: the part passport is open to whoever
# holds its token (the traveler's QR code), whatever their organisation (test below).
PUBLIC_BY_TOKEN = {"passport", "passport-copy"}
# Pages about the whole factory or the catalog rather than one of factory A's machines or jobs,
# whose access is tested with them: the what-if (tests/production/simulation/) and the failure
# map of a revision, for catalog admins (tests/production/test_failmap.py).
OWN_ACCESS_TESTS = {
    "station-whatif",
    "station-dashboard",  # tests/production/test_dashboards.py
    "revision-failures",
    "revision-narrow",
}
# Where a login lands (a redirect for everyone: tests/production/test_floor.py).
LANDING = {"after-login"}


def test_the_matrix_covers_every_station_url() -> None:
    names = {pattern.name for pattern in station_urls.urlpatterns} - PUBLIC_BY_TOKEN - LANDING
    names -= OWN_ACCESS_TESTS
    assert names == set(STATION_REQUESTS), "add the new station URL to STATION_REQUESTS"


@pytest.mark.parametrize("role", OWNERS + OUTSIDERS)
def test_the_passport_answers_its_token_whoever_asks_and_nothing_else(
    world: World, role: str
) -> None:
    client = client_for(world.users[role])
    path = f"/passport/{world.job.pk}/{world.job.passport_token}/"
    assert client.get(path).status_code == 200
    assert client.get(f"{path}copies/1/").status_code == 200
    assert client.get(f"/passport/{world.job.pk}/{'0' * 32}/").status_code == 404


# Costs and margins are the factory's managers' (and staff's): its operators get 403.
MANAGERS_ONLY = {"station-order-costs"}

# How many requests each URL name makes (one, but one per action for the actions).
REQUESTS_PER_URL = {
    "station-job-action": len(ACTIONS),
    "station-spool-action": len(SPOOL_ACTIONS),
    "station-scan": 2,
    "station-plate-action": len(PLATE_ACTIONS),
    "floor-move": 2,
}


def station_cases() -> list[tuple[str, int]]:
    """(URL name, index of its request): the ids say which URL failed."""
    return [(name, i) for name in STATION_REQUESTS for i in range(REQUESTS_PER_URL.get(name, 1))]


def expect_owner(response, request: Request, world: World) -> None:
    if request.path in SITE_LISTS:
        assert response.status_code == 200
        page = response.content.decode()
        assert f'data-machine="{world.machine.slug}"' in page
    elif request.redirect:
        assert (response.status_code, response.url) == (302, request.redirect)
    elif request.path == "/station/scan/":
        assert (response.status_code, response.url) == (302, _job(world))
    elif request.method == "post":
        assert (response.status_code, response.url) == (302, _job(world))
    else:
        assert response.status_code == 200, response.content[:300]


def expect_hidden(client: Client, response, request: Request, world: World) -> None:
    """An operator of another factory: nothing of factory A exists for them."""
    if request.path in SITE_LISTS:
        assert response.status_code == 200
        page = response.content.decode()
        assert f'data-machine="{world.machine.slug}"' not in page
        assert f'data-machine="{world.other_machine.slug}"' in page
    elif request.path == "/station/scan/":
        # Back to the station home, not the machine (which they do not see either).
        assert (response.status_code, response.url) == (302, "/station/")
        page = client.get(response.url).content.decode()
        what = "spool" if request.data["code"] == world.spool.number else "job"
        assert f"No {what} found for “{request.data['code']}”" in page
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("role", OWNERS + OUTSIDERS)
@pytest.mark.parametrize(("name", "index"), station_cases())
def test_station_access_matrix(world: World, role: str, name: str, index: int) -> None:
    request = STATION_REQUESTS[name](world)[index]
    client = client_for(world.users[role])
    events = JobEvent.objects.count()
    response = getattr(client, request.method)(request.path, request.data)
    if role in OWNERS:
        if name in MANAGERS_ONLY and role == "operator":
            assert response.status_code == 403
        else:
            expect_owner(response, request, world)
        return
    if role == "other-factory":
        expect_hidden(client, response, request, world)
    elif role == "anonymous":
        assert response.status_code == 302 and response.url.startswith("/login/?next=")
    else:  # a customer's member: the station is not theirs at all
        assert response.status_code == 404
    job = Job.objects.get(pk=world.job.pk)
    assert (job.status, JobEvent.objects.count()) == (Job.Status.DISPATCHED, events)
    assert Spool.objects.get(pk=world.spool.pk).loaded_on_id is None


def test_the_factorys_operator_loads_its_spool_by_scanning_and_an_outsider_cannot(
    world: World,
) -> None:
    scan = {"code": world.spool.number, "machine": world.machine.slug}
    for role in OUTSIDERS:
        client_for(world.users[role]).post("/station/scan/", scan)
        client_for(world.users[role]).post(f"{_spool(world)}load/", {"machine": world.machine.slug})
    assert Spool.objects.get(pk=world.spool.pk).loaded_on_id is None
    client_for(world.users["operator"]).post("/station/scan/", scan)
    assert Spool.objects.get(pk=world.spool.pk).loaded_on_id == world.machine.pk


def test_a_spool_cannot_be_loaded_on_another_factorys_machine(world: World) -> None:
    """Factory A's operator names factory B's machine: not theirs, so nothing is loaded."""
    response = client_for(world.users["operator"]).post(
        f"{_spool(world)}load/", {"machine": world.other_machine.slug}
    )
    assert (response.status_code, response.url) == (302, _spool(world))
    assert Spool.objects.get(pk=world.spool.pk).loaded_on_id is None


def test_the_factorys_operator_acts_on_every_customers_jobs_at_its_sites(world: World) -> None:
    client = client_for(world.users["operator"])
    page = client.get(f"/station/machines/{world.machine.slug}/").content.decode()
    assert world.job.number in page and world.other_customers_job.number in page
    client.post(f"/station/jobs/{world.other_customers_job.pk}/start/")
    job = Job.objects.get(pk=world.other_customers_job.pk)
    assert job.status == Job.Status.RUNNING
    assert job.events.get(step="start").actor == "op-a"


def test_an_outsiders_start_changes_nothing_and_the_owners_start_runs(world: World) -> None:
    for role in OUTSIDERS:
        client_for(world.users[role]).post(f"/station/jobs/{world.job.pk}/start/")
    assert Job.objects.get(pk=world.job.pk).status == Job.Status.DISPATCHED
    client_for(world.users["manager"]).post(f"/station/jobs/{world.job.pk}/start/")
    assert Job.objects.get(pk=world.job.pk).status == Job.Status.RUNNING


def test_a_job_not_at_a_machine_is_staffs_unless_it_remakes_one_of_the_factorys(
    world: World,
) -> None:
    in_pipeline = make_station_job(user=world.users["customer"], machine=world.machine)
    Job.objects.filter(pk=in_pipeline.pk).update(status=Job.Status.TOOLPATH_READY, machine=None)
    remake = make_station_job(user=world.users["customer"], machine=world.machine)
    Job.objects.filter(pk=remake.pk).update(
        status=Job.Status.QUEUED, machine=None, replaces=world.job
    )
    for role, sees_pipeline, sees_remake in (
        ("staff", True, True),
        ("operator", False, True),
        ("manager", False, True),
        ("other-factory", False, False),
    ):
        client = client_for(world.users[role])
        assert client.get(f"/station/jobs/{in_pipeline.pk}/").status_code == (
            200 if sees_pipeline else 404
        ), role
        assert client.get(f"/station/jobs/{remake.pk}/").status_code == (
            200 if sees_remake else 404
        ), role
    # Once routed, the remake belongs to the site it was routed to.
    Job.objects.filter(pk=remake.pk).update(status=Job.Status.ROUTED, machine=world.other_machine)
    assert client_for(world.users["operator"]).get(f"/station/jobs/{remake.pk}/").status_code == 404
    assert (
        client_for(world.users["other-factory"]).get(f"/station/jobs/{remake.pk}/").status_code
        == 200
    )


def test_a_site_without_an_operator_is_staffs_alone(world: World) -> None:
    make_machine("mini-x", site=Site.objects.create(slug="nowhere", name="Nowhere"))
    for role, status in (("staff", 200), ("operator", 404), ("other-factory", 404)):
        response = client_for(world.users[role]).get("/station/machines/mini-x/")
        assert response.status_code == status, role


def test_an_operator_role_in_a_customer_organisation_opens_no_station() -> None:
    """The role counts only in an organisation that operates a site."""
    operator = make_user("op", organisation=make_organisation("customer"), role="operator")
    make_machine("mk4-a", site=make_site("munich", operator=make_organisation("factory")))
    assert not tenancy.is_operator(operator)
    assert client_for(operator).get("/station/").status_code == 404


def test_the_scoping_queries_find_each_factorys_own(world: World) -> None:
    operator, other = world.users["operator"], world.users["other-factory"]
    assert operator is not None and other is not None
    assert list(tenancy.machines_for_operator(operator)) == [world.machine]
    assert list(tenancy.machines_for_operator(other)) == [world.other_machine]
    assert set(tenancy.jobs_for_operator(operator)) == {world.job, world.other_customers_job}
    assert not tenancy.jobs_for_operator(other).exists()
    assert tenancy.jobs_for_operator(world.users["staff"]).count() == Job.objects.count()
    customer = world.users["customer"]
    assert customer is not None
    assert not tenancy.jobs_for_operator(customer).exists()


# --- customers see only their own orders ----------------------------------------------------


def test_customers_see_only_their_own_orders_and_factories_none(world: World) -> None:
    acme_order = world.job.line.order
    globex_order = world.other_customers_job.line.order
    assert Order.objects.count() == 2
    for role, sees_acme, sees_globex in (
        ("customer", True, False),
        ("customer-manager", True, False),
        ("operator", False, False),
        ("other-factory", False, False),
    ):
        client = client_for(world.users[role])
        for order, sees in ((acme_order, sees_acme), (globex_order, sees_globex)):
            assert client.get(f"/orders/{order.pk}/").status_code == (200 if sees else 404), role
        api = APIClient()
        api.force_authenticate(world.users[role])
        listed = {row["id"] for row in api.get("/api/v1/orders/").json()["results"]}
        assert listed == {
            o.pk for o, sees in ((acme_order, sees_acme), (globex_order, sees_globex)) if sees
        }


# --- the machine and job API -------------------------------------------------------------------


def api_routes() -> set[str]:
    """The API's machine and job routes, as written in the URLconf."""
    (api_patterns, _namespace) = project_urls.api
    routes = set()
    for entry in api_patterns:
        if isinstance(entry, URLResolver):
            patterns = entry.url_patterns
        else:
            patterns = [entry]
        for pattern in patterns:
            assert isinstance(pattern, URLPattern | URLResolver)
            route = str(pattern.pattern)
            if route.startswith(("machines/", "jobs/")):
                routes.add(route)
    return routes


# route -> {role: expected status} for a GET (and the PATCH below for machine detail).
API_GET: dict[str, dict[str, int]] = {
    "machines/": {
        "operator": 200,
        "manager": 200,
        "staff": 200,
        "other-factory": 200,  # their own machines only: checked below
        "customer": 403,
        "customer-manager": 403,
        "anonymous": 401,
    },
    "machines/<slug:slug>/": {
        "operator": 200,
        "manager": 200,
        "staff": 200,
        "other-factory": 404,
        "customer": 403,
        "customer-manager": 403,
        "anonymous": 401,
    },
    # The customer's read of a job (orders.api): its own organisation's jobs only.
    "jobs/<id:job_id>/": {
        "operator": 404,
        "manager": 404,
        "staff": 404,  # staff read jobs at the station and in the admin
        "other-factory": 404,
        "customer": 200,
        "customer-manager": 200,
        "anonymous": 401,
    },
    "jobs/<id:job_id>/artifacts/<str:kind>/": {
        "operator": 200,
        "manager": 200,
        "staff": 200,
        "other-factory": 404,
        "customer": 200,
        "customer-manager": 200,
        "anonymous": 401,
    },
    # Hashes and signatures only; the same readers as the job's files.
    "jobs/<id:job_id>/passport/": {
        "operator": 200,
        "manager": 200,
        "staff": 200,
        "other-factory": 404,
        "customer": 200,
        "customer-manager": 200,
        "anonymous": 401,
    },
    # Costs: the factory's managers and staff; its operators see no prices.
    "jobs/<id:job_id>/cost/": {
        "operator": 403,
        "manager": 200,
        "staff": 200,
        "other-factory": 404,
        "customer": 403,
        "customer-manager": 403,
        "anonymous": 401,
    },
}
# A machine reports with its own token, never a user's session: covered in test_machines.py.
MACHINE_TOKEN_ROUTES = {"machines/<slug:slug>/telemetry/"}


def test_the_api_matrix_covers_every_machine_and_job_route() -> None:
    assert api_routes() == set(API_GET) | MACHINE_TOKEN_ROUTES


def api_for(user: User | None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def api_path(route: str, world: World) -> str:
    return "/api/v1/" + (
        route.replace("<slug:slug>", world.machine.slug)
        .replace("<id:job_id>", str(world.job.pk))
        .replace("<str:kind>", Artifact.Kind.TRAVELER)
    )


@pytest.mark.parametrize("role", OWNERS + OUTSIDERS)
@pytest.mark.parametrize("route", sorted(API_GET))
def test_api_access_matrix(world: World, role: str, route: str) -> None:
    response = api_for(world.users[role]).get(api_path(route, world))
    assert response.status_code == API_GET[route][role], response.content[:300]
    if route == "machines/" and response.status_code == 200:
        listed = {row["slug"] for row in response.json()}
        expected = {
            "staff": {"mk4-a", "mk4-b"},
            "other-factory": {"mk4-b"},
        }.get(role, {"mk4-a"})
        assert listed == expected


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("manager", 200),
        ("staff", 200),
        ("operator", 403),  # operators read machines; the factory's managers change them
        ("other-factory", 404),
        ("customer", 403),
        ("customer-manager", 403),
        ("anonymous", 401),
    ],
)
def test_changing_a_machine_is_for_staff_and_the_factorys_managers(
    world: World, role: str, status: int
) -> None:
    response = api_for(world.users[role]).patch(
        f"/api/v1/machines/{world.machine.slug}/", {"queue_limit": 3}, format="json"
    )
    assert response.status_code == status, response.content[:300]
    assert Machine.objects.get(pk=world.machine.pk).queue_limit == (3 if status == 200 else 10)


def test_a_factory_manager_cannot_point_a_machine_at_another_address(world: World) -> None:
    api = api_for(world.users["manager"])
    response = api.patch(
        f"/api/v1/machines/{world.machine.slug}/",
        {"connector": "octoprint", "connector_url": "http://10.0.0.1/"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json() == {"message": "connector settings are changed by staff"}
    assert Machine.objects.get(pk=world.machine.pk).connector == "manual"


def test_an_operator_downloads_the_gcode_of_a_job_at_the_site_but_not_elsewhere(
    world: World,
) -> None:
    other = make_station_job(user=world.users["customer"], machine=world.other_machine)
    attach(other, Artifact.Kind.TRAVELER, blank_pdf(), {})
    api = api_for(world.users["operator"])
    assert api.get(f"/api/v1/jobs/{world.job.pk}/artifacts/gcode/").status_code == 200
    assert api.get(f"/api/v1/jobs/{other.pk}/artifacts/gcode/").status_code == 404
    # The customer who ordered both reads both.
    customer = api_for(world.users["customer"])
    assert customer.get(f"/api/v1/jobs/{other.pk}/artifacts/gcode/").status_code == 200


# --- the migration ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_sites_a_factory_whose_operators_are_the_old_ones() -> None:
    """Before sites had operators, any operator worked at any site: the migration keeps that."""
    before = [("production", "0012_machine_files_to_remove")]
    after = [("production", "0013_site_operator_and_default_factory")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    acme = old.get_model("orders", "Organisation").objects.create(slug="acme", name="Acme")
    user_model = old.get_model("auth", "User")
    membership = old.get_model("orders", "Membership")
    for username, role in (("op", "operator"), ("req", "requester")):
        user = user_model.objects.create(username=username)
        membership.objects.create(user=user, organisation=acme, role=role)
    old.get_model("production", "Site").objects.create(slug="north", name="North")

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    # Then to the latest state again (later migrations included), which the next tests need.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    site = Site.objects.select_related("operator").get(slug="north")
    assert (site.operator.slug, site.operator.name) == ("microfactory", "Microfactory")
    floor = {m.user.username: m.role for m in site.operator.memberships.select_related("user")}
    assert floor == {"op": "operator"}
    assert tenancy.is_operator(User.objects.get(username="op"))
    assert not tenancy.is_operator(User.objects.get(username="req"))
