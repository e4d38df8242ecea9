"""DFM for CNC milling and laser cutting, on real CadQuery solids built as the pipeline builds
them: inside corners and slots against the smallest end mill, pocket depth over width, thin
walls, holding, plate and sheet thicknesses, kerf and webs; the seed cover plate and
mounting bracket."""

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from catalog.geometry import BuildLimits, build_geometry
from production.pipeline.dfm.checks import Check
from production.pipeline.validation import (
    MachineLimits,
    ValidationLimits,
    ValidationReport,
    dfm_report,
)

pytestmark = pytest.mark.cad

MILL = MachineLimits("mill", "cnc_mill", (300.0, 200.0, 100.0), name="the mill")
LASER = MachineLimits("laser", "laser", (600.0, 400.0, 10.0), name="the laser")
PARTS = Path(__file__).resolve().parents[3] / "catalog" / "parts"

# One script, one solid per `shape`: each is a 60 x 40 block or plate with one feature.
SHAPES = """\
import cadquery as cq

shape = "sharp"
block = cq.Workplane("XY").box(60, 40, 10, centered=(True, True, False))
top = block.faces(">Z").workplane()


def rounded_pocket(width, length, radius, depth, on=top):
    sketch = on.sketch().rect(length, width)
    if radius:
        sketch = sketch.vertices().fillet(radius)
    return sketch.finalize().cutBlind(-depth)


if shape == "sharp":  # a 30 x 16 pocket, 6 deep, with square inside corners
    result = top.rect(30, 16).cutBlind(-6)
elif shape == "fillet3":
    result = rounded_pocket(16, 30, 3, 6)
elif shape == "fillet05":
    result = rounded_pocket(16, 30, 0.5, 6)
elif shape == "slot1":  # a round-ended slot 1 mm wide, 20 long, 4 deep
    result = top.slot2D(20, 1).cutBlind(-4)
elif shape == "deep":  # 2.5 mm wide, 9 deep: 3.6 widths
    result = rounded_pocket(2.5, 20, 1.2, 9)
elif shape == "deeper":  # 2.5 mm wide, 16 deep in a 20 mm block: 6.4 widths
    tall = cq.Workplane("XY").box(60, 40, 20, centered=(True, True, False))
    result = rounded_pocket(2.5, 20, 1.2, 16, on=tall.faces(">Z").workplane())
elif shape == "tray":  # walls 1 mm thick, 27 mm high
    tray = cq.Workplane("XY").box(40, 40, 30, centered=(True, True, False))
    result = rounded_pocket(38, 38, 2, 27, on=tray.faces(">Z").workplane())
elif shape == "plate3":  # a 3 mm plate with a 5 mm hole
    result = cq.Workplane("XY").box(60, 40, 3).faces(">Z").workplane().hole(5)
elif shape == "fine_plate":  # a 0.15 mm slit, and two 6 mm holes 0.6 mm apart
    plate = cq.Workplane("XY").box(60, 40, 3)
    slit = cq.Workplane("XY").center(-15, 0).slot2D(20, 0.15).extrude(5, both=True)
    holes = cq.Workplane("XY").pushPoints([(12, 0), (18.6, 0)]).circle(3).extrude(5, both=True)
    result = plate.cut(slit).cut(holes)
elif shape == "strip":  # 8 mm wide: too narrow to clamp or to lie on a laser's slats
    result = cq.Workplane("XY").box(30, 8, 3)
show_object(result)
"""
NAMES = (
    "sharp", "fillet3", "fillet05", "slot1", "deep", "deeper", "tray", "plate3", "fine_plate",
    "strip",
)  # fmt: skip
LIMITS = BuildLimits(require_bwrap=False)


@pytest.fixture(scope="module")
def stl(tmp_path_factory) -> dict[str, bytes]:
    """Every test solid, and the two seed parts built as the pipeline builds them.

    The seed parts go through build_geometry (a sandboxed process each, in parallel); the
    small solids are made here, in this process, tessellated with the same tolerances: one
    OpenCascade start instead of ten (2-4 s each on a busy machine).
    """
    import cadquery as cq

    with ThreadPoolExecutor(2) as pool:
        seeds = {
            part: pool.submit(build_geometry, (PARTS / f"{part}.py").read_text(), {}, limits=LIMITS)
            for part in ("cover_plate", "mounting_bracket")
        }
        built = {}
        folder = tmp_path_factory.mktemp("solids")
        for name in NAMES:
            shown: list[cq.Workplane] = []
            exec(
                SHAPES.replace('shape = "sharp"', f"shape = {name!r}"),
                {"show_object": shown.append},
            )
            path = folder / f"{name}.stl"
            shown[0].val().exportStl(
                str(path),
                tolerance=LIMITS.stl_tolerance_mm,
                angularTolerance=LIMITS.stl_angular_tolerance,
                ascii=False,
                relative=False,
            )
            built[name] = path.read_bytes()
        return built | {part: build.result().stl for part, build in seeds.items()}


