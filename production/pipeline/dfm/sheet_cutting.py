"""Laser cutting: is there a sheet of the part's thickness, and can the beam cut its outline?

Measured on the plate's outline (production.pipeline.dfm.sections.slice_plate), with
production.pipeline.dfm.reach:

    sheet_thickness the plate's thickness is one of the material's sheet thicknesses
    min_feature     slots and holes at least the kerf wide: the beam cuts that much
    min_web         material between two cuts at least the minimum web: thinner burns away
    fixturing       parts narrower than the bed's slat spacing drop through: micro-tabs
"""

import shapely

from production.toolpath.program import sheet_matches

from .checks import FAIL, PASS, WARN, Check
from .limits import MachineLimits, ValidationLimits
from .reach import inscribed, narrowest_gap
from .sections import Sliced
from .tool_access import where


def laser_checks(
    machine: MachineLimits, *, sliced: Sliced, limits: ValidationLimits
) -> list[Check]:
    """The sheet (when the material is known), then the kerf, the webs and holding."""
    kerf = machine.kerf_mm or limits.laser_kerf_mm
    checks = [
        _min_feature(machine, sliced, kerf),
        _min_web(machine, sliced, limits.laser_min_web_mm),
        _fixturing(machine, sliced, limits),
    ]
    if machine.sheet_thicknesses_mm is not None:
        checks.insert(0, _sheet_thickness(machine, sliced, machine.sheet_thicknesses_mm))
    return checks


def _sheet_thickness(machine: MachineLimits, sliced: Sliced, sheets: tuple[float, ...]) -> Check:
    thickness = sliced.top_mm - sliced.bottom_mm
    listed = ", ".join(f"{s:g}" for s in sorted(sheets))
    value, limit = f"{thickness:.1f} mm", f"sheet of {listed} mm" if sheets else "a sheet"
    if not sheets:
        return Check(
            "sheet_thickness", FAIL, value, limit,
            "no sheet thicknesses are recorded for this material: it cannot be laser cut; "
            "choose a material sold as sheet",
            machine.key,
        )  # fmt: skip
    match = next((s for s in sorted(sheets) if sheet_matches(s, thickness)), None)
    if match is not None:
        return Check("sheet_thickness", PASS, value, limit,
                     f"cut from {match:g} mm sheet", machine.key)  # fmt: skip
    if thickness > max(sheets):
        why = f"the plate is {thickness:.1f} mm thick, thicker than any sheet in stock"
    else:
        why = f"the plate is {thickness:.1f} mm thick and there is no sheet of that thickness"
    return Check(
        "sheet_thickness", FAIL, value, limit,
        f"{why}: the material comes in {listed} mm sheet; make it one of those",
        machine.key,
    )  # fmt: skip


def _min_feature(machine: MachineLimits, sliced: Sliced, kerf: float) -> Check:
    (slab,) = sliced.slabs
    limit = f"≥ {kerf:g} mm (the kerf)"
    stock = shapely.box(*sliced.footprint.bounds).buffer(kerf + 1)
    empty = stock.difference(slab.material)
    narrowest = narrowest_gap(empty, up_to=kerf / 2)
    if narrowest is not None:
        return Check(
            "min_feature", FAIL, f"{narrowest.width_mm:.2f} mm slot", limit,
            f"a slot {narrowest.width_mm:.2f} mm wide near "
            f"{where(sliced, slab, narrowest.x, narrowest.y)} is narrower than the laser's "
            f"kerf ({kerf:g} mm): widen it to {kerf:g} mm or more",
            machine.key,
        )  # fmt: skip
    cut_outs = [
        2 * inscribed(p)[0] for p in shapely.get_parts(empty) if p.distance(stock.exterior) > 1e-6
    ]
    value = f"{min(cut_outs):.1f} mm cut-out" if cut_outs else "no cut-outs"
    return Check("min_feature", PASS, value, limit,
                 f"every cut-out is wider than the {kerf:g} mm kerf", machine.key)  # fmt: skip


def _min_web(machine: MachineLimits, sliced: Sliced, web: float) -> Check:
    (slab,) = sliced.slabs
    limit = f"≥ {web:g} mm"
    thinnest = narrowest_gap(slab.material, up_to=web / 2)
    if thinnest is None:
        return Check("min_web", PASS, f"none under {web:g} mm", limit,
                     f"no material between two cuts is narrower than {web:g} mm",
                     machine.key)  # fmt: skip
    return Check(
        "min_web", FAIL, f"{thinnest.width_mm:.2f} mm web", limit,
        f"the material between two cuts near {where(sliced, slab, thinnest.x, thinnest.y)} is "
        f"{thinnest.width_mm:.2f} mm wide: under {web:g} mm it burns away or breaks; widen it "
        f"to {web:g} mm",
        machine.key,
    )  # fmt: skip


def _fixturing(machine: MachineLimits, sliced: Sliced, limits: ValidationLimits) -> Check:
    low_x, low_y, high_x, high_y = sliced.footprint.bounds
    narrow, wide = sorted((high_x - low_x, high_y - low_y))
    least = limits.laser_min_part_mm
    value, limit = f"{narrow:.1f} x {wide:.1f} mm", f"≥ {least:g} mm across"
    if narrow < least:
        return Check(
            "fixturing", WARN, value, limit,
            f"the part is only {narrow:.1f} mm across: it can drop between the bed's slats "
            "and tip into the beam, so it is cut with micro-tabs holding it in the sheet "
            "(small marks to file off)",
            machine.key,
        )  # fmt: skip
    return Check("fixturing", PASS, value, limit,
                 "the part rests on the bed's slats once cut free", machine.key)  # fmt: skip
