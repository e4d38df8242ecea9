"""Write paths for machines: routing facts, telemetry, state changes, re-routing, dispatch.

What moves a job once the pipeline has made its files:

    toolpath_ready -route-> routed -dispatch-> dispatched -start-> running -finish-> awaiting_qc
                                                                   running <-pause/continue-> paused

- Routing: one batch router (`jobs_route_waiting`) assigns every job whose traveler is
  ready, with the pure router in production.routing, under a lock so that two passes at once
  never overfill a machine's queue. The pipeline hands its jobs to it; nothing else routes.
- Dispatch (`machine_dispatch`) hands routed jobs to the machine's connector: a manual
  machine's jobs all go on the operator's list at once; a networked printer (OctoPrint,
  Moonraker) gets its next job only when it is idle with nothing else sent, and only while
  the dispatch still holds its claim on the job.
- Telemetry (`telemetry_record`, from a machine's agent or from our poller) keeps the latest
  values on the machine, a row of history, and moves the job it reports on (paused and back).
- A machine that goes offline, errors or is put in maintenance (`machine_set_state`) gives its
  jobs back (`jobs_off_machine`): queued ones are routed again, a running or paused one fails
  with the reason and a replacement job is queued.

Every job move is claimed (`UPDATE ... WHERE status = <what we saw>`) and written as a JobEvent
in the same transaction, so two workers racing move a job once and no job is lost. Tasks are
enqueued on commit. This module imports no CAD library: the web process uses it too.
"""

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from catalog.models import Material
from microfactory.errors import DomainError, Rejected
from production import connectors, lifecycle, passport, plating, routing, spools
from production.calendars import NeverOpen, SiteCalendar, calendars_for_sites
from production.lifecycle import By
from production.models import (
    Artifact,
    Job,
    JobArtifact,
    Machine,
    MachineFile,
    MachineTelemetry,
    Plate,
    PlateCopy,
    TransitTime,
)

logger = logging.getLogger(__name__)

State = Machine.State
Status = Job.Status
PRIORITY = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
# Jobs a manual machine's operator has not started yet: still free to go elsewhere.
NOT_STARTED_MANUAL = (Status.ROUTED, Status.DISPATCHED)


# --- routing values from the database -------------------------------------------------------


@dataclass
class _Queue:
    jobs: int = 0
    eta_s: float = 0.0
    last_material: str | None = None


def machine_queues(
    machine_ids: Iterable[int] | None = None,
    *,
    calendars: Mapping[int, SiteCalendar] | None = None,
    now: datetime | None = None,
) -> dict[int, _Queue]:
    """Per machine: how many jobs it holds and the seconds of work they still need. With the
    machines' calendars ({machine id: its site's}), a job not started yet waits for its site
    to open, so the seconds are until the last one is done. A plate (#13) counts once, with
    its own time; the jobs on it are not counted again."""
    active = Job.objects.filter(status__in=Job.ON_MACHINE, machine__isnull=False).filter(
        ~Exists(PlateCopy.objects.filter(job=OuterRef("pk")))
    )
    if machine_ids is not None:
        machine_ids = list(machine_ids)
        active = active.filter(machine_id__in=machine_ids)
    queues: dict[int, _Queue] = {}
    rows = active.order_by(*Job.QUEUE_ORDER).values_list(
        "machine_id", "progress", "toolpath_meta", "quantity", "line__material__slug", "status"
    )
    at = now or timezone.now()
    work: list[tuple[int, float, str | None, bool]] = [
        (machine_id, left, None, started)
        for machine_id, left, started in plating.plate_queue_rows(machine_ids)
    ]
    for machine_id, progress, meta, quantity, slug, status in rows:
        # The G-code makes one copy: a job of quantity N runs it N times.
        estimate = float((meta or {}).get("estimated_time_s") or 0) * max(1, quantity)
        remaining = estimate * (1 - min(progress or 0.0, 100.0) / 100)
        work.append((machine_id, remaining, slug, status in Job.STARTED))
    # What runs now first, then the queue in the order the machine takes it (Job.QUEUE_ORDER).
    work.sort(key=lambda item: not item[3])
    for machine_id, remaining, material, started in work:
        queue = queues.setdefault(machine_id, _Queue())
        queue.jobs += 1
        calendar = calendars.get(machine_id) if calendars else None
        if calendar is None or started:
            queue.eta_s += remaining
        else:
            try:
                start = calendar.next_open(at + timedelta(seconds=queue.eta_s))
            except NeverOpen:
                start = at + timedelta(seconds=queue.eta_s)
            queue.eta_s = (start - at).total_seconds() + remaining
        if material is not None:
            queue.last_material = material
    return queues


def routing_facts(*, process: str | None = None, timing: bool = True) -> list[routing.MachineFacts]:
    """Every machine (of a process) as the router sees it, with its queue; without `timing`,
    as if every machine were idle and every site always open (four queries fewer: for what
    reads no time, the catalog's "from" prices and a configuration's DFM check)."""
    found = Machine.objects.select_related("site", "spool__material").prefetch_related(
        "materials_loaded", "materials_loadable"
    )
    if process is not None:
        found = found.filter(process=process)
    machines = list(found)
    zones = {m.site_id: m.site.timezone for m in machines}
    site_calendars = (
        read_once(
            ("calendars", frozenset(zones.items())),
            lambda: calendars_for_sites(zones, zones=zones),
        )
        if timing
        else {}
    )
    machine_calendars = {
        m.pk: site_calendars[m.site_id]
        for m in machines
        if not site_calendars.get(m.site_id, SiteCalendar()).always_open
    }
    queues = machine_queues((m.pk for m in machines), calendars=machine_calendars) if timing else {}
    loaded_spools = spools.loaded_spools(machines)
    reserve_g: float = settings.MF_SPOOL_RESERVE_G
    facts = []
    for machine in machines:
        queue = queues.get(machine.pk, _Queue())
        loaded = frozenset(mat.slug for mat in machine.materials_loaded.all())
        loadable = frozenset(mat.slug for mat in machine.materials_loadable.all())
        spool = loaded_spools.get(machine.pk)
        spool_g = None
        if spool is not None:  # the spool on the tool is what is loaded, whatever the list says
            loadable, loaded = loadable | loaded, frozenset({spool.material})
            spool_g = spool.free_g
        if queue.last_material is not None and queue.last_material not in loaded:
            loaded = frozenset({queue.last_material})  # its queue ends with a spool change
            spool_g = None
        facts.append(
            routing.MachineFacts(
                key=machine.slug,
                name=machine.name,
                site=machine.site.name,
                model=machine.model,
                process=machine.process,
                state=machine.state,
                build_volume_mm=machine.build_volume_mm,
                nozzle_mm=machine.nozzle_mm,
                flavour=machine.flavour,
                materials=loaded,
                queued_jobs=queue.jobs,
                queue_limit=machine.queue_limit,
                queue_eta_s=queue.eta_s,
                loadable=loadable,
                toolpath_engine=machine.toolpath_engine,
                spool_remaining_g=spool_g,
                spool_reserve_g=reserve_g,
                site_slug=machine.site.slug,
                tools=tuple(machine.tool_numbers or ()),
                spindle_max_rpm=float(machine.spindle_max_rpm or 0),
                kerf_mm=float(machine.kerf_mm or 0),
                max_power_s=int(machine.max_power_s or 0),
                laser_source=machine.laser_source,
                calendar=machine_calendars.get(machine.pk),
            )
        )
    return facts


