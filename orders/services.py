"""Write paths for orders: placing one (exactly once per idempotency key, quoted, approved or
waiting for an approver), approving, rejecting, cancelling, following its jobs, and checking
an estimated price on the built part (confirmed or declined by the customer when it rose).

Production is reached only through production.public (jobs created and cancelled there, job
summaries and job events read from there as frozen values).

Every status change goes through `_move`, which refuses moves TRANSITIONS does not allow and
records who made it and when (OrderEvent). Webhooks and e-mails are queued in the same
transaction and sent after it commits (orders.notifications).
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Material, PartFamily, PartRevision, Process
from catalog.parameters import (
    ParameterError,
    SchemaError,
    parameters_hash,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from microfactory.errors import DomainError
from orders import notifications, routes
from orders.delivery import needed_by_refusal, order_delivery_quote
from orders.models import (
    FINAL,
    TRANSITIONS,
    WORK_ORDER_REF_MAX_LENGTH,
    Asset,
    AssetPart,
    CartLine,
    CustomerUpload,
    Membership,
    Order,
    OrderEvent,
    OrderLine,
    Organisation,
    SavedQuoteLine,
    Status,
    Team,
    Webhook,
)
from orders.quoting import PASSED_ON, TO_CONFIRM, Quote, QuoteError, price_change, requote
from production import public
from production.public import JobSummary, SiteRef

logger = logging.getLogger(__name__)


class OrderInvalid(DomainError):
    """The order cannot be placed as sent; `errors` maps field paths to messages."""

    def __init__(self, errors: dict[str, Any]):
        self.errors = errors
        super().__init__("the order has errors; nothing was created")


class IdempotencyConflict(DomainError):
    """The idempotency key was already used for a different request."""


class NotAllowed(DomainError):
    """The user's role does not allow this (the API answers 403)."""


@dataclass(frozen=True)
class LineRequest:
    part: str  # family slug
    parameters: dict[str, Any]
    material: str  # material slug
    quantity: int
    revision: int | None = None  # None: the family's current published revision
    # The process route the requester chose (orders.routes), with `material` of that process;
    # "": the route chooser picks among the revision's allowed processes.
    process: str = ""


def line_request_of(
    saved: CartLine | AssetPart | SavedQuoteLine | OrderLine, *, quantity: int | None = None
) -> LineRequest:
    """A configuration kept in a cart, on an asset, in a saved quote or on an order line as an
    order line on the very revision it was kept with (its own quantity unless given)."""
    return LineRequest(
        part=saved.revision.family.slug,
        parameters=dict(saved.parameters),
        material=saved.material.slug,
        quantity=saved.quantity if quantity is None else quantity,
        revision=saved.revision.number,
    )


