"""What a job cost to make, and an order from its jobs: pure, over frozen values.

    material = grams x price per kg
    machine  = machine time x the hourly rate
    energy   = machine power x running time x tariff; the running time measured once it ran
               (the job's events, or its plates' runs), else the plan's
    labour   = labour minutes read from the station's timestamps x the labour rate

Machine time and grams come from where the job's copies run:
- on plates (#13): each plate's machine time (MF_QUOTE_PLATE_SETUP_S for its setup plus its
  program's estimate, orders.quoting.plate_run_time_s) and its program's filament are shared
  among the jobs whose copies it holds: time by estimated copy time (a job's copies x its
  own G-code's time per copy, over the plate's total), filament by copy grams (likewise). So
  the jobs on a plate add up to the plate's figures, and a copy on a full plate costs its
  share of one setup, not a setup of its own. Weighed by time rather than footprint area: a
  plate's time is its layers, and a tall copy takes more of them than a flat one of the
  same footprint. A plate's running time (started -> finished) is shared by the time share.
- not on plates (not planned yet, a machined part, a single part routed alone): the quote's
  plate plan (orders.quoting.quoted_run_time_s: each plate's setup plus each copy's G-code
  time), and the G-code's grams per copy x copies.

Scrapped copies stay on the job that made them (their material and time were spent); the job
remaking them has its own cost, and an order's cost sums all its jobs.

A job that ended without a machine ever running it (rejected, cancelled, failed in the
pipeline) cost nothing here. One not run yet has an estimate: the plan's numbers, the fixed
handling minutes for labour.

Labour: the station's steps (QC measurement and decision, a paused job scrapped, a failed
one resumed; on a machine run by hand also start, pause, resume and finish) each carry one
timestamp. A step within `gap_max_min` of the operator's previous step on the job counts the
gap as work (finish 10:00, measure 10:04, QC 10:06: 4 + 2 minutes); the first step, or one
after a longer wait, counts `touch_min`. A job that ran with no station step at all counts
`handling_min`.

No ORM, no clock (the caller passes `now` for a job still running): production.job_costs
reads the values, the tests call these functions directly.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
RUNNING = "running"
# The average draw of a machine of each process when Machine.power_w is empty, in watts: a
# desktop FDM printer with its bed heated, a small CNC mill's spindle and extraction, a laser
# cutter with its chiller.
DEFAULT_POWER_W = {"fdm": 120, "cnc_mill": 1500, "laser": 800}
FALLBACK_POWER_W = 500  # a process missing from the table above
# Steps that are always a person's at the station.
OPERATOR_STEPS = frozenset({"measure", "qc", "scrap", "resume"})
# Steps a person taps on a machine run by hand; a networked machine reports these itself.
MANUAL_MACHINE_STEPS = frozenset({"start", "pause", "continue", "finish"})


class Basis:
    ACTUAL = "actual"  # a machine ran it: measured where the events say
    ESTIMATE = "estimate"  # not run yet: the plan's numbers
    NONE = "none"  # ended without running: nothing spent


@dataclass(frozen=True)
class CostRates:
    energy_per_kwh: Decimal
    labour_per_hour: Decimal
    touch_min: float
    gap_max_min: float
    handling_min: float
    currency: str = "EUR"


@dataclass(frozen=True)
class Stamp:
    """One of the job's events: which step, from and to what status, when."""

    step: str
    from_status: str
    to_status: str
    at: datetime


@dataclass(frozen=True)
class OnPlate:
    """One job's copies on a plate, as the plate's share is weighed."""

    job_id: int
    copies: int
    copy_time_s: float  # the job's own G-code estimate per copy (0: unknown)
    copy_g: float  # the job's own G-code grams per copy (0: unknown)


@dataclass(frozen=True)
class PlateShare:
    """The job's part of one plate its copies are on."""

    plate: str  # its number, "P-000012"
    copies: int  # the job's copies on it
    time_share: float  # of the plate's machine and running time, 0..1
    material_share: float  # of the plate's filament, 0..1
    machine_s: float  # the whole plate's: its setup plus its program's estimate
    filament_g: float  # the whole plate's program
    started_at: datetime | None = None  # the plate's run; None: not started
    finished_at: datetime | None = None  # None: still running (or not started)


