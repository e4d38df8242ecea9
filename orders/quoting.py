"""The instant quote: price and lead time of one order line, before anything is made.

Pure: no Django, no database, no clock. orders.services gathers the facts (the part's volume
and height from its preview, the machines' queues, the rates from settings) and stores the
Quote with the line, so the price a requester accepted never changes afterwards.

    material  = volume x density x (1 + support/waste) x price per kg
    machine   = machine time x hourly rate; the time from the toolpath when one was planned
                for this configuration, else estimated from volume and height
    unit      = material + machine;  line = setup fee + unit x quantity x (1 - quantity break)
    lead time = the soonest a capable machine is free (its queue ETA) + this line's own
                machine time + the pipeline's fixed overhead

Printed parts are made on build plates (production.plates): copies share a plate, and a plate
costs its setup once however many copies it holds. The quote plans them (plate_plan): copies
per plate from the part's footprint on the machine's bed, plates = ceil(quantity / that), and

    machine time of the line = plates x plate setup + quantity x time per copy
    setup fee of the line    = plates x the setup fee (preparing, clearing a plate; its traveler)
    lead time                = queue ETA + that machine time + transit + pipeline overhead

so the price per part falls as copies fill a plate, and the lead time is the plan's. The
footprint is the part's box lying on its largest face, in a grid with the plate spacing, both
ways round, the better: cheap enough for the web process (no geometry library, no mesh) and
never more copies per plate than the worker's arrangement finds on the seed parts (tests).

A quote is firm when the volume and size were measured on built geometry of the very
configuration (a preview, or a job that built it before), and estimated otherwise (the
revision's fitted estimator, or the envelope guess). An estimated line is priced again on its
built geometry (`requote`, same rates, material and machine as quoted) and `price_change`
says what happens: a lower price is passed on, a rise within the tolerance is absorbed, a
larger rise waits for the customer's confirmation.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
FIRM_BASES = frozenset({"preview", "job"})  # Quote.geometry_basis measured on built geometry


@dataclass(frozen=True)
class Rates:
    currency: str = "EUR"
    setup_fee: Decimal = Decimal("5.00")  # per line: checking, plate preparation, traveler
    waste_factor: float = 0.15  # support, brim, purge: extra material as a share of the part
    default_hourly_rate: Decimal = Decimal("6.00")  # machines without a rate of their own
    # The estimate before a toolpath exists: deposition rate and the time each layer adds.
    deposition_mm3_s: float = 16.0  # of part volume: infill makes the slicer lay down less
    layer_height_mm: float = 0.2
    layer_overhead_s: float = 1.5
    # (minimum quantity, discount on the unit price), e.g. ((10, 0.05), (50, 0.10)).
    quantity_breaks: tuple[tuple[int, float], ...] = ((10, 0.05), (50, 0.10), (200, 0.15))
    pipeline_overhead_s: float = 900.0  # geometry, checks, toolpath and traveler
    # Build plates (plate_plan): machine time a plate costs once (heating, homing, purge line,
    # clearing the bed), the spacing between copies and the margin from the bed's edge (as
    # production.plates arranges them), and the bed assumed for a machine that gives none.
    plate_setup_s: float = 300.0
    plate_spacing_mm: float = 6.0
    plate_margin_mm: float = 5.0
    # What the arrangement's raster may add to each gap (half a cell's diagonal on each side,
    # a position rounded to a cell): counted so the quote never promises a copy the plan
    # cannot place (200 spacers: 14 mm discs are 12 x 10 to a plate at exactly 6 mm apart,
    # the arrangement places 119 of 120 on the printer's bed).
    plate_slack_mm: float = 1.0
    default_bed_mm: tuple[float, float] = (250.0, 210.0)
    # QC after the machine (qc_time_s): a lead time ends when the parts have passed QC. None
    # here (the rates alone); the settings allow MF_PROMISE_QC_JOB_S and MF_PROMISE_QC_COPY_S.
    qc_job_s: float = 0.0  # once per job: taking the plate off, opening the checklist
    qc_copy_s: float = 0.0  # per copy: measuring it


@dataclass(frozen=True)
class MaterialFacts:
    slug: str
    density_g_cm3: float
    price_per_kg: Decimal


@dataclass(frozen=True)
class MachineOffer:
    """A machine that can make the part, as the quote sees it."""

    name: str
    hourly_rate: Decimal
    queue_eta_s: float  # seconds until the work already queued there is done
    transit_s: float = 0.0  # from its site to the order's delivery site
    bed_mm: tuple[float, float] | None = None  # x, y of its bed (None: Rates.default_bed_mm)
    keep_out_mm2: float = 0.0  # of its bed that its keep-out zones take


@dataclass(frozen=True)
class Quote:
    currency: str
    quantity: int
    volume_mm3: float
    mass_g: float  # per part, waste included
    time_basis: str  # "toolpath" (planned before for this configuration) or "estimate"
    machine_time_s: float  # per part
    material_cost: Decimal  # per part
    machine_cost: Decimal  # per part
    setup_fee: Decimal
    discount: float  # the quantity break applied to the unit price
    unit_price: Decimal
    total: Decimal
    machine: str  # the machine the lead time was computed for ("" when none can make it)
    lead_time_s: int | None  # None: no capable machine
    # Where volume and size came from: measured on this configuration's built geometry
    # ("preview", or "job": a job built it before), or estimated ("estimator": the revision's
    # fitted estimator; "envelope": guessed from its lengths, when it has none yet).
    geometry_basis: str = "preview"
    # What the price was computed with, so it can be computed again on the built geometry.
    hourly_rate: Decimal = Decimal(0)
    density_g_cm3: float = 0.0
    price_per_kg: Decimal = Decimal(0)
    # The route's process (orders.routes); milled and laser-cut parts are priced on the plate
    # or sheet they are cut from (stock_mm: x, y, thickness), not on the part's volume.
    process: str = "fdm"
    stock_mm: tuple[float, float, float] | None = None
    # The plate plan (plate_plan) of a printed line: how many plates, copies on a full one and
    # a full plate's machine time. 0: not planned on plates (machined lines, older quotes).
    plates: int = 0
    copies_per_plate: int = 0
    plate_time_s: float = 0.0
    plate_setup_s: float = 0.0  # the machine time each plate costs once

    @property
    def run_time_s(self) -> float:
        """The machine time of all the line's copies, as its plate plan runs them."""
        return quoted_run_time_s(self.as_json())

    @property
    def firm(self) -> bool:
        """Priced on built geometry: the price does not change once the part is built."""
        return self.geometry_basis in FIRM_BASES

    def as_json(self) -> dict[str, Any]:
        """JSON-safe (Decimals as strings): how a quote is stored with its order line."""
        stored = {
            key: str(value) if isinstance(value, Decimal) else value
            for key, value in asdict(self).items()
        }
        stored["firm"] = self.firm
        return stored


