"""The site's address in links that leave the page (microfactory.site_url): the request's
address where there is a request, else MF_SITE_URL, whose default follows PORT (and which
`make run` sets from PORT for its worker and beat: tests/test_run_script.py)."""

import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import pytest
from django.test import Client

from microfactory.site_url import site_url
from orders.models import WebhookDelivery
from production import job_values, station
from production.models import Machine
from production.pipeline.traveler import render_label
from tests.builders import make_machine, make_order, make_part, make_user
from tests.production.pipeline.test_traveler import scan
from tests.production.test_station import make_station_job

ROOT = Path(__file__).resolve().parent.parent


def settings_site_url(tmp_path: Path, **env: str) -> str:
    """site_url() as a fresh process (a worker, beat) sees it with this environment."""
    clean = {k: v for k, v in os.environ.items() if k not in {"PORT", "MF_SITE_URL"}}
    code = (
        "import django; django.setup(); "
        "from microfactory.site_url import site_url; print(site_url())"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
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


def test_without_a_request_the_address_follows_port_unless_mf_site_url_is_set(tmp_path):
    assert settings_site_url(tmp_path) == "http://127.0.0.1:8000"
    assert settings_site_url(tmp_path, PORT="8123") == "http://127.0.0.1:8123"
    assert (
        settings_site_url(tmp_path, PORT="8123", MF_SITE_URL="https://factory.example.com/")
        == "https://factory.example.com"
    )


@pytest.fixture
def machine() -> Machine:
    return make_machine("mk4-1")


@pytest.fixture
def station_client(organisation, settings) -> Client:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client = Client()
    client.force_login(make_user("op", organisation=organisation, role="operator"))
    return client


@pytest.mark.django_db
def test_a_label_and_traveler_made_without_a_request_point_at_the_setting(
    user, machine, settings, tmp_path
):
    settings.SITE_URL = "http://127.0.0.1:8123"  # `make run` with PORT=8123
    job = make_station_job(user=user, machine=machine)
    label = station.job_label(job)
    assert label.station_url == f"http://127.0.0.1:8123/station/jobs/{job.pk}/"
    assert scan(render_label(label), tmp_path) == {label.station_url, job.number}
    paperwork = job_values.paperwork(job, printed_at=job.created_at)
    assert paperwork.station_url == label.station_url
    assert paperwork.passport_url.startswith("http://127.0.0.1:8123/passport/")


@pytest.mark.django_db
def test_a_label_printed_from_the_station_points_at_the_port_it_was_printed_from(
    user, machine, station_client, settings, tmp_path
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    job = make_station_job(user=user, machine=machine)

    response = station_client.get(f"/station/jobs/{job.pk}/label.pdf", HTTP_HOST="127.0.0.1:8001")

    assert response.status_code == 200
    assert scan(response.content, tmp_path) == {
        f"http://127.0.0.1:8001/station/jobs/{job.pk}/",
        job.number,
    }
    assert site_url() == "http://127.0.0.1:8000"  # the request's address ended with it


@pytest.mark.django_db
def test_a_request_from_a_host_not_allowed_is_refused_and_no_link_uses_it(station_client):
    response = station_client.get("/station/", HTTP_HOST="evil.example")
    assert response.status_code == 400


@pytest.mark.django_db
def test_webhooks_link_the_order_on_the_requests_address_or_else_the_setting(
    user, organisation, settings, api
):
    from orders.models import Webhook

    settings.SITE_URL = "http://127.0.0.1:8123"
    Webhook.objects.create(organisation=organisation, url="http://127.0.0.1:9/", secret="s")
    make_part("block")
    make_machine()
    with (
        patch("orders.tasks.deliver_webhook.apply_async"),
        patch("production.tasks.advance_job.apply_async"),
    ):
        order = make_order(user=user)  # no request: a CMMS import, a command
        response = api.post(
            "/api/v1/orders/",
            {
                "lines": [
                    {
                        "part": "block",
                        "parameters": {"width": 20, "height": 10, "hole_d": 5},
                        "material": "pla",
                        "quantity": 1,
                    }
                ]
            },
            format="json",
            HTTP_HOST="localhost:8001",
        )
    assert response.status_code == 201, response.content
    urls = {
        delivery.payload["order"]["id"]: delivery.payload["order"]["url"]
        for delivery in WebhookDelivery.objects.all()
    }
    assert urls == {
        order.pk: f"http://127.0.0.1:8123/orders/{order.pk}/",
        response.json()["id"]: f"http://localhost:8001/orders/{response.json()['id']}/",
    }
