"""Filament as stock: spools at a site, loaded on a machine's tool, and the grams jobs take.

The one writer of `Spool.remaining_g` and of `SpoolBooking` rows (and of `Spool.loaded_on`):
every change of a spool's grams is a conditional UPDATE (`... WHERE remaining_g >= <grams>`)
of a row held locked, with its booking in the same transaction, so the bookings of a spool
always account for every gram it lost and two bookings at once never take the same grams.

When grams are booked:
- a job starts (station start, or a networked printer reporting it printing): the filament
  of its G-code (`toolpath_meta["filament_g"]`, the number the slicer wrote in the G-code),
  once per copy, is taken from the spool loaded on its machine (`start`). A spool with less
  left gives what it has and the rest is booked as a `shortfall`, never taken: grams never go
  negative. No spool loaded (or one of another material on a networked printer): nothing is
  booked, the operator is warned, and finishing books it against the spool loaded by then;
- its run ends: `correction`, what the run used against what was booked. A finished job used
  its G-code's filament whatever its QC says (scrapped parts used it too): the correction is
  zero. A print the operator stops and scraps mid-run (paused, then scrapped) used the share
  of its G-code it got through (the job's progress, when a printer or agent reported one;
  without, all of it: the stock errs low, so the router never counts on grams that are gone)
  and the rest goes back to the spool. A run that ends any other way (it failed on the
  machine, or was cancelled) keeps its start booking: a machine that died rarely says how far
  it got, and a failed job found fine later (resumed) did use it all.

Loading (`spool_load`, from the station's scan or the spool's page) puts a spool on a
machine's one tool, taking off the one that was there; the machine's loaded material becomes
the spool's, and what was loaded before stays loadable. The router reads the loaded spools
through `loaded_spools` and sends a job only where the spool can finish it (production.routing).
"""

import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from kombu.exceptions import OperationalError

from catalog.models import Material, Process
from microfactory.errors import DomainError
from microfactory.limits import ID_MAX
from production.models import Job, Machine, Site, Spool, SpoolBooking

logger = logging.getLogger(__name__)

Kind = SpoolBooking.Kind
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# Jobs at a machine not started yet: the filament they will take is spoken for.
NOT_STARTED = (Job.Status.ROUTED, Job.Status.DISPATCHED)
_SPOOL_URL = re.compile(r"/station/spools/(\d+)/?")
_SPOOL_NUMBER = re.compile(r"^S-?0*(\d+)$", re.IGNORECASE)


def grams(value: float | Decimal | str | None) -> Decimal:
    """Grams to the hundredth, as the spools keep them (the slicer's g to 2 decimals)."""
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


def job_filament_g(job: Job) -> Decimal:
    """The filament the job takes, in grams: its G-code's (what its toolpath step recorded)
    once per copy, since a job's G-code makes one copy and runs once for each (job costs count
    it the same way, production.costing)."""
    return grams((job.toolpath_meta or {}).get("filament_g")) * max(job.quantity, 1)


def spool_id_from_code(code: str) -> int | None:
    """The spool id in what a scanner or a person typed: "S-000012", "s12" or its label's QR
    URL (…/station/spools/12/); None when the code is not a spool's."""
    code = code.strip()
    found = _SPOOL_URL.search(code) or _SPOOL_NUMBER.match(code)
    digits = found.group(1).lstrip("0") if found else ""
    if not digits or len(digits) > len(str(ID_MAX)) or int(digits) > ID_MAX:
        return None
    return int(digits)


def _describe(spool: Spool) -> str:
    colour = f" {spool.colour}" if spool.colour else ""
    return f"{spool.number} ({spool.material.name}{colour}, lot {spool.lot_number})"


# --- receiving ----------------------------------------------------------------------------------


def spool_receive(
    *,
    material: Material,
    site: Site,
    lot_number: str,
    initial_g: Decimal,
    colour: str = "",
    price_per_kg: Decimal | None = None,
) -> Spool:
    """A new spool at a site, full: its remaining grams start at its initial grams."""
    if initial_g <= 0:
        raise DomainError("a spool holds more than 0 g")
    if not lot_number.strip():
        raise DomainError("give the spool's lot number (on the maker's label)")
    amount = grams(initial_g)
    return Spool.objects.create(
        material=material,
        site=site,
        lot_number=lot_number.strip(),
        colour=colour.strip(),
        initial_g=amount,
        remaining_g=amount,
        price_per_kg=price_per_kg,
    )


