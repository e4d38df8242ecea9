"""CNC milling: can the machine's end mills make every feature, and hold the part?

Measured on the slabs of production.pipeline.dfm.sections (the part's cross-sections between
the floors the cutter reaches, seen from the side the 2.5D check chose) with
production.pipeline.dfm.reach:

    plate_stock    the part's height against the material's plate thicknesses
    inside_corners the tightest inside corner against the smallest end mill's radius: a
                   round cutter leaves its own radius in every inside corner
    min_feature    slots, holes and gaps narrower than the smallest end mill
    pocket_depth   an enclosed pocket's depth over its narrowest width: an end mill reaches
                   a few diameters deep (round holes are drilled: left out)
    thin_walls     wall height over thickness: tall thin walls vibrate (chatter) under the
                   cutter
    fixturing      a footprint too narrow to clamp
"""

import math
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from .checks import FAIL, PASS, WARN, Check
from .limits import MachineLimits, ValidationLimits
from .reach import EPSILON_MM, Piece, corner_at, inscribed, narrowest_gap, tightest_corner
from .sections import Slab, Sliced

_SHARP_MM = 0.15  # a measured corner radius below this is a sharp corner
_CORNER_RANGE_MM = 5.0  # inside corners are measured up to this radius (or 2 x the tool's)
_ROUND_HOLE = 0.95  # its inscribed circle covers this share of it: a round (drilled) hole
_PLATE_TOLERANCE_MM = 0.01


@dataclass(frozen=True)
class Where:
    slab: Slab
    piece: Piece


def milling_checks(
    machine: MachineLimits, *, sliced: Sliced, limits: ValidationLimits
) -> list[Check]:
    """The plate (when the material is known), then what the smallest end mill can reach,
    pockets, walls and holding; `limits` has the shop's defaults for what the machine does
    not say."""
    end_mill = machine.smallest_end_mill_mm or limits.cnc_smallest_end_mill_mm
    radius = end_mill / 2
    up_to = max(2 * radius, _CORNER_RANGE_MM)
    # The plate around the part: wide enough for the largest disc we measure with, and round
    # so that its own corners are no inside corners.
    stock = shapely.box(*sliced.footprint.bounds).buffer(2 * up_to + 1)
    empty = [stock.difference(slab.material) for slab in sliced.slabs]
    checks = [
        _inside_corners(machine, sliced, empty, end_mill, up_to),
        _min_feature(machine, sliced, empty, end_mill),
        _pocket_depth(machine, sliced, empty, stock, limits),
        _thin_walls(machine, sliced, limits),
        _fixturing(machine, sliced, limits),
    ]
    if machine.sheet_thicknesses_mm is not None:
        checks.insert(0, _plate_stock(machine, sliced, machine.sheet_thicknesses_mm))
    return checks


def where(sliced: Sliced, slab: Slab, x: float, y: float) -> str:
    """A tool-frame point half-way up a slab, as modelled: "(12.0, -3.5, 5.0)"."""
    point = sliced.to_model(x, y, (slab.floor_mm + slab.ceiling_mm) / 2)
    return "({:.1f}, {:.1f}, {:.1f})".format(*(round(v, 1) + 0.0 for v in point))  # no "-0.0"


def _plate_stock(machine: MachineLimits, sliced: Sliced, plates: tuple[float, ...]) -> Check:
    height = sliced.top_mm - sliced.bottom_mm
    listed = ", ".join(f"{p:g}" for p in sorted(plates))
    limit = f"plate of {listed} mm" if plates else "a plate in stock"
    if not plates:
        return Check(
            "plate_stock", FAIL, f"{height:.1f} mm tall", limit,
            "no plate thicknesses are recorded for this material: it cannot be milled from "
            "plate; choose a material sold as plate",
            machine.key,
        )  # fmt: skip
    thick_enough = [p for p in sorted(plates) if p >= height - _PLATE_TOLERANCE_MM]
    if not thick_enough:
        return Check(
            "plate_stock", FAIL, f"{height:.1f} mm tall", limit,
            f"the part is {height:.1f} mm tall seen from the cutter; the material comes in "
            f"{listed} mm plate: make it {max(plates):g} mm or less",
            machine.key,
        )  # fmt: skip
    plate = thick_enough[0]
    faced = plate - height
    note = f", {faced:.1f} mm faced off" if faced > _PLATE_TOLERANCE_MM else ""
    return Check("plate_stock", PASS, f"{plate:g} mm plate", limit,
                 f"milled from {plate:g} mm plate{note}", machine.key)  # fmt: skip


