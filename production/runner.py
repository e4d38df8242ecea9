"""Runs one pipeline step for one job: the bridge between the database and the pure steps.

Worker side only: the steps import CadQuery's sandbox runner, trimesh and WeasyPrint, which web
processes never load. Each adapter loads values from the database, calls a pure step, and
returns what to keep; `job_advance` keeps it only if the job is still where the step started
(the claim), so a redelivered message or a second worker does nothing twice.
"""

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import trimesh
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import geometry
from catalog.parameters import parse_schema
from catalog.qc import parse_qc_checks, parse_work_instructions, qc_lines
from microfactory.errors import Rejected
from production import lifecycle, machines, routing, services
from production.lifecycle import By
from production.models import Artifact, Job, JobArtifact, Machine
from production.pipeline import traveler as travelers
from production.pipeline.dfm.checks import Budget, Refused
from production.pipeline.dfm.integrity import make_solid
from production.pipeline.dfm.reading import read_stl
from production.pipeline.validation import (
    FAIL,
    MachineLimits,
    ValidationLimits,
    ValidationRejected,
    ValidationReport,
    dfm_report,
)
from production.toolpath import FdmProfile, engines
from production.toolpath.verify import verify_gcode

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


def input_key(*parts: object) -> str:
    """sha256 over the JSON of everything that determines an artifact."""
    payload = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def build_limits() -> geometry.BuildLimits:
    return geometry.BuildLimits(
        timeout_s=settings.GEOMETRY_BUILD_TIMEOUT_S,
        cpu_s=settings.GEOMETRY_BUILD_CPU_S,
        memory_mb=settings.GEOMETRY_BUILD_MEMORY_MB,
        output_mb=settings.GEOMETRY_BUILD_OUTPUT_MB,
        require_bwrap=settings.GEOMETRY_SANDBOX_REQUIRE_BWRAP,
        stl_tolerance_mm=settings.GEOMETRY_STL_TOLERANCE_MM,
        stl_angular_tolerance=settings.GEOMETRY_STL_ANGULAR_TOLERANCE,
    )


def geometry_key(
    *, revision_checksum: str, parameters: dict[str, Any], limits: geometry.BuildLimits
) -> str:
    return input_key(
        "geometry",
        revision_checksum,
        parameters,
        geometry.ENGINE_VERSION,
        limits.stl_tolerance_mm,
        limits.stl_angular_tolerance,
    )


def machine_facts(*, process: str, material: str | None = None) -> list[routing.MachineFacts]:
    """Every machine of a process as routing values, with its queue (production.machines
    builds them, toolpath engine included, so the web side shares one definition)."""
    facts = machines.routing_facts(process=process)
    return facts if material is None else routing.with_material(facts, material)


def fdm_profile(machine: routing.MachineFacts, *, material: Any) -> FdmProfile:
    """The slicer settings for one machine with one material loaded."""
    x, y, z = machine.build_volume_mm
    return FdmProfile(
        machine_model=machine.model or machine.name,
        bed_mm=(x, y),
        max_height_mm=z,
        flavour=machine.flavour,
        nozzle_mm=machine.nozzle_mm,
        nozzle_temp_c=material.nozzle_temp_c,
        bed_temp_c=material.bed_temp_c,
        filament_density_g_cm3=float(material.density_g_cm3),
    )


# --- the steps ------------------------------------------------------------------------------


