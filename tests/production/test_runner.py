"""The runner against real steps: a job walks the whole pipeline in this process."""

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.urls import reverse
from django.utils import timezone

from catalog.models import PartFamily
from catalog.services import revision_create, revision_publish
from orders.services import LineRequest, OrderRequest, order_place
from production import machines, runner, services
from production.models import Artifact, Job, JobEvent, Machine, artifact_path
from production.pipeline import steps
from production.pipeline.validation import ValidationReport
from tests.builders import make_machine, make_material, make_order, make_part

pytestmark = pytest.mark.django_db

# Routed as soon as the G-code is verified; the traveler is rendered beside (#19), and here
# after the router's pass, as it mostly is on a worker.
STEPS = ["order", "geometry", "validation", "toolpath", "routing", "traveler"]


def run_to_the_end(job_id: int) -> Job:
    """Every step the worker runs for the job, then the batch router's pass, which the worker
    runs once the G-code is verified, then the traveler's render. Orders here are quoted
    before any geometry exists, so their jobs are held until the orders app has checked the
    price on the built part (tests/orders/test_price_check.py): settled here, as a
    confirmation would."""
    for _ in range(10):
        if not runner.job_advance(job_id=job_id, actor="test"):
            break
    services.jobs_release(line_ids=[Job.objects.get(pk=job_id).line_id])
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    runner.job_traveler_render(job_id=job_id, actor="test")
    return Job.objects.get(pk=job_id)


def test_a_job_walks_every_step_to_a_machine(user):
    make_part("block")
    machine = make_machine()
    job = make_order(user=user).lines.get().jobs.get()
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.ROUTED, job.reason
    assert job.machine == machine
    assert list(job.events.values_list("step", flat=True)) == STEPS
    assert set(job.job_artifacts.values_list("kind", flat=True)) == {
        "step",
        "stl",
        "svg",
        "gcode",
        "traveler",
    }
    assert job.dfm_report["extents_mm"] == [20, 20, 10]
    assert job.toolpath_meta["layers"] > 30


def test_the_traveler_is_rendered_after_routing_and_names_the_machine_it_was_routed_to(user):
    make_part("block")
    machine = make_machine()
    job = make_order(user=user).lines.get().jobs.get()
    for _ in range(10):
        if not runner.job_advance(job_id=job.pk, actor="test"):
            break
    job.refresh_from_db()
    assert job.status == Job.Status.TOOLPATH_READY  # the router's: no traveler step first
    assert not job.job_artifacts.filter(kind="traveler").exists()
    services.jobs_release(line_ids=[job.line_id])
    machines.jobs_route_waiting(now=timezone.now(), actor="router")
    assert runner.job_traveler_render(job_id=job.pk, actor="test") is True
    job.refresh_from_db()
    assert job.status == Job.Status.ROUTED  # the render moves nothing
    event = job.events.get(step="traveler")
    assert (event.from_status, event.to_status) == ("routed", "routed")
    assert event.duration_ms > 0
    traveler = job.job_artifacts.get(kind="traveler").artifact
    assert traveler.meta == {"site": machine.site.name}
    assert traveler.file.read().startswith(b"%PDF")
    assert job.passport_entries.filter(kind="traveler").count() == 1
    # A second message (a redelivery, the reconciler) renders nothing again.
    assert runner.job_traveler_render(job_id=job.pk, actor="test") is False
    assert job.events.filter(step="traveler").count() == 1


def test_a_job_without_g_code_gets_no_traveler(user):
    make_part("block")
    make_machine()
    job = make_order(user=user).lines.get().jobs.get()
    assert runner.job_traveler_render(job_id=job.pk, actor="test") is False
    assert not job.job_artifacts.exists()


def test_a_repeat_configuration_reads_its_dfm_report_back_instead_of_checking_again(
    user, monkeypatch
):
    make_part("block")
    make_machine()
    first = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert Artifact.objects.filter(kind="dfm").count() == 1

    def checked_again(*args, **kwargs):
        raise AssertionError("the DFM checks ran again for a mesh whose report is kept")

    monkeypatch.setattr(steps, "validate_part", checked_again)
    second = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert second.status == Job.Status.ROUTED, second.reason
    assert second.dfm_report == first.dfm_report
    # Kept for reuse, not one of the job's files (the job has its report in dfm_report).
    assert not second.job_artifacts.filter(kind="dfm").exists()


