"""Every page a user can open fits a 390 px phone: no sideways scrolling, nothing sticking out.

A real headless Chromium at 390 x 844 (conftest.PHONE) visits every HTML page of the project's
URLconf, signed in as the user who opens it (requester, approver, operator, manager, the
catalog admin past the second factor, or nobody), in the states that change its layout (an
empty and a full cart, a job at the machine and one awaiting QC with its measurement inputs...).
On each it checks that the document is no wider than the window and that no element's right
edge is past the window's, naming the offenders by selector.

The pages come from the URLconf: a URL name without an entry in PAGES (or ADMIN_PAGES, or a
rule of NOT_PAGES saying why it is no page) fails test_every_url_is_a_page_or_says_why_not. To
add a page: add `"url-name": lambda w: [Visit("who", "/its/path/")]` to PAGES, "who" being a
demo username (requester, approver, operator, manager, admin) or "" for nobody, and the path
built from the World (add what it needs to World and make_world()). The admin's pages of every
registered model come from the admin site itself (admin_model_pages); a model needs one row in
make_world().
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import trimesh
from axes.models import AccessFailureLog
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver

from catalog.models import PartFamily, PartPreview
from catalog.parameters import defaults, parse_schema
from catalog.previews import preview_build
from microfactory import urls as project_urls
from microfactory.accounts.services import api_token_create
from microfactory.celery import app as celery_app
from orders.models import Asset, CustomerUpload, Order, SavedQuote, Team, Webhook, WebhookDelivery
from orders.saved_quotes import quote_save
from orders.services import LineRequest
from orders.uploads import upload_create
from production import station
from production.models import Job, Machine, MachineTelemetry, Plate, PlateCopy, Spool
from production.passport import passport_record
from tests.builders import login_with_mfa, make_order, make_part
from tests.integration.conftest import _use_broker
from tests.production.test_station import make_station_job

# What it measures is layout, widths in pixels, which the database cannot change: it runs once.
pytestmark = [pytest.mark.browser, pytest.mark.db_independent, pytest.mark.timeout(600)]

WIDTH = 390
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


# --- the URLconf -----------------------------------------------------------------------------


def url_routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(URL name, route) for every named route of the project, names qualified by namespace
    ("accounts:tokens")."""
    for pattern in project_urls.urlpatterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from url_routes(pattern.url_patterns, route, inner)
        elif pattern.name:
            yield f"{namespace}{pattern.name}", route


# Routes that are no page, by rule: (why, test on the URL name and route).
NOT_PAGES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("the REST API answers JSON", lambda name, route: name.startswith("api:")),
    (
        "a file (PDF, preview model or drawing, G-code...): the route ends in a file name",
        lambda name, route: bool(re.search(r"\.(pdf|gcode|<str:kind>)$", route)),
    ),
    (
        "a form's POST target (it answers a GET with 405): the page holding the form is visited",
        lambda name, route: (
            name
            in {
                "part-configure",
                "cart-add",
                "cart-remove",
                "order-action",
                "logout",
                "accounts:token-revoke",
                "station-job-action",
                "station-spool-action",
                "station-plate-action",
                "asset-down",
                "asset-part-remove",
                "part-save-to-asset",
                "line-save-to-asset",
                "cart-save-quote",
                "saved-quote-share",
                "saved-quote-requote",
                "upload-add",
                "upload-scale",
            }
        ),
    ),
    (
        "an htmx fragment, measured inside the page that loads it (the catalog's drawings, an "
        "upload's configuration)",
        lambda name, route: (
            name in {"part-drawing", "upload-configure", "floor-live", "floor-site-live"}
        ),
    ),
    ("a saved quote's PDF for purchasing", lambda name, route: name == "saved-quote-pdf"),
    (
        "where a login lands: a redirect (floor or catalog)",
        lambda name, route: name == "after-login",
    ),
    (
        "the liveness probe: 'ok' in plain text (and the web benchmark's ceiling)",
        lambda name, route: name == "healthz",
    ),
    (
        "the developer's mail viewer: only under DEBUG (`make run`), for staff, 404 otherwise",
        lambda name, route: name == "dev-mail",
    ),
    (
        "Django's admin: a script (its translations), an answer for a select box (JSON), the "
        "object's own page (a redirect), the login and logout (the admin's user is signed in; "
        "logging out is a POST)",
        lambda name, route: (
            name
            in {
                "admin:jsi18n",
                "admin:autocomplete",
                "admin:view_on_site",
                "admin:login",
                "admin:logout",
            }
        ),
    ),
]


