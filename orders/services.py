"""Write paths for orders: placing one, exactly once per idempotency key."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from catalog.models import PartFamily, PartRevision
from catalog.parameters import (
    ParameterError,
    SchemaError,
    parameters_hash,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from microfactory.errors import DomainError
from orders.models import Membership, Order, OrderLine, Organisation
from production.services import jobs_create_for_order


class OrderInvalid(DomainError):
    """The order cannot be placed as sent; `errors` maps field paths to messages."""

    def __init__(self, errors: dict[str, Any]):
        self.errors = errors
        super().__init__("the order has errors; nothing was created")


class IdempotencyConflict(DomainError):
    """The idempotency key was already used for a different request."""


@dataclass(frozen=True)
class LineRequest:
    part: str  # family slug
    parameters: dict[str, Any]
    material: str  # material slug
    quantity: int
    revision: int | None = None  # None: the family's current published revision


@dataclass(frozen=True)
class OrderRequest:
    lines: list[LineRequest]
    reference: str = ""
    due_date: date | None = None
    priority: str = Order.Priority.NORMAL
    note: str = ""
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        payload = json.dumps(
            {
                "lines": [vars(line) for line in self.lines],
                "reference": self.reference,
                "due_date": self.due_date,
                "priority": self.priority,
                "note": self.note,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def organisation_for(user: Any) -> Organisation:
    membership = Membership.objects.filter(user=user).select_related("organisation").first()
    if membership is None:
        raise DomainError("your account does not belong to an organisation")
    return membership.organisation


def order_place(*, user: Any, request: OrderRequest) -> tuple[Order, bool]:
    """Place an order and queue its jobs; return (order, created).

    A second call with the same idempotency key returns the first order (created=False)
    and changes nothing; the same key with a different request is an IdempotencyConflict.
    """
    organisation = organisation_for(user)
    fingerprint = request.fingerprint()
    if request.idempotency_key:
        earlier = _earlier(organisation, request.idempotency_key, fingerprint)
        if earlier is not None:
            return earlier, False
    lines = _resolve_lines(request.lines)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                organisation=organisation,
                placed_by=user,
                reference=request.reference,
                due_date=request.due_date,
                priority=request.priority,
                note=request.note,
                idempotency_key=request.idempotency_key or None,
                request_fingerprint=fingerprint,
            )
            OrderLine.objects.bulk_create(
                OrderLine(order=order, **line) for line in lines
            )
            jobs_create_for_order(order=order, actor=f"user {user.get_username()}")
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its order.
        earlier = _earlier(organisation, request.idempotency_key or "", fingerprint)
        if earlier is None:
            raise
        return earlier, False
    return order, True


def _earlier(organisation: Organisation, key: str, fingerprint: str) -> Order | None:
    earlier = Order.objects.filter(organisation=organisation, idempotency_key=key).first()
    if earlier is not None and earlier.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"Idempotency-Key '{key}' was already used for a different order ({earlier.number})"
        )
    return earlier


def _resolve_lines(requested: list[LineRequest]) -> list[dict[str, Any]]:
    """Check every line against the catalog; collect all errors before refusing."""
    if not requested:
        raise OrderInvalid({"lines": ["an order needs at least one line"]})
    if len(requested) > settings.ORDER_MAX_LINES:
        raise OrderInvalid({"lines": [f"at most {settings.ORDER_MAX_LINES} lines per order"]})
    errors: dict[str, Any] = {}
    resolved = []
    for index, line in enumerate(requested):
        line_errors: dict[str, Any] = {}
        revision = _revision(line, line_errors)
        if not 1 <= line.quantity <= settings.ORDER_MAX_QUANTITY:
            line_errors["quantity"] = [f"must be between 1 and {settings.ORDER_MAX_QUANTITY}"]
        material = None
        if revision is not None:
            material = revision.materials.filter(slug=line.material).first()
            if material is None:
                allowed = ", ".join(m.slug for m in revision.materials.all())
                line_errors["material"] = [f"'{line.material}' is not offered; choose {allowed}"]
            try:
                values = validate_parameters(
                    parse_schema(revision.parameter_schema),
                    line.parameters,
                    rules=parse_rules(revision.rules),
                )
            except ParameterError as error:
                line_errors["parameters"] = error.errors
            except SchemaError as error:
                line_errors["part"] = [f"this part's definition is broken: {error}"]
        if line_errors:
            errors[str(index)] = line_errors
            continue
        resolved.append(
            {
                "revision": revision,
                "parameters": values,
                "parameters_hash": parameters_hash(values),
                "material": material,
                "quantity": line.quantity,
            }
        )
    if errors:
        raise OrderInvalid({"lines": errors})
    return resolved


def _revision(line: LineRequest, errors: dict[str, Any]) -> PartRevision | None:
    family = PartFamily.objects.filter(slug=line.part).first()
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