# Quotes read the machine set once per operation (#19, point 8): an order of ten lines quoted
# each line against routing_facts, 5 queries and ~10 ms of ORM work apiece, twice (the DFM
# refusal and the quote). Inside machines_read_once() the quoting reads (read_once) share one
# snapshot; the router and the pipeline never enter it and always read afresh.
#
# Orders placed within MF_QUOTE_SNAPSHOT_S of each other in one process share more (#19,
# points 6b and 8: a burst of orders was ~100 ms of CPU apiece, most of it reading the same
# machines and queue): the machine facts, calendars, transit times, the live queue and the
# run-time spread (SHARED) are read once per period, and each order adds to the live queue the
# jobs placed since (production.simulation.promise.order_promise), so the orders of a burst
# still queue behind each other. A machine's state or a job routed shows in promises after at
# most that long.
_READ_ONCE: ContextVar[tuple[dict[Any, Any], dict[Any, Any] | None] | None] = ContextVar(
    "machines_read_once", default=None
)
SHARED = frozenset(
    {
        "routing_facts",
        "calendars",
        "transit_table",
        "hourly_rates",
        "live_factory",
        "run_time_spread",
    }
)
_T = TypeVar("_T")


@dataclass
class _Snapshot:
    taken_at: datetime
    values: dict[Any, Any] = field(default_factory=dict)


_snapshot: _Snapshot | None = None


@contextmanager
def machines_read_once(*, now: datetime | None = None) -> Iterator[None]:
    """Within it, read_once() reads each machine fact once (one web request, one order). With
    `now` (an order placed now), the SHARED reads are those of this process's snapshot when it
    was taken less than MF_QUOTE_SNAPSHOT_S before `now`, else of a new one."""
    global _snapshot
    shared = None
    period = settings.MF_QUOTE_SNAPSHOT_S
    if now is not None and period > 0:
        if _snapshot is None or not (
            timedelta(0) <= now - _snapshot.taken_at < timedelta(seconds=period)
        ):
            _snapshot = _Snapshot(taken_at=now)
        shared = _snapshot.values
    token = _READ_ONCE.set(({}, shared))
    try:
        yield
    finally:
        _READ_ONCE.reset(token)


def forget_quote_snapshot() -> None:
    """The next order reads the machines and the queue afresh (tests; a changed setting)."""
    global _snapshot
    _snapshot = None


def _memo_for(key: Any) -> dict[Any, Any] | None:
    memos = _READ_ONCE.get()
    if memos is None:
        return None
    own, shared = memos
    name = key[0] if isinstance(key, tuple) else key
    return shared if shared is not None and name in SHARED else own


def read_once(key: Any, read: Callable[[], _T]) -> _T:
    """`read()`, or what it gave for `key` earlier inside the same machines_read_once() (or,
    for a SHARED read, in this process's snapshot)."""
    memo = _memo_for(key)
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    value: _T = memo[key]
    return value


def read_again(key: Any, value: _T) -> _T:
    """Keep `value` as what `key` reads from now on inside machines_read_once() (a SHARED
    read brought up to date: the snapshot's live queue with the jobs placed since)."""
    memo = _memo_for(key)
    if memo is not None:
        memo[key] = value
    return value


def quote_routing_facts(*, process: str, timing: bool = True) -> list[routing.MachineFacts]:
    """routing_facts for a quote or a DFM report: read once inside machines_read_once()."""
    return list(
        read_once(
            ("routing_facts", process, timing),
            lambda: routing_facts(process=process, timing=timing),
        )
    )


def transit_table() -> dict[tuple[str, str], float]:
    """The network's transit times, {(from site slug, to site slug): seconds}, as the router
    reads them (routing.JobNeeds.transit_s)."""
    rows = TransitTime.objects.values_list("from_site__slug", "to_site__slug", "hours")
    return {(origin, to): hours * 3600.0 for origin, to, hours in rows}


def due_at(job: Job) -> datetime | None:
    """The end of the order's due date (UTC), if it has one. An expedited order is due by
    when it was promised, when that is sooner: the router takes it before orders with more
    slack, even when it names no date (orders.delivery)."""
    order = job.line.order
    due = order.due_date
    end = datetime.combine(due + timedelta(days=1), time.min, tzinfo=UTC) if due else None
    if order.expedite and order.promised_at is not None:
        return order.promised_at if end is None else min(end, order.promised_at)
    return end


def job_needs(
    job: Job, *, transit: Mapping[tuple[str, str], float] | None = None
) -> routing.JobNeeds:
    """What the router needs to know about a job whose toolpath is planned; `transit` is the
    network's table (transit_table), read once per routing pass."""
    meta = job.toolpath_meta or {}
    order = job.line.order
    site = order.delivery_site
    raw = meta.get("profile_key")
    profile = None
    if raw is not None:
        # Jobs planned before machines had a toolpath engine were sliced by the builtin one.
        model, nozzle, flavour, volume, engine = raw if len(raw) == 5 else [*raw, "builtin"]
        profile = (model, nozzle, flavour, tuple(volume), engine)
    return routing.JobNeeds(
        # The line's process route (orders.routes), which may be an alternative of the
        # revision's: a machine of that process makes it.
        process=job.line.process,
        material=job.line.material.slug,
        extents_mm=tuple((job.dfm_report or {})["extents_mm"]),
        profile_key=profile,
        key=str(job.pk),
        # A mill's or laser's program has no nozzle: its profile key names its machine class.
        nozzle_mm=meta.get("nozzle_mm") if meta.get("process", "fdm") == "fdm" else None,
        estimated_time_s=float(meta.get("estimated_time_s") or 0) * max(1, job.quantity),
        due=due_at(job),
        # An order for a critical asset that is down ranks at least as its EUR at stake
        # earns (Order.downtime_priority), and that stake breaks ties between equals.
        priority=max(PRIORITY.get(order.priority, 1), PRIORITY.get(order.downtime_priority, 0)),
        stake=float(order.stake_now),
        allowed_machines=routing.dfm_capable(job.dfm_report),
        filament_g=float(spools.job_filament_g(job)),
        delivery_site=site.slug if site else None,
        delivery_site_name=site.name if site else "",
        transit_s=transit if transit is not None else transit_table(),
    )


def changeover_s() -> float:
    minutes: float = settings.MF_CHANGEOVER_MIN
    return minutes * 60.0


# --- moving jobs ----------------------------------------------------------------------------


def _start(job: Job, *, machine: Machine, actor: str, now: datetime, **fields: Any) -> None:
    """The machine reports the job under way: DISPATCHED -> RUNNING, and its filament is
    booked against the spool loaded there (production.spools)."""
    if lifecycle.job_move(
        job,
        to=Job.Status.RUNNING,
        by=By.MACHINE,
        step="start",
        actor=actor,
        now=now,
        message=f"started on {machine.name}",
        started_at=now,
        **fields,
    ):
        spools.spool_book_start(job=job, machine=machine, actor=actor, now=now)


def _on_commit_route_and_dispatch(machine_id: int | None = None) -> None:
    from production import tasks

    def send() -> None:
        try:
            tasks.route_waiting_jobs.apply_async(queue="routing")
            if machine_id is not None:
                tasks.dispatch_machine.apply_async(args=(machine_id,), queue="routing")
        except OperationalError as error:  # the periodic routing pass catches up
            logger.warning("could not enqueue routing (broker unreachable: %s)", error)

    transaction.on_commit(send)


# The key of the PostgreSQL advisory lock that serialises routing passes (any constant that
# no other advisory lock of this database uses: "MFROUTE" in ASCII).
ROUTING_LOCK_KEY = 0x4D46_524F_5554_45