def plate_shares(on_plate: Sequence[OnPlate]) -> dict[int, tuple[float, float]]:
    """{job id: (time share, material share)} of one plate: a job's copies x its time (grams)
    per copy over the plate's total; by copies where the plate's total is unknown (0)."""
    copies = sum(entry.copies for entry in on_plate)

    def split(weight: float, total: float, entry: OnPlate) -> float:
        if total > 0:
            return weight / total
        return entry.copies / copies if copies else 0.0

    time_total = sum(e.copies * e.copy_time_s for e in on_plate)
    grams_total = sum(e.copies * e.copy_g for e in on_plate)
    return {
        e.job_id: (
            split(e.copies * e.copy_time_s, time_total, e),
            split(e.copies * e.copy_g, grams_total, e),
        )
        for e in on_plate
    }


@dataclass(frozen=True)
class JobFacts:
    job_id: int
    number: str
    line_id: int
    status: str
    ended: bool  # nothing more happens to it
    quantity: int
    scrapped: int
    replaces: str  # the number of the job it remakes; "" for none
    material: str
    filament_g: float  # per copy, from the G-code's metadata; 0 before the toolpath is planned
    price_per_kg: Decimal
    machine: str  # "" while not routed
    hourly_rate: Decimal
    power_w: int
    manual: bool  # run by hand: start, pause, resume and finish are the operator's taps
    planned_time_s: float  # per copy, the G-code's estimate
    stamps: tuple[Stamp, ...]  # oldest first
    plates: tuple[PlateShare, ...] = ()  # the plates its copies are on
    # The machine time of its copies not on a plate, as the quote's plate plan runs them
    # (orders.quoting.quoted_run_time_s); None: one run of planned_time_s per copy.
    plan_time_s: float | None = None


@dataclass(frozen=True)
class CostItem:
    amount: Decimal
    inputs: str  # how it was reached, for display: "12.4 g x 2 copies x 25.00 EUR/kg"


@dataclass(frozen=True)
class LabourStep:
    step: str
    at: datetime
    minutes: float
    measured: bool  # the gap to the operator's previous step; else the fixed touch minutes


@dataclass(frozen=True)
class JobCost:
    job_id: int
    number: str
    line_id: int
    status: str
    quantity: int
    scrapped: int
    replaces: str
    basis: str  # Basis
    currency: str
    material: CostItem
    machine: CostItem
    energy: CostItem
    labour: CostItem
    planned_time_s: float  # the machine time counted: plates' shares and the quote's plan
    actual_time_s: float | None  # running time measured (events, or plates' runs); None: never
    labour_minutes: float
    labour_steps: tuple[LabourStep, ...]

    @property
    def total(self) -> Decimal:
        return self.material.amount + self.machine.amount + self.energy.amount + self.labour.amount

    @property
    def scrap(self) -> Decimal:
        """What the scrapped copies cost: their share of material, machine and energy."""
        if not self.scrapped or not self.quantity:
            return Decimal(0)
        made = self.material.amount + self.machine.amount + self.energy.amount
        return _cents(made * self.scrapped / self.quantity)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def power_w(*, configured: int | None, process: str) -> int:
    """The machine's own figure, else its process's typical draw."""
    if configured:
        return configured
    return DEFAULT_POWER_W.get(process, FALLBACK_POWER_W)


def running_time_s(stamps: Sequence[Stamp], *, now: datetime) -> float | None:
    """Seconds the job spent running (start -> finish, less pauses), from its events; a run
    still going counts up to `now`. None if it never ran."""
    total, since, ran = 0.0, None, False
    for stamp in stamps:
        if stamp.to_status == RUNNING:
            ran = True
            if since is None:
                since = stamp.at
        elif since is not None:
            total += max(0.0, (stamp.at - since).total_seconds())
            since = None
    if since is not None:
        total += max(0.0, (now - since).total_seconds())
    return total if ran else None


