"""Under a burst of orders a job's later steps go before new geometry builds: each step's
message carries a Redis priority (production.services.PRIORITY_FOR_STATUS) and a consumer of
every pipeline queue, as the worker is, takes the later step first (issue #19, 6b)."""

import pytest
from kombu import Connection, Queue

from production import services
from production.models import Job
from tests.builders import make_order, make_part

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PIPELINE_QUEUES = ("geometry", "toolpath", "documents", "routing")  # as the Procfile's worker


def test_a_later_step_is_taken_before_new_geometry_builds_sent_earlier(broker, user):
    make_part("block")
    builds = [make_order(user=user).lines.get().jobs.get() for _ in range(3)]  # sent on commit
    later = make_order(user=user).lines.get().jobs.get()
    Job.objects.filter(pk=later.pk).update(status=Job.Status.VALIDATED)
    assert services.job_enqueue(job_id=later.pk)  # its toolpath step, sent last
    task_ids = {job.pk: Job.objects.get(pk=job.pk).enqueued_task_id for job in [*builds, later]}

    taken: list[str] = []
    with Connection(broker) as connection:
        queues = [Queue(name, routing_key=name) for name in PIPELINE_QUEUES]

        def take(body: object, message) -> None:  # type: ignore[no-untyped-def]
            taken.append(message.headers["id"])
            message.ack()

        with connection.Consumer(queues, callbacks=[take], accept=["json"]) as consumer:
            consumer.qos(prefetch_count=1)  # as the worker: CELERY_WORKER_PREFETCH_MULTIPLIER
            while len(taken) < 4:
                connection.drain_events(timeout=10)

    assert taken[0] == task_ids[later.pk]
    assert sorted(taken[1:]) == sorted(task_ids[job.pk] for job in builds)


def test_every_step_has_a_queue_and_a_priority_later_steps_first():
    assert services.PRIORITY_FOR_STATUS.keys() == services.QUEUE_FOR_STATUS.keys()
    order = [
        Job.Status.QUEUED,
        Job.Status.GEOMETRY_BUILT,
        Job.Status.VALIDATED,
        Job.Status.TOOLPATH_READY,
        Job.Status.TRAVELER_READY,
    ]
    # The traveler, rendered beside routing from toolpath_ready (#19), is last: taken first.
    priorities = [services.PRIORITY_FOR_STATUS[status] for status in order]
    assert services.TRAVELER_PRIORITY == min(priorities)
    assert priorities == sorted(priorities, reverse=True)  # Redis: 0 is taken first
    assert priorities[0] > priorities[1]
