"""Plates in production (#13): which waiting jobs go on plates together, what the router needs
to know about a plate, and how a plate's jobs follow it through the machine and QC.

    job (quantity N, traveler ready) --plan--> plate(s) ready --route--> routed
        --start--> running --finish--> finished --QC per copy--> done

Which jobs are planned on plates: FDM jobs of quantity > 1 (their single-part program was
already made and checked by the pipeline; a plate program holds all N copies instead of
running one copy N times). A job of quantity 1 stays a plain job, routed as before: its
program is made and checked, a one-copy plate would slice it again for nothing, and holding
every single part for the batching window would delay the common case. A quantity-1 job that
is still waiting when a plate of its kind is planned (no machine was free) joins it, though:
it costs nothing and frees a machine run.

Batching: jobs of the same material and process profile (`batch_key`: machine profile and
slicer settings of their program) that are ready are planned together; a group waits up to
MF_PLATE_BATCH_WINDOW_S from its oldest job for others to join, unless one of its orders is
urgent, high priority, expedited or due within MF_PLATE_BATCH_DUE_H (`plan_now`).

Web-safe: no geometry here. The worker's pass that slices plates is production.plate_runner.
Every status change goes through production.lifecycle (job_move, plate_move, copy_judge).
"""

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet

from catalog.models import Process
from microfactory.errors import DomainError
from production import lifecycle, routing, spools, station
from production.lifecycle import By
from production.models import Job, Machine, Plate, PlateCopy
from production.pipeline.traveler import TravelerCheck

Status = Job.Status
PlateStatus = Plate.Status
PRIORITY = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
# Orders of these priorities are never held for batching.
RUSH_PRIORITIES = frozenset({"high", "urgent"})
# The toolpath facts that make two jobs' programs the same process profile.
PROFILE_FACTS = (
    "profile_key",
    "engine",
    "nozzle_mm",
    "layer_height_mm",
    "first_layer_height_mm",
    "perimeters",
    "top_layers",
    "bottom_layers",
    "infill_percent",
    "brim_width_mm",
)


def batch_key(material: str, meta: Mapping[str, Any]) -> str:
    """The same for jobs that may share a plate: one material, one process profile (the
    machine profile their program was made for and its slicer settings)."""
    facts = {"material": material, **{name: meta.get(name) for name in PROFILE_FACTS}}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def plates_possible() -> bool:
    """Plates are planned where an FDM machine could run them: one run by hand (started and
    finished at the station) or a networked printer (OctoPrint, Moonraker: the dispatcher
    sends the plate's program and the poller follows it, production.machines)."""
    return Machine.objects.filter(process=Process.FDM).exists()


def awaiting_plates() -> QuerySet[Job]:
    """Jobs waiting to be planned on plates: ready, FDM, quantity > 1, not on a plate yet.
    The router leaves them alone."""
    if not plates_possible():
        return Job.objects.none()
    return (
        Job.objects.filter(
            status__in=lifecycle.TO_ROUTE, hold="", quantity__gt=1, line__process=Process.FDM
        )
        .filter(toolpath_meta__has_key="profile_key")
        .exclude(plate_copies__isnull=False)
    )


def routed_as_plates() -> Q:
    """A filter (on Job) of the jobs the plain router must skip: on plates or awaiting them
    (an FDM program made for a machine profile, which a plate is planned on)."""
    bound = Q(quantity__gt=1, line__process=Process.FDM, toolpath_meta__has_key="profile_key")
    return Q(plate_copies__isnull=False) | (bound if plates_possible() else Q(pk__in=[]))


# --- which waiting jobs to plan now ----------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A job ready to be planned on a plate, as the batching rule sees it."""

    job: int
    key: str  # batch_key
    quantity: int
    ready_at: datetime  # when its traveler was ready
    rush: bool  # urgent, high priority or expedited: never held
    due: datetime | None


