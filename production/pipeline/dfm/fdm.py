"""Printability on one FDM machine, in the chosen print orientation."""

import math
from collections.abc import Sequence

from .checks import FAIL, PASS, WARN, Check
from .limits import MachineLimits, ValidationLimits
from .orientation import Orientation, fits_volume
from .thickness import Thickness


def fdm_checks(
    machine: MachineLimits,
    *,
    modelled_extents_mm: tuple[float, float, float],
    orientation: Orientation,
    thickness: Thickness,
    limits: ValidationLimits,
) -> list[Check]:
    """Build volume, walls, small details, overhangs, first layer and tipping."""
    return [
        build_volume_check(machine, modelled_extents_mm, orientation),
        _min_wall(machine, thickness, limits),
        _small_features(machine, thickness),
        _overhang(machine, orientation, limits),
        _first_layer(machine, orientation, limits),
        _tipping(machine, orientation, limits),
    ]


def build_volume_check(
    machine: MachineLimits, extents: Sequence[float], orientation: Orientation | None
) -> Check:
    """The part as modelled fits the machine, axis by axis: routing and the slicer place it
    as modelled. Where it would fit turned, the message says how to turn it."""
    x, y, z = extents
    bx, by, bz = machine.build_volume_mm
    size = f"{x:.1f} x {y:.1f} x {z:.1f} mm"
    volume = f"{bx:g} x {by:g} x {bz:g} mm"
    if x <= bx and y <= by and z <= bz:
        return Check("build_volume", PASS, size, volume, f"fits {machine.title}", machine.key)
    how = turned_fit(machine, extents, orientation)
    if how is None:
        message = f"the part ({size}) is larger than {machine.title}'s build volume ({volume})"
    else:
        message = (
            f"the part ({size}) fits {machine.title} only {how}: rotate it that way in the "
            "model, as parts are made in the orientation they are modelled in"
        )
    return Check("build_volume", FAIL, size, volume, message, machine.key)


def turned_fit(
    machine: MachineLimits, extents: Sequence[float], orientation: Orientation | None
) -> str | None:
    """How the part would fit the machine if it were turned, or None."""
    if fits_volume(extents, machine.build_volume_mm):
        return "turned 90° about Z"
    if orientation is not None and fits_volume(orientation.extents_mm, machine.build_volume_mm):
        return orientation.label
    return None


def _min_wall(machine: MachineLimits, thickness: Thickness, limits: ValidationLimits) -> Check:
    """Below two nozzle widths a wall is one weak extrusion (warn); below one it cannot be
    extruded at all (fail). The factors are limits.min_wall_factor and min_wall_fail_factor."""
    sound = limits.min_wall_factor * machine.nozzle_mm
    possible = limits.min_wall_fail_factor * machine.nozzle_mm
    thinnest = thickness.thinnest(thickness.walls_mm)
    value = _thickness(thinnest, thickness.reach_mm)
    limit = f"≥ {sound:g} mm (fails below {possible:g} mm)"
    if thinnest >= sound:
        return Check("min_wall", PASS, value, limit, f"thinnest wall {value}", machine.key)
    advice = "make that wall thicker (a parameter such as 'wall') or choose the CNC process"
    if thinnest >= possible:
        return Check(
            "min_wall", WARN, value, limit,
            f"thinnest wall {value}, {machine.title} needs at least {sound:g} mm "
            f"({limits.min_wall_factor:g} x its {machine.nozzle_mm:g} mm nozzle) for a sound "
            f"wall: {advice}",
            machine.key,
        )  # fmt: skip
    return Check(
        "min_wall", FAIL, value, limit,
        f"thinnest wall {value}, {machine.title} cannot print walls thinner than "
        f"{possible:g} mm and needs {sound:g} mm for a sound wall: {advice}",
        machine.key,
    )  # fmt: skip


