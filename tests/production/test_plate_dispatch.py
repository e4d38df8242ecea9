"""Plates on networked printers (#13): the dispatcher sends a routed plate's one program to an
OctoPrint or Moonraker printer and starts it, the poller moves the plate and its jobs (running,
finished, failed), and the copies are QC'd at the station as for a plate run by hand. A failed
upload puts the plate back to be routed, as it does a job.

Against a scripted Moonraker on loopback (tests.production.fake_printer) answering with
recorded bodies; the virtual OctoPrint test is tests/integration/test_plates_octoprint.py."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from microfactory.errors import DomainError
from production import machines, plating
from production.models import Job, Machine, MachineFile, Plate
from tests.builders import make_machine, make_ready_job, make_user
from tests.production.fake_printer import Answer, FakePrinter, recorded
from tests.production.test_plating import make_plate, plated_job

pytestmark = pytest.mark.django_db

Status = Job.Status
QUERY = "/printer/objects/query"


@pytest.fixture
def printer():
    fake = FakePrinter()
    yield fake
    fake.close()


@pytest.fixture
def operator(organisation):
    return make_user("op", organisation=organisation, role="operator")


@pytest.fixture
def voron(db, printer, monkeypatch, settings):
    settings.MF_CONNECTOR_BACKOFF_S = 0
    settings.MF_CONNECTOR_TIMEOUT_S = 0.5
    monkeypatch.setenv("VORON_KEY", "sekrit")
    machine = make_machine()
    Machine.objects.filter(pk=machine.pk).update(
        connector="moonraker",
        connector_url=printer.url,
        connector_secret_env="VORON_KEY",
        last_seen_at=timezone.now(),
    )
    printer.script.on("POST", "/server/files/upload", recorded("upload.json", 201))
    printer.script.on("POST", "/printer/print/start", recorded("ok.json"))
    return Machine.objects.get(pk=machine.pk)


def route() -> dict[int, str]:
    return machines.jobs_route_waiting(now=timezone.now(), actor="router")


def dispatch(machine: Machine) -> list[int]:
    return machines.machine_dispatch(machine_id=machine.pk, now=timezone.now(), actor="worker")


def poll(machine: Machine) -> None:
    machines.machine_poll(machine_id=machine.pk, now=timezone.now(), actor="poller")


def uploads(printer: FakePrinter) -> list[str]:
    return [p for p in printer.paths() if p.startswith("POST /server/files/upload")]


def statuses(*jobs: Job) -> list[str]:
    return [Job.objects.get(pk=job.pk).status for job in jobs]


def routed_plate(user, machine: Machine) -> tuple[Plate, Job, Job]:
    a, b = plated_job(user, quantity=3), plated_job(user, quantity=2)
    plate = make_plate([a, b])
    route()
    plate.refresh_from_db()
    assert plate.status == Plate.Status.ROUTED and plate.machine == machine
    return plate, a, b


def test_a_plate_routed_to_a_networked_printer_is_printed_then_qcd_copy_by_copy(
    voron, printer, user, operator
):
    """The restriction to printers run by hand is gone: a Moonraker printer gets the plate,
    prints it to the end, and its five copies are judged at the station one by one."""
    assert plating.plates_possible()
    plate, a, b = routed_plate(user, voron)
    script = printer.script
    script.on(
        "GET",
        QUERY,
        recorded("query_printing_20.json", job=plate.number),
        recorded("query_printing_60.json", job=plate.number),
        recorded("query_complete.json", job=plate.number),
    )
    delete = f"/server/files/gcodes/{plate.number}.gcode"
    script.on("DELETE", delete, recorded("delete_file.json", job=plate.number))

    assert dispatch(voron) == [a.pk, b.pk]
    # One upload: the plate's program, once; a redelivered dispatch sends nothing more.
    assert dispatch(voron) == []
    sent = uploads(printer)
    assert len(sent) == 1 and f"filename={plate.number}.gcode" in printer.paths()[1]
    body = next(s.body for s in printer.script.seen if s.path.startswith("/server/files/upload"))
    with plate.gcode.file.open("rb") as gcode:
        assert gcode.read() in body
    assert statuses(a, b) == [Status.DISPATCHED] * 2
    assert Plate.objects.get(pk=plate.pk).status == Plate.Status.RUNNING

    poll(voron)
    plate.refresh_from_db()
    assert plate.started_at is not None and plate.progress == pytest.approx(20.0)
    assert statuses(a, b) == [Status.RUNNING] * 2
    poll(voron)
    assert Plate.objects.get(pk=plate.pk).progress == pytest.approx(60.0)
    assert f"DELETE {delete}" not in printer.paths()  # not while it prints
    poll(voron)
    plate.refresh_from_db()
    assert plate.status == Plate.Status.FINISHED and plate.finished_at is not None
    assert statuses(a, b) == [Status.AWAITING_QC] * 2
    assert printer.paths()[-1] == f"DELETE {delete}"
    assert not MachineFile.objects.exists()
    voron.refresh_from_db()
    assert (voron.state, voron.current_job_id) == ("idle", None)
    assert list(a.events.order_by("pk").values_list("step", flat=True)) == [
        "order",
        "routing",
        "dispatch",
        "start",
        "finish",
    ]

    copies = list(plate.copies.order_by("number"))
    scrapped = [c.pk for c in copies if c.job_id == a.pk][:1]
    passed = [c.pk for c in copies if c.pk not in scrapped]
    outcome = plating.copies_qc(
        plate_id=plate.pk,
        passed=passed,
        scrapped=scrapped,
        reason="warped",
        operator=operator,
        now=timezone.now(),
    )
    assert Plate.objects.get(pk=plate.pk).status == Plate.Status.DONE
    assert statuses(a, b) == [Status.DONE] * 2
    assert [r.quantity for r in outcome.remakes] == [1]


def test_the_station_does_not_start_or_finish_a_networked_printers_plate(voron, user, operator):
    plate, _, _ = routed_plate(user, voron)
    with pytest.raises(DomainError, match="reports its own start"):
        plating.plate_start(plate_id=plate.pk, operator=operator, now=timezone.now())


def test_a_failed_upload_puts_the_plate_back_to_be_routed_and_the_printer_in_error(
    voron, printer, user
):
    printer.script.on("POST", "/server/files/upload", Answer(500, b'{"error": "disk full"}'))
    plate, a, b = routed_plate(user, voron)

    assert dispatch(voron) == []

    plate.refresh_from_db()
    voron.refresh_from_db()
    assert voron.state == "error" and "could not send" in voron.error_text
    # Nothing printed: no job failed, no replacement; the plate waits for a machine again.
    assert (plate.status, plate.machine) == (Plate.Status.READY, None)
    assert statuses(a, b) == [Status.TOOLPATH_READY] * 2
    assert Job.objects.count() == 2
    # The printer back: the router routes the plate again, the dispatch sends it.
    machines.machine_set_state(machine_id=voron.pk, state="idle", now=timezone.now(), actor="t")
    printer.script.on("POST", "/server/files/upload", recorded("upload.json", 201))
    route()
    assert Plate.objects.get(pk=plate.pk).status == Plate.Status.ROUTED
    assert dispatch(voron) == [a.pk, b.pk]
    assert Plate.objects.get(pk=plate.pk).status == Plate.Status.RUNNING


@pytest.mark.parametrize(
    ("recording", "why"),
    [("query_print_error.json", "machine error"), ("query_standby.json", None)],
)
def test_a_plate_the_printer_fails_fails_with_its_jobs_which_are_remade(
    voron, printer, user, recording, why
):
    plate, a, b = routed_plate(user, voron)
    printer.script.on("GET", QUERY, recorded("query_printing_20.json", job=plate.number))
    assert dispatch(voron) == [a.pk, b.pk]
    poll(voron)
    if why is None:
        # Cancelled on the printer's own screen: it reports our file cancelled.
        body = recorded("query_printing_60.json", job=plate.number).body.replace(
            b'"state": "printing"', b'"state": "cancelled"'
        )
        printer.script.on("GET", QUERY, Answer(200, body))
        why = "cancelled on the machine"
    else:
        printer.script.on("GET", QUERY, recorded(recording, job=plate.number))
    poll(voron)

    plate.refresh_from_db()
    assert plate.status == Plate.Status.FAILED and why in plate.reason
    assert statuses(a, b) == [Status.FAILED] * 2
    remakes = Job.objects.filter(replaces__in=[a, b]).order_by("replaces_id")
    assert [(r.replaces_id, r.quantity) for r in remakes] == [(a.pk, 3), (b.pk, 2)]


def test_a_plate_whose_program_was_altered_is_not_sent(voron, printer, user):
    plate, a, b = routed_plate(user, voron)
    plate.gcode.file.save("altered.gcode", ContentFile(b"G28\nG1 Z-5\n"))

    assert dispatch(voron) == []

    assert uploads(printer) == []
    plate.refresh_from_db()
    assert plate.status == Plate.Status.FAILED and "sha256" in plate.reason
    assert statuses(a, b) == [Status.FAILED] * 2
    assert Job.objects.filter(replaces__in=[a, b]).count() == 2
    assert Machine.objects.get(pk=voron.pk).state == "idle"


def test_the_oldest_routed_goes_first_and_a_printer_running_a_plate_gets_nothing_else(
    voron, printer, user
):
    plate, a, b = routed_plate(user, voron)
    single = make_ready_job(user=user)
    assert route() == {single.pk: voron.slug}

    assert dispatch(voron) == [a.pk, b.pk]
    assert dispatch(voron) == []  # the plate is on the printer
    assert statuses(single) == [Status.ROUTED]
    assert len(uploads(printer)) == 1


def test_a_plate_the_printer_never_started_is_sent_again(voron, printer, user, settings):
    settings.MF_DISPATCH_STALE_S = 60
    plate, a, b = routed_plate(user, voron)
    assert dispatch(voron) == [a.pk, b.pk]
    printer.script.on("GET", QUERY, recorded("query_standby.json"))
    later = timezone.now() + timedelta(seconds=120)

    machines.machine_poll(machine_id=voron.pk, now=later, actor="poller")

    plate.refresh_from_db()
    assert plate.status == Plate.Status.ROUTED and plate.machine_id == voron.pk
    assert statuses(a, b) == [Status.ROUTED] * 2
    assert dispatch(voron) == [a.pk, b.pk]
    assert len(uploads(printer)) == 2