def plan_now(
    group: Sequence[Waiting], *, now: datetime, window_s: float, due_horizon_s: float
) -> bool:
    """Plan the group now, or let it wait for others to join: it waits while its oldest job
    has waited less than the window, unless one of its jobs is a rush or due soon. A group of
    single parts only (quantity 1) never makes a plate of its own: they route as plain jobs."""
    if not any(w.quantity > 1 for w in group):
        return False
    if any(w.rush or (w.due is not None and (w.due - now).total_seconds() < due_horizon_s)
           for w in group):  # fmt: skip
        return True
    oldest = min(w.ready_at for w in group)
    return (now - oldest).total_seconds() >= window_s


def groups_to_plan(
    waiting: Iterable[Waiting], *, now: datetime, window_s: float, due_horizon_s: float
) -> list[list[Waiting]]:
    """The groups of compatible jobs to plan now, each in job order."""
    groups: dict[str, list[Waiting]] = {}
    for w in sorted(waiting, key=lambda w: w.job):
        groups.setdefault(w.key, []).append(w)
    return [
        group
        for _, group in sorted(groups.items())
        if plan_now(group, now=now, window_s=window_s, due_horizon_s=due_horizon_s)
    ]


def _due(job: Job) -> datetime | None:
    from production.machines import due_at  # machines imports this module

    return due_at(job)


def waiting_for_plates() -> list[Waiting]:
    """Every job a plate could take now: those awaiting plates, and single FDM parts still
    waiting for a machine (they join a plate of their kind)."""
    if not plates_possible():
        return []
    candidates = (
        Job.objects.filter(status__in=lifecycle.TO_ROUTE, hold="", line__process=Process.FDM)
        .exclude(toolpath_meta__isnull=True)
        .exclude(plate_copies__isnull=False)
        .select_related("line__material", "line__order")
        .order_by("pk")
    )
    waiting = []
    for job in candidates:
        meta = job.toolpath_meta or {}
        if meta.get("process", "fdm") != "fdm" or not meta.get("profile_key"):
            continue
        order = job.line.order
        waiting.append(
            Waiting(
                job=job.pk,
                key=batch_key(job.line.material.slug, meta),
                quantity=job.quantity,
                ready_at=job.status_changed_at,
                rush=order.priority in RUSH_PRIORITIES or bool(order.expedite),
                due=_due(job),
            )
        )
    return waiting


def plan_groups(*, now: datetime) -> list[list[Waiting]]:
    """The groups the worker's pass plans now (settings: the window and the due horizon)."""
    return groups_to_plan(
        waiting_for_plates(),
        now=now,
        window_s=float(settings.MF_PLATE_BATCH_WINDOW_S),
        due_horizon_s=float(settings.MF_PLATE_BATCH_DUE_H) * 3600.0,
    )


# --- the router's view of a plate ------------------------------------------------------------


def plate_needs(
    plate: Plate, jobs: Sequence[Job], *, transit: Mapping[tuple[str, str], float]
) -> routing.JobNeeds:
    """What the router needs to know about a plate: its jobs' material and machine profile,
    the tallest part, the plate's own time and filament (not a job's times its quantity), the
    earliest due date and highest priority of its orders, and only the machines every job's
    DFM report found capable."""
    from production.machines import job_needs  # machines imports this module

    needs = [job_needs(job, transit=transit) for job in jobs]
    first = needs[0]
    allowed: frozenset[str] | None = None
    for n in needs:
        if n.allowed_machines is not None:
            allowed = n.allowed_machines if allowed is None else allowed & n.allowed_machines
    dues = [n.due for n in needs if n.due is not None]
    tallest = max(n.extents_mm[2] for n in needs)
    footprint = max(max(n.extents_mm[0], n.extents_mm[1]) for n in needs)
    return routing.JobNeeds(
        process=first.process,
        material=first.material,
        extents_mm=(footprint, footprint, tallest),
        profile_key=first.profile_key,
        key=f"plate-{plate.pk}",
        nozzle_mm=first.nozzle_mm,
        estimated_time_s=float(plate.estimated_time_s),
        due=min(dues) if dues else None,
        priority=max(n.priority for n in needs),
        stake=max(n.stake for n in needs),
        allowed_machines=allowed,
        filament_g=float(plate.filament_g),
        delivery_site=first.delivery_site,
        delivery_site_name=first.delivery_site_name,
        transit_s=transit,
    )


