"""The dashboard's figures over a scope (which sites) and a period, as frozen rows.

Definitions (docs/manager-dashboard.md says the same for managers):
- a stage is a job status; a job waits in a stage from the event that put it there to the
  event that took it out (JobEvents); the waiting of a stage in the period is the job-hours
  spent in it within the period (average jobs waiting x the period's length, so jobs still
  waiting count too); the mean wait is that over the jobs that left it in the period; the
  bottleneck is the waiting stage (every stage but running) with the most of it;
- planned time is the open time of the machine's site (production.calendars; a site without
  opening hours is open around the clock) in the period, up to now; a machine's state
  intervals come from its MachineEvents, typed by MachineEvent.loss (down, waiting for
  material, no work, idle with work queued, paused by operator);
- availability = (planned - stops) / planned, where stops are down, waiting for material,
  idle with work queued and paused: a machine with no work is available (no demand is not
  the machine's loss; it shows in utilisation = running / planned);
- failed print = running time of jobs that failed on the machine (start to failure);
- performance = estimated run time (the G-code's estimate x copies) / actual run time (start
  to finish) of the jobs the machine finished; OEE uses it capped at 1;
- quality = QC passed / (passed + scrapped) copies of the jobs QC decided in the period;
- lead time: from the order placed to its job passing QC (each job that passed QC in the
  period, remakes included); on time when it passed before the order's promised time, or
  on or before its needed-by date when nothing was promised (orders with neither are not
  judged); nearest-rank median and 90th percentile;
- promise accuracy: orders with a promised time whose last job passed QC in the period (and
  one of them at the scope's sites): how many were ready by the promise, the median
  lateness of the late ones and the median error (ready - promised);
- throughput: jobs (and copies) that passed QC per day.
"""

import copy
import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as time_of_day
from math import ceil
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Greatest
from django.db.models.lookups import In

from orders.models import Order
from production.calendars import SiteCalendar, calendars_for_sites
from production.dashboards.cache import (
    dashboard_generation,
    kept_get,
    kept_set,
    site_generations,
)
from production.dashboards.period import Period, week_of
from production.dashboards.sql import PercentileDisc, epoch, local_date, seconds
from production.lifecycle import DOWN_STATES, PIPELINE
from production.models import Job, JobEvent, Machine, MachineEvent
from production.simulation.promise import accuracy_of

Status = Job.Status
State = Machine.State
Loss = MachineEvent.Loss

# Stages a job waits in (everything but running and the ends), in flow order.
WAITING_STAGES: tuple[str, ...] = (
    *PIPELINE,
    Status.ROUTED,
    Status.DISPATCHED,
    Status.PAUSED,
    Status.AWAITING_QC,
)
STAGES: tuple[str, ...] = (*WAITING_STAGES[:-2], Status.RUNNING, *WAITING_STAGES[-2:])
# How machine time is split: running, or one of the losses (MachineEvent.Loss).
RUN = "run"
MIDNIGHT = time_of_day()
STOPS = (Loss.DOWN, Loss.MATERIAL, Loss.WAITING, Loss.PAUSED)
CATEGORIES = (RUN, Loss.NO_WORK, *STOPS)
SCRAP_DIMENSIONS = {
    "part": "line__revision__family__name",
    "material": "line__material__name",
    "machine": "machine__name",
}


