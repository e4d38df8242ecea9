"""Machines: re-routing when they go down, dispatch, telemetry and its API, tokens."""

import json
from datetime import timedelta
from io import StringIO
from unittest.mock import patch

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from microfactory.errors import DomainError
from production import machines, public, services
from production.models import Job, JobEvent, Machine, MachineTelemetry
from tests.builders import login_with_mfa, make_machine, make_material, make_ready_job, make_user

pytestmark = pytest.mark.django_db

Status = Job.Status


def put(job: Job, *, status: str, machine: Machine | None) -> Job:
    Job.objects.filter(pk=job.pk).update(status=status, machine=machine)
    return Job.objects.get(pk=job.pk)


def steps(job: Job) -> list[tuple[str, str, str]]:
    return list(job.events.order_by("pk").values_list("step", "from_status", "to_status"))


# --- re-routing -----------------------------------------------------------------------------


def test_a_silent_machine_goes_offline_and_its_jobs_move_without_loss_or_duplicates(
    user, settings, django_capture_on_commit_callbacks
):
    now = timezone.now()
    silent = make_machine("mk4-1")
    spare = make_machine("mk4-2")
    Machine.objects.filter(pk=silent.pk).update(
        last_seen_at=now - timedelta(seconds=settings.MF_MACHINE_OFFLINE_AFTER_S + 1)
    )
    running = put(make_ready_job(user=user), status=Status.RUNNING, machine=silent)
    queued = put(make_ready_job(user=user), status=Status.ROUTED, machine=silent)
    on_list = put(make_ready_job(user=user), status=Status.DISPATCHED, machine=silent)
    lines = {running.line_id, queued.line_id, on_list.line_id}

    with (
        patch("production.tasks.route_waiting_jobs.apply_async") as route_later,
        patch("production.services.job_enqueue") as enqueue,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert machines.machines_mark_silent(now=now, actor="test") == ["mk4-1"]
    assert route_later.called  # routing runs once the moves are committed

    silent.refresh_from_db()
    assert silent.state == Machine.State.OFFLINE
    running.refresh_from_db()
    assert running.status == Status.FAILED
    assert "MK4-1 went offline while running it: silent since" in running.reason
    replacement = running.replacements.get()
    enqueue.assert_called_once_with(job_id=replacement.pk)  # router, and its own traveler
    assert replacement.status == Status.TOOLPATH_READY
    assert replacement.line_id == running.line_id and replacement.quantity == running.quantity
    assert set(replacement.job_artifacts.values_list("kind", flat=True)) == {"gcode"}
    assert steps(replacement) == [("replacement", "", "toolpath_ready")]
    for job in (queued, on_list):
        job.refresh_from_db()
        assert (job.status, job.machine) == (Status.TOOLPATH_READY, None)
        assert steps(job)[-1][0] == "reroute"

    routed = machines.jobs_route_waiting(now=now, actor="test")
    # The replacement too: its G-code is verified, and routing waits for no traveler (#19).
    assert routed == {queued.pk: "mk4-2", on_list.pk: "mk4-2", replacement.pk: "mk4-2"}
    # Every line still has exactly one job that will make its part.
    alive = Job.objects.filter(line_id__in=lines).exclude(status__in=Job.TERMINAL)
    assert sorted(alive.values_list("line_id", flat=True)) == sorted(lines)
    assert Job.objects.get(pk=queued.pk).machine == spare
    assert [step for step, *_ in steps(queued)][-2:] == ["reroute", "routing"]


def test_a_manual_machine_without_an_agent_is_never_silent(settings):
    make_machine("mk4-1")  # never reported: last_seen_at is empty
    later = timezone.now() + timedelta(days=30)
    assert machines.machines_mark_silent(now=later, actor="test") == []


def test_a_networked_machine_that_never_answered_goes_offline():
    machine = make_machine("octo")
    Machine.objects.filter(pk=machine.pk).update(connector="octoprint", connector_url="http://x")
    assert machines.machines_mark_silent(now=timezone.now(), actor="test") == ["octo"]


def test_maintenance_takes_back_queued_jobs_and_fails_a_running_one(user):
    machine = make_machine("mk4-1")
    make_machine("mk4-2")
    running = put(make_ready_job(user=user), status=Status.RUNNING, machine=machine)
    queued = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    machines.machine_set_state(
        machine_id=machine.pk, state="maintenance", now=timezone.now(), actor="staff"
    )
    assert Job.objects.get(pk=running.pk).status == Status.FAILED
    assert Job.objects.get(pk=queued.pk).status == Status.TOOLPATH_READY
    # Setting the same state again moves nothing.
    events = JobEvent.objects.count()
    machines.machine_set_state(
        machine_id=machine.pk, state="maintenance", now=timezone.now(), actor="staff"
    )
    assert JobEvent.objects.count() == events
    # The machine's own history: one event for the one change.
    assert list(machine.events.values_list("from_state", "to_state", "actor")) == [
        ("idle", "maintenance", "staff")
    ]


def test_resuming_a_failed_job_sends_it_to_qc_and_withdraws_its_replacement(user):
    machine = make_machine("mk4-1")
    running = put(make_ready_job(user=user), status=Status.RUNNING, machine=machine)
    machines.machine_set_state(
        machine_id=machine.pk,
        state="error",
        now=timezone.now(),
        actor="test",
        reason="thermal runaway",
    )
    running.refresh_from_db()
    replacement = running.replacements.get()
    machines.job_resume(job_id=running.pk, now=timezone.now(), actor="operator")
    running.refresh_from_db()
    replacement.refresh_from_db()
    assert running.status == Status.AWAITING_QC
    assert replacement.status == Status.CANCELLED
    assert steps(replacement)[-1] == ("withdrawn", "toolpath_ready", "cancelled")


@pytest.mark.parametrize("remake_status", [Status.DONE, Status.SCRAPPED, Status.RUNNING])
def test_a_failed_job_is_not_resumed_once_its_remake_made_the_parts(user, remake_status):
    machine = make_machine("mk4-1")
    running = put(make_ready_job(user=user), status=Status.RUNNING, machine=machine)
    machines.machine_set_state(
        machine_id=machine.pk, state="error", now=timezone.now(), actor="test", reason="jam"
    )
    replacement = Job.objects.get(replaces=running)
    Job.objects.filter(pk=replacement.pk).update(status=remake_status)
    with pytest.raises(DomainError, match=f"replacement {replacement.number}"):
        machines.job_resume(job_id=running.pk, now=timezone.now(), actor="operator")
    assert Job.objects.get(pk=running.pk).status == Status.FAILED


def test_a_job_no_machine_can_ever_make_is_rejected_by_the_routing_pass(user):
    make_machine("mk4-1", volume=(100, 100, 100))
    job = make_ready_job(user=user, extents=(150, 150, 10))
    assert machines.jobs_route_waiting(now=timezone.now(), actor="test") == {}
    job.refresh_from_db()
    assert job.status == Status.REJECTED
    assert "no fdm machine" in job.reason


def test_the_routing_pass_respects_queue_limits_and_leaves_the_rest_waiting(user):
    machine = make_machine("mk4-1")
    Machine.objects.filter(pk=machine.pk).update(queue_limit=2)
    jobs = [make_ready_job(user=user) for _ in range(3)]
    routed = machines.jobs_route_waiting(now=timezone.now(), actor="test")
    assert list(routed) == [jobs[0].pk, jobs[1].pk]
    assert Job.objects.get(pk=jobs[2].pk).status == Status.TOOLPATH_READY


def test_the_reconciler_leaves_jobs_at_machines_alone(user, settings, monkeypatch):
    machine = make_machine("mk4-1")
    long_ago = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_S + 5)
    for status in (Status.ROUTED, Status.DISPATCHED, Status.RUNNING, Status.AWAITING_QC):
        job = put(make_ready_job(user=user), status=status, machine=machine)
        Job.objects.filter(pk=job.pk).update(status_changed_at=long_ago, enqueued_at=long_ago)
    sent = []
    monkeypatch.setattr("production.tasks.advance_job.apply_async", lambda **kw: sent.append(kw))
    assert services.jobs_reconcile(now=timezone.now()) == []


