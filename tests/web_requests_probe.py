"""Run only by tests/test_web_imports.py, in a fresh interpreter (so not named test_*): web
requests that must not load a CAD or mesh library."""

import sys

import pytest
from django.contrib.auth import get_user_model

from production.models import Job
from tests.builders import login_with_mfa, make_machine
from tests.production.test_station import make_station_job
from tests.test_web_imports import HEAVY


@pytest.mark.django_db
def test_web_requests_load_no_cad_library(client, user, settings):
    settings.STORAGES = {  # pages without collected static files
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    assert [name for name in HEAVY if name in sys.modules] == []
    machine = make_machine()
    job = make_station_job(user=user, machine=machine)
    Job.objects.filter(pk=job.pk).update(
        toolpath_meta={"planned_for": machine.slug, "layers": 50, "engine": "builtin"},
        dfm_report={"checks": [{"status": "warn", "message": "thin wall"}]},
    )
    staff = get_user_model().objects.create_user("op", password="pw", is_staff=True)
    login_with_mfa(client, staff)  # staff: past the second factor
    page = client.get(f"/station/jobs/{job.pk}/")
    assert page.status_code == 200 and "Width" in page.content.decode()
    # No stored traveler: the batch renders this job's now, from its stored values.
    batch = client.get(f"/station/machines/{machine.slug}/travelers.pdf")
    assert batch.status_code == 200 and batch.content.startswith(b"%PDF-")
    assert client.get("/parts/block/").status_code == 200
    assert [name for name in HEAVY if name in sys.modules] == []