# --- scope ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which floor the figures are about: the machines of `site_ids` and the jobs at them, or
    (None, staff only) every site and every job, also those not at a machine yet."""

    site_ids: tuple[int, ...] | None

    def jobs(self) -> QuerySet[Job]:
        if self.site_ids is None:
            return Job.objects.all()
        return Job.objects.filter(self._at_sites("machine__site_id"))

    def machines(self) -> QuerySet[Machine]:
        if self.site_ids is None:
            return Machine.objects.all()
        return Machine.objects.filter(site_id__in=self.site_ids)

    def job_events(self) -> QuerySet[JobEvent]:
        if self.site_ids is None:
            return JobEvent.objects.all()
        return JobEvent.objects.filter(self._at_sites("job__machine__site_id"))

    def _at_sites(self, path: str) -> "In[Any]":
        # "site + 0": a condition no index serves, so the database starts from the period's
        # rows (the time indexes) and looks their machine up, instead of reading every job
        # and event the sites ever had (SQLite's planner, without statistics, takes the
        # site's index whenever it can).
        return In(F(path) + 0, list(self.site_ids or ()))


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


# --- work in progress, waiting, bottleneck --------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    status: str
    label: str
    waiting: bool  # a stage a job waits in (not running)
    jobs_now: int  # work in progress: jobs in the stage now
    waiting_now_s: float  # how long the jobs in it now have been there, added up
    left: int  # jobs that left the stage in the period
    waited_s: float  # the time those spent in it, added up
    mean_wait_s: float | None
    bottleneck: bool


_Moves = dict[tuple[str, str], tuple[int, float]]  # (from, to): events, their times added up
_Flow = dict[str, dict[str, float]]  # status: n, t (in the period), after (since the period)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, MIDNIGHT, tzinfo=zone)


def _moves_by_day(
    scope: Scope, zone: tzinfo, days: Sequence[date], *, now: datetime
) -> dict[date, _Moves]:
    """The job moves of consecutive days (the last one up to now), per day: one grouped query
    per run of days. On SQLite the day of an event is its time shifted by one UTC offset, so a
    run is the days of one offset, and a day on which the offset changes is a run of its own;
    PostgreSQL converts each row by the zone's rules: one run."""
    runs: list[list[date]] = []
    last_key: object = None
    for day in days:
        lo, hi = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        key: object = None
        if connection.vendor == "sqlite":
            key = lo.utcoffset() if lo.utcoffset() == hi.utcoffset() else day
        if not runs or key != last_key:
            runs.append([])
        runs[-1].append(day)
        last_key = key
    found: dict[date, _Moves] = {day: {} for day in days}
    for run in runs:
        lo = _midnight(run[0], zone)
        hi = min(_midnight(run[-1] + timedelta(days=1), zone), now)
        rows = (
            scope.job_events()
            .filter(finished_at__gte=lo, finished_at__lt=hi)
            .exclude(from_status=F("to_status"))  # a measurement moves nothing
            .values(
                "from_status",
                "to_status",
                day=local_date("finished_at", Period(run[0], run[-1], lo, hi, zone)),
            )
            .annotate(n=Count("pk"), t=Sum(seconds("finished_at")))
            .order_by()
        )
        for row in rows:
            day = row["day"] if len(run) > 1 else run[0]
            found[day][row["from_status"], row["to_status"]] = (int(row["n"]), float(row["t"] or 0))
    return found


def _kept_days(
    kind: str,
    scope: Scope,
    zone: tzinfo,
    days: Sequence[date],
    *,
    now: datetime,
    compute: Callable[[list[date]], dict[date, Any]],
) -> dict[date, Any]:
    """A figure's value for each of `days` (consecutive): the leading days that have ended
    from the cache where kept (production.dashboards.cache: stale when history is written or a
    job with past events changes site), the rest from `compute` (given the days not kept, in
    order: one query for all of them), whose ended days are then kept."""
    ended = [day for day in days if _midnight(day + timedelta(days=1), zone) <= now]
    generation = dashboard_generation()
    if scope.site_ids is None:
        mark = "all"  # every job, wherever it is: a job changing site changes nothing
    else:
        generations = sorted(site_generations(scope.site_ids).items())
        mark = hashlib.sha256(repr(generations).encode()).hexdigest()[:16]

    def key(day: date) -> str:
        return f"dashboard-{kind}:{generation}:{zone}:{mark}:{day:%Y-%m-%d}"

    kept = kept_get([key(day) for day in ended]) if ended else {}
    by_day: dict[date, Any] = {}
    for day in ended:
        if key(day) not in kept:
            break
        by_day[day] = kept[key(day)]
    served = len(by_day)  # the leading ended days kept
    if served < len(days):
        computed = compute(list(days[served:]))
        by_day.update(computed)
        if ended[served:]:
            kept_set({key(day): computed[day] for day in ended[served:]})
    return by_day


