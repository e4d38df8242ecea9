"""Choosing machines for jobs: pure, deterministic, no Django, no clock of its own.

1. Capability: a machine can make a job when its process matches, the job's material is loaded
   or loadable there, the part (as oriented for printing; turning it on the bed is free) fits
   the build volume, the nozzle and toolpath profile match the planned G-code, and the job's
   DFM report found the part makeable there (`JobNeeds.allowed_machines`).
2. Availability: only idle, busy or paused machines whose queue is below their limit take work;
   offline, maintenance and error machines never do. A machine whose loaded spool (of the
   job's material) cannot finish the job, keeping its reserve, does not take it either: the job
   waits for a fuller spool rather than being rejected (`spool_can_finish`).
3. Delivery: a job names the site its parts go to (`JobNeeds.delivery_site`); a machine's
   parts get there after the transit time from its site (`JobNeeds.transit_s`, 0 at the
   delivery site itself). A machine whose site has no transit route there is excluded; when
   that leaves no machine, the job is rejected as "not deliverable from <site>".
4. Score: the expected arrival at the delivery site, in seconds from now: the work already
   queued there, plus a changeover when the job's material is not loaded, plus this job's own
   time, plus transit. Machines that deliver by the due date come first; among them (or among
   all, when none does) the earliest arrival wins, so a due date never slips to save transit
   when another site makes it on time. Ties go to the machine that needs no changeover, then
   less transit, an idle machine, the shorter queue, then the name, so equal inputs give equal
   plans. The choice says why
   (`Choice.reason`, in site names only: customers read it).

`choose` (and `choose_machine`) places one job; `plan_routes` places many at once, most urgent
first (least slack to the due date, then priority, then the EUR at stake while the order's
asset is down), each on the machine whose parts arrive
soonest given the jobs placed before it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from microfactory.errors import Rejected
from production.calendars import NeverOpen, SiteCalendar

AVAILABLE_STATES = frozenset({"idle", "busy", "paused"})

# (model, nozzle_mm, flavour, build_volume_mm, toolpath_engine): machines with equal keys run
# the same G-code.
ProfileKey = tuple[str, float, str, tuple[float, float, float], str]


class NoMachineAvailable(Exception):
    """Capable machines exist but none can take work now (offline, maintenance, error, full)."""


@dataclass(frozen=True)
class MachineFacts:
    key: str  # the machine's slug
    name: str
    site: str
    model: str
    process: str
    state: str
    build_volume_mm: tuple[float, float, float]
    nozzle_mm: float
    flavour: str
    materials: frozenset[str]
    queued_jobs: int = 0
    queue_limit: int = 0  # most jobs it holds at once; 0 means no limit
    queue_eta_s: float = 0.0  # seconds until the work already routed here is done
    loadable: frozenset[str] = frozenset()  # can be loaded, at a changeover's cost
    toolpath_engine: str = "builtin"  # the slicer of its G-code (Machine.toolpath_engine)
    site_slug: str = ""  # the site's key in JobNeeds.transit_s ("": `site`, the name, is)
    # The loaded spool (production.spools): grams it can still give to jobs not started yet
    # (what is left minus the filament of the jobs queued here in its material), and the
    # reserve it keeps. None: no spool tracked there, nothing to check.
    spool_remaining_g: float | None = None
    spool_reserve_g: float = 0.0
    # CNC mills: the T numbers of the shop's tool table it holds (empty: all) and its fastest
    # spindle speed (0: the planner's default); lasers: the kerf and the S of full power.
    tools: tuple[int, ...] = ()
    spindle_max_rpm: float = 0.0
    kerf_mm: float = 0.0
    max_power_s: int = 0
    laser_source: str = ""
    # Its site's opening hours (production.calendars): a job starts only while the site is
    # open. None: open around the clock.
    calendar: SiteCalendar | None = field(default=None, compare=False)

    @property
    def site_key(self) -> str:
        return self.site_slug or self.site

    @property
    def profile_key(self) -> ProfileKey:
        """Machines with equal profile keys run the same G-code: a job sliced by PrusaSlicer
        goes only to machines whose engine is PrusaSlicer."""
        return (
            self.model,
            self.nozzle_mm,
            self.flavour,
            self.build_volume_mm,
            self.toolpath_engine,
        )

    @property
    def is_full(self) -> bool:
        return bool(self.queue_limit) and self.queued_jobs >= self.queue_limit


@dataclass(frozen=True)
class JobNeeds:
    process: str
    material: str
    extents_mm: tuple[float, float, float]
    profile_key: ProfileKey | None = None  # set once a toolpath was planned for a machine profile
    key: str = ""  # the job's id, for plans and tie-breaks
    nozzle_mm: float | None = None  # the nozzle the G-code was planned for
    estimated_time_s: float = 0.0
    due: datetime | None = None
    priority: int = 0  # higher goes first (Order.Priority: low 0 .. urgent 3)
    # EUR at stake while the order's critical asset is down (Order.stake_now): of jobs equal
    # in slack and priority, the one with more at stake goes first.
    stake: float = 0.0
    # The machines the DFM report found capable (its `capable`); None: no restriction (jobs
    # validated before reports named them, and quotes, which have no report yet).
    allowed_machines: frozenset[str] | None = None
    filament_g: float = 0.0  # the G-code's filament, which the loaded spool must hold
    # Where the parts go (a site key, MachineFacts.site_key) and its name for reasons; None:
    # nowhere in particular, no transit counts.
    delivery_site: str | None = None
    delivery_site_name: str = ""
    # Seconds from one site to another, {(from, to): s}, for the whole network; a pair given
    # one way holds both ways unless the other way is given too. A missing pair is no route.
    transit_s: Mapping[tuple[str, str], float] = field(
        default_factory=dict, hash=False, compare=False
    )


def with_material(machines: Sequence[MachineFacts], material: str) -> list[MachineFacts]:
    """The machines that have the material loaded or can load it: a part's DFM candidates."""
    return [m for m in machines if material in m.materials or material in m.loadable]


