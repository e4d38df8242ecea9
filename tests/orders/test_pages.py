"""The ordering pages: catalog, configurator (live validation, preview, DFM, quote), cart,
checkout (one order per form, however often it is sent), orders, approvals."""

import re

import pytest
from django.test import Client

from catalog.models import Material, PartFamily, PartPreview
from catalog.previews import preview_build
from orders.models import Order, Status
from production.dfm_previews import preview_dfm_check
from production.models import PreviewDfm
from tests.builders import (
    make_machine,
    make_material,
    make_order,
    make_organisation,
    make_part,
    make_user,
)
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

FORM = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    PartFamily.objects.filter(slug="block").update(category="Blocks", tags="cube, M5")
    make_part("washer", materials=[make_material("petg")])
    make_machine()


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def cards(html: str) -> list[str]:
    return re.findall(r'data-part="([^"]+)"', html)


def test_the_catalog_searches_and_filters(browser):
    assert cards(browser.get("/").content.decode()) == ["block", "washer"]
    assert cards(browser.get("/?q=m5").content.decode()) == ["block"]
    assert cards(browser.get("/?category=Blocks").content.decode()) == ["block"]
    assert cards(browser.get("/?material=petg").content.decode()) == ["washer"]
    assert cards(browser.get("/?process=fdm").content.decode()) == ["block", "washer"]
    assert cards(browser.get("/?process=laser").content.decode()) == []


def test_a_card_drawing_is_the_default_configurations_svg(browser):
    html = browser.get("/parts/block/drawing/").content.decode()
    assert "being made" in html and PartPreview.objects.get().status == "queued"
    preview = PartPreview.objects.get()
    PartPreview.objects.filter(pk=preview.pk).update(status="ready", svg="catalog/previews/x.svg")
    html = browser.get("/parts/block/drawing/").content.decode()
    assert f"/previews/{preview.key}.svg" in html


def test_the_part_page_has_a_form_from_the_schema_with_units_and_ranges(browser):
    html = browser.get("/parts/block/").content.decode()
    assert 'name="p_width"' in html and 'min="5.0"' in html and "5 – 400 mm" in html
    assert "(mm)" in html and 'id="viewer"' in html
    assert "vendor/three/build/three.module.js" in html and "vendor/htmx/htmx.min.js" in html
    assert "http://" not in re.sub(r"http://testserver", "", html.split("<main>")[0])


def test_configuring_shows_the_validation_modules_field_errors(browser):
    response = browser.post("/parts/block/configure/", {**FORM, "p_width": "2"})
    html = response.content.decode()
    assert (
        'id="err-width" hx-swap-oob="true"><li>Width must be at least 5 mm (got 2 mm)</li>' in html
    )
    assert 'data-state="invalid"' in html
    rule = browser.post("/parts/block/configure/", {**FORM, "p_hole_d": "19"}).content.decode()
    assert "the hole must leave 1 mm of wall" in rule
    bad_quantity = browser.post(
        "/parts/block/configure/", {**FORM, "quantity": "0"}
    ).content.decode()
    assert "Quantity must be from 1 to 500 parts" in bad_quantity


def test_a_valid_configuration_queues_a_preview_and_shows_dfm_and_a_quote(browser):
    html = browser.post("/parts/block/configure/", FORM).content.decode()
    assert 'data-state="valid"' in html and "Building the preview" in html
    assert PartPreview.objects.get().status == "queued"
    assert "fits on MK4-1" in html and 'id="quote-total"' in html
    preview = PartPreview.objects.get()
    PartPreview.objects.filter(pk=preview.pk).update(
        status="ready", stl="catalog/previews/x.stl", volume_mm3=3000.0, bbox_mm=[20, 20, 10]
    )
    ready = browser.post("/parts/block/configure/", FORM).content.decode()
    assert f'data-stl-url="/previews/{preview.key}.stl"' in ready
    assert "Measured on the built geometry" in ready
    total = lambda html: re.search(r'data-total="([\d.]+)"', html).group(1)  # noqa: E731
    more = browser.post("/parts/block/configure/", {**FORM, "quantity": "5"}).content.decode()
    assert total(more) != total(ready)


