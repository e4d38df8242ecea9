"""The dashboard counts days in its site's time zone (Site.timezone): the scenario's day
(tests/production/dashboard_scenario.py) seen from New York, five hours behind UTC in November.
Job E was placed at 02:00 UTC on 11-02 and left traveler ready (02:10) and routed (02:40)
before 21:45 on 11-01 in New York: on New York's 11-02 three jobs left each stage, not four."""

from datetime import timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from production.models import Job, Site
from tests.builders import make_machine, make_site, make_user
from tests.production.dashboard_scenario import DAY, build_floor

pytestmark = pytest.mark.django_db
S = Job.Status
ONE_DAY = f"from={DAY:%Y-%m-%d}&to={DAY:%Y-%m-%d}"


@pytest.fixture
def floor(user):
    return build_floor(user)


@pytest.fixture
def manager(organisation):
    return make_user("boss", organisation=organisation, role="manager")


def stages(api: APIClient, query: str) -> dict[str, dict[str, object]]:
    return {row["status"]: row for row in api.get(f"/api/v1/dashboard/stages/?{query}").json()}


def test_a_sites_days_are_counted_in_its_time_zone(floor, manager) -> None:
    api = APIClient()
    api.force_authenticate(manager)
    utc = stages(api, ONE_DAY)
    assert (utc[S.TOOLPATH_READY]["left"], utc[S.ROUTED]["left"]) == (4, 4)
    Site.objects.filter(pk=floor.m1.site_id).update(timezone="America/New_York")
    new_york = stages(api, f"{ONE_DAY}&site=north")
    assert (new_york[S.TOOLPATH_READY]["left"], new_york[S.ROUTED]["left"]) == (3, 3)
    period = api.get(f"/api/v1/dashboard/?{ONE_DAY}&site=north").json()["period"]
    assert period["zone"] == "America/New_York"
    assert period["start"] == "2026-11-02T05:00:00Z"  # midnight in New York
    # The other figures count the same days: A, B and E passed QC on New York's 11-02 too
    # (04:30 and 05:00 there); C, scrapped at 07:10 UTC on 11-03, is 02:10 there, still 11-03.
    two_days = f"from={DAY:%Y-%m-%d}&to={DAY + timedelta(days=1):%Y-%m-%d}&site=north"
    throughput = api.get(f"/api/v1/dashboard/throughput/?{two_days}").json()
    assert [(row["day"], row["jobs"]) for row in throughput] == [
        ("2026-11-02", 3),
        ("2026-11-03", 0),
    ]


@pytest.mark.usefixtures("_plain_static")
def test_sites_in_different_zones_are_counted_in_the_factorys(floor, manager, settings) -> None:
    Site.objects.filter(pk=floor.m1.site_id).update(timezone="America/New_York")
    make_machine("tokyo-1", site=make_site("tokyo"))
    Site.objects.filter(slug="tokyo").update(timezone="Asia/Tokyo")
    api = APIClient()
    api.force_authenticate(manager)
    assert api.get(f"/api/v1/dashboard/?{ONE_DAY}").json()["period"]["zone"] == settings.TIME_ZONE
    client = Client()
    client.force_login(manager)
    html = client.get(f"/station/dashboard/?{ONE_DAY}").content.decode()
    assert f'<span id="period-zone">days in {settings.TIME_ZONE}</span>' in html
    assert "the sites' time zone if they share one, else the factory's" in html
    html = client.get(f"/station/dashboard/?{ONE_DAY}&site=tokyo").content.decode()
    assert '<span id="period-zone">days in Asia/Tokyo</span>' in html


@pytest.fixture
def _plain_static(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
