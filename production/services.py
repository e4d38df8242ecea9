"""Write paths for jobs: creating them for an order, queueing, failing, reconciling."""

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError
from kombu.utils.uuid import uuid

from microfactory.errors import DomainError
from orders.models import Order
from production import broker, cluster, lifecycle, plating
from production.lifecycle import By
from production.models import Job

logger = logging.getLogger(__name__)

# Which Celery queue runs the step that starts from each status: CPU-heavy CAD work never
# starves routing (ARCHITECTURE.md, "Processes and queues").
QUEUE_FOR_STATUS: dict[str, str] = {
    Job.Status.QUEUED: "geometry",
    Job.Status.GEOMETRY_BUILT: "geometry",
    Job.Status.VALIDATED: "toolpath",
    # The G-code is verified: the batch router's. The traveler PDF is rendered beside, on
    # `documents` (TRAVELER_QUEUE): routing never waits for it (#19).
    Job.Status.TOOLPATH_READY: "routing",
    Job.Status.TRAVELER_READY: "routing",
}
TRAVELER_QUEUE = "documents"
# And the priority of each step's message (Redis: 0 is taken first). kombu's Redis transport
# keeps one list per queue and priority step (0, 3, 6, 9) and a worker takes from the first
# non-empty one, priority before queue, across every queue it consumes: a job's later steps
# go before any new geometry build, so under a burst of orders the first ones finish in
# seconds instead of after every build (issue #19, 6b); the work done is the same. Messages
# sent without one (previews, estimators, the router's own) count as 0.
PRIORITY_FOR_STATUS: dict[str, int] = {
    Job.Status.QUEUED: 9,
    Job.Status.GEOMETRY_BUILT: 6,
    Job.Status.VALIDATED: 3,
    Job.Status.TOOLPATH_READY: 0,
    Job.Status.TRAVELER_READY: 0,
}
# The traveler is the last step: taken before any earlier one, so the paper follows its job
# by seconds, not after a burst's every build (the work done is the same).
TRAVELER_PRIORITY = 0


def jobs_create_for_order(
    *,
    order: Order,
    actor: str,
    hold: Mapping[int, str] | None = None,
    line_ids: list[int] | None = None,
) -> list[Job]:
    """One QUEUED job per order line (or per line of `line_ids`), each enqueued once the
    surrounding transaction commits; a line in `hold` gets a held job (Job.hold: the router
    leaves it waiting)."""
    hold = hold or {}
    lines = order.lines.select_related("revision__family").order_by("pk")
    if line_ids is not None:
        lines = lines.filter(pk__in=line_ids)
    new = []
    for line in lines:
        held = hold.get(line.pk, "")
        message = f"{line.quantity} x {line.revision.label} for {order.number}"
        new.append(
            (
                message + (f"; held: {held}" if held else ""),
                {"line": line, "quantity": line.quantity, "hold": held[:200]},
            )
        )
    jobs = lifecycle.jobs_create(
        by=By.CUSTOMER, step="order", actor=actor, now=timezone.now(), new=new
    )
    for job in jobs:
        transaction.on_commit(partial(job_enqueue, job_id=job.pk))
    return jobs


def jobs_release(*, line_ids: list[int]) -> list[int]:
    """Clear the hold of these lines' jobs and send those waiting for a machine to the router
    once the caller's transaction commits; the ids released."""
    held = dict(
        Job.objects.filter(line_id__in=line_ids).exclude(hold="").values_list("pk", "status")
    )
    Job.objects.filter(pk__in=held).update(hold="")
    for job_id, status in held.items():
        if status in lifecycle.TO_ROUTE:  # the others reach the router by themselves
            transaction.on_commit(partial(job_enqueue, job_id=job_id))
    return list(held)


