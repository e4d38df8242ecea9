"""The what-if page (issue #15.4): a manager replays a period of past demand before and after a
change of capacity (production.simulation.whatif). Managers and staff only; a factory's
manager replays the demand and machines of the factory's own sites."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from microfactory.errors import DomainError
from production import tenancy
from production.simulation.whatif import Change, WhatIf, replay_load, whatif_run
from production.views import operator_required

KINDS = (
    ("none", "no change (the period as it was)"),
    ("remove", "remove a machine"),
    ("add", "add a machine like one we have"),
    ("hours", "change a site's opening hours"),
)
WEEKDAYS = tuple(enumerate("Mon Tue Wed Thu Fri Sat Sun".split()))
# The longest period a form may name: the job bound (MF_WHATIF_MAX_JOBS) is the real limit.
MAX_DAYS = 366


def _date(raw: str | None, *, default: date, label: str) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DomainError(f"{label}: “{raw[:20]}” is not a date (YYYY-MM-DD)") from None


def _hour(raw: str | None, *, default: float, label: str) -> float:
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DomainError(f"{label}: “{raw[:20]}” is not an hour (0-24)") from None
    if not 0 <= value <= 24:
        raise DomainError(f"{label}: {value:g} is not an hour of the day (0-24)")
    return value


def _form(request: HttpRequest) -> tuple[dict[str, Any], Change, datetime, datetime]:
    """The form's values, the change and the period; DomainError on a bad value."""
    today = timezone.localdate()
    query = request.GET
    since = _date(query.get("since"), default=today - timedelta(days=28), label="From")
    until = _date(query.get("until"), default=today, label="To")
    if until < since:
        raise DomainError("To: the period ends before it starts")
    if (until - since).days > MAX_DAYS:
        raise DomainError(f"the period is longer than {MAX_DAYS} days")
    kind = query.get("change") or "none"
    if kind not in dict(KINDS):
        raise DomainError(f"Change: “{kind[:20]}” is not one of the changes offered")
    try:
        weekdays = frozenset(int(d) for d in query.getlist("weekday") if 0 <= int(d) <= 6)
    except ValueError:
        raise DomainError("Open on: pick weekdays from the list") from None
    change = Change(
        kind=kind,
        machine=query.get("machine", ""),
        site=query.get("site", ""),
        weekdays=weekdays if "weekday" in query else frozenset(range(5)),
        opens_h=_hour(query.get("opens"), default=6.0, label="Opens"),
        closes_h=_hour(query.get("closes"), default=22.0, label="Closes"),
    )
    form = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "change": kind,
        "machine": change.machine,
        "site": change.site,
        "weekdays": sorted(change.weekdays),
        "opens": f"{change.opens_h:g}",
        "closes": f"{change.closes_h:g}",
    }
    zone = timezone.get_current_timezone()
    start = datetime.combine(since, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return form, change, start, min(end, timezone.now())


def _hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:.1f} h"


def _share(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


def _figures(result: WhatIf) -> list[tuple[str, str, str]]:
    """The comparison's rows: (figure, as it was, with the change)."""
    before, after = result.before, result.after
    return [
        ("Jobs made", str(before.jobs), str(after.jobs)),
        ("Not made (no machine could)", str(before.not_made), str(after.not_made)),
        ("Lead time, median", _hours(before.lead_median_s), _hours(after.lead_median_s)),
        ("Lead time, p90", _hours(before.lead_p90_s), _hours(after.lead_p90_s)),
        ("On time (due date, else promise)", _share(before.on_time), _share(after.on_time)),
    ]


@require_GET
@operator_required
def station_whatif(request: HttpRequest) -> HttpResponse:
    """The form, and with `run` in the query the two runs side by side. Bad values: the page
    again with the reason (400)."""
    if not tenancy.is_manager(request.user):
        raise PermissionDenied("the what-if page is for the factory's managers")
    sites = tenancy.sites_for_operator(request.user, roles=tenancy.MANAGER_ROLES)
    machines = tenancy.machines_for_operator(request.user, roles=tenancy.MANAGER_ROLES)
    context: dict[str, Any] = {
        "kinds": KINDS,
        "weekday_choices": WEEKDAYS,
        "sites": list(sites.values_list("slug", "name")),
        "machines": list(machines.order_by("site__name", "name").values_list("slug", "name")),
    }
    status = 200
    result: WhatIf | None = None
    try:
        form, change, start, end = _form(request)
        context["form"] = form
        if "run" in request.GET:
            slugs = None if request.user.is_staff else [slug for slug, _ in context["sites"]]
            replay = replay_load(start=start, end=end, site_slugs=slugs)
            result = whatif_run(replay, change)
    except DomainError as refusal:
        context.setdefault("form", {"since": "", "until": "", "change": "none", "weekdays": []})
        context["error"] = str(refusal)
        status = 400
    context["result"] = result
    context["figures"] = _figures(result) if result is not None else []
    return render(request, "production/station_whatif.html", context, status=status)