def why_not_a_page(name: str, route: str) -> str | None:
    return next((why for why, test in NOT_PAGES if test(name, route)), None)


# --- the world the pages show ------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User]  # seed_demo's users by username
    order: Order  # the requester's, waiting for the approver (above the team's threshold)
    asset: Asset  # the requester's team's, with its spare parts (seed_demo)
    quote: SavedQuote  # the requester's, saved from the order's line
    upload: CustomerUpload  # the requester's own model, being checked
    job: Job  # at the machine, ready to start
    qc_job: Job  # finished, awaiting QC: the measurement inputs
    machine: Machine
    spool: Spool  # loaded on the machine, with the QC job's filament booked
    plate: Plate  # finished on the machine, its copies awaiting QC (#13)


@dataclass(frozen=True)
class Visit:
    who: str  # a username of World.users, or "" for nobody signed in
    path: str
    ready: str = ""  # a selector the page shows once its htmx parts are loaded


# URL name -> the visits that show it in the states that change its layout.
PAGES: dict[str, Callable[[World], list[Visit]]] = {
    "home": lambda w: [
        Visit("requester", "/", ready=".part-card"),
        Visit("requester", "/?q=no-such-part-at-all-in-the-catalog"),
    ],
    "part": lambda w: [
        Visit("requester", "/parts/shaft-collar/", ready="#viewer[data-state=shown]"),
        Visit("requester", "/parts/spur-gear/", ready="#quote"),  # its model being made
    ],
    "cart": lambda w: [Visit("approver", "/cart/"), Visit("requester", "/cart/")],
    "orders": lambda w: [Visit("requester", "/orders/"), Visit("approver", "/orders/")],
    "order": lambda w: [
        Visit("requester", f"/orders/{w.order.pk}/"),
        Visit("approver", f"/orders/{w.order.pk}/"),  # with the approve/reject form
        Visit("requester", f"/orders/{w.job.line.order_id}/"),  # in production
    ],
    "approvals": lambda w: [Visit("approver", "/approvals/")],
    "order-reorder": lambda w: [
        Visit("requester", f"/orders/{w.order.pk}/reorder/?revision=latest"),
    ],
    "assets": lambda w: [Visit("requester", "/assets/")],
    "asset-new": lambda w: [Visit("requester", "/assets/new/")],
    "asset": lambda w: [Visit("requester", f"/assets/{w.asset.pk}/")],
    "asset-edit": lambda w: [Visit("requester", f"/assets/{w.asset.pk}/edit/")],
    "asset-order": lambda w: [Visit("requester", f"/assets/{w.asset.pk}/order/")],
    "saved-quotes": lambda w: [Visit("requester", "/quotes/"), Visit("approver", "/quotes/")],
    "saved-quote": lambda w: [Visit("requester", f"/quotes/{w.quote.pk}/")],
    "uploads": lambda w: [Visit("requester", "/uploads/")],
    "upload": lambda w: [Visit("requester", f"/uploads/{w.upload.pk}/")],
    "login": lambda w: [Visit("", "/login/")],
    "api-docs": lambda w: [Visit("requester", "/api/docs/", ready=".swagger-ui .info")],
    "accounts:tokens": lambda w: [Visit("requester", "/account/tokens/")],
    "accounts:mfa-setup": lambda w: [Visit("requester", "/account/mfa/setup/")],
    "accounts:mfa-verify": lambda w: [Visit("admin-before-code", "/account/mfa/verify/")],
    "station": lambda w: [Visit("operator", "/station/"), Visit("manager", "/station/")],
    "station-scan": lambda w: [
        # A code nobody has: back at the station home, with the message.
        Visit("operator", "/station/scan/?code=J-000000000000-NOT-A-JOB-WITH-A-LONG-CODE"),
    ],
    "station-machine": lambda w: [Visit("operator", f"/station/machines/{w.machine.slug}/")],
    "floor": lambda w: [Visit("operator", "/station/floor/"), Visit("manager", "/station/floor/")],
    "floor-site": lambda w: [Visit("operator", f"/station/floor/{w.machine.site.slug}/")],
    "floor-move": lambda w: [Visit("operator", f"/station/floor/jobs/{w.job.pk}/move/")],
    "floor-plate-move": lambda w: [
        Visit("operator", f"/station/floor/plates/{w.plate.pk}/move/")  # finished: not moved
    ],
    "station-site-spools": lambda w: [
        Visit("operator", f"/station/sites/{w.machine.site.slug}/spools/")
    ],
    "station-spool": lambda w: [Visit("operator", f"/station/spools/{w.spool.pk}/")],
    "station-job": lambda w: [
        Visit("operator", f"/station/jobs/{w.job.pk}/"),
        Visit("operator", f"/station/jobs/{w.qc_job.pk}/"),  # the QC inputs
        Visit("manager", f"/station/jobs/{w.qc_job.pk}/"),  # with its costs
    ],
    "station-plate": lambda w: [Visit("operator", f"/station/plates/{w.plate.pk}/")],
    "station-order-costs": lambda w: [
        Visit("manager", f"/station/orders/{w.job.line.order_id}/costs/")
    ],
    # The manager dashboard (#15.2): its charts drawn.
    "station-dashboard": lambda w: [
        Visit("manager", "/station/dashboard/", ready="#chart-oee[data-drawn=yes]")
    ],
    # Issue #15.4: the form, and a run of the last four weeks with no change.
    "station-whatif": lambda w: [
        Visit("manager", "/station/what-if/"),
        Visit("manager", "/station/what-if/?run=1"),
    ],
    "passport": lambda w: [Visit("", f"/passport/{w.qc_job.pk}/{w.qc_job.passport_token}/")],
    "passport-copy": lambda w: [
        Visit("", f"/passport/{w.qc_job.pk}/{w.qc_job.passport_token}/copies/1/")
    ],
}


