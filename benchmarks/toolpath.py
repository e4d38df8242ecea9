"""Slice time of the toolpath engines: builtin vs PrusaSlicer on the four demo parts.

Builds each demo part at its default parameters (CadQuery in the geometry child, without
bubblewrap), then slices it --runs times with each engine for a Prusa MK4 profile with PLA
and reports the median, plus the time verify.py takes on the result. No database.

    .venv/bin/python benchmarks/toolpath.py --runs 5
"""

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from catalog.geometry import BuildLimits, build_geometry  # noqa: E402
from catalog.parameters import defaults, parse_schema  # noqa: E402
from catalog.parts import DEMO_PARTS  # noqa: E402
from production.toolpath import FdmProfile, Toolpath, engines  # noqa: E402
from production.toolpath.verify import verify_gcode  # noqa: E402

PROFILE = FdmProfile(machine_model="Prusa MK4", bed_mm=(250.0, 210.0), max_height_mm=220.0)


def median_s(run: Callable[[], Toolpath], runs: int) -> tuple[float, Toolpath]:
    """The median wall time of `runs` calls, and the last call's toolpath."""
    times = []
    for _ in range(max(runs, 1)):
        started = time.perf_counter()
        toolpath = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), toolpath


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", default="prusa-slicer", help="the PrusaSlicer CLI")
    args = parser.parse_args()

    print(f"PrusaSlicer: {engines.engine_version('prusaslicer', prusaslicer_binary=args.binary)}")
    print(
        f"median of {args.runs} runs; profile {PROFILE.machine_model}, "
        f"{PROFILE.layer_height_mm} mm layers, {PROFILE.infill_density:.0%} infill\n"
    )
    print("| part | engine | slice (median) | verify | layers | filament | est. time |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for part in DEMO_PARTS:
        parameters = defaults(parse_schema(part.schema))
        built = build_geometry(part.script, parameters, limits=BuildLimits(require_bwrap=False))
        for engine in engines.ENGINES:
            slice_once = functools.partial(
                engines.plan,
                built.stl,
                PROFILE,
                engine=engine,
                timeout_s=300,
                prusaslicer_binary=args.binary,
            )
            seconds, toolpath = median_s(slice_once, args.runs)
            started = time.perf_counter()
            verify_gcode(toolpath.gcode, stl=built.stl, profile=PROFILE)
            verify_s = time.perf_counter() - started
            print(
                f"| {part.slug} | {engine} | {seconds:.2f} s | {verify_s:.2f} s "
                f"| {toolpath.layers} | {toolpath.filament_g:.1f} g "
                f"| {toolpath.estimated_time_s / 60:.0f} min |",
                flush=True,
            )


if __name__ == "__main__":
    main()
