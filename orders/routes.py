"""The process route of an order line: which process and material make it (issue #16).

A revision names the processes it can be made by (PartRevision.process, the primary, and its
alternative_processes). For every allowed process with a material of that process and a
machine that can make the part and takes work now, the line is quoted as that route would
make it (orders.quoting: FDM on the part's volume, milling and laser cutting on the plate or
sheet it is cut from) and given a ready time (orders.delivery: the queue, the run, transit,
the work of that process already waiting). The chooser then takes

    the routes ready by the line's needed-by date (none: every route), the cheapest of them;
    when none is ready in time, the soonest;

and says why in the requester's words: "milled in 6061 aluminium: 2 h sooner and stiffer;
printed in PETG would be 4.10 EUR cheaper". A route with no capable machine is not offered.
The requester may choose another allowed route (orders.services.order_line_route_change);
the price and ready time follow that route.

`choose` and `reason_text` are pure; `line_routes` reads the facts from the database.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from catalog.models import Material, PartRevision, Process
from orders.delivery import needed_by_end, order_speed
from orders.quotes import LineFacts, line_facts, route_quote
from orders.quoting import NoStock, Quote

CHOOSER = "chooser"
REQUESTER = "requester"

# How each process makes a part, in a reason: "milled in 6061 aluminium".
VERBS: dict[str, str] = {
    Process.FDM: "printed",
    Process.CNC_MILL: "milled",
    Process.LASER: "laser-cut",
}

# Typical Young's modulus (GPa) by a word in the material's slug: only to say "stiffer" when
# one route's material is clearly stiffer than another's (1.5 times or more).
STIFFNESS_GPA = (
    ("tpu", 0.03),
    ("petg", 2.1),
    ("pla", 3.5),
    ("abs", 2.3),
    ("asa", 2.2),
    ("nylon", 2.5),
    ("pa", 2.5),
    ("acrylic", 3.2),
    ("pmma", 3.2),
    ("pom", 2.9),
    ("6061", 69.0),
    ("5083", 71.0),
    ("alu", 69.0),
    ("brass", 100.0),
    ("steel", 200.0),
)
STIFFER = 1.5


@dataclass(frozen=True)
class RouteOption:
    process: str
    material: str  # slug
    material_name: str
    quote: Quote
    ready_at: datetime | None  # None: no machine of the process can make it now
    facts: LineFacts | None = None  # what it was quoted from (orders.delivery needs it)

    @property
    def offered(self) -> bool:
        return self.ready_at is not None

    @property
    def label(self) -> str:
        return f"{VERBS.get(self.process, self.process)} in {self.material_name}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.process, self.material)

    def as_json(self, *, chosen: bool, deadline: datetime | None) -> dict[str, Any]:
        """How the line keeps it (OrderLine.route_options) and the API shows it."""
        return {
            "process": self.process,
            "material": self.material,
            "material_name": self.material_name,
            "route": self.label,
            "unit_price": str(self.quote.unit_price),
            "total": str(self.quote.total),
            "currency": self.quote.currency,
            "machine_time_s": self.quote.machine_time_s,
            "time_basis": self.quote.time_basis,
            "stock_mm": list(self.quote.stock_mm) if self.quote.stock_mm else None,
            "lead_time_s": self.quote.lead_time_s,
            "ready_at": self.ready_at.isoformat() if self.ready_at else None,
            "meets_due": meets(self, deadline),
            "chosen": chosen,
        }


@dataclass(frozen=True)
class RouteChoice:
    chosen: RouteOption
    options: tuple[RouteOption, ...]  # every route quoted, the chosen one among them
    reason: str  # "" when there was nothing to choose from
    chosen_by: str  # CHOOSER, REQUESTER, or "" (one route only)
    deadline: datetime | None

    def options_json(self) -> list[dict[str, Any]]:
        return [
            option.as_json(chosen=option.key == self.chosen.key, deadline=self.deadline)
            for option in self.options
        ]


def meets(option: RouteOption, deadline: datetime | None) -> bool:
    return option.ready_at is not None and (deadline is None or option.ready_at <= deadline)


def choose(options: Sequence[RouteOption], *, deadline: datetime | None) -> RouteOption | None:
    """The cheapest route ready by `deadline` (None: any time), else the soonest; among
    equals the earlier in `options` (the primary process first). None when no route has a
    machine that can make it now."""
    offered = [(index, option) for index, option in enumerate(options) if option.offered]
    if not offered:
        return None
    in_time = [(i, o) for i, o in offered if meets(o, deadline)]
    if in_time:
        return min(in_time, key=lambda io: (io[1].quote.total, io[1].ready_at, io[0]))[1]
    return min(offered, key=lambda io: (io[1].ready_at, io[1].quote.total, io[0]))[1]


def span_text(seconds: float) -> str:
    """'40 min', '2 h', '2.5 h', '3 days' for a time difference."""
    minutes = seconds / 60
    if minutes < 90:
        return f"{max(1, round(minutes))} min"
    hours = minutes / 60
    if hours < 48:
        rounded = round(hours * 2) / 2
        return f"{rounded:g} h"
    return f"{hours / 24:.1f} days".replace(".0 days", " days")


def stiffness_gpa(material_slug: str) -> float | None:
    slug = material_slug.lower()
    return next((gpa for word, gpa in STIFFNESS_GPA if word in slug), None)


def _stiffer(a: RouteOption, b: RouteOption) -> bool:
    ea, eb = stiffness_gpa(a.material), stiffness_gpa(b.material)
    return ea is not None and eb is not None and ea >= STIFFER * eb


def _compare(option: RouteOption, other: RouteOption) -> list[str]:
    """What `option` has over `other`: sooner, cheaper, stiffer."""
    edges = []
    if option.ready_at and other.ready_at and option.ready_at < other.ready_at:
        gap = (other.ready_at - option.ready_at).total_seconds()
        if gap >= 60:
            edges.append(f"{span_text(gap)} sooner")
    saving = other.quote.total - option.quote.total
    if saving >= Decimal("0.01"):
        edges.append(f"{saving:.2f} {option.quote.currency} cheaper")
    if _stiffer(option, other):
        edges.append("stiffer")
    return edges


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def reason_text(
    chosen: RouteOption,
    options: Sequence[RouteOption],
    *,
    deadline: datetime | None,
    chosen_by: str,
) -> str:
    """Why this route, against the others offered, in the requester's words:
    "milled in 6061 aluminium: 2 h sooner and stiffer, ready by the needed-by date; printed in
    PETG would be 4.10 EUR cheaper but ready after it". "" when nothing else was offered."""
    others = [o for o in options if o.offered and o.key != chosen.key]
    if not others:
        return ""
    # What it has over the alternative the requester would think of first: the cheapest
    # other route (else the soonest).
    main = min(others, key=lambda o: (o.quote.total, o.ready_at))
    edges = [_and(found)] if (found := _compare(chosen, main)) else []
    if deadline is not None and meets(chosen, deadline) and not meets(main, deadline):
        edges.append("ready by the needed-by date")
    head = chosen.label
    if chosen_by == REQUESTER:
        head = f"your choice, {head}"
    text = f"{head}: {', '.join(edges)}" if edges else head
    clauses = []
    for other in sorted(others, key=lambda o: (o.quote.total, o.ready_at)):
        their = _compare(other, chosen)
        if not their:
            continue
        clause = f"{other.label} would be {_and(their)}"
        if deadline is not None and not meets(other, deadline) and meets(chosen, deadline):
            clause += " but ready after the needed-by date"
        clauses.append(clause)
    if not clauses and not edges:
        return f"{head}: the same price and time as {main.label}"
    return "; ".join([text, *clauses])