# The admin site's pages of each registered model (Django's admin, where catalog admins work):
# the list, the add form and, for its first row, the change form, history and delete page.
ADMIN_MODEL_VIEWS = ("changelist", "add", "change", "history", "delete")


def admin_model_pages() -> dict[str, Callable[[World], list[Visit]]]:
    pages: dict[str, Callable[[World], list[Visit]]] = {}
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        prefix = f"admin:{meta.app_label}_{meta.model_name}_"

        def visits(w: World, view: str, model=model, model_admin=model_admin, base=base, meta=meta):
            request = RequestFactory().get(base)
            request.user = w.users["admin"]
            if view == "changelist":
                return [Visit("admin", base)]
            if view == "add":
                allowed = model_admin.has_add_permission(request)
                return [Visit("admin", f"{base}add/")] if allowed else []
            first = model._default_manager.order_by("pk").first()
            assert first is not None, f"make_world() makes no {meta.verbose_name} to show"
            if view == "delete" and not model_admin.has_delete_permission(request, first):
                return []  # never deleted (revisions, events: the audit trail)
            return [Visit("admin", f"{base}{first.pk}/{view}/")]

        for view in ADMIN_MODEL_VIEWS:
            pages[prefix + view] = lambda w, view=view, visits=visits: visits(w, view)
    return pages


ADMIN_PAGES: dict[str, Callable[[World], list[Visit]]] = {
    "admin:index": lambda w: [Visit("admin", "/admin/")],
    "admin:app_list": lambda w: [
        Visit("admin", f"/admin/{app}/")
        for app in sorted({m._meta.app_label for m in admin.site._registry})
    ],
    "admin:password_change": lambda w: [Visit("admin", "/admin/password_change/")],
    "admin:password_change_done": lambda w: [Visit("admin", "/admin/password_change/done/")],
    "admin:auth_user_password_change": lambda w: [
        Visit("admin", f"/admin/auth/user/{w.users['admin'].pk}/password/")
    ],
    "admin:catalog_partrevision_build": lambda w: [
        Visit("admin", f"/admin/catalog/partrevision/{w.job.line.revision_id}/build/")
    ],
    # Where a revision's parts fail, and narrowing a range from there (production.failmap_views).
    "revision-failures": lambda w: [
        Visit("admin", f"/failures/revisions/{w.job.line.revision_id}/")
    ],
    "revision-narrow": lambda w: [
        Visit(
            "admin",
            f"/failures/revisions/{w.job.line.revision_id}/narrow/?parameter=width&min=10&max=300",
        )
    ],
}


