"""The one owner of Job.status, JobEvent, Machine.state and MachineEvent.

Every move of a job and every change of a machine's state goes through `job_move`,
`job_create` or `machine_move` (and, for history that already happened, `history_record`):
nothing else in the project writes those fields or those rows
(tests/production/test_lifecycle.py greps for it).

A move is a conditional UPDATE (`... WHERE status = <the status the caller saw>`) and its
event, in one transaction: two workers racing for the same move make it once; the loser gets
False and changes nothing. A move the table below does not allow, or allows to someone else,
raises `DomainError` (a bug in the caller, or a refusal an interface turns into a 4xx).

Who moves a job (`By`):
- PIPELINE  the worker running the steps (build, validate, toolpath, traveler)
- ROUTER    the one batch router (production.machines.jobs_route_waiting)
- MACHINE   a networked machine (telemetry, our poller) and the dispatcher
- OPERATOR  a person at the station (start, pause, finish, QC, scrap, resume, withdraw)
- CUSTOMER  the ordering side: a placed order creates jobs, a cancelled one cancels them
- SYSTEM    the failure handler, the reconciler and the sweeper (a machine gone silent)
"""

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as time_of_day
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from microfactory.errors import DomainError
from production.dashboards.cache import dashboard_changed, sites_changed
from production.models import Job, JobEvent, Machine, MachineEvent, Plate, PlateCopy, Site

logger = logging.getLogger(__name__)

Status = Job.Status
State = Machine.State


class By(enum.StrEnum):
    PIPELINE = "pipeline"
    ROUTER = "router"
    MACHINE = "machine"
    OPERATOR = "operator"
    CUSTOMER = "customer"
    SYSTEM = "system"


# The statuses before a machine, in order: the worker runs one step from each of the first
# three; from toolpath_ready (the G-code verified) the job waits for the batch router while
# its traveler is rendered beside it, in a task of its own that moves nothing (#19: routing
# never waits for a PDF).
PIPELINE = (
    Status.QUEUED,
    Status.GEOMETRY_BUILT,
    Status.VALIDATED,
    Status.TOOLPATH_READY,
)
# Waiting for the batch router. traveler_ready is where jobs waited for it before #19, after a
# traveler step: no job enters it any more, and one still there is routed all the same.
TO_ROUTE = (Status.TOOLPATH_READY, Status.TRAVELER_READY)
BEFORE_A_MACHINE = (*PIPELINE, Status.TRAVELER_READY)
NOT_STARTED = (Status.ROUTED, Status.DISPATCHED)
CREATED = ""  # the from-status of a job's first event
PAST = timedelta(minutes=1)  # a move dated earlier than this before the clock is history


def _moves() -> dict[tuple[str, str], frozenset[By]]:
    table: dict[tuple[str, str], set[By]] = {}

    def allow(sources: tuple[str, ...] | str, to: str, *who: By) -> None:
        for source in (sources,) if isinstance(sources, str) else sources:
            table.setdefault((source, to), set()).update(who)

    # A job is born queued (an order line, a scrapped job's remake) or, remaking a job that
    # failed on its machine, with that job's geometry and G-code: from the traveler step.
    allow(CREATED, Status.QUEUED, By.CUSTOMER, By.OPERATOR)
    allow(CREATED, Status.TOOLPATH_READY, By.SYSTEM, By.MACHINE, By.OPERATOR)
    # The pipeline, one step at a time, to the router; an unmakeable part is rejected, a crash
    # fails it.
    for before, after in zip(PIPELINE, PIPELINE[1:], strict=False):
        allow(before, after, By.PIPELINE)
    allow(BEFORE_A_MACHINE, Status.REJECTED, By.PIPELINE)
    allow(BEFORE_A_MACHINE, Status.FAILED, By.PIPELINE, By.SYSTEM)
    # The one batch router routes a job whose G-code is verified, or finds no machine could
    # ever make it; the pipeline's own steps never route.
    allow(TO_ROUTE, Status.ROUTED, By.ROUTER)
    allow(TO_ROUTE, Status.REJECTED, By.ROUTER)
    # At the machine.
    allow(Status.ROUTED, Status.DISPATCHED, By.MACHINE)
    allow(Status.ROUTED, Status.FAILED, By.MACHINE)  # nothing to send: never loop on it
    allow(Status.DISPATCHED, Status.ROUTED, By.MACHINE)  # upload failed, or never started: resend
    allow(NOT_STARTED, Status.TOOLPATH_READY, By.MACHINE, By.SYSTEM, By.OPERATOR)  # re-route
    # On the floor view an operator moves a job not started to another capable machine
    # (production.floor.job_move_to_machine): routed there, as the router would have.
    allow(NOT_STARTED, Status.ROUTED, By.OPERATOR)
    allow(NOT_STARTED, Status.RUNNING, By.OPERATOR, By.MACHINE)
    allow(Status.RUNNING, Status.PAUSED, By.OPERATOR, By.MACHINE)
    allow(Status.PAUSED, Status.RUNNING, By.OPERATOR, By.MACHINE)
    allow(Status.RUNNING, Status.AWAITING_QC, By.OPERATOR, By.MACHINE)
    # A machine that dies (or cancels) mid-run fails the job; a replacement remakes it.
    allow((Status.DISPATCHED, Status.RUNNING, Status.PAUSED), Status.FAILED, By.MACHINE, By.SYSTEM)
    allow((Status.DISPATCHED, Status.RUNNING, Status.PAUSED), Status.FAILED, By.OPERATOR)
    # QC at the station; a paused print that went wrong is scrapped whole.
    allow(Status.AWAITING_QC, Status.DONE, By.OPERATOR)
    allow((Status.AWAITING_QC, Status.PAUSED), Status.SCRAPPED, By.OPERATOR)
    # The part of a job failed on a dying machine turned out fine (job_resume).
    allow(Status.FAILED, Status.AWAITING_QC, By.OPERATOR)
    # Not started yet: the customer cancels, or an operator withdraws a replacement.
    allow((*BEFORE_A_MACHINE, *NOT_STARTED), Status.CANCELLED, By.CUSTOMER, By.OPERATOR)
    return {move: frozenset(who) for move, who in table.items()}