def _build_geometry(job: Job) -> StepResult:
    revision = job.line.revision
    limits = build_limits()
    # A static model's checksum covers its file's sha256, so the key changes with the file.
    key = geometry_key(
        revision_checksum=revision.checksum, parameters=job.line.parameters, limits=limits
    )
    found = {a.kind: a for a in Artifact.objects.filter(input_key=key)}
    # A part made from an uploaded STL mesh has no STEP model.
    has_step = not (revision.kind == "static" and revision.model_format == "stl")
    kinds = [Artifact.Kind.STL, Artifact.Kind.SVG]
    if has_step:
        kinds.insert(0, Artifact.Kind.STEP)
    if all(k in found for k in kinds):
        return StepResult(
            outputs=[Output(k, key, found[k].file.name, existing=found[k]) for k in kinds],
            message="reused the geometry built earlier for the same configuration",
        )
    model = b""
    if revision.kind == "static" and revision.model_file:
        with revision.model_file.open("rb") as model_file:
            model = model_file.read()
    built = geometry.build_revision(
        kind=revision.kind,
        script=revision.script,
        model_bytes=model,
        parameters=job.line.parameters,
        limits=limits,
    )
    meta = {
        "bbox_mm": [round(v, 3) for v in built.bbox_mm],
        "volume_mm3": round(built.volume_mm3, 3),
        "area_mm2": round(built.area_mm2, 3),
        "sandbox": built.sandbox,
        "engine": geometry.ENGINE_VERSION,
    }
    outputs = [
        Output(Artifact.Kind.STL, key, "part.stl", built.stl, meta=meta),
        Output(Artifact.Kind.SVG, key, "drawing.svg", built.svg.encode(), meta=meta),
    ]
    if has_step:
        outputs.insert(0, Output(Artifact.Kind.STEP, key, "part.step", built.step, meta=meta))
    x, y, z = built.bbox_mm
    return StepResult(
        outputs=outputs,
        message=f"built {x:.1f} x {y:.1f} x {z:.1f} mm, {built.volume_mm3:.0f} mm³ "
        f"({built.sandbox})",
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
    )


def machine_limits(machine: routing.MachineFacts) -> MachineLimits:
    """A machine as validation sees it."""
    return MachineLimits(
        key=machine.key,
        process=machine.process,
        build_volume_mm=machine.build_volume_mm,
        nozzle_mm=machine.nozzle_mm,
        name=machine.name,
    )


def configuration_dfm(stl: bytes, *, process: str, material: Any) -> ValidationReport:
    """The full DFM report of a mesh against every machine of the process with the material
    loaded (or loadable), failed or not: a job's validation and a configuration's live report
    on the part page share it. Rejected when no machine has the material."""
    candidates = machine_facts(process=process, material=material.slug)
    if not candidates:
        raise Rejected(f"no machine has {material.name} loaded for this process")
    return dfm_report(
        stl, machines=[machine_limits(m) for m in candidates], limits=validation_limits()
    )


def _validate_part(job: Job) -> StepResult:
    """The DFM report against every machine with the material loaded. A failed check raises
    ValidationRejected, whose report job_advance keeps on the rejected job."""
    stl = job_artifact(job, Artifact.Kind.STL).file.read()
    report = configuration_dfm(stl, process=job.line.revision.process, material=job.line.material)
    if report.status == FAIL:
        raise ValidationRejected(report)
    return StepResult(
        fields={"dfm_report": report.to_json()},
        message=f"{len(report.capable)} machine(s) can make it; {len(report.warnings)} warning(s)",
    )


