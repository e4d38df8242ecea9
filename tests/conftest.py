import pytest
from rest_framework.test import APIClient

from tests.builders import make_organisation, make_user


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Artifacts written by a test land in its own temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
