"""Failed logins lock a user name + address out (django-axes) on /login/ and /admin/login/."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.builders import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests.builders.make_user's


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render {% static %} without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff(organisation):
    user = make_user("boss", organisation=organisation)
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


PAGES = [("/login/", "req"), ("/admin/login/", "boss")]


@pytest.mark.parametrize(("url", "username"), PAGES)
def test_the_right_password_after_100_wrong_ones_does_not_log_in(
    client, user, staff, url, username
):
    for attempt in range(100):
        response = client.post(url, {"username": username, "password": f"wrong-{attempt}"})
        assert response.status_code in (200, 429)  # the form again, then the lockout page
        assert not logged_in(client)
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert not logged_in(client)
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "Try again in 15 minutes" in page
    assert "Content-Security-Policy" in response  # our page, under the site's policy


def test_the_lockout_starts_at_the_limit_and_says_when_to_retry(client, user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=2)
    for _ in range(2):
        assert client.post("/login/", {"username": "req", "password": "x"}).status_code == 200
    third = client.post("/login/", {"username": "req", "password": "x"})
    assert third.status_code == 429
    assert third["Retry-After"] == "120"
    assert "Try again in 2 minutes" in third.content.decode()


def test_the_lockout_is_per_user_name_and_address(client, user, organisation):
    make_user("other", organisation=organisation)
    for _ in range(5):
        client.post("/login/", {"username": "req", "password": "wrong"})
    # Another user from the same address, and the same user from another address, get in.
    assert client.post("/login/", {"username": "other", "password": PASSWORD}).status_code == 302
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    response = elsewhere.post("/login/", {"username": "req", "password": PASSWORD})
    assert response.status_code == 302 and logged_in(elsewhere)
    # A forged X-Forwarded-For does not make a locked-out client a new one.
    forged = client.post(
        "/login/",
        {"username": "req", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert forged.status_code == 429


@pytest.mark.parametrize(("url", "username"), PAGES)
def test_after_the_cool_off_the_right_password_works(client, user, staff, url, username):
    for _ in range(10):
        client.post(url, {"username": username, "password": "wrong"})
    assert client.post(url, {"username": username, "password": PASSWORD}).status_code == 429
    # Sixteen minutes pass: the failures are older than the 15-minute cool-off.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    assert logged_in(client)
    assert (
        int(client.session["_auth_user_id"]) == get_user_model().objects.get(username=username).pk
    )


def test_axes_reset_lifts_the_lockout(client, user):
    for _ in range(5):
        client.post("/login/", {"username": "req", "password": "wrong"})
    assert client.post("/login/", {"username": "req", "password": PASSWORD}).status_code == 429
    call_command("axes_reset", stdout=None)
    assert client.post("/login/", {"username": "req", "password": PASSWORD}).status_code == 302
    assert logged_in(client)


def test_the_api_token_and_session_still_authenticate(client, user):
    from microfactory.accounts.services import api_token_create

    _, token = api_token_create(user=user, name="CMMS", expires_in=None)
    response = Client().get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert client.post("/login/", {"username": "req", "password": PASSWORD}).status_code == 302
    assert client.get("/api/v1/orders/").status_code == 200