def _flows(scope: Scope, period: Period, *, now: datetime) -> tuple[_Flow, _Flow]:
    """Per status, the events since the period's start that took jobs out of it and those
    that put jobs in: how many in the period and their times added up, and how many after it.

    The moves of each day since the period's start that has ended are kept in the cache
    (production.dashboards.cache; stale when history is written or a job with past events
    changes site); today and the days not kept are one grouped query (by day and move)."""
    zone = period.zone
    today = now.astimezone(zone).date()
    days = [
        period.first_day + timedelta(days=n) for n in range((today - period.first_day).days + 1)
    ]
    by_day = _kept_days(
        "stages",
        scope,
        zone,
        days,
        now=now,
        compute=lambda rest: _moves_by_day(scope, zone, rest, now=now),
    )
    out: _Flow = defaultdict(lambda: dict.fromkeys(("n", "t", "after"), 0.0))
    into: _Flow = defaultdict(lambda: dict.fromkeys(("n", "t", "after"), 0.0))
    for day in days:
        inside = day <= period.last_day
        for (source, to), (n, t) in by_day[day].items():
            for side, status in ((out, source), (into, to)):
                if inside:
                    side[status]["n"] += n
                    side[status]["t"] += t
                else:
                    side[status]["after"] += n
    return out, into


def stages(scope: Scope, period: Period, *, now: datetime) -> list[StageRow]:
    """Work in progress and waiting per stage; the bottleneck is the waiting stage with the
    most job-hours of waiting in the period. Two grouped queries (jobs now, the moves of the
    days not kept: today's once the ended days are kept).

    Job-hours in a stage S within [start, end): each event leaving S adds its time, each
    entering S takes its time away, the jobs in S at the end add
    `end` and those in S at the start take `start` away. The jobs in S now are the Job rows;
    at the end and at the start, they are these minus the events since (no history scan).
    """
    wip = {
        row["status"]: row
        for row in scope.jobs()
        .filter(status__in=STAGES)
        .values("status")
        .annotate(
            jobs=Count("pk"),
            since=Sum(Value(epoch(now)) - seconds("status_changed_at")),
        )
        .order_by()
    }
    out, into = _flows(scope, period, now=now)
    start, end = epoch(period.start), epoch(period.end)
    labels = dict(Status.choices)
    waited: dict[str, float] = {}
    left: dict[str, int] = {}
    for status in STAGES:
        leaving, entering = out.get(status, {}), into.get(status, {})
        at_end = int(wip.get(status, {}).get("jobs", 0)) - (
            int(entering.get("after", 0)) - int(leaving.get("after", 0))
        )
        at_start = at_end - (int(entering.get("n", 0)) - int(leaving.get("n", 0)))
        job_seconds = (
            float(leaving.get("t") or 0.0)
            - float(entering.get("t") or 0.0)
            + end * at_end
            - start * at_start
        )
        waited[status] = round(max(0.0, job_seconds), 1)
        left[status] = int(leaving.get("n", 0))
    worst = max(WAITING_STAGES, key=lambda status: waited[status])
    rows = []
    for status in STAGES:
        now_row = wip.get(status, {})
        rows.append(
            StageRow(
                status=status,
                label=str(labels[status]),
                waiting=status in WAITING_STAGES,
                jobs_now=int(now_row.get("jobs", 0)),
                waiting_now_s=round(now_row.get("since") or 0.0, 1),
                left=left[status],
                waited_s=waited[status],
                mean_wait_s=round(waited[status] / left[status], 1) if left[status] else None,
                bottleneck=status == worst and waited[status] > 0,
            )
        )
    return rows


# --- machine time and OEE --------------------------------------------------------------------


def _calendars(site_ids: Iterable[int]) -> dict[int, SiteCalendar]:
    """The sites' opening hours and closures (production.calendars, #15.5); a site without
    opening hours is open around the clock."""
    return calendars_for_sites(list(site_ids))


@dataclass
class _Time:
    """Seconds of one machine on one day (or week, or the period), with its runs and QC."""

    planned_s: float = 0.0
    by: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))
    failed_s: float = 0.0
    estimated_s: float = 0.0
    actual_s: float = 0.0
    passed: int = 0
    scrapped: int = 0

    def add(self, other: "_Time") -> None:
        self.planned_s += other.planned_s
        for name, spent in other.by.items():
            self.by[name] += spent
        self.failed_s += other.failed_s
        self.estimated_s += other.estimated_s
        self.actual_s += other.actual_s
        self.passed += other.passed
        self.scrapped += other.scrapped


