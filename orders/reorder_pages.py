"""The reorder page: what reordering an order (or some of its lines) would place, with what
changed in each part's latest revision and what no longer validates, and the button that
places it. The order page's "Reorder" button posts here directly (one click, same
configuration). Another organisation's order is a 404, as everywhere."""

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from catalog.models import PartRevision
from microfactory.errors import DomainError
from orders.models import Order
from orders.reorders import (
    ReorderPlan,
    RevisionChoice,
    order_reorder,
    problem_texts,
    reorder_plan,
    reorders_of,
)
from orders.services import OrderInvalid


class ReorderForm(forms.Form):
    revision = forms.ChoiceField(
        choices=[(choice.value, choice.value) for choice in RevisionChoice], required=False
    )
    line = forms.TypedMultipleChoiceField(coerce=int, required=False)
    reference = forms.CharField(max_length=100, required=False)
    note = forms.CharField(max_length=5000, required=False)
    idempotency_key = forms.CharField(max_length=200, required=False)

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lines = self.fields["line"]
        assert isinstance(lines, forms.TypedMultipleChoiceField)
        lines.choices = [(str(line.pk), str(line.pk)) for line in order.lines.all()]


def reorder_context(request: HttpRequest, order: Order) -> dict[str, Any]:
    """What the order page needs for its reorder buttons: a fresh idempotency key, the lines
    whose part has a newer published revision, and the orders that reordered this one."""
    lines = list(order.lines.all())
    latest = dict(
        PartRevision.objects.filter(
            family_id__in={line.revision.family_id for line in lines}, published_at__isnull=False
        )
        .values("family_id")
        .annotate(latest=Max("number"))
        .values_list("family_id", "latest")
    )
    newer = {
        line.pk for line in lines if latest.get(line.revision.family_id, 0) > line.revision.number
    }
    return {
        "reorder_key": uuid.uuid4().hex,
        "reorder_newer": newer,
        "reorders": reorders_of(order=order, user=request.user),
    }


def _render(
    request: HttpRequest,
    order: Order,
    form: ReorderForm,
    plan: ReorderPlan | None,
    errors: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "orders/reorder.html",
        {
            "order": order,
            "form": form,
            "plan": plan,
            "errors": problem_texts(errors),
            "idempotency_key": uuid.uuid4().hex,
        },
        status=status,
    )


@login_required
def order_reorder_page(request: HttpRequest, order_id: int) -> HttpResponse:
    """GET: the plan, to confirm. POST: place it (an OrderInvalid shows the plan and why)."""
    order = get_object_or_404(Order.objects.for_user(request.user), pk=order_id)
    form = ReorderForm(request.POST if request.method == "POST" else request.GET, order=order)
    if not form.is_valid():
        return _render(request, order, form, None, {}, status=400)
    data = form.cleaned_data
    revision = data["revision"] or RevisionChoice.SAME.value
    line_ids = data["line"] or None
    if request.method == "POST":
        key = data["idempotency_key"]
        try:
            placed, _ = order_reorder(
                order=order,
                user=request.user,
                line_ids=line_ids,
                revision=revision,
                reference=data["reference"].strip(),
                note=data["note"].strip(),
                idempotency_key=f"web-reorder-{key}" if key else None,
            )
        except OrderInvalid as invalid:
            errors: dict[str, Any] = invalid.errors
        except DomainError as refusal:
            errors = {"order": [str(refusal)]}
        else:
            messages.success(request, f"{placed.number} placed: a reorder of {order.number}.")
            return redirect("order", order_id=placed.pk)
    else:
        errors = {}
    plan = reorder_plan(order=order, line_ids=line_ids, revision=revision)
    return _render(request, order, form, plan, errors, status=400 if errors else 200)
