"""Carts saved per user: a line added in one session is there after logging out and in again
(or on another device), each user sees only their own cart, and `cart_add_line` (also used by
reorders) checks a line as an order would."""

import pytest
from django.test import Client, override_settings

from orders.carts import CartFull, cart_add_line, cart_lines
from orders.models import CartLine
from orders.services import LineRequest, OrderInvalid
from tests.builders import make_machine, make_part, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

FORM = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla", "quantity": "2"}
GOOD = {"width": 20, "height": 10, "hole_d": 5}


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_machine()


def signed_in(username: str = "req") -> Client:
    client = Client()
    assert client.post("/login/", {"username": username, "password": "pw-for-tests"}).status_code
    assert "_auth_user_id" in client.session
    return client


def test_the_cart_survives_logging_out_and_in_and_follows_the_user_to_another_device(user):
    phone = signed_in()
    assert phone.post("/parts/block/add/", FORM).status_code == 302
    assert "Cart (1)" in phone.get("/").content.decode()
    phone.post("/logout/")
    assert "_auth_user_id" not in phone.session
    # A new session on the same browser, and one on another device: the same cart.
    assert phone.post("/login/", {"username": "req", "password": "pw-for-tests"}).status_code
    for client in (phone, signed_in()):
        page = client.get("/cart/").content.decode()
        assert "Block" in page and page.count("Remove") == 1
    [line] = cart_lines(user=user)
    assert (line.quantity, line.material.slug, line.parameters) == (2, "pla", GOOD)
    assert line.quoted_total > 0 and line.currency == "EUR"


def test_each_user_sees_and_removes_only_their_own_cart_lines(user, organisation):
    theirs = cart_add_line(
        user=make_user("other", organisation=organisation),
        line=LineRequest(part="block", parameters=GOOD, material="pla", quantity=1),
    )
    mine = signed_in()
    assert "The cart is empty" in mine.get("/cart/").content.decode()
    # Removing another user's line by its id: nothing happens to it.
    assert mine.post(f"/cart/{theirs.pk}/remove/").status_code == 302
    assert CartLine.objects.filter(pk=theirs.pk).exists()
    mine.post("/parts/block/add/", FORM)
    [line] = cart_lines(user=user)
    assert mine.post(f"/cart/{line.pk}/remove/").status_code == 302
    assert cart_lines(user=user) == []


def test_placing_the_order_empties_the_saved_cart(user):
    client = signed_in()
    client.post("/parts/block/add/", FORM)
    response = client.post("/cart/", {"idempotency_key": "k1", "priority": "normal"})
    assert response.status_code == 302 and response["Location"].startswith("/orders/")
    assert cart_lines(user=user) == []


def test_a_cart_from_a_session_before_saved_carts_moves_into_the_saved_cart(user):
    client = signed_in()
    session = client.session
    session["cart"] = [
        {"part": "block", "revision": 1, "parameters": GOOD, "material": "pla", "quantity": 3},
        {"part": "no-such-part", "parameters": {}, "material": "pla", "quantity": 1},
        "garbage",
    ]
    session.save()
    page = client.get("/cart/").content.decode()
    assert page.count("Remove") == 1
    assert [line.quantity for line in cart_lines(user=user)] == [3]
    assert "cart" not in client.session
    client.get("/cart/")  # moved once, not again
    assert len(cart_lines(user=user)) == 1


def test_cart_add_line_checks_the_line_and_the_cart_size(user):
    with pytest.raises(OrderInvalid) as invalid:
        cart_add_line(
            user=user,
            line=LineRequest(
                part="block", parameters={**GOOD, "hole_d": 19}, material="pla", quantity=1
            ),
        )
    assert "parameters" in invalid.value.errors
    with override_settings(ORDER_MAX_LINES=2):
        line = LineRequest(part="block", parameters=GOOD, material="pla", quantity=1)
        cart_add_line(user=user, line=line, note="reorder of O-000001")
        cart_add_line(user=user, line=line)
        with pytest.raises(CartFull, match="at most 2 lines"):
            cart_add_line(user=user, line=line)
        response = signed_in().post("/parts/block/add/", FORM, follow=True)
        assert "A cart holds at most 2 lines." in response.content.decode()
    assert [line.note for line in cart_lines(user=user)] == ["reorder of O-000001", ""]
