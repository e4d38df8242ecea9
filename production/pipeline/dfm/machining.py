"""CNC milling and laser cutting: stock size, and whether the shape suits the process.

Both look at face normals against each axis direction. A 3-axis mill working from one side
makes vertical walls, flat floors facing the tool and, with a ball-end cutter, slopes facing
it; a face turned away from the tool above the stock's bottom is an undercut. A laser cuts
plates: every face is a vertical wall or lies in the top or bottom plane.
"""

import math

import numpy as np

from .checks import FAIL, PASS, WARN, Check
from .fdm import build_volume_check
from .integrity import Solid
from .limits import CNC_MILL, MachineLimits

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
) -> list[Check]:
    """Stock or bed size as modelled, then 2.5D (mill) or 2D (laser)."""
    fit = build_volume_check(machine, modelled_extents_mm, None)
    if machine.process == CNC_MILL:
        return [fit, _two_and_a_half_d(machine, solid)]
    return [fit, _flat_plate(machine, solid)]


def _two_and_a_half_d(machine: MachineLimits, solid: Solid) -> Check:
    area = solid.areas
    noise = _NOISE * float(area.sum())
    best: tuple[float, float, str] | None = None
    for name, axis in _AXES.items():
        along = solid.normals @ np.array(axis, dtype=float)
        height = solid.triangles @ np.array(axis, dtype=float)  # (faces, 3) heights along axis
        bottom = height.max(axis=1) <= height.min() + _PLANE_TOLERANCE_MM
        undercut = float(area[(along < -_SQUARE) & ~((along < -_FLAT) & bottom)].sum())
        sloped = float(area[(along > _SQUARE) & (along < _FLAT)].sum())
        result = (undercut if undercut > noise else 0.0, sloped if sloped > noise else 0.0, name)
        if best is None or result[:2] < best[:2]:
            best = result
    assert best is not None
    undercut, sloped, side = best
    limit = "walls and floors seen from one side"
    if undercut:
        return Check(
            "two_and_a_half_d", FAIL, f"{undercut:.0f} mm² undercut", limit,
            f"from every side, {undercut:.0f} mm² or more faces away from the cutter "
            "(undercuts): it cannot be milled on a 3-axis machine in one setup; redesign it "
            "or choose FDM",
            machine.key,
        )  # fmt: skip
    if sloped:
        return Check(
            "two_and_a_half_d", WARN, f"{sloped:.0f} mm² sloped", limit,
            f"milled from {side}: {sloped:.0f} mm² of sloped or curved surface needs 3D "
            "finishing with a ball-end cutter",
            machine.key,
        )  # fmt: skip
    return Check("two_and_a_half_d", PASS, f"2.5D from {side}", limit,
                 f"2.5D: every face can be milled from {side}", machine.key)  # fmt: skip


def _flat_plate(machine: MachineLimits, solid: Solid) -> Check:
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
            return Check(
                "flat_plate", FAIL, f"{thickness:.1f} mm thick", limit,
                f"the plate is {thickness:.1f} mm thick; {machine.title} cuts sheet up to "
                f"{max_sheet:g} mm",
                machine.key,
            )  # fmt: skip
        return Check("flat_plate", PASS, f"{thickness:.1f} mm plate ({name[1]} normal)", limit,
                     f"a {thickness:.1f} mm plate: cuttable from sheet", machine.key)  # fmt: skip
    return Check(
        "flat_plate", FAIL, "not a plate", limit,
        "the part is not a flat plate of constant thickness with straight-through edges: it "
        "cannot be laser cut; choose FDM or CNC milling",
        machine.key,
    )  # fmt: skip
