"""Connectors against recorded API responses: Moonraker's documented shapes served by a local
HTTP server, OctoPrint's status bodies read in isolation, and the machine services driving a
networked printer through dispatch, polling and failures."""

import json
import socket

import pytest
from django.utils import timezone

from production import connectors, machines
from production.connectors.http import HttpClient
from production.connectors.moonraker import Moonraker
from production.connectors.octoprint import OctoPrint
from production.connectors.octoprint import read_status as octoprint_status
from production.models import Job, Machine, MachineFile, MachineTelemetry
from tests.builders import make_machine, make_ready_job
from tests.production.fake_printer import Answer, FakePrinter, recorded

Status = Job.Status


@pytest.fixture(autouse=True)
def _quick_retries(settings):
    settings.MF_CONNECTOR_BACKOFF_S = 0
    settings.MF_CONNECTOR_TIMEOUT_S = 0.5
    settings.MF_CONNECTOR_ATTEMPTS = 3


@pytest.fixture
def printer():
    fake = FakePrinter()
    yield fake
    fake.close()


def moonraker(url: str, key: str = "sekrit") -> Moonraker:
    return Moonraker(
        HttpClient(url, headers={"X-Api-Key": key}, timeout_s=0.5, attempts=3, backoff_s=0)
    )


# --- Moonraker, recorded responses ----------------------------------------------------------


def test_moonraker_uploads_then_starts_the_file_with_the_api_key(printer):
    printer.script.on("POST", "/server/files/upload", recorded("upload.json", 201))
    printer.script.on("POST", "/printer/print/start", recorded("ok.json"))
    moonraker(printer.url).dispatch(filename="J-000001.gcode", gcode=b"G28\nM84\n")
    upload, start = printer.script.seen
    assert upload.path == "/server/files/upload"
    assert b'filename="J-000001.gcode"' in upload.body and b"G28\nM84\n" in upload.body
    assert b'name="root"\r\n\r\ngcodes' in upload.body
    assert start.path == "/printer/print/start?filename=J-000001.gcode"
    assert {upload.headers["X-Api-Key"], start.headers["X-Api-Key"]} == {"sekrit"}


def test_moonraker_status_while_printing(printer):
    printer.script.on("GET", "/printer/objects/query", recorded("query_printing_20.json"))
    status = moonraker(printer.url).poll()
    assert (status.state, status.job_state, status.job_file) == (
        "busy",
        "printing",
        "J-000001.gcode",
    )
    assert status.progress == pytest.approx(20.0)
    assert status.temperatures == {"extruder": 214.8, "heater_bed": 59.9}
    assert printer.script.seen[0].path == (
        "/printer/objects/query?webhooks&print_stats&virtual_sdcard&extruder&heater_bed"
    )


@pytest.mark.parametrize(
    ("recording", "state", "job_state", "error"),
    [
        ("query_standby.json", "idle", None, ""),
        ("query_complete.json", "idle", "complete", ""),
        ("query_print_error.json", "error", "error", "Move out of range"),
        ("query_klippy_shutdown.json", "error", None, "MCU 'mcu' shutdown"),
    ],
)
def test_moonraker_states_map_to_ours(printer, recording, state, job_state, error):
    printer.script.on("GET", "/printer/objects/query", recorded(recording))
    status = moonraker(printer.url).poll()
    assert (status.state, status.job_state) == (state, job_state)
    assert status.error_text.startswith(error)


def test_moonraker_cancel(printer):
    printer.script.on("POST", "/printer/print/cancel", recorded("ok.json"))
    moonraker(printer.url).cancel()
    assert printer.paths() == ["POST /printer/print/cancel"]


def test_moonraker_removes_a_file_and_a_file_already_gone_is_no_error(printer):
    printer.script.on("DELETE", "/server/files/gcodes/J-000001.gcode", recorded("delete_file.json"))
    moonraker(printer.url).remove(filename="J-000001.gcode")
    moonraker(printer.url).remove(filename="J-000002.gcode")  # the fake answers 404
    assert printer.paths() == [
        "DELETE /server/files/gcodes/J-000001.gcode",
        "DELETE /server/files/gcodes/J-000002.gcode",
    ]