def all_pages() -> dict[str, Callable[[World], list[Visit]]]:
    return PAGES | ADMIN_PAGES | admin_model_pages()


def test_every_url_is_a_page_or_says_why_not() -> None:
    unaccounted = {
        name for name, route in url_routes() if why_not_a_page(name, route) is None
    } - set(all_pages())
    assert not unaccounted, (
        f"add {sorted(unaccounted)} to PAGES in {__name__} (URL name -> visits: who, path), "
        "or to NOT_PAGES if it answers no HTML page"
    )
    assert set(all_pages()) <= {name for name, _ in url_routes()}, "a page's URL is gone"


@pytest.fixture
def world() -> Iterator[World]:
    # No worker: the messages the pages send go nowhere, at once (a Redis nobody runs would be
    # tried again and again). The one preview the part page shows is built below, here.
    previous = celery_app.conf.broker_url
    _use_broker("memory://")
    try:
        yield make_world()
    finally:
        _use_broker(previous)


def make_world() -> World:
    call_command("seed_demo", verbosity=0)  # the demo network, its users and demo orders
    users = {user.username: user for user in User.objects.all()}
    # The part page's 3D model and the catalog card's drawing of the shaft collar, as a worker
    # builds them when the page asks (CadQuery, a few seconds).
    client = Client()
    client.force_login(users["requester"])
    assert client.get("/parts/shaft-collar/").status_code == 200
    for preview in PartPreview.objects.exclude(status=PartPreview.Status.READY):
        assert preview_build(preview_id=preview.pk) == PartPreview.Status.READY
    requester, operator = users["requester"], users["operator"]
    machine = Machine.objects.get(slug="mk4-1")
    # The station's jobs: the block part of the tests' builders, with its three QC dimensions.
    make_part("block")
    job = make_station_job(user=requester, machine=machine)
    qc_job = make_station_job(user=requester, machine=machine, quantity=3)
    station.job_start(job_id=qc_job.pk, operator=operator, now=NOW)
    station.job_finish(job_id=qc_job.pk, operator=operator, now=NOW)
    plate = make_world_plate(requester, machine)
    # Above the team's approval threshold (lowered for the block's price): it waits for the
    # approver.
    Team.objects.filter(memberships__user=requester).update(approval_threshold=Decimal("1.00"))
    order = make_order(user=requester, quantity=4)
    # A row of every model the admin lists, for its change, history and delete pages (and the
    # pages that show them: the requester's token, the QC job's passport).
    passport_record(job=qc_job, step="geometry", files=[], fields={}, now=NOW)
    api_token_create(user=requester, name="CMMS (Maximo, line 3 integration)", expires_in=None)
    Group.objects.create(name="Catalog admins")
    webhook = Webhook.objects.create(
        organisation=order.organisation,
        url="https://cmms.example.com/hooks/microfactory",
        secret="s",
    )
    WebhookDelivery.objects.create(webhook=webhook, event="order.approved", payload={"order": 1})
    MachineTelemetry.objects.create(
        machine=machine, recorded_at=NOW, state=Machine.State.IDLE, temperatures={"nozzle": 24.5}
    )
    failed = Client().post("/login/", {"username": "requester", "password": "not it"})
    assert failed.status_code == 200  # one failed login: an access attempt (django-axes)
    AccessFailureLog.objects.create(  # which these settings do not log: a row by hand
        username="requester",
        ip_address="127.0.0.1",
        user_agent="Mobile Safari",
        path_info="/login/",
    )
    assert order.status == Order.Status.AWAITING_APPROVAL, order.status
    spool = Spool.objects.filter(loaded_on=machine).get()
    line = order.lines.get()
    quote = quote_save(
        user=requester,
        lines=[
            LineRequest(
                line.revision.family.slug,
                line.parameters,
                line.material.slug,
                2,
                revision=line.revision.number,
            )
        ],
        reference="WO-2026-0142 line 3 packer",
    )
    upload = upload_create(
        user=requester,
        name="Conveyor guide rail end cap (customer model)",
        upload=SimpleUploadedFile("end-cap.stl", trimesh.creation.box((30, 20, 8)).export("stl")),
    )
    asset = Asset.objects.get(tag="L3-PACK-01")
    return World(
        users,
        order,
        asset,
        quote,
        upload,
        job,
        Job.objects.get(pk=qc_job.pk),
        machine,
        spool,
        plate,
    )


