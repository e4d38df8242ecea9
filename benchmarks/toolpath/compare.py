"""Builtin slicer against the PrusaSlicer CLI and CuraEngine, side by side, on the seed parts
and large meshes.

Builds every seed part at its default parameters in the geometry sandbox (as
benchmarks/validation.py does; not timed) and adds three large meshes: a 200k-triangle torus,
a 200k-triangle hollow sphere (a sealed cavity whose roof must be bridged) and an 82k-triangle
icosphere. Each mesh is sliced --runs times by each engine in turn, in this one process, with
the same FdmProfile: 0.2 mm layers (the first too), 0.4 mm nozzle, 2 perimeters, 3 top and 3
bottom layers, 20 % rectilinear infill, Prusa MK4 bed, PLA; CuraEngine (Debian's cura-engine
with the `cura` package's fdmprinter definition, benchmarks/toolpath/cura.py) gets the same
settings. Reports the median slicing time of each engine and the ratios builtin / PrusaSlicer
and builtin / CuraEngine of time, builtin / PrusaSlicer of filament and estimated print time
(each engine's own estimate, read from its G-code), then the peak memory of builtin and
PrusaSlicer measured in a fresh child process (for builtin the peak resident set, VmHWM, of
the Python process that slices, interpreter and imports included: ~115 MiB before it slices;
for PrusaSlicer the ru_maxrss of the prusa-slicer process). No database.

    .venv/bin/python benchmarks/toolpath/compare.py --runs 3
    .venv/bin/python benchmarks/toolpath/compare.py --runs 1 --only spacer knob   # quicker
    .venv/bin/python benchmarks/toolpath/compare.py --runs 5 --seed-only --no-memory  # #19.6
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from benchmarks.toolpath import cura  # noqa: E402
from production.toolpath import FdmProfile, engines  # noqa: E402

PROFILE = FdmProfile(
    machine_model="Prusa MK4",
    bed_mm=(250.0, 210.0),
    max_height_mm=220.0,
    layer_height_mm=0.2,
    first_layer_height_mm=0.2,
    nozzle_mm=0.4,
    perimeters=2,
    top_layers=3,
    bottom_layers=3,
    infill_density=0.2,
)
TIMEOUT_S = 600.0
CURA = "cura"  # the third column: benchmarks only, not an engine a machine may choose

# Run in a fresh interpreter per engine and mesh: slice once, report the peak resident set.
# Builtin: the child's own VmHWM (its ru_maxrss would include this parent's, which Linux
# carries across the fork and exec). PrusaSlicer: ru_maxrss of the child's largest child,
# prusa-slicer itself.
MEMORY_CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from benchmarks.toolpath.compare import PROFILE, TIMEOUT_S
from production.toolpath import engines
stl = open(sys.argv[3], "rb").read()
engines.plan(stl, PROFILE, engine=sys.argv[2], timeout_s=TIMEOUT_S)
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({
    "self_kib": hwm,
    "children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


@dataclass(frozen=True)
class Result:
    seconds: float  # median wall time of the slices
    cpu_s: float  # median CPU time (user + system, this process and its children)
    layers: int
    filament_g: float
    estimated_s: float


def meshes(only: set[str], *, seed_only: bool = False) -> dict[str, bytes]:
    """Seed parts (printed ones) at their defaults, built in the sandbox, then the large
    meshes."""
    from catalog.geometry import BuildLimits, build_geometry
    from catalog.parts import DEMO_PARTS

    limits = BuildLimits(require_bwrap=False)
    found = {}
    for part in DEMO_PARTS:
        if (only and part.slug not in only) or part.process != "fdm":
            continue
        defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
        found[part.slug] = build_geometry(part.script, defaults, limits=limits).stl
    large: dict[str, Callable[[], trimesh.Trimesh]] = {
        "torus": lambda: trimesh.creation.torus(
            major_radius=40, minor_radius=10, major_sections=500, minor_sections=200
        ),
        "hollow_sphere": _hollow_sphere,
        "icosphere": lambda: trimesh.creation.icosphere(subdivisions=6, radius=30),
    }
    for name, make in large.items():
        if not seed_only and (not only or name in only):
            stl = make().export(file_type="stl")
            assert isinstance(stl, bytes)
            found[name] = stl
    return found


def _hollow_sphere() -> trimesh.Trimesh:
    """A 60 mm ball with a 52 mm cavity: a half-annulus profile revolved 256 times."""
    turn = np.linspace(0, np.pi, 200)
    outer = np.column_stack([30 * np.sin(turn), -30 * np.cos(turn)])
    inner = np.column_stack([26 * np.sin(turn), -26 * np.cos(turn)])[::-1]
    return trimesh.creation.revolve(np.vstack([outer, inner, outer[:1]]), sections=256)


def slice_all(stl: bytes, runs: int, *, with_cura: bool) -> dict[str, Result]:
    """Alternate the engines run by run, so all see the same machine load."""
    names = [*engines.ENGINES, *([CURA] if with_cura else [])]
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, Result] = {}
    for _ in range(runs):
        for name in names:
            cpu_before = _cpu_s()
            started = time.perf_counter()
            if name == CURA:
                done = cura.slice_stl(stl, PROFILE, timeout_s=TIMEOUT_S)
                layers, filament_g, estimate = done.layers, done.filament_g, done.estimated_time_s
            else:
                path = engines.plan(stl, PROFILE, engine=name, timeout_s=TIMEOUT_S)
                layers, filament_g, estimate = path.layers, path.filament_g, path.estimated_time_s
            times[name].append(time.perf_counter() - started)
            cpu[name].append(_cpu_s() - cpu_before)
            last[name] = Result(0.0, 0.0, layers, filament_g, estimate)
    return {
        name: Result(
            seconds=statistics.median(times[name]),
            cpu_s=statistics.median(cpu[name]),
            layers=last[name].layers,
            filament_g=last[name].filament_g,
            estimated_s=last[name].estimated_s,
        )
        for name in names
    }


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (the slicer CLIs,
    the builtin engine's planning child): on a shared machine wall time measures the load
    as much as the work."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def peak_memory_mib(stl: bytes, engine: str) -> float:
    with tempfile.NamedTemporaryFile(suffix=".stl") as file:
        file.write(stl)
        file.flush()
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(ROOT), engine, file.name],
            capture_output=True,
            text=True,
            check=True,
            timeout=TIMEOUT_S,
        ).stdout
    usage = json.loads(out.strip().splitlines()[-1])
    # PrusaSlicer is the largest child (the other is `prusa-slicer --help`).
    kib = usage["self_kib"] if engine == engines.BUILTIN else usage["children_kib"]
    return float(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[], help="mesh names to run")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory children")
    parser.add_argument("--seed-only", action="store_true", help="no large meshes")
    parser.add_argument("--no-cura", action="store_true", help="without the CuraEngine column")
    args = parser.parse_args()
    with_cura = not args.no_cura and cura.available()

    print(f"PrusaSlicer: {engines.engine_version(engines.PRUSASLICER)}")
    if with_cura:
        print(f"CuraEngine: {cura.version()}")
    elif not args.no_cura:
        print("CuraEngine: not installed (scripts/install-system-packages.sh): no column")
    print(f"builtin: {engines.engine_version(engines.BUILTIN)}; median of {args.runs} runs\n")
    print(
        "| part | triangles | layers (b / P / C) | slice builtin | slice PrusaSlicer "
        "| slice CuraEngine | time b / P | time b / C | CPU s (b / P / C) | CPU b / P | CPU b / C "
        "| filament g (b / P / C) | filament b / P | est. print (b / P / C) | est. b / P "
        "| peak RSS MiB (b / P) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios: dict[str, list[float]] = {
        "time": [],
        "cura": [],
        "cpu": [],
        "cpu_cura": [],
        "filament": [],
        "estimate": [],
    }
    for name, stl in meshes(set(args.only), seed_only=args.seed_only).items():
        triangles = (len(stl) - 84) // 50
        every = slice_all(stl, args.runs, with_cura=with_cura)
        ours, theirs = every[engines.BUILTIN], every[engines.PRUSASLICER]
        curas = every.get(CURA)
        memory = (
            "-"
            if args.no_memory
            else " / ".join(
                f"{peak_memory_mib(stl, engine):.0f}"
                for engine in (engines.BUILTIN, engines.PRUSASLICER)
            )
        )
        row = {
            "time": ours.seconds / theirs.seconds,
            "cpu": ours.cpu_s / theirs.cpu_s,
            "filament": ours.filament_g / theirs.filament_g,
            "estimate": ours.estimated_s / theirs.estimated_s,
        }
        if curas is not None:
            row["cura"] = ours.seconds / curas.seconds
            row["cpu_cura"] = ours.cpu_s / curas.cpu_s
        for key, value in row.items():
            ratios[key].append(value)
        c_layers = f" / {curas.layers}" if curas else ""
        c_seconds = f"{curas.seconds:.2f} s" if curas else "-"
        c_ratio = f"{row['cura']:.2f}" if curas else "-"
        c_cpu = f" / {curas.cpu_s:.2f}" if curas else ""
        c_cpu_ratio = f"{row['cpu_cura']:.2f}" if curas else "-"
        c_filament = f" / {curas.filament_g:.2f}" if curas else ""
        c_estimate = f" / {_minutes(curas.estimated_s)}" if curas else ""
        print(
            f"| {name} | {triangles:,} | {ours.layers} / {theirs.layers}{c_layers} "
            f"| {ours.seconds:.2f} s | {theirs.seconds:.2f} s | {c_seconds} "
            f"| {row['time']:.2f} | {c_ratio} "
            f"| {ours.cpu_s:.2f} / {theirs.cpu_s:.2f}{c_cpu} | {row['cpu']:.2f} | {c_cpu_ratio} "
            f"| {ours.filament_g:.2f} / {theirs.filament_g:.2f}{c_filament} "
            f"| {row['filament']:.3f} "
            f"| {_minutes(ours.estimated_s)} / {_minutes(theirs.estimated_s)}{c_estimate} "
            f"| {row['estimate']:.3f} | {memory} |",
            flush=True,
        )
    if ratios["time"]:
        print(
            f"\nslicing time builtin / PrusaSlicer {_spread(ratios['time'])}, "
            f"builtin / CuraEngine {_spread(ratios['cura'])}; "
            f"CPU time builtin / PrusaSlicer {_spread(ratios['cpu'])}, "
            f"builtin / CuraEngine {_spread(ratios['cpu_cura'])}; "
            f"filament ratio {min(ratios['filament']):.3f}..{max(ratios['filament']):.3f}; "
            f"estimate ratio {min(ratios['estimate']):.3f}..{max(ratios['estimate']):.3f}"
        )


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"median {statistics.median(values):.2f} ({min(values):.2f}..{max(values):.2f})"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main()