@dataclass(frozen=True)
class OrderRequest:
    lines: list[LineRequest]
    reference: str = ""
    due_date: date | None = None
    priority: str = Order.Priority.NORMAL
    note: str = ""
    expedite: bool = False  # urgent, for the expedite fee (orders.delivery)
    delivery_site: str = ""  # site slug
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    asset: int | None = None  # the id of an asset of the organisation (orders.assets)
    work_order_ref: str = ""  # the team's work-order reference

    def fingerprint(self) -> str:
        payload = json.dumps(
            {
                # A line's process only when chosen: keys of orders placed before routes
                # existed still match.
                "lines": [
                    {k: v for k, v in vars(line).items() if k != "process" or v}
                    for line in self.lines
                ],
                "reference": self.reference,
                "due_date": self.due_date,
                "priority": self.priority,
                "note": self.note,
                "delivery_site": self.delivery_site,
                # Only when set: keys of orders placed before these fields existed still match.
                **({"expedite": True} if self.expedite else {}),
                **({"asset": self.asset} if self.asset is not None else {}),
                **({"work_order_ref": self.work_order_ref} if self.work_order_ref else {}),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def membership_for(user: Any) -> Membership:
    membership = (
        Membership.objects.filter(user=user).select_related("organisation", "team").first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    if membership is None:
        raise DomainError("your account does not belong to an organisation")
    return membership


def organisation_for(user: Any) -> Organisation:
    return membership_for(user).organisation


# --- placing ---------------------------------------------------------------------------------


def order_place(
    *,
    user: Any,
    request: OrderRequest,
    now: datetime | None = None,
    held: Sequence[Quote] | None = None,
) -> tuple[Order, bool]:
    """Check, quote and place an order; return (order, created).

    Under the team's approval threshold (or without one) the order is approved at once and
    its jobs are queued; above it, it waits for an approver. A second call with the same
    idempotency key within ORDER_IDEMPOTENCY_KEY_TTL_H returns the first order
    (created=False) and changes nothing; the same key with another request is an
    IdempotencyConflict. An expired key places a new order. An order that names no delivery
    site goes to its organisation's default one; the lead times quoted include the transit
    there. An expedited order pays the expedite fee and is urgent; the promise of the chosen
    speed is kept with the order, and a needed-by date it cannot make is refused
    (orders.delivery).

    `held`: one quote per line, kept from a saved quote (orders.saved_quotes): each line is
    priced as held, not quoted again; only its lead time is today's.
    """
    now = now or timezone.now()
    membership = membership_for(user)
    organisation = membership.organisation
    fingerprint = request.fingerprint()
    if request.idempotency_key:
        earlier = _earlier(organisation, request.idempotency_key, fingerprint, now)
        if earlier is not None:
            return earlier, False
    # Every line is checked, routed and quoted against one reading of the machines (a query
    # budget that grows little with the lines: tests/test_query_budgets.py), shared with the
    # orders placed in the last MF_QUOTE_SNAPSHOT_S (the jobs placed since are read anew).
    with public.machines_read_once(now=now):
        lines = _resolve_lines(request.lines, organisation=organisation)
        site = _check_order_fields(request, today=timezone.localdate(now))
        asset = _order_asset(request, organisation)
        if site is None:  # the order names no site: the organisation's default, if it has one
            site = default_delivery_site(organisation)
        delivery = site.slug if site else ""
        # Each line's process route (orders.routes): the requester's, or the chooser's among the
        # revision's allowed processes; a held quote keeps the route it was quoted on.
        deadline = routes.deadline_of(request.due_date)
        choices = [
            _line_route(
                line,
                requested=line.pop("requested_process"),
                now=now,
                delivery_site=delivery,
                expedite=request.expedite,
                deadline=deadline,
                held=held is not None,
                index=index,
            )
            for index, line in enumerate(lines)
        ]
        facts = []
        for line, choice in zip(lines, choices, strict=True):
            chosen = choice.chosen
            assert chosen.facts is not None
            facts.append(chosen.facts)
            line.update(
                process=chosen.process,
                # The line's own material unless the route took another (one query fewer a line).
                material=(
                    line["material"]
                    if line["material"].slug == chosen.material
                    else Material.objects.get(slug=chosen.material)
                ),
                route_reason=choice.reason,
                route_options=choice.options_json() if choice.chosen_by else [],
                route_chosen_by=choice.chosen_by,
            )
        quoted = [(line, choice.chosen.quote) for line, choice in zip(lines, choices, strict=True)]
        _check_plates(quoted)
        if held is not None:
            quoted = [
                (line, replace(kept, lead_time_s=fresh.lead_time_s))
                for (line, fresh), kept in zip(quoted, held, strict=True)
            ]
        # Standard or expedited: its price and promise (the queue simulated on the same
        # reading of the machines); a needed-by date it cannot make is refused with what can
        # make it (orders.delivery).
        speeds = order_delivery_quote(
            [(fact, quote) for fact, (_, quote) in zip(facts, quoted, strict=True)],
            now=now,
            # Only a needed-by date's refusal names the other speed: without one, the chosen
            # speed alone is simulated (on the reading the routes' promises were simulated on).
            expedited=request.expedite or request.due_date is not None,
        )
    refusal = needed_by_refusal(needed_by=request.due_date, expedite=request.expedite, quote=speeds)
    if refusal is not None:
        raise OrderInvalid({"due_date": [refusal]})
    speed = speeds.chosen(expedite=request.expedite)
    total = speed.total
    # A critical asset standing still: what waiting for the slowest part costs.
    stake = (
        asset.downtime_stake(max((quote.lead_time_s or 0) for _, quote in quoted))
        if asset is not None and asset.is_critical_down
        else None
    )
    try:
        with transaction.atomic():
            order = Order.objects.create(
                organisation=organisation,
                team=membership.team,
                placed_by=user,
                status=Status.DRAFT,
                reference=request.reference,
                due_date=request.due_date,
                # An expedited order goes to the router as urgent, whatever was chosen.
                priority=Order.Priority.URGENT if request.expedite else request.priority,
                expedite=request.expedite,
                expedite_fee=speed.fee,
                promised_at=speed.promised_at,
                delivery_site_id=site.pk if site else None,
                note=request.note,
                total_price=total,
                currency=settings.ORDER_QUOTE_RATES.currency,
                idempotency_key=request.idempotency_key or None,
                request_fingerprint=fingerprint,
                status_changed_at=now,
                asset=asset,
                work_order_ref=request.work_order_ref,
                downtime_stake=stake,
            )
            created = OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    status=Status.DRAFT,
                    quote=quote.as_json(),
                    unit_price=quote.unit_price,
                    price=quote.total,
                    lead_time_s=quote.lead_time_s,
                    price_check=(
                        OrderLine.PriceCheck.FIRM if quote.firm else OrderLine.PriceCheck.PENDING
                    ),
                    **line,
                )
                for line, quote in quoted
            )
            # The organisation's webhooks, read once for the order's three moves.
            hooks = notifications.active_webhooks(organisation.pk)
            _move(order, Status.SUBMITTED, actor=user, now=now, lines=created, webhooks=hooks)
            team = membership.team
            threshold = team.approval_threshold if team else None
            above = team is not None and threshold is not None and total > threshold
            if above and team and asset is not None and _waived(team, asset):
                _approve_and_start(
                    order,
                    actor=None,
                    now=now,
                    reason=f"approval waived by {team.name}'s policy for a critical asset "
                    f"that is down ({order.downtime_text}): {total} {order.currency} is above "
                    f"the threshold of {threshold}",
                    lines=created,
                    webhooks=hooks,
                )
            elif above and team:
                _move(
                    order,
                    Status.AWAITING_APPROVAL,
                    actor=None,
                    now=now,
                    reason=f"{total} {order.currency} is above {team.name}'s "
                    f"approval threshold of {threshold}",
                    lines=created,
                    webhooks=hooks,
                )
            else:
                _approve_and_start(
                    order,
                    actor=None,
                    now=now,
                    reason="no approval needed",
                    lines=created,
                    webhooks=hooks,
                )
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its order.
        earlier = _earlier(organisation, request.idempotency_key or "", fingerprint, now)
        if earlier is None:
            raise
        return earlier, False
    return order, True


def _line_route(
    line: dict[str, Any],
    *,
    requested: str,
    now: datetime,
    delivery_site: str,
    expedite: bool,
    deadline: datetime | None,
    held: bool,
    index: int,
) -> routes.RouteChoice:
    """A checked line's process route: the requester's (`requested`, a process) or a held
    quote's, else the chooser's (orders.routes); OrderInvalid for a route that cannot be."""
    found = routes.line_routes(
        revision=line["revision"],
        parameters=line["parameters"],
        parameters_hash=line["parameters_hash"],
        material=line["material"],
        quantity=line["quantity"],
        now=now,
        process=line["process"],
        delivery_site=delivery_site,
        expedite=expedite,
        only_requested=held,
    )
    key = (line["process"], line["material"].slug)
    if not found.options or ((requested or held) and key in found.refusals):
        why = found.refusals.get(key, "no process route can make it")
        raise OrderInvalid({"lines": {str(index): {"material": [why]}}})
    if not (requested or held):
        return routes.decide(found.options, deadline=deadline)
    option = next(o for o in found.options if o.key == key)
    others = [o for o in found.options if o.offered and o.key != key]
    if requested and not option.offered and others:
        choose = ", ".join(sorted({o.process for o in others}))
        raise OrderInvalid(
            {
                "lines": {
                    str(index): {
                        "process": [f"no {requested} machine can make it now; choose {choose}"]
                    }
                }
            }
        )
    return routes.decide(found.options, deadline=deadline, requested=key)


def _waived(team: Team, asset: Asset) -> bool:
    """The team's policy lets orders for its critical assets that are down skip approval."""
    return team.waive_approval_when_asset_down and asset.is_critical_down


def _order_asset(request: OrderRequest, organisation: Organisation) -> Asset | None:
    """The asset an order is for, which must be one of the organisation's; and its
    work-order reference, which must fit."""
    errors: dict[str, list[str]] = {}
    if len(request.work_order_ref) > WORK_ORDER_REF_MAX_LENGTH:
        errors["work_order_ref"] = [f"at most {WORK_ORDER_REF_MAX_LENGTH} characters"]
    asset = None
    if request.asset is not None:
        asset = (
            Asset.objects.filter(pk=request.asset, team__organisation=organisation)
            .select_related("team")
            .first()
        )
        if asset is None:
            errors["asset"] = [f"no asset {request.asset} in your organisation"]
    if errors:
        raise OrderInvalid(errors)
    return asset


def _earlier(organisation: Organisation, key: str, fingerprint: str, now: datetime) -> Order | None:
    earlier = Order.objects.filter(organisation=organisation, idempotency_key=key).first()
    if earlier is None:
        return None
    if earlier.placed_at < now - timedelta(hours=settings.ORDER_IDEMPOTENCY_KEY_TTL_H):
        # Expired: the key is free again (the old order keeps everything but the key).
        Order.objects.filter(pk=earlier.pk, idempotency_key=key).update(idempotency_key=None)
        return None
    if earlier.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"Idempotency-Key '{key}' was already used for a different order ({earlier.number})"
        )
    return earlier


