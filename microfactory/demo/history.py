"""Weeks of demo history, made by the factory's own simulator and router (issue #15).

Demand is drawn (a fixed seed: the same history every time) as the demo customers would
order: a few orders a working day, fewer at weekends, one or two lines of the demo parts in
a material some machine can run. Each order's jobs reach the router when the pipeline would
have made their G-code; `production.simulation.engine.simulate` places them with the real
router (production.routing.plan_routes) on the demo machines, with changeovers and the sites'
opening hours, and each job runs its estimate give or take (the spread a real floor has).
Orders whose jobs would not have passed QC before now are left out, so the history ends with
every job done and every machine as it is now.

What is written is what those jobs would have left behind: completed orders and lines (with
the promise the simulation would have made: the same run on estimates plus the default
spread, plus the QC allowance), jobs with every move from queued to QC passed as JobEvents,
and each machine's busy/idle changes as MachineEvents, all through
production.lifecycle.history_record. The what-if page (production.simulation.whatif)
replaying this period with no change finds the same machine for every job.
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from catalog.models import Material, PartRevision
from catalog.parameters import defaults, parameters_hash, parse_schema
from catalog.parts import DEMO_PARTS, DemoPart
from orders.models import Order, OrderLine, Organisation, Status
from production import lifecycle, routing
from production.calendars import SiteCalendar
from production.lifecycle import By, PastJob, PastMachineChange, PastMove
from production.machines import changeover_s, routing_facts, transit_table
from production.models import Job, Machine
from production.simulation.engine import JobOutcome, SimJob, SimMachine, SimResult, simulate
from production.simulation.promise import machine_calendars, qc_allowance_s, qc_passed_at

SEED = 15
# The pipeline's steps before routing, as minutes after the order (geometry, validation,
# toolpath): the job reaches the router at the last (its traveler is rendered beside).
PIPELINE_MINUTES: tuple[tuple[str, str, int], ...] = (
    ("geometry_built", "geometry", 3),
    ("validated", "validation", 5),
    ("toolpath_ready", "toolpath", 15),
)
REFERENCE_PREFIX = "HIST-"


@dataclass(frozen=True)
class DemoDemand:
    """One order of the history: who, when, and its lines."""

    number: int
    customer: str  # organisation slug
    placed_at: datetime
    due: date | None
    lines: tuple["DemoLine", ...]


@dataclass(frozen=True)
class DemoLine:
    part: DemoPart
    material: str
    quantity: int
    per_copy_s: int  # the toolpath's estimate for one copy
    run_s: int  # what the run of all copies really takes
    extents_mm: tuple[float, float, float]


EXTENTS = {"fdm": (45.0, 35.0, 20.0), "cnc_mill": (90.0, 60.0, 6.0), "laser": (90.0, 60.0, 3.0)}


def demand(
    *,
    start: date,
    days: int,
    makeable: dict[str, frozenset[str]],
    customers: Sequence[str],
    rng: random.Random,
) -> list[DemoDemand]:
    """The orders of `days` days from `start`: parts whose process has machines, in a
    material those machines run (`makeable`: process -> materials)."""
    parts = [
        (part, sorted(set(part.materials) & makeable.get(part.process, frozenset())))
        for part in DEMO_PARTS
    ]
    parts = [(part, materials) for part, materials in parts if materials]
    # Each part's typical print (or cut) time per copy, fixed per part.
    typical = {part.slug: rng.randint(20, 110) * 60 for part, _ in parts}
    orders: list[DemoDemand] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        count = rng.randint(4, 8) if day.weekday() < 5 else rng.randint(0, 2)
        for _ in range(count):
            placed = datetime.combine(day, time(7), tzinfo=UTC) + timedelta(
                minutes=rng.randint(0, 11 * 60)
            )
            lines = []
            for _ in range(1 if rng.random() < 0.6 else 2):
                part, materials = rng.choice(parts)
                quantity = rng.choice((1, 1, 2, 2, 3, 4))
                per_copy = typical[part.slug]
                # Real runs: mostly near the estimate, some a good deal slower.
                ratio = rng.lognormvariate(0.03, 0.12)
                lines.append(
                    DemoLine(
                        part=part,
                        material=rng.choice(materials),
                        quantity=quantity,
                        per_copy_s=per_copy,
                        run_s=max(60, int(round(per_copy * quantity * ratio))),
                        extents_mm=EXTENTS.get(part.process, EXTENTS["fdm"]),
                    )
                )
            due = day + timedelta(days=rng.randint(2, 5)) if rng.random() < 0.3 else None
            orders.append(
                DemoDemand(
                    number=len(orders) + 1,
                    customer=rng.choice(customers),
                    placed_at=placed,
                    due=due,
                    lines=tuple(lines),
                )
            )
    return orders


def _due_end(due: date | None) -> datetime | None:
    """As production.machines.due_at reads an order's due date: the end of that day, UTC."""
    return datetime.combine(due + timedelta(days=1), time.min, tzinfo=UTC) if due else None