def labour_steps(
    stamps: Sequence[Stamp], *, manual: bool, rates: CostRates
) -> tuple[LabourStep, ...]:
    """The station's steps on the job with the minutes each counts (see the module's
    docstring)."""
    steps: list[LabourStep] = []
    previous: datetime | None = None
    for stamp in stamps:
        if stamp.step not in OPERATOR_STEPS and not (manual and stamp.step in MANUAL_MACHINE_STEPS):
            continue
        gap_min = None if previous is None else (stamp.at - previous).total_seconds() / 60
        if gap_min is not None and 0 <= gap_min <= rates.gap_max_min:
            steps.append(LabourStep(stamp.step, stamp.at, gap_min, measured=True))
        else:
            steps.append(LabourStep(stamp.step, stamp.at, rates.touch_min, measured=False))
        previous = stamp.at
    return tuple(steps)


def _plate_run_s(share: PlateShare, *, now: datetime) -> float | None:
    """Seconds the plate ran (up to `now` while running); None if it never started."""
    if share.started_at is None:
        return None
    return max(0.0, ((share.finished_at or now) - share.started_at).total_seconds())


def _on_plates(shares: Sequence[PlateShare], part: str) -> str:
    """Which share of which plate, for the inputs: "100 % of P-000012 (5 copies, 10 g)"."""
    return ", ".join(
        f"{(s.time_share if part == 'time' else s.material_share):.0%} of {s.plate} "
        f"({s.copies} copies, "
        + (f"{_hours(s.machine_s)} with setup)" if part == "time" else f"{s.filament_g:g} g)")
        for s in shares
    )


def job_cost(facts: JobFacts, *, rates: CostRates, now: datetime) -> JobCost:
    """The job's cost, each part with the inputs it came from."""
    cur = rates.currency
    plates = facts.plates
    plate_runs = [_plate_run_s(share, now=now) for share in plates]
    actual = running_time_s(facts.stamps, now=now)
    if plates and any(run is not None for run in plate_runs):
        # A job on plates ran while they ran: its share of each plate's run.
        actual = sum(s.time_share * (run or 0.0) for s, run in zip(plates, plate_runs, strict=True))
    if actual is not None:
        basis = Basis.ACTUAL
    elif facts.ended:
        basis = Basis.NONE
    else:
        basis = Basis.ESTIMATE
    made = basis != Basis.NONE
    copies = facts.quantity if made else 0
    # Copies not on a plate: one run each of the G-code, or the quote's plate plan.
    loose = max(0, facts.quantity - sum(share.copies for share in plates))
    loose_s = facts.planned_time_s * loose if facts.plan_time_s is None else facts.plan_time_s
    planned_s = sum(s.time_share * s.machine_s for s in plates) + loose_s
    grams = sum(s.material_share * s.filament_g for s in plates) + facts.filament_g * loose
    if not made:
        grams = 0.0
    if plates:
        material_how = f"{grams:.2f} g: {_on_plates(plates, 'material')}"
        if loose:
            material_how += f" + {facts.filament_g:g} g x {loose} copies"
        machine_how = f"{_hours(planned_s if made else 0.0)} planned: {_on_plates(plates, 'time')}"
        if loose:
            machine_how += f" + {_hours(loose_s)} for {loose} copies"
    else:
        material_how = f"{facts.filament_g:g} g x {copies} copies"
        machine_how = f"{_hours(planned_s if made else 0.0)} planned"
    material = CostItem(
        _cents(Decimal(str(grams)) * facts.price_per_kg / 1000),
        f"{material_how} x {facts.price_per_kg} {cur}/kg ({facts.material})",
    )
    machine_s = planned_s if made else 0.0
    machine = CostItem(
        _cents(Decimal(str(machine_s)) / 3600 * facts.hourly_rate),
        f"{machine_how} x {facts.hourly_rate} {cur}/h"
        + (f" ({facts.machine})" if facts.machine else " (not routed: the default rate)"),
    )
    if plates:
        # Plates not started yet count their planned time.
        energy_s = loose_s + sum(
            s.time_share * (s.machine_s if run is None else run)
            for s, run in zip(plates, plate_runs, strict=True)
        )
        energy_s = energy_s if made else 0.0
    else:
        energy_s = actual if actual is not None else machine_s
    kwh = Decimal(str(facts.power_w)) / 1000 * Decimal(str(energy_s)) / 3600
    energy = CostItem(
        _cents(kwh * rates.energy_per_kwh),
        f"{facts.power_w} W x {_hours(energy_s)} "
        f"{'running' if actual is not None else 'planned'} x {rates.energy_per_kwh} {cur}/kWh",
    )
    steps = labour_steps(facts.stamps, manual=facts.manual, rates=rates)
    if steps:
        minutes = sum(step.minutes for step in steps)
        how = f"{len(steps)} station steps"
    elif basis == Basis.NONE:
        minutes, how = 0.0, "nothing made"
    else:
        minutes, how = rates.handling_min, "fixed handling"
    labour = CostItem(
        _cents(Decimal(str(minutes)) / 60 * rates.labour_per_hour),
        f"{minutes:.1f} min ({how}) x {rates.labour_per_hour} {cur}/h",
    )
    return JobCost(
        job_id=facts.job_id,
        number=facts.number,
        line_id=facts.line_id,
        status=facts.status,
        quantity=facts.quantity,
        scrapped=facts.scrapped,
        replaces=facts.replaces,
        basis=basis,
        currency=cur,
        material=material,
        machine=machine,
        energy=energy,
        labour=labour,
        planned_time_s=planned_s,
        actual_time_s=actual,
        labour_minutes=minutes,
        labour_steps=steps,
    )


