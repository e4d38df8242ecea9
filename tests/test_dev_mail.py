"""Sent mail for developers (microfactory.devmail): with DEBUG on, `make run` keeps mail as
.eml files in MF_MAIL_DIR and staff read it on /dev/mail/; without DEBUG the page is a 404."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection, send_mail
from django.test import Client

from microfactory.devmail import sent_mail
from tests.builders import login_with_mfa, make_user

ROOT = Path(__file__).resolve().parent.parent
BACKEND = "microfactory.devmail.MailDirBackend"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _kept_mail(settings, tmp_path):
    """As `make run` has it: DEBUG on, mail kept in a directory of its own."""
    settings.DEBUG = True
    settings.EMAIL_BACKEND = BACKEND
    settings.MAIL_DIR = tmp_path / "mail"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff_client() -> Client:
    admin = get_user_model().objects.create_user("admin", password="pw", is_staff=True)
    client = Client()
    login_with_mfa(client, admin)
    return client


def test_the_backend_keeps_each_message_as_a_file_read_back_newest_first(settings):
    send_mail("First", "one\n", "from@example.com", ["a@example.com"])
    get_connection().send_messages(
        [
            EmailMessage("Second", "two\nlines ü\n", "from@example.com", ["b@example.com"]),
            EmailMessage("Third", "three\n", "from@example.com", ["c@example.com"], cc=["d@x"]),
        ]
    )
    assert len(list(Path(settings.MAIL_DIR).glob("*.eml"))) == 3
    found = sent_mail(Path(settings.MAIL_DIR), limit=2)
    assert [(m.subject, m.recipients, m.body) for m in found] == [
        ("Third", "c@example.com, d@x", "three\n"),
        ("Second", "b@example.com", "two\nlines ü\n"),
    ]
    assert sent_mail(Path(settings.MAIL_DIR) / "none", limit=5) == []


def test_staff_read_the_sent_mail_on_the_page(staff_client, settings):
    send_mail(
        "Order O-000001 is complete",
        "Your order is complete.\n\nhttp://127.0.0.1:8123/orders/1/\n",
        "Microfactory <orders@localhost>",
        ["requester@demo.example"],
    )
    response = staff_client.get("/dev/mail/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Order O-000001 is complete" in page
    assert "requester@demo.example" in page
    assert "http://127.0.0.1:8123/orders/1/" in page
    assert str(settings.MAIL_DIR) in page


def test_the_page_says_when_nothing_was_sent(staff_client):
    assert "No mail sent yet." in staff_client.get("/dev/mail/").content.decode()


def test_only_staff_see_the_page_and_only_with_debug_on(staff_client, organisation, settings):
    anonymous = Client().get("/dev/mail/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    requester = Client()
    requester.force_login(make_user("req", organisation=organisation))
    assert requester.get("/dev/mail/").status_code == 404
    assert staff_client.post("/dev/mail/").status_code == 405
    settings.DEBUG = False
    assert staff_client.get("/dev/mail/").status_code == 404


def debug_backend(tmp_path: Path, **env: str) -> str:
    """settings.EMAIL_BACKEND as a fresh process sees it with this environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "EMAIL_HOST", "EMAIL_BACKEND", "SECRET_KEY"}
    }
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.EMAIL_BACKEND)",
        ],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "microfactory.settings",
            "MF_VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def test_debug_keeps_mail_for_the_page_unless_an_smtp_server_is_named(tmp_path):
    assert debug_backend(tmp_path, DEBUG="true") == BACKEND
    assert (
        debug_backend(tmp_path, DEBUG="true", EMAIL_HOST="smtp.example.com")
        == "django.core.mail.backends.smtp.EmailBackend"
    )
