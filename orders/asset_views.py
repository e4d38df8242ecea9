"""Pages for a team's assets (orders.assets): the list, an asset's page (its spare parts, its
down state, every part ever made for it), registering and editing one, saving a configured
part or an order line on its spare-parts list, and ordering for it.

Assets are read only through orders.assets.assets_for(user): another organisation's asset is
a 404 here, as its orders are.
"""

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from catalog.parameters import parse_schema
from microfactory.accounts.signed_in import signed_in_user
from microfactory.errors import DomainError
from orders.assets import (
    AssetFields,
    AssetInvalid,
    asset_can_edit,
    asset_create,
    asset_lines,
    asset_part_add,
    asset_part_add_from_line,
    asset_part_remove,
    asset_set_down,
    asset_update,
    assets_for,
)
from orders.membership import request_membership
from orders.models import WORK_ORDER_REF_MAX_LENGTH, Asset, Order, OrderLine
from orders.order_form import (
    blank_order_form,
    chosen_id,
    delivery_quote,
    errors_text,
    order_fields_checked,
    order_placed_from,
    orderable_part,
    quantity_refusal,
    typed_order_form,
    typed_parameters,
    typed_quantity,
)
from orders.services import LineRequest, OrderInvalid, OrderRequest, line_request_of, order_place
from production import public


def _asset(request: HttpRequest, asset_id: int) -> Asset:
    return get_object_or_404(assets_for(request.user), pk=asset_id)


@login_required
def assets_page(request: HttpRequest) -> HttpResponse:
    """The organisation's assets, down ones first."""
    assets = sorted(
        assets_for(request.user).order_by("team__name", "tag"),
        key=lambda a: (not a.is_down, a.team.name, a.tag),
    )
    return render(
        request,
        "orders/assets.html",
        {"assets": assets, "membership": request_membership(request)},
    )


def _fields(request: HttpRequest) -> AssetFields:
    return AssetFields(
        tag=request.POST.get("tag", "")[:200],
        name=request.POST.get("name", "")[:400],
        location=request.POST.get("location", "")[:400],
        criticality=request.POST.get("criticality", ""),
        downtime_cost_per_hour=request.POST.get("downtime_cost_per_hour", "")[:30],
    )


def _asset_form(
    request: HttpRequest, asset: Asset | None, fields: AssetFields | None, errors: dict[str, Any]
) -> HttpResponse:
    if fields is None:
        fields = (
            AssetFields(
                tag=asset.tag,
                name=asset.name,
                location=asset.location,
                criticality=asset.criticality,
                downtime_cost_per_hour=str(asset.downtime_cost_per_hour),
            )
            if asset is not None
            else AssetFields(tag="", name="")
        )
    return render(
        request,
        "orders/asset_form.html",
        {
            "asset": asset,
            "form": fields,
            "errors": errors,
            "criticalities": Asset.Criticality.choices,
            "membership": request_membership(request),
        },
        status=400 if errors else 200,
    )


@login_required
def asset_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _asset_form(request, None, None, {})
    fields = _fields(request)
    try:
        asset = asset_create(user=signed_in_user(request), fields=fields)
    except AssetInvalid as invalid:
        return _asset_form(request, None, fields, invalid.errors)
    except DomainError as refusal:
        return _asset_form(request, None, fields, {"asset": [str(refusal)]})
    messages.success(request, f"{asset.tag} {asset.name} registered.")
    return redirect("asset", asset_id=asset.pk)


@login_required
def asset_edit(request: HttpRequest, asset_id: int) -> HttpResponse:
    asset = _asset(request, asset_id)
    if request.method != "POST":
        return _asset_form(request, asset, None, {})
    fields = _fields(request)
    try:
        asset_update(asset=asset, user=signed_in_user(request), fields=fields)
    except AssetInvalid as invalid:
        return _asset_form(request, asset, fields, invalid.errors)
    except DomainError as refusal:
        return _asset_form(request, asset, fields, {"asset": [str(refusal)]})
    messages.success(request, f"{asset.tag} saved.")
    return redirect("asset", asset_id=asset.pk)