# Jobs no machine has started: an order whose jobs are all here (or ended) can be cancelled.
JOB_NOT_STARTED = frozenset({*lifecycle.BEFORE_A_MACHINE, Job.Status.ROUTED})
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
    *,
    order_id: int,
    actor: str,
    message: str,
    reason: str,
    now: datetime,
    line_ids: list[int] | None = None,
) -> list[int]:
    """Cancel every job of an order (or only of `line_ids`) while no machine has started any;
    the ids cancelled.

    Refused (DomainError, nothing changed) when a machine has begun one. Jobs are locked and
    moved from the status we saw, so a step finishing meanwhile finds its job cancelled and
    drops its result. Call inside the order's transaction.
    """
    with transaction.atomic():
        of_order = Job.objects.select_for_update(of=("self",)).filter(line__order_id=order_id)
        if line_ids is not None:
            of_order = of_order.filter(line_id__in=line_ids)
        jobs = list(of_order.select_related("machine").order_by("pk"))
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
        # Their copies on plates not started are not printed: those plates are made again.
        plating.copies_cancel(job_ids=cancelled, actor=actor, now=now, reason=reason)
    return cancelled


def job_enqueue(*, job_id: int) -> bool:
    """Send the message for the job's next step; False when the job has nothing left to run.

    A pipeline step's message carries the status it was sent for (`expected`): it runs only
    while the job is still there, so a second message for the same step is harmless. A job
    whose G-code is verified goes to the one batch router instead, on the routing queue
    (routing is never done by two routers racing for a machine's queue limit), and, new from
    its toolpath step, its traveler is rendered beside (job_traveler_enqueue).
    """
    from production import tasks

    job = Job.objects.filter(pk=job_id).only("status").first()
    if job is None or job.status not in QUEUE_FOR_STATUS:
        return False
    # Chosen here and kept on the job: the reconciler looks for it in the broker (broker.py).
    task_id = uuid()
    try:
        if job.status in lifecycle.TO_ROUTE:
            tasks.route_waiting_jobs.apply_async(
                queue=QUEUE_FOR_STATUS[job.status],
                task_id=task_id,
                priority=PRIORITY_FOR_STATUS[job.status],
            )
        else:
            tasks.advance_job.apply_async(
                args=(job_id, job.status),
                queue=QUEUE_FOR_STATUS[job.status],
                task_id=task_id,
                priority=PRIORITY_FOR_STATUS[job.status],
            )
    except OperationalError as error:
        # The job is safe in the database; the reconciler enqueues it once the broker is back.
        logger.warning("could not enqueue job %s (broker unreachable: %s)", job_id, error)
        return False
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now(), enqueued_task_id=task_id)
    if job.status == Job.Status.TOOLPATH_READY:
        job_traveler_enqueue(job_id=job_id)
    return True


def job_traveler_enqueue(*, job_id: int) -> None:
    """Send the message that renders the job's traveler PDF (production.runner.
    job_traveler_render); one for a job that has it already does nothing."""
    from production import tasks

    try:
        tasks.render_traveler.apply_async(
            args=(job_id,), queue=TRAVELER_QUEUE, priority=TRAVELER_PRIORITY
        )
    except OperationalError as error:  # travelers_reconcile sends it once the broker is back
        logger.warning("could not enqueue the traveler of job %s (broker: %s)", job_id, error)


def travelers_reconcile(*, now: datetime) -> list[int]:
    """Send the traveler render again for jobs past their toolpath step and not ended that
    still have no traveler PDF JOB_STALE_AFTER_S after their last move (its message was lost,
    or the render crashed); the ids. Only for moves of the last hour: a render that keeps
    failing is not sent every pass for ever (the station renders one when it prints)."""
    from production.models import Artifact, JobArtifact

    stale = now - timedelta(seconds=settings.JOB_STALE_AFTER_S)
    missing = list(
        Job.objects.filter(status__in=(*lifecycle.TO_ROUTE, *Job.ON_MACHINE))
        .filter(status_changed_at__lt=stale, status_changed_at__gte=now - timedelta(hours=1))
        .exclude(pk__in=JobArtifact.objects.filter(kind=Artifact.Kind.TRAVELER).values("job_id"))
        .order_by("status_changed_at")
        .values_list("pk", flat=True)[: settings.RECONCILE_BATCH]
    )
    for job_id in missing:
        job_traveler_enqueue(job_id=job_id)
    return missing


