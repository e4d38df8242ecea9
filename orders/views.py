"""Pages for maintenance teams: the catalog, a part's configurator (live form, 3D preview,
DFM notes and report, instant quote), the cart, their organisation's orders, and approvals.

The pages call the same services the API does (orders.services, catalog.previews, and
production.public for jobs, sites and the DFM report) and read orders only through
Order.objects.for_user: another organisation's order is a 404 here too.
"""

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connections
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from catalog.cache import catalog_cached, catalog_generation
from catalog.models import Material, PartFamily, PartPreview, PartRevision, Process
from catalog.parameters import ParameterSpec, SchemaError, defaults, parse_schema
from catalog.querysets import families_search
from microfactory.accounts.signed_in import signed_in_user
from microfactory.downloads import file_response
from microfactory.errors import DomainError
from orders.carts import cart_add_line, cart_clear, cart_lines, cart_remove_line
from orders.delivery import SpeedOption, order_speed
from orders.membership import request_membership
from orders.models import (
    FINAL,
    Order,
    OrderLine,
    SavedQuote,
    Status,
    order_number,
)
from orders.order_form import (
    blank_order_form,
    chosen_id,
    delivery_quote,
    errors_text,
    order_fields_checked,
    order_placed_from,
    orderable_part,
    preselected_site,
    typed_order_form,
    typed_parameters,
    typed_quantity,
)
from orders.price_from import price_from_many
from orders.quotes import LineFacts, dfm_notes, indicative_quote, line_facts
from orders.quoting import Quote
from orders.reorder_pages import reorder_context
from orders.search import OrderFilter, orders_search
from orders.services import (
    ROUTE_CHANGEABLE,
    LineRequest,
    NotAllowed,
    OrderInvalid,
    OrderRequest,
    line_check,
    order_approve,
    order_cancel,
    order_line_route_change,
    order_place,
    order_price_confirm,
    order_price_decline,
    order_reject,
)
from production import public
from production.public import JobSummary

logger = logging.getLogger(__name__)

# The session key of the cart before carts were saved per user (orders.carts).
CART = "cart"


# --- catalog ---------------------------------------------------------------------------------


def _published() -> QuerySet[PartRevision]:
    return PartRevision.objects.filter(published_at__isnull=False).order_by("-number")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The catalog: search words, and filters by category, process and material."""
    query = request.GET.get("q", "").strip()
    category = request.GET.get("category", "")
    process = request.GET.get("process", "")
    material = request.GET.get("material", "")
    filters = {"q": query, "category": category, "process": process, "material": material}
    # The cards, categories and materials are the same for everyone until the catalog changes:
    # rendered once per catalog generation and search (catalog.cache), not per request.
    shown = catalog_cached(f"home:{json.dumps(filters, sort_keys=True)}", lambda: _catalog(filters))
    return render(
        request,
        "orders/home.html",
        {
            **shown,
            **filters,
            "cards": mark_safe(shown["cards"]),  # rendered by our own template, escaped there
            "processes": Process.choices,
            "membership": request_membership(request),
        },
    )


def _catalog(filters: dict[str, str]) -> dict[str, Any]:
    """The catalog page's cards (HTML), categories and materials for these filters."""
    query, category = filters["q"], filters["category"]
    process, material = filters["process"], filters["material"]
    families = PartFamily.objects.filter(
        retired=False, private=False, revisions__published_at__isnull=False
    )
    if category:
        families = families.filter(category=category)
    if process:
        families = families.filter(
            revisions__process=process, revisions__published_at__isnull=False
        )
    if material:
        families = families.filter(
            revisions__materials__slug=material, revisions__published_at__isnull=False
        )
    families = families.distinct().prefetch_related(
        Prefetch(
            "revisions",
            _published().defer("script").prefetch_related("materials"),
            to_attr="published",
        )
    )
    # Names, descriptions, tags, parameter words and sizes, with the admins' synonyms:
    # "M6", "6 mm", "608 bearing" (catalog.search); best matches first.
    found = families_search(families, query, revisions="published") if query else list(families)
    prices = price_from_many([r for f in found for r in getattr(f, "published", [])[:1]])
    cards = render_to_string(
        "orders/_catalog_cards.html", {"families": found, "prices": prices, **filters}
    )
    categories = (
        PartFamily.objects.filter(retired=False, private=False)
        .exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )
    return {
        "cards": str(cards),
        "categories": list(categories),
        "materials": list(Material.objects.filter(active=True)),
    }


