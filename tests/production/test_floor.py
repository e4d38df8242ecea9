"""The floor view (production/floor.py, floor_views.py): tiles, the timeline's plan and past,
who sees which site, the two moves of a waiting job, and a refresh's fixed query cost."""

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from production import floor, machines, plating, station
from production.calendars import SiteCalendar
from production.models import Job, JobEvent, Machine, Plate, Site, SiteClosure
from tests.builders import make_machine, make_material, make_organisation, make_site, make_user
from tests.production.test_plating import make_plate, plated_job
from tests.production.test_station import make_station_job

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
H = 3600.0


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- pure: the plan and the past ------------------------------------------------------------


@pytest.mark.parametrize("closed_until", [None, NOW + timedelta(hours=3)])
def test_the_plan_runs_the_queue_in_order_with_changeovers_and_opening_hours(closed_until):
    # Closed (a closure) until `closed_until`, open around the clock after.
    calendar = SiteCalendar(
        closures=() if closed_until is None else ((NOW - timedelta(days=3), closed_until),)
    )
    plan = floor.plan_queue(
        [floor.Waiting("J-1", 2 * H, "pla"), floor.Waiting("J-2", 1 * H, "petg")],
        free_at=NOW + timedelta(hours=1),
        loaded="pla",
        changeover_s=0.25 * H,
        calendar=calendar,
    )
    first_start = NOW + timedelta(hours=1) if closed_until is None else closed_until
    assert plan[0] == floor.Planned("J-1", first_start, first_start + timedelta(hours=2), 0.0)
    # PETG after PLA: a quarter of an hour's changeover before it starts.
    assert plan[1].changeover_s == 0.25 * H
    assert plan[1].starts_at == plan[0].finishes_at + timedelta(minutes=15)
    assert plan[1].finishes_at == plan[1].starts_at + timedelta(hours=1)
    if closed_until is not None:
        closed = floor.closed_spans(calendar, NOW - timedelta(hours=24), NOW + timedelta(hours=24))
        assert [(s.start, s.end) for s in closed] == [(NOW - timedelta(hours=24), closed_until)]


def test_the_past_shows_runs_pauses_and_downtime():
    start = NOW - timedelta(hours=24)
    at = [NOW - timedelta(hours=h) for h in (30, 20, 18, 17, 10, 8, 6, 2)]
    changes = [
        # J-1 started before the window: it counts from the window's start.
        floor.JobChange("J-1", "running", "awaiting_qc", at[1]),
        floor.JobChange("J-2", "dispatched", "running", at[2]),
        floor.JobChange("J-2", "running", "paused", at[3]),
        floor.JobChange("J-2", "paused", "running", at[4]),
        floor.JobChange("J-2", "running", "awaiting_qc", at[5]),
    ]
    states = [
        floor.StateChange("idle", "offline", at[6]),
        floor.StateChange("offline", "idle", at[7]),
    ]
    spans = floor.past_bars(
        job_changes=changes,
        state_changes=states,
        started_now=[("J-3", "running")],  # running all along: no event in the window
        state_now="busy",
        start=start,
        now=NOW,
    )
    assert [(s.kind, s.label, s.start, s.end) for s in spans] == [
        ("run", "J-1", start, at[1]),
        ("run", "J-3", start, NOW),
        ("run", "J-2", at[2], at[3]),
        ("paused", "J-2", at[3], at[4]),
        ("run", "J-2", at[4], at[5]),
        ("down", "offline", at[6], at[7]),
    ]
    placed = floor.bars(spans, start=start, end=NOW + timedelta(hours=24))
    assert placed[0].x == 0 and placed[0].width == pytest.approx(4 / 48 * 100, abs=0.001)


# --- the page -------------------------------------------------------------------------------


@pytest.fixture
def operator(organisation) -> User:
    return make_user("op", organisation=organisation, role="operator")