def _check_plates(quoted: list[tuple[dict[str, Any], Quote]]) -> None:
    """Refuse a line whose copies need more build plates than one plan may hold
    (MF_PLATES_MAX_PER_PLAN), saying how many: the worker would refuse its plan anyway."""
    allowed = settings.PLATES_MAX_PER_PLAN
    errors = {
        str(index): {
            "quantity": [
                f"{quote.quantity} parts need {quote.plates} build plates; one order line may "
                f"take at most {allowed} (at most {quote.copies_per_plate * allowed} of this "
                "part): split the quantity over several lines"
            ]
        }
        for index, (_, quote) in enumerate(quoted)
        if quote.plates > allowed
    }
    if errors:
        raise OrderInvalid({"lines": errors})


def default_delivery_site(organisation: Organisation) -> SiteRef | None:
    """Where the organisation's orders go when they name no site (None: nowhere set)."""
    pk = organisation.default_delivery_site_id
    return public.site_by_id(pk) if pk is not None else None


def _check_order_fields(request: OrderRequest, *, today: date) -> SiteRef | None:
    errors: dict[str, list[str]] = {}
    if request.due_date is not None and request.due_date < today:
        errors["due_date"] = [f"is in the past (today is {today.isoformat()})"]
    site = None
    if request.delivery_site:
        site = public.site_by_slug(request.delivery_site)
        if site is None:
            known = ", ".join(known_site.slug for known_site in public.sites())
            errors["delivery_site"] = [f"no site '{request.delivery_site}'; choose {known}"]
    if errors:
        raise OrderInvalid(errors)
    return site


def line_check(line: LineRequest, *, organisation: Organisation | None = None) -> dict[str, Any]:
    """One line checked against the catalog: revision, canonical parameters, material and
    quantity; raises OrderInvalid with the line's field errors (the part page uses it too).
    A customer's uploaded part (a private family) is found only for its `organisation`."""
    errors: dict[str, Any] = {}
    revision = _revision(line, errors, organisation=organisation)
    if not 1 <= line.quantity <= settings.ORDER_MAX_QUANTITY:
        errors["quantity"] = [f"Quantity must be from 1 to {settings.ORDER_MAX_QUANTITY} parts"]
    material: Material | None = None
    values: dict[str, Any] = {}
    process = ""
    if revision is not None:
        material = revision.materials.filter(slug=line.material, active=True).first()
        if material is None:
            offered = revision.materials.filter(active=True)
            allowed = ", ".join(f"{m.name} ({m.slug})" for m in offered)
            errors["material"] = [
                f"Material '{line.material[:40]}' is not offered for this part; choose {allowed}"
            ]
        process = _route_process(line, revision, material, errors)
        try:
            values = validate_parameters(
                parse_schema(revision.parameter_schema),
                line.parameters,
                rules=parse_rules(revision.rules),
            )
        except ParameterError as error:
            errors["parameters"] = error.errors
        except SchemaError as error:
            errors["part"] = [f"this part's definition is broken: {error}"]
    if errors:
        raise OrderInvalid(errors)
    return {
        "revision": revision,
        "parameters": values,
        "parameters_hash": parameters_hash(values),
        "material": material,
        "quantity": line.quantity,
        # The material's process route (orders.routes): the one chosen, else the material's.
        "process": process,
    }