def _preview(
    revision: PartRevision, parameters: dict[str, Any], *, user: Any
) -> tuple[PartPreview | None, str]:
    """The preview of this configuration, queued if needed: (preview, problem)."""
    from catalog.previews import TooManyPreviews, preview_request

    try:
        preview, _ = preview_request(revision=revision, parameters=parameters, user=user)
    except TooManyPreviews as refusal:
        return None, str(refusal)
    except OperationalError:
        return None, "the preview builder cannot be reached; try again in a moment"
    return preview, ""


@login_required
def part_drawing(request: HttpRequest, slug: str) -> HttpResponse:
    """A catalog card's drawing: the default configuration's SVG, built on first view."""
    family, revision = orderable_part(slug)
    try:
        values = defaults(parse_schema(revision.parameter_schema))
    except SchemaError:
        values = {}
    # Asked for by nobody in particular: the cards' drawings never use up the preview builds
    # a user may have in flight, which the part page needs.
    preview, problem = _preview(revision, values, user=None)
    return render(
        request, "orders/_drawing.html", {"family": family, "preview": preview, "problem": problem}
    )


@login_required
def preview_file(request: HttpRequest, key: str, kind: str) -> FileResponse:
    """A preview's STL, GLB or SVG (catalog previews are shared by every organisation)."""
    if kind not in ("stl", "glb", "svg"):
        raise Http404
    preview = get_object_or_404(PartPreview, key=key, status=PartPreview.Status.READY)
    field = getattr(preview, kind)
    if not field:
        raise Http404
    types = {"stl": "model/stl", "glb": "model/gltf-binary", "svg": "image/svg+xml"}
    # Inline: the catalog cards show the drawing through <img>, which never runs scripts;
    # opened directly it is sandboxed (microfactory.downloads).
    response = file_response(field.open("rb"), content_type=types[kind], attachment=False)
    response["Cache-Control"] = "private, max-age=86400"  # content-addressed: never changes
    return response


