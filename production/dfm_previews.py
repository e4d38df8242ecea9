"""The DFM report of a configuration before it is ordered: a ready catalog preview's mesh
checked, in one material, against the machines that could make it.

`preview_dfm_request` runs in the web process: it only reads the machine set
(production.machines, no geometry libraries) to find the report or queue its check.
`preview_dfm_check` runs in a Celery worker (production.tasks.check_preview_dfm, queue
`geometry`) and validates the mesh with production.runner's `configuration_dfm`, the function
a job's validation step uses, so both say the same. The rows (PreviewDfm) are a cache.

`live_dfm` shapes a report for the part page; `known_refusal` lets order intake refuse a
configuration the part page already found impossible to make.
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from catalog.models import Material, PartPreview, PartRevision
from catalog.previews import preview_key
from microfactory.errors import DomainError, Rejected
from production import routing
from production.machines import quote_routing_facts
from production.models import Machine, PreviewDfm
from production.pipeline.dfm.checks import title as check_title

logger = logging.getLogger(__name__)


def dfm_machines(*, process: str, material: Material) -> list[routing.MachineFacts]:
    """The machines a configuration's DFM report is checked against (routing.MachineFacts):
    every machine of the process with the material loaded or loadable, as for a job. What
    they can make, not when: their queues and the sites' opening hours are not read."""
    return routing.with_material(quote_routing_facts(process=process, timing=False), material.slug)


def dfm_machines_key(
    machines: list[routing.MachineFacts], *, sheet_thicknesses_mm: Sequence[float] = ()
) -> str:
    """What a DFM report depends on besides the mesh: the candidate machines as validation
    sees them, the validation limits (settings VALIDATION_*) and the plate or sheet
    thicknesses the material comes in (the CNC and laser checks read them)."""
    facts = sorted(
        [m.key, m.name, m.process, list(m.build_volume_mm), m.nozzle_mm, m.kerf_mm]
        for m in machines
    )
    limits = {
        name: getattr(settings, name) for name in dir(settings) if name.startswith("VALIDATION_")
    }
    sheets = sorted(float(t) for t in sheet_thicknesses_mm)
    payload = json.dumps(["dfm", facts, limits, sheets], sort_keys=True, separators=(",", ":"))
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
    key = dfm_machines_key(
        dfm_machines(process=revision.process_for(material), material=material),
        sheet_thicknesses_mm=material.sheet_thicknesses_mm or (),
    )
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
    if preview.status != PartPreview.Status.READY:
        raise DomainError(f"the preview is {preview.status}: its DFM report needs the geometry")
    now = now or timezone.now()
    machines = dfm_machines(process=preview.revision.process_for(material), material=material)
    key = dfm_machines_key(machines, sheet_thicknesses_mm=material.sheet_thicknesses_mm or ())
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
        transaction.on_commit(lambda: _enqueue_dfm(dfm_id))
    return dfm


def _enqueue_dfm(dfm_id: int) -> None:
    """Queue the check; with the broker down the report stays queued and is queued again by
    a request after CATALOG_PREVIEW_STALE_S."""
    from production import tasks

    try:
        tasks.check_preview_dfm.apply_async(args=(dfm_id,), queue="geometry")
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
        report = configuration_dfm(
            stl,
            process=dfm.preview.revision.process_for(dfm.material),
            material=dfm.material,
        )
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


# --- the report as the part page shows it --------------------------------------------------

LEVELS = {"pass": "ok", "warn": "warn", "fail": "fail"}  # report status -> the page's CSS


@dataclass(frozen=True)
class DfmCheckRow:
    name: str  # the check's id, as words ("min wall"): the page's data-check
    title: str  # what people read ("Thinnest wall")
    level: str  # "ok", "warn" or "fail"
    value: str
    limit: str
    message: str


@dataclass(frozen=True)
class DfmMachine:
    key: str
    name: str
    level: str
    checks: tuple[DfmCheckRow, ...]


@dataclass(frozen=True)
class LiveDfm:
    """A configuration's DFM report as the part page shows it."""

    status: str  # PreviewDfm.Status: queued and checking are shown as "checking…"
    message: str  # why there is no report (status failed)
    level: str  # the verdict: "ok", "warn" or "fail"; "" until ready
    summary: str  # one sentence: can it be made, where, or why not
    orientation: str
    checks: tuple[DfmCheckRow, ...]  # the part's own checks (reading, integrity, fit)
    machines: tuple[DfmMachine, ...]
    # The file looks drawn in another unit: {"unit": "inch", "scale": 25.4, "extents_mm":
    # [x, y, z]} for the uploader to accept (orders.uploads.upload_rescale); else None.
    unit_guess: dict[str, Any] | None = None

    @property
    def in_flight(self) -> bool:
        return self.status in (PreviewDfm.Status.QUEUED, PreviewDfm.Status.CHECKING)


def live_dfm(*, preview: PartPreview, material: Material) -> LiveDfm:
    """The DFM report of a ready preview in a material, queued for a worker if there is none
    for today's machines yet (fast: a few queries; the check itself runs elsewhere)."""
    return live_dfm_view(preview_dfm_request(preview=preview, material=material))


def live_dfm_view(dfm: PreviewDfm) -> LiveDfm:
    report = dfm.report or {}
    if dfm.status != PreviewDfm.Status.READY or not report:
        return LiveDfm(dfm.status, dfm.message, "", "", "", (), ())
    machine_reports = report.get("machines", [])
    names = dict(
        Machine.objects.filter(slug__in=[m["key"] for m in machine_reports]).values_list(
            "slug", "name"
        )
    )
    capable = [names.get(key, key) for key in report.get("capable", [])]
    refusal = dfm_refusal(report)
    if refusal is not None:
        summary = f"It cannot be made: {refusal}."
    elif report["status"] == "warn":
        summary = f"It can be made on {', '.join(capable)}; read the warnings below."
    else:
        summary = f"It can be made on {', '.join(capable)}."
    chosen = report.get("orientation")
    orientation = (
        f"{chosen['label']}: {chosen['height_mm']:g} mm high, "
        f"{chosen['support_area_mm2']:g} mm² of support, "
        f"{chosen['contact_area_mm2']:g} mm² on the bed"
        if chosen
        else ""
    )
    return LiveDfm(
        status=dfm.status,
        message=dfm.message,
        level=LEVELS[report["status"]],
        summary=summary,
        orientation=orientation,
        checks=tuple(_row(c) for c in report["checks"] if not c.get("machine")),
        machines=tuple(
            DfmMachine(
                key=m["key"],
                name=names.get(m["key"], m["key"]),
                level=LEVELS[m["status"]],
                checks=tuple(_row(c) for c in m["checks"]),
            )
            for m in sorted(machine_reports, key=lambda m: names.get(m["key"], m["key"]))
        ),
        unit_guess=report.get("unit_guess"),
    )


def _row(check: dict[str, Any]) -> DfmCheckRow:
    return DfmCheckRow(
        name=check["name"].replace("_", " "),
        title=check_title(check["name"]),
        level=LEVELS[check["status"]],
        value=check["value"],
        limit=check["limit"],
        message=check["message"],
    )
