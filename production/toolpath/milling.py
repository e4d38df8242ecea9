"""The 2.5D milling planner: a prismatic part cut from a plate, as a GRBL or LinuxCNC program.

`plan_milling` reads the part (prismatic.py), places it in a plate of the material, chooses a
tool for every feature from the machine's tool table, and writes the operations in this order:

1. facing, when the plate is thicker than the part: zig-zag passes down to the part's top;
2. per end mill, widest first: pockets, slots and steps (offset rings from the middle out,
   or zig-zag lines, leaving a finishing allowance, then a finishing pass along the walls),
   and round holes no drill matches (a helix down, G2/G3 with Z, then a full circle);
3. per drill: the holes whose diameter a drill matches (G81, or G83 pecks when deep);
4. the outside profile, last, through the plate with holding tabs in its last passes.

Tool-radius compensation is ours: every wall is followed by the tool's centre at the tool's
radius from it (shapely buffers of the part's regions), so the program never relies on the
controller's G41/G42. Depths are cut in equal step-downs no deeper than the tool's maximum.

Coordinates (the shared contract, program.py): G54 X0 Y0 Z0 is the plate's front-left corner
on its top face; the part lies at x, y >= margin, its bottom on the plate's bottom
(z = -plate thickness). Through cuts go `breakthrough_mm` below the plate (into the
spoilboard); a drill goes its tip's length deeper again, so that its full diameter exits.

The estimated time counts feed moves at their feed, rapids at the machine's rapid rate, tool
changes and spindle start-up: an estimate with no accelerations (benchmarks/cnc_programs.py
compares it with a trapezoidal-velocity model).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import shapely
from shapely.geometry import LinearRing, LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from microfactory.errors import Rejected
from production.toolpath import posts
from production.toolpath.cnc_tools import Feeds, MillProfile, Tool, ToolTable, feeds_for
from production.toolpath.posts import Arc, Comment, Drill, Feed, Move, Rapid, ToolChange
from production.toolpath.prismatic import ENGINE as PRISMATIC_ENGINE
from production.toolpath.prismatic import Hole, Pocket, PrismaticPart, Region, describe_part
from production.toolpath.program import MachineProgram, Stock, ToolUse

ENGINE = f"microfactory-mill 2 ({PRISMATIC_ENGINE})"

__all__ = [
    "ENGINE",
    "MillProfile",
    "MillSettings",
    "plan_milling",
    "plan_part",
    "plate_thickness_for",
]


@dataclass(frozen=True)
class MillSettings:
    """How the planner cuts: the shop's choices, not the machine's limits."""

    margin_mm: float = 10.0  # plate beyond the part on every side: clamps and the profile
    safe_z_mm: float = 10.0  # above the plate: tool changes and moves between features
    clearance_mm: float = 2.0  # above the surface being cut: moves within one feature
    breakthrough_mm: float = 0.3  # below the plate's bottom, for through cuts
    finish_allowance_mm: float = 0.2  # left on walls by clearing, taken by the finishing pass
    clearing: str = "offset"  # "offset" rings or "zigzag" lines
    tab_count: int = 4  # holding tabs on the outside profile (0: none)
    tab_width_mm: float = 6.0  # material left between the part and the plate, along the path
    tab_height_mm: float = 1.0  # above the plate's bottom
    drill_tolerance_mm: float = 0.05  # a drill this close to a hole's diameter drills it
    peck_below_diameters: float = 3.0  # holes deeper than this many diameters: G83 pecks
    facing: bool = True  # face the plate down to the part's top when it is thicker

    def __post_init__(self) -> None:
        if self.clearing not in ("offset", "zigzag"):
            raise ValueError(f"clearing must be 'offset' or 'zigzag', not {self.clearing!r}")
        if self.tab_count < 0 or self.tab_width_mm < 0 or self.tab_height_mm < 0:
            raise ValueError("tabs cannot be negative")
        if self.margin_mm <= 0 or self.safe_z_mm <= self.clearance_mm or self.clearance_mm <= 0:
            raise ValueError("margin and clearance must be positive, the safe height above it")


def plan_milling(
    *,
    step: bytes | None,
    stl: bytes,
    material: str,
    stock_thickness_mm: float,
    tools: ToolTable,
    machine: MillProfile,
    dialect: str,
    settings: MillSettings | None = None,
) -> MachineProgram:
    """The part's milling program from a plate `stock_thickness_mm` thick, or Rejected."""
    part = describe_part(step=step, stl=stl)
    return plan_part(
        part,
        material=material,
        stock_thickness_mm=stock_thickness_mm,
        tools=tools,
        machine=machine,
        dialect=dialect,
        settings=settings or MillSettings(),
    )


