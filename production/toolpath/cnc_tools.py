"""The mill's tools and the cutting data that gives each tool its speed and feed in a material.

A tool table is what a machine holds (flat end mills and twist drills, each with its T number);
cutting data is what the shop knows about a material and a kind of tool: the surface speed
(m/min) and the chip load per tooth, which grows with the tool's diameter. From the two,
`feeds_for` computes the spindle speed and the feed:

    rpm  = vc * 1000 / (pi * d)
    feed = rpm * flutes * chip_load

A material with no cutting data for a kind of tool has no feeds: `feeds_for` raises
`NoCuttingData` rather than guess (a guessed feed breaks tools or melts acrylic).
"""

import math
from dataclasses import dataclass

from microfactory.errors import Rejected

TOOL_KINDS = ("flat_end_mill", "drill", "countersink")


@dataclass(frozen=True)
class Tool:
    """One tool in the machine's table, in millimetres."""

    number: int  # T number
    name: str
    kind: str  # "flat_end_mill" | "drill" | "countersink"
    diameter_mm: float
    flutes: int
    flute_length_mm: float  # deepest the tool can reach below the surface it enters
    max_depth_per_pass_mm: float  # step-down of one pass (end mills) or one peck (drills)
    max_stepover: float = 0.45  # of the diameter, when clearing a pocket (end mills)
    point_angle_deg: float = 118.0  # drills' tip (added to a through hole's depth), countersinks

    def __post_init__(self) -> None:
        # A bad tool table is our configuration error, not an unmakeable part: crash loudly.
        if self.kind not in TOOL_KINDS:
            raise ValueError(f"unknown tool kind {self.kind!r}; expected one of {TOOL_KINDS}")
        for name in ("diameter_mm", "flute_length_mm", "max_depth_per_pass_mm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"tool T{self.number}: {name} must be positive")
        if self.flutes < 1 or self.number < 1:
            raise ValueError(f"tool T{self.number}: number and flutes must be at least 1")
        if not 0 < self.max_stepover <= 1:
            raise ValueError(f"tool T{self.number}: max_stepover must be within (0, 1]")

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2

    @property
    def tip_length_mm(self) -> float:
        """How far a drill's cone reaches below the depth where its full diameter cuts."""
        if self.kind != "drill":
            return 0.0
        return self.radius_mm / math.tan(math.radians(self.point_angle_deg / 2))


@dataclass(frozen=True)
class ToolTable:
    tools: tuple[Tool, ...]

    def __post_init__(self) -> None:
        numbers = [tool.number for tool in self.tools]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"tool numbers must be unique, not {sorted(numbers)}")

    def of_kind(self, kind: str) -> tuple[Tool, ...]:
        """The tools of one kind, smallest diameter first."""
        return tuple(sorted((t for t in self.tools if t.kind == kind), key=_size))

    @property
    def end_mills(self) -> tuple[Tool, ...]:
        return self.of_kind("flat_end_mill")

    @property
    def drills(self) -> tuple[Tool, ...]:
        return self.of_kind("drill")

    def countersink_for(self, diameter_mm: float, *, angle_deg: float) -> Tool | None:
        """The narrowest countersink of the angle wider than the countersink to cut."""
        wide = [
            t
            for t in self.of_kind("countersink")
            if abs(t.point_angle_deg - angle_deg) < 0.5 and t.diameter_mm > diameter_mm + 0.2
        ]
        return wide[0] if wide else None

    def smallest_end_mill(self) -> Tool | None:
        mills = self.end_mills
        return mills[0] if mills else None

    def largest_end_mill_within(self, diameter_mm: float) -> Tool | None:
        """The widest end mill no wider than `diameter_mm` (with a hair of rounding)."""
        fitting = [t for t in self.end_mills if t.diameter_mm <= diameter_mm + 1e-6]
        return fitting[-1] if fitting else None

    def drill_for(self, diameter_mm: float, *, tolerance_mm: float) -> Tool | None:
        """The drill whose diameter matches the hole's within the tolerance, closest first."""
        close = [t for t in self.drills if abs(t.diameter_mm - diameter_mm) <= tolerance_mm]
        return min(close, key=lambda t: abs(t.diameter_mm - diameter_mm)) if close else None

    def to_json(self) -> list[dict[str, object]]:
        return [
            {
                "number": t.number,
                "name": t.name,
                "kind": t.kind,
                "diameter_mm": t.diameter_mm,
                "flutes": t.flutes,
                "flute_length_mm": t.flute_length_mm,
                "max_depth_per_pass_mm": t.max_depth_per_pass_mm,
                "max_stepover": t.max_stepover,
                "point_angle_deg": t.point_angle_deg,
            }
            for t in self.tools
        ]

    @classmethod
    def from_json(cls, rows: list[dict[str, object]]) -> "ToolTable":
        """A machine's stored tool table (a JSON list of the fields of Tool)."""
        tools = []
        for row in rows:
            fields = dict(row)
            tools.append(
                Tool(
                    number=int(str(fields.pop("number"))),
                    name=str(fields.pop("name")),
                    kind=str(fields.pop("kind")),
                    flutes=int(str(fields.pop("flutes"))),
                    **{name: float(str(value)) for name, value in fields.items()},
                )
            )
        return cls(tools=tuple(tools))


