"""The live floor view: every machine of a site at a glance, its last and next 24 hours, and
the two moves an operator makes from it (a waiting job to another capable machine, or up its
machine's queue).

Reads: `floor_read` loads everything a refresh shows in a fixed number of queries, however many
machines there are (machines, the jobs they hold, the job and machine events of the last
24 h); the rest is pure (`plan_queue`, `past_bars`), over plain values.

The plan of the next 24 h is the queue as the machines will take it (Job.QUEUE_ORDER), each job
for its G-code's estimated time times its quantity, less what is done of the running one
(production.machines.machine_queues counts a queue's time the same way), with a changeover
where the material changes (MF_CHANGEOVER_MIN, as the router plans it). A job starts only while
its site is open (production.calendars, `SiteCalendar.start_and_finish`); a site without
opening hours is open around the clock. The timeline shades the hours a site is closed.

Plates (#13): a plate is the unit a machine runs, holding copies of one or more jobs. A
machine's tile shows its running plate (number, jobs and copies, progress, ETA) and its queue
lists the plates routed to it before its plain jobs, each plate once with its own estimated
time, as production.machines.machine_queues counts a queue (plating.plate_queue_rows: in the
order they were routed). Plates keep no events of their own (lifecycle.plate_move): a plate's
past run on the timeline is its own started_at to finished_at (or, failed, to when it failed),
and the events of the jobs on plates are left out of the timeline, so a plate of three jobs
draws one bar, not three. A routed plate can be moved to another machine that can run it
(`plate_move_to_machine`: a `routed -> routed` plate move by the operator, and its jobs'
events); it is not moved up its queue (plates have no rank: `PLATE_NOT_MOVED`).

Writes: both moves lock the job, are refused with a reason (DomainError) and are recorded by
production.lifecycle: a move to another machine is a `routed -> routed` (or `dispatched ->
routed`) move by the operator, a move up the queue an event without a move ("reorder").
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from microfactory.errors import DomainError
from production import lifecycle, machines, plating, routing
from production.calendars import NeverOpen, SiteCalendar, calendars_for_sites
from production.lifecycle import By
from production.models import Job, JobEvent, Machine, MachineEvent, Plate, PlateCopy, Site

Status = Job.Status
State = Machine.State
NOT_STARTED = (Status.ROUTED, Status.DISPATCHED)
WINDOW = timedelta(hours=24)  # the timeline shows this much before and after now
DOWN = frozenset({State.OFFLINE, State.MAINTENANCE, State.ERROR})
QUEUE_SHOWN = 5  # waiting jobs and plates listed on a tile; the rest are counted
PlateStatus = Plate.Status
# Why a plate has no move buttons: it runs as a whole, its jobs with it.
PLATE_NOT_MOVED = (
    "a plate is not moved up its queue: plates run in the order they were routed; it can go "
    "to another machine that can run it (Move…), with every job on it"
)


def calendars_for(sites: Iterable[Site]) -> dict[int, SiteCalendar]:
    """The sites' opening hours and closures (production.calendars): two queries."""
    return calendars_for_sites(
        [site.pk for site in sites], zones={site.pk: site.timezone for site in sites}
    )


# --- pure: the plan and the past ------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A job waiting in a machine's queue, as the plan needs it."""

    key: str  # the job's number
    run_s: float
    material: str


@dataclass(frozen=True)
class Planned:
    key: str
    starts_at: datetime
    finishes_at: datetime
    changeover_s: float  # spent before it starts: the material changes


def plan_queue(
    waiting: Sequence[Waiting],
    *,
    free_at: datetime,
    loaded: str | None,
    changeover_s: float,
    calendar: SiteCalendar,
) -> list[Planned]:
    """When each waiting job would run, in queue order, on a machine free at `free_at` with
    `loaded` material: one after the other, with a changeover before a job in another
    material, each starting only while its site is open."""
    planned = []
    at = free_at
    for job in waiting:
        change = changeover_s if loaded is not None and job.material != loaded else 0.0
        starts, finishes = calendar.start_and_finish(at, change + job.run_s)
        planned.append(Planned(job.key, starts + timedelta(seconds=change), finishes, change))
        at, loaded = finishes, job.material
    return planned


