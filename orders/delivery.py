"""Dates and speed: what standard and expedited delivery of an order cost and when each is
promised, and whether a needed-by date can be met.

    standard  = the lines' quoted total; ready once the work of the process already waiting
                for a machine (production.public.waiting_work_s, shared among the machines
                that can make the line) is done, then the line's own quoted lead time (the
                soonest a capable machine is free + its run + transit + the pipeline)
    expedited = the total + the expedite fee (MF_EXPEDITE_FEE_PERCENT of it, at least
                MF_EXPEDITE_FEE_MIN); the router takes it first (urgent, due by its promise),
                so it waits for nothing not already on a machine: the quoted lead time alone

An order is promised when its latest line is (the lines are quoted against the same queues).
No promise (None) when a line has no machine taking work now. The requester's needed-by date
is the end of that day; an order whose chosen speed cannot make it is refused with what can
(expedite, or the earliest date), never placed late silently.

The arithmetic is pure (`expedite_fee`, `delivery_quote`, `needed_by_refusal`);
`order_delivery_quote` reads the waiting work of the lines' processes from production.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

from orders.quotes import LineFacts
from orders.quoting import Quote
from production import public

CENT = Decimal("0.01")


@dataclass(frozen=True)
class SpeedOption:
    expedite: bool
    fee: Decimal  # 0 for standard
    total: Decimal  # the lines' total plus the fee
    lead_time_s: int | None  # None: no machine takes work now, nothing can be promised
    promised_at: datetime | None


@dataclass(frozen=True)
class DeliveryQuote:
    currency: str
    standard: SpeedOption
    expedited: SpeedOption

    def chosen(self, *, expedite: bool) -> SpeedOption:
        return self.expedited if expedite else self.standard


def expedite_fee(total: Decimal, *, percent: Decimal, minimum: Decimal) -> Decimal:
    """`percent` of the order's total, never below `minimum`, in cents."""
    return max(minimum, total * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def delivery_quote(
    lines: Sequence[tuple[Quote, float]],
    *,
    now: datetime,
    percent: Decimal,
    minimum: Decimal,
    currency: str,
) -> DeliveryQuote:
    """Both choices for an order of these lines, each as (its quote, the seconds of waiting
    work it would queue behind at standard speed)."""
    total = sum((quote.total for quote, _ in lines), Decimal(0))
    leads = [quote.lead_time_s for quote, _ in lines]
    known = bool(leads) and all(lead is not None for lead in leads)
    fast = max((lead or 0 for lead in leads), default=0) if known else None
    slow = (
        max((int(round((quote.lead_time_s or 0) + wait_s)) for quote, wait_s in lines), default=0)
        if known
        else None
    )
    fee = expedite_fee(total, percent=percent, minimum=minimum)

    def option(expedite: bool, lead: int | None, fee: Decimal) -> SpeedOption:
        return SpeedOption(
            expedite=expedite,
            fee=fee,
            total=total + fee,
            lead_time_s=lead,
            promised_at=None if lead is None else now + timedelta(seconds=lead),
        )

    return DeliveryQuote(
        currency=currency,
        standard=option(False, slow, Decimal("0.00")),
        expedited=option(True, fast, fee),
    )


def needed_by_end(needed_by: date) -> datetime:
    """The end of the needed-by day in the site's time zone."""
    return timezone.make_aware(datetime.combine(needed_by + timedelta(days=1), time.min))


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _day(moment: datetime) -> str:
    return timezone.localdate(moment).isoformat()


def needed_by_refusal(
    *, needed_by: date | None, expedite: bool, quote: DeliveryQuote
) -> str | None:
    """Why the chosen speed cannot have the parts by the end of the needed-by date, with what
    can (expedite, or the earliest date); None when it can, when no date is needed (as soon
    as possible), or when nothing can be promised."""
    chosen = quote.chosen(expedite=expedite)
    if needed_by is None or chosen.promised_at is None:
        return None
    deadline = needed_by_end(needed_by)
    if chosen.promised_at <= deadline:
        return None
    fast = quote.expedited
    assert fast.promised_at is not None  # known whenever the standard promise is
    if not expedite and fast.promised_at <= deadline:
        return (
            f"standard delivery is promised for {_when(chosen.promised_at)}, after "
            f"{needed_by.isoformat()}: expedite it (+{fast.fee} {quote.currency}, promised for "
            f"{_when(fast.promised_at)}), or choose {_day(chosen.promised_at)} or later"
        )
    if not expedite:
        return (
            f"the earliest possible is {_when(fast.promised_at)} when expedited "
            f"(+{fast.fee} {quote.currency}), {_when(chosen.promised_at)} at standard speed: "
            f"choose {_day(fast.promised_at)} or later with expedite, or "
            f"{_day(chosen.promised_at)} or later"
        )
    return (
        f"even expedited, the earliest possible is {_when(fast.promised_at)}: choose "
        f"{_day(fast.promised_at)} or later"
    )


def order_delivery_quote(
    lines: Sequence[tuple[LineFacts, Quote]], *, now: datetime
) -> DeliveryQuote:
    """Both choices for an order whose lines are already quoted (a query per process). At
    standard speed a line queues behind the work of its process waiting for a machine,
    shared among the machines that could take it."""
    waiting: dict[str, float] = {}
    with_waits = []
    for facts, quote in lines:
        wait_s = 0.0
        if facts.machines:
            if facts.process not in waiting:
                waiting[facts.process] = public.waiting_work_s(process=facts.process)
            wait_s = waiting[facts.process] / len(facts.machines)
        with_waits.append((quote, wait_s))
    return delivery_quote(
        with_waits,
        now=now,
        percent=settings.MF_EXPEDITE_FEE_PERCENT,
        minimum=settings.MF_EXPEDITE_FEE_MIN,
        currency=settings.ORDER_QUOTE_RATES.currency,
    )
