"""Orders follow their jobs' events: each event claimed exactly once (JobEvent.followed_at, a
conditional UPDATE), an event committed late still followed, and a periodic pass that ends
orders whose jobs all ended whatever happened to their events."""

import threading
from datetime import datetime
from unittest.mock import patch

import pytest
from django.db import connection, transaction
from django.utils import timezone

from orders.models import Order, Status, Webhook, WebhookDelivery
from orders.services import orders_follow_in_production, orders_follow_jobs
from production import lifecycle
from production.lifecycle import By
from production.models import Job, JobEvent
from tests.builders import make_machine, make_order, make_part, make_user

pytestmark = pytest.mark.usefixtures("no_broker")


def setup_factory() -> tuple[object, Webhook]:
    make_part("block")
    make_machine()
    user = make_user("req")
    webhook = Webhook.objects.create(
        organisation=user.memberships.get().organisation, url="http://127.0.0.1:9/", secret="s"
    )
    return user, webhook


def finish(job: Job, *, now: datetime) -> None:
    """The job passes QC at the station (through the lifecycle: its status and its event)."""
    Job.objects.filter(pk=job.pk).update(status=Job.Status.AWAITING_QC)
    job.refresh_from_db()
    assert lifecycle.job_move(
        job,
        to=Job.Status.DONE,
        by=By.OPERATOR,
        step="qc",
        actor="station",
        now=now,
        qc_passed=job.quantity,
    )


def job_of(order: Order) -> Job:
    return Job.objects.get(line__order=order)


def job_webhooks() -> list[tuple[int, str]]:
    return sorted(
        (p["job"]["id"], p["job"]["status"])
        for p in WebhookDelivery.objects.filter(event="job.status_changed").values_list(
            "payload", flat=True
        )
    )


@pytest.mark.django_db
def test_an_event_with_a_lower_id_than_one_already_followed_still_advances_its_order() -> None:
    user, _ = setup_factory()
    late, early = make_order(user=user), make_order(user=user)
    now = timezone.now()
    # A transaction takes an id for late's QC event and commits only after early's QC event
    # (a higher id) has been followed. One connection cannot hold a row back, so the id is
    # taken now and the row written later (the PostgreSQL test below does it for real).
    placeholder = JobEvent.objects.create(
        job=job_of(late),
        step="qc",
        to_status="done",
        actor="-",
        started_at=now,
        finished_at=now,
        duration_ms=0,
    )
    taken_id = placeholder.pk
    placeholder.delete()
    finish(job_of(early), now=now)
    assert orders_follow_jobs(now=now) == 3  # both jobs' "queued" events and early's QC
    assert Order.objects.get(pk=early.pk).status == Status.COMPLETED
    finish(job_of(late), now=now)
    JobEvent.objects.filter(job=job_of(late), step="qc").update(id=taken_id)
    followed = JobEvent.objects.filter(followed_at__isnull=False).values_list("pk", flat=True)
    assert taken_id < max(followed)  # a high-water-mark cursor would skip it for good

    assert orders_follow_jobs(now=timezone.now()) == 1
    assert Order.objects.get(pk=late.pk).status == Status.COMPLETED
    assert (job_of(late).pk, "done") in job_webhooks()


@pytest.mark.django_db
def test_each_event_is_followed_once_however_often_the_follower_runs() -> None:
    user, _ = setup_factory()
    orders = [make_order(user=user) for _ in range(3)]
    now = timezone.now()
    finish(job_of(orders[0]), now=now)
    assert orders_follow_jobs(now=now) == 4
    assert orders_follow_jobs(now=now) == 0
    assert orders_follow_jobs(now=timezone.now()) == 0
    jobs = [job_of(order).pk for order in orders]
    assert job_webhooks() == sorted([(jobs[0], "done"), *((pk, "queued") for pk in jobs)])
    assert not JobEvent.objects.filter(followed_at__isnull=True).exists()