def job_claim(*, job: Job, actor: str, now: datetime, holder: str = "") -> bool:
    """Record that `holder` (a worker incarnation, production.cluster.holder_id; `actor` when
    empty) runs the step of the status the job has in memory, for JOB_CLAIM_S; False (nothing
    written) if the job has moved on meanwhile.

    The claim does not keep a second run of the same step out: a message redelivered because
    its worker was lost arrives while the dead worker's claim still looks alive, and refusing
    it would leave the job waiting for the claim to expire. Two runs of one step are wasted
    work, never a wrong result: the first to finish moves the job, the other keeps nothing.
    What the claim is for is the reconciler, which re-enqueues a job once its claim expired
    or its holder is gone from the cluster (production.cluster).
    """
    expires = now + timedelta(seconds=settings.JOB_CLAIM_S)
    holder = (holder or actor)[:150]
    claimed = Job.objects.filter(pk=job.pk, status=job.status).update(
        claimed_at=now, claimed_by=holder, claim_expires_at=expires
    )
    if not claimed:
        return False
    job.claimed_at, job.claimed_by, job.claim_expires_at = now, holder, expires
    return True


def job_fail(*, job_id: int, reason: str, actor: str, expected: str | None = None) -> bool:
    """Fail the run of the step that started from `expected`: FAILED if the job is still
    there, nothing otherwise (a late failure of an old message leaves a job that moved on
    alone). A second call changes nothing.

    `expected=None` comes from messages sent before they carried their status: the job
    fails if the pipeline has not finished it, as it used to.
    """
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return False
        if expected is not None and job.status != expected:
            logger.info(
                "%s: not failed by a late failure of its %s step: it is %s now",
                job.number,
                expected,
                job.status,
            )
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


# The statuses whose step a worker runs from a message: what the reconciler watches. A job
# waiting for the batch router is found by its periodic pass (MF_ROUTE_INTERVAL_S) whatever
# happened to its message.
STEP_STATUSES = tuple(status for status in QUEUE_FOR_STATUS if status not in lifecycle.TO_ROUTE)


class _ClusterOnce:
    """The cluster's view, asked at most once per reconciler pass (each question waits up to
    WORKER_PING_TIMEOUT_S) and only when a rule needs it."""

    def __init__(self, ask: Callable[[], cluster.ClusterView | None]):
        self._ask = ask
        self._view: cluster.ClusterView | None = None
        self._asked = False

    def __call__(self) -> cluster.ClusterView | None:
        if not self._asked:
            self._view, self._asked = self._ask(), True
        return self._view

    def again(self) -> cluster.ClusterView | None:
        """Asked once more: a second look before taking anything from anyone."""
        return self._ask()


def _ask_cluster() -> cluster.ClusterView | None:
    return cluster.cluster_view(timeout=settings.WORKER_PING_TIMEOUT_S)