def test_octoprint_removes_a_file_and_a_file_already_gone_is_no_error(printer):
    printer.script.on("DELETE", "/api/files/local/J-000001.gcode", Answer(204, b""))
    octoprint = OctoPrint(
        HttpClient(printer.url, headers={}, timeout_s=0.5, attempts=3, backoff_s=0)
    )
    octoprint.remove(filename="J-000001.gcode")
    octoprint.remove(filename="J-000002.gcode")
    assert printer.paths() == [
        "DELETE /api/files/local/J-000001.gcode",
        "DELETE /api/files/local/J-000002.gcode",
    ]


def test_a_refused_key_is_retried_then_reported(printer):
    printer.script.on("GET", "/printer/objects/query", recorded("unauthorized.json", 401))
    with pytest.raises(connectors.AuthFailed, match="HTTP 401"):
        moonraker(printer.url, key="wrong").poll()
    assert len(printer.script.seen) == 3


def test_a_server_error_then_success_is_retried_quietly(printer):
    printer.script.on(
        "GET",
        "/printer/objects/query",
        Answer(503, b'{"error": {"code": 503, "message": "Klippy Disconnected"}}'),
        recorded("query_standby.json"),
    )
    assert moonraker(printer.url).poll().state == "idle"
    assert len(printer.script.seen) == 2


def test_a_slow_machine_times_out(printer):
    printer.script.on("GET", "/printer/objects/query", Answer(200, b"{}", delay_s=1.0))
    with pytest.raises(connectors.Unreachable, match="no answer within 0.5 s"):
        moonraker(printer.url).poll()


def test_a_machine_that_is_not_there_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(connectors.Unreachable, match="ConnectError"):
        moonraker(f"http://127.0.0.1:{port}").poll()


@pytest.mark.parametrize(
    "body", [b"<html>proxy error</html>", b"[1, 2]", b'{"result": {"status": {}}}']
)
def test_answers_we_cannot_read_are_unexpected(printer, body):
    printer.script.on("GET", "/printer/objects/query", Answer(200, body))
    with pytest.raises(connectors.Unexpected):
        moonraker(printer.url).poll()


# --- OctoPrint status bodies (as GET /api/job and GET /api/printer return them) -------------


def octo_job(state, *, name="J-000001.gcode", completion=None):
    return {
        "job": {"file": {"name": name, "origin": "local", "path": name, "size": 182}},
        "progress": {"completion": completion, "filepos": 0, "printTime": 1, "printTimeLeft": 3},
        "state": state,
    }


OCTO_PRINTER = {
    "state": {"text": "Printing", "error": "", "flags": {"printing": True}},
    "temperature": {
        "tool0": {"actual": 214.9, "target": 215.0, "offset": 0},
        "bed": {"actual": 60.1, "target": 60.0, "offset": 0},
    },
}


@pytest.mark.parametrize(
    ("state", "completion", "ours", "job_state"),
    [
        ("Printing", 53.2, "busy", "printing"),
        ("Paused", 53.2, "paused", "paused"),
        ("Operational", 100.0, "idle", "complete"),
        ("Operational", 37.0, "idle", "cancelled"),
        ("Offline after error", None, "error", "error"),
        ("Offline", None, "offline", None),
        ("Connecting", None, "offline", None),
    ],
)
def test_octoprint_states_map_to_ours(state, completion, ours, job_state):
    status = octoprint_status(octo_job(state, completion=completion), OCTO_PRINTER)
    assert (status.state, status.job_state) == (ours, job_state)
    assert status.temperatures == {"tool0": 214.9, "bed": 60.1}


def test_octoprint_without_a_file_reports_no_job():
    status = octoprint_status(octo_job("Operational", name=None), None)
    assert (status.state, status.job_file, status.job_state, status.temperatures) == (
        "idle",
        None,
        None,
        {},
    )


