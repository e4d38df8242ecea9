"""Saved quotes: a set of lines priced once and held until a validity date, to share with the
team's approvers, print for purchasing (orders.quote_pdf) and order at those prices.

- Saving (`quote_save`, or `quote_save_from_cart`) checks every line as an order would, prices
  it now (to the organisation's default delivery site) and keeps each line's Quote; the quote
  is valid through `created + MF_QUOTE_VALID_DAYS` days (inclusive).
- Sharing (`quote_share`) records who shared it and when; the organisation's approvers find
  it on their approvals page.
- Ordering (`quote_order`) while valid places an order whose lines take the held quotes (unit
  price and total as saved; the lead time is today's); once, at most. An expired quote is
  refused with QuoteExpired: `quote_requote` saves the same lines again at today's prices.

Scoping: SavedQuote.objects.for_user, as orders: another organisation's quote is a 404.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from microfactory.errors import DomainError
from orders.carts import cart_clear, cart_lines
from orders.models import Order, Organisation, SavedQuote, SavedQuoteLine
from orders.quotes import line_facts, route_quote
from orders.quoting import NoStock, Quote
from orders.services import (
    LineRequest,
    NotAllowed,
    OrderInvalid,
    OrderRequest,
    default_delivery_site,
    line_check,
    line_makeable,
    line_request_of,
    membership_for,
    order_place,
)


class QuoteExpired(DomainError):
    """The quote's validity date has passed: its prices are no longer held."""


class QuoteOrdered(DomainError):
    """The quote was ordered already (a quote is ordered once)."""

    def __init__(self, quote: SavedQuote, order: Order):
        self.order = order
        super().__init__(f"{quote.number} was already ordered as {order.number}")


def valid_until(created_at: datetime) -> date:
    """The last day a quote saved at `created_at` holds its prices (local date, inclusive)."""
    return timezone.localdate(created_at) + timedelta(days=settings.MF_QUOTE_VALID_DAYS)


def quote_from_json(stored: dict[str, Any]) -> Quote:
    """A Quote as Quote.as_json stored it (Decimals were strings; `firm` is derived)."""
    fields = {name: value for name, value in stored.items() if name != "firm"}
    for name in ("material_cost", "machine_cost", "setup_fee", "unit_price", "total"):
        fields[name] = Decimal(str(fields[name]))
    for name in ("hourly_rate", "price_per_kg"):
        if name in fields:
            fields[name] = Decimal(str(fields[name]))
    return Quote(**fields)


def _checked_lines(
    requested: list[LineRequest], *, organisation: Organisation
) -> list[dict[str, Any]]:
    """Every line checked as an order's would be; all errors collected before refusing."""
    if not requested:
        raise OrderInvalid({"lines": ["a quote needs at least one line"]})
    if len(requested) > settings.ORDER_MAX_LINES:
        raise OrderInvalid({"lines": [f"at most {settings.ORDER_MAX_LINES} lines per quote"]})
    errors: dict[str, Any] = {}
    checked = []
    for index, line in enumerate(requested):
        try:
            one = line_check(line, organisation=organisation)
            line_makeable(one)
        except OrderInvalid as invalid:
            errors[str(index)] = invalid.errors
        else:
            checked.append(one)
    if errors:
        raise OrderInvalid({"lines": errors})
    return checked


def quote_save(
    *,
    user: Any,
    lines: list[LineRequest],
    reference: str = "",
    note: str = "",
    now: datetime | None = None,
) -> SavedQuote:
    """Price the lines now and keep the prices until the validity date. Raises OrderInvalid
    with each line's errors, DomainError for a user outside any organisation."""
    now = now or timezone.now()
    membership = membership_for(user)
    checked = _checked_lines(lines, organisation=membership.organisation)
    site = default_delivery_site(membership.organisation)
    delivery = site.slug if site is not None else ""
    try:
        # Each line made by its material's process (orders.routes): milled and laser-cut
        # lines are priced on their plate or sheet.
        quoted = [
            (line, route_quote(line_facts(**line, now=now, delivery_site=delivery)))
            for line in checked
        ]
    except NoStock as refusal:
        raise OrderInvalid({"material": [str(refusal)]}) from refusal
    with transaction.atomic():
        quote = SavedQuote.objects.create(
            organisation=membership.organisation,
            team=membership.team,
            created_by=user,
            created_at=now,
            valid_until=valid_until(now),
            reference=reference[:100],
            note=note[:5000],
            total_price=sum((q.total for _, q in quoted), Decimal(0)),
            currency=settings.ORDER_QUOTE_RATES.currency,
        )
        SavedQuoteLine.objects.bulk_create(
            SavedQuoteLine(
                quote=quote,
                revision=line["revision"],
                parameters=line["parameters"],
                parameters_hash=line["parameters_hash"],
                material=line["material"],
                quantity=line["quantity"],
                quote_json=priced.as_json(),
                unit_price=priced.unit_price,
                price=priced.total,
                lead_time_s=priced.lead_time_s,
            )
            for line, priced in quoted
        )
    return quote


