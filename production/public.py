"""What the orders app may know and do about production: the one production module orders
imports (an import-linter contract in pyproject.toml checks it; docs/architecture.md).

Orders ask for jobs for an approved order and cancel them; they read job summaries for their
pages and API, the machine facts a quote needs, the DFM verdict of a configuration and the
sites to deliver to; and they follow job events, each claimed exactly once. What comes back
is a frozen value (or an id), never a production model, so production can change its tables
without touching orders.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet

from catalog.models import Material, PartPreview, PartRevision
from orders.models import Order
from production import dfm_previews, failmap, job_costs, routing, services
from production.costing import JobCost, LineCost, OrderCost
from production.dfm_previews import LiveDfm
from production.machines import (
    machines_read_once,
    quote_routing_facts,
    read_once,
    transit_table,
)
from production.models import Artifact, Job, JobArtifact, JobEvent, Machine, Plate, PlateCopy, Site
from production.pipeline.dfm.units import UNITS
from production.plates.values import keep_out_zones_from_json
from production.simulation.promise import Promise, PromiseLine, order_promise

__all__ = [
    "JOB_ENDED_UNMADE",
    "ARTIFACT_KIND_CHOICES",
    "JOB_STATUS_CHOICES",
    "COPY_QC_CHOICES",
    "PLATE_STATUS_CHOICES",
    "ArtifactLink",
    "JobCost",
    "JobEventNotice",
    "JobEventSummary",
    "CopySummary",
    "JobSummary",
    "LineCost",
    "LiveDfm",
    "MachineFit",
    "QuoteMachine",
    "MachineRef",
    "OrderCost",
    "BuiltGeometry",
    "SiteRef",
    "job_events_claim_pending",
    "job_summaries",
    "job_summary",
    "jobs_cancel_for_order",
    "jobs_create_for_order",
    "built_geometry",
    "job_geometry",
    "jobs_release",
    "failure_warnings",
    "known_refusal",
    "live_dfm",
    "machines_for_quote",
    "machines_read_once",  # one web request or order reads the machines once for its quotes
    "read_once",  # what else a request computes from that one reading (orders.delivery)
    "order_costs",
    "planned_time_s",
    "Promise",
    "PromiseLine",
    "order_promise",  # issue #15.3: the promise date, simulated on the live queue
    "site_by_id",
    "site_by_slug",
    "sites",
]

# --- job summaries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineRef:
    slug: str
    name: str


@dataclass(frozen=True)
class JobEventSummary:
    step: str
    from_status: str
    to_status: str
    actor: str
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    message: str


@dataclass(frozen=True)
class ArtifactLink:
    kind: str
    kind_display: str
    sha256: str
    size: int


@dataclass(frozen=True)
class CopySummary:
    """One copy of a job's part on a plate (#13): which plate, where, and its QC."""

    copy: int  # which of the job's copies: 1..quantity
    plate_id: int
    plate: str  # the plate's number, "P-000012"
    plate_status: str
    number: int  # its number on the plate map
    x_mm: float
    y_mm: float
    rotation_deg: float
    qc: str  # pending | passed | scrapped | cancelled
    remake: str | None  # the job remaking it, when scrapped
    measurements: Mapping[str, float]  # measured at QC on this copy: {check label: mm}


@dataclass(frozen=True)
class JobSummary:
    """One job of an order line as orders show it. Attribute names follow the Job model's,
    so templates read it the same way (`job.pk`, `job.number`, `job.get_status_display`)."""

    pk: int
    line_id: int
    number: str
    status: str
    status_display: str
    reason: str
    quantity: int
    qc_scrapped: int
    machine: MachineRef | None
    site: str  # the name of its machine's site, "" until it is routed
    route_reason: str  # why the router chose that site (site names only), "" until routed
    progress: float | None
    dfm_report: Mapping[str, Any] | None
    toolpath_meta: Mapping[str, Any] | None
    events: tuple[JobEventSummary, ...]  # empty unless asked for with details
    artifacts: tuple[ArtifactLink, ...]  # likewise
    ended: bool  # nothing more happens to it (Job.TERMINAL)
    pipeline_done: bool  # at a machine, past it or ended (Job.PIPELINE_DONE)
    # Ended without making anything, or no machine has begun it: no obstacle to cancelling.
    cancellable: bool
    made: int  # good parts delivered: passed QC, less the copies scrapped there
    copies: tuple[CopySummary, ...] = ()  # on plates (#13); () for a job made as one part

    def get_status_display(self) -> str:
        return self.status_display

    @property
    def machine_slug(self) -> str | None:
        return self.machine.slug if self.machine else None