def _route_process(
    line: LineRequest, revision: PartRevision, material: Material | None, errors: dict[str, Any]
) -> str:
    """The process a line asks for: the one the requester chose, which the revision must
    allow and the material must be of; else the material's own (orders.routes)."""
    allowed = revision.allowed_processes
    if line.process and line.process not in allowed:
        names = ", ".join(allowed)
        errors["process"] = [
            f"'{line.process[:40]}' is not a process this part is made by; choose {names}"
        ]
        return ""
    if material is None:
        return line.process
    own = routes.material_process(revision, material)
    if line.process and own != line.process:
        fitting = routes.route_materials(revision, line.process)
        choose = ", ".join(f"{m.name} ({m.slug})" for m in fitting) or "none is offered"
        errors["material"] = [
            f"{material.name} is not a {Process(line.process).label} material; for "
            f"{line.process} choose {choose}"
        ]
    return line.process or own


def line_makeable(checked: dict[str, Any]) -> None:
    """Refuse a checked line whose configuration the part page already found impossible to
    make on today's machines (its DFM report failed); unchecked ones go ahead, and their
    job's validation decides."""
    refusal = public.known_refusal(
        revision=checked["revision"],
        parameters=checked["parameters"],
        material=checked["material"],
    )
    if refusal is not None:
        raise OrderInvalid({"dfm": [f"This configuration cannot be made: {refusal}"]})


def _resolve_lines(
    requested: list[LineRequest], *, organisation: Organisation | None = None
) -> list[dict[str, Any]]:
    """Check every line against the catalog; collect all errors before refusing."""
    if not requested:
        raise OrderInvalid({"lines": ["an order needs at least one line"]})
    if len(requested) > settings.ORDER_MAX_LINES:
        raise OrderInvalid({"lines": [f"at most {settings.ORDER_MAX_LINES} lines per order"]})
    errors: dict[str, Any] = {}
    resolved = []
    for index, line in enumerate(requested):
        try:
            checked = line_check(line, organisation=organisation)
            line_makeable(checked)
        except OrderInvalid as invalid:
            errors[str(index)] = invalid.errors
        else:
            resolved.append({**checked, "requested_process": line.process})
    if errors:
        raise OrderInvalid({"lines": errors})
    return resolved


def _revision(
    line: LineRequest, errors: dict[str, Any], *, organisation: Organisation | None = None
) -> PartRevision | None:
    family = PartFamily.objects.filter(slug=line.part).first()
    if family is not None and family.private and not _owns_upload(organisation, family):
        family = None  # another organisation's upload: as if it did not exist
    if family is None:
        errors["part"] = [f"no part '{line.part}' in the catalog"]
        return None
    if family.retired:
        errors["part"] = [f"'{family.name}' is retired and can no longer be ordered"]
        return None
    published = family.revisions.filter(published_at__isnull=False)
    if line.revision is None:
        revision = published.order_by("-number").first()
        if revision is None:
            errors["part"] = [f"'{family.name}' has no published revision yet"]
        return revision
    revision = published.filter(number=line.revision).first()
    if revision is None:
        errors["revision"] = [f"'{family.name}' has no published revision {line.revision}"]
    return revision


def _owns_upload(organisation: Organisation | None, family: PartFamily) -> bool:
    """Whether the private family is one of the organisation's uploads (orders.uploads)."""
    return organisation is not None and (
        CustomerUpload.objects.filter(organisation=organisation, revision__family=family).exists()
    )


# --- moving orders ---------------------------------------------------------------------------


def _move(
    order: Order,
    to: str,
    *,
    actor: Any,
    now: datetime,
    reason: str = "",
    lines: bool | Sequence[OrderLine] = True,
    webhooks: Sequence[Webhook] | None = None,
) -> None:
    """Move the order (and, with `lines`, each of its unfinished lines: read, or the order's
    lines the caller holds) to `to`, recording who and when; refuse a move TRANSITIONS does
    not allow. `webhooks`: the organisation's active ones, when the caller read them. Call
    inside a transaction."""
    if to not in TRANSITIONS[order.status]:
        raise DomainError(
            f"order {order.number} is {order.get_status_display()}; it cannot "
            f"become {Status(to).label}"
        )
    label = actor.get_username() if actor is not None else "system"
    events = [
        OrderEvent(
            order=order,
            from_status=order.status,
            to_status=to,
            actor=actor,
            actor_label=label,
            at=now,
            reason=reason,
        )
    ]
    previous = order.status
    order.status, order.status_changed_at = to, now
    update = ["status", "status_changed_at"]
    if to in (Status.REJECTED, Status.CANCELLED) and reason:
        order.reason = reason
        update.append("reason")
    order.save(update_fields=update)
    if lines:
        moved = [
            line
            for line in (order.lines.all() if lines is True else lines)
            if line.status not in FINAL and to in TRANSITIONS[line.status]
        ]
        fields: dict[str, str] = {"status": to}
        if reason and to in (Status.REJECTED, Status.CANCELLED):
            fields["reason"] = reason
        for line in moved:
            events.append(
                OrderEvent(
                    order_id=line.order_id,
                    line=line,
                    from_status=line.status,
                    to_status=to,
                    actor=actor,
                    actor_label=label,
                    at=now,
                    reason=reason,
                )
            )
            for name, value in fields.items():
                setattr(line, name, value)
        # One UPDATE for all the lines, not one each (order create's query budget).
        OrderLine.objects.filter(pk__in=[line.pk for line in moved]).update(**fields)
    OrderEvent.objects.bulk_create(events)
    notifications.order_changed(order=order, previous=previous, now=now, webhooks=webhooks)


