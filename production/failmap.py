"""Failure feedback over a revision's parameter space (issue #15, point 6).

Where in a revision's envelope do its parts fail? Every numeric parameter's range (the
schema's min to max) is cut into MF_FAILMAP_BINS equal bins; each job that ended with a
verdict counts its copies in the bin of its line's value: passed and scrapped at QC
(`qc_passed`, `qc_scrapped` of a done or scrapped job), or failed on the machine (a failed
job that had started: its whole quantity, whatever stopped it). A bin with at least
MF_FAILMAP_MIN_MADE copies made, of which at least MF_FAILMAP_RATE failed, is a region of
high failure; neighbouring ones make one region. New orders configured inside a region get a
DFM warning naming it (orders.quotes via production.public.failure_warnings), and the
catalog admin sees the bins and a scatter of the two parameters that tell most, and may
narrow a range into a new revision (production.failmap_views, catalog.services).

The counting is one query, grouped in the database by the bin of every numeric parameter at
once (a cell of the parameter grid per row, never a row per job); the marginals, the regions
and how much each parameter tells are summed here from those cells, in pure functions.
Regions are cached per revision for MF_FAILMAP_CACHE_S, so a quote costs no query.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F, FloatField, Func, Q, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Coalesce, Floor

from catalog.models import PartRevision
from catalog.parameters import NUMERIC, ParameterSpec, SchemaError, parse_schema
from production.models import Job

# --- counting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Copies made somewhere in the envelope and what became of them."""

    passed: int = 0
    scrapped: int = 0  # failed QC at the station
    failed: int = 0  # on the machine: the whole quantity of a failed job that had started

    @property
    def made(self) -> int:
        return self.passed + self.scrapped + self.failed

    @property
    def bad(self) -> int:
        return self.scrapped + self.failed

    @property
    def rate(self) -> float:
        """The share of copies made that failed; 0 when none were made."""
        return self.bad / self.made if self.made else 0.0

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(
            self.passed + other.passed, self.scrapped + other.scrapped, self.failed + other.failed
        )


@dataclass(frozen=True)
class Thresholds:
    """When a bin is a region of high failure (settings MF_FAILMAP_*)."""

    bins: int
    min_made: int
    rate: float

    @classmethod
    def from_settings(cls) -> "Thresholds":
        return cls(
            bins=settings.MF_FAILMAP_BINS,
            min_made=settings.MF_FAILMAP_MIN_MADE,
            rate=settings.MF_FAILMAP_RATE,
        )


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    tally: Tally
    high_failure: bool


@dataclass(frozen=True)
class Axis:
    """One numeric parameter: its envelope cut into bins, with what was made in each."""

    name: str
    label: str
    unit: str
    low: float  # the envelope: the schema's min and max
    high: float
    bins: tuple[Bin, ...]
    # How much the failure rate differs between its bins (the spread of the bins' rates
    # around the overall rate, weighted by what each made): the scatter shows the two
    # parameters that tell most.
    relevance: float


@dataclass(frozen=True)
class Region:
    """Neighbouring bins of one parameter with a high failure rate."""

    name: str
    label: str
    unit: str
    low: float
    high: float
    at_low_end: bool  # its first bin is the envelope's first
    at_high_end: bool
    tally: Tally

    def holds(self, value: float) -> bool:
        """Whether a value falls in the region (values past an open end count in it)."""
        return (self.at_low_end or value >= self.low) and (self.at_high_end or value < self.high)

    @property
    def where(self) -> str:
        """Where in the range, in words: "below 1.2 mm", "8 mm or above", "between ..."."""
        unit = f" {self.unit}" if self.unit else ""
        if self.at_low_end and self.at_high_end:
            return "anywhere in its range"
        if self.at_low_end:
            return f"below {_fmt(self.high)}{unit}"
        if self.at_high_end:
            return f"{_fmt(self.low)}{unit} or above"
        return f"between {_fmt(self.low)} and {_fmt(self.high)}{unit}"

    @property
    def warning(self) -> str:
        """The DFM warning for a configuration in the region, naming it and its record."""
        tally = self.tally
        what = "were scrapped" if not tally.failed else "were scrapped or failed on the machine"
        return f"{self.label} {self.where}: {tally.bad} of {tally.made} made {what}"