def _size(tool: Tool) -> tuple[float, int]:
    return (tool.diameter_mm, tool.number)


def _end_mill(number: int, diameter: float, flutes: int, flute_length: float) -> Tool:
    return Tool(
        number=number,
        name=f"{diameter:g} mm {flutes}-flute flat end mill",
        kind="flat_end_mill",
        diameter_mm=diameter,
        flutes=flutes,
        flute_length_mm=flute_length,
        # Half the diameter per pass: a small machine's rule for slotting aluminium.
        max_depth_per_pass_mm=diameter / 2,
    )


def _drill(number: int, diameter: float, flute_length: float) -> Tool:
    return Tool(
        number=number,
        name=f"{diameter:g} mm HSS twist drill",
        kind="drill",
        diameter_mm=diameter,
        flutes=2,
        flute_length_mm=flute_length,
        max_depth_per_pass_mm=diameter,  # peck depth: one diameter, then clear the chips
    )


def _countersink(number: int, diameter: float, angle: float) -> Tool:
    return Tool(
        number=number,
        name=f"{diameter:g} mm {angle:g} deg countersink",
        kind="countersink",
        diameter_mm=diameter,
        flutes=3,
        flute_length_mm=diameter / 2,
        max_depth_per_pass_mm=diameter / 2,  # one plunge: a countersink cuts in one go
        point_angle_deg=angle,
    )


# A compact mill's carousel (or the operator's drawer): carbide end mills, HSS drills and a
# countersink for metric flat-head screws.
DEFAULT_TOOL_TABLE = ToolTable(
    tools=(
        _end_mill(1, 6.0, 2, 20.0),
        _end_mill(2, 3.0, 2, 12.0),
        _end_mill(3, 2.0, 2, 8.0),
        _end_mill(4, 1.0, 2, 3.0),
        _drill(10, 2.5, 25.0),  # M3 tapping size
        _drill(11, 3.0, 30.0),
        _drill(12, 4.0, 40.0),
        _drill(13, 5.0, 50.0),
        _drill(14, 6.0, 55.0),
        _drill(15, 8.0, 60.0),
        _countersink(21, 20.5, 90.0),
    )
)


@dataclass(frozen=True)
class CuttingData:
    """What a material asks of one kind of tool."""

    surface_speed_m_min: float  # vc
    chip_load_per_mm: float  # chip load per tooth per millimetre of diameter (mm/mm)
    chip_load_min_mm: float  # floor: below it the edge rubs instead of cutting
    chip_load_max_mm: float  # ceiling: above it the tool breaks
    plunge_fraction: float = 0.3  # of the feed, when entering the material straight down


