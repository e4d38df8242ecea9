"""Dates and speed: what standard and expedited delivery of an order cost and when each is
promised, and whether a needed-by date can be met.

    standard  = the lines' quoted total; promised when a simulation of the live queue
                (production.simulation, through production.public.order_promise) with the
                order added at normal priority has its last line at the delivery site
    expedited = the total + the expedite fee (MF_EXPEDITE_FEE_PERCENT of it, at least
                MF_EXPEDITE_FEE_MIN); the router takes it first (urgent, due by its promise),
                so it waits for nothing not already on a machine: the same simulation with
                the order urgent

Each promise comes with its confidence and the expected (median) time: the simulation runs
once with every job as slow as MF_PROMISE_CONFIDENCE of past jobs ran against their estimates
(the promise) and once at the median (the expected time). No promise (None) when a line has
no machine taking work now. The requester's needed-by date is the end of that day; an order
whose chosen speed cannot make it is refused with what can (expedite, or the earliest date),
never placed late silently.

The arithmetic is pure (`expedite_fee`, `speed_options`, `needed_by_refusal`);
`order_delivery_quote` asks production for the two promises, `order_speed` for one.
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
    promised_at: datetime | None  # "ready by": at the delivery site, with `confidence`
    expected_at: datetime | None = None  # the median run times' finish (no later than promised)
    confidence: float | None = None  # 0..1, the share of past jobs the promise allows for


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


def speed_options(
    total: Decimal,
    *,
    standard: public.Promise | None,
    expedited: public.Promise | None,
    now: datetime,
    percent: Decimal,
    minimum: Decimal,
    currency: str,
) -> DeliveryQuote:
    """Both choices for an order of this total, promised as the simulation says (None: no
    promise at that speed)."""
    fee = expedite_fee(total, percent=percent, minimum=minimum)

    def option(expedite: bool, promise: public.Promise | None, fee: Decimal) -> SpeedOption:
        if promise is None:
            return SpeedOption(
                expedite=expedite, fee=fee, total=total + fee, lead_time_s=None, promised_at=None
            )
        return SpeedOption(
            expedite=expedite,
            fee=fee,
            total=total + fee,
            lead_time_s=max(0, int(round((promise.ready_at - now).total_seconds()))),
            promised_at=promise.ready_at,
            expected_at=promise.expected_at,
            confidence=promise.confidence,
        )

    return DeliveryQuote(
        currency=currency,
        standard=option(False, standard, Decimal("0.00")),
        # Urgent goes first: never promised later than standard, even where the simulated
        # queues tie differently.
        expedited=option(
            True,
            expedited
            if standard is None or expedited is None or expedited.ready_at <= standard.ready_at
            else standard,
            fee,
        ),
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
    lines: Sequence[tuple[LineFacts, Quote]], *, now: datetime, expedited: bool = True
) -> DeliveryQuote:
    """Both choices for an order whose lines are already quoted: each promise simulated on
    the live queue with the order's lines added (read once per request inside
    production.public.machines_read_once). `expedited=False`, for a caller that reads only
    the standard choice: the expedited promise is not simulated (it is standard's)."""
    return _delivery_quote(lines, now=now, expedited=expedited)


def order_speed(
    lines: Sequence[tuple[LineFacts, Quote]], *, now: datetime, expedite: bool
) -> SpeedOption:
    """One speed's price and promise: what a route's ranking and the part page show. At
    standard speed the expedited promise is not simulated (half the work)."""
    return _delivery_quote(lines, now=now, expedited=expedite).chosen(expedite=expedite)


def _delivery_quote(
    lines: Sequence[tuple[LineFacts, Quote]], *, now: datetime, expedited: bool
) -> DeliveryQuote:
    total = sum((quote.total for _, quote in lines), Decimal(0))
    promised = bool(lines) and all(
        facts.machines and quote.lead_time_s is not None for facts, quote in lines
    )
    standard = fast = None
    if promised:
        wanted = tuple(
            public.PromiseLine(
                process=facts.process,
                material=facts.material.slug,
                extents_mm=facts.extents_mm,
                # As the quote's plate plan runs the copies (orders.quoting.plates_run_time_s).
                run_s=quote.run_time_s,
                copies=quote.quantity,
            )
            for facts, quote in lines
        )
        site = next((facts.delivery_site for facts, _ in lines if facts.delivery_site), None)
        standard = _promise(wanted, now=now, expedite=False, site=site)
        fast = _promise(wanted, now=now, expedite=True, site=site) if expedited else None
    return speed_options(
        total,
        standard=standard,
        expedited=fast,
        now=now,
        percent=settings.MF_EXPEDITE_FEE_PERCENT,
        minimum=settings.MF_EXPEDITE_FEE_MIN,
        currency=settings.ORDER_QUOTE_RATES.currency,
    )


def _promise(
    wanted: tuple[public.PromiseLine, ...], *, now: datetime, expedite: bool, site: str | None
) -> public.Promise | None:
    """The simulated promise, once per request for the same lines (inside
    machines_read_once: a one-line order's route and the order itself ask the same)."""
    return public.read_once(
        ("order_promise", wanted, now, expedite, site),
        lambda: public.order_promise(list(wanted), now=now, expedite=expedite, delivery_site=site),
    )
