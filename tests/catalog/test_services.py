"""Revisions: created and changed only through the services, frozen once published."""

import hashlib
import json
import struct

import pytest
import trimesh
from django.core.files.base import ContentFile

from catalog.models import PartFamily, PartRevision
from catalog.services import revision_create, revision_publish, revision_update
from microfactory.errors import DomainError
from tests.builders import BLOCK_SCHEMA, BLOCK_SCRIPT, make_material, make_part

pytestmark = pytest.mark.django_db


def family(slug: str = "legacy-bracket") -> PartFamily:
    return PartFamily.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]


def stl_upload(name: str = "bracket.stl", size: float = 10) -> ContentFile:
    return ContentFile(trimesh.creation.box((size, size, size)).export(file_type="stl"), name=name)


def test_a_static_stl_revision_keeps_its_file_and_its_sha256_in_the_checksum() -> None:
    upload = stl_upload()

    revision = revision_create(
        family=family(), kind="static", model_file=upload, materials=[make_material()]
    )

    content = revision.model_file.read()
    assert revision.model_format == "stl"
    assert revision.model_sha256 == hashlib.sha256(content).hexdigest()
    other = revision_create(
        family=family("other"),
        kind="static",
        model_file=stl_upload(size=11),
        materials=[make_material()],
    )
    assert revision.checksum != other.checksum


def test_a_script_revision_keeps_the_checksum_it_had_before_static_models() -> None:
    revision = make_part(publish=False)

    payload = json.dumps(
        {"script": BLOCK_SCRIPT, "schema": BLOCK_SCHEMA, "rules": revision.rules},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert revision.checksum == hashlib.sha256(payload.encode()).hexdigest()


@pytest.mark.parametrize(
    "upload, reason",
    [
        (ContentFile(b"", name="empty.stl"), "the file is empty"),
        (ContentFile(b"hello world, not a model", name="notes.stl"), "neither a STEP nor an STL"),
        (ContentFile(stl_upload().read()[:-20], name="cut.stl"), "truncated"),
        (ContentFile(b"ISO-10303-21;\nHEADER;\n", name="cut.step"), "STEP file is truncated"),
    ],
)
def test_unusable_uploads_are_refused_by_the_service(upload: ContentFile, reason: str) -> None:
    with pytest.raises(DomainError, match=reason):
        revision_create(
            family=family(), kind="static", model_file=upload, materials=[make_material()]
        )
    assert not PartRevision.objects.exists()


def test_uploads_over_the_size_or_triangle_limit_are_refused(settings) -> None:
    settings.CATALOG_MODEL_MAX_MB = 1
    big = b"\0" * 80 + struct.pack("<I", 30_000) + b"\0" * 50 * 30_000  # 1.4 MB
    with pytest.raises(DomainError, match="at most 1 MB"):
        revision_create(
            family=family(),
            kind="static",
            model_file=ContentFile(big, name="big.stl"),
            materials=[make_material()],
        )
    settings.CATALOG_MODEL_MAX_MB, settings.CATALOG_MODEL_MAX_TRIANGLES = 64, 10
    with pytest.raises(DomainError, match="12 triangles; at most 10"):
        revision_create(
            family=family(), kind="static", model_file=stl_upload(), materials=[make_material()]
        )


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"kind": "static", "model_file": None}, "needs a STEP or STL model file"),
        (
            {"kind": "static", "model_file": "stl", "parameter_schema": BLOCK_SCHEMA},
            "no parameters",
        ),
        ({"kind": "script", "script": "  "}, "needs a CadQuery script"),
        ({"kind": "script", "script": BLOCK_SCRIPT, "model_file": "stl"}, "takes no model file"),
        (
            {
                "kind": "script",
                "script": BLOCK_SCRIPT,
                "parameter_schema": BLOCK_SCHEMA,
                "qc_checks": [{"label": "Bore", "parameter": "bore_d"}],
            },
            "not a parameter",
        ),
        (
            {"kind": "script", "script": BLOCK_SCRIPT, "work_instructions": "deburr"},
            "list of texts",
        ),
    ],
)
def test_revisions_that_could_not_build_or_print_are_refused(changes: dict, reason: str) -> None:
    arguments = {**changes}
    if arguments.get("model_file") == "stl":
        arguments["model_file"] = stl_upload()
    with pytest.raises(DomainError, match=reason):
        revision_create(family=family(), materials=[make_material()], **arguments)


def test_a_draft_can_change_but_a_published_revision_cannot() -> None:
    revision = make_part(publish=False)
    revision.parameter_schema = [{**BLOCK_SCHEMA[0], "max": 300}, *BLOCK_SCHEMA[1:]]
    before = revision.checksum

    revision = revision_update(revision=revision)
    assert revision.checksum != before
    revision_publish(revision=revision)

    revision.script = "show_object(None)"
    with pytest.raises(DomainError, match="is published and cannot change"):
        revision_update(revision=revision)
    assert PartRevision.objects.get(pk=revision.pk).script == BLOCK_SCRIPT
    with pytest.raises(DomainError, match="already published"):
        revision_publish(revision=revision)


def test_a_revision_without_materials_cannot_be_published() -> None:
    revision = revision_create(family=family(), script=BLOCK_SCRIPT, materials=[])

    with pytest.raises(DomainError, match="offers no material"):
        revision_publish(revision=revision)
