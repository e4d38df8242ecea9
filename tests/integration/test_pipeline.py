"""An order placed through the API travels through a real Celery worker to a machine."""

import time
from collections import Counter

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from orders.models import Order
from production import passport
from production.models import Artifact, Job, JobArtifact, JobEvent

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PIPELINE_STEPS = ["geometry", "validation", "toolpath", "traveler", "routing"]
# The demo machines are manual: a routed job goes straight onto the operator's list.
AT_MACHINE = Job.Status.DISPATCHED
SETTLED = {AT_MACHINE, Job.Status.REJECTED, Job.Status.FAILED}


@pytest.fixture
def requester():
    from django.contrib.auth import get_user_model

    call_command("seed_demo", "--no-order", verbosity=0)
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="requester"))
    return client


def defaults(slug: str, **changes) -> dict:
    from catalog.models import PartFamily
    from catalog.parameters import defaults as schema_defaults
    from catalog.parameters import parse_schema

    revision = PartFamily.objects.get(slug=slug).current_revision()
    return {**schema_defaults(parse_schema(revision.parameter_schema)), **changes}


def place(client, lines):
    response = client.post("/api/v1/orders/", {"lines": lines}, format="json")
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def jobs_of(order):
    return list(Job.objects.filter(line__order=order))


def all_finished(order) -> bool:
    return all(job.status in SETTLED for job in jobs_of(order))


def follow_and_confirm(order) -> bool:
    """What beat and the requester do meanwhile: follow the jobs (an estimated price is checked
    on the built part) and confirm a price that rose beyond the tolerance; then: all finished?"""
    from django.utils import timezone

    from orders.services import order_price_confirm, orders_follow_jobs

    orders_follow_jobs(now=timezone.now())
    order.refresh_from_db()
    if order.status == Order.Status.PRICE_CONFIRMATION:
        order_price_confirm(order=order, user=order.placed_by)
    return all_finished(order)


def test_an_order_reaches_a_machine_with_geometry_gcode_and_traveler(requester, start_worker):
    from tests.integration.conftest import job_steps, wait_for

    # Its lines of 2 and 4 copies go on plates (#13): planned at once, not after the window.
    worker = start_worker(env={"MF_PLATE_BATCH_WINDOW_S": "0"})
    started = time.monotonic()
    order = place(
        requester,
        [
            {
                "part": "shaft-collar",
                "parameters": defaults("shaft-collar"),
                "material": "petg",
                "quantity": 2,
            },
            {"part": "spacer", "parameters": defaults("spacer"), "material": "petg", "quantity": 4},
        ],
    )
    wait_for(
        lambda: follow_and_confirm(order), timeout=240, what="every job to finish", worker=worker
    )
    elapsed = time.monotonic() - started
    for job in jobs_of(order):
        assert job.status == AT_MACHINE, (job.status, job.reason, worker.output())
        assert job.machine is not None
        assert job_steps(job, worker=worker) == ["order", *PIPELINE_STEPS, "dispatch"]
        files = {link.kind: link.artifact for link in job.job_artifacts.select_related("artifact")}
        assert set(files) == {"step", "stl", "svg", "gcode", "traveler"}
        assert files["stl"].size > 1000
        gcode = files["gcode"].file.read().decode()
        assert any(line.startswith("G1") and " E" in line for line in gcode.splitlines())
        assert files["traveler"].file.read(5) == b"%PDF-"
        # Signed by the worker, checked here: every process shares the passport key.
        assert passport.passport_check(job).files_ok
        assert passport.passport_verify(job).verified
    detail = requester.get(f"/api/v1/orders/{order.pk}/").json()
    artifact_url = detail["lines"][0]["jobs"][0]["artifacts"][0]["url"]
    assert requester.get(artifact_url).status_code == 200
    print(f"\norder of 2 lines routed in {elapsed:.1f} s")


def test_an_unmakeable_part_is_rejected_with_its_reason(requester, start_worker):
    from catalog.models import Material
    from tests.builders import make_part
    from tests.integration.conftest import wait_for

    make_part("block", materials=[Material.objects.get(slug="pla")])
    worker = start_worker()
    # 300 mm is wider than every machine with PLA loaded (the MK4s take 250 x 210 mm).
    order = place(
        requester,
        [
            {
                "part": "block",
                "parameters": {"width": 300, "height": 10, "hole_d": 5},
                "material": "pla",
                "quantity": 1,
            }
        ],
    )
    wait_for(lambda: all_finished(order), timeout=120, what="the job to finish", worker=worker)
    job = jobs_of(order)[0]
    assert job.status == Job.Status.REJECTED
    assert "larger than every capable machine" in job.reason
    assert list(job.events.values_list("to_status", flat=True)) == [
        "queued",
        "geometry_built",
        "rejected",
    ]