# Carbide end mills, HSS drills; conservative values for a hobby-sized machine's rigidity.
CUTTING_DATA: dict[tuple[str, str], CuttingData] = {
    ("aluminium-6061", "flat_end_mill"): CuttingData(150.0, 0.008, 0.008, 0.05),
    ("aluminium-6061", "drill"): CuttingData(60.0, 0.01, 0.015, 0.08, plunge_fraction=1.0),
    ("acrylic", "flat_end_mill"): CuttingData(250.0, 0.012, 0.02, 0.1),
    ("acrylic", "drill"): CuttingData(40.0, 0.008, 0.015, 0.06, plunge_fraction=1.0),
    ("hdpe", "flat_end_mill"): CuttingData(300.0, 0.015, 0.03, 0.15),
    ("hdpe", "drill"): CuttingData(50.0, 0.01, 0.015, 0.08, plunge_fraction=1.0),
    # Carbide countersinks, fed gently: a chattering countersink leaves a polygon, not a cone.
    ("aluminium-6061", "countersink"): CuttingData(80.0, 0.002, 0.02, 0.05, plunge_fraction=1.0),
    ("acrylic", "countersink"): CuttingData(80.0, 0.002, 0.02, 0.05, plunge_fraction=1.0),
    ("hdpe", "countersink"): CuttingData(100.0, 0.002, 0.02, 0.05, plunge_fraction=1.0),
}


class NoCuttingData(Rejected):
    """The material has no cutting data for the tool's kind: refused, never a default feed."""


@dataclass(frozen=True)
class Feeds:
    spindle_rpm: int
    feed_mm_min: float
    plunge_mm_min: float
    chip_load_mm: float


def feeds_for(
    tool: Tool,
    material_slug: str,
    *,
    max_rpm: float = math.inf,
    min_rpm: float = 0.0,
    max_feed_mm_min: float = math.inf,
) -> Feeds:
    """The spindle speed and feeds of `tool` in `material_slug`, within the machine's limits.

    A spindle that cannot turn fast enough keeps the chip load and lowers the feed with the
    rpm (the surface speed is then lower than asked, which is safe); one that cannot turn
    slowly enough is refused: the edge would run faster than the material allows.
    """
    data = CUTTING_DATA.get((material_slug, tool.kind))
    if data is None:
        kinds = sorted(kind for slug, kind in CUTTING_DATA if slug == material_slug)
        known = f"it has data for {', '.join(kinds)} only" if kinds else "it is not in the table"
        raise NoCuttingData(
            f"no cutting data for a {tool.kind.replace('_', ' ')} in {material_slug} "
            f"({known}): feeds are not guessed"
        )
    rpm = data.surface_speed_m_min * 1000 / (math.pi * tool.diameter_mm)
    rpm = min(rpm, max_rpm)
    if rpm < min_rpm:
        raise NoCuttingData(
            f"{tool.name} in {material_slug} needs {rpm:.0f} rpm; the spindle's slowest is "
            f"{min_rpm:.0f} rpm"
        )
    chip = tool.diameter_mm * data.chip_load_per_mm
    chip = min(max(chip, data.chip_load_min_mm), data.chip_load_max_mm)
    # A drill's lips are its "flutes": its feed per revolution is flutes x chip load too.
    feed = rpm * tool.flutes * chip
    feed = min(feed, max_feed_mm_min)
    plunge = feed * data.plunge_fraction
    return Feeds(
        spindle_rpm=round(rpm),
        feed_mm_min=round(feed, 1),
        plunge_mm_min=round(plunge, 1),
        chip_load_mm=chip,
    )


DIALECTS = ("grbl", "linuxcnc")


@dataclass(frozen=True)
class MillProfile:
    """The mill a program is planned for: its envelope, spindle and motion limits."""

    machine_model: str  # written into the program's header comments
    travel_mm: tuple[float, float, float]  # x, y, z envelope from the work offset's corner
    max_rpm: float = 24000
    min_rpm: float = 1000  # a VFD spindle; a router that cannot turn slower refuses drills
    max_feed_mm_min: float = 2500
    rapid_mm_min: float = 3000
    acceleration_mm_s2: float = 300  # for the time estimate's trapezoidal-velocity model
    tool_change_s: float = 60  # manual change (GRBL: M0 pause) and touch-off
    dialect: str = "grbl"  # the post-processor it takes: "grbl" | "linuxcnc"

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {self.dialect!r}; expected one of {DIALECTS}")
        for name in ("max_rpm", "max_feed_mm_min", "rapid_mm_min", "acceleration_mm_s2"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if min(self.travel_mm) <= 0:
            raise ValueError("travel_mm must be positive on every axis")