def plan_part(
    part: PrismaticPart,
    *,
    material: str,
    stock_thickness_mm: float,
    tools: ToolTable,
    machine: MillProfile,
    dialect: str,
    settings: MillSettings,
) -> MachineProgram:
    """The program for a part already described (the planner's pure core)."""
    thickness = stock_thickness_mm
    if thickness < part.height_mm - 1e-6:
        raise Rejected(
            f"the {thickness:g} mm plate is thinner than the part ({part.height_mm:.2f} mm)"
        )
    minx, miny, maxx, maxy = part.bounds
    margin = settings.margin_mm
    stock = Stock(
        x_mm=round(maxx - minx + 2 * margin, 3),
        y_mm=round(maxy - miny + 2 * margin, 3),
        thickness_mm=thickness,
        material=material,
        margin_mm=margin,
    )
    travel_x, travel_y, travel_z = machine.travel_mm
    if stock.x_mm > travel_x or stock.y_mm > travel_y:
        raise Rejected(
            f"the {stock.x_mm:g} x {stock.y_mm:g} mm plate does not fit the mill's "
            f"{travel_x:g} x {travel_y:g} mm travel"
        )
    if thickness + settings.safe_z_mm + settings.breakthrough_mm > travel_z:
        raise Rejected(f"the {thickness:g} mm plate does not fit under the mill's Z travel")
    frame = _Frame(
        dx=margin - minx, dy=margin - miny, dz=-thickness - part.bottom_z_mm, thickness=thickness
    )
    planner = _Planner(part, frame, material, tools, machine, settings)
    planner.plan()
    return planner.program(stock=stock, dialect=dialect)


@dataclass(frozen=True)
class _Frame:
    """From the part's coordinates to the work offset's."""

    dx: float
    dy: float
    dz: float
    thickness: float

    def z(self, part_z: float) -> float:
        return part_z + self.dz

    def geometry(self, shape: BaseGeometry) -> BaseGeometry:
        return shapely.affinity.translate(shape, self.dx, self.dy)


@dataclass
class _Operation:
    """One operation for one tool; the planner orders them and inserts tool changes."""

    tool: Tool
    kind: str  # "facing" | "pocket" | "helical" | "drill" | "profile"
    label: str
    moves: list[Move] = field(default_factory=list)


