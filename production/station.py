"""The shop-floor station: what an operator does to a job at a machine, as services.

    routed/dispatched -start-> running -finish-> awaiting_qc -qc-> done | scrapped
                               running -pause-> paused -continue-> running
                                                paused -scrap-> scrapped

A paused job still holds its machine (Job.STARTED): the machine goes `paused` with it, starts
nothing else, and if it goes down the paused job fails and is remade like a running one. A
paused job cannot be finished (resume it first), but it can be scrapped: pausing is how an
operator stops a print that is going wrong, and scrapping it then frees the machine and queues
a remake of the whole quantity without pretending the print finished.

Starting books the filament of the job's G-code against the spool loaded on its machine, and
is refused while a spool of another material is loaded there; finishing (and scrapping a
paused print) corrects the booking (production.spools).

Every action locks the job row (select_for_update) and checks its status before moving it,
so a double tap or a resent form finds the job already moved and is refused, changing
nothing. Each writes a JobEvent with the operator as actor and the machine in the message.
Start, pause, resume, finish and scrapping a paused job are for machines run by hand (the
manual connector); a networked printer reports its own through telemetry. QC applies to every
job.
"""

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum

from catalog.parameters import parse_schema
from microfactory.errors import DomainError
from microfactory.limits import ID_MAX
from microfactory.site_url import site_url
from orders.models import OrderLine
from production import lifecycle, passport, spools
from production.job_values import traveler_for, traveler_site
from production.lifecycle import By
from production.models import Artifact, Job, JobArtifact, Machine, Spool
from production.pipeline.traveler import (
    Label,
    SpoolLabel,
    Traveler,
    TravelerCheck,
    TravelerParameter,
    merge_pdfs,
    render_traveler,
)

logger = logging.getLogger(__name__)

Status = Job.Status
NOT_STARTED = (Status.ROUTED, Status.DISPATCHED)
# Why a part is scrapped; the operator picks one and may add free text.
SCRAP_REASONS = (
    ("warped", "Warped or lifted from the bed"),
    ("layer_shift", "Layer shift"),
    ("under_extrusion", "Under-extrusion or gaps"),
    ("stringing", "Stringing or blobs"),
    ("out_of_tolerance", "Out of tolerance"),
    ("surface", "Surface defect"),
    ("other", "Other (describe)"),
)
# How many of a part's parameters its bag label prints: the first ones of its schema, which a
# catalog admin lists first because they define the part (a collar's bore before its width).
LABEL_PARAMETERS = 4
# What a job's pages and its bag label read with it (select_related).
JOB_RELATED = (
    "line__revision__family",
    "line__material",
    "line__order__organisation",
    "line__order__team",
    "line__order__delivery_site",
    "machine__site",
)
_JOB_URL = re.compile(r"/(?:station/jobs|passport)/(\d+)/?")  # the traveler's QR: a passport
_JOB_NUMBER = re.compile(r"^(?:J-?)?0*(\d+)$", re.IGNORECASE)


def job_id_from_code(code: str) -> int | None:
    """The job id in what a scanner or a person typed: "J-000042", "42" or the QR's URL."""
    code = code.strip()
    found = _JOB_URL.search(code) or _JOB_NUMBER.match(code)
    digits = found.group(1).lstrip("0") if found else ""
    # Compared as text first: int() refuses 4300 digits, the database ids past 64 bits.
    if not digits or len(digits) > len(str(ID_MAX)) or int(digits) > ID_MAX:
        return None
    return int(digits)


def job_traveler(job: Job, *, now: datetime) -> Traveler:
    """The values the job's traveler prints (instructions, QC checklist), as of `now`."""
    return traveler_for(job, printed_at=now)


def job_traveler_reprint(job: Job, *, now: datetime) -> bytes | None:
    """The job's traveler rendered now, naming the spool it is made from (production.spools
    .job_lot): the one its start was booked on, or the one loaded on its machine. None when
    no spool is known (or the files a traveler needs are not there): the stored traveler,
    printed before the job was routed, leaves the lot to be written in."""
    lot = spools.job_lot(job)
    if not lot:
        return None
    try:
        return render_traveler(traveler_for(job, printed_at=now, lot=lot))
    except Artifact.DoesNotExist:
        return None