def test_a_dfm_report_is_checked_again_for_other_machines(user):
    make_part("block")
    make_machine()
    run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    make_machine(slug="mini-1", volume=(180, 180, 180), model="Prusa MINI")
    run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert Artifact.objects.filter(kind="dfm").count() == 2


def test_a_second_job_with_the_same_configuration_reuses_every_artifact(user):
    make_part("block")
    make_machine()
    first = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    second = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    shared = lambda job: {  # noqa: E731
        link.kind: link.artifact_id for link in job.job_artifacts.all() if link.kind != "traveler"
    }
    assert shared(first) == shared(second)
    assert Artifact.objects.filter(kind="stl").count() == 1
    assert "reused" in second.events.get(step="geometry").message


def test_a_step_finished_elsewhere_meanwhile_keeps_nothing_of_ours(user, monkeypatch):
    make_part("block")
    make_machine()
    job = make_order(user=user).lines.get().jobs.get()
    real_build = runner.STEPS[Job.Status.QUEUED].run

    def build_while_another_worker_wins(job):
        result = real_build(job)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.GEOMETRY_BUILT)
        return result

    monkeypatch.setitem(
        runner.STEPS,
        Job.Status.QUEUED,
        runner.Step("geometry", build_while_another_worker_wins, Job.Status.GEOMETRY_BUILT),
    )
    assert runner.job_advance(job_id=job.pk, actor="test") is False
    assert not job.job_artifacts.exists()
    assert not JobEvent.objects.filter(job=job, step="geometry").exists()


ARTIFACT = runner.Output(Artifact.Kind.STEP, "k" * 64, "part.step", b"solid")


def stored_by_two_workers(monkeypatch, *, ours_half_written: bool) -> tuple[Artifact, Artifact]:
    """Our _store of ARTIFACT, with another worker's whole _store of it run between ours
    writing the file and saving the row (its row saved first); (ours, theirs) as returned.
    Where `ours_half_written`, the other finds our file still being written."""
    real_save = FileSystemStorage.save  # settings.STORAGES["default"]
    theirs: list[Artifact] = []

    def the_other_worker_stores_meanwhile(self, name, content, max_length=None):
        monkeypatch.setattr(FileSystemStorage, "save", real_save)
        written = real_save(self, name, content, max_length=max_length)
        if ours_half_written:
            Path(self.path(written)).write_bytes(ARTIFACT.content[:3])
        theirs.append(runner._store(ARTIFACT))
        Path(self.path(written)).write_bytes(ARTIFACT.content)
        return written

    monkeypatch.setattr(FileSystemStorage, "save", the_other_worker_stores_meanwhile)
    return runner._store(ARTIFACT), theirs[0]


def test_a_file_another_worker_took_as_its_own_is_not_removed_with_our_row(monkeypatch):
    """Two workers store the same inputs at once (two orders of a new configuration): ours
    writes the file, the other finds it there, keeps it and saves its row first. Our row is
    refused; the file stays, the other's row points at it (a CI run lost a STEP file so, and
    every later job of that configuration failed reading it)."""
    ours, theirs = stored_by_two_workers(monkeypatch, ours_half_written=False)
    assert ours.pk == theirs.pk and ours.file.name == artifact_path(ours, "part.step")
    with ours.file.open("rb") as stored:
        assert stored.read() == b"solid"
    folder = Path(ours.file.path).parent
    assert [path.name for path in folder.iterdir()] == ["part.step"]  # nor a second copy


def test_a_file_written_for_a_refused_row_is_removed_when_the_saved_row_has_its_own(
    monkeypatch,
):
    """The other worker found our file half written, so it wrote its own under another name:
    ours, kept by no row, goes."""
    ours, theirs = stored_by_two_workers(monkeypatch, ours_half_written=True)
    assert ours.pk == theirs.pk and ours.file.name != artifact_path(ours, "part.step")
    folder = Path(ours.file.path).parent
    assert [path.name for path in folder.iterdir()] == [Path(ours.file.name).name]


def test_a_part_too_big_for_every_machine_is_rejected_with_the_reason(user):
    make_part("block")
    make_machine(volume=(100, 100, 100))
    job = (
        make_order(user=user, parameters={"width": 150, "height": 10, "hole_d": 5})
        .lines.get()
        .jobs.get()
    )
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.REJECTED
    assert "larger than every capable machine" in job.reason
    assert job.events.last().to_status == "rejected"