@login_required
def asset_page(request: HttpRequest, asset_id: int) -> HttpResponse:
    asset = _asset(request, asset_id)
    lines = list(asset_lines(asset)[:200])
    jobs = public.job_summaries(order_ids=sorted({line.order_id for line in lines}))
    return render(
        request,
        "orders/asset.html",
        {
            "asset": asset,
            "parts": asset.parts.select_related("revision__family", "material"),
            "history": [(line, jobs.get(line.pk, [])) for line in lines],
            "can_edit": asset_can_edit(request_membership(request), asset),
        },
    )


@login_required
@require_POST
def asset_down(request: HttpRequest, asset_id: int) -> HttpResponse:
    """Mark the asset down (with why) or running again."""
    asset = _asset(request, asset_id)
    down = request.POST.get("down") == "1"
    try:
        asset_set_down(
            asset=asset,
            user=signed_in_user(request),
            down=down,
            now=timezone.now(),
            reason=request.POST.get("reason", "")[:200],
        )
    except DomainError as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"{asset.tag} marked {'down' if down else 'running again'}.")
    return redirect("asset", asset_id=asset.pk)


@login_required
@require_POST
def asset_part_delete(request: HttpRequest, asset_id: int, part_id: int) -> HttpResponse:
    asset = _asset(request, asset_id)
    part = get_object_or_404(asset.parts, pk=part_id)
    try:
        asset_part_remove(part=part, user=signed_in_user(request))
    except DomainError as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, "Spare part removed from the list.")
    return redirect("asset", asset_id=asset.pk)


def _saved_message(request: HttpRequest, asset: Asset, created: bool) -> None:
    if created:
        messages.success(request, f"Saved on the spare-parts list of {asset.tag} {asset.name}.")
    else:
        messages.info(request, f"{asset.tag} already lists this configuration.")


@login_required
@require_POST
def part_save_to_asset(request: HttpRequest, slug: str) -> HttpResponse:
    """The part page's configuration, saved on an asset's spare-parts list."""
    family, revision = orderable_part(slug)
    asset = _asset(request, chosen_id(request.POST.get("asset")))
    quantity, _ = typed_quantity(request.POST.get("quantity", ""))  # its range says it
    line = LineRequest(
        part=family.slug,
        parameters=typed_parameters(request, parse_schema(revision.parameter_schema)),
        material=request.POST.get("material", ""),
        quantity=quantity,
        revision=revision.number,
    )
    try:
        _, created = asset_part_add(asset=asset, user=signed_in_user(request), line=line)
    except OrderInvalid as invalid:
        messages.error(
            request, "The part is not configured correctly: " + errors_text(invalid.errors)
        )
        return redirect("part", slug=slug)
    except AssetInvalid as invalid:
        messages.error(request, errors_text(invalid.errors))
        return redirect("part", slug=slug)
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return redirect("part", slug=slug)
    _saved_message(request, asset, created)
    return redirect("asset", asset_id=asset.pk)


@login_required
@require_POST
def line_save_to_asset(request: HttpRequest, line_id: int) -> HttpResponse:
    """An order line's configuration (revision, parameters, material, quantity), saved on an
    asset's spare-parts list."""
    line = get_object_or_404(
        OrderLine.objects.filter(order__in=Order.objects.for_user(request.user)).select_related(
            "order", "revision__family", "material"
        ),
        pk=line_id,
    )
    asset = _asset(request, chosen_id(request.POST.get("asset")))
    try:
        _, created = asset_part_add_from_line(asset=asset, user=signed_in_user(request), line=line)
    except OrderInvalid as invalid:
        messages.error(request, "This line cannot be saved: " + errors_text(invalid.errors))
        return redirect("order", order_id=line.order_id)
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return redirect("order", order_id=line.order_id)
    _saved_message(request, asset, created)
    return redirect("asset", asset_id=asset.pk)


