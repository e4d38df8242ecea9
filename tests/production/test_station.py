"""The station's state machine (production/station.py), against the database."""

import hashlib
from datetime import UTC, datetime
from unittest.mock import patch

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile

from microfactory.errors import DomainError
from production import station
from production.models import Artifact, Job, JobArtifact, JobEvent, Machine
from tests.builders import make_machine, make_ready_job, make_user

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<rect width="10" height="5"/></svg>'
)


def attach(job: Job, kind: str, content: bytes, meta: dict) -> None:
    key = hashlib.sha256(kind.encode() + content).hexdigest()
    artifact = Artifact.objects.filter(kind=kind, input_key=key).first()
    if artifact is None:
        digest = hashlib.sha256(content).hexdigest()
        artifact = Artifact(kind=kind, input_key=key, sha256=digest, size=len(content), meta=meta)
        artifact.file.save(f"part.{kind}", ContentFile(content), save=False)
        artifact.save()
    JobArtifact.objects.create(job=job, artifact=artifact, kind=kind)


def make_station_job(
    *,
    user: User,
    machine: Machine,
    quantity: int = 1,
    status: str = Job.Status.DISPATCHED,
    traveler_pdf: bytes | None = None,
) -> Job:
    """A job at a machine with the files its traveler needs (STL meta, SVG drawing), made
    directly in the database: no worker."""
    job = make_ready_job(user=user)
    job.line.__class__.objects.filter(pk=job.line_id).update(quantity=quantity)
    Job.objects.filter(pk=job.pk).update(
        status=status, machine=machine, quantity=quantity, status_changed_at=NOW
    )
    attach(job, Artifact.Kind.STL, b"solid block\nendsolid block\n", {"bbox_mm": [20, 20, 10]})
    attach(job, Artifact.Kind.SVG, SVG, {})
    if traveler_pdf is not None:
        attach(job, Artifact.Kind.TRAVELER, traveler_pdf, {})
    return Job.objects.get(pk=job.pk)


def checks_of(job: Job) -> tuple:
    return station.job_traveler(job, now=NOW).qc_checks


GOOD = {"Width": 20.05, "Height": 9.9, "Hole diameter": 5.0}


@pytest.fixture
def operator(organisation) -> User:
    return make_user("op", organisation=organisation, role="operator")


@pytest.fixture
def machine() -> Machine:
    return make_machine("mk4-1")


@pytest.fixture
def job(user, machine) -> Job:
    return make_station_job(user=user, machine=machine)


def run_to_qc(job: Job, operator: User) -> Job:
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    return station.job_finish(job_id=job.pk, operator=operator, now=NOW)


@pytest.mark.django_db
def test_a_manual_job_goes_from_dispatched_through_running_to_done(job, operator, machine) -> None:
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    machine.refresh_from_db()
    assert (machine.state, machine.current_job_id) == (Machine.State.BUSY, job.pk)

    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    machine.refresh_from_db()
    assert machine.state == Machine.State.PAUSED
    assert Job.objects.get(pk=job.pk).status == Job.Status.PAUSED
    station.job_continue(job_id=job.pk, operator=operator, now=NOW)
    machine.refresh_from_db()
    assert machine.state == Machine.State.BUSY
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    station.job_finish(job_id=job.pk, operator=operator, now=NOW)
    machine.refresh_from_db()
    assert (machine.state, machine.current_job_id) == (Machine.State.IDLE, None)

    checks = checks_of(job)
    assert sorted(c.label for c in checks) == ["Height", "Hole diameter", "Width"]
    station.job_measure(job_id=job.pk, values=GOOD, checks=checks, operator=operator, now=NOW)
    replacement = station.job_qc(
        job_id=job.pk, passed=1, scrapped=0, checks=checks, operator=operator, now=NOW
    )

    job.refresh_from_db()
    assert replacement is None
    assert (job.status, job.qc_passed, job.qc_scrapped) == (Job.Status.DONE, 1, 0)
    assert job.measurements == GOOD
    assert job.started_at == NOW and job.finished_at == NOW
    events = list(job.events.filter(actor="op").values_list("step", "to_status"))
    assert events == [
        ("start", "running"),
        ("pause", "paused"),
        ("continue", "running"),
        ("finish", "awaiting_qc"),
        ("measure", "awaiting_qc"),
        ("qc", "done"),
    ]
    assert all("MK4-1" in e.message for e in job.events.filter(actor="op"))
    assert not station.line_progress(job.line).is_open


@pytest.mark.django_db
def test_finishing_before_starting_is_refused(job, operator) -> None:
    with pytest.raises(DomainError, match="has not been started; start it before finishing"):
        station.job_finish(job_id=job.pk, operator=operator, now=NOW)
    job.refresh_from_db()
    assert job.status == Job.Status.DISPATCHED


