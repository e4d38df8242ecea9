"""Reordering: a past order, or some of its lines, placed again as a new order.

Either the same revision and configuration (parameters, material, quantity), or the part's
latest published revision, with what changed between the two revisions' parameters spelled
out (added, removed, renamed, range or choices changed) and the values that no longer
validate flagged with the reason, before anything is placed.

The new order goes through orders.services.order_place like any other (quote, approval,
idempotency key); its "submitted" OrderEvent names the source order (OrderEvent.source_order).
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.utils import timezone

from catalog.models import PartRevision
from catalog.parameters import ParameterSpec, SchemaError, parse_schema
from orders.models import Order, OrderEvent, OrderLine, Status
from orders.services import (
    LineRequest,
    NotAllowed,
    OrderInvalid,
    OrderRequest,
    line_check,
    membership_for,
    order_place,
)


class RevisionChoice(StrEnum):
    SAME = "same"  # the revision and configuration ordered before
    LATEST = "latest"  # the part's latest published revision, values carried over


# --- what changed between two revisions (pure) --------------------------------------------------


@dataclass(frozen=True)
class ParameterChange:
    """One difference between two revisions' parameter schemas, in words."""

    kind: str  # added | removed | renamed | range | choices | type | unit
    parameter: str  # its name in the latest revision (the old name when removed)
    text: str
    was: str = ""  # a renamed parameter's old name


def _range(spec: ParameterSpec) -> str:
    unit = f" {spec.unit}" if spec.unit else ""
    low = "" if spec.min is None else f"{spec.min:g}"
    high = "" if spec.max is None else f"{spec.max:g}"
    if not low and not high:
        return "any value"
    if not high:
        return f"at least {low}{unit}"
    if not low:
        return f"at most {high}{unit}"
    return f"{low} to {high}{unit}"


def parameter_changes(
    old: tuple[ParameterSpec, ...], new: tuple[ParameterSpec, ...]
) -> tuple[ParameterChange, ...]:
    """What changed from `old`'s parameters to `new`'s. A parameter that disappeared while one
    of the same type and label appeared is a rename (its value is carried over)."""
    old_by_name = {spec.name: spec for spec in old}
    new_by_name = {spec.name: spec for spec in new}
    removed = [spec for spec in old if spec.name not in new_by_name]
    added = [spec for spec in new if spec.name not in old_by_name]
    pairs: list[tuple[ParameterSpec, ParameterSpec]] = [
        (spec, spec_new) for spec in old if (spec_new := new_by_name.get(spec.name))
    ]
    changes: list[ParameterChange] = []
    for gone in list(removed):
        twin = next(
            (
                spec
                for spec in added
                if spec.type == gone.type and spec.label.casefold() == gone.label.casefold()
            ),
            None,
        )
        if twin is not None:
            removed.remove(gone)
            added.remove(twin)
            pairs.append((gone, twin))
            changes.append(
                ParameterChange(
                    "renamed",
                    twin.name,
                    f"{gone.label}: renamed from {gone.name} to {twin.name}",
                    was=gone.name,
                )
            )
    for spec in removed:
        changes.append(
            ParameterChange("removed", spec.name, f"{spec.label}: no longer a parameter")
        )
    for spec in added:
        changes.append(
            ParameterChange(
                "added",
                spec.name,
                f"{spec.label}: new parameter, set to its default {spec.default}"
                + (f" {spec.unit}" if spec.unit and spec.type != "choice" else ""),
            )
        )
    for before, after in pairs:
        label = after.label
        if before.type != after.type:
            changes.append(
                ParameterChange("type", after.name, f"{label}: now {after.type}, was {before.type}")
            )
        if before.unit != after.unit:
            changes.append(
                ParameterChange(
                    "unit",
                    after.name,
                    f"{label}: unit now {after.unit or 'none'}, was {before.unit or 'none'}",
                )
            )
        if (before.min, before.max) != (after.min, after.max):
            changes.append(
                ParameterChange(
                    "range", after.name, f"{label}: range now {_range(after)}, was {_range(before)}"
                )
            )
        if before.choices != after.choices:
            changes.append(
                ParameterChange(
                    "choices",
                    after.name,
                    f"{label}: choices now {', '.join(after.choices)}, "
                    f"were {', '.join(before.choices)}",
                )
            )
    return tuple(changes)


