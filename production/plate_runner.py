"""The worker's plate pass: plan the waiting jobs' copies on plates, slice each plate as one
program and check it copy by copy, store it, then render each plate's traveler.

Worker side only (trimesh, shapely, the slicer, WeasyPrint): production.tasks.plan_plates
calls `plates_plan`. The same pure functions as `manage.py make_part --quantity N`
(production.plates.programs: plan_copies, plate_program, plate_map_svg) do the work; this
module reads the jobs, keeps the results and moves nothing but through production.lifecycle.

Safe to run twice at once: the slow work (arranging, slicing) runs outside any transaction,
and the plates are kept in one transaction under the routing lock only if every job is still
ready and on no plate (a copy is planned once: PlateCopy's unique job and copy), else the
plan is dropped and the next pass plans again with what is left.
"""

import hashlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trimesh
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from shapely.geometry.base import BaseGeometry

from microfactory.errors import Rejected
from microfactory.site_url import site_url
from production import lifecycle, machines, plating, station
from production.lifecycle import By
from production.models import Artifact, Job, Machine, Plate, PlateCopy
from production.pipeline import steps as pipeline
from production.pipeline.traveler import render_labels
from production.plates.arrange import Bed, bed_for
from production.plates.meshes import footprint
from production.plates.programs import PlateProgram, plan_copies, plate_map_svg, plate_program
from production.plates.traveler import PlateCopyRow, PlateJob, PlateTraveler, render_plate_traveler
from production.plates.values import KeepOutZone, Placement, TooManyPlates, keep_out_zones_from_json
from production.plates.values import Plate as ArrangedPlate
from production.runner import Output, job_so_far
from production.runner import _store as store_artifact
from production.toolpath import FdmProfile, engines

logger = logging.getLogger(__name__)

Status = Job.Status
_TOOLPATH = next(step for step in pipeline.STEPS if step.name == "toolpath")


@dataclass(frozen=True)
class _Part:
    job: Job
    mesh: trimesh.Trimesh
    profile: FdmProfile
    engine: str
    planned_for: str
    machine_label: str


def plates_plan(*, actor: str) -> list[int]:
    """One pass: plan every group of jobs due for plates now, then give every ready plate
    without a traveler its traveler. The ids of the plates made."""
    made: list[int] = []
    for group in plating.plan_groups(now=timezone.now()):
        try:
            made += _plan_group([w.job for w in group], actor=actor)
        except engines.ToolpathEngineError as failure:  # the slicer is missing or too slow
            logger.warning("plates for jobs %s: %s", [w.job for w in group], failure)
    made += plates_remake(actor=actor)
    for plate in Plate.objects.filter(status__in=plating.REMADE, traveler__isnull=True):
        _attach_traveler(plate)
    if made:
        with transaction.atomic():
            machines._on_commit_route_and_dispatch()  # noqa: SLF001  (route the new plates)
    return made


def keep_out_zones_of_profile(machine_slug: str) -> tuple[KeepOutZone, ...]:
    """The keep-out zones of every machine that runs the same G-code as `machine_slug` (the
    plate is planned for its profile and routed to any of them): a copy clear of all of them
    is clear on whichever machine prints it."""
    machine = Machine.objects.filter(slug=machine_slug).first()
    if machine is None:
        return ()
    alike = Machine.objects.filter(
        model=machine.model,
        nozzle_mm=machine.nozzle_mm,
        flavour=machine.flavour,
        build_x_mm=machine.build_x_mm,
        build_y_mm=machine.build_y_mm,
        build_z_mm=machine.build_z_mm,
        toolpath_engine=machine.toolpath_engine,
    ).values_list("keep_out_zones", flat=True)
    return tuple(zone for zones in alike for zone in keep_out_zones_from_json(zones))


def _part(job: Job) -> _Part:
    """The job's part as its program was sliced: the mesh in print orientation, the profile."""
    so_far = job_so_far(job, _TOOLPATH)
    given = pipeline.slice_inputs(so_far)
    mesh = trimesh.load_mesh(io.BytesIO(given.stl), file_type="stl")
    return _Part(
        job=job,
        mesh=mesh,
        profile=given.profile,
        engine=given.target.toolpath_engine,
        planned_for=given.target.key,
        machine_label=given.target.model or given.target.name,
    )