# A plate's statuses and a copy's QC results, (value, label), for orders' API schema.
PLATE_STATUS_CHOICES: list[tuple[str, str]] = list(Plate.Status.choices)
COPY_QC_CHOICES: list[tuple[str, str]] = list(PlateCopy.Qc.choices)
# A job's statuses, (value, label), for orders' API schema.
JOB_STATUS_CHOICES: list[tuple[str, str]] = list(Job.Status.choices)
# The kinds of a job's files, (value, label), likewise.
ARTIFACT_KIND_CHOICES: list[tuple[str, str]] = list(Artifact.Kind.choices)
# Jobs that ended without passing QC: an order line whose jobs all ended and made too few parts
# is rejected with the last one's reason.
JOB_ENDED_UNMADE = frozenset({Job.Status.REJECTED, Job.Status.FAILED, Job.Status.SCRAPPED})


def _summary(job: Job, *, details: bool) -> JobSummary:
    done = job.status == Job.Status.DONE
    return JobSummary(
        pk=job.pk,
        line_id=job.line_id,
        number=job.number,
        status=job.status,
        status_display=job.get_status_display(),
        reason=job.reason,
        quantity=job.quantity,
        qc_scrapped=job.qc_scrapped,
        machine=MachineRef(job.machine.slug, job.machine.name) if job.machine else None,
        site=job.machine.site.name if job.machine else "",
        route_reason=job.route_reason,
        progress=job.progress,
        dfm_report=job.dfm_report,
        toolpath_meta=job.toolpath_meta,
        events=tuple(
            JobEventSummary(
                step=event.step,
                from_status=event.from_status,
                to_status=event.to_status,
                actor=event.actor,
                started_at=event.started_at,
                finished_at=event.finished_at,
                duration_ms=event.duration_ms,
                message=event.message,
            )
            for event in job.events.all()
        )
        if details
        else (),
        artifacts=tuple(
            ArtifactLink(
                kind=link.kind,
                kind_display=link.get_kind_display(),
                sha256=link.artifact.sha256,
                size=link.artifact.size,
            )
            for link in job.job_artifacts.all()
        )
        if details
        else (),
        ended=job.status in Job.TERMINAL,
        pipeline_done=job.status in Job.PIPELINE_DONE,
        cancellable=job.status in services.JOB_ENDED_EMPTY or services.job_not_started(job),
        made=max(0, job.quantity - (job.qc_scrapped or 0)) if done else 0,
        copies=tuple(
            CopySummary(
                copy=c.copy_index,
                plate_id=c.plate_id,
                plate=c.plate.number,
                plate_status=c.plate.status,
                number=c.number,
                x_mm=c.x_mm,
                y_mm=c.y_mm,
                rotation_deg=c.rotation_deg,
                qc=c.qc,
                remake=c.remake.number if c.remake else None,
                measurements=dict(c.measurements),
            )
            for c in sorted(job.plate_copies.all(), key=lambda c: c.copy_index)
        ),
    )


def _jobs(*, details: bool) -> QuerySet[Job]:
    jobs = (
        Job.objects.select_related("machine__site")
        .prefetch_related(
            Prefetch("plate_copies", PlateCopy.objects.select_related("plate", "remake"))
        )
        .order_by("pk")
    )
    if details:
        jobs = jobs.prefetch_related(
            "events", Prefetch("job_artifacts", JobArtifact.objects.select_related("artifact"))
        )
    return jobs


def job_summaries(
    *, order_ids: Iterable[int], details: bool = False
) -> dict[int, list[JobSummary]]:
    """The jobs of these orders by line id, oldest first; with `details`, each with its
    events and artifacts (three queries in all, however many jobs)."""
    summaries: dict[int, list[JobSummary]] = {}
    for job in _jobs(details=details).filter(line__order_id__in=list(order_ids)):
        summaries.setdefault(job.line_id, []).append(_summary(job, details=details))
    return summaries