def _lock_routing() -> None:
    """Hold the routing lock until the surrounding transaction ends.

    A pass reads every machine's queue, plans, then assigns: two passes at once would both
    see room on a machine and fill it twice over. On PostgreSQL a transaction-level advisory
    lock makes the passes take turns (released at commit or rollback, even if the process
    dies). SQLite needs nothing more: our transactions are IMMEDIATE (settings.py), so the
    write lock is taken at BEGIN and a second pass waits for the first to commit before it
    reads anything.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROUTING_LOCK_KEY])


def jobs_route_waiting(*, now: datetime, actor: str) -> dict[int, str]:
    """Route every job waiting for a machine in one plan; {job id: machine slug} routed.

    The one router: passes take turns (`_lock_routing`), and each reads the waiting jobs and
    the machines' queues only once it holds the lock, so no machine ever gets more than its
    queue limit. Jobs no machine could ever make end REJECTED; jobs whose machines are down
    or full keep waiting. A second pass finds nothing left to do.
    """
    routed: dict[int, str] = {}
    touched: set[int] = set()
    with transaction.atomic():
        _lock_routing()
        # A pass may have waited for the lock while a toolpath step committed: its moves are
        # timed from when it holds the lock, so a job's events never run backwards.
        now = max(now, timezone.now())
        waiting = list(
            # A held job waits for its order's price check (Job.hold), however long.
            Job.objects.filter(status__in=lifecycle.TO_ROUTE, hold="")
            # Jobs on plates, or waiting to be planned on them, go as plates (below).
            .exclude(plating.routed_as_plates())
            .select_related(
                "line__revision",
                "line__material",
                "line__order__delivery_site",
                "line__order__asset",
            )
            .order_by("pk")[: settings.MF_ROUTE_BATCH]
        )
        plates = plating.ready_plates()
        if plating.awaiting_plates().exists():
            _on_commit_plan_plates()
        if not waiting and not plates:
            return {}
        facts = routing_facts()
        transit = transit_table()
        needs = {job.pk: job_needs(job, transit=transit) for job in waiting}
        on_plate = plating.plate_jobs(plates)
        for plate in plates:
            if all(job.status in Job.TERMINAL for job in on_plate[plate.pk]):
                # Every job on it was cancelled (or ended) meanwhile: nothing to run.
                lifecycle.plate_move(
                    plate, to=Plate.Status.CANCELLED, by=By.ROUTER, actor=actor, now=now,
                    message="every job on it ended", reason="every job on it ended",
                )  # fmt: skip
                on_plate[plate.pk] = []
        plate_needs = {
            plate.pk: plating.plate_needs(plate, on_plate[plate.pk], transit=transit)
            for plate in plates
            if on_plate[plate.pk]
        }
        reasons: dict[str, str] = {}
        plan = routing.plan_routes(
            [*needs.values(), *plate_needs.values()],
            facts,
            now,
            changeover_s=changeover_s(),
            reasons=reasons,
        )
        _route_plates(plates, on_plate, plate_needs, plan, reasons, facts, now=now, actor=actor)
        machines = {m.slug: m for m in Machine.objects.filter(slug__in=set(plan.values()))}
        for job in waiting:
            slug = plan.get(str(job.pk))
            if slug is None:
                try:
                    routing.choose_machine(needs[job.pk], facts, changeover_s=changeover_s())
                except Rejected as refusal:
                    lifecycle.job_move(
                        job,
                        to=Status.REJECTED,
                        by=By.ROUTER,
                        step="routing",
                        actor=actor,
                        now=now,
                        message=str(refusal),
                        reason=str(refusal)[:2000],
                    )
                except routing.NoMachineAvailable:
                    pass  # waits for a machine to come back or free up
                continue
            machine = machines[slug]
            reason = reasons[str(job.pk)]
            if lifecycle.job_move(
                job,
                to=Status.ROUTED,
                by=By.ROUTER,
                step="routing",
                actor=actor,
                now=now,
                message=f"routed to {machine.name} (batch plan): {reason}",
                machine=machine,
                route_reason=reason[:2000],
                queue_rank=None,  # a place moved to on another machine's queue (floor view)
            ):
                routed[job.pk] = slug
                touched.add(machine.pk)
        for machine_id in sorted(touched):
            _on_commit_dispatch(machine_id)
    return routed


def _route_plates(
    plates: list[Plate],
    on_plate: dict[int, list[Job]],
    needs: dict[int, routing.JobNeeds],
    plan: dict[str, str],
    reasons: dict[str, str],
    facts: list[routing.MachineFacts],
    *,
    now: datetime,
    actor: str,
) -> None:
    """Put the planned plates on their machines (and their jobs with them); a plate no
    machine could ever run fails and its jobs are rejected; the others wait."""
    chosen = {slug for key, slug in plan.items() if key.startswith("plate-")}
    machines = {m.slug: m for m in Machine.objects.filter(slug__in=chosen)}
    for plate in plates:
        if plate.pk not in needs:
            continue
        key = needs[plate.pk].key
        slug = plan.get(key)
        if slug is None:
            try:
                routing.choose_machine(needs[plate.pk], facts, changeover_s=changeover_s())
            except Rejected as refusal:
                plating.plate_reject(
                    plate, on_plate[plate.pk], reason=str(refusal), actor=actor, now=now
                )
            except routing.NoMachineAvailable:
                pass  # waits for a machine
            continue
        machine = machines[slug]
        if plating.plate_route(
            plate, on_plate[plate.pk], machine=machine, reason=reasons[key], actor=actor, now=now
        ):
            _on_commit_dispatch(machine.pk)


def _on_commit_plan_plates() -> None:
    from production import tasks

    def send() -> None:
        try:
            tasks.plan_plates.apply_async(queue="toolpath")
        except OperationalError as error:  # beat's periodic pass catches up
            logger.warning("could not enqueue plate planning: %s", error)

    transaction.on_commit(send)


def _on_commit_dispatch(machine_id: int) -> None:
    from production import tasks

    def send() -> None:
        try:
            tasks.dispatch_machine.apply_async(args=(machine_id,), queue="routing")
        except OperationalError as error:
            logger.warning("could not enqueue dispatch for machine %s: %s", machine_id, error)

    transaction.on_commit(send)


# The floor view (production.floor) moves a job onto a machine as the router does: under the
# router's lock, then a dispatch of that machine once committed.
def lock_routing() -> None:
    _lock_routing()


def dispatch_on_commit(machine_id: int) -> None:
    _on_commit_dispatch(machine_id)


def machines_sweep(*, now: datetime, actor: str) -> None:
    """The periodic pass: take jobs back from machines that are down (a race can leave one),
    route waiting jobs, and dispatch what is routed but not sent (a lost message)."""
    down = Machine.objects.exclude(state__in=Machine.AVAILABLE).filter(
        jobs__status__in=Job.ON_MACHINE
    )
    for machine_id in sorted(set(down.values_list("pk", flat=True))):
        jobs_off_machine(machine_id=machine_id, reason="the machine is down", now=now, actor=actor)
    jobs_route_waiting(now=now, actor=actor)
    pending = Job.objects.filter(status=Status.ROUTED, machine__state__in=Machine.AVAILABLE)
    for machine_id in sorted(set(pending.values_list("machine_id", flat=True))):
        with transaction.atomic():
            _on_commit_dispatch(machine_id)


def job_gcode(job: Job) -> bytes:
    link = JobArtifact.objects.select_related("artifact").get(job=job, kind=Artifact.Kind.GCODE)
    with link.artifact.file.open("rb") as gcode:
        content: bytes = gcode.read()  # the file field's value is Any to the stubs
        return content


def machine_dispatch(*, machine_id: int, now: datetime, actor: str) -> list[int]:
    """Send the machine the jobs routed to it; the ids sent. Safe to call twice.

    Manual: every routed job goes on the operator's list (dispatched). Networked: the oldest
    routed job or plate (its one program; its jobs dispatched with it) is uploaded and
    started, but only while the printer is idle with nothing else sent, so it never gets two.
    A connector failure puts the job or plate back and the machine in error.
    """
    with transaction.atomic():
        # The lock serialises dispatches to one machine (SQLite: the IMMEDIATE transaction).
        machine = Machine.objects.select_for_update().filter(pk=machine_id).first()
        if machine is None or machine.state not in Machine.AVAILABLE:
            return []
        queued = list(
            Job.objects.filter(machine=machine, status=Status.ROUTED).order_by(*Job.QUEUE_ORDER)
        )
        if not machine.is_connected:
            for job in queued:
                lifecycle.job_move(
                    job,
                    to=Status.DISPATCHED,
                    by=By.MACHINE,
                    step="dispatch",
                    actor=actor,
                    now=now,
                    message=f"on the operator's list at {machine.name}",
                )
            return [job.pk for job in queued]
        # A plate's jobs go with their plate (below); a plate sent and not finished is running.
        plated = Exists(PlateCopy.objects.filter(job=OuterRef("pk")))
        busy = (
            Job.objects.filter(machine=machine, status__in=(Status.DISPATCHED, *Job.STARTED))
            .filter(~plated)
            .exists()
            or Plate.objects.filter(machine=machine, status=Plate.Status.RUNNING).exists()
        )
        queued = list(
            Job.objects.filter(machine=machine, status=Status.ROUTED)
            .filter(~plated)
            .order_by(*Job.QUEUE_ORDER)
        )
        plate = (
            Plate.objects.filter(machine=machine, status=Plate.Status.ROUTED)
            # Not one being made again without cancelled copies (plating.remake_pending).
            .filter(traveler__isnull=False)
            .exclude(
                Exists(PlateCopy.objects.filter(plate=OuterRef("pk"), qc=PlateCopy.Qc.CANCELLED))
            )
            .select_related("gcode")
            .order_by("status_changed_at", "pk")
            .first()
        )
        if busy or machine.state != State.IDLE or not (queued or plate):
            return []
        # The oldest routed first, plate or job.
        sent: list[Job] | None = None
        if plate is not None and (
            not queued or plate.status_changed_at <= queued[0].status_changed_at
        ):
            sent = _plate_send_claim(plate, machine, now=now, actor=actor)
        else:
            plate, job = None, queued[0]
            if not job.job_artifacts.filter(kind=Artifact.Kind.GCODE).exists():
                # Cannot happen through the pipeline; never loop on it.
                reason = "no G-code to send"
                lifecycle.job_move(
                    job,
                    to=Status.FAILED,
                    by=By.MACHINE,
                    step="dispatch",
                    actor=actor,
                    now=now,
                    message=reason,
                    reason=reason,
                    machine=None,
                )
                _on_commit_dispatch(machine.pk)
                return []
            if not lifecycle.job_move(
                job,
                to=Status.DISPATCHED,
                by=By.MACHINE,
                step="dispatch",
                actor=actor,
                now=now,
                message=f"sending to {machine.get_connector_display()} at {machine.name}",
            ):
                return []
            Machine.objects.filter(pk=machine.pk).update(current_job=job, progress=0.0)
    if plate is not None:
        return (
            [] if sent is None else _plate_upload(plate, machine, jobs=sent, now=now, actor=actor)
        )
    # Our claim is the DISPATCHED move just committed (the job's status_changed_at is `now`).
    gcode = job_gcode(job)
    uploaded = _send_program(
        machine,
        number=job.number,
        filename=f"{job.number}.gcode",
        gcode=gcode,
        # The bytes about to be sent must be the ones the job's passport signed for.
        refusal=passport.gcode_refusal(job, gcode),
        file_job=job,
        still_ours=lambda: _still_dispatched(job, machine, claimed_at=now),
        refuse=lambda why: _refuse_gcode(job, machine, actor=actor, now=now, why=why),
        back=lambda why: _unsent(job, actor=actor, now=now, why=why),
        now=now,
        actor=actor,
    )
    return [job.pk] if uploaded else []


def _send_program(
    machine: Machine,
    *,
    number: str,
    filename: str,
    gcode: bytes,
    refusal: str | None,
    file_job: Job | None,
    still_ours: Callable[[], bool],
    refuse: Callable[[str], None],
    back: Callable[[str], None],
    now: datetime,
    actor: str,
) -> bool:
    """Upload a claimed program (a job's, or a plate's) to its machine; whether it was sent.

    The claim is checked last, right before the upload (`still_ours`, which locks the claimed
    row to the end of the transaction): reading the G-code takes time, and the job or machine
    may change meanwhile. Without the claim nothing is sent. With it: a program whose bytes
    may not be sent (`refusal`) is refused (`refuse`); a machine that can no longer take it
    gives it back to be routed again (`back`); else the machine's file is recorded first (the
    upload may reach the machine even when its answer is lost: a file recorded and never
    uploaded costs one DELETE answered 404 later) and the program sent. A connector failure
    gives it back too, if still ours, and puts the machine in error."""
    with transaction.atomic():
        ours = still_ours()
        available = Machine.objects.filter(pk=machine.pk, state__in=Machine.AVAILABLE).exists()
        if ours and refusal is not None:
            refuse(refusal)
            return False
        if ours and not available:
            # Nothing was sent: back to routed, so the machine going down re-routes it rather
            # than failing it as if the printer might have started it.
            back(f"not sent: {machine.name} can no longer take it")
        if ours and available:
            MachineFile.objects.get_or_create(
                machine=machine, filename=filename, defaults={"job": file_job, "sent_at": now}
            )
    if not (ours and available):
        logger.info("%s: not sending %s: the dispatch lost its claim", machine.name, number)
        return False
    try:
        connectors.connector_for(machine).dispatch(filename=filename, gcode=gcode)
    except connectors.ConnectorError as failure:
        reason = f"could not send {number}: {failure}"
        logger.warning("%s: %s", machine.name, reason)
        with transaction.atomic():
            # Back to routed only if still ours: one that moved on while we were uploading
            # (taken back, or sent again by another dispatch) is left where it is.
            if still_ours():
                back(reason)
        # The machine in error gives what it held back to the router (jobs_off_machine).
        machine_set_state(
            machine_id=machine.pk, state=State.ERROR, reason=reason, now=now, actor=actor
        )
        return False
    return True


def plate_filename(plate: Plate) -> str:
    return f"{plate.number}.gcode"


def _plate_jobs(plate: Plate) -> list[Job]:
    # By id, not by a join with DISTINCT: PostgreSQL locks no rows of a DISTINCT query.
    ids = PlateCopy.objects.filter(plate=plate).values("job_id")
    return list(Job.objects.filter(pk__in=ids).order_by("pk"))


def _plate_send_claim(
    plate: Plate, machine: Machine, *, now: datetime, actor: str
) -> list[Job] | None:
    """Claim a routed plate for its networked printer: the plate runs from now (the printer
    starts it on upload; its start is when the printer says it prints) and its jobs waiting
    with it are dispatched. None if another dispatch took it first. Inside the transaction."""
    if not lifecycle.plate_move(
        plate,
        to=Plate.Status.RUNNING,
        by=By.MACHINE,
        actor=actor,
        now=now,
        message=f"sending to {machine.get_connector_display()} at {machine.name}",
        progress=0.0,
        started_at=None,
    ):
        return None
    jobs = _plate_jobs(plate)
    for job in jobs:
        if job.status == Status.ROUTED:
            lifecycle.job_move(
                job,
                to=Status.DISPATCHED,
                by=By.MACHINE,
                step="dispatch",
                actor=actor,
                now=now,
                message=f"on {plate.number}, sending to {machine.get_connector_display()} "
                f"at {machine.name}",
                machine=machine,
            )
    Machine.objects.filter(pk=machine.pk).update(
        current_job=jobs[0] if jobs else None, progress=0.0
    )
    return jobs


def _still_sending(plate: Plate, machine: Machine, *, claimed_at: datetime) -> bool:
    """The plate is still running on this machine by our claim and not yet started."""
    return (
        Plate.objects.select_for_update()
        .filter(
            pk=plate.pk,
            status=Plate.Status.RUNNING,
            machine=machine,
            status_changed_at=claimed_at,
            started_at__isnull=True,
        )
        .exists()
    )


def _plate_gcode(plate: Plate) -> tuple[bytes, str | None]:
    """The plate's program and why it must not be sent (None: send it): the bytes must be
    the ones its artifact's sha256 names, as a job's must match its passport."""
    if plate.gcode is None:
        return b"", "it has no G-code"
    try:
        with plate.gcode.file.open("rb") as file:
            gcode: bytes = file.read()
    except OSError:
        return b"", "its G-code file is missing"
    if hashlib.sha256(gcode).hexdigest() != plate.gcode.sha256:
        return b"", "its G-code file does not match its sha256"
    return gcode, None


def _plate_back(
    plate: Plate, jobs: list[Job], *, claimed_at: datetime, actor: str, now: datetime, why: str
) -> None:
    """Nothing was sent (or not all of it): the plate and the jobs we dispatched with it go
    back to the machine's queue. Call with the plate still ours."""
    lifecycle.plate_move(
        plate, to=Plate.Status.ROUTED, by=By.MACHINE, actor=actor, now=now, message=why,
        progress=None,
    )  # fmt: skip
    for job in Job.objects.filter(
        pk__in=[j.pk for j in jobs], status=Status.DISPATCHED, status_changed_at=claimed_at
    ):
        _unsent(job, actor=actor, now=now, why=why)


