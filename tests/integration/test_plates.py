"""An order for N copies travels through a real Celery worker (real Redis) to a routed plate:
the pipeline makes the part, the router hands the job to the plate pass, which plans, slices
and checks the plate and renders its traveler, and the router puts the plate on a machine."""

import time

import pytest

from production.models import Job, Plate, PlateCopy
from tests.integration.test_pipeline import defaults, follow_and_confirm, jobs_of, place

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def requester():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    call_command("seed_demo", "--no-order", verbosity=0)
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="requester"))
    return client


def test_an_order_of_six_copies_reaches_a_machine_as_a_verified_plate(requester, start_worker):
    from tests.integration.conftest import job_steps, wait_for

    worker = start_worker(env={"MF_PLATE_BATCH_WINDOW_S": "0"})
    started = time.monotonic()
    order = place(
        requester,
        [{"part": "spacer", "parameters": defaults("spacer"), "material": "petg", "quantity": 6}],
    )

    def at_machine() -> bool:
        follow_and_confirm(order)
        return all(job.status in (Job.Status.DISPATCHED, Job.Status.REJECTED, Job.Status.FAILED)
                   for job in jobs_of(order))  # fmt: skip

    wait_for(at_machine, timeout=300, what="the plate to be routed", worker=worker)
    elapsed = time.monotonic() - started
    (job,) = jobs_of(order)
    assert job.status == Job.Status.DISPATCHED, (job.reason, worker.output())
    copies = PlateCopy.objects.filter(job=job)
    assert sorted(copies.values_list("copy_index", flat=True)) == [1, 2, 3, 4, 5, 6]
    plates = Plate.objects.filter(copies__job=job).distinct()
    for plate in plates:
        assert plate.status == Plate.Status.ROUTED and plate.machine is not None
        assert {c["status"] for c in plate.verification["copies"]} == {"pass"}
        assert plate.gcode.file.read(1) and plate.traveler.file.read(5) == b"%PDF-"
    assert job.machine == plates.first().machine
    steps = job_steps(job, worker=worker)
    assert steps == [
        "order",
        "geometry",
        "validation",
        "toolpath",
        "traveler",
        "routing",
        "dispatch",
    ]
    detail = requester.get(f"/api/v1/orders/{order.pk}/").json()
    shown = detail["lines"][0]["jobs"][0]["copies"]
    assert sorted(c["copy"] for c in shown) == [1, 2, 3, 4, 5, 6]
    print(f"\norder of 6 copies on {plates.count()} routed plate(s) in {elapsed:.1f} s")
