"""The manager dashboard's speed (production.dashboards) with 100,000 jobs of history.

A data builder writes, with bulk_create, a year of a factory's history whose events agree
with each other: every job has its order, line and the events of its whole life (placed,
the four pipeline steps, routed, started, finished, QC passed or scrapped; a few fail on the
machine), and each machine the state events of the jobs it ran (busy at a start, idle at a
finish, with its loss: work queued or none), with some down time. Then it times each figure
and the whole page (GET /station/dashboard/ as the factory's manager), median of --repeats
runs, for the last 28 days and for the whole year. The finished days of machine time and of
job moves are kept in the cache after the first run (production.dashboards.cache), as in a
running server; the OEE and stage figures are also timed with nothing kept.

    .venv/bin/python benchmarks/dashboard.py [--jobs 100000] [--machines 20] [--repeats 5]
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/dashboard.py

The database is a scratch SQLite file (in a temporary directory), or DATABASE_URL when set.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAYS = 365
BATCH = 5000


def build(jobs: int, machines: int, seed: int) -> None:
    """The factory's year: `jobs` jobs spread over `machines` machines, ending at NOW."""
    from django.contrib.auth.models import User

    from catalog.models import Material, PartFamily
    from catalog.services import revision_create, revision_publish
    from orders.models import Membership, Order, OrderLine, Organisation
    from production.models import Job, JobEvent, Machine, MachineEvent, Site

    rng = random.Random(seed)
    # History has its own times: the creation stamps are the builder's, not the clock's.
    for model, name in ((Order, "placed_at"), (Job, "created_at"), (Job, "status_changed_at")):
        model._meta.get_field(name).auto_now_add = False  # type: ignore[attr-defined]

    factory = Organisation.objects.create(slug="bench-factory", name="Bench factory")
    customer = Organisation.objects.create(slug="bench-customer", name="Bench customer")
    manager = User.objects.create_user("bench-manager", password="x")
    Membership.objects.create(user=manager, organisation=factory, role="manager")
    requester = User.objects.create_user("bench-requester", password="x")
    Membership.objects.create(user=requester, organisation=customer, role="requester")
    site = Site.objects.create(slug="bench", name="Bench", operator=factory)
    materials = [
        Material.objects.get_or_create(
            slug=slug, defaults={"name": slug.upper(), "density_g_cm3": 1.2, "price_per_kg": 25}
        )[0]
        for slug in ("pla", "petg", "abs", "tpu")
    ]
    revisions = []
    for n in range(6):
        family = PartFamily.objects.create(slug=f"bench-part-{n}", name=f"Part {n}")
        revision = revision_create(
            family=family,
            script="import cadquery as cq\nshow_object(cq.Workplane().box(10, 10, 10))\n",
            parameter_schema=[],
            rules=[],
            process="fdm",
            materials=materials,
        )
        revisions.append(revision_publish(revision=revision))
    fleet = Machine.objects.bulk_create(
        Machine(
            site=site,
            slug=f"bench-{n:02d}",
            name=f"B{n:02d}",
            build_x_mm=250,
            build_y_mm=210,
            build_z_mm=220,
        )
        for n in range(machines)
    )

    start = NOW - timedelta(days=DAYS)
    per_machine = jobs // machines
    # Each machine's jobs in turn: run time and gaps sized so a year holds them.
    slot_s = DAYS * 86400 / per_machine
    S = Job.Status
    orders: list[Order] = []
    plans: list[dict[str, Any]] = []
    machine_events: list[MachineEvent] = []
    for machine in fleet:
        clock = start + timedelta(seconds=rng.uniform(0, slot_s))
        state = "idle"
        for _ in range(per_machine):
            estimate = rng.uniform(0.3, 0.7) * slot_s
            run = estimate * rng.uniform(0.9, 1.3)
            routed = clock - timedelta(seconds=rng.uniform(0.05, 0.4) * slot_s)
            placed = routed - timedelta(seconds=rng.uniform(600, 4 * 3600))
            began = clock
            ended = began + timedelta(seconds=run)
            fails = rng.random() < 0.02
            quantity = rng.choice((1, 1, 1, 2, 4))
            scrapped = 0 if fails else rng.choices((0, 1, quantity), weights=(90, 7, 3))[0]
            judged = ended + timedelta(seconds=rng.uniform(300, 3 * 3600))
            if judged > NOW or ended > NOW:
                break
            plans.append(
                {
                    "machine": machine,
                    "placed": placed,
                    "routed": routed,
                    "began": began,
                    "ended": ended,
                    "judged": judged,
                    "estimate": estimate / quantity,
                    "quantity": quantity,
                    "fails": fails,
                    "scrapped": scrapped,
                    "revision": rng.choice(revisions),
                    "material": rng.choice(materials),
                }
            )
            due = placed + timedelta(hours=rng.choice((4, 8, 24, 48)))
            orders.append(
                Order(
                    organisation=customer,
                    placed_by=requester,
                    status="done",
                    placed_at=placed,
                    promised_at=due if rng.random() < 0.7 else None,
                    due_date=due.date() if rng.random() < 0.2 else None,
                )
            )
            machine_events.append(
                MachineEvent(
                    machine=machine, from_state=state, to_state="busy", actor="bench", at=began
                )
            )
            after = "error" if fails else "idle"
            loss = "down" if fails else rng.choice(("waiting", "no_work", "no_work"))
            machine_events.append(
                MachineEvent(
                    machine=machine,
                    from_state="busy",
                    to_state=after,
                    actor="bench",
                    at=ended,
                    loss=loss,
                )
            )
            state = after
            # The next job starts a slot after this one did (a minute after this one ends if
            # it overran): the machine's year holds its share of the jobs.
            clock = max(
                began + timedelta(seconds=slot_s * rng.uniform(0.9, 1.1)),
                ended + timedelta(seconds=60),
            )
            if fails:  # an hour to clear the nozzle, then idle
                clock = max(clock, ended + timedelta(seconds=3600))
                machine_events.append(
                    MachineEvent(
                        machine=machine,
                        from_state="error",
                        to_state="idle",
                        actor="bench",
                        at=ended + timedelta(seconds=3600),
                        loss="no_work",
                    )
                )
                state = "idle"
    Order.objects.bulk_create(orders, batch_size=BATCH)
    lines = OrderLine.objects.bulk_create(
        (
            OrderLine(
                order=order,
                revision=plan["revision"],
                parameters={},
                parameters_hash="0" * 64,
                material=plan["material"],
                quantity=plan["quantity"],
                status="done",
            )
            for order, plan in zip(orders, plans, strict=True)
        ),
        batch_size=BATCH,
    )
    job_rows = []
    for line, plan in zip(lines, plans, strict=True):
        fails = plan["fails"]
        scrapped = plan["scrapped"]
        status = S.FAILED if fails else (S.SCRAPPED if scrapped == plan["quantity"] else S.DONE)
        job_rows.append(
            Job(
                line=line,
                quantity=plan["quantity"],
                status=status,
                machine=plan["machine"],
                created_at=plan["placed"],
                status_changed_at=plan["ended"] if fails else plan["judged"],
                started_at=plan["began"],
                finished_at=None if fails else plan["ended"],
                toolpath_meta={"estimated_time_s": round(plan["estimate"])},
                qc_passed=0 if fails else plan["quantity"] - scrapped,
                qc_scrapped=scrapped,
            )
        )
    made = Job.objects.bulk_create(job_rows, batch_size=BATCH)
    events: list[JobEvent] = []

    def event(job: Job, step: str, source: str, to: str, at: datetime) -> None:
        events.append(
            JobEvent(
                job=job,
                step=step,
                from_status=source,
                to_status=to,
                actor="bench",
                started_at=at,
                finished_at=at,
                duration_ms=0,
                followed_at=at,
            )
        )

    pipeline = [S.QUEUED, S.GEOMETRY_BUILT, S.VALIDATED, S.TOOLPATH_READY, S.TRAVELER_READY]
    for job, plan in zip(made, plans, strict=True):
        placed, routed = plan["placed"], plan["routed"]
        event(job, "order", "", S.QUEUED, placed)
        for n, (source, to) in enumerate(zip(pipeline, pipeline[1:], strict=False), start=1):
            event(job, to, source, to, placed + timedelta(seconds=30 * n))
        event(job, "routing", S.TRAVELER_READY, S.ROUTED, routed)
        event(job, "start", S.ROUTED, S.RUNNING, plan["began"])
        if plan["fails"]:
            event(job, "fail", S.RUNNING, S.FAILED, plan["ended"])
            continue
        event(job, "finish", S.RUNNING, S.AWAITING_QC, plan["ended"])
        event(job, "qc", S.AWAITING_QC, job.status, plan["judged"])
        if len(events) >= 10 * BATCH:
            JobEvent.objects.bulk_create(events, batch_size=BATCH)
            events.clear()
    JobEvent.objects.bulk_create(events, batch_size=BATCH)
    MachineEvent.objects.bulk_create(machine_events, batch_size=BATCH)
    for model, name in ((Order, "placed_at"), (Job, "created_at"), (Job, "status_changed_at")):
        model._meta.get_field(name).auto_now_add = True  # type: ignore[attr-defined]


