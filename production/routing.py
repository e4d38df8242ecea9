"""Choosing machines for jobs: pure, deterministic, no Django, no clock of its own.

1. Capability: a machine can make a job when its process matches, the job's material is loaded
   or loadable there, the part (as oriented for printing; turning it on the bed is free) fits
   the build volume, the nozzle and toolpath profile match the planned G-code, and the job's
   DFM report found the part makeable there (`JobNeeds.allowed_machines`).
2. Availability: only idle, busy or paused machines whose queue is below their limit take work;
   offline, maintenance and error machines never do. A machine whose loaded spool (of the
   job's material) cannot finish the job, keeping its reserve, does not take it either: the job
   waits for a fuller spool rather than being rejected (`spool_can_finish`).
3. Score: the expected completion time, in seconds from now: the work already queued there,
   plus a changeover when the job's material is not loaded, plus this job's own time. Ties go
   to the machine that needs no changeover, then an idle one, then the shorter queue, then the
   name, so equal inputs give equal plans.

`choose_machine` places one job; `plan_routes` places many at once, most urgent first (least
slack to the due date, then priority), each on the machine that finishes it soonest given the
jobs placed before it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from microfactory.errors import Rejected

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
    # The loaded spool (production.spools): grams it can still give to jobs not started yet
    # (what is left minus the filament of the jobs queued here in its material), and the
    # reserve it keeps. None: no spool tracked there, nothing to check.
    spool_remaining_g: float | None = None
    spool_reserve_g: float = 0.0

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
    # The machines the DFM report found capable (its `capable`); None: no restriction (jobs
    # validated before reports named them, and quotes, which have no report yet).
    allowed_machines: frozenset[str] | None = None
    filament_g: float = 0.0  # the G-code's filament, which the loaded spool must hold


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


def completion_s(job: JobNeeds, machine: MachineFacts, *, changeover_s: float = 0.0) -> float:
    """Seconds from now until the machine would have finished the job."""
    changeover = 0.0 if job.material in machine.materials else changeover_s
    return machine.queue_eta_s + changeover + job.estimated_time_s


def choose_machine(
    job: JobNeeds, machines: Sequence[MachineFacts], *, changeover_s: float = 0.0
) -> MachineFacts:
    """The machine that finishes the job soonest. Rejected if none could ever make it;
    NoMachineAvailable if the capable ones are all down or full (the job waits)."""
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
    available = [m for m in capable if takes_work(m) and spool_can_finish(job, m)]
    if not available:
        raise NoMachineAvailable(
            "every capable machine is offline, in maintenance, full or short of filament: "
            + ", ".join(
                f"{m.name} ({m.state})"
                if m.state not in AVAILABLE_STATES
                else f"{m.name} (full: {m.queued_jobs} jobs)"
                if m.is_full
                else _spool_short(job, m)
                for m in capable
            )
        )
    return min(
        available,
        key=lambda m: (
            completion_s(job, m, changeover_s=changeover_s),
            job.material not in m.materials,
            m.state != "idle",
            m.queued_jobs,
            m.name,
            m.key,
        ),
    )


def urgency(job: JobNeeds, now: datetime) -> tuple[int, float, int, str]:
    """Sort key, most urgent first: least slack to the due date (none: last), then priority."""
    if job.due is None:
        return (1, 0.0, -job.priority, job.key)
    slack = (job.due - now).total_seconds() - job.estimated_time_s
    return (0, slack, -job.priority, job.key)


# What can_make reads of a job: (process, material, extents_mm, nozzle_mm, profile_key,
# allowed_machines).
_Signature = tuple[
    str, str, tuple[float, float, float], float | None, ProfileKey | None, frozenset[str] | None
]
# A machine's score for a job, lowest best: (finish_s, needs a changeover, not idle, queued
# jobs, name, key).
_Score = tuple[float, bool, bool, int, str, str]


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
) -> dict[str, str]:
    """Assign many jobs at once: {job key: machine key}. Jobs no available machine can take
    now (or ever) are left out; the caller tells them apart with `choose_machine`."""
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
        best_key: _Score | None = None
        best: MachineFacts | None = None
        for machine in capable_for[signature]:
            queue = queues[machine.key]
            if machine.queue_limit and queue.jobs >= machine.queue_limit:
                continue
            change = job.material not in queue.materials
            if not change and not _spool_holds(
                job, queue.spool_g, reserve_g=machine.spool_reserve_g
            ):
                continue
            changeover = changeover_s if change else 0.0
            finish = queue.eta_s + changeover + job.estimated_time_s
            key = (finish, change, machine.state != "idle", queue.jobs, machine.name, machine.key)
            if best_key is None or key < best_key:
                best_key, best = key, machine
        if best is None or best_key is None:
            continue
        queue = queues[best.key]
        queue.eta_s = best_key[0]
        queue.jobs += 1
        if job.material not in queue.materials:
            queue.materials = frozenset({job.material})  # the spool was changed for this job
            queue.spool_g = None  # a new spool, whose grams the plan does not know
        elif queue.spool_g is not None:
            queue.spool_g -= job.filament_g
        plan[job.key] = best.key
    return plan
