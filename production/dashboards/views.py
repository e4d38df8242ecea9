"""The manager page, /station/dashboard/, and each of its figures as CSV."""

import dataclasses
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from microfactory.errors import DomainError
from production import tenancy
from production.dashboards import figures
from production.dashboards.access import FIGURES, Request, dashboard_request
from production.dashboards.export import rows_csv

PERIODS = (7, 28, 90, 365)


def _read(request: HttpRequest) -> Request | HttpResponse:
    if not tenancy.is_manager(request.user):
        raise PermissionDenied("the dashboard is for the factory's managers")
    try:
        return dashboard_request(request.user, request.GET, now=timezone.now())
    except DomainError as refusal:
        return HttpResponseBadRequest(str(refusal), content_type="text/plain")


def _chart_data(board: figures.Dashboard) -> dict[str, Any]:
    """What the page's charts draw (dashboard.js), as plain JSON values."""

    def rows(items: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                key: value.isoformat() if hasattr(value, "isoformat") else value
                for key, value in dataclasses.asdict(item).items()
            }
            for item in items
        ]

    return {
        "stages": rows(board.stages),
        "machines": rows(board.oee.machines),
        "daily": rows([row for row in board.oee.daily if row.machine_id is None]),
        "scrap": rows(board.scrap),
        "throughput": rows(board.throughput),
    }


@require_GET
@login_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """Every figure of the manager's floor for a period, with a CSV link for each; with
    ?format=csv&figure=NAME, that figure's CSV."""
    read = _read(request)
    if isinstance(read, HttpResponse):
        return read
    if request.GET.get("format") == "csv":
        return _csv(request, read, request.GET.get("figure", ""))
    now = timezone.now()
    board = figures.dashboard(read.scope, read.period, now=now)
    query = request.GET.copy()
    query.pop("format", None)
    query.pop("figure", None)
    csv_base = f"{reverse('station-dashboard')}?{query.urlencode()}&format=csv&figure="
    return render(
        request,
        "production/dashboard.html",
        {
            "board": board,
            "request_": read,
            "periods": PERIODS,
            "days": request.GET.get("days", ""),
            # from/to in the URL: the selector names those days, not a "last N days" choice.
            "custom": bool(request.GET.get("from") or request.GET.get("to")),
            "csv_base": csv_base.replace("?&", "?"),
            "charts": _chart_data(board),
            "figures": list(FIGURES),
        },
    )


def _csv(request: HttpRequest, read: Request, name: str) -> HttpResponse:
    if name not in FIGURES:
        raise Http404(f"no figure {name!r}; the figures are {', '.join(FIGURES)}")
    row_type, compute = FIGURES[name]
    rows = compute(read.scope, read.period, timezone.now())
    site = f"-{read.site.slug}" if read.site else ""
    response = HttpResponse(rows_csv(rows, row_type), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}{site}-{read.period.slug}.csv"'
    return response