def _inside_corners(
    machine: MachineLimits,
    sliced: Sliced,
    empty: list[BaseGeometry],
    end_mill: float,
    up_to: float,
) -> Check:
    radius = end_mill / 2
    limit = f"≥ R{radius:g} (the smallest end mill, {end_mill:g} mm)"
    failing = next(
        (
            Where(slab, piece)
            for slab, region in zip(sliced.slabs, empty, strict=True)
            if (piece := corner_at(region, radius)) is not None
        ),
        None,
    )
    # The figure: the tightest corner, measured below the tool's radius when one fails (the
    # measure is only monotonic there) and up to `up_to` otherwise.
    if failing:
        tightest = min(tightest_corner(region, up_to=radius) for region in empty)
    else:
        corners = (tightest_corner(region, up_to=up_to, clean_at=radius) for region in empty)
        tightest = min(corners, default=up_to)
    if failing is None:
        value = f"R{tightest:.1f}" if tightest < up_to else f"none under R{up_to:g}"
        return Check("inside_corners", PASS, value, limit,
                     f"every inside corner is R{radius:g} or rounder: the {end_mill:g} mm end "
                     "mill reaches it", machine.key)  # fmt: skip
    at = where(sliced, failing.slab, failing.piece.x, failing.piece.y)
    tightest = round(tightest, 1)
    if tightest < _SHARP_MM:
        return Check(
            "inside_corners", FAIL, "sharp (R0)", limit,
            f"a sharp internal corner near {at} cannot be made by any end mill (a round "
            f"cutter leaves its radius); the smallest is {end_mill:g} mm: round it to "
            f"R{radius:g} or more",
            machine.key,
        )  # fmt: skip
    return Check(
        "inside_corners", FAIL, f"R{tightest:.1f}", limit,
        f"internal corner R{tightest:.1f} near {at} needs an end mill of "
        f"{2 * tightest:.1f} mm or less; the smallest is {end_mill:g} mm: round it to "
        f"R{radius:g} or more",
        machine.key,
    )  # fmt: skip


def _min_feature(
    machine: MachineLimits, sliced: Sliced, empty: list[BaseGeometry], end_mill: float
) -> Check:
    limit = f"≥ {end_mill:g} mm (the smallest end mill)"
    gaps = [
        Where(slab, piece)
        for slab, region in zip(sliced.slabs, empty, strict=True)
        if (piece := narrowest_gap(region, up_to=end_mill / 2)) is not None
    ]
    if not gaps:
        return Check("min_feature", PASS, f"none under {end_mill:g} mm", limit,
                     f"every slot and hole is {end_mill:g} mm wide or more",
                     machine.key)  # fmt: skip
    narrowest = min(gaps, key=lambda g: g.piece.width_mm)
    width = narrowest.piece.width_mm
    at = where(sliced, narrowest.slab, narrowest.piece.x, narrowest.piece.y)
    return Check(
        "min_feature", FAIL, f"{width:.1f} mm gap", limit,
        f"a gap {width:.1f} mm wide near {at} needs an end mill of {width:.1f} mm or less; "
        f"the smallest is {end_mill:g} mm: widen it to {end_mill:g} mm",
        machine.key,
    )  # fmt: skip


