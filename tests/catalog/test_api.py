"""The catalog API: search, a part with its schema, checking a configuration, previews."""

import json
import time
from decimal import Decimal
from unittest.mock import patch

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from catalog.models import Material, PartFamily, PartPreview
from catalog.previews import preview_build
from tests.builders import make_material, make_part

pytestmark = pytest.mark.django_db

GOOD = {"width": 20, "height": 10, "hole_d": 5}


@pytest.fixture
def block():
    revision = make_part("block")
    PartFamily.objects.filter(pk=revision.family_id).update(
        category="Test blocks", tags="cube, drilled", description="A drilled block"
    )
    return revision


def preview(api: APIClient, parameters: dict, slug: str = "block", **headers):
    return api.post(f"/api/v1/parts/{slug}/previews/", {"parameters": parameters}, format="json")


# --- list, search, detail ---------------------------------------------------------------------


def test_the_parts_list_is_paginated_and_searchable(
    api, block, django_assert_max_num_queries
) -> None:
    make_part("collar", materials=[make_material("petg")])
    PartFamily.objects.filter(slug="collar").update(category="Shafts", tags="set collar")

    with django_assert_max_num_queries(6):
        everything = api.get("/api/v1/parts/").json()
    assert everything["count"] == 2
    assert [p["slug"] for p in everything["results"]] == ["block", "collar"]
    assert everything["results"][0]["tags"] == ["cube", "drilled"]
    assert everything["results"][0]["url"] == "/api/v1/parts/block/"

    def slugs(query: str) -> list[str]:
        return [p["slug"] for p in api.get(f"/api/v1/parts/?{query}").json()["results"]]

    assert slugs("q=drilled") == ["block"]
    assert slugs("q=SET+collar") == ["collar"]
    assert slugs("category=shafts") == ["collar"]
    assert slugs("material=petg") == ["collar"]
    assert slugs("process=fdm") == ["block", "collar"]
    assert slugs("process=laser") == []
    assert api.get("/api/v1/parts/?process=plasma").status_code == 400
    assert api.get("/api/v1/parts/?limit=1").json()["next"]


def test_retired_parts_are_hidden(api, block) -> None:
    PartFamily.objects.filter(slug="block").update(retired=True)

    assert api.get("/api/v1/parts/").json()["count"] == 0
    assert api.get("/api/v1/parts/block/").status_code == 404
    assert (
        api.post("/api/v1/parts/block/validate/", {"parameters": GOOD}, format="json").status_code
        == 404
    )


def test_a_part_shows_its_current_revision_with_schema_materials_and_qc(api, block) -> None:
    response = api.get("/api/v1/parts/block/")

    assert response.status_code == 200
    part = response.json()
    assert part["revision"]["number"] == 1
    assert part["revision"]["kind"] == "script"
    assert [p["name"] for p in part["revision"]["parameter_schema"]] == [
        "width",
        "height",
        "hole_d",
    ]
    assert part["revision"]["materials"] == [
        {"slug": "pla", "name": "PLA", "process": "fdm", "sheet_thicknesses_mm": []}
    ]
    # Made by one process: no alternatives (orders.routes offers no choice).
    assert (part["revision"]["processes"], part["revision"]["alternative_processes"]) == (
        ["fdm"],
        [],
    )
    assert api.get("/api/v1/parts/nope/").status_code == 404


def test_a_plate_material_lists_the_thicknesses_it_is_stocked_in(api) -> None:
    plate = Material.objects.create(
        slug="aluminium-6061",
        name="Aluminium 6061",
        process="cnc_mill",
        density_g_cm3=Decimal("2.7"),
        price_per_kg=Decimal("9.5"),
        sheet_thicknesses_mm=[3, 6, 10],
    )
    make_part("plate", materials=[plate])

    (material,) = api.get("/api/v1/parts/plate/").json()["revision"]["materials"]

    assert material["process"] == "cnc_mill"
    assert material["sheet_thicknesses_mm"] == [3, 6, 10]


