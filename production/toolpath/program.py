"""What a CNC mill's or a laser cutter's program is, whoever planned it.

The FDM engines return a Toolpath (planner.py); milling (milling.py) and laser cutting
(laser.py) return a MachineProgram: the G-code and what the shop floor and the quote need to
know about it (tools, stock, work offset, set-up steps, time). Verification (cnc_verify.py,
laser_verify.py) reads the G-code itself, not these numbers.
"""

from dataclasses import dataclass, field

# A laser cuts a part from the sheet of its own thickness: the part may be this much thinner
# than the sheet (sheet tolerance, STL rounding), never thicker (a beam cannot leave more than
# the sheet). The DFM check, the planner and the route quote all use this one rule.
SHEET_THINNER_MM = 0.1
SHEET_THICKER_MM = 0.01


def sheet_matches(sheet_mm: float, part_mm: float) -> bool:
    """A part this thick is cut from a sheet that thick."""
    return sheet_mm - SHEET_THINNER_MM <= part_mm <= sheet_mm + SHEET_THICKER_MM


@dataclass(frozen=True)
class Stock:
    """The blank the part is cut from: a plate of the material, in millimetres.

    The work offset's origin (G54 X0 Y0 Z0) is the stock's front-left corner on its top face:
    the part lies at x, y >= margin and z <= 0.
    """

    x_mm: float
    y_mm: float
    thickness_mm: float
    material: str  # Material.slug
    margin_mm: float = 0.0


@dataclass(frozen=True)
class ToolUse:
    """One tool a program calls, in the order it is first used."""

    number: int  # T number in the program
    name: str  # "6 mm 2-flute flat end mill", "CO2 laser 0.15 mm kerf"
    kind: str  # "flat_end_mill" | "drill" | "laser" | ...
    diameter_mm: float
    operations: tuple[str, ...]  # "facing", "pocket", "profile", "drill", "helical", "cut", ...
    spindle_rpm: int = 0  # 0 for a laser
    feed_mm_min: float = 0.0
    plunge_mm_min: float = 0.0
    stepdown_mm: float = 0.0
    power_percent: float = 0.0  # lasers only


@dataclass(frozen=True)
class MachineProgram:
    """A milling or laser program, ready to send, with its facts for the traveler and quote."""

    process: str  # "cnc_mill" | "laser"
    gcode: bytes = field(repr=False)
    dialect: str  # "grbl" | "linuxcnc"
    engine: str  # name and version of the planner: part of the cache key
    estimated_time_s: float
    stock: Stock
    tools: tuple[ToolUse, ...]
    work_offset: str = "G54"
    setup_steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    cut_length_mm: float = 0.0
    rapid_length_mm: float = 0.0
