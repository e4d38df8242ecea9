"""CNC milling programs: how long planning takes per demo part, and how far the planner's time
estimate (feed moves at their feed, rapids at the rapid rate, tool changes; no accelerations)
is from a model with accelerations.

The model with accelerations is our own, over the moves parsed back from the GRBL program
(drilling already expanded there): arcs are cut into chords of at most 0.002 mm sagitta (GRBL's
`arc_tolerance`), every segment is a trapezoid (accelerate, cruise, brake) at the machine's
acceleration, and the speed through a junction is GRBL's junction-deviation limit
(v^2 = a * delta * sin(theta/2) / (1 - sin(theta/2)), delta = 0.01 mm: $11), found with a
backward and a forward pass so that every segment can brake into the next. The machine stops
at M0 (tool changes), dwells (G4) and the ends. Tool changes and dwells add the same fixed
times as the estimate.

Parts: the seed cover plate (defaults and its range corners, from the thinnest standard plate
that holds it) and the tests' block (a pocket, a slot, a through hole), in
aluminium 6061 and acrylic. Each is built once with CadQuery (not timed); planning (reading
the STEP included) is timed --repeats times, the median reported.

    .venv/bin/python benchmarks/cnc_programs.py --repeats 3
"""

import argparse
import math
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.parts import DEMO_PARTS  # noqa: E402
from production.toolpath.cnc_tools import DEFAULT_TOOL_TABLE, MillProfile  # noqa: E402
from production.toolpath.milling import plan_milling, plate_thickness_for  # noqa: E402
from production.toolpath.posts import SPINDLE_DWELL_S  # noqa: E402
from tests.catalog.corners import corners  # noqa: E402
from tests.production.toolpath.cnc_parts import (  # noqa: E402
    block_with_features,
    seed_solid,
    step_and_stl,
)

MILL = MillProfile(machine_model="Compact GRBL mill", travel_mm=(300, 300, 80))
PLATES = [2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0]
JUNCTION_DEVIATION_MM = 0.01
ARC_TOLERANCE_MM = 0.002
WORD = re.compile(r"([GXYZIJFP])(-?\d+(?:\.\d+)?)")


def segments(gcode: bytes, *, start_z: float) -> list[tuple[float, float, float, float] | None]:
    """(dx, dy, dz, speed mm/s) per straight piece; None where the machine stops (M0, G4)."""
    x, y, z = 0.0, 0.0, start_z
    feed, motion = 0.0, "G0"
    rapid = MILL.rapid_mm_min / 60
    out: list[tuple[float, float, float, float] | None] = []
    for line in gcode.decode("ascii").splitlines():
        if line.startswith("(") or not line.strip():
            continue
        if line.startswith("M0") or line.startswith("G4"):
            out.append(None)
            continue
        words = dict(WORD.findall(line))
        codes = re.findall(r"G\d+", line)
        for code in codes:
            if code in ("G0", "G1", "G2", "G3"):
                motion = code
        if "F" in words:
            feed = float(words["F"]) / 60
        if not any(k in words for k in "XYZ"):
            continue
        nx, ny, nz = (float(words.get(k, v)) for k, v in (("X", x), ("Y", y), ("Z", z)))
        speed = rapid if motion == "G0" else feed
        if motion in ("G2", "G3"):
            cx, cy = x + float(words["I"]), y + float(words["J"])
            r = math.hypot(x - cx, y - cy)
            a0, a1 = math.atan2(y - cy, x - cx), math.atan2(ny - cy, nx - cx)
            sweep = (a0 - a1) if motion == "G2" else (a1 - a0)
            sweep %= 2 * math.pi
            sweep = sweep or 2 * math.pi
            step = 2 * math.acos(max(-1.0, 1 - ARC_TOLERANCE_MM / r)) if r > 0 else sweep
            count = max(1, math.ceil(sweep / step))
            sign = -1 if motion == "G2" else 1
            px, py, pz = x, y, z
            for k in range(1, count + 1):
                angle = a0 + sign * sweep * k / count
                qx, qy = cx + r * math.cos(angle), cy + r * math.sin(angle)
                qz = z + (nz - z) * k / count
                out.append((qx - px, qy - py, qz - pz, speed))
                px, py, pz = qx, qy, qz
        else:
            out.append((nx - x, ny - y, nz - z, speed))
        x, y, z = nx, ny, nz
    return out


