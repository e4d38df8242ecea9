"""Failure feedback over a revision's parameter space (issue #15 point 6): where in the
envelope parts passed and failed, the regions of high failure, their DFM warning on new
orders, and narrowing a range into a new revision from the catalog admin's page."""

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import PartRevision
from catalog.parameters import ParameterSpec, SchemaError, narrowed_schema
from catalog.services import revision_narrow
from microfactory.errors import DomainError
from orders.carts import cart_add_line
from orders.models import OrderLine
from orders.quotes import dfm_notes, line_facts
from orders.services import LineRequest, OrderInvalid, line_check
from production import failmap
from production.failmap import Axis, Bin, Cell, Tally, Thresholds
from production.models import Job
from tests.api_auth import user_api_headers
from tests.builders import login_with_mfa, make_order, make_part, make_user

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
SCHEMA: list[dict[str, Any]] = [
    {"name": "wall_mm", "label": "Wall", "type": "length", "default": 2, "min": 0.8, "max": 3.2},
    {"name": "width", "label": "Width", "type": "length", "default": 40, "min": 10, "max": 70},
    {"name": "height", "label": "Height", "type": "length", "default": 10, "min": 5, "max": 20},
    {"name": "ribbed", "label": "Ribbed", "type": "boolean", "default": False},
]
THRESHOLDS = Thresholds(bins=6, min_made=5, rate=0.3)
STARTED = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
REGION = "Wall below 1.2 mm: 4 of 9 made were scrapped"


