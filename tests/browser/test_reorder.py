"""A requester in a real browser finds a past order by its reference and reorders it in one
click; then reorders it at the part's latest revision after reading what changed."""

import re
from unittest.mock import patch

import pytest

from orders.models import Order
from tests.builders import make_machine, make_order, make_part, make_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BLOCK_V2 = [
    {"name": "width", "label": "Width", "type": "length", "default": 20, "min": 5, "max": 400},
    {"name": "height", "label": "Height", "type": "length", "default": 10, "min": 2, "max": 400},
    {
        "name": "hole_diameter",
        "label": "Hole diameter",
        "type": "length",
        "default": 5,
        "min": 1,
        "max": 50,
    },
]


@pytest.mark.django_db(transaction=True)
def test_a_requester_finds_an_order_and_reorders_it(live_server, chromium_page, organisation):
    with (
        patch("production.tasks.advance_job.apply_async"),
        patch("orders.tasks.deliver_webhook.apply_async"),
        patch("orders.tasks.email_requester.apply_async"),
    ):
        make_part("block")
        make_machine()
        user = make_user("tech", organisation=organisation)
        source = make_order(
            user=user, quantity=2, parameters={"width": 24, "height": 8, "hole_d": 6}
        )
        Order.objects.filter(pk=source.pk).update(reference="WO-PUMP-7")
        make_order(user=user)  # another order, which the search leaves out
        page = chromium_page
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "tech")
        page.fill("#id_password", "pw-for-tests")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

        # Search by the team's reference.
        page.goto(f"{live_server.url}/orders/")
        page.fill("#order-search input[name=q]", "pump")
        page.click("#order-search button")
        page.wait_for_url(re.compile(r"/orders/\?q=pump"))
        rows = page.locator("#orders tbody tr")
        assert rows.count() == 1 and source.number in rows.first.inner_text()
        rows.first.locator("a").first.click()
        page.wait_for_url(f"{live_server.url}/orders/{source.pk}/")

        # One click: the same configuration, as a new order.
        page.click("#reorder-same")
        page.wait_for_url(re.compile(r"/orders/(\d+)/$"))
        placed = Order.objects.exclude(pk=source.pk).order_by("-pk").first()
        assert page.url.endswith(f"/orders/{placed.pk}/")
        assert f"reorder of {source.number}" in page.inner_text("#order-timeline")
        line, old = placed.lines.get(), source.lines.get()
        assert (line.revision_id, line.parameters, line.material_id, line.quantity) == (
            old.revision_id,
            old.parameters,
            old.material_id,
            old.quantity,
        )

        # A new revision: read what changed, then place it.
        make_part("block", schema=BLOCK_V2, rules=[])
        page.goto(f"{live_server.url}/orders/{source.pk}/")
        page.click("#reorder-latest")
        page.wait_for_selector(".reorder-changes")
        assert "renamed from hole_d to hole_diameter" in page.inner_text(".reorder-changes")
        # On a phone, the plan and the search fit the screen's width (the page's own content:
        # the navigation bar's collapse is the phone-first pages' work, #17 point 6).
        page.set_viewport_size({"width": 390, "height": 844})
        for url in (page.url, f"{live_server.url}/orders/?q=pump"):
            page.goto(url)
            wide = page.evaluate(
                "[...document.querySelectorAll('main *')]"
                ".filter(e => e.getBoundingClientRect().right > 390 && !e.closest('table'))"
                ".map(e => e.tagName + '.' + e.className)"
            )
            assert wide == [], (url, wide)
        page.goto(f"{live_server.url}/orders/{source.pk}/reorder/?revision=latest")
        page.click("#confirm-reorder")
        page.wait_for_url(re.compile(r"/orders/(\d+)/$"))
        latest = Order.objects.order_by("-pk").first()
        assert latest.lines.get().revision.number == 2
        assert latest.lines.get().parameters["hole_diameter"] == 6