def _program(
    number: int, plate: ArrangedPlate, meshes: Mapping[int, trimesh.Trimesh], first: _Part
) -> PlateProgram:
    """One plate's program, sliced by the group's engine with the slicer's settings."""
    return plate_program(
        number,
        plate,
        meshes,
        first.profile,
        engine=first.engine,
        timeout_s=settings.PRUSASLICER_TIMEOUT_S,
        prusaslicer_binary=settings.PRUSASLICER_BINARY,
    )


def _map(program: PlateProgram, footprints: Mapping[int, BaseGeometry], bed: Bed) -> str:
    """The plate map: each copy's footprint numbered in placement order."""
    count = len(program.plate.placements)
    return plate_map_svg(
        program.plate, footprints, bed, labels=[str(n) for n in range(1, count + 1)]
    )


def _store_gcode(program: PlateProgram) -> Artifact:
    return store_artifact(
        Output(
            Artifact.Kind.GCODE,
            hashlib.sha256(b"plate-gcode:" + program.gcode).hexdigest(),
            f"plate-{program.number}.gcode",
            program.gcode,
            meta={"plate": program.to_json()},
        )
    )


def _plan_group(job_ids: Sequence[int], *, actor: str) -> list[int]:
    jobs = list(
        Job.objects.select_related(
            "line__revision__family", "line__material", "line__order__organisation"
        )
        .filter(pk__in=job_ids, status__in=lifecycle.TO_ROUTE)
        .order_by("pk")
    )
    if not jobs:
        return []
    parts: dict[int, _Part] = {}
    for job in jobs:
        try:
            parts[job.pk] = _part(job)
        except Rejected as refusal:
            _reject([job], reason=f"cannot plan its plate: {refusal}", actor=actor)
    if not parts:
        return []
    first = parts[min(parts)]
    bed = bed_for(first.profile, keep_out_zones=keep_out_zones_of_profile(first.planned_for))
    meshes = {pk: part.mesh for pk, part in parts.items()}
    quantities = {pk: part.job.quantity for pk, part in parts.items()}
    try:
        plan = plan_copies(
            meshes,
            quantities,
            bed,
            spacing_mm=settings.PLATE_SPACING_MM,
            max_plates=settings.PLATES_MAX_PER_PLAN,
        )
    except TooManyPlates as refusal:
        if len(parts) == 1:
            _reject([first.job], reason=str(refusal), actor=actor)
            return []
        # Together they need too many plates for one plan: each job is planned on its own.
        return [pk for job_id in sorted(parts) for pk in _plan_group([job_id], actor=actor)]
    if plan.arrangement.unplaced:
        unplaced = {u.job: u.reason for u in plan.arrangement.unplaced}
        for job_id, reason in sorted(unplaced.items()):
            count = sum(1 for u in plan.arrangement.unplaced if u.job == job_id)
            _reject(
                [parts[job_id].job],
                reason=f"{count} of {quantities[job_id]} copies fit no plate: {reason}",
                actor=actor,
            )
        return []  # the others are planned again on the next pass, without them
    programs: list[PlateProgram] = []
    for number, plate in enumerate(plan.arrangement.plates, start=1):
        try:
            programs.append(_program(number, plate, meshes, first))
        except Rejected as refusal:
            on_it = sorted({p.job for p in plate.placements})
            _reject(
                [parts[pk].job for pk in on_it],
                reason=f"plate program rejected: {refusal}",
                actor=actor,
            )
            return []
    maps = [_map(program, plan.footprints, bed) for program in programs]
    return _keep(parts, programs, maps, first=first, bed=bed, actor=actor)


