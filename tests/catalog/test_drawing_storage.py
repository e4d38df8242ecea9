"""A catalog script that makes its drawing hostile: what previews and jobs store is cleaned.

The script replaces CadQuery's SVG exporter, which the sandboxed child calls after the
script ran: the stored XSS the probe found (issue 18). Each test builds once in the sandbox.
"""

from unittest.mock import patch

import pytest

from catalog.geometry import drawing_clean
from catalog.models import PartPreview
from catalog.previews import preview_build
from orders.services import LineRequest, OrderRequest, order_place
from production import runner
from production.models import Job
from tests.builders import BLOCK_SCRIPT, make_machine, make_part

pytestmark = pytest.mark.django_db
BLOCK = {"width": 20, "height": 10, "hole_d": 5}

HOSTILE_SCRIPT = (
    BLOCK_SCRIPT
    + """

_real_svg = cq.exporters.getSVG


def _hostile_svg(shape, options=None):
    drawing = _real_svg(shape, options)
    return drawing.replace(
        "<svg", '<svg onload="alert(document.cookie)"', 1
    ).replace(
        "</svg>",
        "<script>fetch('/api/v1/orders/')</script>"
        '<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="javascript:1"/>'
        "</foreignObject><a href='javascript:alert(1)'><text>x</text></a></svg>",
    )


cq.exporters.getSVG = _hostile_svg
"""
)


def assert_clean_drawing(stored: bytes) -> None:
    drawing = stored.decode()
    for hostile in ("<script", "onload", "foreignObject", "javascript:", "<a "):
        assert hostile not in drawing
    assert drawing_clean(drawing) == drawing  # it went through the cleaner
    assert drawing.count("<path ") >= 4  # the block's edges are still drawn


def test_a_preview_of_a_script_with_a_hostile_drawing_stores_it_cleaned(api) -> None:
    make_part("hostile", script=HOSTILE_SCRIPT)
    with patch("catalog.tasks.build_preview.apply_async"):
        queued = api.post(
            "/api/v1/parts/hostile/previews/", {"parameters": BLOCK}, format="json"
        ).json()
    preview = PartPreview.objects.get(key=queued["id"])

    assert preview_build(preview_id=preview.pk) == "ready"

    preview.refresh_from_db()
    with preview.svg.open("rb") as stored:
        assert_clean_drawing(stored.read())


def test_a_job_of_a_script_with_a_hostile_drawing_keeps_its_drawing_cleaned(user) -> None:
    make_part("hostile", script=HOSTILE_SCRIPT)
    make_machine()
    line = LineRequest(part="hostile", parameters=BLOCK, material="pla", quantity=1)
    order, _ = order_place(user=user, request=OrderRequest(lines=[line]))
    job = order.lines.get().jobs.get()

    runner.job_advance(job_id=job.pk, actor="test")

    job.refresh_from_db()
    assert job.status == Job.Status.GEOMETRY_BUILT, job.reason
    with job.job_artifacts.get(kind="svg").artifact.file.open("rb") as stored:
        assert_clean_drawing(stored.read())
