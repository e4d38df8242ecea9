"""A configuration's live DFM report: GET /api/v1/previews/<key>/dfm/?material=, computed by a
worker once the preview is built, cached per material and machine set."""

from unittest.mock import patch

import pytest
from rest_framework.test import APIClient

from catalog.models import PartPreview
from catalog.previews import preview_build
from orders.models import Order
from production.dfm_previews import dfm_machines, dfm_machines_key, preview_dfm_check
from production.models import Job, PreviewDfm
from tests.builders import make_machine, make_material, make_part

pytestmark = pytest.mark.django_db

GOOD = {"width": 20, "height": 10, "hole_d": 5}


@pytest.fixture(autouse=True)
def catalog():
    make_part("block")
    make_material("petg")  # exists, but the block is not offered in it
    make_machine("mk4-1")


def built_preview(api: APIClient, parameters: dict) -> PartPreview:
    with patch("catalog.tasks.build_preview.apply_async"):
        answer = api.post(
            "/api/v1/parts/block/previews/", {"parameters": parameters}, format="json"
        )
    preview = PartPreview.objects.get(key=answer.json()["id"])
    assert preview_build(preview_id=preview.pk) == "ready"
    return preview


def dfm(api: APIClient, preview: PartPreview, material: str = "pla"):
    return api.get(f"/api/v1/previews/{preview.key}/dfm/", {"material": material})


def checked(api: APIClient, preview: PartPreview, material: str = "pla") -> dict:
    """Ask for the report, run the worker's check, and ask again."""
    with patch("production.tasks.check_preview_dfm.apply_async"):
        queued = dfm(api, preview, material)
    assert queued.status_code == 202, queued.json()
    preview_dfm_check(dfm_id=PreviewDfm.objects.get(preview=preview, status="queued").pk)
    answer = dfm(api, preview, material)
    assert answer.status_code == 200
    return answer.json()


def test_the_report_is_queued_on_commit_on_the_geometry_queue(
    api, django_capture_on_commit_callbacks
) -> None:
    preview = built_preview(api, GOOD)
    with patch("production.tasks.check_preview_dfm.apply_async") as enqueue:
        with django_capture_on_commit_callbacks(execute=True):
            answer = dfm(api, preview)
    assert answer.status_code == 202
    assert answer.json() == {
        "preview": preview.key,
        "material": "pla",
        "status": "queued",
        "message": "",
        "report": None,
        "finished_at": None,
    }
    row = PreviewDfm.objects.get()
    enqueue.assert_called_once_with(args=(row.pk,), queue="geometry")


def test_a_checked_configuration_shows_every_check_per_machine_and_the_orientation(api) -> None:
    preview = built_preview(api, GOOD)
    answer = checked(api, preview)
    assert answer["status"] == "ready"
    report = answer["report"]
    assert report["status"] in ("pass", "warn")
    assert report["capable"] == ["mk4-1"]
    assert report["extents_mm"] == [20, 20, 10]
    assert report["orientation"]["label"] == "as modelled (−Z down)"
    names = {c["name"] for c in report["checks"]}
    assert {"readable", "watertight", "orientation", "build_volume", "min_wall"} <= names
    for check in report["checks"]:
        assert check["status"] in ("pass", "warn", "fail")
        assert set(check) == {"name", "status", "value", "limit", "message", "machine"}
    [machine] = report["machines"]
    assert machine["key"] == "mk4-1"
    wall = next(c for c in machine["checks"] if c["name"] == "min_wall")
    assert wall["value"].endswith("mm") and wall["limit"].startswith("≥ 0.8 mm")


def test_a_second_request_and_a_redelivered_check_reuse_the_report(
    api, django_assert_max_num_queries
) -> None:
    preview = built_preview(api, GOOD)
    checked(api, preview)
    row = PreviewDfm.objects.get()
    assert preview_dfm_check(dfm_id=row.pk) == "ready"  # a redelivered task does nothing
    with patch("production.tasks.check_preview_dfm.apply_async") as enqueue:
        # The preview, the material, the machine set (with its queues of jobs and plates) and
        # the report: no geometry work.
        with django_assert_max_num_queries(12):
            assert dfm(api, preview).status_code == 200
    enqueue.assert_not_called()
    assert PreviewDfm.objects.count() == 1


def test_a_new_machine_gets_a_new_report(api) -> None:
    preview = built_preview(api, GOOD)
    checked(api, preview)
    make_machine("mk4-2")
    again = checked(api, preview)
    assert again["report"]["capable"] == ["mk4-1", "mk4-2"]
    assert PreviewDfm.objects.count() == 2


def test_a_failing_configuration_says_why(api, settings) -> None:
    settings.VALIDATION_MIN_WALL_FACTOR = 4.0  # a strict shop: 1.6 mm walls on a 0.4 mm nozzle,
    settings.VALIDATION_MIN_WALL_FAIL_FACTOR = 3.0  # and walls under 1.2 mm fail
    preview = built_preview(api, {"width": 20, "height": 10, "hole_d": 18})  # 1 mm walls
    report = checked(api, preview)["report"]
    assert report["status"] == "fail"
    assert report["capable"] == []
    wall = next(c for c in report["checks"] if c["name"] == "min_wall")
    assert wall["status"] == "fail"
    assert wall["machine"] == "mk4-1"
    assert "cannot print walls thinner than 1.2 mm" in wall["message"]
    assert "thinnest wall 1" in wall["message"]