def figure_calls(scope: Any, period: Any) -> dict[str, Callable[[], object]]:
    from django.core.cache import cache

    from production.dashboards import figures

    def oee_nothing_kept() -> object:
        cache.clear()  # the first request after a finished day was written
        return figures.oee(scope, period)

    def stages_nothing_kept() -> object:
        cache.clear()
        return figures.stages(scope, period, now=NOW)

    def scrap_nothing_kept() -> object:
        cache.clear()
        return figures.scrap_trend(scope, period, now=NOW)

    return {
        "work in progress and waiting (stages)": lambda: figures.stages(scope, period, now=NOW),
        "work in progress and waiting, no finished day kept": stages_nothing_kept,
        "utilisation and OEE (per machine, day, week)": lambda: figures.oee(scope, period),
        "utilisation and OEE, no finished day kept": oee_nothing_kept,
        "scrap rate trend": lambda: figures.scrap_trend(scope, period, now=NOW),
        "scrap rate trend, no finished day kept": scrap_nothing_kept,
        "lead time and on-time rate": lambda: figures.lead_times(scope, period),
        "promise accuracy": lambda: figures.promises(scope, period),
        "throughput": lambda: figures.throughput(scope, period),
        "all figures (production.dashboards.figures.dashboard)": lambda: figures.dashboard(
            scope, period, now=NOW
        ),
    }