def plate_jobs(plates: Iterable[Plate]) -> dict[int, list[Job]]:
    """{plate id: its jobs}, with what job_needs reads, in one query."""
    ids = [plate.pk for plate in plates]
    jobs = (
        Job.objects.filter(plate_copies__plate_id__in=ids)
        .select_related(
            "line__revision", "line__material", "line__order__delivery_site", "line__order__asset"
        )
        .distinct()
        .order_by("pk")
    )
    by_job = {job.pk: job for job in jobs}
    found: dict[int, list[Job]] = {pk: [] for pk in ids}
    rows = PlateCopy.objects.filter(plate_id__in=ids).values_list("plate_id", "job_id").distinct()
    for plate_id, job_id in sorted(set(rows)):
        found[plate_id].append(by_job[job_id])
    return found


def plate_route(
    plate: Plate, jobs: Sequence[Job], *, machine: Machine, reason: str, actor: str, now: datetime
) -> bool:
    """The router puts the plate on a machine; its jobs not yet routed go with it (a job on
    several plates is routed with its first)."""
    if not lifecycle.plate_move(
        plate,
        to=PlateStatus.ROUTED,
        by=By.ROUTER,
        actor=actor,
        now=now,
        message=f"routed to {machine.name}: {reason}",
        machine=machine,
        route_reason=reason[:2000],
    ):
        return False
    for job in jobs:
        if job.status in lifecycle.TO_ROUTE:
            lifecycle.job_move(
                job,
                to=Status.ROUTED,
                by=By.ROUTER,
                step="routing",
                actor=actor,
                now=now,
                message=f"on {plate.number}, routed to {machine.name} (batch plan): {reason}",
                machine=machine,
                route_reason=reason[:2000],
            )
    return True


def plate_reject(
    plate: Plate, jobs: Sequence[Job], *, reason: str, actor: str, now: datetime
) -> None:
    """No machine could ever run the plate: it fails and its waiting jobs are rejected."""
    lifecycle.plate_move(
        plate, to=PlateStatus.FAILED, by=By.ROUTER, actor=actor, now=now, reason=reason[:2000]
    )
    for job in jobs:
        if job.status in lifecycle.TO_ROUTE:
            lifecycle.job_move(
                job,
                to=Status.REJECTED,
                by=By.ROUTER,
                step="routing",
                actor=actor,
                now=now,
                message=f"{plate.number}: {reason}",
                reason=reason[:2000],
            )


# --- the station: a plate at its machine, and QC copy by copy ------------------------------

_PLATE_CODE = r"^(?:P-?)0*(\d+)$"
_PLATE_URL = r"/station/plates/(\d+)/?"


def plate_id_from_code(code: str) -> int | None:
    """The plate id in what a scanner read: "P-000012", "p12" or its traveler's QR URL."""
    import re

    from microfactory.limits import ID_MAX

    code = code.strip()
    found = re.search(_PLATE_URL, code) or re.match(_PLATE_CODE, code, re.IGNORECASE)
    digits = found.group(1).lstrip("0") if found else ""
    if not digits or len(digits) > len(str(ID_MAX)) or int(digits) > ID_MAX:
        return None
    return int(digits)


def _locked_plate(plate_id: int) -> Plate:
    plate = (
        Plate.objects.select_for_update(of=("self",))
        .select_related("machine")
        .filter(pk=plate_id)
        .first()
    )
    if plate is None:
        raise DomainError(f"no plate {plate_id}")
    return plate


def _jobs_of(plate: Plate) -> list[Job]:
    # By id, not by a join with DISTINCT: PostgreSQL locks no rows of a DISTINCT query.
    ids = PlateCopy.objects.filter(plate=plate).values("job_id")
    return list(
        Job.objects.select_for_update(of=("self",))
        .select_related("line__material", "machine")
        .filter(pk__in=ids)
        .order_by("pk")
    )


