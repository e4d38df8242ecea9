"""Traveler PDFs: render time of one job, and "Print all travelers" of a queue of 50 two ways.

Pure (no database): Traveler values shaped like the runner's (a CadQuery-style line drawing,
six parameters, three QC checks) go through production.pipeline.traveler.

- one traveler: render_traveler, as the pipeline's traveler step does (the median over the
  batch's travelers, each rendered once to make the stored PDFs below);
- batch, re-rendered: render_travelers of 50, what the station's "print all" did before;
- batch, merged: what it does now (production.station.travelers_batch): read the 50 stored
  PDFs from files, check each one's sha256, merge them with merge_pdfs;
- bag labels (62 x 100 mm): render_label of one, render_labels of the batch ("Print all bag
  labels"), rendered on request.

Reports the median (and min) of several runs of each batch.

    .venv/bin/python benchmarks/travelers.py [--repeats 5] [--batch 50] [--skip-rerender]
"""

import argparse
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")

import django  # noqa: E402

django.setup()

from pypdf import PdfReader  # noqa: E402

from production.pipeline.traveler import (  # noqa: E402
    Label,
    Traveler,
    TravelerCheck,
    TravelerParameter,
    merge_pdfs,
    render_label,
    render_labels,
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


def make_label(number: int) -> Label:
    traveler = make_traveler(number)
    return Label(
        job_number=traveler.job_number,
        station_url=traveler.station_url,
        part_name=traveler.part_name,
        revision_label=traveler.revision_label,
        key_parameters=traveler.parameters[:4],
        material=traveler.material,
        quantity=traveler.quantity,
        order_reference=traveler.order_reference,
        team="Bogie maintenance",
        due_date=traveler.due_date,
    )


def timed(function, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def merge_stored(files: list[tuple[Path, str]]) -> bytes:
    """The station's batch from stored travelers: read each file, check its sha256, merge."""
    pdfs = []
    for path, sha256 in files:
        pdf = path.read_bytes()
        if hashlib.sha256(pdf).hexdigest() != sha256:
            raise AssertionError(f"{path} changed")
        pdfs.append(pdf)
    return merge_pdfs(pdfs)


def report(label: str, times: list[float], pdf: bytes, batch: int) -> None:
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    median = statistics.median(times)
    print(
        f"{label}: median {median:.3f} s, min {min(times):.3f} s "
        f"({pages} pages, {len(pdf) / 1024:.0f} KiB); "
        f"per job {median / batch * 1000:.1f} ms, per page {median / pages * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument(
        "--skip-rerender", action="store_true", help="leave out the slow re-rendered batch"
    )
    args = parser.parse_args()

    render_traveler(make_traveler(1))  # warm up: template loading, font discovery
    stored, single = [], []
    for i in range(args.batch):  # the pipeline's traveler step, once per job
        seconds, pdf = timed(render_traveler, make_traveler(100 + i))
        stored.append(pdf)
        single.append(seconds)
    print(f"one traveler: median {statistics.median(single):.3f} s, min {min(single):.3f} s")

    if not args.skip_rerender:
        times = []
        for run in range(args.repeats):
            travelers = [make_traveler(1000 * (run + 1) + i) for i in range(args.batch)]
            seconds, pdf = timed(render_travelers, travelers)
            times.append(seconds)
        report(f"batch of {args.batch}, re-rendered (before)", times, pdf, args.batch)

    with tempfile.TemporaryDirectory() as folder:
        files = []
        for i, pdf in enumerate(stored):
            path = Path(folder) / f"traveler-{i}.pdf"
            path.write_bytes(pdf)
            files.append((path, hashlib.sha256(pdf).hexdigest()))
        merge_stored(files)  # warm up: pypdf's imports
        times = []
        for _ in range(args.repeats):
            seconds, pdf = timed(merge_stored, files)
            times.append(seconds)
        report(f"batch of {args.batch}, merged from stored PDFs (now)", times, pdf, args.batch)

    render_label(make_label(1))  # warm up
    single = [timed(render_label, make_label(run + 2))[0] for run in range(args.repeats)]
    print(f"one label: median {statistics.median(single):.3f} s, min {min(single):.3f} s")
    times = []
    for run in range(args.repeats):
        seconds, pdf = timed(render_labels, [make_label(1000 * run + i) for i in range(args.batch)])
        times.append(seconds)
    report(f"labels of {args.batch}", times, pdf, args.batch)


if __name__ == "__main__":
    main()
