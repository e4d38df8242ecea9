"""A requester in a real browser uploads a STEP file for a part that is not in the catalog: the
worker converts it in the sandbox, the page shows it in 3D with its DFM report and a firm
quote, and it goes into the cart and is ordered like a catalog part."""

import re

import pytest
from django.core.management import call_command

from orders.models import CustomerUpload, Order
from tests.orders.test_uploads import box_with_hole_step

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.mark.django_db(transaction=True)
def test_a_requester_uploads_a_step_file_and_orders_it(
    live_server, start_worker, chromium_page, tmp_path
):
    call_command("seed_demo", "--no-order", "--history-weeks", "0", verbosity=0)
    start_worker()
    page = chromium_page
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "requester")
    page.fill("#id_password", "microfactory")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.click("#upload-link a")
    page.wait_for_url(f"{live_server.url}/uploads/")
    step = tmp_path / "guard.step"
    step.write_bytes(box_with_hole_step())
    page.fill("#name", "Guard bracket")
    page.set_input_files("#model", str(step))
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r"/uploads/\d+/$"))

    # The worker converts the STEP file; the page follows by itself to the 3D view, the DFM
    # report and a firm quote.
    page.wait_for_selector("#viewer[data-state=shown]", timeout=180_000)
    page.wait_for_selector("#dfm-report[data-status=ready]", timeout=120_000)
    assert page.inner_text("#dfm-summary").startswith("It can be made on")
    assert "a firm price" in page.inner_text("#configuration")
    page.fill("#quantity", "3")
    # The quote follows the quantity (htmx; no eval in the page: its CSP forbids it).
    page.wait_for_selector("#quote tr.total th:has-text('Total for 3')", timeout=30_000)
    page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)

    page.click("#add-to-cart")
    page.wait_for_url(f"{live_server.url}/cart/")
    assert "Guard bracket" in page.inner_text("#cart-lines")
    page.click("#order-form button[type=submit]")
    page.wait_for_url(re.compile(r"/orders/\d+/$"))
    order = Order.objects.get()
    line = order.lines.get()
    assert line.revision == CustomerUpload.objects.get().revision and line.quantity == 3
    assert line.quote["geometry_basis"] == "preview"
