"""A requester in a real browser: logs in, finds a part, configures it while the preview,
DFM notes and report and the quote follow, orders it, and watches its job go through the real
pipeline."""

import re
import time

import pytest
from django.core.management import call_command

from orders.models import Order
from production.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(600)]


def quote_total(page) -> str:
    return page.locator("#quote").get_attribute("data-total")


@pytest.mark.django_db(transaction=True)
def test_a_requester_configures_orders_and_follows_a_part(
    live_server, start_worker, chromium_page, tmp_path, settings
):
    from tests.integration.conftest import wait_for

    started = time.monotonic()
    call_command("seed_demo", "--no-order", "--history-weeks", "0", verbosity=0)
    # The order is for 3 copies: planned onto a plate at once, not after the batching window.
    settings.MF_PLATE_BATCH_WINDOW_S = 0
    worker = start_worker(env={"MF_PLATE_BATCH_WINDOW_S": "0"})
    page = chromium_page
    page.on("pageerror", lambda error: print(f"browser error: {error}"))

    # Log in.
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "requester")
    page.fill("#id_password", "microfactory")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Find the part.
    page.fill("input[name=q]", "collar")
    page.click("form[role=search] button")
    page.wait_for_selector(".part-card .drawing img", timeout=120_000)  # built by the worker
    page.screenshot(path=str(tmp_path / "catalog.png"))
    cards = page.locator(".part-card")
    # The name match first; then the hose barb, whose "Collar height" is a parameter word.
    assert [cards.nth(i).get_attribute("data-part") for i in range(cards.count())] == [
        "shaft-collar",
        "hose-barb",
    ]
    cards.first.click()
    page.wait_for_url(re.compile(r"/parts/shaft-collar/$"))

    # The default configuration: the preview is built by the worker, then shown in 3D.
    page.wait_for_selector("#viewer[data-state=shown]", timeout=120_000)
    first_model = page.get_attribute("#viewer", "data-url")
    first_total = quote_total(page)
    assert page.locator(".dfm-ok").first.is_visible()
    # Then its DFM report, checked by the worker, replaces "Checking the design…" by itself.
    page.wait_for_selector("#dfm-report[data-status=ready]", timeout=60_000)
    assert page.inner_text("#dfm-summary").startswith("It can be made on")
    assert page.inner_text("#dfm-orientation").startswith("Print orientation:")
    assert page.locator("#dfm-checks li[data-check='min wall']").count() >= 1
    page.screenshot(path=str(tmp_path / "part-default.png"))

    # A value out of range: the field error comes back as one types.
    page.fill("#p_bore_d", "90")
    page.wait_for_selector("#err-bore_d li")
    assert "must be at most 80 mm" in page.inner_text("#err-bore_d")
    assert page.get_attribute("#config-state", "data-state") == "invalid"

    # A valid change: new preview, new quote.
    page.fill("#p_bore_d", "25")
    page.fill("#p_width", "30")
    page.fill("#quantity", "3")
    page.wait_for_function(
        "old => { const quote = document.querySelector('#quote');"
        " return quote && quote.dataset.total !== old; }",
        arg=first_total,
    )
    page.wait_for_function(
        "old => { const v = document.querySelector('#viewer');"
        " return v.dataset.state === 'shown' && v.dataset.url !== old; }",
        arg=first_model,
        timeout=120_000,
    )
    assert page.inner_text("#err-bore_d") == ""
    assert quote_total(page) != first_total
    page.screenshot(path=str(tmp_path / "part-changed.png"))

    # Order it; a double click places one order.
    page.click("#add-to-cart")
    page.wait_for_url(re.compile(r"/cart/$"))
    page.fill("#reference", "WO-BROWSER-1")
    page.dblclick("#place-order")
    page.wait_for_url(re.compile(r"/orders/\d+/$"))
    order = Order.objects.get()
    assert order.reference == "WO-BROWSER-1" and order.lines.get().parameters["width"] == 30

    # The order page follows the job through the pipeline by itself (htmx polling).
    job = Job.objects.get(line__order=order)
    wait_for(
        lambda: Job.objects.get(pk=job.pk).is_finished,
        timeout=240,
        what="the job to be routed",
        worker=worker,
    )
    job.refresh_from_db()
    # Routed to a machine; a manual machine's job goes straight on to its operator's list.
    assert job.status in (Job.Status.ROUTED, Job.Status.DISPATCHED), (job.status, job.reason)
    page.wait_for_selector(
        ".job-status[data-status=routed], .job-status[data-status=dispatched]", timeout=10_000
    )
    steps = page.locator(".steps li strong").all_inner_texts()
    assert steps[:6] == ["order", "geometry", "validation", "toolpath", "traveler", "routing"], (
        steps
    )
    page.screenshot(path=str(tmp_path / "order-routed.png"), full_page=True)
    assert Order.objects.count() == 1
    print(f"\nbrowser journey took {time.monotonic() - started:.1f} s; screenshots in {tmp_path}")
    worker.stop()
