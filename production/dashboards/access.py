"""Who sees the dashboard and of which floor: the factory's managers (their sites) and staff
(every site, and the jobs not at a machine yet). A `site` parameter narrows it to one of them;
a site of another factory is not found, as one that does not exist."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from django.http import Http404
from django.utils import timezone

from production import tenancy
from production.dashboards import figures
from production.dashboards.period import Period, period_from_query
from production.models import Site


@dataclass(frozen=True)
class Request:
    scope: figures.Scope
    period: Period
    site: Site | None  # the one site asked for; None: all of the user's
    sites: list[Site]  # the sites the user may pick from


def dashboard_zone(zones: Iterable[str]) -> tzinfo:
    """The time zone a dashboard counts days in: its sites' (Site.timezone, given here) when
    they share one, else the factory's (settings.TIME_ZONE); the page says which."""
    zones = set(zones)
    return ZoneInfo(zones.pop()) if len(zones) == 1 else timezone.get_default_timezone()


def dashboard_request(user: tenancy.User, query: Mapping[str, str], *, now: datetime) -> Request:
    """The scope and period of a dashboard read. DomainError for a bad period, Http404 for a
    site the user does not manage. The caller has checked tenancy.is_manager."""
    managed = tenancy.sites_for_operator(user, roles=tenancy.MANAGER_ROLES)
    sites = list(managed.order_by("name"))
    slug = query.get("site") or ""
    if slug:
        site = next((site for site in sites if site.slug == slug), None)
        if site is None:
            raise Http404("no such site of yours")
        period = period_from_query(query, now=now, zone=dashboard_zone([site.timezone]))
        return Request(figures.Scope((site.pk,)), period, site, sites)
    everything = bool(getattr(user, "is_staff", False))
    ids = None if everything else tuple(site.pk for site in sites)
    # Staff see every site, also those of other factories: all of their zones.
    zones = (
        Site.objects.values_list("timezone", flat=True).distinct()
        if everything
        else [site.timezone for site in sites]
    )
    period = period_from_query(query, now=now, zone=dashboard_zone(zones))
    return Request(figures.Scope(ids), period, None, sites)


# Each figure apart, for its CSV and its API read: (row type, rows of the scope and period).
Rows = Callable[[figures.Scope, Period, datetime], list[object]]
FIGURES: dict[str, tuple[type, Rows]] = {
    "stages": (figures.StageRow, lambda s, p, now: list(figures.stages(s, p, now=now))),
    "oee-machines": (figures.OeeRow, lambda s, p, now: list(figures.oee(s, p).machines)),
    "oee-daily": (figures.OeeRow, lambda s, p, now: list(figures.oee(s, p).daily)),
    "oee-weekly": (figures.OeeRow, lambda s, p, now: list(figures.oee(s, p).weekly)),
    "scrap": (figures.ScrapRow, lambda s, p, now: list(figures.scrap_trend(s, p, now=now))),
    "lead-times": (figures.LeadTimes, lambda s, p, now: [figures.lead_times(s, p)]),
    "promises": (figures.PromiseRow, lambda s, p, now: [figures.promises(s, p)]),
    "throughput": (figures.ThroughputRow, lambda s, p, now: list(figures.throughput(s, p))),
}
