"""Exact delivery: a step message runs only while its job is where the message expects it;
failures fail only their own run; the reconciler re-sends only lost messages; dispatch
uploads only while it holds its claim. Real steps (CadQuery, trimesh, WeasyPrint): one build,
reused by every job of the same configuration (artifacts are content-addressed)."""

import logging
import socket
import time
from collections import Counter
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone

from production import lifecycle, machines, runner, services, tasks
from production.lifecycle import By
from production.models import Artifact, Job, JobArtifact, JobEvent, Machine
from tests.builders import make_machine, make_order, make_part, make_ready_job
from tests.production.fake_printer import Answer, FakePrinter, recorded
from tests.production.test_station import attach

pytestmark = pytest.mark.django_db

Status = Job.Status
# The statuses a worker runs a step from, in order, and what each step links to the job.
# The steps before routing; the traveler is rendered beside routing, from no status (#19).
STEP_STATUSES = [Status.QUEUED, Status.GEOMETRY_BUILT, Status.VALIDATED]
STEP_NAMES = ["geometry", "validation", "toolpath"]


def advance(job: Job, expected: str | None) -> bool:
    return runner.job_advance(job_id=job.pk, actor="test", expected=expected)


def status_of(job: Job) -> str:
    return Job.objects.get(pk=job.pk).status


def events_per_step(job: Job) -> Counter[str]:
    return Counter(JobEvent.objects.filter(job=job).values_list("step", flat=True))


def links_per_kind(job: Job) -> Counter[str]:
    return Counter(JobArtifact.objects.filter(job=job).values_list("kind", flat=True))


@pytest.fixture
def block(user):
    make_part("block")
    return make_machine("mk4-1")


# --- step messages --------------------------------------------------------------------------


def test_every_step_runs_once_however_often_early_or_late_its_message_comes(user, block, caplog):
    caplog.set_level(logging.INFO, logger="production.runner")
    job = make_order(user=user).lines.get().jobs.get()
    delivered: list[str] = []
    for i, expected in enumerate(STEP_STATUSES):
        # Out of order: messages for the steps still to come arrive first, and run nothing.
        for later in STEP_STATUSES[i + 1 :]:
            assert advance(job, later) is False
            assert status_of(job) == expected
        assert advance(job, expected) is True, Job.objects.get(pk=job.pk).reason
        delivered.append(expected)
        # Twice, and late: this message again and every earlier one are dropped.
        for again in delivered:
            assert advance(job, again) is False
        assert status_of(job) == lifecycle.PIPELINE[i + 1]
    assert status_of(job) == Status.TOOLPATH_READY  # the batch router's from here
    # Its estimated price settled by the orders app (tests/orders/test_price_check.py).
    services.jobs_release(line_ids=[job.line_id])
    assert machines.jobs_route_waiting(now=timezone.now(), actor="router") == {job.pk: "mk4-1"}
    # Past the pipeline: every old message, and one from before messages carried a status.
    for again in [*delivered, None]:
        assert advance(job, again) is False
    # Its traveler, rendered beside routing: once, however often its message comes.
    assert runner.job_traveler_render(job_id=job.pk, actor="worker") is True
    assert runner.job_traveler_render(job_id=job.pk, actor="worker") is False
    job.refresh_from_db()
    assert (job.status, job.machine) == (Status.ROUTED, block)
    assert events_per_step(job) == Counter(
        {"order": 1, **dict.fromkeys(STEP_NAMES, 1), "routing": 1, "traveler": 1}
    )
    assert links_per_kind(job) == Counter(
        dict.fromkeys(["step", "stl", "svg", "gcode", "traveler"], 1)
    )
    # And its DFM report, kept for the next job of the same mesh (not one of the job's files).
    kept = Counter(Artifact.objects.exclude(kind="dfm").values_list("kind", flat=True))
    assert kept == links_per_kind(job)
    assert Artifact.objects.filter(kind="dfm").count() == 1
    assert f"{job.number}: dropped a message for queued: the job is routed" in caplog.messages, (
        caplog.messages
    )
    assert f"{job.number}: dropped a message for validated: the job is queued" in caplog.messages


def test_a_message_for_a_cancelled_job_runs_nothing_at_any_step(user, block):
    for i, status in enumerate(STEP_STATUSES):
        job = make_order(user=user).lines.get().jobs.get()
        for expected in STEP_STATUSES[:i]:
            assert advance(job, expected)
        assert status_of(job) == status
        services.jobs_cancel_for_order(
            order_id=job.line.order_id,
            actor="customer",
            message="not needed",
            reason="not needed",
            now=timezone.now(),
        )
        events, links = events_per_step(job), links_per_kind(job)
        assert advance(job, status) is False
        assert advance(job, None) is False  # a message from before the deploy
        assert (status_of(job), events_per_step(job), links_per_kind(job)) == (
            Status.CANCELLED,
            events,
            links,
        )
    assert Artifact.objects.filter(kind="stl").count() == 1  # built once for the four jobs


