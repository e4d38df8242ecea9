"""Previews: one configuration of a revision built for the browser viewer (GLB, SVG, STL),
and the DFM report of that geometry in a material.

`preview_request` runs in the web process: it finds the preview of the same configuration
or queues a new build. `preview_build` runs in a Celery worker (catalog.tasks): the slow
sandboxed build happens outside any transaction, and its result is kept only if the preview
is still the build this run claimed.

`preview_dfm_request` and `preview_dfm_check` do the same for a ready preview's DFM report:
the web process only reads the machine set (production.machines, no geometry libraries) to
find or queue the report; the worker validates the mesh with production.runner's
`configuration_dfm`, the function a job's validation step uses, so both say the same.
"""

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from kombu.exceptions import OperationalError

from catalog import geometry
from catalog.models import Material, PartPreview, PartRevision, PreviewDfm
from catalog.parameters import parameters_hash
from microfactory.errors import DomainError, Rejected

logger = logging.getLogger(__name__)


class TooManyPreviews(DomainError):
    """The user has as many preview builds in flight as allowed (the API answers 429)."""


def build_limits(*, timeout_s: float | None = None) -> geometry.BuildLimits:
    """The sandbox limits from settings; a shorter wall-clock timeout where someone waits."""
    timeout = settings.GEOMETRY_BUILD_TIMEOUT_S if timeout_s is None else timeout_s
    return geometry.BuildLimits(
        timeout_s=timeout,
        cpu_s=min(settings.GEOMETRY_BUILD_CPU_S, max(1, int(timeout))),
        memory_mb=settings.GEOMETRY_BUILD_MEMORY_MB,
        output_mb=settings.GEOMETRY_BUILD_OUTPUT_MB,
        require_bwrap=settings.GEOMETRY_SANDBOX_REQUIRE_BWRAP,
        stl_tolerance_mm=settings.GEOMETRY_STL_TOLERANCE_MM,
        stl_angular_tolerance=settings.GEOMETRY_STL_ANGULAR_TOLERANCE,
        max_triangles=settings.CATALOG_MODEL_MAX_TRIANGLES,
    )


def revision_build(
    *, revision: PartRevision, parameters: dict[str, Any], limits: geometry.BuildLimits
) -> geometry.Geometry:
    """Build a revision (script or static model) in the sandbox. Slow: no transaction here."""
    model = b""
    if revision.kind == PartRevision.Kind.STATIC and revision.model_file:
        with revision.model_file.open("rb") as model_file:
            model = model_file.read()
    return geometry.build_revision(
        kind=revision.kind,
        script=revision.script,
        model_bytes=model,
        parameters=parameters,
        limits=limits,
    )