def _plan_toolpath(job: Job) -> StepResult:
    """Slice the part for the best capable machine: the mesh as validation repaired it,
    turned to the orientation its DFM report chose. A second run reuses the G-code."""
    line = job.line
    if line.revision.process != "fdm":
        raise Rejected(f"no toolpath engine for {line.revision.get_process_display()} yet")
    report = job.dfm_report or {}
    needs = routing.JobNeeds(
        process=line.revision.process,
        material=line.material.slug,
        extents_mm=tuple(report["extents_mm"]),
        allowed_machines=routing.dfm_capable(report),
    )
    candidates = routing.capable_machines(needs, machine_facts(process=needs.process))
    if not candidates:
        raise Rejected("no machine can make this part with the chosen material")
    target = candidates[0]
    profile = fdm_profile(target, material=line.material)
    built = job_artifact(job, Artifact.Kind.STL)
    mesh, mesh_output = mesh_to_slice(built, report)
    orientation = print_orientation(report, target.build_volume_mm)
    stl = oriented_stl(mesh.content, orientation.matrix)
    binary = settings.PRUSASLICER_BINARY
    # ToolpathEngineError here (engine not installed) ends the job FAILED.
    version = engines.engine_version(target.toolpath_engine, prusaslicer_binary=binary)
    # The orientation is part of the key: the same mesh turned another way is another program.
    key = input_key("toolpath", mesh.sha256, orientation.matrix, version, asdict(profile))
    existing = Artifact.objects.filter(kind=Artifact.Kind.GCODE, input_key=key).first()
    if existing is not None:
        meta = dict(existing.meta)
        output = Output(Artifact.Kind.GCODE, key, existing.file.name, existing=existing)
        program = existing.file.read()
    else:
        toolpath = engines.plan(
            stl,
            profile,
            engine=target.toolpath_engine,
            timeout_s=settings.PRUSASLICER_TIMEOUT_S,
            prusaslicer_binary=binary,
        )
        program = toolpath.gcode
        meta = {
            "engine": toolpath.engine,
            "layers": toolpath.layers,
            "filament_mm": round(toolpath.filament_mm, 1),
            "filament_g": round(toolpath.filament_g, 2),
            "estimated_time_s": round(toolpath.estimated_time_s),
            "layer_height_mm": profile.layer_height_mm,
            "nozzle_mm": profile.nozzle_mm,
        }
        output = Output(Artifact.Kind.GCODE, key, "part.gcode", toolpath.gcode, meta=meta)
    # Rejected when the G-code does not print this part, as oriented. Reused G-code is checked
    # again: cheap next to slicing, and the checks may have grown since it was stored.
    verification = verify_gcode(program, stl=stl, profile=profile)
    meta = {
        **meta,
        "planned_for": target.key,
        "profile_key": list(target.profile_key),
        "orientation": orientation.label,
        "orientation_matrix": [list(row) for row in orientation.matrix],
        "sliced_mesh": {"sha256": mesh.sha256, "repaired": mesh_output is not None},
        "verification": verification.to_json(),
    }
    turned = "" if is_identity(orientation.matrix) else f", printed {orientation.label}"
    repaired = ", repaired mesh" if mesh_output is not None else ""
    return StepResult(
        outputs=[output] if mesh_output is None else [mesh_output, output],
        fields={"toolpath_meta": meta},
        message=f"{meta['layers']} layers, {meta['filament_g']} g, "
        f"~{meta['estimated_time_s'] // 60} min for {target.model or target.name}"
        f"{turned}{repaired}",
    )


# --- the mesh the slicer gets ---------------------------------------------------------------

# Checks whose warning means validation changed the mesh (docs/validation.md, "Mesh integrity").
REPAIRS = frozenset(
    {"merged_vertices", "degenerate_faces", "duplicate_faces", "winding", "watertight", "normals"}
)
Matrix = tuple[tuple[float, ...], ...]
IDENTITY: Matrix = (
    (1.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0),
    (0.0, 0.0, 0.0, 1.0),
)
TURN_90_Z: Matrix = (
    (0.0, -1.0, 0.0, 0.0),
    (1.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0),
    (0.0, 0.0, 0.0, 1.0),
)


@dataclass(frozen=True)
class PrintOrientation:
    label: str
    matrix: Matrix  # 4 x 4, model to print coordinates


AS_MODELLED = PrintOrientation("as modelled", IDENTITY)


@dataclass(frozen=True)
class SliceMesh:
    content: bytes
    sha256: str


def was_repaired(report: dict[str, Any]) -> bool:
    """Validation changed the mesh: one of its safe repairs warned."""
    return any(c["name"] in REPAIRS and c["status"] == "warn" for c in report.get("checks", []))


def mesh_to_slice(built: Artifact, report: dict[str, Any]) -> tuple[SliceMesh, Output | None]:
    """The built STL, or the mesh as validation repaired it with the Output that stores it
    (found again, content-addressed, on a second run)."""
    if not was_repaired(report):
        return SliceMesh(built.file.read(), built.sha256), None
    limits = validation_limits()
    key = input_key("repaired-stl", built.sha256, limits.max_hole_perimeter_mm)
    existing = Artifact.objects.filter(kind=Artifact.Kind.REPAIRED, input_key=key).first()
    if existing is not None:
        found = SliceMesh(existing.file.read(), existing.sha256)
        return found, Output(Artifact.Kind.REPAIRED, key, existing.file.name, existing=existing)
    repaired = repaired_stl(built.file.read(), limits=limits)
    meta = {
        "repaired_from": built.sha256,
        "repairs": sorted(
            c["message"] for c in report["checks"] if c["name"] in REPAIRS and c["status"] == "warn"
        ),
    }
    output = Output(Artifact.Kind.REPAIRED, key, "part-repaired.stl", repaired, meta=meta)
    return SliceMesh(repaired, hashlib.sha256(repaired).hexdigest()), output


