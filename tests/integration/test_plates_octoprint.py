"""#13 on a networked printer: an order for three copies of a small part goes through the real
worker pipeline (Celery with beat, real Redis) to one plate, which the dispatcher uploads to a
real OctoPrint, whose virtual printer prints it to the end while our poller follows it; the
plate then waits for QC copy by copy, which the station records.

Uses the OctoPrint fixture of tests/integration/test_octoprint.py (one server per session)."""

import time

import pytest
from django.utils import timezone

from production import plating, services
from production.models import Job, Machine, MachineFile, Plate, PlateCopy
from tests.builders import make_machine, make_order, make_part, make_user
from tests.integration.conftest import wait_for
from tests.integration.test_octoprint import OctoPrint, octoprint  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cad,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("octoprint"),
]

SMALL = {"width": 10, "height": 2, "hole_d": 4}


def test_an_order_of_three_copies_is_printed_as_one_plate_on_the_virtual_printer(
    octoprint: OctoPrint,  # noqa: F811
    start_worker,
    user,
    organisation,
):
    make_part("block")
    machine = make_machine("octo-1", model="Virtual Marlin")
    Machine.objects.filter(pk=machine.pk).update(
        connector=Machine.Connector.OCTOPRINT,
        connector_url=octoprint.url,
        connector_secret_env="MF_TEST_OCTOPRINT_KEY",
        last_seen_at=timezone.now(),
    )
    worker = start_worker(
        beat=True,
        env={
            "MF_TEST_OCTOPRINT_KEY": octoprint.api_key,
            "MF_CONNECTOR_POLL_S": "1",
            "MF_CONNECTOR_BACKOFF_S": "0.2",
            "MF_PLATE_BATCH_WINDOW_S": "0",
        },
    )
    started = time.monotonic()
    order = make_order(user=user, quantity=3, parameters=SMALL)
    line = order.lines.get()
    services.jobs_release(line_ids=[line.pk])
    (job,) = line.jobs.all()
    assert services.job_enqueue(job_id=job.pk)

    seen: list[str] = []  # the plate's statuses, in turn
    printing: list[float] = []  # OctoPrint's completion of our plate's file while it printed

    def printed() -> bool:
        status = Job.objects.get(pk=job.pk).status
        plate = Plate.objects.filter(copies__job=job).first()
        if plate is not None:
            if not seen or seen[-1] != plate.status:
                seen.append(plate.status)
            if plate.status == Plate.Status.RUNNING:
                now = octoprint.get("/api/job").json()
                if (now["job"]["file"]["name"] or "") == f"{plate.number}.gcode":
                    printing.append(now["progress"]["completion"] or 0.0)
        return status in Job.TERMINAL | {Job.Status.AWAITING_QC}

    # The part is made, sliced as a plate of three and printed: heating the virtual printer
    # takes ~20 s and its moves are slept.
    wait_for(printed, timeout=600, what="the plate to be printed", worker=worker)
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert job.status == Job.Status.AWAITING_QC, (job.status, job.reason, worker.output())
    (plate,) = Plate.objects.filter(copies__job=job).distinct()
    assert plate.status == Plate.Status.FINISHED and plate.machine_id == machine.pk
    assert plate.started_at is not None and plate.finished_at is not None
    assert sorted(PlateCopy.objects.filter(plate=plate).values_list("copy_index", flat=True)) == [
        1,
        2,
        3,
    ]
    assert {c["status"] for c in plate.verification["copies"]} == {"pass"}
    assert seen[-2:] == [Plate.Status.RUNNING, Plate.Status.FINISHED], seen
    assert printing, "OctoPrint was never seen printing the plate's file"
    steps = list(job.events.order_by("pk").values_list("step", flat=True))
    assert steps[-4:] == ["routing", "dispatch", "start", "finish"], steps
    # OctoPrint printed our plate's file (one upload, not three runs of one copy): the plate
    # finished when it reported that file complete; the poller then deleted it there (its
    # record goes after the DELETE is answered: wait for the record, then check OctoPrint).
    wait_for(
        lambda: not MachineFile.objects.filter(machine=machine).exists(),
        timeout=30,
        what="the plate's G-code to be deleted from OctoPrint",
        worker=worker,
    )
    assert octoprint.get(f"/api/files/local/{plate.number}.gcode").status_code == 404
    machine.refresh_from_db()
    assert (machine.state, machine.current_job_id) == (Machine.State.IDLE, None)

    # QC at the station, copy by copy: two pass, one is scrapped and remade.
    operator = make_user("op", organisation=organisation, role="operator")
    copies = list(plate.copies.order_by("number"))
    outcome = plating.copies_qc(
        plate_id=plate.pk,
        passed=[c.pk for c in copies[:2]],
        scrapped=[copies[2].pk],
        reason="warped",
        operator=operator,
        now=timezone.now(),
    )
    job.refresh_from_db()
    assert (job.status, job.qc_passed, job.qc_scrapped) == (Job.Status.DONE, 2, 1)
    assert [r.quantity for r in outcome.remakes] == [1]
    print(f"\norder of 3 copies planned, sliced, printed on one plate in {elapsed:.1f} s")
