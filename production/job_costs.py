"""A job's cost facts read from its rows, for production.costing: a constant number of queries
however many jobs (select_related and one prefetch of the events), never one per job.

`material_price_per_kg` is the one place the material's price comes from: today the
catalog's price of the line's material; once spools are tracked, the price of the lot booked
for the job.
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet

from orders.models import Order, OrderLine
from production import costing
from production.models import Job, JobEvent, Machine, SpoolBooking

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
    """The jobs with what their cost needs: three queries in all."""
    events = JobEvent.objects.only(
        "job_id", "step", "from_status", "to_status", "finished_at"
    ).order_by("finished_at", "pk")
    bookings = SpoolBooking.objects.select_related("spool").order_by("pk")
    return jobs.select_related(*COST_RELATED).prefetch_related(
        Prefetch("events", queryset=events, to_attr="cost_events"),
        Prefetch("spool_bookings", queryset=bookings, to_attr="cost_bookings"),
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
        planned_time_s=float(meta.get("estimated_time_s") or 0),
        stamps=tuple(
            costing.Stamp(e.step, e.from_status, e.to_status, e.finished_at) for e in events
        ),
    )


def job_costs(jobs: QuerySet[Job], *, now: datetime) -> list[costing.JobCost]:
    """The cost of each job, in the queryset's order (two queries)."""
    rates = cost_rates()
    return [costing.job_cost(job_facts(job), rates=rates, now=now) for job in with_cost_facts(jobs)]


def _line_label(line: OrderLine) -> str:
    revision = line.revision
    return f"{line.quantity} x {revision.family.name} rev {revision.number} in {line.material.name}"


def order_costs(
    *, order_ids: Iterable[int], jobs: QuerySet[Job] | None = None, now: datetime
) -> dict[int, costing.OrderCost]:
    """The cost and margin of each order, from the jobs in `jobs` (the viewer's scope; all
    jobs when None). A line with jobs outside that scope has no margin. Four queries."""
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