def line_move_event(
    line: OrderLine, to: str, *, actor: Any, label: str, now: datetime, reason: str = ""
) -> OrderEvent:
    """Move one line (saved at once) and return its unsaved event."""
    event = OrderEvent(
        order_id=line.order_id,
        line=line,
        from_status=line.status,
        to_status=to,
        actor=actor,
        actor_label=label,
        at=now,
        reason=reason,
    )
    line.status = to
    fields = ["status"]
    if reason and to in (Status.REJECTED, Status.CANCELLED):
        line.reason = reason
        fields.append("reason")
    line.save(update_fields=fields)
    return event


# Why an estimated line's jobs wait before a machine (production's Job.hold).
PRICE_HOLD = "the estimated price is checked on the built part first"


def _approve_and_start(
    order: Order,
    *,
    actor: Any,
    now: datetime,
    reason: str = "",
    lines: Sequence[OrderLine] | None = None,
    webhooks: Sequence[Webhook] | None = None,
) -> None:
    """Approve the order and queue its lines' jobs; `lines`: the order's lines, when the
    caller holds them (else read once); `webhooks`: the organisation's, when read."""
    held = list(order.lines.all()) if lines is None else lines
    _move(
        order, Status.APPROVED, actor=actor, now=now, reason=reason, lines=held, webhooks=webhooks
    )
    who = actor.get_username() if actor is not None else "system"
    # An estimated line's jobs build, check and plan the part, but no machine takes them
    # before its price is checked on the built part (order_follow_jobs): a price that rose
    # beyond the tolerance is never made without a confirmation.
    estimated = [line.pk for line in held if line.price_check == OrderLine.PriceCheck.PENDING]
    public.jobs_create_for_order(
        order=order,
        actor=f"user {who}" if actor is not None else "system",
        hold=dict.fromkeys(estimated, PRICE_HOLD),
    )
    _move(order, Status.IN_PRODUCTION, actor=actor, now=now, lines=held, webhooks=webhooks)


def _locked(order: Order) -> Order:
    return Order.objects.select_for_update().get(pk=order.pk)


def _decider(user: Any, order: Order) -> Membership:
    membership = Membership.objects.filter(user=user, organisation_id=order.organisation_id).first()
    if membership is None or not membership.can_approve:
        raise NotAllowed("only an approver or a manager of the organisation can decide on orders")
    if order.placed_by_id == user.pk:
        raise NotAllowed("an order needs someone else's approval than its requester's")
    return membership


def order_approve(*, order: Order, user: Any, now: datetime | None = None) -> Order:
    """Approve an order waiting for approval and queue its jobs. A second call refuses."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(order)
        _decider(user, order)
        if order.status != Status.AWAITING_APPROVAL:
            raise DomainError(
                f"order {order.number} is {order.get_status_display()}, not awaiting approval"
            )
        order.decided_by, order.decided_at = user, now
        order.save(update_fields=["decided_by", "decided_at"])
        _approve_and_start(order, actor=user, now=now)
    return order


def order_reject(*, order: Order, user: Any, reason: str, now: datetime | None = None) -> Order:
    """Reject an order waiting for approval, with the approver's reason; the requester is
    told by e-mail."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise OrderInvalid({"reason": ["say why the order is rejected"]})
    with transaction.atomic():
        order = _locked(order)
        _decider(user, order)
        if order.status != Status.AWAITING_APPROVAL:
            raise DomainError(
                f"order {order.number} is {order.get_status_display()}, not awaiting approval"
            )
        order.decided_by, order.decided_at = user, now
        order.save(update_fields=["decided_by", "decided_at"])
        _move(order, Status.REJECTED, actor=user, now=now, reason=reason)
    return order


def order_cancel(
    *, order: Order, user: Any, reason: str = "", now: datetime | None = None
) -> Order:
    """Cancel an order, with its jobs, while no machine has started any of them.

    The requester or an approver/manager of the organisation may cancel. Jobs are claimed
    from the status we saw (the pipeline's claim idiom), so a step finishing meanwhile either
    lands first (and we refuse) or finds its job cancelled and drops its result.
    """
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(order)
        membership = Membership.objects.filter(
            user=user, organisation_id=order.organisation_id
        ).first()
        if membership is None or (order.placed_by_id != user.pk and not membership.can_approve):
            raise NotAllowed("only the requester, an approver or a manager can cancel an order")
        if order.status not in TRANSITIONS or Status.CANCELLED not in TRANSITIONS[order.status]:
            raise DomainError(
                f"order {order.number} is {order.get_status_display()}; "
                "it can no longer be cancelled"
            )
        label = user.get_username()
        public.jobs_cancel_for_order(
            order_id=order.pk,
            actor=f"user {label}",
            message=reason or f"order {order.number} cancelled",
            reason=f"order cancelled by {label}",
            now=now,
        )
        _move(
            order, Status.CANCELLED, actor=user, now=now, reason=reason or f"cancelled by {label}"
        )
    return order


# --- changing a line's process route ---------------------------------------------------------

# A line whose route may still change: nothing made yet, and no price waiting for a decision.
ROUTE_CHANGEABLE = frozenset(
    {Status.SUBMITTED, Status.AWAITING_APPROVAL, Status.APPROVED, Status.IN_PRODUCTION}
)