# --- dispatch -------------------------------------------------------------------------------


def test_a_manual_machine_gets_every_routed_job_on_its_operators_list(user):
    machine = make_machine("mk4-1")
    jobs = [put(make_ready_job(user=user), status=Status.ROUTED, machine=machine) for _ in range(2)]
    sent = machines.machine_dispatch(machine_id=machine.pk, now=timezone.now(), actor="test")
    assert sent == [job.pk for job in jobs]
    assert set(Job.objects.filter(pk__in=sent).values_list("status", flat=True)) == {"dispatched"}
    assert machines.machine_dispatch(machine_id=machine.pk, now=timezone.now(), actor="t") == []


def test_a_job_whose_g_code_is_verified_goes_to_the_batch_router_then_to_dispatch(
    user, django_capture_on_commit_callbacks
):
    machine = make_machine("mk4-1")
    job = make_ready_job(user=user)
    with (
        patch("production.tasks.route_waiting_jobs.apply_async") as route,
        patch("production.tasks.advance_job.apply_async") as advance,
        patch("production.tasks.render_traveler.apply_async") as traveler,
    ):
        assert services.job_enqueue(job_id=job.pk)
    task_id = Job.objects.get(pk=job.pk).enqueued_task_id  # what the reconciler looks for
    route.assert_called_once_with(queue="routing", task_id=task_id, priority=0)
    assert task_id
    assert not advance.called  # no pipeline step routes
    # Its traveler is rendered beside routing, never before it (#19).
    traveler.assert_called_once_with(args=(job.pk,), queue="documents", priority=0)
    with (
        patch("production.tasks.dispatch_machine.apply_async") as dispatch,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert machines.jobs_route_waiting(now=timezone.now(), actor="router") == {job.pk: "mk4-1"}
    dispatch.assert_called_once_with(args=(machine.pk,), queue="routing")
    json.dumps(dispatch.call_args.kwargs["args"])


# --- telemetry ------------------------------------------------------------------------------


def machine_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Machine {token}")
    return client


@pytest.fixture
def reporting():
    machine = make_machine("mk4-1")
    return machine, machines.machine_token_issue(machine=machine)


def test_a_machine_reports_its_state_progress_and_temperatures(user, reporting):
    machine, token = reporting
    job = put(make_ready_job(user=user), status=Status.DISPATCHED, machine=machine)
    response = machine_client(token).post(
        "/api/v1/machines/mk4-1/telemetry/",
        {
            "state": "busy",
            "progress": 42.5,
            "temperatures": {"tool0": 215.2, "bed": 60.0},
            "current_job": job.pk,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    machine.refresh_from_db()
    assert (machine.state, machine.progress, machine.current_job_id) == ("busy", 42.5, job.pk)
    assert machine.temperatures == {"tool0": 215.2, "bed": 60.0}
    assert machine.last_seen_at is not None
    row = MachineTelemetry.objects.get()
    assert (row.state, row.progress, row.job_id) == ("busy", 42.5, job.pk)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.RUNNING, 42.5)


def report(machine: Machine, **values: object) -> Machine:
    return machines.telemetry_record(
        machine_id=machine.pk,
        report=machines.TelemetryReport(**values),
        now=timezone.now(),
        actor="poller",
    )


def test_a_job_the_printer_pauses_is_paused_and_running_again_when_it_prints(user):
    machine = make_machine("mk4-1")
    job = put(make_ready_job(user=user), status=Status.RUNNING, machine=machine)
    report(machine, state="paused", job_id=job.pk, job_state="paused", progress=40.0)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.PAUSED, 40.0)
    assert Machine.objects.get(pk=machine.pk).state == "paused"
    # Still paused: no second event.
    report(machine, state="paused", job_id=job.pk, job_state="paused", progress=40.0)
    report(machine, state="busy", job_id=job.pk, job_state="printing", progress=45.0)
    job.refresh_from_db()
    assert (job.status, job.progress) == (Status.RUNNING, 45.0)
    assert steps(job)[-2:] == [("pause", "running", "paused"), ("continue", "paused", "running")]
    assert [e.actor for e in job.events.filter(step__in=("pause", "continue"))] == ["poller"] * 2
    assert "paused on MK4-1" in job.events.get(step="pause").message
    report(machine, state="idle", job_id=job.pk, job_state="complete", progress=100.0)
    assert Job.objects.get(pk=job.pk).status == Status.AWAITING_QC


def test_an_agent_reporting_its_machine_paused_pauses_the_job_it_names(user, reporting):
    machine, token = reporting
    job = put(make_ready_job(user=user), status=Status.DISPATCHED, machine=machine)
    for state in ("paused", "busy"):
        response = machine_client(token).post(
            "/api/v1/machines/mk4-1/telemetry/",
            {"state": state, "current_job": job.pk},
            format="json",
        )
        assert response.status_code == 200, response.content
        if state == "paused":
            assert Job.objects.get(pk=job.pk).status == Status.PAUSED
    assert steps(job)[-3:] == [
        ("start", "dispatched", "running"),
        ("pause", "running", "paused"),
        ("continue", "paused", "running"),
    ]


def test_a_paused_job_counts_in_its_machines_queue_and_keeps_new_work_off_a_printer(user):
    machine = make_machine("mk4-1")
    Machine.objects.filter(pk=machine.pk).update(connector="octoprint", connector_url="http://x")
    paused = put(make_ready_job(user=user), status=Status.PAUSED, machine=machine)
    Job.objects.filter(pk=paused.pk).update(progress=25.0, toolpath_meta={"estimated_time_s": 1000})
    waiting = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    queue = machines.machine_queues([machine.pk])[machine.pk]
    assert queue.jobs == 2
    assert queue.eta_s >= 750.0  # the paused job's remaining three quarters
    assert machines.machine_dispatch(machine_id=machine.pk, now=timezone.now(), actor="t") == []
    assert Job.objects.get(pk=waiting.pk).status == Status.ROUTED


def test_a_job_of_several_copies_counts_its_g_code_once_per_copy_in_queues_and_routing(user):
    machine = make_machine("mk4-1")
    job = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    Job.objects.filter(pk=job.pk).update(quantity=4, toolpath_meta={"estimated_time_s": 600})
    job.refresh_from_db()
    assert machines.machine_queues([machine.pk])[machine.pk].eta_s == 2400.0
    assert machines.job_needs(job).estimated_time_s == 2400.0
    # The quote's machine time per part is the G-code's: it makes one copy.
    line = job.line
    assert (
        public.planned_time_s(
            revision=line.revision, parameters_hash=line.parameters_hash, material=line.material
        )
        == 600.0
    )


def test_a_paused_job_on_a_machine_that_goes_down_fails_and_is_remade(user):
    machine = make_machine("mk4-1")
    paused = put(make_ready_job(user=user), status=Status.PAUSED, machine=machine)
    with patch("production.services.job_enqueue"):
        machines.machine_set_state(
            machine_id=machine.pk, state="offline", now=timezone.now(), actor="test"
        )
    paused.refresh_from_db()
    assert paused.status == Status.FAILED
    assert "MK4-1 went offline while running it" in paused.reason
    assert steps(paused)[-1] == ("failure", "paused", "failed")
    assert paused.replacements.get().status == Status.TOOLPATH_READY


def test_the_reconciler_leaves_paused_jobs_alone(user, settings, monkeypatch):
    machine = make_machine("mk4-1")
    long_ago = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_S + 5)
    job = put(make_ready_job(user=user), status=Status.PAUSED, machine=machine)
    Job.objects.filter(pk=job.pk).update(status_changed_at=long_ago, enqueued_at=long_ago)
    monkeypatch.setattr("production.tasks.advance_job.apply_async", lambda **kw: None)
    assert services.jobs_reconcile(now=timezone.now()) == []


