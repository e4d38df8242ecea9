"""The manager dashboard in a real headless Chromium: every chart is drawn by the vendored
Chart.js from the page's figures, without a script error or a CSP violation, and the scrap
chart follows its selector."""

import pytest

from tests.builders import make_organisation, make_user
from tests.production.dashboard_scenario import build_floor

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
CHARTS = ("stages", "losses", "oee", "oee-daily", "scrap", "throughput")


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_draws_its_charts(live_server, chromium_page, tmp_path) -> None:
    organisation = make_organisation("acme")
    build_floor(make_user("req", organisation=organisation))
    make_user("boss", organisation=organisation, role="manager")
    page = chromium_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/station/dashboard/?from=2026-11-02&to=2026-11-03")
    for chart in CHARTS:
        page.wait_for_selector(f"#chart-{chart}[data-drawn=yes]")
    assert "awaiting QC" in page.inner_text("#bottleneck")
    # Chart.js knows each chart, with the page's figures in it.
    drawn = page.evaluate(
        "() => Object.fromEntries(['chart-oee', 'chart-throughput'].map((id) =>"
        " [id, Chart.getChart(document.getElementById(id)).data.datasets.map((d) => d.label)]))"
    )
    assert drawn["chart-oee"][:4] == ["availability", "performance", "quality", "OEE"]
    assert drawn["chart-throughput"] == ["jobs through QC", "parts (copies) passed"]
    machines = page.evaluate("() => Chart.getChart('chart-losses').data.labels")
    assert machines == ["M1", "M2", "M3"]
    page.select_option("#scrap-by", "machine")
    lines = page.evaluate("() => Chart.getChart('chart-scrap').data.datasets.map((d) => d.label)")
    assert set(lines) == {"M1", "M2", "M3"}
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert not errors
    assert not page.csp_violations