def jobs_reconcile(
    *, now: datetime, ask_cluster: Callable[[], cluster.ClusterView | None] = _ask_cluster
) -> list[int]:
    """Re-enqueue the step of every job whose message is lost; the ids re-enqueued.

    A job is left alone while a live worker holds a claim on its step, and while its message
    waits in its queue or is reserved by a live worker, however long (a backlog is not a lost
    message). It is re-enqueued when:
    - its claim's holder is gone from the cluster (production.cluster: every live worker
      answers a broadcast, twice asked): a worker took the step and died (killed, out of
      memory, host lost). Its claim ends now, and the step is sent again at once;
    - its claim expired and nothing was sent since: the same, where the cluster cannot say
      (the claim lasts JOB_CLAIM_S, the step's hard time limit). Its own message may come back
      from Redis after the visibility timeout: harmless, it finds the job moved on or runs the
      step once more;
    - no message was sent since its status changed, JOB_STALE_AFTER_S ago or more: the broker
      was down, the web process died between committing an order and sending its jobs, or a
      worker died between finishing a step and sending the next (the job rows are the outbox);
    - its message (the last one sent since its status changed, or since its claim ended),
      sent JOB_LOST_GRACE_S ago or more and not claimed since, is in the broker neither
      queued nor reserved by a live worker: the broker lost it (a Redis restarted without its
      data), or a worker that died had reserved it. Where the broker cannot say (not Redis,
      unreachable, more than RECONCILE_SCAN_MAX messages), and for messages sent before their
      task id was kept, the message counts as lost once it has waited JOB_QUEUE_WAIT_MAX_S,
      longer than any healthy backlog. Where the cluster cannot say, a reserved message counts
      as held.
    A message re-sent needlessly finds its job moved on and is dropped: nothing runs twice.
    A claim taken before the job's last status change was for an earlier step, and does not
    count; nor does a send from before it. A second call re-sends nothing the first did.
    """
    view = _ClusterOnce(ask_cluster)
    claimed = Q(claimed_at__isnull=False, claimed_at__gte=F("status_changed_at"))
    sent = Q(enqueued_at__isnull=False, enqueued_at__gte=F("status_changed_at"))
    sent_after_claim = Q(enqueued_at__isnull=False, enqueued_at__gt=F("claim_expires_at"))
    unsent_since = now - timedelta(seconds=settings.JOB_STALE_AFTER_S)
    waiting_since = now - timedelta(seconds=settings.JOB_QUEUE_WAIT_MAX_S)
    in_steps = Job.objects.filter(status__in=STEP_STATUSES)
    # First the claims of workers gone: ended here, they are re-sent with the died rule below.
    ended = _claims_end_where_holder_gone(
        in_steps.filter(claimed & Q(claim_expires_at__gte=now) & ~sent_after_claim),
        view=view,
        now=now,
    )
    died = claimed & Q(claim_expires_at__lt=now) & ~sent_after_claim
    never_sent = ~claimed & ~sent & Q(status_changed_at__lt=unsent_since)
    # A message was sent for the step and no worker has taken the step since.
    waiting = (~claimed & sent) | (claimed & sent_after_claim)
    lost = _jobs_with_messages_lost(in_steps.filter(waiting), now=now, view=view)
    if lost is None:  # the broker cannot say: every waiting message by its age
        by_age = waiting & Q(enqueued_at__lt=waiting_since)
    else:  # only messages sent before their task id was kept
        by_age = waiting & Q(enqueued_at__lt=waiting_since, enqueued_task_id="")
    stale = list(
        in_steps.filter(died | never_sent | by_age | Q(pk__in=ended))
        .order_by("status_changed_at")
        .values_list("pk", flat=True)[: max(0, settings.RECONCILE_BATCH - len(lost or []))]
    )
    again = [*(lost or []), *(job_id for job_id in stale if job_id not in (lost or []))]
    for job_id in again:
        logger.info("re-enqueueing stuck job %s", job_id)
        job_enqueue(job_id=job_id)
    return again


def _claims_end_where_holder_gone(
    claims: QuerySet[Job], *, view: _ClusterOnce, now: datetime
) -> list[int]:
    """End the live claims (of `claims`) whose holder is gone from the cluster: their
    claim_expires_at becomes `now`, so the step counts as died and the message the reconciler
    sends next counts as sent after the claim. The ids of the jobs whose claim ended.

    Judged only for claims a worker incarnation took before the cluster was asked (a worker
    that started since could not have answered), and only when the cluster answered at all.
    """
    held = [
        (job_id, holder, at)
        for job_id, holder, at in claims.exclude(claimed_by="").values_list(
            "pk", "claimed_by", "claimed_at"
        )
        if cluster.holder_node(holder)
    ]
    if not held:
        return []  # nothing to judge: the cluster is not asked
    seen = view()
    if seen is None:
        return []
    missing = {
        holder
        for _job_id, holder, at in held
        if holder not in seen.holders and at is not None and at.timestamp() < seen.asked_at
    }
    if not missing:
        return []
    # Asked again before taking anything from anyone: a worker slow to answer once is kept.
    again = view.again()
    if again is None:
        return []
    gone = missing - again.holders
    ended = []
    for job_id, holder, at in held:
        if holder in gone and Job.objects.filter(
            pk=job_id, claimed_by=holder, claimed_at=at, claim_expires_at__gte=now
        ).update(claim_expires_at=now):
            logger.warning(
                "job %s: its step's worker %s is gone from the cluster; sending it again",
                job_id,
                holder,
            )
            ended.append(job_id)
    return ended