def dfm_capable(report: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The machines a stored DFM report found capable (its `capable`), for
    `JobNeeds.allowed_machines`; None, no restriction, for reports that do not name them."""
    capable = (report or {}).get("capable")
    return None if capable is None else frozenset(capable)


def can_make(job: JobNeeds, machine: MachineFacts) -> bool:
    """The machine could make the job if it were free (capability only, not availability)."""
    x, y, z = job.extents_mm
    width, depth, height = machine.build_volume_mm
    fits = z <= height and (
        (x <= width and y <= depth) or (y <= width and x <= depth)  # turned 90° on the bed
    )
    return (
        machine.process == job.process
        and (job.material in machine.materials or job.material in machine.loadable)
        and fits
        and (job.nozzle_mm is None or machine.nozzle_mm == job.nozzle_mm)
        and (job.profile_key is None or machine.profile_key == job.profile_key)
        and (job.allowed_machines is None or machine.key in job.allowed_machines)
    )


def capable_machines(job: JobNeeds, machines: Sequence[MachineFacts]) -> list[MachineFacts]:
    """Machines that could make the job if they were free, best first."""
    capable = [m for m in machines if can_make(job, m)]
    return sorted(
        capable,
        key=lambda m: (
            job.material not in m.materials,
            m.state != "idle",
            m.queued_jobs,
            m.name,
            m.key,
        ),
    )


def takes_work(machine: MachineFacts) -> bool:
    return machine.state in AVAILABLE_STATES and not machine.is_full


def spool_can_finish(job: JobNeeds, machine: MachineFacts) -> bool:
    """The spool loaded there holds the job's filament and still keeps its reserve. Not
    checked where no spool is tracked, nor where the job needs a changeover: that loads
    another spool."""
    return job.material not in machine.materials or _spool_holds(
        job, machine.spool_remaining_g, reserve_g=machine.spool_reserve_g
    )


def _spool_holds(job: JobNeeds, grams: float | None, *, reserve_g: float) -> bool:
    return grams is None or grams - reserve_g >= job.filament_g


def _spool_short(job: JobNeeds, machine: MachineFacts) -> str:
    return (
        f"{machine.name} (spool: {machine.spool_remaining_g or 0:.0f} g free, "
        f"{machine.spool_reserve_g:.0f} g reserve, needs {job.filament_g:.0f} g)"
    )


def completion_s(
    job: JobNeeds,
    machine: MachineFacts,
    *,
    changeover_s: float = 0.0,
    now: datetime | None = None,
) -> float | None:
    """Seconds from now until the machine would have finished the job; None when its site
    never opens."""
    changeover = 0.0 if job.material in machine.materials else changeover_s
    return finish_s(machine, machine.queue_eta_s + changeover, job.estimated_time_s, now=now)


def finish_s(
    machine: MachineFacts, ready_s: float, run_s: float, *, now: datetime | None
) -> float | None:
    """Seconds from now until a job ready on the machine `ready_s` from now and running
    `run_s` is done: it waits for its site to open (production.calendars). None: the site
    never opens."""
    calendar = machine.calendar
    if calendar is None or calendar.always_open:
        return ready_s + run_s
    at = now or datetime.now(UTC)
    try:
        start = calendar.next_open(at + timedelta(seconds=ready_s))
    except NeverOpen:
        return None
    return (start - at).total_seconds() + run_s


def transit_s(job: JobNeeds, machine: MachineFacts) -> float | None:
    """Seconds from the machine's site to the job's delivery site; None: no route there."""
    to, origin = job.delivery_site, machine.site_key
    if to is None or origin == to:
        return 0.0
    found = job.transit_s.get((origin, to))
    return job.transit_s.get((to, origin)) if found is None else found


class Option(NamedTuple):
    """A machine that can take the job now, and when it would have finished it (s from now).
    A named tuple, so the batch plan's hot loop can pass plain (machine, finish_s, queued)."""

    machine: MachineFacts
    finish_s: float
    queued_jobs: int


@dataclass(frozen=True)
class Choice:
    machine: MachineFacts
    finish_s: float  # when the machine would have finished the job, s from now
    arrival_s: float  # when the parts would be at the delivery site, s from now
    reason: str  # why this site: "Munich: 2 h earlier than Hamburg incl. 1 day transit"


# An option's score, lowest best: (late for the due date, arrival_s, needs a changeover,
# transit_s, not idle, queued jobs, name, key).
_Score = tuple[bool, float, bool, float, bool, int, str, str]


def choose_among(
    job: JobNeeds,
    options: Iterable[tuple[MachineFacts, float, int]],
    *,
    now: datetime | None,
    explain: bool = True,
) -> Choice | None:
    """The option whose parts arrive first, among those on time for the job's due date if any
    is (without `now`, the due date is not weighed); None when no option can deliver there.
    Without `explain` the choice's reason is left empty (a plan nobody reads the reasons of
    is made several times faster)."""
    due_s = (job.due - now).total_seconds() if job.due is not None and now is not None else None
    to, table = job.delivery_site, job.transit_s
    # The best option of each site: the winner, and the runner-up site for the reason.
    best_of_site: dict[str, tuple[_Score, tuple[MachineFacts, float, int], float]] = {}
    for option in options:
        m, finish, queued = option
        # transit_s, inlined: this loop runs for every job and candidate of a batch plan.
        site = m.site_slug or m.site
        if to is None or site == to:
            transit = 0.0
        else:
            found = table.get((site, to))
            if found is None:
                found = table.get((to, site))
            if found is None:
                continue  # no route from this site to the delivery site
            transit = found
        arrival = finish + transit
        score = (
            due_s is not None and arrival > due_s,
            arrival,
            # What the machine had loaded when the facts were read: in a batch plan, a
            # changeover planned for an earlier job is already in `finish`, and only ties
            # between equal arrivals read this.
            job.material not in m.materials,
            transit,
            m.state != "idle",
            queued,
            m.name,
            m.key,
        )
        held = best_of_site.get(site)
        if held is None or score < held[0]:
            best_of_site[site] = (score, option, transit)
    if not best_of_site:
        return None
    if not explain:
        _, (machine, finish_s, _), transit = min(best_of_site.values(), key=lambda e: e[0])
        return Choice(machine, finish_s, finish_s + transit, reason="")
    (_, best, transit), *others = sorted(best_of_site.values(), key=lambda entry: entry[0])
    machine, finish_s, queued = best
    return Choice(
        machine=machine,
        finish_s=finish_s,
        arrival_s=finish_s + transit,
        reason=_reason(
            Option(machine, finish_s, queued),
            transit,
            [(Option(*o), t) for _, o, t in others],
            due_s=due_s,
        ),
    )


def duration_text(seconds: float) -> str:
    """A duration as people say it: "1 day", "2 h", "1 day 3 h", "45 min"."""
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} day" + ("s" if days != 1 else "")] if days else []
    if hours:
        parts.append(f"{hours} h")
    if mins and not days:
        parts.append(f"{mins} min")
    return " ".join(parts) or "under a minute"