@dataclass(frozen=True)
class Span:
    kind: str  # run, paused, down, planned, changeover, closed
    start: datetime
    end: datetime
    label: str = ""
    detail: str = ""  # more for the bar's title (a plate's jobs and copies)


@dataclass(frozen=True)
class JobChange:
    job: str  # its number
    from_status: str
    to_status: str
    at: datetime


@dataclass(frozen=True)
class StateChange:
    from_state: str
    to_state: str
    at: datetime


def past_bars(
    *,
    job_changes: Sequence[JobChange],
    state_changes: Sequence[StateChange],
    started_now: Sequence[tuple[str, str]],
    state_now: str,
    start: datetime,
    now: datetime,
) -> list[Span]:
    """What a machine did between `start` and `now`: its jobs' runs and pauses (from their
    events, in time order), and its downtime (offline, maintenance, error, from its state
    changes). `started_now` are the (number, status) of the jobs started on it and not finished:
    one with no event since `start` has been running (or paused) all along."""
    spans: list[Span] = []
    open_since: dict[str, tuple[str, datetime]] = {}  # job -> (running|paused, since)
    for change in job_changes:
        held = open_since.pop(change.job, None)
        if change.from_status in Job.STARTED:
            kind, since = held or (_kind(change.from_status), start)
            spans.append(Span(kind, since, change.at, change.job))
        if change.to_status in Job.STARTED:
            open_since[change.job] = (_kind(change.to_status), change.at)
    for number, status in started_now:
        if number not in open_since and not any(c.job == number for c in job_changes):
            open_since[number] = (_kind(status), start)
    for number, (kind, since) in open_since.items():
        spans.append(Span(kind, since, now, number))
    state, since = (state_changes[0].from_state if state_changes else state_now), start
    for moved in state_changes:
        if state in DOWN:
            spans.append(Span("down", since, moved.at, state))
        state, since = moved.to_state, moved.at
    if state in DOWN:
        spans.append(Span("down", since, now, state))
    return sorted(spans, key=lambda span: (span.start, span.kind))


def _kind(status: str) -> str:
    return "paused" if status == Status.PAUSED else "run"


@dataclass(frozen=True)
class PlateRun:
    """A plate a machine started, as its past run needs it."""

    number: str
    started_at: datetime
    ended_at: datetime | None  # finished or failed; None: still running
    failed: bool
    detail: str


def plate_runs(runs: Iterable[PlateRun], *, now: datetime) -> list[Span]:
    """The plates' runs: from their start to their finish (a failed one to its failure, one
    still running to now)."""
    return [
        Span(
            "run",
            run.started_at,
            run.ended_at or now,
            run.number,
            f"{run.detail}, failed" if run.failed else run.detail,
        )
        for run in runs
    ]


def closed_spans(calendar: SiteCalendar, start: datetime, end: datetime) -> list[Span]:
    """The hours the site is closed between `start` and `end`."""
    spans, at = [], start
    for opens, closes in calendar.open_intervals(start, end):
        if opens > at:
            spans.append(Span("closed", at, opens, "closed"))
        at = max(at, closes)
    if at < end:
        spans.append(Span("closed", at, end, "closed"))
    return spans


@dataclass(frozen=True)
class Bar:
    """A span placed on the 48-hour timeline, in percent of its width."""

    kind: str
    label: str
    title: str
    x: float
    width: float


def bars(spans: Iterable[Span], *, start: datetime, end: datetime) -> list[Bar]:
    total = (end - start).total_seconds()
    placed = []
    for span in spans:
        left, right = max(span.start, start), min(span.end, end)
        if right <= left:
            continue
        x = (left - start).total_seconds() / total * 100
        width = (right - left).total_seconds() / total * 100
        title = f"{span.label} {span.kind} {left:%d %b %H:%M}–{right:%H:%M} UTC".strip()
        if span.detail:
            title += f" ({span.detail})"
        placed.append(Bar(span.kind, span.label, title, round(x, 3), round(width, 3)))
    return placed