@pytest.fixture
def op_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def start_with_progress(job: Job, operator: User, progress: float) -> Job:
    station.job_start(job_id=job.pk, operator=operator, now=timezone.now())
    Job.objects.filter(pk=job.pk).update(progress=progress)
    Machine.objects.filter(pk=job.machine_id).update(temperatures={"nozzle": 214.6, "bed": 60})
    return Job.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_a_tile_shows_state_job_progress_eta_temperatures_material_and_queue(
    user, operator, op_client
):
    machine = make_machine("mk4-1")
    running = start_with_progress(make_station_job(user=user, machine=machine), operator, 40)
    waiting = [make_station_job(user=user, machine=machine) for _ in range(2)]
    body = op_client.get("/station/floor/").content.decode()
    assert 'data-machine="mk4-1" data-state="busy"' in body
    assert f'data-current="{running.number}"' in body
    assert 'data-progress="40"' in body and "40 %" in body
    assert "nozzle 215 °C" in body and "bed 60 °C" in body
    assert "<dt>Material</dt><dd>PLA</dd>" in body
    assert 'data-queue="2"' in body
    for job in waiting:
        assert f'data-job="{job.number}"' in body
    tile = floor.floor_read(Site.objects.all(), now=timezone.now()).sites[0].tiles[0]
    # 600 s per copy, 40 % done: 6 minutes left; the queue follows, 10 minutes each.
    assert (tile.eta - timezone.now()).total_seconds() == pytest.approx(360, abs=5)
    assert tile.queue[0].starts_at == tile.eta
    assert tile.queue[1].starts_at == tile.queue[0].finishes_at
    kinds = {(bar.kind, bar.label) for bar in tile.timeline}
    assert ("run", running.number) in kinds
    assert {("planned", job.number) for job in waiting} <= kinds


@pytest.mark.django_db
def test_a_closed_site_plans_its_queue_after_it_opens_and_shades_the_closure(user, op_client):
    machine = make_machine("mk4-1")
    waiting = make_station_job(user=user, machine=machine)
    now = timezone.now()
    SiteClosure.objects.create(
        site=machine.site, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )
    tile = floor.floor_read(Site.objects.all(), now=now).sites[0].tiles[0]
    assert tile.queue[0].job.pk == waiting.pk
    assert tile.queue[0].starts_at == now + timedelta(hours=2)
    closed = [bar for bar in tile.timeline if bar.kind == "closed"]
    # Three hours of the 48 shown, from an hour before now (the middle, 50 %).
    assert len(closed) == 1
    assert closed[0].x == pytest.approx(23 / 48 * 100, abs=0.01)
    assert closed[0].width == pytest.approx(3 / 48 * 100, abs=0.01)
    assert 'data-kind="closed"' in op_client.get("/station/floor/").content.decode()


@pytest.mark.django_db
def test_the_floor_is_only_for_the_sites_own_factory(user, operator, op_client):
    make_machine("mk4-1")
    other = make_organisation("globex")
    make_machine("far-1", site=make_site("south", operator=other))
    make_user("globex-op", organisation=other, role="manager")
    body = op_client.get("/station/floor/").content.decode()
    assert 'data-machine="mk4-1"' in body and "far-1" not in body
    assert op_client.get("/station/floor/south/").status_code == 404
    assert op_client.get("/station/floor-live/south/").status_code == 404
    assert op_client.get("/station/floor/north/").status_code == 200
    manager = Client()
    manager.force_login(User.objects.get(username="globex-op"))
    assert "far-1" in manager.get("/station/floor/south/").content.decode()
    assert manager.get("/station/floor/north/").status_code == 404
    customer = Client()
    customer.force_login(user)
    assert customer.get("/station/floor/").status_code == 404
    assert Client().get("/station/floor/").status_code == 302  # to the login page


@pytest.mark.django_db
def test_operators_and_managers_land_on_the_floor_customers_on_the_catalog(user, operator):
    make_site()  # acme operates it: its operators and managers work on its floor
    make_user("boss", organisation=operator.memberships.get().organisation, role="manager")
    for username, lands in (("op", "/station/floor/"), ("boss", "/station/floor/"), ("req", "/")):
        client = Client()
        response = client.post(
            "/login/", {"username": username, "password": "pw-for-tests"}, follow=True
        )
        assert response.redirect_chain[-1][0] == lands, username
        nav = response.content.decode().split("</nav>")[0]
        assert ('href="/station/floor/"' in nav) == (username != "req")
        # The manager's pages are linked for managers only (the pages check it themselves).
        assert ('href="/station/dashboard/"' in nav) == (username == "boss")
        assert ('href="/station/what-if/"' in nav) == (username == "boss")