class _Planner:
    def __init__(
        self,
        part: PrismaticPart,
        frame: _Frame,
        material: str,
        tools: ToolTable,
        machine: MillProfile,
        settings: MillSettings,
    ) -> None:
        self.part, self.frame, self.material = part, frame, material
        self.tools, self.machine, self.settings = tools, machine, settings
        self.operations: list[_Operation] = []
        self.warnings: list[str] = []
        self.feeds: dict[int, Feeds] = {}
        self.stepdowns: dict[int, float] = {}
        self.top = frame.z(part.top_z_mm)  # the part's top once faced: 0 or below
        self.sink_points: list[float] = []  # how far countersinks' points pass the plate
        self.safe = settings.safe_z_mm

    # --- choosing ---------------------------------------------------------------------------

    def feeds_of(self, tool: Tool) -> Feeds:
        if tool.number not in self.feeds:
            self.feeds[tool.number] = feeds_for(
                tool,
                self.material,
                max_rpm=self.machine.max_rpm,
                min_rpm=self.machine.min_rpm,
                max_feed_mm_min=self.machine.max_feed_mm_min,
            )
        return self.feeds[tool.number]

    def end_mill_for(self, region: Polygon, *, depth: float, what: str, width: float) -> Tool:
        """The widest end mill that clears the region (leaving no more than the rounded
        inside corners its radius implies) and reaches the depth."""

        def fits(tool: Tool) -> bool:
            if tool.diameter_mm >= width - 1e-6:
                return False
            centre = region.buffer(-tool.radius_mm)
            if centre.is_empty:
                return False
            reached = centre.buffer(tool.radius_mm, quad_segs=32)
            # A 90-degree inside corner leaves r(sqrt 2 - 1) of material at its tip.
            return bool(region.hausdorff_distance(reached) <= tool.radius_mm * 0.5 + 0.01)

        return self._widest(
            fits, depth=depth, what=f"{width:.2f} mm {what}", need=f"smaller than {width:.2f} mm"
        )

    def _widest(self, fits: Callable[[Tool], bool], *, depth: float, what: str, need: str) -> Tool:
        """The widest end mill that fits and reaches `depth`; refused naming what is missing."""
        mills = self.tools.end_mills
        if not mills:
            raise Rejected(f"the {what} needs an end mill; the tool table has none")
        fitting = [t for t in mills if fits(t)]
        if not fitting:
            raise Rejected(
                f"the {what} needs an end mill {need}; the smallest is {mills[0].diameter_mm:g} mm"
            )
        reaching = [t for t in fitting if t.flute_length_mm >= depth - 1e-9]
        if not reaching:
            best = max(fitting, key=lambda t: t.flute_length_mm)
            raise Rejected(
                f"the {what} is {depth:.1f} mm deep below the plate's top; the end mills that "
                f"fit it cut at most {best.flute_length_mm:g} mm ({best.name})"
            )
        return reaching[-1]

    # --- operations -------------------------------------------------------------------------

    def plan(self) -> None:
        self.plan_facing()
        for pocket in self.part.pockets:
            self.plan_pocket(pocket)
        for hole in self.part.holes:
            self.plan_hole(hole)
        if self.sink_points:
            self.warnings.append(
                f"{len(self.sink_points)} countersinks' points pass through their holes up to "
                f"{max(self.sink_points):.2f} mm into the spoilboard"
            )
        self.plan_profile()

    def plan_facing(self) -> None:
        if self.top > -1e-6:
            return
        if not self.settings.facing:
            raise Rejected(
                f"the plate is {-self.top:.2f} mm thicker than the part and facing is off"
            )
        mills = [t for t in self.tools.end_mills if t.flute_length_mm >= -self.top]
        if not mills:
            raise Rejected(f"facing {-self.top:.2f} mm needs an end mill; the table has none")
        tool = mills[-1]
        r = tool.radius_mm
        margin = self.settings.margin_mm
        # Everything the part's top spans, plus the tool's radius around it: the profile cuts
        # the rest of the plate free, so facing the margin beyond that is time wasted.
        outline = self.frame.geometry(self.part.outline.polygon)
        area = outline.buffer(min(margin, 2 * r) + r, join_style="mitre")
        operation = _Operation(tool, "facing", f"facing to Z{self.top:.2f}")
        feeds = self.feeds_of(tool)
        for z in _depths(0.0, self.top, tool.max_depth_per_pass_mm):
            operation.moves += self.zigzag(area, z, tool, feeds, stepover=tool.max_stepover)
        self.add(operation)

    def plan_pocket(self, pocket: Pocket) -> None:
        region = self.frame.geometry(pocket.region.polygon)
        top, floor = self.frame.z(pocket.top_z_mm), self.frame.z(pocket.floor_z_mm)
        if pocket.through:
            floor = -self.frame.thickness - self.settings.breakthrough_mm
        what = f"{pocket.kind} {_where(region)}"
        tool = self.end_mill_for(region, depth=-floor, what=what, width=pocket.width_mm)
        feeds = self.feeds_of(tool)
        r = tool.radius_mm
        finish = region.buffer(-r, quad_segs=64)
        clear = region.buffer(-(r + self.settings.finish_allowance_mm), quad_segs=64)
        corners = region.difference(finish.buffer(r, quad_segs=64)).area
        if corners > 0.01:
            self.warnings.append(
                f"the {what} keeps {r:g} mm radii in its inside corners ({tool.name})"
            )
        operation = _Operation(tool, "pocket", what)
        for z in _depths(top, floor, tool.max_depth_per_pass_mm):
            if not clear.is_empty:
                if self.settings.clearing == "zigzag":
                    operation.moves += self.zigzag(clear, z, tool, feeds, surface=top)
                else:
                    operation.moves += self.rings(_offset_rings(clear, tool), z, tool, feeds, top)
            operation.moves += self.rings(_boundaries(finish), z, tool, feeds, top)
        operation.moves.append(Rapid(z=self.safe))
        self.add(operation)

    def plan_hole(self, hole: Hole) -> None:
        x, y = hole.x_mm + self.frame.dx, hole.y_mm + self.frame.dy
        top, bottom = self.frame.z(hole.top_z_mm), self.frame.z(hole.bottom_z_mm)
        where = f"at x {x:.1f}, y {y:.1f}"
        diameter = hole.diameter_mm
        if hole.countersink_diameter_mm:
            # Cut after the hole (operations are ordered); the hole is cut from the top.
            self.plan_countersink(hole, x, y, top, where)
        drill = self.tools.drill_for(diameter, tolerance_mm=self.settings.drill_tolerance_mm)
        if drill is not None and hole.through:
            self.plan_drilling(drill, x, y, top, where, diameter)
            return
        mills = [t for t in self.tools.end_mills if t.diameter_mm < diameter - 0.1]
        if not mills:
            smallest = self.tools.smallest_end_mill()
            has = f"the smallest is {smallest.diameter_mm:g} mm" if smallest else "there is none"
            raise Rejected(
                f"the {diameter:g} mm hole {where} needs a {diameter:g} mm drill or an end mill "
                f"smaller than {diameter:g} mm; {has}"
            )
        floor = -self.frame.thickness - self.settings.breakthrough_mm if hole.through else bottom
        reaching = [t for t in mills if t.flute_length_mm >= top - floor - 1e-9]
        if not reaching:
            best = max(mills, key=lambda t: t.flute_length_mm)
            raise Rejected(
                f"the {diameter:g} mm hole {where} is {top - floor:.1f} mm deep; the end mills "
                f"that fit it cut at most {best.flute_length_mm:g} mm ({best.name})"
            )
        helix = [t for t in reaching if t.diameter_mm <= 0.8 * diameter]
        tool = helix[-1] if helix else reaching[-1]
        if diameter >= 2 * tool.diameter_mm:
            # A helix this wide would leave a core standing: clear it as a round pocket.
            disc = Point(hole.x_mm, hole.y_mm).buffer(diameter / 2, quad_segs=128)
            pocket = Pocket(
                region=Region.of(disc),
                top_z_mm=hole.top_z_mm,
                floor_z_mm=hole.bottom_z_mm,
                through=hole.through,
                width_mm=diameter,
            )
            self.plan_pocket(pocket)
            return
        if drill is not None:
            self.warnings.append(
                f"the blind {diameter:g} mm hole {where} is milled flat, not drilled "
                "(a drill would leave its cone)"
            )
        self.plan_helix(tool, x, y, diameter, top, floor, where)

    def plan_countersink(self, hole: Hole, x: float, y: float, top: float, where: str) -> None:
        """One plunge of a pointed countersink to the depth where it is as wide as the
        countersink: (D / 2) / tan(angle / 2) below the top."""
        diameter, angle = hole.countersink_diameter_mm, hole.countersink_angle_deg
        tool = self.tools.countersink_for(diameter, angle_deg=angle)
        if tool is None:
            sinks = self.tools.of_kind("countersink")
            has = (
                f"the widest is {max(t.diameter_mm for t in sinks):g} mm"
                if sinks
                else "the tool table has none"
            )
            raise Rejected(
                f"the {angle:g} deg countersink of {diameter:g} mm {where} needs a {angle:g} deg "
                f"countersink tool wider than {diameter:g} mm; {has}"
            )
        depth = (diameter / 2) / math.tan(math.radians(angle / 2))
        feeds = self.feeds_of(tool)
        move = Drill(
            x=x,
            y=y,
            z=round(top - depth, 4),
            r=top + self.settings.clearance_mm,
            clear=self.safe,
            feed=feeds.plunge_mm_min,
        )
        below = -self.frame.thickness - (top - depth)
        if below > self.settings.breakthrough_mm:
            self.sink_points.append(below)
        label = f"{diameter:g} mm countersink {where}"
        self.add(_Operation(tool, "countersink", label, [Rapid(x, y), move]))

    def plan_drilling(
        self, drill: Tool, x: float, y: float, top: float, where: str, diameter: float
    ) -> None:
        bottom = -self.frame.thickness - self.settings.breakthrough_mm - drill.tip_length_mm
        if drill.flute_length_mm < top - bottom:
            raise Rejected(
                f"the {diameter:g} mm hole {where} is {top - bottom:.1f} mm deep; {drill.name} "
                f"reaches {drill.flute_length_mm:g} mm"
            )
        feeds = self.feeds_of(drill)
        deep = top - bottom > self.settings.peck_below_diameters * drill.diameter_mm
        move = Drill(
            x=x,
            y=y,
            z=round(bottom, 4),
            r=top + self.settings.clearance_mm,
            clear=self.safe,
            feed=feeds.feed_mm_min,
            peck=drill.max_depth_per_pass_mm if deep else 0.0,
        )
        self.add(_Operation(drill, "drill", f"{diameter:g} mm hole {where}", [Rapid(x, y), move]))

    def plan_helix(
        self, tool: Tool, x: float, y: float, diameter: float, top: float, floor: float, where: str
    ) -> None:
        feeds = self.feeds_of(tool)
        radius = (diameter - tool.diameter_mm) / 2
        pitch = min(tool.max_depth_per_pass_mm, tool.diameter_mm / 2)
        turns = max(1, math.ceil((top - floor) / pitch - 1e-9))
        step = (top - floor) / turns
        start = (round(x + radius, 4), y)
        moves: list[Move] = [
            Rapid(z=self.safe),
            Rapid(*start),
            Rapid(z=top + self.settings.clearance_mm),
            Feed(None, None, top, feeds.plunge_mm_min),
        ]
        z = top
        for _ in range(turns):
            z -= step
            # Counter-clockwise inside a hole: climb milling with the spindle turning M3.
            moves.append(Arc(False, start[0], start[1], round(z, 4), -radius, 0, feeds.feed_mm_min))
        moves.append(Arc(False, start[0], start[1], round(floor, 4), -radius, 0, feeds.feed_mm_min))
        moves += [Feed(x, y, None, feeds.feed_mm_min), Rapid(z=self.safe)]
        self.add(_Operation(tool, "helical", f"{diameter:g} mm hole {where}", moves))

    def plan_profile(self) -> None:
        outline = self.frame.geometry(self.part.outline.polygon)
        floor = -self.frame.thickness - self.settings.breakthrough_mm
        # The outside's narrowest inward notch decides the tool: close the outline by r.
        tool = self._profile_tool(outline, depth=-floor)
        feeds = self.feeds_of(tool)
        r = tool.radius_mm
        path = outline.buffer(r, quad_segs=64)
        notches = path.buffer(-r, quad_segs=64).difference(outline).area
        if notches > 0.01:
            self.warnings.append(f"the outline's inside corners keep {r:g} mm radii ({tool.name})")
        ring = LinearRing(_polygons(path)[0].exterior.coords)
        if ring.is_ccw:
            ring = LinearRing(list(ring.coords)[::-1])  # clockwise outside: climb with M3
        tab_top = -self.frame.thickness + self.settings.tab_height_mm
        tabs = _tab_spans(ring, self.settings, tool) if self.settings.tab_height_mm > 0 else []
        operation = _Operation(tool, "profile", "outside profile")
        moves = operation.moves
        start = ring.coords[0]
        moves += [Rapid(z=self.safe), Rapid(start[0], start[1])]
        moves.append(Rapid(z=self.top + self.settings.clearance_mm))
        for z in _depths(self.top, floor, tool.max_depth_per_pass_mm):
            # Each pass ends where it began, in the slot the last one cut: plunge from there.
            moves.append(Feed(None, None, round(z, 4), feeds.plunge_mm_min))
            if z < tab_top - 1e-9 and tabs:
                moves += _with_tabs(ring, tabs, z, tab_top, feeds)
            else:
                moves += [Feed(px, py, None, feeds.feed_mm_min) for px, py in ring.coords[1:]]
        moves.append(Rapid(z=self.safe))
        if tabs:
            self.warnings.append(
                f"{len(tabs)} holding tabs {self.settings.tab_width_mm:g} mm wide and "
                f"{self.settings.tab_height_mm:g} mm high keep the part in the plate"
            )
        self.add(operation)

    def _profile_tool(self, outline: Polygon, *, depth: float) -> Tool:
        """The widest end mill that follows the outline's inward notches closely enough."""

        def fits(tool: Tool) -> bool:
            r = tool.radius_mm
            closed = outline.buffer(r, quad_segs=32).buffer(-r, quad_segs=32)
            return bool(closed.hausdorff_distance(outline) <= r * 0.5 + 0.01)

        return self._widest(
            fits, depth=depth, what="outside profile", need="narrow enough for its notches"
        )

    def add(self, operation: _Operation) -> None:
        self.operations.append(operation)

    # --- paths ------------------------------------------------------------------------------

    def rings(
        self,
        rings: list[LinearRing],
        z: float,
        tool: Tool,
        feeds: Feeds,
        surface: float,
    ) -> list[Move]:
        """Follow each ring at depth z: retract to the clearance plane between rings."""
        moves: list[Move] = []
        above = surface + self.settings.clearance_mm
        for ring in rings:
            coords = list(ring.coords)
            moves += [Rapid(z=above), Rapid(coords[0][0], coords[0][1])]
            moves.append(Feed(None, None, round(z, 4), feeds.plunge_mm_min))
            moves += [Feed(x, y, None, feeds.feed_mm_min) for x, y in coords[1:]]
        if rings:
            moves.append(Rapid(z=above))
        return moves

    def zigzag(
        self,
        area: BaseGeometry,
        z: float,
        tool: Tool,
        feeds: Feeds,
        *,
        stepover: float | None = None,
        surface: float = 0.0,
    ) -> list[Move]:
        """Lines along X across the area, alternating direction, `stepover` diameters apart;
        linked at depth when the link stays inside the area, else over the clearance plane."""
        step = (stepover or tool.max_stepover) * tool.diameter_mm
        minx, miny, maxx, maxy = area.bounds
        lines: list[tuple[tuple[float, float], tuple[float, float]]] = []
        count = max(1, math.ceil((maxy - miny) / step))
        for k in range(count + 1):
            y = miny + (maxy - miny) * k / count
            cut = area.intersection(LineString([(minx - 1, y), (maxx + 1, y)]))
            row = sorted(
                (min(s.coords[0][0], s.coords[-1][0]), max(s.coords[0][0], s.coords[-1][0]))
                for s in _lines(cut)
            )
            if k % 2:
                lines += [((x1, y), (x0, y)) for x0, x1 in reversed(row)]
            else:
                lines += [((x0, y), (x1, y)) for x0, x1 in row]
        moves: list[Move] = []
        above = surface + self.settings.clearance_mm
        inside = area.buffer(1e-6)
        at: tuple[float, float] | None = None
        for start, end in lines:
            if at is None or not inside.covers(LineString([at, start])):
                moves += [Rapid(z=above), Rapid(*start), Feed(None, None, z, feeds.plunge_mm_min)]
            else:
                moves.append(Feed(start[0], start[1], None, feeds.feed_mm_min))
            moves.append(Feed(end[0], end[1], None, feeds.feed_mm_min))
            at = end
        moves.append(Rapid(z=above))
        return moves

    # --- the program ------------------------------------------------------------------------

    def ordered(self) -> list[_Operation]:
        """Facing first, then per end mill (widest first) its pockets and helices, then the
        drills, then the profile: fewest tool changes with the part held to the end."""
        facing = [o for o in self.operations if o.kind == "facing"]
        milled = [o for o in self.operations if o.kind in ("pocket", "helical")]
        drilled = [o for o in self.operations if o.kind in ("drill", "countersink")]
        profile = [o for o in self.operations if o.kind == "profile"]
        first = facing[0].tool.number if facing else None
        milled.sort(key=lambda o: (o.tool.number != first, -o.tool.diameter_mm, o.tool.number))
        # Countersinks after the holes they sit on.
        drilled.sort(key=lambda o: (o.kind == "countersink", o.tool.diameter_mm, o.tool.number))
        return facing + milled + drilled + profile

    def program(self, *, stock: Stock, dialect: str) -> MachineProgram:
        moves: list[Move] = []
        uses: dict[int, list[str]] = {}
        current: int | None = None
        for operation in self.ordered():
            tool = operation.tool
            if tool.number != current:
                feeds = self.feeds_of(tool)
                moves.append(ToolChange(tool.number, tool.name, feeds.spindle_rpm, self.safe))
                current = tool.number
            moves.append(Comment(f"{operation.kind}: {operation.label}, T{tool.number}"))
            moves += operation.moves
            kinds = uses.setdefault(tool.number, [])
            if operation.kind not in kinds:
                kinds.append(operation.kind)
        by_number = {t.number: t for t in self.tools.tools}
        tool_uses = tuple(
            ToolUse(
                number=number,
                name=by_number[number].name,
                kind=by_number[number].kind,
                diameter_mm=by_number[number].diameter_mm,
                operations=tuple(kinds),
                spindle_rpm=self.feeds_of(by_number[number]).spindle_rpm,
                feed_mm_min=self.feeds_of(by_number[number]).feed_mm_min,
                plunge_mm_min=self.feeds_of(by_number[number]).plunge_mm_min,
                stepdown_mm=by_number[number].max_depth_per_pass_mm,
            )
            for number, kinds in uses.items()
        )
        cut, rapid, seconds = estimate(moves, machine=self.machine, start_z=self.safe)
        header = [
            f"{ENGINE}",
            f"machine {self.machine.machine_model}, dialect {dialect}",
            f"material {stock.material}, plate {stock.x_mm:g} x {stock.y_mm:g} x "
            f"{stock.thickness_mm:g} mm",
            "G54 origin: plate front-left corner, Z0 on its top face",
            f"estimated time {seconds / 60:.1f} min (estimate: no accelerations)",
            *(f"T{u.number} {u.name}: {u.spindle_rpm} rpm, F{u.feed_mm_min:g}" for u in tool_uses),
        ]
        gcode = posts.post(moves, dialect=dialect, header=header, safe_z=self.safe)
        return MachineProgram(
            process="cnc_mill",
            gcode=gcode,
            dialect=dialect,
            engine=ENGINE,
            estimated_time_s=round(seconds, 1),
            stock=stock,
            tools=tool_uses,
            work_offset="G54",
            setup_steps=self.setup_steps(stock, tool_uses, dialect),
            warnings=tuple(self.warnings),
            cut_length_mm=round(cut, 1),
            rapid_length_mm=round(rapid, 1),
        )

    def setup_steps(self, stock: Stock, uses: tuple[ToolUse, ...], dialect: str) -> tuple[str, ...]:
        margin = stock.margin_mm
        steps = [
            f"Cut a {stock.x_mm:g} x {stock.y_mm:g} mm blank from {stock.thickness_mm:g} mm "
            f"{stock.material} plate.",
            "Fix it flat on a sacrificial spoilboard (through cuts go "
            f"{self.settings.breakthrough_mm:g} mm into it, drills their tip deeper): clamps or "
            f"screws within {margin / 2:g} mm of the plate's edges, clear of the profile.",
            "Set the work offset G54: X0 Y0 on the plate's front-left corner, Z0 on its top face.",
        ]
        if dialect == "grbl":
            steps.append(
                "At each M0 pause, load the tool the comment names, touch off Z on the plate's "
                "top, then resume."
            )
        else:
            steps.append(
                "Load the tools in the machine's tool table: "
                + ", ".join(f"T{u.number} {u.name}" for u in uses)
                + "."
            )
        if any("profile" in u.operations for u in uses) and self.settings.tab_count:
            steps.append(
                f"After the program, cut the {self.settings.tab_count} holding tabs and file "
                "their stubs flush."
            )
        return tuple(steps)