# --- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlateJob:
    """A job on a plate: its number, part and how many of its copies the plate holds."""

    pk: int
    number: str
    part: str
    copies: int


@dataclass(frozen=True)
class PlateOnFloor:
    plate: Plate
    jobs: tuple[PlateJob, ...]

    @property
    def number(self) -> str:
        return self.plate.number

    @property
    def copies(self) -> int:
        return sum(job.copies for job in self.jobs)

    @property
    def summary(self) -> str:
        """ "2 jobs, 7 copies", for a bar's title."""
        jobs = len(self.jobs)
        return (
            f"{jobs} job{'s' * (jobs != 1)}, {self.copies} cop{'ies' if self.copies != 1 else 'y'}"
        )


@dataclass(frozen=True)
class QueuedJob:
    job: Job
    starts_at: datetime | None  # None: the machine is down, nothing starts
    finishes_at: datetime | None
    is_plate: ClassVar[bool] = False


@dataclass(frozen=True)
class QueuedPlate:
    plate: PlateOnFloor
    starts_at: datetime | None
    finishes_at: datetime | None
    is_plate: ClassVar[bool] = True
    why_not_moved: ClassVar[str] = PLATE_NOT_MOVED


Queued = QueuedJob | QueuedPlate


@dataclass(frozen=True)
class Tile:
    machine: Machine
    current: Job | None  # running or paused on it (a plain job)
    current_plate: PlateOnFloor | None  # or the plate running on it
    progress: float | None
    eta: datetime | None  # when the current job or plate should be done
    temperatures: tuple[tuple[str, float], ...]
    material: str  # loaded: the spool on the tool, else what the machine lists
    queue: tuple[Queued, ...]  # waiting plates, then jobs, in the order it takes them
    awaiting_qc: int  # jobs (not on plates)
    plates_awaiting_qc: int
    timeline: tuple[Bar, ...]

    @property
    def queue_length(self) -> int:
        return len(self.queue)

    @property
    def queue_shown(self) -> tuple[Queued, ...]:
        return self.queue[:QUEUE_SHOWN]

    @property
    def queue_hidden(self) -> int:
        return max(0, len(self.queue) - QUEUE_SHOWN)

    @property
    def first_job_pk(self) -> int | None:
        """The first plain job waiting (it has no place up to move to: plates go before it)."""
        return next((q.job.pk for q in self.queue if isinstance(q, QueuedJob)), None)

    @property
    def is_down(self) -> bool:
        return self.machine.state in DOWN


@dataclass(frozen=True)
class SiteFloor:
    site: Site
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class Floor:
    now: datetime
    start: datetime
    end: datetime
    sites: tuple[SiteFloor, ...]
    hours: tuple[tuple[float, str], ...]  # the timeline's hour marks: (x %, "14:00")


def run_s(job: Job) -> float:
    """The job's machine time: its G-code's estimate (one copy) times its quantity."""
    return float((job.toolpath_meta or {}).get("estimated_time_s") or 0) * max(1, job.quantity)