def near(message: str) -> tuple[str, tuple[float, ...]]:
    """A message with its "near (x, y, z)" taken out, and that point (mm, as modelled)."""
    found = re.search(r" near \((-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\)", message)
    assert found, message
    return message.replace(found.group(0), " near …"), tuple(float(v) for v in found.groups())


def number(value: str) -> float:
    """The figure a check's value starts with: "0.64 mm web" -> 0.64."""
    return float(re.match(r"R?(-?[\d.]+)", value).group(1))


def checks(data: bytes, machine: MachineLimits, **limits: float) -> dict[str, Check]:
    report: ValidationReport = dfm_report(
        data, machines=[machine], limits=ValidationLimits(**limits)
    )
    return {c.name: c for c in report.machines[0].checks}


def test_a_sharp_inside_corner_fails_naming_the_smallest_end_mill(stl):
    corners = checks(stl["sharp"], MILL)["inside_corners"]
    assert (corners.status, corners.value) == ("fail", "sharp (R0)")
    message, (x, y, z) = near(corners.message)
    assert message == (
        "a sharp internal corner near … cannot be made by any end mill (a round cutter leaves "
        "its radius); the smallest is 2 mm: round it to R1 or more"
    )
    # The pocket's corner is at (±15, ±8), its floor at z = 4: the sliver the tool misses.
    assert (abs(x), abs(y), z) == (pytest.approx(15, abs=0.3), pytest.approx(8, abs=0.3), 7.0)
    assert corners.limit == "≥ R1 (the smallest end mill, 2 mm)"


def test_a_corner_rounder_than_the_tool_passes_and_one_tighter_says_the_tool_it_needs(stl):
    rounded = checks(stl["fillet3"], MILL)["inside_corners"]
    assert (rounded.status, rounded.value) == ("pass", "R3.0")
    tight = checks(stl["fillet05"], MILL)["inside_corners"]
    assert (tight.status, tight.value) == ("fail", "R0.5")
    assert near(tight.message)[0] == (
        "internal corner R0.5 near … needs an end mill of 1.0 mm or less; the smallest is "
        "2 mm: round it to R1 or more"
    )
    # A mill whose smallest end mill is 8 mm cannot reach the R3 corners either.
    big = checks(stl["fillet3"], replace(MILL, smallest_end_mill_mm=8.0))["inside_corners"]
    assert (big.status, big.value) == ("fail", "R3.0")
    assert "needs an end mill of 6.0 mm or less; the smallest is 8 mm" in big.message


def test_a_slot_narrower_than_the_smallest_end_mill_fails(stl):
    found = checks(stl["slot1"], MILL)
    slot = found["min_feature"]
    assert (slot.status, slot.value) == ("fail", "1.0 mm gap")
    assert near(slot.message) == (
        "a gap 1.0 mm wide near … needs an end mill of 1.0 mm or less; the smallest is 2 mm: "
        "widen it to 2 mm",
        (pytest.approx(0, abs=10), 0.0, 8.0),  # somewhere along the slot, half-way down it
    )
    assert found["inside_corners"].status == "pass"  # its ends are round: a gap, not corners
    assert found["two_and_a_half_d"].value == "2.5D from +Z"  # ties go to the lowest side
    # The shop's default end mill is a setting; with a 1 mm one the slot can be cut.
    fine = checks(stl["slot1"], MILL, cnc_smallest_end_mill_mm=1.0)["min_feature"]
    assert (fine.status, fine.value) == ("pass", "none under 1 mm")


def test_a_deep_narrow_pocket_warns_and_a_deeper_one_fails(stl):
    deep = checks(stl["deep"], MILL)["pocket_depth"]
    assert (deep.status, deep.value) == ("warn", "3.6 x width")
    assert near(deep.message)[0].startswith(
        "the pocket near … is 9.0 mm deep and 2.5 mm wide: 3.6 widths deep needs a long end mill"
    )
    deeper = checks(stl["deeper"], MILL)["pocket_depth"]
    assert (deeper.status, deeper.value) == ("fail", "6.4 x width")
    assert "widen it to 2.7 mm or make it shallower" in deeper.message
    # A wide pocket is shallow for its width; a round hole is drilled, not counted.
    assert checks(stl["fillet3"], MILL)["pocket_depth"].value == "0.4 x width"
    assert checks(stl["plate3"], MILL)["pocket_depth"].value == "no pockets"


def test_tall_thin_walls_warn_of_chatter(stl):
    walls = checks(stl["tray"], MILL)["thin_walls"]
    # 1 mm walls (the tray's 40 mm less its 38 mm pocket, halved), 27 mm high: 27 x.
    assert walls.status == "warn" and number(walls.value) == pytest.approx(27, abs=1)
    assert near(walls.message)[0] == (
        "a wall 1.0 mm thick and 27.0 mm high near … will chatter under the cutter (poor "
        "finish, lost accuracy): make it 3.4 mm thick or stiffen it with a rib"
    )
    assert checks(stl["sharp"], MILL)["thin_walls"].status == "pass"