def test_a_step_takes_a_claim_for_as_long_as_it_may_run(user, block, settings):
    job = make_order(user=user).lines.get().jobs.get()
    before = timezone.now()
    assert advance(job, Status.QUEUED)
    job.refresh_from_db()
    assert job.claimed_by == "test"
    assert before <= job.claimed_at <= job.status_changed_at  # claimed for the step it ran
    assert job.claim_expires_at == job.claimed_at + timedelta(seconds=settings.JOB_CLAIM_S)
    assert settings.JOB_CLAIM_S >= settings.JOB_STEP_HARD_TIME_LIMIT_S


def test_a_job_that_moved_before_its_claim_was_taken_is_left_alone(user):
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()
    stale = Job.objects.get(pk=job.pk)
    Job.objects.filter(pk=job.pk).update(status=Status.CANCELLED)
    assert services.job_claim(job=stale, actor="late worker", now=timezone.now()) is False
    assert Job.objects.get(pk=job.pk).claimed_at is None


def test_the_step_message_carries_the_status_it_expects_and_the_job_its_task_id(user):
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()
    sent = []
    with patch("production.tasks.advance_job.apply_async", lambda **kw: sent.append(kw)):
        assert services.job_enqueue(job_id=job.pk)
    task_id = Job.objects.get(pk=job.pk).enqueued_task_id
    assert task_id  # what the reconciler looks for in the broker
    # A new build goes first among the steps a worker may take (services.PRIORITY_FOR_STATUS).
    assert sent == [
        {"args": (job.pk, "queued"), "queue": "geometry", "task_id": task_id, "priority": 9}
    ]


# --- failures -------------------------------------------------------------------------------


def fail_from(job: Job, *args: object) -> None:
    """What Celery calls when the task of this message gave up."""
    tasks.advance_job.on_failure(
        RuntimeError("boom"),
        "task-id",
        (job.pk, *args),
        {},
        None,  # type: ignore[arg-type]
    )


def test_a_late_failure_of_an_old_message_leaves_a_job_that_moved_on_alone(user):
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()
    Job.objects.filter(pk=job.pk).update(status=Status.GEOMETRY_BUILT)
    fail_from(job, Status.QUEUED)
    assert status_of(job) == Status.GEOMETRY_BUILT
    assert not job.events.filter(to_status="failed").exists()
    fail_from(job, Status.GEOMETRY_BUILT)  # the run that is the job's own
    job.refresh_from_db()
    assert (job.status, job.reason) == (Status.FAILED, "RuntimeError: boom")
    assert job.events.filter(to_status="failed").count() == 1


def test_a_failure_of_a_message_from_before_the_deploy_fails_an_unfinished_job(user):
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()
    Job.objects.filter(pk=job.pk).update(status=Status.VALIDATED)
    fail_from(job)  # no expected status: the old behaviour
    assert status_of(job) == Status.FAILED
    fail_from(job)
    assert job.events.filter(to_status="failed").count() == 1


def test_a_failure_never_fails_a_job_at_its_machine(user):
    job = put(make_ready_job(user=user), status=Status.ROUTED)
    fail_from(job, Status.TRAVELER_READY)
    fail_from(job)
    assert status_of(job) == Status.ROUTED


# --- the reconciler -------------------------------------------------------------------------


def put(job: Job, *, status: str = Status.QUEUED, **times: object) -> Job:
    Job.objects.filter(pk=job.pk).update(status=status, **times)
    return Job.objects.get(pk=job.pk)