@dataclass(frozen=True)
class OeeRow:
    machine: str  # its name; "all machines" for the floor's total
    machine_id: int | None
    day: date | None  # the day, the Monday of the week, or None for the whole period
    planned_s: float
    run_s: float
    down_s: float
    material_s: float
    no_work_s: float
    waiting_s: float
    paused_s: float
    failed_s: float
    utilisation: float | None
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    estimated_s: float
    actual_s: float
    passed: int
    scrapped: int


@dataclass(frozen=True)
class Oee:
    daily: list[OeeRow]
    weekly: list[OeeRow]
    machines: list[OeeRow]  # per machine over the period, then the floor's total


def _category(state: str, loss: str) -> str:
    if state == State.BUSY:
        return RUN
    if loss:
        return loss
    if state in DOWN_STATES:
        return Loss.DOWN
    return Loss.PAUSED if state == State.PAUSED else Loss.NO_WORK


_Span = tuple[float, float, str]  # start, end (seconds since the epoch), category
_Piece = tuple[float, float, date]  # planned time: start, end, its day


def _machine_spans(scope: Scope, period: Period) -> dict[int, list[_Span]]:
    """Each machine's state intervals in the period, from its events (two queries): the last
    event before the period and those in it, each lasting until the next.

    Two queries, not one with `at >= start OR pk IN (...)` and a window: the OR made the
    database read every state change ever written (186 ms for one day at 100,000 jobs on
    SQLite); each of these is an index range (machine_event_time). The next event's time is
    taken here, in the same pass that builds the intervals."""
    machines = scope.machines()
    before = (
        MachineEvent.objects.filter(machine_id=OuterRef("pk"), at__lt=period.start)
        .order_by("-at", "-pk")
        .values("pk")[:1]
    )
    opening = [
        pk
        for pk in machines.annotate(event=Subquery(before)).values_list("event", flat=True)
        if pk is not None
    ]
    columns = ("machine_id", "at", "pk", "from_state", "to_state", "loss", "since")
    inside = MachineEvent.objects.filter(
        machine__in=machines, at__gte=period.start, at__lt=period.end
    )
    rows = sorted(
        (
            *MachineEvent.objects.filter(pk__in=opening)
            .annotate(since=seconds("at"))
            .values_list(*columns),
            *inside.annotate(since=seconds("at")).order_by().values_list(*columns),
        ),
        key=lambda row: (row[0], row[1], row[2]),
    )
    first, last = epoch(period.start), epoch(period.end)
    spans: dict[int, list[_Span]] = defaultdict(list)
    for n, (machine_id, _at, _pk, source, state, loss, since) in enumerate(rows):
        following = rows[n + 1] if n + 1 < len(rows) else None
        until = following[6] if following is not None and following[0] == machine_id else None
        own = spans[machine_id]
        if not own and since > first:
            # No event before the period: the state it left is the one it had.
            own.append((first, since, _category(source, "")))
        end = last if until is None else min(until, last)
        own.append((max(since, first), end, _category(state, loss)))
    return spans


def _planned_pieces(calendar: SiteCalendar, period: Period) -> list[_Piece]:
    pieces: list[_Piece] = []
    for day in period.days:
        lo, hi = period.day_bounds(day)
        pieces.extend(
            (epoch(a), epoch(b), day) for a, b in calendar.open_intervals(lo, hi) if a < b
        )
    return pieces


def _split(spans: Sequence[_Span], pieces: Sequence[_Piece]) -> dict[date, _Time]:
    """Cut the spans (sorted, not overlapping) by the planned pieces (sorted): one sweep."""
    times: dict[date, _Time] = defaultdict(_Time)
    for a, b, day in pieces:
        times[day].planned_s += b - a
    i = 0
    for a, b, day in pieces:
        while i < len(spans) and spans[i][1] <= a:
            i += 1
        j = i
        by = times[day].by
        while j < len(spans) and spans[j][0] < b:
            start, end, category = spans[j]
            overlap = min(end, b) - max(start, a)
            if overlap > 0:
                by[category] += overlap
            j += 1
    return times


