"""Pages for saved quotes: save the cart as a quote, the organisation's quotes, one quote (its
lines, validity, share with the approvers, the PDF, and the order form while it is valid),
re-quote an expired one. Quotes are read only through SavedQuote.objects.for_user: another
organisation's quote is a 404 (orders.saved_quotes)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from microfactory.accounts.signed_in import signed_in_user
from microfactory.errors import DomainError
from orders.models import Order, SavedQuote
from orders.order_form import (
    blank_order_form,
    errors_text,
    order_fields_checked,
    typed_order_form,
)
from orders.quote_pdf import quote_pdf
from orders.saved_quotes import (
    QuoteExpired,
    QuoteOrdered,
    quote_order,
    quote_requote,
    quote_save_from_cart,
    quote_share,
)
from orders.services import OrderInvalid
from production import public


def quotes_for(user: object) -> QuerySet[SavedQuote]:
    return SavedQuote.objects.for_user(user).select_related(
        "created_by", "team", "shared_by", "order", "organisation"
    )


@login_required
@require_POST
def cart_save_quote(request: HttpRequest) -> HttpResponse:
    try:
        quote = quote_save_from_cart(
            user=signed_in_user(request),
            reference=request.POST.get("reference", "").strip()[:100],
            note=request.POST.get("note", "").strip()[:5000],
        )
    except OrderInvalid as invalid:
        messages.error(request, "The quote could not be saved: " + errors_text(invalid.errors))
        return redirect("cart")
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return redirect("cart")
    messages.success(
        request,
        f"Quote {quote.number} saved: prices held until {quote.valid_until.isoformat()}. "
        "The cart's lines are in the quote now.",
    )
    return redirect("saved-quote", quote_id=quote.pk)


@login_required
def saved_quotes_page(request: HttpRequest) -> HttpResponse:
    quotes = quotes_for(request.user).prefetch_related("lines__revision__family")[:100]
    return render(
        request,
        "orders/saved_quotes.html",
        {"quotes": quotes, "today": timezone.localdate()},
    )


@login_required
def saved_quote_page(request: HttpRequest, quote_id: int) -> HttpResponse:
    """One quote; a POST orders it at the held prices (while valid)."""
    quote = get_object_or_404(quotes_for(request.user), pk=quote_id)
    form = blank_order_form(request, reference=quote.reference, speed=False)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        form = typed_order_form(request, form)
        due, errors = order_fields_checked(form)
        if not errors:
            try:
                order = quote_order(
                    quote=quote,
                    user=signed_in_user(request),
                    reference=form["reference"][:100],
                    due_date=due,
                    priority=form["priority"],
                    delivery_site=form["delivery_site"],
                    note=form["note"][:5000],
                )
            except QuoteOrdered as ordered:  # a double click: that order
                return redirect("order", order_id=ordered.order.pk)
            except QuoteExpired as expired:
                errors = {"order": [str(expired)]}
            except OrderInvalid as invalid:
                errors = invalid.errors
                if isinstance(errors.get("lines"), dict):
                    errors = {"order": ["the catalog no longer accepts it: " + errors_text(errors)]}
            except DomainError as refusal:
                errors = {"order": [str(refusal)]}
            else:
                messages.success(
                    request, f"{order.number} placed from {quote.number} at the quoted prices."
                )
                return redirect("order", order_id=order.pk)
    today = timezone.localdate()
    return render(
        request,
        "orders/saved_quote.html",
        {
            "quote": quote,
            "lines": quote.lines.select_related("revision__family", "material"),
            "valid": quote.is_valid_on(today),
            "form": form,
            "errors": errors,
            "priorities": Order.Priority.choices,
            "sites": public.sites(),
            "today": today.isoformat(),
        },
    )


@login_required
def saved_quote_pdf(request: HttpRequest, quote_id: int) -> HttpResponse:
    quote = get_object_or_404(quotes_for(request.user), pk=quote_id)
    response = HttpResponse(quote_pdf(quote), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{quote.number}.pdf"'
    return response


@login_required
@require_POST
def saved_quote_share(request: HttpRequest, quote_id: int) -> HttpResponse:
    quote = get_object_or_404(quotes_for(request.user), pk=quote_id)
    try:
        quote_share(quote=quote, user=signed_in_user(request))
    except DomainError as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(
            request, f"{quote.number} shared: your approvers see it on their approvals page."
        )
    return redirect("saved-quote", quote_id=quote.pk)


@login_required
@require_POST
def saved_quote_requote(request: HttpRequest, quote_id: int) -> HttpResponse:
    quote = get_object_or_404(quotes_for(request.user), pk=quote_id)
    try:
        fresh = quote_requote(quote=quote, user=signed_in_user(request))
    except OrderInvalid as invalid:
        messages.error(request, "It cannot be quoted again: " + errors_text(invalid.errors))
        return redirect("saved-quote", quote_id=quote.pk)
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return redirect("saved-quote", quote_id=quote.pk)
    messages.success(
        request,
        f"{fresh.number}: the lines of {quote.number} at today's prices, held until "
        f"{fresh.valid_until.isoformat()}.",
    )
    return redirect("saved-quote", quote_id=fresh.pk)
