"""Planning and verification time of laser programs for the laser demo parts.

Builds each cover plate configuration in the geometry sandbox (not timed), then --repeat times:
plans its program (production.toolpath.laser.plan_cutting: STEP outline, kerf offset, order,
lead-ins, G-code) and verifies it (laser_verify.check_cutting: reads the G-code back and
checks it against the part). Prints the median wall-clock and CPU times, the program's size,
and its estimated time (production.toolpath.motion's trapezoids with jerk-limited corners, at
the --acceleration and --jerk given) beside the plain feed-and-rapid model (cut length / cut
speed + travel length / rapid speed). The first call pays for importing CadQuery/OCP
(the "cold" column). No database or Django settings needed.

    .venv/bin/python benchmarks/laser_programs.py --repeat 5
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (cover_plate parameters over its defaults, material, sheet mm, laser source)
CASES: dict[str, tuple[dict[str, Any], str, float, str]] = {
    "cover plate, default (6 holes)": ({}, "acrylic", 3.0, "co2"),
    "cover plate 190 mm, 28 countersunk holes": (
        {
            "length": 190,
            "width": 190,
            "thickness": 8,
            "corner_r": 15,
            "hole_d": 8.5,
            "holes_x": 8,
            "holes_y": 8,
            "edge_margin": 20,
            "countersunk": True,
        },
        "acrylic",
        8.0,
        "co2",
    ),
    "cover plate, 1.5 mm stainless": (
        {"thickness": 1.5, "holes_x": 5, "holes_y": 3},
        "stainless-steel",
        1.5,
        "fibre",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--acceleration", type=float, default=1500.0, help="mm/s²")
    parser.add_argument("--jerk", type=float, default=10.0, help="mm/s")
    args = parser.parse_args()

    from catalog.geometry import BuildLimits, build_geometry
    from catalog.parts import DEMO_PARTS
    from production.toolpath.laser import LaserProfile, plan_cutting
    from production.toolpath.laser_verify import check_cutting

    part = next(p for p in DEMO_PARTS if p.slug == "cover_plate")
    defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
    motion = {"acceleration_mm_s2": args.acceleration, "jerk_mm_s": args.jerk}
    machines = {
        "co2": LaserProfile(machine_model="CO2 80 W", bed_mm=(600, 400), source="co2", **motion),
        "fibre": LaserProfile(
            machine_model="fibre 1.5 kW", bed_mm=(300, 300), source="fibre", **motion
        ),
    }
    print(
        "| part | sheet | contours | G-code | cold plan | plan | plan CPU | verify | verify CPU "
        "| length / speed | estimate (accelerations) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cold = True
    for name, (overrides, material, thickness, source) in CASES.items():
        geometry = build_geometry(
            part.script, {**defaults, **overrides}, limits=BuildLimits(require_bwrap=False)
        )
        machine = machines[source]
        kwargs = dict(step=geometry.step, stl=geometry.stl, material=material)
        plan_wall, plan_cpu, verify_wall, verify_cpu = [], [], [], []
        first = ""
        for n in range(args.repeat + (1 if cold else 0)):
            wall, cpu = time.perf_counter(), time.process_time()
            program = plan_cutting(**kwargs, thickness_mm=thickness, machine=machine)
            if cold and n == 0:
                first = f"{time.perf_counter() - wall:.2f} s"
                continue
            plan_wall.append(time.perf_counter() - wall)
            plan_cpu.append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            report = check_cutting(program.gcode, **kwargs, thickness_mm=thickness, machine=machine)
            verify_wall.append(time.perf_counter() - wall)
            verify_cpu.append(time.process_time() - cpu)
            assert not report.failures, report.failures
        cold = False
        setting = program.tools[0]
        at_speed = 60 * (
            program.cut_length_mm / setting.feed_mm_min
            + program.rapid_length_mm / machine.travel_mm_min
        )
        print(
            f"| {name} | {thickness:g} mm {material} ({source}) | {report.contours} "
            f"| {len(program.gcode) / 1024:.0f} KiB | {first or '-'} "
            f"| {statistics.median(plan_wall):.2f} s | {statistics.median(plan_cpu):.2f} s "
            f"| {statistics.median(verify_wall):.2f} s | {statistics.median(verify_cpu):.2f} s "
            f"| {at_speed:.0f} s | {program.estimated_time_s:.0f} s "
            f"({program.estimated_time_s / at_speed:.2f}x) |"
        )


if __name__ == "__main__":
    main()
