"""A job routed to a real OctoPrint, printed by its bundled virtual printer, reported done,
its file deleted there; and G-code from our own slicer, printed there to the end without a
firmware error.

The fixture installs OctoPrint from PyPI into its own virtual environment (var/octoprint-venv,
kept between runs; OctoPrint pins its own Flask, Tornado, ... which must not enter ours),
writes a config.yaml with the virtual printer enabled and an API key, serves it on a loopback
port and connects the virtual printer. Our side is the real thing: a Celery worker with beat
routes the job, uploads the G-code, polls OctoPrint every second and moves the job on.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import shapely
import trimesh
from django.utils import timezone

from production import services
from production.models import Job, Machine, MachineFile, MachineTelemetry
from production.plates.arrange import Bed, placed_footprint
from production.plates.programs import plan_copies, plate_program
from production.toolpath import FdmProfile, plan_toolpath
from tests.builders import make_machine, make_ready_job
from tests.integration.conftest import file_lock, free_port, wait_for
from tests.production.toolpath.gcode_reader import box_stl

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    # One OctoPrint (a session fixture) for both tests: under pytest-xdist they go to the
    # same worker (`--dist loadgroup`) instead of each worker starting a server of its own.
    pytest.mark.xdist_group("octoprint"),
]

ROOT = Path(__file__).resolve().parents[2]
OCTOPRINT_VERSION = "1.11.8"  # the last 1.11: it still accepts the global api.key used below
VENV = Path(os.environ.get("MF_OCTOPRINT_VENV", ROOT / "var" / "octoprint-venv"))
# About five seconds on the virtual printer: G4 dwells are slept for real, so OctoPrint's
# progress (by file position) moves through the middle while our poller watches.
SHORT_GCODE = (
    "; Microfactory integration test: a job that only waits\n"
    "G28\nG90\nG1 Z5 F600\n" + "G4 P600\n" * 8 + "M84\n"
).encode()


@dataclass(frozen=True)
class OctoPrint:
    url: str
    api_key: str
    basedir: Path  # logs/serial.log holds every line sent to the printer and its answers

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers={"X-Api-Key": self.api_key}, timeout=10)


def octoprint_binary() -> Path:
    """OctoPrint in its own venv, installed from PyPI when missing (about 30 s).

    Under a lock beside the venv: two test processes (xdist workers, or two runs in one tree)
    must not `venv --clear` it under each other; the second waits and finds it installed.
    """
    with file_lock(VENV.parent / f"{VENV.name}.lock"):
        return _install_octoprint()


def _install_octoprint() -> Path:
    binary = VENV / "bin" / "octoprint"
    stamp = VENV / f".installed-octoprint-{OCTOPRINT_VERSION}"
    if binary.exists() and stamp.exists():
        return binary
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    install = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            f"OctoPrint=={OCTOPRINT_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if install.returncode != 0:
        pytest.fail(f"could not install OctoPrint {OCTOPRINT_VERSION}:\n{install.stderr[-4000:]}")
    stamp.write_text(f"installed in {time.monotonic() - started:.0f} s\n")
    print(f"\ninstalled OctoPrint {OCTOPRINT_VERSION} in {time.monotonic() - started:.0f} s")
    return binary


def write_config(basedir: Path, api_key: str) -> None:
    basedir.mkdir(parents=True, exist_ok=True)
    (basedir / "config.yaml").write_text(
        f"""\
api:
  key: {api_key}
server:
  firstRun: false
  onlineCheck:
    enabled: false
  pluginBlacklist:
    enabled: false
serial:
  log: true
plugins:
  virtual_printer:
    enabled: true
  tracking:
    enabled: false
  errortracking:
    enabled: false
  announcements:
    enabled: false