def _keep(
    parts: dict[int, _Part],
    programs: list[PlateProgram],
    maps: list[str],
    *,
    first: _Part,
    bed: Bed,
    actor: str,
) -> list[int]:
    """Store the programs and keep the plates, if every job is still ready and on no plate."""
    gcodes = [_store_gcode(program) for program in programs]
    now = timezone.now()
    job = first.job
    made: list[int] = []
    try:
        with transaction.atomic():
            machines._lock_routing()  # noqa: SLF001  (never planned and routed plain at once)
            # Locked and counted here (PostgreSQL takes no lock for a COUNT ... FOR UPDATE).
            still = list(
                Job.objects.select_for_update()
                .filter(pk__in=list(parts), status__in=lifecycle.TO_ROUTE)
                .values_list("pk", flat=True)
            )
            if len(still) != len(parts) or PlateCopy.objects.filter(job__in=list(parts)).exists():
                logger.info("plates for jobs %s dropped: a job moved on meanwhile", sorted(parts))
                return []
            for program, gcode, svg in zip(programs, gcodes, maps, strict=True):
                plate = lifecycle.plate_create(
                    by=By.PIPELINE,
                    now=now,
                    planned_for=first.planned_for,
                    material=job.line.material,
                    batch_key=plating.batch_key(job.line.material.slug, job.toolpath_meta or {}),
                    process_profile={
                        name: (job.toolpath_meta or {}).get(name) for name in plating.PROFILE_FACTS
                    },
                    gcode=gcode,
                    map_svg=svg,
                    number_in_plan=program.number,
                    plates_in_plan=len(programs),
                    estimated_time_s=program.estimated_time_s,
                    filament_g=program.filament_g,
                    layers=program.layers,
                    engine=program.engine,
                    verification=program.verification.to_json(),
                )
                PlateCopy.objects.bulk_create(
                    PlateCopy(
                        plate=plate,
                        job_id=placement.job,
                        copy_index=placement.copy,
                        number=n,
                        x_mm=placement.x_mm,
                        y_mm=placement.y_mm,
                        rotation_deg=placement.rotation_deg,
                    )
                    for n, placement in enumerate(program.plate.placements, start=1)
                )
                made.append(plate.pk)
    except IntegrityError:  # another pass planned these copies first
        logger.info("plates for jobs %s dropped: planned by another pass", sorted(parts))
        return []
    logger.info(
        "%s: %d plate(s) for %d job(s) (%s copies), bed %s",
        actor,
        len(made),
        len(parts),
        sum(len(p.plate.placements) for p in programs),
        bed.size_mm,
    )
    for plate in Plate.objects.filter(pk__in=made):
        _attach_traveler(plate, machine_label=first.machine_label)
    return made


def plates_remake(*, actor: str) -> list[int]:
    """Make every plate not started that holds copies of cancelled jobs again without them:
    the others where they stood, sliced as one new program and checked copy by copy like any
    plate, with a new map, traveler and bag labels. The ids of the plates made again; one
    that started or changed meanwhile is left for the next pass (or to print as it is)."""
    pending = (
        Plate.objects.filter(status__in=plating.REMADE, copies__qc=plating.CANCELLED_COPY)
        .values_list("pk", flat=True)
        .distinct()
        .order_by("pk")
    )
    remade = []
    for plate_id in list(pending):
        try:
            if _remake(plate_id, actor=actor):
                remade.append(plate_id)
        except (Rejected, engines.ToolpathEngineError) as failure:
            # Fewer copies where a checked program placed them: cannot happen but for a
            # slicer gone; the plate keeps waiting (it cannot start) and the next pass retries.
            logger.warning("P-%06d not made again: %s", plate_id, failure)
            Plate.objects.filter(pk=plate_id).update(
                reason=f"not made again without its cancelled copies: {failure}"[:2000]
            )
    return remade


def _remake(plate_id: int, *, actor: str) -> bool:
    plate = Plate.objects.get(pk=plate_id)
    kept = list(
        plate.copies.exclude(qc=plating.CANCELLED_COPY)
        .select_related("job__line__revision__family", "job__line__material")
        .order_by("number")
    )
    if not kept:
        return False  # copies_cancel cancels a plate with nothing left
    parts = {copy.job_id: _part(copy.job) for copy in kept}
    first = parts[min(parts)]
    meshes = {pk: part.mesh for pk, part in parts.items()}
    bed = bed_for(
        first.profile,
        keep_out_zones=keep_out_zones_of_profile(plate.planned_for or first.planned_for),
    )
    arranged = ArrangedPlate(
        tuple(Placement(c.job_id, c.copy_index, c.x_mm, c.y_mm, c.rotation_deg) for c in kept)
    )
    program = _program(plate.number_in_plan, arranged, meshes, first)
    svg = _map(program, {pk: footprint(mesh) for pk, mesh in meshes.items()}, bed)
    gcode = _store_gcode(program)
    now = timezone.now()
    with transaction.atomic():
        locked = Plate.objects.select_for_update().filter(pk=plate.pk, status__in=plating.REMADE)
        if not locked.exists() or sorted(
            plate.copies.exclude(qc=plating.CANCELLED_COPY).values_list("pk", flat=True)
        ) != sorted(c.pk for c in kept):
            logger.info("%s not made again: it moved on meanwhile", plate.number)
            return False
        gone = list(plate.copies.filter(qc=plating.CANCELLED_COPY).order_by("number"))
        PlateCopy.objects.filter(pk__in=[c.pk for c in gone]).delete()
        # In map order: each copy takes a number no other copy still holds.
        for number, copy in enumerate(kept, start=1):
            if copy.number != number:
                PlateCopy.objects.filter(pk=copy.pk).update(number=number)
        locked.update(
            gcode=gcode, traveler=None, labels=None, map_svg=svg,
            estimated_time_s=program.estimated_time_s, filament_g=program.filament_g,
            layers=program.layers, engine=program.engine,
            verification=program.verification.to_json(), reason="",
        )  # fmt: skip
        without = ", ".join(sorted({c.job.number for c in gone})) or "cancelled copies"
        message = (
            f"{plate.number} made again without the cancelled copies of {without}: "
            f"{len(kept)} copies, {program.estimated_time_s} s, {program.filament_g} g, "
            "checked copy by copy"
        )
        for job in {c.job_id: c.job for c in [*kept, *gone]}.values():
            lifecycle.job_record(job, step="plate-remake", actor=actor, now=now, message=message)
    _attach_traveler(Plate.objects.get(pk=plate.pk), machine_label=first.machine_label)
    logger.info("%s", message)
    return True