# (from status, to status) -> who may make the move. A move not in the table is refused.
TRANSITIONS: dict[tuple[str, str], frozenset[By]] = _moves()
# Jobs in these statuses wait for a message: the worker's next step or the batch router.
RUNS_A_STEP = frozenset(PIPELINE)
# Events that move nothing: Job.measurements changes at QC, and a job moved up its machine's
# queue on the floor view (production.floor.job_move_up); the event is recorded all the same.
# "plate-move": a plate the job has copies on moved to another machine while the job itself
# stays where it is (it runs, or waits, with another of its plates): plates keep no events.
# "plate-remake": a plate not started was made again without copies of cancelled jobs (each
# job on it, and each cancelled one, says so). "traveler": its traveler PDF was rendered
# (production.runner.job_traveler_render), wherever the job is by then (usually routed).
SAME_STATUS_STEPS = frozenset({"measure", "reorder", "plate-move", "plate-remake", "traveler"})


def may_move(source: str, to: str, by: By) -> bool:
    return by in TRANSITIONS.get((source, to), frozenset())


def _check(source: str, to: str, by: By, *, what: str) -> None:
    if not may_move(source, to, by):
        raise DomainError(f"{what} cannot go from {source or 'nothing'} to {to} (by {by})")


def job_move(
    job: Job,
    *,
    to: str,
    by: By,
    step: str,
    actor: str,
    now: datetime,
    message: str = "",
    step_started_at: datetime | None = None,
    duration_ms: int = 0,
    **fields: Any,
) -> bool:
    """Move the job from the status it has in memory to `to`, with its event; False (and
    nothing written) if the job moved meanwhile. Refused by the table: DomainError.

    Extra keyword arguments are other Job fields written in the same UPDATE. On success the
    instance is updated too. `step_started_at` and `duration_ms` time the step in the event.
    A second call with the same stale instance returns False.
    """
    source = job.status
    _check(source, to, by, what=job.number)
    site_change = _site_change(job, fields)
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job.pk, status=source).update(
            status=to, status_changed_at=now, **fields
        )
        if not claimed:
            return False
        if site_change:
            jobs_changed_site(jobs=Job.objects.filter(pk=job.pk), site_ids=site_change, now=now)
        _event(
            job,
            step=step,
            source=source,
            to=to,
            actor=actor,
            now=now,
            message=message,
            started_at=step_started_at,
            duration_ms=duration_ms,
        )
    job.status, job.status_changed_at = to, now
    for name, value in fields.items():
        setattr(job, name, value)
    return True