def _machine_to(
    machine: Machine, state: str, *, actor: str, now: datetime, why: str, **f: Any
) -> None:
    locked = Machine.objects.select_for_update().get(pk=machine.pk)
    lifecycle.machine_move(locked, to=state, actor=actor, now=now, reason=why, **f)


def _refuse_connected(plate: Plate, action: str) -> None:
    """A networked printer's plate is sent by the dispatcher and followed by the poller: it
    reports its own start and finish (its copies are QC'd here all the same)."""
    machine = plate.machine
    if machine is not None and machine.is_connected:
        raise DomainError(
            f"{machine.name} is driven by {machine.get_connector_display()}: it reports "
            f"its own {action} of {plate.number}"
        )


@transaction.atomic
def plate_start(*, plate_id: int, operator: AbstractBaseUser, now: datetime) -> Plate:
    """Start a routed plate on its machine: the plate and each of its jobs not yet started
    run, the machine is busy, each job's filament is booked. Refused when the machine runs
    something else, is not free, or has another material's spool loaded."""
    plate = _locked_plate(plate_id)
    actor = operator.get_username()
    if plate.status != PlateStatus.ROUTED or plate.machine is None:
        raise DomainError(
            f"{plate.number} is {plate.get_status_display()}; only a plate routed to its "
            "machine can be started"
        )
    _refuse_connected(plate, "start")
    pending = remake_pending(plate)
    if pending is not None:
        raise DomainError(pending)
    machine = Machine.objects.select_for_update().get(pk=plate.machine.pk)
    jobs = _jobs_of(plate)
    busy = Plate.objects.filter(machine=machine, status=PlateStatus.RUNNING).first()
    other = (
        Job.objects.filter(machine=machine, status__in=Job.STARTED)
        .exclude(pk__in=[job.pk for job in jobs])
        .first()
    )
    if busy is not None or other is not None:
        raise DomainError(f"{machine.name} is running {busy or other}; finish it first")
    if machine.state not in (Machine.State.IDLE, Machine.State.BUSY):
        raise DomainError(f"{machine.name} is {machine.get_state_display()}; it cannot start")
    for job in jobs:
        mismatch = spools.spool_mismatch(job=job, machine=machine)
        if mismatch is not None:
            raise DomainError(mismatch)
    lifecycle.plate_move(
        plate, to=PlateStatus.RUNNING, by=By.OPERATOR, actor=actor, now=now,
        message=f"started on {machine.name}", started_at=now, progress=0.0,
    )  # fmt: skip
    for job in jobs:
        if job.status in (Status.ROUTED, Status.DISPATCHED):
            lifecycle.job_move(
                job, to=Status.RUNNING, by=By.OPERATOR, step="start", actor=actor, now=now,
                message=f"started on {plate.number} at {machine.name}",
                started_at=now, progress=0.0, machine=machine,
            )  # fmt: skip
            spools.spool_book_start(job=job, machine=machine, actor=actor, now=now)
    _machine_to(
        machine, Machine.State.BUSY, actor=actor, now=now, why=f"{plate.number} started",
        current_job=jobs[0] if jobs else None, progress=0.0,
    )  # fmt: skip
    return plate


def _plates_left(job: Job, *, statuses: Iterable[str]) -> bool:
    return job.plate_copies.filter(plate__status__in=list(statuses)).exists()