def test_the_reconciler_re_sends_only_lost_messages(user, settings):
    make_part("block")
    now = timezone.now()
    hour = timedelta(hours=1)

    def job(**times: object) -> Job:
        return put(make_order(user=user).lines.get().jobs.get(), **times)

    def claimed(*, at, **times: object) -> Job:
        claimed_job = job(**times)
        assert services.job_claim(job=claimed_job, actor="w1", now=at)
        return claimed_job

    waiting = job(status_changed_at=now - 2 * hour, enqueued_at=now - hour)  # a long backlog
    running = claimed(at=now - timedelta(seconds=10), status_changed_at=now - hour)
    died = claimed(
        at=now - timedelta(seconds=settings.JOB_CLAIM_S + 1), status_changed_at=now - 2 * hour
    )
    lost = job(
        status_changed_at=now - 9 * hour,
        enqueued_at=now - timedelta(seconds=settings.JOB_QUEUE_WAIT_MAX_S + 1),
    )
    unsent = job(status_changed_at=now - timedelta(seconds=settings.JOB_STALE_AFTER_S + 1))
    just_made = job(status_changed_at=now - timedelta(seconds=5))  # its enqueue is on its way
    # Claimed for the step before (the claim predates the status): not a claim on this one.
    earlier = claimed(at=now - 3 * hour, status_changed_at=now - 2 * hour)
    Job.objects.filter(pk=earlier.pk).update(
        status=Status.GEOMETRY_BUILT, enqueued_at=now - 2 * hour
    )
    at_router = job(status=Status.TRAVELER_READY, status_changed_at=now - 9 * hour)

    sent = []
    with patch("production.tasks.advance_job.apply_async", lambda **kw: sent.append(kw)):
        again = services.jobs_reconcile(now=now)
    assert sorted(again) == sorted([died.pk, lost.pk, unsent.pk])
    assert sorted(kw["args"] for kw in sent) == sorted(
        [(died.pk, "queued"), (lost.pk, "queued"), (unsent.pk, "queued")]
    )
    for left_alone in (waiting, running, just_made, earlier, at_router):
        assert left_alone.pk not in again
    assert Job.objects.get(pk=died.pk).enqueued_at >= now  # the next pass leaves it alone
    with patch("production.tasks.advance_job.apply_async", lambda **kw: sent.append(kw)):
        assert services.jobs_reconcile(now=now + timedelta(seconds=1)) == []


@pytest.fixture(params=["memory://", "unreachable"])
def unreadable_broker(request, settings):
    """A broker the reconciler cannot read: not Redis (memory://), or a Redis that does not
    answer (a port nothing listens on)."""
    from microfactory.celery import app

    url = request.param
    if url == "unreachable":
        with socket.socket() as sock:  # a free port: bound, then closed
            sock.bind(("127.0.0.1", 0))
            url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    previous, app.conf.broker_url = app.conf.broker_url, url
    yield url
    app.conf.broker_url = previous


def test_where_the_broker_cannot_be_read_a_message_is_lost_by_its_age(
    user, settings, unreadable_broker, caplog
):
    make_part("block")
    now = timezone.now()
    wait_max = timedelta(seconds=settings.JOB_QUEUE_WAIT_MAX_S)

    def sent(ago: timedelta, task_id: str) -> Job:
        job = make_order(user=user).lines.get().jobs.get()
        return put(
            job,
            status_changed_at=now - ago - wait_max,
            enqueued_at=now - ago,
            enqueued_task_id=task_id,
        )

    overdue = sent(wait_max + timedelta(seconds=1), "t-overdue")
    waiting = sent(wait_max - timedelta(minutes=1), "t-waiting")  # past the grace, in time
    sent_args = []
    caplog.set_level(logging.WARNING, logger="production.services")
    with patch("production.tasks.advance_job.apply_async", lambda **kw: sent_args.append(kw)):
        started = time.monotonic()
        assert services.jobs_reconcile(now=now) == [overdue.pk]
        assert time.monotonic() - started < 5  # one attempt at the broker, no retries
    assert [kw["args"] for kw in sent_args] == [(overdue.pk, "queued")]
    assert Job.objects.get(pk=waiting.pk).enqueued_task_id == "t-waiting"
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "production.services"]
    assert warning.startswith("reconciler: the broker ")
    assert f"counts as lost after {settings.JOB_QUEUE_WAIT_MAX_S} s unclaimed" in warning


# --- dispatch holds its claim up to the upload -----------------------------------------------


@pytest.fixture
def printer():
    fake = FakePrinter()
    yield fake
    fake.close()


@pytest.fixture
def voron(db, printer, monkeypatch, settings):
    settings.MF_CONNECTOR_BACKOFF_S = 0
    settings.MF_CONNECTOR_TIMEOUT_S = 0.5
    monkeypatch.setenv("VORON_KEY", "sekrit")
    machine = make_machine("voron")
    Machine.objects.filter(pk=machine.pk).update(
        connector="moonraker",
        connector_url=printer.url,
        connector_secret_env="VORON_KEY",
        last_seen_at=timezone.now(),
    )
    printer.script.on("POST", "/server/files/upload", recorded("upload.json", 201))
    printer.script.on("POST", "/printer/print/start", recorded("ok.json"))
    return Machine.objects.get(pk=machine.pk)


def uploads(printer: FakePrinter) -> list[str]:
    return [path for path in printer.paths() if path.startswith("POST /server/files/upload")]


def routed_to(machine: Machine, user) -> Job:
    return put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)


def while_reading_the_gcode(monkeypatch, meanwhile) -> None:
    """Run `meanwhile` once, between dispatch's claim and its upload (where it reads the
    G-code), as another process would."""
    real = machines.job_gcode
    done = []

    def job_gcode(job: Job) -> bytes:
        content = real(job)
        if not done:
            done.append(True)
            meanwhile(job)
        return content

    monkeypatch.setattr(machines, "job_gcode", job_gcode)