def repaired_stl(stl: bytes, *, limits: ValidationLimits) -> bytes:
    """The mesh as validation repairs it (welded, cleaned, rewound, small holes closed, shells
    turned outwards), as binary STL.

    Runs validation's integrity pass again, because production.pipeline.validation does not
    hand back its repaired mesh; the crossing-faces test, which repairs nothing, is skipped.
    """
    try:
        triangles, _ = read_stl(
            stl, max_file_bytes=limits.max_file_bytes, max_triangles=limits.max_triangles
        )
        solid, checks = make_solid(
            triangles,
            max_vertices=limits.max_vertices,
            max_hole_perimeter_mm=limits.max_hole_perimeter_mm,
            self_intersection_max_triangles=0,
            budget=Budget(limits.time_budget_s),
        )
    except Refused as refusal:  # validation passed this mesh: only changed limits get here
        raise Rejected(str(refusal)) from None
    if solid is None:
        raise Rejected(next(c.message for c in checks if c.status == "fail"))
    return _binary_stl(solid.mesh)


def print_orientation(
    report: dict[str, Any], build_volume_mm: tuple[float, float, float]
) -> PrintOrientation:
    """The orientation the DFM report chose, turned 90° about Z when only that fits the bed;
    as modelled when the report chose none (older reports) or it does not fit this machine
    (the part as modelled fits every capable machine)."""
    chosen = report.get("orientation")
    if not chosen:
        return AS_MODELLED
    x, y, z = chosen["extents_mm"]
    width, depth, height = build_volume_mm
    matrix = tuple(tuple(float(v) for v in row) for row in chosen["matrix"])
    if z > height:
        return AS_MODELLED
    if x <= width and y <= depth:
        return PrintOrientation(chosen["label"], matrix)
    if y <= width and x <= depth:
        turned = _compose(TURN_90_Z, matrix)
        return PrintOrientation(f"{chosen['label']}, turned 90° about Z", turned)
    return AS_MODELLED


def _compose(first: Matrix, second: Matrix) -> Matrix:
    """first @ second: `second` applied, then `first`."""
    return tuple(
        tuple(sum(first[i][k] * second[k][j] for k in range(4)) for j in range(4)) for i in range(4)
    )


def is_identity(matrix: Matrix) -> bool:
    return all(abs(matrix[i][j] - IDENTITY[i][j]) < 1e-9 for i in range(4) for j in range(4))


def oriented_stl(stl: bytes, matrix: Matrix) -> bytes:
    """The STL turned by a 4 x 4 matrix, as binary STL; unchanged for the identity."""
    if is_identity(matrix):
        return stl
    mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
    mesh.apply_transform(np.array(matrix, dtype=float))
    return _binary_stl(mesh)


def _binary_stl(mesh: trimesh.Trimesh) -> bytes:
    exported = mesh.export(file_type="stl")
    assert isinstance(exported, bytes)  # trimesh writes STL as binary
    return exported


def traveler_for(job: Job, *, printed_at: datetime) -> travelers.Traveler:
    """Every value the job's traveler prints, computed here so the template has no logic."""
    line, order = job.line, job.line.order
    return make_traveler(
        job_number=job.number,
        station_url=f"{settings.SITE_URL}/station/jobs/{job.pk}/",
        order_reference=order.number + (f" / {order.reference}" if order.reference else ""),
        organisation=order.organisation.name,
        requested_by=order.placed_by.get_full_name() or order.placed_by.get_username(),
        due_date=order.due_date.isoformat() if order.due_date else None,
        priority=order.get_priority_display(),
        revision=line.revision,
        parameters=line.parameters,
        quantity=job.quantity,
        material=line.material,
        geometry_meta=job_artifact(job, Artifact.Kind.STL).meta,
        drawing_svg=job_artifact(job, Artifact.Kind.SVG).file.read().decode(),
        toolpath_meta=job.toolpath_meta or {},
        dfm_report=job.dfm_report or {},
        printed_at=printed_at,
    )