def make_world_plate(requester: User, machine: Machine) -> Plate:
    """A plate of three copies finished on the machine, awaiting QC copy by copy: the plate
    page with its map and its QC form (rows as the worker and the station would leave them)."""
    job = make_station_job(user=requester, machine=machine, quantity=3)
    plate = Plate.objects.create(
        status=Plate.Status.FINISHED,
        status_changed_at=NOW,
        machine=machine,
        material=job.line.material,
        batch_key="demo",
        gcode=job.job_artifacts.get(kind="gcode").artifact,
        map_svg=(
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 250 210">'
            '<rect x="0" y="0" width="250" height="210" fill="none" stroke="#000"/></svg>'
        ),
        estimated_time_s=5400,
        filament_g=31.5,
        layers=50,
        engine="builtin",
    )
    for n in (1, 2, 3):
        PlateCopy.objects.create(
            plate=plate, job=job, copy_index=n, number=n, x_mm=30.0 * n, y_mm=40.0
        )
    return plate


# --- the measurement -------------------------------------------------------------------------

# What sticks out of the window: every rendered element whose right edge is past it, unless an
# ancestor clips it (overflow hidden or clip: the 3D viewer's canvas). A box that scrolls
# sideways inside the page (overflow auto or scroll wider than itself) is an offender too: a
# table in a scrolling box is still a sideways scroll on a phone. So is a box whose own text runs
# past the window. Form fields scroll their own text and are left out of these two checks.
OVERFLOW = """
() => {
  const width = document.documentElement.clientWidth;
  const name = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) return `${text}#${el.id}`;
    if (el.classList.length) text += "." + [...el.classList].join(".");
    return text;
  };
  const path = (el) => {
    const parts = [];
    let node = el;
    for (; node && node !== document.body && parts.length < 4; node = node.parentElement) {
      parts.unshift(name(node));
      if (node.id) break;
    }
    return parts.join(" > ");
  };
  const clipped = (el) => {
    for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (["hidden", "clip"].includes(style.overflowX)
          && node.getBoundingClientRect().right <= width + 0.5) return true;
    }
    return false;
  };
  const offenders = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (getComputedStyle(el).visibility === "hidden") continue;
    if (box.right > width + 0.5 && !clipped(el)) {
      offenders.push(`${path(el)} (right edge at ${Math.round(box.right)} px)`);
      continue;
    }
    const style = getComputedStyle(el);
    if (["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName)) continue;
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      offenders.push(`${path(el)} (scrolls sideways: ${el.scrollWidth} px in ${el.clientWidth})`);
    } else if (style.overflowX === "visible" && el.clientWidth
               && box.left + el.scrollWidth > width + 0.5 && !clipped(el)) {
      // Its own text runs out of its box and past the window (a long word, a nowrap line).
      offenders.push(`${path(el)} (its text runs to ${Math.round(box.left + el.scrollWidth)} px)`);
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    clientWidth: width,
    offenders: offenders,
  };
}
"""


def overflow(page) -> list[str]:
    """What makes the page wider than the phone, if anything."""
    measured = page.evaluate(OVERFLOW)
    # The layout viewport is the phone's; a page wider than it makes a phone's browser zoom out
    # (window.innerWidth grows with it) or scroll sideways.
    assert measured["clientWidth"] == WIDTH, measured
    wide = max(measured["scrollWidth"], measured["innerWidth"])
    document = [f"the document is {wide} px wide"] if wide > WIDTH else []
    return document + measured["offenders"]


def signed_in(user: User, *, second_factor: bool) -> Client:
    """A signed-in session for `user`, as after the login form (and the code, for those who
    need one): the browser carries its cookie."""
    client = Client()
    if second_factor:
        login_with_mfa(client, user)
    else:
        client.force_login(user)
    return client


def add_to_cart(client: Client, slug: str, *, quantity: int) -> None:
    """The part in its default configuration, as the part page's form sends it."""
    revision = PartFamily.objects.get(slug=slug).current_revision()
    assert revision is not None
    form = {
        f"p_{name}": value
        for name, value in defaults(parse_schema(revision.parameter_schema)).items()
    }
    form |= {"material": revision.materials.first().slug, "quantity": str(quantity)}
    response = client.post(f"/parts/{slug}/add/", form)
    assert response.status_code == 302 and response["Location"] == "/cart/", response


