"""When a site works: its opening hours (shifts by weekday) and closures (holidays, stocktake).

Jobs start only while their site is open (someone must start the machine and clear the bed);
once started a job runs to its end unattended. QC after it is people's work: it takes open
time only (after_open_seconds). Routing ETAs, promise dates, the what-if
simulation and OEE availability all read a site's hours through `SiteCalendar`, a pure value
built once per site. A site with no opening hours is open around the clock (closures still
apply), which is how every site worked before calendars existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from microfactory.errors import DomainError

# How far ahead next_open looks for an opening before it gives up: a year covers any holiday.
SEARCH_DAYS = 366
# next_open and start_and_finish read intervals in windows of this many days (most lookups end
# within the first window; a long closure costs a few more).
_WINDOW = timedelta(days=8)

Interval = tuple[datetime, datetime]


class NeverOpen(DomainError):
    """The site has no open hour in the coming year: nothing can be planned there."""


@dataclass(frozen=True)
class Shift:
    """Open from `opens` to `closes` local time on `weekday` (0 Monday .. 6 Sunday); a shift
    that closes at or before it opens ends the next day (22:00-06:00; 00:00-00:00 is 24 h)."""

    weekday: int
    opens: time
    closes: time


@dataclass(frozen=True)
class SiteCalendar:
    timezone: str = "UTC"
    shifts: tuple[Shift, ...] = ()
    closures: tuple[Interval, ...] = ()  # aware datetimes, start < end

    @property
    def always_open(self) -> bool:
        return not self.shifts and not self.closures

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """The open time within [start, end), as sorted, disjoint, aware intervals."""
        if end <= start:
            return []
        if self.shifts:
            opened = _merge(_clip(self._shift_intervals(start, end), start, end))
        else:
            opened = [(start, end)]
        return _subtract(opened, self.closures) if self.closures else opened

    def open_seconds(self, start: datetime, end: datetime) -> float:
        return sum((b - a).total_seconds() for a, b in self.open_intervals(start, end))

    def is_open(self, at: datetime) -> bool:
        return bool(self.open_intervals(at, at + timedelta(microseconds=1)))

    def next_open(self, at: datetime) -> datetime:
        """`at` when the site is open then, else when it next opens. NeverOpen if not within
        a year."""
        if self.always_open:
            return at
        window_start = at
        limit = at + timedelta(days=SEARCH_DAYS)
        while window_start < limit:
            window_end = min(window_start + _WINDOW, limit)
            found = self.open_intervals(window_start, window_end)
            if found:
                return found[0][0]
            window_start = window_end
        raise NeverOpen(f"the site is not open on any day of the next {SEARCH_DAYS} days")

    def start_and_finish(self, ready_at: datetime, run_s: float) -> tuple[datetime, datetime]:
        """When a job ready at `ready_at` starts (the site's next open moment) and finishes
        (it runs `run_s` seconds from there, open or not)."""
        start = self.next_open(ready_at)
        return start, start + timedelta(seconds=max(0.0, run_s))

    def after_open_seconds(self, start: datetime, seconds: float) -> datetime:
        """When `seconds` of the site's open time have passed from `start`: work done by
        people (QC after a job's finish) that stops while the site is closed. 40 minutes from
        17:50 on a site closing at 18:00 and opening at 08:00 end at 08:30. NeverOpen if the
        site is not open long enough within a year."""
        left = timedelta(seconds=max(0.0, seconds))
        if self.always_open or not left:
            return start + left
        window_start = start
        limit = start + timedelta(days=SEARCH_DAYS)
        while window_start < limit:
            window_end = min(window_start + _WINDOW, limit)
            for opens, closes in self.open_intervals(window_start, window_end):
                if closes - opens >= left:
                    return opens + left
                left -= closes - opens
            window_start = window_end
        raise NeverOpen(f"the site is not open long enough in the next {SEARCH_DAYS} days")

    def _shift_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        zone = ZoneInfo(self.timezone)
        # A shift that began the day before may still run at `start` (overnight shifts).
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        by_weekday: dict[int, list[Shift]] = {}
        for shift in self.shifts:
            by_weekday.setdefault(shift.weekday, []).append(shift)
        found: list[Interval] = []
        while day <= last:
            for shift in by_weekday.get(day.weekday(), ()):
                found.append(_shift_on(day, shift, zone))
            day += timedelta(days=1)
        return found


def _shift_on(day: date, shift: Shift, zone: ZoneInfo) -> Interval:
    opens = datetime.combine(day, shift.opens, tzinfo=zone)
    close_day = day if shift.closes > shift.opens else day + timedelta(days=1)
    closes = datetime.combine(close_day, shift.closes, tzinfo=zone)
    # Compare and subtract in UTC: aware datetimes of one zone subtract as wall time.
    return opens.astimezone(UTC), closes.astimezone(UTC)


def _clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    return [(max(a, start), min(b, end)) for a, b in intervals if a < end and b > start]


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _subtract(opened: Sequence[Interval], closed: Sequence[Interval]) -> list[Interval]:
    result: list[Interval] = []
    for a, b in opened:
        pieces = [(a, b)]
        for c, d in closed:
            if d <= a or c >= b:
                continue
            pieces = [
                piece
                for x, y in pieces
                for piece in ((x, min(y, c)), (max(x, d), y))
                if piece[0] < piece[1]
            ]
        result.extend(pieces)
    return result


# --- from the database ------------------------------------------------------------------------


def calendars_for_sites(
    site_ids: Iterable[int], *, zones: Mapping[int, str] | None = None
) -> dict[int, SiteCalendar]:
    """Every site's calendar, in three queries whatever the number of sites (two when the
    caller has read their time zones, {site id: zone})."""
    from production.models import Site, SiteClosure, SiteHours

    ids = list(site_ids)
    if zones is None:
        zones = dict(Site.objects.filter(pk__in=ids).values_list("pk", "timezone"))
    shifts: dict[int, list[Shift]] = {}
    for site_id, weekday, opens, closes in SiteHours.objects.filter(site_id__in=ids).values_list(
        "site_id", "weekday", "opens", "closes"
    ):
        shifts.setdefault(site_id, []).append(Shift(weekday, opens, closes))
    closures: dict[int, list[Interval]] = {}
    for site_id, starts, ends in (
        SiteClosure.objects.filter(site_id__in=ids)
        .order_by("starts_at")
        .values_list("site_id", "starts_at", "ends_at")
    ):
        closures.setdefault(site_id, []).append((starts, ends))
    return {
        site_id: SiteCalendar(
            timezone=zone or "UTC",
            shifts=tuple(shifts.get(site_id, ())),
            closures=tuple(closures.get(site_id, ())),
        )
        for site_id, zone in zones.items()
    }


def calendar_for_site(site_id: int) -> SiteCalendar:
    return calendars_for_sites([site_id]).get(site_id, SiteCalendar())
