"""Traveler PDF render time: one job alone, and per job and per page in a batch of 50.

Pure (no database): Traveler values shaped like the runner's (a CadQuery-style line drawing,
six parameters, three QC checks) go through production.pipeline.traveler's render_traveler
and render_travelers, as the pipeline's traveler step and the station's "print all" do.
Reports the median (and min) of several runs.

    .venv/bin/python benchmarks/travelers.py [--repeats 5] [--batch 50]
"""

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")

import django  # noqa: E402

django.setup()

from pypdf import PdfReader  # noqa: E402

from production.pipeline.traveler import (  # noqa: E402
    Traveler,
    TravelerCheck,
    TravelerParameter,
    render_traveler,
    render_travelers,
)

# A drawing about the size of CadQuery's export of a bracket: a few hundred path segments.
DRAWING = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="400.0" height="300.0">'
    '<g transform="scale(5, -5) translate(10, -50)" stroke-width="0.2" fill="none">'
    '<g stroke="rgb(0,0,0)">'
    + "".join(f'<path d="M{i % 60} 10 L{(i * 7) % 60} 40"/>' for i in range(300))
    + "</g></g></svg>"
)


def make_traveler(number: int) -> Traveler:
    return Traveler(
        job_number=f"J-{number:06d}",
        station_url=f"https://factory.example.com/station/jobs/{number}/",
        order_reference=f"O-{number:06d} / PO-2026-1187",
        organisation="Tram Depot Nord GmbH",
        requested_by="Ana Müller",
        due_date="2026-12-02",
        priority="Normal",
        part_name="Mounting bracket",
        revision_label="rev 3",
        revision_checksum="3f2a9c1be47d0a5566f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d",
        parameters=tuple(
            TravelerParameter(name=f"p{i}", label=f"Parameter {i}", value=f"{10 + i}.0", unit="mm")
            for i in range(6)
        ),
        quantity=2,
        material="PETG",
        machine="Prusa MK4 class",
        site="North",
        drawing_svg=DRAWING,
        bbox_mm=(60.0, 30.0, 8.0),
        toolpath_summary=(
            ("Engine", "builtin"),
            ("Layers", "40"),
            ("Estimated time", "1 h 12 min"),
        ),
        dfm_warnings=("Overhang of 52° needs support",),
        work_instructions=(
            "Check that the loaded material matches this traveler; note the spool number.",
            "Start the job from the station by scanning the QR code.",
            "Remove the part when the bed has cooled; remove skirt and stringing.",
            "Measure the critical dimensions and record QC on the station.",
        ),
        qc_checks=tuple(
            TravelerCheck(label=f"Parameter {i}", nominal=f"{10 + i}.0 mm", tolerance="± 0.2")
            for i in range(3)
        ),
        printed_at="2026-11-25 21:04 UTC",
    )


def timed(function, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    render_traveler(make_traveler(1))  # warm up: template loading, font discovery
    single = [timed(render_traveler, make_traveler(run + 2))[0] for run in range(args.repeats)]

    batch_times, pages = [], 0
    for run in range(args.repeats):
        travelers = [make_traveler(1000 * run + i) for i in range(args.batch)]
        seconds, pdf = timed(render_travelers, travelers)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        batch_times.append(seconds)

    median_batch = statistics.median(batch_times)
    print(f"one traveler:      median {statistics.median(single):.3f} s, min {min(single):.3f} s")
    print(
        f"batch of {args.batch}:      median {median_batch:.2f} s, min {min(batch_times):.2f} s "
        f"({pages} pages, {len(pdf) / 1024:.0f} KiB)"
    )
    print(f"  per job:         {median_batch / args.batch * 1000:.0f} ms")
    print(f"  per page:        {median_batch / pages * 1000:.0f} ms")


if __name__ == "__main__":
    main()