def visit_every_page(
    page, base_url: str, world: World, pages: dict[str, Callable[[World], list[Visit]]], shots
) -> None:
    """Each page, signed in as its user; fails listing every visit that overflows."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    clients = {
        # The catalog admin signed in with the password, the code not typed yet.
        "admin-before-code": signed_in(world.users["admin"], second_factor=False),
        **{
            name: signed_in(user, second_factor=name == "admin")
            for name, user in world.users.items()
        },
    }
    # The requester's cart holds two lines; the approver's is empty.
    add_to_cart(clients["requester"], "shaft-collar", quantity=2)
    add_to_cart(clients["requester"], "spur-gear", quantity=12)
    cookies = {
        name: client.cookies[settings.SESSION_COOKIE_NAME].value for name, client in clients.items()
    }
    failures: list[str] = []
    visited = 0
    for name, visits in pages.items():
        for visit in visits(world):
            page.context.clear_cookies()
            if visit.who:
                cookie = {"name": settings.SESSION_COOKIE_NAME, "value": cookies[visit.who]}
                page.context.add_cookies([cookie | {"url": base_url}])
            response = page.goto(f"{base_url}{visit.path}")
            assert response is not None and response.ok, f"{name}: {visit.path} answered {response}"
            assert "text/html" in response.headers["content-type"], f"{name}: not HTML"
            if visit.ready:
                page.wait_for_selector(visit.ready)
            if visit.path.startswith("/admin/"):
                # Django's admin fetches nothing after its load event (goto waits for it):
                # the fonts are all that can still change the layout. networkidle would add
                # its 0.5 s of quiet to each of ~150 admin visits.
                page.evaluate("document.fonts.ready.then(() => true)")
            else:
                page.wait_for_load_state("networkidle")  # htmx fragments load after the page
            problems = overflow(page)
            # And with the header's menu open, where the page has one folded.
            if page.locator(".menu-toggle").is_visible():
                page.click(".menu-toggle")
                assert page.locator("#site-nav").is_visible(), f"{name}: the menu does not open"
                problems += [f"(menu open) {problem}" for problem in overflow(page)]
            elif page.locator("header.top").count():  # our pages (not the admin's, Swagger's)
                problems.append(f"the site's links do not fold behind a menu at {WIDTH} px")
            visited += 1
            if problems:  # a screenshot of each page that overflows, to see why
                shot = re.sub(r"[^a-z0-9]+", "-", f"{name}-{visit.who}-{visit.path}".lower())
                page.screenshot(path=str(shots / f"{shot}.png"), full_page=True)
                failures.append(
                    f"{name} as {visit.who or 'nobody'} at {visit.path} ({page.url}):\n    "
                    + "\n    ".join(problems[:12])
                )
    print(f"{visited} visits of {len(pages)} pages at {WIDTH} px; overflowing ones in {shots}")
    assert not failures, f"{len(failures)} of {visited} visits overflow at {WIDTH} px:\n" + (
        "\n".join(failures)
    )
    assert errors == [], errors


@pytest.mark.django_db(transaction=True)
def test_every_page_fits_a_phone(live_server, phone_page, world: World, tmp_path) -> None:
    visit_every_page(phone_page, live_server.url, world, PAGES, tmp_path)


@pytest.mark.django_db(transaction=True)
def test_every_admin_page_fits_a_phone(live_server, phone_page, world: World, tmp_path) -> None:
    pages = ADMIN_PAGES | admin_model_pages()
    visit_every_page(phone_page, live_server.url, world, pages, tmp_path)


def test_the_check_finds_a_table_wider_than_the_phone(phone_page) -> None:
    """The visits above judge pages by overflow(): it must name what is too wide."""
    phone_page.set_content(
        '<meta name="viewport" content="width=device-width">'
        '<p>fits</p><table id="wide"><tr><td style="min-width:900px">wide</td></tr></table>'
    )
    problems = overflow(phone_page)
    assert problems and problems[0].startswith("the document is"), problems
    phone_page.set_content('<meta name="viewport" content="width=device-width"><p>fits</p>')
    assert overflow(phone_page) == []