# --- geometry helpers -----------------------------------------------------------------------


def _depths(top: float, floor: float, max_step: float) -> list[float]:
    """Equal step-downs from `top` to `floor`, none deeper than `max_step`."""
    depth = top - floor
    if depth <= 1e-9:
        return []
    count = max(1, math.ceil(depth / max_step - 1e-9))
    return [round(top - depth * (k + 1) / count, 4) for k in range(count)]


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    if isinstance(geometry, MultiPolygon):
        return [p for p in geometry.geoms if not p.is_empty]
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]


def _lines(geometry: BaseGeometry) -> list[LineString]:
    if isinstance(geometry, LineString):
        return [] if geometry.is_empty or geometry.length < 1e-6 else [geometry]
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, LineString) and g.length]


def _boundaries(area: BaseGeometry) -> list[LinearRing]:
    """Each polygon's outer ring counter-clockwise and its islands clockwise: climb milling
    along pocket walls with the spindle turning M3."""
    rings = []
    for polygon in _polygons(area):
        oriented = shapely.geometry.polygon.orient(polygon, 1.0)
        rings.append(LinearRing(oriented.exterior.coords))
        rings.extend(LinearRing(inner.coords) for inner in oriented.interiors)
    return rings


def _offset_rings(area: BaseGeometry, tool: Tool) -> list[LinearRing]:
    """Rings from the area's boundary inwards, `max_stepover` apart, cut innermost first."""
    step = tool.max_stepover * tool.diameter_mm
    rings: list[LinearRing] = []
    current = area
    while not current.is_empty:
        rings.extend(_boundaries(current))
        current = current.buffer(-step, quad_segs=32)
    return rings[::-1]