def spool_label(spool: Spool) -> SpoolLabel:
    """What the spool's label prints. Pass a spool with its material and site selected."""
    return SpoolLabel(
        spool_number=spool.number,
        station_url=f"{site_url()}/station/spools/{spool.pk}/",
        material=spool.material.name,
        colour=spool.colour,
        lot_number=spool.lot_number,
        initial=f"{spool.initial_g.normalize():f} g",
        site=spool.site.name,
        received=spool.created_at.date().isoformat(),
    )


def job_label(job: Job) -> Label:
    """The values the bag label of the job's parts prints. Needs no files, unlike the
    traveler: a label can be printed for any job. Pass a job with its line's revision, family,
    material, order's team, organisation and delivery site, and machine's site selected
    (JOB_RELATED)."""
    line, order = job.line, job.line.order
    parameters = []
    for spec in parse_schema(line.revision.parameter_schema):
        if spec.name in line.parameters:
            value = str(line.parameters[spec.name])
            parameters.append(TravelerParameter(spec.name, spec.label, value, spec.unit))
    return Label(
        job_number=job.number,
        station_url=f"{site_url()}/station/jobs/{job.pk}/",
        part_name=line.revision.family.name,
        revision_label=f"rev {line.revision.number}",
        key_parameters=tuple(parameters[:LABEL_PARAMETERS]),
        material=line.material.name,
        quantity=job.quantity,
        order_reference=order.number + (f" / {order.reference}" if order.reference else ""),
        team=order.team.name if order.team else order.organisation.name,
        due_date=order.due_date.isoformat() if order.due_date else None,
        site=job.machine.site.name if job.machine else "",
        delivery_site=order.delivery_site.name if order.delivery_site else "",
        lot=spools.job_lot(job),
    )


@dataclass(frozen=True)
class TravelerBatch:
    pdf: bytes
    rendered: tuple[str, ...]  # numbers of the jobs whose traveler had to be rendered now


def travelers_batch(jobs: Sequence[Job], *, now: datetime) -> TravelerBatch:
    """The jobs' travelers as one PDF, in the order given, to print a machine's queue.

    Each job's traveler is the PDF the pipeline stored (as its single reprint is), so a batch
    of 50 is merged in well under a second instead of laid out again for 20-35 s. Only a job
    without one (not through the traveler step, or a file lost or not matching its sha256)
    is rendered now, as of `now`; those are named in `rendered`.
    """
    links = JobArtifact.objects.filter(
        job__in=[job.pk for job in jobs], kind=Artifact.Kind.TRAVELER
    ).select_related("artifact")
    stored = {link.job_id: link.artifact for link in links}
    pdfs, rendered = [], []
    for job in jobs:
        pdf = stored_traveler(job, stored[job.pk]) if job.pk in stored else None
        if pdf is None:
            pdf = render_traveler(job_traveler(job, now=now))
            rendered.append(job.number)
        pdfs.append(pdf)
    if rendered:
        logger.info("batch of %d travelers: rendered %s now", len(jobs), ", ".join(rendered))
    return TravelerBatch(pdf=merge_pdfs(pdfs), rendered=tuple(rendered))


def stored_traveler(job: Job, artifact: Artifact) -> bytes | None:
    """The traveler PDF the pipeline stored for the job, if it still holds: None when the file
    is lost or altered, or when it names another site than the one the job was routed to
    (the pipeline prints the planned machine's site before the router chose)."""
    printed = artifact.meta.get("site")
    routed = traveler_site(job)
    if printed is not None and routed is not None and printed != routed:
        return None
    return stored_pdf(artifact)


def stored_pdf(artifact: Artifact) -> bytes | None:
    try:
        with artifact.file.open("rb") as file:
            pdf = file.read()
    except OSError:  # the file is gone from storage: render it again rather than fail the batch
        logger.warning("traveler file %s is missing", artifact.file.name)
        return None
    if hashlib.sha256(pdf).hexdigest() != artifact.sha256:
        logger.warning("traveler file %s does not match its sha256", artifact.file.name)
        return None
    return bytes(pdf)


@dataclass(frozen=True)
class Measurement:
    label: str
    value: float
    nominal: float
    minus: float
    plus: float

    @property
    def in_tolerance(self) -> bool:
        # A little slack for floats: 20.2 against 20 ± 0.2 is in.
        return self.nominal - self.minus - 1e-9 <= self.value <= self.nominal + self.plus + 1e-9


