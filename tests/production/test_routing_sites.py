"""Network routing against the database: the batch router (jobs_route_waiting) across two
sites with a transit table, the reason it records on the job, the transit table in the admin,
and the site and delivery site on the station page, traveler and label."""

import io
from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from production import machines, station
from production.models import Artifact, Job, Machine, Site, TransitTime
from production.pipeline.traveler import label_html, render_traveler, traveler_html
from tests.builders import login_with_mfa, make_machine, make_ready_job, make_site, make_user
from tests.production.test_station import attach, make_station_job

pytestmark = pytest.mark.django_db

Status = Job.Status
HOUR = 3600


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def network() -> dict[str, Site]:
    """Hamburg and Munich, a day apart, each with one MK4 (the same G-code runs on both)."""
    hamburg, munich = make_site("hamburg"), make_site("munich")
    TransitTime.objects.create(from_site=hamburg, to_site=munich, hours=24)
    make_machine("mk4-hh", site=hamburg)
    make_machine("mk4-muc", site=munich)
    return {"hamburg": hamburg, "munich": munich}


def deliver(job: Job, site: Site | None, *, due_in_days: int | None = None) -> Job:
    due = timezone.localdate() + timedelta(days=due_in_days) if due_in_days is not None else None
    type(job.line.order).objects.filter(pk=job.line.order_id).update(
        delivery_site=site, due_date=due
    )
    return job


def queue_work(user, machine_slug: str, hours: float) -> None:
    """Work already routed to the machine: its queue ends `hours` from now."""
    busy = make_ready_job(user=user, estimated_time_s=hours * HOUR)
    Job.objects.filter(pk=busy.pk).update(
        status=Status.ROUTED, machine=Machine.objects.get(slug=machine_slug)
    )


def route() -> dict[int, str]:
    return machines.jobs_route_waiting(now=timezone.now(), actor="test")


def test_the_delivery_site_chooses_the_site_and_the_reason_is_recorded(user, network):
    queue_work(user, "mk4-hh", 20)  # Hamburg is busy for 20 h; Munich is idle
    to_hamburg = deliver(make_ready_job(user=user), network["hamburg"])
    to_munich = deliver(make_ready_job(user=user), network["munich"])

    assert route() == {to_hamburg.pk: "mk4-hh", to_munich.pk: "mk4-muc"}

    to_hamburg.refresh_from_db()
    # Hamburg: 20 h + 10 min; Munich: 10 min + 1 day of transit.
    assert to_hamburg.route_reason == (
        "Hamburg: 4 h earlier than Munich (Munich incl. 1 day transit)"
    )
    event = to_hamburg.events.get(to_status=Status.ROUTED)
    assert event.message == f"routed to MK4-HH (batch plan): {to_hamburg.route_reason}"
    to_munich.refresh_from_db()
    assert to_munich.route_reason.startswith("Munich: 1 day ")
    assert route() == {}  # a second pass finds nothing to do


def test_a_queue_longer_than_the_transit_sends_the_job_to_the_other_site(user, network):
    queue_work(user, "mk4-hh", 30)
    job = deliver(make_ready_job(user=user), network["hamburg"], due_in_days=3)
    assert route() == {job.pk: "mk4-muc"}
    job.refresh_from_db()
    assert job.route_reason == "Munich: 6 h earlier than Hamburg incl. 1 day transit"


def test_a_job_whose_own_site_misses_the_due_date_goes_where_it_is_on_time(user, network):
    # Hamburg has four days of work; due the day after tomorrow: only Munich makes it.
    queue_work(user, "mk4-hh", 96)
    job = deliver(make_ready_job(user=user), network["hamburg"], due_in_days=2)
    assert route() == {job.pk: "mk4-muc"}
    job.refresh_from_db()
    assert job.route_reason.endswith("; Hamburg would miss the due date")


def test_a_gap_in_the_transit_table_rejects_the_job_as_not_deliverable(user, network):
    Machine.objects.filter(slug="mk4-hh").update(state=Machine.State.MAINTENANCE)
    berlin = make_site("berlin")  # no transit row to or from Berlin
    job = deliver(make_ready_job(user=user), berlin)
    assert route() == {}
    job.refresh_from_db()
    # Munich could make it but has no route to Berlin; Hamburg (in maintenance) neither.
    assert job.status == Status.REJECTED
    assert job.reason == "not deliverable from Hamburg, Munich: no transit route to Berlin"


def test_a_job_without_a_delivery_site_goes_where_it_finishes_first(user, network):
    queue_work(user, "mk4-hh", 5)
    job = make_ready_job(user=user)
    assert route() == {job.pk: "mk4-muc"}
    job.refresh_from_db()
    assert job.route_reason == "Munich: 5 h earlier than Hamburg"


def test_one_transit_pair_per_direction_and_never_to_itself(network):
    hamburg, munich = network["hamburg"], network["munich"]
    TransitTime.objects.create(from_site=munich, to_site=hamburg, hours=30)  # the other way
    assert machines.transit_table() == {
        ("hamburg", "munich"): 24 * HOUR,
        ("munich", "hamburg"): 30 * HOUR,
    }
    with pytest.raises(IntegrityError):
        TransitTime.objects.create(from_site=hamburg, to_site=hamburg, hours=1)