def floor_read(sites: QuerySet[Site], *, now: datetime) -> Floor:
    """Every machine of the sites as a tile with its timeline: a fixed number of queries."""
    start, end = now - WINDOW, now + WINDOW
    site_list = list(sites.order_by("name", "pk"))
    found = list(
        Machine.objects.filter(site__in=[site.pk for site in site_list])
        .select_related("spool__material")
        .prefetch_related("materials_loaded")
        .order_by("name", "pk")
    )
    ids = [machine.pk for machine in found]
    held: dict[int, list[Job]] = {}
    awaiting_qc: dict[int, int] = {}
    on_a_plate = Exists(PlateCopy.objects.filter(job=OuterRef("pk")))
    for job in (
        Job.objects.filter(machine_id__in=ids, status__in=(*Job.ON_MACHINE, Status.AWAITING_QC))
        # A job on plates runs, and is QC'd, with its plates (read below).
        .filter(~on_a_plate)
        .select_related("line__revision__family", "line__material")
        .order_by(*Job.QUEUE_ORDER)
    ):
        assert job.machine_id is not None
        if job.status == Status.AWAITING_QC:
            awaiting_qc[job.machine_id] = awaiting_qc.get(job.machine_id, 0) + 1
        else:
            held.setdefault(job.machine_id, []).append(job)
    job_changes: dict[int, list[JobChange]] = {}
    events = (
        JobEvent.objects.filter(job__machine_id__in=ids, finished_at__gte=start)
        .filter(Q(from_status__in=Job.STARTED) | Q(to_status__in=Job.STARTED))
        # A plate's run is drawn once, from the plate (its jobs' events would draw it again).
        .filter(~Exists(PlateCopy.objects.filter(job=OuterRef("job_id"))))
        .order_by("finished_at", "pk")
        .values_list("job_id", "job__machine_id", "from_status", "to_status", "finished_at")
    )
    for job_id, machine_id, source, to, at in events:
        number = Job(pk=job_id).number
        job_changes.setdefault(machine_id, []).append(JobChange(number, source, to, at))
    state_changes: dict[int, list[StateChange]] = {}
    for machine_id, source, to, at in (
        MachineEvent.objects.filter(machine_id__in=ids, at__gte=start)
        .order_by("at", "pk")
        .values_list("machine_id", "from_state", "to_state", "at")
    ):
        state_changes.setdefault(machine_id, []).append(StateChange(source, to, at))
    plates = _plates_read(ids, start=start)
    calendars = calendars_for(site_list)
    changeover = machines.changeover_s()
    by_site: dict[int, list[Tile]] = {site.pk: [] for site in site_list}
    for machine in found:
        jobs = held.get(machine.pk, [])
        tile = _tile(
            machine,
            jobs=jobs,
            plates=plates.get(machine.pk, []),
            awaiting_qc=awaiting_qc.get(machine.pk, 0),
            job_changes=job_changes.get(machine.pk, []),
            state_changes=state_changes.get(machine.pk, []),
            calendar=calendars[machine.site_id],
            changeover_s=changeover,
            now=now,
        )
        by_site[machine.site_id].append(tile)
    hours = []
    mark = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while mark < end:
        if mark.hour % 6 == 0:
            x = (mark - start).total_seconds() / (end - start).total_seconds() * 100
            if 2 < x < 98:  # a label at either end would be cut in half
                hours.append((round(x, 3), f"{mark:%H:%M}"))
        mark += timedelta(hours=1)
    return Floor(
        now=now,
        start=start,
        end=end,
        sites=tuple(SiteFloor(site, tuple(by_site[site.pk])) for site in site_list),
        hours=tuple(hours),
    )


def _plates_read(machine_ids: list[int], *, start: datetime) -> dict[int, list[PlateOnFloor]]:
    """{machine id: its plates}: routed, running or waiting for QC, and those that ran there
    since `start`, in the order the machine takes them (plating.plate_queue_rows), with their
    jobs and copies. Two queries."""
    found = list(
        Plate.objects.filter(machine_id__in=machine_ids)
        .filter(
            Q(status__in=(*Plate.ON_MACHINE, PlateStatus.FINISHED))
            | Q(started_at__isnull=False, status_changed_at__gte=start)
        )
        .select_related("material")
        .order_by("status_changed_at", "pk")
    )
    copies: dict[int, dict[int, list[Any]]] = {plate.pk: {} for plate in found}
    for plate_id, job_id, part in (
        PlateCopy.objects.filter(plate_id__in=list(copies))
        .order_by("plate_id", "job_id", "number")
        .values_list("plate_id", "job_id", "job__line__revision__family__name")
    ):
        counted = copies[plate_id].setdefault(job_id, [part, 0])
        counted[1] += 1
    by_machine: dict[int, list[PlateOnFloor]] = {}
    for plate in found:
        assert plate.machine_id is not None
        jobs = tuple(
            PlateJob(job_id, Job(pk=job_id).number, part, count)
            for job_id, (part, count) in copies[plate.pk].items()
        )
        by_machine.setdefault(plate.machine_id, []).append(PlateOnFloor(plate, jobs))
    return by_machine