# --- plates (#13) ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tile_shows_its_running_plate_and_queues_a_waiting_plate(user, operator, op_client):
    machine = make_machine("mk4-1")
    a, b, c = (plated_job(user, quantity=n) for n in (3, 2, 4))
    running = make_plate([a, b], estimated_time_s=1800)
    waiting = make_plate([c], estimated_time_s=1200)
    single = make_station_job(user=user, machine=machine)  # a plain job waits behind plates
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    assert set(Plate.objects.values_list("status", "machine_id")) == {("routed", machine.pk)}
    started = timezone.now() - timedelta(minutes=10)
    plating.plate_start(plate_id=running.pk, operator=operator, now=started)

    now = timezone.now()
    tile = floor.floor_read(Site.objects.all(), now=now).sites[0].tiles[0]
    assert tile.current is None and tile.current_plate is not None
    assert tile.current_plate.number == running.number
    assert [(j.number, j.copies) for j in tile.current_plate.jobs] == [
        (a.number, 3),
        (b.number, 2),
    ]
    assert tile.current_plate.summary == "2 jobs, 5 copies"
    # Run by hand (no progress reported): its estimate from its start, 20 minutes from now.
    assert tile.progress == 0.0
    assert tile.eta == started + timedelta(seconds=1800)
    # The queue: the plate once, for its own 20 minutes, then the plain job (10 minutes).
    assert [type(q).__name__ for q in tile.queue] == ["QueuedPlate", "QueuedJob"]
    plate_q, job_q = tile.queue
    assert isinstance(plate_q, floor.QueuedPlate) and plate_q.plate.copies == 4
    assert plate_q.starts_at == tile.eta
    assert plate_q.finishes_at == tile.eta + timedelta(seconds=1200)
    assert isinstance(job_q, floor.QueuedJob) and job_q.job.pk == single.pk
    assert job_q.starts_at == plate_q.finishes_at
    # The router counts the same: the running plate, the waiting one, the job.
    assert tile.queue_length + 1 == machines.machine_queues([machine.pk])[machine.pk].jobs
    kinds = {(bar.kind, bar.label) for bar in tile.timeline}
    assert {("run", running.number), ("planned", running.number)} <= kinds
    assert ("planned", waiting.number) in kinds and ("planned", single.number) in kinds
    # The plate's jobs are drawn as the plate, never one bar each.
    assert not {label for _, label in kinds} & {a.number, b.number, c.number}
    planned = next(bar for bar in tile.timeline if bar.label == waiting.number)
    assert "(1 job, 4 copies)" in planned.title

    body = html.unescape(op_client.get("/station/floor/").content.decode())
    assert f'data-current-plate="{running.number}"' in body
    assert f">{a.number}</a> 3 × " in body and f">{b.number}</a> 2 × " in body
    assert f'data-plate="{waiting.number}" data-copies="4"' in body
    assert f'data-not-up="{waiting.number}"' in body and floor.PLATE_NOT_MOVED in body
    assert f'data-move-plate="{waiting.number}"' in body
    assert f'data-job="{single.number}"' in body
    # The plain job follows the plates: it has no place up to move to, so no Up button.
    assert f'aria-label="move {single.number} up"' not in body
    assert f'data-job="{a.number}"' not in body  # the plate's jobs are not queued again


