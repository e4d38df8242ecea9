"""Median time of the DFM validation step (production.pipeline.validation) per mesh.

Builds the demo catalog's parts at their defaults in the geometry sandbox (not timed), adds
a 200k-triangle torus, then validates each mesh --repeat times against one FDM printer with
the default limits and prints the median. No database, broker or Django settings needed.

    .venv/bin/python benchmarks/validation.py --repeat 7
    .venv/bin/python benchmarks/validation.py --million   # also a 1M-triangle torus
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def meshes(*, million: bool) -> dict[str, bytes]:
    import trimesh

    from catalog.geometry import BuildLimits, build_geometry
    from catalog.parts import DEMO_PARTS

    limits = BuildLimits(require_bwrap=False)
    found = {}
    for part in DEMO_PARTS:
        defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
        found[part.slug] = build_geometry(part.script, defaults, limits=limits).stl
    torus = trimesh.creation.torus(
        major_radius=40, minor_radius=10, major_sections=500, minor_sections=200
    )
    found["torus 200k triangles"] = torus.export(file_type="stl")
    if million:
        big = trimesh.creation.torus(
            major_radius=40, minor_radius=10, major_sections=1000, minor_sections=500
        )
        found["torus 1M triangles"] = big.export(file_type="stl")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--million", action="store_true", help="add a 1M-triangle torus")
    args = parser.parse_args()

    from production.pipeline.validation import DEFAULT_MACHINES, dfm_report

    machines = [DEFAULT_MACHINES["fdm"]]
    print(f"{'mesh':<24} {'triangles':>10} {'median s':>9} {'min s':>7}  status")
    for name, stl in meshes(million=args.million).items():
        times, report = [], None
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = dfm_report(stl, machines=machines)
            times.append(time.perf_counter() - started)
        assert report is not None
        print(
            f"{name:<24} {report.triangles:>10} {statistics.median(times):>9.3f} "
            f"{min(times):>7.3f}  {report.status}"
        )


if __name__ == "__main__":
    main()