def test_the_admin_lists_and_edits_the_transit_table(network, client):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests")
    login_with_mfa(client, admin)
    page = client.get("/admin/production/transittime/")
    assert page.status_code == 200
    assert "Hamburg" in page.content.decode() and "24.0" in page.content.decode()
    row = TransitTime.objects.get()
    response = client.post(
        f"/admin/production/transittime/{row.pk}/change/",
        {"from_site": row.from_site_id, "to_site": row.to_site_id, "hours": "-1"},
    )
    assert response.status_code == 200 and "greater than or equal to 0" in response.content.decode()
    response = client.post(
        f"/admin/production/transittime/{row.pk}/change/",
        {"from_site": row.from_site_id, "to_site": row.to_site_id, "hours": "36"},
    )
    assert response.status_code == 302
    assert TransitTime.objects.get().hours == 36


# --- site and delivery site on the station page, traveler and label ---------------------------


@pytest.fixture
def routed_job(user, network) -> Job:
    """A job delivered to Hamburg, at Munich's machine with the files its traveler needs
    (routing it is the tests above)."""
    job = make_station_job(user=user, machine=Machine.objects.get(slug="mk4-muc"))
    deliver(job, network["hamburg"])
    Job.objects.filter(pk=job.pk).update(route_reason="Munich: 6 h earlier than Hamburg")
    return Job.objects.get(pk=job.pk)


@pytest.fixture
def station_client(organisation) -> Client:
    client = Client()
    client.force_login(make_user("op", organisation=organisation, role="operator"))
    return client


def test_the_station_job_page_shows_site_delivery_site_and_why(station_client, routed_job):
    page = station_client.get(f"/station/jobs/{routed_job.pk}/").content.decode()
    assert "Deliver to: <strong>Hamburg</strong>" in page
    assert '<span id="site">Munich</span>' in page
    assert "Routed: Munich: 6 h earlier than Hamburg" in page


def test_the_label_names_where_it_is_made_and_where_it_goes(station_client, routed_job):
    job = Job.objects.select_related(
        "line__revision__family",
        "line__material",
        "line__order__organisation",
        "line__order__team",
        "line__order__delivery_site",
        "machine__site",
    ).get(pk=routed_job.pk)
    label = station.job_label(job)
    assert (label.site, label.delivery_site) == ("Munich", "Hamburg")
    html = label_html(label)
    assert '<td class="strong delivery-site">Hamburg</td>' in html
    assert '<td class="site">Munich</td>' in html
    response = station_client.get(f"/station/jobs/{job.pk}/label.pdf")
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "Hamburg" in text and "Munich" in text


def test_the_traveler_names_where_it_is_made_and_where_it_goes(station_client, routed_job):
    traveler = station.job_traveler(routed_job, now=timezone.now())
    assert (traveler.site, traveler.delivery_site) == ("Munich", "Hamburg")
    html = traveler_html(traveler)
    assert '<td class="strong delivery-site">Hamburg</td>' in html
    assert '<td class="site">Munich</td>' in html


def test_a_stored_traveler_naming_the_planned_site_is_printed_again_for_the_routed_one(
    station_client, user, network
):
    munich = Machine.objects.get(slug="mk4-muc")
    planned_hamburg = make_station_job(user=user, machine=munich)
    attach(planned_hamburg, Artifact.Kind.TRAVELER, b"%PDF-1.7 hamburg", {"site": "Hamburg"})
    still_right = make_station_job(user=user, machine=munich)
    stored = render_traveler(station.job_traveler(still_right, now=timezone.now()))
    attach(still_right, Artifact.Kind.TRAVELER, stored, {"site": "Munich"})

    response = station_client.get(f"/station/jobs/{still_right.pk}/traveler.pdf")
    assert b"".join(response.streaming_content) == stored

    response = station_client.get(f"/station/jobs/{planned_hamburg.pk}/traveler.pdf")
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert planned_hamburg.number in text and "Munich" in text

    batch = station.travelers_batch([planned_hamburg, still_right], now=timezone.now())
    assert batch.rendered == (planned_hamburg.number,)


def test_the_demo_network_routes_each_customer_to_its_own_site_with_reasons():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("seed_demo", "--no-order", verbosity=0)
    users = get_user_model().objects
    for_munich = make_ready_job(user=users.get(username="requester"))  # Demo Maintenance Co.
    for_hamburg = make_ready_job(user=users.get(username="harbour"))  # Harbour Logistics

    routed = route()

    assert Machine.objects.get(slug=routed[for_munich.pk]).site.slug == "south"
    assert Machine.objects.get(slug=routed[for_hamburg.pk]).site.slug == "north"
    for_munich.refresh_from_db()
    assert for_munich.route_reason == (
        "Plant South (Munich): 1 day earlier than Plant North (Hamburg) "
        "(Plant North (Hamburg) incl. 1 day transit)"
    )
