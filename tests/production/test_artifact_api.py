"""`GET /api/v1/jobs/<id>/artifacts/<kind>/`: a milled or laser-cut job's program rendering is
served with its own type (PNG or SVG, by its file), and a kind kept only for the worker (a
DFM report) is a 404, never a 500."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from production.models import Artifact, Job, JobArtifact
from tests.builders import make_ready_job

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>'


def link(job: Job, kind: str, name: str, content: bytes) -> None:
    digest = hashlib.sha256(content).hexdigest()
    artifact = Artifact(kind=kind, input_key=digest, sha256=digest, size=len(content))
    artifact.file.save(name, ContentFile(content), save=False)
    artifact.save()
    JobArtifact.objects.create(job=job, artifact=artifact, kind=kind)


@pytest.mark.parametrize(
    ("name", "content", "content_type", "extension"),
    [("simulated.png", PNG, "image/png", "png"), ("cut-paths.svg", SVG, "image/svg+xml", "svg")],
)
def test_a_program_rendering_is_served_with_its_type(
    user, name, content, content_type, extension
) -> None:
    job = make_ready_job(user=user)
    link(job, Artifact.Kind.RENDER, name, content)
    client = Client()
    client.force_login(user)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/render/")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert f"{job.number}.{extension}" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == content


def test_a_dfm_report_is_not_a_download(user) -> None:
    job = make_ready_job(user=user)
    link(job, Artifact.Kind.DFM, "report.json", b"{}")
    client = Client()
    client.force_login(user)
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/dfm/")
    assert response.status_code == 404
    assert "no such file" in response.json()["message"]
