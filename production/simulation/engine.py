"""The event loop: machines, their queues and the real router, over simulated time.

Pure: no Django, no database, no clock. The inputs are frozen values (machines as the router
sees them, with their calendars and the work they already hold; jobs with the time they reach
the router); the result says, for every job, the machine, when it was routed, started and
finished, and for every machine its busy intervals.

How time moves (a heap of events, earliest first; events at the same instant are taken
together, as one pass of the batch router would take them):
- a job *arrives* when its traveler is ready: it waits for the router;
- after the events of an instant, the router places every waiting job with
  `production.routing.plan_routes`, the function the batch router calls
  (production.machines.jobs_route_waiting), on MachineFacts built the way
  production.machines.routing_facts builds them: the number of jobs a machine holds, the
  seconds until its work is done, the material its queue ends with. A job no machine takes
  now (all full or down) waits for the next pass; one no machine could ever make is left out
  with the router's reason;
- an idle machine takes the first job of its queue: a changeover first when the job's
  material is not the one loaded, then the run; both start only when the site is open
  (production.calendars.SiteCalendar.start_and_finish) and run to their end unattended;
- a *finish* frees the machine (and its place in the queue): the router runs again.
"""

import bisect
import heapq
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from microfactory.errors import Rejected
from production import routing
from production.calendars import NeverOpen, SiteCalendar


@dataclass(frozen=True)
class SimJob:
    """A job as the router sees it (`needs`, whose estimate the router plans with), when it
    reaches the router, and how long it really runs (None: its estimate)."""

    needs: routing.JobNeeds
    ready_at: datetime
    run_s: float | None = None

    @property
    def key(self) -> str:
        return self.needs.key

    @property
    def runs_s(self) -> float:
        return self.needs.estimated_time_s if self.run_s is None else self.run_s


@dataclass(frozen=True)
class SimMachine:
    """A machine: its facts as the router reads them (their queue figures are ignored: the
    simulation keeps the queue), its site's calendar, and the work it already holds: the job
    running (with when it ends) and the jobs queued, in order."""

    facts: routing.MachineFacts
    calendar: SiteCalendar | None = None  # its site's opening hours; None: always open
    running: SimJob | None = None
    running_until: datetime | None = None
    queued: tuple[SimJob, ...] = ()

    @property
    def key(self) -> str:
        return self.facts.key


@dataclass(frozen=True)
class JobOutcome:
    key: str
    machine: str
    ready_at: datetime
    routed_at: datetime
    started_at: datetime  # the run itself, after any changeover
    finished_at: datetime
    arrival_at: datetime  # at the delivery site: the finish plus transit
    changeover_s: float = 0.0


@dataclass(frozen=True)
class Busy:
    """A machine occupied from `start` to `end` by a job (and its changeover, first)."""

    job: str
    start: datetime
    end: datetime
    changeover_s: float = 0.0


@dataclass(frozen=True)
class SimResult:
    outcomes: dict[str, JobOutcome]
    busy: dict[str, list[Busy]]  # per machine key, in time order
    rejected: dict[str, str] = field(default_factory=dict)  # no machine could ever make it
    waiting: tuple[str, ...] = ()  # still waiting at the end: no machine took it

    def finish_of(self, keys: Sequence[str]) -> datetime | None:
        """When the last of these jobs is at its delivery site; None if one is not made."""
        if not keys or any(key not in self.outcomes for key in keys):
            return None
        return max(self.outcomes[key].arrival_at for key in keys)


class SimulationTooLarge(ValueError):
    """More events than the bound the caller set."""


@dataclass
class _Machine:
    sim: SimMachine
    loaded: frozenset[str]
    queue: deque[tuple[SimJob, datetime]]
    running: SimJob | None
    until: datetime | None
    busy: list[Busy]
    # Its facts' fields, for _facts (dataclasses.replace on every pass was a tenth of a
    # promise's time).
    facts_fields: dict[str, Any] = field(default_factory=dict)


_ARRIVE, _FINISH, _WAKE = 0, 1, 2