def trapezoid_time_s(pieces: list[tuple[float, float, float, float] | None], a: float) -> float:
    """Seconds for the pieces with acceleration a and GRBL's junction speeds."""
    total = 0.0
    run: list[tuple[float, float, float, float]] = []
    for piece in [*pieces, None]:
        if piece is None:
            total += _run_time(run, a)
            run = []
        elif math.hypot(*piece[:3]) > 1e-9:
            run.append(piece)
    return total


def _run_time(run: list[tuple[float, float, float, float]], a: float) -> float:
    """One run from standstill to standstill."""
    if not run:
        return 0.0
    lengths = [math.hypot(*p[:3]) for p in run]
    units = [tuple(c / length for c in p[:3]) for p, length in zip(run, lengths, strict=True)]
    vmax = [p[3] for p in run]
    n = len(run)
    # Junction limits between piece i-1 and i (entry speed of piece i).
    entry = [0.0] * (n + 1)
    for i in range(1, n):
        cos_theta = -sum(u * v for u, v in zip(units[i - 1], units[i], strict=True))
        if cos_theta > 0.999999:
            limit = 0.0
        elif cos_theta < -0.999999:
            limit = math.inf
        else:
            sin_half = math.sqrt(0.5 * (1 - cos_theta))
            limit = math.sqrt(a * JUNCTION_DEVIATION_MM * sin_half / (1 - sin_half))
        entry[i] = min(limit, vmax[i - 1], vmax[i])
    for i in range(n - 1, -1, -1):  # backward: every piece can brake into the next
        entry[i] = min(entry[i], math.sqrt(entry[i + 1] ** 2 + 2 * a * lengths[i]))
    for i in range(n):  # forward: every piece can reach its exit speed
        entry[i + 1] = min(entry[i + 1], math.sqrt(entry[i] ** 2 + 2 * a * lengths[i]))
    seconds = 0.0
    for i in range(n):
        v0, v1, v, length = entry[i], entry[i + 1], vmax[i], lengths[i]
        # The peak speed reachable given the length: accelerate from v0, brake to v1.
        peak = math.sqrt((2 * a * length + v0**2 + v1**2) / 2)
        top = min(v, peak)
        d_acc = (top**2 - v0**2) / (2 * a)
        d_dec = (top**2 - v1**2) / (2 * a)
        cruise = max(0.0, length - d_acc - d_dec)
        seconds += (top - v0) / a + (top - v1) / a + cruise / top
    return seconds


def demo_parts() -> list[tuple[str, bytes, bytes, float]]:
    cover = next(p for p in DEMO_PARTS if p.slug == "cover_plate")
    parts = []
    configurations = {"defaults": {}} | corners(cover)
    for name, values in configurations.items():
        thickness = values.get("thickness", 3.0)
        step, stl = step_and_stl(seed_solid("cover_plate", **values), stl_tolerance_mm=0.2)
        parts.append((f"cover_plate {name}", step, stl, thickness))
    step, stl = step_and_stl(block_with_features())
    parts.append(("block (pocket, slot, hole)", step, stl, 10.0))
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        "| part | material | plate | plan (median) | G-code lines | estimate | with "
        "accelerations | estimate / model |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, step, stl, height in demo_parts():
        for material in ("aluminium-6061", "acrylic"):
            plate = plate_thickness_for(height_mm=height, thicknesses_mm=PLATES)
            timings = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                program = plan_milling(
                    step=step,
                    stl=stl,
                    material=material,
                    stock_thickness_mm=plate,
                    tools=DEFAULT_TOOL_TABLE,
                    machine=MILL,
                    dialect="grbl",
                )
                timings.append(time.perf_counter() - started)
            pieces = segments(program.gcode, start_z=10.0)
            changes = program.gcode.count(b"\nM0\n")
            fixed = max(0, changes - 1) * MILL.tool_change_s + changes * SPINDLE_DWELL_S
            model = trapezoid_time_s(pieces, MILL.acceleration_mm_s2) + fixed
            lines = program.gcode.count(b"\n")
            print(
                f"| {name} | {material} | {plate:g} mm | {statistics.median(timings):.2f} s "
                f"| {lines} | {program.estimated_time_s / 60:.1f} min | {model / 60:.1f} min "
                f"| {program.estimated_time_s / model:.2f} |"
            )


if __name__ == "__main__":
    main()
