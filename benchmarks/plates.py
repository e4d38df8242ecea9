"""Plates: how many plates mixes of seed-part copies take, how full, and how fast we plan them.

Builds every seed part at its defaults in the geometry sandbox (not timed), turns it to the
print orientation its DFM report chooses (as the pipeline does) and takes its footprint
(production.plates.meshes.footprint). Then, for each mix of copies, arranges them on a Prusa
MK4 bed (250 x 210 mm, 5 mm margin, the purge line kept clear, 6 mm between parts) with
production.plates.arrange
--repeats times and reports: plates used; the lower bound ceil(total footprint area / usable
bed area) and a tighter one that counts the spacing (every footprint grown by half the
spacing, over the usable bed grown by as much: no plan can beat either); utilisation (placed
footprint area / (plates x bed area)); the median wall and CPU time of one plan; for
single-part batches, the plates the quote plans for them (orders.quoting.plate_plan, which
should never be fewer than the arrangement's).

With --prusaslicer, the same mix goes to PrusaSlicer's own arrange (`--merge --export-3mf`,
bed shrunk by our margin, `duplicate_distance` = our spacing, no rotation: its CLI does not
rotate). The CLI refuses a set that does not fit one bed as a whole, so its plates are counted
by filling one bed at a time with the longest run of the remaining copies (largest first, our
order) that it accepts, found by bisection. The smallest distance between two of its parts is
measured on the 3MF it wrote, footprint to footprint.

    .venv/bin/python benchmarks/plates.py --repeats 5
    .venv/bin/python benchmarks/plates.py --repeats 3 --plain-bed
    .venv/bin/python benchmarks/plates.py --repeats 5 --prusaslicer --stl-cache /tmp/seed-stl
"""

import argparse
import io
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import shapely  # noqa: E402
import trimesh  # noqa: E402

from orders.quoting import Rates, plate_plan  # noqa: E402
from production.plates.arrange import (  # noqa: E402
    ROTATIONS_DEG,
    Bed,
    CopyToPlace,
    arrange,
    bed_for,
    lower_bound_plates,
)
from production.plates.meshes import footprint  # noqa: E402
from production.toolpath.profile import FdmProfile  # noqa: E402

# The bed the pipeline arranges on: an MK4's (250 x 210 mm), 5 mm margin, and the purge line
# both engines draw along the front-left kept clear (production.plates.arrange.bed_for).
BED = bed_for(
    FdmProfile(machine_model="Prusa MK4", bed_mm=(250.0, 210.0), max_height_mm=220.0),
    margin_mm=5.0,
)
SPACING_MM = 6.0
LARGE = ("handwheel", "cover_plate")  # the two seed parts of 100 mm: 2-6 per plate


@dataclass(frozen=True)
class Part:
    slug: str
    mesh: trimesh.Trimesh
    footprint: shapely.Polygon


def seed_parts(cache: Path | None) -> dict[str, Part]:
    """The FDM seed parts at their defaults, in their print orientation, with footprints."""
    from catalog.geometry import BuildLimits, build_geometry
    from catalog.parts import DEMO_PARTS
    from production.pipeline.print_mesh import oriented_stl, print_orientation
    from production.pipeline.validation import DEFAULT_MACHINES, dfm_report

    limits = BuildLimits(require_bwrap=False)
    parts = {}
    for part in DEMO_PARTS:
        if part.process != "fdm":
            continue
        cached = cache / f"{part.slug}.stl" if cache else None
        if cached and cached.exists():
            stl = cached.read_bytes()
        else:
            defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
            built = build_geometry(part.script, defaults, limits=limits).stl
            report = dfm_report(built, machines=[DEFAULT_MACHINES["fdm"]])
            turned = print_orientation(report.orientation, (*BED.size_mm, 220.0))
            stl = oriented_stl(built, turned.matrix)
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_bytes(stl)
        mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
        parts[part.slug] = Part(part.slug, mesh, footprint(mesh))
    return parts


def mixes(parts: dict[str, Part]) -> dict[str, list[str]]:
    """Named lists of part slugs, one entry per copy; the same every run (fixed seeds)."""
    every = sorted(parts)
    small = [slug for slug in every if slug not in LARGE]
    found: dict[str, list[str]] = {}
    for count in (10, 50, 100, 200):
        found[f"all 15 parts, {count} copies"] = random.Random(count).choices(every, k=count)
    for count in (10, 50, 100, 200):
        found[f"13 small parts, {count} copies"] = random.Random(count).choices(small, k=count)
    found["shaft_collar x 50"] = ["shaft_collar"] * 50
    found["spacer x 200"] = ["spacer"] * 200
    found["mounting_bracket x 60"] = ["mounting_bracket"] * 60
    found["handwheel x 40"] = ["handwheel"] * 40
    return found