def _plate_upload(
    plate: Plate, machine: Machine, *, jobs: list[Job], now: datetime, actor: str
) -> list[int]:
    """Send the claimed plate's program and start it (_send_program, as a job's); the plate's
    job ids sent."""
    gcode, refusal = _plate_gcode(plate)
    uploaded = _send_program(
        machine,
        number=plate.number,
        filename=plate_filename(plate),
        gcode=gcode,
        refusal=refusal,
        file_job=jobs[0] if jobs else None,
        still_ours=lambda: _still_sending(plate, machine, claimed_at=now),
        refuse=lambda why: _refuse_plate_gcode(plate, jobs, machine, actor=actor, now=now, why=why),
        back=lambda why: _plate_back(plate, jobs, claimed_at=now, actor=actor, now=now, why=why),
        now=now,
        actor=actor,
    )
    return [job.pk for job in jobs] if uploaded else []


def _refuse_plate_gcode(
    plate: Plate, jobs: list[Job], machine: Machine, *, actor: str, now: datetime, why: str
) -> None:
    """Nothing was sent: the plate's program is not the one its artifact names. The plate and
    its dispatched jobs fail (a plate is sliced again when its jobs' remakes are planned: a new
    program); the machine, which did nothing wrong, takes its next work."""
    reason = f"{plate.number} not sent to {machine.name}: {why}"
    logger.warning("%s", reason)
    lifecycle.plate_move(
        plate, to=Plate.Status.FAILED, by=By.MACHINE, actor=actor, now=now,
        message=reason, reason=reason[:2000],
    )  # fmt: skip
    for job in Job.objects.filter(pk__in=[j.pk for j in jobs], status=Status.DISPATCHED):
        job_fail_on_machine(job=job, by=By.MACHINE, reason=reason, now=now, actor=actor)
    Machine.objects.filter(pk=machine.pk).update(current_job=None, progress=None)
    _on_commit_dispatch(machine.pk)


