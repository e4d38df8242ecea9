"""The catalog admin: upload a script or a model, see its parameters, build it, publish it."""

import struct

import pytest
import trimesh
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalog.models import PartFamily, PartRevision
from tests.builders import BLOCK_SCRIPT, login_with_mfa, make_material, make_part

pytestmark = pytest.mark.django_db

ADD = "/admin/catalog/partrevision/add/"


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    """Admin pages render {% static %} without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("catalog-admin", password="pw-for-tests")
    client = Client()
    login_with_mfa(client, user)  # staff: past the second factor
    return client


def form(**changes) -> dict:
    family = PartFamily.objects.get_or_create(slug="block", defaults={"name": "Block"})[0]
    data = {
        "family": family.pk,
        "kind": "script",
        "script": "",
        "parameter_schema": "",
        "rules": "[]",
        "process": "fdm",
        "materials": [make_material().pk],
        "description": "",
        "work_instructions": '["Deburr the hole"]',
        "qc_checks": "[]",
    }
    return {**data, **changes}


def test_an_uploaded_script_becomes_a_draft_with_the_parameters_it_declares(admin_client) -> None:
    upload = SimpleUploadedFile("block.py", BLOCK_SCRIPT.encode())

    response = admin_client.post(ADD, form(script_upload=upload))

    assert response.status_code == 302, response.context["adminform"].form.errors
    revision = PartRevision.objects.get()
    assert revision.script == BLOCK_SCRIPT
    assert [p["name"] for p in revision.parameter_schema] == ["width", "height", "hole_d"]
    assert revision.created_by.username == "catalog-admin"
    assert revision.work_instructions == ["Deburr the hole"]
    page = admin_client.get(f"/admin/catalog/partrevision/{revision.pk}/change/").content.decode()
    assert "<code>hole_d</code>" in page and "Build with defaults" in page


@pytest.mark.cad
def test_the_build_button_shows_the_drawing_or_the_scripts_error(admin_client) -> None:
    good = make_part("block", publish=False)
    bad = make_part(
        "broken",
        script="import cadquery as cq\nraise ValueError('bore too big')\n",
        schema=[],
        rules=[],
        publish=False,
    )

    built = admin_client.post(f"/admin/catalog/partrevision/{good.pk}/build/").content.decode()
    refused = admin_client.post(f"/admin/catalog/partrevision/{bad.pk}/build/").content.decode()

    assert '<img src="data:image/svg+xml;base64,' in built
    assert "20.00 × 20.00 × 10.00 mm" in built
    assert "the script failed on line 2: ValueError: bore too big" in refused


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "The submitted file is empty."),
        (b"MZ\x90\x00 not a model" * 20, "neither a STEP nor an STL"),
        (b"\0" * 80 + struct.pack("<I", 100) + b"\0" * 500, "truncated"),
    ],
)
def test_an_unusable_model_upload_is_a_form_error(admin_client, content, reason) -> None:
    upload = SimpleUploadedFile("legacy.stl", content)

    response = admin_client.post(
        ADD, form(kind="static", model_file=upload, work_instructions="[]")
    )

    assert response.status_code == 200
    assert reason in str(response.context["adminform"].form.errors)
    assert not PartRevision.objects.exists()


def test_a_mesh_with_too_many_triangles_is_refused_in_the_form(admin_client, settings) -> None:
    settings.CATALOG_MODEL_MAX_TRIANGLES = 100
    sphere = trimesh.creation.icosphere(subdivisions=3).export(file_type="stl")  # 1,280 triangles

    response = admin_client.post(
        ADD, form(kind="static", model_file=SimpleUploadedFile("ball.stl", sphere))
    )

    assert "1,280 triangles; at most 100" in str(response.context["adminform"].form.errors)


def test_a_static_model_upload_is_kept_with_its_checksum(admin_client) -> None:
    stl = trimesh.creation.box((5, 5, 5)).export(file_type="stl")

    response = admin_client.post(
        ADD, form(kind="static", model_file=SimpleUploadedFile("cube.stl", stl))
    )

    assert response.status_code == 302
    revision = PartRevision.objects.get()
    assert (revision.kind, revision.model_format) == ("static", "stl")
    assert revision.parameter_schema == []


def test_a_published_revision_is_read_only_in_the_admin(admin_client) -> None:
    revision = make_part("block")
    url = f"/admin/catalog/partrevision/{revision.pk}/change/"

    page = admin_client.get(url)
    admin_client.post(url, form(script="show_object(None)\n"))

    assert "script" not in page.context["adminform"].form.fields
    assert PartRevision.objects.get(pk=revision.pk).script == BLOCK_SCRIPT
    assert (
        admin_client.post(
            f"/admin/catalog/partrevision/{revision.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )


def test_the_publish_action_records_who_published(admin_client) -> None:
    revision = make_part("block", publish=False)

    admin_client.post(
        "/admin/catalog/partrevision/",
        {"action": "publish", "_selected_action": [revision.pk]},
    )

    revision.refresh_from_db()
    assert revision.is_published
    assert revision.published_by.username == "catalog-admin"
