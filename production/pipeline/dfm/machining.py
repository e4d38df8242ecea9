"""CNC milling and laser cutting: stock size, and whether the shape suits the process.

Both look at face normals against each axis direction. A 3-axis mill working from one side
makes vertical walls, flat floors facing the tool and, with a ball-end cutter, slopes facing
it; a face turned away from the tool above the stock's bottom is an undercut. A laser cuts
plates: every face is a vertical wall or lies in the top or bottom plane.

Once the shape suits the process, the part's sections seen from that side are measured
against the tools: production.pipeline.dfm.tool_access (mill: plate, inside corners, slots,
pocket depth, thin walls, holding) and production.pipeline.dfm.sheet_cutting (laser: sheet,
kerf, webs, holding).
"""

import math

import numpy as np

from .checks import FAIL, PASS, WARN, Check
from .fdm import build_volume_check
from .integrity import Solid
from .limits import CNC_MILL, MachineLimits, ValidationLimits
from .sections import slice_for_milling, slice_plate
from .sheet_cutting import laser_checks
from .tool_access import milling_checks

_SQUARE = math.sin(math.radians(1))  # |cos| below this: a wall
_FLAT = math.cos(math.radians(1))  # |cos| above this: a floor, ceiling or plate face
_PLANE_TOLERANCE_MM = 0.01
_NOISE = 0.001  # surface shares below this are tessellation noise, not features
_AXES = {"+X": (1, 0, 0), "-X": (-1, 0, 0), "+Y": (0, 1, 0), "-Y": (0, -1, 0),
         "+Z": (0, 0, 1), "-Z": (0, 0, -1)}  # fmt: skip


def machining_checks(
    machine: MachineLimits,
    *,
    solid: Solid,
    modelled_extents_mm: tuple[float, float, float],
    limits: ValidationLimits | None = None,
) -> list[Check]:
    """Stock or bed size as modelled, then 2.5D (mill) or 2D (laser), then - when the shape
    suits the process - the tools: what the cutter or the beam can make (`limits`' defaults
    for what the machine does not say)."""
    limits = limits or ValidationLimits()
    fit = build_volume_check(machine, modelled_extents_mm, None)
    if machine.process == CNC_MILL:
        shape, side = _two_and_a_half_d(machine, solid)
        if shape.status == FAIL:
            return [fit, shape]  # no side to look from: the tools cannot be measured
        sliced = slice_for_milling(solid.mesh, _AXES[side], max_slabs=limits.cnc_max_slabs)
        if sliced.footprint.is_empty:  # no closed section: nothing the tools could be held to
            return [fit, shape]
        return [fit, shape, *milling_checks(machine, sliced=sliced, limits=limits)]
    plate, normal = _flat_plate(machine, solid)
    if normal is None:
        return [fit, plate]
    sliced = slice_plate(solid.mesh, _AXES[normal])
    if sliced.footprint.is_empty:
        return [fit, plate]
    return [fit, plate, *laser_checks(machine, sliced=sliced, limits=limits)]


def _two_and_a_half_d(machine: MachineLimits, solid: Solid) -> tuple[Check, str]:
    """The check, and the side the part is milled from ("+Z", ...)."""
    area = solid.areas
    noise = _NOISE * float(area.sum())
    best: tuple[float, float, float, str] | None = None
    for name, axis in _AXES.items():
        along = solid.normals @ np.array(axis, dtype=float)
        height = solid.triangles @ np.array(axis, dtype=float)  # (faces, 3) heights along axis
        bottom = height.max(axis=1) <= height.min() + _PLANE_TOLERANCE_MM
        undercut = float(area[(along < -_SQUARE) & ~((along < -_FLAT) & bottom)].sum())
        sloped = float(area[(along > _SQUARE) & (along < _FLAT)].sum())
        # Ties go to the side the part is lowest from: a plate is milled from its face.
        result = (
            undercut if undercut > noise else 0.0,
            sloped if sloped > noise else 0.0,
            float(height.max() - height.min()),
            name,
        )
        if best is None or result[:3] < best[:3]:
            best = result
    assert best is not None
    undercut, sloped, _, side = best
    limit = "walls and floors seen from one side"
    if undercut:
        return (Check(
            "two_and_a_half_d", FAIL, f"{undercut:.0f} mm² undercut", limit,
            f"from every side, {undercut:.0f} mm² or more faces away from the cutter "
            "(undercuts): it cannot be milled on a 3-axis machine in one setup; redesign it "
            "or choose FDM",
            machine.key,
        ), side)  # fmt: skip
    if sloped:
        return (Check(
            "two_and_a_half_d", WARN, f"{sloped:.0f} mm² sloped", limit,
            f"milled from {side}: {sloped:.0f} mm² of sloped or curved surface needs 3D "
            "finishing with a ball-end cutter",
            machine.key,
        ), side)  # fmt: skip
    return (Check("two_and_a_half_d", PASS, f"2.5D from {side}", limit,
                  f"2.5D: every face can be milled from {side}", machine.key), side)  # fmt: skip


def _flat_plate(machine: MachineLimits, solid: Solid) -> tuple[Check, str | None]:
    """The check, and the plate's normal ("+Z", "+X" or "+Y"); None when it is no plate."""
    area = solid.areas
    noise = _NOISE * float(area.sum())
    max_sheet = machine.build_volume_mm[2]
    limit = f"a flat plate ≤ {max_sheet:g} mm thick"
    for name in ("+Z", "+X", "+Y"):
        axis = np.array(_AXES[name], dtype=float)
        along = np.abs(solid.normals @ axis)
        height = solid.triangles @ axis
        low, high = height.min(), height.max()
        in_plane = (height.min(axis=1) >= high - _PLANE_TOLERANCE_MM) | (
            height.max(axis=1) <= low + _PLANE_TOLERANCE_MM
        )
        odd = ~((along < _SQUARE) | ((along > _FLAT) & in_plane))
        if float(area[odd].sum()) > noise:
            continue
        thickness = float(high - low)
        if thickness > max_sheet:
            return (Check(
                "flat_plate", FAIL, f"{thickness:.1f} mm thick", limit,
                f"the plate is {thickness:.1f} mm thick; {machine.title} cuts sheet up to "
                f"{max_sheet:g} mm",
                machine.key,
            ), None)  # fmt: skip
        return (Check("flat_plate", PASS, f"{thickness:.1f} mm plate ({name[1]} normal)", limit,
                      f"a {thickness:.1f} mm plate: cuttable from sheet", machine.key),
                name)  # fmt: skip
    return (Check(
        "flat_plate", FAIL, "not a plate", limit,
        "the part is not a flat plate of constant thickness with straight-through edges: it "
        "cannot be laser cut; choose FDM or CNC milling",
        machine.key,
    ), None)  # fmt: skip