def order_line_route_change(
    *,
    line: OrderLine,
    user: Any,
    process: str,
    material: str,
    now: datetime | None = None,
) -> Order:
    """Make a line by another of its allowed routes (process + material slug), chosen by the
    requester (or an approver or manager): its price, ready time and reason follow the new
    route, and a line already in production gets new jobs for it, its old ones cancelled;
    refused once a machine has started one (DomainError), for a route the part does not
    allow, a material not of that process, a route no machine can make now or one not ready
    by the needed-by date (OrderInvalid), and, on an approved order, for a new total above
    the team's approval threshold (DomainError: order it again for approval)."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(line.order)
        line = OrderLine.objects.select_related("revision__family", "material").get(pk=line.pk)
        membership = Membership.objects.filter(
            user=user, organisation_id=order.organisation_id
        ).first()
        if membership is None or (order.placed_by_id != user.pk and not membership.can_approve):
            raise NotAllowed(
                "only the requester, an approver or a manager can change how a line is made"
            )
        if order.status not in ROUTE_CHANGEABLE or line.status not in ROUTE_CHANGEABLE:
            raise DomainError(
                f"order {order.number} is {order.get_status_display()}; "
                "how its lines are made can no longer change"
            )
        checked = line_check(
            LineRequest(
                part=line.revision.family.slug,
                parameters=line.parameters,
                material=material,
                quantity=line.quantity,
                revision=line.revision.number,
                process=process,
            ),
            organisation=order.organisation,
        )
        if (checked["process"], checked["material"].slug) == (line.process, line.material.slug):
            raise DomainError(f"line {line.pk} is made {routes.VERBS[process]} in that already")
        site = order.delivery_site
        found = routes.line_routes(
            revision=line.revision,
            parameters=line.parameters,
            parameters_hash=line.parameters_hash,
            material=checked["material"],
            quantity=line.quantity,
            now=now,
            process=checked["process"],
            delivery_site=site.slug if site else "",
            expedite=order.expedite,
        )
        key = (checked["process"], checked["material"].slug)
        if key in found.refusals:
            raise OrderInvalid({"material": [found.refusals[key]]})
        option = next(o for o in found.options if o.key == key)
        if not option.offered:
            raise OrderInvalid(
                {"process": [f"no {process} machine can make it now; keep how it is made"]}
            )
        deadline = routes.deadline_of(order.due_date)
        if not routes.meets(option, deadline):
            assert option.ready_at is not None
            raise OrderInvalid(
                {
                    "due_date": [
                        f"{option.label} would be ready {option.ready_at:%Y-%m-%d %H:%M}, "
                        f"after the needed-by date {order.due_date}"
                    ]
                }
            )
        choice = routes.decide(found.options, deadline=deadline, requested=key)
        quote = option.quote
        others = order.total_price - line.price
        new_total = others + quote.total
        team = order.team
        threshold = team.approval_threshold if team else None
        if (
            order.status in (Status.APPROVED, Status.IN_PRODUCTION)
            and threshold is not None
            and new_total > threshold
            and new_total > order.total_price
        ):
            raise DomainError(
                f"the new total {new_total} {order.currency} is above the team's approval "
                f"threshold of {threshold}: cancel the order and order it again"
            )
        started = [
            job
            for job in public.job_summaries(order_ids=[order.pk]).get(line.pk, [])
            if not job.cancellable
        ]
        if started:
            raise DomainError(
                f"a machine has started on line {line.pk} ({started[0].number} "
                f"{started[0].get_status_display()}); how it is made can no longer change"
            )
        label = user.get_username()
        was = f"{routes.VERBS.get(line.process, line.process)} in {line.material.name}"
        if order.status == Status.IN_PRODUCTION:
            public.jobs_cancel_for_order(
                order_id=order.pk,
                actor=f"user {label}",
                message=f"line {line.pk} is now {option.label}",
                reason=f"route changed by {label}",
                now=now,
                line_ids=[line.pk],
            )
        line.process, line.material = option.process, checked["material"]
        line.quote, line.unit_price, line.price = quote.as_json(), quote.unit_price, quote.total
        line.lead_time_s = quote.lead_time_s
        line.price_check = OrderLine.PriceCheck.FIRM if quote.firm else OrderLine.PriceCheck.PENDING
        line.route_reason, line.route_chosen_by = choice.reason, choice.chosen_by
        line.route_options = choice.options_json()
        line.save()
        if option.ready_at is not None and (
            order.lines.count() == 1
            or order.promised_at is None
            or option.ready_at > order.promised_at
        ):
            order.promised_at = option.ready_at
            order.save(update_fields=["promised_at"])
        _update_total(order, list(order.lines.all()))
        OrderEvent.objects.create(
            order=order,
            line=line,
            from_status=line.status,
            to_status=line.status,
            actor=user,
            actor_label=label,
            at=now,
            reason=f"route changed by {label}: {was} -> {option.label} "
            f"({quote.total} {order.currency})",
        )
        if order.status == Status.IN_PRODUCTION:
            public.jobs_create_for_order(
                order=order,
                actor=f"user {label}",
                hold={line.pk: PRICE_HOLD} if not quote.firm else None,
                line_ids=[line.pk],
            )
    return order


# --- following production ---------------------------------------------------------------------


def line_outcome(line: OrderLine, jobs: list[JobSummary]) -> tuple[str, str]:
    """What a line in production has become, from its jobs: (status, reason).

    Parts count, not jobs: a scrapped or failed job's replacement that made the parts
    completes the line. Still in production while any job is under way.
    """
    if not jobs or not all(job.ended for job in jobs):
        return Status.IN_PRODUCTION, ""
    made = sum(job.made for job in jobs)
    if made >= line.quantity:
        return Status.COMPLETED, ""
    ended = [job for job in jobs if job.status in public.JOB_ENDED_UNMADE]
    if not made and not ended:
        return Status.CANCELLED, "its jobs were cancelled"
    last = ended[-1] if ended else jobs[-1]
    why = last.reason or last.get_status_display()
    return Status.REJECTED, f"{made} of {line.quantity} made; {last.number}: {why}"


def order_follow_jobs(*, order_id: int, now: datetime) -> Order | None:
    """Bring an order in production (and its lines) up to date with its jobs: lines complete
    or are rejected as their jobs end, and the order ends with its last line. Idempotent."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or order.status != Status.IN_PRODUCTION:
            return order
        lines = list(order.lines.all())
        jobs_by_line = public.job_summaries(order_ids=[order.pk])
        events = []
        for line in lines:
            if line.status != Status.IN_PRODUCTION:
                continue
            status, reason = line_outcome(line, jobs_by_line.get(line.pk, []))
            if status != line.status:
                events.append(
                    line_move_event(
                        line, status, actor=None, label="system", now=now, reason=reason
                    )
                )
        OrderEvent.objects.bulk_create(events)
        if _check_prices(order, lines, jobs_by_line, now=now):
            return order  # waits for the customer's confirmation
        if any(line.status not in FINAL for line in lines):
            return order
        outcomes = {line.status for line in lines}
        if Status.COMPLETED in outcomes:
            _move(order, Status.COMPLETED, actor=None, now=now, lines=False)
        elif outcomes == {Status.CANCELLED}:
            _move(
                order,
                Status.CANCELLED,
                actor=None,
                now=now,
                lines=False,
                reason="every job was cancelled",
            )
        else:
            reasons = "; ".join(line.reason for line in lines if line.reason)
            _move(
                order,
                Status.REJECTED,
                actor=None,
                now=now,
                lines=False,
                reason=f"the factory could not make it: {reasons}",
            )
    return order


