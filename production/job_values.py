"""A job's rows as the pipeline's values (production.pipeline.values): what the runner hands
the steps, and what the station reads to reprint a traveler.

No CAD or mesh library is imported here, directly or through the steps: the web process
imports this module (the station's job page shows the traveler's checklist).
"""

from dataclasses import replace
from datetime import datetime
from typing import Any

from catalog.models import Material, PartRevision, Process
from catalog.parameters import parse_rules, parse_schema
from catalog.qc import parse_qc_checks, parse_work_instructions
from microfactory.site_url import site_url
from production.models import Artifact, Job, Machine
from production.passport import passport_url
from production.pipeline import traveler as travelers
from production.pipeline.values import (
    GeometryMeta,
    MaterialFacts,
    Paperwork,
    PartSpec,
    PlannedMachine,
    ToolpathMeta,
    dfm_warnings,
)


def material_facts(material: Material) -> MaterialFacts:
    return MaterialFacts(
        slug=material.slug,
        name=material.name,
        nozzle_temp_c=material.nozzle_temp_c,
        bed_temp_c=material.bed_temp_c,
        density_g_cm3=float(material.density_g_cm3),
        sheet_thicknesses_mm=tuple(sorted(float(t) for t in material.sheet_thicknesses_mm or ())),
    )


def part_spec(
    *,
    revision: PartRevision,
    parameters: dict[str, Any],
    material: Material,
    with_model: bool = False,
    process: str = "",
) -> PartSpec:
    """A revision configured with parameter values, in a material. `with_model` reads a static
    revision's model file, which only the build step needs."""
    model = b""
    if with_model and revision.kind == PartRevision.Kind.STATIC and revision.model_file:
        with revision.model_file.open("rb") as model_file:
            model = model_file.read()
    specs = parse_schema(revision.parameter_schema)
    return PartSpec(
        family_name=revision.family.name,
        revision_number=revision.number,
        revision_checksum=revision.checksum,
        kind=revision.kind,
        # An order line's route may be one of the revision's alternative processes.
        process=process or revision.process,
        process_label=Process(process or revision.process).label,
        material=material_facts(material),
        parameters=parameters,
        script=revision.script,
        model=model,
        # A part made from an uploaded STL mesh has no STEP model.
        has_step=not (revision.kind == PartRevision.Kind.STATIC and revision.model_format == "stl"),
        specs=specs,
        rules=parse_rules(revision.rules or []),
        work_instructions=parse_work_instructions(revision.work_instructions or []),
        qc_checks=parse_qc_checks(revision.qc_checks or [], specs),
    )


def job_part(job: Job, *, with_model: bool = False) -> PartSpec:
    line = job.line
    return part_spec(
        revision=line.revision,
        parameters=line.parameters,
        material=line.material,
        with_model=with_model,
        process=line.process,
    )


def paperwork(job: Job, *, printed_at: datetime) -> Paperwork:
    """Who the job is for, as its traveler prints it."""
    order = job.line.order
    return Paperwork(
        job_number=job.number,
        station_url=f"{site_url()}/station/jobs/{job.pk}/",
        order_reference=order.number + (f" / {order.reference}" if order.reference else ""),
        organisation=order.organisation.name,
        requested_by=order.placed_by.get_full_name() or order.placed_by.get_username(),
        due_date=order.due_date.isoformat() if order.due_date else None,
        priority=order.get_priority_display(),
        quantity=job.quantity,
        printed_at=printed_at,
        passport_url=passport_url(job),
        delivery_site=order.delivery_site.name if order.delivery_site else "",
    )


def job_artifact(job: Job, kind: str) -> Artifact:
    return Artifact.objects.get(job_links__job=job, job_links__kind=kind)


def planned_machine(slug: str) -> PlannedMachine | None:
    machine = Machine.objects.filter(slug=slug).select_related("site").first() if slug else None
    if machine is None:
        return None
    return PlannedMachine(machine.name, machine.model, machine.site.name)


def traveler_for(job: Job, *, printed_at: datetime, lot: str = "") -> travelers.Traveler:
    """Every value the job's traveler prints, from what the pipeline stored for it: the same
    Traveler the traveler step built, but as of `printed_at` (and naming its spool's `lot`)."""
    toolpath = ToolpathMeta.from_json(job.toolpath_meta or {})
    planned = planned_machine(toolpath.planned_for)
    routed = job.machine
    if routed is not None:  # made where its machine is, whichever site it was planned for
        site = routed.site.name
        planned = (
            replace(planned, site=site)
            if planned is not None
            else PlannedMachine(routed.name, routed.model, site)
        )
    return travelers.traveler_of(
        part=job_part(job),
        paperwork=paperwork(job, printed_at=printed_at),
        geometry=GeometryMeta.from_json(job_artifact(job, Artifact.Kind.STL).meta),
        drawing_svg=job_artifact(job, Artifact.Kind.SVG).file.read().decode(),
        toolpath=toolpath,
        dfm_warnings=dfm_warnings(job.dfm_report or {}),
        planned=planned,
        lot=lot,
        render=job_render(job),
    )


def job_render(job: Job) -> bytes:
    """A milling or laser job's program rendering (Artifact.Kind.RENDER); b"" without one."""
    artifact = Artifact.objects.filter(
        job_links__job=job, job_links__kind=Artifact.Kind.RENDER
    ).first()
    if artifact is None:
        return b""
    with artifact.file.open("rb") as stored:
        return bytes(stored.read())


def traveler_site(job: Job) -> str | None:
    """The site a traveler printed now names for the job (its machine's, once routed); None
    when it is not routed, so whatever the pipeline printed stands."""
    return job.machine.site.name if job.machine is not None else None