def _where(region: BaseGeometry) -> str:
    point = region.representative_point()
    return f"at x {point.x:.1f}, y {point.y:.1f}"


def _tab_spans(ring: LinearRing, settings: MillSettings, tool: Tool) -> list[tuple[float, float]]:
    """Where along the profile's path (distances from its start) the tabs stand: evenly
    spaced, each as long as the tab plus the tool's diameter so `tab_width_mm` of material
    stays between the cuts on either side."""
    length = ring.length
    count = settings.tab_count
    span = settings.tab_width_mm + tool.diameter_mm
    if count == 0 or span * count > length / 2:
        return []
    return [
        (length * (k + 0.5) / count - span / 2, length * (k + 0.5) / count + span / 2)
        for k in range(count)
    ]


def _with_tabs(
    ring: LinearRing, tabs: list[tuple[float, float]], z: float, tab_top: float, feeds: Feeds
) -> list[Move]:
    """One pass around the ring at depth z, rising to the tab's top over each tab."""
    line = LineString(ring.coords)
    moves: list[Move] = []
    at = 0.0
    for start, end in tabs:
        moves += [
            Feed(x, y, None, feeds.feed_mm_min) for x, y in substring(line, at, start).coords[1:]
        ]
        moves.append(Feed(None, None, round(tab_top, 4), feeds.plunge_mm_min))
        moves += [
            Feed(x, y, None, feeds.feed_mm_min) for x, y in substring(line, start, end).coords[1:]
        ]
        moves.append(Feed(None, None, round(z, 4), feeds.plunge_mm_min))
        at = end
    moves += [
        Feed(x, y, None, feeds.feed_mm_min) for x, y in substring(line, at, line.length).coords[1:]
    ]
    return moves


