"""What if the factory had had more or fewer machines, or other opening hours (#15.4)?

A period of past demand (the jobs placed in it that reached a machine) is replayed twice
through the simulator and the real router: as the factory is (no change) and with the
change. Each job reaches the router when its G-code was verified (its first toolpath_ready
or traveler_ready event: jobs waited for their traveler there before #19) and runs as long
as it really ran (started -> finished; its estimate when it never ran); the router plans
with the estimates, as it did. The machines start the period with empty queues and the
materials loaded now, so a replay of a period that began with full queues differs at its
start; replaying the demo history from its start finds the machine every job had.

Figures per run (production.simulation.metrics): lead time from the order to the machine's
finish (median, p90), on-time rate against each order's due date (else its promise), and the
busy share of each machine over the period. A period of more than MF_WHATIF_MAX_JOBS jobs is
refused (WhatIfTooLarge) before anything is simulated.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time

from django.conf import settings
from django.db.models import Min, Q

from microfactory.errors import DomainError
from production.calendars import Shift, SiteCalendar
from production.lifecycle import TO_ROUTE
from production.machines import changeover_s, job_needs, routing_facts, transit_table
from production.models import Job, Site
from production.routing import AVAILABLE_STATES
from production.simulation.engine import SimJob, SimMachine, simulate
from production.simulation.metrics import RunFigures, run_figures


class WhatIfTooLarge(DomainError):
    """The period holds more jobs than MF_WHATIF_MAX_JOBS."""


@dataclass(frozen=True)
class Change:
    """One change of capacity: add a machine like `machine` (a copy of it, at `site`), remove
    `machine`, or open `site` on `weekdays` from `opens_h` to `closes_h`; "none" changes
    nothing."""

    kind: str  # "none" | "add" | "remove" | "hours"
    machine: str = ""  # a machine's slug: the one removed, or the model copied
    site: str = ""  # a site's slug: where the copy goes, or whose hours change
    weekdays: frozenset[int] = frozenset(range(5))
    opens_h: float = 6.0
    closes_h: float = 22.0

    def describe(self, names: dict[str, str]) -> str:
        if self.kind == "add":
            return f"add a machine like {names.get(self.machine, self.machine)} at {self.site}"
        if self.kind == "remove":
            return f"remove {names.get(self.machine, self.machine)}"
        if self.kind == "hours":
            days = ", ".join(
                "Mon Tue Wed Thu Fri Sat Sun".split()[d] for d in sorted(self.weekdays)
            )
            return f"{self.site} open {days} {self.opens_h:g}:00-{self.closes_h:g}:00"
        return "no change"


@dataclass(frozen=True)
class Replay:
    """A period of past demand, ready to simulate."""

    start: datetime
    end: datetime
    jobs: tuple[SimJob, ...]
    machines: tuple[SimMachine, ...]
    placed_at: dict[str, datetime]
    targets: dict[str, datetime | None]
    actual: dict[str, str]  # job key -> the machine it really went to
    zones: dict[str, str]  # site slug -> its time zone (opening hours are local)


@dataclass(frozen=True)
class MachineRow:
    key: str
    name: str
    site: str
    before: float | None  # busy share; None: not in that run
    after: float | None


@dataclass(frozen=True)
class WhatIf:
    change: str
    jobs: int
    before: RunFigures
    after: RunFigures
    machines: tuple[MachineRow, ...]
    same_as_actual: float | None  # share of jobs the no-change run put where they really went


def replay_load(*, start: datetime, end: datetime, site_slugs: Iterable[str] | None) -> Replay:
    """The jobs placed in [start, end) that reached a machine (at these sites; None: all) and
    the machines (of these sites) as the router sees them with empty queues. WhatIfTooLarge
    past MF_WHATIF_MAX_JOBS jobs."""
    sites = None if site_slugs is None else set(site_slugs)
    placed = Job.objects.filter(created_at__gte=start, created_at__lt=end, machine__isnull=False)
    placed = placed.exclude(dfm_report__isnull=True).exclude(toolpath_meta__isnull=True)
    if sites is not None:
        placed = placed.filter(machine__site__slug__in=sites)
    limit: int = settings.MF_WHATIF_MAX_JOBS
    count = placed.count()
    if count > limit:
        raise WhatIfTooLarge(
            f"{count} jobs were placed in that period: a what-if replays at most {limit} "
            "(MF_WHATIF_MAX_JOBS); choose a shorter period"
        )
    transit = transit_table()
    rows = list(
        placed.select_related(
            "machine",
            "line__revision",
            "line__material",
            "line__order__delivery_site",
            "line__order__asset",
        ).annotate(ready_at=Min("events__finished_at", filter=Q(events__to_status__in=TO_ROUTE)))
    )
    jobs, placed_at, targets, actual = [], {}, {}, {}
    for job in rows:
        needs = job_needs(job, transit=transit)
        ran = (
            (job.finished_at - job.started_at).total_seconds()
            if job.started_at is not None and job.finished_at is not None
            else None
        )
        ready = getattr(job, "ready_at", None) or job.created_at
        jobs.append(SimJob(needs=needs, ready_at=ready, run_s=ran))
        placed_at[needs.key] = job.created_at
        targets[needs.key] = needs.due or job.line.order.promised_at
        assert job.machine is not None
        actual[needs.key] = job.machine.slug
    machines = tuple(
        SimMachine(
            # Down now is not down then: every machine that can take work takes it.
            facts=replace(fact, state="idle") if fact.state in AVAILABLE_STATES else fact,
            calendar=fact.calendar,
        )
        for fact in routing_facts()
        if sites is None or fact.site_key in sites
    )
    return Replay(
        start=start,
        end=end,
        jobs=tuple(sorted(jobs, key=lambda j: (j.ready_at, int(j.key)))),
        machines=machines,
        placed_at=placed_at,
        targets=targets,
        actual=actual,
        zones=dict(Site.objects.values_list("slug", "timezone")),
    )


def _clock(hours: float) -> time:
    """An hour of the day as a time; 24 is midnight (a shift closing at 00:00 ends at 24:00)."""
    minutes = int(round(hours * 60)) % (24 * 60)
    return time(minutes // 60, minutes % 60)


def changed_machines(
    machines: Sequence[SimMachine], change: Change, *, zones: Mapping[str, str]
) -> list[SimMachine]:
    """The machines after the change (DomainError when it names no such machine or site)."""
    if change.kind == "none":
        return list(machines)
    by_key = {m.key: m for m in machines}
    if change.kind == "remove":
        if change.machine not in by_key:
            raise DomainError(f"no machine {change.machine!r} in this replay")
        return [m for m in machines if m.key != change.machine]
    sites = {m.facts.site_key: m.facts.site for m in machines}
    if change.kind == "add":
        model = by_key.get(change.machine)
        if model is None:
            raise DomainError(f"no machine {change.machine!r} in this replay to copy")
        at = next((m for m in machines if m.facts.site_key == change.site), None)
        if at is None:
            raise DomainError(f"no site {change.site!r} in this replay")
        copies = sum(1 for m in machines if m.key.startswith(f"{model.key}-added"))
        copy = replace(
            model,
            facts=replace(
                model.facts,
                key=f"{model.key}-added-{copies + 1}",
                name=f"{model.facts.name} (added)",
                site=at.facts.site,
                site_slug=at.facts.site_key,
                state="idle",
            ),
            calendar=at.calendar,
        )
        return [*machines, copy]
    if change.kind == "hours":
        if change.site not in sites:
            raise DomainError(f"no site {change.site!r} in this replay")
        if not change.weekdays or change.closes_h <= change.opens_h:
            raise DomainError("opening hours must open on some day and close after they open")
        hours = SiteCalendar(
            timezone=zones.get(change.site, "UTC"),
            shifts=tuple(
                Shift(day, _clock(change.opens_h), _clock(change.closes_h))
                for day in sorted(change.weekdays)
            ),
        )
        return [
            replace(m, calendar=hours) if m.facts.site_key == change.site else m for m in machines
        ]
    raise DomainError(f"unknown change {change.kind!r}")


def whatif_run(replay: Replay, change: Change) -> WhatIf:
    """The period replayed as it is and with the change, side by side."""
    after_machines = changed_machines(replay.machines, change, zones=replay.zones)
    changeover = changeover_s()
    before = simulate(replay.machines, replay.jobs, start=replay.start, changeover_s=changeover)
    after = simulate(after_machines, replay.jobs, start=replay.start, changeover_s=changeover)
    keys = [m.key for m in replay.machines]
    after_keys = [m.key for m in after_machines]
    figures_before, figures_after = (
        run_figures(
            result,
            machines=machine_keys,
            placed_at=replay.placed_at,
            targets=replay.targets,
            period=(replay.start, replay.end),
        )
        for result, machine_keys in ((before, keys), (after, after_keys))
    )
    names = {m.key: m.facts for m in after_machines} | {m.key: m.facts for m in replay.machines}
    rows = tuple(
        MachineRow(
            key=key,
            name=names[key].name,
            site=names[key].site,
            before=figures_before.utilisation.get(key),
            after=figures_after.utilisation.get(key),
        )
        for key in dict.fromkeys([*keys, *after_keys])
    )
    matched = [
        before.outcomes[k].machine == m for k, m in replay.actual.items() if k in before.outcomes
    ]
    return WhatIf(
        change=change.describe({m.key: m.facts.name for m in replay.machines}),
        jobs=len(replay.jobs),
        before=figures_before,
        after=figures_after,
        machines=rows,
        same_as_actual=(sum(matched) / len(matched)) if matched else None,
    )