def _still_dispatched(job: Job, machine: Machine, *, claimed_at: datetime) -> bool:
    """The job is still DISPATCHED to this machine by our move: nothing moved it since (its
    status_changed_at is our move's). Its row stays locked to the end of the transaction."""
    return (
        Job.objects.select_for_update()
        .filter(pk=job.pk, status=Status.DISPATCHED, machine=machine, status_changed_at=claimed_at)
        .first()
        is not None
    )


def _refuse_gcode(job: Job, machine: Machine, *, actor: str, now: datetime, why: str) -> None:
    """Nothing was sent: the job's G-code is not what its passport says. The job fails with
    the reason (no remake: it would reuse the same file; resuming it is refused while the file
    differs) and stays on the machine's record, so that factory's station still shows it; the
    machine, which did nothing wrong, takes its next job."""
    reason = f"not sent to {machine.name}: {why}"
    logger.warning("%s: %s", job.number, reason)
    lifecycle.job_move(
        job,
        to=Status.FAILED,
        by=By.MACHINE,
        step="dispatch",
        actor=actor,
        now=now,
        message=reason,
        reason=reason[:2000],
    )
    Machine.objects.filter(pk=machine.pk, current_job=job).update(current_job=None, progress=None)
    _on_commit_dispatch(machine.pk)


def _unsent(job: Job, *, actor: str, now: datetime, why: str) -> None:
    """A dispatched job that was not (or not fully) sent goes back to routed, to be sent again."""
    lifecycle.job_move(
        job, to=Status.ROUTED, by=By.MACHINE, step="dispatch", actor=actor, now=now, message=why
    )


def _replace(job: Job, *, by: By, reason: str, now: datetime, actor: str) -> Job:
    """A new job for the same line and quantity that reuses the failed one's geometry and
    G-code; it is routed like any other, its own traveler rendered beside."""
    from production.services import job_enqueue

    replacement = lifecycle.job_create(
        by=by,
        step="replacement",
        actor=actor,
        now=now,
        message=f"replaces {job.number}: {reason}",
        status=Status.TOOLPATH_READY,
        line=job.line,
        quantity=job.quantity,
        replaces=job,
        dfm_report=job.dfm_report,
        toolpath_meta=job.toolpath_meta,
    )
    for link in job.job_artifacts.exclude(kind=Artifact.Kind.TRAVELER):
        JobArtifact.objects.create(job=replacement, artifact_id=link.artifact_id, kind=link.kind)
    # Its passport starts with the same inputs and files; its own traveler render adds the rest.
    passport.passport_copy(source=job, to=replacement, now=now, leave_out=[Artifact.Kind.TRAVELER])
    transaction.on_commit(lambda: job_enqueue(job_id=replacement.pk))
    return replacement


def job_fail_on_machine(*, job: Job, by: By, reason: str, now: datetime, actor: str) -> Job | None:
    """A job its machine could not finish: FAILED with the reason, and a replacement queued.
    Returns the replacement; None if the job had moved on. Call inside a transaction."""
    if not lifecycle.job_move(
        job,
        to=Status.FAILED,
        by=by,
        step="failure",
        actor=actor,
        now=now,
        message=reason,
        reason=reason[:2000],
        finished_at=now,
    ):
        return None
    return _replace(job, by=by, reason=reason, now=now, actor=actor)


def jobs_off_machine(*, machine_id: int, reason: str, now: datetime, actor: str) -> list[int]:
    """Take every job back from a machine that went down; the ids moved.

    Jobs not started go back to routing (toolpath_ready, no machine) and are routed again on
    commit; a started one (running, or sent to a networked printer that may have begun it)
    fails with the reason and gets a replacement.
    """
    with transaction.atomic():
        machine = Machine.objects.select_for_update().get(pk=machine_id)
        jobs = list(Job.objects.filter(machine=machine, status__in=Job.ON_MACHINE).order_by("pk"))
        moved = []
        for job in jobs:
            started = job.status in Job.STARTED or (
                job.status == Status.DISPATCHED and machine.is_connected
            )
            if started:
                why = f"{machine.name} went {machine.state} while running it: {reason}"
                if job_fail_on_machine(job=job, by=By.SYSTEM, reason=why, now=now, actor=actor):
                    moved.append(job.pk)
            elif lifecycle.job_move(
                job,
                to=Status.TOOLPATH_READY,
                by=By.SYSTEM,
                step="reroute",
                actor=actor,
                now=now,
                message=f"taken back from {machine.name} ({machine.state}): {reason}",
                machine=None,
            ):
                moved.append(job.pk)
        for plate in Plate.objects.filter(machine=machine, status__in=Plate.ON_MACHINE):
            # A plate not started goes back to be routed again; one under way failed with its
            # jobs (whose replacements are planned on new plates).
            running = plate.status == Plate.Status.RUNNING
            after: dict[str, Any] = {"reason": reason[:2000]} if running else {"machine": None}
            lifecycle.plate_move(
                plate,
                to=Plate.Status.FAILED if running else Plate.Status.READY,
                by=By.SYSTEM,
                actor=actor,
                now=now,
                message=f"{machine.name} went {machine.state}: {reason}",
                **after,
            )
        Machine.objects.filter(pk=machine.pk).update(current_job=None, progress=None)
        if moved:
            _on_commit_route_and_dispatch()
    return moved


