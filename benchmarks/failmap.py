"""The failure map of a revision (production.failmap, issue #15 point 6) at scale.

Builds one revision with four numeric parameters and `--jobs` ended jobs of it (each its own
order line, random parameters, thin walls failing more), then times the medians of: the
counting query with its bins and regions (`revision_failure_map`), the scatter's grouped
pairs (`scatter_points`), the admin's whole page, and a quote's warning read (cached, then
cold). The data builder writes the rows directly (bulk inserts): what is timed is reading.

    .venv/bin/python benchmarks/failmap.py --jobs 10000 100000
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/failmap.py --jobs 100000

The database is a scratch SQLite file, or DATABASE_URL when set (PostgreSQL).
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = [
    {"name": "wall_mm", "type": "length", "default": 2, "min": 0.8, "max": 3.2, "label": "Wall"},
    {"name": "width", "type": "length", "default": 40, "min": 10, "max": 70},
    {"name": "height", "type": "length", "default": 10, "min": 5, "max": 20},
    {"name": "holes", "type": "integer", "default": 2, "min": 0, "max": 8},
]


def median_s(call: Callable[[], Any], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def build(jobs: int, seed: int) -> Any:
    """A published revision and `jobs` ended jobs of it; returns the revision."""
    from django.contrib.auth import get_user_model

    from catalog.models import Material, PartFamily
    from catalog.services import revision_create, revision_publish
    from orders.models import Membership, Order, OrderLine, Organisation
    from production.models import Job

    rng = random.Random(seed)
    material = Material.objects.get_or_create(
        slug="pla", defaults={"name": "PLA", "density_g_cm3": "1.24", "price_per_kg": "25"}
    )[0]
    family = PartFamily.objects.create(slug=f"bracket-{jobs}", name=f"Bracket {jobs}")
    revision = revision_publish(
        revision=revision_create(
            family=family,
            script="show_object(None)\n",
            parameter_schema=SCHEMA,
            materials=[material],
        )
    )
    organisation = Organisation.objects.get_or_create(slug="acme", defaults={"name": "Acme"})[0]
    user = get_user_model().objects.get_or_create(username="req")[0]
    Membership.objects.get_or_create(user=user, organisation=organisation)
    order = Order.objects.create(organisation=organisation, placed_by=user, status="in_progress")
    lines = []
    for _ in range(jobs):
        parameters = {
            "wall_mm": round(rng.uniform(0.8, 3.2), 1),
            "width": rng.randrange(10, 71, 5),
            "height": rng.randrange(5, 21),
            "holes": rng.randrange(0, 9),
        }
        lines.append(
            OrderLine(
                order=order,
                revision=revision,
                parameters=parameters,
                parameters_hash="",
                material=material,
                quantity=rng.randrange(1, 5),
            )
        )
    lines = OrderLine.objects.bulk_create(lines, batch_size=2000)
    made = []
    for line in lines:
        thin = line.parameters["wall_mm"] < 1.2
        quantity = line.quantity
        if rng.random() < (0.08 if thin else 0.02):
            made.append(
                Job(line=line, quantity=quantity, status="failed", started_at=order.placed_at)
            )
            continue
        scrapped = sum(rng.random() < (0.45 if thin else 0.05) for _ in range(quantity))
        made.append(
            Job(
                line=line,
                quantity=quantity,
                status="done" if scrapped < quantity else "scrapped",
                qc_passed=quantity - scrapped,
                qc_scrapped=scrapped,
                started_at=order.placed_at,
            )
        )
    Job.objects.bulk_create(made, batch_size=2000)
    return revision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="mf-bench-failmap-"))
    os.environ.update(
        {"MF_VAR_DIR": str(scratch), "MEDIA_ROOT": str(scratch / "media"), "LOG_LEVEL": "WARNING"}
    )
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from catalog import services
    from tests.builders import login_with_mfa

    services._enqueue_fit = lambda revision_id: None  # no worker: the fit is not what is timed

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    admin = django.contrib.auth.get_user_model().objects.create_superuser("cat", password="x")
    client = Client()
    login_with_mfa(client, admin)
    print(f"database: {connection.vendor}; median of {args.runs} runs")  # noqa: T201
    print("| jobs | map (1 query) | scatter pairs | admin page | warning, cached | cold |")  # noqa: T201
    print("|---:|---:|---:|---:|---:|---:|")  # noqa: T201
    for total in sorted(args.jobs):
        measure(client, build(total, args.seed), total, args.runs)


def measure(client: Any, revision: Any, total: int, runs: int) -> None:
    """One table row: the medians for `total` jobs of `revision`."""
    from django.core.cache import cache

    from production import failmap

    thresholds = failmap.Thresholds.from_settings()
    found = failmap.revision_failure_map(revision=revision, thresholds=thresholds)
    map_s = median_s(
        lambda: failmap.revision_failure_map(revision=revision, thresholds=thresholds), runs
    )
    scatter_s = median_s(
        lambda: failmap.scatter_points(revision, "wall_mm", "width", limit=2000), runs
    )
    page = f"/failures/revisions/{revision.pk}/"
    assert client.get(page).status_code == 200
    page_s = median_s(lambda: client.get(page), runs)
    thin = {"wall_mm": 1.0, "width": 40, "height": 10, "holes": 2}
    failmap.failure_warnings(revision=revision, parameters=thin)
    cached_s = median_s(lambda: failmap.failure_warnings(revision=revision, parameters=thin), runs)

    def cold() -> None:
        cache.clear()
        failmap.failure_warnings(revision=revision, parameters=thin)

    cold_s = median_s(cold, runs)
    print(  # noqa: T201
        f"| {total:,} | {map_s * 1000:.0f} ms | {scatter_s * 1000:.0f} ms "
        f"| {page_s * 1000:.0f} ms | {cached_s * 1e6:.0f} µs | {cold_s * 1000:.0f} ms |"
    )
    print(  # noqa: T201
        f"  made {found.total.made:,}, failed {found.total.bad:,}; regions: "
        + "; ".join(r.warning for r in found.regions)
    )


if __name__ == "__main__":
    main()