def make_traveler(
    *,
    job_number: str,
    station_url: str,
    order_reference: str,
    organisation: str,
    requested_by: str,
    due_date: str | None,
    priority: str,
    revision: Any,
    parameters: dict[str, Any],
    quantity: int,
    material: Any,
    geometry_meta: dict[str, Any],
    drawing_svg: str | None,
    toolpath_meta: dict[str, Any],
    dfm_report: dict[str, Any],
    printed_at: datetime,
) -> travelers.Traveler:
    specs = {s.name: s for s in parse_schema(revision.parameter_schema)}
    planned = (
        Machine.objects.filter(slug=toolpath_meta.get("planned_for")).select_related("site").first()
    )
    minutes = int(toolpath_meta.get("estimated_time_s", 0)) // 60
    return travelers.Traveler(
        job_number=job_number,
        station_url=station_url,
        order_reference=order_reference,
        organisation=organisation,
        requested_by=requested_by,
        due_date=due_date,
        priority=priority,
        part_name=revision.family.name,
        revision_label=f"rev {revision.number}",
        revision_checksum=revision.checksum,
        parameters=tuple(
            travelers.TravelerParameter(
                name=name,
                label=specs[name].label if name in specs else name,
                value=str(value),
                unit=specs[name].unit if name in specs else "",
            )
            for name, value in sorted(parameters.items())  # JSONB reorders keys
        ),
        quantity=quantity,
        material=material.name,
        machine=f"{planned.model or planned.name} class" if planned else "to be routed",
        site=planned.site.name if planned else "",
        drawing_svg=drawing_svg,
        bbox_mm=tuple(geometry_meta.get("bbox_mm", (0, 0, 0))),
        toolpath_summary=(
            ("Engine", str(toolpath_meta.get("engine", ""))),
            ("Layers", str(toolpath_meta.get("layers", ""))),
            ("Layer height", f"{toolpath_meta.get('layer_height_mm', '')} mm"),
            ("Nozzle", f"{toolpath_meta.get('nozzle_mm', '')} mm"),
            ("Estimated time", f"{minutes // 60} h {minutes % 60:02d} min"),
            (
                "Filament",
                f"{toolpath_meta.get('filament_g', 0)} g / "
                f"{float(toolpath_meta.get('filament_mm', 0)) / 1000:.2f} m",
            ),
        ),
        dfm_warnings=tuple(
            c["message"] for c in dfm_report.get("checks", []) if c["status"] == "warn"
        ),
        work_instructions=work_instructions(revision),
        qc_checks=qc_checks(revision, specs, parameters),
        printed_at=printed_at.strftime("%Y-%m-%d %H:%M UTC"),
    )


GENERIC_INSTRUCTIONS = (
    "Check that the loaded material matches this traveler; note the spool number.",
    "Start the job from the station by scanning the QR code.",
    "Remove the part when the bed has cooled; remove skirt and stringing.",
    "Measure the critical dimensions and record QC on the station.",
)


def work_instructions(revision: Any) -> tuple[str, ...]:
    """The revision's own instructions, or the shop's generic ones for a part that has none."""
    return parse_work_instructions(revision.work_instructions or []) or GENERIC_INSTRUCTIONS


