"""The live factory as the engine's values: machines with the work they hold, the jobs still
waiting for a machine, the sites' calendars. A handful of queries whatever the queue length."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings

from orders.quoting import quoted_run_time_s
from production import routing
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
from production.models import Job
from production.simulation.engine import SimJob, SimMachine


@dataclass(frozen=True)
class LiveFactory:
    machines: tuple[SimMachine, ...]
    waiting: tuple[SimJob, ...]  # jobs not on a machine yet: they reach the router from now
    transit: Mapping[tuple[str, str], float]


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
    on_machine = (
        Job.objects.filter(status__in=Job.ON_MACHINE, machine__isnull=False)
        .order_by("status_changed_at", "pk")
        .values_list(
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
    running: dict[str, tuple[SimJob, datetime]] = {}
    queued: dict[str, list[SimJob]] = {}
    for pk, slug, status, progress, meta, quantity, material, line_process in on_machine:
        estimate = float((meta or {}).get("estimated_time_s") or 0) * max(1, quantity)
        if status in Job.STARTED and slug not in running:
            left = estimate * (1 - min(progress or 0.0, 100.0) / 100)
            job = _held_job(
                str(pk), process=line_process, material=material, estimate_s=left, ready_at=now
            )
            running[slug] = (job, now + timedelta(seconds=left))
        else:
            queued.setdefault(slug, []).append(
                _held_job(
                    str(pk),
                    process=line_process,
                    material=material,
                    estimate_s=estimate,
                    ready_at=now,
                )
            )
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
    return LiveFactory(
        machines=tuple(machines),
        waiting=tuple(_waiting_jobs(now=now, processes=processes, transit=transit)),
        transit=transit,
    )


def _waiting_jobs(
    *,
    now: datetime,
    processes: Collection[str] | None,
    transit: Mapping[tuple[str, str], float],
) -> list[SimJob]:
    waiting = (
        Job.objects.exclude(status__in=Job.PIPELINE_DONE)
        .exclude(line__status="price_confirmation")
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
            jobs.append(SimJob(needs=needs, ready_at=now))
            continue
        # Still in the pipeline: its copies on the plates its line's quote planned
        # (orders.quoting.quoted_run_time_s), each copy its planned toolpath time when there
        # is one, else the quoted machine time per part.
        planned = (job.toolpath_meta or {}).get("estimated_time_s")
        try:
            estimate = quoted_run_time_s(
                job.line.quote or {},
                quantity=max(1, job.quantity),
                part_time_s=float(planned) if planned else None,
            )
        except (KeyError, TypeError, ValueError):
            estimate = 0.0  # a malformed estimate counts nothing rather than breaking a quote
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
