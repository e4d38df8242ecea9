"""Figures of a simulated run: lead times, utilisation per machine, on-time rate. Pure."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from production.simulation.engine import SimResult


def percentile(values: Sequence[float], share: float) -> float | None:
    """The value below which `share` (0..1) of the values lie, interpolated linearly between
    the nearest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class RunFigures:
    jobs: int  # jobs made
    not_made: int  # rejected or still waiting at the end
    lead_median_s: float | None  # order placed -> machine finished
    lead_p90_s: float | None
    on_time: float | None  # share of jobs with a target finished by it (None: none had one)
    utilisation: dict[str, float]  # machine key -> busy share of the period (0..1)


def run_figures(
    result: SimResult,
    *,
    placed_at: Mapping[str, datetime],
    targets: Mapping[str, datetime | None],
    period: tuple[datetime, datetime],
    machines: Sequence[str],
) -> RunFigures:
    """Figures of `result` for jobs placed at `placed_at` (their lead time runs from there to
    the finish) and due by `targets` (at the delivery site); utilisation is the machine's busy
    time (changeovers included) inside `period`, over the period's length."""
    leads = [
        (outcome.finished_at - placed_at[key]).total_seconds()
        for key, outcome in result.outcomes.items()
        if key in placed_at
    ]
    due = [
        (outcome.arrival_at <= target)
        for key, outcome in result.outcomes.items()
        if (target := targets.get(key)) is not None
    ]
    begin, end = period
    length = max((end - begin).total_seconds(), 1.0)
    utilisation = {}
    for key in machines:
        busy = sum(
            max(0.0, (min(b.end, end) - max(b.start, begin)).total_seconds())
            for b in result.busy.get(key, [])
        )
        utilisation[key] = busy / length
    return RunFigures(
        jobs=len(result.outcomes),
        not_made=len(result.rejected) + len(result.waiting),
        lead_median_s=percentile(leads, 0.5),
        lead_p90_s=percentile(leads, 0.9),
        on_time=(sum(due) / len(due)) if due else None,
        utilisation=utilisation,
    )
