"""Write paths for the catalog: creating, changing (drafts only) and publishing revisions, and
fitting a published revision's geometry estimator (catalog.estimator) in a worker."""

from __future__ import annotations  # File[bytes]: Django's File is generic only in the stubs

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import OperationalError

from catalog import estimator, geometry
from catalog.models import (
    Material,
    PartFamily,
    PartRevision,
    RevisionEstimator,
    alternative_processes_problem,
)
from catalog.parameters import (
    ParameterError,
    SchemaError,
    check_publishable,
    defaults,
    narrowed_schema,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from catalog.qc import parse_qc_checks, parse_work_instructions
from microfactory.errors import DomainError, Rejected

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevisionContent:
    """Everything a catalog admin writes into a revision, checked by revision_check."""

    kind: str = PartRevision.Kind.SCRIPT
    script: str = ""
    parameter_schema: list[dict[str, Any]] | None = None
    rules: list[dict[str, Any]] | None = None
    qc_checks: list[dict[str, Any]] | None = None
    work_instructions: list[str] | None = None


def revision_check(content: RevisionContent, *, has_model: bool) -> None:
    """Refuse a revision that could never build or print: DomainError with the reason."""
    schema = content.parameter_schema or []
    try:
        specs = parse_schema(schema)
        parse_rules(content.rules or [])
        parse_qc_checks(content.qc_checks or [], specs)
        parse_work_instructions(content.work_instructions or [])
    except SchemaError as error:
        raise DomainError(f"the revision is invalid: {error}") from error
    if content.kind == PartRevision.Kind.SCRIPT:
        if not content.script.strip():
            raise DomainError("a script revision needs a CadQuery script")
        if has_model:
            raise DomainError("a script revision takes no model file; choose the static kind")
    elif content.kind == PartRevision.Kind.STATIC:
        if not has_model:
            raise DomainError("a static revision needs a STEP or STL model file")
        if schema or content.rules:
            raise DomainError("a static model has no parameters: leave schema and rules empty")
        if content.script.strip():
            raise DomainError("a static revision runs no script: leave the script empty")
    else:
        raise DomainError(f"unknown revision kind '{content.kind}'")


def model_read(upload: File[bytes]) -> tuple[bytes, geometry.ModelInfo]:
    """An uploaded STEP or STL file's bytes and what it is; DomainError when it is unusable
    (empty, over the size limit, truncated, another format, too many triangles)."""
    limit = settings.CATALOG_MODEL_MAX_MB * 1024 * 1024
    if upload.size is not None and upload.size > limit:
        raise DomainError(
            f"the model file is {upload.size / 1024 / 1024:.1f} MB; "
            f"at most {settings.CATALOG_MODEL_MAX_MB} MB is allowed"
        )
    upload.seek(0)
    content = upload.read(limit + 1)
    try:
        info = geometry.inspect_model(
            content, max_bytes=limit, max_triangles=settings.CATALOG_MODEL_MAX_TRIANGLES
        )
    except geometry.ModelInvalid as error:
        raise DomainError(f"the model file is refused: {error}") from error
    return content, info


@transaction.atomic
def revision_create(
    *,
    family: PartFamily,
    script: str = "",
    parameter_schema: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] | None = None,
    process: str = "fdm",
    materials: list[Material],
    kind: str = PartRevision.Kind.SCRIPT,
    model_file: File[bytes] | None = None,
    description: str = "",
    work_instructions: list[str] | None = None,
    qc_checks: list[dict[str, Any]] | None = None,
    created_by: Any = None,
    alternative_processes: list[str] | None = None,
) -> PartRevision:
    """A new draft revision numbered after the family's last one; `alternative_processes`
    are the processes besides `process` it may be made by (orders.routes chooses per line)."""
    problem = alternative_processes_problem(process, alternative_processes or [])
    if problem is not None:
        raise DomainError(f"alternative processes: {problem}")
    content = RevisionContent(
        kind=kind,
        script=script,
        parameter_schema=parameter_schema or [],
        rules=rules or [],
        qc_checks=qc_checks or [],
        work_instructions=work_instructions or [],
    )
    revision_check(content, has_model=model_file is not None)
    last = family.revisions.aggregate(last=Max("number"))["last"] or 0
    revision = PartRevision(
        family=family,
        number=last + 1,
        kind=kind,
        script=script,
        parameter_schema=content.parameter_schema,
        rules=content.rules,
        process=process,
        alternative_processes=list(alternative_processes or []),
        description=description,
        work_instructions=content.work_instructions,
        qc_checks=content.qc_checks,
        created_by=created_by,
    )
    if model_file is not None:
        _attach_model(revision, model_file)
    revision.checksum = revision.compute_checksum()
    revision.save()
    revision.materials.set(materials)
    return revision


