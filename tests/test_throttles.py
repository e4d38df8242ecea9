"""API writes are throttled per user, per anonymous address and per machine; reads never."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from production import machines
from tests.builders import make_machine, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "write_user": "3/min",
            "write_anon": "2/min",
            "telemetry": "4/min",
        },
    }
    cache.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def quote(client: APIClient) -> int:
    """A write (an empty quote request: 400, but a write all the same)."""
    return client.post("/api/v1/quotes/", {}, format="json").status_code


def test_a_users_writes_beyond_the_rate_are_429_with_retry_after(api):
    assert [quote(api) for _ in range(3)] == [400, 400, 400]
    response = api.post("/api/v1/quotes/", {}, format="json")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["message"]
    # Every write method is refused, on any endpoint the user may write to.
    assert api.delete("/api/v1/orders/1/").status_code == 429
    assert api.patch("/api/v1/orders/1/", {}, format="json").status_code == 429
    assert api.post("/api/v1/orders/1/cancel/", {}, format="json").status_code == 429


def test_reads_are_not_throttled(api):
    for _ in range(3):
        quote(api)
    assert quote(api) == 429
    assert all(api.get("/api/v1/orders/").status_code == 200 for _ in range(10))


def test_another_user_is_not_affected(api, organisation):
    for _ in range(4):
        quote(api)
    assert quote(api) == 429
    other = client_for(make_user("other", organisation=organisation))
    assert quote(other) == 400


def test_the_rate_is_a_setting(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "write_user": "5/min",
        },
    }
    assert [quote(api) for _ in range(6)] == [400] * 5 + [429]


def test_anonymous_writes_are_throttled_per_address():
    make_machine("mk4-1")
    one = APIClient(REMOTE_ADDR="198.51.100.1")
    url = "/api/v1/machines/mk4-1/telemetry/"
    guesses = [
        one.post(url, {}, format="json", HTTP_AUTHORIZATION=f"Machine guess-{n}").status_code
        for n in range(3)
    ]
    assert guesses == [401, 401, 429]
    # A forged X-Forwarded-For is not a new address; another real address is.
    forged = one.post(
        url, {}, format="json", HTTP_AUTHORIZATION="Machine g", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert forged.status_code == 429
    two = APIClient(REMOTE_ADDR="198.51.100.2")
    assert two.post(url, {}, format="json", HTTP_AUTHORIZATION="Machine g").status_code == 401


def test_telemetry_has_its_own_rate_per_machine():
    """Machines share an address (one farm router) but not their buckets."""
    tokens = {}
    for slug in ("mk4-1", "mk4-2"):
        tokens[slug] = machines.machine_token_issue(machine=make_machine(slug))

    def report(slug: str) -> int:
        client = APIClient(REMOTE_ADDR="198.51.100.1")
        client.credentials(HTTP_AUTHORIZATION=f"Machine {tokens[slug]}")
        url = f"/api/v1/machines/{slug}/telemetry/"
        return client.post(url, {"temperatures": {"bed": 60.0}}, format="json").status_code

    # Above the anonymous rate (2/min) from one address: the telemetry rate (4/min) applies.
    assert [report("mk4-1") for _ in range(5)] == [200] * 4 + [429]
    assert [report("mk4-2") for _ in range(4)] == [200] * 4