def machine_set_state(
    *,
    machine_id: int,
    state: str,
    now: datetime,
    actor: str,
    reason: str = "",
    loss: str | None = None,
) -> Machine:
    """Change a machine's state and do what follows: a machine going down gives its jobs back,
    one coming back (or freed) gets waiting jobs. Setting the same state again does nothing.
    `loss` types the stop for the dashboard (lifecycle.machine_move; None: from the state)."""
    if state not in State.values:
        raise DomainError(f"unknown machine state {state!r}")
    with transaction.atomic():
        machine = Machine.objects.select_for_update().get(pk=machine_id)
        before = machine.state
        if before == state:
            return machine
        error_text = machine.error_text
        if state == State.ERROR:
            error_text = reason[:2000]
        elif state in Machine.AVAILABLE:
            error_text = ""
        lifecycle.machine_move(
            machine,
            to=state,
            actor=actor,
            now=now,
            reason=reason,
            loss=loss,
            error_text=error_text,
        )
    if state not in Machine.AVAILABLE:
        jobs_off_machine(
            machine_id=machine.pk,
            reason=reason or f"set to {state} by {actor}",
            now=now,
            actor=actor,
        )
    elif before not in Machine.AVAILABLE or state == State.IDLE:
        with transaction.atomic():
            _on_commit_route_and_dispatch(machine.pk)
    return machine


# --- telemetry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelemetryReport:
    """One report about a machine, from its agent (the API) or from our connector poller."""

    state: str | None = None
    progress: float | None = None
    temperatures: dict[str, float] = field(default_factory=dict)
    job_id: int | None = None
    job_state: str | None = None  # printing, paused, complete, cancelled, error (pollers)
    error_text: str = ""
    plate_id: int | None = None  # the plate the machine runs (our poller, or its agent)


class PlateNotOnMachine(DomainError):
    """A machine reported on a plate that is not its own (or no plate at all)."""


class PlateNotRunning(DomainError):
    """A machine reported on its plate while the plate is not running there."""


def _reported_plate(machine: Machine, plate_id: int) -> Plate:
    """The plate a machine's agent reports on: its own, and running (sent to it, or started);
    refused otherwise, so a report about a plate changes nothing unless it applies."""
    plate = Plate.objects.select_for_update().filter(pk=plate_id, machine=machine).first()
    if plate is None:
        raise PlateNotOnMachine(f"plate {plate_id} is not on {machine.name}")
    if plate.status != Plate.Status.RUNNING:
        raise PlateNotRunning(
            f"{plate.number} is {plate.get_status_display()}; a machine reports only on the "
            "plate it runs"
        )
    return plate


def telemetry_record(
    *,
    machine_id: int,
    report: TelemetryReport,
    now: datetime,
    actor: str,
    strict_plate: bool = False,
) -> Machine:
    """Keep the report as the machine's latest values and as history, move the job or plate
    it is about, then apply a state change (which may re-route). A machine in maintenance
    stays there whatever it reports: only staff bring it back. `strict_plate` (a machine's
    agent): a plate not on the machine or not running refuses the whole report
    (PlateNotOnMachine, PlateNotRunning); our poller names only the plate it found running."""
    with transaction.atomic():
        machine = Machine.objects.select_for_update().get(pk=machine_id)
        if strict_plate and report.plate_id is not None:
            _reported_plate(machine, report.plate_id)
        job = None
        if report.job_id is not None:
            job = Job.objects.filter(
                pk=report.job_id, machine=machine, status__in=(Status.DISPATCHED, *Job.STARTED)
            ).first()
        machine.last_seen_at = now
        machine.temperatures = report.temperatures
        machine.progress = report.progress
        if report.error_text or report.state in Machine.AVAILABLE:
            machine.error_text = report.error_text[:2000]
        if job is not None:
            machine.current_job = job
        machine.save(
            update_fields=["last_seen_at", "temperatures", "progress", "error_text", "current_job"]
        )
        MachineTelemetry.objects.create(
            machine=machine,
            recorded_at=now,
            state=report.state or machine.state,
            progress=report.progress,
            temperatures=report.temperatures,
            job=job,
            error_text=report.error_text[:2000],
        )
        freed = job is not None and _follow_job(machine, job, report=report, now=now, actor=actor)
        if report.plate_id is not None:
            plate = Plate.objects.filter(
                pk=report.plate_id, machine=machine, status=Plate.Status.RUNNING
            ).first()
            if plate is not None:
                freed = _follow_plate(machine, plate, report=report, now=now, actor=actor)
    new_state = report.state
    if machine.state == State.MAINTENANCE or new_state is None:
        new_state = machine.state
    if new_state != machine.state:
        reason = report.error_text or f"reported {new_state}"
        machine = machine_set_state(
            machine_id=machine.pk, state=new_state, now=now, actor=actor, reason=reason
        )
    elif freed:
        with transaction.atomic():
            _on_commit_route_and_dispatch(machine.pk)
    return machine


def _follow_job(
    machine: Machine, job: Job, *, report: TelemetryReport, now: datetime, actor: str
) -> bool:
    """Move the job the machine reports on; True when it finished (the machine is free)."""
    progress = report.progress
    if report.job_state in (None, "printing", "paused") and report.state in ("busy", "paused"):
        # Pollers name the job's state; an agent reports only the machine's, which is the job's.
        paused = (report.job_state or report.state) == "paused"
        if job.status == Status.DISPATCHED:
            _start(job, machine=machine, actor=actor, now=now, progress=progress)
        if paused and job.status == Status.RUNNING:
            lifecycle.job_move(
                job,
                to=Status.PAUSED,
                by=By.MACHINE,
                step="pause",
                actor=actor,
                now=now,
                message=f"paused on {machine.name}",
            )
        elif not paused and job.status == Status.PAUSED:
            lifecycle.job_move(
                job,
                to=Status.RUNNING,
                by=By.MACHINE,
                step="continue",
                actor=actor,
                now=now,
                message=f"resumed on {machine.name}",
            )
        if progress is not None:
            Job.objects.filter(pk=job.pk, status__in=Job.STARTED).update(progress=progress)
        return False
    if report.job_state == "complete":
        if job.status == Status.DISPATCHED:  # finished between two polls
            _start(job, machine=machine, actor=actor, now=now)
        if lifecycle.job_move(
            job,
            to=Status.AWAITING_QC,
            by=By.MACHINE,
            step="finish",
            actor=actor,
            now=now,
            message=f"printed on {machine.name}",
            finished_at=now,
            progress=100.0,
        ):
            Machine.objects.filter(pk=machine.pk).update(current_job=None)
            spools.spool_book_end(job=job, actor=actor, now=now)
            return True
        return False
    if report.job_state in ("cancelled", "error"):
        what = "cancelled on the machine" if report.job_state == "cancelled" else "machine error"
        reason = f"{what}: {report.error_text}" if report.error_text else what
        if job_fail_on_machine(job=job, by=By.MACHINE, reason=reason, now=now, actor=actor):
            Machine.objects.filter(pk=machine.pk).update(current_job=None)
            return True
    return False