# --- loading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolLoaded:
    spool: Spool
    machine: Machine
    unloaded: Spool | None  # the spool that was on the machine before, now off it
    moved_from: str  # the machine the spool was taken off to load it here ("" if none)
    changed: bool  # False: it was loaded there already, nothing changed


def _locked_spool(spool_id: int) -> Spool:
    spool = (
        Spool.objects.select_for_update(of=("self",))
        .select_related("material")
        .filter(pk=spool_id)
        .first()
    )
    if spool is None:
        raise DomainError(f"no spool {spool_id}")
    return spool


@transaction.atomic
def spool_load(*, spool_id: int, machine_id: int, actor: str, now: datetime) -> SpoolLoaded:
    """Load the spool on the machine's tool: the spool there before comes off, the machine's
    loaded material becomes the spool's (the one it had stays loadable), and waiting jobs are
    routed again. Refused for a spool at another site, an empty one, or a material the machine
    does not run. Loading it again where it is changes nothing."""
    # Machine first, then spools: the order a start takes them in (its machine, then the spool
    # on it), so a load and a start at once wait for each other instead of deadlocking.
    machine = (
        Machine.objects.select_for_update(of=("self",))
        .select_related("site")
        .filter(pk=machine_id)
        .first()
    )
    if machine is None:
        raise DomainError(f"no machine {machine_id}")
    spool = _locked_spool(spool_id)
    if machine.process != Process.FDM:
        raise DomainError(f"{machine.name} is not an FDM printer: spools go on FDM printers")
    if spool.site_id != machine.site_id:
        site = Site.objects.get(pk=spool.site_id)
        raise DomainError(
            f"{spool.number} is at {site.name}, {machine.name} at {machine.site.name}: "
            "move the spool to that site first (admin)"
        )
    if spool.loaded_on_id == machine.pk:
        return SpoolLoaded(spool, machine, unloaded=None, moved_from="", changed=False)
    if spool.remaining_g <= 0:
        raise DomainError(f"{spool.number} is empty (0 g left): load another spool")
    runs = set(machine.materials_loaded.values_list("pk", flat=True)) | set(
        machine.materials_loadable.values_list("pk", flat=True)
    )
    if spool.material_id not in runs:
        raise DomainError(
            f"{machine.name} does not run {spool.material.name}: it is neither loaded nor "
            "loadable there (admin: the machine's materials)"
        )
    moved_from = ""
    if spool.loaded_on_id is not None:
        moved_from = Machine.objects.get(pk=spool.loaded_on_id).name
    unloaded = (
        Spool.objects.select_for_update(of=("self",))
        .select_related("material")
        .filter(loaded_on=machine)
    ).first()
    if unloaded is not None:
        # Off first: one spool per tool is a unique column, checked row by row.
        Spool.objects.filter(pk=unloaded.pk).update(loaded_on=None, loaded_at=None, updated_at=now)
    Spool.objects.filter(pk=spool.pk).update(loaded_on=machine, loaded_at=now, updated_at=now)
    before = list(machine.materials_loaded.all())
    machine.materials_loadable.add(*before, spool.material)
    machine.materials_loaded.set([spool.material])
    logger.info(
        "%s: %s loaded on %s by %s%s",
        machine.site.name,
        _describe(spool),
        machine.name,
        actor,
        f" ({unloaded.number} taken off)" if unloaded else "",
    )
    _route_on_commit()
    spool.refresh_from_db()
    return SpoolLoaded(spool, machine, unloaded=unloaded, moved_from=moved_from, changed=True)