def _pocket_depth(
    machine: MachineLimits,
    sliced: Sliced,
    empty: list[BaseGeometry],
    stock: BaseGeometry,
    limits: ValidationLimits,
) -> Check:
    warn_at, fail_at = limits.cnc_pocket_ratio_warn, limits.cnc_pocket_ratio_fail
    limit = f"depth ≤ {warn_at:g} x width (fails above {fail_at:g} x)"
    # Enclosed pockets and holes only: the space around the part touches the plate's edge.
    enclosed = [
        [p for p in shapely.get_parts(region) if p.distance(stock.exterior) > 1e-6]
        for region in empty
    ]
    worst: tuple[float, float, float, str] | None = None  # ratio, depth, width, where
    for index, (slab, pockets) in enumerate(zip(sliced.slabs, enclosed, strict=True)):
        for pocket in pockets:
            radius, x, y = inscribed(pocket)
            if radius <= 0:
                continue
            round_hole = (
                not pocket.interiors and pocket.area * _ROUND_HOLE <= math.pi * radius * radius
            )
            if round_hole:
                continue  # drilled: a twist drill reaches ten diameters deep
            top = _enclosed_up_to(sliced, enclosed, index, shapely.Point(x, y))
            depth, width = top - slab.floor_mm, 2 * radius
            ratio = depth / width
            if worst is None or ratio > worst[0]:
                worst = (ratio, depth, width, where(sliced, slab, x, y))
    if worst is None:
        return Check("pocket_depth", PASS, "no pockets", limit, "no enclosed pockets",
                     machine.key)  # fmt: skip
    ratio, depth, width, at = worst
    value = f"{ratio:.1f} x width"
    pocket = f"the pocket near {at} is {depth:.1f} mm deep and {width:.1f} mm wide"
    if ratio > fail_at:
        return Check(
            "pocket_depth", FAIL, value, limit,
            f"{pocket}: no end mill narrow enough reaches {ratio:.1f} widths deep (at most "
            f"{fail_at:g}); widen it to {depth / fail_at:.1f} mm or make it shallower",
            machine.key,
        )  # fmt: skip
    if ratio > warn_at:
        return Check(
            "pocket_depth", WARN, value, limit,
            f"{pocket}: {ratio:.1f} widths deep needs a long end mill and light cuts (slow, "
            f"dearer); widen it to {depth / warn_at:.1f} mm to avoid that",
            machine.key,
        )  # fmt: skip
    return Check("pocket_depth", PASS, value, limit,
                 f"the deepest pocket is {ratio:.1f} x its width deep", machine.key)  # fmt: skip


def _enclosed_up_to(
    sliced: Sliced, enclosed: list[list[BaseGeometry]], index: int, point: shapely.Point
) -> float:
    """The top of a pocket: the ceiling of the highest slab, from `index` up without a break,
    where the point is inside an enclosed pocket (above it the pocket opens to the side, or
    the part ends)."""
    top = sliced.slabs[index].ceiling_mm
    for slab, pockets in zip(sliced.slabs[index:], enclosed[index:], strict=True):
        if not any(p.contains(point) for p in pockets):
            break
        top = slab.ceiling_mm
    return top


def _thin_walls(machine: MachineLimits, sliced: Sliced, limits: ValidationLimits) -> Check:
    most = limits.cnc_wall_ratio_warn
    limit = f"height ≤ {most:g} x thickness"
    worst: tuple[float, float, float, str] | None = None  # ratio, thickness, height, where
    for index, slab in enumerate(sliced.slabs):
        # Only walls thinner than the tallest wall standing here may have a ratio above `most`
        # (the thinnest one here is measured: gaps in the material; its outside corners are
        # corners, not walls).
        thinnest_ok = (sliced.top_mm - slab.floor_mm) / most
        piece = narrowest_gap(slab.material, up_to=thinnest_ok / 2)
        if piece is not None:
            point = shapely.Point(piece.x, piece.y)
            top = slab.ceiling_mm
            for above in sliced.slabs[index:]:
                if not above.material.contains(point):
                    break
                top = above.ceiling_mm
            height = top - slab.floor_mm
            ratio = height / max(piece.width_mm, EPSILON_MM)
            if ratio > most and (worst is None or ratio > worst[0]):
                worst = (ratio, piece.width_mm, height, where(sliced, slab, piece.x, piece.y))
    if worst is None:
        return Check("thin_walls", PASS, f"none over {most:g} x", limit,
                     f"no wall is taller than {most:g} times its thickness",
                     machine.key)  # fmt: skip
    ratio, thickness, height, at = worst
    return Check(
        "thin_walls", WARN, f"{ratio:.1f} x thickness", limit,
        f"a wall {thickness:.1f} mm thick and {height:.1f} mm high near {at} will chatter "
        f"under the cutter (poor finish, lost accuracy): make it {height / most:.1f} mm thick "
        "or stiffen it with a rib",
        machine.key,
    )  # fmt: skip


def _fixturing(machine: MachineLimits, sliced: Sliced, limits: ValidationLimits) -> Check:
    low_x, low_y, high_x, high_y = sliced.footprint.bounds
    narrow, wide = sorted((high_x - low_x, high_y - low_y))
    least = limits.cnc_min_footprint_mm
    value, limit = f"{narrow:.1f} x {wide:.1f} mm", f"≥ {least:g} mm across"
    if narrow < least:
        return Check(
            "fixturing", WARN, value, limit,
            f"the part is only {narrow:.1f} mm across: too narrow to clamp; it is cut from a "
            "larger plate and held by tabs, which leave marks to file off",
            machine.key,
        )  # fmt: skip
    return Check("fixturing", PASS, value, limit,
                 "the plate is clamped and the part held by tabs on its outline",
                 machine.key)  # fmt: skip
