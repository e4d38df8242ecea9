"""A job's cost facts read from its rows, for production.costing: a constant number of queries
however many jobs (select_related and prefetches of its events, bookings and plates), never
one per job.

`material_price_per_kg` is the one place the material's price comes from: today the
catalog's price of the line's material; once spools are tracked, the price of the lot booked
for the job.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet

from orders.models import Order, OrderLine
from orders.quoting import plate_run_time_s, quoted_run_time_s
from production import costing
from production.models import Job, JobEvent, Machine, Plate, PlateCopy, SpoolBooking

# What a job's cost reads besides its own row.
COST_RELATED = ("machine", "line__material", "replaces")


def cost_rates() -> costing.CostRates:
    return costing.CostRates(
        energy_per_kwh=settings.MF_ENERGY_EUR_PER_KWH,
        labour_per_hour=settings.MF_LABOUR_EUR_PER_HOUR,
        touch_min=settings.MF_LABOUR_TOUCH_MIN,
        gap_max_min=settings.MF_LABOUR_GAP_MAX_MIN,
        handling_min=settings.MF_LABOUR_HANDLING_MIN,
    )


def with_cost_facts(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """The jobs with what their cost needs: four queries in all, five when some are on
    plates (their plates' copies, with every job's time and grams per copy, for the shares)."""
    events = JobEvent.objects.only(
        "job_id", "step", "from_status", "to_status", "finished_at"
    ).order_by("finished_at", "pk")
    bookings = SpoolBooking.objects.select_related("spool").order_by("pk")
    copies = PlateCopy.objects.select_related("plate").only(
        "job_id",
        "plate__id",
        "plate__estimated_time_s",
        "plate__filament_g",
        "plate__started_at",
        "plate__finished_at",
    )
    # Every copy on those plates, whoever's job it is: the shares weigh all of them.
    plate_copies = PlateCopy.objects.select_related("job").only(
        "plate_id", "job_id", "job__quantity", "job__toolpath_meta"
    )
    return jobs.select_related(*COST_RELATED).prefetch_related(
        Prefetch("events", queryset=events, to_attr="cost_events"),
        Prefetch("spool_bookings", queryset=bookings, to_attr="cost_bookings"),
        Prefetch("plate_copies", queryset=copies, to_attr="cost_copies"),
        Prefetch("cost_copies__plate__copies", queryset=plate_copies, to_attr="cost_all"),
    )


def hourly_rate(machine: Machine | None) -> Decimal:
    """The machine's hourly rate; without one of its own (or not routed yet), the default
    rate quotes use (MF_QUOTE_DEFAULT_HOURLY_RATE), so cost and quote count machine time
    alike."""
    if machine is not None and machine.hourly_rate > 0:
        return machine.hourly_rate
    default: Decimal = settings.ORDER_QUOTE_RATES.default_hourly_rate
    return default


def material_price_per_kg(job: Job) -> Decimal:
    """What a kilogram of the job's material cost: the price of the lot its filament was
    booked against (the first spool with a price), else the catalog's price."""
    bookings = (
        job.cost_bookings
        if hasattr(job, "cost_bookings")
        else list(job.spool_bookings.select_related("spool").order_by("pk"))
    )
    for booking in bookings:
        lot_price: Decimal | None = booking.spool.price_per_kg
        if lot_price is not None:
            return lot_price
    catalog_price: Decimal = job.line.material.price_per_kg
    return catalog_price


def _per_copy(meta: dict[str, Any] | None, name: str) -> float:
    try:
        return max(0.0, float((meta or {}).get(name) or 0))
    except (TypeError, ValueError):
        return 0.0  # a malformed figure weighs nothing rather than breaking a cost


def plate_shares(job: Job) -> tuple[costing.PlateShare, ...]:
    """The job's shares of the plates its copies are on (costing.plate_shares); pass a job
    from `with_cost_facts`, else two queries."""
    copies: list[PlateCopy] = (
        job.cost_copies
        if hasattr(job, "cost_copies")
        else list(job.plate_copies.select_related("plate"))
    )
    plates: dict[int, Plate] = {}
    mine: Counter[int] = Counter()
    for copy in copies:
        plates[copy.plate_id] = copy.plate
        mine[copy.plate_id] += 1
    everyone: dict[int, list[PlateCopy]] = {}
    if plates and not all(hasattr(plate, "cost_all") for plate in plates.values()):
        for copy in PlateCopy.objects.filter(plate_id__in=plates).select_related("job"):
            everyone.setdefault(copy.plate_id, []).append(copy)
    setup_s = float(settings.ORDER_QUOTE_RATES.plate_setup_s)
    shares = []
    for plate_id, plate in sorted(plates.items()):
        on_plate: list[PlateCopy] = (
            plate.cost_all if hasattr(plate, "cost_all") else everyone.get(plate_id, [])
        )
        count = Counter(copy.job_id for copy in on_plate)
        metas = {copy.job_id: copy.job.toolpath_meta for copy in on_plate}
        split = costing.plate_shares(
            [
                costing.OnPlate(
                    job_id=job_id,
                    copies=n,
                    copy_time_s=_per_copy(metas[job_id], "estimated_time_s"),
                    copy_g=_per_copy(metas[job_id], "filament_g"),
                )
                for job_id, n in sorted(count.items())
            ]
        )
        time_share, material_share = split.get(job.pk, (0.0, 0.0))
        shares.append(
            costing.PlateShare(
                plate=plate.number,
                copies=mine[plate_id],
                time_share=time_share,
                material_share=material_share,
                machine_s=plate_run_time_s(
                    program_s=float(plate.estimated_time_s), plate_setup_s=setup_s
                ),
                filament_g=float(plate.filament_g),
                started_at=plate.started_at,
                finished_at=plate.finished_at,
            )
        )
    return tuple(shares)


