"""The demo catalog: parametric spare parts a maintenance team orders, with their schemas.

Each part is a CadQuery script beside this file (cqgi convention: top-level parameter
assignments, then show_object). Its schema names exactly the script's parameters, with
the script's defaults. Rules are Python expressions over parameter names that must hold
for a valid configuration; the schema's min and max bound each value alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DemoPart:
    slug: str
    name: str
    category: str
    description: str
    script: str
    schema: list[dict[str, Any]]
    rules: list[dict[str, str]]
    process: str
    materials: list[str]


def _length(
    name: str, label: str, *, default: float, min: float, max: float, help: str, step: float = 0.1
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "length",
        "unit": "mm",
        "default": default,
        "min": min,
        "max": max,
        "step": step,
        "help": help,
    }


def _integer(
    name: str, label: str, *, default: int, min: int, max: int, help: str
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "integer",
        "default": default,
        "min": min,
        "max": max,
        "step": 1,
        "help": help,
    }


def _choice(
    name: str, label: str, *, default: str, choices: list[str], help: str
) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "choice",
        "default": default,
        "choices": choices,
        "help": help,
    }


def _boolean(name: str, label: str, *, default: bool, help: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "boolean", "default": default, "help": help}


def _rule(rule: str, message: str) -> dict[str, str]:
    return {"rule": rule, "message": message}


def _script(slug: str) -> str:
    return (PARTS_DIR / f"{slug}.py").read_text(encoding="utf-8")


# Every part fits a 200 x 200 x 200 mm FDM build volume at any value its schema allows.
# Formatting is off below so that each parameter stays one short block, like a table row.
# fmt: off
DEMO_PARTS: list[DemoPart] = [
    DemoPart(
        slug="shaft_collar",
        name="Shaft collar",
        category="Shafts & bearings",
        description=(
            "One-piece set-screw collar that stops a shaft or a bearing from sliding. "
            "The radial hole is drilled at tap size: tap it, or press in a heat-set insert."
        ),
        script=_script("shaft_collar"),
        schema=[
            _length(
                "bore_d", "Bore diameter", default=25.0, min=3, max=80,
                help="Shaft diameter. Printed at nominal size: ream it if the fit is tight.",
            ),
            _length(
                "outer_d", "Outer diameter", default=45.0, min=11, max=120,
                help="Overall diameter of the collar.",
            ),
            _length(
                "width", "Width", default=14.0, min=6, max=40,
                help="Length of the collar along the shaft.",
            ),
            _length(
                "screw_hole_d", "Set-screw hole diameter", default=5.0, min=2.5, max=8.5,
                help="Tap drill size: 3.3 for M4, 4.2 for M5, 5.0 for M6, 6.8 for M8.",
            ),
        ],
        rules=[
            _rule(
                "outer_d - bore_d >= 8",
                "the wall must be at least 4 mm thick: make outer_d at least bore_d + 8 mm",
            ),
            _rule(
                "screw_hole_d <= bore_d",
                "the set screw cannot be wider than the shaft: make screw_hole_d at most bore_d",
            ),
            _rule(
                "screw_hole_d <= width - 4",
                "the set-screw hole needs 2 mm of collar on each side: width >= screw_hole_d + 4",
            ),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
    ),
    DemoPart(
        slug="spacer",
        name="Spacer / bushing",
        category="Spacers & bushings",
        description=(
            "Round spacer, sleeve or plain bushing, with lead-in chamfers and an optional "
            "flange that takes axial load."
        ),
        script=_script("spacer"),
        schema=[
            _length(
                "inner_d", "Inner diameter", default=8.0, min=2, max=100,
                help="Bore: the shaft or screw diameter plus the clearance you want.",
            ),
            _length(
                "outer_d", "Outer diameter", default=14.0, min=5, max=150,
                help="Outside diameter of the tube.",
            ),
            _length(
                "length", "Length", default=12.0, min=1, max=150,
                help="Overall length, flange included.",
            ),
            _length(
                "chamfer", "Chamfer", default=0.5, min=0, max=1.5,
                help="45° chamfer on every edge; 0 for sharp edges.",
            ),
            _boolean("flanged", "Flange", default=False, help="Add a flange at one end."),
            _length(
                "flange_d", "Flange diameter", default=22.0, min=9, max=190,
                help="Used only with a flange.",
            ),
            _length(
                "flange_t", "Flange thickness", default=2.0, min=1, max=20,
                help="Used only with a flange.",
            ),
        ],
        rules=[
            _rule(
                "outer_d - inner_d >= 2.4",
                "the wall must be at least 1.2 mm thick: make outer_d at least inner_d + 2.4 mm",
            ),
            _rule(
                "4 * chamfer <= outer_d - inner_d",
                "the chamfer can be at most half the wall thickness",
            ),
            _rule("4 * chamfer <= length", "the chamfer can be at most a quarter of the length"),
            _rule(
                "not flanged or flange_d >= outer_d + 4",
                "the flange must stand out at least 2 mm: make flange_d at least outer_d + 4 mm",
            ),
            _rule(
                "not flanged or 2 * chamfer <= flange_t",
                "the chamfer can be at most half the flange thickness",
            ),
            _rule(
                "not flanged or length >= flange_t + chamfer + 1",
                "the bushing must stand at least chamfer + 1 mm above its flange",
            ),
        ],
        process="fdm",
        materials=["pla", "petg", "abs", "pa12-cf"],
    ),
    DemoPart(
        slug="mounting_bracket",
        name="Mounting bracket",
        category="Brackets & mounts",
        description=(
            "L-bracket of even thickness with a rounded bend and a row of screw holes in "
            "each leg, for sensors, guards, cable ducts and small motors."
        ),
        script=_script("mounting_bracket"),
        schema=[
            _length(
                "width", "Width", default=40.0, min=10, max=180,
                help="Width of both legs, along the bend.",
            ),
            _length(
                "leg_a", "Base leg length", default=50.0, min=15, max=180,
                help="Outside length of the base leg.",
            ),
            _length(
                "leg_b", "Upright leg length", default=50.0, min=15, max=180,
                help="Outside length of the upright leg.",
            ),
            _length(
                "thickness", "Thickness", default=5.0, min=2, max=12,
                help="Plate thickness of both legs.",
            ),
            _length(
                "hole_d", "Hole diameter", default=5.5, min=2, max=13,
                help="Clearance hole: 4.5 for M4, 5.5 for M5, 6.6 for M6, 9 for M8.",
            ),
            _integer(
                "hole_count", "Holes per leg", default=2, min=1, max=6,
                help="Holes evenly spaced across the width.",
            ),
        ],
        rules=[
            _rule(
                "leg_a - 2 * thickness >= hole_d + 4",
                "the base leg is too short for its holes: leg_a >= 2 x thickness + hole_d + 4",
            ),
            _rule(
                "leg_b - 2 * thickness >= hole_d + 4",
                "the upright leg is too short for its holes: leg_b >= 2 x thickness + hole_d + 4",
            ),
            _rule(
                "width >= hole_count * (hole_d + 4)",
                "the holes do not fit across the width: each needs hole_d + 4 mm",
            ),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
    ),
    DemoPart(
        slug="knob",
        name="Clamping knob",
        category="Knobs & handles",
        description=(
            "Fluted clamping knob with a hex pocket for a nut or a bolt head: replaces "
            "lost or broken knobs on fixtures, guards and adjusting screws."
        ),
        script=_script("knob"),
        schema=[
            _choice(
                "thread", "Thread", default="M6", choices=["M4", "M5", "M6", "M8", "M10"],
                help="Metric thread of the nut or bolt.",
            ),
            _length(
                "knob_d", "Knob diameter", default=35.0, min=20, max=80,
                help="Diameter across the grip.",
            ),
            _length(
                "height", "Height", default=16.0, min=10, max=40,
                help="Overall height of the knob.",
            ),
            _integer(
                "flutes", "Flutes", default=6, min=4, max=12,
                help="Number of finger grooves around the rim.",
            ),
            _boolean(
                "through_hole", "Through hole", default=True,
                help="Off: the top stays closed, for a threaded stud.",
            ),
        ],
        rules=[
            _rule("thread != 'M8' or knob_d >= 25", "an M8 knob must be at least 25 mm across"),
            _rule("thread != 'M10' or knob_d >= 30", "an M10 knob must be at least 30 mm across"),
            _rule("thread != 'M8' or height >= 11", "an M8 knob must be at least 11 mm high"),
            _rule("thread != 'M10' or height >= 12", "an M10 knob must be at least 12 mm high"),
        ],
        process="fdm",
        materials=["pla", "petg", "abs"],
    ),
]
# fmt: on