def median_ms(call: Callable[[], object], repeats: int) -> str:
    """The median wall time, and the median CPU time of this process ("wall/cpu"): on SQLite
    the queries run in this process, so its CPU time is the work done whatever the machine's
    load (a shared machine's wall times vary 2-3x from run to run)."""
    call()  # warm: the first run pays for the connection and the database's caches
    times, cpu = [], []
    for _ in range(repeats):
        started, used = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return f"{statistics.median(times):.0f}/{statistics.median(cpu):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--periods", default="28,365", help="the periods to time, in days")
    parser.add_argument(
        "--sqlite-file", type=Path, help="SQLite file to build into, or to reuse if it exists"
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="mf-dashboard-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")
    # Publishing the benchmark's parts queues preview builds: to no broker.
    os.environ.setdefault("REDIS_URL", "memory://")
    reuse = bool(args.sqlite_file and args.sqlite_file.exists())
    if not os.environ.get("DATABASE_URL"):
        path = args.sqlite_file or scratch / "dashboard.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path.resolve()}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from production.models import Job, JobEvent, MachineEvent

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    from orders.models import Organisation

    # A database that holds the benchmark's factory already (a reused SQLite file, or the
    # same PostgreSQL cluster run twice) is timed as it is.
    reuse = reuse or Organisation.objects.filter(slug="bench-factory").exists()
    started = time.perf_counter()
    if not reuse:
        build(args.jobs, args.machines, args.seed)
    built_s = time.perf_counter() - started
    if database == "PostgreSQL":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"{database}: built {Job.objects.count():,} jobs, {JobEvent.objects.count():,} job "
        f"events, {MachineEvent.objects.count():,} machine events in {built_s:.1f} s"
    )
    manager = User.objects.get(username="bench-manager")
    client = Client()
    client.force_login(manager)
    from production.dashboards.access import dashboard_request

    periods = [int(days) for days in args.periods.split(",")]
    columns = " | ".join(f"{days} days (wall/CPU ms)" for days in periods)
    print(f"\n| {database} | figure | {columns} |")
    print("|---|---|" + "---:|" * len(periods))
    results: dict[str, list[str]] = {}
    for days in periods:
        read = dashboard_request(manager, {"days": str(days)}, now=NOW)
        scope, period = read.scope, read.period
        calls = figure_calls(scope, period)
        for name, call in calls.items():
            results.setdefault(name, []).append(median_ms(call, args.repeats))
        # The page reads "now" from the clock: its period is the one before the real today,
        # so it is timed with from/to days matching the figures' period.
        query = f"from={period.first_day:%Y-%m-%d}&to={period.last_day:%Y-%m-%d}"

        def page(query: str = query) -> None:
            response = client.get(f"/station/dashboard/?{query}")
            assert response.status_code == 200, response.status_code

        results.setdefault("the whole page, GET /station/dashboard/", []).append(
            median_ms(page, args.repeats)
        )
    for name, times in results.items():
        print(f"| | {name} | " + " | ".join(times) + " |")


if __name__ == "__main__":
    main()