def _facts(machine: _Machine, now: datetime) -> routing.MachineFacts:
    """The machine as production.machines.routing_facts shows it to the router: the jobs it
    holds, the seconds until they are done (a job not started waits for the site to open,
    as machine_queues counts it), the material its queue ends with, its calendar."""
    held = len(machine.queue) + (machine.running is not None)
    eta = 0.0 if machine.until is None else max(0.0, (machine.until - now).total_seconds())
    calendar = machine.sim.calendar
    opens = calendar is not None and not calendar.always_open
    for job, _ in machine.queue:
        if opens:
            assert calendar is not None
            try:
                start = calendar.next_open(now + timedelta(seconds=eta))
            except NeverOpen:
                start = now + timedelta(seconds=eta)
            eta = (start - now).total_seconds()
        eta += job.needs.estimated_time_s
    loaded = machine.loaded
    last = machine.queue[-1][0] if machine.queue else machine.running
    if last is not None and last.needs.material not in loaded:
        loaded = frozenset({last.needs.material})
    return routing.MachineFacts(
        **{
            **machine.facts_fields,
            "queued_jobs": held,
            "queue_eta_s": eta,
            "materials": loaded,
            # Spools are not simulated: a changeover loads a full one.
            "spool_remaining_g": None,
            "calendar": calendar if opens else None,
        }
    )


def simulate(
    machines: Sequence[SimMachine],
    jobs: Iterable[SimJob],
    *,
    start: datetime,
    changeover_s: float,
    max_events: int = 1_000_000,
    stop_when_started: Collection[str] = (),
) -> SimResult:
    """Run the factory from `start` until every job is made or can no longer be placed; with
    `stop_when_started`, as soon as those jobs have all started (their finish is known then:
    a promise needs no more)."""
    state = {
        m.key: _Machine(
            sim=m,
            loaded=m.facts.materials,
            queue=deque((job, start) for job in m.queued),
            running=m.running,
            until=m.running_until if m.running is not None else None,
            busy=[],
            facts_fields={f.name: getattr(m.facts, f.name) for f in fields(m.facts)},
        )
        for m in machines
    }
    heap: list[tuple[datetime, int, int, str]] = []
    pending: dict[str, SimJob] = {}
    seq = 0
    for job in jobs:
        pending[job.key] = job
        heapq.heappush(heap, (max(job.ready_at, start), _ARRIVE, seq, job.key))
        seq += 1
    for key, machine in state.items():
        if machine.running is not None and machine.until is not None:
            heapq.heappush(heap, (max(machine.until, start), _FINISH, seq, key))
            seq += 1
        elif machine.queue:  # idle with work queued: it starts at once
            heapq.heappush(heap, (start, _WAKE, seq, key))
            seq += 1
    outcomes: dict[str, JobOutcome] = {}
    rejected: dict[str, str] = {}
    waiting: dict[str, SimJob] = {}
    # The waiting jobs, most urgent first: the router's own order (routing.urgency), which
    # does not change as time passes (slack to a due date shrinks alike for every job).
    urgent_first: list[tuple[tuple[int, float, int, float, str], str]] = []
    makeable: set[str] = set()  # waiting jobs the router found some machine could make
    wanted = set(stop_when_started)
    events = 0
    while heap:
        if wanted and wanted <= outcomes.keys():
            break
        now = heap[0][0]
        while heap and heap[0][0] == now:
            _, kind, _, key = heapq.heappop(heap)
            events += 1
            if events > max_events:
                raise SimulationTooLarge(f"more than {max_events} events")
            if kind == _ARRIVE:
                waiting[key] = pending.pop(key)
                bisect.insort(urgent_first, (routing.urgency(waiting[key].needs, start), key))
            elif kind == _FINISH:
                machine = state[key]
                machine.running, machine.until = None, None
        if waiting:
            _route(
                state, waiting, urgent_first, rejected, makeable, now=now, changeover_s=changeover_s
            )
            if len(urgent_first) > 2 * len(waiting) + 64:  # drop the routed ones now and then
                urgent_first = [entry for entry in urgent_first if entry[1] in waiting]
        for key, machine in state.items():
            if machine.running is None and machine.queue:
                seq += 1
                _start(machine, outcomes, now=now, changeover_s=changeover_s)
                if machine.until is not None:  # else its site never opens again
                    heapq.heappush(heap, (machine.until, _FINISH, seq, key))
    return SimResult(
        outcomes=outcomes,
        busy={key: machine.busy for key, machine in state.items()},
        rejected=rejected,
        waiting=tuple(waiting),
    )


