"""Pages for customers' own models (orders.uploads): the upload form with the organisation's
uploads, and an upload's page (3D preview, DFM report, instant quote, add to cart).

Uploads are read only through CustomerUpload.objects.for_user: another organisation's upload
is a 404 here, as its orders are.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from microfactory.errors import DomainError
from orders.carts import cart_add_line
from orders.delivery import order_speed
from orders.models import CustomerUpload
from orders.order_form import errors_text, preselected_site, typed_quantity
from orders.services import LineRequest, OrderInvalid
from orders.uploads import (
    upload_create,
    upload_orderable,
    upload_quote,
    upload_rescale,
    upload_state,
)
from orders.views import duration_text
from production import public


def _upload(request: HttpRequest, upload_id: int) -> CustomerUpload:
    return get_object_or_404(
        CustomerUpload.objects.for_user(request.user).select_related(
            "revision__family", "organisation", "uploaded_by"
        ),
        pk=upload_id,
    )


@login_required
def uploads_page(request: HttpRequest) -> HttpResponse:
    """The upload form, and the organisation's uploads newest first."""
    error, name = "", ""
    if request.method == "POST":
        name = request.POST.get("name", "")[:1000]
        model = request.FILES.get("model")
        if model is None:
            error = "choose a STEP (.step, .stp) or STL (.stl) file"
        else:
            try:
                upload = upload_create(user=request.user, name=name, upload=model)
            except DomainError as refusal:  # the file, the name, a limit, or no organisation
                error = str(refusal)
            else:
                messages.success(request, f"{upload.number} uploaded: checking the file.")
                return redirect("upload", upload_id=upload.pk)
    uploads = CustomerUpload.objects.for_user(request.user).select_related(
        "uploaded_by", "promoted_to__family"
    )[:100]
    return render(
        request,
        "orders/uploads.html",
        {
            "uploads": uploads,
            "error": error,
            "name": name,
            "max_mb": settings.ORDER_UPLOAD_MAX_MB,
            "max_triangles": settings.ORDER_UPLOAD_MAX_TRIANGLES,
        },
        status=400 if error else 200,
    )


def _configuration(
    request: HttpRequest, upload: CustomerUpload, material: str, quantity: int
) -> dict[str, Any]:
    """The upload's state, DFM notes and report, and quote in this material and quantity,
    with its "Ready by" as the part page gives it (the machines read once for both)."""
    with public.machines_read_once():
        try:
            quoted = upload_quote(
                upload=upload,
                material=material,
                quantity=quantity,
                delivery_site=preselected_site(request),
            )
        except OrderInvalid as invalid:
            return {"errors": invalid.errors, "state": upload_state(upload)}
        promise = (
            # The live queue simulated with this line added, at standard speed.
            order_speed([(quoted.facts, quoted.quote)], now=timezone.now(), expedite=False)
            if quoted.state.status == "ready"
            else None
        )
    return {
        "promise": promise,
        "errors": {},
        "state": quoted.state,
        "preview": quoted.state.preview,
        "quote": quoted.quote,
        "facts": quoted.facts,
        "dfm": quoted.notes,
        "report": quoted.report,
        "unit_words": _unit_words(quoted.report),
        "lead_time": duration_text(quoted.quote.lead_time_s),
    }


@login_required
def upload_page(request: HttpRequest, upload_id: int) -> HttpResponse:
    upload = _upload(request, upload_id)
    materials = upload.revision.materials.filter(active=True)
    context: dict[str, Any] = {
        "upload": upload,
        "materials": materials,
        "quantity": 1,
        "max_quantity": settings.ORDER_MAX_QUANTITY,
        "configure_url": reverse("upload-configure", args=[upload.pk]),
    }
    context.update(_configuration(request, upload, materials[0].slug if materials else "", 1))
    return render(request, "orders/upload.html", context)


@login_required
@require_POST
def upload_configure(request: HttpRequest, upload_id: int) -> HttpResponse:
    """htmx: the material or quantity changed, or the build or DFM check is still running."""
    upload = _upload(request, upload_id)
    context: dict[str, Any] = {
        "upload": upload,
        "configure_url": reverse("upload-configure", args=[upload.pk]),
    }
    quantity, _ = typed_quantity(request.POST.get("quantity", ""))  # its range says it
    context.update(_configuration(request, upload, request.POST.get("material", ""), quantity))
    return render(request, "orders/_upload_configuration.html", context)


@login_required
@require_POST
def upload_add(request: HttpRequest, upload_id: int) -> HttpResponse:
    """Add the upload to the cart, quoted as the cart's catalog lines are."""
    upload = _upload(request, upload_id)
    quantity, _ = typed_quantity(request.POST.get("quantity", ""))  # its range says it
    try:
        line = upload_orderable(
            upload, material=request.POST.get("material", ""), quantity=quantity
        )
    except OrderInvalid as invalid:
        messages.error(request, "It cannot be ordered yet: " + errors_text(invalid.errors))
        return redirect("upload", upload_id=upload.pk)
    try:
        cart_add_line(
            user=request.user,
            line=LineRequest(
                part=upload.revision.family.slug,
                parameters={},
                material=line["material"].slug,
                quantity=quantity,
                revision=upload.revision.number,
            ),
        )
    except OrderInvalid as invalid:
        messages.error(request, "It cannot be ordered yet: " + errors_text(invalid.errors))
        return redirect("upload", upload_id=upload.pk)
    except DomainError as refusal:  # the cart is full
        messages.error(request, str(refusal))
        return redirect("cart")
    messages.success(request, f"{quantity} × {upload.name} added to the cart.")
    return redirect("cart")


@login_required
@require_POST
def upload_scale(request: HttpRequest, upload_id: int) -> HttpResponse:
    """Take the mesh as drawn in the unit the DFM report offered (or back in millimetres)."""
    upload = _upload(request, upload_id)
    unit = request.POST.get("unit", "")
    try:
        upload_rescale(upload=upload, user=request.user, unit=unit)
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return redirect("upload", upload_id=upload.pk)
    if unit == "mm":
        messages.success(request, "The file is read in millimetres again, as it was sent.")
    else:
        messages.success(request, f"The file is read in {UNIT_WORDS[unit]}: checking it anew.")
    return redirect("upload", upload_id=upload.pk)


def _unit_words(report: Any) -> str:
    guess = report.unit_guess if report is not None else None
    return UNIT_WORDS.get(guess["unit"], "") if guess else ""


UNIT_WORDS = {"inch": "inches", "m": "metres", "cm": "centimetres", "mm": "millimetres"}