@transaction.atomic
def spool_unload(*, spool_id: int, actor: str, now: datetime) -> Spool:
    """Take the spool off its machine: nothing is loaded there any more (its material stays
    loadable). Refused for a spool not loaded anywhere."""
    on = Spool.objects.filter(pk=spool_id).values_list("loaded_on_id", flat=True).first()
    # Machine first, then the spool (as spool_load); it is still there once both are held.
    machine = Machine.objects.select_for_update().filter(pk=on).first() if on else None
    spool = _locked_spool(spool_id)
    if machine is None or spool.loaded_on_id != machine.pk:
        raise DomainError(f"{spool.number} is not loaded on a machine")
    Spool.objects.filter(pk=spool.pk).update(loaded_on=None, loaded_at=None, updated_at=now)
    machine.materials_loadable.add(spool.material)
    machine.materials_loaded.remove(spool.material)
    logger.info("%s taken off %s by %s", _describe(spool), machine.name, actor)
    spool.refresh_from_db()
    return spool


def _route_on_commit() -> None:
    """A spool loaded may let waiting jobs go to that machine: route them after commit."""
    from production import tasks  # tasks imports the machines module, which imports this one

    def send() -> None:
        try:
            tasks.route_waiting_jobs.apply_async(queue="routing")
        except OperationalError as error:  # the periodic routing pass catches up
            logger.warning("could not enqueue routing (broker unreachable: %s)", error)

    transaction.on_commit(send)


def spool_mismatch(*, job: Job, machine: Machine) -> str | None:
    """Why the job should not start on the machine as loaded: the spool there is of another
    material (the station refuses the start; a networked printer's own start is booked
    nothing instead). None when it matches or no spool is tracked there."""
    spool = Spool.objects.select_related("material").filter(loaded_on=machine).first()
    if spool is None or spool.material_id == job.line.material_id:
        return None
    wanted = Material.objects.get(pk=job.line.material_id).name
    return (
        f"{machine.name} has {_describe(spool)} loaded; {job.number} is {wanted}: scan a "
        f"{wanted} spool on the machine's page to load it, then start"
    )


# --- booking ----------------------------------------------------------------------------------


def _take(spool: Spool, amount: Decimal, *, now: datetime) -> None:
    """Take grams from a spool held locked (negative: give them back). The condition keeps
    the database's rules even if a caller's sums were wrong: never below 0, never above the
    spool's initial grams."""
    condition = Q(remaining_g__gte=amount) & Q(initial_g__gte=F("remaining_g") - amount)
    updated = Spool.objects.filter(condition, pk=spool.pk).update(
        remaining_g=F("remaining_g") - amount, updated_at=now
    )
    if updated != 1:
        raise DomainError(f"{spool.number}: cannot take {amount} g of {spool.remaining_g} g")
    spool.remaining_g -= amount


def _book(
    spool: Spool, job: Job, kind: str, amount: Decimal, *, actor: str, now: datetime, note: str
) -> SpoolBooking:
    return SpoolBooking.objects.create(
        spool=spool, job=job, kind=kind, grams=amount, at=now, by=actor[:150], note=note
    )


def _take_up_to(
    spool: Spool, job: Job, kind: str, needed: Decimal, *, actor: str, now: datetime, why: str
) -> str | None:
    """Take `needed` grams from the spool, or all it has and book the rest as a shortfall;
    the warning when it fell short."""
    taken = min(needed, spool.remaining_g)
    _take(spool, taken, now=now)
    _book(spool, job, kind, taken, actor=actor, now=now, note=why)
    if taken == needed:
        return None
    short = needed - taken
    warning = (
        f"{spool.number} had {taken} g of the {needed} g {job.number} needs: {short} g short. "
        "Load a new spool"
    )
    _book(spool, job, Kind.SHORTFALL, short, actor=actor, now=now, note=warning)
    logger.warning("%s", warning)
    return warning


