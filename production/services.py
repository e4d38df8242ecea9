"""Write paths for jobs: creating them for an order, queueing, failing, reconciling."""

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from microfactory.errors import DomainError
from orders.models import Order
from production import lifecycle
from production.lifecycle import By
from production.models import Job

logger = logging.getLogger(__name__)

# Which Celery queue runs the step that starts from each status: CPU-heavy CAD work never
# starves routing (ARCHITECTURE.md, "Processes and queues").
QUEUE_FOR_STATUS: dict[str, str] = {
    Job.Status.QUEUED: "geometry",
    Job.Status.GEOMETRY_BUILT: "geometry",
    Job.Status.VALIDATED: "toolpath",
    Job.Status.TOOLPATH_READY: "documents",
    Job.Status.TRAVELER_READY: "routing",
}


def jobs_create_for_order(*, order: Order, actor: str) -> list[Job]:
    """One QUEUED job per order line, each enqueued once the surrounding transaction commits."""
    now = timezone.now()
    jobs = []
    for line in order.lines.all():
        job = lifecycle.job_create(
            by=By.CUSTOMER,
            step="order",
            actor=actor,
            now=now,
            message=f"{line.quantity} x {line.revision.label} for {order.number}",
            line=line,
            quantity=line.quantity,
        )
        transaction.on_commit(partial(job_enqueue, job_id=job.pk))
        jobs.append(job)
    return jobs


# Jobs no machine has started: an order whose jobs are all here (or ended) can be cancelled.
JOB_NOT_STARTED = frozenset({*lifecycle.PIPELINE, Job.Status.ROUTED})
# Jobs that ended without making anything: they never stand in the way of a cancellation.
JOB_ENDED_EMPTY = frozenset({Job.Status.REJECTED, Job.Status.FAILED, Job.Status.CANCELLED})


def job_not_started(job: Job) -> bool:
    """No machine has begun the job: still in the pipeline, routed, or on a manual
    machine's list (a networked printer may start a dispatched job at any moment)."""
    if job.status in JOB_NOT_STARTED:
        return True
    return (
        job.status == Job.Status.DISPATCHED
        and job.machine is not None
        and job.machine.connector == job.machine.Connector.MANUAL
    )


def jobs_cancel_for_order(
    *, order_id: int, actor: str, message: str, reason: str, now: datetime
) -> list[int]:
    """Cancel every job of an order while no machine has started any; the ids cancelled.

    Refused (DomainError, nothing changed) when a machine has begun one. Jobs are locked and
    moved from the status we saw, so a step finishing meanwhile finds its job cancelled and
    drops its result. Call inside the order's transaction.
    """
    with transaction.atomic():
        jobs = list(
            Job.objects.select_for_update(of=("self",))
            .filter(line__order_id=order_id)
            .select_related("machine")
            .order_by("pk")
        )
        started = [
            job for job in jobs if job.status not in JOB_ENDED_EMPTY and not job_not_started(job)
        ]
        if started:
            raise DomainError(
                "a machine has started on this order ("
                + ", ".join(f"{job.number} {job.get_status_display()}" for job in started)
                + "); it can no longer be cancelled"
            )
        cancelled = []
        for job in jobs:
            if job.status in JOB_ENDED_EMPTY:
                continue
            if not lifecycle.job_move(
                job,
                to=Job.Status.CANCELLED,
                by=By.CUSTOMER,
                step="cancel",
                actor=actor,
                now=now,
                message=message,
                machine=None,
                reason=reason[:2000],
            ):
                raise DomainError(f"{job.number} moved on meanwhile; try again")
            cancelled.append(job.pk)
    return cancelled


def job_enqueue(*, job_id: int) -> bool:
    """Send the job's next step to its queue; False when the job has nothing left to run."""
    from production.tasks import advance_job

    job = Job.objects.filter(pk=job_id).only("status").first()
    if job is None or job.status not in QUEUE_FOR_STATUS:
        return False
    try:
        advance_job.apply_async(args=(job_id,), queue=QUEUE_FOR_STATUS[job.status])
    except OperationalError as error:
        # The job is safe in the database; the reconciler enqueues it once the broker is back.
        logger.warning("could not enqueue job %s (broker unreachable: %s)", job_id, error)
        return False
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    return True


def job_fail(*, job_id: int, reason: str, actor: str) -> bool:
    """Mark an unfinished job FAILED; a second call (or a finished job) changes nothing."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return False
        return lifecycle.job_move(
            job,
            to=Job.Status.FAILED,
            by=By.SYSTEM,
            step="failure",
            actor=actor,
            now=now,
            message=reason,
            reason=reason[:2000],
        )


def jobs_reconcile(*, now: datetime) -> list[int]:
    """Re-enqueue unfinished jobs that have been silent longer than JOB_STALE_AFTER_S.

    A worker killed mid-step leaves its message unacknowledged in Redis until the visibility
    timeout; this sweep gets such a job moving sooner. Steps are idempotent, so a job that
    was merely slow and gets a second message does its step once.
    """
    cutoff = now - timedelta(seconds=settings.JOB_STALE_AFTER_S)
    stale = list(
        Job.objects.exclude(status__in=Job.PIPELINE_DONE)
        .filter(status_changed_at__lt=cutoff)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff))
        .order_by("status_changed_at")
        .values_list("pk", flat=True)[: settings.RECONCILE_BATCH]
    )
    for job_id in stale:
        logger.info("re-enqueueing stale job %s", job_id)
        job_enqueue(job_id=job_id)
    return stale