@dataclass(frozen=True)
class Cell:
    """A cell of the parameter grid: the bin index of every numeric parameter, in schema
    order, and what was made in it."""

    bins: tuple[int, ...]
    tally: Tally


def numeric_specs(revision: PartRevision) -> tuple[ParameterSpec, ...]:
    """The revision's numeric parameters with a range (a published revision has one for
    each); none for a static model or a schema that no longer parses."""
    try:
        specs = parse_schema(revision.parameter_schema or [])
    except SchemaError:
        return ()
    return tuple(
        s
        for s in specs
        if s.type in NUMERIC and s.min is not None and s.max is not None and s.max > s.min
    )


def bin_edges(spec: ParameterSpec, count: int) -> tuple[float, ...]:
    """`count` equal bins over the spec's range: count + 1 edges from min to max. Whole-number
    parameters get whole edges (and fewer bins when the range has fewer values)."""
    low, high = float(spec.min or 0), float(spec.max or 0)
    if spec.type == "integer":
        step = max(1, math.ceil((high - low + 1) / count))
        edges = [low + step * index for index in range(count + 1) if low + step * index < high]
        return (*edges, high)
    width = (high - low) / count
    # Rounded: 0.8 + 3 * 0.4 is 2.0000000000000004, and 2.0 must open the fourth bin.
    return tuple(round(low + width * index, 9) for index in range(count)) + (high,)


def bin_of(edges: Sequence[float], value: float) -> int:
    """The bin a value falls in: [edge i, edge i+1), the last bin closed; values past the
    ends (a range narrowed since) in the end bins."""
    for index in range(1, len(edges) - 1):
        if value < edges[index]:
            return index - 1
    return len(edges) - 2


def axes_of(
    specs: Sequence[ParameterSpec],
    edges: Sequence[Sequence[float]],
    cells: Iterable[Cell],
    thresholds: Thresholds,
) -> tuple[Axis, ...]:
    """Each parameter's bins summed from the grid's cells, high-failure bins marked."""
    cells = list(cells)
    total = sum((c.tally for c in cells), Tally())
    axes = []
    for position, (spec, cuts) in enumerate(zip(specs, edges, strict=True)):
        tallies = [Tally()] * (len(cuts) - 1)
        for cell in cells:
            index = cell.bins[position]
            tallies[index] = tallies[index] + cell.tally
        bins = tuple(
            Bin(
                low=cuts[index],
                high=cuts[index + 1],
                tally=tally,
                high_failure=tally.made >= thresholds.min_made and tally.rate >= thresholds.rate,
            )
            for index, tally in enumerate(tallies)
        )
        axes.append(
            Axis(
                name=spec.name,
                label=spec.label,
                unit=spec.unit,
                low=cuts[0],
                high=cuts[-1],
                bins=bins,
                relevance=_spread(bins, total),
            )
        )
    return tuple(axes)


def regions_of(axis: Axis) -> tuple[Region, ...]:
    """The axis's neighbouring high-failure bins, each run as one region."""
    regions: list[Region] = []
    run: list[int] = []
    for index, item in enumerate((*axis.bins, None)):
        if item is not None and item.high_failure:
            run.append(index)
            continue
        if run:
            first, last = axis.bins[run[0]], axis.bins[run[-1]]
            regions.append(
                Region(
                    name=axis.name,
                    label=axis.label,
                    unit=axis.unit,
                    low=first.low,
                    high=last.high,
                    at_low_end=run[0] == 0,
                    at_high_end=run[-1] == len(axis.bins) - 1,
                    tally=sum((axis.bins[i].tally for i in run), Tally()),
                )
            )
            run = []
    return tuple(regions)