def plate_eta(plate: Plate, *, now: datetime) -> datetime:
    """When a running plate should be done: what is left by the progress reported, or, with
    none reported (a machine run by hand), its estimated time from its start (never before
    now: an overdue plate is due now)."""
    estimate = timedelta(seconds=plate.estimated_time_s)
    if plate.progress:
        return now + estimate * (1 - min(plate.progress, 100.0) / 100)
    return max((plate.started_at or now) + estimate, now)


def _waiting(job: Job | None, plate: PlateOnFloor | None) -> Waiting:
    if plate is not None:  # a plate runs once, for its own time (not its jobs' quantities)
        return Waiting(plate.number, float(plate.plate.estimated_time_s), plate.plate.material.slug)
    assert job is not None
    return Waiting(job.number, run_s(job), job.line.material.slug)


def _tile(
    machine: Machine,
    *,
    jobs: list[Job],
    plates: list[PlateOnFloor],
    awaiting_qc: int,
    job_changes: list[JobChange],
    state_changes: list[StateChange],
    calendar: SiteCalendar,
    changeover_s: float,
    now: datetime,
) -> Tile:
    start, end = now - WINDOW, now + WINDOW
    started = [job for job in jobs if job.status in Job.STARTED]
    waiting = [job for job in jobs if job.status in NOT_STARTED]
    running_plates = [p for p in plates if p.plate.status == PlateStatus.RUNNING]
    waiting_plates = [p for p in plates if p.plate.status == PlateStatus.ROUTED]
    current_plate = running_plates[0] if running_plates else None
    current = started[0] if started and current_plate is None else None
    progress = None
    if current is not None:
        progress = current.progress if current.progress is not None else machine.progress
    elif current_plate is not None:
        reported = current_plate.plate.progress
        progress = reported if reported is not None else machine.progress
    spool = getattr(machine, "spool", None)
    if spool is not None:
        material: str = spool.material.name
        loaded: str | None = spool.material.slug
    else:
        listed = list(machine.materials_loaded.all())
        material = ", ".join(m.name for m in listed)
        loaded = listed[0].slug if len(listed) == 1 else None
    spans = past_bars(
        job_changes=job_changes,
        state_changes=state_changes,
        started_now=[(job.number, job.status) for job in started],
        state_now=machine.state,
        start=start,
        now=now,
    )
    spans += closed_spans(calendar, start, end)
    spans += plate_runs(
        (
            PlateRun(
                p.number,
                p.plate.started_at,
                p.plate.finished_at
                or (None if p.plate.status == PlateStatus.RUNNING else p.plate.status_changed_at),
                p.plate.status == PlateStatus.FAILED,
                p.summary,
            )
            for p in plates
            if p.plate.started_at is not None
        ),
        now=now,
    )
    eta = None
    # The machine's order (machines.machine_queues): its plates as routed, then its jobs.
    order: list[tuple[Job | None, PlateOnFloor | None]] = [
        *((None, p) for p in waiting_plates),
        *((job, None) for job in waiting),
    ]
    queue: list[Queued] = []

    def queued(job: Job | None, plate: PlateOnFloor | None, at: Planned | None) -> Queued:
        starts, finishes = (at.starts_at, at.finishes_at) if at else (None, None)
        if plate is not None:
            return QueuedPlate(plate, starts, finishes)
        assert job is not None
        return QueuedJob(job, starts, finishes)

    if machine.state in DOWN:
        queue = [queued(job, plate, None) for job, plate in order]
    else:
        if current_plate is not None:
            eta = plate_eta(current_plate.plate, now=now)
            spans.append(Span("planned", now, eta, current_plate.number, current_plate.summary))
            loaded = current_plate.plate.material.slug
        elif current is not None:
            remaining = run_s(current) * (1 - min(progress or 0.0, 100.0) / 100)
            eta = now + timedelta(seconds=remaining)
            spans.append(Span("planned", now, eta, current.number))
            loaded = current.line.material.slug
        free_at = eta or now
        try:
            plan = plan_queue(
                [_waiting(job, plate) for job, plate in order],
                free_at=free_at,
                loaded=loaded,
                changeover_s=changeover_s,
                calendar=calendar,
            )
        except NeverOpen:  # no open hour in the coming year: nothing is planned there
            plan = []
            queue = [queued(job, plate, None) for job, plate in order]
        for (job, plate), planned in zip(order, plan, strict=False):
            queue.append(queued(job, plate, planned))
            if planned.changeover_s:
                before = planned.starts_at - timedelta(seconds=planned.changeover_s)
                spans.append(Span("changeover", before, planned.starts_at, "change"))
            detail = plate.summary if plate is not None else ""
            spans.append(
                Span("planned", planned.starts_at, planned.finishes_at, planned.key, detail)
            )
    temperatures = tuple(
        (str(name), float(value))
        for name, value in sorted((machine.temperatures or {}).items())
        if isinstance(value, int | float)
    )
    return Tile(
        machine=machine,
        current=current,
        current_plate=current_plate,
        progress=progress,
        eta=eta,
        temperatures=temperatures,
        material=material,
        queue=tuple(queue),
        awaiting_qc=awaiting_qc,
        plates_awaiting_qc=sum(p.plate.status == PlateStatus.FINISHED for p in plates),
        timeline=tuple(bars(spans, start=start, end=end)),
    )


