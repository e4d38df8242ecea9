"""The facts a quote needs, read from the database, and the DFM feedback shown beside it.

orders.quoting is the pure calculation; this module finds its inputs: the part's volume and
size (from a built preview of the same configuration, else guessed from its length
parameters), a toolpath time when this configuration was planned before, and the machines
that could make it with their hourly rates and queues.

The DFM feedback is the quick notes (`dfm_notes`, from the preview and the machines' sizes)
and, once the preview is built, the full DFM report of that mesh in the chosen material
(`live_dfm`: computed by a worker, catalog.previews, with the checks a job's validation runs).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from catalog.models import Material, PartPreview, PartRevision, PreviewDfm
from catalog.parameters import parse_schema
from catalog.previews import dfm_refusal, preview_dfm_request
from orders.quoting import MachineOffer, MaterialFacts, Quote, envelope_volume_mm3, quote_line
from production import routing
from production.machines import routing_facts
from production.models import Job, Machine


@dataclass(frozen=True)
class LineFacts:
    process: str
    material: MaterialFacts
    quantity: int
    volume_mm3: float
    extents_mm: tuple[float, float, float]
    geometry_basis: str  # "preview": measured on built geometry; "envelope": guessed
    toolpath_time_s: float | None
    machines: tuple[MachineOffer, ...]  # capable of making it and taking work
    too_big_for_all: bool  # no machine of the process could ever hold it
    machines_of_process: int


@dataclass(frozen=True)
class DfmNote:
    level: str  # "ok", "warn" or "fail"
    message: str


def line_facts(
    *,
    revision: PartRevision,
    parameters: dict[str, Any],
    material: Material,
    quantity: int,
    now: datetime,
    parameters_hash: str = "",
    preview: PartPreview | None = None,
) -> LineFacts:
    """Everything the quote of one line needs (read-only; a few queries)."""
    from catalog.previews import preview_key

    if preview is None:
        preview = PartPreview.objects.filter(
            key=preview_key(revision=revision, parameters=parameters),
            status=PartPreview.Status.READY,
        ).first()
    if preview is not None and preview.volume_mm3 and preview.bbox_mm:
        x, y, z = (float(size) for size in preview.bbox_mm)
        volume, extents, basis = float(preview.volume_mm3), (x, y, z), "preview"
    else:
        specs = parse_schema(revision.parameter_schema)
        lengths = [
            float(parameters[s.name]) for s in specs if s.type == "length" and s.name in parameters
        ]
        volume, height = envelope_volume_mm3(lengths or [10.0])
        sizes = sorted(lengths or [10.0], reverse=True)[:3]
        while len(sizes) < 3:
            sizes.append(sizes[-1])
        extents, basis = (sizes[0], sizes[1], height), "envelope"
    planned = (
        Job.objects.filter(
            line__revision=revision,
            line__parameters_hash=parameters_hash,
            line__material=material,
            toolpath_meta__isnull=False,
        )
        .order_by("-pk")
        .values_list("toolpath_meta", "quantity")
        .first()
        if parameters_hash
        else None
    )
    toolpath_time = None
    if planned is not None:
        meta, planned_quantity = planned
        total = float((meta or {}).get("estimated_time_s") or 0)
        toolpath_time = total / max(1, planned_quantity) if total else None
    facts = routing_facts(process=revision.process)
    needs = routing.JobNeeds(process=revision.process, material=material.slug, extents_mm=extents)
    capable = [m for m in facts if routing.can_make(needs, m)]
    fits_somewhere = any(
        routing.can_make(
            routing.JobNeeds(process=revision.process, material=m_slug, extents_mm=extents), m
        )
        for m in facts
        for m_slug in (m.materials | m.loadable)
    )
    rates = dict(
        Machine.objects.filter(slug__in=[m.key for m in capable]).values_list("slug", "hourly_rate")
    )
    offers = tuple(
        MachineOffer(
            name=m.name, hourly_rate=rates.get(m.key) or Decimal(0), queue_eta_s=m.queue_eta_s
        )
        for m in capable
        if routing.takes_work(m)
    )
    return LineFacts(
        process=revision.process,
        material=MaterialFacts(
            slug=material.slug,
            density_g_cm3=float(material.density_g_cm3),
            price_per_kg=material.price_per_kg,
        ),
        quantity=quantity,
        volume_mm3=volume,
        extents_mm=extents,
        geometry_basis=basis,
        toolpath_time_s=toolpath_time,
        machines=offers,
        too_big_for_all=bool(facts) and not fits_somewhere,
        machines_of_process=len(facts),
    )


def line_quote(facts: LineFacts) -> Quote:
    return quote_line(
        volume_mm3=facts.volume_mm3,
        height_mm=facts.extents_mm[2],
        quantity=facts.quantity,
        material=facts.material,
        machines=facts.machines,
        rates=settings.ORDER_QUOTE_RATES,
        toolpath_time_s=facts.toolpath_time_s,
    )


def dfm_notes(facts: LineFacts, preview: PartPreview | None = None) -> list[DfmNote]:
    """Design-for-manufacturing feedback for the part page: what the built geometry says
    (size, volume, the build's own refusal) and whether a machine can make it."""
    notes: list[DfmNote] = []
    if preview is not None and preview.status == PartPreview.Status.FAILED:
        notes.append(DfmNote("fail", f"the part cannot be built: {preview.message}"))
        return notes
    x, y, z = facts.extents_mm
    size = f"{x:.1f} x {y:.1f} x {z:.1f} mm"
    if facts.geometry_basis == "preview":
        notes.append(DfmNote("ok", f"built: {size}, {facts.volume_mm3 / 1000:.2f} cm³"))
    if not facts.machines_of_process:
        notes.append(DfmNote("fail", f"no machine for {facts.process} in the factory"))
    elif facts.too_big_for_all:
        notes.append(DfmNote("fail", f"{size} is larger than every machine's build volume"))
    elif not facts.machines:
        notes.append(
            DfmNote(
                "warn",
                f"no machine with {facts.material.slug} and room for {size} takes work now: "
                "the order waits until one does",
            )
        )
    else:
        names = ", ".join(sorted({m.name for m in facts.machines}))
        notes.append(DfmNote("ok", f"fits on {names}"))
    if min(facts.extents_mm) < 1.2:
        notes.append(
            DfmNote(
                "warn",
                f"a dimension under 1.2 mm ({min(facts.extents_mm):.2f} mm) "
                "may be too thin to print",
            )
        )
    return notes


# --- the live DFM report ---------------------------------------------------------------------

LEVELS = {"pass": "ok", "warn": "warn", "fail": "fail"}  # report status -> the page's CSS


@dataclass(frozen=True)
class DfmCheckRow:
    name: str
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
    )


def _row(check: dict[str, Any]) -> DfmCheckRow:
    return DfmCheckRow(
        name=check["name"].replace("_", " "),
        level=LEVELS[check["status"]],
        value=check["value"],
        limit=check["limit"],
        message=check["message"],
    )
