"""An operator at the station tablet, in a real headless Chromium: scans a job, starts it,
pauses and resumes it, finishes it, measures it and passes QC. The job is made directly in
the database: no worker."""

import pytest

from production.models import Job
from tests.builders import make_machine, make_organisation, make_user
from tests.production.test_station import make_station_job

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.mark.django_db(transaction=True)
def test_an_operator_scans_starts_finishes_and_passes_a_job(live_server, chromium_page) -> None:
    organisation = make_organisation("acme")
    requester = make_user("req", organisation=organisation)
    make_user("op", organisation=organisation, role="operator")
    job = make_station_job(user=requester, machine=make_machine("mk4-1"))
    page = chromium_page
    page.on("pageerror", lambda error: print(f"browser error: {error}"))

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "op")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/station/")
    page.click("a[data-machine=mk4-1]")
    page.wait_for_url(f"{live_server.url}/station/machines/mk4-1/")
    assert page.locator(f"tr[data-job={job.number}]").is_visible()

    # A USB scanner types the code and presses Enter.
    page.fill("#scan", job.number)
    page.press("#scan", "Enter")
    page.wait_for_url(f"{live_server.url}/station/jobs/{job.pk}/")
    assert page.get_attribute("#job-status", "data-status") == "dispatched"

    page.click("#start")
    page.wait_for_selector("#job-status[data-status=running]")
    page.click("#pause")
    page.wait_for_selector("#job-status[data-status=paused]")
    assert not page.locator("#finish").count()  # a paused job is resumed before finishing
    page.click("#continue")
    page.wait_for_selector("#job-status[data-status=running]")
    page.click("#finish")
    page.wait_for_selector("#job-status[data-status=awaiting_qc]")

    # The checklist, in the traveler's order: Height, Hole diameter, Width.
    for field, value in (("#m0", "10.1"), ("#m1", "4.9"), ("#m2", "20")):
        page.fill(field, value)
    page.click("#measure")
    page.wait_for_selector("text=Measurements saved.")
    page.click("#qc-pass")
    page.wait_for_selector("#job-status[data-status=done]")
    assert "QC passed." in page.inner_text("main")

    job.refresh_from_db()
    assert (job.status, job.qc_passed) == (Job.Status.DONE, 1)
    assert job.measurements == {"Height": 10.1, "Hole diameter": 4.9, "Width": 20.0}
    assert list(job.events.filter(actor="op").values_list("step", flat=True)) == [
        "start",
        "pause",
        "continue",
        "finish",
        "measure",
        "qc",
    ]
