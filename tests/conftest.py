import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.builders import make_organisation, make_user


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Artifacts written by a test land in its own temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _orders_read_the_queue_afresh(settings):
    """Each order reads the machines and the live queue itself: a test changes them between
    two orders. tests/orders/test_quote_snapshot.py shares a reading (MF_QUOTE_SNAPSHOT_S)."""
    settings.MF_QUOTE_SNAPSHOT_S = 0


@pytest.fixture(autouse=True)
def _throttles_out_of_the_way(settings):
    """No test is throttled by another's writes, nor by its own unless it lowers the rates.

    The throttles' counters live in the cache, which outlives a test (user ids are reused).
    tests/test_throttles.py sets low rates itself.
    """
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "write_user": "100000/min",
            "write_anon": "100000/min",
            "telemetry": "100000/min",
        },
    }
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def organisation():
    return make_organisation("acme")


@pytest.fixture
def user(organisation):
    return make_user("req", organisation=organisation)


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The fault tests' recovery times (tests/integration/test_faults.py), also when run
    without -s and under pytest-xdist (user_properties travel with each test's report)."""
    lines = [
        f"{report.nodeid.split('::')[-1]}: {value}"
        for report in terminalreporter.stats.get("passed", [])
        + terminalreporter.stats.get("failed", [])
        if report.when == "call"
        for name, value in report.user_properties
        if name == "fault recovery"
    ]
    if lines:
        terminalreporter.section("fault recovery times")
        for line in lines:
            terminalreporter.write_line(line)