def _runs(scope: Scope, period: Period) -> dict[tuple[int, date], _Time]:
    """Per machine and day, from the jobs (three grouped queries): running time lost on prints
    that failed, estimated and actual run time of the finished runs, copies QC decided."""
    runs: dict[tuple[int, date], _Time] = defaultdict(_Time)
    jobs = scope.jobs().filter(machine__isnull=False)
    failed = (
        jobs.filter(
            status=Status.FAILED,
            started_at__isnull=False,
            status_changed_at__gte=period.start,
            status_changed_at__lt=period.end,
        )
        .values("machine_id", day=local_date("status_changed_at", period))
        .annotate(
            lost=Sum(
                seconds("status_changed_at")
                - Greatest(seconds("started_at"), Value(epoch(period.start)))
            )
        )
        .order_by()
    )
    for row in failed:
        runs[row["machine_id"], row["day"]].failed_s += row["lost"] or 0.0
    estimate = Cast(KT("toolpath_meta__estimated_time_s"), FloatField()) * F("quantity")
    finished = (
        jobs.filter(
            finished_at__gte=period.start, finished_at__lt=period.end, started_at__isnull=False
        )
        .values("machine_id", day=local_date("finished_at", period))
        .annotate(
            estimated=Sum(estimate), actual=Sum(seconds("finished_at") - seconds("started_at"))
        )
        .order_by()
    )
    for row in finished:
        time = runs[row["machine_id"], row["day"]]
        time.estimated_s += float(row["estimated"] or 0)
        time.actual_s += row["actual"] or 0.0
    decided = (
        _decided(scope, period)
        .filter(machine__isnull=False)
        .values("machine_id", day=local_date("status_changed_at", period))
        .annotate(passed=Sum("qc_passed"), scrapped=Sum("qc_scrapped"))
        .order_by()
    )
    for row in decided:
        time = runs[row["machine_id"], row["day"]]
        time.passed += int(row["passed"] or 0)
        time.scrapped += int(row["scrapped"] or 0)
    return runs


def _row(name: str, machine_id: int | None, day: date | None, time: _Time) -> OeeRow:
    planned = time.planned_s
    stops = sum(time.by[loss] for loss in STOPS)
    availability = _ratio(planned - stops, planned)
    performance = _ratio(time.estimated_s, time.actual_s)
    quality = _ratio(time.passed, time.passed + time.scrapped)
    oee = None
    if availability is not None and time.by[RUN] > 0:
        # A machine that never ran has no OEE (no demand is no loss of the machine's); one
        # that ran but finished or judged nothing lost nothing to speed or scrap.
        oee = (
            availability
            * min(1.0, performance if performance is not None else 1.0)
            * (quality if quality is not None else 1.0)
        )
    return OeeRow(
        machine=name,
        machine_id=machine_id,
        day=day,
        planned_s=round(planned, 1),
        run_s=round(time.by[RUN], 1),
        down_s=round(time.by[Loss.DOWN], 1),
        material_s=round(time.by[Loss.MATERIAL], 1),
        no_work_s=round(time.by[Loss.NO_WORK], 1),
        waiting_s=round(time.by[Loss.WAITING], 1),
        paused_s=round(time.by[Loss.PAUSED], 1),
        failed_s=round(time.failed_s, 1),
        utilisation=_ratio(time.by[RUN], planned),
        availability=availability,
        performance=performance,
        quality=quality,
        oee=oee,
        estimated_s=round(time.estimated_s, 1),
        actual_s=round(time.actual_s, 1),
        passed=time.passed,
        scrapped=time.scrapped,
    )


def _whole(period: Period, day: date) -> bool:
    """The day lies wholly in the period and has ended (the period never passes now)."""
    lo = datetime.combine(day, MIDNIGHT, tzinfo=period.zone)
    return (lo, lo + timedelta(days=1)) == period.day_bounds(day)