def spool_book_start(*, job: Job, machine: Machine, actor: str, now: datetime) -> str | None:
    """Book the job's G-code filament against the spool loaded on its machine as it starts;
    a warning when it could not be booked in full (a shortfall) or at all (no spool loaded, or
    one of another material). Call in the transaction that starts the job; a second call for
    the same job books nothing."""
    needed = job_filament_g(job)
    if needed <= 0 or SpoolBooking.objects.filter(job=job, kind=Kind.START).exists():
        return None
    spool = (
        Spool.objects.select_for_update(of=("self",))
        .select_related("material")
        .filter(loaded_on=machine)
    ).first()
    if spool is None:
        warning = (
            f"no spool loaded on {machine.name}: {needed} g for {job.number} not booked. "
            "Scan the spool's label on the machine's page; finishing books it then"
        )
        logger.warning("%s", warning)
        return warning
    if spool.material_id != job.line.material_id:
        warning = spool_mismatch(job=job, machine=machine) or ""
        logger.warning("%s: not booked", warning)
        return f"not booked: {warning}"
    return _take_up_to(
        spool,
        job,
        Kind.START,
        needed,
        actor=actor,
        now=now,
        why=f"started on {machine.name}: G-code {needed} g",
    )


def spool_book_end(*, job: Job, actor: str, now: datetime, used_share: float = 1.0) -> str | None:
    """Correct the job's booking when its run ends: it used `used_share` of its G-code's
    filament (1 for a finished run, whatever its QC). Grams it used beyond what was booked are
    taken from the spool it was booked on, grams it did not use go back to it; a job booked
    nothing at its start is booked now against the spool loaded on its machine, if that
    holds its material. The warning of a (new) shortfall, if any. A second call books nothing.
    """
    if SpoolBooking.objects.filter(job=job, kind=Kind.CORRECTION).exists():
        return None
    used = grams(job_filament_g(job) * Decimal(str(max(0.0, min(used_share, 1.0)))))
    start = SpoolBooking.objects.filter(job=job, kind=Kind.START).first()
    if start is None:
        if used <= 0 or job.machine_id is None:
            return None
        spool = (
            Spool.objects.select_for_update()
            .filter(loaded_on_id=job.machine_id, material_id=job.line.material_id)
            .first()
        )
        if spool is None:
            return None
        return _take_up_to(
            spool,
            job,
            Kind.CORRECTION,
            used,
            actor=actor,
            now=now,
            why=f"not booked at its start: {used} g booked at its end",
        )
    spool = _locked_spool(start.spool_id)
    short = SpoolBooking.objects.filter(job=job, kind=Kind.SHORTFALL).aggregate(total=Sum("grams"))[
        "total"
    ] or Decimal(0)
    booked = start.grams
    if used <= booked:  # it gives back what it did not use; nothing was missing after all
        from_spool, short_now = used, ZERO
    else:  # beyond what it took and what was short: from the spool if it has it, else short
        take = min(max(used - booked - short, ZERO), spool.remaining_g)
        from_spool = booked + take
        short_now = used - from_spool
    correction = from_spool - booked
    _take(spool, correction, now=now)
    share = "" if used_share >= 1 else f" ({used_share:.0%} of it)"
    _book(
        spool,
        job,
        Kind.CORRECTION,
        correction,
        actor=actor,
        now=now,
        note=f"used {used} g{share}; {booked} g booked at its start",
    )
    if short_now == short:
        return None
    change = short_now - short
    note = (
        f"{-change} g of the shortfall not needed: the run used {used} g"
        if change < 0
        else f"{spool.number} ran {change} g more short: the run used {used} g"
    )
    _book(spool, job, Kind.SHORTFALL, change, actor=actor, now=now, note=note)
    return None if change < 0 else note


def used_share_of_stopped(job: Job) -> float:
    """How much of its G-code a print stopped mid-run used: its progress when a printer or
    agent reported one, else all of it (the stock then errs low, never high)."""
    progress = job.progress or 0.0
    return progress / 100 if 0 < progress < 100 else 1.0


def start_warning(job: Job) -> str | None:
    """What the station tells the operator after a start: the job's shortfall, or that its
    filament was not booked (no spool loaded)."""
    shortfall = job.spool_bookings.filter(kind=Kind.SHORTFALL).order_by("-at", "-pk").first()
    if shortfall is not None:
        return shortfall.note
    needed = job_filament_g(job)
    if needed > 0 and not job.spool_bookings.exists():
        where = job.machine.name if job.machine else "its machine"
        return (
            f"{needed} g for {job.number} not booked: no spool of its material is loaded on "
            f"{where}. Scan the spool's label on the machine's page; finishing books it then"
        )
    return None


