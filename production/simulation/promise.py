"""The promise date of an order at the time it is quoted, and how promises turned out.

The live queue is simulated with the order's lines added (engine.simulate over
snapshot.live_factory): every machine's running job and queue, the jobs still in the
pipeline or waiting for the router, changeovers, the sites' opening hours, and the real
router placing the order's jobs when their travelers would be ready (after the pipeline's
overhead). The order is ready when its last job has passed QC and is at the delivery site:
each job's simulated finish, then the QC allowance, MF_PROMISE_QC_JOB_S a job and
MF_PROMISE_QC_COPY_S a copy (qc_allowance_s), counted in the open hours of the machine's site
(people check parts; a job finished just before closing is checked the next morning), then
transit; so "ready by" means QC passed, the moment promise accuracy is measured at.

Plates already planned, routed or running are one run each on their machine
(snapshot.live_factory), their jobs not counted again.

A printed line's copies run as its quote's plate plan (orders.quoting.plates_run_time_s via
Quote.run_time_s): each plate's setup once plus each copy's time, the quote's lead time's
machine time.

Confidence: run times vary around their estimates. Past jobs say by how much: the ratio of
each one's real run (started -> finished) to its estimate, over the latest jobs run. The
simulation is run twice: every job at the median ratio (the *expected* time), and every job
at the ratio that MF_PROMISE_CONFIDENCE (90 %) of past jobs stayed within (the *promise*).
The promise is the second: it holds as long as the work ahead runs no slower than 9 in 10
past jobs did. Until MF_PROMISE_MIN_SAMPLES jobs have run, the estimates stand for the
median and the estimates plus MF_PROMISE_DEFAULT_SPREAD for the promise.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery

from orders.models import Order
from orders.quoting import qc_time_s
from production import routing
from production.calendars import NeverOpen, SiteCalendar
from production.machines import changeover_s, read_again, read_once
from production.models import Job, JobEvent, PlateCopy
from production.simulation.engine import SimJob, SimMachine, SimResult, simulate
from production.simulation.metrics import percentile
from production.simulation.snapshot import LiveFactory, jobs_placed_since, live_factory

# The latest run jobs whose real time is compared with their estimate.
SPREAD_SAMPLE = 200


@dataclass(frozen=True)
class PromiseLine:
    """A line of the order as the simulation needs it: what the router reads, and the
    machine time of all its copies."""

    process: str
    material: str
    extents_mm: tuple[float, float, float]
    run_s: float  # every copy, as the quote's plate plan runs them (Quote.run_time_s)
    copies: int = 1  # for the QC allowance per copy


@dataclass(frozen=True)
class Spread:
    """How real run times compare with their estimates (real / estimate)."""

    expected: float  # the median past job's ratio
    late: float  # the ratio `confidence` of past jobs stayed within
    confidence: float
    samples: int  # past jobs measured (0: the defaults)


@dataclass(frozen=True)
class Promise:
    ready_at: datetime  # promised: every job as slow as the `late` ratio
    expected_at: datetime  # every job at the median ratio
    confidence: float  # 0..1: the share of past jobs within the `late` ratio
    jobs_ahead: int  # jobs on machines or waiting when the order was quoted
    samples: int  # past jobs the spread comes from (0: assumed)

    @property
    def confidence_percent(self) -> int:
        return int(round(self.confidence * 100))


def run_time_spread(*, confidence: float | None = None) -> Spread:
    """The spread of real run times against estimates over the latest jobs run (one query)."""
    share: float = settings.MF_PROMISE_CONFIDENCE if confidence is None else confidence
    # A job on plates ran as its (first) plate ran: that plate's run against its program's
    # estimate, not the job's copies' own times.
    plate = PlateCopy.objects.filter(job=OuterRef("pk")).order_by("plate_id")
    rows = (
        Job.objects.filter(started_at__isnull=False, finished_at__isnull=False)
        .exclude(toolpath_meta__isnull=True)
        .annotate(
            plate_s=Subquery(plate.values("plate__estimated_time_s")[:1]),
            plate_started=Subquery(plate.values("plate__started_at")[:1]),
            plate_finished=Subquery(plate.values("plate__finished_at")[:1]),
        )
        .order_by("-finished_at")
        .values_list(
            "started_at",
            "finished_at",
            "toolpath_meta",
            "quantity",
            "plate_s",
            "plate_started",
            "plate_finished",
        )[:SPREAD_SAMPLE]
    )
    ratios = []
    for started, finished, meta, quantity, plate_s, plate_started, plate_finished in rows:
        try:
            estimate = float((meta or {}).get("estimated_time_s") or 0) * max(1, quantity)
        except (TypeError, ValueError):
            continue
        if plate_s is not None:
            started, finished, estimate = plate_started, plate_finished, float(plate_s)
        if started is not None and finished is not None and estimate > 0 and finished > started:
            ratios.append((finished - started).total_seconds() / estimate)
    if len(ratios) < settings.MF_PROMISE_MIN_SAMPLES:
        return Spread(
            expected=1.0,
            late=1.0 + settings.MF_PROMISE_DEFAULT_SPREAD,
            confidence=share,
            samples=0,
        )
    expected = percentile(ratios, 0.5)
    late = percentile(ratios, share)
    assert expected is not None and late is not None
    return Spread(
        expected=expected, late=max(late, expected), confidence=share, samples=len(ratios)
    )


def qc_allowance_s(
    *, copies: int, job_s: float | None = None, copy_s: float | None = None
) -> float:
    """The time a finished job of `copies` copies is allowed until it has passed QC
    (orders.quoting.qc_time_s, as the quote's lead time allows it): once per job and once per
    copy, from the quote rates (MF_PROMISE_QC_JOB_S, MF_PROMISE_QC_COPY_S) unless given."""
    rates = settings.ORDER_QUOTE_RATES
    return qc_time_s(
        copies=copies,
        job_s=rates.qc_job_s if job_s is None else job_s,
        copy_s=rates.qc_copy_s if copy_s is None else copy_s,
    )


def qc_passed_at(
    result: SimResult,
    qc_s: Mapping[str, float],
    calendars: Mapping[str, SiteCalendar | None] | None = None,
) -> datetime | None:
    """When the last of these jobs (key: its QC allowance) has passed QC and is at its
    delivery site; None if one is not made. QC is people's work at the machine's site: it
    takes that site's open time (`calendars`, {machine key: its site's calendar}; none:
    always open) from the job's finish, so a job finished at 17:55 on a site closing at 18:00
    is checked the next morning; the parts travel after it."""
    if not qc_s or any(key not in result.outcomes for key in qc_s):
        return None
    ready = []
    for key, allowance in qc_s.items():
        outcome = result.outcomes[key]
        calendar = (calendars or {}).get(outcome.machine)
        try:
            checked = (
                outcome.finished_at + timedelta(seconds=allowance)
                if calendar is None
                else calendar.after_open_seconds(outcome.finished_at, allowance)
            )
        except NeverOpen:
            return None  # the site never opens long enough: no promise
        ready.append(checked + (outcome.arrival_at - outcome.finished_at))
    return max(ready)


def machine_calendars(machines: Iterable[SimMachine]) -> dict[str, SiteCalendar | None]:
    """{machine key: its site's calendar}, for qc_passed_at."""
    return {machine.key: machine.calendar for machine in machines}


def _scaled(factory: LiveFactory, factor: float, now: datetime) -> list[SimMachine]:
    """The machines with every job's real run at `factor` times its estimate."""
    machines = []
    for machine in factory.machines:
        until = machine.running_until
        if until is not None:
            until = now + (until - now) * factor
        machines.append(
            replace(
                machine,
                running_until=until,
                queued=tuple(
                    replace(j, run_s=j.needs.estimated_time_s * factor) for j in machine.queued
                ),
            )
        )
    return machines


def simulated_finish(
    factory: LiveFactory,
    lines: Sequence[PromiseLine],
    *,
    now: datetime,
    expedite: bool,
    delivery_site: str | None,
    overhead_s: float,
    changeover: float,
    factor: float = 1.0,
    qc: tuple[float, float] = (0.0, 0.0),
) -> datetime | None:
    """When the order of these lines has passed QC and is at its delivery site if placed
    now, every run at `factor` times its estimate, `qc` (per job, per copy) allowed for QC;
    None when a line is not made (no machine takes it)."""
    keys = [f"order-line-{index}" for index in range(len(lines))]
    ready = now + timedelta(seconds=overhead_s)
    jobs = [
        SimJob(
            needs=routing.JobNeeds(
                process=line.process,
                material=line.material,
                extents_mm=line.extents_mm,
                key=key,
                estimated_time_s=line.run_s,
                # An expedited order goes to the router as urgent and due by its promise:
                # ahead of every job with more slack (production.machines.due_at).
                due=ready if expedite else None,
                priority=3 if expedite else 1,
                delivery_site=delivery_site,
                transit_s=factory.transit,
            ),
            ready_at=ready,
            run_s=line.run_s * factor,
        )
        for key, line in zip(keys, lines, strict=True)
    ]
    ahead = [replace(job, run_s=job.needs.estimated_time_s * factor) for job in factory.waiting]
    result = simulate(
        _scaled(factory, factor, now),
        [*ahead, *jobs],
        start=now,
        changeover_s=changeover,
        stop_when_started=keys,
    )
    return qc_passed_at(
        result,
        {
            key: qc_allowance_s(copies=line.copies, job_s=qc[0], copy_s=qc[1])
            for key, line in zip(keys, lines, strict=True)
        },
        machine_calendars(factory.machines),
    )


def promise_from(
    factory: LiveFactory,
    lines: Sequence[PromiseLine],
    *,
    now: datetime,
    expedite: bool,
    delivery_site: str | None,
    overhead_s: float,
    changeover: float,
    spread: Spread,
    qc: tuple[float, float] = (0.0, 0.0),
) -> Promise | None:
    """The promise (and the expected finish) of these lines on this factory. Pure."""
    expected, late = (
        simulated_finish(
            factory,
            lines,
            now=now,
            expedite=expedite,
            delivery_site=delivery_site,
            overhead_s=overhead_s,
            changeover=changeover,
            factor=factor,
            qc=qc,
        )
        for factor in (spread.expected, spread.late)
    )
    if expected is None or late is None:
        return None
    return Promise(
        ready_at=max(late, expected),
        expected_at=expected,
        confidence=spread.confidence,
        jobs_ahead=len(factory.waiting)
        + sum(len(m.queued) + (m.running is not None) for m in factory.machines),
        samples=spread.samples,
    )


def _live_queue(processes: frozenset[str], *, now: datetime) -> LiveFactory:
    """The live factory as read for this order: read now, or read by an order placed less than
    MF_QUOTE_SNAPSHOT_S ago (production.machines.machines_read_once) with the jobs placed
    since added."""
    key = ("live_factory", processes)
    factory = read_once(key, lambda: live_factory(now=now, processes=processes))
    if factory.read_at != now:
        factory = read_again(key, jobs_placed_since(factory, processes=processes))
    return factory


def order_promise(
    lines: Sequence[PromiseLine],
    *,
    now: datetime,
    expedite: bool,
    delivery_site: str | None = None,
) -> Promise | None:
    """The promise of an order of these lines placed now, on the live queue. Inside
    production.machines.machines_read_once() the queue is read once for every quote of it."""
    if not lines:
        return None
    processes = frozenset(line.process for line in lines)
    factory = read_once(("live_queue", processes, now), lambda: _live_queue(processes, now=now))
    spread = read_once(("run_time_spread",), run_time_spread)
    return promise_from(
        factory,
        lines,
        now=now,
        expedite=expedite,
        delivery_site=delivery_site,
        overhead_s=settings.ORDER_QUOTE_RATES.pipeline_overhead_s,
        changeover=changeover_s(),
        spread=spread,
        qc=(settings.ORDER_QUOTE_RATES.qc_job_s, settings.ORDER_QUOTE_RATES.qc_copy_s),
    )


# --- promises against what happened ---------------------------------------------------------


@dataclass(frozen=True)
class PromiseAccuracy:
    orders: int  # completed orders with a promise, in the period
    kept: int  # ready (their last job QC passed) by their promise
    median_late_s: float | None  # of the late ones: by how much
    median_error_s: float | None  # actual - promised, signed (negative: early)

    @property
    def kept_share(self) -> float | None:
        return self.kept / self.orders if self.orders else None


def promise_accuracy(*, placed_from: datetime, placed_until: datetime) -> PromiseAccuracy:
    """How the promises of orders placed in [placed_from, placed_until) turned out: orders
    completed with a promise, how many were ready by it (their last job QC passed), and the
    median error. One query, whatever the number of orders (for the manager dashboard)."""
    # When the order's last job passed QC: its latest event to done.
    last_pass = (
        JobEvent.objects.filter(job__line__order=OuterRef("pk"), to_status=Job.Status.DONE)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    rows = list(
        Order.objects.filter(
            placed_at__gte=placed_from,
            placed_at__lt=placed_until,
            promised_at__isnull=False,
            status=Order.Status.COMPLETED,
        )
        .annotate(qc_passed_at=Subquery(last_pass))
        .filter(qc_passed_at__isnull=False)
        .values_list("promised_at", "qc_passed_at")
    )
    return accuracy_of(
        [(ready - promised).total_seconds() for promised, ready in rows if promised is not None]
    )


def accuracy_of(errors: Sequence[float]) -> PromiseAccuracy:
    """The accuracy of promises from their errors (ready - promised, in seconds): how many were
    ready by their promise, the median lateness of the late ones and the median error."""
    late = [error for error in errors if error > 0]
    return PromiseAccuracy(
        orders=len(errors),
        kept=len(errors) - len(late),
        median_late_s=percentile(late, 0.5),
        median_error_s=percentile(errors, 0.5),
    )