def _site_change(job: Job, fields: Mapping[str, Any]) -> tuple[int | None, int | None] | None:
    """The (old, new) site of a move that changes the job's machine to another site's (or to
    none, or from none); None if the job stays at its site."""
    if "machine" in fields:
        machine = fields["machine"]
        new_id = machine.pk if machine is not None else None
    elif "machine_id" in fields:
        machine, new_id = None, fields["machine_id"]
    else:
        return None
    if new_id == job.machine_id:
        return None
    wanted = {pk for pk in (job.machine_id, new_id) if pk is not None}
    if machine is not None:
        wanted.discard(machine.pk)
    sites = (
        dict(Machine.objects.filter(pk__in=wanted).values_list("pk", "site_id")) if wanted else {}
    )
    if machine is not None:
        sites[machine.pk] = machine.site_id
    old, new = sites.get(job.machine_id or 0), sites.get(new_id or 0)
    return (old, new) if old != new else None


def _latest_midnight(now: datetime) -> datetime:
    """The last midnight before now in any time zone a dashboard counts days in (the
    factory's and the sites'): an event before it may be on a day that has ended, and kept."""
    reference = max(now, timezone.now())
    zones = {
        timezone.get_default_timezone(),
        timezone.get_current_timezone(),
        *(ZoneInfo(name) for name in Site.objects.values_list("timezone", flat=True).distinct()),
    }
    return max(
        datetime.combine(reference.astimezone(zone).date(), time_of_day(), tzinfo=zone)
        for zone in zones
    )


def jobs_changed_site(
    *, jobs: QuerySet[Job], site_ids: Iterable[int | None], now: datetime
) -> None:
    """The jobs left one of `site_ids` for another (re-routed, moved on the floor, taken off a
    machine, cancelled, their machine moved to another site). The dashboard counts a job's
    events at the site of its current machine, so the kept stage days of those sites are
    stale if one of the jobs has an event on a day that may have ended; a job whose events are
    all of today (routed the day it was ordered) changes no kept day. Called by job_move and
    the machine admin; a second call only makes the next dashboard read compute again."""
    sites = {site_id for site_id in site_ids if site_id is not None}
    if not sites:
        return  # only the floor of every site (staff) counts jobs without a site: unchanged
    before = JobEvent.objects.filter(job__in=jobs, finished_at__lt=_latest_midnight(now))
    if before.exists():
        sites_changed(sites)
        transaction.on_commit(lambda: sites_changed(sites))


def job_record(
    job: Job,
    *,
    step: str,
    actor: str,
    now: datetime,
    message: str,
    step_started_at: datetime | None = None,
    duration_ms: int = 0,
) -> None:
    """An event that moves nothing (a measurement at QC, a traveler rendered): the job's
    status stays. `step_started_at` and `duration_ms` time the work it records."""
    if step not in SAME_STATUS_STEPS:
        raise DomainError(f"{step} is not an event without a move")
    _event(
        job,
        step=step,
        source=job.status,
        to=job.status,
        actor=actor,
        now=now,
        message=message,
        started_at=step_started_at,
        duration_ms=duration_ms,
    )


def job_create(
    *,
    by: By,
    step: str,
    actor: str,
    now: datetime,
    message: str,
    status: str = Status.QUEUED,
    **fields: Any,
) -> Job:
    """A new job (line, quantity and whatever else in `fields`) in `status`, with its first
    event. Call inside a transaction; enqueueing it is the caller's on-commit hook."""
    return jobs_create(
        by=by, step=step, actor=actor, now=now, new=[(message, fields)], status=status
    )[0]


def jobs_create(
    *,
    by: By,
    step: str,
    actor: str,
    now: datetime,
    new: Sequence[tuple[str, Mapping[str, Any]]],
    status: str = Status.QUEUED,
) -> list[Job]:
    """New jobs in `status`, one per (message of its first event, its fields) of `new`, each
    with its first event: two INSERTs however many jobs (an order's lines). Call inside a
    transaction; enqueueing them is the caller's on-commit hook."""
    _check(CREATED, status, by, what="a new job")
    if now < timezone.now() - PAST:
        _dashboard_changed()  # as _event: a job created in the past falls on a kept day
    with transaction.atomic(savepoint=False):
        jobs = Job.objects.bulk_create(
            [Job(status=status, status_changed_at=now, **fields) for _, fields in new]
        )
        JobEvent.objects.bulk_create(
            [
                JobEvent(
                    job=job,
                    step=step,
                    from_status=CREATED,
                    to_status=status,
                    actor=actor[:150],
                    started_at=now,
                    finished_at=now,
                    duration_ms=0,
                    message=message[:2000],
                )
                for job, (message, _) in zip(jobs, new, strict=True)
            ]
        )
    return jobs