def copies_of(mix: list[str], parts: dict[str, Part]) -> list[CopyToPlace]:
    jobs = {slug: job for job, slug in enumerate(sorted(set(mix)), start=1)}
    numbers: Counter[str] = Counter()
    copies = []
    for slug in mix:
        numbers[slug] += 1
        copies.append(CopyToPlace(jobs[slug], numbers[slug], parts[slug].footprint))
    return copies


@dataclass(frozen=True)
class Ours:
    plates: int
    plates_unturned: int  # rotation 0 only, as PrusaSlicer's CLI arranges
    wall_s: float
    cpu_s: float
    placed_area_mm2: float


def ours(copies: list[CopyToPlace], repeats: int) -> Ours:
    walls, cpus = [], []
    arrangement = None
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        arrangement = arrange(copies, BED, spacing_mm=SPACING_MM, rotations_deg=ROTATIONS_DEG)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    assert arrangement is not None and not arrangement.unplaced
    unturned = arrange(copies, BED, spacing_mm=SPACING_MM, rotations_deg=[0])
    area = {(c.job, c.copy): _filled(c.footprint).area for c in copies}
    placed = sum(area[(p.job, p.copy)] for plate in arrangement.plates for p in plate.placements)
    return Ours(
        plates=len(arrangement.plates),
        plates_unturned=len(unturned.plates),
        wall_s=statistics.median(walls),
        cpu_s=statistics.median(cpus),
        placed_area_mm2=placed,
    )


def _filled(outline: shapely.Polygon) -> shapely.Polygon:
    return shapely.union_all([shapely.Polygon(p.exterior) for p in shapely.get_parts(outline)])


def lower_bounds(copies: list[CopyToPlace]) -> tuple[float, float]:
    """Beds' worth of footprint: area / usable area, and the same with every footprint grown
    by half the spacing over the usable bed grown by as much (grown footprints of a valid
    plate never overlap). No plan uses fewer plates than either, rounded up."""
    area = sum(_filled(c.footprint).area for c in copies)
    half = SPACING_MM / 2
    grown = sum(_filled(c.footprint).buffer(half).area for c in copies)
    return area / BED.usable_area_mm2, grown / BED.usable.buffer(half).area


@dataclass(frozen=True)
class Prusa:
    plates: int
    calls: int
    seconds: float
    closest_mm: float  # the smallest footprint distance between two parts it placed


