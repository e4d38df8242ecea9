"""Carts kept per user in the database: a line added on the phone at the broken machine is
still there on the office PC, and after logging out and in again.

A line is checked when it is added (the same checks as an order line: revision, parameters,
material, quantity, and a configuration the part page already found impossible is refused)
and carries the price quoted then, as an indication: an order or a saved quote prices every
line again.

`cart_add_line` is the one way lines get in (the part page, a reorder, the pre-session cart
of a user who was signed in before carts moved to the database).
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from microfactory.errors import DomainError
from orders.models import Cart, CartLine
from orders.quotes import indicative_quote, line_facts
from orders.services import (
    LineRequest,
    default_delivery_site,
    line_check,
    line_makeable,
    membership_for,
)


class CartFull(DomainError):
    """The cart already holds ORDER_MAX_LINES lines (an order could not take another)."""


def cart_of(user: Any) -> Cart:
    """The user's cart, made on first use."""
    cart, _ = Cart.objects.get_or_create(user=user)
    return cart


def cart_lines(*, user: Any) -> list[CartLine]:
    """The user's cart lines in the order they were added (none for an anonymous user)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        CartLine.objects.filter(cart__user=user).select_related(
            "revision__family", "revision__upload", "material"
        )
    )


def cart_size(*, user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return CartLine.objects.filter(cart__user=user).count()


def cart_add_line(
    *, user: Any, line: LineRequest, note: str = "", now: datetime | None = None
) -> CartLine:
    """Check one line and add it to the user's cart, priced as the part page would price it
    now (to the organisation's default delivery site). Raises OrderInvalid with the line's
    field errors, CartFull when the cart holds ORDER_MAX_LINES lines already."""
    now = now or timezone.now()
    organisation = membership_for(user).organisation
    checked = line_check(line, organisation=organisation)  # its uploaded parts too
    line_makeable(checked)
    site = default_delivery_site(organisation)
    quote = indicative_quote(
        line_facts(**checked, now=now, delivery_site=site.slug if site is not None else "")
    )
    with transaction.atomic():
        # Locked: two tabs adding at once cannot both take the last free place.
        cart = Cart.objects.select_for_update().get(pk=cart_of(user).pk)
        if cart.lines.count() >= settings.ORDER_MAX_LINES:
            raise CartFull(f"A cart holds at most {settings.ORDER_MAX_LINES} lines.")
        added = CartLine.objects.create(
            cart=cart,
            revision=checked["revision"],
            parameters=checked["parameters"],
            parameters_hash=checked["parameters_hash"],
            material=checked["material"],
            quantity=checked["quantity"],
            quoted_total=quote.total,
            currency=quote.currency,
            note=note[:200],
            added_at=now,
        )
        cart.save(update_fields=["updated_at"])
    return added


def cart_remove_line(*, user: Any, line_id: int) -> bool:
    """Remove one line of the user's own cart; False when the user's cart has no such line
    (another user's line is never touched)."""
    deleted, _ = CartLine.objects.filter(cart__user=user, pk=line_id).delete()
    return bool(deleted)


def cart_clear(*, user: Any) -> None:
    CartLine.objects.filter(cart__user=user).delete()