def test_a_token_for_one_machine_cannot_report_for_another(reporting):
    make_machine("mk4-2")
    _, token = reporting
    response = machine_client(token).post(
        "/api/v1/machines/mk4-2/telemetry/", {"state": "error"}, format="json"
    )
    assert response.status_code == 403
    assert Machine.objects.get(slug="mk4-2").state == "idle"
    assert not MachineTelemetry.objects.exists()


@pytest.mark.parametrize("header", ["", "Machine nope", "Token abc", "Machine "])
def test_reports_without_a_valid_machine_token_are_refused(reporting, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post("/api/v1/machines/mk4-1/telemetry/", {"state": "idle"}, format="json")
    assert response.status_code == 401
    assert not MachineTelemetry.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"state": "exploded"},
        {"progress": 150},
        {"progress": -1},
        {"progress": "50"},
        {"progress": True},
        {"temperatures": [200, 60]},
        {"temperatures": {"tool0": "hot"}},
        {"temperatures": {f"t{i}": 20.0 for i in range(40)}},
        {"current_job": "J-000001"},
        {"error_text": ["a", "list"]},
        {"error_text": "x" * 2001},
        {"mood": "happy"},
        [{"state": "idle"}],
        "idle",
    ],
)
def test_malformed_telemetry_is_a_400_and_changes_nothing(reporting, body):
    machine, token = reporting
    before = Machine.objects.filter(pk=machine.pk).values().get()
    response = machine_client(token).post("/api/v1/machines/mk4-1/telemetry/", body, format="json")
    assert response.status_code == 400, response.content
    assert "message" in response.json()
    assert Machine.objects.filter(pk=machine.pk).values().get() == before
    assert not MachineTelemetry.objects.exists()