def _attach_traveler(plate: Plate, *, machine_label: str = "") -> None:
    """Render the plate's traveler (map, jobs, a QC row per copy, its QR code for the
    station) and its jobs' bag labels, and keep them with the plate; a plate that has its
    traveler is left alone."""
    copies = list(
        plate.copies.select_related(*(f"job__{name}" for name in station.JOB_RELATED)).order_by(
            "number"
        )
    )
    jobs: dict[int, Job] = {}
    for copy in copies:
        jobs.setdefault(copy.job_id, copy.job)
    traveler = PlateTraveler(
        plate_reference=plate.number,
        plate_number=plate.number_in_plan,
        plates_in_plan=plate.plates_in_plan,
        printed_at=f"{timezone.now():%Y-%m-%d %H:%M}",
        machine=machine_label or plate.planned_for,
        material=plate.material.name,
        engine=plate.engine,
        layers=plate.layers,
        filament_g=plate.filament_g,
        estimated_time_s=plate.estimated_time_s,
        map_svg=plate.map_svg,
        jobs=tuple(
            PlateJob(
                job_number=job.number,
                part_name=job.line.revision.family.name,
                revision_label=f"r{job.line.revision.number}",
                material=job.line.material.name,
                order_reference=job.line.order.number,
                copies=sum(1 for c in copies if c.job_id == job.pk),
            )
            for job in jobs.values()
        ),
        copies=tuple(
            PlateCopyRow(c.number, c.job.number, c.copy_index, c.job.quantity) for c in copies
        ),
        qr_url=f"{site_url()}/station/plates/{plate.pk}/",
    )
    pdf = render_plate_traveler(traveler)
    made_of = json.dumps({"plate": plate.pk, "gcode": plate.gcode_id}).encode()
    artifact = store_artifact(
        Output(
            Artifact.Kind.TRAVELER,
            hashlib.sha256(made_of + b"plate-traveler").hexdigest(),
            f"traveler-{plate.number}.pdf",
            pdf,
            meta={},
        )
    )
    # One bag label per job on it, printed with the traveler (the lot and the routed site are
    # not known yet: the label leaves them to be written in, as the traveler does).
    labels = store_artifact(
        Output(
            Artifact.Kind.LABELS,
            hashlib.sha256(made_of + b"plate-labels").hexdigest(),
            f"labels-{plate.number}.pdf",
            render_labels([station.job_label(job) for job in jobs.values()]),
            meta={"jobs": [job.number for job in jobs.values()]},
        )
    )
    Plate.objects.filter(pk=plate.pk, traveler__isnull=True).update(
        traveler=artifact, labels=labels
    )


def _reject(jobs: Sequence[Job], *, reason: str, actor: str) -> None:
    """Jobs no plate can take: rejected with the reason (never dropped silently). The plate
    planner is the router's first half: its refusals are the router's."""
    now = timezone.now()
    for job in jobs:
        with transaction.atomic():
            lifecycle.job_move(
                job,
                to=Status.REJECTED,
                by=By.ROUTER,
                step="plates",
                actor=actor,
                now=now,
                message=reason,
                reason=reason[:2000],
            )
