"""Assets: the equipment a maintenance team keeps running, and its digital spare-parts list.

A team registers its assets (tag unique per team, name, location, criticality, downtime cost
per hour) and says when one is down and when it runs again. Each asset keeps the spare parts
it uses as saved configurations (revision, canonical parameters, material, quantity), taken
from a configured part page or from an order line; "order for asset" turns them into order
lines. An order for an asset carries it (Order.asset) and the team's work-order reference;
placed while a critical asset is down, it carries the EUR at stake (Order.downtime_stake),
which raises its routing priority and may waive the approval threshold (orders.services).

Reads are scoped like orders: a member sees the assets of the teams of their organisation,
never another organisation's (a 404). Registering and changing an asset is for the members
of its team, and for the organisation's approvers and managers.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from microfactory.errors import DomainError
from orders.models import Asset, AssetPart, Membership, OrderLine, Team
from orders.services import LineRequest, NotAllowed, line_check, line_request_of, membership_for


class AssetInvalid(DomainError):
    """The asset (or spare part) cannot be saved as sent; `errors` maps fields to messages."""

    def __init__(self, errors: dict[str, Any]):
        self.errors = errors
        super().__init__("the asset has errors; nothing was saved")


@dataclass(frozen=True)
class AssetFields:
    """What a team says about an asset (the page's form and the API's body)."""

    tag: str
    name: str
    location: str = ""
    criticality: str = Asset.Criticality.MEDIUM
    downtime_cost_per_hour: str = "0"  # as typed: checked here


def assets_for(user: object) -> QuerySet[Asset]:
    """The assets of the user's organisations: the only way pages and the API read assets."""
    if not isinstance(user, get_user_model()) or not user.is_authenticated:
        return Asset.objects.none()
    return Asset.objects.filter(team__organisation__memberships__user=user).select_related(
        "team__organisation"
    )


def _editable_scope(membership: Membership | None) -> tuple[int, int | None] | None:
    """Whose assets a member may change and save spare parts on, the rule in one place: their
    team's, or every team's of their organisation for approvers and managers. (organisation,
    team): team None is every team; None: no asset at all."""
    if membership is None:
        return None
    if membership.can_approve:
        return membership.organisation_id, None
    if membership.team_id is None:  # a member of no team changes no asset
        return None
    return membership.organisation_id, membership.team_id


def asset_can_edit(membership: Membership | None, asset: Asset) -> bool:
    scope = _editable_scope(membership)
    return (
        scope is not None
        and asset.team.organisation_id == scope[0]
        and scope[1] in (None, asset.team_id)
    )


def assets_editable_by(membership: Membership | None) -> QuerySet[Asset]:
    """The assets asset_can_edit lets this member change, in one query."""
    scope = _editable_scope(membership)
    if scope is None:
        return Asset.objects.none()
    organisation, team = scope
    assets = Asset.objects.filter(team__organisation_id=organisation)
    return assets if team is None else assets.filter(team_id=team)


def _editor(user: Any, asset: Asset) -> None:
    membership = Membership.objects.filter(
        user=user, organisation_id=asset.team.organisation_id
    ).first()
    if not asset_can_edit(membership, asset):
        raise NotAllowed("only its team, an approver or a manager can change this asset")