# --- orders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinePrice:
    line_id: int
    label: str  # "2 x Shaft collar rev 1 in PLA"
    quantity: int
    price: Decimal  # the quoted price of the line, fixed when the order was placed
    jobs: int  # how many jobs the line has in all, whoever can see them


@dataclass(frozen=True)
class LineCost:
    line_id: int
    label: str
    quantity: int
    price: Decimal
    jobs: tuple[JobCost, ...]  # the line's jobs, remakes included, oldest first
    complete: bool  # every job of the line is here (a viewer may see only their factory's)

    @property
    def cost(self) -> Decimal:
        return sum((job.total for job in self.jobs), Decimal(0))

    @property
    def margin(self) -> Decimal | None:
        return self.price - self.cost if self.complete else None

    @property
    def margin_percent(self) -> float | None:
        return _percent(self.margin, self.price)


@dataclass(frozen=True)
class OrderCost:
    order_id: int
    number: str
    currency: str
    lines: tuple[LineCost, ...]

    @property
    def jobs(self) -> tuple[JobCost, ...]:
        return tuple(job for line in self.lines for job in line.jobs)

    @property
    def price(self) -> Decimal:
        return sum((line.price for line in self.lines), Decimal(0))

    @property
    def cost(self) -> Decimal:
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def scrap(self) -> Decimal:
        return sum((job.scrap for job in self.jobs), Decimal(0))

    @property
    def complete(self) -> bool:
        return all(line.complete for line in self.lines)

    @property
    def margin(self) -> Decimal | None:
        """Quoted price less cost; None when some of its jobs are not in view."""
        return self.price - self.cost if self.complete else None

    @property
    def margin_percent(self) -> float | None:
        return _percent(self.margin, self.price)


def _percent(margin: Decimal | None, price: Decimal) -> float | None:
    if margin is None or not price:
        return None
    return round(float(margin / price * 100), 1)


def order_cost(
    *,
    order_id: int,
    number: str,
    currency: str,
    lines: Iterable[LinePrice],
    jobs: Iterable[JobCost],
) -> OrderCost:
    """The order's lines with their jobs' costs against their quoted prices."""
    by_line: dict[int, list[JobCost]] = {}
    for job in jobs:
        by_line.setdefault(job.line_id, []).append(job)
    return OrderCost(
        order_id=order_id,
        number=number,
        currency=currency,
        lines=tuple(
            LineCost(
                line_id=line.line_id,
                label=line.label,
                quantity=line.quantity,
                price=line.price,
                jobs=tuple(sorted(by_line.get(line.line_id, []), key=lambda j: j.job_id)),
                complete=len(by_line.get(line.line_id, [])) == line.jobs,
            )
            for line in lines
        ),
    )
