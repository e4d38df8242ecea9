"""Choosing a machine for a job: pure, deterministic, no Django.

The walking skeleton's rule: among machines that can make the job (process, material loaded,
build volume, same toolpath profile), take an idle one first, then the one with the shortest
queue; ties go by name so the same inputs always give the same machine.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from microfactory.errors import Rejected

AVAILABLE_STATES = frozenset({"idle", "busy", "paused"})


class NoMachineAvailable(Exception):
    """Capable machines exist but none can take work now (offline, maintenance, error)."""


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

    @property
    def profile_key(self) -> tuple:
        """Machines with equal profile keys run the same G-code."""
        return (self.model, self.nozzle_mm, self.flavour, self.build_volume_mm)


@dataclass(frozen=True)
class JobNeeds:
    process: str
    material: str
    extents_mm: tuple[float, float, float]
    profile_key: tuple | None = None  # set once a toolpath was planned for a machine profile


def capable_machines(job: JobNeeds, machines: Sequence[MachineFacts]) -> list[MachineFacts]:
    """Machines that could make the job if they were free, best first."""
    x, y, z = job.extents_mm
    capable = [
        m
        for m in machines
        if m.process == job.process
        and job.material in m.materials
        and x <= m.build_volume_mm[0]
        and y <= m.build_volume_mm[1]
        and z <= m.build_volume_mm[2]
        and (job.profile_key is None or m.profile_key == job.profile_key)
    ]
    return sorted(capable, key=lambda m: (m.state != "idle", m.queued_jobs, m.name, m.key))


def choose_machine(job: JobNeeds, machines: Sequence[MachineFacts]) -> MachineFacts:
    """The machine to send the job to. Rejected if none could ever make it."""
    capable = capable_machines(job, machines)
    if not capable:
        raise Rejected(
            f"no {job.process} machine has {job.material} loaded and room for a part of "
            + " x ".join(f"{v:.1f}" for v in job.extents_mm)
            + " mm"
        )
    available = [m for m in capable if m.state in AVAILABLE_STATES]
    if not available:
        raise NoMachineAvailable(
            "every capable machine is offline or in maintenance: "
            + ", ".join(f"{m.name} ({m.state})" for m in capable)
        )
    return available[0]