class QuoteError(ValueError):
    """The facts cannot be priced (no volume, a quantity below one)."""


def estimate_time_s(*, volume_mm3: float, height_mm: float, rates: Rates) -> float:
    """Machine time of one part before a toolpath exists: depositing the volume, plus a
    fixed cost per layer (travel, layer change), so tall thin parts are not underpriced."""
    layers = max(1.0, height_mm / rates.layer_height_mm)
    return volume_mm3 / rates.deposition_mm3_s + layers * rates.layer_overhead_s


def quantity_discount(quantity: int, breaks: Sequence[tuple[int, float]]) -> float:
    """The largest break whose minimum quantity is reached; 0 below the first."""
    return max((share for minimum, share in breaks if quantity >= minimum), default=0.0)


def soonest_machine(machines: Sequence[MachineOffer], *, run_time_s: float) -> MachineOffer | None:
    """The machine that would finish a run of `run_time_s` soonest (queue, run, transit)."""
    return min(
        machines, key=lambda m: (m.queue_eta_s + run_time_s + m.transit_s, m.name), default=None
    )


@dataclass(frozen=True)
class PlatePlan:
    """The plates a line's copies take on one machine's bed, as the quote plans them."""

    quantity: int
    copies_per_plate: int  # on a full plate
    plates: int
    plate_setup_s: float  # machine time each plate costs once
    part_time_s: float  # machine time each copy adds

    @property
    def plate_time_s(self) -> float:
        """A full plate's machine time."""
        return self.plate_setup_s + self.copies_per_plate * self.part_time_s

    @property
    def run_time_s(self) -> float:
        """Every plate's machine time: the plates run one after another on the machine."""
        return plates_run_time_s(
            plates=self.plates,
            quantity=self.quantity,
            plate_setup_s=self.plate_setup_s,
            part_time_s=self.part_time_s,
        )