def test_an_octoprint_body_of_the_wrong_shape_is_unexpected():
    with pytest.raises(connectors.Unexpected):
        octoprint_status({"state": "Printing", "job": None}, None)


# --- the services driving a networked printer -----------------------------------------------


@pytest.fixture
def klipper(db, printer, monkeypatch):
    monkeypatch.setenv("VORON_KEY", "sekrit")
    machine = make_machine("voron")
    Machine.objects.filter(pk=machine.pk).update(
        connector="moonraker",
        connector_url=printer.url,
        connector_secret_env="VORON_KEY",
        last_seen_at=timezone.now(),
    )
    return Machine.objects.get(pk=machine.pk)


def poll(machine):
    return machines.machine_poll(machine_id=machine.pk, now=timezone.now(), actor="poller")


def test_a_routed_job_is_printed_on_a_moonraker_printer_and_waits_for_qc(klipper, printer, user):
    job = make_ready_job(user=user)
    routed = machines.jobs_route_waiting(now=timezone.now(), actor="router")
    assert routed == {job.pk: "voron"}
    job.refresh_from_db()
    script = printer.script
    script.on("POST", "/server/files/upload", recorded("upload.json", 201, job=job.number))
    script.on("POST", "/printer/print/start", recorded("ok.json"))
    script.on(
        "GET",
        "/printer/objects/query",
        recorded("query_printing_20.json", job=job.number),
        recorded("query_printing_60.json", job=job.number),
        recorded("query_complete.json", job=job.number),
    )
    delete = f"/server/files/gcodes/{job.number}.gcode"
    script.on("DELETE", delete, recorded("delete_file.json", job=job.number))
    sent = machines.machine_dispatch(machine_id=klipper.pk, now=timezone.now(), actor="worker")
    assert sent == [job.pk]
    # A second dispatch (a redelivered message) sends nothing: the printer has its job.
    assert machines.machine_dispatch(machine_id=klipper.pk, now=timezone.now(), actor="w") == []
    assert f"filename={job.number}.gcode" in printer.paths()[1]

    poll(klipper)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.RUNNING, pytest.approx(20.0))
    poll(klipper)
    assert Job.objects.get(pk=job.pk).progress == pytest.approx(60.0)
    assert f"DELETE {delete}" not in printer.paths()  # not while it prints
    poll(klipper)
    job.refresh_from_db()
    assert job.status == Status.AWAITING_QC and job.finished_at is not None
    # The poll that saw the print end deleted our file on the printer.
    assert printer.paths()[-1] == f"DELETE {delete}"
    assert not MachineFile.objects.exists()
    assert list(job.events.order_by("pk").values_list("step", flat=True)) == [
        "order",
        "routing",
        "dispatch",
        "start",
        "finish",
    ]
    progress = list(
        MachineTelemetry.objects.filter(machine=klipper)
        .order_by("pk")
        .values_list("progress", flat=True)
    )
    assert progress == [pytest.approx(20.0), pytest.approx(60.0), pytest.approx(100.0)]
    klipper.refresh_from_db()
    assert (klipper.state, klipper.current_job_id) == ("idle", None)
    assert klipper.temperatures == {"extruder": 190.2, "heater_bed": 55.0}


def paused_at(recording: str, job: Job) -> Answer:
    """A recorded printing body with Klipper's print_stats.state set to paused."""
    answer = recorded(recording, job=job.number)
    body = answer.body.replace(b'"state": "printing"', b'"state": "paused"')
    assert body != answer.body
    return Answer(200, body)