@pytest.mark.django_db
def test_qc_before_finishing_is_refused(job, operator) -> None:
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match="QC comes after the job is finished"):
        station.job_qc(job_id=job.pk, passed=1, scrapped=0, checks=(), operator=operator, now=NOW)


@pytest.mark.django_db
def test_starting_twice_is_refused(job, operator) -> None:
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match="only a job waiting at its machine can be started"):
        station.job_start(job_id=job.pk, operator=operator, now=NOW)


@pytest.mark.django_db
def test_finishing_a_paused_job_is_refused(job, operator) -> None:
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match="is paused; resume it before finishing"):
        station.job_finish(job_id=job.pk, operator=operator, now=NOW)
    job.refresh_from_db()
    assert job.status == Job.Status.PAUSED


@pytest.mark.django_db
def test_pause_and_resume_are_refused_out_of_turn(job, operator) -> None:
    with pytest.raises(DomainError, match="is sent to machine; only a running job pauses"):
        station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match=f"{job.number} is not paused"):
        station.job_continue(job_id=job.pk, operator=operator, now=NOW)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match=f"{job.number} is not paused"):
        station.job_continue(job_id=job.pk, operator=operator, now=NOW)
    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match=f"{job.number} is already paused"):
        station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match="only a job waiting at its machine can be started"):
        station.job_start(job_id=job.pk, operator=operator, now=NOW)
    assert list(job.events.filter(actor="op").values_list("step", flat=True)) == [
        "start",
        "pause",
    ]


@pytest.mark.django_db
def test_a_paused_job_keeps_its_machine_from_starting_another(job, user, machine, operator) -> None:
    other = make_station_job(user=user, machine=machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match=f"MK4-1 has paused {job.number}; finish it first"):
        station.job_start(job_id=other.pk, operator=operator, now=NOW)


@pytest.mark.django_db
def test_scrapping_a_paused_job_frees_the_machine_and_remakes_all_of_it(
    user, machine, operator, django_capture_on_commit_callbacks
) -> None:
    job = make_station_job(user=user, machine=machine, quantity=3)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match="is paused mid-run: scrap all 3, or resume and finish"):
        station.job_qc(
            job_id=job.pk, passed=1, scrapped=2, checks=(), reason="x", operator=operator, now=NOW
        )
    with patch("production.services.job_enqueue") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            replacement = station.job_qc(
                job_id=job.pk,
                passed=0,
                scrapped=3,
                checks=checks_of(job),  # nothing measured: scrapping needs no measurements
                reason="Layer shift",
                operator=operator,
                now=NOW,
            )
    job.refresh_from_db()
    machine.refresh_from_db()
    assert (job.status, job.qc_scrapped, job.finished_at) == (Job.Status.SCRAPPED, 3, NOW)
    assert (machine.state, machine.current_job_id) == (Machine.State.IDLE, None)
    assert replacement is not None and replacement.quantity == 3
    enqueue.assert_called_once_with(job_id=replacement.pk)
    assert steps_of(job)[-1] == ("scrap", "paused", "scrapped")
    with pytest.raises(DomainError, match="nothing more can be done"):
        station.job_continue(job_id=job.pk, operator=operator, now=NOW)


@pytest.mark.django_db
def test_a_paused_job_on_a_networked_printer_is_cancelled_there_not_scrapped_here(
    job, operator, machine
) -> None:
    Job.objects.filter(pk=job.pk).update(status=Job.Status.PAUSED)
    Machine.objects.filter(pk=machine.pk).update(connector=Machine.Connector.OCTOPRINT)
    with pytest.raises(DomainError, match="is driven by Octoprint: cancel the print there"):
        station.job_qc(
            job_id=job.pk, passed=0, scrapped=1, checks=(), reason="x", operator=operator, now=NOW
        )
    with pytest.raises(DomainError, match="it reports its own resume"):
        station.job_continue(job_id=job.pk, operator=operator, now=NOW)
    assert Job.objects.get(pk=job.pk).status == Job.Status.PAUSED


def steps_of(job: Job) -> list[tuple[str, str, str]]:
    return list(job.events.order_by("pk").values_list("step", "from_status", "to_status"))


@pytest.mark.django_db
def test_nothing_is_done_to_a_finished_job(job, operator) -> None:
    run_to_qc(job, operator)
    checks = checks_of(job)
    station.job_measure(job_id=job.pk, values=GOOD, checks=checks, operator=operator, now=NOW)
    station.job_qc(job_id=job.pk, passed=1, scrapped=0, checks=checks, operator=operator, now=NOW)
    for action in (station.job_start, station.job_pause, station.job_finish):
        with pytest.raises(DomainError, match="is QC passed; nothing more can be done"):
            action(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match="nothing more can be done"):
        station.job_qc(
            job_id=job.pk,
            passed=0,
            scrapped=1,
            checks=checks,
            reason="x",
            operator=operator,
            now=NOW,
        )
    assert not job.replacements.exists()