def _event(
    job: Job,
    *,
    step: str,
    source: str,
    to: str,
    actor: str,
    now: datetime,
    message: str,
    started_at: datetime | None = None,
    duration_ms: int = 0,
) -> JobEvent:
    if source != to and now < timezone.now() - PAST:
        # A move dated in the past (a replay, not the floor's own moves, which are dated now)
        # may fall on a day the dashboard keeps (production.dashboards.cache).
        _dashboard_changed()
    return JobEvent.objects.create(
        job=job,
        step=step,
        from_status=source,
        to_status=to,
        actor=actor[:150],
        started_at=started_at or now,
        finished_at=now,
        duration_ms=max(0, duration_ms),
        message=message[:2000],
    )


# --- machines -------------------------------------------------------------------------------


# The loss a state implies when the caller names none (MachineEvent.loss); idle is decided
# by the machine's queue (_loss_of).
DOWN_STATES = frozenset({State.OFFLINE, State.ERROR, State.MAINTENANCE})
Loss = MachineEvent.Loss


def _loss_of(machine: Machine, to: str) -> str:
    """The typed loss of a move to `to` that names none: down, paused by the operator, and for
    idle "no work" when nothing waits at the machine (else "idle with work queued")."""
    if to == State.IDLE:
        queued = Job.objects.filter(machine_id=machine.pk, status__in=NOT_STARTED).exists()
        return Loss.WAITING if queued else Loss.NO_WORK
    return _past_loss(to)


def _past_loss(to: str) -> str:
    if to in DOWN_STATES:
        return Loss.DOWN
    if to == State.PAUSED:
        return Loss.PAUSED
    return Loss.NO_WORK if to == State.IDLE else Loss.NONE


def machine_move(
    machine: Machine,
    *,
    to: str,
    actor: str,
    now: datetime,
    reason: str = "",
    loss: str | None = None,
    **fields: Any,
) -> bool:
    """Change the machine's state from the one it has in memory, with its MachineEvent;
    True if it changed. Extra keyword arguments are other Machine fields (current job,
    progress, error text), written in the same UPDATE; when the machine is already `to` they
    are written without an event. False, and nothing written, if the state changed meanwhile.

    `loss` types the time from this event on for the dashboard's OEE (MachineEvent.Loss, e.g.
    "material" for a machine stopped for a spool); None infers it from the new state.
    """
    if to not in State.values:
        raise DomainError(f"unknown machine state {to!r}")
    if loss is not None and loss not in Loss.values:
        raise DomainError(f"unknown machine loss {loss!r}")
    source = machine.state
    if source == to:
        if fields:
            Machine.objects.filter(pk=machine.pk).update(**fields)
            for name, value in fields.items():
                setattr(machine, name, value)
        return False
    with transaction.atomic():
        claimed = Machine.objects.filter(pk=machine.pk, state=source).update(
            state=to, state_changed_at=now, **fields
        )
        if not claimed:
            return False
        # The dashboard keeps finished days of machine time (production.dashboards.cache):
        # a machine's first change rewrites its past (read until now as its current state),
        # and a change dated before today rewrites a finished day.
        if timezone.localdate(now) < timezone.localdate() or not (
            MachineEvent.objects.filter(machine_id=machine.pk).exists()
        ):
            _dashboard_changed()
        MachineEvent.objects.create(
            machine=machine,
            from_state=source,
            to_state=to,
            actor=actor[:150],
            at=now,
            reason=reason[:2000],
            loss=_loss_of(machine, to) if loss is None else loss,
        )
    machine.state, machine.state_changed_at = to, now
    for name, value in fields.items():
        setattr(machine, name, value)
    logger.info("%s: %s -> %s (%s)", machine.name, source, to, reason or actor)
    return True


# --- plates (#13) ---------------------------------------------------------------------------
# A plate is born ready (program and traveler made), routed as a whole, run, finished, and done
# once every copy on it has its QC. Its jobs move with it through job_move (production.plating).

PlateStatus = Plate.Status