"""
    )


@pytest.fixture(scope="session")
def octoprint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OctoPrint]:
    binary = octoprint_binary()
    basedir = tmp_path_factory.mktemp("octoprint")
    api_key = secrets.token_hex(16)
    write_config(basedir, api_key)
    port = free_port()
    command = [
        str(binary),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--basedir",
        str(basedir),
    ]
    if os.geteuid() == 0:
        command.append("--iknowwhatimdoing")  # OctoPrint refuses root without it
    log = basedir / "serve.log"
    server = subprocess.Popen(
        command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    octo = OctoPrint(url=f"http://127.0.0.1:{port}", api_key=api_key, basedir=basedir)

    def answers(path: str, status: int = 200) -> bool:
        try:
            return octo.get(path).status_code == status
        except httpx.HTTPError:
            return False

    try:
        deadline = time.monotonic() + 120
        while not answers("/api/version"):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"OctoPrint did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        connect = httpx.post(
            f"{octo.url}/api/connection",
            headers={"X-Api-Key": api_key},
            json={"command": "connect", "port": "VIRTUAL", "baudrate": 115200},
            timeout=10,
        )
        assert connect.status_code == 204, connect.text
        deadline = time.monotonic() + 60
        while not (
            answers("/api/printer") and octo.get("/api/job").json()["state"] == "Operational"
        ):
            if time.monotonic() > deadline:
                pytest.fail(f"the virtual printer did not connect:\n{log.read_text()[-4000:]}")
            time.sleep(0.25)
        yield octo
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)


def test_a_job_routed_to_octoprint_is_printed_and_waits_for_qc(octoprint, start_worker, user):
    machine = make_machine("octo-1", model="Virtual Marlin")
    Machine.objects.filter(pk=machine.pk).update(
        connector=Machine.Connector.OCTOPRINT,
        connector_url=octoprint.url,
        connector_secret_env="MF_TEST_OCTOPRINT_KEY",
        last_seen_at=timezone.now(),
    )
    job = make_ready_job(user=user, gcode=SHORT_GCODE, estimated_time_s=5)
    worker = start_worker(
        beat=True,
        env={
            "MF_TEST_OCTOPRINT_KEY": octoprint.api_key,
            "MF_CONNECTOR_POLL_S": "1",
            "MF_CONNECTOR_BACKOFF_S": "0.2",
        },
    )
    started = time.monotonic()
    assert services.job_enqueue(job_id=job.pk)  # the routing step, on the routing queue

    statuses: list[str] = []
    uploads: list[dict[str, str]] = []  # what OctoPrint holds, seen while it prints
    completions: list[bool] = []

    def printed() -> bool:
        status = Job.objects.get(pk=job.pk).status
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if status == Job.Status.RUNNING:
            uploads.extend(octoprint.get("/api/files?recursive=true").json()["files"])
            now = octoprint.get("/api/job").json()
            completions.append(
                now["job"]["file"]["name"] == f"{job.number}.gcode"
                and (now["progress"]["completion"] or 0) > 0
            )
        return status in Job.TERMINAL | {Job.Status.AWAITING_QC}

    wait_for(printed, timeout=120, what="the job to be printed", worker=worker)
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert job.status == Job.Status.AWAITING_QC, (job.status, job.reason, worker.output())
    assert job.machine_id == machine.pk
    assert (job.progress, job.started_at is not None, job.finished_at is not None) == (
        100.0,
        True,
        True,
    )
    assert [e.step for e in job.events.order_by("pk")] == [
        "order",
        "routing",
        "dispatch",
        "start",
        "finish",
    ]
    # OctoPrint printed the file we sent to the end ...
    assert f"{job.number}.gcode" in {f["name"] for f in uploads}, uploads
    assert any(done for done in completions), completions
    # ... and the poller deleted it there once the job was over. Its record goes after the
    # DELETE is answered, and the worker logs it after that: wait for both, then OctoPrint
    # no longer has the file.
    wait_for(
        lambda: (
            not MachineFile.objects.filter(machine=machine).exists()
            and f"removed {job.number}.gcode" in worker.output()
        ),
        timeout=30,
        what="our G-code to be deleted from OctoPrint",
        worker=worker,
    )
    assert octoprint.get(f"/api/files/local/{job.number}.gcode").status_code == 404
    # Progress was seen on the way, in the machine's telemetry history.
    seen = sorted(
        p
        for p in MachineTelemetry.objects.filter(machine=machine, job=job).values_list(
            "progress", flat=True
        )
        if p is not None
    )
    assert any(0 < p < 100 for p in seen), (seen, statuses)
    machine.refresh_from_db()
    assert (machine.state, machine.current_job_id) == (Machine.State.IDLE, None)
    assert "tool0" in machine.temperatures
    print(f"\nrouted, uploaded, printed and reported in {elapsed:.1f} s; progress seen: {seen}")


@pytest.mark.cad
def test_our_slicers_gcode_prints_to_the_end_on_the_virtual_printer(octoprint: OctoPrint) -> None:
    profile = FdmProfile(machine_model="Virtual Marlin", bed_mm=(200.0, 200.0), max_height_mm=200.0)
    toolpath = plan_toolpath(box_stl(10, 10, 1), profile)
    name = "microfactory-box-10x10x1.gcode"
    sent = print_to_the_end(octoprint, name, toolpath.gcode)
    sent_lines = [line for line in sent.splitlines() if "Send: " in line]
    # Every command of the file went out (OctoPrint strips comments and numbers the lines).
    commands = [
        line.split(";")[0].strip()
        for line in toolpath.gcode.decode().splitlines()
        if line.split(";")[0].strip()
    ]
    assert len([line for line in sent_lines if " G1 " in line or " G0 " in line]) >= len(
        [c for c in commands if c.startswith(("G0", "G1"))]
    )
    # OctoPrint's own analysis of the file (run in the background after the upload) found
    # the filament our header states.
    analysis = analysed(octoprint, name)
    assert analysis["filament"]["tool0"]["length"] == pytest.approx(toolpath.filament_mm, rel=0.05)


@pytest.mark.cad
def test_a_plate_of_three_copies_prints_every_copy_on_the_virtual_printer(
    octoprint: OctoPrint,
) -> None:
    """#13: a plate's one program, checked copy by copy, printed to the end; the printer was
    sent extrusions inside each copy's footprint."""
    profile = FdmProfile(machine_model="Virtual Marlin", bed_mm=(200.0, 200.0), max_height_mm=200.0)
    parts = {1: trimesh.creation.box((10, 10, 1)).apply_translation((0, 0, 0.5))}
    plan = plan_copies(parts, {1: 3}, Bed(profile.bed_mm), spacing_mm=6, max_plates=1)
    (plate,) = plan.arrangement.plates
    program = plate_program(1, plate, parts, profile, engine="builtin", timeout_s=60)
    assert [row.status for row in program.verification.copies] == ["pass"] * 3

    sent = print_to_the_end(octoprint, "microfactory-plate-3-boxes.gcode", program.gcode)
    extruded = []  # the end of every extruding move the printer was sent
    for line in sent.splitlines():
        if "Send: " not in line or " G1 " not in line or " E" not in line:
            continue
        words = dict((w[0], w[1:]) for w in line.split("Send: ", 1)[1].split("*")[0].split()[1:])
        if "X" in words and "Y" in words and float(words["E"]) > 0:
            extruded.append(shapely.Point(float(words["X"]), float(words["Y"])))
    for placement in plate.placements:
        footprint = placed_footprint(plan.footprints[1], placement).buffer(1.0)
        inside = [point for point in extruded if footprint.contains(point)]
        assert len(inside) > 20, f"copy {placement.copy}: {len(inside)} extrusions sent"
    analysis = analysed(octoprint, "microfactory-plate-3-boxes.gcode")
    assert analysis["filament"]["tool0"]["length"] > 0