def _jobs(
    orders: Sequence[DemoDemand],
    *,
    sites: Mapping[str, str | None],
    transit: dict[tuple[str, str], float],
    factor: float | None = None,
) -> list[SimJob]:
    """The orders' jobs as the router will see them once written (job_needs of each), ready
    when their G-code is; `factor`: runs at the estimate times it instead of their real
    time (the promise's run)."""
    jobs = []
    overhead = timedelta(minutes=PIPELINE_MINUTES[-1][2])
    for order in orders:
        for index, line in enumerate(order.lines):
            estimate = float(line.per_copy_s * line.quantity)
            jobs.append(
                SimJob(
                    needs=routing.JobNeeds(
                        process=line.part.process,
                        material=line.material,
                        extents_mm=line.extents_mm,
                        key=f"{order.number}.{index}",
                        estimated_time_s=estimate,
                        due=_due_end(order.due),
                        priority=1,
                        delivery_site=sites[order.customer],
                        transit_s=transit,
                    ),
                    # A line's G-code a minute after the one before: no two jobs reach the
                    # router at the same instant, so a replay orders them alike.
                    ready_at=order.placed_at + overhead + timedelta(minutes=index),
                    run_s=float(line.run_s) if factor is None else estimate * factor,
                )
            )
    return jobs


def _machines() -> list[SimMachine]:
    """The demo machines as the router sees them with empty queues (idle ones only: the
    history ends with each machine as it is)."""
    idle = set(Machine.objects.filter(state=Machine.State.IDLE).values_list("slug", flat=True))
    return [
        SimMachine(facts=fact, calendar=fact.calendar)
        for fact in routing_facts()
        if fact.key in idle
    ]


def qc_done_at(outcome: JobOutcome, calendars: Mapping[str, SiteCalendar | None]) -> datetime:
    """When the operator passed the job's QC: 10 to 39 minutes of its site's open time after
    its finish (a job finished at closing time is checked the next morning)."""
    minutes = 10 + int(outcome.key.split(".")[0]) % 30
    calendar = calendars.get(outcome.machine)
    if calendar is None:
        return outcome.finished_at + timedelta(minutes=minutes)
    return calendar.after_open_seconds(outcome.finished_at, minutes * 60.0)