def test_a_huge_or_broken_report_is_a_400_and_changes_nothing(reporting, settings):
    machine, token = reporting
    client = machine_client(token)
    huge = json.dumps({"state": "idle", "error_text": "x" * settings.MF_TELEMETRY_MAX_BYTES})
    for payload in (huge, "{not json", '{"progress": NaN}'):
        response = client.post(
            "/api/v1/machines/mk4-1/telemetry/", payload, content_type="application/json"
        )
        assert response.status_code == 400, (payload[:20], response.content)
    machine.refresh_from_db()
    assert machine.last_seen_at is None
    assert not MachineTelemetry.objects.exists()


def test_a_machine_reporting_an_error_gives_its_queued_jobs_back(user, reporting):
    machine, token = reporting
    make_machine("mk4-2")
    queued = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    response = machine_client(token).post(
        "/api/v1/machines/mk4-1/telemetry/",
        {"state": "error", "error_text": "MINTEMP triggered"},
        format="json",
    )
    assert response.status_code == 200
    machine.refresh_from_db()
    assert (machine.state, machine.error_text) == ("error", "MINTEMP triggered")
    assert Job.objects.get(pk=queued.pk).status == Status.TOOLPATH_READY


def test_a_machine_in_maintenance_stays_there_whatever_it_reports(reporting):
    machine, token = reporting
    Machine.objects.filter(pk=machine.pk).update(state="maintenance")
    machine_client(token).post(
        "/api/v1/machines/mk4-1/telemetry/", {"state": "idle"}, format="json"
    )
    assert Machine.objects.get(pk=machine.pk).state == "maintenance"