def analysed(octoprint: OctoPrint, name: str) -> dict:
    """OctoPrint's own analysis of an uploaded file (it runs in the background)."""
    deadline = time.monotonic() + 120
    while "gcodeAnalysis" not in (file := octoprint.get(f"/api/files/local/{name}").json()):
        assert time.monotonic() < deadline, "OctoPrint never analysed the file"
        time.sleep(0.5)
    return dict(file["gcodeAnalysis"])


def print_to_the_end(octoprint: OctoPrint, name: str, gcode: bytes) -> str:
    """Upload and print the file on the virtual printer until it is done; what the serial log
    shows meanwhile (checked for printer errors)."""
    serial_log = octoprint.basedir / "logs" / "serial.log"
    log_start = serial_log.stat().st_size if serial_log.exists() else 0
    upload = httpx.post(
        f"{octoprint.url}/api/files/local",
        headers={"X-Api-Key": octoprint.api_key},
        files={"file": (name, gcode, "application/octet-stream")},
        data={"select": "true", "print": "true"},
        timeout=30,
    )
    assert upload.status_code == 201, upload.text

    def finished() -> bool:
        job = octoprint.get("/api/job").json()
        return bool(
            job["job"]["file"]["name"] == name
            and job["state"] == "Operational"
            and job["progress"]["completion"] == 100.0
        )

    # Heating to 210 °C takes the virtual printer ~20 s; moves are slept at a tenth of F.
    deadline = time.monotonic() + 240
    while not finished():
        state = octoprint.get("/api/job").json()["state"]
        assert not state.startswith(("Error", "Offline")), state
        assert time.monotonic() < deadline, f"still {state}"
        time.sleep(0.5)

    printer = octoprint.get("/api/printer").json()
    assert printer["state"]["flags"]["error"] is False
    assert printer["temperature"]["tool0"]["target"] == 0  # our end G-code switched it off
    sent = serial_log.read_text(errors="replace")[log_start:]
    answers = [line for line in sent.splitlines() if "Recv: " in line]
    # The virtual printer drops characters of a fast serial stream now and then ("Checksum
    # mismatch", "expected line 110 got 111"); OctoPrint resends those lines, as with a real
    # cable. Any other error (an unknown command, a temperature fault) would be ours.
    transport = ("checksum", "line number", "expected line")
    errors = [line for line in answers if "Error" in line or "Unknown command" in line]
    assert [line for line in errors if not any(t in line.lower() for t in transport)] == []
    return sent