def _reason(
    best: Option, transit: float, others: list[tuple[Option, float]], *, due_s: float | None
) -> str:
    """Why the chosen site, in site names only (customers read it on their order)."""
    site = best.machine.site
    arrival = best.finish_s + transit
    carried = f" incl. {duration_text(transit)} transit" if transit else ""
    if not others:
        text = f"{site}: the only site that can take it now{carried}"
    else:
        runner, runner_transit = others[0]
        gap = runner.finish_s + runner_transit - arrival
        other = runner.machine.site
        if gap >= 30:
            text = f"{site}: {duration_text(gap)} earlier than {other}{carried}"
        else:
            text = f"{site}: as early as {other}{carried}"
        if runner_transit and not transit:
            text += f" ({other} incl. {duration_text(runner_transit)} transit)"
        elif runner_transit and transit and runner_transit != transit:
            text += f" ({other}: {duration_text(runner_transit)})"
        if due_s is not None and arrival <= due_s < runner.finish_s + runner_transit:
            text += f"; {other} would miss the due date"
    if due_s is not None and arrival > due_s:
        text += f"; no site makes the due date: {duration_text(arrival - due_s)} late"
    return text


def not_deliverable(job: JobNeeds, machines: Sequence[MachineFacts]) -> str:
    """The reason a job none of whose capable machines can deliver is rejected."""
    sites = sorted({m.site for m in machines})
    return (
        f"not deliverable from {', '.join(sites)}: no transit route to "
        f"{job.delivery_site_name or job.delivery_site}"
    )