def test_a_print_paused_on_the_printer_pauses_the_job_and_resumes_with_it(klipper, printer, user):
    job = make_ready_job(user=user)
    Job.objects.filter(pk=job.pk).update(status=Status.RUNNING, machine=klipper)
    printer.script.on(
        "GET",
        "/printer/objects/query",
        paused_at("query_printing_20.json", job),
        recorded("query_printing_60.json", job=job.number),
    )
    poll(klipper)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.PAUSED, pytest.approx(20.0))
    assert Machine.objects.get(pk=klipper.pk).state == "paused"
    poll(klipper)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.RUNNING, pytest.approx(60.0))
    assert Machine.objects.get(pk=klipper.pk).state == "busy"
    assert list(job.events.order_by("pk").values_list("step", "to_status"))[-2:] == [
        ("pause", "paused"),
        ("continue", "running"),
    ]


def test_a_failed_upload_puts_the_job_back_and_the_machine_in_error(klipper, printer, user):
    make_machine("mk4-2")
    job = make_ready_job(user=user)
    Job.objects.filter(pk=job.pk).update(status=Status.ROUTED, machine=klipper)
    printer.script.on("POST", "/server/files/upload", Answer(500, b"disk full"))
    assert machines.machine_dispatch(machine_id=klipper.pk, now=timezone.now(), actor="w") == []
    klipper.refresh_from_db()
    assert klipper.state == "error"
    assert "could not send" in klipper.error_text and "HTTP 500" in klipper.error_text
    job.refresh_from_db()
    assert (job.status, job.machine) == (Status.TOOLPATH_READY, None)
    steps = list(job.events.order_by("pk").values_list("step", "to_status"))
    assert steps[-3:] == [
        ("dispatch", "dispatched"),
        ("dispatch", "routed"),
        ("reroute", "toolpath_ready"),
    ]
    assert len(printer.script.seen) == 3  # retried, then given up


def test_a_print_error_fails_the_job_and_queues_a_replacement(klipper, printer, user):
    job = make_ready_job(user=user)
    Job.objects.filter(pk=job.pk).update(status=Status.RUNNING, machine=klipper)
    job.refresh_from_db()
    printer.script.on(
        "GET", "/printer/objects/query", recorded("query_print_error.json", job=job.number)
    )
    poll(klipper)
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert job.reason.startswith("machine error: Move out of range")
    assert job.replacements.get().status == Status.TOOLPATH_READY
    assert Machine.objects.get(pk=klipper.pk).state == "error"


def test_an_unreachable_printer_keeps_its_state_until_the_silence_rule(klipper):
    Machine.objects.filter(pk=klipper.pk).update(connector_url="http://127.0.0.1:9")
    assert poll(klipper) is None
    klipper.refresh_from_db()
    assert klipper.state == "idle" and "ConnectError" in klipper.error_text


def test_a_missing_api_key_variable_is_a_machine_error(klipper, monkeypatch):
    monkeypatch.delenv("VORON_KEY")
    poll(klipper)
    klipper.refresh_from_db()
    assert klipper.state == "error"
    assert "VORON_KEY" in klipper.error_text and "is not set" in klipper.error_text


def test_a_printer_back_from_offline_is_routed_to_again(klipper, printer, user):
    Machine.objects.filter(pk=klipper.pk).update(state="offline")
    job = make_ready_job(user=user)
    assert machines.jobs_route_waiting(now=timezone.now(), actor="router") == {}
    printer.script.on("GET", "/printer/objects/query", recorded("query_standby.json"))
    poll(klipper)
    assert Machine.objects.get(pk=klipper.pk).state == "idle"
    assert machines.jobs_route_waiting(now=timezone.now(), actor="router") == {job.pk: "voron"}
    json.dumps(list(machines.jobs_route_waiting(now=timezone.now(), actor="r")))


# --- removing the files we uploaded once their jobs are over --------------------------------


def sent_job(machine: Machine, user, status: str) -> Job:
    """A job uploaded to the machine (as machine_dispatch records it) now in `status`."""
    job = make_ready_job(user=user)
    Job.objects.filter(pk=job.pk).update(status=status, machine=machine)
    job.refresh_from_db()
    MachineFile.objects.create(
        machine=machine, filename=f"{job.number}.gcode", job=job, sent_at=timezone.now()
    )
    return job