def _check_prices(
    order: Order,
    lines: list[OrderLine],
    jobs_by_line: dict[int, list[JobSummary]],
    *,
    now: datetime,
) -> bool:
    """Price each estimated line again once its job has built the part, and settle it:
    a lower price is passed on, a rise within ORDER_QUOTE_TOLERANCE is absorbed (both: its
    jobs are released to the router), a larger rise moves the line and the order to price
    confirmation, its jobs still held. True when the order now waits for a confirmation.
    Idempotent: a line is checked once. Call inside the order's transaction."""
    released: list[int] = []
    to_confirm: list[tuple[OrderLine, str]] = []
    for line in lines:
        if line.price_check != OrderLine.PriceCheck.PENDING or line.status != Status.IN_PRODUCTION:
            continue
        built = next(
            (
                measured
                for job in jobs_by_line.get(line.pk, [])
                if (measured := public.job_geometry(job.dfm_report)) is not None
            ),
            None,
        )
        if built is None:
            continue  # not built yet (or never will be: its outcome says why)
        try:
            requoted = requote(
                line.quote,
                volume_mm3=built.volume_mm3,
                height_mm=built.extents_mm[2],
                rates=settings.ORDER_QUOTE_RATES,
            )
        except QuoteError:
            # A quote stored without what pricing again needs: keep its price, say so.
            logger.exception("line %s: the built part cannot be priced again", line.pk)
            line.price_check, line.price_checked_at = OrderLine.PriceCheck.KEPT, now
            line.save(update_fields=["price_check", "price_checked_at"])
            released.append(line.pk)
            continue
        change = price_change(
            quoted=line.price, built=requoted.total, tolerance=settings.ORDER_QUOTE_TOLERANCE
        )
        line.built_quote, line.price_checked_at = requoted.as_json(), now
        if change == TO_CONFIRM:
            line.price_check = OrderLine.PriceCheck.TO_CONFIRM
            rise = (requoted.total - line.price) / line.price if line.price else Decimal(1)
            to_confirm.append(
                (
                    line,
                    f"the built part prices at {requoted.total} {order.currency}, {rise:.0%} "
                    f"above the estimated {line.price}",
                )
            )
        elif change == PASSED_ON:
            line.price_check, line.quoted_price = OrderLine.PriceCheck.LOWERED, line.price
            line.price, line.unit_price = requoted.total, requoted.unit_price
            released.append(line.pk)
        else:
            line.price_check = OrderLine.PriceCheck.KEPT
            released.append(line.pk)
        line.save(
            update_fields=[
                "price_check",
                "built_quote",
                "price_checked_at",
                "quoted_price",
                "price",
                "unit_price",
            ]
        )
    if released:
        public.jobs_release(line_ids=released)
        _update_total(order, lines)
    if not to_confirm:
        return False
    OrderEvent.objects.bulk_create(
        line_move_event(
            line, Status.PRICE_CONFIRMATION, actor=None, label="system", now=now, reason=why
        )
        for line, why in to_confirm
    )
    _move(
        order,
        Status.PRICE_CONFIRMATION,
        actor=None,
        now=now,
        lines=False,
        reason="; ".join(why for _, why in to_confirm)
        + ": confirm the new price or decline it before it is made",
    )
    return True


def _update_total(order: Order, lines: list[OrderLine]) -> None:
    """The order's total: its lines' prices, less the lines whose new price was declined,
    plus the expedite fee quoted at placement."""
    total = order.expedite_fee + sum(
        (line.price for line in lines if line.price_check != OrderLine.PriceCheck.DECLINED),
        Decimal(0),
    )
    if total != order.total_price:
        order.total_price = total
        order.save(update_fields=["total_price"])