def job_summary(*, job_id: int, orders: QuerySet[Order]) -> JobSummary | None:
    """One job with its events and artifacts, if it belongs to one of `orders` (the caller's
    scope: another organisation's job is None, as a missing one is)."""
    job = _jobs(details=True).filter(pk=job_id, line__order__in=orders).first()
    return None if job is None else _summary(job, details=True)


# --- creating and cancelling jobs ------------------------------------------------------------


def jobs_create_for_order(
    *,
    order: Order,
    actor: str,
    hold: Mapping[int, str] | None = None,
    line_ids: Iterable[int] | None = None,
) -> list[int]:
    """One queued job per line of an approved order (or of these of its lines: a line whose
    process route changed), enqueued once the caller's transaction commits; their ids. Call
    inside the order's transaction.

    `hold` maps line ids to why their jobs must not go to a machine yet (an estimated price
    to check on the built part): those jobs run the pipeline but the router leaves them
    waiting until jobs_release."""
    return [
        job.pk
        for job in services.jobs_create_for_order(
            order=order,
            actor=actor,
            hold=hold,
            line_ids=None if line_ids is None else list(line_ids),
        )
    ]


def jobs_release(*, line_ids: Iterable[int]) -> list[int]:
    """Let the router take the held jobs of these lines (their price is settled); the ids
    released. A second call releases nothing more. Call inside the order's transaction."""
    return services.jobs_release(line_ids=list(line_ids))


def jobs_cancel_for_order(
    *,
    order_id: int,
    actor: str,
    message: str,
    reason: str,
    now: datetime,
    line_ids: Iterable[int] | None = None,
) -> list[int]:
    """Cancel every job of the order (or of these of its lines) while no machine has started
    any (DomainError, nothing changed, otherwise); the ids cancelled. Call inside the order's
    transaction."""
    return services.jobs_cancel_for_order(
        order_id=order_id,
        actor=actor,
        message=message,
        reason=reason,
        now=now,
        line_ids=None if line_ids is None else list(line_ids),
    )


# --- following job events --------------------------------------------------------------------


@dataclass(frozen=True)
class JobEventNotice:
    """A job event the orders app follows: what its job webhook says."""

    event_id: int
    order_id: int
    line_id: int
    job_id: int
    job_number: str
    quantity: int
    step: str
    from_status: str
    to_status: str
    message: str
    finished_at: datetime


def job_events_claim_pending(*, limit: int, now: datetime) -> list[JobEventNotice]:
    """Claim up to `limit` job events no one has followed yet, oldest first; each is
    returned to exactly one caller, ever.

    The claim is a conditional UPDATE per event (`... SET followed_at = now WHERE pk = X AND
    followed_at IS NULL`, healthchecks' flip idiom): of two followers racing for an event,
    one updates the row and the other, once the first commits, updates nothing and skips it.
    An event committed late (a lower id than one already followed) is still pending, so the
    next pass finds it. Call inside the transaction that acts on the events: if that rolls
    back, the claims do too and the events are followed again.
    """
    notices = []
    with transaction.atomic():
        pending = (
            JobEvent.objects.filter(followed_at__isnull=True)
            .select_related("job__line")
            .order_by("pk")[:limit]
        )
        for event in pending:
            if not JobEvent.objects.filter(pk=event.pk, followed_at__isnull=True).update(
                followed_at=now
            ):
                continue  # another follower claimed it first
            job = event.job
            notices.append(
                JobEventNotice(
                    event_id=event.pk,
                    order_id=job.line.order_id,
                    line_id=job.line_id,
                    job_id=job.pk,
                    job_number=job.number,
                    quantity=job.quantity,
                    step=event.step,
                    from_status=event.from_status,
                    to_status=event.to_status,
                    message=event.message,
                    finished_at=event.finished_at,
                )
            )
    return notices


# --- what a quote needs ----------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteMachine:
    name: str
    hourly_rate: Decimal
    queue_eta_s: float  # seconds until the work already routed there is done
    transit_s: float = 0.0  # from its site to the delivery site
    bed_mm: tuple[float, float] | None = None  # x, y: what its plates are planned on
    keep_out_mm2: float = 0.0  # of its bed its keep-out zones take (Machine.keep_out_zones)


