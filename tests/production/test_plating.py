"""Plates in production (#13): jobs of N copies planned on plates by the worker, batched
across orders, routed as plates, run and QC'd copy by copy at the station, shown in the API.

The CAD-heavy tests (a real part built, sliced as one plate and checked copy by copy) are
two; the rest build plates as fixtures and exercise batching, routing and the station."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from microfactory.errors import DomainError
from production import machines, plate_runner, plating, runner, services, station
from production.models import Artifact, Job, Machine, Plate, PlateCopy
from production.pipeline.traveler import TravelerCheck
from tests.builders import make_machine, make_order, make_part, make_ready_job, make_user

pytestmark = pytest.mark.django_db

SMALL = {"width": 12, "height": 4, "hole_d": 4}
PROFILE = ["Prusa MK4", 0.4, "marlin", [250, 210, 220], "builtin"]
META = {
    "estimated_time_s": 600,
    "filament_g": 2.0,
    "layers": 20,
    "process": "fdm",
    "profile_key": PROFILE,
    "engine": "builtin",
    "nozzle_mm": 0.4,
    "layer_height_mm": 0.2,
    "planned_for": "mk4-1",
}


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    """Pages link site.css; tests run without collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def operator(organisation):
    return make_user("op", organisation=organisation, role="operator")


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def to_the_router(job_id: int) -> Job:
    for _ in range(10):
        if not runner.job_advance(job_id=job_id, actor="test"):
            break
    job = Job.objects.get(pk=job_id)
    services.jobs_release(line_ids=[job.line_id])
    return Job.objects.get(pk=job_id)


def route() -> None:
    machines.jobs_route_waiting(now=timezone.now(), actor="router")


# --- the worker plans real plates (CAD once per test) ---------------------------------------