def _price_decider(user: Any, order: Order) -> Membership:
    """The requester, an approver or a manager of the order's organisation may decide on a
    changed price; above the team's approval threshold, only an approver or a manager who is
    not the requester (as for approving the order)."""
    membership = Membership.objects.filter(user=user, organisation_id=order.organisation_id).first()
    if membership is None or (order.placed_by_id != user.pk and not membership.can_approve):
        raise NotAllowed(
            "only the requester, an approver or a manager can decide on the order's new price"
        )
    return membership


def _awaiting_price(order: Order) -> list[OrderLine]:
    if order.status != Status.PRICE_CONFIRMATION:
        raise DomainError(
            f"order {order.number} is {order.get_status_display()}, "
            "not awaiting a price confirmation"
        )
    return list(order.lines.filter(status=Status.PRICE_CONFIRMATION))


def _built_total(line: OrderLine) -> Decimal:
    return Decimal(str((line.built_quote or {})["total"]))


def order_price_confirm(*, order: Order, user: Any, now: datetime | None = None) -> Order:
    """Accept the built price of the lines awaiting it: their price becomes the built one,
    their jobs go to the router, the order is back in production. Recorded with who and when
    (Order.price_decided_by/at and the move's OrderEvent). A second call refuses."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(order)
        _price_decider(user, order)
        lines = _awaiting_price(order)
        new_total = order.total_price + sum(
            (_built_total(line) - line.price for line in lines), Decimal(0)
        )
        team = order.team
        threshold = team.approval_threshold if team else None
        if threshold is not None and new_total > threshold:
            _decider(user, order)  # above the threshold: an approver's call, as at ordering
        changes = []
        for line in lines:
            built_total = _built_total(line)
            changes.append(f"line {line.pk}: {line.price} -> {built_total}")
            line.quoted_price, line.price = line.price, built_total
            line.unit_price = Decimal(str((line.built_quote or {})["unit_price"]))
            line.price_check = OrderLine.PriceCheck.CONFIRMED
            line.save(update_fields=["quoted_price", "price", "unit_price", "price_check"])
        order.price_decided_by, order.price_decided_at = user, now
        order.save(update_fields=["price_decided_by", "price_decided_at"])
        _update_total(order, list(order.lines.all()))
        public.jobs_release(line_ids=[line.pk for line in lines])
        _move(
            order,
            Status.IN_PRODUCTION,
            actor=user,
            now=now,
            reason=f"new price confirmed by {user.get_username()} ({'; '.join(changes)} "
            f"{order.currency})",
        )
    return order


def order_price_decline(
    *, order: Order, user: Any, reason: str = "", now: datetime | None = None
) -> Order:
    """Refuse the built price: the lines awaiting it are cancelled with their jobs (held, so
    never started) and the order goes back to production, where it ends with its other lines
    (cancelled when it has none). Recorded with who and when. A second call refuses."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(order)
        _price_decider(user, order)
        lines = _awaiting_price(order)
        label = user.get_username()
        why = reason.strip() or f"the new price was declined by {label}"
        public.jobs_cancel_for_order(
            order_id=order.pk,
            actor=f"user {label}",
            message=why,
            reason=f"price declined by {label}",
            now=now,
            line_ids=[line.pk for line in lines],
        )
        for line in lines:
            line.price_check = OrderLine.PriceCheck.DECLINED
            line.save(update_fields=["price_check"])
        order.price_decided_by, order.price_decided_at = user, now
        order.save(update_fields=["price_decided_by", "price_decided_at"])
        _update_total(order, list(order.lines.all()))
        OrderEvent.objects.bulk_create(
            line_move_event(line, Status.CANCELLED, actor=user, label=label, now=now, reason=why)
            for line in lines
        )
        _move(order, Status.IN_PRODUCTION, actor=user, now=now, lines=False, reason=why)
    # Lines left? Production goes on; none: the order ends cancelled here and now.
    order_follow_jobs(order_id=order.pk, now=now)
    return Order.objects.get(pk=order.pk)


def orders_follow_jobs(*, now: datetime) -> int:
    """Turn job events no one has followed yet into job webhooks and order status changes;
    return how many events this call handled.

    Each event is claimed exactly once (production.public.job_events_claim_pending), in the
    transaction that writes its webhooks: two followers at once split the events between
    them, and an event committed late is followed on the next pass however low its id.
    """
    with transaction.atomic():
        notices = public.job_events_claim_pending(limit=settings.ORDERS_FOLLOW_BATCH, now=now)
        order_ids: list[int] = []
        for notice in notices:
            notifications.job_changed(notice=notice, now=now)
            if notice.order_id not in order_ids:
                order_ids.append(notice.order_id)
    # After the claims commit: an order whose update fails here is picked up by the periodic
    # orders_follow_in_production.
    for order_id in order_ids:
        order_follow_jobs(order_id=order_id, now=now)
    return len(notices)


def orders_follow_in_production(*, now: datetime) -> int:
    """Re-evaluate every order still in production from its jobs; return how many ended.

    The safety net under orders_follow_jobs: an order whose events were followed but whose
    update was lost (a crash between the two) does not stay in production for ever.
    """
    ended = 0
    in_production = Order.objects.filter(status=Status.IN_PRODUCTION).order_by("pk")
    for order_id in list(in_production.values_list("pk", flat=True)):
        order = order_follow_jobs(order_id=order_id, now=now)
        if order is not None and order.status != Status.IN_PRODUCTION:
            ended += 1
    return ended
