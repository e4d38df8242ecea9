"""The station pages: who gets in, scanning, actions through forms, batch printing."""

import io
from unittest.mock import patch

import pytest
from django.test import Client
from pypdf import PdfReader
from rest_framework.test import APIClient
from weasyprint import HTML

from production import station
from production.models import Artifact, Job, Machine
from production.pipeline.traveler import render_traveler
from tests.builders import login_with_mfa, make_machine, make_user
from tests.production.pipeline.test_traveler import scan
from tests.production.test_station import GOOD, NOW, attach, make_station_job


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    """Pages link site.css; tests run without collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def machine() -> Machine:
    return make_machine("mk4-1")


@pytest.fixture
def operator(organisation):
    return make_user("op", organisation=organisation, role="operator")


@pytest.fixture
def station_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def post(client: Client, job: Job, action: str, **fields: object):
    return client.post(f"/station/jobs/{job.pk}/{action}/", fields)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/station/",
        "/station/machines/mk4-1/",
        "/station/machines/mk4-1/travelers.pdf",
        "/station/machines/mk4-1/labels.pdf",
        "/station/scan/?code=1",
        "/station/jobs/{job}/",
        "/station/jobs/{job}/traveler.pdf",
        "/station/jobs/{job}/label.pdf",
    ],
)
def test_a_non_operator_gets_404(client, user, machine, url) -> None:
    job = make_station_job(user=user, machine=machine)
    client.force_login(user)  # a requester
    assert client.get(url.format(job=job.pk)).status_code == 404
    assert post(client, job, "start").status_code == 404
    job.refresh_from_db()
    assert job.status == Job.Status.DISPATCHED


@pytest.mark.django_db
def test_staff_get_in(client, user, machine) -> None:
    user.is_staff = True
    user.save()
    login_with_mfa(client, user)  # staff: past the second factor
    assert client.get("/station/").status_code == 200


@pytest.mark.django_db
def test_scanning_a_code_opens_the_job(station_client, user, machine) -> None:
    job = make_station_job(user=user, machine=machine)
    for code in (job.number, str(job.pk), f"http://testserver/station/jobs/{job.pk}/"):
        response = station_client.get("/station/scan/", {"code": code})
        assert response.status_code == 302 and response.url == f"/station/jobs/{job.pk}/"
    response = station_client.get("/station/scan/", {"code": "J-999999", "machine": "mk4-1"})
    assert response.url == "/station/machines/mk4-1/"
    assert "No job found for “J-999999”" in station_client.get(response.url).content.decode()


@pytest.mark.django_db
def test_the_machine_page_lists_now_next_and_done(station_client, user, machine) -> None:
    running = make_station_job(user=user, machine=machine, status=Job.Status.RUNNING)
    waiting = make_station_job(user=user, machine=machine)
    page = station_client.get("/station/machines/mk4-1/").content.decode()
    assert page.index(running.number) < page.index("<h2>Next</h2>") < page.index(waiting.number)
    assert "Print all travelers (2)" in page


@pytest.mark.django_db
def test_the_job_page_shows_the_travelers_instructions_and_checklist(
    station_client, user, machine
) -> None:
    job = make_station_job(user=user, machine=machine, status=Job.Status.AWAITING_QC)
    page = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert "Remove the part when the bed has cooled" in page
    assert "Hole diameter" in page and "± 0.2" in page
    assert 'id="qc-pass"' in page and 'id="start"' not in page


@pytest.mark.django_db
def test_an_operator_runs_a_job_through_the_forms(station_client, user, machine) -> None:
    job = make_station_job(user=user, machine=machine)
    assert post(station_client, job, "start").status_code == 302
    assert post(station_client, job, "finish").status_code == 302
    post(station_client, job, "measure", m0="10.05", m1="5", m2="20")
    response = post(station_client, job, "pass")
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, station_client.get(response.url).content.decode()


@pytest.mark.django_db
def test_an_out_of_tolerance_value_is_shown_and_qc_pass_refused(
    station_client, user, machine
) -> None:
    job = make_station_job(user=user, machine=machine, status=Job.Status.AWAITING_QC)
    labels = ["Height", "Hole diameter", "Width"]  # the checklist's order
    values = {**GOOD, "Width": 21.0}
    post(
        station_client, job, "measure", **{f"m{i}": values[label] for i, label in enumerate(labels)}
    )
    response = post(station_client, job, "pass")
    page = station_client.get(response.url).content.decode()
    assert "Width is 21 mm, outside 20 mm ± 0.2: QC failed" in page
    job.refresh_from_db()
    assert job.status == Job.Status.AWAITING_QC and job.measurements["Width"] == 21.0


@pytest.mark.django_db
def test_a_paused_job_offers_continue_and_scrap_but_not_finish(
    station_client, user, machine
) -> None:
    job = make_station_job(user=user, machine=machine)
    post(station_client, job, "start")
    post(station_client, job, "pause")
    job.refresh_from_db()
    assert job.status == Job.Status.PAUSED
    page = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert 'data-status="paused"' in page
    assert 'id="continue"' in page and 'id="scrap"' in page
    assert 'id="finish"' not in page and 'id="pause"' not in page and 'id="qc-pass"' not in page
    machine_page = station_client.get("/station/machines/mk4-1/").content.decode()
    assert machine_page.index(job.number) < machine_page.index("<h2>Next</h2>")
    response = post(station_client, job, "finish")
    assert (
        "is paused; resume it before finishing" in station_client.get(response.url).content.decode()
    )
    post(station_client, job, "continue")
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    assert 'id="finish"' in station_client.get(f"/station/jobs/{job.pk}/").content.decode()


@pytest.mark.django_db
def test_scrapping_a_paused_job_through_the_form_remakes_it(
    station_client, user, machine, django_capture_on_commit_callbacks
) -> None:
    job = make_station_job(user=user, machine=machine, quantity=2)
    post(station_client, job, "start")
    post(station_client, job, "pause")
    with patch("production.services.job_enqueue"):
        with django_capture_on_commit_callbacks(execute=True):
            post(station_client, job, "scrap", reason="layer_shift", note="at 12 mm")
    job.refresh_from_db()
    assert (job.status, job.reason) == (Job.Status.SCRAPPED, "scrapped 2: Layer shift: at 12 mm")
    assert Job.objects.get(replaces=job).quantity == 2
    assert Machine.objects.get(pk=machine.pk).state == Machine.State.IDLE


@pytest.mark.django_db
def test_finishing_before_start_shows_the_refusal(station_client, user, machine) -> None:
    job = make_station_job(user=user, machine=machine)
    response = post(station_client, job, "finish")
    assert (
        "has not been started; start it before finishing"
        in station_client.get(response.url).content.decode()
    )


@pytest.mark.django_db
def test_scrap_sent_twice_creates_exactly_one_replacement(
    station_client, user, machine, django_capture_on_commit_callbacks
) -> None:
    job = make_station_job(user=user, machine=machine, quantity=3, status=Job.Status.AWAITING_QC)
    with patch("production.services.job_enqueue") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            first = post(station_client, job, "scrap", scrapped="3", reason="warped", note="corner")
            second = post(
                station_client, job, "scrap", scrapped="3", reason="warped", note="corner"
            )
    assert first.status_code == second.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.SCRAPPED
    assert job.reason == "scrapped 3: Warped or lifted from the bed: corner"
    replacement = Job.objects.get(replaces=job)
    assert (replacement.quantity, replacement.status) == (3, Job.Status.QUEUED)
    enqueue.assert_called_once_with(job_id=replacement.pk)
    assert "nothing more can be done" in station_client.get(second.url).content.decode()


@pytest.mark.cad
@pytest.mark.django_db
def test_the_batch_print_is_one_pdf_with_a_page_per_job(station_client, user, machine) -> None:
    jobs = [make_station_job(user=user, machine=machine) for _ in range(3)]
    make_station_job(user=user, machine=make_machine("other"))  # not this machine's queue
    response = station_client.get("/station/machines/mk4-1/travelers.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == len(jobs)
    text = "".join(page.extract_text() for page in reader.pages)
    assert all(job.number in text for job in jobs)


@pytest.mark.cad
@pytest.mark.django_db
def test_a_batch_of_20_merges_the_stored_travelers_into_one_pdf(
    station_client, user, machine
) -> None:
    jobs = [make_station_job(user=user, machine=machine) for _ in range(20)]
    for job in jobs:  # what the pipeline's traveler step stored (one page naming the job)
        attach(job, Artifact.Kind.TRAVELER, HTML(string=f"<h1>{job.number}</h1>").write_pdf(), {})
    page = station_client.get("/station/machines/mk4-1/").content.decode()
    assert "Print all travelers (20)" in page and 'id="to-render"' not in page

    with patch("production.station.render_traveler", side_effect=AssertionError("rendered")):
        response = station_client.get("/station/machines/mk4-1/travelers.pdf")

    assert response.status_code == 200 and response["X-Travelers-Rendered"] == "none"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) >= 20
    text = "".join(page.extract_text() for page in reader.pages)
    assert all(job.number in text for job in jobs)


@pytest.mark.cad
@pytest.mark.django_db
def test_a_batch_renders_only_the_travelers_not_stored_and_says_so(
    station_client, user, machine
) -> None:
    stored = make_station_job(user=user, machine=machine)
    attach(
        stored, Artifact.Kind.TRAVELER, render_traveler(station.job_traveler(stored, now=NOW)), {}
    )
    missing = make_station_job(user=user, machine=machine)
    page = station_client.get("/station/machines/mk4-1/").content.decode()
    assert "1 of them has no stored traveler yet" in page

    with patch("production.station.render_traveler", wraps=render_traveler) as render:
        response = station_client.get("/station/machines/mk4-1/travelers.pdf")

    assert render.call_count == 1
    assert response["X-Travelers-Rendered"] == missing.number
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert text.index(stored.number) < text.index(missing.number)


@pytest.mark.django_db
def test_a_stored_traveler_that_does_not_match_its_checksum_is_rendered_again(
    station_client, user, machine
) -> None:
    job = make_station_job(user=user, machine=machine, traveler_pdf=b"%PDF-1.7 stored")
    Artifact.objects.filter(kind=Artifact.Kind.TRAVELER).update(sha256="0" * 64)
    response = station_client.get("/station/machines/mk4-1/travelers.pdf")
    assert response["X-Travelers-Rendered"] == job.number
    assert job.number in PdfReader(io.BytesIO(response.content)).pages[0].extract_text()


@pytest.mark.django_db
def test_a_jobs_bag_label_is_62_mm_wide_and_its_qr_code_opens_the_job(
    station_client, user, machine, settings, tmp_path
) -> None:
    # The QR code carries the address the label was printed from, not the setting's.
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "factory.example.com"]
    job = make_station_job(user=user, machine=machine, quantity=3)
    page = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert f'href="/station/jobs/{job.pk}/label.pdf"' in page

    response = station_client.get(
        f"/station/jobs/{job.pk}/label.pdf", HTTP_HOST="factory.example.com", secure=True
    )

    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    assert abs(float(reader.pages[0].mediabox.width) - 62 * 72 / 25.4) < 0.5
    text = reader.pages[0].extract_text()
    assert job.number in text and job.line.revision.family.name in text
    assert scan(response.content, tmp_path) == {
        f"https://factory.example.com/station/jobs/{job.pk}/",
        job.number,
    }


@pytest.mark.django_db
def test_the_labels_of_a_queue_print_a_label_per_job(station_client, user, machine) -> None:
    jobs = [make_station_job(user=user, machine=machine) for _ in range(3)]
    assert (
        "Print all bag labels (3)"
        in station_client.get("/station/machines/mk4-1/").content.decode()
    )
    response = station_client.get("/station/machines/mk4-1/labels.pdf")
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 3
    for job, page in zip(jobs, reader.pages, strict=True):
        assert job.number in page.extract_text()


@pytest.mark.django_db
def test_an_empty_queue_has_nothing_to_print(station_client, machine) -> None:
    assert station_client.get("/station/machines/mk4-1/travelers.pdf").status_code == 404
    assert station_client.get("/station/machines/mk4-1/labels.pdf").status_code == 404


@pytest.mark.django_db
def test_one_traveler_is_served_from_its_artifact(station_client, user, machine) -> None:
    job = make_station_job(user=user, machine=machine, traveler_pdf=b"%PDF-1.7 stored")
    response = station_client.get(f"/station/jobs/{job.pk}/traveler.pdf")
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == b"%PDF-1.7 stored"


@pytest.mark.django_db
def test_a_job_routed_before_its_traveler_is_rendered_says_so_and_prints_one_now(
    station_client, user, machine
) -> None:
    # Routed as soon as its G-code is checked; the worker renders its traveler after (#19).
    job = make_station_job(user=user, machine=machine, status=Job.Status.ROUTED)
    page = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert 'id="traveler-preparing"' in page and "Traveler being prepared" in page
    assert "Start" in page  # startable all the same (docs/shop-floor.md)
    response = station_client.get(f"/station/jobs/{job.pk}/traveler.pdf")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


@pytest.mark.django_db
def test_a_job_without_g_code_has_no_traveler_to_print(station_client, user, machine) -> None:
    job = make_station_job(user=user, machine=machine, status=Job.Status.ROUTED)
    Job.objects.filter(pk=job.pk).update(toolpath_meta=None)
    page = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert "traveler-preparing" not in page
    assert station_client.get(f"/station/jobs/{job.pk}/traveler.pdf").status_code == 404


@pytest.mark.django_db
def test_the_api_says_a_traveler_not_rendered_yet_is_being_prepared(user, machine) -> None:
    job = make_station_job(user=user, machine=machine, status=Job.Status.ROUTED)
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/traveler/")
    assert response.status_code == 404
    assert "being prepared" in response.json()["message"]
    other = client.get(f"/api/v1/jobs/{job.pk}/artifacts/step/")
    assert other.status_code == 404 and "being prepared" not in other.json()["message"]


@pytest.mark.django_db
def test_the_machine_page_reads_a_fixed_number_of_queries(
    station_client, user, machine, django_assert_max_num_queries
) -> None:
    for status in (Job.Status.RUNNING, Job.Status.DISPATCHED, Job.Status.AWAITING_QC):
        make_station_job(user=user, machine=machine, status=status)
    make_station_job(user=user, machine=machine)
    # session, user, second-factor check, operator check, machine, and one read per list (its
    # plates too, #13): not one per job.
    with django_assert_max_num_queries(11):
        assert station_client.get("/station/machines/mk4-1/").status_code == 200
