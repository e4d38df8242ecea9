"""A milled and a laser-cut part of the demo catalog travel through a real Celery worker to
the demo's mill and laser: planned, verified, stored with their rendering, signed."""

import time

import pytest

from production import passport
from tests.integration.test_pipeline import (
    AT_MACHINE,
    PIPELINE_STEPS,
    defaults,
    follow_and_confirm,
    jobs_of,
    place,
    requester,  # noqa: F401 - the fixture, used by name
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_milled_and_a_laser_cut_part_reach_the_mill_and_the_laser(requester, start_worker):  # noqa: F811
    from django.contrib.auth import get_user_model

    from tests.integration.conftest import job_steps, wait_for
    from tests.production.test_cnc_laser_jobs import measure

    worker = start_worker()
    started = time.monotonic()
    # The requester's previews of the two configurations: a fresh demo has no fitted
    # estimator yet, and a route on plate or sheet is quoted on the part's thickness.
    user = get_user_model().objects.get(username="requester")
    for slug in ("milled-cover-plate", "laser-cover-plate"):
        measure(user, slug, defaults(slug))
    order = place(
        requester,
        [
            {
                "part": "milled-cover-plate",
                "parameters": defaults("milled-cover-plate"),
                "material": "aluminium-6061",
                "quantity": 1,
            },
            {
                "part": "laser-cover-plate",
                "parameters": defaults("laser-cover-plate"),
                "material": "acrylic",
                "quantity": 2,
            },
        ],
    )
    wait_for(
        lambda: follow_and_confirm(order), timeout=300, what="both jobs to finish", worker=worker
    )
    elapsed = time.monotonic() - started
    machine_of = {"cnc_mill": "mill-1", "laser": "laser-1"}
    names = {"cnc_mill": ("part.nc", "simulated.png"), "laser": ("part.gcode", "cut-paths.svg")}
    for job in jobs_of(order):
        assert job.status == AT_MACHINE, (job.status, job.reason, worker.output())
        process = job.toolpath_meta["process"]
        assert job.machine is not None and job.machine.slug == machine_of[process]
        assert job_steps(job, worker=worker) == ["order", *PIPELINE_STEPS, "dispatch"]
        files = {link.kind: link.artifact for link in job.job_artifacts.select_related("artifact")}
        assert set(files) == {"step", "stl", "svg", "gcode", "render", "traveler"}
        program, picture = names[process]
        assert files["gcode"].file.name.endswith(program)
        assert files["render"].file.name.endswith(picture)
        assert files["gcode"].file.read().decode().rstrip().endswith("M30")
        assert job.toolpath_meta["verification"]["rs274"] == "accepted"
        assert files["traveler"].file.read(5) == b"%PDF-"
        assert passport.passport_check(job).files_ok
        assert passport.passport_verify(job).verified
    print(f"\nmilled and laser-cut order dispatched in {elapsed:.1f} s")