def _follow_plate(
    machine: Machine, plate: Plate, *, report: TelemetryReport, now: datetime, actor: str
) -> bool:
    """Move the plate a networked printer reports on, and its jobs with it; True when it
    ended (the machine is free). Printing: the plate started (its jobs run, their filament is
    booked). Complete: the plate waits for QC copy by copy at the station, and each job none
    of whose plates is still to run waits for QC. Cancelled or an error: the plate failed and
    its jobs fail with replacements, which are planned on new plates."""
    jobs = _plate_jobs(plate)
    progress = report.progress
    if report.job_state in (None, "printing", "paused") and report.state in ("busy", "paused"):
        paused = (report.job_state or report.state) == "paused"
        fields: dict[str, Any] = {} if progress is None else {"progress": progress}
        if plate.started_at is None:
            fields["started_at"] = now
        if fields:  # not a move: the plate runs from its dispatch
            Plate.objects.filter(pk=plate.pk, status=Plate.Status.RUNNING).update(**fields)
        for job in jobs:
            if job.status == Status.DISPATCHED:
                _start(job, machine=machine, actor=actor, now=now, progress=0.0)
            moves: dict[str, str] = (
                {Status.RUNNING: Status.PAUSED} if paused else {Status.PAUSED: Status.RUNNING}
            )
            if job.status in moves:
                lifecycle.job_move(
                    job, to=moves[job.status], by=By.MACHINE, actor=actor, now=now,
                    step="pause" if paused else "continue",
                    message=f"{plate.number} {'paused' if paused else 'resumed'} on {machine.name}",
                )  # fmt: skip
        return False
    if report.job_state == "complete":
        if not lifecycle.plate_move(
            plate, to=Plate.Status.FINISHED, by=By.MACHINE, actor=actor, now=now,
            message=f"printed on {machine.name}", finished_at=now, progress=100.0,
            started_at=plate.started_at or now,
        ):  # fmt: skip
            return False
        to_run = (Plate.Status.READY, Plate.Status.ROUTED, Plate.Status.RUNNING)
        for job in jobs:
            if job.status == Status.DISPATCHED:  # finished between two polls
                _start(job, machine=machine, actor=actor, now=now)
            if job.status == Status.PAUSED:
                lifecycle.job_move(
                    job, to=Status.RUNNING, by=By.MACHINE, step="continue", actor=actor,
                    now=now, message=f"{plate.number} resumed on {machine.name}",
                )  # fmt: skip
            if job.status != Status.RUNNING:
                continue
            if job.plate_copies.filter(plate__status__in=to_run).exists():
                continue  # more of its copies are still to print
            if lifecycle.job_move(
                job, to=Status.AWAITING_QC, by=By.MACHINE, step="finish", actor=actor, now=now,
                message=f"printed on {plate.number} at {machine.name}", finished_at=now,
                progress=100.0,
            ):  # fmt: skip
                spools.spool_book_end(job=job, actor=actor, now=now)
        Machine.objects.filter(pk=machine.pk).update(current_job=None)
        return True
    if report.job_state in ("cancelled", "error"):
        what = "cancelled on the machine" if report.job_state == "cancelled" else "machine error"
        reason = f"{what}: {report.error_text}" if report.error_text else what
        if not lifecycle.plate_move(
            plate, to=Plate.Status.FAILED, by=By.MACHINE, actor=actor, now=now,
            message=reason, reason=reason[:2000], finished_at=now,
        ):  # fmt: skip
            return False
        for job in jobs:
            if job.status in (Status.DISPATCHED, *Job.STARTED):
                why = f"{plate.number}: {reason}"
                job_fail_on_machine(job=job, by=By.MACHINE, reason=why, now=now, actor=actor)
        Machine.objects.filter(pk=machine.pk).update(current_job=None)
        return True
    return False


def _redispatch_plate_if_stale(
    machine: Machine, plate: Plate, *, now: datetime, actor: str
) -> None:
    """A plate sent to an idle printer that never started it goes back to the machine's
    queue once MF_DISPATCH_STALE_S has passed, to be sent again."""
    if plate.started_at is not None:
        return
    if now - plate.status_changed_at < timedelta(seconds=settings.MF_DISPATCH_STALE_S):
        return
    jobs = _plate_jobs(plate)
    with transaction.atomic():
        if _still_sending(plate, machine, claimed_at=plate.status_changed_at):
            why = f"{machine.name} never started it: sending again"
            _plate_back(
                plate, jobs, claimed_at=plate.status_changed_at, actor=actor, now=now, why=why
            )
            _on_commit_dispatch(machine.pk)


def machine_poll(*, machine_id: int, now: datetime, actor: str) -> connectors.MachineStatus | None:
    """Ask a networked machine how it is and record the answer as telemetry.

    Unreachable: only the error text is kept, and the silence rule takes the machine offline
    after MF_MACHINE_OFFLINE_AFTER_S. Refused key or an answer we cannot read: machine error.
    """
    machine = Machine.objects.filter(pk=machine_id).first()
    if machine is None or not machine.is_connected or machine.state == State.MAINTENANCE:
        return None
    try:
        connector = connectors.connector_for(machine)
        status = connector.poll()
    except connectors.Unreachable as failure:
        Machine.objects.filter(pk=machine.pk).update(error_text=str(failure)[:2000])
        return None
    except connectors.ConnectorError as failure:
        machine_set_state(
            machine_id=machine.pk, state=State.ERROR, reason=str(failure), now=now, actor=actor
        )
        return None
    if status is None:
        return None
    active = (
        Job.objects.filter(machine=machine, status__in=(Status.DISPATCHED, *Job.STARTED))
        # A plate's jobs are followed through their plate.
        .filter(~Exists(PlateCopy.objects.filter(job=OuterRef("pk"))))
        .order_by("pk")
        .first()
    )
    plate = (
        Plate.objects.filter(machine=machine, status=Plate.Status.RUNNING).order_by("pk").first()
    )
    ours = active is not None and status.job_file == f"{active.number}.gcode"
    our_plate = plate is not None and status.job_file == plate_filename(plate)
    telemetry_record(
        machine_id=machine.pk,
        report=TelemetryReport(
            state=status.state,
            progress=status.progress if ours or our_plate else None,
            temperatures=status.temperatures,
            job_id=active.pk if ours and active else None,
            job_state=status.job_state if ours or our_plate else None,
            error_text=status.error_text,
            plate_id=plate.pk if our_plate and plate else None,
        ),
        now=now,
        actor=actor,
    )
    if active is not None and not ours and status.state == State.IDLE:
        _redispatch_if_stale(machine, active, now=now, actor=actor)
    if plate is not None and not our_plate and status.state == State.IDLE:
        _redispatch_plate_if_stale(machine, plate, now=now, actor=actor)
    machine_files_remove(machine=machine, connector=connector, status=status)
    return status


# A job in one of these never goes to a machine again (a remake is a new job, a new file).
_OFF_MACHINES_FOR_GOOD = Job.TERMINAL | {Status.AWAITING_QC}
FILES_REMOVED_PER_POLL = 10
FILE_REMOVAL_ATTEMPTS = 5  # refusals by a machine that answers; an unreachable one never counts


