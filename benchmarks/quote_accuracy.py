"""Quote accuracy: each seed part's estimated volume, machine time and price against the built.

For each part of catalog.parts.DEMO_PARTS, as publishing does (catalog.services.
revision_estimator_fit): its sample configurations (defaults, range corners, random valid
ones; catalog.estimator.sample_configurations) measured in one sandboxed child, and its
estimator fitted (catalog.estimator_fit). Then --configs random valid configurations drawn
with another seed (never a sample) are built and compared:
- volume: the estimator's against the built solid's;
- time: orders.quoting.estimate_time_s on each (volume and height), as an estimated quote and
  the price check on the built part compute it;
- envelope: for comparison, the volume guessed from the length parameters alone (what an
  estimated quote used before estimators, and still uses until a revision's fit is ready);
- price: the unit price of orders.quoting.quote_line in the part's first seed material, at
  the default hourly rate, on each (the line total adds the setup fee: its error is smaller).

"Built" is the sandbox's measurement of the solid (catalog.geometry.measure_geometry: the
same OpenCascade volume and exact bounding box a full build reports; tests/catalog/geometry/
test_quote_accuracy.py checks they agree), so 300 configurations take minutes, not an hour;
--full-builds builds each with build_geometry instead (STEP, STL, GLB, drawing; much slower).
Parts run --workers at a time, each in its own process.

    .venv/bin/python benchmarks/quote_accuracy.py --configs 20 --workers 2
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PartResult:
    slug: str
    samples: int
    measured_s: float
    fit_s: float
    form: str
    volume: list[float]  # relative errors, one per configuration
    time: list[float]
    price: list[float]
    signed_price: list[float]  # (estimated - built) / built: below 0, the quote was too low
    envelope: list[float]  # the volume guessed from the lengths alone (before estimators)


def _setup() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="mf-bench-quote-"))
    os.environ.update(
        {
            "MF_VAR_DIR": str(scratch),
            "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "microfactory.settings",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run_part(slug: str, configs: int, full_builds: bool) -> PartResult:
    _setup()
    from django.conf import settings

    from catalog.estimator import random_configurations, sample_configurations, variables_for
    from catalog.estimator_fit import Sample, fit_estimator
    from catalog.geometry import BuildLimits, Measurement, build_geometry, measure_geometry
    from catalog.parameters import parse_rules, parse_schema
    from catalog.parts import DEMO_PARTS
    from microfactory.demo.management.commands.seed_demo import MATERIALS
    from orders.quoting import MaterialFacts, envelope_volume_mm3, estimate_time_s, quote_line

    part = next(p for p in DEMO_PARTS if p.slug == slug)
    specs, rules = parse_schema(part.schema), parse_rules(part.rules)
    limits = BuildLimits(require_bwrap=False, timeout_s=1800, cpu_s=1800)
    rates = settings.ORDER_QUOTE_RATES
    _, _, density, price, _, _ = next(m for m in MATERIALS if m[0] == part.materials[0])
    material = MaterialFacts(part.materials[0], float(density), Decimal(price))

    started = time.perf_counter()
    training = sample_configurations(specs, rules, seed=slug)
    measured = measure_geometry(part.script, training, limits=limits)
    measured_s = time.perf_counter() - started
    samples = [
        Sample(values, m.volume_mm3, m.bbox_mm)
        for values, m in zip(training, measured, strict=True)
        if isinstance(m, Measurement)
    ]
    started = time.perf_counter()
    estimator = fit_estimator(variables_for(specs), samples)
    fit_s = time.perf_counter() - started

    held_out = [
        values
        for values in random_configurations(specs, rules, count=configs * 2, seed=f"{slug}-bench")
        if values not in training
    ][:configs]
    if full_builds:
        built: list[Any] = [build_geometry(part.script, v, limits=limits) for v in held_out]
    else:
        built = measure_geometry(part.script, held_out, limits=limits)

    def unit_price(volume: float, height: float) -> Decimal:
        quote = quote_line(
            volume_mm3=volume,
            height_mm=height,
            quantity=1,
            material=material,
            machines=[],
            rates=rates,
        )
        return quote.unit_price

    errors: dict[str, list[float]] = {
        "volume": [],
        "time": [],
        "price": [],
        "signed": [],
        "envelope": [],
    }
    length_names = [spec.name for spec in specs if spec.type == "length"]
    for values, made in zip(held_out, built, strict=True):
        if not hasattr(made, "volume_mm3"):
            continue  # the script refuses this configuration: nothing to quote
        guess = estimator.estimate(values)
        height, guessed_height = made.bbox_mm[2], guess.extents_mm[2]
        errors["volume"].append(abs(guess.volume_mm3 - made.volume_mm3) / made.volume_mm3)
        lengths = [float(values[name]) for name in length_names] or [10.0]
        envelope, _ = envelope_volume_mm3(lengths)
        errors["envelope"].append(abs(envelope - made.volume_mm3) / made.volume_mm3)
        real_time = estimate_time_s(volume_mm3=made.volume_mm3, height_mm=height, rates=rates)
        guess_time = estimate_time_s(
            volume_mm3=guess.volume_mm3, height_mm=guessed_height, rates=rates
        )
        errors["time"].append(abs(guess_time - real_time) / real_time)
        real, guessed = (
            unit_price(made.volume_mm3, height),
            unit_price(guess.volume_mm3, guessed_height),
        )
        errors["price"].append(float(abs(guessed - real) / real))
        errors["signed"].append(float((guessed - real) / real))
    return PartResult(
        slug=slug,
        samples=estimator.samples,
        measured_s=measured_s,
        fit_s=fit_s,
        form=estimator.formulas["volume_mm3"].form,
        volume=errors["volume"],
        time=errors["time"],
        price=errors["price"],
        signed_price=errors["signed"],
        envelope=errors["envelope"],
    )


def pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=20, help="random configurations a part")
    parser.add_argument("--workers", type=int, default=2, help="parts measured at once")
    parser.add_argument("--parts", nargs="*", help="slugs (default: all)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="MF_QUOTE_TOLERANCE")
    parser.add_argument("--full-builds", action="store_true", help="build_geometry each one")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from catalog.parts import DEMO_PARTS

    slugs = args.parts or [part.slug for part in DEMO_PARTS]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(run_part, slug, args.configs, args.full_builds) for slug in slugs]
        results = [future.result() for future in futures]
    elapsed = time.perf_counter() - started

    print(
        "| part | samples | measured | fit | form | configs | volume median | volume worst "
        "| time median | time worst | price median | price worst | to confirm "
        "| envelope volume median | envelope worst |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    everything: dict[str, list[float]] = {
        "volume": [],
        "time": [],
        "price": [],
        "signed": [],
        "envelope": [],
    }
    for r in results:
        rises = sum(1 for e in r.signed_price if e < -args.tolerance / (1 + args.tolerance))
        print(
            f"| {r.slug} | {r.samples} | {r.measured_s:.0f} s | {r.fit_s:.1f} s | {r.form} | "
            f"{len(r.volume)} | {pct(statistics.median(r.volume))} | {pct(max(r.volume))} | "
            f"{pct(statistics.median(r.time))} | {pct(max(r.time))} | "
            f"{pct(statistics.median(r.price))} | {pct(max(r.price))} | {rises} | "
            f"{pct(statistics.median(r.envelope))} | {pct(max(r.envelope))} |"
        )
        everything["volume"] += r.volume
        everything["time"] += r.time
        everything["price"] += r.price
        everything["signed"] += r.signed_price
        everything["envelope"] += r.envelope
    rises = sum(1 for e in everything["signed"] if e < -args.tolerance / (1 + args.tolerance))
    print(
        f"| **all** | | | | | {len(everything['volume'])} | "
        f"**{pct(statistics.median(everything['volume']))}** | "
        f"**{pct(max(everything['volume']))}** | "
        f"**{pct(statistics.median(everything['time']))}** | **{pct(max(everything['time']))}** | "
        f"**{pct(statistics.median(everything['price']))}** | "
        f"**{pct(max(everything['price']))}** | {rises} | "
        f"{pct(statistics.median(everything['envelope']))} | {pct(max(everything['envelope']))} |"
    )
    within = sum(1 for e in everything["price"] if e <= 0.05)
    print(
        f"\n{within} of {len(everything['price'])} prices within 5 %; "
        f"{len(slugs)} parts in {elapsed:.0f} s with {args.workers} workers"
    )


if __name__ == "__main__":
    main()