def test_a_part_too_narrow_to_clamp_or_to_lie_on_the_slats_needs_tabs(stl):
    milled = checks(stl["strip"], MILL)["fixturing"]
    assert (milled.status, milled.value) == ("warn", "8.0 x 30.0 mm")
    assert "too narrow to clamp" in milled.message
    cut = checks(stl["strip"], LASER)["fixturing"]
    assert cut.status == "warn" and "micro-tabs" in cut.message
    assert checks(stl["plate3"], LASER)["fixturing"].status == "pass"


def test_the_mill_takes_the_thinnest_plate_the_part_fits_in(stl):
    plates = replace(MILL, sheet_thicknesses_mm=(3.0, 6.0, 12.0))
    stock = checks(stl["sharp"], plates)["plate_stock"]
    assert (stock.status, stock.message) == ("pass", "milled from 12 mm plate, 2.0 mm faced off")
    thin = replace(MILL, sheet_thicknesses_mm=(3.0, 6.0))
    refused = checks(stl["sharp"], thin)["plate_stock"]
    assert (refused.status, refused.message) == (
        "fail",
        "the part is 10.0 mm tall seen from the cutter; the material comes in 3, 6 mm plate: "
        "make it 6 mm or less",
    )
    assert "plate_stock" not in checks(stl["sharp"], MILL)  # no material named: not checked


def test_a_plate_must_be_one_of_the_sheets_in_stock(stl):
    four = checks(stl["plate3"], replace(LASER, sheet_thicknesses_mm=(4.0,)))["sheet_thickness"]
    assert (four.status, four.message) == (
        "fail",
        "the plate is 3.0 mm thick and there is no sheet of that thickness: the material "
        "comes in 4 mm sheet; make it one of those",
    )
    thin = replace(LASER, sheet_thicknesses_mm=(1.5, 2.0))
    assert checks(stl["plate3"], thin)["sheet_thickness"].message.startswith(
        "the plate is 3.0 mm thick, thicker than any sheet in stock: the material comes in "
        "1.5, 2 mm sheet"
    )
    stocked = replace(LASER, sheet_thicknesses_mm=(2.0, 3.0, 5.0))
    found = checks(stl["plate3"], stocked)["sheet_thickness"]
    assert (found.status, found.message) == ("pass", "cut from 3 mm sheet")
    none = checks(stl["plate3"], replace(LASER, sheet_thicknesses_mm=()))["sheet_thickness"]
    assert none.status == "fail" and "no sheet thicknesses are recorded" in none.message


def test_a_slit_narrower_than_the_kerf_and_a_web_too_thin_to_survive_fail(stl):
    found = checks(stl["fine_plate"], LASER)
    slit, web = found["min_feature"], found["min_web"]
    # Measured within the tessellation (0.05 mm chords): 0.15 mm and 0.6 mm as modelled.
    assert slit.status == "fail" and number(slit.value) == pytest.approx(0.15, abs=0.03)
    assert near(slit.message)[0] == (
        f"a slot {number(slit.value):.2f} mm wide near … is narrower than the laser's kerf "
        "(0.2 mm): widen it to 0.2 mm or more"
    )
    assert web.status == "fail" and number(web.value) == pytest.approx(0.6, abs=0.05)
    message, (x, _, _) = near(web.message)
    assert x == pytest.approx(15.3, abs=0.5)  # between the holes at x = 12 and 18.6
    assert "under 1 mm it burns away or breaks; widen it to 1 mm" in message
    # A laser with a finer beam cuts the slit; the web stays too thin.
    fine = checks(stl["fine_plate"], replace(LASER, kerf_mm=0.1))
    assert (fine["min_feature"].status, fine["min_web"].status) == ("pass", "fail")
    plain = checks(stl["plate3"], LASER)
    assert (plain["min_feature"].value, plain["min_web"].status) == ("5.0 mm cut-out", "pass")


def test_the_seed_cover_plate_can_be_milled_and_laser_cut(stl):
    aluminium = replace(MILL, sheet_thicknesses_mm=(3.0, 6.0, 10.0))
    milled = checks(stl["cover_plate"], aluminium)
    assert {name: c.status for name, c in milled.items()} == dict.fromkeys(milled, "pass")
    assert milled["plate_stock"].value == "3 mm plate"
    assert milled["inside_corners"].value == "none under R5"
    acrylic = replace(LASER, sheet_thicknesses_mm=(3.0, 5.0))
    cut = checks(stl["cover_plate"], acrylic)
    assert {name: c.status for name, c in cut.items()} == dict.fromkeys(cut, "pass")
    assert cut["min_feature"].value == "4.5 mm cut-out"  # its screw holes


def test_the_seed_mounting_bracket_is_refused_by_the_mill_for_its_side_holes_alone(stl):
    """Its legs' holes face two ways: no one side reaches both, so the tools are not measured."""
    milled = checks(stl["mounting_bracket"], MILL)
    assert list(milled) == ["build_volume", "two_and_a_half_d"]
    assert milled["two_and_a_half_d"].status == "fail"
    assert checks(stl["mounting_bracket"], LASER)["flat_plate"].value == "not a plate"