@transaction.atomic
def plate_finish(*, plate_id: int, operator: AbstractBaseUser, now: datetime) -> Plate:
    """The machine finished the plate: it waits for QC copy by copy, the machine is idle, and
    each job none of whose plates is still to run waits for QC."""
    plate = _locked_plate(plate_id)
    actor = operator.get_username()
    if plate.status != PlateStatus.RUNNING or plate.machine is None:
        raise DomainError(
            f"{plate.number} is {plate.get_status_display()}; only a running plate finishes"
        )
    _refuse_connected(plate, "finish")
    lifecycle.plate_move(
        plate, to=PlateStatus.FINISHED, by=By.OPERATOR, actor=actor, now=now,
        message="finished", finished_at=now, progress=100.0,
    )  # fmt: skip
    for job in _jobs_of(plate):
        still = (PlateStatus.READY, PlateStatus.ROUTED, PlateStatus.RUNNING)
        if job.status == Status.RUNNING and not _plates_left(job, statuses=still):
            lifecycle.job_move(
                job, to=Status.AWAITING_QC, by=By.OPERATOR, step="finish", actor=actor,
                now=now, message=f"finished on {plate.number}", finished_at=now, progress=100.0,
            )  # fmt: skip
            spools.spool_book_end(job=job, actor=actor, now=now)
    _machine_to(
        plate.machine, Machine.State.IDLE, actor=actor, now=now,
        why=f"{plate.number} finished", current_job=None, progress=None,
    )  # fmt: skip
    return plate


@dataclass(frozen=True)
class QcOutcome:
    plate: Plate
    judged: tuple[int, ...]  # the copies judged now
    remakes: tuple[Job, ...]  # jobs made for scrapped copies (one per job completed)


@transaction.atomic
def copies_qc(
    *,
    plate_id: int,
    passed: Sequence[int],
    scrapped: Sequence[int],
    reason: str,
    operator: AbstractBaseUser,
    now: datetime,
    checks: Mapping[int, tuple[TravelerCheck, ...]] | None = None,
) -> QcOutcome:
    """Record QC for copies of a finished plate, by PlateCopy id: some passed, some scrapped
    (with a reason). A copy is judged once. When every copy of a job is judged the job is done
    (or scrapped, if none passed) and one remake job is made for exactly its scrapped copies;
    it goes through the pipeline and may join the next plate. When every copy on the plate is
    judged the plate is done. `checks` maps a job id to its QC checklist: a copy passes only
    with each of its dimensions measured on it (copy_measure) and in tolerance."""
    plate = _locked_plate(plate_id)
    actor = operator.get_username()
    if plate.status != PlateStatus.FINISHED:
        raise DomainError(
            f"{plate.number} is {plate.get_status_display()}; QC comes after the plate is finished"
        )
    if set(passed) & set(scrapped):
        raise DomainError("a copy cannot both pass and be scrapped")
    if not passed and not scrapped:
        raise DomainError("choose the copies that passed or are scrapped")
    if scrapped and not reason.strip():
        raise DomainError("give a reason for scrapping")
    copies = {
        c.pk: c
        for c in PlateCopy.objects.select_for_update().filter(
            plate=plate, pk__in=[*passed, *scrapped]
        )
    }
    unknown = sorted((set(passed) | set(scrapped)) - set(copies))
    if unknown:
        raise DomainError(f"not copies of {plate.number}: {', '.join(map(str, unknown))}")
    gone = sorted(c.number for c in copies.values() if c.qc == CANCELLED_COPY)
    if gone:
        raise DomainError(
            f"copies #{', #'.join(map(str, gone))} were cancelled with their order: no QC"
        )
    judged_before = [pk for pk, c in copies.items() if c.qc != PlateCopy.Qc.PENDING]
    if judged_before:
        numbers = ", ".join(f"#{copies[pk].number}" for pk in sorted(judged_before))
        raise DomainError(f"already judged: {numbers}")
    for pk in passed:
        copy = copies[pk]
        refusal = station.measured_refusal(copy.measurements, (checks or {}).get(copy.job_id, ()))
        if refusal:
            raise DomainError(f"copy #{copies[pk].number}: {refusal}")
    for pk in passed:
        lifecycle.copy_judge(copies[pk], qc=PlateCopy.Qc.PASSED, actor=actor, now=now)
    for pk in scrapped:
        lifecycle.copy_judge(
            copies[pk], qc=PlateCopy.Qc.SCRAPPED, actor=actor, now=now, reason=reason.strip()
        )
    remakes = []
    for job in _jobs_of(plate):
        remake = _job_after_qc(job, actor=actor, now=now, reason=reason.strip())
        if remake is not None:
            remakes.append(remake)
    if not plate.copies.filter(qc=PlateCopy.Qc.PENDING).exists():
        lifecycle.plate_move(
            plate, to=PlateStatus.DONE, by=By.OPERATOR, actor=actor, now=now, message="QC done"
        )
    return QcOutcome(plate=plate, judged=tuple(sorted(copies)), remakes=tuple(remakes))