def test_a_script_that_fails_for_the_parameters_rejects_the_job(user):
    make_part(
        "broken",
        script="import cadquery as cq\nwidth = 1\nraise ValueError('fillet too big')\n",
        schema=[{"name": "width", "type": "length", "default": 1, "min": 1, "max": 2}],
        rules=[],
    )
    make_machine()
    job = make_order(user=user, part="broken", parameters={"width": 1}).lines.get().jobs.get()
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.REJECTED
    assert "fillet too big" in job.reason


def test_a_job_waits_while_every_capable_machine_is_offline(user):
    make_part("block")
    make_machine(state="offline")
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert job.status == Job.Status.TOOLPATH_READY
    assert job.machine is None


def test_failing_a_job_twice_records_one_failure(user):
    make_part("block")
    job = make_order(user=user).lines.get().jobs.get()
    assert services.job_fail(job_id=job.pk, reason="SoftTimeLimitExceeded", actor="test")
    assert not services.job_fail(job_id=job.pk, reason="again", actor="test")
    job.refresh_from_db()
    assert (job.status, job.reason) == ("failed", "SoftTimeLimitExceeded")
    assert job.events.filter(to_status="failed").count() == 1


# --- DFM report in use: capable machines, chosen orientation, repaired mesh ----------------


def gcode_of(job: Job) -> str:
    return job.job_artifacts.get(kind="gcode").artifact.file.read().decode()


def top_layer_z(gcode: str) -> float:
    """The last layer's height, from the ;Z: comment every layer starts with."""
    return max(float(line[3:]) for line in gcode.splitlines() if line.startswith(";Z:"))


@pytest.mark.cad
def test_a_tall_part_is_sliced_lying_down_as_the_dfm_report_chose(user):
    make_part("block")
    make_machine()
    tall = {"width": 10, "height": 40, "hole_d": 2}
    job = run_to_the_end(make_order(user=user, parameters=tall).lines.get().jobs.get().pk)
    assert job.status == Job.Status.ROUTED, job.reason
    chosen = job.dfm_report["orientation"]
    assert chosen["label"].startswith("on its side")
    assert job.dfm_report["extents_mm"] == [10, 10, 40]  # as modelled
    assert job.toolpath_meta["orientation"] == chosen["label"]
    # 10 mm high lying down: 50 layers of 0.2 mm, where standing up would take 200.
    assert job.toolpath_meta["layers"] == 50
    assert top_layer_z(gcode_of(job)) == pytest.approx(10, abs=0.5)
    assert job.toolpath_meta["verification"]["checks"]
    assert "printed on its side" in job.events.get(step="toolpath").message


@pytest.mark.cad
def test_a_part_kept_as_modelled_is_sliced_as_modelled(user):
    make_part("block")
    make_machine()
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert job.dfm_report["orientation"]["label"] == "as modelled (−Z down)"
    assert job.toolpath_meta["orientation_matrix"] == [list(row) for row in runner.IDENTITY]
    assert top_layer_z(gcode_of(job)) == pytest.approx(10, abs=0.5)


@pytest.mark.cad
def test_the_orientation_is_part_of_the_gcode_cache_key(user, monkeypatch):
    make_part("block")
    make_machine()
    tall = {"width": 10, "height": 40, "hole_d": 2}
    turned = run_to_the_end(make_order(user=user, parameters=tall).lines.get().jobs.get().pk)
    monkeypatch.setattr(steps, "print_orientation", lambda chosen, volume: runner.AS_MODELLED)
    upright = run_to_the_end(make_order(user=user, parameters=tall).lines.get().jobs.get().pk)
    gcodes = {job.job_artifacts.get(kind="gcode").artifact_id for job in (turned, upright)}
    assert len(gcodes) == 2
    assert upright.toolpath_meta["layers"] == 200


def test_an_orientation_that_does_not_fit_the_printer_falls_back_to_as_modelled():
    stored = {
        "orientation": {
            "label": "on its side (−X down)",
            "matrix": [[0, 0, -1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]],
            "extents_mm": [10, 180, 150],
        }
    }
    chosen = ValidationReport.from_json(stored).orientation
    assert runner.print_orientation(chosen, (250, 210, 220)).label == "on its side (−X down)"
    assert runner.print_orientation(chosen, (250, 210, 120)) == runner.AS_MODELLED
    turned = runner.print_orientation(chosen, (200, 50, 220))
    assert turned.label == "on its side (−X down), turned 90° about Z"
    assert turned.matrix[0][:3] == (0, -1, 0)
    assert runner.print_orientation(None, (250, 210, 220)) == runner.AS_MODELLED


