"""Build time of every seed part at its defaults: sandboxed, from the preview cache, in-process.

For each part of catalog.parts.DEMO_PARTS, against a scratch SQLite database:
- cold: the sandboxed build a preview runs (catalog.previews.preview_build: bubblewrap,
  a fresh Python + CadQuery child, STEP/STL/SVG/GLB, files stored), median of --runs;
- cache: asking for the same preview again (catalog.previews.preview_request finds the
  ready one), median of --runs;
- in-process: the child's own build function called in this process, with CadQuery
  imported once beforehand, median of --runs. cold - in-process is the sandbox's price:
  starting an interpreter, importing CadQuery (OpenCascade, VTK) and bubblewrap itself.

    .venv/bin/python benchmarks/catalog_build.py --runs 3
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_s(run, times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", nargs="*", help="slugs (default: all)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="mf-bench-catalog-"))
    os.environ.update(
        {
            "MF_VAR_DIR": str(scratch),
            "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
            "MEDIA_ROOT": str(scratch / "media"),
            "LOG_LEVEL": "WARNING",
        }
    )
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from catalog import tasks
    from catalog.models import PartFamily, PartPreview
    from catalog.parameters import defaults, parse_schema
    from catalog.parts import DEMO_PARTS
    from catalog.previews import build_limits, preview_build, preview_request

    tasks.build_preview.apply_async = lambda *args, **kwargs: None  # built here, not by a worker
    call_command("migrate", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)
    user = get_user_model().objects.get(username="requester")
    limits = build_limits()

    started = time.perf_counter()
    import cadquery  # noqa: F401 - the in-process variant only; timed once

    import_s = time.perf_counter() - started
    from catalog.geometry import child

    parts = [p for p in DEMO_PARTS if not args.parts or p.slug in args.parts]
    rows = []
    for part in parts:
        revision = PartFamily.objects.get(slug=part.slug.replace("_", "-")).current_revision()
        values = defaults(parse_schema(revision.parameter_schema))

        # The three closures run within this iteration, so the loop variables are the right ones.
        def cold() -> None:
            PartPreview.objects.all().delete()
            preview, _ = preview_request(revision=revision, parameters=values, user=user)  # noqa: B023
            assert preview_build(preview_id=preview.pk) == "ready"

        def cached() -> None:
            preview, queued = preview_request(revision=revision, parameters=values, user=user)  # noqa: B023
            assert preview.status == "ready" and not queued

        def in_process() -> None:
            with tempfile.TemporaryDirectory() as workdir:
                here = os.getcwd()
                os.chdir(workdir)
                try:
                    child._build(
                        {
                            "mode": "script",
                            "script": revision.script,  # noqa: B023
                            "parameters": values,  # noqa: B023
                            "options": {
                                "stl_tolerance_mm": limits.stl_tolerance_mm,
                                "stl_angular_tolerance": limits.stl_angular_tolerance,
                                "max_triangles": limits.max_triangles,
                            },
                        }
                    )
                finally:
                    os.chdir(here)

        cold_s = median_s(cold, args.runs)
        cache_s = median_s(cached, args.runs)
        inproc_s = median_s(in_process, args.runs)
        rows.append((part.slug, cold_s, cache_s, inproc_s))
        print(f"{part.slug:20} cold {cold_s:6.2f} s  cache {cache_s * 1000:6.1f} ms  "
              f"in-process {inproc_s:5.2f} s  sandbox overhead {cold_s - inproc_s:5.2f} s",
              flush=True)  # fmt: skip

    print(f"\nimporting CadQuery in this process: {import_s:.2f} s (paid once, not per build)")
    print("\n| part | cold (sandbox) | cache hit | in-process | sandbox overhead |")
    print("|---|---|---|---|---|")
    for slug, cold_s, cache_s, inproc_s in rows:
        print(f"| {slug} | {cold_s:.2f} s | {cache_s * 1000:.1f} ms | {inproc_s:.2f} s "
              f"| {cold_s - inproc_s:.2f} s |")  # fmt: skip
    print(
        f"| median | {statistics.median(r[1] for r in rows):.2f} s "
        f"| {statistics.median(r[2] for r in rows) * 1000:.1f} ms "
        f"| {statistics.median(r[3] for r in rows):.2f} s "
        f"| {statistics.median(r[1] - r[3] for r in rows):.2f} s |"
    )


if __name__ == "__main__":
    main()