def decide(
    options: Sequence[RouteOption],
    *,
    deadline: datetime | None,
    requested: tuple[str, str] | None = None,
) -> RouteChoice:
    """The route of a line: the requester's (`requested`, process and material slug) when
    given, else the chooser's; with its reason. `options` must not be empty and, with
    `requested`, must hold it."""
    if requested is not None:
        chosen = next(o for o in options if o.key == requested)
        by = REQUESTER
    else:
        picked = choose(options, deadline=deadline)
        chosen, by = (picked, CHOOSER) if picked is not None else (options[0], "")
    offered = [o for o in options if o.offered]
    if len({o.process for o in offered} | {chosen.process}) < 2:
        by = ""  # one process only: there was no choice to make or show
    reason = reason_text(chosen, options, deadline=deadline, chosen_by=by) if by else ""
    return RouteChoice(
        chosen=chosen, options=tuple(options), reason=reason, chosen_by=by, deadline=deadline
    )


# --- reading the facts --------------------------------------------------------------------------


def material_process(revision: PartRevision, material: Material) -> str:
    """The process a material of the revision makes it by (PartRevision.process_for)."""
    return revision.process_for(material)


def route_materials(revision: PartRevision, process: str) -> list[Material]:
    """The revision's active materials of a process (for the primary one, also those whose
    own process the revision does not allow: materials kept from before routes)."""
    allowed = revision.allowed_processes
    return [
        material
        for material in revision.materials.filter(active=True).order_by("name")
        if material_process(revision, material) == process and process in allowed
    ]