@pytest.mark.cad
def test_quantity_five_is_one_plate_of_five_copies_verified_then_run_and_qcd(
    user, operator, settings, api
):
    settings.MF_PLATE_BATCH_WINDOW_S = 0
    make_part("block")
    machine = make_machine()
    order = make_order(user=user, quantity=5, parameters=SMALL)
    job = to_the_router(order.lines.get().jobs.get().pk)
    assert job.status == Job.Status.TOOLPATH_READY, job.reason
    # The plain router leaves a job of N copies for the plates.
    route()
    assert Job.objects.get(pk=job.pk).status == Job.Status.TOOLPATH_READY

    made = plate_runner.plates_plan(actor="test")

    assert len(made) == 1
    plate = Plate.objects.get(pk=made[0])
    copies = list(plate.copies.order_by("number"))
    assert sorted(c.copy_index for c in copies) == [1, 2, 3, 4, 5]
    assert {c.job_id for c in copies} == {job.pk}
    assert len({(round(c.x_mm), round(c.y_mm)) for c in copies}) == 5  # five places
    # One program, checked copy by copy: every copy printed inside its own footprint.
    checked = plate.verification["copies"]
    assert len(checked) == 5 and {c["status"] for c in checked} == {"pass"}
    assert plate.gcode is not None and plate.traveler is not None
    with plate.traveler.file.open("rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    assert plate.estimated_time_s > 0 and plate.layers > 0
    # A second pass plans nothing more: every copy has its plate.
    assert plate_runner.plates_plan(actor="test") == []

    route()
    plate.refresh_from_db()
    job.refresh_from_db()
    assert plate.status == Plate.Status.ROUTED and plate.machine == machine
    assert job.status == Job.Status.ROUTED and job.machine == machine
    # The queue counts the plate once, with the plate's own time.
    assert machines.machine_queues([machine.pk])[machine.pk].eta_s == plate.estimated_time_s

    # The API shows which plate and copy each part is on.
    body = api.get(f"/api/v1/orders/{order.pk}/").json()
    shown = body["lines"][0]["jobs"][0]["copies"]
    assert [c["copy"] for c in shown] == [1, 2, 3, 4, 5]
    assert {c["plate"] for c in shown} == {plate.number}
    assert {c["qc"] for c in shown} == {"pending"}


@pytest.mark.cad
def test_more_copies_than_a_bed_holds_go_on_several_plates_with_a_second_order(user, settings):
    """Two orders' compatible jobs batched: 5 + 2 copies of a 20 mm block on an 80 mm bed
    (4 a plate) make 2 plates holding every copy once."""
    settings.MF_PLATE_BATCH_WINDOW_S = 0
    make_part("block")
    make_machine("mini", volume=(80, 80, 100), model="Mini")
    params = {"width": 20, "height": 3, "hole_d": 5}
    first = make_order(user=user, quantity=5, parameters=params).lines.get().jobs.get()
    second = make_order(user=user, quantity=2, parameters=params).lines.get().jobs.get()
    for job in (first, second):
        assert to_the_router(job.pk).status == Job.Status.TOOLPATH_READY

    made = plate_runner.plates_plan(actor="test")

    assert len(made) == 2
    copies = PlateCopy.objects.filter(plate_id__in=made)
    assert sorted(copies.filter(job=first).values_list("copy_index", flat=True)) == [1, 2, 3, 4, 5]
    assert sorted(copies.filter(job=second).values_list("copy_index", flat=True)) == [1, 2]
    per_plate = sorted(copies.filter(plate_id=pk).count() for pk in made)
    assert per_plate == [3, 4]
    for plate in Plate.objects.filter(pk__in=made):
        assert plate.plates_in_plan == 2
        assert {c["status"] for c in plate.verification["copies"]} == {"pass"}


# --- fixtures: plates without CAD ----------------------------------------------------------


def plated_job(user, *, quantity: int, priority: str = "normal") -> Job:
    job = make_ready_job(user=user, priority=priority)
    Job.objects.filter(pk=job.pk).update(quantity=quantity, toolpath_meta=META)
    job.line.order.lines.update(quantity=quantity)
    return Job.objects.get(pk=job.pk)


def make_plate(jobs: list[Job], *, estimated_time_s: int = 900) -> Plate:
    """A plate as the worker keeps one (a fixture: rows written directly)."""
    content = b"G28 ; plate\n" + str([j.pk for j in jobs]).encode()
    key = hashlib.sha256(content).hexdigest()
    files = []
    for kind in (Artifact.Kind.GCODE, Artifact.Kind.TRAVELER):
        artifact = Artifact(kind=kind, input_key=key, sha256=key, size=len(content))
        artifact.file.save(f"plate.{kind}", ContentFile(content), save=False)
        artifact.save()
        files.append(artifact)
    plate = Plate.objects.create(
        status=Plate.Status.READY,
        status_changed_at=timezone.now(),
        material=jobs[0].line.material,
        batch_key="k",
        gcode=files[0],
        traveler=files[1],
        map_svg='<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        estimated_time_s=estimated_time_s,
        filament_g=10.0,
    )
    number = 0
    for job in jobs:
        for copy in range(1, job.quantity + 1):
            number += 1
            PlateCopy.objects.create(
                plate=plate, job=job, copy_index=copy, number=number, x_mm=10 * number, y_mm=10
            )
    return plate


# --- batching ------------------------------------------------------------------------------


def waiting(
    job: int, *, key: str = "a", quantity: int = 2, age_s: float = 0, **kw
) -> plating.Waiting:
    now = timezone.now()
    return plating.Waiting(
        job=job,
        key=key,
        quantity=quantity,
        ready_at=now - timedelta(seconds=age_s),
        rush=kw.get("rush", False),
        due=kw.get("due"),
    )


def test_compatible_jobs_wait_for_the_window_then_are_planned_together():
    now = timezone.now()
    young = [waiting(1, age_s=30), waiting(2, age_s=10)]
    assert plating.groups_to_plan(young, now=now, window_s=180, due_horizon_s=0) == []
    old = [waiting(1, age_s=200), waiting(2, age_s=10), waiting(3, key="b", age_s=200)]
    groups = plating.groups_to_plan(old, now=now, window_s=180, due_horizon_s=0)
    assert [[w.job for w in g] for g in groups] == [[1, 2], [3]]


def test_a_rush_job_or_one_due_soon_is_never_held_and_takes_its_group_along():
    now = timezone.now()
    rush = [waiting(1, age_s=5), waiting(2, age_s=1, rush=True)]
    assert len(plating.groups_to_plan(rush, now=now, window_s=180, due_horizon_s=0)) == 1
    due = [waiting(1, age_s=5, due=now + timedelta(hours=3))]
    assert plating.groups_to_plan(due, now=now, window_s=180, due_horizon_s=24 * 3600)
    assert not plating.groups_to_plan(due, now=now, window_s=180, due_horizon_s=3600)


def test_single_parts_alone_make_no_plate_but_join_one():
    now = timezone.now()
    singles = [waiting(1, quantity=1, age_s=999), waiting(2, quantity=1, age_s=999)]
    assert plating.groups_to_plan(singles, now=now, window_s=0, due_horizon_s=0) == []
    mixed = [*singles, waiting(3, quantity=4)]
    assert [
        w.job for w in plating.groups_to_plan(mixed, now=now, window_s=0, due_horizon_s=0)[0]
    ] == [1, 2, 3]


def test_two_orders_jobs_share_a_batch_key_and_a_rush_order_is_marked(user):
    make_machine()
    a = plated_job(user, quantity=2)
    b = plated_job(user, quantity=3)
    rush = plated_job(user, quantity=2, priority="urgent")
    other = plated_job(user, quantity=2)
    Job.objects.filter(pk=other.pk).update(toolpath_meta={**META, "layer_height_mm": 0.3})
    found = {w.job: w for w in plating.waiting_for_plates()}
    assert found[a.pk].key == found[b.pk].key == found[rush.pk].key != found[other.pk].key
    assert found[rush.pk].rush and not found[a.pk].rush
    # The window holds the normal ones; the rush order is planned at once, with its group.
    groups = plating.groups_to_plan(
        [found[a.pk], found[b.pk]], now=timezone.now(), window_s=600, due_horizon_s=0
    )
    assert groups == []
    groups = plating.groups_to_plan(
        found.values(), now=timezone.now(), window_s=600, due_horizon_s=0
    )
    assert [sorted(w.job for w in g) for g in groups] == [sorted([a.pk, b.pk, rush.pk])]


# --- routing plates ------------------------------------------------------------------------


def test_the_router_routes_a_ready_plate_with_its_jobs_and_counts_it_once(user):
    machine = make_machine()
    a, b = plated_job(user, quantity=3), plated_job(user, quantity=2)
    single = make_ready_job(user=user)  # a plain job still routes as before
    plate = make_plate([a, b], estimated_time_s=1800)

    routed = machines.jobs_route_waiting(now=timezone.now(), actor="router")

    assert routed == {single.pk: machine.slug}
    plate.refresh_from_db()
    assert plate.status == Plate.Status.ROUTED and plate.machine == machine
    assert "the only site" in plate.route_reason
    for job in (a, b):
        job.refresh_from_db()
        assert job.status == Job.Status.ROUTED and job.machine == machine
        assert job.events.last().message.startswith(f"on {plate.number}")
    queue = machines.machine_queues([machine.pk])[machine.pk]
    assert queue.jobs == 2  # the plate, and the single job
    assert queue.eta_s == 1800 + 600


def test_a_job_awaiting_its_plate_is_not_routed_alone(user):
    make_machine()
    job = plated_job(user, quantity=4)
    assert machines.jobs_route_waiting(now=timezone.now(), actor="router") == {}
    assert Job.objects.get(pk=job.pk).status == Job.Status.TOOLPATH_READY


def test_a_shop_of_networked_printers_plans_plates_too(user):
    """Networked printers run plates (the dispatcher sends them, the poller follows them:
    tests/production/test_plate_dispatch.py): a job of N copies waits for its plate there too."""
    machine = make_machine()
    Machine.objects.filter(pk=machine.pk).update(
        connector=Machine.Connector.OCTOPRINT, connector_url="http://printer.invalid"
    )
    job = plated_job(user, quantity=4)
    assert [w.job for w in plating.waiting_for_plates()] == [job.pk]
    assert machines.jobs_route_waiting(now=timezone.now(), actor="router") == {}
    plate = make_plate([Job.objects.get(pk=job.pk)])
    route()
    assert Plate.objects.get(pk=plate.pk).machine == machine


def test_a_plate_whose_jobs_were_all_cancelled_is_cancelled(user):
    make_machine()
    job = plated_job(user, quantity=2)
    plate = make_plate([job])
    Job.objects.filter(pk=job.pk).update(status=Job.Status.CANCELLED)
    route()
    plate.refresh_from_db()
    assert plate.status == Plate.Status.CANCELLED and plate.machine is None


def test_a_machine_going_down_takes_its_routed_plate_back(user):
    machine = make_machine()
    job = plated_job(user, quantity=2)
    plate = make_plate([job])
    route()
    machines.machine_set_state(
        machine_id=machine.pk, state="offline", now=timezone.now(), actor="test"
    )
    plate.refresh_from_db()
    job.refresh_from_db()
    assert plate.status in (Plate.Status.READY, Plate.Status.ROUTED)
    assert job.status in (Job.Status.TOOLPATH_READY, Job.Status.ROUTED)
    assert (plate.status == Plate.Status.READY) == (job.status == Job.Status.TOOLPATH_READY)
    if plate.status == Plate.Status.ROUTED:  # routed again at once: only to a machine up
        assert plate.machine.state != "offline"


# --- the station: start, finish, QC per copy -------------------------------------------------


@pytest.fixture
def routed_plate(user):
    machine = make_machine()
    job = plated_job(user, quantity=5)
    plate = make_plate([job])
    route()
    plate.refresh_from_db()
    assert plate.status == Plate.Status.ROUTED
    return plate, job, machine


def test_scrapping_two_of_five_copies_makes_a_remake_of_exactly_two(routed_plate, operator):
    plate, job, machine = routed_plate
    now = timezone.now()
    plating.plate_start(plate_id=plate.pk, operator=operator, now=now)
    machine.refresh_from_db()
    job.refresh_from_db()
    assert machine.state == Machine.State.BUSY and job.status == Job.Status.RUNNING
    plating.plate_finish(plate_id=plate.pk, operator=operator, now=now)
    machine.refresh_from_db()
    job.refresh_from_db()
    assert machine.state == Machine.State.IDLE and job.status == Job.Status.AWAITING_QC
    copies = list(plate.copies.order_by("number"))

    first = plating.copies_qc(
        plate_id=plate.pk, passed=[copies[0].pk], scrapped=[copies[1].pk],
        reason="warped", operator=operator, now=now,
    )  # fmt: skip
    assert first.remakes == ()  # three copies still to judge
    assert Job.objects.get(pk=job.pk).status == Job.Status.AWAITING_QC
    outcome = plating.copies_qc(
        plate_id=plate.pk, passed=[copies[2].pk, copies[3].pk], scrapped=[copies[4].pk],
        reason="layer shift", operator=operator, now=now,
    )  # fmt: skip

    (remake,) = outcome.remakes
    assert remake.quantity == 2 and remake.replaces_id == job.pk
    assert remake.status == Job.Status.QUEUED
    job.refresh_from_db()
    plate.refresh_from_db()
    assert job.status == Job.Status.DONE and (job.qc_passed, job.qc_scrapped) == (3, 2)
    assert plate.status == Plate.Status.DONE
    scrapped = PlateCopy.objects.filter(plate=plate, qc=PlateCopy.Qc.SCRAPPED)
    assert sorted(scrapped.values_list("copy_index", flat=True)) == [2, 5]
    assert set(scrapped.values_list("remake", flat=True)) == {remake.pk}
    # A copy is judged once.
    with pytest.raises(DomainError, match="QC comes after|already judged"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[copies[0].pk], scrapped=[], reason="",
            operator=operator, now=now,
        )  # fmt: skip


def test_the_station_refuses_what_does_not_apply_to_a_plate(routed_plate, operator):
    plate, job, _ = routed_plate
    now = timezone.now()
    with pytest.raises(DomainError, match="only a running plate finishes"):
        plating.plate_finish(plate_id=plate.pk, operator=operator, now=now)
    with pytest.raises(DomainError, match="made on plate"):
        station.job_start(job_id=job.pk, operator=operator, now=now)
    plating.plate_start(plate_id=plate.pk, operator=operator, now=now)
    with pytest.raises(DomainError, match="only a plate routed"):
        plating.plate_start(plate_id=plate.pk, operator=operator, now=now)
    copy = plate.copies.first()
    with pytest.raises(DomainError, match="after the plate is finished"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[copy.pk], scrapped=[], reason="", operator=operator, now=now
        )
    plating.plate_finish(plate_id=plate.pk, operator=operator, now=now)
    with pytest.raises(DomainError, match="give a reason"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[], scrapped=[copy.pk], reason=" ", operator=operator, now=now
        )
    with pytest.raises(DomainError, match="not copies of"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[999999], scrapped=[], reason="", operator=operator, now=now
        )
    width = TravelerCheck("Width", "20", "± 0.2", 20.0, 0.2, 0.2)
    with pytest.raises(DomainError, match="measure Width"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[copy.pk], scrapped=[], reason="", operator=operator,
            now=now, checks={job.pk: (width,)},
        )  # fmt: skip
    # Measured on that copy: out of tolerance refuses it, in tolerance passes it.
    measure = {"plate_id": plate.pk, "copy_id": copy.pk, "checks": (width,),
               "operator": operator, "now": now}  # fmt: skip
    (outside,) = plating.copy_measure(values={"Width": 20.5}, **measure)
    assert outside.label == "Width"
    with pytest.raises(DomainError, match="outside"):
        plating.copies_qc(
            plate_id=plate.pk, passed=[copy.pk], scrapped=[], reason="", operator=operator,
            now=now, checks={job.pk: (width,)},
        )  # fmt: skip
    with pytest.raises(DomainError, match="not on the QC checklist"):
        plating.copy_measure(values={"Bore": 4.0}, **measure)
    assert plating.copy_measure(values={"Width": 20.1}, **measure) == []
    other = plate.copies.exclude(pk=copy.pk).first()
    assert other.measurements == {}  # measured per copy, not per job
    plating.copies_qc(
        plate_id=plate.pk, passed=[copy.pk], scrapped=[], reason="", operator=operator,
        now=now, checks={job.pk: (width,)},
    )  # fmt: skip
    assert PlateCopy.objects.get(pk=copy.pk).measurements == {"Width": 20.1}
    assert "copy 1 (#1" in job.events.filter(step="measure").last().message
    with pytest.raises(DomainError, match="no more measuring"):
        plating.copy_measure(values={"Width": 20.0}, **measure)
    assert PlateCopy.objects.filter(plate=plate, qc=PlateCopy.Qc.PENDING).count() == 4


def test_the_plate_page_opens_by_scanning_and_records_qc_per_copy(routed_plate, operator_client):
    plate, job, _ = routed_plate
    machine_page = operator_client.get(f"/station/machines/{plate.machine.slug}/").content
    assert f"/station/plates/{plate.pk}/".encode() in machine_page
    response = operator_client.post("/station/scan/", {"code": plate.number})
    assert response.status_code == 302 and response.url == f"/station/plates/{plate.pk}/"
    page = operator_client.get(response.url)
    assert page.status_code == 200
    assert plate.number.encode() in page.content and b'id="start"' in page.content
    operator_client.post(f"/station/plates/{plate.pk}/start/")
    operator_client.post(f"/station/plates/{plate.pk}/finish/")
    copies = list(plate.copies.order_by("number"))
    response = operator_client.post(
        f"/station/plates/{plate.pk}/qc/",
        {"scrap": [copies[0].pk, copies[1].pk], "reason": "warped", "note": "corner lifted"},
    )
    assert response.status_code == 302
    judged = PlateCopy.objects.filter(plate=plate, qc=PlateCopy.Qc.SCRAPPED)
    assert judged.count() == 2
    assert judged.first().qc_reason.startswith("Warped")
    page = operator_client.get(f"/station/plates/{plate.pk}/")
    assert b"Scrapped" in page.content or b"scrapped" in page.content
    # The job's page sends the operator to the plate and offers no job-level start or QC.
    job_page = operator_client.get(f"/station/jobs/{job.pk}/").content
    assert f"/station/plates/{plate.pk}/".encode() in job_page
    assert b'id="qc-pass"' not in job_page
    traveler = operator_client.get(f"/station/plates/{plate.pk}/traveler.pdf")
    assert traveler.status_code == 200
    labels = operator_client.get(f"/station/plates/{plate.pk}/labels.pdf")
    assert labels.status_code == 200 and labels.content.startswith(b"%PDF-")


def test_plate_codes_are_read_from_what_a_scanner_types():
    assert plating.plate_id_from_code("P-000012") == 12
    assert plating.plate_id_from_code("p12") == 12
    assert plating.plate_id_from_code("https://x.example/station/plates/7/") == 7
    assert plating.plate_id_from_code("J-000012") is None
    assert plating.plate_id_from_code("P-" + "9" * 40) is None


def test_the_plate_page_costs_the_same_for_2_copies_or_12(user, operator_client):
    from tests.test_query_budgets import queries

    machine = make_machine()
    few = make_plate([plated_job(user, quantity=2)])
    many = make_plate([plated_job(user, quantity=4) for _ in range(3)])
    Plate.objects.filter(pk__in=[few.pk, many.pk]).update(
        machine=machine, status=Plate.Status.FINISHED
    )
    counted = [
        queries(lambda p=p: operator_client.get(f"/station/plates/{p.pk}/")) for p in (few, many)
    ]
    assert counted[0] == counted[1] <= 12


def test_the_job_page_measures_a_plate_copy_by_copy_and_the_api_shows_it(
    routed_plate, operator, operator_client, api, monkeypatch
):
    from production import views

    plate, job, _ = routed_plate
    width = TravelerCheck("Width", "20", "± 0.2", 20.0, 0.2, 0.2)
    monkeypatch.setattr(views, "_checks", lambda job: (width,))  # the fixture has no traveler
    now = timezone.now()
    plating.plate_start(plate_id=plate.pk, operator=operator, now=now)
    plating.plate_finish(plate_id=plate.pk, operator=operator, now=now)
    third = plate.copies.get(copy_index=3)

    response = operator_client.post(
        f"/station/jobs/{job.pk}/measure/", {"copy": third.pk, "m0": "20,1"}
    )
    assert response.status_code == 302
    assert PlateCopy.objects.get(pk=third.pk).measurements == {"Width": 20.1}
    assert all(c.measurements == {} for c in plate.copies.exclude(pk=third.pk))
    assert Job.objects.get(pk=job.pk).measurements == {}  # per copy, not per job
    assert b"Width 20.1" in operator_client.get(f"/station/plates/{plate.pk}/").content
    bad = operator_client.post(f"/station/jobs/{job.pk}/measure/", {"copy": "x", "m0": "20"})
    assert bad.status_code == 302 and PlateCopy.objects.filter(measurements={}).count() == 4
    body = api.get(f"/api/v1/orders/{job.line.order_id}/").json()
    shown = {c["copy"]: c["measurements"] for c in body["lines"][0]["jobs"][0]["copies"]}
    assert shown[3] == {"Width": 20.1} and shown[1] == {}


def test_a_plates_bag_labels_are_stored_with_its_traveler_and_served_from_the_file(
    user, operator_client
):
    make_machine()
    plate = make_plate([plated_job(user, quantity=2), plated_job(user, quantity=3)])
    Plate.objects.filter(pk=plate.pk).update(traveler=None)

    plate_runner._attach_traveler(Plate.objects.get(pk=plate.pk))  # noqa: SLF001

    plate.refresh_from_db()
    assert plate.traveler is not None and plate.labels is not None
    assert len(plate.labels.meta["jobs"]) == 2
    with plate.labels.file.open("rb") as stored:
        pdf = stored.read()
    assert pdf.startswith(b"%PDF-")
    route()  # the station finds a plate at its factory's machines
    served = operator_client.get(f"/station/plates/{plate.pk}/labels.pdf")
    assert served.status_code == 200 and served.content == pdf
