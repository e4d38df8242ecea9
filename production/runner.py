"""Runs one pipeline step for one job: the bridge between the database and the pure steps.

Worker side only: the steps (production.pipeline.steps) import CadQuery's sandbox runner,
trimesh and WeasyPrint, which web processes never load. The worker runs the same ordered list
of steps as `manage.py make_part`: for each, an adapter here loads the job so far from the
database, calls the shared step, and returns what to keep; `job_advance` keeps it only if the
job is still where the step started (the claim), so a redelivered message or a second worker
does nothing twice. Once the G-code is verified the job waits for the batch router; its
traveler PDF is rendered beside, by `job_traveler_render`, which moves nothing (#19).
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import geometry
from microfactory.errors import Rejected
from production import lifecycle, machines, passport, routing, services
from production.job_values import (
    job_artifact,
    job_part,
    job_render,
    material_facts,
    paperwork,
    traveler_for,
)
from production.lifecycle import By
from production.models import Artifact, Job, JobArtifact, artifact_path
from production.pipeline import steps as pipeline
from production.pipeline import traveler as travelers
from production.pipeline.print_mesh import AS_MODELLED, print_orientation
from production.pipeline.programs import PROCESSES as PROGRAM_PROCESSES
from production.pipeline.programs import ProgramChecks
from production.pipeline.steps import JobSoFar, PlannedToolpath, Setup
from production.pipeline.validation import (
    ValidationLimits,
    ValidationRejected,
    ValidationReport,
    dfm_report,
)
from production.pipeline.values import (
    DEFAULT_SLICER,
    IDENTITY,
    BuiltPart,
    GeometryMeta,
    Reuse,
    SlicerSettings,
    Stored,
    ToolpathMeta,
    input_key,
    nothing_stored,
)
from production.toolpath import engines

__all__ = [
    "AS_MODELLED",
    "IDENTITY",
    "STEPS",
    "configuration_dfm",
    "input_key",
    "job_advance",
    "print_orientation",
    "traveler_for",
]

logger = logging.getLogger(__name__)


@dataclass
class Output:
    """A file a step wants kept: new bytes, or an artifact found for the same inputs."""

    kind: str
    input_key: str
    filename: str
    content: bytes | None = None
    existing: Artifact | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # False: kept only for the next job with the same inputs, not as one of this job's files
    # (a DFM report: the job has its own in Job.dfm_report, and its passport records it).
    job_file: bool = True


@dataclass
class StepResult:
    outputs: list[Output] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Job], StepResult]
    done: str


# --- settings and machines as the steps' values ---------------------------------------------


def build_limits() -> geometry.BuildLimits:
    return geometry.BuildLimits(
        timeout_s=settings.GEOMETRY_BUILD_TIMEOUT_S,
        cpu_s=settings.GEOMETRY_BUILD_CPU_S,
        memory_mb=settings.GEOMETRY_BUILD_MEMORY_MB,
        output_mb=settings.GEOMETRY_BUILD_OUTPUT_MB,
        max_processes=settings.GEOMETRY_BUILD_MAX_PROCESSES,
        require_bwrap=settings.GEOMETRY_SANDBOX_REQUIRE_BWRAP,
        stl_tolerance_mm=settings.GEOMETRY_STL_TOLERANCE_MM,
        stl_angular_tolerance=settings.GEOMETRY_STL_ANGULAR_TOLERANCE,
    )


def validation_limits() -> ValidationLimits:
    """The DFM limits from settings (VALIDATION_*)."""
    return ValidationLimits(
        max_file_bytes=settings.VALIDATION_MAX_FILE_MB * 1_000_000,
        max_triangles=settings.VALIDATION_MAX_TRIANGLES,
        max_vertices=settings.VALIDATION_MAX_VERTICES,
        time_budget_s=settings.VALIDATION_TIME_BUDGET_S,
        overhang_deg=settings.VALIDATION_OVERHANG_DEG,
        bridge_mm=settings.VALIDATION_BRIDGE_MM,
        min_wall_factor=settings.VALIDATION_MIN_WALL_FACTOR,
        min_wall_fail_factor=settings.VALIDATION_MIN_WALL_FAIL_FACTOR,
        min_contact_mm2=settings.VALIDATION_MIN_CONTACT_MM2,
        max_height_to_base=settings.VALIDATION_MAX_HEIGHT_TO_BASE,
        max_hole_perimeter_mm=settings.VALIDATION_MAX_HOLE_PERIMETER_MM,
        wall_samples=settings.VALIDATION_WALL_SAMPLES,
        self_intersection_max_triangles=settings.VALIDATION_SELF_INTERSECTION_MAX_TRIANGLES,
        cnc_smallest_end_mill_mm=settings.VALIDATION_CNC_SMALLEST_END_MILL_MM,
        cnc_pocket_ratio_warn=settings.VALIDATION_CNC_POCKET_RATIO_WARN,
        cnc_pocket_ratio_fail=settings.VALIDATION_CNC_POCKET_RATIO_FAIL,
        cnc_wall_ratio_warn=settings.VALIDATION_CNC_WALL_RATIO_WARN,
        cnc_min_footprint_mm=settings.VALIDATION_CNC_MIN_FOOTPRINT_MM,
        laser_kerf_mm=settings.VALIDATION_LASER_KERF_MM,
        laser_min_web_mm=settings.VALIDATION_LASER_MIN_WEB_MM,
        laser_min_part_mm=settings.VALIDATION_LASER_MIN_PART_MM,
    )


def machine_facts(*, process: str, material: str | None = None) -> list[routing.MachineFacts]:
    """Every machine of a process as routing values, with its queue (production.machines
    builds them, toolpath engine included, so the web side shares one definition)."""
    facts = machines.routing_facts(process=process)
    return facts if material is None else routing.with_material(facts, material)


machine_limits = pipeline.machine_limits


def pipeline_setup(
    *,
    machines: list[routing.MachineFacts],
    slicer: SlicerSettings = DEFAULT_SLICER,
    engine: str | None = None,
    reuse: Reuse = nothing_stored,
) -> Setup:
    """The shop as the steps see it: these machines, and the limits and slicer from settings.
    The worker and make_part both build theirs here."""
    return Setup(
        machines=tuple(machines),
        build_limits=build_limits(),
        validation_limits=validation_limits(),
        prusaslicer_binary=settings.PRUSASLICER_BINARY,
        prusaslicer_timeout_s=settings.PRUSASLICER_TIMEOUT_S,
        slicer=replace(
            slicer,
            seam=slicer.seam or settings.SLICER_SEAM,
            min_layer_time_s=(
                settings.SLICER_MIN_LAYER_TIME_S
                if slicer.min_layer_time_s is None
                else slicer.min_layer_time_s
            ),
        ),
        engine=engine,
        reuse=reuse,
        program_checks=ProgramChecks(
            zmap_resolution_mm=settings.MF_CNC_ZMAP_RESOLUTION_MM,
            gouge_tolerance_mm=settings.MF_CNC_GOUGE_TOLERANCE_MM,
            remaining_tolerance_mm=settings.MF_CNC_REMAINING_TOLERANCE_MM,
            rs274_binary=settings.MF_RS274_BINARY,
            rs274_timeout_s=settings.MF_RS274_TIMEOUT_S,
        ),
    )


def configuration_dfm(stl: bytes, *, process: str, material: Any) -> ValidationReport:
    """The full DFM report of a mesh against every machine of the process with the material
    loaded (or loadable), failed or not: a job's validation and a configuration's live report
    on the part page share it. Rejected when no machine has the material."""
    candidates = pipeline.dfm_machines(
        machine_facts(process=process), process=process, material=material_facts(material)
    )
    return dfm_report(stl, machines=candidates, limits=validation_limits())


# --- the job so far, from the database ------------------------------------------------------


def stored_artifact(kind: str, key: str) -> Stored | None:
    """The file stored for these inputs (any job's), for the steps' `reuse`."""
    artifact = Artifact.objects.filter(kind=kind, input_key=key).first()
    if artifact is None:
        return None
    with artifact.file.open("rb") as stored:
        return Stored(stored.read(), artifact.meta)


def job_so_far(job: Job, step: pipeline.Step) -> JobSoFar:
    """The job as the step needs it: what earlier steps stored, read back as their values."""
    part = job_part(job, with_model=step.name == "geometry")
    so_far = JobSoFar(
        part=part,
        paperwork=paperwork(job, printed_at=job.status_changed_at),
        setup=pipeline_setup(machines=machine_facts(process=part.process), reuse=stored_artifact),
    )
    loaded: dict[str, Any] = {}
    if "geometry" in step.needs:
        stl = job_artifact(job, Artifact.Kind.STL)
        # A milling or laser planner reads the CadQuery solid's faces, not the mesh (its
        # revision's STEP); the slicer and the other steps read only the mesh.
        needs_step = step.name == "toolpath" and part.process in PROGRAM_PROCESSES
        loaded["geometry"] = BuiltPart(
            stl=stl.file.read(),
            svg=job_artifact(job, Artifact.Kind.SVG).file.read().decode(),
            meta=GeometryMeta.from_json(stl.meta),
            key=stl.input_key,
            step=_artifact_bytes(job, Artifact.Kind.STEP) if needs_step else b"",
        )
    if "report" in step.needs:
        loaded["report"] = ValidationReport.from_json(job.dfm_report or {})
    if "toolpath" in step.needs:
        loaded["toolpath"] = PlannedToolpath(
            meta=ToolpathMeta.from_json(job.toolpath_meta or {}),
            render=job_render(job),
        )
    return replace(so_far, **loaded)


def _artifact_bytes(job: Job, kind: str) -> bytes:
    """The job's file of this kind; b"" when it has none (an STL part has no STEP, an FDM
    toolpath no rendering)."""
    artifact = Artifact.objects.filter(job_links__job=job, job_links__kind=kind).first()
    if artifact is None:
        return b""
    with artifact.file.open("rb") as stored:
        return bytes(stored.read())


# --- what each shared step keeps ------------------------------------------------------------


def _keep_geometry(built: BuiltPart, so_far: JobSoFar) -> StepResult:
    meta = built.meta.to_json()
    outputs = [
        Output(Artifact.Kind.STL, built.key, "part.stl", built.stl, meta=meta),
        Output(Artifact.Kind.SVG, built.key, "drawing.svg", built.svg.encode(), meta=meta),
    ]
    if built.step:
        step = Output(Artifact.Kind.STEP, built.key, "part.step", built.step, meta=meta)
        outputs.insert(0, step)
    if built.reused:
        return StepResult(
            outputs=outputs, message="reused the geometry built earlier for the same configuration"
        )
    x, y, z = built.meta.bbox_mm
    return StepResult(
        outputs=outputs,
        message=f"built {x:.1f} x {y:.1f} x {z:.1f} mm, {built.meta.volume_mm3:.0f} mm³ "
        f"({built.meta.sandbox})",
    )


def _keep_report(report: ValidationReport, so_far: JobSoFar) -> StepResult:
    """The report on the job, and kept for the next job of the same mesh (pipeline.dfm_key)."""
    kept = Output(
        Artifact.Kind.DFM,
        pipeline.dfm_key(so_far),
        "dfm-report.json",
        json.dumps(report.to_json(), sort_keys=True).encode(),
        job_file=False,
    )
    return StepResult(
        outputs=[kept],
        fields={"dfm_report": report.to_json()},
        message=f"{len(report.capable)} machine(s) can make it; {len(report.warnings)} warning(s)",
    )


def _keep_toolpath(planned: PlannedToolpath, so_far: JobSoFar) -> StepResult:
    program = planned.program_meta()
    outputs = [
        Output(Artifact.Kind.GCODE, planned.key, planned.gcode_name, planned.gcode, meta=program)
    ]
    if planned.render:  # a milling program's simulated result, a laser program's cut paths
        outputs.append(
            Output(Artifact.Kind.RENDER, planned.key, planned.render_name, planned.render)
        )
    if planned.repaired is not None:
        repaired = planned.repaired
        outputs.insert(
            0,
            Output(
                Artifact.Kind.REPAIRED,
                repaired.key,
                "part-repaired.stl",
                repaired.content,
                meta=repaired.meta(),
            ),
        )
    return StepResult(
        outputs=outputs, fields={"toolpath_meta": planned.meta.to_json()}, message=planned.summary
    )


_KEEP: dict[str, Callable[[Any, JobSoFar], StepResult]] = {
    "geometry": _keep_geometry,
    "validation": _keep_report,
    "toolpath": _keep_toolpath,
}


def _adapter(step: pipeline.Step) -> Callable[[Job], StepResult]:
    """Load the job so far, run the shared step, say what to keep."""

    def run(job: Job) -> StepResult:
        so_far = job_so_far(job, step)
        return _KEEP[step.name](step.run(so_far), so_far)

    return run


# The status a job is in after each shared step before routing (pipeline.TO_ROUTING).
_AFTER = (
    Job.Status.GEOMETRY_BUILT,
    Job.Status.VALIDATED,
    Job.Status.TOOLPATH_READY,
)
# The job's status -> the step that takes it on: make_part's steps, in order.
STEPS: dict[str, Step] = {
    start: Step(shared.name, _adapter(shared), done)
    for shared, start, done in zip(
        pipeline.TO_ROUTING, (Job.Status.QUEUED, *_AFTER[:-1]), _AFTER, strict=True
    )
}
# A job whose G-code is verified is routed by the one batch router (production.machines.
# jobs_route_waiting, on the routing queue), never by a step here: two routers racing would
# overfill a machine's queue.


# --- running a step -------------------------------------------------------------------------


def job_advance(*, job_id: int, actor: str, expected: str | None = None, holder: str = "") -> bool:
    """Run the step of the status the message was sent for (`expected`); True when the job
    then waits for its next message (another step, or the batch router). Safe to call twice.

    A message whose job is no longer in `expected` (a duplicate, a late redelivery, a job
    cancelled meanwhile) is dropped with a log line and runs nothing. `expected=None` comes
    from messages sent before they carried it: they run the job's current step, as before.
    Slow work runs outside any transaction, under the job's claim (services.job_claim); its
    result is kept only if the job is still in the status the step started from. A part that
    cannot be made ends REJECTED. `holder` names the worker incarnation the claim records
    (production.cluster.holder_id); `actor` when empty.
    """
    job = (
        Job.objects.select_related(
            "line__revision__family", "line__material", "line__order__organisation"
        )
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        return False
    if expected is not None and job.status != expected:
        logger.info("%s: dropped a message for %s: the job is %s", job.number, expected, job.status)
        return False
    step = STEPS.get(job.status)
    if step is None:
        return False  # at the router, a machine, or ended: no step of ours to run
    if not services.job_claim(job=job, actor=actor, now=timezone.now(), holder=holder):
        logger.info("%s: dropped a message for %s: the job moved on", job.number, job.status)
        return False
    started_at, clock = timezone.now(), time.monotonic()
    try:
        result = step.run(job)
    except Rejected as refusal:
        # A DFM rejection keeps its whole report on the job, so the requester sees every check.
        kept = (
            StepResult(fields={"dfm_report": refusal.report.to_json()})
            if isinstance(refusal, ValidationRejected)
            else None
        )
        _finish(
            job, step, started_at, clock,
            to=Job.Status.REJECTED, reason=str(refusal), actor=actor, result=kept,
        )  # fmt: skip
        return False
    except geometry.BuildFailed as failure:
        _finish(
            job, step, started_at, clock, to=Job.Status.FAILED, reason=str(failure), actor=actor
        )
        return False
    except engines.ToolpathEngineError as failure:  # the slicer is missing, crashed or too slow
        reason = str(failure)
        _finish(job, step, started_at, clock, to=Job.Status.FAILED, reason=reason, actor=actor)
        return False
    saved = _finish(job, step, started_at, clock, to=step.done, result=result, actor=actor)
    return saved and step.done in lifecycle.RUNS_A_STEP  # toolpath_ready: the batch router's


# Where a job has the files its traveler prints (G-code verified) and is not ended.
HAS_TRAVELER_FILES = frozenset({*lifecycle.TO_ROUTE, *Job.ON_MACHINE, Job.Status.AWAITING_QC})


def job_traveler_render(*, job_id: int, actor: str) -> bool:
    """Render the job's traveler PDF and keep it with the job; True when it did. Moves
    nothing: the job goes on being routed, dispatched or made meanwhile (#19), and the PDF
    names the machine and site it was routed to by then (the one planned, before).

    Safe to call twice: a job that has its traveler, or no G-code yet, or has ended, renders
    nothing. Rendered outside any transaction; kept (with a "traveler" event that times it
    and its passport entry) only if no other run kept one meanwhile.
    """
    job = (
        Job.objects.select_related(
            "machine__site",
            "line__revision__family",
            "line__material",
            "line__order__organisation",
            "line__order__placed_by",
            "line__order__delivery_site",
        )
        .filter(pk=job_id)
        .first()
    )
    if job is None or job.status not in HAS_TRAVELER_FILES or not job.toolpath_meta:
        return False
    if job.job_artifacts.filter(kind=Artifact.Kind.TRAVELER).exists():
        return False
    started_at, clock = timezone.now(), time.monotonic()
    traveler = traveler_for(job, printed_at=started_at)
    key = input_key("traveler", travelers.traveler_html(traveler))
    stored = stored_artifact(Artifact.Kind.TRAVELER, key)
    pdf = stored.content if stored is not None else travelers.render_traveler(traveler)
    output = Output(
        Artifact.Kind.TRAVELER,
        key,
        f"traveler-{job.number}.pdf",
        pdf,
        # The site it names: a job routed elsewhere since gets a new print (station).
        meta={"site": traveler.site},
    )
    artifact = _store(output)
    finished_at = timezone.now()
    with transaction.atomic():
        _link, made = JobArtifact.objects.get_or_create(
            job=job, kind=Artifact.Kind.TRAVELER, defaults={"artifact": artifact}
        )
        if not made:
            return False  # another run kept one first
        job.refresh_from_db(fields=["status"])
        lifecycle.job_record(
            job,
            step="traveler",
            actor=actor,
            now=finished_at,
            message=f"traveler PDF ready to print ({traveler.site or 'no site yet'})",
            step_started_at=started_at,
            duration_ms=round((time.monotonic() - clock) * 1000),
        )
        files = [passport.Entry(output.kind, output.filename, artifact.sha256)]
        passport.passport_record(job=job, step="traveler", files=files, fields={}, now=finished_at)
    return True


def _finish(
    job: Job,
    step: Step,
    started_at: datetime,
    clock: float,
    *,
    to: str,
    actor: str,
    result: StepResult | None = None,
    reason: str = "",
) -> bool:
    """Claim the transition and keep the step's outputs; False if another run got there first."""
    finished_at = timezone.now()
    fields = dict(result.fields) if result else {}
    with transaction.atomic():
        moved = lifecycle.job_move(
            job,
            to=to,
            by=By.PIPELINE,
            step=step.name,
            actor=actor,
            now=finished_at,
            message=reason or (result.message if result else ""),
            step_started_at=started_at,
            duration_ms=round((time.monotonic() - clock) * 1000),
            reason=reason[:2000],
            **fields,
        )
        if not moved:
            return False  # another worker finished this step first; drop our result
        files = []
        for output in result.outputs if result else ():
            artifact = output.existing or _store(output)
            if not output.job_file:
                continue
            JobArtifact.objects.get_or_create(
                job=job, kind=output.kind, defaults={"artifact": artifact}
            )
            # The sha256 recorded when the file was first stored: a job reusing a file that
            # was changed on disk since records what it should be, and dispatch refuses it.
            files.append(passport.Entry(output.kind, output.filename, artifact.sha256))
        if to == step.done:
            passport.passport_record(
                job=job, step=step.name, files=files, fields=fields, now=finished_at
            )
    return True


def _store(output: Output) -> Artifact:
    """Save new bytes as an artifact, or return the one stored for the same inputs (a step
    that found it through `reuse`, or another job that stored it meanwhile).

    Each artifact's file is written once: its path follows from its inputs (artifact_path),
    and a file already there with the same bytes (left by a run whose transaction did not
    commit: a worker killed, the database gone) is taken as it is rather than written again
    under another name. A file this call wrote for a row that could not be saved is removed,
    unless the row saved first took that very file as its own: two workers storing the same
    inputs at once, the second finds the first one's file, keeps it and commits first.
    """
    assert output.content is not None
    existing = Artifact.objects.filter(kind=output.kind, input_key=output.input_key).first()
    if existing is not None:
        return existing
    sha256 = hashlib.sha256(output.content).hexdigest()
    artifact = Artifact(
        kind=output.kind,
        input_key=output.input_key,
        sha256=sha256,
        size=len(output.content),
        meta=output.meta,
    )
    name = artifact_path(artifact, output.filename)
    storage = artifact.file.storage
    wrote = False
    if storage.exists(name) and _sha256_of(storage, name) == sha256:
        artifact.file.name = name
    else:
        artifact.file.save(output.filename, ContentFile(output.content), save=False)
        wrote = True
    try:
        with transaction.atomic():
            artifact.save()
            return artifact
    except IntegrityError:
        kept = Artifact.objects.get(kind=output.kind, input_key=output.input_key)
        if wrote and kept.file.name != artifact.file.name:
            storage.delete(artifact.file.name)
        return kept


def _sha256_of(storage: Any, name: str) -> str:
    digest = hashlib.sha256()
    with storage.open(name, "rb") as stored:
        for chunk in iter(lambda: stored.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