def _job_after_qc(job: Job, *, actor: str, now: datetime, reason: str) -> Job | None:
    """A job all of whose copies are judged ends: done with its counts (scrapped when none
    passed), and a remake of exactly its scrapped copies, which the copies point to."""
    if job.status != Status.AWAITING_QC:
        return None
    copies = list(job.plate_copies.all())
    if len(copies) < job.quantity or any(c.qc == PlateCopy.Qc.PENDING for c in copies):
        return None
    scrapped = [c for c in copies if c.qc == PlateCopy.Qc.SCRAPPED]
    passed = sum(1 for c in copies if c.qc == PlateCopy.Qc.PASSED)  # not cancelled ones
    fields: dict[str, Any] = {"qc_passed": passed, "qc_scrapped": len(scrapped)}
    if scrapped:
        fields["reason"] = f"scrapped {len(scrapped)}: {reason}"[:2000]
    lifecycle.job_move(
        job,
        to=Status.DONE if passed else Status.SCRAPPED,
        by=By.OPERATOR,
        step="qc",
        actor=actor,
        now=now,
        message=f"QC copy by copy: {passed} passed, {len(scrapped)} scrapped"
        + (f" ({reason})" if scrapped else ""),
        **fields,
    )
    if not scrapped:
        return None
    from production.services import job_enqueue

    remake = lifecycle.job_create(
        by=By.OPERATOR,
        step="replacement",
        actor=actor,
        now=now,
        message=f"remakes copies {', '.join(str(c.copy_index) for c in scrapped)} "
        f"scrapped from {job.number}",
        line_id=job.line_id,
        quantity=len(scrapped),
        replaces=job,
    )
    PlateCopy.objects.filter(pk__in=[c.pk for c in scrapped]).update(remake=remake)
    transaction.on_commit(lambda: job_enqueue(job_id=remake.pk))
    return remake


# --- an order cancelled: its copies come off the plates not started ------------------------

# Plates not started: one holding copies of cancelled jobs is made again without them by the
# worker (production.plate_runner.plates_remake) and cannot start until it is.
REMADE = (PlateStatus.READY, PlateStatus.ROUTED)
CANCELLED_COPY = PlateCopy.Qc.CANCELLED


def copies_cancel(*, job_ids: Sequence[int], actor: str, now: datetime, reason: str) -> list[int]:
    """The copies of cancelled jobs, on every plate not ended, are marked cancelled. A plate
    not started with no other copy left is cancelled; one with others is made again without
    them (its ids are returned, and the worker's plate pass is sent on commit). A plate
    already running prints them all the same: they stay marked, and QC passes them by.
    Recorded on each job as an event. Call inside the cancelling transaction."""
    if not job_ids:
        return []
    # By id, not by a join with DISTINCT: PostgreSQL locks no rows of a DISTINCT query.
    on = PlateCopy.objects.filter(job_id__in=job_ids).values("plate_id")
    plates = list(
        Plate.objects.select_for_update()
        .filter(pk__in=on)
        .exclude(status__in=Plate.TERMINAL)
        .order_by("pk")
    )
    jobs = {job.pk: job for job in Job.objects.filter(pk__in=job_ids)}
    remake = []
    for plate in plates:
        numbers = lifecycle.copies_cancel(
            plate, job_ids=job_ids, actor=actor, now=now, reason=reason
        )
        if not numbers:
            continue
        left = plate.copies.exclude(qc=CANCELLED_COPY).exists()
        if plate.status in REMADE and not left:
            lifecycle.plate_move(
                plate, to=PlateStatus.CANCELLED, by=By.CUSTOMER, actor=actor, now=now,
                message=reason, reason=f"every copy on it was cancelled: {reason}"[:2000],
            )  # fmt: skip
            what = "cancelled with them"
        elif plate.status in REMADE:
            remake.append(plate.pk)
            what = "to be made again without them"
        else:
            what = f"{plate.get_status_display()}: printed all the same, not counted"
        cancelled = sorted({c.job_id for c in plate.copies.filter(number__in=numbers)})
        for job_id in cancelled:
            lifecycle.job_record(
                jobs[job_id], step="plate-remake", actor=actor, now=now,
                message=f"copies #{', #'.join(map(str, numbers))} on {plate.number} "
                f"cancelled; the plate is {what}",
            )  # fmt: skip
    if remake:
        from production.machines import _on_commit_plan_plates  # machines imports this module

        _on_commit_plan_plates()
    return remake