def _route(
    state: Mapping[str, _Machine],
    waiting: dict[str, SimJob],
    urgent_first: Sequence[tuple[object, str]],
    rejected: dict[str, str],
    makeable: set[str],
    *,
    now: datetime,
    changeover_s: float,
) -> None:
    """One pass of the batch router over the jobs waiting now. A job is asked once, on
    arrival, whether any machine could ever make it (capabilities do not change during a run):
    rejected with the router's reason if not, else it waits for room, as in production. The
    plan is made on the machines with room only: the router gives a full machine no job, so
    leaving full ones out changes no choice and saves most of the work of a long backlog."""
    unchecked = [key for key in waiting if key not in makeable]
    if unchecked:
        every = [_facts(machine, now) for machine in state.values()]
        for job_key in unchecked:
            try:
                routing.choose(waiting[job_key].needs, every, changeover_s=changeover_s, now=now)
            except Rejected as refusal:
                rejected[job_key] = str(refusal)
                del waiting[job_key]
                continue
            except routing.NoMachineAvailable:
                pass
            makeable.add(job_key)
    room = [
        machine
        for machine in state.values()
        if machine.sim.facts.state in routing.AVAILABLE_STATES
        and not (
            machine.sim.facts.queue_limit
            and len(machine.queue) + (machine.running is not None) >= machine.sim.facts.queue_limit
        )
    ]
    if not room or not waiting:
        return
    facts = [_facts(machine, now) for machine in room]
    free = {m.key: m.queue_limit - m.queued_jobs if m.queue_limit else len(waiting) for m in facts}
    ordered = [key for _, key in urgent_first if key in waiting]
    # A long backlog and a few free places: the most urgent few jobs fill them, and the router
    # gives nothing to the jobs after them. Planned first on those; planned again on every
    # waiting job if a place is left (then a less urgent job may take it).
    head = ordered[: 2 * sum(free.values()) + 8]
    plan = routing.plan_routes(
        [waiting[key].needs for key in head], facts, now, changeover_s=changeover_s
    )
    if len(head) < len(ordered):
        placed = Counter(plan.values())
        if any(placed[key] < places for key, places in free.items()):
            plan = routing.plan_routes(
                [waiting[key].needs for key in ordered], facts, now, changeover_s=changeover_s
            )
    for job_key, machine_key in plan.items():
        state[machine_key].queue.append((waiting.pop(job_key), now))


def _start(
    machine: _Machine, outcomes: dict[str, JobOutcome], *, now: datetime, changeover_s: float
) -> None:
    job, routed_at = machine.queue.popleft()
    change = changeover_s if job.needs.material not in machine.loaded else 0.0
    calendar = machine.sim.calendar
    try:
        begin, end = (
            (now, now + timedelta(seconds=change + job.runs_s))
            if calendar is None
            else calendar.start_and_finish(now, change + job.runs_s)
        )
    except NeverOpen:  # the site never opens again: the job is never made
        machine.queue.clear()
        return
    machine.loaded = frozenset({job.needs.material})
    machine.running, machine.until = job, end
    machine.busy.append(Busy(job=job.key, start=begin, end=end, changeover_s=change))
    transit = routing.transit_s(job.needs, machine.sim.facts) or 0.0
    outcomes[job.key] = JobOutcome(
        key=job.key,
        machine=machine.sim.key,
        ready_at=job.ready_at,
        routed_at=routed_at,
        started_at=begin + timedelta(seconds=change),
        finished_at=end,
        arrival_at=end + timedelta(seconds=transit),
        changeover_s=change,
    )