def test_a_file_the_printer_still_prints_is_kept_until_it_stops(klipper, printer, user):
    # Cancelled here (the order was withdrawn) while the printer goes on printing it.
    job = sent_job(klipper, user, Status.CANCELLED)
    delete = f"DELETE /server/files/gcodes/{job.number}.gcode"
    printer.script.on(
        "GET",
        "/printer/objects/query",
        recorded("query_printing_60.json", job=job.number),
        recorded("query_complete.json", job=job.number),
    )
    printer.script.on("DELETE", delete.split()[1], recorded("delete_file.json", job=job.number))
    poll(klipper)
    assert delete not in printer.paths()
    assert MachineFile.objects.filter(job=job).exists()
    poll(klipper)
    assert printer.paths()[-1] == delete
    assert not MachineFile.objects.exists()


def test_the_file_of_a_failed_print_is_removed_by_the_poll_that_saw_the_failure(
    klipper, printer, user
):
    job = sent_job(klipper, user, Status.RUNNING)
    printer.script.on(
        "GET", "/printer/objects/query", recorded("query_print_error.json", job=job.number)
    )
    printer.script.on(
        "DELETE", f"/server/files/gcodes/{job.number}.gcode", recorded("delete_file.json")
    )
    poll(klipper)
    assert Job.objects.get(pk=job.pk).status == Status.FAILED
    assert printer.paths()[-1] == f"DELETE /server/files/gcodes/{job.number}.gcode"
    assert not MachineFile.objects.exists()


def test_a_printer_offline_when_the_job_ended_gets_its_file_removed_when_it_is_back(
    klipper, printer, user
):
    job = sent_job(klipper, user, Status.AWAITING_QC)
    url = klipper.connector_url
    Machine.objects.filter(pk=klipper.pk).update(connector_url="http://127.0.0.1:9")
    assert poll(klipper) is None
    assert MachineFile.objects.filter(job=job).exists()
    # Back, but its file API fails for a while (a 5xx counts as unreachable): kept, uncounted.
    Machine.objects.filter(pk=klipper.pk).update(connector_url=url)
    printer.script.on("GET", "/printer/objects/query", recorded("query_standby.json"))
    delete = f"/server/files/gcodes/{job.number}.gcode"
    printer.script.on("DELETE", delete, *[Answer(503, b"busy")] * 3, recorded("delete_file.json"))
    poll(klipper)
    record = MachineFile.objects.get(job=job)
    assert record.failed_removals == 0
    poll(klipper)
    assert not MachineFile.objects.exists()
    assert printer.paths().count(f"DELETE {delete}") == 4


def test_a_file_the_printer_keeps_refusing_to_delete_is_given_up_with_a_warning(
    klipper, printer, user, caplog
):
    job = sent_job(klipper, user, Status.DONE)
    printer.script.on("GET", "/printer/objects/query", recorded("query_standby.json"))
    printer.script.on(
        "DELETE", f"/server/files/gcodes/{job.number}.gcode", Answer(400, b'{"error": "no"}')
    )
    for attempt in range(1, machines.FILE_REMOVAL_ATTEMPTS):
        poll(klipper)
        record = MachineFile.objects.get(job=job)
        assert (record.failed_removals, "HTTP 400" in record.last_error) == (attempt, True)
    poll(klipper)
    assert not MachineFile.objects.exists()
    assert "gave up removing" in caplog.text and f"{job.number}.gcode" in caplog.text
    assert Machine.objects.get(pk=klipper.pk).state == "idle"  # best effort: no machine error


def test_files_of_jobs_still_on_the_machine_are_left_alone(klipper, printer, user):
    for status in (Status.ROUTED, Status.DISPATCHED, Status.TOOLPATH_READY):
        sent_job(klipper, user, status)
    printer.script.on("GET", "/printer/objects/query", recorded("query_standby.json"))
    poll(klipper)
    assert [p for p in printer.paths() if p.startswith("DELETE")] == []
    assert MachineFile.objects.count() == 3