def simulate_history(
    *, weeks: int, now: datetime
) -> tuple[list[DemoDemand], SimResult, SimResult, list[SimMachine]]:
    """The demand of `weeks` weeks before now and its simulated run (real times), plus the
    run on estimates with the default spread (what would have been promised). Orders whose
    jobs would not all be QC passed an hour before now are dropped, and the rest run again,
    until every job ends in time."""
    rng = random.Random(SEED)
    machines = _machines()
    makeable: dict[str, set[str]] = {}
    for machine in machines:
        makeable.setdefault(machine.facts.process, set()).update(
            machine.facts.materials | machine.facts.loadable
        )
    sites = dict(
        Organisation.objects.filter(slug__in=["demo", "harbour"]).values_list(
            "slug", "default_delivery_site__slug"
        )
    )
    transit = transit_table()
    start = (now - timedelta(weeks=weeks)).date()
    orders = demand(
        start=start,
        days=max(0, (now.date() - start).days - 2),
        makeable={process: frozenset(materials) for process, materials in makeable.items()},
        customers=sorted(sites),
        rng=rng,
    )
    changeover = changeover_s()
    begin = datetime.combine(start, time.min, tzinfo=UTC)
    limit = now - timedelta(hours=2)
    calendars = machine_calendars(machines)
    for _ in range(10):
        result = simulate(
            machines,
            _jobs(orders, sites=sites, transit=transit),
            start=begin,
            changeover_s=changeover,
        )
        late = {
            key.split(".")[0]
            for key in {*result.rejected, *result.waiting}
            | {k for k, o in result.outcomes.items() if qc_done_at(o, calendars) > limit}
        }
        if not late:
            break
        orders = [order for order in orders if str(order.number) not in late]
    else:  # pragma: no cover - the demand is far below the machines' capacity
        raise RuntimeError("the demo history does not settle")
    promised = simulate(
        machines,
        _jobs(
            orders,
            sites=sites,
            transit=transit,
            factor=1 + settings.MF_PROMISE_DEFAULT_SPREAD,
        ),
        start=begin,
        changeover_s=changeover,
    )
    return orders, result, promised, machines


def history_seed(*, weeks: int, now: datetime, actor: str = "seed_demo") -> int:
    """Write `weeks` weeks of simulated history (once: a database with history keeps it);
    the number of jobs written."""
    if weeks <= 0 or Order.objects.filter(reference__startswith=REFERENCE_PREFIX).exists():
        return 0
    orders, result, promised, machines = simulate_history(weeks=weeks, now=now)
    if not orders:
        return 0
    customers = {
        org.slug: org
        for org in Organisation.objects.filter(slug__in={o.customer for o in orders})
        .select_related("default_delivery_site")
        .prefetch_related("memberships__user", "memberships__team")
    }
    requesters = {}
    for slug, org in customers.items():
        member = next(m for m in org.memberships.all() if m.role == "requester")
        requesters[slug] = member
    revisions = {
        r.family.slug: r
        for r in PartRevision.objects.filter(published_at__isnull=False)
        .select_related("family")
        .order_by("family_id", "number")
    }
    materials = {m.slug: m for m in Material.objects.all()}
    machine_ids = dict(Machine.objects.values_list("slug", "pk"))
    names = {m.key: m.facts.name for m in machines}
    calendars = machine_calendars(machines)
    placed = []
    for demanded in orders:
        keys = [f"{demanded.number}.{i}" for i in range(len(demanded.lines))]
        member = requesters[demanded.customer]
        org = customers[demanded.customer]
        # "Ready by" means QC passed: the promise's finish plus the QC allowance (in the
        # open hours of the machine's site).
        promise = qc_passed_at(
            promised,
            {
                key: qc_allowance_s(copies=line.quantity)
                for key, line in zip(keys, demanded.lines, strict=True)
            },
            calendars,
        )
        placed.append(
            Order(
                organisation=org,
                team=member.team,
                placed_by=member.user,
                status=Status.COMPLETED,
                reference=f"{REFERENCE_PREFIX}{demanded.number}",
                due_date=demanded.due,
                delivery_site=org.default_delivery_site,
                promised_at=promise,
                status_changed_at=max(result.outcomes[k].finished_at for k in keys),
                total_price=Decimal("0.00"),
            )
        )
    created_orders = Order.objects.bulk_create(placed)
    for order, demanded in zip(created_orders, orders, strict=True):
        order.placed_at = demanded.placed_at  # auto_now_add stamped it now
    Order.objects.bulk_update(created_orders, ["placed_at"], batch_size=500)
    lines = []
    for order, demanded in zip(created_orders, orders, strict=True):
        for line in demanded.lines:
            revision = revisions[line.part.slug.replace("_", "-")]
            values = defaults(parse_schema(line.part.schema))
            lines.append(
                OrderLine(
                    order=order,
                    revision=revision,
                    parameters=values,
                    parameters_hash=parameters_hash(values),
                    material=materials[line.material],
                    quantity=line.quantity,
                    status=Status.COMPLETED,
                    quote={"machine_time_s": float(line.per_copy_s), "quantity": line.quantity},
                    process=line.part.process,
                )
            )
    created_lines = iter(OrderLine.objects.bulk_create(lines))
    past_jobs = []
    for demanded in orders:
        for index, line in enumerate(demanded.lines):
            order_line = next(created_lines)
            outcome = result.outcomes[f"{demanded.number}.{index}"]
            past_jobs.append(
                _past_job(
                    order_line,
                    line,
                    outcome_fields={
                        "machine_id": machine_ids[outcome.machine],
                        "started_at": outcome.started_at,
                        "finished_at": outcome.finished_at,
                    },
                    routed_at=outcome.routed_at,
                    ready_at=outcome.ready_at,
                    machine_name=names[outcome.machine],
                    qc_at=qc_done_at(outcome, calendars),
                    actor=actor,
                )
            )
    changes = _machine_changes(result, machine_ids=machine_ids, actor=actor)
    lifecycle.history_record(jobs=past_jobs, machine_changes=changes)
    return len(past_jobs)