def _plate_moves() -> dict[tuple[str, str], frozenset[By]]:
    table: dict[tuple[str, str], set[By]] = {}

    def allow(sources: tuple[str, ...] | str, to: str, *who: By) -> None:
        for source in (sources,) if isinstance(sources, str) else sources:
            table.setdefault((source, to), set()).update(who)

    allow(CREATED, PlateStatus.READY, By.PIPELINE)
    allow(PlateStatus.READY, PlateStatus.ROUTED, By.ROUTER)
    # Its machine went down before starting it, or an operator sends it elsewhere.
    allow(PlateStatus.ROUTED, PlateStatus.READY, By.MACHINE, By.SYSTEM, By.OPERATOR)
    # On the floor view an operator moves a plate not started to another machine that can run
    # it (production.floor.plate_move_to_machine): routed there, its jobs with it.
    allow(PlateStatus.ROUTED, PlateStatus.ROUTED, By.OPERATOR)
    allow(PlateStatus.ROUTED, PlateStatus.RUNNING, By.OPERATOR, By.MACHINE)
    allow(PlateStatus.RUNNING, PlateStatus.FINISHED, By.OPERATOR, By.MACHINE)
    # A networked printer's plate runs from its dispatch; the upload failed, or the printer
    # never started it: it goes back to its machine's queue, to be sent again (or re-routed).
    allow(PlateStatus.RUNNING, PlateStatus.ROUTED, By.MACHINE)
    allow(PlateStatus.FINISHED, PlateStatus.DONE, By.OPERATOR)
    allow((PlateStatus.READY, PlateStatus.ROUTED), PlateStatus.FAILED, By.ROUTER, By.SYSTEM)
    allow(PlateStatus.RUNNING, PlateStatus.FAILED, By.OPERATOR, By.MACHINE, By.SYSTEM)
    # Every job on it was cancelled: the router (or an operator) cancels the plate.
    allow(
        (PlateStatus.READY, PlateStatus.ROUTED),
        PlateStatus.CANCELLED,
        By.CUSTOMER,
        By.OPERATOR,
        By.ROUTER,
    )
    return {move: frozenset(who) for move, who in table.items()}


PLATE_TRANSITIONS: dict[tuple[str, str], frozenset[By]] = _plate_moves()
COPY_QC = frozenset({PlateCopy.Qc.PASSED, PlateCopy.Qc.SCRAPPED})


def plate_move(
    plate: Plate, *, to: str, by: By, actor: str, now: datetime, message: str = "", **fields: Any
) -> bool:
    """Move the plate from the status it has in memory to `to` (conditional UPDATE, like
    job_move); False, nothing written, if it moved meanwhile. Refused by the table: DomainError.
    Plates keep no event rows of their own: their jobs' events say what happened to them."""
    source = plate.status
    if by not in PLATE_TRANSITIONS.get((source, to), frozenset()):
        raise DomainError(f"{plate.number} cannot go from {source} to {to} (by {by})")
    claimed = Plate.objects.filter(pk=plate.pk, status=source).update(
        status=to, status_changed_at=now, **fields
    )
    if not claimed:
        return False
    plate.status, plate.status_changed_at = to, now
    for name, value in fields.items():
        setattr(plate, name, value)
    logger.info("%s: %s -> %s by %s (%s)", plate.number, source, to, actor, message)
    return True


def plate_create(*, by: By, now: datetime, **fields: Any) -> Plate:
    """A new plate, ready to route (its program and traveler are made)."""
    if by not in PLATE_TRANSITIONS.get((CREATED, PlateStatus.READY), frozenset()):
        raise DomainError(f"a new plate cannot be made by {by}")
    return Plate.objects.create(status=PlateStatus.READY, status_changed_at=now, **fields)


def copy_judge(copy: PlateCopy, *, qc: str, actor: str, now: datetime, reason: str = "") -> bool:
    """A copy's QC, once: pending -> passed or scrapped (conditional UPDATE); False if it was
    judged meanwhile."""
    if qc not in COPY_QC:
        raise DomainError(f"unknown QC result {qc!r}")
    claimed = PlateCopy.objects.filter(pk=copy.pk, qc=PlateCopy.Qc.PENDING).update(
        qc=qc, qc_reason=reason[:2000], qc_by=actor[:150], qc_at=now
    )
    if claimed:
        copy.qc, copy.qc_reason, copy.qc_by, copy.qc_at = qc, reason[:2000], actor[:150], now
    return bool(claimed)


def copies_cancel(
    plate: Plate, *, job_ids: Sequence[int], actor: str, now: datetime, reason: str
) -> list[int]:
    """The pending copies of these (cancelled) jobs on the plate: marked cancelled, neither
    made nor scrapped (conditional UPDATE: a copy judged meanwhile keeps its QC). Their
    numbers on the plate map."""
    pending = PlateCopy.objects.filter(plate=plate, job_id__in=job_ids, qc=PlateCopy.Qc.PENDING)
    numbers = sorted(pending.values_list("number", flat=True))
    pending.filter(number__in=numbers).update(
        qc=PlateCopy.Qc.CANCELLED, qc_reason=reason[:2000], qc_by=actor[:150], qc_at=now
    )
    return numbers


