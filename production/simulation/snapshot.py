"""The live factory as the engine's values: machines with the work they hold, the jobs still
waiting for a machine, the sites' calendars. A handful of queries whatever the queue length.

A plate (#13) is what a machine runs: a plate routed to a machine or running there is one run
in its queue, and a plate planned but not routed yet waits for the router as one job
(production.plating.plate_needs), its key "plate-<id>"; the jobs whose copies it holds are not
counted again, and finish together when it does (LiveFactory.plates names them). A planned
plate runs its setup plus its program's estimate (orders.quoting.plate_run_time_s, as job
costs count it); a running one what its program has left (its estimate less its progress).
A job of N copies not on plates yet runs as its quote's plate plan (quoted_run_time_s).
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef

from catalog.models import Process
from orders.quoting import plate_run_time_s, quoted_run_time_s
from production import plating, routing
from production.lifecycle import TO_ROUTE
from production.machines import (
    PRIORITY,
    due_at,
    job_needs,
    quote_routing_facts,
    read_once,
    routing_facts,
    transit_table,
)
from production.models import Job, Plate, PlateCopy
from production.simulation.engine import SimJob, SimMachine, SimResult


@dataclass(frozen=True)
class LiveFactory:
    machines: tuple[SimMachine, ...]
    waiting: tuple[SimJob, ...]  # jobs not on a machine yet: they reach the router from now
    transit: Mapping[tuple[str, str], float]
    # Each plate's key ("plate-<id>") and the keys of the jobs whose copies it holds.
    plates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    read_at: datetime | None = None  # the `now` it was read at
    last_job: int = 0  # the newest job waiting in it (jobs_placed_since reads the later ones)

    def finished_at(self, result: SimResult, job_key: str) -> datetime | None:
        """When a job already in the factory finishes in `result`: with the last of the
        plates its copies are on (its copies' jobs finish together), else its own run; a run
        under way when the simulation started ends when it was due to. None: not made."""
        keys = [plate for plate, jobs in self.plates.items() if job_key in jobs] or [job_key]
        running = {m.running.key: m.running_until for m in self.machines if m.running}
        ends = [
            result.outcomes[key].finished_at if key in result.outcomes else running.get(key)
            for key in keys
        ]
        return None if any(end is None for end in ends) else max(e for e in ends if e)


def _held_job(
    key: str, *, process: str, material: str, estimate_s: float, ready_at: datetime
) -> SimJob:
    """A job already on a machine: the simulation needs only its material and run time."""
    needs = routing.JobNeeds(
        process=process,
        material=material,
        extents_mm=(0.0, 0.0, 0.0),
        key=key,
        estimated_time_s=estimate_s,
    )
    return SimJob(needs=needs, ready_at=ready_at)


def live_factory(*, now: datetime, processes: Collection[str] | None = None) -> LiveFactory:
    """Every machine (of a process) with its running job (ending when its estimate, less its
    progress, says) and its queue in the order it works it, and the jobs of that process not
    on a machine yet (still in the pipeline, or waiting for the router): those in the pipeline
    reach the router after the pipeline's overhead, the others now. Jobs waiting for their
    customer to confirm a new price wait out of the simulation, as out of the router. With
    `processes`, only their machines and jobs (no other job competes for those machines);
    inside machines_read_once() the machine facts are the ones the quote itself read."""
    facts = (
        routing_facts()
        if processes is None
        else [fact for p in sorted(processes) for fact in quote_routing_facts(process=p)]
    )
    plated = Exists(PlateCopy.objects.filter(job=OuterRef("pk")))
    on_machine = (
        Job.objects.filter(status__in=Job.ON_MACHINE, machine__isnull=False)
        .filter(~plated)  # their plates run them (below)
        .values_list(
            "status_changed_at",
            "pk",
            "machine__slug",
            "status",
            "progress",
            "toolpath_meta",
            "quantity",
            "line__material__slug",
            "line__process",
        )
    )
    if processes is not None:
        on_machine = on_machine.filter(machine__process__in=list(processes))
    plates = _live_plates(processes)
    setup_s = float(settings.ORDER_QUOTE_RATES.plate_setup_s)
    # (routed or started at, job or plate, its key, its machine, run left, started, material,
    # process)
    held: list[tuple[datetime, int, str, str, float, bool, str, str]] = []
    for changed, pk, slug, status, progress, meta, quantity, material, process in on_machine:
        estimate = float((meta or {}).get("estimated_time_s") or 0) * max(1, quantity)
        started = status in Job.STARTED
        left = estimate * (1 - min(progress or 0.0, 100.0) / 100) if started else estimate
        held.append((changed, 0, str(pk), slug, left, started, material, process))
    for plate in plates:
        on = plate.machine
        if on is None or plate.status not in Plate.ON_MACHINE:
            continue
        started = plate.status == Plate.Status.RUNNING
        left = (
            plate.program_s * (1 - min(plate.progress or 0.0, 100.0) / 100)
            if started
            else plate_run_time_s(program_s=plate.program_s, plate_setup_s=setup_s)
        )
        material, process = plate.material, plate.process
        held.append((plate.changed, 1, plate.key, on, left, started, material, process))
    running: dict[str, tuple[SimJob, datetime]] = {}
    queued: dict[str, list[SimJob]] = {}
    # A machine's work in the order it takes it: the oldest routed first, plate or job.
    for _, _, key, slug, left, started, material, process in sorted(held, key=lambda h: h[:3]):
        job = _held_job(key, process=process, material=material, estimate_s=left, ready_at=now)
        if started and slug not in running:
            running[slug] = (job, now + timedelta(seconds=left))
        else:
            queued.setdefault(slug, []).append(job)
    machines = []
    for fact in facts:
        run = running.get(fact.key)
        materials = frozenset({run[0].needs.material}) if run is not None else fact.materials
        machines.append(
            SimMachine(
                facts=replace(fact, materials=materials),
                calendar=fact.calendar,  # routing_facts read its site's opening hours
                running=run[0] if run is not None else None,
                running_until=run[1] if run is not None else None,
                queued=tuple(queued.get(fact.key, ())),
            )
        )
    transit = read_once("transit_table", transit_table)
    waiting = _waiting_jobs(now=now, processes=processes, transit=transit)
    return LiveFactory(
        machines=tuple(machines),
        waiting=(
            *_planned_plates(plates, now=now, processes=processes, transit=transit),
            *waiting,
        ),
        transit=transit,
        plates={plate.key: tuple(sorted(map(str, plate.jobs))) for plate in plates},
        read_at=now,
        last_job=max((int(job.key) for job in waiting), default=0),
    )


def jobs_placed_since(
    factory: LiveFactory, *, processes: Collection[str] | None = None
) -> LiveFactory:
    """The factory read earlier, with the jobs placed since waiting too (one query): what an
    order placed now queues behind when the machines and the queue were read a few seconds
    ago (production.machines.machines_read_once). They reach the router as the jobs read then
    do (a few seconds early at most); one placed since and already on a plate or a machine is
    not seen."""
    assert factory.read_at is not None
    placed = _waiting_jobs(
        now=factory.read_at, processes=processes, transit=factory.transit, after=factory.last_job
    )
    return replace(
        factory,
        waiting=(*factory.waiting, *placed),
        last_job=max((int(job.key) for job in placed), default=factory.last_job),
    )


@dataclass(frozen=True)
class _Plate:
    """A plate planned, routed or running, as read for the simulation."""

    pk: int
    status: str
    changed: datetime
    machine: str | None  # its slug; None while not routed
    process: str  # its machine's; "" while not routed
    progress: float | None
    program_s: float  # its program's estimate
    filament_g: float
    material: str
    routable: bool  # its traveler is made: the router may route it
    jobs: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"plate-{self.pk}"


def _live_plates(processes: Collection[str] | None) -> list[_Plate]:
    """Every plate planned, routed or running, with its jobs: one query (a row a copy)."""
    rows = (
        Plate.objects.filter(status__in=[Plate.Status.READY, *Plate.ON_MACHINE])
        .order_by("pk")
        .values_list(
            "pk",
            "status",
            "status_changed_at",
            "machine__slug",
            "machine__process",
            "progress",
            "estimated_time_s",
            "filament_g",
            "material__slug",
            "traveler_id",
            "copies__job_id",
        )
    )
    plates: dict[int, _Plate] = {}
    for (
        pk,
        status,
        changed,
        slug,
        process,
        progress,
        program_s,
        grams,
        material,
        traveler,
        job,
    ) in rows:
        if processes is not None and slug is not None and process not in processes:
            continue  # on a machine of another process (a plate not routed: filtered below)
        plate = plates.get(pk) or _Plate(
            pk, status, changed, slug, process or "", progress, float(program_s), float(grams),
            material, traveler is not None, (),
        )  # fmt: skip
        if job is not None and job not in plate.jobs:
            plate = replace(plate, jobs=(*plate.jobs, job))
        plates[pk] = plate
    return list(plates.values())


def _planned_plates(
    plates: Sequence[_Plate],
    *,
    now: datetime,
    processes: Collection[str] | None,
    transit: Mapping[tuple[str, str], float],
) -> list[SimJob]:
    """The plates planned and not routed yet, each one job for the router as the router sees
    it (production.plating.plate_needs), running its setup plus its program. One query for
    their jobs, none without such plates."""
    ready = [p for p in plates if p.status == Plate.Status.READY and p.routable and p.jobs]
    if not ready:
        return []
    jobs = {
        job.pk: job
        for job in Job.objects.filter(pk__in={pk for p in ready for pk in p.jobs}).select_related(
            "line__revision", "line__material", "line__order__delivery_site", "line__order__asset"
        )
    }
    setup_s = float(settings.ORDER_QUOTE_RATES.plate_setup_s)
    waiting = []
    for plate in ready:
        live = [jobs[pk] for pk in sorted(plate.jobs) if jobs[pk].status not in Job.TERMINAL]
        if not live:
            continue  # every job on it ended: the router cancels it
        # plate_needs reads the plate's id, program time and filament only.
        row = Plate(pk=plate.pk, estimated_time_s=plate.program_s, filament_g=plate.filament_g)
        needs = plating.plate_needs(row, live, transit=transit)
        if processes is not None and needs.process not in processes:
            continue
        run_s = plate_run_time_s(program_s=plate.program_s, plate_setup_s=setup_s)
        waiting.append(SimJob(needs=replace(needs, estimated_time_s=run_s), ready_at=now))
    return waiting


def _quoted_s(job: Job) -> float:
    """The job's copies on the plates its line's quote planned (orders.quoting.
    quoted_run_time_s), each copy its planned toolpath time when there is one, else the
    quoted machine time per part."""
    planned = (job.toolpath_meta or {}).get("estimated_time_s")
    try:
        return quoted_run_time_s(
            job.line.quote or {},
            quantity=max(1, job.quantity),
            part_time_s=float(planned) if planned else None,
        )
    except (KeyError, TypeError, ValueError):
        return 0.0  # a malformed estimate counts nothing rather than breaking a quote


def _waiting_jobs(
    *,
    now: datetime,
    processes: Collection[str] | None,
    transit: Mapping[tuple[str, str], float],
    after: int = 0,
) -> list[SimJob]:
    """The jobs not on a plate or a machine yet (of `processes`), the newer than job `after`."""
    waiting = (
        Job.objects.filter(pk__gt=after)
        .exclude(status__in=Job.PIPELINE_DONE)
        .exclude(line__status="price_confirmation")
        # On a plate: the plate waits for the router (_planned_plates), not its jobs.
        .filter(~Exists(PlateCopy.objects.filter(job=OuterRef("pk"))))
        .select_related(
            "line__revision", "line__material", "line__order__delivery_site", "line__order__asset"
        )
        .order_by("pk")
    )
    if processes is not None:
        waiting = waiting.filter(line__process__in=list(processes))
    overhead = timedelta(seconds=settings.ORDER_QUOTE_RATES.pipeline_overhead_s)
    jobs = []
    for job in waiting:
        if job.status in TO_ROUTE and job.dfm_report and job.toolpath_meta:
            needs = job_needs(job, transit=transit)
            if job.quantity > 1 and job.line.process == Process.FDM:
                # Waiting to be planned on plates: its copies as its quote's plate plan.
                needs = replace(needs, estimated_time_s=_quoted_s(job))
            jobs.append(SimJob(needs=needs, ready_at=now))
            continue
        # Still in the pipeline: its copies on the plates its line's quote planned.
        estimate = _quoted_s(job)
        extents = (job.dfm_report or {}).get("extents_mm") or (0.0, 0.0, 0.0)
        order = job.line.order
        site = order.delivery_site
        jobs.append(
            SimJob(
                needs=routing.JobNeeds(
                    process=job.line.process,
                    material=job.line.material.slug,
                    extents_mm=(float(extents[0]), float(extents[1]), float(extents[2])),
                    key=str(job.pk),
                    estimated_time_s=estimate,
                    # Ranked by the router as production.machines.job_needs ranks it.
                    due=due_at(job),
                    priority=max(
                        PRIORITY.get(order.priority, 1), PRIORITY.get(order.downtime_priority, 0)
                    ),
                    stake=float(order.stake_now),
                    delivery_site=site.slug if site else None,
                    transit_s=transit,
                ),
                ready_at=now + overhead,
            )
        )
    return jobs