def machine_files_remove(
    *, machine: Machine, connector: connectors.Connector, status: connectors.MachineStatus
) -> list[str]:
    """Delete on the machine the files of jobs that left it for good (finished, failed,
    cancelled); the names deleted. Best effort, from the poller, which just heard the machine
    answer: a file whose removal fails stays recorded and is tried again on the next poll.

    Never the file the machine reports printing or paused (a job cancelled here that the
    printer still runs): it waits until the machine is done with it. A file the machine keeps
    refusing to delete is given up after FILE_REMOVAL_ATTEMPTS polls, with a warning. A second
    call finds nothing left to do.
    """
    pending = (
        MachineFile.objects.filter(machine=machine)
        .filter(Q(job__isnull=True) | Q(job__status__in=_OFF_MACHINES_FOR_GOOD))
        .order_by("pk")[:FILES_REMOVED_PER_POLL]
    )
    in_use = status.job_file if status.job_state in ("printing", "paused") else None
    removed = []
    for record in pending:
        if record.filename == in_use:
            continue
        try:
            connector.remove(filename=record.filename)
        except connectors.Unreachable as failure:
            logger.info("%s: could not remove %s now: %s", machine.name, record.filename, failure)
            break  # gone again since the poll: the next poll tries
        except connectors.ConnectorError as failure:
            failures = record.failed_removals + 1
            if failures >= FILE_REMOVAL_ATTEMPTS:
                logger.warning(
                    "%s: gave up removing %s after %d refusals (%s): delete it on the machine",
                    machine.name,
                    record.filename,
                    failures,
                    failure,
                )
                record.delete()
            else:
                logger.warning("%s: not removed %s: %s", machine.name, record.filename, failure)
                MachineFile.objects.filter(pk=record.pk).update(
                    failed_removals=failures, last_error=str(failure)[:2000]
                )
            continue
        record.delete()
        logger.info("%s: removed %s, its job is over", machine.name, record.filename)
        removed.append(record.filename)
    return removed


def _redispatch_if_stale(machine: Machine, job: Job, *, now: datetime, actor: str) -> None:
    """A job sent to an idle printer that never started it (the worker died between the claim
    and the upload, say) is sent again once MF_DISPATCH_STALE_S has passed."""
    if job.status != Status.DISPATCHED:
        return
    if now - job.status_changed_at < timedelta(seconds=settings.MF_DISPATCH_STALE_S):
        return
    with transaction.atomic():
        if lifecycle.job_move(
            job,
            to=Status.ROUTED,
            by=By.MACHINE,
            step="dispatch",
            actor=actor,
            now=now,
            message=f"{machine.name} never started it: sending again",
        ):
            _on_commit_dispatch(machine.pk)


def machines_mark_silent(*, now: datetime, actor: str) -> list[str]:
    """Machines silent for MF_MACHINE_OFFLINE_AFTER_S go offline (and give their jobs back).

    Only machines that report are watched: networked ones, and manual ones whose agent has
    reported at least once. A manual machine without an agent is never silent.
    """
    cutoff = now - timedelta(seconds=settings.MF_MACHINE_OFFLINE_AFTER_S)
    silent = Machine.objects.filter(state__in=Machine.AVAILABLE).filter(
        Q(last_seen_at__lt=cutoff)
        | Q(last_seen_at__isnull=True) & ~Q(connector=Machine.Connector.MANUAL)
    )
    gone = []
    for machine in silent.order_by("pk"):
        seen = f"{machine.last_seen_at:%Y-%m-%d %H:%M:%S}" if machine.last_seen_at else "never"
        machine_set_state(
            machine_id=machine.pk,
            state=State.OFFLINE,
            now=now,
            actor=actor,
            reason=f"silent since {seen} (more than {settings.MF_MACHINE_OFFLINE_AFTER_S} s)",
        )
        gone.append(machine.slug)
    return gone


def telemetry_prune(*, now: datetime) -> int:
    """Delete telemetry older than MF_TELEMETRY_RETENTION_H; the number deleted."""
    cutoff = now - timedelta(hours=settings.MF_TELEMETRY_RETENTION_H)
    deleted, _ = MachineTelemetry.objects.filter(recorded_at__lt=cutoff).delete()
    return deleted


# --- the operator's and the machine's own operations ----------------------------------------


def job_resume(*, job_id: int, now: datetime, actor: str) -> Job:
    """The part of a job failed on a dying machine turned out fine: it goes to QC, and its
    replacement is withdrawn (cancelled) if no machine has started it yet."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != Status.FAILED or job.machine_id is None:
            raise DomainError("only a job that failed on a machine can be resumed")
        try:
            refusal = passport.gcode_refusal(job, job_gcode(job))
        except (JobArtifact.DoesNotExist, OSError):
            refusal = "its G-code file is missing"
        if refusal is not None:
            raise DomainError(f"it cannot be resumed: {refusal}")
        withdraw = []
        for replacement in _remakes(job):
            if replacement.status in (*Job.STARTED, Status.AWAITING_QC, Status.DONE):
                raise DomainError(
                    f"its replacement {replacement.number} is already "
                    f"{replacement.get_status_display()}: the parts are being made again"
                )
            if replacement.status == Status.SCRAPPED:
                raise DomainError(
                    f"its replacement {replacement.number} was made and scrapped; its own "
                    "remake stands"
                )
            if replacement.status not in Job.TERMINAL:
                withdraw.append(replacement)
        for replacement in withdraw:
            lifecycle.job_move(
                replacement,
                to=Status.CANCELLED,
                by=By.OPERATOR,
                step="withdrawn",
                actor=actor,
                now=now,
                message=f"{job.number} was resumed",
                machine=None,
            )
        lifecycle.job_move(
            job,
            to=Status.AWAITING_QC,
            by=By.OPERATOR,
            step="resume",
            actor=actor,
            now=now,
            message="the operator found the part fine",
            reason="",
        )
    return job


def _remakes(job: Job) -> list[Job]:
    """Every job remaking this one: its replacements, theirs, and so on (locked)."""
    found: list[Job] = []
    parents = [job.pk]
    while parents:
        level = list(Job.objects.select_for_update().filter(replaces_id__in=parents).order_by("pk"))
        found.extend(level)
        parents = [remake.pk for remake in level]
    return found


def machine_token_issue(*, machine: Machine) -> str:
    """A new telemetry token for the machine (the old one stops working); shown only once."""
    token = secrets.token_urlsafe(32)
    machine.token_hash = hashlib.sha256(token.encode()).hexdigest()
    machine.save(update_fields=["token_hash"])
    return token


def machine_for_token(token: str) -> Machine | None:
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Machine.objects.filter(token_hash=digest).first()


@dataclass(frozen=True)
class MachineChanges:
    """What staff (or the factory's managers) may change on a machine through the API (None:
    leave as it is)."""

    state: str | None = None
    queue_limit: int | None = None
    hourly_rate: Decimal | None = None
    power_w: int | None = None  # watts while running, for the energy in job costs
    materials_loaded: list[str] | None = None  # material slugs
    materials_loadable: list[str] | None = None
    connector: str | None = None
    connector_url: str | None = None
    connector_secret_env: str | None = None


def machine_update(
    *, machine_id: int, changes: MachineChanges, now: datetime, actor: str
) -> Machine:
    """Apply staff changes; a new state goes through machine_set_state (it may re-route), and
    new materials let waiting jobs be routed here."""
    with transaction.atomic():
        machine = Machine.objects.select_for_update().get(pk=machine_id)
        fields = {
            name: getattr(changes, name)
            for name in (
                "queue_limit",
                "hourly_rate",
                "power_w",
                "connector",
                "connector_url",
                "connector_secret_env",
            )
            if getattr(changes, name) is not None
        }
        for name, value in fields.items():
            setattr(machine, name, value)
        if fields:
            machine.save(update_fields=list(fields))
        for name in ("materials_loaded", "materials_loadable"):
            slugs = getattr(changes, name)
            if slugs is None:
                continue
            found = list(Material.objects.filter(slug__in=slugs))
            missing = sorted(set(slugs) - {m.slug for m in found})
            if missing:
                raise DomainError(f"unknown material(s): {', '.join(missing)}")
            getattr(machine, name).set(found)
        _on_commit_route_and_dispatch(machine.pk)
    if changes.state is not None:
        machine = machine_set_state(
            machine_id=machine.pk,
            state=changes.state,
            now=now,
            actor=actor,
            reason=f"set to {changes.state} by {actor}",
        )
    return machine