@pytest.mark.django_db
def test_a_follower_that_fails_leaves_its_events_to_the_next_one() -> None:
    user, _ = setup_factory()
    order = make_order(user=user)
    with (
        patch("orders.notifications._emit", side_effect=RuntimeError("database hiccup")),
        pytest.raises(RuntimeError),
    ):
        orders_follow_jobs(now=timezone.now())
    # The claim rolled back with the webhooks it was for.
    assert JobEvent.objects.filter(followed_at__isnull=True).count() == 1
    assert orders_follow_jobs(now=timezone.now()) == 1
    assert job_webhooks() == [(job_of(order).pk, "queued")]


@pytest.mark.django_db
def test_the_periodic_pass_ends_an_order_whose_jobs_ended_without_any_event_to_follow() -> None:
    user, _ = setup_factory()
    done, cancelled_jobs, still_running = (make_order(user=user) for _ in range(3))
    orders_follow_jobs(now=timezone.now())
    # Their jobs ended, but no event is left to follow (say the follower crashed between
    # claiming the events and updating the orders).
    Job.objects.filter(line__order=done).update(status=Job.Status.DONE, qc_passed=1)
    Job.objects.filter(line__order=cancelled_jobs).update(status=Job.Status.CANCELLED)
    Job.objects.filter(line__order=still_running).update(status=Job.Status.RUNNING)
    assert orders_follow_jobs(now=timezone.now()) == 0
    assert Order.objects.get(pk=done.pk).status == Status.IN_PRODUCTION

    assert orders_follow_in_production(now=timezone.now()) == 2
    assert Order.objects.get(pk=done.pk).status == Status.COMPLETED
    assert Order.objects.get(pk=cancelled_jobs.pk).status == Status.CANCELLED
    assert Order.objects.get(pk=still_running.pk).status == Status.IN_PRODUCTION
    assert orders_follow_in_production(now=timezone.now()) == 0


def test_the_periodic_pass_is_on_the_beat_schedule(settings) -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"orders.tasks.follow_jobs", "orders.tasks.follow_orders_in_production"} <= tasks


# --- PostgreSQL: real concurrent transactions -------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_a_later_one_still_advances_its_order() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: two connections, one committing late")
    user, _webhook = setup_factory()
    late, early = make_order(user=user), make_order(user=user)
    orders_follow_jobs(now=timezone.now())
    written, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def finish_late() -> None:
        try:
            with transaction.atomic():
                finish(job_of(late), now=timezone.now())
                written.set()
                assert commit.wait(30)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            written.set()
        finally:
            connection.close()

    slow = threading.Thread(target=finish_late)
    slow.start()
    assert written.wait(30)
    finish(job_of(early), now=timezone.now())  # committed at once, with a higher id
    assert orders_follow_jobs(now=timezone.now()) == 1  # the late one is not visible yet
    assert Order.objects.get(pk=early.pk).status == Status.COMPLETED
    commit.set()
    slow.join(30)
    assert not errors, errors
    late_event = JobEvent.objects.get(job=job_of(late), step="qc")
    early_event = JobEvent.objects.get(job=job_of(early), step="qc")
    assert late_event.pk < early_event.pk and late_event.followed_at is None

    assert orders_follow_jobs(now=timezone.now()) == 1
    assert Order.objects.get(pk=late.pk).status == Status.COMPLETED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_followers_at_once_follow_each_event_exactly_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: two followers in two connections at once")
    user, _webhook = setup_factory()
    orders = [make_order(user=user) for _ in range(12)]
    now = timezone.now()
    for order in orders[::2]:
        finish(job_of(order), now=now)
    pending = JobEvent.objects.filter(followed_at__isnull=True).count()
    assert pending == 18
    barrier = threading.Barrier(2)
    handled: list[int] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            barrier.wait(30)
            # Each in its own transaction, so the two claim the same rows at the same time.
            handled.append(orders_follow_jobs(now=timezone.now()))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=follow) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(handled) == pending
    events = list(JobEvent.objects.values_list("job_id", "to_status"))
    assert job_webhooks() == sorted(events)  # one webhook per event, none twice
    assert not JobEvent.objects.filter(followed_at__isnull=True).exists()
    completed = Order.objects.filter(status=Status.COMPLETED).count()
    assert completed == len(orders[::2])
