"""Milled and laser-cut jobs: how long the toolpath step takes for the seed's CNC and laser
parts (catalog.parts: milled_cover_plate, milled_flat_bracket, laser_cover_plate,
laser_flat_bracket), and where the time goes.

Pure (no database): each part is built once in the sandbox (not timed), at its defaults and at
the corners of its parameter ranges (tests/catalog/corners.py), then planned for the seed's
GRBL mill or CO2 laser (microfactory/demo seed_demo.CNC_MACHINES) exactly as the worker's
toolpath step does (production.pipeline.programs.plan_program), with the phases timed apart:

- plan: milling.plan_milling / laser.plan_cutting (the part's 2.5D description or outline
  from its STEP, the toolpaths, the post-processor);
- verify: cnc_verify.verify_program (the z-map simulation at MF_CNC_ZMAP_RESOLUTION_MM and its
  checks) / laser_verify.verify_cutting;
- render: the simulated stock's PNG / the cut paths' SVG;
- rs274: LinuxCNC's interpreter on the program;
- step: the whole of plan_program, which runs all four.

Reports the median of `--repeats` runs of each phase per configuration, and the program's own
estimate of the machine time.

    .venv/bin/python benchmarks/cnc_jobs.py [--repeats 3] [--corners 2]
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")

import django  # noqa: E402

django.setup()

from catalog.geometry import BuildLimits, build_geometry  # noqa: E402
from catalog.parts import DEMO_PARTS, DemoPart  # noqa: E402
from microfactory.demo.management.commands.seed_demo import (  # noqa: E402
    CNC_MACHINES,
    STOCK_MATERIALS,
)
from production import routing  # noqa: E402
from production.pipeline import programs  # noqa: E402
from production.pipeline.validation import ValidationReport  # noqa: E402
from production.pipeline.values import BuiltPart, GeometryMeta, MaterialFacts  # noqa: E402
from production.toolpath import cnc_render, cnc_verify, laser, laser_verify, milling  # noqa: E402
from production.toolpath.rs274 import rs274_errors  # noqa: E402
from production.toolpath.vectors import cut_svg  # noqa: E402
from tests.catalog.corners import corners  # noqa: E402

PARTS = ("milled_cover_plate", "milled_flat_bracket", "laser_cover_plate", "laser_flat_bracket")


def machine_facts(spec: dict[str, Any]) -> routing.MachineFacts:
    return routing.MachineFacts(
        key=spec["slug"],
        name=spec["name"],
        site=spec["site"],
        model=spec["model"],
        process=spec["process"],
        state="idle",
        build_volume_mm=tuple(float(v) for v in spec["volume"]),  # type: ignore[arg-type]
        nozzle_mm=0.4,
        flavour=spec["flavour"],
        materials=frozenset(spec["materials"]),
        tools=tuple(spec.get("tool_numbers", ())),
        spindle_max_rpm=float(spec.get("spindle_max_rpm") or 0),
        kerf_mm=float(spec.get("kerf_mm") or 0),
        max_power_s=int(spec.get("max_power_s") or 0),
        laser_source=spec.get("laser_source", ""),
    )


MACHINES = {spec["process"]: machine_facts(spec) for spec in CNC_MACHINES}
MATERIALS = {
    slug: MaterialFacts(slug, name, 0, 0, float(density), tuple(float(t) for t in thicknesses))
    for slug, name, _, density, _, thicknesses in STOCK_MATERIALS
}


def median_s(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(part: DemoPart, name: str, values: dict[str, Any], repeats: int) -> str:
    built = build_geometry(part.script, values, limits=BuildLimits(require_bwrap=False))
    x, y, z = built.bbox_mm
    machine = MACHINES[part.process]
    material = MATERIALS[part.materials[0]]
    thickness = programs.stock_thickness(part_mm=z, material=material, process=part.process)
    checks = programs.ProgramChecks()
    if part.process == "cnc_mill":
        profile, tools = programs.mill_profile(machine), programs.machine_tools(machine)

        def plan() -> Any:
            return milling.plan_milling(
                step=built.step, stl=built.stl, material=material.slug,
                stock_thickness_mm=thickness, tools=tools, machine=profile,
                dialect=profile.dialect,
            )  # fmt: skip

        plan()  # warm-up: the first run imports and caches (OCP, shapely) and is not typical
        plan_s, program = median_s(plan, repeats)

        def verify() -> Any:
            return cnc_verify.verify_program(
                program.gcode, stl=built.stl, stock=program.stock, tools=program.tools,
                envelope=cnc_verify.Envelope.for_travel(profile.travel_mm, program.stock),
                resolution_mm=checks.zmap_resolution_mm,
            )  # fmt: skip

        verify_s, report = median_s(verify, repeats)
        render_s, _ = median_s(lambda: cnc_render.render_simulation(report.simulation), repeats)
    else:
        lprofile = programs.laser_profile(machine)

        def plan() -> Any:
            return laser.plan_cutting(
                step=built.step, stl=built.stl, material=material.slug, thickness_mm=thickness,
                machine=lprofile,
            )  # fmt: skip

        plan()
        plan_s, program = median_s(plan, repeats)

        def verify() -> Any:
            return laser_verify.verify_cutting(
                program.gcode, step=built.step, stl=built.stl, material=material.slug,
                thickness_mm=thickness, machine=lprofile,
            )  # fmt: skip

        verify_s, _ = median_s(verify, repeats)
        render_s, _ = median_s(lambda: cut_svg(program), repeats)
    rs274_s, errors = median_s(lambda: rs274_errors(program.gcode, tools=program.tools), repeats)
    assert not errors, errors
    built_part = BuiltPart(
        stl=built.stl,
        svg=built.svg,
        meta=GeometryMeta(built.bbox_mm, built.volume_mm3, built.area_mm2, "", ""),
        step=built.step,
    )
    report_value = ValidationReport.from_json(
        {"extents_mm": [x, y, z], "capable": [machine.key], "checks": []}
    )

    def step() -> Any:
        return programs.plan_program(
            process=part.process, material=material, built=built_part, report=report_value,
            machines=[machine], checks=checks, reuse=lambda kind, key: None,
        )  # fmt: skip

    step_s, planned = median_s(step, repeats)
    estimate = round(program.estimated_time_s)
    lines = len(program.gcode.splitlines())
    return (
        f"| {part.slug} | {name} | {x:.0f} × {y:.0f} × {z:g} | {thickness:g} mm "
        f"| {lines:,} | {plan_s * 1000:.0f} ms | {verify_s * 1000:.0f} ms "
        f"| {render_s * 1000:.0f} ms | {rs274_s * 1000:.0f} ms | **{step_s * 1000:.0f} ms** "
        f"| {estimate // 60} min {estimate % 60:02d} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corners", type=int, default=2, help="corner configurations per part")
    options = parser.parse_args()
    print(
        "| part | configuration | part mm | stock | G-code lines | plan | verify | render "
        "| rs274 | whole step | machine time (estimate) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for slug in PARTS:
        part = next(p for p in DEMO_PARTS if p.slug == slug)
        configurations = {
            "defaults": {p["name"]: p["default"] for p in part.schema},
            **corners(part, limit=options.corners),
        }
        for name, values in configurations.items():
            print(measure(part, name, values, options.repeats), flush=True)


if __name__ == "__main__":
    main()
