"""Reading the order forms the requesters' pages send: the part asked for and its current
revision, its parameters and quantity as typed, the order's date, priority and speed, the
delivery site preselected, what standard and expedited delivery would cost and promise, an
order already placed from the same form, and a refusal's errors said in one line.

The part page and the cart (orders.views), an asset's order form (orders.asset_views), a saved
quote's (orders.saved_quote_views) and an upload's page (orders.upload_views) read their forms
with these. Whether a line or an order is accepted is decided by orders.services (line_check,
order_place), never here: these only turn what was typed into what the services take.
"""

from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone

from catalog.models import PartFamily, PartRevision
from catalog.parameters import ParameterSpec
from orders.delivery import DeliveryQuote, order_delivery_quote
from orders.membership import request_membership
from orders.models import Order
from orders.quotes import indicative_quote, line_facts
from orders.services import LineRequest, OrderInvalid, default_delivery_site, line_check
from production import public


def orderable_part(slug: str) -> tuple[PartFamily, PartRevision]:
    """The catalog part a page or form names, and its current revision: a 404 for an unknown,
    retired or private part, or one with no published revision."""
    family = get_object_or_404(PartFamily, slug=slug, retired=False, private=False)
    revision = family.current_revision()
    if revision is None:
        raise Http404("this part has no published revision")
    return family, revision


def typed_parameters(request: HttpRequest, specs: tuple[ParameterSpec, ...]) -> dict[str, Any]:
    """A part form's parameter values as typed (its `p_<name>` fields; an unticked boolean is
    False, a field not sent is left out): line_check parses and checks them."""
    values: dict[str, Any] = {}
    for spec in specs:
        key = f"p_{spec.name}"
        if spec.type == "boolean":
            values[spec.name] = key in request.POST
        elif key in request.POST:
            values[spec.name] = request.POST[key]
    return values


def typed_quantity(raw: str) -> tuple[int, str]:
    """The number of parts typed in a form, and what is wrong with it: a quantity that is not
    a whole number is 0, with the words to refuse it (2.5 parts is not a number of parts,
    whatever the range); its range is line_check's."""
    try:
        return int(raw), ""
    except (TypeError, ValueError):
        return 0, quantity_refusal()


def quantity_refusal() -> str:
    """The words refusing a quantity that is not a number of parts."""
    return f"Enter a whole number of parts, from 1 to {settings.ORDER_MAX_QUANTITY}"


def chosen_id(raw: str | None) -> int:
    """The id of the row a form picks (an order's line, an asset); 0, which no row has (a 404),
    for anything but a number of at most 18 digits."""
    return int(raw) if raw and raw.isdigit() and len(raw) < 19 else 0


def blank_order_form(
    request: HttpRequest, *, reference: str = "", speed: bool = True
) -> dict[str, str]:
    """An order form's fields before anything is typed: no date, normal priority, the
    organisation's delivery site preselected and, where the form offers it, standard speed."""
    form = {
        "reference": reference,
        "due_date": "",
        "priority": Order.Priority.NORMAL,
        "delivery_site": preselected_site(request),
        "note": "",
    }
    if speed:
        form["speed"] = "standard"  # or "expedited" (orders.delivery)
    return form


def typed_order_form(request: HttpRequest, blank: dict[str, str]) -> dict[str, str]:
    """The fields of `blank` as the POST sent them (stripped); a field not sent keeps its
    blank value."""
    return {name: request.POST.get(name, default).strip() for name, default in blank.items()}


def order_fields_checked(form: dict[str, str]) -> tuple[date | None, dict[str, Any]]:
    """The needed-by date of an order form's fields (as typed), and the errors of its date,
    priority and, where the form has one, delivery speed: the cart, an asset's and a saved
    quote's order forms share them."""
    errors: dict[str, Any] = {}
    due: date | None = None
    if form.get("due_date"):
        try:
            due = date.fromisoformat(form["due_date"])
        except ValueError:
            errors["due_date"] = ["enter a date as YYYY-MM-DD"]
    if form.get("priority") not in Order.Priority.values:
        errors["priority"] = ["choose a priority from the list"]
    if "speed" in form and form["speed"] not in ("standard", "expedited"):
        errors["speed"] = ["choose standard or expedited"]
    return due, errors


def preselected_site(request: HttpRequest) -> str:
    """The slug of the site the user's organisation delivers to by default ("": none): the
    order forms preselect it, and the part and upload pages' lead times include the transit
    there."""
    membership = request_membership(request)
    site = default_delivery_site(membership.organisation) if membership else None
    return site.slug if site else ""


def delivery_quote(lines: list[LineRequest], *, site: str) -> DeliveryQuote | None:
    """Standard and expedited delivery of these lines as they would be ordered now: what each
    costs and when it is promised. None for no lines, or lines that no longer check (the
    order form says why when it is sent)."""
    if not lines:
        return None
    now = timezone.now()
    delivery = site if public.site_by_slug(site) is not None else ""
    quoted = []
    try:
        for line in lines:
            facts = line_facts(**line_check(line), now=now, delivery_site=delivery)
            quoted.append((facts, indicative_quote(facts)))
    except (OrderInvalid, KeyError, TypeError):  # a saved line of another shape: not quoted
        return None
    return order_delivery_quote(quoted, now=now)


def order_placed_from(user: User, idempotency_key: str | None) -> Order | None:
    """The order this user already placed from the same form (its idempotency key), if any:
    a double-clicked submit shows that order instead of placing another. None without a key."""
    if not idempotency_key:
        return None
    return (
        Order.objects.for_user(user).filter(placed_by=user, idempotency_key=idempotency_key).first()
    )


def errors_text(errors: Any, prefix: str = "") -> str:
    """Every message of a refusal's nested errors, once each, in one line: the messages name
    their field in the requester's words (catalog.parameters), so the internal keys are not
    shown; the lines of an order are said by number ("line 2: ...")."""
    if isinstance(errors, dict):
        said: list[str] = []
        for key, value in errors.items():
            where = f"line {int(key) + 1}: " if str(key).isdigit() else ""
            text = errors_text(value, prefix + where)
            if text not in said:
                said.append(text)
        return "; ".join(said)
    if isinstance(errors, list):
        return prefix + " ".join(dict.fromkeys(str(item) for item in errors))
    return prefix + str(errors)