def test_dispatch_uploads_nothing_once_its_machine_went_down(user, voron, printer, monkeypatch):
    job = routed_to(voron, user)

    def maintenance(job: Job) -> None:
        with patch("production.services.job_enqueue"):
            machines.machine_set_state(
                machine_id=voron.pk, state="maintenance", now=timezone.now(), actor="staff"
            )

    while_reading_the_gcode(monkeypatch, maintenance)
    assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w") == []
    assert printer.paths() == []
    job.refresh_from_db()
    assert job.status == Status.FAILED  # the machine going down took it: dispatch did not
    assert [e.step for e in job.events.order_by("pk")][-2:] == ["dispatch", "failure"]


def test_dispatch_uploads_nothing_once_another_dispatch_sent_the_job(
    user, voron, printer, monkeypatch, settings
):
    job = routed_to(voron, user)
    later = timezone.now() + timedelta(seconds=settings.MF_DISPATCH_STALE_S + 1)

    def sent_again_elsewhere(job: Job) -> None:
        # The poller finds the printer idle without the job and takes it back, and a second
        # dispatch sends it: the first dispatch's claim is gone, though the job is DISPATCHED.
        machines._redispatch_if_stale(voron, Job.objects.get(pk=job.pk), now=later, actor="p")
        later_still = later + timedelta(seconds=1)
        assert machines.machine_dispatch(machine_id=voron.pk, now=later_still, actor="w2") == [
            job.pk
        ]

    while_reading_the_gcode(monkeypatch, sent_again_elsewhere)
    assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w1") == []
    assert uploads(printer) == ["POST /server/files/upload"]  # once, by the second dispatch
    job.refresh_from_db()
    assert job.status == Status.DISPATCHED
    assert [e.actor for e in job.events.filter(step="dispatch").order_by("pk")] == [
        "w1",
        "p",
        "w2",
    ]


def test_a_failed_upload_moves_only_a_job_still_dispatched_by_it(user, voron, printer, monkeypatch):
    job = routed_to(voron, user)
    printer.script.on("POST", "/server/files/upload", Answer(500, b"disk full"))
    real_connector = machines.connectors.connector_for

    class Meanwhile:
        """The real connector; while it uploads, another dispatch takes the job back and sends
        it again (what _redispatch_if_stale and a second dispatch do)."""

        def __init__(self, machine: Machine) -> None:
            self.real = real_connector(machine)

        def dispatch(self, *, filename: str, gcode: bytes) -> None:
            current = Job.objects.get(pk=job.pk)
            later = timezone.now() + timedelta(seconds=5)
            for to in (Status.ROUTED, Status.DISPATCHED):
                assert lifecycle.job_move(
                    current, to=to, by=By.MACHINE, step="dispatch", actor="w2", now=later
                )
            self.real.dispatch(filename=filename, gcode=gcode)

    monkeypatch.setattr(machines.connectors, "connector_for", Meanwhile)
    with patch("production.services.job_enqueue"):
        assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w1") == []
    assert Machine.objects.get(pk=voron.pk).state == "error"  # the upload did fail
    job.refresh_from_db()
    moves = list(job.events.order_by("pk").values_list("actor", "to_status"))
    # w1's failure moved nothing: the job was w2's. The machine going into error fails it.
    assert ("w1", "routed") not in moves
    assert moves[-3:] == [("w2", "routed"), ("w2", "dispatched"), ("w1", "failed")]


def test_a_traveler_whose_render_was_lost_is_sent_again_for_an_hour(user):
    now = timezone.now()
    minute = timedelta(minutes=1)
    lost = put(make_ready_job(user=user), status=Status.ROUTED, status_changed_at=now - minute)
    waiting = put(make_ready_job(user=user), status=Status.TOOLPATH_READY)
    Job.objects.filter(pk=waiting.pk).update(status_changed_at=now - 2 * minute)
    just_routed = put(make_ready_job(user=user), status=Status.ROUTED, status_changed_at=now)
    long_ago = put(
        make_ready_job(user=user), status=Status.ROUTED, status_changed_at=now - 61 * minute
    )
    rendered = put(make_ready_job(user=user), status=Status.ROUTED, status_changed_at=now - minute)
    attach(rendered, Artifact.Kind.TRAVELER, b"%PDF-1.7 rendered", {})
    sent = []
    with patch("production.tasks.render_traveler.apply_async", lambda **kw: sent.append(kw)):
        again = services.travelers_reconcile(now=now)
    assert sorted(again) == sorted([lost.pk, waiting.pk])
    assert sorted(kw["args"] for kw in sent) == sorted([(lost.pk,), (waiting.pk,)])
    assert {kw["queue"] for kw in sent} == {"documents"}
    assert just_routed.pk not in again and long_ago.pk not in again
