"""The facts a quote needs, read from the database, and the DFM feedback shown beside it.

orders.quoting is the pure calculation; this module finds its inputs: the part's volume and
size, a toolpath time when this configuration was planned before, and the machines that could
make it with their hourly rates and queues.

Volume and size, best first: measured on a built preview of the same configuration, or on a
job that built it before (the quote is firm); else the revision's geometry estimator, fitted
at publish (catalog.estimator); else, while it has none, guessed from the length parameters
(both estimated: the line's price is checked again once its job has built the part).

The DFM feedback is the quick notes (`dfm_notes`, from the preview and the machines' sizes);
the full DFM report of a built preview is production's (production.public.live_dfm).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from catalog.estimator import Estimate, EstimatorError, GeometryEstimator
from catalog.models import Material, PartPreview, PartRevision, RevisionEstimator
from catalog.parameters import parse_schema
from orders.quoting import (
    MachineOffer,
    MaterialFacts,
    NoStock,
    Quote,
    envelope_volume_mm3,
    quote_line,
    quote_machined,
)
from production import public


@dataclass(frozen=True)
class LineFacts:
    process: str
    material: MaterialFacts
    quantity: int
    volume_mm3: float
    extents_mm: tuple[float, float, float]
    # "preview" or "job": measured on built geometry (firm); "estimator" or "envelope":
    # estimated (orders.quoting.Quote.geometry_basis).
    geometry_basis: str
    toolpath_time_s: float | None
    machines: tuple[MachineOffer, ...]  # capable of making it and taking work
    too_big_for_all: bool  # no machine of the process could ever hold it
    machines_of_process: int
    # For milling and laser cutting (orders.routes): the plates or sheets of the material.
    material_name: str = ""
    sheet_thicknesses_mm: tuple[float, ...] = ()
    # Regions of the revision's parameter space where many parts made failed, that this
    # configuration is in (production.public.failure_warnings): DFM warnings, not refusals.
    failure_warnings: tuple[str, ...] = ()
    # The site the parts go to (a slug; "": none named): the promise simulation adds transit.
    delivery_site: str = ""


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
    delivery_site: str = "",
    process: str = "",
) -> LineFacts:
    """Everything the quote of one line needs (read-only; a few queries). With a delivery
    site (slug), each machine's lead time includes the transit from its site there.
    `process`: the route's process (orders.routes); "" for the revision's primary one."""
    from catalog.previews import preview_key

    process = process or revision.process

    if preview is None:
        preview = PartPreview.objects.filter(
            key=preview_key(revision=revision, parameters=parameters),
            status=PartPreview.Status.READY,
        ).first()
    measured = preview is not None and bool(preview.volume_mm3 and preview.bbox_mm)
    built = (
        public.built_geometry(revision=revision, parameters_hash=parameters_hash)
        if parameters_hash and not measured
        else None
    )
    estimated = _estimate(revision, parameters) if not measured and built is None else None
    if preview is not None and preview.volume_mm3 and preview.bbox_mm:
        x, y, z = (float(size) for size in preview.bbox_mm)
        volume, extents, basis = float(preview.volume_mm3), (x, y, z), "preview"
    elif built is not None:
        volume, extents, basis = built.volume_mm3, built.extents_mm, "job"
    elif estimated is not None:
        volume, extents, basis = estimated.volume_mm3, estimated.extents_mm, "estimator"
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
    toolpath_time = (
        public.planned_time_s(revision=revision, parameters_hash=parameters_hash, material=material)
        if parameters_hash
        else None
    )
    fit = public.machines_for_quote(
        process=process,
        material=material.slug,
        extents_mm=extents,
        delivery_site=delivery_site,
    )
    return LineFacts(
        process=process,
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
        machines=tuple(
            MachineOffer(
                name=m.name,
                hourly_rate=m.hourly_rate,
                queue_eta_s=m.queue_eta_s,
                transit_s=m.transit_s,
                bed_mm=m.bed_mm,
                keep_out_mm2=m.keep_out_mm2,
            )
            for m in fit.offers
        ),
        too_big_for_all=fit.too_big_for_all,
        machines_of_process=fit.machines_of_process,
        material_name=material.name,
        sheet_thicknesses_mm=tuple(_thicknesses(material)),
        failure_warnings=tuple(public.failure_warnings(revision=revision, parameters=parameters)),
        delivery_site=delivery_site,
    )


def _thicknesses(material: Material) -> list[float]:
    """The material's plate or sheet thicknesses; a malformed entry counts as none."""
    held = material.sheet_thicknesses_mm or []
    if not isinstance(held, list):
        return []
    return [float(t) for t in held if isinstance(t, int | float) and not isinstance(t, bool)]


def _estimate(revision: PartRevision, parameters: dict[str, Any]) -> Estimate | None:
    """The revision's estimate of this configuration, None without a usable estimator."""
    fitted = (
        RevisionEstimator.objects.filter(revision=revision, status=RevisionEstimator.Status.READY)
        .values_list("fitted", flat=True)
        .first()
    )
    if not fitted:
        return None
    try:
        return GeometryEstimator.from_json(fitted).estimate(parameters)
    except EstimatorError:
        return None  # fitted for an older schema or format: the envelope guess until refitted


def route_quote(facts: LineFacts) -> Quote:
    """The quote of a line made by its process: printed parts on their volume (line_quote),
    milled and laser-cut ones on the plate or sheet they are cut from (orders.quoting.
    quote_machined; NoStock when the material has none for the part)."""
    if facts.process == "fdm":
        return line_quote(facts)
    return quote_machined(
        process=facts.process,
        volume_mm3=facts.volume_mm3,
        extents_mm=facts.extents_mm,
        quantity=facts.quantity,
        material=facts.material,
        material_name=facts.material_name or facts.material.slug,
        thicknesses_mm=facts.sheet_thicknesses_mm,
        machines=facts.machines,
        rates=settings.ORDER_QUOTE_RATES,
        machining=settings.ORDER_MACHINING_RATES,
        program_time_s=facts.toolpath_time_s,
        geometry_basis=facts.geometry_basis,
    )


def indicative_quote(facts: LineFacts) -> Quote:
    """route_quote for the part page and the cart, whose prices are indicative: a material
    with no plate or sheet for the part is priced on its volume there; ordering it refuses it
    with the reason (orders.services)."""
    try:
        return route_quote(facts)
    except NoStock:
        return line_quote(facts)


def line_quote(facts: LineFacts) -> Quote:
    return quote_line(
        volume_mm3=facts.volume_mm3,
        height_mm=facts.extents_mm[2],
        quantity=facts.quantity,
        material=facts.material,
        machines=facts.machines,
        rates=settings.ORDER_QUOTE_RATES,
        toolpath_time_s=facts.toolpath_time_s,
        geometry_basis=facts.geometry_basis,
        extents_mm=facts.extents_mm,  # copies planned on plates (orders.quoting.plate_plan)
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
    for warning in facts.failure_warnings:
        notes.append(DfmNote("warn", warning))
    return notes
