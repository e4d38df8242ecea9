"""The runner against real steps: a job walks the whole pipeline in this process."""

import pytest
from django.utils import timezone

from production import runner, services
from production.models import Artifact, Job, JobEvent
from tests.builders import make_machine, make_order, make_part

pytestmark = pytest.mark.django_db

STEPS = ["order", "geometry", "validation", "toolpath", "traveler", "routing"]


def run_to_the_end(job_id: int) -> Job:
    for _ in range(10):
        if not runner.job_advance(job_id=job_id, actor="test"):
            break
    return Job.objects.get(pk=job_id)


def test_a_job_walks_every_step_to_a_machine(user):
    make_part("block")
    machine = make_machine()
    job = make_order(user=user).lines.get().jobs.get()
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.ROUTED, job.reason
    assert job.machine == machine
    assert list(job.events.values_list("step", flat=True)) == STEPS
    assert set(job.job_artifacts.values_list("kind", flat=True)) == {
        "step",
        "stl",
        "svg",
        "gcode",
        "traveler",
    }
    assert job.dfm_report["extents_mm"] == [20, 20, 10]
    assert job.toolpath_meta["layers"] > 30


def test_a_second_job_with_the_same_configuration_reuses_every_artifact(user):
    make_part("block")
    make_machine()
    first = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    second = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    shared = lambda job: {  # noqa: E731
        link.kind: link.artifact_id for link in job.job_artifacts.all() if link.kind != "traveler"
    }
    assert shared(first) == shared(second)
    assert Artifact.objects.filter(kind="stl").count() == 1
    assert "reused" in second.events.get(step="geometry").message


def test_a_step_finished_elsewhere_meanwhile_keeps_nothing_of_ours(user, monkeypatch):
    make_part("block")
    make_machine()
    job = make_order(user=user).lines.get().jobs.get()
    real_build = runner.STEPS[Job.Status.QUEUED].run

    def build_while_another_worker_wins(job):
        result = real_build(job)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.GEOMETRY_BUILT)
        return result

    monkeypatch.setitem(
        runner.STEPS,
        Job.Status.QUEUED,
        runner.Step("geometry", build_while_another_worker_wins, Job.Status.GEOMETRY_BUILT),
    )
    assert runner.job_advance(job_id=job.pk, actor="test") is False
    assert not job.job_artifacts.exists()
    assert not JobEvent.objects.filter(job=job, step="geometry").exists()


def test_a_part_too_big_for_every_machine_is_rejected_with_the_reason(user):
    make_part("block")
    make_machine(volume=(100, 100, 100))
    job = (
        make_order(user=user, parameters={"width": 150, "height": 10, "hole_d": 5})
        .lines.get()
        .jobs.get()
    )
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.REJECTED
    assert "larger than every capable machine" in job.reason
    assert job.events.last().to_status == "rejected"


def test_a_script_that_fails_for_the_parameters_rejects_the_job(user):
    make_part(
        "broken",
        script="import cadquery as cq\nwidth = 1\nraise ValueError('fillet too big')\n",
        schema=[{"name": "width", "type": "length", "default": 1, "min": 1, "max": 2}],
        rules=[],
    )
    make_machine()
    job = make_order(user=user, part="broken", parameters={"width": 1}).lines.get().jobs.get()
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.REJECTED
    assert "fillet too big" in job.reason


def test_a_job_waits_while_every_capable_machine_is_offline(user):
    make_part("block")
    make_machine(state="offline")
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert job.status == Job.Status.TRAVELER_READY
    assert job.machine is None


def test_the_reconciler_re_enqueues_only_jobs_silent_too_long(user, settings, monkeypatch):
    make_part("block")
    make_machine()
    silent = make_order(user=user).lines.get().jobs.get()
    fresh = make_order(user=user).lines.get().jobs.get()
    long_ago = timezone.now() - timezone.timedelta(seconds=settings.JOB_STALE_AFTER_S + 5)
    Job.objects.filter(pk=silent.pk).update(status_changed_at=long_ago, enqueued_at=long_ago)
    sent = []
    monkeypatch.setattr("production.tasks.advance_job.apply_async", lambda **kw: sent.append(kw))
    assert services.jobs_reconcile(now=timezone.now()) == [silent.pk]
    assert sent == [{"args": [silent.pk], "queue": "geometry"}]
    assert fresh.pk not in [kw["args"][0] for kw in sent]


def test_failing_a_job_twice_records_one_failure(user):
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()
    assert services.job_fail(job_id=job.pk, reason="SoftTimeLimitExceeded", actor="test")
    assert not services.job_fail(job_id=job.pk, reason="again", actor="test")
    job.refresh_from_db()
    assert (job.status, job.reason) == ("failed", "SoftTimeLimitExceeded")
    assert job.events.filter(to_status="failed").count() == 1
