"""Median time of the DFM validation step (production.pipeline.validation) per mesh.

Builds the demo catalog's parts at their defaults in the geometry sandbox (not timed), adds
tori of 1k, 10k, 100k and (with --million) 1M triangles, then validates each mesh --repeat
times against one FDM printer with the default limits and prints the median and the
minimum, in wall-clock and in CPU seconds (CPU time is what the step costs; on a busy
machine the wall clock also counts the time spent waiting for a core). No database, broker
or Django settings needed.

    .venv/bin/python benchmarks/validation.py --repeat 7
    .venv/bin/python benchmarks/validation.py --repeat 5 --million --no-parts
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (major, minor) sections: 2 x major x minor triangles.
TORI = {1_000: (25, 20), 10_000: (100, 50), 100_000: (250, 200), 1_000_000: (1000, 500)}


def meshes(*, parts: bool, million: bool) -> dict[str, bytes]:
    import trimesh

    found = {}
    if parts:
        from catalog.geometry import BuildLimits, build_geometry
        from catalog.parts import DEMO_PARTS

        limits = BuildLimits(require_bwrap=False)
        for part in DEMO_PARTS:
            defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
            found[part.slug] = build_geometry(part.script, defaults, limits=limits).stl
    for triangles, (major, minor) in TORI.items():
        if triangles > 100_000 and not million:
            continue
        torus = trimesh.creation.torus(
            major_radius=40, minor_radius=10, major_sections=major, minor_sections=minor
        )
        found[f"torus {triangles // 1000}k"] = torus.export(file_type="stl")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--million", action="store_true", help="add a 1M-triangle torus")
    parser.add_argument("--no-parts", action="store_true", help="tori only (no CadQuery)")
    args = parser.parse_args()

    from production.pipeline.validation import DEFAULT_MACHINES, dfm_report

    machines = [DEFAULT_MACHINES["fdm"]]
    print(f"{'mesh':<20} {'triangles':>10} {'median s':>9} {'min s':>7} {'CPU s':>7}  status")
    for name, stl in meshes(parts=not args.no_parts, million=args.million).items():
        walls, cpus, report = [], [], None
        for _ in range(args.repeat):
            started, cpu = time.perf_counter(), time.process_time()
            report = dfm_report(stl, machines=machines)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        assert report is not None
        print(
            f"{name:<20} {report.triangles:>10} {statistics.median(walls):>9.3f} "
            f"{min(walls):>7.3f} {statistics.median(cpus):>7.3f}  {report.status}"
        )


if __name__ == "__main__":
    main()
