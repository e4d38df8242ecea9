"""Which Celery workers are alive, and which task messages they hold: how the reconciler tells
a step whose worker died from one a live worker is still running.

Why this exists: a worker killed mid-step (SIGKILL, out of memory, host lost) leaves its job
claimed (services.job_claim) and its message reserved in Redis's `unacked` hash. Judged by the
clock alone, the job waited for its claim to expire (the step's hard time limit, 11 minutes
by default) and the message for Redis's visibility timeout (twice that), although a fresh
worker was up within seconds. The cluster knows at once: every live worker answers a
broadcast with what it holds, and a dead one does not answer.

A claim names its holder as `<node name>/<incarnation>` (`holder_id`): the node name alone is
not enough, since a worker restarted under the same name (`-n worker1@%h`, a supervisor's
restart) answers for it without holding the dead one's steps. The incarnation is chosen once
per worker process tree: this module is imported by the worker's main process before its
pool forks (production.tasks imports it, and Celery imports the task modules first), so the
pool's children share their parent's.

Never steal from a live worker: a holder counts as gone only when the cluster answered at all
(an empty answer, or a broker that does not answer, says nothing: the caller keeps its time
rules) and the holder answered neither of two questions (services.jobs_reconcile). Taking a
step from a worker that was merely slow to answer would be wasted work, not a wrong result:
the first run to finish moves the job, the other keeps nothing.
"""

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from celery.worker import state as worker_state
from celery.worker.control import inspect_command
from kombu.exceptions import OperationalError

from microfactory.celery import app

logger = logging.getLogger(__name__)

# This worker's incarnation (see the module's docstring): same in its pool's children.
INCARNATION = secrets.token_hex(4)
COMMAND = "mf_held_tasks"


def holder_id(node: str) -> str:
    """What a claim taken by this process on worker `node` records as its holder."""
    return f"{node}/{INCARNATION}"


def holder_node(holder: str) -> str | None:
    """The worker node name of a claim's holder; None for a holder that is not a worker
    incarnation (a claim taken outside a worker, or before holders were recorded so)."""
    node, slash, incarnation = holder.rpartition("/")
    return node if slash and "@" in node and incarnation else None


@inspect_command(name=COMMAND)
def held_tasks(state: Any, **kwargs: Any) -> dict[str, Any]:
    """This worker's incarnation and the ids of every task it holds: running, reserved
    (prefetched) or scheduled (a retry's countdown)."""
    requests = (
        worker_state.active_requests,
        worker_state.reserved_requests,
        # Not in celery-types' stub, but in celery.worker.state since Celery 5.3.
        worker_state.scheduled_requests,  # type: ignore[attr-defined]
    )
    held = sorted({request.id for group in requests for request in list(group)})
    return {"incarnation": INCARNATION, "held": held}


@dataclass(frozen=True)
class ClusterView:
    """The workers that answered (as claim holders: `node/incarnation`), the task ids they
    hold, and when the question was asked (time.time())."""

    holders: frozenset[str]
    held: frozenset[str]
    asked_at: float

    def holds(self, task_id: str) -> bool:
        return task_id in self.held


def _ask(*, timeout: float) -> list[dict[str, Any]]:
    with app.connection_for_write() as connection:
        # One attempt: a broker that does not answer makes the caller keep its time rules.
        connection.ensure_connection(max_retries=0)
        replies = app.control.broadcast(COMMAND, reply=True, timeout=timeout, connection=connection)
    return list(replies or [])


def _parse(replies: Iterable[dict[str, Any]]) -> tuple[set[str], set[str]]:
    holders: set[str] = set()
    held: set[str] = set()
    for reply in replies:
        for node, answer in reply.items():
            if isinstance(answer, dict) and isinstance(answer.get("incarnation"), str):
                holders.add(f"{node}/{answer['incarnation']}")
                held.update(str(task_id) for task_id in answer.get("held") or ())
    return holders, held


def cluster_view(*, timeout: float) -> ClusterView | None:
    """Ask every worker what it holds, waiting `timeout` seconds for the answers; None when
    the cluster cannot say (the broker does not answer, or no worker does)."""
    asked_at = time.time()
    try:
        holders, held = _parse(_ask(timeout=timeout))
    except (OperationalError, redis.RedisError, OSError) as error:
        logger.warning("cluster: the broker did not answer (%s); no worker counts as gone", error)
        return None
    if not holders:
        logger.warning("cluster: no worker answered within %s s; none counts as gone", timeout)
        return None
    return ClusterView(holders=frozenset(holders), held=frozenset(held), asked_at=asked_at)