# --- the two moves --------------------------------------------------------------------------


def _locked_waiting(job_id: int) -> Job:
    job = (
        Job.objects.select_for_update(of=("self",))
        .select_related("machine__site", "line__material", "line__order__delivery_site")
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        raise DomainError(f"no job {job_id}")
    if job.status not in NOT_STARTED or job.machine is None:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; only a job waiting in a machine's "
            "queue can be moved"
        )
    return job


def _refuse_sent(job: Job, machine: Machine) -> None:
    if job.status == Status.DISPATCHED and machine.is_connected:
        raise DomainError(
            f"{job.number} has been sent to {machine.name} ({machine.get_connector_display()}) "
            "and starts there: it can no longer be moved"
        )


def why_not(job: routing.JobNeeds, machine: routing.MachineFacts) -> str | None:
    """Why the machine cannot make the job (routing.can_make's tests, in words); None: it can."""
    if routing.can_make(job, machine):
        return None
    x, y, z = job.extents_mm
    if machine.process != job.process:
        return f"it is a {machine.process} machine, the job needs {job.process}"
    if job.material not in machine.materials and job.material not in machine.loadable:
        return f"it has no {job.material} loaded or on its shelf"
    if job.allowed_machines is not None and machine.key not in job.allowed_machines:
        return "the job's DFM report did not find it capable"
    if job.profile_key is not None and machine.profile_key != job.profile_key:
        return "the job's G-code was planned for another machine profile"
    if job.nozzle_mm is not None and machine.nozzle_mm != job.nozzle_mm:
        return f"its nozzle is {machine.nozzle_mm:g} mm, the G-code's {job.nozzle_mm:g} mm"
    return f"a part of {x:.0f} x {y:.0f} x {z:.0f} mm does not fit its build volume"


def _refusal(job: Job | Plate, needs: routing.JobNeeds, target: routing.MachineFacts) -> str | None:
    """Why the job (or plate) cannot go to the target machine now, or None."""
    cannot = why_not(needs, target)
    if cannot is not None:
        return f"{target.name} cannot make {job.number}: {cannot}"
    if routing.transit_s(needs, target) is None:
        return f"{target.name} cannot make {job.number}: " + routing.not_deliverable(
            needs, [target]
        )
    if target.state not in routing.AVAILABLE_STATES:
        return f"{target.name} is {target.state}: it takes no work"
    if target.is_full:
        return f"{target.name}'s queue is full ({target.queued_jobs} of {target.queue_limit} jobs)"
    if not routing.spool_can_finish(needs, target):
        return (
            f"{target.name}'s spool cannot finish {job.number}: {target.spool_remaining_g or 0:.0f}"
            f" g free, {target.spool_reserve_g:.0f} g kept in reserve, {needs.filament_g:.0f} g "
            "needed"
        )
    return None


