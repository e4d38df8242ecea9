"""Travel of the builtin slicer against PrusaSlicer's on seed parts: travel moves, travel length,
retractions and unretracted travels that cross a perimeter (tests/production/toolpath/
gcode_reader.travel_stats), and the builtin slicing time (median of --runs).

Seed parts at their defaults, built with CadQuery in this process; 0.2 mm layers, the first
too, the MK4 profile of the tests. The builtin engine runs in a child process from --tree (a
checkout: this one by default; pass another worktree, e.g. main, for a before/after), so both
trees' slicers are measured with the same reader. No database.

    .venv/bin/python benchmarks/toolpath/travel.py --runs 3
    .venv/bin/python benchmarks/toolpath/travel.py --runs 3 --tree /work/main   # before
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from production.toolpath.prusaslicer import plan_toolpath as prusaslicer  # noqa: E402
from tests.production.toolpath.gcode_reader import make_profile, travel_stats  # noqa: E402
from tests.production.toolpath.test_travel import seed_stl  # noqa: E402

PARTS = ("spacer", "knob", "pipe_clamp", "cable_clip", "gt2_pulley", "mounting_bracket")
SETTINGS = {"layer_height_mm": 0.2, "first_layer_height_mm": 0.2}

CHILD = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from production.toolpath import plan_toolpath
from tests.production.toolpath.gcode_reader import make_profile
profile = make_profile(**json.loads(sys.argv[5]))
stl = open(sys.argv[2], "rb").read()
times = []
for _ in range(int(sys.argv[4])):
    started = time.perf_counter()
    gcode = plan_toolpath(stl, profile).gcode
    times.append(time.perf_counter() - started)
open(sys.argv[3], "wb").write(gcode)
print(json.dumps({"seconds": statistics.median(times)}))
"""


def builtin(tree: Path, stl: bytes, runs: int) -> tuple[bytes, float]:
    with tempfile.TemporaryDirectory() as folder:
        stl_path, out = Path(folder) / "part.stl", Path(folder) / "part.gcode"
        stl_path.write_bytes(stl)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(tree), str(stl_path), str(out), str(runs)]
            + [json.dumps(SETTINGS)],
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]
        return out.read_bytes(), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    profile = make_profile(**SETTINGS)
    print(
        "| part | travels (builtin / PrusaSlicer) | travel mm | retractions "
        "| unretracted crossings | builtin s |"
    )
    print("|---|---|---|---|---|---|")
    for slug in PARTS:
        if args.only and slug not in args.only:
            continue
        stl = seed_stl(slug)
        ours, seconds = builtin(args.tree, stl, args.runs)
        theirs = prusaslicer(stl, profile, binary="prusa-slicer", timeout_s=600).gcode
        a, b = travel_stats(ours), travel_stats(theirs)
        print(
            f"| {slug} | {a.travels} / {b.travels} ({a.travels / b.travels:.2f}) "
            f"| {a.travel_mm:.0f} / {b.travel_mm:.0f} | {a.retractions} / {b.retractions} "
            f"| {a.unretracted_crossings} / {b.unretracted_crossings} | {seconds:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