def quote_save_from_cart(
    *, user: Any, reference: str = "", note: str = "", now: datetime | None = None
) -> SavedQuote:
    """Save the user's cart as a quote; the cart is emptied (its lines are the quote's now)."""
    lines = [line_request_of(line) for line in cart_lines(user=user)]
    if not lines:
        raise OrderInvalid({"lines": ["the cart is empty"]})
    with transaction.atomic():
        quote = quote_save(user=user, lines=lines, reference=reference, note=note, now=now)
        cart_clear(user=user)
    return quote


def quote_share(*, quote: SavedQuote, user: Any, now: datetime | None = None) -> SavedQuote:
    """Share the quote with its organisation's approvers (listed on their approvals page);
    sharing again records the latest share."""
    now = now or timezone.now()
    if quote.order_id is not None:
        raise QuoteOrdered(quote, Order.objects.get(pk=quote.order_id))
    quote.shared_at, quote.shared_by = now, user
    quote.save(update_fields=["shared_at", "shared_by"])
    return quote


def quote_requote(*, quote: SavedQuote, user: Any, now: datetime | None = None) -> SavedQuote:
    """The same lines (same revisions, parameters, materials, quantities) saved as a new quote
    at today's prices, valid from today."""
    lines = [
        line_request_of(line) for line in quote.lines.select_related("revision__family", "material")
    ]
    return quote_save(
        user=user,
        lines=lines,
        reference=quote.reference,
        note=f"re-quote of {quote.number}" + (f"\n{quote.note}" if quote.note else ""),
        now=now,
    )


def quote_order(
    *,
    quote: SavedQuote,
    user: Any,
    reference: str = "",
    due_date: date | None = None,
    priority: str = Order.Priority.NORMAL,
    delivery_site: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Order:
    """Order the quote's lines at its held prices while it is valid; return the order.

    Refuses an expired quote (QuoteExpired), one already ordered (QuoteOrdered), and lines
    the catalog no longer accepts (OrderInvalid: a retired part, a material withdrawn). The
    order otherwise goes as any order does (approval threshold, jobs); an estimated line's
    price is checked on the built part as usual, against the held price. No idempotency key:
    the quote itself is one (a second call is QuoteOrdered, naming the order).
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    if membership_for(user).organisation_id != quote.organisation_id:
        raise NotAllowed("only a member of the quote's organisation can order it")
    with transaction.atomic():
        # Locked: two clicks, or two people, cannot both order it.
        quote = SavedQuote.objects.select_for_update().get(pk=quote.pk)
        if quote.order_id is not None:
            raise QuoteOrdered(quote, Order.objects.get(pk=quote.order_id))
        if not quote.is_valid_on(today):
            raise QuoteExpired(
                f"{quote.number} expired on {quote.valid_until.isoformat()}: its prices are "
                "no longer held. Re-quote it to order the same lines at today's prices."
            )
        lines = list(quote.lines.select_related("revision__family", "material"))
        order, _ = order_place(
            user=user,
            request=OrderRequest(
                lines=[line_request_of(line) for line in lines],
                reference=reference or quote.reference,
                due_date=due_date,
                priority=priority,
                delivery_site=delivery_site,
                note=note,
            ),
            now=now,
            held=[quote_from_json(line.quote_json) for line in lines],
        )
        quote.order = order
        quote.save(update_fields=["order"])
    return order
