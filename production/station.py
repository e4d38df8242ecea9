"""The shop-floor station: what an operator does to a job at a machine, as services.

    routed/dispatched -start-> running -finish-> awaiting_qc -qc-> done | scrapped
                               running -pause-> (machine paused) -continue-> running

Pausing is a state of the machine, not of the job: the job stays `running` (so routing,
telemetry and re-routing, which know `running`, keep working) while its machine is `paused`.

Every action locks the job row (select_for_update) and checks its status before moving it,
so a double tap or a resent form finds the job already moved and is refused, changing
nothing. Each writes a JobEvent with the operator as actor and the machine in the message.
Start and finish are for machines run by hand (the manual connector); a networked printer
reports its own start and finish through telemetry. QC applies to every job.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Sum

from microfactory.errors import DomainError
from orders.models import Membership, OrderLine
from production.models import Job, JobEvent, Machine
from production.pipeline.traveler import Traveler, TravelerCheck

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
_JOB_URL = re.compile(r"/station/jobs/(\d+)/?")
_JOB_NUMBER = re.compile(r"^(?:J-?)?0*(\d+)$", re.IGNORECASE)


def is_operator(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Staff, or a member with the operator role: the only users the station lets in."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    return Membership.objects.filter(user=user, role=Membership.Role.OPERATOR).exists()


def job_id_from_code(code: str) -> int | None:
    """The job id in what a scanner or a person typed: "J-000042", "42" or the QR's URL."""
    code = code.strip()
    url = _JOB_URL.search(code)
    if url:
        return int(url.group(1))
    number = _JOB_NUMBER.match(code)
    return int(number.group(1)) if number and int(number.group(1)) > 0 else None


def job_traveler(job: Job, *, now: datetime) -> Traveler:
    """The values the job's traveler prints (instructions, QC checklist), as of `now`."""
    from production.runner import traveler_for  # the runner is the one place that builds them

    return traveler_for(job, printed_at=now)


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