@pytest.fixture(autouse=True)
def _settings(settings) -> None:
    settings.MF_FAILMAP_BINS, settings.MF_FAILMAP_MIN_MADE, settings.MF_FAILMAP_RATE = 6, 5, 0.3
    settings.STORAGES = {  # admin pages render {% static %} without a collectstatic manifest
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def made(
    requester, wall: float, width: float, quantity: int, *, status: str, passed: int = 0,
    scrapped: int = 0, started: bool = True,
) -> Job:  # fmt: skip
    """One order of `quantity` copies whose job ended as `status` with its QC counts."""
    order = make_order(
        user=requester,
        part="bracket",
        quantity=quantity,
        parameters={"wall_mm": wall, "width": width, "height": 10, "ribbed": False},
    )
    job = Job.objects.get(line__order=order)
    Job.objects.filter(pk=job.pk).update(
        status=status,
        qc_passed=passed,
        qc_scrapped=scrapped,
        started_at=STARTED if started else None,
    )
    return job


@pytest.fixture
def requester():
    return make_user("req")


@pytest.fixture
def bracket(requester) -> PartRevision:
    """A bracket whose thin walls fail: 25 copies made, 7 of them scrapped or failed.

    wall bins (0.8-3.2 in six of 0.4): 0.8-1.2 made 9, 4 scrapped (a region: >= 5 made, 44 %);
    1.2-1.6 made 3, none; 2.0-2.4 made 11, 1 failed on its machine; 2.8-3.2 made 2, both
    scrapped (too few to say). Jobs still running or failed before a machine count nothing.
    """
    revision = make_part("bracket", schema=SCHEMA, rules=[])
    done, scrapped, failed = Job.Status.DONE, Job.Status.SCRAPPED, Job.Status.FAILED
    made(requester, 1.0, 40, 5, status=done, passed=2, scrapped=3)
    made(requester, 1.1, 50, 4, status=done, passed=3, scrapped=1)
    made(requester, 1.4, 30, 3, status=done, passed=3)
    made(requester, 3.0, 40, 2, status=scrapped, scrapped=2)
    made(requester, 2.0, 40, 10, status=done, passed=10)
    made(requester, 2.2, 65, 1, status=failed)  # failed on the machine
    made(requester, 2.2, 65, 1, status=failed, started=False)  # never reached a machine
    made(requester, 1.0, 40, 6, status=Job.Status.QUEUED, started=False)  # not made yet
    cache.clear()  # the orders above cached the regions before any verdict: as after a while
    return revision


def catalog_admin(username: str = "cat-admin") -> Client:
    user = get_user_model().objects.create_superuser(username, password="pw-for-tests")
    client = Client()
    login_with_mfa(client, user)
    return client


def svg_marks(page: str, css_class: str) -> list[dict[str, str]]:
    """The data-* of every <g class=css_class> in the page's SVG charts."""
    marks = []
    for chunk in page.split('<svg class="failmap-')[1:]:
        root = ET.fromstring('<svg class="failmap-' + chunk.split("</svg>")[0] + "</svg>")
        for mark in root.iter(f"{SVG}g"):
            if mark.get("class") == css_class:
                marks.append({k[5:]: v for k, v in mark.attrib.items() if k.startswith("data-")})
    return marks


# --- the map: bins, regions, points ------------------------------------------------------


def test_the_bins_count_what_was_made_where_and_find_the_thin_wall_region(bracket) -> None:
    found = failmap.revision_failure_map(revision=bracket, thresholds=THRESHOLDS)

    assert found.total == Tally(passed=18, scrapped=6, failed=1)
    wall = next(axis for axis in found.axes if axis.name == "wall_mm")
    assert [(b.low, b.high) for b in wall.bins] == [
        (0.8, 1.2), (1.2, 1.6), (1.6, 2.0), (2.0, 2.4), (2.4, 2.8), (2.8, 3.2),
    ]  # fmt: skip
    assert [(b.tally.made, b.tally.bad, b.high_failure) for b in wall.bins] == [
        (9, 4, True), (3, 0, False), (0, 0, False), (11, 1, False), (0, 0, False), (2, 2, False),
    ]  # fmt: skip
    assert [axis.name for axis in found.axes] == ["wall_mm", "width", "height"]  # numbers only
    assert [r.warning for r in found.regions] == [REGION]
    assert found.pair is not None
    assert [axis.name for axis in found.pair] == ["wall_mm", "width"]  # height tells nothing


def test_the_counting_is_one_query_grouped_in_the_database(bracket, requester) -> None:
    with CaptureQueriesContext(connection) as few:
        failmap.revision_failure_map(revision=bracket, thresholds=THRESHOLDS)
    for _ in range(5):
        made(requester, 2.6, 20, 2, status=Job.Status.DONE, passed=2)
    with CaptureQueriesContext(connection) as many:
        found = failmap.revision_failure_map(revision=bracket, thresholds=THRESHOLDS)
    assert len(few) == len(many) == 1
    assert "GROUP BY" in many.captured_queries[0]["sql"]
    assert found.total.made == 35


def test_the_page_plots_every_bin_and_configuration(bracket) -> None:
    response = catalog_admin().get(f"/failures/revisions/{bracket.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    bins = [m for m in svg_marks(page, "bin")]
    assert len(bins) == 18  # three numeric parameters, six bins each
    assert bins[:6] == [
        {"low": "0.8", "high": "1.2", "made": "9", "bad": "4", "high-failure": "yes"},
        {"low": "1.2", "high": "1.6", "made": "3", "bad": "0", "high-failure": "no"},
        {"low": "1.6", "high": "2", "made": "0", "bad": "0", "high-failure": "no"},
        {"low": "2", "high": "2.4", "made": "11", "bad": "1", "high-failure": "no"},
        {"low": "2.4", "high": "2.8", "made": "0", "bad": "0", "high-failure": "no"},
        {"low": "2.8", "high": "3.2", "made": "2", "bad": "2", "high-failure": "no"},
    ]
    points = {(p["x"], p["y"], int(p["made"]), int(p["bad"])) for p in svg_marks(page, "point")}
    assert points == {
        ("1", "40", 5, 3), ("1.1", "50", 4, 1), ("1.4", "30", 3, 0), ("3", "40", 2, 2),
        ("2", "40", 10, 0), ("2.2", "65", 1, 1),
    }  # fmt: skip
    assert 'data-x="wall_mm" data-y="width"' in page
    assert REGION in page
    narrow = f"/failures/revisions/{bracket.pk}/narrow/?parameter=wall_mm&amp;min=1.2&amp;max=3.2"
    assert narrow in page  # leave the thin walls out: one click from the region


def test_the_revision_page_links_to_its_failure_map(bracket) -> None:
    page = catalog_admin().get(f"/admin/catalog/partrevision/{bracket.pk}/change/")
    assert f'href="/failures/revisions/{bracket.pk}/"' in page.content.decode()


def test_a_revision_nothing_was_made_of_has_an_empty_map() -> None:
    revision = make_part("bracket", schema=SCHEMA, rules=[])
    response = catalog_admin().get(f"/failures/revisions/{revision.pk}/")
    assert response.status_code == 200
    assert 'id="failmap-regions-none"' in response.content.decode()
    assert not svg_marks(response.content.decode(), "point")


def test_the_page_costs_the_same_for_few_jobs_or_many(bracket, requester) -> None:
    client = catalog_admin()
    path = f"/failures/revisions/{bracket.pk}/"
    client.get(path)
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    for wall in (1.6, 1.8, 2.4, 2.6, 2.8):
        made(requester, wall, 25, 2, status=Job.Status.DONE, passed=1, scrapped=1)
    with CaptureQueriesContext(connection) as many:
        assert client.get(path).status_code == 200
    assert len(many) == len(few)
    assert len(many) <= 12


# --- the warning on new orders ---------------------------------------------------------------


def quote(requester, wall: float) -> list[dict[str, str]]:
    response = Client(headers=user_api_headers(requester)).post(
        "/api/v1/quotes/",
        json.dumps(
            {
                "part": "bracket",
                "parameters": {"wall_mm": wall, "width": 40, "height": 10, "ribbed": False},
                "material": "pla",
                "quantity": 1,
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["dfm"]


def test_a_quote_in_the_region_is_warned_naming_it_and_one_outside_is_not(bracket, requester):
    inside = quote(requester, 0.9)
    outside = quote(requester, 2.0)

    assert {"level": "warn", "message": REGION} in inside
    assert not [note for note in outside if "made were" in note["message"]]


def test_the_part_page_notes_and_the_cart_say_it_too(bracket, requester) -> None:
    for wall, warned in ((1.15, True), (1.2, False)):
        checked = line_check(
            LineRequest(
                part="bracket",
                parameters={"wall_mm": wall, "width": 40, "height": 10, "ribbed": False},
                material="pla",
                quantity=2,
            )
        )
        notes = dfm_notes(line_facts(**checked, now=STARTED))
        assert (REGION in [n.message for n in notes if n.level == "warn"]) is warned

    page = Client()
    page.force_login(requester)
    form = {"p_width": "40", "p_height": "10", "material": "pla", "quantity": "1"}
    with patch("catalog.tasks.build_preview.apply_async"):  # no worker builds the preview
        inside = page.post("/parts/bracket/configure/", {**form, "p_wall_mm": "1.0"})
        outside = page.post("/parts/bracket/configure/", {**form, "p_wall_mm": "2.0"})
    assert f'<li class="dfm-warn">{REGION}</li>' in inside.content.decode()
    assert REGION not in outside.content.decode()

    for wall in (1.0, 2.0):
        parameters = {"wall_mm": wall, "width": 40, "height": 10, "ribbed": False}
        line = LineRequest(part="bracket", parameters=parameters, material="pla", quantity=1)
        cart_add_line(user=requester, line=line)
    client = Client()
    client.force_login(requester)
    cart = client.get("/cart/").content.decode()
    assert cart.count(REGION) == 1  # the thin-walled line only


def test_a_quote_reads_the_regions_from_the_cache(bracket) -> None:
    parameters = {"wall_mm": 1.0, "width": 40, "height": 10, "ribbed": False}
    assert failmap.failure_warnings(revision=bracket, parameters=parameters) == [REGION]
    with CaptureQueriesContext(connection) as cached:
        assert failmap.failure_warnings(revision=bracket, parameters=parameters) == [REGION]
    assert len(cached) == 0
    cache.clear()
    with CaptureQueriesContext(connection) as cold:
        failmap.failure_warnings(revision=bracket, parameters=parameters)
    assert len(cold) == 1


def test_thresholds_come_from_the_settings(bracket, settings) -> None:
    parameters = {"wall_mm": 1.0, "width": 40, "height": 10, "ribbed": False}
    settings.MF_FAILMAP_MIN_MADE = 10  # the thin walls made 9: too few to say
    assert failmap.failure_warnings(revision=bracket, parameters=parameters) == []
    cache.clear()
    settings.MF_FAILMAP_MIN_MADE, settings.MF_FAILMAP_RATE = 2, 0.9
    warned = failmap.failure_warnings(revision=bracket, parameters={**parameters, "wall_mm": 3})
    assert warned == ["Wall 2.8 mm or above: 2 of 2 made were scrapped"]


# --- narrowing a range ---------------------------------------------------------------------


def test_narrowing_makes_a_new_revision_and_leaves_the_old_ones_orders(bracket) -> None:
    lines_before = set(OrderLine.objects.filter(revision=bracket).values_list("pk", flat=True))
    client = catalog_admin()
    path = f"/failures/revisions/{bracket.pk}/narrow/"

    confirm = client.get(path, {"parameter": "wall_mm", "min": "1.2", "max": "3.2"})
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "0.8–3.2" in text and "1.2–3.2" in text
    assert "9 copies lie outside the new range" in text and "(4 of them failed)" in text
    assert PartRevision.objects.filter(family=bracket.family).count() == 1  # nothing made yet

    response = client.post(
        path,
        {"parameter": "wall_mm", "min": "1.2", "max": "3.2", "publish": "on", "reason": "thin"},
    )

    new = PartRevision.objects.get(family=bracket.family, number=2)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/catalog/partrevision/{new.pk}/change/"
    wall = next(p for p in new.parameter_schema if p["name"] == "wall_mm")
    assert (wall["min"], wall["max"], wall["default"]) == (1.2, 3.2, 2)
    assert new.is_published and new.script == bracket.script
    assert "Wall narrowed to 1.2–3.2 mm (r1): thin" in new.description
    assert set(new.materials.all()) == set(bracket.materials.all())
    bracket.refresh_from_db()
    old_wall = next(p for p in bracket.parameter_schema if p["name"] == "wall_mm")
    assert (old_wall["min"], old_wall["max"]) == (0.8, 3.2)
    assert bracket.checksum == bracket.compute_checksum()
    assert set(OrderLine.objects.filter(revision=bracket).values_list("pk", flat=True)) == (
        lines_before
    )
    assert bracket.family.current_revision() == new
    with pytest.raises(OrderInvalid) as refused:  # new orders take the new range
        line_check(
            LineRequest(
                part="bracket",
                parameters={"wall_mm": 1.0, "width": 40, "height": 10, "ribbed": False},
                material="pla",
                quantity=1,
            )
        )
    assert "Wall must be at least 1.2 mm (got 1 mm)" in str(refused.value.errors)


def test_narrowing_unpublished_leaves_a_draft(bracket) -> None:
    new = revision_narrow(revision=bracket, parameter="width", minimum=20, maximum=60)
    assert not new.is_published and new.number == 2
    assert bracket.family.current_revision() == bracket


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"parameter": "wall_mm", "min": "2", "max": "1.5"}, "must be below the maximum"),
        ({"parameter": "wall_mm", "min": "0.5", "max": "3"}, "below the present minimum 0.8"),
        ({"parameter": "wall_mm", "min": "1", "max": "4"}, "above the present maximum 3.2"),
        ({"parameter": "wall_mm", "min": "0.8", "max": "3.2"}, "the range is unchanged"),
        ({"parameter": "ribbed", "min": "0", "max": "1"}, "Ribbed is not a number"),
        ({"parameter": "nope", "min": "1", "max": "2"}, "is not a parameter of this revision"),
        ({"parameter": "wall_mm", "min": "thin", "max": "2"}, "as numbers"),
        ({"parameter": "wall_mm", "min": "nan", "max": "2"}, "as numbers"),
    ],
)
def test_an_invalid_range_is_refused_with_the_reason(bracket, query, error) -> None:
    client = catalog_admin()
    path = f"/failures/revisions/{bracket.pk}/narrow/"
    for response in (client.get(path, query), client.post(path, {**query, "publish": "on"})):
        assert response.status_code == 400
        assert error in response.content.decode()
    assert PartRevision.objects.filter(family=bracket.family).count() == 1


def test_narrowing_keeps_the_step_grid_and_moves_the_default_inside() -> None:
    schema = [
        {"name": "teeth", "type": "integer", "default": 20, "min": 10, "max": 40},
        {"name": "pitch", "type": "length", "default": 2, "min": 1, "max": 4, "step": 0.5},
    ]
    teeth = narrowed_schema(schema, "teeth", 25, 40)[0]
    assert (teeth["min"], teeth["max"], teeth["default"]) == (25, 40, 25)
    with pytest.raises(SchemaError, match="whole numbers"):
        narrowed_schema(schema, "teeth", 12.5, 40)
    with pytest.raises(SchemaError, match="not in steps of 0.5 mm from 1 mm"):
        narrowed_schema(schema, "pitch", 1.2, 4)
    assert narrowed_schema(schema, "pitch", 2.5, 4)[1]["default"] == 2.5


def test_a_narrowing_that_breaks_a_rule_with_the_defaults_is_refused() -> None:
    schema = [
        {"name": "bore", "type": "length", "default": 10, "min": 5, "max": 30},
        {"name": "outer", "type": "length", "default": 20, "min": 10, "max": 60},
    ]
    revision = make_part("collar", schema=schema, rules=[{"rule": "outer >= bore + 4"}])
    with pytest.raises(DomainError, match="narrowed defaults break a rule"):
        revision_narrow(revision=revision, parameter="bore", minimum=18, maximum=30)


# --- who may see it ----------------------------------------------------------------------------


def test_only_catalog_admins_see_the_map_and_narrow(bracket, requester) -> None:
    pages = [
        f"/failures/revisions/{bracket.pk}/",
        f"/failures/revisions/{bracket.pk}/narrow/?parameter=wall_mm&min=1.2&max=3.2",
    ]
    customer = Client()
    customer.force_login(requester)  # not staff: the admin's login page
    for path in pages:
        assert customer.get(path)["Location"].startswith("/admin/login/")

    staff = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    clerk = Client()
    login_with_mfa(clerk, staff)
    assert [clerk.get(path).status_code for path in pages] == [403, 403]
    staff.user_permissions.add(Permission.objects.get(codename="view_partrevision"))
    assert [clerk.get(path).status_code for path in pages] == [200, 403]  # sees, cannot narrow
    response = clerk.post(pages[1].split("?")[0], {"parameter": "wall_mm", "min": 1.2, "max": 3})
    assert response.status_code == 403

    superuser = get_user_model().objects.create_superuser("root", password="pw")
    no_code = Client()
    no_code.force_login(superuser)  # signed in, second factor not entered
    assert no_code.get(pages[0]).status_code == 302
    assert PartRevision.objects.filter(family=bracket.family).count() == 1


# --- the pure parts ----------------------------------------------------------------------------


def spec(kind: str = "length", low: float = 0.8, high: float = 3.2) -> ParameterSpec:
    return ParameterSpec(name="wall_mm", label="Wall", type=kind, default=low, min=low, max=high)


def test_bins_are_equal_and_whole_for_whole_numbers() -> None:
    assert failmap.bin_edges(spec(), 6) == (0.8, 1.2, 1.6, 2.0, 2.4, 2.8, 3.2)
    assert failmap.bin_edges(spec("integer", 1, 10), 4) == (1, 4, 7, 10)
    assert failmap.bin_edges(spec("integer", 1, 3), 6) == (1, 2, 3)
    edges = failmap.bin_edges(spec(), 6)
    assert [failmap.bin_of(edges, v) for v in (0.8, 1.19, 1.2, 2.0, 3.2, 9.0)] == [0, 0, 1, 3, 5, 5]


def test_neighbouring_high_failure_bins_make_one_region() -> None:
    bad, good = Tally(passed=2, scrapped=4), Tally(passed=6)
    axis = Axis(
        name="width", label="Width", unit="mm", low=0, high=40, relevance=0.1,
        bins=(
            Bin(0, 10, good, False), Bin(10, 20, bad, True), Bin(20, 30, bad, True),
            Bin(30, 40, Tally(failed=6), True),
        ),
    )  # fmt: skip
    (region,) = failmap.regions_of(axis)
    assert (region.low, region.high, region.at_low_end, region.at_high_end) == (10, 40, False, True)
    assert region.warning == (
        "Width 10 mm or above: 14 of 18 made were scrapped or failed on the machine"
    )
    assert [region.holds(v) for v in (9.9, 10, 40, 55)] == [False, True, True, True]
    assert failmap.warnings_for([region], {"width": 12}) == [region.warning]
    assert failmap.warnings_for([region], {"width": 5, "other": 12}) == []


def test_the_scatter_takes_the_parameters_that_tell_most() -> None:
    specs = [spec(), ParameterSpec("a", "A", "length", 0, min=0, max=1)]
    cells = [Cell((0, 0), Tally(scrapped=5)), Cell((5, 5), Tally(passed=5))]
    axes = failmap.axes_of(specs, [failmap.bin_edges(s, 6) for s in specs], cells, THRESHOLDS)
    assert [a.relevance > 0 for a in axes] == [True, True]
    assert failmap.most_telling(axes[:1]) is None
