"""Spools: loading, the grams booked when a job starts and ends, routing by what a spool holds,
scanning a spool's label at the station, its label, the lot on travelers, low stock."""

import io
from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client
from pypdf import PdfReader

from microfactory.errors import DomainError
from production import machines, spools, station
from production.lifecycle import By
from production.machines import TelemetryReport
from production.models import Artifact, Job, JobArtifact, Machine, Spool, SpoolBooking
from tests.builders import make_machine, make_material, make_ready_job, make_site, make_user
from tests.production.pipeline.test_traveler import scan
from tests.production.test_station import NOW, attach, checks_of, make_station_job

pytestmark = pytest.mark.django_db

Kind = SpoolBooking.Kind


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    """Pages link site.css; tests run without collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def operator(organisation) -> User:
    return make_user("op", organisation=organisation, role="operator")


@pytest.fixture
def machine() -> Machine:
    return make_machine("mk4-1")


def receive(grams: str = "1000", *, material: str = "pla", site=None, lot: str = "L-24-113"):
    return spools.spool_receive(
        material=make_material(material),
        site=site or make_site(),
        lot_number=lot,
        initial_g=Decimal(grams),
        colour="Black",
    )


def load(spool: Spool, machine: Machine) -> spools.SpoolLoaded:
    return spools.spool_load(spool_id=spool.pk, machine_id=machine.pk, actor="op", now=NOW)


def with_filament(job: Job, grams: float) -> Job:
    Job.objects.filter(pk=job.pk).update(
        toolpath_meta={**(job.toolpath_meta or {}), "filament_g": grams}
    )
    return Job.objects.get(pk=job.pk)


def remaining(spool: Spool) -> Decimal:
    return Spool.objects.get(pk=spool.pk).remaining_g


def bookings(job: Job) -> list[tuple[str, Decimal]]:
    return list(job.spool_bookings.order_by("pk").values_list("kind", "grams"))


# --- the grams a job books ---------------------------------------------------------------------


@pytest.mark.cad
def test_grams_booked_at_start_equal_the_filament_the_gcode_says(user, operator, machine) -> None:
    """A real G-code from our slicer: the start books the grams its header names, finishing
    books nothing more, and the spool lost exactly that much."""
    from production.toolpath import plan_toolpath
    from tests.production.toolpath.gcode_reader import box_stl, header_value, make_profile

    toolpath = plan_toolpath(box_stl(20, 20, 10), make_profile())
    in_gcode = Decimal(header_value(toolpath.gcode, "; filament used [g] ="))
    assert in_gcode > 0
    job = make_station_job(user=user, machine=machine)
    # What the toolpath step stores for the job (production.pipeline.steps.plan_toolpath).
    Job.objects.filter(pk=job.pk).update(
        toolpath_meta={"filament_g": round(toolpath.filament_g, 2), "estimated_time_s": 600}
    )
    JobArtifact.objects.filter(job=job, kind=Artifact.Kind.GCODE).delete()
    attach(job, Artifact.Kind.GCODE, toolpath.gcode, {})
    spool = receive("1000")
    load(spool, machine)

    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    assert bookings(job) == [(Kind.START, in_gcode)]
    station.job_finish(job_id=job.pk, operator=operator, now=NOW)

    assert bookings(job) == [(Kind.START, in_gcode), (Kind.CORRECTION, Decimal("0.00"))]
    assert remaining(spool) == Decimal("1000") - in_gcode
    assert sum(g for _, g in bookings(job)) == in_gcode


def test_a_job_of_three_copies_books_its_gcodes_filament_three_times(
    user, operator, machine
) -> None:
    job = make_station_job(user=user, machine=machine)
    Job.objects.filter(pk=job.pk).update(quantity=3)  # its G-code makes one copy, run thrice
    job = with_filament(job, 12.34)
    spool = receive("1000")
    load(spool, machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    assert bookings(job) == [(Kind.START, Decimal("37.02"))]
    assert remaining(spool) == Decimal("962.98")


def test_scrapped_parts_used_their_filament_too(user, operator, machine) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 12.34)
    spool = receive("1000")
    load(spool, machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    station.job_finish(job_id=job.pk, operator=operator, now=NOW)
    station.job_qc(
        job_id=job.pk,
        passed=0,
        scrapped=1,
        checks=checks_of(job),
        reason="warped",
        operator=operator,
        now=NOW,
    )
    assert remaining(spool) == Decimal("987.66")
    assert bookings(job) == [(Kind.START, Decimal("12.34")), (Kind.CORRECTION, Decimal("0"))]


def test_a_job_that_overruns_its_spool_takes_what_is_left_and_books_the_shortfall(
    user, operator, machine
) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 12.34)
    spool = receive("1000")
    load(spool, machine)
    Spool.objects.filter(pk=spool.pk).update(remaining_g=Decimal("5.00"))  # a nearly empty one

    client = Client()
    client.force_login(operator)
    response = client.post(f"/station/jobs/{job.pk}/start/", follow=True)

    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
    assert remaining(spool) == Decimal("0.00")  # never below zero
    assert bookings(job) == [(Kind.START, Decimal("5.00")), (Kind.SHORTFALL, Decimal("7.34"))]
    page = response.content.decode()
    assert f"{spool.number} had 5.00 g of the 12.34 g {job.number} needs: 7.34 g short" in page
    # Finishing books nothing more: the shortfall stands as it was.
    station.job_finish(job_id=job.pk, operator=operator, now=NOW)
    assert remaining(spool) == Decimal("0.00")
    assert sum(g for _, g in bookings(job)) == Decimal("12.34")


def test_a_print_scrapped_mid_run_gives_back_what_it_did_not_use(user, operator, machine) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 50.0)
    spool = receive("1000")
    load(spool, machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    Job.objects.filter(pk=job.pk).update(progress=40.0)  # as the machine's agent reported
    station.job_qc(
        job_id=job.pk,
        passed=0,
        scrapped=1,
        checks=(),
        reason="layer shift",
        operator=operator,
        now=NOW,
    )
    assert bookings(job) == [(Kind.START, Decimal("50.00")), (Kind.CORRECTION, Decimal("-30.00"))]
    assert remaining(spool) == Decimal("980.00")


def test_a_print_stopped_without_a_reported_progress_keeps_all_it_booked(
    user, operator, machine
) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 50.0)
    spool = receive("1000")
    load(spool, machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    station.job_pause(job_id=job.pk, operator=operator, now=NOW)
    station.job_qc(
        job_id=job.pk, passed=0, scrapped=1, checks=(), reason="warped", operator=operator, now=NOW
    )
    assert remaining(spool) == Decimal("950.00")


def test_without_a_spool_loaded_the_start_warns_and_the_finish_books_the_spool_loaded_by_then(
    user, operator, machine
) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 20.0)
    client = Client()
    client.force_login(operator)
    page = client.post(f"/station/jobs/{job.pk}/start/", follow=True).content.decode()
    assert f"20.00 g for {job.number} not booked: no spool of its material is loaded" in page
    assert bookings(job) == []

    spool = receive("1000")
    load(spool, machine)  # the operator scans the spool mid-print
    station.job_finish(job_id=job.pk, operator=operator, now=NOW)
    assert bookings(job) == [(Kind.CORRECTION, Decimal("20.00"))]
    assert remaining(spool) == Decimal("980.00")


def test_a_start_with_a_spool_of_another_material_loaded_is_refused(
    user, operator, machine
) -> None:
    machine.materials_loadable.add(make_material("petg"))
    job = with_filament(make_station_job(user=user, machine=machine), 20.0)
    load(receive("1000", material="petg"), machine)
    with pytest.raises(DomainError, match=r"has S-\d{6} \(PETG Black, lot L-24-113\) loaded"):
        station.job_start(job_id=job.pk, operator=operator, now=NOW)
    assert Job.objects.get(pk=job.pk).status == Job.Status.DISPATCHED
    assert not SpoolBooking.objects.exists()


def test_a_job_is_booked_once_at_its_start_and_corrected_once_at_its_end(user, machine) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 10.0)
    spool = receive("1000")
    load(spool, machine)
    for _ in range(2):
        spools.spool_book_start(job=job, machine=machine, actor="op", now=NOW)
    for _ in range(2):
        spools.spool_book_end(job=job, actor="op", now=NOW)
    assert bookings(job) == [(Kind.START, Decimal("10.00")), (Kind.CORRECTION, Decimal("0"))]
    assert remaining(spool) == Decimal("990.00")
    # And the database says so too, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        SpoolBooking.objects.create(
            spool=spool, job=job, kind=Kind.START, grams=1, at=NOW, by="someone"
        )


def test_the_database_never_lets_a_spool_go_below_zero_or_above_its_initial_grams() -> None:
    spool = receive("100")
    with pytest.raises(IntegrityError), transaction.atomic():
        Spool.objects.filter(pk=spool.pk).update(remaining_g=Decimal("-0.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Spool.objects.filter(pk=spool.pk).update(remaining_g=Decimal("100.01"))
    assert remaining(spool) == Decimal("100.00")


def test_a_networked_printer_books_when_it_reports_printing_and_corrects_when_complete(
    user,
) -> None:
    printer = make_machine("voron")
    Machine.objects.filter(pk=printer.pk).update(connector=Machine.Connector.OCTOPRINT)
    job = with_filament(make_station_job(user=user, machine=printer), 33.3)
    spool = receive("1000")
    load(spool, printer)
    for job_state in ("printing", "complete"):
        machines.telemetry_record(
            machine_id=printer.pk,
            report=TelemetryReport(
                state="busy" if job_state == "printing" else "idle",
                job_id=job.pk,
                job_state=job_state,
                progress=50.0,
            ),
            now=NOW,
            actor="poller",
        )
    assert Job.objects.get(pk=job.pk).status == Job.Status.AWAITING_QC
    assert bookings(job) == [(Kind.START, Decimal("33.30")), (Kind.CORRECTION, Decimal("0"))]
    assert SpoolBooking.objects.filter(job=job, kind=Kind.START).get().by == "poller"


def test_a_run_that_fails_on_its_machine_keeps_its_start_booking(user, operator, machine) -> None:
    job = with_filament(make_station_job(user=user, machine=machine), 40.0)
    spool = receive("1000")
    load(spool, machine)
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    with transaction.atomic():
        machines.job_fail_on_machine(
            job=Job.objects.get(pk=job.pk), by=By.SYSTEM, reason="went offline", now=NOW, actor="x"
        )
    assert remaining(spool) == Decimal("960.00")
    assert bookings(job) == [(Kind.START, Decimal("40.00"))]


# --- loading -------------------------------------------------------------------------------


def test_loading_a_spool_takes_the_one_there_off_and_sets_the_machines_material(machine) -> None:
    petg = make_material("petg")
    machine.materials_loadable.add(petg)
    first, second = receive("1000"), receive("1000", material="petg", lot="P-1")
    load(first, machine)
    loaded = load(second, machine)
    assert loaded.unloaded == first and loaded.changed
    assert Spool.objects.get(pk=first.pk).loaded_on is None
    assert Spool.objects.get(pk=second.pk).loaded_on == machine
    assert [m.slug for m in machine.materials_loaded.all()] == ["petg"]
    assert {m.slug for m in machine.materials_loadable.all()} == {"pla", "petg"}
    assert not load(second, machine).changed  # scanning it again changes nothing


def test_a_spool_loaded_on_another_machine_moves(machine) -> None:
    other = make_machine("mk4-2")
    spool = receive("1000")
    load(spool, other)
    assert load(spool, machine).moved_from == other.name
    assert Spool.objects.get(pk=spool.pk).loaded_on == machine
    assert not Spool.objects.filter(loaded_on=other).exists()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("other-site", r"is at Elsewhere, MK4-1 at North: move the spool"),
        ("empty", r"is empty \(0 g left\)"),
        ("material", r"MK4-1 does not run PA12"),
    ],
)
def test_loading_is_refused_for_a_spool_elsewhere_empty_or_of_a_material_not_run(
    machine, change: str, refusal: str
) -> None:
    spool = {
        "other-site": lambda: receive(site=make_site("elsewhere")),
        "empty": lambda: receive("10"),
        "material": lambda: receive(material="pa12"),
    }[change]()
    if change == "empty":
        Spool.objects.filter(pk=spool.pk).update(remaining_g=0)
    with pytest.raises(DomainError, match=refusal):
        load(spool, machine)
    assert Spool.objects.get(pk=spool.pk).loaded_on is None


def test_receiving_refuses_no_grams_and_no_lot() -> None:
    with pytest.raises(DomainError, match="more than 0 g"):
        receive("0")
    with pytest.raises(DomainError, match="lot number"):
        receive(lot=" ")


# --- routing --------------------------------------------------------------------------------


def route(now: datetime = NOW) -> dict[int, str]:
    return machines.jobs_route_waiting(now=now, actor="router")


def test_a_spool_with_too_little_left_is_skipped(user, settings) -> None:
    settings.MF_SPOOL_RESERVE_G = 20.0
    low, full = make_machine("a-low"), make_machine("b-full")
    Machine.objects.filter(pk=low.pk).update(queue_limit=10)
    short = receive("1000", lot="short")
    load(short, low)
    load(receive("1000", lot="full"), full)
    Spool.objects.filter(pk=short.pk).update(remaining_g=Decimal("60.00"))
    job = with_filament(make_ready_job(user=user), 45.0)  # 60 - 20 reserve < 45
    assert route() == {job.pk: "b-full"}


def test_a_job_no_spool_can_finish_waits_instead_of_being_rejected(user) -> None:
    printer = make_machine("mk4-1")
    spool = receive("1000")
    load(spool, printer)
    Spool.objects.filter(pk=spool.pk).update(remaining_g=Decimal("30.00"))
    job = with_filament(make_ready_job(user=user), 45.0)
    assert route() == {}
    assert Job.objects.get(pk=job.pk).status == Job.Status.TOOLPATH_READY
    # A full spool scanned on the machine lets it go there.
    load(receive("1000", lot="new"), printer)
    assert route() == {job.pk: "mk4-1"}


def test_the_router_sees_a_spools_grams_less_those_its_queued_jobs_will_take(
    user, settings
) -> None:
    settings.MF_SPOOL_RESERVE_G = 25.0
    printer = make_machine("mk4-1")
    spool = receive("1000")
    load(spool, printer)
    Spool.objects.filter(pk=spool.pk).update(remaining_g=Decimal("500.00"))
    job = with_filament(make_ready_job(user=user), 300.0)
    assert route() == {job.pk: "mk4-1"}
    (facts,) = machines.routing_facts()
    assert (facts.spool_remaining_g, facts.spool_reserve_g) == (200.0, 25.0)
    assert facts.materials == frozenset({"pla"})
    # A second job of 300 g no longer fits: it waits.
    second = with_filament(make_ready_job(user=user), 300.0)
    assert route() == {}
    assert Job.objects.get(pk=second.pk).status == Job.Status.TOOLPATH_READY


# --- the station ----------------------------------------------------------------------------


@pytest.fixture
def station_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def test_scanning_a_spools_label_on_a_machines_page_loads_it_there(station_client, machine) -> None:
    spool = receive("750")
    page = station_client.get(f"/station/machines/{machine.slug}/").content.decode()
    assert "No spool loaded" in page and 'name="machine" value="mk4-1"' in page

    response = station_client.post(
        "/station/scan/",
        {"code": f"http://testserver/station/spools/{spool.pk}/", "machine": machine.slug},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == f"/station/machines/{machine.slug}/"
    assert Spool.objects.get(pk=spool.pk).loaded_on == machine
    page = response.content.decode()
    assert f"{spool.number} (PLA, lot L-24-113, 750 g) loaded on MK4-1." in page
    assert f'Loaded: <a href="/station/spools/{spool.pk}/"><strong>{spool.number}' in page


def test_a_spool_scanned_by_get_or_off_a_machines_page_opens_it_and_loads_nothing(
    station_client, machine
) -> None:
    spool = receive("750")
    response = station_client.get("/station/scan/", {"code": spool.number, "machine": "mk4-1"})
    assert response.url == f"/station/spools/{spool.pk}/"
    response = station_client.post("/station/scan/", {"code": spool.number.lower()})
    assert response.url == f"/station/spools/{spool.pk}/"
    assert Spool.objects.get(pk=spool.pk).loaded_on is None
    page = station_client.get(response.url).content.decode()
    assert '<option value="mk4-1"' in page and "Nothing booked from this spool yet." in page


def test_an_unknown_spool_code_says_so(station_client, machine) -> None:
    response = station_client.post(
        "/station/scan/", {"code": "S-999999", "machine": "mk4-1"}, follow=True
    )
    assert "No spool found for “S-999999”." in response.content.decode()


def test_the_spool_page_loads_and_takes_off(station_client, machine) -> None:
    spool = receive("750")
    station_client.post(f"/station/spools/{spool.pk}/load/", {"machine": "mk4-1"})
    assert Spool.objects.get(pk=spool.pk).loaded_on == machine
    station_client.post(f"/station/spools/{spool.pk}/unload/")
    assert Spool.objects.get(pk=spool.pk).loaded_on is None
    assert not machine.materials_loaded.exists()
    assert station_client.post(f"/station/spools/{spool.pk}/drop/").status_code == 404


def test_a_spools_label_is_62_mm_square_and_its_codes_scan_back_to_it(
    station_client, settings, tmp_path
) -> None:
    settings.SITE_URL = "http://127.0.0.1:8000"  # the request's address wins
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "factory.example.com"]
    spool = receive("1000")
    response = station_client.get(
        f"/station/spools/{spool.pk}/label.pdf", HTTP_HOST="factory.example.com", secure=True
    )
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    assert abs(float(reader.pages[0].mediabox.width) - 62 * 72 / 25.4) < 0.5
    text = reader.pages[0].extract_text()
    assert spool.number in text and "L-24-113" in text and "PLA" in text
    codes = scan(response.content, tmp_path)
    assert codes == {f"https://factory.example.com/station/spools/{spool.pk}/", spool.number}
    assert {spools.spool_id_from_code(code) for code in codes} == {spool.pk}


@pytest.mark.parametrize(
    ("code", "spool_id"),
    [
        ("S-000012", 12),
        ("s12", 12),
        (" https://f.example/station/spools/12/ ", 12),
        ("J-000012", None),
        ("12", None),  # a bare number is a job's
        ("S-" + "9" * 40, None),
    ],
)
def test_a_scanned_code_gives_the_spool_id(code: str, spool_id: int | None) -> None:
    assert spools.spool_id_from_code(code) == spool_id


def test_the_station_home_warns_of_low_stock_per_site(station_client, machine, settings) -> None:
    settings.MF_SPOOL_LOW_STOCK_G = 1000.0
    south = make_site("south")
    make_machine("voron", site=south, materials=[make_material("abs")])
    receive("1500")  # north: PLA 1500 g, enough
    receive("600", material="abs", site=south)
    receive("300", material="abs", site=south, lot="A-2")
    page = station_client.get("/station/").content.decode()
    assert 'id="low-stock-north"' not in page
    assert '<li data-low-stock="ABS">ABS: 900 g left in 2 spools</li>' in page
    listing = station_client.get("/station/sites/south/spools/").content.decode()
    assert listing.count("data-spool=") == 2


def test_a_reprinted_traveler_and_the_bag_label_name_the_spools_lot(
    station_client, user, operator, machine
) -> None:
    job = with_filament(
        make_station_job(user=user, machine=machine, traveler_pdf=b"%PDF-1.7 stored"), 12.0
    )
    spool = receive("1000")
    load(spool, machine)

    def traveler_text() -> str:
        response = station_client.get(f"/station/jobs/{job.pk}/traveler.pdf")
        text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
        return " ".join(text.split())  # the lot may wrap in its cell

    assert f"L-24-113 / {spool.number} (loaded on MK4-1)" in traveler_text()
    station.job_start(job_id=job.pk, operator=operator, now=NOW)
    assert f"L-24-113 / {spool.number}" in traveler_text()
    assert "(loaded on" not in traveler_text()
    label = station_client.get(f"/station/jobs/{job.pk}/label.pdf").content
    label_text = " ".join(PdfReader(io.BytesIO(label)).pages[0].extract_text().split())
    assert f"L-24-113 / {spool.number}" in label_text
    page = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert f'start 12 g from <a href="/station/spools/{spool.pk}/">{spool.number}</a>' in page