def carried_values(
    values: dict[str, Any],
    new: tuple[ParameterSpec, ...],
    changes: tuple[ParameterChange, ...],
) -> dict[str, Any]:
    """The old configuration's values for the new schema: kept by name, carried to a renamed
    parameter, dropped when removed, the default for a new parameter. Not validated here."""
    renamed = {change.parameter: change.was for change in changes if change.kind == "renamed"}
    carried: dict[str, Any] = {}
    for spec in new:
        source = renamed.get(spec.name, spec.name)
        carried[spec.name] = values[source] if source in values else spec.default
    return carried


# --- the plan: what a reorder would place -------------------------------------------------------


@dataclass(frozen=True)
class ReorderLine:
    source_line_id: int
    part: str  # family slug
    part_name: str
    source_revision: int
    revision: int | None  # None: the part has no published revision to order any more
    parameters: dict[str, Any]
    material: str  # slug
    material_name: str
    quantity: int
    changes: tuple[ParameterChange, ...] = ()
    # Why this line cannot be ordered as planned, by field (parameter names for values that
    # no longer validate); empty when it can.
    problems: dict[str, Any] = field(default_factory=dict)

    @property
    def problem_texts(self) -> list[str]:
        return problem_texts(self.problems)


def problem_texts(problems: Any, prefix: str = "") -> list[str]:
    """Field errors as sentences: {"parameters": {"width": ["too big"]}} -> ["width: too big"]."""
    if isinstance(problems, dict):
        texts: list[str] = []
        for name, found in problems.items():
            # "parameters" and "lines" only group the fields below them: leave them out.
            inner = prefix if name in ("parameters", "lines") else f"{name}: "
            texts.extend(problem_texts(found, inner))
        return texts
    if isinstance(problems, list):
        return [f"{prefix}{' '.join(str(item) for item in problems)}"]
    return [f"{prefix}{problems}"]


@dataclass(frozen=True)
class ReorderPlan:
    source: Order
    revision: RevisionChoice
    lines: tuple[ReorderLine, ...]

    @property
    def orderable(self) -> bool:
        return not any(line.problems for line in self.lines)

    @property
    def changed(self) -> bool:
        return any(line.changes or line.revision != line.source_revision for line in self.lines)


def _specs(revision: PartRevision) -> tuple[ParameterSpec, ...]:
    try:
        return parse_schema(revision.parameter_schema)
    except SchemaError:
        return ()  # a broken schema is reported by line_check, where it is ordered


def _plan_line(line: OrderLine, revision: RevisionChoice) -> ReorderLine:
    family = line.revision.family
    target: PartRevision | None = line.revision
    changes: tuple[ParameterChange, ...] = ()
    values: dict[str, Any] = dict(line.parameters)
    if revision == RevisionChoice.LATEST:
        target = family.current_revision()
        if target is not None and target.pk != line.revision_id:
            old, new = _specs(line.revision), _specs(target)
            changes = parameter_changes(old, new)
            values = carried_values(values, new, changes)
    problems: dict[str, Any] = {}
    if target is None:
        problems["part"] = [f"'{family.name}' has no published revision to order"]
    else:
        try:
            checked = line_check(
                LineRequest(
                    part=family.slug,
                    parameters=values,
                    material=line.material.slug,
                    quantity=line.quantity,
                    revision=target.number,
                ),
                # A customer's uploaded part is found for the order's organisation only.
                organisation=line.order.organisation,
            )
        except OrderInvalid as invalid:
            problems = invalid.errors
        else:
            values = checked["parameters"]
    return ReorderLine(
        source_line_id=line.pk,
        part=family.slug,
        part_name=family.name,
        source_revision=line.revision.number,
        revision=target.number if target is not None else None,
        parameters=values,
        material=line.material.slug,
        material_name=line.material.name,
        quantity=line.quantity,
        changes=changes,
        problems=problems,
    )