def measurements_for(
    values: Mapping[str, float], checks: tuple[TravelerCheck, ...]
) -> list[Measurement]:
    """Recorded values (a job's, or a plate copy's) against the checklist; checks not measured
    yet are left out."""
    measured = []
    for check in checks:
        if check.label in values:
            measured.append(
                Measurement(
                    check.label,
                    float(values[check.label]),
                    check.nominal_mm,
                    check.minus_mm,
                    check.plus_mm,
                )
            )
    return measured


# --- actions ---------------------------------------------------------------------------------


def _locked(job_id: int) -> Job:
    job = (
        Job.objects.select_for_update(of=("self",))
        .select_related("machine")
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        raise DomainError(f"no job {job_id}")
    return job


def _refuse_finished(job: Job) -> None:
    if job.status in Job.TERMINAL:
        raise DomainError(f"{job.number} is {job.get_status_display()}; nothing more can be done")


def _manual_machine(job: Job, action: str) -> Machine:
    machine = job.machine
    if machine is None:
        raise DomainError(f"{job.number} is not routed to a machine yet")
    if machine.is_connected:
        raise DomainError(
            f"{machine.name} is driven by {machine.get_connector_display()}: it reports "
            f"its own {action}"
        )
    return machine


def _move(
    job: Job,
    *,
    to: str,
    step: str,
    operator: AbstractBaseUser,
    now: datetime,
    message: str,
    **fields: Any,
) -> None:
    """The operator's move of a job they hold locked, with the machine in the event."""
    where = f" at {job.machine.name}" if job.machine else ""
    lifecycle.job_move(
        job,
        to=to,
        by=By.OPERATOR,
        step=step,
        actor=operator.get_username(),
        now=now,
        message=f"{message}{where}",
        **fields,
    )


def _machine_to(
    machine: Machine,
    state: str,
    *,
    operator: AbstractBaseUser,
    now: datetime,
    why: str,
    **fields: Any,
) -> None:
    """The machine follows its job's move at the station (busy, paused, idle)."""
    locked = Machine.objects.select_for_update().get(pk=machine.pk)
    lifecycle.machine_move(
        locked, to=state, actor=operator.get_username(), now=now, reason=why, **fields
    )


def _refuse_tampered_gcode(job: Job) -> None:
    """A manual machine is started from the job's G-code as stored: refused, as a networked
    machine's dispatch is, when that file is not the one its passport signed for."""
    link = JobArtifact.objects.select_related("artifact").filter(job=job, kind="gcode").first()
    if link is None:
        return  # nothing to load (a job made by hand); the operator works from the traveler
    try:
        with link.artifact.file.open("rb") as file:
            gcode = file.read()
    except OSError:
        raise DomainError(f"{job.number}: its G-code file is missing; not started") from None
    refusal = passport.gcode_refusal(job, gcode)
    if refusal is not None:
        raise DomainError(f"{job.number} not started: {refusal}")


@transaction.atomic
def job_start(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """Start a routed or dispatched job on its (manual) machine; refused once started."""
    job = _locked(job_id)
    _refuse_finished(job)
    _refuse_plated(job)
    if job.status not in NOT_STARTED:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; only a job waiting at its machine "
            "can be started"
        )
    machine = _manual_machine(job, "start")
    machine = Machine.objects.select_for_update().get(pk=machine.pk)
    other = Job.objects.filter(machine=machine, status__in=Job.STARTED).exclude(pk=job.pk).first()
    if other is not None:
        doing = "has paused" if other.status == Status.PAUSED else "is running"
        raise DomainError(f"{machine.name} {doing} {other.number}; finish it first")
    if machine.state not in (Machine.State.IDLE, Machine.State.BUSY):
        raise DomainError(f"{machine.name} is {machine.get_state_display()}; it cannot start")
    mismatch = spools.spool_mismatch(job=job, machine=machine)
    if mismatch is not None:
        raise DomainError(mismatch)
    _refuse_tampered_gcode(job)
    _move(
        job,
        to=Status.RUNNING,
        step="start",
        operator=operator,
        now=now,
        message="started",
        started_at=now,
        progress=0.0,
    )
    _machine_to(
        machine,
        Machine.State.BUSY,
        operator=operator,
        now=now,
        why=f"{job.number} started",
        current_job=job,
        progress=0.0,
    )
    spools.spool_book_start(job=job, machine=machine, actor=operator.get_username(), now=now)
    return job


@transaction.atomic
def job_pause(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """Pause a running job: running -> paused, and its machine goes `paused`."""
    job = _locked(job_id)
    _refuse_finished(job)
    _refuse_plated(job)
    if job.status == Status.PAUSED:
        raise DomainError(f"{job.number} is already paused")
    if job.status != Status.RUNNING:
        raise DomainError(f"{job.number} is {job.get_status_display()}; only a running job pauses")
    machine = _manual_machine(job, "pause")
    _move(job, to=Status.PAUSED, step="pause", operator=operator, now=now, message="paused")
    _machine_to(
        machine, Machine.State.PAUSED, operator=operator, now=now, why=f"{job.number} paused"
    )
    return job


@transaction.atomic
def job_continue(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """Carry on with a paused job: paused -> running, and its machine is busy again."""
    job = _locked(job_id)
    _refuse_finished(job)
    _refuse_plated(job)
    if job.status != Status.PAUSED:
        raise DomainError(f"{job.number} is not paused")
    machine = _manual_machine(job, "resume")
    _move(job, to=Status.RUNNING, step="continue", operator=operator, now=now, message="resumed")
    _machine_to(
        machine, Machine.State.BUSY, operator=operator, now=now, why=f"{job.number} resumed"
    )
    return job


@transaction.atomic
def job_finish(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """The machine finished the job: it waits for QC and the machine is idle."""
    job = _locked(job_id)
    _refuse_finished(job)
    _refuse_plated(job)
    if job.status in NOT_STARTED:
        raise DomainError(f"{job.number} has not been started; start it before finishing")
    if job.status == Status.PAUSED:
        raise DomainError(f"{job.number} is paused; resume it before finishing")
    if job.status != Status.RUNNING:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; only a running job finishes"
        )
    machine = _manual_machine(job, "finish")
    _move(
        job,
        to=Status.AWAITING_QC,
        step="finish",
        operator=operator,
        now=now,
        message="finished",
        finished_at=now,
        progress=100.0,
    )
    _machine_to(
        machine,
        Machine.State.IDLE,
        operator=operator,
        now=now,
        why=f"{job.number} finished",
        current_job=None,
        progress=None,
    )
    spools.spool_book_end(job=job, actor=operator.get_username(), now=now)
    return job


@transaction.atomic
def job_measure(
    *,
    job_id: int,
    values: dict[str, float],
    checks: tuple[TravelerCheck, ...],
    operator: AbstractBaseUser,
    now: datetime,
) -> list[Measurement]:
    """Store measured values (by check label) with the job; the ones out of tolerance are
    returned. Measuring again overwrites a value."""
    job = _locked(job_id)
    _refuse_finished(job)
    if job.status != Status.AWAITING_QC:
        raise DomainError(f"{job.number} is {job.get_status_display()}; measure it after finishing")
    refuse_unknown_checks(values, checks)
    job.measurements = {**job.measurements, **values}
    job.save(update_fields=["measurements"])
    measured = measurements_for(job.measurements, checks)
    message = "measured " + "; ".join(f"{m.label} {m.value:g} mm" for m in measured)
    where = f" at {job.machine.name}" if job.machine else ""
    lifecycle.job_record(
        job, step="measure", actor=operator.get_username(), now=now, message=f"{message}{where}"
    )
    return [m for m in measured if not m.in_tolerance]


@transaction.atomic
def job_qc(
    *,
    job_id: int,
    passed: int,
    scrapped: int,
    checks: tuple[TravelerCheck, ...],
    operator: AbstractBaseUser,
    now: datetime,
    reason: str = "",
) -> Job | None:
    """Record QC: `passed` copies are good, `scrapped` are not (they add up to the quantity).

    Passing needs every checklist dimension measured and in tolerance. Scrapped copies get
    one replacement job for that quantity, through the whole pipeline; returns it (or None).
    A paused job (on a manual machine) can only be scrapped whole: it ends mid-run and its
    machine is free again. A second call finds the job done or scrapped and is refused, so
    there is never a second replacement.
    """
    job = _locked(job_id)
    _refuse_finished(job)
    _refuse_plated(job)
    mid_run = job.status == Status.PAUSED
    if job.status != Status.AWAITING_QC and not mid_run:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; QC comes after the job is finished"
        )
    if passed < 0 or scrapped < 0 or passed + scrapped != job.quantity:
        raise DomainError(
            f"passed and scrapped must add up to the job's {job.quantity} "
            f"(got {passed} + {scrapped})"
        )
    if mid_run:
        if passed:
            raise DomainError(
                f"{job.number} is paused mid-run: scrap all {job.quantity}, or resume and "
                "finish it before QC"
            )
        machine = job.machine
        if machine is not None and machine.is_connected:
            raise DomainError(
                f"{machine.name} is driven by {machine.get_connector_display()}: cancel the "
                "print there; it reports the cancel and the job is remade"
            )
    if passed:
        refusal = qc_refusal(job, checks)
        if refusal is not None:
            raise DomainError(refusal)
    if scrapped and not reason.strip():
        raise DomainError("give a reason for scrapping")
    to = Status.DONE if passed else Status.SCRAPPED
    what = "scrapped while paused: " if mid_run else "QC: "
    message = f"{what}{passed} passed, {scrapped} scrapped" + (
        f" ({reason.strip()})" if scrapped else ""
    )
    fields: dict[str, Any] = {"qc_passed": passed, "qc_scrapped": scrapped}
    if scrapped:
        fields["reason"] = f"scrapped {scrapped}: {reason.strip()}"[:2000]
    if mid_run:
        fields["finished_at"] = now
    _move(
        job,
        to=to,
        step="scrap" if mid_run else "qc",
        operator=operator,
        now=now,
        message=message,
        **fields,
    )
    if mid_run and job.machine is not None:
        _machine_to(
            job.machine,
            Machine.State.IDLE,
            operator=operator,
            now=now,
            why=f"{job.number} scrapped mid-run",
            current_job=None,
            progress=None,
        )
    if mid_run:
        # The print stopped part-way: it used the share of its filament it got through.
        spools.spool_book_end(
            job=job,
            actor=operator.get_username(),
            now=now,
            used_share=spools.used_share_of_stopped(job),
        )
    return (
        _replace_scrapped(job, quantity=scrapped, operator=operator, now=now) if scrapped else None
    )


def refuse_unknown_checks(values: Mapping[str, float], checks: tuple[TravelerCheck, ...]) -> None:
    unknown = sorted(set(values) - {check.label for check in checks})
    if unknown:
        raise DomainError(f"{', '.join(unknown)} is not on the QC checklist")


def qc_refusal(job: Job, checks: tuple[TravelerCheck, ...]) -> str | None:
    """Why the job's parts cannot pass QC yet (a dimension not measured, or out of
    tolerance); None when they may."""
    return measured_refusal(job.measurements, checks)


def measured_refusal(values: Mapping[str, float], checks: tuple[TravelerCheck, ...]) -> str | None:
    """Why parts with these measured values cannot pass QC yet; None when they may."""
    measured = {m.label: m for m in measurements_for(values, checks)}
    for check in checks:
        if check.label not in measured:
            return f"measure {check.label} before passing QC"
        if not measured[check.label].in_tolerance:
            m = measured[check.label]
            return (
                f"{m.label} is {m.value:g} mm, outside {check.nominal} {check.tolerance}: "
                "QC failed; scrap the part(s) instead"
            )
    return None


def _refuse_plated(job: Job) -> None:
    """A job whose copies are on plates is started, finished and QC'd with its plates."""
    plate = (
        job.plate_copies.select_related("plate").order_by("plate_id").first() if job.pk else None
    )
    if plate is not None:
        raise DomainError(
            f"{job.number} is made on plate {plate.plate.number}: start, finish and QC it "
            "there, copy by copy"
        )


def _replace_scrapped(job: Job, *, quantity: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """A new job for the scrapped copies from the start of the pipeline; its steps find the
    geometry and G-code already made (artifacts are addressed by their inputs)."""
    from production.services import job_enqueue

    replacement = lifecycle.job_create(
        by=By.OPERATOR,
        step="replacement",
        actor=operator.get_username(),
        now=now,
        message=f"remakes {quantity} scrapped from {job.number}",
        line_id=job.line_id,
        quantity=quantity,
        replaces=job,
    )
    transaction.on_commit(lambda: job_enqueue(job_id=replacement.pk))
    return replacement


# --- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineProgress:
    ordered: int
    passed: int

    @property
    def is_open(self) -> bool:
        """The line stays open until its full quantity has passed QC."""
        return self.passed < self.ordered


def line_progress(line: OrderLine) -> LineProgress:
    """How many of the line's parts passed QC, against how many were ordered."""
    passed = line.jobs.aggregate(total=Sum("qc_passed"))["total"] or 0
    return LineProgress(ordered=line.quantity, passed=passed)
