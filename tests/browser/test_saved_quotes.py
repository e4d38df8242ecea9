"""A requester in a real browser saves the cart as a quote, downloads its PDF and shares it;
the approver finds it on the approvals page. Every page under the strict CSP (the fixture
fails on any violation)."""

import re

import pytest

from orders.carts import cart_add_line
from orders.models import SavedQuote
from orders.services import LineRequest
from tests.builders import make_machine, make_part, make_user
from tests.orders.helpers import join_team, make_team

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.mark.django_db(transaction=True)
def test_a_requester_saves_downloads_and_shares_a_quote(
    live_server, chromium_page, organisation, user, tmp_path
):
    make_part("block")
    make_machine()
    team = make_team(organisation, slug="line-3")
    join_team(user, team)
    join_team(make_user("boss", organisation=organisation, role="approver"), team)
    line = LineRequest(
        part="block",
        parameters={"width": 20, "height": 10, "hole_d": 5},
        material="pla",
        quantity=4,
    )
    cart_add_line(user=user, line=line)
    page = chromium_page

    log_in(page, live_server.url, "req")
    assert page.inner_text("header nav").count("Cart (1)") == 1
    page.goto(f"{live_server.url}/cart/")
    page.fill("#quote-reference", "WO-88")
    page.click("#save-quote")
    page.wait_for_url(re.compile(r"/quotes/\d+/$"))
    quote = SavedQuote.objects.get()
    assert quote.number in page.inner_text("h1")
    assert page.inner_text("#valid-until") == quote.valid_until.isoformat()
    assert "Cart (" not in page.inner_text("header nav")  # the lines moved into the quote
    page.screenshot(path=str(tmp_path / "quote.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#quote-pdf")
    path = tmp_path / "quote.pdf"
    download.value.save_as(path)
    assert download.value.suggested_filename == f"{quote.number}.pdf"
    assert path.read_bytes().startswith(b"%PDF-")

    page.click("#share-quote")
    page.wait_for_selector(".message-success")
    assert "Shared with the approvers by req" in page.inner_text("main")

    page.click("header nav form button")  # log out
    log_in(page, live_server.url, "boss")
    page.goto(f"{live_server.url}/approvals/")
    assert quote.number in page.inner_text("#shared-quotes + table")