# --- history (demo data) --------------------------------------------------------------------


@dataclass(frozen=True)
class PastMove:
    """One move a job made in the past: to `to`, by `by`, at `at`."""

    to: str
    by: By
    step: str
    at: datetime
    actor: str
    message: str = ""


@dataclass(frozen=True)
class PastJob:
    """A job that already happened: its other fields (line, quantity, machine, ...) and its
    moves from creation on, in order."""

    fields: Mapping[str, Any]
    moves: tuple[PastMove, ...]


@dataclass(frozen=True)
class PastMachineChange:
    machine_id: int
    from_state: str
    to_state: str
    at: datetime
    actor: str
    reason: str = ""


def history_record(
    *, jobs: Sequence[PastJob], machine_changes: Sequence[PastMachineChange]
) -> list[Job]:
    """Write what already happened (seed_demo's history, replayed by the simulator) in bulk:
    the jobs in the status of their last move, every move as its event, every machine change
    as its MachineEvent. Each job's moves are checked against the transition table (the same
    moves, by the same roles, as live jobs make) and in time order; each machine's changes
    must chain from its current state back to it (history leaves the machine as it is), in
    time order. Refused (DomainError) before anything is written. The events are marked as
    followed: the orders they belong to are written as they ended. Call in a transaction."""
    for past in jobs:
        source, last = CREATED, None
        for move in past.moves:
            _check(source, move.to, move.by, what="a past job")
            if last is not None and move.at < last:
                raise DomainError(f"a past job's move to {move.to} is earlier than the one before")
            source, last = move.to, move.at
        if not past.moves:
            raise DomainError("a past job has no moves")
    states = dict(
        Machine.objects.filter(pk__in={c.machine_id for c in machine_changes}).values_list(
            "pk", "state"
        )
    )
    by_machine: dict[int, list[PastMachineChange]] = {}
    for change in machine_changes:
        by_machine.setdefault(change.machine_id, []).append(change)
    for machine_id, changes in by_machine.items():
        state, last = states.get(machine_id), None
        for change in changes:
            if change.from_state != state or (last is not None and change.at < last):
                raise DomainError(f"machine {machine_id}'s past changes do not chain in time")
            state, last = change.to_state, change.at
        if state != states.get(machine_id):
            raise DomainError(f"machine {machine_id}'s past changes do not end in its state")
    with transaction.atomic():
        created = Job.objects.bulk_create(
            Job(
                status=past.moves[-1].to,
                status_changed_at=past.moves[-1].at,
                **past.fields,
            )
            for past in jobs
        )
        # created_at is auto_now_add: bulk_create stamped it now; the past job began earlier.
        for job, past in zip(created, jobs, strict=True):
            job.created_at = past.moves[0].at
        Job.objects.bulk_update(created, ["created_at"], batch_size=500)
        events = []
        for job, past in zip(created, jobs, strict=True):
            source, previous = CREATED, past.moves[0].at
            for move in past.moves:
                events.append(
                    JobEvent(
                        job=job,
                        step=move.step,
                        from_status=source,
                        to_status=move.to,
                        actor=move.actor[:150],
                        started_at=previous,
                        finished_at=move.at,
                        duration_ms=int((move.at - previous).total_seconds() * 1000),
                        message=move.message[:2000],
                        followed_at=move.at,
                    )
                )
                source, previous = move.to, move.at
        JobEvent.objects.bulk_create(events, batch_size=1000)
        MachineEvent.objects.bulk_create(
            (
                MachineEvent(
                    machine_id=change.machine_id,
                    from_state=change.from_state,
                    to_state=change.to_state,
                    actor=change.actor[:150],
                    at=change.at,
                    reason=change.reason[:2000],
                    # As machine_move types it; idle in a replay is "no work": the simulated
                    # router leaves no machine idle while work waits for it.
                    loss=_past_loss(change.to_state),
                )
                for change in machine_changes
            ),
            batch_size=1000,
        )
        _dashboard_changed()  # history is finished days
    return created


def _dashboard_changed() -> None:
    """Now, and again once committed (a dashboard computed in between read the old rows)."""
    dashboard_changed()
    transaction.on_commit(dashboard_changed)