def qc_checks(
    revision: Any, specs: dict[str, Any], parameters: dict[str, Any]
) -> tuple[travelers.TravelerCheck, ...]:
    """The revision's QC checks for this configuration; without any, every length ± 0.2 mm."""
    declared = parse_qc_checks(revision.qc_checks or [], tuple(specs.values()))
    if declared:
        return tuple(
            travelers.TravelerCheck(
                label=line.label,
                nominal=line.nominal_text,
                tolerance=line.tolerance,
                nominal_mm=line.nominal,
                minus_mm=line.tolerance_minus,
                plus_mm=line.tolerance_plus,
            )
            for line in qc_lines(declared, parameters)
        )
    return tuple(
        travelers.TravelerCheck(
            label=specs[name].label,
            nominal=f"{value} {specs[name].unit}",
            tolerance="± 0.2",
            nominal_mm=float(value),
            minus_mm=0.2,
            plus_mm=0.2,
        )
        for name, value in sorted(parameters.items())
        if name in specs and specs[name].type == "length"
    )


def _render_traveler(job: Job) -> StepResult:
    traveler = traveler_for(job, printed_at=job.status_changed_at)
    html = travelers.traveler_html(traveler)
    key = input_key("traveler", html)
    existing = Artifact.objects.filter(kind=Artifact.Kind.TRAVELER, input_key=key).first()
    if existing is not None:
        output = Output(Artifact.Kind.TRAVELER, key, existing.file.name, existing=existing)
    else:
        pdf = travelers.render_traveler(traveler)
        output = Output(Artifact.Kind.TRAVELER, key, f"traveler-{job.number}.pdf", pdf)
    return StepResult(outputs=[output], message="traveler PDF ready to print")


STEPS: dict[str, Step] = {
    Job.Status.QUEUED: Step("geometry", _build_geometry, Job.Status.GEOMETRY_BUILT),
    Job.Status.GEOMETRY_BUILT: Step("validation", _validate_part, Job.Status.VALIDATED),
    Job.Status.VALIDATED: Step("toolpath", _plan_toolpath, Job.Status.TOOLPATH_READY),
    Job.Status.TOOLPATH_READY: Step("traveler", _render_traveler, Job.Status.TRAVELER_READY),
}
# A job whose traveler is ready is routed by the one batch router (production.machines.
# jobs_route_waiting, on the routing queue), never by a step here: two routers racing would
# overfill a machine's queue.


# --- running a step -------------------------------------------------------------------------


def job_artifact(job: Job, kind: str) -> Artifact:
    return Artifact.objects.get(job_links__job=job, job_links__kind=kind)


def job_advance(*, job_id: int, actor: str, expected: str | None = None) -> bool:
    """Run the step of the status the message was sent for (`expected`); True when the job
    then waits for its next message (another step, or the batch router). Safe to call twice.

    A message whose job is no longer in `expected` (a duplicate, a late redelivery, a job
    cancelled meanwhile) is dropped with a log line and runs nothing. `expected=None` comes
    from messages sent before they carried it: they run the job's current step, as before.
    Slow work runs outside any transaction, under the job's claim (services.job_claim); its
    result is kept only if the job is still in the status the step started from. A part that
    cannot be made ends REJECTED.
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
    if not services.job_claim(job=job, actor=actor, now=timezone.now()):
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
    except routing.NoMachineAvailable as waiting:
        logger.info("%s waits for a machine: %s", job.number, waiting)
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
    return saved and step.done in lifecycle.RUNS_A_STEP  # traveler_ready: the batch router's


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
    by = By.ROUTER if step.name == "routing" else By.PIPELINE
    with transaction.atomic():
        moved = lifecycle.job_move(
            job,
            to=to,
            by=by,
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
        for output in result.outputs if result else ():
            artifact = output.existing or _store(output)
            JobArtifact.objects.get_or_create(
                job=job, kind=output.kind, defaults={"artifact": artifact}
            )
    return True


def _store(output: Output) -> Artifact:
    """Save new bytes as an artifact, or return the one another job stored for the same inputs."""
    assert output.content is not None
    try:
        with transaction.atomic():
            artifact = Artifact(
                kind=output.kind,
                input_key=output.input_key,
                sha256=hashlib.sha256(output.content).hexdigest(),
                size=len(output.content),
                meta=output.meta,
            )
            artifact.file.save(output.filename, ContentFile(output.content), save=False)
            artifact.save()
            return artifact
    except IntegrityError:
        return Artifact.objects.get(kind=output.kind, input_key=output.input_key)