# --- reads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedSpool:
    """A loaded spool as the router sees it."""

    material: str  # slug
    free_g: float  # what is left minus the filament of the jobs queued there in its material


def loaded_spools(machines: Iterable[Machine]) -> dict[int, LoadedSpool]:
    """The spool loaded on each of the machines (those that have one), with the grams it can
    still give: the jobs routed or dispatched there and not started in its material have
    theirs spoken for (started ones took theirs when they started). Pass the machines with
    `select_related("spool__material")`: without any spool loaded this reads nothing more."""
    loaded: dict[int, Spool] = {}
    for machine in machines:
        try:
            loaded[machine.pk] = machine.spool
        except Spool.DoesNotExist:
            continue
    if not loaded:
        return {}
    spoken: dict[int, Decimal] = defaultdict(Decimal)
    queued = Job.objects.filter(machine_id__in=list(loaded), status__in=NOT_STARTED).values_list(
        "machine_id", "line__material_id", "toolpath_meta", "quantity"
    )
    for machine_id, material_id, meta, quantity in queued:
        if loaded[machine_id].material_id == material_id:
            spoken[machine_id] += grams((meta or {}).get("filament_g")) * max(quantity, 1)
    return {
        machine_id: LoadedSpool(
            material=spool.material.slug, free_g=float(spool.remaining_g - spoken[machine_id])
        )
        for machine_id, spool in loaded.items()
    }


def job_lot(job: Job) -> str:
    """The spool the traveler names for the job: the one its start was booked on; else, for
    a job not started, the one loaded on its machine now, if of its material (marked so, as
    it may still change). Empty when there is none: the traveler leaves the line to write in."""
    booking = (
        job.spool_bookings.filter(kind__in=(Kind.START, Kind.CORRECTION))
        .select_related("spool__material")
        .order_by("pk")
        .first()
    )
    if booking is not None:
        return f"{booking.spool.lot_number} / {booking.spool.number}"
    if job.machine_id is None or job.status not in NOT_STARTED:
        return ""
    spool = (
        Spool.objects.filter(loaded_on_id=job.machine_id, material_id=job.line.material_id)
        .select_related("loaded_on")
        .first()
    )
    if spool is None or spool.loaded_on is None:
        return ""
    return f"{spool.lot_number} / {spool.number} (loaded on {spool.loaded_on.name})"


@dataclass(frozen=True)
class StockLevel:
    """A material's stock at a site: its spools and the grams they hold."""

    material: str
    spools: int  # spools with grams left
    remaining_g: Decimal

    @property
    def is_low(self) -> bool:
        return self.remaining_g < Decimal(str(settings.MF_SPOOL_LOW_STOCK_G))


def site_stock(sites: Iterable[Site]) -> dict[int, list[StockLevel]]:
    """Per site that keeps spools, every material its machines run (loaded or loadable) or
    that it has spools of, with what is left, by material name. A site without any spool
    does not track its stock: it is left out rather than shown as empty."""
    ids = [site.pk for site in sites]
    tracking = set(
        Spool.objects.filter(site_id__in=ids).values_list("site_id", flat=True).distinct()
    )
    if not tracking:
        return {}
    levels: dict[int, dict[str, tuple[int, Decimal]]] = {site_id: {} for site_id in tracking}
    rows = (
        Spool.objects.filter(site_id__in=tracking)
        .values("site_id", "material__name")
        .annotate(spools=Count("pk", filter=Q(remaining_g__gt=0)), remaining=Sum("remaining_g"))
    )
    for row in rows:
        levels[row["site_id"]][row["material__name"]] = (row["spools"], row["remaining"])
    for field in ("materials_loaded", "materials_loadable"):
        runs = Machine.objects.filter(site_id__in=tracking).values_list("site_id", f"{field}__name")
        for site_id, name in runs:
            if name is not None:
                levels[site_id].setdefault(name, (0, ZERO))
    return {
        site_id: [
            StockLevel(material=name, spools=count, remaining_g=grams(remaining))
            for name, (count, remaining) in sorted(by_material.items())
        ]
        for site_id, by_material in levels.items()
    }
