"""Previews: one configuration of a revision built for the browser viewer (GLB, SVG, STL),
and the DFM report of that geometry in a material.

`preview_request` runs in the web process: it finds the preview of the same configuration
or queues a new build. `preview_build` runs in a Celery worker (catalog.tasks): the slow
sandboxed build happens outside any transaction, and its result is kept only if the preview
is still the build this run claimed.

A ready preview's DFM report (which needs the machines) is production's: production.dfm_previews.
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
from catalog.models import PartPreview, PartRevision
from catalog.parameters import SchemaError, parameters_hash, parse_rules, parse_schema
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
        max_processes=settings.GEOMETRY_BUILD_MAX_PROCESSES,
        require_bwrap=settings.GEOMETRY_SANDBOX_REQUIRE_BWRAP,
        stl_tolerance_mm=settings.GEOMETRY_STL_TOLERANCE_MM,
        stl_angular_tolerance=settings.GEOMETRY_STL_ANGULAR_TOLERANCE,
        max_triangles=settings.CATALOG_MODEL_MAX_TRIANGLES,
    )


def revision_build(
    *, revision: PartRevision, parameters: dict[str, Any], limits: geometry.BuildLimits
) -> geometry.Geometry:
    """Build a revision (script or static model) in the sandbox, refusing parameters that
    break its schema or rules (Rejected). Slow: no transaction here."""
    model = b""
    if revision.kind == PartRevision.Kind.STATIC and revision.model_file:
        with revision.model_file.open("rb") as model_file:
            model = model_file.read()
    return geometry.build_revision(
        kind=revision.kind,
        script=revision.script,
        model_bytes=model,
        parameters=parameters,
        specs=parse_schema(revision.parameter_schema),
        rules=parse_rules(revision.rules or []),
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
    except (Rejected, geometry.BuildFailed, SchemaError) as refusal:
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
