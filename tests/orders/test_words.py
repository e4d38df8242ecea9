"""The ordering pages in the words people use: parameters by label with units, a quantity
that is not a whole number said as such, the catalog searched by part words, sizes and the
admins' synonyms, and a "from" price on every card."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from catalog.models import PartFamily, PartPreview, SearchSynonym
from orders.models import OrderLine
from orders.templatetags.part_words import job_status, minutes
from tests.builders import login_with_mfa, make_machine, make_order, make_part

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

FORM = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the cards' "from" prices are cached
    yield
    cache.clear()


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def cards(html: str) -> list[str]:
    return re.findall(r'data-part="([^"]+)"', html)


def errors_of(html: str) -> str:
    return html.split('id="config-errors"')[1].split("</ul>")[0]


# --- parameters and quantities ------------------------------------------------------------


def test_a_parameter_error_names_the_parameter_by_label_with_its_unit(browser):
    make_part("block")
    html = browser.post("/parts/block/configure/", {**FORM, "p_width": "2"}).content.decode()
    assert "<li>Width must be at least 5 mm (got 2 mm)</li>" in errors_of(html)

    rule = browser.post("/parts/block/configure/", {**FORM, "p_hole_d": "19"}).content.decode()
    summary = errors_of(rule)
    assert (
        "the hole must leave 1 mm of wall "
        "(hole diameter 19 mm must be at most width - 2 = 18 mm)" in summary
    )
    assert summary.count("<li>") == 1  # a rule on two fields is said once
    assert "hole_d" not in summary and "width:" not in summary


def test_a_quantity_of_2_5_asks_for_a_whole_number(browser):
    make_part("block")
    html = browser.post("/parts/block/configure/", {**FORM, "quantity": "2.5"}).content.decode()
    assert 'data-state="invalid"' in html
    assert "Enter a whole number of parts, from 1 to 500" in errors_of(html)
    assert "between" not in html and "must be from" not in html
    wide = browser.post("/parts/block/configure/", {**FORM, "quantity": "501"}).content.decode()
    assert "Quantity must be from 1 to 500 parts" in errors_of(wide)

    added = browser.post("/parts/block/add/", {**FORM, "quantity": "2.5"}, follow=True)
    assert "Enter a whole number of parts" in added.content.decode()
    assert "quantity Enter" not in added.content.decode()


def test_the_cart_and_the_order_show_a_configuration_by_labels_and_units(browser, user):
    make_part("block")
    make_machine()
    browser.post("/parts/block/add/", FORM)
    cart = browser.get("/cart/").content.decode()
    assert "Width 20 mm, Height 10 mm, Hole diameter 5 mm" in cart
    assert "hole_d" not in cart

    order = make_order(user=user)
    page = browser.get(f"/orders/{order.pk}/").content.decode()
    line = OrderLine.objects.get(order=order)
    assert f"Hole diameter {line.parameters['hole_d']} mm" in page
    assert "hole_d =" not in page
    assert [job_status(s) for s in ("geometry_built", "routed", "new_one")] == [
        "geometry built",
        "routed to machine",
        "new one",
    ]
    assert re.search(r"[\d.]+ EUR each", page)


def test_the_quote_gives_the_machine_time_in_minutes(browser):
    make_part("block")
    make_machine()
    html = browser.post("/parts/block/configure/", FORM).content.decode()
    assert re.search(r"<th>Machine time</th><td>\d+ (s|min) per part", html)
    assert [minutes(s) for s in (59, 720, 3600, 3900, "x")] == [
        "59 s",
        "12 min",
        "1 h",
        "1 h 5 min",
        "",
    ]


# --- catalog search ---------------------------------------------------------------------------


@pytest.fixture
def demo_catalog():
    call_command("seed_demo", "--no-order", verbosity=0)


def test_m6_finds_the_parts_made_for_m6(browser, demo_catalog):
    found = cards(browser.get("/?q=M6").content.decode())
    assert set(found[:2]) == {"knob", "standoff"}  # Thread: M6 is one of their choices
    assert "gt2-pulley" not in found  # an M3 part


def test_6_mm_finds_the_m6_parts_through_the_seeded_synonym(browser, demo_catalog):
    m6 = cards(browser.get("/?q=M6").content.decode())
    assert set(cards(browser.get("/?q=6+mm").content.decode())) >= set(m6)
    assert cards(browser.get("/?q=6mm+thread").content.decode()) == m6


def test_608_bearing_finds_the_shaft_collar(browser, demo_catalog):
    assert cards(browser.get("/?q=608+bearing").content.decode()) == ["shaft-collar"]
    # and a size with a parameter word: the collar's bore goes from 3 to 80 mm
    assert "shaft-collar" in cards(browser.get("/?q=collar+25mm+bore").content.decode())
    assert cards(browser.get("/?q=collar+90mm+bore").content.decode()) == []


def test_a_catalog_admin_adds_a_synonym_and_the_search_uses_it(browser, demo_catalog):
    assert cards(browser.get("/?q=doodad").content.decode()) == []
    admin = Client()
    login_with_mfa(admin, get_user_model().objects.get(username="admin"))
    refused = admin.post("/admin/catalog/searchsynonym/add/", {"words": "doodad", "note": ""})
    assert refused.status_code == 200 and "at least two phrases" in refused.content.decode()
    added = admin.post(
        "/admin/catalog/searchsynonym/add/", {"words": " doodad ,  shaft collar ", "note": "x"}
    )
    assert added.status_code == 302
    assert SearchSynonym.objects.filter(words="doodad, shaft collar").exists()
    assert cards(browser.get("/?q=doodad").content.decode()) == ["shaft-collar"]


def test_the_search_keeps_the_filters(browser, demo_catalog):
    # The gears are printed: none is milled or laser cut.
    assert cards(browser.get("/?q=gear").content.decode())
    assert cards(browser.get("/?q=gear&process=laser").content.decode()) == []
    everything = cards(browser.get("/").content.decode())
    assert len(everything) == PartFamily.objects.count()


# --- price from -------------------------------------------------------------------------------


def prices(html: str) -> dict[str, Decimal]:
    return {
        part: Decimal(total)
        for part, total in re.findall(
            r'data-part="([^"]+)".*?data-price-from="([\d.]+)"', html, flags=re.S
        )
    }


def test_every_card_shows_a_price_from_without_building_geometry(
    browser, demo_catalog, django_assert_max_num_queries
):
    # Cold: the machines are read once per process (FDM, milling, laser) for every card, not
    # once per card.
    with django_assert_max_num_queries(27):
        html = browser.get("/").content.decode()
    shown = prices(html)
    assert set(shown) == set(cards(html))
    assert all(price > 0 for price in shown.values())
    assert re.search(r"from <strong>[\d.]+ EUR</strong>", html)
    assert not PartPreview.objects.exists()  # no geometry built for the list

    # Never above the part page's quote of one default part (here in PETG, not the cheapest).
    collar = browser.post(
        "/parts/shaft-collar/configure/",
        {
            "p_bore_d": "25",
            "p_outer_d": "45",
            "p_width": "14",
            "p_screw_hole_d": "5",
            "material": "petg",
            "quantity": "1",
        },
    ).content.decode()
    totals = [Decimal(t) for t in re.findall(r'data-total="([\d.]+)"', collar)]
    assert shown["shaft-collar"] <= totals[0]

    # Cached: the second list costs a handful of queries, however many cards.
    with django_assert_max_num_queries(12):
        again = browser.get("/").content.decode()
    assert prices(again) == shown