def _small_features(machine: MachineLimits, thickness: Thickness) -> Check:
    nozzle = machine.nozzle_mm
    thin = thickness.area_below(thickness.walls_mm, nozzle)
    narrow = thickness.area_below(thickness.gaps_mm, nozzle)
    limit = f"≥ {nozzle:g} mm (the nozzle)"
    if thin == 0 and narrow == 0:
        return Check(
            "small_features", PASS, "none", limit,
            f"no detail or gap is narrower than the {nozzle:g} mm nozzle", machine.key,
        )  # fmt: skip
    problems = []
    if thin:
        problems.append(f"about {thin:.0f} mm² of surface belongs to details thinner than "
                        f"the {nozzle:g} mm nozzle, which will not print")  # fmt: skip
    if narrow:
        problems.append(f"about {narrow:.0f} mm² faces gaps narrower than {nozzle:g} mm, "
                        "which will close up")  # fmt: skip
    value = ", ".join(
        part for part in (f"{thin:.0f} mm² thin" if thin else "", f"{narrow:.0f} mm² narrow gaps"
                          if narrow else "") if part
    )  # fmt: skip
    return Check(
        "small_features", WARN, value, limit,
        "; ".join(problems) + ": enlarge them or accept that they will be lost", machine.key,
    )  # fmt: skip


def _overhang(machine: MachineLimits, orientation: Orientation, limits: ValidationLimits) -> Check:
    area = orientation.support_area_mm2
    limit = f"0 mm² steeper than {limits.overhang_deg:g}° (bridges ≤ {limits.bridge_mm:g} mm)"
    if area == 0:
        return Check(
            "overhang", PASS, "0 mm²", limit,
            f"no support needed {orientation.label}", machine.key,
        )  # fmt: skip
    return Check(
        "overhang", WARN, f"{area:.0f} mm²", limit,
        f"{area:.0f} mm² of overhang steeper than {limits.overhang_deg:g}° needs support "
        f"{orientation.label}: expect support marks there, or add chamfers under overhangs",
        machine.key,
    )  # fmt: skip


def _first_layer(
    machine: MachineLimits, orientation: Orientation, limits: ValidationLimits
) -> Check:
    area = orientation.contact_area_mm2
    limit = f"≥ {limits.min_contact_mm2:g} mm²"
    if area >= limits.min_contact_mm2:
        return Check("first_layer", PASS, f"{area:.0f} mm²", limit,
                     f"{area:.0f} mm² on the bed", machine.key)  # fmt: skip
    if area == 0:
        message = (
            "no flat face rests on the bed (it touches along an edge or at a point): it needs "
            "a raft or supports, or a flat face added to stand on"
        )
    else:
        message = f"only {area:.0f} mm² touches the bed: print with a brim so it stays put"
    return Check("first_layer", WARN, f"{area:.0f} mm²", limit, message, machine.key)


def _tipping(machine: MachineLimits, orientation: Orientation, limits: ValidationLimits) -> Check:
    base, height = orientation.base_width_mm, orientation.height_mm
    limit = f"≤ {limits.max_height_to_base:g} : 1"
    if base <= 0:
        return Check(
            "tipping", WARN, "no base", limit,
            "it has nothing flat to stand on and will topple without a raft or supports",
            machine.key,
        )  # fmt: skip
    ratio = height / base
    value = f"{ratio:.1f} : 1"
    if ratio <= limits.max_height_to_base:
        return Check("tipping", PASS, value, limit,
                     f"stands steadily ({height:.0f} mm high on a {base:.0f} mm base)",
                     machine.key)  # fmt: skip
    return Check(
        "tipping", WARN, value, limit,
        f"tall and narrow: {height:.1f} mm high on a {base:.1f} mm base, it may be knocked over "
        "while printing: add a brim, or widen its base",
        machine.key,
    )  # fmt: skip


def _thickness(value: float, reach: float) -> str:
    return (
        f"≥ {reach:g} mm"
        if math.isinf(value)
        else f"{value:.2g} mm"
        if value < 1
        else f"{value:.1f} mm"
    )