@transaction.atomic
def revision_update(
    *, revision: PartRevision, model_file: File[bytes] | None = None, materials: Any = None
) -> PartRevision:
    """Save a draft whose fields the caller changed in memory (the admin's form does that).

    Refused for a revision published meanwhile: what was published stays as it was.
    """
    stored = PartRevision.objects.select_for_update().get(pk=revision.pk)
    if stored.is_published:
        raise DomainError(f"{stored} is published and cannot change; create a new revision")
    if model_file is not None:
        _attach_model(revision, model_file)
    elif revision.kind == PartRevision.Kind.SCRIPT:
        revision.model_file, revision.model_sha256, revision.model_format = None, "", ""
    revision_check(
        RevisionContent(
            kind=revision.kind,
            script=revision.script,
            parameter_schema=revision.parameter_schema,
            rules=revision.rules,
            qc_checks=revision.qc_checks,
            work_instructions=revision.work_instructions,
        ),
        has_model=bool(revision.model_sha256),
    )
    revision.checksum = revision.compute_checksum()
    revision.save()
    if materials is not None:
        revision.materials.set(materials)
    return revision


@transaction.atomic
def revision_publish(*, revision: PartRevision, published_by: Any = None) -> PartRevision:
    """Make a draft orderable. Publishing twice is refused: a published revision is frozen."""
    revision = PartRevision.objects.select_for_update().get(pk=revision.pk)
    if revision.is_published:
        raise DomainError(f"{revision} is already published")
    if revision.checksum != revision.compute_checksum():
        raise DomainError(f"{revision} changed after it was created; create a new revision")
    if not revision.materials.exists():
        raise DomainError(f"{revision} offers no material; choose at least one")
    try:
        check_publishable(parse_schema(revision.parameter_schema))
    except SchemaError as error:
        raise DomainError(f"{revision} cannot be published: {error}") from error
    revision.published_at = timezone.now()
    revision.published_by = published_by
    revision.save(update_fields=["published_at", "published_by"])
    revision_estimator_queue(revision=revision, now=revision.published_at)
    return revision


@transaction.atomic
def revision_narrow(
    *,
    revision: PartRevision,
    parameter: str,
    minimum: float,
    maximum: float,
    created_by: Any = None,
    publish: bool = False,
    reason: str = "",
) -> PartRevision:
    """A new revision of the family that is `revision` with one numeric parameter's range
    narrowed to [minimum, maximum] (issue #15 point 6: a range where parts fail), through
    revision_create, published at once with `publish`. `revision` and the orders placed on
    it stay as they are. DomainError saying why for a range that is no narrowing (wider,
    empty, unchanged, off the step grid) or a static model. Each call makes a new revision."""
    if revision.kind != PartRevision.Kind.SCRIPT:
        raise DomainError(f"{revision} is a static model: it has no parameter ranges")
    try:
        schema = narrowed_schema(revision.parameter_schema or [], parameter, minimum, maximum)
        specs = parse_schema(schema)
        validate_parameters(specs, defaults(specs), rules=parse_rules(revision.rules or []))
    except ParameterError as error:
        raise DomainError(f"the narrowed defaults break a rule: {error}") from error
    except SchemaError as error:
        raise DomainError(str(error)) from error
    spec = next(s for s in specs if s.name == parameter)
    unit = f" {spec.unit}" if spec.unit else ""
    change = f"{spec.label} narrowed to {spec.min:g}–{spec.max:g}{unit} (r{revision.number})"
    narrowed = revision_create(
        family=revision.family,
        kind=revision.kind,
        script=revision.script,
        parameter_schema=schema,
        rules=revision.rules or [],
        process=revision.process,
        alternative_processes=list(revision.alternative_processes or []),
        materials=list(revision.materials.all()),
        description=f"{change}: {reason}" if reason else change,
        work_instructions=revision.work_instructions or [],
        qc_checks=revision.qc_checks or [],
        created_by=created_by,
    )
    if publish:
        narrowed = revision_publish(revision=narrowed, published_by=created_by)
    return narrowed