def plan_time_s(job: Job, *, copies: int, part_time_s: float) -> float:
    """The machine time of `copies` of the job's copies as its line's quote planned them on
    plates (orders.quoting.quoted_run_time_s); one run per copy for a quote without a plan."""
    if copies < 1:
        return 0.0
    try:
        return quoted_run_time_s(job.line.quote or {}, quantity=copies, part_time_s=part_time_s)
    except (KeyError, TypeError, ValueError):
        return copies * part_time_s  # a malformed stored quote: as before plates


def job_facts(job: Job) -> costing.JobFacts:
    """The job's cost facts; pass a job from `with_cost_facts`."""
    meta = job.toolpath_meta or {}
    if not meta and job.replaces is not None:
        # A remake not through the pipeline yet: its G-code will be the job's it remakes.
        meta = job.replaces.toolpath_meta or {}
    machine = job.machine
    # Prefetched by with_cost_facts (an empty list is prefetched too: no query for it).
    events: list[JobEvent] = (
        job.cost_events if hasattr(job, "cost_events") else list(job.events.all())
    )
    part_time_s = float(meta.get("estimated_time_s") or 0)
    plates = plate_shares(job)
    loose = max(0, job.quantity - sum(share.copies for share in plates))
    return costing.JobFacts(
        job_id=job.pk,
        number=job.number,
        line_id=job.line_id,
        status=job.status,
        ended=job.status in Job.TERMINAL,
        quantity=job.quantity,
        scrapped=job.qc_scrapped,
        replaces=Job(pk=job.replaces_id).number if job.replaces_id else "",
        material=job.line.material.name,
        filament_g=float(meta.get("filament_g") or 0),
        price_per_kg=material_price_per_kg(job),
        machine=machine.name if machine else "",
        hourly_rate=hourly_rate(machine),
        power_w=costing.power_w(
            configured=machine.power_w if machine else None,
            process=machine.process if machine else job.line.material.process,
        ),
        manual=machine is not None and machine.connector == Machine.Connector.MANUAL,
        planned_time_s=part_time_s,
        stamps=tuple(
            costing.Stamp(e.step, e.from_status, e.to_status, e.finished_at) for e in events
        ),
        plates=plates,
        plan_time_s=plan_time_s(job, copies=loose, part_time_s=part_time_s),
    )


def job_costs(jobs: QuerySet[Job], *, now: datetime) -> list[costing.JobCost]:
    """The cost of each job, in the queryset's order (with_cost_facts's queries)."""
    rates = cost_rates()
    return [costing.job_cost(job_facts(job), rates=rates, now=now) for job in with_cost_facts(jobs)]


def _line_label(line: OrderLine) -> str:
    revision = line.revision
    return f"{line.quantity} x {revision.family.name} rev {revision.number} in {line.material.name}"


def order_costs(
    *, order_ids: Iterable[int], jobs: QuerySet[Job] | None = None, now: datetime
) -> dict[int, costing.OrderCost]:
    """The cost and margin of each order, from the jobs in `jobs` (the viewer's scope; all
    jobs when None). A line with jobs outside that scope has no margin. Two queries and
    with_cost_facts's."""
    ids = list(order_ids)
    scope = Job.objects.all() if jobs is None else jobs
    orders = {o.pk: o for o in Order.objects.filter(pk__in=ids).only("pk", "currency")}
    lines = (
        OrderLine.objects.filter(order_id__in=ids)
        .select_related("revision__family", "material")
        .annotate(job_count=Count("jobs"))
        .order_by("order_id", "pk")
    )
    costs = job_costs(scope.filter(line__order_id__in=ids).order_by("pk"), now=now)
    by_order: dict[int, list[costing.JobCost]] = {}
    line_order: dict[int, int] = {}
    prices: dict[int, list[costing.LinePrice]] = {}
    for line in lines:
        line_order[line.pk] = line.order_id
        prices.setdefault(line.order_id, []).append(
            costing.LinePrice(
                line_id=line.pk,
                label=_line_label(line),
                quantity=line.quantity,
                price=line.price,
                jobs=line.job_count,
            )
        )
    for cost in costs:
        by_order.setdefault(line_order[cost.line_id], []).append(cost)
    return {
        order_id: costing.order_cost(
            order_id=order_id,
            number=order.number,
            currency=order.currency,
            lines=prices.get(order_id, []),
            jobs=by_order.get(order_id, []),
        )
        for order_id, order in orders.items()
    }