@dataclass(frozen=True)
class MachineFit:
    offers: tuple[QuoteMachine, ...]  # capable of making the part and taking work now
    too_big_for_all: bool  # no machine of the process could ever hold it
    machines_of_process: int


def machines_for_quote(
    *,
    process: str,
    material: str,
    extents_mm: tuple[float, float, float],
    delivery_site: str = "",
) -> MachineFit:
    """The machines that could make a part of this size in this material, as the router
    would see them now (capability, queue, hourly rate), with the transit time from each to
    the delivery site (a site slug; "": none counted). A machine whose site has no route
    there is left out, as the router leaves it out."""
    facts = quote_routing_facts(process=process)
    needs = routing.JobNeeds(
        process=process,
        material=material,
        extents_mm=extents_mm,
        delivery_site=delivery_site or None,
        transit_s=read_once("transit_table", transit_table) if delivery_site else {},
    )
    capable = [m for m in facts if routing.can_make(needs, m)]
    transit = {m.key: routing.transit_s(needs, m) for m in capable}
    fits_somewhere = any(
        routing.can_make(
            routing.JobNeeds(process=process, material=m_slug, extents_mm=extents_mm), m
        )
        for m in facts
        for m_slug in (m.materials | m.loadable)
    )
    rates, keep_outs = read_once(("hourly_rates", process), lambda: _rates_and_keep_outs(process))
    return MachineFit(
        offers=tuple(
            QuoteMachine(
                name=m.name,
                hourly_rate=rates.get(m.key) or Decimal(0),
                queue_eta_s=m.queue_eta_s,
                transit_s=transit_time,
                bed_mm=(m.build_volume_mm[0], m.build_volume_mm[1]),
                keep_out_mm2=keep_outs.get(m.key, 0.0),
            )
            for m in capable
            if routing.takes_work(m) and (transit_time := transit[m.key]) is not None
        ),
        too_big_for_all=bool(facts) and not fits_somewhere,
        machines_of_process=len(facts),
    )


def _rates_and_keep_outs(process: str) -> tuple[dict[str, Decimal], dict[str, float]]:
    """Machine slug -> its hourly rate, and -> the bed area its keep-out zones take
    (rectangles; overlaps counted twice, which only makes the quote's plate estimate more
    careful). One query."""
    rates: dict[str, Decimal] = {}
    keep_outs: dict[str, float] = {}
    rows = Machine.objects.filter(process=process)
    for slug, rate, zones in rows.values_list("slug", "hourly_rate", "keep_out_zones"):
        rates[slug] = rate
        try:
            keep_outs[slug] = sum(z.width_mm * z.depth_mm for z in keep_out_zones_from_json(zones))
        except ValueError:
            keep_outs[slug] = 0.0  # malformed (written around the admin): as if none
    return rates, keep_outs


def machines_for_quotes(
    *, process: str, parts: Sequence[tuple[str, tuple[float, float, float]]]
) -> list[tuple[QuoteMachine, ...]]:
    """For each (material slug, extents) of `parts`, the machines that could make it and
    take work now, as machines_for_quote offers them (no delivery site), with the machines
    read once: the catalog's "from" prices quote many parts at once. The machines are read
    without their queues or opening hours (the "from" prices read no time)."""
    facts = quote_routing_facts(process=process, timing=False)
    rates = dict(Machine.objects.filter(process=process).values_list("slug", "hourly_rate"))
    offers = []
    for material, extents in parts:
        needs = routing.JobNeeds(process=process, material=material, extents_mm=extents)
        offers.append(
            tuple(
                QuoteMachine(
                    name=m.name,
                    hourly_rate=rates.get(m.key) or Decimal(0),
                    queue_eta_s=m.queue_eta_s,
                )
                for m in facts
                if routing.can_make(needs, m) and routing.takes_work(m)
            )
        )
    return offers


