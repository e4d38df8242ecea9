"""The reconciler asks the broker (a real Redis) whether a job's step message is lost: one
waiting in its queue or reserved by a worker is left alone however old; one the broker no
longer holds is sent again on the next pass, not hours later."""

import logging
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from microfactory.celery import app as celery_app
from production import services
from production.models import Job
from tests.builders import make_machine, make_order, make_part

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Far past the time rule's limit (MF_JOB_QUEUE_WAIT_MAX_S, 6 h): only the broker can tell.
LONG_AGO = timedelta(hours=9)


@pytest.fixture
def queued(broker, user, settings):
    """A job whose geometry message was sent to the test Redis 9 hours ago (by the clock of
    the database) and never taken: the geometry queue has no consumer."""
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()  # enqueued on commit
    now = timezone.now()
    # hold="": quoted before any geometry existed, its price check (orders' follower, not run
    # here) would hold it back from the router; these tests are about its messages.
    Job.objects.filter(pk=job.pk).update(
        status_changed_at=now - LONG_AGO - timedelta(minutes=1),
        enqueued_at=now - LONG_AGO,
        hold="",
    )
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.enqueued_task_id
    assert LONG_AGO.total_seconds() > settings.JOB_QUEUE_WAIT_MAX_S
    return job


def task_ids_in(redis_url: str, queue: str) -> list[str]:
    """The messages waiting in a queue: one Redis list per priority step (a geometry build's
    message is sent with priority 9, so it waits in `geometry\x06\x169`)."""
    from production.broker import _task_id

    client = redis.Redis.from_url(redis_url)
    keys = [queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))]
    return [
        task_id for key in keys for raw in client.lrange(key, 0, -1) if (task_id := _task_id(raw))
    ]


def waiting_in(redis_url: str, queue: str) -> int:
    return len(task_ids_in(redis_url, queue))


def test_a_message_waiting_in_its_queue_is_left_alone_however_old(queued, broker, settings, caplog):
    assert task_ids_in(broker, "geometry") == [queued.enqueued_task_id]
    assert services.jobs_reconcile(now=timezone.now()) == []
    assert task_ids_in(broker, "geometry") == [queued.enqueued_task_id]  # nothing sent again
    assert Job.objects.get(pk=queued.pk).enqueued_task_id == queued.enqueued_task_id
    # More messages than a pass may read: this pass judges by age, and 9 hours is too long.
    settings.RECONCILE_SCAN_MAX = 0
    with caplog.at_level(logging.WARNING, logger="production.services"):
        assert services.jobs_reconcile(now=timezone.now()) == [queued.pk]
    assert "more than 0 messages to read (MF_RECONCILE_SCAN_MAX)" in caplog.text


def test_a_message_reserved_by_a_worker_is_left_alone(queued, broker):
    with celery_app.connection_for_read() as connection:
        # What a worker does when it takes a message: kombu pops it from the queue and records
        # it in the `unacked` hash until it is acknowledged.
        message = connection.default_channel.basic_get("geometry", no_ack=False)
        assert message is not None
        client = redis.Redis.from_url(broker)
        assert waiting_in(broker, "geometry") == 0 and client.hlen("unacked") == 1
        assert services.jobs_reconcile(now=timezone.now()) == []
        assert waiting_in(broker, "geometry") == 0  # nothing sent again
    assert Job.objects.get(pk=queued.pk).enqueued_task_id == queued.enqueued_task_id


def test_a_message_lost_with_redis_is_sent_again_at_once_and_the_job_runs(
    queued, broker, start_worker
):
    from tests.integration.conftest import job_steps, wait_for

    make_machine("mk4-1")
    # A Redis restarted without its data. The message went 2 minutes ago: past the grace,
    # far short of MF_JOB_QUEUE_WAIT_MAX_S.
    redis.Redis.from_url(broker).flushdb()
    Job.objects.filter(pk=queued.pk).update(enqueued_at=timezone.now() - timedelta(minutes=2))
    assert services.jobs_reconcile(now=timezone.now()) == [queued.pk]
    resent = Job.objects.get(pk=queued.pk).enqueued_task_id
    assert resent != queued.enqueued_task_id
    assert task_ids_in(broker, "geometry") == [resent]
    assert services.jobs_reconcile(now=timezone.now()) == []  # sent: the next pass waits

    worker = start_worker()
    wait_for(
        lambda: Job.objects.get(pk=queued.pk).status == Job.Status.DISPATCHED,
        timeout=180,
        what="the job to reach its machine",
        worker=worker,
    )
    steps = job_steps(queued, worker=worker)
    assert steps == [
        "order",
        "geometry",
        "validation",
        "toolpath",
        "traveler",
        "routing",
        "dispatch",
    ]