@pytest.mark.django_db
def test_the_timeline_shows_a_plate_run_from_its_start_to_its_finish(user, operator, op_client):
    machine = make_machine("mk4-1")
    job = plated_job(user, quantity=5)
    plate = make_plate([job], estimated_time_s=3600)
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    now = timezone.now()
    started, finished = now - timedelta(hours=5), now - timedelta(hours=4)
    plating.plate_start(plate_id=plate.pk, operator=operator, now=started)
    plating.plate_finish(plate_id=plate.pk, operator=operator, now=finished)

    tile = floor.floor_read(Site.objects.all(), now=now).sites[0].tiles[0]
    assert tile.current is None and tile.current_plate is None and tile.queue == ()
    assert tile.plates_awaiting_qc == 1 and tile.awaiting_qc == 0  # its job is QC'd on it
    runs = [bar for bar in tile.timeline if bar.kind == "run"]
    assert [bar.label for bar in runs] == [plate.number]
    # From 5 hours before now to 4 hours before: 19 to 20 hours into the 48 shown.
    assert runs[0].x == pytest.approx(19 / 48 * 100, abs=0.01)
    assert runs[0].width == pytest.approx(1 / 48 * 100, abs=0.01)
    assert "(1 job, 5 copies)" in runs[0].title
    # The job's own start and finish events are there, but drawn once, as the plate.
    assert job.events.filter(step__in=("start", "finish")).count() == 2
    body = op_client.get("/station/floor/").content.decode()
    assert f'data-kind="run" data-label="{plate.number}"' in body
    assert "1 plate awaiting QC" in body
    Machine.objects.filter(pk=machine.pk)  # the machine is idle again
    assert Machine.objects.get(pk=machine.pk).state == "idle"


@pytest.mark.django_db
def test_a_routed_plate_moves_to_another_machine_of_its_profile_with_its_jobs(
    user, operator, op_client
):
    make_machine("mk4-1")
    make_machine("mk4-2")
    make_machine("xl-1", model="Prusa XL")  # another machine profile than the plate's G-code
    networked = make_machine("mk4-net")
    Machine.objects.filter(pk=networked.pk).update(connector="octoprint")
    a, b = plated_job(user, quantity=3), plated_job(user, quantity=2)
    plate = make_plate([a, b])
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    plate.refresh_from_db()
    here = plate.machine
    there = Machine.objects.get(slug="mk4-2" if here.slug == "mk4-1" else "mk4-1")

    page = html.unescape(op_client.get(f"/station/floor/plates/{plate.pk}/move/").content.decode())
    assert f'name="machine" value="{there.slug}"' in page
    assert 'value="xl-1"' not in page and "planned for another machine profile" in page
    assert 'value="mk4-net"' not in page and "plates are started at the station" in page
    assert floor.PLATE_NOT_MOVED in page
    tile_html = op_client.get("/station/floor/").content.decode()
    assert f'data-move-plate="{plate.number}"' in tile_html

    for slug, why in (
        ("xl-1", "XL-1 cannot make"),
        ("mk4-net", "plates are started at the station"),
        (here.slug, f"is already at {here.name}"),
    ):
        response = op_client.post(f"/station/floor/plates/{plate.pk}/move/", {"machine": slug})
        assert why in html.unescape(op_client.get(response["Location"]).content.decode()), slug
    plate.refresh_from_db()
    assert plate.machine_id == here.pk

    response = op_client.post(
        f"/station/floor/plates/{plate.pk}/move/",
        {"machine": there.slug, "back": "/station/floor/"},
    )
    assert response["Location"] == "/station/floor/"
    plate.refresh_from_db()
    assert (plate.status, plate.machine_id) == (Plate.Status.ROUTED, there.pk)
    for job in (a, b):
        job.refresh_from_db()
        assert (job.status, job.machine_id) == (Job.Status.ROUTED, there.pk)
        event = job.events.order_by("pk").last()
        assert (event.step, event.from_status, event.to_status, event.actor) == (
            "move",
            "routed",
            "routed",
            "op",
        )
        assert f"{plate.number} moved from {here.name} to {there.name}" in event.message
    tile = next(
        t
        for t in floor.floor_read(Site.objects.all(), now=timezone.now()).sites[0].tiles
        if t.machine.pk == there.pk
    )
    assert [q.plate.number for q in tile.queue if isinstance(q, floor.QueuedPlate)] == [
        plate.number
    ]
    # Once started it stays.
    plating.plate_start(plate_id=plate.pk, operator=operator, now=timezone.now())
    with pytest.raises(Exception, match="only a plate waiting in a machine's queue"):
        floor.plate_move_to_machine(
            plate_id=plate.pk, machine_id=here.pk, operator=operator, now=timezone.now()
        )


