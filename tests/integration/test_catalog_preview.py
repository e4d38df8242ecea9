"""A preview asked for through the API is built by a real Celery worker on the geometry queue."""

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_preview_becomes_ready_with_a_glb_that_downloads(user, start_worker) -> None:
    from tests.builders import make_part
    from tests.integration.conftest import wait_for

    make_part("block")
    client = APIClient()
    client.force_authenticate(user)
    worker = start_worker()

    response = client.post(
        "/api/v1/parts/block/previews/",
        {"parameters": {"width": 24, "height": 8, "hole_d": 6}},
        format="json",
    )
    assert response.status_code == 202, response.content
    url = response.json()["url"]

    wait_for(
        lambda: client.get(url).json()["status"] in ("ready", "failed"),
        timeout=120,
        what="the preview to be built",
        worker=worker,
    )
    preview = client.get(url).json()
    assert preview["status"] == "ready", (preview["message"], worker.output())
    assert preview["bbox_mm"] == [24, 24, 8]
    glb = client.get(preview["files"]["glb"])
    assert glb.status_code == 200
    assert b"".join(glb.streaming_content).startswith(b"glTF")
    again = client.post(
        "/api/v1/parts/block/previews/",
        {"parameters": {"width": 24.0, "height": 8, "hole_d": 6}},
        format="json",
    )
    assert again.status_code == 200  # the cache answers at once
    assert again.json()["id"] == preview["id"]
