"""Customers' own models: a requester uploads a STEP or STL file for a part that is not in the
catalog, sees its DFM report and instant quote, and orders it; a catalog admin may promote it
into the catalog.

An upload becomes a private static revision (catalog.services.private_model_add: a family
hidden from the catalog, orderable only by the uploading organisation), so the rest of the
system needs nothing new: the preview build converts a STEP file to a mesh (or checks an STL
with trimesh) in the geometry sandbox on a worker, exactly as for a catalog static model; the
DFM report, the quote, order lines and the pipeline read that revision.

The web process only checks what the bytes are (catalog.geometry.inspect_model: empty, too
big, truncated, not STEP or STL, too many triangles) and refuses a bad file at once with the
reason. What only a full parse can tell (a STEP file OpenCascade cannot read, a mesh of
several bodies) is the build's refusal, and a mesh open beyond repair is the DFM report's: the
upload's page and API show either as the reason it cannot be made.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from catalog import geometry
from catalog.models import Material, PartPreview, PartRevision, Process
from catalog.services import model_promote, private_model_add
from microfactory.errors import DomainError
from orders.models import CustomerUpload
from orders.quotes import DfmNote, LineFacts, dfm_notes, line_facts, line_quote
from orders.quoting import Quote
from orders.services import LineRequest, OrderInvalid, line_check, line_makeable, membership_for
from production import public

NAME_MAX_CHARS = 200


class UploadRefused(DomainError):
    """The file or its description cannot be used; the message says why."""


class TooManyUploads(UploadRefused):
    """The organisation uploaded ORDER_UPLOAD_MAX_PER_DAY models in the last 24 hours."""


# --- uploading --------------------------------------------------------------------------------


def upload_create(
    *, user: Any, name: str, upload: UploadedFile, now: datetime | None = None
) -> CustomerUpload:
    """Check an uploaded STEP or STL file, keep it as the organisation's private part and queue
    its build (a worker converts or checks it in the sandbox). UploadRefused with the reason
    when the file is unusable as sent; nothing is stored then."""
    now = now or timezone.now()
    membership = membership_for(user)
    organisation = membership.organisation
    name = " ".join(name.split())
    if not name:
        raise UploadRefused("say what the part is (a name)")
    if len(name) > NAME_MAX_CHARS:
        raise UploadRefused(f"the name is longer than {NAME_MAX_CHARS} characters")
    recent = CustomerUpload.objects.filter(
        organisation=organisation, created_at__gte=now - timedelta(days=1)
    ).count()
    if recent >= settings.ORDER_UPLOAD_MAX_PER_DAY:
        raise TooManyUploads(
            f"{organisation.name} uploaded {recent} models in the last 24 hours, the most "
            "allowed; try again tomorrow or ask the factory"
        )
    content, info = _read(upload)
    materials = list(Material.objects.filter(active=True, process=Process.FDM))
    if not materials:
        raise UploadRefused("the factory offers no material for 3D printing at the moment")
    file_name = (upload.name or f"model.{info.format}")[-255:]
    from catalog.previews import preview_request

    with transaction.atomic():
        revision = private_model_add(
            slug=f"upload-{uuid.uuid4().hex[:16]}",
            name=name,
            model_file=ContentFile(content, name=f"upload.{info.format}"),
            materials=materials,
            created_by=user,
            now=now,
        )
        customer_upload = CustomerUpload.objects.create(
            organisation=organisation,
            uploaded_by=user,
            name=name,
            file_name=file_name,
            format=info.format,
            size=info.size,
            triangles=info.triangles,
            revision=revision,
            created_at=now,
        )
        # The one build: a STEP file converted, an STL checked, both measured. Refused (and
        # nothing kept) when the user already has as many builds in flight as allowed.
        preview_request(revision=revision, parameters={}, user=user, now=now)
    return customer_upload


def _read(upload: UploadedFile) -> tuple[bytes, geometry.ModelInfo]:
    """The file's bytes and what it is, or UploadRefused with the reason. The size is checked
    before anything is read: a huge file costs nothing but its transfer."""
    limit = settings.ORDER_UPLOAD_MAX_MB * 1024 * 1024
    if upload.size is not None and upload.size > limit:
        raise UploadRefused(
            f"the file is {upload.size / 1024 / 1024:.1f} MB; "
            f"at most {settings.ORDER_UPLOAD_MAX_MB} MB is allowed"
        )
    upload.seek(0)
    content = upload.read(limit + 1)
    try:
        info = geometry.inspect_model(
            content, max_bytes=limit, max_triangles=settings.ORDER_UPLOAD_MAX_TRIANGLES
        )
    except geometry.ModelInvalid as error:
        raise UploadRefused(f"the file is refused: {error}") from None
    return content, info


# --- what the upload is now -------------------------------------------------------------------


@dataclass(frozen=True)
class UploadState:
    """Where an upload is: its file being checked, refused with a reason, or ready to quote."""

    status: str  # "checking", "rejected" or "ready"
    reason: str  # why it was rejected
    preview: PartPreview | None


def upload_state(upload: CustomerUpload, *, now: datetime | None = None) -> UploadState:
    """The upload's build (its preview): ready, refused with the reason, or still checking.
    A build whose task was lost (queued longer than a build can take) is queued again; a
    refused one is not (the same file is refused the same way)."""
    from catalog.previews import TooManyPreviews, preview_key, preview_request

    now = now or timezone.now()
    revision = upload.revision
    preview = PartPreview.objects.filter(key=preview_key(revision=revision, parameters={})).first()
    stale = now - timedelta(seconds=settings.CATALOG_PREVIEW_STALE_S)
    if preview is None or (not preview.is_finished and preview.queued_at < stale):
        try:
            preview, _ = preview_request(revision=revision, parameters={}, user=None, now=now)
        except TooManyPreviews:  # only a user's builds are counted: not reached with None
            pass
    if preview is None or not preview.is_finished:
        return UploadState("checking", "", preview)
    if preview.status == PartPreview.Status.FAILED:
        return UploadState("rejected", preview.message, preview)
    return UploadState("ready", "", preview)


@dataclass(frozen=True)
class UploadQuote:
    """An upload in one material and quantity: the line as an order would hold it, its quote,
    the quick DFM notes and the full DFM report (None until the file is built)."""

    state: UploadState
    line: dict[str, Any]
    facts: LineFacts
    quote: Quote
    notes: list[DfmNote]
    report: public.LiveDfm | None


def upload_quote(
    *, upload: CustomerUpload, material: str, quantity: int, delivery_site: str = ""
) -> UploadQuote:
    """Check, quote and DFM-check the upload as one order line would be (OrderInvalid with
    the field errors); the report is queued for a worker the first time it is asked for."""
    line = line_check(
        upload_line(upload, material=material, quantity=quantity), organisation=upload.organisation
    )
    state = upload_state(upload)
    ready = state.preview if state.status == "ready" else None
    facts = line_facts(**line, now=timezone.now(), preview=ready, delivery_site=delivery_site)
    report = public.live_dfm(preview=ready, material=line["material"]) if ready else None
    return UploadQuote(
        state=state,
        line=line,
        facts=facts,
        quote=line_quote(facts),
        notes=dfm_notes(facts, state.preview),
        report=report,
    )


def upload_line(upload: CustomerUpload, *, material: str, quantity: int) -> LineRequest:
    """The order line of an upload: its private part, no parameters."""
    return LineRequest(
        part=upload.revision.family.slug,
        parameters={},
        material=material,
        quantity=quantity,
        revision=upload.revision.number,
    )


def upload_orderable(upload: CustomerUpload, *, material: str, quantity: int) -> dict[str, Any]:
    """The checked line, ready for the cart or an order: refused (OrderInvalid) until the file
    is built, when its build was refused, or when its DFM report says no machine can make it."""
    line = line_check(
        upload_line(upload, material=material, quantity=quantity), organisation=upload.organisation
    )
    state = upload_state(upload)
    if state.status == "checking":
        raise OrderInvalid({"upload": ["the file is still being checked; order it once ready"]})
    if state.status == "rejected":
        raise OrderInvalid({"upload": [f"the file cannot be made: {state.reason}"]})
    line_makeable(line)
    return line


# --- drawn in another unit -------------------------------------------------------------------


def upload_rescale(
    *, upload: CustomerUpload, user: Any, unit: str, now: datetime | None = None
) -> CustomerUpload:
    """Take the uploaded mesh as drawn in `unit` ("inch", "m", "cm"; "mm" undoes it): the
    DFM report offers this when millimetres make no sense of the file. The file as sent is
    kept (`unscaled_revision`); the upload's part becomes a scaled copy, built and checked
    anew in millimetres, so every check, the quote and new orders see the real size. Orders
    placed before keep the revision they were placed on. UploadRefused for a STEP file (it
    says its own unit), an unknown unit, or an upload in the catalog already."""
    now = now or timezone.now()
    if unit not in public.MESH_UNITS:
        raise UploadRefused(f"unknown unit {unit!r}; one of {', '.join(public.MESH_UNITS)}")
    scale = public.MESH_UNITS[unit]
    from catalog.previews import preview_request

    with transaction.atomic():
        upload = CustomerUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.format != "stl":
            raise UploadRefused("a STEP file says its own unit: it is read in millimetres")
        if upload.promoted_to_id is not None:
            raise UploadRefused(f"{upload.number} is in the catalog already: it keeps its size")
        if scale == upload.scale:
            return upload
        original = upload.unscaled_revision or upload.revision
        if scale == 1.0:
            revision = original
        else:
            with original.model_file.open("rb") as model:
                content = geometry.scale_stl(model.read(), scale)
            revision = private_model_add(
                slug=f"upload-{uuid.uuid4().hex[:16]}",
                name=upload.name,
                model_file=ContentFile(content, name="upload.stl"),
                materials=list(original.materials.all()),
                created_by=user,
                now=now,
            )
        retired = upload.revision
        upload.revision, upload.scale = revision, scale
        upload.unscaled_revision = None if scale == 1.0 else original
        upload.save(update_fields=["revision", "scale", "unscaled_revision"])
        if retired != original:
            # The previous scaled copy is nobody's upload now: hidden, kept for its orders.
            retired.family.retired = True
            retired.family.save(update_fields=["retired"])
        preview_request(revision=revision, parameters={}, user=user, now=now)
    return upload


# --- into the catalog -------------------------------------------------------------------------


def upload_promote(
    *,
    upload: CustomerUpload,
    user: Any,
    name: str = "",
    slug: str = "",
    category: str = "",
    now: datetime | None = None,
) -> PartRevision:
    """Make the upload a catalog part (a new family with a published static revision of the
    same file) and note it on the upload. Refused (DomainError) when it was promoted before,
    or its file was refused by the build."""
    now = now or timezone.now()
    state = upload_state(upload, now=now)
    if state.status != "ready":
        what = f"was refused: {state.reason}" if state.reason else "is still being checked"
        raise DomainError(f"{upload.number} cannot go into the catalog: its file {what}")
    with transaction.atomic():
        upload = CustomerUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.promoted_to_id is not None:
            raise DomainError(f"{upload.number} is in the catalog already")
        name = " ".join((name or upload.name).split())[:NAME_MAX_CHARS]
        slug = slugify(slug or name)[:40].strip("-") or f"part-{upload.pk}"
        revision = model_promote(
            source=upload.revision,
            slug=slug,
            name=name,
            category=category,
            promoted_by=user,
        )
        upload.promoted_to, upload.promoted_by, upload.promoted_at = revision, user, now
        upload.save(update_fields=["promoted_to", "promoted_by", "promoted_at"])
    return revision