def measurements_for(job: Job, checks: tuple[TravelerCheck, ...]) -> list[Measurement]:
    """The job's recorded values against its checklist; checks not measured yet are left out."""
    measured = []
    for check in checks:
        if check.label in job.measurements:
            measured.append(
                Measurement(
                    check.label,
                    float(job.measurements[check.label]),
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


def _record(
    job: Job, *, to: str, step: str, operator: AbstractBaseUser, now: datetime, message: str
) -> None:
    where = f" at {job.machine.name}" if job.machine else ""
    JobEvent.objects.create(
        job=job,
        step=step,
        from_status=job.status,
        to_status=to,
        actor=operator.get_username()[:150],
        started_at=now,
        finished_at=now,
        duration_ms=0,
        message=f"{message}{where}"[:2000],
    )
    job.status, job.status_changed_at = to, now


@transaction.atomic
def job_start(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """Start a routed or dispatched job on its (manual) machine; refused once started."""
    job = _locked(job_id)
    _refuse_finished(job)
    if job.status not in NOT_STARTED:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; only a job waiting at its machine "
            "can be started"
        )
    machine = _manual_machine(job, "start")
    machine = Machine.objects.select_for_update().get(pk=machine.pk)
    other = Job.objects.filter(machine=machine, status=Status.RUNNING).exclude(pk=job.pk).first()
    if other is not None:
        raise DomainError(f"{machine.name} is running {other.number}; finish it first")
    if machine.state not in (Machine.State.IDLE, Machine.State.BUSY):
        raise DomainError(f"{machine.name} is {machine.get_state_display()}; it cannot start")
    _record(job, to=Status.RUNNING, step="start", operator=operator, now=now, message="started")
    job.started_at, job.progress = now, 0.0
    job.save(update_fields=["status", "status_changed_at", "started_at", "progress"])
    Machine.objects.filter(pk=machine.pk).update(
        state=Machine.State.BUSY, state_changed_at=now, current_job=job, progress=0.0
    )
    return job


@transaction.atomic
def job_pause(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """Pause a running job: its machine goes `paused`; the job stays running."""
    job = _locked(job_id)
    _refuse_finished(job)
    if job.status != Status.RUNNING:
        raise DomainError(f"{job.number} is {job.get_status_display()}; only a running job pauses")
    machine = _manual_machine(job, "pause")
    if machine.state == Machine.State.PAUSED:
        raise DomainError(f"{job.number} is already paused")
    _record(job, to=Status.RUNNING, step="pause", operator=operator, now=now, message="paused")
    Machine.objects.filter(pk=machine.pk).update(state=Machine.State.PAUSED, state_changed_at=now)
    return job


@transaction.atomic
def job_continue(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """Carry on with a paused job: its machine is busy again."""
    job = _locked(job_id)
    _refuse_finished(job)
    machine = _manual_machine(job, "resume")
    if job.status != Status.RUNNING or machine.state != Machine.State.PAUSED:
        raise DomainError(f"{job.number} is not paused")
    _record(job, to=Status.RUNNING, step="continue", operator=operator, now=now, message="resumed")
    Machine.objects.filter(pk=machine.pk).update(state=Machine.State.BUSY, state_changed_at=now)
    return job


@transaction.atomic
def job_finish(*, job_id: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """The machine finished the job: it waits for QC and the machine is idle."""
    job = _locked(job_id)
    _refuse_finished(job)
    if job.status in NOT_STARTED:
        raise DomainError(f"{job.number} has not been started; start it before finishing")
    if job.status != Status.RUNNING:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; only a running job finishes"
        )
    machine = _manual_machine(job, "finish")
    if machine.state == Machine.State.PAUSED:
        raise DomainError(f"{job.number} is paused; resume it before finishing")
    _record(
        job, to=Status.AWAITING_QC, step="finish", operator=operator, now=now, message="finished"
    )
    job.finished_at, job.progress = now, 100.0
    job.save(update_fields=["status", "status_changed_at", "finished_at", "progress"])
    Machine.objects.filter(pk=machine.pk).update(
        state=Machine.State.IDLE, state_changed_at=now, current_job=None, progress=None
    )
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
    labels = {check.label for check in checks}
    unknown = sorted(set(values) - labels)
    if unknown:
        raise DomainError(f"{', '.join(unknown)} is not on the QC checklist")
    job.measurements = {**job.measurements, **values}
    job.save(update_fields=["measurements"])
    measured = measurements_for(job, checks)
    message = "measured " + "; ".join(f"{m.label} {m.value:g} mm" for m in measured)
    _record(job, to=job.status, step="measure", operator=operator, now=now, message=message)
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
    A second call finds the job done or scrapped and is refused, so there is never a second
    replacement.
    """
    job = _locked(job_id)
    _refuse_finished(job)
    if job.status != Status.AWAITING_QC:
        raise DomainError(
            f"{job.number} is {job.get_status_display()}; QC comes after the job is finished"
        )
    if passed < 0 or scrapped < 0 or passed + scrapped != job.quantity:
        raise DomainError(
            f"passed and scrapped must add up to the job's {job.quantity} "
            f"(got {passed} + {scrapped})"
        )
    if passed:
        measured = {m.label: m for m in measurements_for(job, checks)}
        for check in checks:
            if check.label not in measured:
                raise DomainError(f"measure {check.label} before passing QC")
            if not measured[check.label].in_tolerance:
                m = measured[check.label]
                raise DomainError(
                    f"{m.label} is {m.value:g} mm, outside {check.nominal} {check.tolerance}: "
                    "QC failed; scrap the part(s) instead"
                )
    if scrapped and not reason.strip():
        raise DomainError("give a reason for scrapping")
    to = Status.DONE if passed else Status.SCRAPPED
    message = f"QC: {passed} passed, {scrapped} scrapped" + (
        f" ({reason.strip()})" if scrapped else ""
    )
    _record(job, to=to, step="qc", operator=operator, now=now, message=message)
    job.qc_passed, job.qc_scrapped = passed, scrapped
    update = ["status", "status_changed_at", "qc_passed", "qc_scrapped"]
    if scrapped:
        job.reason = f"scrapped {scrapped}: {reason.strip()}"[:2000]
        update.append("reason")
    job.save(update_fields=update)
    return (
        _replace_scrapped(job, quantity=scrapped, operator=operator, now=now) if scrapped else None
    )


def _replace_scrapped(job: Job, *, quantity: int, operator: AbstractBaseUser, now: datetime) -> Job:
    """A new job for the scrapped copies from the start of the pipeline; its steps find the
    geometry and G-code already made (artifacts are addressed by their inputs)."""
    from production.services import job_enqueue

    replacement = Job.objects.create(
        line_id=job.line_id, quantity=quantity, replaces=job, status_changed_at=now
    )
    JobEvent.objects.create(
        job=replacement,
        step="replacement",
        from_status="",
        to_status=Status.QUEUED,
        actor=operator.get_username()[:150],
        started_at=now,
        finished_at=now,
        duration_ms=0,
        message=f"remakes {quantity} scrapped from {job.number}",
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