def plates_run_time_s(
    *, plates: int, quantity: int, plate_setup_s: float, part_time_s: float
) -> float:
    """The machine time of `quantity` copies on `plates` plates: each plate's setup once, each
    copy its own time. The one formula: the quote (PlatePlan) and the queue simulator
    (quoted_run_time_s, production.simulation) both call it, so a quote's lead time and its
    promise count the same machine time."""
    return plates * plate_setup_s + quantity * part_time_s


def plate_run_time_s(*, program_s: float, plate_setup_s: float) -> float:
    """The machine time of a plate planned in production: its setup once plus its program's
    estimate (which times all its copies together). plates_run_time_s for one plate whose
    copies' time the slicer measured; job costs and the promise simulation count it."""
    return plate_setup_s + program_s


def qc_time_s(*, copies: int, job_s: float, copy_s: float) -> float:
    """The time a finished job of `copies` copies takes to pass QC: once per job and once
    per copy (at least one). The one formula: the quote's lead time and the simulated promise
    (production.simulation.promise) both add it."""
    return job_s + copy_s * max(1, copies)


def quoted_plate_setup_s(quoted: Mapping[str, Any], *, default: float) -> float:
    """The machine time a plate of a stored quote (Quote.as_json) costs once: stored since
    the promise needs it, else (older quotes) the full plate's time less its copies' own."""
    if quoted.get("plate_setup_s") is not None:
        return float(quoted["plate_setup_s"])
    if not int(quoted.get("plates") or 0):
        return default
    full = float(quoted["plate_time_s"])
    copies = int(quoted["copies_per_plate"])
    return max(0.0, full - copies * float(quoted["machine_time_s"]))


