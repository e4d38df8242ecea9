"""Searching an organisation's orders: by words (order number, the team's reference, part
name), status, part, requester and the date placed. One FilterSet serves the orders page
(its form errors shown there) and the API's list (a 400 naming each bad parameter)."""

import re
from datetime import date, datetime, time
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orders.models import Order, Status

# The text fields the search box matches, word by word: the customer's reference, the team's
# work-order reference, the asset the order was for, and its parts.
SEARCH_FIELDS = (
    "reference",
    "work_order_ref",
    "asset__name",
    "asset__tag",
    "lines__revision__family__name",
    "lines__revision__family__slug",
)
# "O-000123", "o-123", "#123" or "123" name an order by its number.
ORDER_NUMBER = re.compile(r"^(?:o-?|#)?0*(\d{1,18})$", re.IGNORECASE)
MAX_WORDS = 10
MAX_TEXT = 100  # characters in one text parameter


class StatusesField(forms.CharField):
    """One status, or several separated by commas."""

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        wanted = [status.strip() for status in (text or "").split(",") if status.strip()]
        unknown = [status for status in wanted if status not in Status.values]
        if unknown:
            raise forms.ValidationError(
                f"unknown status {', '.join(unknown)}; choose from " + ", ".join(Status.values)
            )
        return wanted


class MomentField(forms.CharField):
    """An ISO date (its midnight, local time) or an ISO date and time."""

    def clean(self, value: Any) -> datetime | None:
        text = (super().clean(value) or "").strip()
        if not text:
            return None
        try:
            moment = (
                parse_datetime(text)
                if "T" in text or " " in text
                else datetime.combine(date.fromisoformat(text), time.min)
            )
        except ValueError:
            moment = None
        if moment is None:
            raise forms.ValidationError("must be an ISO date (2026-01-31) or date and time")
        return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class StatusesFilter(django_filters.Filter):  # type: ignore[misc]  # django-filter is untyped
    field_class = StatusesField


class MomentFilter(django_filters.Filter):  # type: ignore[misc]
    field_class = MomentField


# django-filter ships no type information (ignore_missing_imports in pyproject.toml), so
# FilterSet is Any to mypy and --strict refuses to subclass it.
class OrderFilter(django_filters.FilterSet):  # type: ignore[misc]
    q = django_filters.CharFilter(
        method="search",
        max_length=MAX_TEXT,
        help_text="words matching the order number (O-000123 or 123), the reference or a "
        "part's name; every word must match",
    )
    status = StatusesFilter(
        field_name="status",
        lookup_expr="in",
        max_length=500,
        help_text="one status, or several separated by commas: " + ", ".join(Status.values),
    )
    reference = django_filters.CharFilter(
        field_name="reference",
        lookup_expr="icontains",
        max_length=MAX_TEXT,
        help_text="part of the team's reference",
    )
    part = django_filters.CharFilter(
        method="by_part",
        max_length=MAX_TEXT,
        help_text="orders with a line of this part: its slug, or part of its slug or name",
    )
    requester = django_filters.CharFilter(
        field_name="placed_by__username",
        lookup_expr="iexact",
        max_length=150,
        help_text="the user name of whoever placed it",
    )
    placed_after = MomentFilter(
        field_name="placed_at",
        lookup_expr="gte",
        max_length=40,
        help_text="placed at or after: ISO date (its midnight) or date and time",
    )
    placed_before = MomentFilter(
        field_name="placed_at",
        lookup_expr="lt",
        max_length=40,
        help_text="placed before: ISO date (its midnight) or date and time",
    )

    class Meta:
        model = Order
        fields = ["q", "status", "reference", "part", "requester", "placed_after", "placed_before"]

    def search(self, orders: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        for word in value.split()[:MAX_WORDS]:
            match = Q()
            for field in SEARCH_FIELDS:
                match |= Q(**{f"{field}__icontains": word})
            if number := ORDER_NUMBER.match(word):
                match |= Q(pk=int(number.group(1)))
            orders = orders.filter(pk__in=Order.objects.filter(match).values("pk"))
        return orders

    def by_part(self, orders: QuerySet[Order], name: str, value: str) -> QuerySet[Order]:
        with_part = Order.objects.filter(
            Q(lines__revision__family__slug__icontains=value)
            | Q(lines__revision__family__name__icontains=value)
        )
        return orders.filter(pk__in=with_part.values("pk"))


def orders_search(
    params: Any, orders: QuerySet[Order]
) -> tuple[QuerySet[Order], dict[str, list[str]]]:
    """`orders` narrowed by the search `params` (a QueryDict): (orders, errors by parameter).
    With errors, no order is found."""
    search = OrderFilter(params, queryset=orders)
    if not search.is_valid():
        errors = {name: [str(m) for m in messages] for name, messages in search.errors.items()}
        return orders.none(), errors
    return search.qs, {}
