"""production.runner's geometry step builds both kinds of revision through one function."""

import pytest
import trimesh
from django.core.files.base import ContentFile

from catalog.models import PartFamily
from catalog.services import revision_create, revision_publish
from orders.services import LineRequest, OrderRequest, order_place
from production import runner
from production.models import Job
from tests.builders import make_machine, make_material

pytestmark = pytest.mark.django_db


def test_a_job_for_a_static_stl_part_gets_its_mesh_and_drawing_but_no_step(user) -> None:
    family = PartFamily.objects.create(slug="legacy-cap", name="Legacy cap")
    stl = trimesh.creation.cylinder(radius=10, height=5, sections=48).export(file_type="stl")
    revision = revision_create(
        family=family,
        kind="static",
        model_file=ContentFile(stl, name="cap.stl"),
        materials=[make_material()],
        qc_checks=[
            {"label": "Height", "nominal": 5, "tolerance_minus": 0.2, "tolerance_plus": 0.2}
        ],
    )
    revision_publish(revision=revision)
    make_machine()
    line = LineRequest(part="legacy-cap", parameters={}, material="pla", quantity=1)
    order, _ = order_place(user=user, request=OrderRequest(lines=[line]))
    job = order.lines.get().jobs.get()

    runner.job_advance(job_id=job.pk, actor="test")

    job.refresh_from_db()
    assert job.status == Job.Status.GEOMETRY_BUILT, job.reason
    assert set(job.job_artifacts.values_list("kind", flat=True)) == {"stl", "svg"}
    assert job.events.get(step="geometry").message.startswith("built 20.0 x 20.0 x 5.0 mm")
