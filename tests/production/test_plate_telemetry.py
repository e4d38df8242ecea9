"""A machine's agent reports on the plate it runs (#13) through the telemetry API: progress,
the end (the plate waits for QC copy by copy) or a failure (its jobs are remade), with the
same moves as the poller makes for a networked printer; a plate that is not the machine's,
or not running there, is refused and nothing changes."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from production import machines, plating
from production.models import Job, Machine, MachineTelemetry, Plate
from tests.builders import make_machine, make_user
from tests.production.test_plating import make_plate, plated_job, route

pytestmark = pytest.mark.django_db

Status = Job.Status
URL = "/api/v1/machines/mk4-1/telemetry/"


@pytest.fixture
def agent(organisation):
    """A printer run by hand whose agent reports for it, with a plate started there."""
    machine = make_machine("mk4-1")
    token = machines.machine_token_issue(machine=machine)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Machine {token}")
    return machine, client, make_user("op", organisation=organisation, role="operator")


def started_plate(user, operator) -> tuple[Plate, Job, Job]:
    a, b = plated_job(user, quantity=3), plated_job(user, quantity=2)
    plate = make_plate([a, b])
    route()
    plating.plate_start(plate_id=plate.pk, operator=operator, now=timezone.now())
    return Plate.objects.get(pk=plate.pk), a, b


def statuses(*jobs: Job) -> list[str]:
    return [Job.objects.get(pk=job.pk).status for job in jobs]


def test_an_agent_reports_its_plates_progress_then_its_end(user, agent):
    machine, client, operator = agent
    plate, a, b = started_plate(user, operator)

    printing = {"state": "busy", "progress": 40.0, "current_plate": plate.pk}
    response = client.post(URL, printing, format="json")

    assert response.status_code == 200, response.content
    assert Plate.objects.get(pk=plate.pk).progress == pytest.approx(40.0)
    assert statuses(a, b) == [Status.RUNNING] * 2
    done = {"state": "idle", "current_plate": plate.pk, "job_state": "complete"}
    assert client.post(URL, done, format="json").status_code == 200
    plate.refresh_from_db()
    assert plate.status == Plate.Status.FINISHED and plate.progress == 100.0
    assert statuses(a, b) == [Status.AWAITING_QC] * 2
    assert a.events.order_by("pk").last().actor == "machine mk4-1"
    machine.refresh_from_db()
    assert (machine.state, machine.current_job_id) == ("idle", None)
    # Reported again: the plate is no longer running there, and nothing is kept.
    rows = MachineTelemetry.objects.count()
    again = client.post(URL, done, format="json")
    assert again.status_code == 409
    assert "awaiting QC" in again.json()["message"]
    assert MachineTelemetry.objects.count() == rows


def test_a_failure_the_agent_reports_fails_the_plate_and_remakes_its_jobs(user, agent):
    _, client, operator = agent
    plate, a, b = started_plate(user, operator)
    failed = {"state": "error", "current_plate": plate.pk, "job_state": "error",
              "error_text": "thermal runaway"}  # fmt: skip
    assert client.post(URL, failed, format="json").status_code == 200
    plate.refresh_from_db()
    assert plate.status == Plate.Status.FAILED and "thermal runaway" in plate.reason
    assert statuses(a, b) == [Status.FAILED] * 2
    assert Job.objects.filter(replaces__in=[a.pk, b.pk]).count() == 2


def test_a_plate_not_the_machines_or_not_running_is_refused(user, agent):
    machine, client, operator = agent
    other = make_machine("mk4-2")
    elsewhere = make_plate([plated_job(user, quantity=2)])
    Plate.objects.filter(pk=elsewhere.pk).update(machine=other, status=Plate.Status.RUNNING)
    waiting = make_plate([plated_job(user, quantity=2)])
    Plate.objects.filter(pk=waiting.pk).update(machine=machine, status=Plate.Status.ROUTED)

    cases = [
        ({"state": "busy", "current_plate": elsewhere.pk}, 400, "not on"),
        ({"state": "busy", "current_plate": 999999}, 400, "not on"),
        ({"state": "busy", "current_plate": waiting.pk}, 409, "routed to machine"),
        ({"state": "busy", "current_plate": "P-1"}, 400, "valid integer"),
        ({"state": "idle", "job_state": "complete"}, 400, "current_job or current_plate"),
        ({"current_plate": waiting.pk, "job_state": "done"}, 400, "not a valid choice"),
    ]
    for body, status, words in cases:
        response = client.post(URL, body, format="json")
        assert response.status_code == status, (body, response.content)
        assert words in response.content.decode(), (body, response.content)
    assert Plate.objects.get(pk=elsewhere.pk).status == Plate.Status.RUNNING
    assert Plate.objects.get(pk=waiting.pk).status == Plate.Status.ROUTED
    assert Machine.objects.get(pk=machine.pk).state == "idle"
    assert not MachineTelemetry.objects.exists()