def most_telling(axes: Sequence[Axis]) -> tuple[Axis, Axis] | None:
    """The two parameters whose bins' failure rates differ most (the scatter's axes), in
    schema order; None with fewer than two numeric parameters."""
    if len(axes) < 2:
        return None
    ranked = sorted(range(len(axes)), key=lambda i: (-axes[i].relevance, i))[:2]
    first, second = sorted(ranked)
    return axes[first], axes[second]


def warnings_for(regions: Iterable[Region], parameters: Mapping[str, Any]) -> list[str]:
    """The warnings of the regions a configuration falls in."""
    said = []
    for region in regions:
        value = parameters.get(region.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if region.holds(float(value)):
            said.append(region.warning)
    return said


def _spread(bins: Sequence[Bin], total: Tally) -> float:
    made = sum(b.tally.made for b in bins)
    if not made:
        return 0.0
    return sum(b.tally.made * (b.tally.rate - total.rate) ** 2 for b in bins) / made


def _fmt(value: float) -> str:
    return f"{round(value, 3):g}"


# --- reading the jobs ----------------------------------------------------------------------

# Jobs with a verdict on their copies: QC recorded, or the machine failed them mid-run.
ENDED_AT_QC = (Job.Status.DONE, Job.Status.SCRAPPED)
MADE = Q(status__in=ENDED_AT_QC) | Q(status=Job.Status.FAILED, started_at__isnull=False)


def _made_jobs(revision: PartRevision) -> QuerySet[Job]:
    # order_by(): the model's default ordering would join the GROUP BY.
    return Job.objects.filter(MADE, line__revision=revision).order_by()


def _value(name: str) -> Func:
    """A line's parameter as a number, read in the database: `(parameters -> 'name')::double
    precision` on PostgreSQL; JSON_EXTRACT on SQLite, where Django's own key transform reads
    each key three times (JSON_TYPE twice, then JSON_EXTRACT: 2.5 times slower here)."""
    if connection.vendor == "sqlite":
        path = Value(f'$."{name}"')  # a name is a Python identifier (catalog.parameters)
        return Func(F("line__parameters"), path, function="JSON_EXTRACT", output_field=FloatField())
    return Cast(KeyTransform(name, "line__parameters"), FloatField())


def _bucket(name: str, edges: Sequence[float]) -> Floor:
    """A value's bin counted from the range's start in bin widths, in the database (the
    JSON read once per row). The last edge gives one past the last bin, and a bin below 0 or
    past the end means a value outside the range: _clamp() puts them in the end bins, as
    bin_of() does. The 1e-9 of a bin keeps 2.0 in the bin that starts at 0.8 + 3 * 0.4."""
    low, width = edges[0], edges[1] - edges[0]
    return Floor((F(name) - Value(low)) / Value(width) + Value(1e-9), output_field=FloatField())


def _clamp(index: float | None, edges: Sequence[float]) -> int | None:
    return None if index is None else min(max(int(index), 0), len(edges) - 2)


_SUMS = {
    "passed": Coalesce(Sum("qc_passed", filter=Q(status__in=ENDED_AT_QC)), 0),
    "scrapped": Coalesce(Sum("qc_scrapped", filter=Q(status__in=ENDED_AT_QC)), 0),
    "failed": Coalesce(Sum("quantity", filter=Q(status=Job.Status.FAILED)), 0),
}


def _tally(row: Mapping[str, Any]) -> Tally:
    return Tally(int(row["passed"]), int(row["scrapped"]), int(row["failed"]))


def grid_cells(
    revision: PartRevision, specs: Sequence[ParameterSpec], edges: Sequence[Sequence[float]]
) -> list[Cell]:
    """What was made in each cell of the revision's parameter grid: one query, grouped by
    the bin of every numeric parameter. Lines missing a parameter are left out."""
    if not specs:
        return []
    names = [f"v{index}" for index in range(len(specs))]
    buckets = [f"b{index}" for index in range(len(specs))]
    rows = (
        _made_jobs(revision)
        .alias(**{name: _value(spec.name) for name, spec in zip(names, specs, strict=True)})
        .annotate(
            **{
                bucket: _bucket(name, cuts)
                for bucket, name, cuts in zip(buckets, names, edges, strict=True)
            }
        )
        .values(*buckets)
        .annotate(**_SUMS)
    )
    cells = []
    for row in rows:
        bins = tuple(_clamp(row[b], cuts) for b, cuts in zip(buckets, edges, strict=True))
        if None not in bins:  # a line without one of the parameters: nowhere to put it
            cells.append(Cell(bins=cast(tuple[int, ...], bins), tally=_tally(row)))
    return cells


@dataclass(frozen=True)
class Point:
    """One configuration of the scatter's two parameters, with what was made of it."""

    x: float
    y: float
    tally: Tally


def scatter_points(
    revision: PartRevision, x: str, y: str, *, limit: int
) -> tuple[list[Point], int]:
    """What was made at each (x, y) pair of values, grouped in the database; the `limit` most
    made, and how many pairs there are in all."""
    rows = (
        _made_jobs(revision).annotate(x=_value(x), y=_value(y)).values("x", "y").annotate(**_SUMS)
    )
    # Every pair in one pass (a count, then the top ones, would read the jobs twice); there are
    # as many as configurations of two parameters, not as many as jobs.
    points = [
        Point(float(r["x"]), float(r["y"]), _tally(r))
        for r in rows
        if r["x"] is not None and r["y"] is not None
    ]
    points.sort(key=lambda p: (-p.tally.made, p.x, p.y))
    return points[:limit], len(points)


def tally_outside(revision: PartRevision, name: str, low: float, high: float) -> Tally:
    """What was made of the revision with `name` outside [low, high]: what a range narrowed
    to it would no longer allow (one query)."""
    row = (
        _made_jobs(revision)
        .alias(value=_value(name))
        .filter(Q(value__lt=low) | Q(value__gt=high))
        .aggregate(**_SUMS)
    )
    return _tally(row)


@dataclass(frozen=True)
class FailureMap:
    """What the catalog admin's page shows of one revision."""

    revision_id: int
    thresholds: Thresholds
    total: Tally
    axes: tuple[Axis, ...]
    regions: tuple[Region, ...]
    pair: tuple[Axis, Axis] | None


def revision_failure_map(*, revision: PartRevision, thresholds: Thresholds) -> FailureMap:
    """The revision's bins, regions and the scatter's pair of parameters (one query)."""
    specs = numeric_specs(revision)
    edges = [bin_edges(spec, thresholds.bins) for spec in specs]
    cells = grid_cells(revision, specs, edges)
    axes = axes_of(specs, edges, cells, thresholds)
    return FailureMap(
        revision_id=revision.pk,
        thresholds=thresholds,
        total=sum((c.tally for c in cells), Tally()),
        axes=axes,
        regions=tuple(region for axis in axes for region in regions_of(axis)),
        pair=most_telling(axes),
    )


def revision_failure_regions(*, revision: PartRevision) -> tuple[Region, ...]:
    """The revision's regions of high failure, kept in the cache for MF_FAILMAP_CACHE_S
    (a QC verdict shows in new warnings within that time)."""
    key = f"failmap:regions:{revision.pk}:{revision.checksum[:16]}"
    regions: tuple[Region, ...] | None = cache.get(key)
    if regions is None:
        failure_map = revision_failure_map(revision=revision, thresholds=Thresholds.from_settings())
        regions = failure_map.regions
        cache.set(key, regions, timeout=settings.MF_FAILMAP_CACHE_S)
    return regions


def failure_warnings(*, revision: PartRevision, parameters: Mapping[str, Any]) -> list[str]:
    """The DFM warnings of a configuration in the revision's regions of high failure: one
    sentence each, naming the region and its record; none elsewhere."""
    if not numeric_specs(revision):
        return []  # a static model, or no numeric parameter: nothing to read
    return warnings_for(revision_failure_regions(revision=revision), parameters)