def quoted_run_time_s(
    quoted: Mapping[str, Any], *, quantity: int | None = None, part_time_s: float | None = None
) -> float:
    """The machine time of a stored quote's line as its plate plan runs it (plates_run_time_s):
    `quantity` copies (the quote's) of `part_time_s` each (the quote's per-part time; a
    planned toolpath's once there is one), on as many plates as the quote's copies per plate
    need. A line not quoted on plates: one run of its copies. Raises ValueError/TypeError/
    KeyError on a malformed quote."""
    count = int(quoted.get("quantity") or 1) if quantity is None else quantity
    part = float(quoted.get("machine_time_s") or 0) if part_time_s is None else part_time_s
    per_plate = int(quoted.get("copies_per_plate") or 0)
    if not int(quoted.get("plates") or 0) or per_plate < 1:
        return count * part
    return plates_run_time_s(
        plates=-(-max(1, count) // per_plate),
        quantity=count,
        plate_setup_s=quoted_plate_setup_s(quoted, default=0.0),
        part_time_s=part,
    )


def copies_per_plate(
    *,
    footprint_mm: tuple[float, float],
    bed_mm: tuple[float, float],
    rates: Rates,
    keep_out_mm2: float = 0.0,
) -> int:
    """How many copies of a footprint (its box, x and y) one plate holds: a grid with the
    spacing (and the slack) between copies inside the bed's margin, both ways round, the
    better; less the
    share of the bed keep-out zones take. At least 1: a part that fits only alone gets a
    plate to itself (the machines offered can hold it)."""
    spacing, margin = rates.plate_spacing_mm + rates.plate_slack_mm, rates.plate_margin_mm
    inside = (bed_mm[0] - 2 * margin, bed_mm[1] - 2 * margin)
    best = 0
    for width, depth in (footprint_mm, footprint_mm[::-1]):
        # n copies in a row take n x width + (n - 1) x spacing.
        across = int((inside[0] + spacing) // (width + spacing)) if width > 0 else 0
        along = int((inside[1] + spacing) // (depth + spacing)) if depth > 0 else 0
        best = max(best, across * along)
    usable = inside[0] * inside[1]
    if keep_out_mm2 > 0 and usable > 0:
        best = int(best * max(0.0, 1.0 - keep_out_mm2 / usable))
    return max(1, best)


def plate_plan(
    *,
    extents_mm: tuple[float, float, float],
    quantity: int,
    part_time_s: float,
    rates: Rates,
    machine: MachineOffer | None = None,
) -> PlatePlan:
    """The plates `quantity` copies take on `machine`'s bed (the default bed without one):
    the part lies on its largest face (its two largest extents), copies_per_plate per plate."""
    if quantity < 1:
        raise QuoteError("the quantity must be at least 1")
    largest = sorted((float(size) for size in extents_mm), reverse=True)[:2]
    bed = machine.bed_mm if machine is not None and machine.bed_mm else rates.default_bed_mm
    per_plate = copies_per_plate(
        footprint_mm=(largest[0], largest[1]),
        bed_mm=bed,
        rates=rates,
        keep_out_mm2=machine.keep_out_mm2 if machine is not None else 0.0,
    )
    per_plate = min(per_plate, quantity)
    return PlatePlan(
        quantity=quantity,
        copies_per_plate=per_plate,
        plates=-(-quantity // per_plate),
        plate_setup_s=rates.plate_setup_s,
        part_time_s=part_time_s,
    )


def quote_line(
    *,
    volume_mm3: float,
    height_mm: float,
    quantity: int,
    material: MaterialFacts,
    machines: Sequence[MachineOffer],
    rates: Rates,
    toolpath_time_s: float | None = None,
    geometry_basis: str = "preview",
    extents_mm: tuple[float, float, float] | None = None,
    plates: tuple[int, int] | None = None,
) -> Quote:
    """Price `quantity` parts of one configuration and say when they could be ready.

    `machines` are the ones capable of making the part; the line is quoted on the one that
    would finish it soonest (at its hourly rate). With none, the price uses the default rate
    and there is no lead time. `geometry_basis` says where volume and height came from.

    With `extents_mm` the copies are planned on plates (plate_plan, on each machine's bed):
    setup fee and plate setup time once per plate. `plates` keeps (plates, copies on a full
    one) quoted before (requote). Without either, as one run (no plate setup time).
    """
    if volume_mm3 <= 0:
        raise QuoteError("the part has no volume")
    if quantity < 1:
        raise QuoteError("the quantity must be at least 1")
    if toolpath_time_s is not None and toolpath_time_s > 0:
        basis, part_time = "toolpath", float(toolpath_time_s)
    else:
        basis = "estimate"
        part_time = estimate_time_s(volume_mm3=volume_mm3, height_mm=height_mm, rates=rates)
    mass_g = volume_mm3 / 1000.0 * material.density_g_cm3 * (1 + rates.waste_factor)
    if extents_mm is None and plates is None:
        return _priced(
            quantity=quantity,
            volume_mm3=volume_mm3,
            mass_g=mass_g,
            basis=basis,
            part_time=part_time,
            material=material,
            machines=machines,
            rates=rates,
            geometry_basis=geometry_basis,
        )
    given = extents_mm

    def plan_on(machine: MachineOffer | None) -> PlatePlan:
        if plates is not None or given is None:
            count, full = plates if plates is not None else (1, quantity)
            return PlatePlan(
                quantity=quantity,
                copies_per_plate=max(1, full),
                plates=max(1, count),
                plate_setup_s=rates.plate_setup_s,
                part_time_s=part_time,
            )
        return plate_plan(
            extents_mm=given, quantity=quantity, part_time_s=part_time, rates=rates, machine=machine
        )

    plans = {id(machine): plan_on(machine) for machine in machines}
    best = min(
        machines,
        key=lambda m: (m.queue_eta_s + plans[id(m)].run_time_s + m.transit_s, m.name),
        default=None,
    )
    plan = plans[id(best)] if best is not None else plan_on(None)
    return _priced(
        quantity=quantity,
        volume_mm3=volume_mm3,
        mass_g=mass_g,
        basis=basis,
        part_time=part_time,
        material=material,
        machines=[best] if best is not None else [],
        rates=rates,
        geometry_basis=geometry_basis,
        plan=plan,
    )


def requote(
    quoted: Mapping[str, Any], *, volume_mm3: float, height_mm: float, rates: Rates
) -> Quote:
    """The stored quote (Quote.as_json) priced again on the built geometry: the same
    quantity, material prices, hourly rate, setup fee and machine as quoted, so only the
    geometry differs. A quote timed from a planned toolpath keeps that time."""
    try:
        plates = int(quoted.get("plates") or 0)
        setup_fee = Decimal(str(quoted["setup_fee"])) / max(1, plates)  # per plate
        plate_setup_s = quoted_plate_setup_s(quoted, default=rates.plate_setup_s)
        material = MaterialFacts(
            slug="",
            density_g_cm3=float(quoted["density_g_cm3"]),
            price_per_kg=Decimal(str(quoted["price_per_kg"])),
        )
        machine = MachineOffer(
            name=str(quoted.get("machine") or ""),
            hourly_rate=Decimal(str(quoted["hourly_rate"])),
            queue_eta_s=0.0,
        )
        same = Rates(
            currency=str(quoted["currency"]),
            setup_fee=setup_fee,
            waste_factor=rates.waste_factor,
            default_hourly_rate=Decimal(str(quoted["hourly_rate"])),
            deposition_mm3_s=rates.deposition_mm3_s,
            layer_height_mm=rates.layer_height_mm,
            layer_overhead_s=rates.layer_overhead_s,
            quantity_breaks=rates.quantity_breaks,
            pipeline_overhead_s=rates.pipeline_overhead_s,
            plate_setup_s=plate_setup_s,
            qc_job_s=rates.qc_job_s,
            qc_copy_s=rates.qc_copy_s,
        )
        toolpath = quoted.get("machine_time_s") if quoted.get("time_basis") == "toolpath" else None
        built = quote_line(
            volume_mm3=volume_mm3,
            height_mm=height_mm,
            quantity=int(quoted["quantity"]),
            material=material,
            machines=[machine] if machine.name else [],
            rates=same,
            toolpath_time_s=float(toolpath) if toolpath else None,
            geometry_basis="job",
            # A line quoted on plates stays on as many plates (its setup fees and times).
            plates=(plates, int(quoted["copies_per_plate"])) if plates else None,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise QuoteError(f"the stored quote cannot be priced again: {error!r}") from error
    # The lead time promised stays the one quoted: only the price is checked.
    return Quote(**{**asdict(built), "lead_time_s": quoted.get("lead_time_s")})


# What the built price does to an estimated line's price (price_change).
PASSED_ON = "lowered"  # cheaper than quoted: the customer pays the built price
KEPT = "kept"  # dearer by at most the tolerance: the quoted price stands
TO_CONFIRM = "to_confirm"  # dearer by more: the customer confirms the new price, or declines


def price_change(*, quoted: Decimal, built: Decimal, tolerance: float) -> str:
    """Lower is passed on, up to `tolerance` (a share: 0.05 = 5 %) above is absorbed,
    anything above that needs a confirmation."""
    if built < quoted:
        return PASSED_ON
    if built <= quoted * (1 + Decimal(str(tolerance))):
        return KEPT
    return TO_CONFIRM


def envelope_volume_mm3(lengths_mm: Sequence[float], *, fill: float = 0.35) -> tuple[float, float]:
    """(volume, height) guessed from a part's length parameters when no geometry has been
    built: the box of its three largest lengths, `fill` of it solid. Only for API orders of
    configurations nobody previewed; the web page always quotes on built geometry."""
    sizes = sorted((size for size in lengths_mm if size > 0), reverse=True)[:3]
    if not sizes:
        raise QuoteError("the part has no length parameters to estimate its volume from")
    while len(sizes) < 3:
        sizes.append(sizes[-1])
    x, y, z = sizes
    return x * y * z * fill, z


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- milled and laser-cut parts: priced on their stock (orders.routes) -----------------------

MILL = "cnc_mill"
LASER = "laser"


@dataclass(frozen=True)
class MachiningRates:
    """How a milled or laser-cut part is priced before its program exists (issue #16).

    Stock: the part's bounding box plus `stock_margin_mm` on each side (work-holding, tabs),
    on the thinnest plate or sheet of the material that holds the part. Time, an estimate
    until a program was planned for the configuration: milling removes the stock around and
    inside the part at `mill_removal_mm3_s` (a small mill in aluminium with a 6 mm end mill)
    plus `mill_setup_s` for fixturing and zeroing; laser cutting runs the outline plus the
    inner contours at `laser_cut_mm_s`, plus `laser_setup_s` for placing and focusing. Inner
    contours are guessed from the open area (bounding area less the part's plan area) as holes
    of `laser_hole_d_mm`."""

    stock_margin_mm: float = 5.0
    mill_removal_mm3_s: float = 20.0
    mill_setup_s: float = 600.0
    laser_cut_mm_s: float = 8.0
    laser_setup_s: float = 120.0
    laser_hole_d_mm: float = 10.0
    # A part may be this much thinner than the sheet it is cut from, never thicker: the rule
    # of production.toolpath.program.sheet_matches (tests/test_contracts.py keeps them equal).
    laser_sheet_thinner_mm: float = 0.1
    laser_sheet_thicker_mm: float = 0.01


class NoStock(QuoteError):
    """The material has no plate or sheet the part can be cut from (a route not offered)."""


def stock_for(
    *,
    process: str,
    extents_mm: tuple[float, float, float],
    thicknesses_mm: Sequence[float],
    material_name: str,
    rates: MachiningRates,
) -> tuple[float, float, float]:
    """(x, y, thickness) of the plate a part is cut from: the thinnest that holds it for
    milling (faced down to the part), the one as thick as the part for laser cutting (a
    sheet is cut through, never thinned). NoStock when there is none."""
    x, y, z = extents_mm
    held = sorted(float(t) for t in thicknesses_mm if float(t) > 0)
    if process == LASER:
        fits = [
            t
            for t in held
            if t - rates.laser_sheet_thinner_mm <= z <= t + rates.laser_sheet_thicker_mm
        ]
        if not fits:
            have = ", ".join(f"{t:g}" for t in held) or "none"
            raise NoStock(f"no {material_name} sheet {z:.1f} mm thick (stock: {have} mm)")
    else:
        fits = [t for t in held if t >= z - 1e-6]
        if not fits:
            have = ", ".join(f"{t:g}" for t in held) or "none"
            raise NoStock(f"no {material_name} plate {z:.1f} mm thick or more (stock: {have} mm)")
    margin = 2 * rates.stock_margin_mm
    return (round(x + margin, 2), round(y + margin, 2), fits[0])


def machining_estimate_s(
    *,
    process: str,
    volume_mm3: float,
    extents_mm: tuple[float, float, float],
    stock_mm: tuple[float, float, float],
    rates: MachiningRates,
) -> float:
    """Machine time of one milled or laser-cut part before its program exists (an estimate;
    see MachiningRates): removed volume / removal rate, or cut length / cutting speed."""
    x, y, z = extents_mm
    if process == LASER:
        plan_area = volume_mm3 / max(z, 1e-6)
        open_area = max(0.0, x * y - plan_area)
        hole = rates.laser_hole_d_mm
        # Holes of diameter d: area pi d^2 / 4 each, cut length pi d each -> 4 / d per mm^2.
        cut_mm = 2 * (x + y) + open_area * 4 / hole
        return rates.laser_setup_s + cut_mm / rates.laser_cut_mm_s
    sx, sy, st = stock_mm
    removed = max(0.0, sx * sy * st - volume_mm3)
    return rates.mill_setup_s + removed / rates.mill_removal_mm3_s


def quote_machined(
    *,
    process: str,
    volume_mm3: float,
    extents_mm: tuple[float, float, float],
    quantity: int,
    material: MaterialFacts,
    material_name: str,
    thicknesses_mm: Sequence[float],
    machines: Sequence[MachineOffer],
    rates: Rates,
    machining: MachiningRates,
    program_time_s: float | None = None,
    geometry_basis: str = "preview",
) -> Quote:
    """Price a milled or laser-cut line: material = the stock plate (bounding box + margin x
    the plate thickness) x density x price per kg; machine = the planned program's time when
    one exists for this configuration, else machining_estimate_s, x the hourly rate of the
    machine that would finish soonest. NoStock when no plate or sheet fits."""
    if volume_mm3 <= 0:
        raise QuoteError("the part has no volume")
    if quantity < 1:
        raise QuoteError("the quantity must be at least 1")
    stock = stock_for(
        process=process,
        extents_mm=extents_mm,
        thicknesses_mm=thicknesses_mm,
        material_name=material_name,
        rates=machining,
    )
    if program_time_s is not None and program_time_s > 0:
        basis, part_time = "toolpath", float(program_time_s)
    else:
        basis = "estimate"
        part_time = machining_estimate_s(
            process=process,
            volume_mm3=volume_mm3,
            extents_mm=extents_mm,
            stock_mm=stock,
            rates=machining,
        )
    return replace(
        _priced(
            quantity=quantity,
            volume_mm3=volume_mm3,
            mass_g=stock[0] * stock[1] * stock[2] / 1000.0 * material.density_g_cm3,
            basis=basis,
            part_time=part_time,
            material=material,
            machines=machines,
            rates=rates,
            geometry_basis=geometry_basis,
        ),
        process=process,
        stock_mm=stock,
    )


def _priced(
    *,
    quantity: int,
    volume_mm3: float,
    mass_g: float,
    basis: str,
    part_time: float,
    material: MaterialFacts,
    machines: Sequence[MachineOffer],
    rates: Rates,
    geometry_basis: str,
    plan: PlatePlan | None = None,
) -> Quote:
    """The quote of `quantity` parts of `mass_g` material each taking `part_time` seconds:
    priced on the machine that would finish them soonest (its hourly rate, else the
    default), with its lead time. Printed and machined lines are priced alike from here;
    with a plate `plan`, its machine time and one setup fee per plate."""
    run_time = plan.run_time_s if plan is not None else part_time * quantity
    best = soonest_machine(machines, run_time_s=run_time)
    hourly = (
        best.hourly_rate if best is not None and best.hourly_rate > 0 else rates.default_hourly_rate
    )
    material_cost = Decimal(str(mass_g)) / 1000 * material.price_per_kg
    # Per part: its own time, and its share of its plates' setup time.
    machine_cost = Decimal(str(run_time / quantity)) / 3600 * hourly
    setup_fee = rates.setup_fee * (plan.plates if plan is not None else 1)
    discount = quantity_discount(quantity, rates.quantity_breaks)
    unit_price = _money((material_cost + machine_cost) * (1 - Decimal(str(discount))))
    lead_time = None
    if best is not None:
        qc = qc_time_s(copies=quantity, job_s=rates.qc_job_s, copy_s=rates.qc_copy_s)
        lead_time = int(
            round(best.queue_eta_s + run_time + best.transit_s + rates.pipeline_overhead_s + qc)
        )
    return Quote(
        currency=rates.currency,
        quantity=quantity,
        volume_mm3=round(volume_mm3, 3),
        mass_g=round(mass_g, 2),
        time_basis=basis,
        machine_time_s=round(part_time, 1),
        material_cost=_money(material_cost),
        machine_cost=_money(machine_cost),
        setup_fee=_money(setup_fee),
        discount=discount,
        unit_price=unit_price,
        total=_money(setup_fee + unit_price * quantity),
        machine=best.name if best is not None else "",
        lead_time_s=lead_time,
        geometry_basis=geometry_basis,
        hourly_rate=hourly,
        density_g_cm3=material.density_g_cm3,
        price_per_kg=material.price_per_kg,
        plates=plan.plates if plan is not None else 0,
        copies_per_plate=plan.copies_per_plate if plan is not None else 0,
        plate_time_s=round(plan.plate_time_s, 1) if plan is not None else 0.0,
        plate_setup_s=plan.plate_setup_s if plan is not None else 0.0,
    )
