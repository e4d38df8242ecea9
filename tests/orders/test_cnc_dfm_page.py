"""The part page's DFM report for a milled part: the CNC checks (plate, inside corners, slots,
pocket depth, walls, holding) show with their titles, figures and advice, like the FDM ones."""

import re
from decimal import Decimal

import pytest
from django.test import Client

from catalog.models import Material, PartFamily, PartPreview
from catalog.previews import preview_build
from catalog.services import revision_create, revision_publish
from production.dfm_previews import preview_dfm_check
from production.models import Machine, PreviewDfm
from tests.builders import BLOCK_RULES, BLOCK_SCHEMA, BLOCK_SCRIPT, make_machine

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

FORM = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "6061", "quantity": "1"}


@pytest.fixture(autouse=True)
def milled_block():
    """The test block (20 x 20 x 10 mm, a 5 mm hole through it) milled from 6061 plate."""
    aluminium = Material.objects.create(
        slug="6061",
        name="Aluminium 6061",
        process="cnc_mill",
        density_g_cm3=Decimal("2.7"),
        price_per_kg=Decimal("9"),
        sheet_thicknesses_mm=[3, 6, 10],
    )
    family = PartFamily.objects.create(slug="block", name="Block")
    revision = revision_create(
        family=family,
        script=BLOCK_SCRIPT,
        parameter_schema=BLOCK_SCHEMA,
        rules=BLOCK_RULES,
        process="cnc_mill",
        materials=[aluminium],
    )
    revision_publish(revision=revision)
    mill = make_machine("mill-1", materials=[aluminium], model="GRBL mill", volume=(300, 200, 60))
    Machine.objects.filter(pk=mill.pk).update(process="cnc_mill")


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def checked(browser: Client, form: dict) -> str:
    """The configurator's answer once the workers built the preview and checked it."""
    browser.post("/parts/block/configure/", form)
    preview_build(preview_id=PartPreview.objects.get().pk)
    browser.post("/parts/block/configure/", form)
    preview_dfm_check(dfm_id=PreviewDfm.objects.get(status="queued").pk)
    return browser.post("/parts/block/configure/", form).content.decode()


def machine_checks(html: str, machine: str) -> dict[str, str]:
    """Each check's line in the machine's list, by its data-check."""
    listed = html.split(f'<ul class="dfm dfm-checks" data-machine="{machine}">')[1]
    listed = listed.split("</ul>")[0]
    return dict(re.findall(r'<li class="dfm-\w+" data-check="([^"]+)">(.*?)</li>', listed, re.S))


def test_a_milled_part_shows_the_cnc_checks_with_their_figures(browser):
    html = checked(browser, FORM)
    assert 'data-status="ready"' in html and "It can be made on MILL-1" in html
    assert "Print orientation" not in html  # an FDM matter
    rows = machine_checks(html, "mill-1")
    assert list(rows) == [
        "build volume",
        "two and a half d",
        "plate stock",
        "inside corners",
        "min feature",
        "pocket depth",
        "thin walls",
        "fixturing",
    ]
    assert "<strong>Plate in stock</strong> · pass · measured 10 mm plate" in rows["plate stock"]
    assert "milled from 10 mm plate" in rows["plate stock"]
    corners = rows["inside corners"]
    assert "<strong>Inside corners the cutter reaches</strong> · pass" in corners
    # The mill holds the whole default tool table: its smallest end mill is T4, 1 mm.
    assert "limit ≥ R0.5 (the smallest end mill, 1 mm)" in corners
    # The 5 mm hole is drilled: no pocket to measure; the block is wide enough to clamp.
    assert "measured no pockets" in rows["pocket depth"]
    assert "measured 20.0 x 20.0 mm" in rows["fixturing"]


def test_a_slot_the_smallest_end_mill_cannot_cut_is_refused_with_the_tool_it_needs(browser):
    Machine.objects.filter(slug="mill-1").update(tool_numbers=[1])  # only T1, a 6 mm end mill
    html = checked(browser, FORM)  # the 5 mm hole is narrower than that
    assert 'data-verdict="fail"' in html
    summary = re.search(r'<p class="dfm-fail" id="dfm-summary">([^<]+)</p>', html).group(1)
    assert summary.startswith("It cannot be made: a gap 5.0 mm wide near (0.0, 0.0, 0.0)")
    assert "needs an end mill of 5.0 mm or less; the smallest is 6 mm" in summary
    row = machine_checks(html, "mill-1")["min feature"]
    assert "<strong>Narrowest slot or hole</strong> · fail · measured 5.0 mm gap" in row
    assert "MILL-1: cannot make it" in html