def test_a_part_too_big_for_every_machine_fails_on_the_build_volume(api) -> None:
    preview = built_preview(api, {"width": 300, "height": 10, "hole_d": 5})
    report = checked(api, preview)["report"]
    assert report["status"] == "fail"
    volume = next(c for c in report["checks"] if c["name"] == "build_volume")
    assert volume["status"] == "fail"
    assert volume["value"] == "300.0 x 300.0 x 10.0 mm"
    assert "larger than" in volume["message"]


def test_without_a_machine_for_the_material_the_report_fails_at_once(api) -> None:
    make_part("block", materials=[make_material("pla"), make_material("petg")])
    preview = built_preview(api, GOOD)
    with patch("production.tasks.check_preview_dfm.apply_async") as enqueue:
        answer = dfm(api, preview, "petg")
    assert answer.status_code == 200
    assert answer.json()["status"] == "failed"
    assert answer.json()["message"] == "no FDM 3D printing machine has PETG loaded or can load it"
    enqueue.assert_not_called()


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({}, "material", "This field is required."),
        ({"material": "no such thing!"}, "material", "Enter a valid"),
        ({"material": "unobtainium"}, "material", "'unobtainium' is not one of: pla"),
        ({"material": "petg"}, "material", "'petg' is not one of: pla"),
    ],
)
def test_a_bad_material_is_a_400_and_queues_nothing(api, query, field, message) -> None:
    preview = built_preview(api, GOOD)
    with patch("production.tasks.check_preview_dfm.apply_async") as enqueue:
        answer = api.get(f"/api/v1/previews/{preview.key}/dfm/", query)
    assert answer.status_code == 400
    assert message in answer.json()["errors"][field][0]
    enqueue.assert_not_called()
    assert not PreviewDfm.objects.exists()


def test_a_preview_not_built_yet_or_unknown_has_no_report(api) -> None:
    with patch("catalog.tasks.build_preview.apply_async"):
        queued = api.post("/api/v1/parts/block/previews/", {"parameters": GOOD}, format="json")
    key = queued.json()["id"]
    building = api.get(f"/api/v1/previews/{key}/dfm/", {"material": "pla"})
    assert building.status_code == 409
    assert "the preview is queued" in building.json()["message"]
    PartPreview.objects.filter(key=key).update(status="failed", message="fillet too big")
    failed = api.get(f"/api/v1/previews/{key}/dfm/", {"material": "pla"})
    assert failed.status_code == 409
    assert failed.json()["message"] == "the part cannot be built with these values: fillet too big"
    assert api.get(f"/api/v1/previews/{'0' * 64}/dfm/", {"material": "pla"}).status_code == 404
    assert not PreviewDfm.objects.exists()


def test_the_preview_links_to_its_report_and_the_schema_describes_it(api) -> None:
    preview = built_preview(api, GOOD)
    detail = api.get(f"/api/v1/previews/{preview.key}/").json()
    assert detail["dfm_url"] == f"/api/v1/previews/{preview.key}/dfm/"
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/previews/{key}/dfm/"]["get"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["material"]
    assert {"200", "202", "400", "404", "409"} <= set(operation["responses"])
    report = schema["components"]["schemas"]["DfmReport"]["properties"]
    assert {"checks", "machines", "orientation", "capable", "status"} <= set(report)


def test_the_machine_set_key_changes_with_the_machines_and_the_limits(settings) -> None:
    pla = make_material("pla")
    before = dfm_machines_key(dfm_machines(process="fdm", material=pla))
    settings.VALIDATION_MIN_WALL_FACTOR = 3.0
    stricter = dfm_machines_key(dfm_machines(process="fdm", material=pla))
    make_machine("mk4-2")
    more = dfm_machines_key(dfm_machines(process="fdm", material=pla))
    assert len({before, stricter, more}) == 3


def test_an_order_for_a_configuration_the_page_found_unmakeable_is_refused(api) -> None:
    too_big = {"width": 300, "height": 10, "hole_d": 5}
    checked(api, built_preview(api, too_big))
    line = {"part": "block", "parameters": too_big, "material": "pla", "quantity": 1}
    refused = api.post("/api/v1/orders/", {"lines": [line]}, format="json")
    assert refused.status_code == 400
    (message,) = refused.json()["errors"]["lines"]["0"]["dfm"]
    assert message.startswith("This configuration cannot be made: ")
    assert "larger than" in message
    assert not Order.objects.exists() and not Job.objects.exists()

    # A configuration nobody checked goes ahead; its job's own validation decides.
    line["parameters"] = {"width": 300, "height": 12, "hole_d": 5}
    with patch("production.tasks.advance_job.apply_async"):
        assert api.post("/api/v1/orders/", {"lines": [line]}, format="json").status_code == 201