def test_a_worker_killed_mid_pipeline_loses_and_duplicates_nothing(requester, start_worker):
    from tests.integration.conftest import job_steps, wait_for

    # Short step limits, so the claims the doomed worker takes expire quickly (a claim lasts
    # the hard limit): the reconciler re-sends those steps, and only those.
    limits = {"MF_JOB_STEP_TIME_LIMIT_S": "20", "MF_JOB_STEP_HARD_TIME_LIMIT_S": "25"}
    first = start_worker(name="doomed", env=limits)
    lines = [
        {
            "part": "spacer",
            "parameters": defaults("spacer", length=10 + i),
            "material": "pla",
            "quantity": 1,
        }
        for i in range(6)
    ]
    order = place(requester, lines)
    wait_for(
        lambda: JobEvent.objects.filter(job__line__order=order, step="geometry").exists(),
        timeout=120,
        what="the first geometry build",
        worker=first,
    )
    first.kill()
    assert not all_finished(order), "the pipeline finished before the worker could be killed"
    second = start_worker(
        name="rescuer",
        beat=True,
        env={**limits, "MF_JOB_STALE_AFTER_S": "6", "MF_RECONCILE_INTERVAL_S": "2"},
    )
    wait_for(
        lambda: follow_and_confirm(order), timeout=300, what="every job to finish", worker=second
    )
    jobs = jobs_of(order)
    assert [job.status for job in jobs] == [AT_MACHINE] * 6, [j.reason for j in jobs]
    for job in jobs:
        job_steps(job, worker=second)  # its traveler, rendered beside routing
    per_step = Counter(
        JobEvent.objects.filter(job__line__order=order).values_list("job_id", "step")
    )
    assert set(per_step.values()) == {1}, per_step
    assert len(per_step) == 6 * (1 + len(PIPELINE_STEPS) + 1)  # order, pipeline, dispatch
    links = Counter(JobArtifact.objects.filter(job__in=jobs).values_list("job_id", "kind"))
    assert set(links.values()) == {1} and len(links) == 6 * 5
    # Same inputs, same artifact: six spacers of six lengths share nothing but are built once each.
    assert Artifact.objects.filter(kind="stl").count() == 6


def test_a_duplicate_message_for_a_step_already_done_is_dropped(requester, start_worker):
    from production.services import QUEUE_FOR_STATUS, STEP_STATUSES
    from production.tasks import advance_job
    from tests.integration.conftest import job_steps, wait_for

    worker = start_worker()
    order = place(
        requester,
        [{"part": "spacer", "parameters": defaults("spacer"), "material": "pla", "quantity": 1}],
    )
    (job,) = jobs_of(order)
    wait_for(
        lambda: Job.objects.get(pk=job.pk).status != Job.Status.QUEUED,
        timeout=120,
        what="the geometry step",
        worker=worker,
    )
    # A redelivery of the first step's message, while the job is further down the pipeline.
    advance_job.apply_async(args=(job.pk, Job.Status.QUEUED), queue="geometry")
    wait_for(
        lambda: follow_and_confirm(order), timeout=180, what="the job to finish", worker=worker
    )
    # Every step's message once more, now that the job is at its machine.
    for status in STEP_STATUSES:
        advance_job.apply_async(args=(job.pk, status), queue=QUEUE_FOR_STATUS[status])
    wait_for(
        lambda: worker.output().count(f"{job.number}: dropped a message for ") >= 4,
        timeout=60,
        what="four dropped messages",
        worker=worker,
    )
    log = worker.output()
    assert f"{job.number}: dropped a message for queued: the job is " in log
    assert f"{job.number}: dropped a message for validated: the job is dispatched" in log
    job.refresh_from_db()
    assert job.status == AT_MACHINE, (job.status, job.reason)
    # Routed once, each step once.
    assert job_steps(job, worker=worker) == ["order", *PIPELINE_STEPS, "dispatch"]
    links = Counter(job.job_artifacts.values_list("kind", flat=True))
    assert links == Counter({"step": 1, "stl": 1, "svg": 1, "gcode": 1, "traveler": 1})
