"""The floor view in a real headless Chromium: an operator logs in, lands on it, and watches a
print's progress and temperatures change on its tile as the machine reports them (telemetry,
through production.machines.telemetry_record), without reloading the page. Then a waiting job
is moved up its queue with one click."""

import pytest
from django.utils import timezone

from production import machines
from production.models import Job, Machine
from tests.builders import make_machine, make_organisation, make_user
from tests.production.test_station import make_station_job

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.mark.django_db(transaction=True)
def test_the_floor_updates_a_tile_as_the_machine_reports(live_server, chromium_page) -> None:
    organisation = make_organisation("acme")
    requester = make_user("req", organisation=organisation)
    make_user("op", organisation=organisation, role="operator")
    machine = make_machine("mk4-1")
    Machine.objects.filter(pk=machine.pk).update(connector="octoprint")
    job = make_station_job(user=requester, machine=machine)
    # Waiting at the printer, not sent yet: it gets one job at a time.
    waiting = [make_station_job(user=requester, machine=machine, status="routed") for _ in range(2)]

    def report(progress: float, nozzle: float) -> None:
        machines.telemetry_record(
            machine_id=machine.pk,
            report=machines.TelemetryReport(
                state="busy",
                progress=progress,
                temperatures={"nozzle": nozzle, "bed": 60.0},
                job_id=job.pk,
                job_state="printing",
            ),
            now=timezone.now(),
            actor="octoprint poller",
        )

    report(12, 215)  # the printer started the job
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    page = chromium_page
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "op")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/station/floor/")  # operators land on the floor
    tile = "li[data-machine=mk4-1]"
    page.wait_for_selector(f"{tile} [data-progress='12']")
    assert page.locator(f"{tile} [data-current='{job.number}']").is_visible()
    assert "nozzle 215 °C" in page.inner_text(tile)
    # A marker on the document: a reload would lose it.
    page.evaluate("window.floorNotReloaded = true")

    report(57, 221)
    page.wait_for_selector(f"{tile} [data-progress='57']", timeout=20_000)
    assert "nozzle 221 °C" in page.inner_text(tile)
    assert page.evaluate("window.floorNotReloaded") is True
    assert page.url == f"{live_server.url}/station/floor/"

    # The last waiting job one place up: it is then listed first.
    second = waiting[1]
    page.click(f"li[data-job='{second.number}'] button[name=up]")
    page.wait_for_selector(f"text={second.number} is now #1 in its queue.")
    listed = page.locator(f"{tile} .floor-queue li[data-job]").evaluate_all(
        "items => items.map(item => item.dataset.job)"
    )
    assert listed == [second.number, waiting[0].number]
    assert Job.objects.get(pk=second.pk).events.filter(step="reorder", actor="op").exists()
