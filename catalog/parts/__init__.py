"""The demo catalog: parametric spare parts a maintenance team orders, with their schemas.

Each part is a CadQuery script beside this file (cqgi convention: top-level parameter
assignments, then show_object). Its schema names exactly the script's parameters, with
the script's defaults. Rules are Python expressions over parameter names that must hold
for a valid configuration; the schema's min and max bound each value alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    tags: str = ""
    work_instructions: list[str] = field(default_factory=list)
    qc_checks: list[dict[str, Any]] = field(default_factory=list)
    # Other processes it may be made by (PartRevision.alternative_processes): orders.routes
    # chooses one per order line among those with a material of that process in `materials`.
    alternative_processes: list[str] = field(default_factory=list)


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


def _qc(
    label: str,
    *,
    parameter: str | None = None,
    nominal: float | None = None,
    offset: float = 0,
    minus: float = 0.2,
    plus: float = 0.2,
) -> dict[str, Any]:
    """A QC check on the configured value of `parameter` (plus `offset`: a bore made larger
    than its shaft), or on a fixed `nominal`."""
    check: dict[str, Any] = {"label": label, "tolerance_minus": minus, "tolerance_plus": plus}
    if parameter is not None:
        check["parameter"] = parameter
        if offset:
            check["offset"] = offset
    else:
        check["nominal"] = nominal
    return check


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
        tags="set collar, stop ring, bearing, shaft",
        work_instructions=[
            "Ream the bore to size if the shaft does not slide in by hand.",
            "Tap the set-screw hole (M6 for 5.0 mm), or press in a heat-set insert.",
        ],
        qc_checks=[
            _qc("Bore diameter", parameter="bore_d", minus=0, plus=0.2),
            _qc("Outer diameter", parameter="outer_d", minus=0.3, plus=0.3),
            _qc("Width", parameter="width"),
        ],
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
        tags="sleeve, bushing, bush, washer, distance piece",
        work_instructions=[
            "Deburr both ends of the bore; check that the shaft or screw slides through.",
        ],
        qc_checks=[
            _qc("Inner diameter", parameter="inner_d", minus=0, plus=0.2),
            _qc("Outer diameter", parameter="outer_d", minus=0.2, plus=0),
            _qc("Length", parameter="length"),
        ],
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
        tags="angle bracket, L bracket, sensor mount, corner",
        work_instructions=[
            "Print lying on the outside of the base leg (as built): layers then run around "
            "the bend.",
            "Clear the screw holes with a drill of the hole diameter.",
        ],
        qc_checks=[
            _qc("Width", parameter="width", minus=0.3, plus=0.3),
            _qc("Thickness", parameter="thickness"),
            _qc("Hole diameter", parameter="hole_d", minus=0, plus=0.3),
        ],
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
        tags="clamping knob, star knob, grip, nut, handle",
        work_instructions=[
            "Press the nut or bolt head into the hex pocket (warm it if tight); add a drop "
            "of glue for a permanent fit.",
        ],
        qc_checks=[
            _qc("Knob diameter", parameter="knob_d", minus=0.5, plus=0.5),
            _qc("Height", parameter="height", minus=0.3, plus=0.3),
        ],
    ),
    DemoPart(
        slug="pipe_clamp",
        name="Pipe clamp",
        category="Pipes & hoses",
        description=(
            "Saddle clamp that holds a pipe, conduit or hose against a wall or frame, "
            "with a screw foot on each side."
        ),
        script=_script("pipe_clamp"),
        schema=[
            _length(
                "pipe_d", "Pipe outer diameter", default=22.0, min=6, max=110,
                help="Outside diameter of the pipe; the clamp adds 0.2 mm of play.",
            ),
            _length(
                "width", "Width", default=15.0, min=8, max=40,
                help="Width of the strap along the pipe.",
            ),
            _length(
                "thickness", "Strap thickness", default=2.5, min=1.6, max=6,
                help="Thickness of the strap and the feet.",
            ),
            _length(
                "hole_d", "Screw hole diameter", default=4.5, min=3, max=8.5,
                help="Clearance hole: 4.5 for M4, 5.5 for M5, 6.6 for M6.",
            ),
        ],
        rules=[
            _rule("width >= hole_d + 4", "the strap must be at least hole_d + 4 mm wide"),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
        tags="pipe saddle, conduit clip, tube clamp, hose",
        work_instructions=[
            "Print standing on the feet (as built); no supports are needed.",
            "Check that the pipe slides into the strap before delivery.",
        ],
        qc_checks=[
            _qc("Strap inside (pipe + 0.4)", parameter="pipe_d", offset=0.4),
            _qc("Width", parameter="width"),
        ],
    ),
    DemoPart(
        slug="cable_clip",
        name="Cable clip",
        category="Cable management",
        description=(
            "Snap-in ring on a screw tab that holds a cable, hose or bundle along a frame."
        ),
        script=_script("cable_clip"),
        schema=[
            _length(
                "cable_d", "Cable diameter", default=8.0, min=3, max=30,
                help="Diameter of the cable or bundle.",
            ),
            _length(
                "width", "Width", default=10.0, min=6, max=25,
                help="Width of the clip along the cable.",
            ),
            _length(
                "wall", "Wall", default=1.6, min=1.2, max=3.2,
                help="Thickness of ring and tab; thinner snaps more easily.",
            ),
            {
                "name": "gap_ratio", "label": "Opening", "type": "number", "default": 0.7,
                "min": 0.5, "max": 0.9, "step": 0.05,
                "help": "Width of the snap opening as a share of the cable diameter.",
            },
            _length(
                "hole_d", "Screw hole diameter", default=3.5, min=2.5, max=5.5,
                help="Clearance hole: 3.4 for M3, 4.5 for M4, 5.5 for M5.",
            ),
        ],
        rules=[
            _rule("width >= hole_d + 3", "the tab must be at least hole_d + 3 mm wide"),
        ],
        process="fdm",
        materials=["petg", "abs"],
        tags="cable holder, wire clip, snap clip, loom",
        work_instructions=["Snap a cable offcut of the ordered diameter in and out once."],
        qc_checks=[_qc("Ring inside (cable + 0.3)", parameter="cable_d", offset=0.3)],
    ),
    DemoPart(
        slug="d_shaft_knob",
        name="D-shaft knob",
        category="Knobs & handles",
        description=(
            "Control knob for potentiometers, encoders and small valve spindles with a "
            "flat (D) shaft, with a pointer groove and grip ribs."
        ),
        script=_script("d_shaft_knob"),
        schema=[
            _length(
                "knob_d", "Knob diameter", default=20.0, min=10, max=60,
                help="Diameter across the grip.",
            ),
            _length("height", "Height", default=15.0, min=8, max=30, help="Overall height."),
            _length(
                "shaft_d", "Shaft diameter", default=6.0, min=3, max=10,
                help="Round diameter of the shaft (6 for most potentiometers).",
            ),
            _length(
                "across_flat", "Across the flat", default=4.5, min=2, max=9.5,
                help="From the flat to the far side of the shaft (4.5 on a 6 mm shaft).",
            ),
            _length(
                "shaft_depth", "Shaft depth", default=10.0, min=5, max=25,
                help="How far the shaft goes into the knob.",
            ),
            _integer(
                "ribs", "Grip ribs", default=18, min=0, max=36,
                help="Grooves around the rim; 0 for a smooth knob.",
            ),
            _boolean("pointer", "Pointer", default=True, help="A groove across the top."),
        ],
        rules=[
            _rule(
                "across_flat < shaft_d and across_flat >= shaft_d / 2",
                "across_flat must lie between half the shaft diameter and the shaft diameter",
            ),
            _rule(
                "knob_d >= shaft_d + 6",
                "the knob needs 3 mm of wall around the shaft: knob_d >= shaft_d + 6",
            ),
            _rule(
                "shaft_depth <= height - 1.5",
                "leave at least 1.5 mm above the shaft: shaft_depth <= height - 1.5",
            ),
        ],
        process="fdm",
        materials=["pla", "petg", "abs"],
        tags="potentiometer knob, encoder, control knob, D shaft, flat shaft",
        work_instructions=["Push the knob onto a shaft gauge of the ordered size: snug, not loose"],
        qc_checks=[
            _qc("Knob diameter", parameter="knob_d", minus=0.3, plus=0.3),
            _qc("Bore (shaft + 0.2)", parameter="shaft_d", offset=0.2, minus=0.1, plus=0.15),
        ],
    ),
    DemoPart(
        slug="spur_gear",
        name="Spur gear",
        category="Power transmission",
        description=(
            "Involute spur gear, 20° pressure angle, by module and number of teeth, with a "
            "bore, an optional hub and an optional DIN 6885 keyway."
        ),
        script=_script("spur_gear"),
        schema=[
            {
                "name": "module", "label": "Module", "type": "number", "unit": "mm",
                "default": 1.5, "min": 0.5, "max": 4, "step": 0.25,
                "help": "Pitch diameter / teeth: must match the mating gear.",
            },
            _integer("teeth", "Teeth", default=24, min=10, max=120, help="Number of teeth."),
            _length(
                "face_width", "Face width", default=8.0, min=3, max=40,
                help="Width of the teeth along the axis.",
            ),
            _length("bore_d", "Bore diameter", default=8.0, min=2, max=40, help="Shaft diameter."),
            _boolean(
                "keyway", "Keyway", default=False, help="A DIN 6885 keyway (bores of 6 mm up)."
            ),
            _boolean(
                "hub", "Hub", default=True, help="A hub half the face width long on one side."
            ),
        ],
        rules=[
            _rule(
                "module * (teeth + 2) <= 190",
                "the gear must fit the printer: module x (teeth + 2) at most 190 mm",
            ),
            _rule(
                "bore_d <= module * (teeth - 2.5) - 6",
                "the bore leaves less than 3 mm under the teeth: make it smaller",
            ),
            _rule("not keyway or bore_d >= 6", "a keyway needs a bore of at least 6 mm"),
        ],
        process="fdm",
        materials=["petg", "pa12-cf"],
        tags="gear, gearwheel, cog, involute, pinion",
        work_instructions=[
            "Print flat (as built) with 100 % infill in the teeth.",
            "Mesh the gear with a gauge gear of the same module before delivery.",
        ],
        qc_checks=[
            _qc("Bore diameter", parameter="bore_d", minus=0, plus=0.2),
            _qc("Face width", parameter="face_width"),
        ],
    ),
    DemoPart(
        slug="gt2_pulley",
        name="GT2 timing pulley",
        category="Power transmission",
        description=(
            "Toothed pulley for 2 mm pitch GT2 belts, with a hub, an M3 set-screw hole and "
            "optional flanges that keep the belt on."
        ),
        script=_script("gt2_pulley"),
        schema=[
            _integer("teeth", "Teeth", default=20, min=16, max=80, help="Number of teeth."),
            _choice(
                "belt_width", "Belt width", default="6", choices=["6", "9", "10", "15"],
                help="Width of the belt in millimetres.",
            ),
            _length("bore_d", "Bore diameter", default=5.0, min=2, max=14, help="Shaft diameter."),
            _length(
                "hub_d", "Hub diameter", default=16.0, min=8, max=40,
                help="Diameter of the hub that carries the set screw.",
            ),
            _length(
                "hub_height", "Hub height", default=7.0, min=5, max=15,
                help="Length of the hub along the shaft.",
            ),
            _boolean("flanges", "Flanges", default=True, help="A flange on each side of the belt."),
        ],
        rules=[
            _rule(
                "bore_d <= teeth * 2 / 3.1416 - 4",
                "the bore leaves under 1.2 mm below the teeth: use more teeth or a smaller bore",
            ),
            _rule(
                "hub_d >= bore_d + 6",
                "the hub needs 3 mm of wall for the set screw: hub_d >= bore_d + 6",
            ),
        ],
        process="fdm",
        materials=["petg", "pa12-cf"],
        tags="timing pulley, GT2, belt pulley, 3D printer, toothed",
        work_instructions=[
            "Tap the set-screw hole M3.",
            "Run a GT2 belt around the pulley: it must seat in every groove.",
        ],
        qc_checks=[
            _qc("Bore diameter", parameter="bore_d", minus=0, plus=0.2),
            _qc("Hub diameter", parameter="hub_d", minus=0.3, plus=0.3),
        ],
    ),
    DemoPart(
        slug="hinge_leaf",
        name="Hinge leaf",
        category="Hinges & latches",
        description=(
            "One leaf of a pin hinge for doors, lids and guards: order half a and half b "
            "of the same size and join them with a steel pin."
        ),
        script=_script("hinge_leaf"),
        schema=[
            _length(
                "length", "Length", default=50.0, min=20, max=150,
                help="Length of the hinge along the pin.",
            ),
            _length(
                "leaf_width", "Leaf width", default=25.0, min=12, max=60,
                help="From the pin axis to the leaf's edge.",
            ),
            _length("thickness", "Thickness", default=3.0, min=2, max=6, help="Leaf thickness."),
            _integer(
                "knuckles", "Knuckles", default=5, min=3, max=9,
                help="Knuckles of both leaves together.",
            ),
            _length(
                "pin_d", "Pin diameter", default=3.0, min=2, max=6,
                help="Diameter of the steel pin; the hole adds 0.2 mm.",
            ),
            _length(
                "hole_d", "Screw hole diameter", default=4.5, min=2.5, max=6.6,
                help="Clearance hole: 3.4 for M3, 4.5 for M4, 5.5 for M5.",
            ),
            _integer("holes", "Screw holes", default=2, min=1, max=5, help="Holes in the leaf."),
            _choice(
                "half", "Half", default="a", choices=["a", "b"],
                help="a and b mesh with each other.",
            ),
        ],
        rules=[
            _rule(
                "leaf_width >= pin_d / 2 + thickness + hole_d + 4.4",
                "the leaf is too narrow for its screw holes next to the knuckles",
            ),
            _rule(
                "length >= holes * (hole_d + 4)",
                "the screw holes do not fit along the leaf: each needs hole_d + 4 mm",
            ),
            _rule(
                "length >= knuckles * 4",
                "each knuckle needs at least 4 mm: use fewer knuckles or a longer hinge",
            ),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
        tags="hinge, butt hinge, door, lid, guard",
        work_instructions=[
            "Clear the pin hole with a drill of the pin diameter + 0.2 mm.",
            "Check that a pin slides through all knuckles.",
        ],
        qc_checks=[
            _qc("Length", parameter="length", minus=0.3, plus=0.3),
            _qc("Pin hole (pin + 0.4)", parameter="pin_d", offset=0.4),
        ],
    ),
    DemoPart(
        slug="hose_barb",
        name="Hose barb adapter",
        category="Pipes & hoses",
        description=(
            "Straight barbed connector that joins two hoses of the same or different "
            "inside diameters, for coolant, air and vacuum lines."
        ),
        script=_script("hose_barb"),
        schema=[
            _length(
                "hose_a_id", "Hose A inside diameter", default=10.0, min=5, max=25,
                help="Inside diameter of the first hose.",
            ),
            _length(
                "hose_b_id", "Hose B inside diameter", default=8.0, min=5, max=25,
                help="Inside diameter of the second hose.",
            ),
            _integer("barbs", "Barbs per side", default=3, min=1, max=5, help="Barbs on each end."),
            _length(
                "wall", "Wall", default=1.6, min=1.2, max=3,
                help="Thinnest wall, under the barbs' roots.",
            ),
            _length(
                "collar_height", "Collar height", default=4.0, min=2, max=10,
                help="Height of the stop collar between the two ends.",
            ),
        ],
        rules=[
            _rule(
                "min(hose_a_id, hose_b_id) * 0.92 - 2 * wall >= 2",
                "the bore would be under 2 mm: use a thinner wall or bigger hoses",
            ),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
        tags="hose connector, barb, reducer, coolant, air line",
        work_instructions=[
            "Print upright with 4 perimeters so the part is airtight.",
            "Blow through the bore: it must be clear.",
        ],
        qc_checks=[
            _qc("Collar height", parameter="collar_height"),
        ],
    ),
    DemoPart(
        slug="cover_plate",
        name="Cover plate",
        category="Panels & covers",
        description=(
            "Flat plate with rounded corners and screw holes along its edges, to close an "
            "opening in a cabinet, a guard or a frame."
        ),
        script=_script("cover_plate"),
        schema=[
            _length("length", "Length", default=100.0, min=20, max=190, help="Along X."),
            _length("width", "Width", default=60.0, min=20, max=190, help="Along Y."),
            _length("thickness", "Thickness", default=3.0, min=1.5, max=8, help="Plate thickness."),
            _length(
                "corner_r", "Corner radius", default=5.0, min=0, max=15,
                help="0 for square corners.",
            ),
            _length(
                "hole_d", "Hole diameter", default=4.5, min=2.5, max=8.5,
                help="Clearance hole: 3.4 for M3, 4.5 for M4, 5.5 for M5, 6.6 for M6.",
            ),
            _integer("holes_x", "Holes along length", default=3, min=2, max=8, help="Long edges."),
            _integer("holes_y", "Holes along width", default=2, min=2, max=8, help="Short edges."),
            _length(
                "edge_margin", "Edge margin", default=6.0, min=4, max=20,
                help="From each edge to the hole centres.",
            ),
            _boolean(
                "countersunk", "Countersunk", default=False, help="90° countersinks on top."
            ),
        ],
        rules=[
            _rule("corner_r <= edge_margin", "the corner radius can be at most the edge margin"),
            _rule(
                "edge_margin >= hole_d / 2 + 1.5",
                "holes need 1.5 mm to the edge: edge_margin >= hole_d / 2 + 1.5",
            ),
            _rule(
                "(length - 2 * edge_margin) / (holes_x - 1) >= hole_d + 2",
                "the holes along the length are closer than hole_d + 2 mm",
            ),
            _rule(
                "(width - 2 * edge_margin) / (holes_y - 1) >= hole_d + 2",
                "the holes along the width are closer than hole_d + 2 mm",
            ),
            _rule(
                "not countersunk or thickness >= hole_d / 2 + 0.5",
                "countersinks need a plate at least hole_d / 2 + 0.5 mm thick",
            ),
            _rule(
                "not countersunk or edge_margin >= hole_d + 1",
                "countersinks need edge_margin >= hole_d + 1",
            ),
        ],
        process="fdm",
        # Also milled from 6061 plate or laser cut from 3 mm acrylic (issue #16): the route
        # chooser picks one per order line by due date and cost.
        materials=["pla", "petg", "abs", "aluminium-6061", "acrylic"],
        alternative_processes=["cnc_mill", "laser"],
        tags="blanking plate, cover, panel, lid, hole pattern",
        work_instructions=["Print flat; check that it lies flat on the bed after cooling."],
        qc_checks=[
            _qc("Length", parameter="length", minus=0.3, plus=0.3),
            _qc("Width", parameter="width", minus=0.3, plus=0.3),
            _qc("Thickness", parameter="thickness"),
        ],
    ),
    DemoPart(
        slug="handwheel",
        name="Handwheel",
        category="Knobs & handles",
        description=(
            "Spoked handwheel for spindles, valves and adjusting screws, with an M5 "
            "set-screw hole in the hub."
        ),
        script=_script("handwheel"),
        schema=[
            _length("wheel_d", "Wheel diameter", default=100.0, min=50, max=190, help="Overall."),
            _length(
                "rim_width", "Rim width", default=10.0, min=6, max=20,
                help="Radial width of the rim.",
            ),
            _length(
                "rim_height", "Rim height", default=12.0, min=8, max=25,
                help="Thickness of the rim along the axis.",
            ),
            _length("hub_d", "Hub diameter", default=25.0, min=15, max=50, help="Hub diameter."),
            _length(
                "hub_height", "Hub height", default=20.0, min=10, max=40,
                help="Length of the hub along the shaft.",
            ),
            _length("bore_d", "Bore diameter", default=10.0, min=4, max=25, help="Shaft diameter."),
            _integer("spokes", "Spokes", default=3, min=3, max=6, help="Number of spokes."),
        ],
        rules=[
            _rule(
                "wheel_d - 2 * rim_width >= hub_d + 10",
                "leave at least 5 mm of spoke between hub and rim",
            ),
            _rule("hub_d >= bore_d + 10", "the hub needs 5 mm of wall: hub_d >= bore_d + 10"),
            _rule(
                "hub_height >= rim_height * 0.6",
                "the hub must be at least as high as the spokes (0.6 x rim height)",
            ),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
        tags="hand wheel, spoked wheel, valve wheel, crank",
        work_instructions=["Tap the set-screw hole M5.", "Ream the bore if the shaft is tight."],
        qc_checks=[
            _qc("Wheel diameter", parameter="wheel_d", minus=0.5, plus=0.5),
            _qc("Bore diameter", parameter="bore_d", minus=0, plus=0.2),
        ],
    ),
    DemoPart(
        slug="belt_guard_bracket",
        name="Belt-guard bracket",
        category="Brackets & mounts",
        description=(
            "Z-shaped offset bracket that holds a belt or chain guard away from the frame, "
            "with slotted holes in both flanges for adjustment."
        ),
        script=_script("belt_guard_bracket"),
        schema=[
            _length("length", "Length", default=80.0, min=40, max=180, help="Overall length."),
            _length("width", "Width", default=25.0, min=15, max=50, help="Width of the bar."),
            _length("thickness", "Thickness", default=4.0, min=3, max=8, help="Bar thickness."),
            _length(
                "offset", "Offset", default=30.0, min=10, max=80,
                help="Height between the two flanges' undersides.",
            ),
            _length(
                "slot_length", "Slot travel", default=10.0, min=0, max=30,
                help="Adjustment in each slot; 0 for round holes.",
            ),
            _length(
                "hole_d", "Hole diameter", default=6.6, min=4.5, max=9,
                help="Clearance: 4.5 for M4, 5.5 for M5, 6.6 for M6, 9 for M8.",
            ),
        ],
        rules=[
            _rule(
                "slot_length + hole_d + 6 <= length / 2 - thickness",
                "the slots do not fit the flanges: length / 2 - thickness >= slot + hole_d + 6",
            ),
            _rule("width >= hole_d + 6", "the bar must be at least hole_d + 6 mm wide"),
            _rule("offset >= thickness + 2", "the offset must exceed the thickness by 2 mm"),
        ],
        process="fdm",
        materials=["petg", "abs", "pa12-cf"],
        tags="guard bracket, offset bracket, Z bracket, standoff bracket",
        work_instructions=["Print on its side (the Z profile flat on the bed) for strong bends."],
        qc_checks=[
            _qc("Offset", parameter="offset", minus=0.3, plus=0.3),
            _qc("Thickness", parameter="thickness"),
        ],
    ),
    DemoPart(
        slug="standoff",
        name="Standoff",
        category="Spacers & bushings",
        description=(
            "Hex or round standoff column for circuit boards, panels and sensors, with a "
            "tap-size or clearance hole."
        ),
        script=_script("standoff"),
        schema=[
            _choice(
                "thread", "Thread", default="M3", choices=["M2.5", "M3", "M4", "M5", "M6"],
                help="Screw size.",
            ),
            _length("length", "Length", default=15.0, min=3, max=100, help="Overall length."),
            _length(
                "across_flats", "Across flats", default=6.0, min=4.5, max=20,
                help="Hex width across flats, or the diameter of a round standoff.",
            ),
            _choice("shape", "Shape", default="hex", choices=["hex", "round"], help="Outline."),
            _choice(
                "hole", "Hole", default="tap", choices=["tap", "clearance"],
                help="tap: to cut a thread or take a self-tapping screw; clearance: a screw "
                "passes through.",
            ),
        ],
        rules=[
            _rule(
                "across_flats >= {'M2.5': 4.5, 'M3': 5.5, 'M4': 7, 'M5': 8, 'M6': 10}[thread]",
                "too slim for the thread: at least 4.5 (M2.5), 5.5 (M3), 7 (M4), 8 (M5), "
                "10 (M6) across flats",
            ),
        ],
        process="fdm",
        materials=["pla", "petg", "abs", "pa12-cf"],
        tags="PCB standoff, spacer, pillar, hex spacer",
        work_instructions=["Tap the hole if a thread was ordered (tap hole)."],
        qc_checks=[
            _qc("Length", parameter="length"),
            _qc("Across flats", parameter="across_flats"),
        ],
    ),
    # Milled from aluminium plate and laser cut from acrylic sheet (issue #16). The plate is the
    # thinnest of the material's sheet_thicknesses_mm at least as thick as the part (the mill
    # faces it down); a laser-cut part is as thick as its sheet, so its thickness steps from
    # one sheet to the next. Inside corners are at least the smallest end mill's radius.
    DemoPart(
        slug="milled_cover_plate",
        name="Cover plate, milled aluminium",
        category="Panels & covers",
        description=(
            "Cover plate milled from 6061 aluminium plate: rounded corners, screw holes along "
            "its edges and an optional recess in the top face for a label or a gasket."
        ),
        script=_script("milled_cover_plate"),
        schema=[
            _length("length", "Length", default=100.0, min=40, max=190, help="Along X."),
            _length("width", "Width", default=60.0, min=40, max=140, help="Along Y."),
            _length(
                "thickness", "Thickness", default=6.0, min=2, max=10, step=0.5,
                help="Plate thickness; milled from 3, 6 or 10 mm plate.",
            ),
            _length(
                "corner_r", "Corner radius", default=5.0, min=0, max=15,
                help="0 for square corners.",
            ),
            _length(
                "hole_d", "Hole diameter", default=5.0, min=3, max=8.5,
                help="3, 4, 5, 6 and 8 mm are drilled; other sizes are milled.",
            ),
            _integer("holes_x", "Holes along length", default=3, min=2, max=6, help="Long edges."),
            _integer("holes_y", "Holes along width", default=2, min=2, max=6, help="Short edges."),
            _length(
                "edge_margin", "Edge margin", default=8.0, min=5, max=20,
                help="From each edge to the hole centres.",
            ),
            _length(
                "recess_depth", "Recess depth", default=1.0, min=0, max=4,
                help="Recess in the top face; 0 for none.",
            ),
            _length(
                "recess_margin", "Recess margin", default=14.0, min=10, max=40,
                help="From each edge to the recess.",
            ),
            _length(
                "recess_r", "Recess corner radius", default=4.0, min=1.5, max=10,
                help="At least the end mill's radius (1.5 mm for the 3 mm end mill).",
            ),
        ],
        rules=[
            _rule("corner_r <= edge_margin", "the corner radius can be at most the edge margin"),
            _rule(
                "edge_margin >= hole_d / 2 + 2",
                "holes need 2 mm to the edge: edge_margin >= hole_d / 2 + 2",
            ),
            _rule(
                "(length - 2 * edge_margin) / (holes_x - 1) >= hole_d + 3",
                "the holes along the length are closer than hole_d + 3 mm",
            ),
            _rule(
                "(width - 2 * edge_margin) / (holes_y - 1) >= hole_d + 3",
                "the holes along the width are closer than hole_d + 3 mm",
            ),
            _rule(
                "recess_depth <= thickness - 1.5",
                "leave a 1.5 mm floor under the recess: recess_depth <= thickness - 1.5",
            ),
            _rule(
                "recess_margin >= edge_margin + hole_d / 2 + 2",
                "the recess must clear the holes by 2 mm: recess_margin >= edge_margin + "
                "hole_d / 2 + 2",
            ),
            _rule(
                "width - 2 * recess_margin >= 2 * recess_r + 2",
                "the recess is too narrow for its corner radius",
            ),
            _rule(
                "length - 2 * recess_margin >= 2 * recess_r + 2",
                "the recess is too short for its corner radius",
            ),
        ],
        process="cnc_mill",
        materials=["aluminium-6061"],
        tags="blanking plate, cover, panel, lid, aluminium, milled, CNC",
        work_instructions=[
            "Clamp the plate on a spoil board; zero X/Y on its front-left corner, Z on its top.",
            "Cut the holding tabs with a saw or a chisel; file their stubs flush.",
            "Deburr every edge and hole.",
        ],
        qc_checks=[
            _qc("Length", parameter="length", minus=0.1, plus=0.1),
            _qc("Width", parameter="width", minus=0.1, plus=0.1),
            _qc("Thickness", parameter="thickness", minus=0.1, plus=0.1),
            _qc("Hole diameter", parameter="hole_d", minus=0, plus=0.1),
        ],
    ),
    DemoPart(
        slug="milled_flat_bracket",
        name="Flat mounting bracket, milled aluminium",
        category="Brackets & mounts",
        description=(
            "L-shaped flat bracket (corner plate) milled from 6061 aluminium plate, with a row "
            "of screw holes along each leg: joins two frame members at a right angle."
        ),
        script=_script("flat_bracket"),
        schema=[
            _length("leg_a", "Leg A length", default=80.0, min=40, max=180, help="Along X."),
            _length("leg_b", "Leg B length", default=60.0, min=40, max=130, help="Along Y."),
            _length(
                "leg_width", "Leg width", default=25.0, min=15, max=50,
                help="Width of both legs.",
            ),
            _length(
                "thickness", "Thickness", default=5.0, min=2, max=10, step=0.5,
                help="Plate thickness; milled from 3, 6 or 10 mm plate.",
            ),
            _length(
                "hole_d", "Hole diameter", default=5.5, min=3, max=9,
                help="Clearance: 4.5 for M4, 5.5 for M5, 6.6 for M6, 9 for M8.",
            ),
            _integer(
                "holes_per_leg", "Holes per leg", default=2, min=1, max=4,
                help="Along each leg's centre line.",
            ),
            _length(
                "hole_margin", "Hole margin", default=8.0, min=5, max=20,
                help="From the corner square and the leg's end to the nearest hole centre.",
            ),
            _length(
                "inner_r", "Inside corner radius", default=4.0, min=1.5, max=15,
                help="At least the end mill's radius (1.5 mm for the 3 mm end mill).",
            ),
            _length(
                "outer_r", "Outside corner radius", default=3.0, min=0, max=6,
                help="0 for square corners.",
            ),
        ],
        rules=[
            _rule(
                "leg_width >= hole_d + 6",
                "the legs must be at least hole_d + 6 mm wide",
            ),
            _rule(
                "hole_margin >= hole_d / 2 + 2",
                "holes need 2 mm to the leg's end: hole_margin >= hole_d / 2 + 2",
            ),
            _rule(
                "leg_a - leg_width - 2 * hole_margin >= (holes_per_leg - 1) * (hole_d + 3)",
                "leg A is too short for its holes",
            ),
            _rule(
                "leg_b - leg_width - 2 * hole_margin >= (holes_per_leg - 1) * (hole_d + 3)",
                "leg B is too short for its holes",
            ),
            _rule("2 * outer_r <= leg_width - hole_d", "the outside radius would cut the holes"),
        ],
        process="cnc_mill",
        materials=["aluminium-6061"],
        tags="corner plate, angle plate, L bracket, flat bracket, aluminium, milled, CNC",
        work_instructions=[
            "Clamp the plate on a spoil board; zero X/Y on its front-left corner, Z on its top.",
            "Cut the holding tabs; file their stubs flush and deburr every edge and hole.",
        ],
        qc_checks=[
            _qc("Leg A length", parameter="leg_a", minus=0.1, plus=0.1),
            _qc("Leg B length", parameter="leg_b", minus=0.1, plus=0.1),
            _qc("Thickness", parameter="thickness", minus=0.1, plus=0.1),
            _qc("Hole diameter", parameter="hole_d", minus=0, plus=0.1),
        ],
    ),
    DemoPart(
        slug="laser_cover_plate",
        name="Cover plate, laser-cut acrylic",
        category="Panels & covers",
        description=(
            "Clear cover plate laser cut from cast acrylic sheet, with rounded corners and "
            "screw holes along its edges: a window onto a gauge, a guard you can see through."
        ),
        script=_script("flat_cover_plate"),
        schema=[
            _length("length", "Length", default=100.0, min=30, max=190, help="Along X."),
            _length("width", "Width", default=60.0, min=30, max=190, help="Along Y."),
            _length(
                "thickness", "Thickness", default=3.0, min=3, max=5, step=2,
                help="The sheet: 3 or 5 mm.",
            ),
            _length(
                "corner_r", "Corner radius", default=5.0, min=0, max=15,
                help="0 for square corners.",
            ),
            _length(
                "hole_d", "Hole diameter", default=5.0, min=2.5, max=10,
                help="Clearance hole: 3.4 for M3, 4.5 for M4, 5.5 for M5, 6.6 for M6.",
            ),
            _integer("holes_x", "Holes along length", default=3, min=2, max=8, help="Long edges."),
            _integer("holes_y", "Holes along width", default=2, min=2, max=8, help="Short edges."),
            _length(
                "edge_margin", "Edge margin", default=8.0, min=4, max=20,
                help="From each edge to the hole centres.",
            ),
        ],
        rules=[
            _rule("corner_r <= edge_margin", "the corner radius can be at most the edge margin"),
            _rule(
                "edge_margin >= hole_d / 2 + thickness",
                "acrylic cracks near an edge: edge_margin >= hole_d / 2 + thickness",
            ),
            _rule(
                "(length - 2 * edge_margin) / (holes_x - 1) >= hole_d + 2",
                "the holes along the length are closer than hole_d + 2 mm",
            ),
            _rule(
                "(width - 2 * edge_margin) / (holes_y - 1) >= hole_d + 2",
                "the holes along the width are closer than hole_d + 2 mm",
            ),
        ],
        process="laser",
        materials=["acrylic"],
        tags="blanking plate, cover, panel, window, acrylic, perspex, laser cut",
        work_instructions=[
            "Lay the sheet flat on the honeycomb, protective film on; focus on its top face.",
            "Peel the film after cutting; check the edges are cut through all round.",
        ],
        qc_checks=[
            _qc("Length", parameter="length", minus=0.15, plus=0.15),
            _qc("Width", parameter="width", minus=0.15, plus=0.15),
            _qc("Hole diameter", parameter="hole_d", minus=0, plus=0.2),
        ],
    ),
    DemoPart(
        slug="laser_flat_bracket",
        name="Flat mounting bracket, laser-cut acrylic",
        category="Brackets & mounts",
        description=(
            "L-shaped flat bracket (corner plate) laser cut from cast acrylic sheet, with a "
            "row of screw holes along each leg: for light panels, covers and sensor mounts."
        ),
        script=_script("flat_bracket"),
        schema=[
            _length("leg_a", "Leg A length", default=80.0, min=40, max=180, help="Along X."),
            _length("leg_b", "Leg B length", default=60.0, min=40, max=180, help="Along Y."),
            _length(
                "leg_width", "Leg width", default=25.0, min=15, max=60,
                help="Width of both legs.",
            ),
            _length(
                "thickness", "Thickness", default=5.0, min=3, max=5, step=2,
                help="The sheet: 3 or 5 mm.",
            ),
            _length(
                "hole_d", "Hole diameter", default=5.5, min=2.5, max=10,
                help="Clearance: 3.4 for M3, 4.5 for M4, 5.5 for M5, 6.6 for M6.",
            ),
            _integer(
                "holes_per_leg", "Holes per leg", default=2, min=1, max=6,
                help="Along each leg's centre line.",
            ),
            _length(
                "hole_margin", "Hole margin", default=8.0, min=5, max=20,
                help="From the corner square and the leg's end to the nearest hole centre.",
            ),
            _length(
                "inner_r", "Inside corner radius", default=4.0, min=1, max=15,
                help="A rounded inside corner does not crack.",
            ),
            _length(
                "outer_r", "Outside corner radius", default=3.0, min=0, max=6,
                help="0 for square corners.",
            ),
        ],
        rules=[
            _rule(
                "leg_width >= hole_d + 2 * thickness + 2",
                "acrylic cracks near an edge: leg_width >= hole_d + 2 x thickness + 2",
            ),
            _rule(
                "hole_margin >= hole_d / 2 + thickness",
                "acrylic cracks near an edge: hole_margin >= hole_d / 2 + thickness",
            ),
            _rule(
                "leg_a - leg_width - 2 * hole_margin >= (holes_per_leg - 1) * (hole_d + 2)",
                "leg A is too short for its holes",
            ),
            _rule(
                "leg_b - leg_width - 2 * hole_margin >= (holes_per_leg - 1) * (hole_d + 2)",
                "leg B is too short for its holes",
            ),
            _rule("2 * outer_r <= leg_width - hole_d", "the outside radius would cut the holes"),
        ],
        process="laser",
        materials=["acrylic"],
        tags="corner plate, angle plate, L bracket, flat bracket, acrylic, perspex, laser cut",
        work_instructions=[
            "Lay the sheet flat on the honeycomb, protective film on; focus on its top face.",
            "Peel the film after cutting; check the holes are cut through.",
        ],
        qc_checks=[
            _qc("Leg A length", parameter="leg_a", minus=0.15, plus=0.15),
            _qc("Leg B length", parameter="leg_b", minus=0.15, plus=0.15),
            _qc("Hole diameter", parameter="hole_d", minus=0, plus=0.2),
        ],
    ),
]
# fmt: on