class PrusaArrange:
    """PrusaSlicer's CLI arrange on one bed: does this list fit, and where does it put it?"""

    def __init__(self, parts: dict[str, Part], work: Path) -> None:
        self.work = work
        width, depth = BED.size_mm
        m = BED.margin_mm
        (work / "bed.ini").write_text(
            f"bed_shape = {m:g}x{m:g},{width - m:g}x{m:g},{width - m:g}x{depth - m:g},"
            f"{m:g}x{depth - m:g}\nduplicate_distance = {SPACING_MM:g}\n"
        )
        self.files = {}
        for slug, part in parts.items():
            path = work / f"{slug}.stl"
            part.mesh.export(path)
            self.files[slug] = path
        self.calls = 0
        self.closest = math.inf

    def fits(self, slugs: list[str]) -> bool:
        self.calls += 1
        out = self.work / "plate.3mf"
        out.unlink(missing_ok=True)
        command = [
            "prusa-slicer", "--loglevel", "1", "--load", str(self.work / "bed.ini"),
            # --merge alone arranges around the origin, bed or no bed; --duplicate 1 then
            # arranges the merged set on the bed and refuses it when it does not fit.
            "--export-3mf", "--merge", "--duplicate", "1", "--output", str(out),
            *(str(self.files[slug]) for slug in slugs),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if "could not fit" in done.stdout + done.stderr or not out.exists():
            return False
        placed = _placed_meshes(out)
        if len(placed) != len(slugs):
            raise RuntimeError(f"PrusaSlicer placed {len(placed)} of {len(slugs)} parts")
        (x0, y0, _), (x1, y1, _) = trimesh.util.concatenate(placed).bounds
        width, depth = BED.size_mm
        m = BED.margin_mm - 0.5  # its bed is ours less the margin; half a mm for rounding
        if x0 < m or y0 < m or x1 > width - m or y1 > depth - m:
            raise RuntimeError(f"PrusaSlicer placed parts off its bed: {x0, y0, x1, y1}")
        self.closest = min(self.closest, _closest(placed))
        return True


def _closest(placed: list[trimesh.Trimesh]) -> float:
    outlines = [footprint(mesh) for mesh in placed]
    tree = shapely.STRtree(outlines)
    closest = math.inf
    for index, outline in enumerate(outlines):
        for other in tree.query(outline.buffer(3 * SPACING_MM)):
            if other != index:
                closest = min(closest, float(outline.distance(outlines[other])))
    return closest


def _placed_meshes(three_mf: Path) -> list[trimesh.Trimesh]:
    """The build items of a PrusaSlicer 3MF, each object's mesh moved by its item transform
    (row vectors: x' = x M + t, as 3MF writes "m00 m01 m02 ... t0 t1 t2")."""
    core = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
    with zipfile.ZipFile(three_mf) as archive:
        model = ElementTree.fromstring(archive.read("3D/3dmodel.model"))  # noqa: S314 (ours)
    meshes = {}
    for body in model.iter(f"{core}object"):
        found = body.find(f"{core}mesh")
        if found is None:
            continue
        vertices = [[float(v.get(axis, 0)) for axis in "xyz"] for v in found.iter(f"{core}vertex")]
        faces = [
            [int(t.get(k, 0)) for k in ("v1", "v2", "v3")] for t in found.iter(f"{core}triangle")
        ]
        meshes[body.get("id")] = trimesh.Trimesh(vertices, faces, process=False)
    placed = []
    for item in model.iter(f"{core}item"):
        values = [float(v) for v in (item.get("transform") or "1 0 0 0 1 0 0 0 1 0 0 0").split()]
        matrix = np.eye(4)
        matrix[:3, :3] = np.array(values[:9]).reshape(3, 3).T
        matrix[:3, 3] = values[9:]
        mesh = meshes[item.get("objectid")].copy()
        mesh.apply_transform(matrix)
        placed.append(mesh)
    return placed


def prusaslicer(mix: list[str], parts: dict[str, Part], guess: int) -> Prusa:
    order = sorted(mix, key=lambda slug: -parts[slug].footprint.area)  # stable: as ours
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plates-bench-") as tmp:
        arranger = PrusaArrange({slug: parts[slug] for slug in set(mix)}, Path(tmp))
        plates = 0
        while order:
            low, high = 1, len(order)  # the longest prefix that fits is in [low, high]
            probe = min(guess, high)
            while low < high:
                if arranger.fits(order[:probe]):
                    low = probe
                else:
                    high = probe - 1
                probe = (low + high + 1) // 2
            plates += 1
            order = order[low:]
    return Prusa(plates, arranger.calls, time.perf_counter() - started, arranger.closest)


def quoted_plates(mix: list[str], parts: dict[str, Part]) -> str:
    """The plates the quote plans (orders.quoting.plate_plan: the part's box on its largest
    face, in a grid) for a single-part batch; "" for mixes (each line is quoted alone)."""
    if len(set(mix)) != 1:
        return ""
    rates = Rates(plate_spacing_mm=SPACING_MM, plate_margin_mm=BED.margin_mm)
    x, y, z = (float(size) for size in parts[mix[0]].mesh.extents)
    plan = plate_plan(extents_mm=(x, y, z), quantity=len(mix), part_time_s=1.0, rates=rates)
    return str(plan.plates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prusaslicer", action="store_true", help="compare with its --arrange")
    parser.add_argument("--stl-cache", type=Path, help="keep the built parts here between runs")
    parser.add_argument("--only", nargs="*", default=[], help="mixes whose name has this")
    parser.add_argument(
        "--plain-bed", action="store_true", help="no purge line kept clear, as PrusaSlicer's bed"
    )
    args = parser.parse_args()
    if args.plain_bed:
        global BED
        BED = Bed(BED.size_mm, margin_mm=BED.margin_mm)

    parts = seed_parts(args.stl_cache)
    bed_area = BED.size_mm[0] * BED.size_mm[1]
    print(
        "| mix | copies | plates | bound: area | bound: area + spacing | plates / area bound "
        "| utilisation | plan time (median) | CPU | rotation 0 only | quote's plates |"
        + (" PrusaSlicer arrange | its closest parts |" if args.prusaslicer else "")
    )
    print(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|---:|" if args.prusaslicer else "")
    )
    for name, mix in mixes(parts).items():
        if args.only and not any(word in name for word in args.only):
            continue
        copies = copies_of(mix, parts)
        result = ours(copies, args.repeats)
        beds, spaced_beds = lower_bounds(copies)
        bound = lower_bound_plates(beds * BED.usable_area_mm2, BED)
        spaced = max(1, math.ceil(spaced_beds - 1e-9))
        row = (
            f"| {name} | {len(copies)} | {result.plates} | {bound} ({beds:.2f}) "
            f"| {spaced} ({spaced_beds:.2f}) | {result.plates / bound:.2f} "
            f"| {result.placed_area_mm2 / (result.plates * bed_area):.0%} "
            f"| {result.wall_s * 1000:.0f} ms | {result.cpu_s * 1000:.0f} ms "
            f"| {result.plates_unturned} | {quoted_plates(mix, parts)} |"
        )
        if args.prusaslicer:
            guess = math.ceil(len(copies) / result.plates)
            theirs = prusaslicer(mix, parts, guess)
            row += f" {theirs.plates} ({theirs.calls} runs, {theirs.seconds:.0f} s) "
            row += f"| {theirs.closest_mm:.1f} mm |"
        print(row, flush=True)
    print(
        "\nseed footprints (mm², holes filled): "
        + ", ".join(f"{slug} {_filled(p.footprint).area:.0f}" for slug, p in sorted(parts.items()))
    )


if __name__ == "__main__":
    main()