@pytest.mark.parametrize(
    ("thicknesses", "error"),
    [
        ("3, 6", "Give a list of thicknesses"),
        ([3, 0], "0 is not a positive thickness"),
        ([3, -1.5], "-1.5 is not a positive thickness"),
        ([True], "True is not a positive thickness"),
        (["3"], "'3' is not a positive thickness"),
        ([5000], "thicker than any plate"),
    ],
)
def test_sheet_thicknesses_must_be_a_list_of_positive_millimetres(thicknesses, error) -> None:
    material = Material(
        slug="sheet", name="Sheet", density_g_cm3=1, price_per_kg=1,
        sheet_thicknesses_mm=thicknesses,
    )  # fmt: skip
    with pytest.raises(ValidationError, match=error):
        material.full_clean()
    material.sheet_thicknesses_mm = [3, 4.5]
    material.full_clean()


def test_the_catalog_needs_a_signed_in_user(block) -> None:
    anonymous = APIClient()

    assert anonymous.get("/api/v1/parts/").status_code in (401, 403)
    assert anonymous.post(
        "/api/v1/parts/block/previews/", {"parameters": GOOD}, format="json"
    ).status_code in (401, 403)


# --- validate ---------------------------------------------------------------------------------


def test_a_valid_configuration_comes_back_canonical(api, block) -> None:
    response = api.post(
        "/api/v1/parts/block/validate/",
        {"parameters": {"width": "20.0", "height": 10, "hole_d": 5.0}},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["parameters"] == {"height": 10, "hole_d": 5, "width": 20}
    assert len(response.json()["parameters_hash"]) == 64


@pytest.mark.parametrize(
    "parameters, field, message",
    [
        ({"width": 20, "height": 10}, "hole_d", "Hole diameter is required"),
        ({**GOOD, "width": "wide"}, "width", "Width must be a number"),
        ({**GOOD, "width": True}, "width", "Width must be a number"),
        ({**GOOD, "width": 4}, "width", "Width must be at least 5 mm (got 4 mm)"),
        (
            {**GOOD, "hole_d": 19},
            "hole_d",
            "the hole must leave 1 mm of wall "
            "(hole diameter 19 mm must be at most width - 2 = 18 mm)",
        ),
        ({**GOOD, "colour": "red"}, "colour", "'colour' is not a parameter of this part"),
        ({**GOOD, "width": "NaN"}, "width", "Width must be a finite number"),
        ({**GOOD, "width": "-inf"}, "width", "Width must be a finite number"),
        ({**GOOD, "width": "1e999999"}, "width", "Width must be a finite number"),
        ({**GOOD, "width": [20]}, "width", "Width must be a number, a text or true/false"),
        ({**GOOD, "width": "9" * 1_000_000}, "width", "Width is longer than 200 characters"),
        (
            {**GOOD, "w" * 1_000_000: 1},
            "w" * 100 + "…",
            f"'{'w' * 40}…' is not a parameter of this part",
        ),
    ],
)
def test_bad_configurations_get_field_errors(api, block, parameters, field, message) -> None:
    started = time.monotonic()
    response = api.post("/api/v1/parts/block/validate/", {"parameters": parameters}, format="json")

    assert response.status_code == 400
    assert message in response.json()["errors"][field]
    assert time.monotonic() - started < 2  # a megabyte costs a length check, not a parse


@pytest.mark.parametrize(
    "body",
    [
        '{"parameters": {"width": NaN, "height": 10, "hole_d": 5}}',
        '{"parameters": {"width": Infinity, "height": 10, "hole_d": 5}}',
        '{"parameters": [20, 10, 5]}',
        '{"colours": {}}',
        "not json",
    ],
)
def test_malformed_bodies_are_a_400_not_a_500(api, block, body) -> None:
    response = api.post("/api/v1/parts/block/validate/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["message"]


# --- previews ---------------------------------------------------------------------------------


def test_a_preview_is_queued_on_commit_on_the_geometry_queue(
    api, block, django_capture_on_commit_callbacks
) -> None:
    with patch("catalog.tasks.build_preview.apply_async") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            response = preview(api, GOOD)

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"] == f"/api/v1/previews/{body['id']}/" == response["Location"]
    assert body["files"] == {}
    enqueue.assert_called_once()
    assert enqueue.call_args.kwargs["queue"] == "geometry"
    json.dumps(enqueue.call_args.kwargs["args"])  # payloads must survive the broker


def test_the_same_configuration_shares_one_preview_and_one_build(
    api, block, django_capture_on_commit_callbacks
) -> None:
    with patch("catalog.tasks.build_preview.apply_async") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            first = preview(api, GOOD).json()
            second = preview(api, {"width": "20.000", "height": 10, "hole_d": 5}).json()

    assert first["id"] == second["id"]
    assert enqueue.call_count == 1
    assert PartPreview.objects.count() == 1


def test_a_built_preview_is_ready_with_its_files_and_served_from_the_cache(
    api, block, django_capture_on_commit_callbacks
) -> None:
    with patch("catalog.tasks.build_preview.apply_async"):
        queued = preview(api, GOOD).json()
    stored = PartPreview.objects.get(key=queued["id"])

    assert preview_build(preview_id=stored.pk) == "ready"
    assert preview_build(preview_id=stored.pk) == "ready"  # a redelivered task does nothing

    with patch("catalog.tasks.build_preview.apply_async") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            cached = preview(api, GOOD)
    assert cached.status_code == 200
    enqueue.assert_not_called()
    ready = api.get(queued["url"]).json()
    assert ready["status"] == "ready"
    assert ready["bbox_mm"] == [20, 20, 10]
    assert ready["volume_mm3"] > 0
    glb = api.get(ready["files"]["glb"])
    assert glb.status_code == 200
    assert glb["Content-Type"] == "model/gltf-binary"
    assert b"".join(glb.streaming_content).startswith(b"glTF")
    assert b"<svg" in b"".join(api.get(ready["files"]["svg"]).streaming_content)
    assert api.get(ready["files"]["stl"]).status_code == 200
    assert api.get(ready["url"] + "gcode/").status_code == 404


def test_a_preview_the_script_refuses_fails_with_the_scripts_message(api) -> None:
    make_part("fussy", script="raise ValueError('no blocks today')\n", schema=[], rules=[])
    with patch("catalog.tasks.build_preview.apply_async"):
        queued = preview(api, {}, slug="fussy").json()

    preview_build(preview_id=PartPreview.objects.get(key=queued["id"]).pk)

    failed = api.get(queued["url"]).json()
    assert failed["status"] == "failed"
    assert "no blocks today" in failed["message"]
    with patch("catalog.tasks.build_preview.apply_async") as enqueue:
        assert preview(api, {}, slug="fussy").json()["status"] == "queued"  # asked again: rebuilt
    assert enqueue.call_count == 0  # (not yet committed: the test transaction holds it)


def test_a_user_with_too_many_previews_in_flight_gets_a_429(api, block, settings) -> None:
    settings.CATALOG_PREVIEW_MAX_IN_FLIGHT = 2
    with patch("catalog.tasks.build_preview.apply_async"):
        assert preview(api, {**GOOD, "width": 20}).status_code == 202
        assert preview(api, {**GOOD, "width": 21}).status_code == 202
        refused = preview(api, {**GOOD, "width": 22})
        assert preview(api, {**GOOD, "width": 21}).status_code == 202  # already in flight: fine

    assert refused.status_code == 429
    assert "2 preview builds in progress (at most 2)" in refused.json()["message"]
    assert PartPreview.objects.count() == 2


def test_a_preview_with_bad_parameters_is_a_400_and_queues_nothing(api, block) -> None:
    with patch("catalog.tasks.build_preview.apply_async") as enqueue:
        response = preview(api, {**GOOD, "width": 1})

    assert response.status_code == 400
    assert "width" in response.json()["errors"]
    enqueue.assert_not_called()
    assert not PartPreview.objects.exists()


def test_the_openapi_schema_describes_the_catalog_endpoints(api) -> None:
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    paths = response.json()["paths"]
    for path in (
        "/api/v1/parts/",
        "/api/v1/parts/{slug}/",
        "/api/v1/parts/{slug}/validate/",
        "/api/v1/parts/{slug}/previews/",
        "/api/v1/previews/{key}/",
        "/api/v1/previews/{key}/{kind}/",
    ):
        assert path in paths
    assert {"q", "category", "process", "material"} <= {
        p["name"] for p in paths["/api/v1/parts/"]["get"]["parameters"]
    }