# --- the geometry estimator of a published revision --------------------------------------


def revision_estimator_queue(
    *, revision: PartRevision, now: datetime, send: bool = True
) -> RevisionEstimator:
    """Queue the fit of the revision's estimator (a worker measures its sample
    configurations once the caller's transaction commits; `send=False`: the caller runs
    revision_estimator_fit itself). Calling it again queues a new fit of the same revision:
    the latest fit wins."""
    fit, _ = RevisionEstimator.objects.update_or_create(
        revision=revision,
        defaults={"status": RevisionEstimator.Status.QUEUED, "message": "", "queued_at": now},
    )
    if send:
        transaction.on_commit(lambda: _enqueue_fit(revision.pk))
    return fit


def _enqueue_fit(revision_id: int) -> None:
    """With the broker down the fit stays queued; `manage.py fit_estimators` queues it again.
    Publishing still succeeds: quotes fall back to the envelope guess meanwhile."""
    from catalog import tasks

    try:
        # A queue of its own: a fit takes a minute or two, and order geometry never waits
        # behind the fits of a freshly published catalog.
        tasks.fit_estimator.apply_async(args=(revision_id,), queue="estimators")
    except OperationalError:
        logger.exception("could not queue the estimator fit of revision %s", revision_id)


def revision_estimator_fit(*, revision_id: int, limits: geometry.BuildLimits) -> str:
    """Measure the revision's sample configurations in the sandbox, fit its estimator and keep
    it; the estimator's status. Slow (seconds to a minute or two): runs in a worker, outside
    any transaction. A fit queued again meanwhile keeps its own result, not this one's."""
    # numpy: imported by the worker only, never by the web process that publishes.
    from catalog.estimator_fit import MIN_SAMPLES, FitError, Sample, fit_estimator

    fit = (
        RevisionEstimator.objects.select_related("revision").filter(revision_id=revision_id).first()
    )
    if fit is None:
        return "gone"
    claimed = RevisionEstimator.objects.filter(pk=fit.pk, queued_at=fit.queued_at)
    claimed.update(status=RevisionEstimator.Status.FITTING)
    revision = fit.revision
    try:
        specs = parse_schema(revision.parameter_schema)
        rules = parse_rules(revision.rules or [])
        configurations = estimator.sample_configurations(specs, rules, seed=revision.checksum)
        samples = [
            Sample(parameters=values, volume_mm3=m.volume_mm3, extents_mm=m.bbox_mm)
            for values, m in zip(
                configurations, _measure(revision, configurations, limits), strict=True
            )
            if isinstance(m, geometry.Measurement)
        ]
        if revision.kind == PartRevision.Kind.STATIC and samples:
            samples = samples * MIN_SAMPLES  # one shape, no parameters: a constant fit
        fitted = fit_estimator(estimator.variables_for(specs), samples)
    except (FitError, geometry.BuildFailed, SchemaError, Rejected) as failure:
        claimed.update(
            status=RevisionEstimator.Status.FAILED,
            message=str(failure)[:2000],
            finished_at=timezone.now(),
        )
        return RevisionEstimator.Status.FAILED
    claimed.update(
        status=RevisionEstimator.Status.READY,
        message="",
        fitted=fitted.to_json(),
        samples=fitted.samples,
        median_error=fitted.median_error,
        worst_error=fitted.worst_error,
        engine=geometry.ENGINE_VERSION,
        finished_at=timezone.now(),
    )
    return RevisionEstimator.Status.READY