# --- the estimate ---------------------------------------------------------------------------


def estimate(
    moves: list[Move], *, machine: MillProfile, start_z: float
) -> tuple[float, float, float]:
    """(cut length, rapid length, seconds): feed moves at their feed, rapids at the rapid
    rate, plus tool changes and spindle start-ups. No accelerations: an estimate."""
    x, y, z = 0.0, 0.0, start_z
    cut = rapid = seconds = 0.0
    changes = 0
    flat: list[Move] = []
    for move in moves:
        if isinstance(move, Drill):
            flat.extend(posts.expand_drill(move))
        else:
            flat.append(move)
    for move in flat:
        if isinstance(move, ToolChange):
            changes += 1
            distance = abs(move.safe_z - z)
            rapid += distance
            seconds += distance / machine.rapid_mm_min * 60
            z = move.safe_z
        elif isinstance(move, Rapid | Feed):
            nx = x if move.x is None else move.x
            ny = y if move.y is None else move.y
            nz = z if move.z is None else move.z
            distance = math.dist((x, y, z), (nx, ny, nz))
            if isinstance(move, Rapid):
                rapid += distance
                seconds += distance / machine.rapid_mm_min * 60
            else:
                cut += distance
                seconds += distance / move.feed * 60
            x, y, z = nx, ny, nz
        elif isinstance(move, Arc):
            distance = arc_length(x, y, z, move)
            cut += distance
            seconds += distance / move.feed * 60
            x, y, z = move.x, move.y, move.z
    # The first tool is loaded before the program starts: no change time for it.
    seconds += max(0, changes - 1) * machine.tool_change_s + changes * posts.SPINDLE_DWELL_S
    return cut, rapid, seconds


def arc_length(x: float, y: float, z: float, arc: Arc) -> float:
    """Length of a (helical) arc from (x, y, z); a full circle when it ends where it starts."""
    cx, cy = x + arc.i, y + arc.j
    radius = math.hypot(arc.i, arc.j)
    a0 = math.atan2(y - cy, x - cx)
    a1 = math.atan2(arc.y - cy, arc.x - cx)
    sweep = (a0 - a1) if arc.clockwise else (a1 - a0)
    sweep %= 2 * math.pi
    if sweep < 1e-9:
        sweep = 2 * math.pi
    return math.hypot(radius * sweep, arc.z - z)


def plate_thickness_for(*, height_mm: float, thicknesses_mm: list[float]) -> float:
    """The thinnest plate of the material (Material.sheet_thicknesses_mm) that holds a part
    `height_mm` tall: the least facing. Rejected when none does."""
    fitting = sorted(t for t in thicknesses_mm if t >= height_mm - 1e-6)
    if not fitting:
        raise Rejected(f"no plate of the material is {height_mm:.2f} mm thick or more")
    return float(fitting[0])