def move_targets(job: Job, candidates: Iterable[Machine]) -> list[tuple[Machine, str | None]]:
    """The machines a waiting job could be moved to, each with why it cannot take it now
    (None: it can), capable ones first: what the move form offers."""
    needs = machines.job_needs(job)
    facts = {fact.key: fact for fact in machines.routing_facts(process=needs.process)}
    options = []
    for machine in candidates:
        fact = facts.get(machine.slug)
        if fact is None or machine.pk == job.machine_id:
            continue
        options.append((machine, _refusal(job, needs, fact)))
    return sorted(options, key=lambda option: (option[1] is not None, option[0].name))


@transaction.atomic
def job_move_to_machine(
    *, job_id: int, machine_id: int, operator: AbstractBaseUser, now: datetime
) -> Job:
    """Move a job waiting at one machine to the end of another's queue: refused unless that
    machine could make it (the router's capability check), delivers to its site, takes work
    and has room. Under the router's lock, so a routing pass at once never overfills it."""
    machines.lock_routing()
    job = _locked_waiting(job_id)
    source = job.machine
    assert source is not None
    _refuse_sent(job, source)
    target = Machine.objects.select_for_update().select_related("site").filter(pk=machine_id)
    machine = target.first()
    if machine is None:
        raise DomainError(f"no machine {machine_id}")
    if machine.pk == source.pk:
        raise DomainError(f"{job.number} is already at {machine.name}")
    needs = machines.job_needs(job)
    facts = {fact.key: fact for fact in machines.routing_facts(process=needs.process)}
    fact = facts.get(machine.slug)
    refusal = (
        f"{machine.name} cannot make {job.number}: it is not a {needs.process} machine"
        if fact is None
        else _refusal(job, needs, fact)
    )
    if refusal is not None:
        raise DomainError(refusal)
    fields: dict[str, Any] = {"machine": machine, "queue_rank": None}
    if machine.site_id != source.site_id:
        # Customers read it on their order: site names only.
        fields["route_reason"] = f"{machine.site.name}: moved there by the factory"
    lifecycle.job_move(
        job,
        to=Status.ROUTED,
        by=By.OPERATOR,
        step="move",
        actor=operator.get_username(),
        now=now,
        message=f"moved from {source.name} to {machine.name} on the floor view",
        **fields,
    )
    machines.dispatch_on_commit(machine.pk)
    return job


@transaction.atomic
def job_move_up(
    *, job_id: int, operator: AbstractBaseUser, now: datetime, to_front: bool = False
) -> int:
    """Move a waiting job one place up its machine's queue (or to its front); its new place,
    1 first. The whole queue is ranked in its new order, so later routing appends after it."""
    job = _locked_waiting(job_id)
    machine = job.machine
    assert machine is not None
    _refuse_sent(job, machine)
    # A networked printer's dispatched job is on the printer already: the queue is behind it.
    movable = (Status.ROUTED,) if machine.is_connected else NOT_STARTED
    queue = list(
        Job.objects.select_for_update()
        .filter(machine=machine, status__in=movable)
        .order_by(*Job.QUEUE_ORDER)
        .values_list("pk", flat=True)
    )
    place = queue.index(job.pk)
    if place == 0:
        raise DomainError(f"{job.number} is already first in {machine.name}'s queue")
    queue.pop(place)
    queue.insert(0 if to_front else place - 1, job.pk)
    for rank, pk in enumerate(queue, start=1):
        Job.objects.filter(pk=pk).update(queue_rank=rank)
    new_place = queue.index(job.pk) + 1
    lifecycle.job_record(
        job,
        step="reorder",
        actor=operator.get_username(),
        now=now,
        message=f"moved up to #{new_place} of {len(queue)} in {machine.name}'s queue "
        "on the floor view",
    )
    return new_place