def _machine_days(
    scope: Scope,
    period: Period,
    machines: Sequence[tuple[int, str, int, str]],
    calendars: dict[int, SiteCalendar],
) -> dict[tuple[int, date], _Time]:
    """Each machine's planned time and time per state, per day: the finished days from the
    cache (production.dashboards.cache), the rest (from the first day not kept to the period's
    end) from the machines' events. The same sums either way: a day's figures are the spans
    cut by that day's opening hours, whichever period they were read for."""
    generation = dashboard_generation()
    zone = str(period.zone)
    marks = {
        site_id: hashlib.sha256(repr(calendar).encode()).hexdigest()[:16]
        for site_id, calendar in calendars.items()
    }

    def key(site_id: int, day: date) -> str:
        # One entry per site and day (a per-process cache holds a few hundred entries).
        return f"dashboard:{generation}:{zone}:{marks[site_id]}:{site_id}:{day:%Y-%m-%d}"

    at_site: dict[int, list[int]] = defaultdict(list)
    for machine_id, _, site_id, _ in machines:
        at_site[site_id].append(machine_id)
    days: dict[tuple[int, date], _Time] = {}
    whole: list[date] = []
    for day in period.days:
        if not _whole(period, day):
            break
        whole.append(day)
    wanted = [key(site_id, day) for day in whole for site_id in at_site]
    kept = kept_get(wanted) if wanted else {}
    served = 0  # the leading finished days kept for every machine
    for day in whole:
        found = {site_id: kept.get(key(site_id, day)) for site_id in at_site}
        if any(
            entry is None or not set(ids) <= entry.keys()
            for site_id, ids in at_site.items()
            for entry in (found[site_id],)
        ):
            break
        for site_id, ids in at_site.items():
            for machine_id in ids:
                spent = found[site_id][machine_id]  # type: ignore[index]
                if spent is not False:  # False: no planned time that day (closed)
                    days[machine_id, day] = spent
        served += 1
    if served == len(period.days):
        return days
    first = period.days[served]
    rest = Period(
        first_day=first,
        last_day=period.last_day,
        start=max(period.start, datetime.combine(first, MIDNIGHT, tzinfo=period.zone)),
        end=period.end,
        zone=period.zone,
    )
    spans = _machine_spans(scope, rest)
    to_keep: dict[str, dict[int, _Time | bool]] = {}
    for machine_id, _name, site_id, state in machines:
        own = spans.get(machine_id) or [(epoch(rest.start), epoch(rest.end), _category(state, ""))]
        split = _split(own, _planned_pieces(calendars[site_id], rest))
        for day, spent in split.items():
            days[machine_id, day] = spent
        for day in whole[served:]:
            # A copy: the caller adds the runs to the day's _Time.
            entry = to_keep.setdefault(key(site_id, day), {})
            entry[machine_id] = copy.deepcopy(split[day]) if day in split else False
    if to_keep:
        kept_set(to_keep)
    return days


ALL_MACHINES = "all machines"


def oee(scope: Scope, period: Period) -> Oee:
    """Utilisation, availability, performance, quality and OEE with the time lost per reason,
    per machine and day, per machine and week, per machine over the period; each grain ends
    with the floor's total ("all machines")."""
    machines = list(
        scope.machines().order_by("name", "pk").values_list("pk", "name", "site_id", "state")
    )
    calendars = _calendars({site_id for _, _, site_id, _ in machines})
    days = _machine_days(scope, period, machines, calendars)
    runs = _runs(scope, period)
    for key, run in runs.items():
        days.setdefault(key, _Time()).add(run)

    daily: list[OeeRow] = []
    weekly: list[OeeRow] = []
    totals: list[OeeRow] = []
    floor_days: dict[date, _Time] = defaultdict(_Time)
    floor_weeks: dict[date, _Time] = defaultdict(_Time)
    floor = _Time()
    for machine_id, name, _site, _state in machines:
        weeks: dict[date, _Time] = defaultdict(_Time)
        whole = _Time()
        for day in period.days:
            found = days.get((machine_id, day))
            if found is None:
                continue
            daily.append(_row(name, machine_id, day, found))
            weeks[week_of(day)].add(found)
            floor_days[day].add(found)
            whole.add(found)
        for monday, time in weeks.items():
            weekly.append(_row(name, machine_id, monday, time))
            floor_weeks[monday].add(time)
        totals.append(_row(name, machine_id, None, whole))
        floor.add(whole)
    daily.extend(_row(ALL_MACHINES, None, day, time) for day, time in sorted(floor_days.items()))
    weekly.extend(_row(ALL_MACHINES, None, day, time) for day, time in sorted(floor_weeks.items()))
    totals.append(_row(ALL_MACHINES, None, None, floor))
    return Oee(daily=daily, weekly=weekly, machines=totals)