def choose(
    job: JobNeeds,
    machines: Sequence[MachineFacts],
    *,
    changeover_s: float = 0.0,
    now: datetime | None = None,
) -> Choice:
    """The machine whose parts arrive first (on time, when one is), and why. Rejected if none
    could ever make the job or deliver it; NoMachineAvailable if the capable ones are all
    down or full (the job waits)."""
    capable = capable_machines(job, machines)
    if not capable:
        among = (
            ""
            if job.allowed_machines is None
            else " among those its DFM report found capable ("
            + (", ".join(sorted(job.allowed_machines)) or "none")
            + ")"
        )
        raise Rejected(
            f"no {job.process} machine has {job.material} loaded and room for a part of "
            + " x ".join(f"{v:.1f}" for v in job.extents_mm)
            + f" mm{among}"
        )
    deliverable = [m for m in capable if transit_s(job, m) is not None]
    if not deliverable:
        raise Rejected(not_deliverable(job, capable))
    available = [m for m in deliverable if takes_work(m) and spool_can_finish(job, m)]
    if not available:
        raise NoMachineAvailable(
            "every capable machine is offline, in maintenance, full or short of filament: "
            + ", ".join(
                f"{m.name} ({m.state})"
                if m.state not in AVAILABLE_STATES
                else f"{m.name} (full: {m.queued_jobs} jobs)"
                if m.is_full
                else _spool_short(job, m)
                for m in deliverable
            )
        )
    options = [
        Option(m, finish, m.queued_jobs)
        for m in available
        if (finish := completion_s(job, m, changeover_s=changeover_s, now=now)) is not None
    ]
    choice = choose_among(job, options, now=now)
    if choice is None:
        raise NoMachineAvailable(
            "no capable machine's site opens in the coming year: "
            + ", ".join(sorted({m.site for m in available}))
        )
    return choice