# --- a plate to another machine -------------------------------------------------------------


def _plate_refusal(
    plate: Plate, needs: routing.JobNeeds, machine: Machine, fact: routing.MachineFacts | None
) -> str | None:
    if machine.connector != Machine.Connector.MANUAL:
        return (
            f"{machine.name} cannot run {plate.number}: plates are started at the station, "
            "on machines run by hand"
        )
    if fact is None:
        return f"{machine.name} cannot run {plate.number}: it is not a {needs.process} machine"
    return _refusal(plate, needs, fact)


def plate_move_targets(
    plate: Plate, jobs: Sequence[Job], candidates: Iterable[Machine]
) -> list[tuple[Machine, str | None]]:
    """The machines a routed plate could be moved to, each with why it cannot take it now
    (None: it can), capable ones first."""
    needs = plating.plate_needs(plate, jobs, transit=machines.transit_table())
    facts = {fact.key: fact for fact in machines.routing_facts(process=needs.process)}
    options = [
        (machine, _plate_refusal(plate, needs, machine, facts.get(machine.slug)))
        for machine in candidates
        if machine.pk != plate.machine_id and machine.process == needs.process
    ]
    return sorted(options, key=lambda option: (option[1] is not None, option[0].name))


@transaction.atomic
def plate_move_to_machine(
    *, plate_id: int, machine_id: int, operator: AbstractBaseUser, now: datetime
) -> Plate:
    """Move a plate routed to one machine, not started, to the end of another's queue:
    refused unless that machine could run it (the router's check over every job on it: the
    same machine profile, material, size, DFM reports, delivery; run by hand), takes work and
    has room. Its jobs waiting with it there go along (`routed -> routed`, step "move"); a job
    that stays (it runs, or waits elsewhere, with another of its plates) gets a "plate-move"
    event: plates keep no events, their jobs' say what happened to them."""
    machines.lock_routing()
    plate = (
        Plate.objects.select_for_update(of=("self",))
        .select_related("machine__site")
        .filter(pk=plate_id)
        .first()
    )
    if plate is None:
        raise DomainError(f"no plate {plate_id}")
    source = plate.machine
    if plate.status != PlateStatus.ROUTED or source is None:
        raise DomainError(
            f"{plate.number} is {plate.get_status_display()}; only a plate waiting in a "
            "machine's queue can be moved"
        )
    machine = Machine.objects.select_for_update().select_related("site").filter(pk=machine_id)
    target = machine.first()
    if target is None:
        raise DomainError(f"no machine {machine_id}")
    if target.pk == source.pk:
        raise DomainError(f"{plate.number} is already at {target.name}")
    jobs = plating.plate_jobs([plate])[plate.pk]
    if not jobs:
        raise DomainError(f"{plate.number} holds no copies")
    needs = plating.plate_needs(plate, jobs, transit=machines.transit_table())
    facts = {fact.key: fact for fact in machines.routing_facts(process=needs.process)}
    refusal = _plate_refusal(plate, needs, target, facts.get(target.slug))
    if refusal is not None:
        raise DomainError(refusal)
    actor = operator.get_username()
    what = f"{plate.number} moved from {source.name} to {target.name} on the floor view"
    reason = f"{target.site.name}: moved there by the factory"
    lifecycle.plate_move(
        plate,
        to=PlateStatus.ROUTED,
        by=By.OPERATOR,
        actor=actor,
        now=now,
        message=what,
        machine=target,
        **({"route_reason": reason} if target.site_id != source.site_id else {}),
    )
    for job in jobs:
        if job.status in NOT_STARTED and job.machine_id == source.pk:
            fields: dict[str, Any] = {"machine": target, "queue_rank": None}
            if target.site_id != source.site_id:
                fields["route_reason"] = reason
            lifecycle.job_move(
                job, to=Status.ROUTED, by=By.OPERATOR, step="move", actor=actor, now=now,
                message=f"on {what}", **fields,
            )  # fmt: skip
        else:
            lifecycle.job_record(job, step="plate-move", actor=actor, now=now, message=what)
    return plate