def test_the_part_page_kept_for_the_quote_period_is_still_each_visitors_own(user, organisation):
    """The default configuration's fragment is rendered once per quote period (orders.views):
    what is the visitor's, around it, is not: their name, their CSRF token."""
    other = make_user("harbour", organisation=make_organisation("harbour"))
    pages = {}
    for visitor in (user, other, user):
        client = Client()
        client.force_login(visitor)
        html = client.get("/parts/block/").content.decode()
        assert f"Log out {visitor.username}" in html and 'data-state="valid"' in html
        pages.setdefault(visitor.username, []).append(html)
    csrf = lambda html: re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]  # noqa: E731
    assert "Log out harbour" not in pages[user.username][0] + pages[user.username][1]
    assert csrf(pages["harbour"][0]) not in pages[user.username][0] + pages[user.username][1]


def test_a_catalog_change_shows_on_the_part_page_at_once(browser):
    """Kept per catalog generation: a material's new price is quoted at the next visit."""
    total = lambda html: re.search(r'data-total="([\d.]+)"', html)[1]  # noqa: E731
    before = total(browser.get("/parts/block/").content.decode())
    assert total(browser.get("/parts/block/").content.decode()) == before
    material = Material.objects.get(slug="pla")
    material.price_per_kg *= 4
    material.save()
    assert total(browser.get("/parts/block/").content.decode()) != before


def configured_and_checked(browser, form: dict) -> str:
    """Configure, build the preview and check its DFM report as the workers would; the page
    after each step must say what is going on."""
    building = browser.post("/parts/block/configure/", form).content.decode()
    assert "Building the preview" in building and 'id="dfm-report"' not in building
    preview_build(preview_id=PartPreview.objects.get().pk)
    checking = browser.post("/parts/block/configure/", form).content.decode()
    assert "Checking the design for manufacturing" in checking
    assert 'hx-trigger="load delay:1s"' in checking.split('id="dfm-report"')[1]
    preview_dfm_check(dfm_id=PreviewDfm.objects.get(status="queued").pk)
    return browser.post("/parts/block/configure/", form).content.decode()


def test_a_built_configuration_shows_its_full_dfm_report_live(browser):
    html = configured_and_checked(browser, FORM)
    assert 'data-status="ready"' in html and "Checking the design" not in html
    assert re.search(r'data-verdict="(ok|warn)"', html)
    assert "It can be made on MK4-1" in html
    assert "Print orientation: as modelled (−Z down): 10 mm high" in html
    part = html.split('id="dfm-checks"')[1].split("data-machine")[0]
    for check in ("readable", "watertight", "orientation", "build volume"):
        assert f'data-check="{check}"' in part
    machine = html.split('<ul class="dfm dfm-checks" data-machine="mk4-1">')[1].split("</ul>")[0]
    assert 'data-check="min wall"' in machine and "≥ 0.8 mm" in machine
    assert "<strong>Thinnest wall</strong>" in machine and "<strong>min" not in machine
    assert "<strong>Closed surface</strong>" in part  # the check "watertight", by its title
    assert "MK4-1: can make it" in html


def test_a_failing_configuration_shows_why_before_ordering(browser, settings):
    settings.VALIDATION_MIN_WALL_FACTOR = 4.0  # a strict shop: 1.6 mm walls on a 0.4 mm nozzle
    settings.VALIDATION_MIN_WALL_FAIL_FACTOR = 3.0  # and nothing under 1.2 mm
    html = configured_and_checked(browser, {**FORM, "p_hole_d": "18"})  # 1 mm walls
    assert 'data-verdict="fail"' in html
    summary = re.search(r'<p class="dfm-fail" id="dfm-summary">([^<]+)</p>', html).group(1)
    assert summary.startswith("It cannot be made: thinnest wall 1")
    assert "MK4-1 cannot print walls thinner than 1.2 mm" in summary
    assert '<details id="dfm-checks" open>' in html
    assert "MK4-1: cannot make it" in html


def test_the_report_follows_the_material(browser):
    """Another material is another report: one with no machine for it says so at once."""
    make_part("block", materials=[make_material("pla"), make_material("petg")])
    configured_and_checked(browser, FORM)
    petg = browser.post("/parts/block/configure/", {**FORM, "material": "petg"}).content.decode()
    assert "The design could not be checked: no FDM 3D printing machine has PETG" in petg