def planned_time_s(
    *, revision: PartRevision, parameters_hash: str, material: Material
) -> float | None:
    """Machine time per part of this configuration when a job of it had its toolpath planned
    before (the latest one); None otherwise. A job's G-code makes one copy (a job of quantity
    N runs it N times), so its estimate is the time per part."""
    meta = (
        Job.objects.filter(
            line__revision=revision,
            line__parameters_hash=parameters_hash,
            line__material=material,
            toolpath_meta__isnull=False,
        )
        .order_by("-pk")
        .values_list("toolpath_meta", flat=True)
        .first()
    )
    per_copy = float((meta or {}).get("estimated_time_s") or 0)
    return per_copy or None


@dataclass(frozen=True)
class BuiltGeometry:
    """A configuration's geometry as a job built and measured it (its DFM report)."""

    volume_mm3: float
    extents_mm: tuple[float, float, float]  # as modelled


def built_geometry(*, revision: PartRevision, parameters_hash: str) -> BuiltGeometry | None:
    """The volume and size of this configuration when a job built it before (the latest
    such job, in any material: geometry does not depend on it); None otherwise."""
    reports = (
        Job.objects.filter(
            line__revision=revision, line__parameters_hash=parameters_hash, dfm_report__isnull=False
        )
        .order_by("-pk")
        .values_list("dfm_report", flat=True)[:5]
    )
    for report in reports:
        measured = job_geometry(report)
        if measured is not None:
            return measured
    return None


def job_geometry(report: Mapping[str, Any] | None) -> BuiltGeometry | None:
    """The built volume and size in a job's DFM report (JobSummary.dfm_report); None while the
    job has not built and measured its part (or its mesh had no volume)."""
    try:
        volume = float((report or {}).get("volume_mm3") or 0)
        x, y, z = (float(size) for size in (report or {}).get("extents_mm") or ())
    except (TypeError, ValueError):
        return None
    if volume <= 0 or min(x, y, z) <= 0:
        return None
    return BuiltGeometry(volume_mm3=volume, extents_mm=(x, y, z))


def known_refusal(
    *, revision: PartRevision, parameters: dict[str, Any], material: Material
) -> str | None:
    """Why a configuration cannot be made, when the part page already checked it against
    today's machines; None when it can or was not checked (its job's validation decides)."""
    return dfm_previews.known_refusal(revision=revision, parameters=parameters, material=material)


def failure_warnings(*, revision: PartRevision, parameters: Mapping[str, Any]) -> list[str]:
    """DFM warnings for a configuration in a region of the revision's parameter space where
    many of the parts made failed ("Wall below 1.2 mm: 4 of 9 made were scrapped"); none
    outside. Cached per revision (production.failmap): usually no query."""
    return failmap.failure_warnings(revision=revision, parameters=parameters)


# The units a mesh may be drawn in, as millimetres per file unit: what an uploader may accept
# when the DFM report says the file looks drawn in another unit than mm (dfm/units.py).
MESH_UNITS: dict[str, float] = {"mm": 1.0} | {name: scale for name, scale, _ in UNITS}


def live_dfm(*, preview: PartPreview, material: Material) -> LiveDfm:
    """A ready preview's DFM report in a material for the part page, its check queued for a
    worker when there is none for today's machines yet."""
    return dfm_previews.live_dfm(preview=preview, material=material)


# --- costs ---------------------------------------------------------------------------------


def order_costs(*, order_ids: Iterable[int], now: datetime) -> dict[int, OrderCost]:
    """Each order's cost from all its jobs (remakes included) against its quoted price, with
    every job's material, machine, energy and labour (production.costing). The factory's
    business, not the customer's: for staff pages (the admin). A constant number of queries
    however many orders."""
    return job_costs.order_costs(order_ids=order_ids, now=now)


# --- sites -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteRef:
    pk: int
    slug: str
    name: str


def sites() -> list[SiteRef]:
    """The factory's sites, by name: where an order can be delivered."""
    return [
        SiteRef(pk, slug, name) for pk, slug, name in Site.objects.values_list("pk", "slug", "name")
    ]


def site_by_id(pk: int) -> SiteRef | None:
    site = Site.objects.filter(pk=pk).values_list("pk", "slug", "name").first()
    return None if site is None else SiteRef(*site)


def site_by_slug(slug: str) -> SiteRef | None:
    site = Site.objects.filter(slug=slug).values_list("pk", "slug", "name").first()
    return None if site is None else SiteRef(*site)