def test_old_telemetry_is_pruned(reporting, settings):
    machine, _ = reporting
    now = timezone.now()
    old = now - timedelta(hours=settings.MF_TELEMETRY_RETENTION_H + 1)
    MachineTelemetry.objects.create(machine=machine, recorded_at=old, state="idle")
    MachineTelemetry.objects.create(machine=machine, recorded_at=now, state="idle")
    assert machines.telemetry_prune(now=now) == 1
    assert MachineTelemetry.objects.count() == 1


def test_the_token_command_shows_a_token_once_and_keeps_only_its_hash():
    machine = make_machine("mk4-1")
    out = StringIO()
    call_command("machine_token", "mk4-1", stdout=out, stderr=StringIO())
    token = out.getvalue().strip()
    machine.refresh_from_db()
    assert len(token) > 30 and token not in machine.token_hash
    assert machines.machine_for_token(token) == machine


# --- the staff API --------------------------------------------------------------------------


@pytest.fixture
def staff():
    user = make_user("staff")
    user.is_staff = True
    user.save()
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_staff_list_machines_without_their_secrets(staff, monkeypatch):
    machine = make_machine("octo")
    Machine.objects.filter(pk=machine.pk).update(
        connector="octoprint",
        connector_url="http://admin:hunter2@octo.local:5000/",
        connector_secret_env="OCTO_SECRET_KEY",
    )
    machines.machine_token_issue(machine=machine)
    response = staff.get("/api/v1/machines/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "hunter2" not in text and "OCTO_SECRET_KEY" not in text
    assert Machine.objects.get(pk=machine.pk).token_hash not in text
    [listed] = response.json()
    assert listed["connector_url"] == "http://octo.local:5000/"
    assert (listed["has_api_key"], listed["has_token"]) == (True, True)


def test_requesters_cannot_see_machines(api):
    assert api.get("/api/v1/machines/").status_code == 403


def test_staff_put_a_machine_in_maintenance_and_its_jobs_move(staff, user):
    machine = make_machine("mk4-1")
    make_machine("mk4-2")
    queued = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    response = staff.patch(
        "/api/v1/machines/mk4-1/",
        {"state": "maintenance", "queue_limit": 4, "materials_loadable": ["petg"]},
        format="json",
    )
    assert response.status_code == 400  # petg does not exist yet: nothing changes
    assert Machine.objects.get(pk=machine.pk).queue_limit == 10
    make_material("petg")
    response = staff.patch(
        "/api/v1/machines/mk4-1/",
        {"state": "maintenance", "queue_limit": 4, "materials_loadable": ["petg"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "maintenance"
    assert response.json()["materials_loadable"] == ["petg"]
    assert Job.objects.get(pk=queued.pk).status == Status.TOOLPATH_READY
    detail = staff.get("/api/v1/machines/mk4-1/").json()
    assert detail["queue_limit"] == 4 and detail["telemetry"] == []


def test_the_admin_shows_machines_and_puts_them_in_maintenance(user, client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    admin = make_user("boss")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    login_with_mfa(client, admin)  # staff: past the second factor
    machine = make_machine("mk4-1")
    make_machine("mk4-2")
    queued = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    assert client.get("/admin/production/machine/").status_code == 200
    page = client.get(f"/admin/production/machine/{machine.pk}/change/")
    assert page.status_code == 200 and b"token_hash" not in page.content
    assert client.get(f"/admin/production/job/{queued.pk}/change/").status_code == 200
    response = client.post(
        "/admin/production/machine/",
        {"action": "put_in_maintenance", "_selected_action": [machine.pk]},
    )
    assert response.status_code == 302
    assert Machine.objects.get(pk=machine.pk).state == "maintenance"
    assert Job.objects.get(pk=queued.pk).status == Status.TOOLPATH_READY


def test_a_networked_job_without_gcode_fails_instead_of_looping(user):
    machine = make_machine("octo")
    Machine.objects.filter(pk=machine.pk).update(connector="octoprint", connector_url="http://x")
    job = put(make_ready_job(user=user), status=Status.ROUTED, machine=machine)
    job.job_artifacts.all().delete()
    assert machines.machine_dispatch(machine_id=machine.pk, now=timezone.now(), actor="w") == []
    job.refresh_from_db()
    assert (job.status, job.reason) == (Status.FAILED, "no G-code to send")