def choose_machine(
    job: JobNeeds,
    machines: Sequence[MachineFacts],
    *,
    changeover_s: float = 0.0,
    now: datetime | None = None,
) -> MachineFacts:
    """The machine `choose` picks (see there)."""
    return choose(job, machines, changeover_s=changeover_s, now=now).machine


def urgency(job: JobNeeds, now: datetime) -> tuple[int, float, int, float, str]:
    """Sort key, most urgent first: least slack to the due date (none: last), then priority,
    then the downtime stake (more EUR at stake first)."""
    if job.due is None:
        return (1, 0.0, -job.priority, -job.stake, job.key)
    slack = (job.due - now).total_seconds() - job.estimated_time_s
    return (0, slack, -job.priority, -job.stake, job.key)


# What can_make reads of a job: (process, material, extents_mm, nozzle_mm, profile_key,
# allowed_machines).
_Signature = tuple[
    str, str, tuple[float, float, float], float | None, ProfileKey | None, frozenset[str] | None
]


@dataclass
class _Queue:
    """A machine's queue as the plan grows: when it is free, how many jobs, what is loaded,
    and the grams its loaded spool can still give (None: not tracked, or changed for a job)."""

    eta_s: float
    jobs: int
    materials: frozenset[str]
    spool_g: float | None = None


def plan_routes(
    jobs: Iterable[JobNeeds],
    machines: Sequence[MachineFacts],
    now: datetime,
    *,
    changeover_s: float = 0.0,
    reasons: dict[str, str] | None = None,
) -> dict[str, str]:
    """Assign many jobs at once: {job key: machine key}; `reasons`, when given, gets why each
    job went where it did ({job key: Choice.reason}). Jobs no available machine can take now
    (or ever, or deliver) are left out; the caller tells them apart with `choose`."""
    ordered = sorted(jobs, key=lambda job: urgency(job, now))
    available = [m for m in machines if m.state in AVAILABLE_STATES]
    queues = {
        m.key: _Queue(
            eta_s=m.queue_eta_s,
            jobs=m.queued_jobs,
            materials=m.materials,
            spool_g=m.spool_remaining_g,
        )
        for m in available
    }
    # Jobs alike in everything can_make reads share one list of capable machines.
    capable_for: dict[_Signature, list[MachineFacts]] = {}
    plan: dict[str, str] = {}
    for job in ordered:
        signature: _Signature = (
            job.process,
            job.material,
            job.extents_mm,
            job.nozzle_mm,
            job.profile_key,
            job.allowed_machines,
        )
        if signature not in capable_for:
            capable_for[signature] = [m for m in available if can_make(job, m)]
        options: list[tuple[MachineFacts, float, int]] = []
        for machine in capable_for[signature]:
            queue = queues[machine.key]
            if machine.queue_limit and queue.jobs >= machine.queue_limit:
                continue
            change = job.material not in queue.materials
            if not change and not _spool_holds(
                job, queue.spool_g, reserve_g=machine.spool_reserve_g
            ):
                continue  # its spool cannot finish this job: it waits for a fuller one
            changeover = changeover_s if change else 0.0
            if machine.calendar is None:
                finish = queue.eta_s + changeover + job.estimated_time_s
            else:
                found = finish_s(machine, queue.eta_s + changeover, job.estimated_time_s, now=now)
                if found is None:
                    continue  # its site never opens
                finish = found
            options.append((machine, finish, queue.jobs))  # an Option, made the cheap way
        choice = choose_among(job, options, now=now, explain=reasons is not None)
        if choice is None:
            continue
        queue = queues[choice.machine.key]
        queue.eta_s = choice.finish_s
        queue.jobs += 1
        if job.material not in queue.materials:
            queue.materials = frozenset({job.material})  # the spool was changed for this job
            queue.spool_g = None  # a new spool, whose grams the plan does not know
        elif queue.spool_g is not None:
            queue.spool_g -= job.filament_g
        plan[job.key] = choice.machine.key
        if reasons is not None:
            reasons[job.key] = choice.reason
    return plan