@login_required
def asset_order(request: HttpRequest, asset_id: int) -> HttpResponse:
    """Order for the asset: its spare parts as order lines, pre-filled with their saved
    configuration and quantity (0 leaves one out), plus the work-order reference. Each render
    carries a fresh idempotency key, so a double-clicked submit places one order."""
    asset = _asset(request, asset_id)
    parts = list(asset.parts.select_related("revision__family", "material"))
    form = {"work_order_ref": "", **blank_order_form(request)}
    quantities = {part.pk: part.quantity for part in parts}
    errors: dict[str, Any] = {}
    part_errors: dict[int, str] = {}
    typed: dict[int, str] = {}
    if request.method == "POST":
        user = signed_in_user(request)
        key = request.POST.get("idempotency_key", "")[:200]
        idempotency_key = f"asset-{key}" if key else None
        placed = order_placed_from(user, idempotency_key)
        if placed is not None:
            return redirect("order", order_id=placed.pk)
        form = typed_order_form(request, form)
        for part in parts:
            # 0 leaves a part out; what is not a whole number of parts, or is below 0, is
            # refused beside that part rather than read as 0 and silently left out.
            raw = request.POST.get(f"q_{part.pk}", "0").strip()
            quantities[part.pk], problem = typed_quantity(raw)
            if problem or quantities[part.pk] < 0:
                part_errors[part.pk] = problem or quantity_refusal()
                quantities[part.pk], typed[part.pk] = 0, raw[:20]  # shown back as typed
        due, errors = order_fields_checked(form)
        chosen = [part for part in parts if quantities[part.pk] > 0]
        if part_errors:
            errors["lines"] = ["correct the quantities marked below (0 leaves a part out)"]
        elif not chosen:
            errors["lines"] = ["order at least one of its spare parts (a quantity above 0)"]
        if not errors:
            try:
                order, _ = order_place(
                    user=user,
                    request=OrderRequest(
                        lines=[line_request_of(p, quantity=quantities[p.pk]) for p in chosen],
                        reference=form["reference"][:100],
                        due_date=due,
                        priority=form["priority"],
                        delivery_site=form["delivery_site"],
                        note=form["note"][:5000],
                        idempotency_key=idempotency_key,
                        asset=asset.pk,
                        work_order_ref=form["work_order_ref"],
                        expedite=form["speed"] == "expedited",
                    ),
                )
            except OrderInvalid as invalid:
                errors = invalid.errors
                by_line = errors.get("lines")
                if isinstance(by_line, dict):  # {"0": {...}}: the index among those ordered
                    part_errors = {
                        chosen[int(index)].pk: errors_text(problems)
                        for index, problems in by_line.items()
                        if index.isdigit() and int(index) < len(chosen)
                    }
            except DomainError as refusal:
                errors = {"order": [str(refusal)]}
            else:
                return redirect("order", order_id=order.pk)
    return render(
        request,
        "orders/asset_order.html",
        {
            "asset": asset,
            "parts": [
                (p, typed.get(p.pk, quantities[p.pk]), part_errors.get(p.pk, "")) for p in parts
            ],
            "form": form,
            "errors": errors,
            "lines_error": errors.get("lines") if isinstance(errors.get("lines"), list) else [],
            "priorities": Order.Priority.choices,
            # What standard and expedited cost for the spare parts as the form has them now.
            "delivery": delivery_quote(
                [
                    line_request_of(p, quantity=quantities[p.pk])
                    for p in parts
                    if quantities[p.pk] > 0
                ],
                site=form["delivery_site"],
            ),
            "sites": public.sites(),
            "idempotency_key": uuid.uuid4().hex,
            "today": timezone.localdate().isoformat(),
            "work_order_max": WORK_ORDER_REF_MAX_LENGTH,
            "max_quantity": settings.ORDER_MAX_QUANTITY,
            "membership": request_membership(request),
        },
        status=400 if errors else 200,
    )