def _jobs_with_messages_lost(
    waiting: QuerySet[Job], *, now: datetime, view: _ClusterOnce
) -> list[int] | None:
    """The jobs among `waiting` whose last message, sent JOB_LOST_GRACE_S ago or more, the
    broker holds neither in its queue nor reserved by a live worker (at most RECONCILE_BATCH,
    longest waiting first); None when the broker cannot say (logged, once per pass).

    The grace keeps out a message whose send is still being recorded, and one sent by a step
    that finished while we looked. A reserved message counts as lost only when the live
    workers, asked twice, hold it neither time: one a worker took and then died with stays
    reserved in Redis until the visibility timeout.
    """
    candidates = waiting.exclude(enqueued_task_id="").filter(
        enqueued_at__lt=now - timedelta(seconds=settings.JOB_LOST_GRACE_S)
    )
    sent = dict(candidates.order_by("enqueued_at").values_list("pk", "enqueued_task_id"))
    if not sent:
        return []  # nothing to look for: the broker is not asked
    queues = sorted({QUEUE_FOR_STATUS[status] for status in STEP_STATUSES})
    missing = list(sent)
    try:
        # Twice before a message counts as lost: one a worker was taking at the first look
        # (popped from its queue, not yet recorded as reserved) is reserved at the second.
        for _ in range(2):
            held = broker.broker_task_ids(queues=queues, limit=settings.RECONCILE_SCAN_MAX)
            missing = [job_id for job_id in missing if sent[job_id] not in held]
            if not missing:
                break
    except broker.BrokerUnreadable as why:
        logger.warning(
            "reconciler: %s; a step message counts as lost after %s s unclaimed this pass",
            why,
            settings.JOB_QUEUE_WAIT_MAX_S,
        )
        return None
    # Asked after the broker was read: a live worker that reserved one of these holds it still
    # (or finished it, and its job moved on: the last check below leaves it out).
    reserved = [job_id for job_id in sent if sent[job_id] in held.reserved]
    orphaned = _reserved_by_no_live_worker(reserved, sent=sent, view=view)
    missing = [*missing, *orphaned]
    if not missing:
        return []
    # A worker took the step, or the job moved on, while we looked: its message was not lost.
    still = dict(
        candidates.filter(pk__in=missing[: settings.RECONCILE_BATCH]).values_list(
            "pk", "enqueued_task_id"
        )
    )
    return [job_id for job_id in missing if still.get(job_id) == sent[job_id]][
        : settings.RECONCILE_BATCH
    ]


def _reserved_by_no_live_worker(
    reserved: list[int], *, sent: dict[int, str], view: _ClusterOnce
) -> list[int]:
    """Of the jobs whose message is reserved, those no live worker holds, asked twice (a
    worker slow to answer the first question is not robbed); none when the cluster cannot say."""
    if not reserved:
        return []
    first = view()
    if first is None:
        return []
    unheld = [job_id for job_id in reserved if not first.holds(sent[job_id])]
    if not unheld:
        return []
    second = view.again()
    if second is None:
        return []
    orphaned = [job_id for job_id in unheld if not second.holds(sent[job_id])]
    for job_id in orphaned:
        logger.warning("job %s: its message was reserved by a worker that is gone", job_id)
    return orphaned