def _past_job(
    order_line: OrderLine,
    line: DemoLine,
    *,
    outcome_fields: dict[str, Any],
    ready_at: datetime,
    routed_at: datetime,
    machine_name: str,
    qc_at: datetime,
    actor: str,
) -> PastJob:
    status = Job.Status
    # Created with its order (a line's G-code a minute after the one before).
    created = ready_at - timedelta(minutes=PIPELINE_MINUTES[-1][2])
    moves = [PastMove(to=status.QUEUED, by=By.CUSTOMER, step="create", at=created, actor=actor)]
    for to, step, minutes in PIPELINE_MINUTES:
        moves.append(
            PastMove(
                to=to,
                by=By.PIPELINE,
                step=step,
                at=created + timedelta(minutes=minutes),
                actor="worker",
            )
        )
    started, finished = outcome_fields["started_at"], outcome_fields["finished_at"]
    moves += [
        PastMove(
            to=status.ROUTED,
            by=By.ROUTER,
            step="routing",
            at=routed_at,
            actor="router",
            message=f"routed to {machine_name} (batch plan)",
        ),
        PastMove(to=status.DISPATCHED, by=By.MACHINE, step="dispatch", at=routed_at, actor=actor),
        PastMove(to=status.RUNNING, by=By.OPERATOR, step="start", at=started, actor="operator"),
        PastMove(
            to=status.AWAITING_QC, by=By.OPERATOR, step="finish", at=finished, actor="operator"
        ),
        PastMove(to=status.DONE, by=By.OPERATOR, step="qc", at=qc_at, actor="operator"),
    ]
    fields = {
        "line": order_line,
        "quantity": line.quantity,
        "toolpath_meta": {"estimated_time_s": float(line.per_copy_s), "process": line.part.process},
        "dfm_report": {"extents_mm": list(line.extents_mm)},
        "progress": 100.0,
        "qc_passed": line.quantity,
        **outcome_fields,
    }
    return PastJob(fields=fields, moves=tuple(moves))


def _machine_changes(
    result: SimResult, *, machine_ids: dict[str, int], actor: str
) -> list[PastMachineChange]:
    """Each machine busy from the start of a job (its changeover first) to its end, idle
    between jobs (not when the next starts as the last ends)."""
    changes = []
    for key, intervals in result.busy.items():
        previous_end: datetime | None = None
        for busy in sorted(intervals, key=lambda b: b.start):
            reason = "started a job" + (" (changeover first)" if busy.changeover_s else "")
            if previous_end is not None and busy.start == previous_end:
                previous_end = busy.end  # ran straight on: still busy
                continue
            if previous_end is not None:
                changes.append(
                    PastMachineChange(
                        machine_ids[key], "busy", "idle", previous_end, actor, "queue done"
                    )
                )
            changes.append(
                PastMachineChange(machine_ids[key], "idle", "busy", busy.start, actor, reason)
            )
            previous_end = busy.end
        if previous_end is not None:
            changes.append(
                PastMachineChange(
                    machine_ids[key], "busy", "idle", previous_end, actor, "queue done"
                )
            )
    return changes
