import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.builders import make_organisation, make_user


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Artifacts written by a test land in its own temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