def reorder_plan(
    *, order: Order, line_ids: list[int] | None = None, revision: str = RevisionChoice.SAME
) -> ReorderPlan:
    """What reordering `order` (or only `line_ids`, in the order's line order) would place:
    each line's revision, values, what changed in its parameters and what no longer
    validates. Reads only; raises OrderInvalid for a line id that is not the order's."""
    choice = RevisionChoice(revision)
    lines = list(order.lines.select_related("revision__family", "material").order_by("pk"))
    if line_ids is not None:
        known = {line.pk for line in lines}
        unknown = [str(pk) for pk in line_ids if pk not in known]
        if unknown:
            raise OrderInvalid(
                {"lines": [f"order {order.number} has no line {', '.join(unknown)}"]}
            )
        lines = [line for line in lines if line.pk in set(line_ids)]
    if not lines:
        raise OrderInvalid({"lines": ["choose at least one line to reorder"]})
    return ReorderPlan(
        source=order, revision=choice, lines=tuple(_plan_line(line, choice) for line in lines)
    )


def _describe(plan: ReorderPlan) -> str:
    what = "same revision and configuration"
    if plan.revision == RevisionChoice.LATEST:
        moves = sorted(
            {
                f"{line.part_name} rev {line.source_revision} -> {line.revision}"
                for line in plan.lines
                if line.revision != line.source_revision
            }
        )
        what = "latest revision" + (f" ({'; '.join(moves)})" if moves else ", unchanged")
    count = len(plan.lines)
    total = plan.source.lines.count()
    which = "" if count == total else f", {count} of its {total} lines"
    return f"reorder of {plan.source.number}{which}: {what}"


def order_reorder(
    *,
    order: Order,
    user: Any,
    line_ids: list[int] | None = None,
    revision: str = RevisionChoice.SAME,
    reference: str = "",
    note: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> tuple[Order, bool]:
    """Place `order` (or its `line_ids`) again as a new order; return (order, created).

    The new order keeps the source's priority and delivery site, not its reference, due date
    or note (a new work order has its own). It is placed by orders.services.order_place, so it
    is quoted today, waits for an approver above the team's threshold, and a second call with
    the same idempotency key returns the first reorder. Refused (OrderInvalid) when a line no
    longer validates, with the reasons; nothing is placed then.
    """
    now = now or timezone.now()
    membership = membership_for(user)
    if membership.organisation_id != order.organisation_id:
        raise NotAllowed("you order for another organisation than this order's")
    plan = reorder_plan(order=order, line_ids=line_ids, revision=revision)
    if not plan.orderable:
        problems = {str(line.source_line_id): line.problems for line in plan.lines}
        raise OrderInvalid({"lines": {pk: found for pk, found in problems.items() if found}})
    request = OrderRequest(
        lines=[
            LineRequest(
                part=line.part,
                parameters=line.parameters,
                material=line.material,
                quantity=line.quantity,
                revision=line.revision,
            )
            for line in plan.lines
        ],
        reference=reference,
        priority=order.priority,
        delivery_site=order.delivery_site.slug if order.delivery_site else "",
        note=note,
        # Still for the same equipment; a new work order gets its own reference.
        asset=order.asset_id,
        idempotency_key=idempotency_key,
    )
    with transaction.atomic():
        placed, created = order_place(user=user, request=request, now=now)
        if created:
            # The link lives on the new order's first move, so its timeline says where it
            # came from and the source's reorders are one query (events__source_order).
            OrderEvent.objects.filter(order=placed, line=None, to_status=Status.SUBMITTED).update(
                source_order=order, reason=_describe(plan)
            )
    return placed, created


def reorders_of(*, order: Order, user: Any) -> list[Order]:
    """The orders placed as reorders of `order` that `user` may see, newest first."""
    return list(
        Order.objects.for_user(user)
        .filter(events__source_order=order)
        .distinct()
        .order_by("-placed_at", "-pk")
    )
