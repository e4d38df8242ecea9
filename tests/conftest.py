import os
from collections.abc import Iterator
from contextlib import ExitStack
from unittest.mock import MagicMock, patch

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from tests.builders import make_organisation, make_user

# What opens the test database: pytest-django blocks it for a test that asks for none of these
# (nor for the django_db marker).
DATABASE_FIXTURES = {"db", "transactional_db", "live_server"}


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that opens no database gives the same answer on SQLite and on PostgreSQL: it is
    marked `db_independent`, and runs in the SQLite pass only (Makefile `test`)."""
    if item.get_closest_marker("django_db") is None and not (
        DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
    ):
        item.add_marker(pytest.mark.db_independent)


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashes() -> Iterator[None]:
    """Passwords are hashed with MD5 in the tests: PBKDF2's million rounds cost ~0.85 s of CPU a
    user, and most tests make users. Logging in still checks the password (in this process, the
    live server's thread included); what PBKDF2 itself does is Django's to test."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


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


# The Celery tasks that orders, catalog pages and the job lifecycle send on commit.
SENT_ON_COMMIT = (
    "production.tasks.advance_job",
    "production.tasks.dispatch_machine",
    "production.tasks.route_waiting_jobs",
    "production.tasks.check_preview_dfm",
    "catalog.tasks.build_preview",
    "catalog.tasks.fit_estimator",
    "orders.tasks.deliver_webhook",
    "orders.tasks.email_requester",
)


@pytest.fixture
def no_broker() -> Iterator[dict[str, MagicMock]]:
    """No message leaves (unit tests run without Redis; the integration tests send them for
    real): each task of SENT_ON_COMMIT is recorded instead, its mocked apply_async by name."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(patch(f"{name}.apply_async")) for name in SENT_ON_COMMIT}


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The fault tests' recovery times (tests/integration/test_faults.py), also when run
    without -s and under pytest-xdist (user_properties travel with each test's report).

    With MF_FAILED_TESTS naming a file, each failed or erroring test is appended to it as a line,
    labelled with MF_FAILED_TESTS_PASS: `make test` repeats them at the very end, where a reader
    of only the tail of a long run's output (CI) still sees what failed in every pass."""
    failed_file = os.environ.get("MF_FAILED_TESTS")
    if failed_file and not hasattr(config, "workerinput"):  # not in a pytest-xdist worker
        record_failures(terminalreporter.stats, failed_file)
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


def record_failures(stats: dict, path: str) -> None:
    label = os.environ.get("MF_FAILED_TESTS_PASS", "")
    lines = []
    for outcome in ("failed", "error"):
        for report in stats.get(outcome, []):
            crash = getattr(report.longrepr, "reprcrash", None)
            text = crash.message if crash is not None else str(report.longrepr)
            first = next((line for line in text.splitlines() if line.strip()), "")
            lines.append(f"{label}: {outcome.upper()} {report.nodeid} ({report.when}) - {first}")
    if lines:
        with open(path, "a") as out:
            out.write("\n".join(lines) + "\n")
