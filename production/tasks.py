"""Celery tasks: thin wrappers around production.runner and production.services."""

import logging
import socket
import threading
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import InterfaceError, connections
from django.db import OperationalError as DatabaseUnavailable
from django.utils import timezone

from microfactory.errors import TransientError
from production import cluster, machines, services

logger = logging.getLogger(__name__)


class JobTask(Task[..., Any]):
    """A job task that gave up (crash, time limit, retries spent) fails the run it was for."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        # The status the message was sent for: the job fails only if it is still there, so a
        # late failure of an old message never fails a job that moved on. Messages sent
        # before they carried it have none (None: fail the job if unfinished, as before).
        expected = args[1] if len(args) > 1 else kwargs.get("expected")
        if job_id is not None:
            services.job_fail(
                job_id=job_id,
                expected=expected,
                reason=f"{type(exc).__name__}: {exc}",
                actor=f"worker {self.request.hostname or socket.gethostname()}",
            )


@shared_task(
    base=JobTask,
    bind=True,
    acks_late=True,  # safe because every step is idempotent
    reject_on_worker_lost=True,
    # Storage or network trouble, and a database that went away mid-step (PostgreSQL
    # restarted): the step runs again once it is back, instead of failing the job.
    autoretry_for=(TransientError, DatabaseUnavailable, InterfaceError),
    retry_backoff=True,
    max_retries=5,
    # Explicit, and below the Redis visibility timeout (settings.py), so a healthy step is
    # never handed to a second worker; the job's claim lasts as long (JOB_CLAIM_S).
    soft_time_limit=settings.JOB_STEP_TIME_LIMIT_S,
    time_limit=settings.JOB_STEP_HARD_TIME_LIMIT_S,
)
def advance_job(self: JobTask, job_id: int, expected: str | None = None) -> None:
    """Run the step the message was sent for, then send the next one (or hand the job to the
    batch router). A message whose job is no longer in `expected` is dropped: nothing runs.

    `expected` defaults to None for messages enqueued before messages carried it (in flight
    across the deploy that added it): those run the job's current step, as they used to.
    """
    from production.runner import job_advance  # keeps CadQuery and trimesh out of web processes

    node = self.request.hostname or socket.gethostname()
    if job_advance(
        job_id=job_id,
        actor=f"worker {node}",
        expected=expected,
        holder=cluster.holder_id(node),
    ):
        services.job_enqueue(job_id=job_id)


@shared_task(
    bind=True,
    acks_late=True,  # safe: a job whose traveler is stored renders nothing again
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=settings.JOB_STEP_TIME_LIMIT_S,
    time_limit=settings.JOB_STEP_HARD_TIME_LIMIT_S,
)
def render_traveler(self: Task[[int], bool], job_id: int) -> bool:
    """Render and keep the job's traveler PDF (queue `documents`), beside routing: nothing
    waits for it (#19). True when it rendered one. A crash leaves the job as it is: the
    reconciler sends it again, and the station renders one when it prints."""
    from production.runner import job_traveler_render  # WeasyPrint stays out of web processes

    return job_traveler_render(
        job_id=job_id, actor=f"worker {self.request.hostname or socket.gethostname()}"
    )


@shared_task
def reconcile_stuck_jobs() -> int:
    """Periodic (beat): get jobs moving whose task was lost."""
    now = timezone.now()
    return len(services.jobs_reconcile(now=now)) + len(services.travelers_reconcile(now=now))


@worker_ready.connect
def take_over_from_dead_workers(sender: Any = None, **kwargs: Any) -> None:
    """A worker that starts takes over at once the steps of workers that are gone (a worker
    restarted after it was killed is the usual case), instead of waiting for the next pass
    of the reconciler.

    In a thread of the worker's main process: the reconciler asks the cluster who is alive
    and waits for the answers, which this worker gives from its main loop too; a task would
    wait behind whatever its queues hold.
    """

    def run() -> None:
        try:
            taken = services.jobs_reconcile(now=timezone.now())
            logger.info("worker ready: took over %s job(s) from workers gone", len(taken))
        except Exception:  # the periodic pass does it later; never take the worker down
            logger.exception("worker ready: could not take over from workers gone")
        finally:
            connections.close_all()

    threading.Thread(target=run, name="take-over", daemon=True).start()


@worker_process_init.connect
def load_the_pipeline(**kwargs: Any) -> None:
    """Import the pipeline (trimesh, shapely, WeasyPrint, the slicer: ~1-2 s) as a worker
    process starts, not in the first step it runs: that step is some order's (issue #19)."""
    from production import runner  # noqa: F401


# --- machines (production.machines): dispatch, polling, routing passes -----------------------


@shared_task(bind=True, acks_late=True)  # safe: a second dispatch finds the job already sent
def dispatch_machine(self: Task[[int], list[int]], machine_id: int) -> list[int]:
    """Send a machine the jobs routed to it (manual: the operator's list)."""
    return machines.machine_dispatch(
        machine_id=machine_id, now=timezone.now(), actor=f"worker {self.request.hostname}"
    )


@shared_task
def poll_machines() -> int:
    """Periodic (beat): one poll task per networked machine not in maintenance."""
    from production.models import Machine

    ids = list(
        Machine.objects.exclude(connector=Machine.Connector.MANUAL)
        .exclude(state=Machine.State.MAINTENANCE)
        .values_list("pk", flat=True)
    )
    for machine_id in ids:
        # A poll not started within one interval is replaced by the next one.
        poll_machine.apply_async(args=(machine_id,), expires=settings.MF_CONNECTOR_POLL_S)
    return len(ids)


@shared_task(bind=True)
def poll_machine(self: Task[[int], None], machine_id: int) -> None:
    """Ask one machine how it is; record telemetry and move its job."""
    machines.machine_poll(
        machine_id=machine_id, now=timezone.now(), actor=f"poller {self.request.hostname}"
    )


@shared_task
def route_waiting_jobs() -> None:
    """The one batch router: periodic (beat), after a job's toolpath step, and when a machine
    frees up or comes back. Routes every waiting job and dispatches what is routed."""
    machines.machines_sweep(now=timezone.now(), actor="router")


@shared_task(bind=True, acks_late=True)  # safe: a plate is kept once (plate_runner)
def plan_plates(self: Task[[], list[int]]) -> list[int]:
    """Plan waiting jobs' copies on plates, slice and check each plate, render its traveler
    (queue `toolpath`: beat, and the router when jobs wait for plates). The plates made."""
    from production.plate_runner import plates_plan  # keeps trimesh out of web processes

    return plates_plan(actor=f"worker {self.request.hostname or socket.gethostname()}")


@shared_task
def mark_silent_machines_offline() -> list[str]:
    """Periodic (beat): machines silent too long go offline and give their jobs back."""
    return machines.machines_mark_silent(now=timezone.now(), actor="silence check")


@shared_task
def prune_telemetry() -> int:
    """Periodic (beat): drop telemetry older than MF_TELEMETRY_RETENTION_H."""
    return machines.telemetry_prune(now=timezone.now())


@shared_task(
    acks_late=True,  # safe: preview_dfm_check keeps a report only for the check it claimed
    reject_on_worker_lost=True,
    ignore_result=True,
)
def check_preview_dfm(dfm_id: int) -> str:
    """The DFM report of one ready catalog preview in one material (queue `geometry`)."""
    from production.dfm_previews import preview_dfm_check  # trimesh stays out of web imports

    return preview_dfm_check(dfm_id=dfm_id)