# --- moves ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_waiting_job_moves_to_another_capable_machine_with_its_event(user, operator, op_client):
    here, there = make_machine("mk4-1"), make_machine("mk4-2")
    job = make_station_job(user=user, machine=here)
    page = op_client.get(f"/station/floor/jobs/{job.pk}/move/").content.decode()
    assert 'name="machine" value="mk4-2"' in page
    response = op_client.post(
        f"/station/floor/jobs/{job.pk}/move/", {"machine": "mk4-2", "back": "/station/floor/"}
    )
    assert response.status_code == 302 and response["Location"] == "/station/floor/"
    job.refresh_from_db()
    assert (job.status, job.machine_id) == (Job.Status.ROUTED, there.pk)
    event = job.events.order_by("pk").last()
    assert (event.step, event.from_status, event.to_status, event.actor) == (
        "move",
        "dispatched",
        "routed",
        "op",
    )
    assert "moved from MK4-1 to MK4-2" in event.message
    assert f"{job.number} moved to MK4-2." in op_client.get("/station/floor/").content.decode()


@pytest.mark.django_db
def test_moves_the_router_would_refuse_are_refused_with_a_reason(user, operator, op_client):
    here = make_machine("mk4-1")
    make_machine("petg-1", materials=[make_material("petg")])
    make_machine("tiny-1", volume=(15, 15, 15))
    make_machine("down-1", state="offline")
    make_machine("far-1", site=make_site("south", operator=make_organisation("globex")))
    job = make_station_job(user=user, machine=here)
    refusals = {
        "petg-1": "PETG-1 cannot make",  # PLA neither loaded nor on its shelf
        "tiny-1": "does not fit its build volume",
        "down-1": "DOWN-1 is offline: it takes no work",
        "far-1": "no machine 'far-1' on your floor",  # another factory's: not even named
        "mk4-1": "is already at MK4-1",
        "nope": "no machine 'nope'",
    }
    for slug, why in refusals.items():
        response = op_client.post(f"/station/floor/jobs/{job.pk}/move/", {"machine": slug})
        assert response.status_code == 302
        shown = html.unescape(op_client.get(response["Location"]).content.decode())
        assert why in shown, slug
    page = op_client.get(f"/station/floor/jobs/{job.pk}/move/").content.decode()
    assert 'value="petg-1"' not in page and "it has no pla loaded" in page  # offered disabled
    job.refresh_from_db()
    assert (job.status, job.machine_id) == (Job.Status.DISPATCHED, here.pk)
    assert not job.events.filter(step="move").exists()
    # A job already running does not move; nor does a job of no one's queue.
    station.job_start(job_id=job.pk, operator=operator, now=timezone.now())
    make_machine("mk4-2")
    response = op_client.post(f"/station/floor/jobs/{job.pk}/move/", {"machine": "mk4-2"})
    shown = html.unescape(op_client.get(response["Location"]).content.decode())
    assert "only a job waiting in a machine's queue can be moved" in shown
    assert op_client.post(f"/station/floor/jobs/{job.pk}/move/", {}).status_code == 302


@pytest.mark.django_db
def test_a_full_machine_takes_no_moved_job(user, operator):
    here, full = make_machine("mk4-1"), make_machine("mk4-2")
    Machine.objects.filter(pk=full.pk).update(queue_limit=1)
    make_station_job(user=user, machine=full)
    job = make_station_job(user=user, machine=here)
    with pytest.raises(Exception, match="queue is full \\(1 of 1 jobs\\)"):
        floor.job_move_to_machine(
            job_id=job.pk, machine_id=full.pk, operator=operator, now=timezone.now()
        )