def _measure(
    revision: PartRevision,
    configurations: list[dict[str, Any]],
    limits: geometry.BuildLimits,
) -> list[geometry.Measurement | Rejected]:
    """Script revisions: every configuration in one sandboxed child. A static model has one
    shape: one build of it."""
    if revision.kind == PartRevision.Kind.SCRIPT:
        return geometry.measure_geometry(revision.script, configurations, limits=limits)
    from catalog.previews import revision_build

    built = revision_build(revision=revision, parameters={}, limits=limits)
    return [geometry.Measurement(bbox_mm=built.bbox_mm, volume_mm3=built.volume_mm3)]


def _attach_model(revision: PartRevision, upload: File[bytes]) -> None:
    content, info = model_read(upload)
    revision.model_sha256 = info.sha256
    revision.model_format = info.format
    name = f"{revision.family.slug}-r{revision.number}-{info.sha256[:12]}.{info.format}"
    revision.model_file.save(name, ContentFile(content), save=False)


# --- customers' own models (orders.uploads) -------------------------------------------------


@transaction.atomic
def private_model_add(
    *,
    slug: str,
    name: str,
    model_file: File[bytes],
    materials: list[Material],
    process: str = "fdm",
    created_by: Any = None,
    now: datetime,
) -> PartRevision:
    """A customer's uploaded STEP or STL as a private family (hidden from the catalog) with
    one published static revision, so that previews, the DFM report, quotes, order lines and
    the pipeline treat it as any static part. DomainError when the file is unusable.

    Published at once and without a geometry estimator: it has no parameters, and its one
    build (the preview the upload asks for) measures it exactly before anything is quoted.
    """
    family = PartFamily.objects.create(slug=slug, name=name, private=True)
    revision = revision_create(
        family=family,
        kind=PartRevision.Kind.STATIC,
        model_file=model_file,
        process=process,
        materials=materials,
        description="uploaded by a customer",
        created_by=created_by,
    )
    revision.published_at, revision.published_by = now, created_by
    revision.save(update_fields=["published_at", "published_by"])
    return revision


@transaction.atomic
def model_promote(
    *,
    source: PartRevision,
    slug: str,
    name: str,
    category: str = "",
    description: str = "",
    materials: list[Material] | None = None,
    promoted_by: Any = None,
) -> PartRevision:
    """A new catalog part (family + published static revision) made from a private revision's
    model file: the same mesh bytes, so the same checksum, previews and DFM reports. The
    private revision stays as it is (its orders point at it). DomainError on a taken slug."""
    if not source.family.private or source.kind != PartRevision.Kind.STATIC:
        raise DomainError(f"{source} is not a customer's uploaded model")
    if PartFamily.objects.filter(slug=slug).exists():
        raise DomainError(f"a part with the slug '{slug}' exists already; choose another")
    family = PartFamily.objects.create(
        slug=slug, name=name, category=category, description=description
    )
    with source.model_file.open("rb") as stored:
        content = stored.read()
    revision = revision_create(
        family=family,
        kind=PartRevision.Kind.STATIC,
        model_file=ContentFile(content, name=f"{slug}.{source.model_format or 'stl'}"),
        process=source.process,
        materials=materials if materials is not None else list(source.materials.all()),
        description=f"promoted from a customer's upload ({source.family.name})",
        created_by=promoted_by,
    )
    return revision_publish(revision=revision, published_by=promoted_by)