def _option(
    *,
    revision: PartRevision,
    process: str,
    material: Material,
    common: dict[str, Any],
    now: datetime,
    expedite: bool,
) -> RouteOption | str:
    """One route quoted, or why it is no route (no plate or sheet of the material fits)."""
    facts = line_facts(revision=revision, material=material, process=process, now=now, **common)
    try:
        quote = route_quote(facts)
    except NoStock as refusal:
        return str(refusal)
    promise = order_speed([(facts, quote)], now=now, expedite=expedite)
    return RouteOption(
        process=process,
        material=material.slug,
        material_name=material.name,
        quote=quote,
        ready_at=promise.promised_at,
        facts=facts,
    )


@dataclass(frozen=True)
class LineRoutes:
    options: list[RouteOption]  # the requested route first when it is one
    refusals: dict[tuple[str, str], str]  # (process, material) -> why it is no route


def line_routes(
    *,
    revision: PartRevision,
    parameters: dict[str, Any],
    parameters_hash: str,
    material: Material,
    quantity: int,
    now: datetime,
    process: str = "",
    delivery_site: str = "",
    expedite: bool = False,
    only_requested: bool = False,
) -> LineRoutes:
    """Every route of a line: the requested one (`material` in `process`, by default the
    material's own process) first, then for each other allowed process the cheapest of the
    revision's materials of it (a few queries per route). A material with no plate or sheet
    for the part is no route (in `refusals`); a route with no machine now is kept but not
    offered (ready_at None). `only_requested`: the requested route alone (a held quote)."""
    common = {
        "parameters": parameters,
        "parameters_hash": parameters_hash,
        "quantity": quantity,
        "delivery_site": delivery_site,
    }
    asked = process or material_process(revision, material)
    options: list[RouteOption] = []
    refusals: dict[tuple[str, str], str] = {}

    def quote(route_process: str, route_material: Material) -> RouteOption | None:
        found = _option(
            revision=revision,
            process=route_process,
            material=route_material,
            common=common,
            now=now,
            expedite=expedite,
        )
        if isinstance(found, str):
            refusals[(route_process, route_material.slug)] = found
            return None
        return found

    first = quote(asked, material)
    if first is not None:
        options.append(first)
    if only_requested:
        return LineRoutes(options, refusals)
    for other in revision.allowed_processes:
        if other == asked:
            continue
        candidates = [
            option
            for candidate in route_materials(revision, other)
            if (option := quote(other, candidate)) is not None
        ]
        if candidates:
            offered = [c for c in candidates if c.offered] or candidates
            options.append(min(offered, key=lambda o: (o.quote.total, o.material)))
    return LineRoutes(options, refusals)


def deadline_of(needed_by: Any) -> datetime | None:
    """The end of the needed-by day (None: as soon as possible, every route is in time)."""
    return needed_by_end(needed_by) if needed_by is not None else None
