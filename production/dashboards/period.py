"""The period a dashboard covers: whole days in a time zone (the site's, production.dashboards.
access.dashboard_zone), up to now."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from django.utils import timezone

from microfactory.errors import DomainError

DEFAULT_DAYS = 28
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    """[start, end) with its days; `end` is never after `now` (time to come is not planned)."""

    first_day: date
    last_day: date  # inclusive
    start: datetime
    end: datetime
    zone: tzinfo

    @property
    def days(self) -> list[date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=n) for n in range(count)]

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The day's [start, end) in the zone, cut to the period."""
        lo = datetime.combine(day, time(), tzinfo=self.zone)
        hi = datetime.combine(day + timedelta(days=1), time(), tzinfo=self.zone)
        return max(lo, self.start), min(hi, self.end)

    @property
    def slug(self) -> str:
        return f"{self.first_day:%Y-%m-%d}_{self.last_day:%Y-%m-%d}"


def week_of(day: date) -> date:
    """The Monday of the ISO week the day is in: how days are grouped into weeks."""
    return day - timedelta(days=day.weekday())


def period_of_days(
    first_day: date, last_day: date, *, now: datetime, zone: tzinfo | None = None
) -> Period:
    """The whole days from first_day to last_day (inclusive), in `zone` (by default the
    current time zone)."""
    if last_day < first_day:
        raise DomainError("the period ends before it starts")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise DomainError(f"a period is at most {MAX_DAYS} days")
    zone = zone or timezone.get_current_timezone()
    start = datetime.combine(first_day, time(), tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone)
    return Period(first_day, last_day, start, max(start, min(end, now)), zone)


def period_from_query(
    query: Mapping[str, str], *, now: datetime, zone: tzinfo | None = None
) -> Period:
    """?days=N (the last N days, today included; default 28) or ?from=YYYY-MM-DD&to=YYYY-MM-DD,
    days in `zone` (by default the current time zone). Anything else: DomainError naming the
    parameter."""
    zone = zone or timezone.get_current_timezone()
    today = now.astimezone(zone).date()
    if query.get("from") or query.get("to"):
        try:
            first = date.fromisoformat(query.get("from") or "")
            last = date.fromisoformat(query.get("to") or str(today))
        except ValueError:
            raise DomainError("from and to are dates, YYYY-MM-DD") from None
        return period_of_days(first, last, now=now, zone=zone)
    raw = query.get("days") or str(DEFAULT_DAYS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise DomainError(f"days is a whole number from 1 to {MAX_DAYS}")
    return period_of_days(today - timedelta(days=int(raw) - 1), today, now=now, zone=zone)