@pytest.mark.django_db
def test_a_second_job_cannot_start_while_the_machine_runs_one(job, user, machine, operator) -> None:
    other = make_station_job(user=user, machine=machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    with pytest.raises(DomainError, match=f"MK4-1 is running {job.number}; finish it first"):
        station.job_start(job_id=other.pk, operator=operator, now=NOW)


@pytest.mark.django_db
def test_a_networked_printer_reports_its_own_start(job, operator, machine) -> None:
    Machine.objects.filter(pk=machine.pk).update(connector=Machine.Connector.OCTOPRINT)
    with pytest.raises(DomainError, match="is driven by Octoprint: it reports its own start"):
        station.job_start(job_id=job.pk, operator=operator, now=NOW)


@pytest.mark.django_db
def test_an_out_of_tolerance_measurement_refuses_qc_pass(job, operator) -> None:
    run_to_qc(job, operator)
    checks = checks_of(job)
    outside = station.job_measure(
        job_id=job.pk, values={**GOOD, "Height": 10.5}, checks=checks, operator=operator, now=NOW
    )
    assert [m.label for m in outside] == ["Height"]
    with pytest.raises(DomainError, match=r"Height is 10.5 mm, outside 10 mm ± 0.2: QC failed"):
        station.job_qc(
            job_id=job.pk, passed=1, scrapped=0, checks=checks, operator=operator, now=NOW
        )
    job.refresh_from_db()
    assert job.status == Job.Status.AWAITING_QC


@pytest.mark.django_db
def test_passing_qc_needs_every_dimension_measured(job, operator) -> None:
    run_to_qc(job, operator)
    checks = checks_of(job)
    with pytest.raises(DomainError, match="measure Height before passing QC"):
        station.job_qc(
            job_id=job.pk, passed=1, scrapped=0, checks=checks, operator=operator, now=NOW
        )


@pytest.mark.django_db
def test_scrapping_part_of_a_job_remakes_that_many_and_keeps_the_line_open(
    user, machine, operator, django_capture_on_commit_callbacks
) -> None:
    job = make_station_job(user=user, machine=machine, quantity=5)
    run_to_qc(job, operator)
    checks = checks_of(job)
    station.job_measure(job_id=job.pk, values=GOOD, checks=checks, operator=operator, now=NOW)
    with patch("production.services.job_enqueue") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            replacement = station.job_qc(
                job_id=job.pk,
                passed=3,
                scrapped=2,
                checks=checks,
                reason="Layer shift",
                operator=operator,
                now=NOW,
            )
    job.refresh_from_db()
    assert (job.status, job.qc_passed, job.qc_scrapped) == (Job.Status.DONE, 3, 2)
    assert replacement is not None
    assert (
        replacement.status,
        replacement.quantity,
        replacement.replaces_id,
        replacement.line_id,
    ) == (Job.Status.QUEUED, 2, job.pk, job.line_id)
    enqueue.assert_called_once_with(job_id=replacement.pk)
    progress = station.line_progress(job.line)
    assert (progress.passed, progress.ordered, progress.is_open) == (3, 5, True)


@pytest.mark.django_db
def test_scrapping_needs_a_reason_and_counts_that_add_up(job, operator) -> None:
    run_to_qc(job, operator)
    with pytest.raises(DomainError, match="give a reason for scrapping"):
        station.job_qc(job_id=job.pk, passed=0, scrapped=1, checks=(), operator=operator, now=NOW)
    with pytest.raises(DomainError, match="must add up to the job's 1"):
        station.job_qc(
            job_id=job.pk, passed=0, scrapped=2, checks=(), reason="x", operator=operator, now=NOW
        )


@pytest.mark.django_db
def test_scrapping_everything_marks_the_job_scrapped(job, operator) -> None:
    run_to_qc(job, operator)
    station.job_qc(
        job_id=job.pk, passed=0, scrapped=1, checks=(), reason="Warped", operator=operator, now=NOW
    )
    job.refresh_from_db()
    assert job.status == Job.Status.SCRAPPED and job.reason == "scrapped 1: Warped"
    assert JobEvent.objects.filter(job__replaces=job, step="replacement").count() == 1


@pytest.mark.parametrize(
    ("code", "job_id"),
    [
        ("J-000042", 42),
        ("j-42", 42),
        ("42", 42),
        (" 000042\n", 42),
        ("http://factory.example/station/jobs/42/", 42),
        ("https://mf.example.com/station/jobs/7", 7),
        ("J-0", None),
        ("hello", None),
        ("", None),
    ],
)
def test_a_scanned_or_typed_code_gives_the_job_id(code: str, job_id: int | None) -> None:
    assert station.job_id_from_code(code) == job_id
