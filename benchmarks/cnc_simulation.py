"""Milling verification: simulation time against z-map resolution, on the demo parts' programs.

Builds each part with CadQuery in this process (not timed), plans its milling program with
production.toolpath.milling (GRBL dialect, default tool table, 6061, the thinnest plate that
holds it, 12 mm for the 10 mm block so that its top is faced; not timed), then, at each z-map
resolution, times `--repeats` runs of:

- simulate: reading the G-code and sweeping every move over the z-map
  (cnc_verify.simulate_program);
- check: the whole verification (cnc_verify.check_program: the simulation, the part's height
  map rasterised from its mesh, and the checks);
- render: the traveler's PNG of the simulated stock (cnc_render.render_simulation);

and reports the medians with the grid's cells, the removed volume (it converges as the
cells shrink) and the checks' figures (deepest gouge, most remaining stock), so a coarser
grid's misses show beside its savings. rs274's time is given once per program.

    .venv/bin/python benchmarks/cnc_simulation.py --repeats 3
"""

import argparse
import functools
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cadquery as cq  # noqa: E402
import trimesh  # noqa: E402
from cadquery import cqgi  # noqa: E402

from catalog.parts import DEMO_PARTS  # noqa: E402
from production.toolpath.cnc_render import render_simulation  # noqa: E402
from production.toolpath.cnc_tools import DEFAULT_TOOL_TABLE, MillProfile  # noqa: E402
from production.toolpath.cnc_verify import Envelope, check_program, simulate_program  # noqa: E402
from production.toolpath.milling import plan_milling  # noqa: E402
from production.toolpath.program import MachineProgram  # noqa: E402
from production.toolpath.rs274 import rs274_errors  # noqa: E402

MILL = MillProfile(machine_model="Benchmark mill", travel_mm=(300.0, 300.0, 80.0))
PLATES_MM = [2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0]
RESOLUTIONS_MM = (0.5, 0.25, 0.2, 0.1)
# (part, its parameters, a label): the cover plate at its defaults and nearly its largest, and
# the milling tests' block (a pocket, a slot, a hole; faced, from a 12 mm plate). The mounting
# bracket, an L, is refused by the planner as not 2.5D.
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("cover_plate", {}, "defaults"),
    ("cover_plate", {"length": 190.0, "width": 150.0, "holes_x": 6, "holes_y": 4}, "190 x 150"),
    ("block", {}, "pocket, slot, hole"),
]


def build(slug: str, parameters: dict[str, Any]) -> tuple[bytes, bytes]:
    """The part's STEP and STL, as the geometry step stores them."""
    if slug == "block":
        from tests.production.toolpath.cnc_parts import block_with_features

        shape = cq.Workplane().add(block_with_features())
    else:
        part = next(p for p in DEMO_PARTS if p.slug == slug)
        result = cqgi.parse(part.script).build(build_parameters=parameters)
        if not result.success:
            raise RuntimeError(f"{slug} did not build: {result.exception}")
        shape = cq.Workplane().add(result.results[0].shape.val())
    with tempfile.TemporaryDirectory() as folder:
        step, stl = Path(folder) / "part.step", Path(folder) / "part.stl"
        cq.exporters.export(shape, str(step))
        cq.exporters.export(shape, str(stl), tolerance=0.01, angularTolerance=0.05)
        return step.read_bytes(), stl.read_bytes()


def plan(step: bytes, stl: bytes) -> MachineProgram:
    height = float(trimesh.load_mesh(io.BytesIO(stl), file_type="stl").extents[2])
    thickness = 12.0 if height == 10.0 else min(t for t in PLATES_MM if t >= height - 1e-6)
    return plan_milling(
        step=step,
        stl=stl,
        material="aluminium-6061",
        stock_thickness_mm=thickness,
        tools=DEFAULT_TOOL_TABLE,
        machine=MILL,
        dialect="grbl",
    )


def median_s(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolutions", type=float, nargs="+", default=list(RESOLUTIONS_MM))
    options = parser.parse_args()

    print(
        "| part | moves | resolution | cells | simulate | check | render | removed | "
        "gouge | remaining | checks |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    notes = []
    for slug, parameters, label in CASES:
        step, stl = build(slug, parameters)
        try:
            program = plan(step, stl)
        except Exception as refusal:  # a part the planner refuses: say so, go on
            notes.append(f"{slug} ({label}): not planned: {refusal}")
            continue
        stock = program.stock
        envelope = Envelope.for_travel(MILL.travel_mm, stock)
        start = time.perf_counter()
        errors = rs274_errors(program.gcode, tools=program.tools)
        notes.append(
            f"{slug} ({label}): stock {stock.x_mm:g} x {stock.y_mm:g} x "
            f"{stock.thickness_mm:g} mm, {len(program.gcode.splitlines())} lines, rs274 "
            f"{time.perf_counter() - start:.2f} s, {'accepted' if not errors else errors[0]}"
        )
        for resolution in options.resolutions:
            simulate = functools.partial(
                simulate_program,
                program.gcode,
                stock=stock,
                tools=program.tools,
                resolution_mm=resolution,
            )
            check = functools.partial(
                check_program,
                program.gcode,
                stl=stl,
                stock=stock,
                tools=program.tools,
                envelope=envelope,
                resolution_mm=resolution,
            )
            report = check()
            simulate_s = median_s(simulate, options.repeats)
            check_s = median_s(check, options.repeats)
            render_s = median_s(
                functools.partial(render_simulation, report.simulation), options.repeats
            )
            nx, ny = report.grid
            failed = ", ".join(c.name for c in report.failures) or "all pass"
            print(
                f"| {slug} ({label}) | {report.segments} | {resolution:g} mm | {nx * ny:,} | "
                f"{simulate_s:.2f} s | {check_s:.2f} s | {render_s:.2f} s | "
                f"{report.removed_mm3:,.0f} mm³ | {report.max_gouge_mm:.3f} | "
                f"{report.max_remaining_mm:.3f} | {failed} |"
            )
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