# --- scrap, lead time, throughput ------------------------------------------------------------


@dataclass(frozen=True)
class ScrapRow:
    day: date
    by: str  # part, material or machine
    name: str
    passed: int
    scrapped: int
    rate: float | None  # scrapped / (passed + scrapped)


def _decided(scope: Scope, period: Period) -> QuerySet[Job]:
    return scope.jobs().filter(
        status__in=(Status.DONE, Status.SCRAPPED),
        status_changed_at__gte=period.start,
        status_changed_at__lt=period.end,
    )


_ScrapDay = list[tuple[str, str, int, int]]  # (by, name, passed, scrapped)


def _scrap_by_day(scope: Scope, period: Period, days: list[date]) -> dict[date, _ScrapDay]:
    """The copies passed and scrapped on each of `days` (consecutive, to the period's end),
    by part, by material and by machine: one grouped query each."""
    start = max(period.start, _midnight(days[0], period.zone))
    decided = _decided(scope, dataclasses.replace(period, first_day=days[0], start=start))
    by_day: dict[date, _ScrapDay] = {day: [] for day in days}
    for by, path in SCRAP_DIMENSIONS.items():
        grouped = (
            decided.values(name=F(path), day=local_date("status_changed_at", period))
            .annotate(passed=Sum("qc_passed"), scrapped=Sum("qc_scrapped"))
            .order_by("day", "name")
        )
        for row in grouped:
            by_day.setdefault(row["day"], []).append(
                (by, str(row["name"] or "-"), int(row["passed"] or 0), int(row["scrapped"] or 0))
            )
    return by_day


def scrap_trend(scope: Scope, period: Period, *, now: datetime) -> list[ScrapRow]:
    """Copies passed and scrapped at QC per day, by part, by material and by machine. The
    days that have ended are kept in the cache like the stage figure's; the others are one
    grouped query per dimension."""
    by_day = _kept_days(
        "scrap",
        scope,
        period.zone,
        period.days,
        now=now,
        compute=lambda rest: _scrap_by_day(scope, period, rest),
    )
    rows = [
        ScrapRow(
            day=day,
            by=by,
            name=name,
            passed=passed,
            scrapped=scrapped,
            rate=_ratio(scrapped, passed + scrapped),
        )
        for day in period.days
        for by, name, passed, scrapped in by_day.get(day, [])
    ]
    order = {by: index for index, by in enumerate(SCRAP_DIMENSIONS)}
    rows.sort(key=lambda row: (order[row.by], row.day, row.name))
    return rows


@dataclass(frozen=True)
class LeadTimes:
    jobs: int  # jobs that passed QC in the period
    median_s: float | None
    p90_s: float | None
    judged: int  # of those, with a promised time or a needed-by date
    on_time: int
    on_time_rate: float | None


def _nearest_rank(count: int, share: float) -> int:
    return max(0, ceil(share * count) - 1)


def lead_times(scope: Scope, period: Period) -> LeadTimes:
    """Order placed -> QC passed: median, 90th percentile and the on-time rate. PostgreSQL: one
    query (percentile_disc beside the counts); SQLite: three (the counts, then each
    percentile as an offset into the sorted lead times)."""
    passed = scope.jobs().filter(
        status=Status.DONE, status_changed_at__gte=period.start, status_changed_at__lt=period.end
    )
    passed_on = local_date("status_changed_at", period)
    promised = Q(line__order__promised_at__isnull=False)
    needed = Q(line__order__promised_at__isnull=True, line__order__due_date__isnull=False)
    lead = ExpressionWrapper(
        seconds("status_changed_at") - seconds("line__order__placed_at"),
        output_field=FloatField(),
    )
    shares = {"p50": 0.5, "p90": 0.9}
    percentiles = (
        {name: PercentileDisc(lead, share) for name, share in shares.items()}
        if connection.vendor == "postgresql"
        else {}
    )
    counts = passed.annotate(passed_on=passed_on).aggregate(
        jobs=Count("pk"),
        judged=Count("pk", filter=promised | needed),
        on_time=Count(
            "pk",
            filter=(promised & Q(status_changed_at__lte=F("line__order__promised_at")))
            | (needed & Q(passed_on__lte=F("line__order__due_date"))),
        ),
        **percentiles,
    )
    jobs = int(counts["jobs"])
    ordered = passed.annotate(lead=lead).order_by("lead", "pk")

    def at_rank(name: str) -> float | None:
        if not jobs:
            return None
        if name in counts:
            return round(float(counts[name]), 1)
        value = ordered.values_list("lead", flat=True)[_nearest_rank(jobs, shares[name])]
        return round(float(value), 1)

    judged = int(counts["judged"])
    on_time = int(counts["on_time"])
    return LeadTimes(
        jobs=jobs,
        median_s=at_rank("p50"),
        p90_s=at_rank("p90"),
        judged=judged,
        on_time=on_time,
        on_time_rate=_ratio(on_time, judged),
    )