def remake_pending(plate: Plate) -> str | None:
    """Why the plate cannot start yet: it holds cancelled copies and is being made again
    without them, or its new traveler is not made yet. None: it may start."""
    if plate.status in REMADE and plate.copies.filter(qc=CANCELLED_COPY).exists():
        return (
            f"{plate.number} is being made again without its cancelled copies; start it "
            "once its new program and traveler are ready"
        )
    if plate.traveler_id is None:
        return f"{plate.number} has no traveler yet; start it once it is made"
    return None


@transaction.atomic
def copy_measure(
    *,
    plate_id: int,
    copy_id: int,
    values: Mapping[str, float],
    checks: tuple[TravelerCheck, ...],
    operator: AbstractBaseUser,
    now: datetime,
) -> list[station.Measurement]:
    """Store what was measured on one copy of a finished plate (by check label; measuring
    again overwrites a value), recorded on its job; the values out of tolerance returned."""
    plate = _locked_plate(plate_id)
    if plate.status != PlateStatus.FINISHED:
        raise DomainError(
            f"{plate.number} is {plate.get_status_display()}; measure its copies once it is "
            "finished"
        )
    copy = PlateCopy.objects.select_for_update().filter(pk=copy_id, plate=plate).first()
    if copy is None:
        raise DomainError(f"not a copy of {plate.number}: {copy_id}")
    if copy.qc != PlateCopy.Qc.PENDING:
        raise DomainError(f"copy #{copy.number} is {copy.get_qc_display()}; no more measuring")
    station.refuse_unknown_checks(values, checks)
    copy.measurements = {**copy.measurements, **values}
    PlateCopy.objects.filter(pk=copy.pk).update(measurements=copy.measurements)
    measured = station.measurements_for(copy.measurements, checks)
    job = Job.objects.get(pk=copy.job_id)
    lifecycle.job_record(
        job, step="measure", actor=operator.get_username(), now=now,
        message=f"copy {copy.copy_index} (#{copy.number} on {plate.number}): measured "
        + "; ".join(f"{m.label} {m.value:g} mm" for m in measured),
    )  # fmt: skip
    return [m for m in measured if not m.in_tolerance]


# --- machine queues ------------------------------------------------------------------------


def plate_queue_rows(machine_ids: Iterable[int] | None = None) -> list[tuple[int, float, bool]]:
    """(machine id, seconds of work left, started) for each plate a machine holds: a plate
    counts once in its queue, with its own time (not its jobs' times their quantities)."""
    plates = Plate.objects.filter(status__in=Plate.ON_MACHINE, machine__isnull=False)
    if machine_ids is not None:
        plates = plates.filter(machine_id__in=list(machine_ids))
    rows = []
    for machine_id, estimate, progress, status in plates.order_by(
        "status_changed_at", "pk"
    ).values_list("machine_id", "estimated_time_s", "progress", "status"):
        left = float(estimate) * (1 - min(progress or 0.0, 100.0) / 100)
        rows.append((machine_id, left, status == PlateStatus.RUNNING))
    return rows


def ready_plates() -> list[Plate]:
    """Plates whose program and traveler are made, waiting for a machine."""
    return list(
        Plate.objects.filter(status=PlateStatus.READY, traveler__isnull=False)
        .select_related("material")
        .order_by("pk")
    )