def _fields(
    specs: tuple[ParameterSpec, ...], values: dict[str, Any], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    return [
        {
            "spec": spec,
            "value": values.get(spec.name, spec.default),
            "errors": errors.get(spec.name, []),
        }
        for spec in specs
    ]


def duration_text(seconds: int | None) -> str:
    """'about 2 h 15 min' for a lead time in seconds."""
    if seconds is None:
        return ""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    return f"about {round(hours / 24)} days"


@login_required
def part_page(request: HttpRequest, slug: str) -> HttpResponse:
    family, revision, materials = _part_of(slug)
    values = defaults(parse_schema(revision.parameter_schema))
    context = {
        "family": family,
        "revision": revision,
        "parameters": _parameter_fields(slug, revision, materials),
        "quantity": 1,
        "max_quantity": settings.ORDER_MAX_QUANTITY,
        "configuration": _default_configuration(
            request, revision, values, materials[0].slug if materials else ""
        ),
    }
    return render(request, "orders/part.html", context)


def _part_of(slug: str) -> tuple[PartFamily, PartRevision, list[Material]]:
    """An orderable part, its current revision and the revision's active materials, read once
    per catalog generation (catalog.cache): three queries every part page visit made."""

    def read() -> tuple[PartFamily, PartRevision, list[Material]]:
        family, revision = orderable_part(slug)
        revision.family = family  # kept with it: the configuration reads the family's slug
        return family, revision, list(revision.materials.filter(active=True))

    return catalog_cached(f"part-page:{slug}", read)


def _parameter_fields(slug: str, revision: PartRevision, materials: list[Material]) -> str:
    """The form's parameter fields (defaults filled in) and materials, the same for every
    visitor: rendered once per catalog generation, not on each visit."""

    def render() -> str:
        specs = parse_schema(revision.parameter_schema)
        context = {"fields": _fields(specs, defaults(specs), {}), "materials": materials}
        return render_to_string("orders/_part_parameters.html", context)

    return mark_safe(catalog_cached(f"part-parameters:{slug}:{revision.pk}", render))


def _default_configuration(
    request: HttpRequest, revision: PartRevision, values: dict[str, Any], material: str
) -> str:
    """The part page's configuration fragment (preview state, DFM, quote, "ready by") for the
    default configuration, rendered once per MF_PART_QUOTE_CACHE_S, catalog generation and
    delivery site: the same for every visitor of an organisation that delivers there (nothing
    in it is the user's: the CSRF token, the user's name and assets are in the page around it).
    A preview that became ready meanwhile shows at the fragment's own poll (part_configure,
    never kept); a refusal that is the user's own (too many previews) is not kept."""
    membership = request_membership(request)
    # Keyed by the site's id, which the membership holds: its slug is read only to render.
    site_id = membership.organisation.default_delivery_site_id if membership else None
    key = f"part-configuration:{revision.pk}:{catalog_generation()}:{material}:{site_id}"
    kept: str | None = cache.get(key)
    if kept is not None:
        return mark_safe(kept)  # rendered by our own template, escaped there
    site = preselected_site(request)
    context = {
        "family": revision.family,
        "revision": revision,
        **_configuration(request, revision, values, material, 1, site=site),
    }
    html = render_to_string("orders/_configuration.html", context, request=request)
    if context.get("errors") or context.get("preview") is not None:
        cache.set(key, html, timeout=settings.MF_PART_QUOTE_CACHE_S)
    return mark_safe(html)


def _configuration(
    request: HttpRequest,
    revision: PartRevision,
    parameters: dict[str, Any],
    material: str,
    quantity: int,
    quantity_problem: str = "",
    *,
    site: str | None = None,
) -> dict[str, Any]:
    """Check one configuration with the order's own validation, then preview, DFM, quote.
    A quantity that is not a whole number (`quantity_problem`) is refused as such, the rest
    still checked (with one part)."""
    line = LineRequest(
        part=revision.family.slug,
        parameters=parameters,
        material=material,
        quantity=1 if quantity_problem else quantity,
        revision=revision.number,
    )
    try:
        checked = line_check(line)
        if quantity_problem:
            raise OrderInvalid({})
    except OrderInvalid as invalid:
        errors = dict(invalid.errors)
        if quantity_problem:
            errors["quantity"] = [quantity_problem]
        field_errors = errors.get("parameters", {})
        return {
            "errors": errors,
            "field_errors": field_errors,
            # The summary says a rule broken by two fields once.
            "field_messages": list(
                dict.fromkeys(m for messages in field_errors.values() for m in messages)
            ),
        }
    with public.machines_read_once():  # the quote and the DFM report read the machines once
        return _configured(request, revision, checked, site)


def _configured(
    request: HttpRequest, revision: PartRevision, checked: dict[str, Any], site: str | None
) -> dict[str, Any]:
    preview, problem = _preview(revision, checked["parameters"], user=request.user)
    ready = preview if preview is not None and preview.status == PartPreview.Status.READY else None
    site = preselected_site(request) if site is None else site
    facts, facts_quote, promise = _quoted(checked, ready, site)
    return {
        # "Ready by": the live queue simulated with this line added, at standard speed.
        "promise": promise,
        "errors": {},
        "field_errors": {},
        "preview": preview,
        "preview_problem": problem,
        "quote": facts_quote,
        "facts": facts,
        "dfm": dfm_notes(facts, preview),
        # The full report once the geometry is built; a worker checks it, the page asks again.
        "report": public.live_dfm(preview=ready, material=checked["material"]) if ready else None,
        "lead_time": duration_text(facts_quote.lead_time_s),
    }


def _quoted(
    checked: dict[str, Any], ready: PartPreview | None, site: str
) -> tuple[LineFacts, Quote, SpeedOption]:
    """A configuration's facts, indicative quote and standard promise, fresh for
    MF_PART_QUOTE_CACHE_S: every visit of a part page asks the same of the same live queue
    (the machines, the queue simulation: nine tenths of the page's time, benchmarks/web.py).
    Keyed by everything they are computed from but the machines' state, which the time
    bounds: revision (immutable), canonical parameters, material, quantity, route, delivery
    site and the ready preview measured. Past its period a kept answer is still shown, for up
    to MF_PART_QUOTE_STALE_S more, while a thread of this process computes the next one: the
    40-50 ms of simulation are nobody's wait (a page's p99 was that refresh)."""
    key = _quote_key(checked, ready, site)
    kept = cache.get(key)
    if kept is not None:
        answer, fresh_until = kept
        if time.time() >= fresh_until:
            _requote_later(key, checked, ready, site)
        return answer  # type: ignore[no-any-return]
    return _requote(key, checked, ready, site)


def _quote_key(checked: dict[str, Any], ready: PartPreview | None, site: str) -> str:
    return ":".join(
        str(part)
        for part in (
            "part-quote-kept",  # (answer, fresh until): not the 3-tuples kept before
            catalog_generation(),  # a material's new price is quoted at once
            checked["revision"].pk,
            checked["parameters_hash"],
            checked["material"].pk,
            checked["quantity"],
            checked["process"],
            site,
            ready.pk if ready else "",
        )
    )


def _requote(
    key: str, checked: dict[str, Any], ready: PartPreview | None, site: str
) -> tuple[LineFacts, Quote, SpeedOption]:
    facts = line_facts(**checked, now=timezone.now(), preview=ready, delivery_site=site)
    facts_quote = indicative_quote(facts)
    promise = order_speed([(facts, facts_quote)], now=timezone.now(), expedite=False)
    period = settings.MF_PART_QUOTE_CACHE_S
    if period > 0:
        kept = ((facts, facts_quote, promise), time.time() + period)
        cache.set(key, kept, timeout=period + settings.MF_PART_QUOTE_STALE_S)
    return facts, facts_quote, promise


_requoting: dict[str, threading.Thread] = {}  # key -> the thread computing it (this process)
_requoting_lock = threading.Lock()


def _requote_later(key: str, checked: dict[str, Any], ready: PartPreview | None, site: str) -> None:
    """Compute a kept answer again in a thread, once per key at a time in this process."""

    def requote() -> None:
        try:
            _requote(key, checked, ready, site)
        except Exception:  # the stale answer stays; the next visit past it tries again
            logger.exception("the part page's quote %s could not be computed again", key)
        finally:
            connections.close_all()  # this thread's own connections
            with _requoting_lock:
                _requoting.pop(key, None)

    with _requoting_lock:
        if key in _requoting:
            return
        thread = _requoting[key] = threading.Thread(target=requote, daemon=True)
    thread.start()


@login_required
@require_POST
def part_configure(request: HttpRequest, slug: str) -> HttpResponse:
    """htmx: the form changed; answer with field errors, the preview, DFM notes and quote."""
    family, revision = orderable_part(slug)
    specs = parse_schema(revision.parameter_schema)
    context = {"family": family, "revision": revision, "specs": specs, "oob": True}
    quantity, problem = typed_quantity(request.POST.get("quantity", ""))
    context.update(
        _configuration(
            request,
            revision,
            typed_parameters(request, specs),
            request.POST.get("material", ""),
            quantity,
            problem,
        )
    )
    return render(request, "orders/_configuration.html", context)


# --- cart and ordering -------------------------------------------------------------------------


def _cart(request: HttpRequest) -> list[dict[str, Any]]:
    """The user's cart (orders.carts: in the database), as the cart page shows it."""
    user = signed_in_user(request)
    _absorb_session_cart(request, user)
    return [
        {
            "id": line.pk,
            "part": line.revision.family.slug,
            "name": line.revision.family.name,
            "revision": line.revision.number,
            "parameters": line.parameters,
            "material": line.material.slug,
            "material_name": line.material.name,
            "quantity": line.quantity,
            "total": str(line.quoted_total),
            "currency": line.currency,
            "note": line.note,
            # A customer's uploaded part has no catalog page: the cart links to its upload.
            "url": reverse("upload", args=[line.revision.upload.pk])
            if line.revision.family.private
            else "",
            # In a region of its revision where many parts made failed (#15 point 6).
            "warnings": public.failure_warnings(revision=line.revision, parameters=line.parameters),
        }
        for line in cart_lines(user=user)
    ]


def _absorb_session_cart(request: HttpRequest, user: User) -> None:
    """Carts used to live in the session: a session from before keeps its lines, moved into
    the user's saved cart once (a line that no longer passes its checks is left out)."""
    legacy = request.session.pop(CART, None)
    for line in legacy if isinstance(legacy, list) else []:
        try:
            cart_add_line(
                user=user,
                line=LineRequest(
                    part=str(line["part"]),
                    parameters=dict(line["parameters"]),
                    material=str(line["material"]),
                    quantity=int(line["quantity"]),
                    revision=line.get("revision"),
                ),
            )
        except (DomainError, KeyError, TypeError, ValueError):
            continue


@login_required
@require_POST
def cart_add(request: HttpRequest, slug: str) -> HttpResponse:
    family, revision = orderable_part(slug)
    specs = parse_schema(revision.parameter_schema)
    quantity, problem = typed_quantity(request.POST.get("quantity", ""))
    line = LineRequest(
        part=family.slug,
        parameters=typed_parameters(request, specs),
        material=request.POST.get("material", ""),
        quantity=quantity,
        revision=revision.number,
    )
    try:
        if problem:
            raise OrderInvalid({"quantity": [problem]})
        cart_add_line(user=signed_in_user(request), line=line)
    except OrderInvalid as invalid:
        messages.error(
            request, "The part is not configured correctly: " + errors_text(invalid.errors)
        )
        return redirect("part", slug=slug)
    except DomainError as refusal:  # the cart is full; or the user belongs to no organisation
        messages.error(request, str(refusal))
        return redirect("cart")
    messages.success(request, f"{line.quantity} × {family.name} added to the cart.")
    return redirect("cart")


@login_required
@require_POST
def cart_remove(request: HttpRequest, line_id: int) -> HttpResponse:
    cart_remove_line(user=signed_in_user(request), line_id=line_id)
    return redirect("cart")


@login_required
def cart_page(request: HttpRequest) -> HttpResponse:
    """The cart and the order form. Each render carries a fresh idempotency key, so a
    double-clicked submit places one order."""
    cart = _cart(request)
    lines = [
        LineRequest(
            part=line["part"],
            parameters=line["parameters"],
            material=line["material"],
            quantity=line["quantity"],
            revision=line["revision"],
        )
        for line in cart
    ]
    errors: dict[str, Any] = {}
    form = blank_order_form(request)
    if request.method == "POST":
        key = request.POST.get("idempotency_key", "")[:200]
        idempotency_key = f"web-{key}" if key else None
        user = signed_in_user(request)
        placed = order_placed_from(user, idempotency_key)
        if placed is not None:  # the same form sent again (a double click): that order
            return redirect("order", order_id=placed.pk)
        form = typed_order_form(request, form)
        due, errors = order_fields_checked(form)
        if not cart:
            errors["lines"] = ["the cart is empty"]
        if not errors:
            try:
                order, _ = order_place(
                    user=request.user,
                    request=OrderRequest(
                        lines=lines,
                        reference=form["reference"][:100],
                        due_date=due,
                        priority=form["priority"],
                        delivery_site=form["delivery_site"],
                        note=form["note"][:5000],
                        expedite=form["speed"] == "expedited",
                        idempotency_key=idempotency_key,
                    ),
                )
            except OrderInvalid as invalid:
                errors = invalid.errors
            except DomainError as refusal:
                errors = {"order": [str(refusal)]}
            else:
                cart_clear(user=user)
                return redirect("order", order_id=order.pk)
    return render(
        request,
        "orders/cart.html",
        {
            "cart": cart,
            "form": form,
            "errors": errors,
            "line_errors": errors.get("lines") if isinstance(errors.get("lines"), dict) else {},
            "priorities": Order.Priority.choices,
            "sites": public.sites(),
            "idempotency_key": uuid.uuid4().hex,
            "today": timezone.localdate().isoformat(),
            "membership": request_membership(request),
            "delivery": delivery_quote(lines, site=form["delivery_site"]),
            "quote_valid_days": settings.MF_QUOTE_VALID_DAYS,
        },
    )


# --- orders ----------------------------------------------------------------------------------


def _orders(user: object) -> QuerySet[Order]:
    lines = OrderLine.objects.select_related("revision__family", "material")
    return (
        Order.objects.for_user(user)
        .select_related("placed_by", "team", "delivery_site", "decided_by", "asset")
        .prefetch_related(Prefetch("lines", lines), "events")
    )


@dataclass(frozen=True)
class OrderRow:
    """One row of the order list, every value ready to show."""

    pk: int
    number: str
    reference: str
    status: str
    status_label: str
    placed: str  # local time, "2026-12-04 14:05"
    placed_by: str
    lines: list[str]  # "2 × Shaft collar"
    total_price: Decimal
    currency: str
    due_date: date | None


def _order_rows(orders: QuerySet[Order], limit: int) -> list[OrderRow]:
    """The list's columns of the first `limit` orders and their lines' quantities and part
    names: two queries of plain values. The list read every column of up to 100 orders, their
    lines with whole revisions (JSON quotes and route options decoded) and every event of each
    order, none of which it shows, then looked each value up in the template: 85 ms of CPU a
    visit (benchmarks/web.py)."""
    found = list(
        orders.values_list(
            "pk",
            "reference",
            "status",
            "placed_at",
            "placed_by__username",
            "total_price",
            "currency",
            "due_date",
        )[:limit]
    )
    lines: dict[int, list[str]] = {}
    for order_id, quantity, part in (
        OrderLine.objects.filter(order_id__in=[row[0] for row in found])
        .order_by("order_id", "pk")
        .values_list("order_id", "quantity", "revision__family__name")
    ):
        lines.setdefault(order_id, []).append(f"{quantity} × {part}")
    labels = dict(Status.choices)
    return [
        OrderRow(
            pk=pk,
            number=order_number(pk),
            reference=reference,
            status=status,
            status_label=labels.get(status, status),
            placed=timezone.localtime(placed_at).strftime("%Y-%m-%d %H:%M"),
            placed_by=placed_by,
            lines=lines.get(pk, []),
            total_price=total_price,
            currency=currency,
            due_date=due_date,
        )
        for pk, reference, status, placed_at, placed_by, total_price, currency, due_date in found
    ]


@login_required
def orders_page(request: HttpRequest) -> HttpResponse:
    """The organisation's orders, newest first, searched (orders.search; errors shown)."""
    orders, search_errors = orders_search(request.GET, Order.objects.for_user(request.user))
    return render(
        request,
        "orders/orders.html",
        {
            "orders": _order_rows(orders, 100),
            "search": {name: request.GET.get(name, "") for name in OrderFilter.base_filters},
            "search_errors": search_errors,
            "status": request.GET.get("status", ""),
            "statuses": Status.choices,
        },
        status=400 if search_errors else 200,
    )


def _order_context(request: HttpRequest, order: Order) -> dict[str, Any]:
    membership = request_membership(request)
    jobs_by_line = public.job_summaries(order_ids=[order.pk], details=True)
    lines = [(line, jobs_by_line.get(line.pk, [])) for line in order.lines.all()]
    jobs = [job for _, line_jobs in lines for job in line_jobs]
    can_decide = (
        membership is not None
        and membership.can_approve
        and order.placed_by_id != request.user.pk
        and order.status == Status.AWAITING_APPROVAL
    )
    can_cancel = (
        membership is not None
        and (order.placed_by_id == request.user.pk or membership.can_approve)
        and order.status not in FINAL
        and all(job.cancellable for job in jobs)
    )
    live = order.status not in FINAL or any(not job.pipeline_done for job in jobs)
    may_route = membership is not None and (
        order.placed_by_id == request.user.pk or membership.can_approve
    )
    for line, line_jobs in lines:
        _route_choices(line, order=order, jobs=line_jobs, may_change=may_route)
    return {
        "order": order,
        "lines": lines,
        "can_decide": can_decide,
        "can_cancel": can_cancel,
        "live": live,
        "order_events": [e for e in order.events.all() if e.line_id is None],
    }


def _route_choices(
    line: OrderLine, *, order: Order, jobs: list[JobSummary], may_change: bool
) -> None:
    """The routes a line's page offers (orders.routes), on the line: `route_choices` (those a
    machine can make now, with their ready time) and `route_changeable` (the change form)."""
    choices = []
    for option in line.route_options or []:
        ready = parse_datetime(option.get("ready_at") or "")
        if ready is None:
            continue  # no machine can make it now: not offered
        choices.append(
            {**option, "ready": ready, "value": f"{option['process']}:{option['material']}"}
        )
    line.route_choices = choices  # type: ignore[attr-defined]
    line.route_changeable = (  # type: ignore[attr-defined]
        may_change
        and len(choices) > 1
        and order.status in ROUTE_CHANGEABLE
        and line.status in ROUTE_CHANGEABLE
        and all(job.cancellable for job in jobs)
    )


@login_required
def order_page(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(_orders(request.user), pk=order_id)
    template = (
        "orders/_order_live.html" if request.headers.get("HX-Request") else "orders/order.html"
    )
    context = _order_context(request, order)
    context.update(reorder_context(request, order))
    return render(request, template, context)


@login_required
@require_POST
def order_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    order = get_object_or_404(Order.objects.for_user(request.user), pk=order_id)
    reason = request.POST.get("reason", "")[:2000]
    try:
        if action == "approve":
            order_approve(order=order, user=request.user)
            messages.success(request, f"{order.number} approved: its jobs are queued.")
        elif action == "reject":
            order_reject(order=order, user=request.user, reason=reason)
            messages.success(request, f"{order.number} rejected.")
        elif action == "cancel":
            order_cancel(order=order, user=request.user, reason=reason)
            messages.success(request, f"{order.number} cancelled.")
        elif action == "confirm-price":
            order_price_confirm(order=order, user=request.user)
            messages.success(request, f"{order.number}: new price confirmed, production goes on.")
        elif action == "route":
            process, _, material = request.POST.get("route", "")[:100].partition(":")
            line = get_object_or_404(
                OrderLine.objects.filter(order=order), pk=chosen_id(request.POST.get("line"))
            )
            order_line_route_change(
                line=line, user=request.user, process=process, material=material
            )
            messages.success(request, f"{order.number}: line {line.pk} is now made another way.")
        elif action == "decline-price":
            order_price_decline(order=order, user=request.user, reason=reason)
            messages.success(request, f"{order.number}: new price declined, those lines cancelled.")
        else:
            raise Http404
    except NotAllowed as refusal:
        messages.error(request, str(refusal))
        return (
            HttpResponse(str(refusal), status=403)
            if request.headers.get("HX-Request")
            else redirect("order", order_id=order.pk)
        )
    except OrderInvalid as invalid:
        messages.error(request, errors_text(invalid.errors))
    except DomainError as refusal:
        messages.error(request, str(refusal))
    return redirect("order", order_id=order.pk)


def shared_quotes(user: object) -> QuerySet[SavedQuote]:
    """Saved quotes shared with the approvers, still valid and not ordered, oldest share
    first (orders.saved_quotes)."""
    return (
        SavedQuote.objects.for_user(user)
        .filter(shared_at__isnull=False, order__isnull=True, valid_until__gte=timezone.localdate())
        .select_related("created_by", "team", "shared_by")
        .prefetch_related("lines__revision__family")
        .order_by("shared_at")
    )


@login_required
def approvals_page(request: HttpRequest) -> HttpResponse:
    membership = request_membership(request)
    waiting = _orders(request.user).filter(status=Status.AWAITING_APPROVAL).order_by("placed_at")
    return render(
        request,
        "orders/approvals.html",
        {
            "orders": waiting,
            "can_decide": membership is not None and membership.can_approve,
            "shared_quotes": shared_quotes(request.user),
        },
    )