def test_ordering_from_the_cart_places_one_order_even_when_submitted_twice(browser, user):
    assert browser.post("/parts/block/add/", FORM).status_code == 302
    assert (
        browser.post(
            "/parts/washer/add/", {**FORM, "material": "petg", "quantity": "1"}
        ).status_code
        == 302
    )
    cart = browser.get("/cart/").content.decode()
    assert cart.count("Remove") == 2
    key = re.search(r'name="idempotency_key" value="(\w+)"', cart).group(1)
    form = {
        "idempotency_key": key,
        "reference": "WO-9",
        "due_date": "",
        "priority": "high",
        "delivery_site": "north",
        "note": "urgent spare",
    }
    first = browser.post("/cart/", form)
    assert first.status_code == 302
    order = Order.objects.get()
    assert first["Location"] == f"/orders/{order.pk}/"
    # The double click: the same form again, whatever the cart holds by then.
    browser.post("/parts/block/add/", FORM)
    second = browser.post("/cart/", form)
    assert second["Location"] == f"/orders/{order.pk}/" and Order.objects.count() == 1
    assert (
        order.lines.count() == 2
        and order.priority == "high"
        and order.delivery_site.slug == "north"
    )
    page = browser.get(f"/orders/{order.pk}/").content.decode()
    assert "WO-9" in page and "in production" in page and page.count("job-status") == 2


def test_a_due_date_in_the_past_is_refused_on_the_page(browser):
    browser.post("/parts/block/add/", FORM)
    html = browser.post(
        "/cart/", {"idempotency_key": "x", "due_date": "2001-01-01", "priority": "normal"}
    ).content.decode()
    assert "is in the past" in html and not Order.objects.exists()


def test_a_part_added_with_bad_values_stays_out_of_the_cart(browser):
    response = browser.post("/parts/block/add/", {**FORM, "p_width": "abc"}, follow=True)
    assert "must be a number" in response.content.decode()
    assert "The cart is empty" in browser.get("/cart/").content.decode()


def test_an_approver_approves_and_rejects_on_the_pages(organisation, user):
    team = make_team(organisation, threshold="0.01")
    join_team(user, team)
    boss = join_team(make_user("boss", organisation=organisation, role="approver"), team)
    first, second = make_order(user=user), make_order(user=user)
    client = Client()
    client.force_login(boss)
    approvals = client.get("/approvals/").content.decode()
    assert first.number in approvals and approvals.count("Approve</button>") == 2
    client.post(f"/orders/{first.pk}/approve/")
    client.post(f"/orders/{second.pk}/reject/", {"reason": "use stock"})
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == (Status.IN_PRODUCTION, Status.REJECTED)
    assert second.reason == "use stock"
    # The requester sees no approve button and cannot approve.
    requester = Client()
    requester.force_login(user)
    third = make_order(user=user)
    assert "Approve</button>" not in requester.get(f"/orders/{third.pk}/").content.decode()
    requester.post(f"/orders/{third.pk}/approve/")
    third.refresh_from_db()
    assert third.status == Status.AWAITING_APPROVAL


def test_the_order_page_polls_while_the_order_is_under_way(browser, user):
    order = make_order(user=user)
    html = browser.get(f"/orders/{order.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in html
    fragment = browser.get(f"/orders/{order.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="order-live"')
    browser.post(f"/orders/{order.pk}/cancel/", {"reason": "changed my mind"})
    html = browser.get(f"/orders/{order.pk}/").content.decode()
    assert "Cancelled" in html and 'hx-trigger="every 2s"' not in html


def test_the_orders_page_lists_and_filters_by_status(browser, user):
    running = make_order(user=user)
    from orders.services import order_cancel

    cancelled = order_cancel(order=make_order(user=user), user=user)
    html = browser.get("/orders/?status=cancelled").content.decode()
    assert cancelled.number in html and running.number not in html


def test_material_unknown_to_the_part_is_a_field_error(browser):
    Material.objects.create(slug="gold", name="Gold", density_g_cm3=19.3, price_per_kg=50000)
    html = browser.post("/parts/block/configure/", {**FORM, "material": "gold"}).content.decode()
    assert "gold&#x27; is not offered" in html