def _checked(fields: AssetFields, *, team: Team, asset: Asset | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    tag, name = fields.tag.strip(), fields.name.strip()
    if not tag:
        errors["tag"] = ["give the asset tag"]
    elif len(tag) > 50:
        errors["tag"] = ["at most 50 characters"]
    elif Asset.objects.filter(team=team, tag=tag).exclude(pk=asset.pk if asset else -1).exists():
        errors["tag"] = [f"{team.name} already has an asset tagged {tag}"]
    if not name:
        errors["name"] = ["give the asset a name"]
    elif len(name) > 200:
        errors["name"] = ["at most 200 characters"]
    if len(fields.location) > 200:
        errors["location"] = ["at most 200 characters"]
    if fields.criticality not in Asset.Criticality.values:
        errors["criticality"] = ["choose one of " + ", ".join(Asset.Criticality.values)]
    cost = Decimal(0)
    try:
        cost = Decimal(str(fields.downtime_cost_per_hour).strip() or "0")
    except InvalidOperation:
        errors["downtime_cost_per_hour"] = ["enter an amount in EUR per hour, e.g. 420"]
    else:
        if not cost.is_finite() or not 0 <= cost < Decimal("100000000"):
            errors["downtime_cost_per_hour"] = ["enter an amount from 0 to 99,999,999 EUR"]
        elif cost != cost.quantize(Decimal("0.01")):
            errors["downtime_cost_per_hour"] = ["at most 2 decimals (cents)"]
    if errors:
        raise AssetInvalid(errors)
    return {
        "tag": tag,
        "name": name,
        "location": fields.location.strip(),
        "criticality": fields.criticality,
        "downtime_cost_per_hour": cost,
    }


def asset_create(*, user: Any, fields: AssetFields) -> Asset:
    """Register an asset for the user's team; refused without a team, or for a tag the team
    already uses."""
    membership = membership_for(user)
    team = membership.team
    if team is None:
        raise NotAllowed("join a team first: assets belong to the team that maintains them")
    values = _checked(fields, team=team, asset=None)
    with transaction.atomic():
        if Asset.objects.filter(team=team).count() >= settings.MF_ASSETS_PER_TEAM_MAX:
            raise AssetInvalid(
                {"tag": [f"a team registers at most {settings.MF_ASSETS_PER_TEAM_MAX} assets"]}
            )
        return Asset.objects.create(team=team, **values)


def asset_update(*, asset: Asset, user: Any, fields: AssetFields) -> Asset:
    """Change what the team says about an asset (its down state has its own service)."""
    _editor(user, asset)
    values = _checked(fields, team=asset.team, asset=asset)
    for name, value in values.items():
        setattr(asset, name, value)
    asset.save(update_fields=list(values))
    return asset


def asset_set_down(
    *, asset: Asset, user: Any, down: bool, now: datetime, reason: str = ""
) -> Asset:
    """Mark the asset down since `now` (kept if it already is), or running again. Orders
    already placed for it keep their stake, which counts only while it is down."""
    _editor(user, asset)
    if down:
        if asset.down_since is None:
            asset.down_since = now
        asset.down_reason = reason.strip()[:200]
    else:
        asset.down_since, asset.down_reason = None, ""
    asset.save(update_fields=["down_since", "down_reason"])
    return asset


def asset_part_add(
    *, asset: Asset, user: Any, line: LineRequest, label: str = ""
) -> tuple[AssetPart, bool]:
    """Save a configuration on the asset's spare-parts list, checked as an order line would
    be; (part, created). The same configuration again returns the saved one."""
    _editor(user, asset)
    checked = line_check(line)  # OrderInvalid with the line's field errors
    if len(label) > 200:
        raise AssetInvalid({"label": ["at most 200 characters"]})
    with transaction.atomic():
        found = AssetPart.objects.filter(
            asset=asset,
            revision=checked["revision"],
            parameters_hash=checked["parameters_hash"],
            material=checked["material"],
        ).first()
        if found is not None:
            return found, False
        if asset.parts.count() >= settings.MF_ASSET_PARTS_MAX:
            raise AssetInvalid(
                {"parts": [f"an asset lists at most {settings.MF_ASSET_PARTS_MAX} spare parts"]}
            )
        part = AssetPart.objects.create(
            asset=asset,
            revision=checked["revision"],
            parameters=checked["parameters"],
            parameters_hash=checked["parameters_hash"],
            material=checked["material"],
            quantity=checked["quantity"],
            label=label.strip(),
            added_by=user,
        )
    return part, True


def asset_part_add_from_line(
    *, asset: Asset, user: Any, line: OrderLine, label: str = ""
) -> tuple[AssetPart, bool]:
    """Save an order line's configuration (same revision, parameters, material, quantity)."""
    if line.order.organisation_id != asset.team.organisation_id:
        raise NotAllowed("that order line is another organisation's")
    return asset_part_add(asset=asset, user=user, line=line_request_of(line), label=label)


def asset_part_remove(*, part: AssetPart, user: Any) -> None:
    _editor(user, part.asset)
    part.delete()


def asset_lines(asset: Asset) -> QuerySet[OrderLine]:
    """Every part ever ordered for the asset: its orders' lines, newest first."""
    return (
        OrderLine.objects.filter(order__asset=asset)
        .select_related("order", "revision__family", "material")
        .order_by("-order__placed_at", "-pk")
    )