@pytest.mark.django_db
def test_moving_up_the_queue_changes_the_order_machines_take_jobs_in(user, operator, op_client):
    machine = make_machine("mk4-1")
    first, second, third = (make_station_job(user=user, machine=machine) for _ in range(3))
    Job.objects.filter(pk=first.pk).update(status_changed_at=NOW)
    Job.objects.filter(pk=second.pk).update(status_changed_at=NOW + timedelta(seconds=1))
    Job.objects.filter(pk=third.pk).update(status_changed_at=NOW + timedelta(seconds=2))

    def order() -> list[int]:
        queue = Job.objects.filter(machine=machine, status__in=floor.NOT_STARTED)
        return list(queue.order_by(*Job.QUEUE_ORDER).values_list("pk", flat=True))

    op_client.post(f"/station/floor/jobs/{third.pk}/move/", {"up": "1"})
    assert order() == [first.pk, third.pk, second.pk]
    op_client.post(f"/station/floor/jobs/{second.pk}/move/", {"front": "1"})
    assert order() == [second.pk, first.pk, third.pk]
    response = op_client.post(f"/station/floor/jobs/{second.pk}/move/", {"up": "1"})
    assert "already first" in op_client.get(response["Location"]).content.decode()
    events = JobEvent.objects.filter(step="reorder").order_by("pk")
    assert [(e.job_id, e.from_status, e.to_status) for e in events] == [
        (third.pk, "dispatched", "dispatched"),
        (second.pk, "dispatched", "dispatched"),
    ]
    assert "moved up to #2 of 3" in events[0].message
    # A job routed later queues behind the ranked ones; routing anew forgets a rank.
    late = make_station_job(user=user, machine=machine)
    Job.objects.filter(pk=late.pk).update(status_changed_at=NOW - timedelta(hours=1))
    assert order()[-1] == late.pk
    # The station's machine page lists them in the same order.
    page = op_client.get("/station/machines/mk4-1/").content.decode()
    numbers = [Job(pk=pk).number for pk in order()]
    assert sorted(numbers, key=page.index) == numbers


@pytest.mark.django_db
def test_a_networked_printer_is_sent_the_job_moved_to_the_front(user, operator):
    machine = make_machine("mk4-1")
    Machine.objects.filter(pk=machine.pk).update(connector="octoprint")
    jobs = [make_station_job(user=user, machine=machine, status="routed") for _ in range(3)]
    floor.job_move_up(job_id=jobs[2].pk, operator=operator, now=NOW, to_front=True)
    queued = Job.objects.filter(machine=machine, status="routed").order_by(*Job.QUEUE_ORDER)
    assert queued.first().pk == jobs[2].pk
    # The router's queue time follows the same order (its last material is the last job's).
    assert machines.machine_queues([machine.pk])[machine.pk].jobs == 3


# --- the refresh's cost -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refresh_costs_the_same_for_2_machines_or_8(user, operator, op_client):
    def add(first: int, count: int) -> None:
        for index in range(first, first + count):
            machine = make_machine(f"m-{index}", site=make_site(f"site-{index % 2}"))
            job = make_station_job(user=user, machine=machine)
            if index % 2:
                start_with_progress(job, operator, 50)
            make_station_job(user=user, machine=machine)
            # Plates (#13), written as rows: one routed to each machine, with copies of two
            # jobs; on the even ones another that ran an hour ago and waits for QC.
            routed = make_plate([plated_job(user, quantity=2), plated_job(user, quantity=3)])
            Plate.objects.filter(pk=routed.pk).update(status="routed", machine=machine)
            if not index % 2:
                ran = make_plate([plated_job(user, quantity=2)])
                Plate.objects.filter(pk=ran.pk).update(
                    status="finished",
                    machine=machine,
                    started_at=timezone.now() - timedelta(hours=2),
                    finished_at=timezone.now() - timedelta(hours=1),
                )
            machines.machine_set_state(
                machine_id=machine.pk, state="offline", now=timezone.now(), actor="t", reason="t"
            ) if index == 3 else None

    def cost() -> int:
        op_client.get("/station/floor-live/")
        with CaptureQueriesContext(connection) as captured:
            response = op_client.get("/station/floor-live/")
        assert response.status_code == 200
        assert response.content.decode().count("data-plate=") == machine_count()
        print(f"{len(captured)} queries")  # noqa: T201  (shown with -s)
        return len(captured)

    def machine_count() -> int:
        return Machine.objects.exclude(state="offline").count()

    add(0, 2)
    few = cost()
    add(2, 6)
    many = cost()
    assert many == few
    assert many <= 14  # session, user, the site check, sites, machines, their materials,
    # jobs, job events, machine events, plates, their copies, the sites' hours and closures
