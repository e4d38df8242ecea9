"""The pages under their Content-Security-Policy in a real Chromium: the catalog with its
drawings, the part page's 3D viewer and live configuration, cart, order, station, Swagger UI
and the admin's test build all work with nothing blocked (the chromium_page fixture fails the
test on any violation); a hostile drawing stored before the cleaning existed never runs."""

import base64
import re

import pytest
from django.core.files.base import ContentFile
from django_otp.oath import totp

from catalog.models import PartPreview
from catalog.parameters import defaults, parse_schema
from catalog.previews import preview_build, preview_request
from production.models import Artifact
from tests.builders import make_machine, make_organisation, make_part, make_user
from tests.production.test_station import attach, make_station_job

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(300)]

# A drawing as a hostile script could have left it before drawings were cleaned.
HOSTILE_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"
     onload="document.documentElement.setAttribute('data-ran', 'onload')">
  <script>document.documentElement.setAttribute("data-ran", "script")</script>
  <path d="M10 10 L90 90" stroke="black"/>
</svg>"""


def ran_scripts(page) -> str | None:
    """What the hostile drawing's scripts managed to mark (Playwright evaluates in the page
    even where the page itself may not run scripts)."""
    return page.evaluate("document.documentElement.getAttribute('data-ran')")


@pytest.mark.django_db(transaction=True)
def test_the_pages_work_under_the_policy_and_a_stored_drawing_never_runs(
    live_server, broker, chromium_page
) -> None:
    organisation = make_organisation("acme")
    boss = make_user("boss", organisation=organisation, role="operator")
    boss.is_staff = boss.is_superuser = True
    boss.save()
    revision = make_part("block")
    machine = make_machine("mk4-1")
    values = defaults(parse_schema(revision.parameter_schema))
    preview, _ = preview_request(revision=revision, parameters=values, user=None)
    assert preview_build(preview_id=preview.pk) == "ready"
    preview = PartPreview.objects.get(pk=preview.pk)
    job = make_station_job(user=boss, machine=machine)
    page = chromium_page
    page.on("pageerror", lambda error: print(f"browser error: {error}"))
    url = live_server.url

    # The check itself: an inline script slipped into a page is refused and reported.
    page.goto(f"{url}/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = 1'; document.head.appendChild(s); }"
    )
    page.wait_for_function("() => true")
    assert page.evaluate("window.ran") is None
    assert any("script-src" in violation for violation in page.csp_violations)
    page.csp_violations.clear()

    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")

    # Staff enrol a second factor first: the QR code (a data: image) shows, the key typed
    # into an app gives the code.
    # A login lands on /welcome/, which sends staff on to the catalog (operators: the floor).
    page.wait_for_url(re.compile(r"/account/mfa/setup/\?next=%2F(welcome%2F)?$"))
    page.wait_for_function("() => document.querySelector('img.qr').naturalWidth > 0")
    key = base64.b32decode(page.inner_text("#mfa-secret").replace(" ", ""))
    page.fill("#id_code", f"{totp(key):06d}")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{url}/")

    # The catalog card shows the drawing through <img>, sandboxed as it is served.
    card_drawing = page.locator(".part-card .drawing img")
    card_drawing.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.part-card .drawing img').naturalWidth > 0"
    )

    # The part page: three.js shows the preview (import map with the nonce), htmx follows
    # the configuration (a new quantity gives a new quote).
    page.click(".part-card")
    page.wait_for_url(f"{url}/parts/block/")
    page.wait_for_selector("#viewer[data-state=shown]", timeout=60_000)
    total = page.get_attribute("#quote", "data-total")
    page.fill("#quantity", "3")
    page.wait_for_function(
        "old => document.querySelector('#quote').dataset.total !== old", arg=total
    )

    # The cart and the order (a double click places one order), the orders filter.
    page.click("#add-to-cart")
    page.wait_for_url(re.compile(r"/cart/$"))
    page.dblclick("#place-order")
    page.wait_for_url(re.compile(r"/orders/\d+/$"))
    page.goto(f"{url}/orders/")
    with page.expect_navigation():
        page.select_option("select[name=status]", "in_production")
    assert "status=in_production" in page.url

    # The order page's drawing link downloads the drawing; it never renders on our origin.
    attach(job, Artifact.Kind.TRAVELER, b"%PDF-1.4\n%%EOF\n", {})
    Artifact.objects.filter(kind=Artifact.Kind.SVG).get().file.save(
        "legacy.svg", ContentFile(HOSTILE_SVG)
    )
    page.goto(f"{url}/orders/{job.line.order_id}/")
    with page.expect_download() as download:
        page.click(f"a[href='/api/v1/jobs/{job.pk}/artifacts/svg/']")
    assert download.value.suggested_filename == f"{job.number}.svg"

    # Opened directly, a drawing shown inline for <img> is sandboxed: its scripts never run.
    with open(preview.svg.path, "wb") as stored:
        stored.write(HOSTILE_SVG)
    page.goto(f"{url}/previews/{preview.key}.svg?legacy")  # not the card's cached copy
    page.wait_for_selector("path[d='M10 10 L90 90']", state="attached")
    assert ran_scripts(page) is None

    # The account page: a new API token is shown once.
    page.goto(f"{url}/account/tokens/")
    page.fill("#id_name", "CMMS")
    page.click("button[type=submit].primary")
    page.wait_for_selector("#new-token-value")
    assert page.inner_text("#new-token-value").startswith("mf_")

    # The station tablet.
    page.goto(f"{url}/station/jobs/{job.pk}/")
    page.wait_for_selector("#job-status[data-status=dispatched]")

    # Swagger UI: its init script carries the nonce and draws the operations.
    page.goto(f"{url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=60_000)

    # The admin, and its test build showing the drawing as a data: image.
    page.goto(f"{url}/admin/catalog/partrevision/{revision.pk}/change/")
    page.click("text=Build with defaults")
    page.wait_for_selector("img.build-drawing", timeout=60_000)
    page.wait_for_function("() => document.querySelector('img.build-drawing').naturalWidth > 0")
