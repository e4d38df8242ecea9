"""Celery tasks: thin wrappers around production.runner and production.services."""

import socket
from typing import Any

from celery import Task, shared_task
from django.utils import timezone

from microfactory.errors import TransientError
from production import services


class JobTask(Task):
    """A job task that gave up (crash, time limit, retries spent) leaves the job FAILED."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            services.job_fail(
                job_id=job_id,
                reason=f"{type(exc).__name__}: {exc}",
                actor=f"worker {self.request.hostname or socket.gethostname()}",
            )


@shared_task(
    base=JobTask,
    bind=True,
    acks_late=True,  # safe because every step is idempotent
    reject_on_worker_lost=True,
    autoretry_for=(TransientError,),  # storage or network trouble only
    retry_backoff=True,
    max_retries=5,
)
def advance_job(self: Task, job_id: int) -> None:
    """Run one step of the job, then queue the next one."""
    from production.runner import job_advance  # keeps CadQuery and trimesh out of web processes

    if job_advance(job_id=job_id, actor=f"worker {self.request.hostname}"):
        services.job_enqueue(job_id=job_id)


@shared_task
def reconcile_stuck_jobs() -> int:
    """Periodic (beat): get jobs moving whose task was lost."""
    return len(services.jobs_reconcile(now=timezone.now()))