def preview_key(*, revision: PartRevision, parameters: dict[str, Any]) -> str:
    """What addresses a preview: the revision's checksum, the canonical parameters and the
    engine (CadQuery version and output format revision)."""
    payload = json.dumps(
        ["preview", revision.checksum, parameters, geometry.ENGINE_VERSION],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def preview_request(
    *, revision: PartRevision, parameters: dict[str, Any], user: Any, now: Any = None
) -> tuple[PartPreview, bool]:
    """The preview of this configuration, and whether a build was queued for it.

    `parameters` must be canonical (catalog.parameters.validate_parameters). A ready preview
    is returned as it is; one in flight is returned without a second build, unless it has
    been waiting longer than a build can take (its task was lost), and a failed one is queued
    again. Raises TooManyPreviews when the user already has the allowed number in flight.
    """
    from catalog import tasks

    now = now or timezone.now()
    key = preview_key(revision=revision, parameters=parameters)
    stale_before = now - timedelta(seconds=settings.CATALOG_PREVIEW_STALE_S)
    with transaction.atomic():
        preview = PartPreview.objects.select_for_update().filter(key=key).first()
        if preview is not None and (
            preview.status == PartPreview.Status.READY
            or (not preview.is_finished and preview.queued_at >= stale_before)
        ):
            return preview, False
        _check_in_flight(user, stale_before)
        if preview is None:
            try:
                with transaction.atomic():
                    preview = PartPreview.objects.create(
                        key=key,
                        revision=revision,
                        parameters=parameters,
                        parameters_hash=parameters_hash(parameters),
                        engine=geometry.ENGINE_VERSION,
                        requested_by=user,
                        queued_at=now,
                    )
            except IntegrityError:  # the same configuration asked for at the same moment
                return PartPreview.objects.get(key=key), False
        else:
            preview.status, preview.message = PartPreview.Status.QUEUED, ""
            preview.requested_by, preview.queued_at, preview.finished_at = user, now, None
            preview.save(
                update_fields=["status", "message", "requested_by", "queued_at", "finished_at"]
            )
        preview_id = preview.pk
        transaction.on_commit(lambda: _enqueue(tasks, preview_id))
    return preview, True


def _enqueue(tasks: Any, preview_id: int) -> None:
    """Queue the build. With the broker down the preview stays queued, and the next request
    for it after CATALOG_PREVIEW_STALE_S queues it again: the caller gets its 202, not a 500."""
    try:
        tasks.build_preview.apply_async(args=[preview_id], queue="geometry")
    except OperationalError:
        logger.exception("could not queue the build of preview %s", preview_id)


def _check_in_flight(user: Any, stale_before: Any) -> None:
    limit = settings.CATALOG_PREVIEW_MAX_IN_FLIGHT
    in_flight = PartPreview.objects.filter(
        requested_by=user,
        status__in=[PartPreview.Status.QUEUED, PartPreview.Status.BUILDING],
        queued_at__gte=stale_before,
    ).count()
    if in_flight >= limit:
        raise TooManyPreviews(
            f"you have {in_flight} preview builds in progress (at most {limit}); "
            "wait for one to finish"
        )


def preview_build(*, preview_id: int) -> str:
    """Build a queued preview and keep its files; return its status. Safe to call twice: a
    preview that is ready, failed or queued again meanwhile keeps what it has."""
    preview = PartPreview.objects.select_related("revision").filter(pk=preview_id).first()
    if preview is None or preview.is_finished:
        return preview.status if preview else "gone"
    claimed = PartPreview.objects.filter(pk=preview.pk, queued_at=preview.queued_at).exclude(
        status__in=[PartPreview.Status.READY, PartPreview.Status.FAILED]
    )
    claimed.update(status=PartPreview.Status.BUILDING)
    try:
        built = revision_build(
            revision=preview.revision, parameters=preview.parameters, limits=build_limits()
        )
    except (Rejected, geometry.BuildFailed) as refusal:
        claimed.update(
            status=PartPreview.Status.FAILED,
            message=str(refusal)[:2000],
            finished_at=timezone.now(),
        )
        return PartPreview.Status.FAILED
    name = preview.key
    files = {
        "glb": _saved(preview.glb, f"{name}.glb", built.glb),
        "svg": _saved(preview.svg, f"{name}.svg", built.svg.encode()),
        "stl": _saved(preview.stl, f"{name}.stl", built.stl),
    }
    kept = claimed.update(
        status=PartPreview.Status.READY,
        message="",
        bbox_mm=[round(size, 3) for size in built.bbox_mm],
        volume_mm3=round(built.volume_mm3, 3),
        finished_at=timezone.now(),
        **files,
    )
    if not kept:  # queued again meanwhile: that build writes its own files
        for field_file, file_name in zip(
            (preview.glb, preview.svg, preview.stl), files.values(), strict=True
        ):
            field_file.storage.delete(file_name)
        return PartPreview.objects.get(pk=preview.pk).status
    return PartPreview.Status.READY


def _saved(field_file: FieldFile, name: str, content: bytes) -> str:
    """Store the bytes under a fresh name and return it (the row is updated separately)."""
    return field_file.storage.save(
        field_file.field.generate_filename(None, name), ContentFile(content)
    )


# --- the DFM report of a preview ----------------------------------------------------------


def dfm_machines(*, process: str, material: Material) -> list[Any]:
    """The machines a configuration's DFM report is checked against (routing.MachineFacts):
    every machine of the process with the material loaded or loadable, as for a job."""
    from production import routing
    from production.machines import routing_facts

    return routing.with_material(routing_facts(process=process), material.slug)


def dfm_machines_key(machines: list[Any]) -> str:
    """What a DFM report depends on besides the mesh: the candidate machines as validation
    sees them, and the validation limits (settings VALIDATION_*)."""
    facts = sorted(
        [m.key, m.name, m.process, list(m.build_volume_mm), m.nozzle_mm] for m in machines
    )
    limits = {
        name: getattr(settings, name) for name in dir(settings) if name.startswith("VALIDATION_")
    }
    payload = json.dumps(["dfm", facts, limits], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def dfm_refusal(report: dict[str, Any]) -> str | None:
    """Why a DFM report says the part cannot be made (its first failed check), or None when
    a machine can make it."""
    if report["status"] != "fail" and report.get("capable"):
        return None
    failure = next((c for c in report["checks"] if c["status"] == "fail"), None)
    return failure["message"] if failure else "no machine can make it"


def known_refusal(
    *, revision: PartRevision, parameters: dict[str, Any], material: Material
) -> str | None:
    """The reason a configuration cannot be made, when the part page already checked it
    against today's machines; None when it can or was not checked (its job's own validation
    decides then). A few queries: order intake calls it for every line."""
    preview = PartPreview.objects.filter(
        key=preview_key(revision=revision, parameters=parameters)
    ).first()
    if preview is None:
        return None
    key = dfm_machines_key(dfm_machines(process=revision.process, material=material))
    dfm = PreviewDfm.objects.filter(
        preview=preview, material=material, machines_key=key, status=PreviewDfm.Status.READY
    ).first()
    return dfm_refusal(dfm.report) if dfm is not None and dfm.report else None


def preview_dfm_request(*, preview: PartPreview, material: Material, now: Any = None) -> PreviewDfm:
    """The DFM report of a ready preview in a material against today's machines; queued for a
    worker when there is none yet (a report takes a fraction of a second to a few seconds).

    A ready or failed report is returned as it is, one in flight too (unless it has waited
    longer than CATALOG_PREVIEW_STALE_S: its task was lost and it is queued again). With no
    machine for the material the report fails at once, without a worker.
    """
    from catalog import tasks

    if preview.status != PartPreview.Status.READY:
        raise DomainError(f"the preview is {preview.status}: its DFM report needs the geometry")
    now = now or timezone.now()
    machines = dfm_machines(process=preview.revision.process, material=material)
    key = dfm_machines_key(machines)
    stale_before = now - timedelta(seconds=settings.CATALOG_PREVIEW_STALE_S)
    with transaction.atomic():
        dfm = (
            PreviewDfm.objects.select_for_update()
            .filter(preview=preview, material=material, machines_key=key)
            .first()
        )
        if dfm is not None and (dfm.is_finished or dfm.queued_at >= stale_before):
            return dfm
        if dfm is None:
            try:
                with transaction.atomic():
                    dfm = PreviewDfm.objects.create(
                        preview=preview, material=material, machines_key=key, queued_at=now
                    )
            except IntegrityError:  # asked for by two requests at the same moment
                return PreviewDfm.objects.get(preview=preview, material=material, machines_key=key)
        if not machines:
            dfm.status, dfm.finished_at = PreviewDfm.Status.FAILED, now
            dfm.message = (
                f"no {preview.revision.get_process_display()} machine has {material.name} "
                "loaded or can load it"
            )
            dfm.save(update_fields=["status", "message", "finished_at"])
            return dfm
        dfm.status, dfm.queued_at = PreviewDfm.Status.QUEUED, now
        dfm.save(update_fields=["status", "queued_at"])
        dfm_id = dfm.pk
        transaction.on_commit(lambda: _enqueue_dfm(tasks, dfm_id))
    return dfm


def _enqueue_dfm(tasks: Any, dfm_id: int) -> None:
    """Queue the check; with the broker down the report stays queued and is queued again by
    a request after CATALOG_PREVIEW_STALE_S."""
    try:
        tasks.check_preview_dfm.apply_async(args=[dfm_id], queue="geometry")
    except OperationalError:
        logger.exception("could not queue the DFM check %s", dfm_id)


def preview_dfm_check(*, dfm_id: int) -> str:
    """Validate a queued report's mesh and keep the report; return its status. Safe to call
    twice: a finished report, or one queued again meanwhile, keeps what it has."""
    from production.runner import configuration_dfm  # trimesh stays out of web processes

    dfm = (
        PreviewDfm.objects.select_related("preview__revision", "material").filter(pk=dfm_id).first()
    )
    if dfm is None or dfm.is_finished:
        return dfm.status if dfm else "gone"
    claimed = PreviewDfm.objects.filter(pk=dfm.pk, queued_at=dfm.queued_at).exclude(
        status__in=[PreviewDfm.Status.READY, PreviewDfm.Status.FAILED]
    )
    claimed.update(status=PreviewDfm.Status.CHECKING)
    with dfm.preview.stl.open("rb") as stl_file:
        stl = stl_file.read()
    try:
        report = configuration_dfm(stl, process=dfm.preview.revision.process, material=dfm.material)
    except Rejected as refusal:
        claimed.update(
            status=PreviewDfm.Status.FAILED, message=str(refusal)[:2000], finished_at=timezone.now()
        )
        return PreviewDfm.Status.FAILED
    kept = claimed.update(
        status=PreviewDfm.Status.READY,
        message="",
        report=report.to_json(),
        finished_at=timezone.now(),
    )
    if not kept:  # queued again meanwhile: that check keeps its own report
        return str(PreviewDfm.objects.get(pk=dfm.pk).status)
    return PreviewDfm.Status.READY