def holed_box_stl() -> bytes:
    """A 20 x 20 x 10 mm box with one small triangle missing from its top: a hole the DFM
    repair closes."""
    box = trimesh.creation.box((20, 20, 10)).subdivide().subdivide().subdivide()
    top = int(np.flatnonzero(box.face_normals[:, 2] > 0.99)[0])
    box.update_faces(np.arange(len(box.faces)) != top)
    return box.export(file_type="stl")


def make_static_part(slug: str, stl: bytes) -> None:
    family = PartFamily.objects.create(slug=slug, name=slug.title())
    revision = revision_create(
        family=family,
        kind="static",
        model_file=ContentFile(stl, name=f"{slug}.stl"),
        materials=[make_material()],
    )
    revision_publish(revision=revision)


def order_static(user, slug: str) -> Job:
    line = LineRequest(part=slug, parameters={}, material="pla", quantity=1)
    order, _ = order_place(user=user, request=OrderRequest(lines=[line]))
    return order.lines.get().jobs.get()


@pytest.mark.cad
def test_a_repaired_mesh_is_stored_and_sliced_instead_of_the_original(user, client):
    make_static_part("holed", holed_box_stl())
    make_machine()
    job = run_to_the_end(order_static(user, "holed").pk)
    assert job.status == Job.Status.ROUTED, job.reason
    watertight = next(c for c in job.dfm_report["checks"] if c["name"] == "watertight")
    assert watertight["status"] == "warn"
    built = job.job_artifacts.get(kind="stl").artifact
    repaired = job.job_artifacts.get(kind="repaired").artifact
    assert repaired.meta["repaired_from"] == built.sha256
    assert job.toolpath_meta["sliced_mesh"] == {"sha256": repaired.sha256, "repaired": True}
    mesh = trimesh.load_mesh(io.BytesIO(repaired.file.read()), file_type="stl")
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4000, rel=0.01)
    assert repaired.meta["repairs"] == [watertight["message"]]
    assert "repaired mesh" in job.events.get(step="toolpath").message

    again = run_to_the_end(order_static(user, "holed").pk)
    assert again.toolpath_meta["sliced_mesh"]["sha256"] == repaired.sha256
    assert Artifact.objects.filter(meta__repaired_from=built.sha256).count() == 1
    assert again.job_artifacts.get(kind="repaired").artifact == repaired
    client.force_login(user)
    download = client.get(reverse("api:job-artifact", args=[job.pk, "repaired"]))
    assert download.status_code == 200 and download["Content-Type"] == "model/stl"
    assert b"".join(download.streaming_content) == repaired.file.open("rb").read()


@pytest.mark.cad
def test_a_clean_mesh_is_sliced_as_built(user):
    make_part("block")
    make_machine()
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    built = job.job_artifacts.get(kind="stl").artifact
    assert job.toolpath_meta["sliced_mesh"] == {"sha256": built.sha256, "repaired": False}
    assert Artifact.objects.filter(kind="stl").count() == 1
    assert not job.job_artifacts.filter(kind="repaired").exists()


def test_routing_skips_a_machine_the_dfm_report_found_incapable(user, settings):
    settings.VALIDATION_MIN_WALL_FAIL_FACTOR = 2.0  # a strict shop: walls of 2 nozzle widths
    make_part("block")
    make_machine("fine", model="Fine nozzle")
    coarse = make_machine("coarse", model="Coarse nozzle")  # first by name, were it capable
    Machine.objects.filter(pk=coarse.pk).update(nozzle_mm=0.8)
    # A 1 mm wall: the 0.8 mm nozzle needs 1.6 mm, the 0.4 mm nozzle 0.8 mm.
    thin = {"width": 20, "height": 10, "hole_d": 18}
    job = run_to_the_end(make_order(user=user, parameters=thin).lines.get().jobs.get().pk)
    assert job.status == Job.Status.ROUTED, job.reason
    assert job.dfm_report["capable"] == ["fine"]
    assert job.toolpath_meta["planned_for"] == "fine"
    assert job.machine.slug == "fine"


def test_a_job_is_not_routed_to_a_machine_outside_its_report(user):
    make_part("block")
    make_machine("mk4-1")
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert job.status == Job.Status.ROUTED
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.TRAVELER_READY, machine=None, dfm_report={**job.dfm_report, "capable": []}
    )
    job = run_to_the_end(job.pk)
    assert job.status == Job.Status.REJECTED
    assert "capable" in job.reason