@dataclass(frozen=True)
class PromiseRow:
    orders: int  # orders with a promise completed in the period (their last job passed QC)
    kept: int  # ready by the promised time
    kept_share: float | None
    median_late_s: float | None  # of the late ones: by how much
    median_error_s: float | None  # ready - promised, signed (negative: early)


def promises(scope: Scope, period: Period) -> PromiseRow:
    """Promise accuracy (#15.3): the orders with a promised time (Order.promised_at, from the
    queue simulation) completed in the period, that is whose last job passed QC in it, with a
    job that passed QC at the scope's sites; each is judged by its last job's pass, wherever
    it was made (production.simulation.promise.accuracy_of). One query."""
    # Grouped from the passes since the period's start (the time index), not per order: an
    # order passed in the period with no pass after it had its last pass in it.
    passed = Job.objects.filter(
        status=Status.DONE,
        status_changed_at__gte=period.start,
        line__order__status=Order.Status.COMPLETED,
        line__order__promised_at__isnull=False,
    )
    here = Q(status_changed_at__lt=period.end)
    if scope.site_ids is not None:
        here &= Q(machine__site_id__in=scope.site_ids)
    orders = (
        passed.values("line__order_id", promised=seconds("line__order__promised_at"))
        .annotate(ready=Max(seconds("status_changed_at")), here=Count("pk", filter=here))
        .order_by()
    )
    end = epoch(period.end)
    errors = [
        # Seconds since the epoch (no datetime per row), to a tenth as the other figures.
        round(row["ready"] - row["promised"], 1)
        for row in orders
        if row["here"] and row["ready"] < end
    ]
    accuracy = accuracy_of(errors)
    return PromiseRow(kept_share=accuracy.kept_share, **dataclasses.asdict(accuracy))


@dataclass(frozen=True)
class ThroughputRow:
    day: date
    jobs: int  # jobs that passed QC that day
    parts: int  # copies that passed


def throughput(scope: Scope, period: Period) -> list[ThroughputRow]:
    """Jobs and copies that passed QC per day (one grouped query; days without any are 0)."""
    found = {
        row["day"]: row
        for row in scope.jobs()
        .filter(
            status=Status.DONE,
            status_changed_at__gte=period.start,
            status_changed_at__lt=period.end,
        )
        .values(day=local_date("status_changed_at", period))
        .annotate(jobs=Count("pk"), parts=Sum("qc_passed"))
        .order_by()
    }
    return [
        ThroughputRow(
            day=day,
            jobs=int(found[day]["jobs"]) if day in found else 0,
            parts=int(found[day]["parts"] or 0) if day in found else 0,
        )
        for day in period.days
    ]


# --- the whole dashboard ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    period: Period
    stages: list[StageRow]
    oee: Oee
    scrap: list[ScrapRow]
    lead_times: LeadTimes
    promises: PromiseRow
    throughput: list[ThroughputRow]

    @property
    def bottleneck(self) -> StageRow | None:
        return next((row for row in self.stages if row.bottleneck), None)


def dashboard(scope: Scope, period: Period, *, now: datetime) -> Dashboard:
    """Every figure of the manager page."""
    return Dashboard(
        period=period,
        stages=stages(scope, period, now=now),
        oee=oee(scope, period),
        scrap=scrap_trend(scope, period, now=now),
        lead_times=lead_times(scope, period),
        promises=promises(scope, period),
        throughput=throughput(scope, period),
    )
