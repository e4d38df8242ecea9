"""A routing process for tests/production/test_router_lock.py, run as its own OS process:

    python -m tests.production.router_process NAME WORKDIR

Signals WORKDIR/NAME.ready once Django is set up, runs batch routing passes back to back
until WORKDIR/stop appears, then prints {"routed": n, "passes": n, "seconds": s} as JSON.
"""

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "microfactory.settings")
    import django

    django.setup()
    from django.utils import timezone

    from microfactory.celery import app
    from production import machines

    # The dispatches a pass queues on commit go to kombu's in-process transport: no broker
    # here, and a connection to a missing one would stall the pass for seconds.
    app.conf.broker_url = "memory://"

    name, workdir = sys.argv[1], Path(sys.argv[2])
    (workdir / f"{name}.ready").touch()
    routed = passes = 0
    started = time.monotonic()
    while not (workdir / "stop").exists():
        routed += len(machines.jobs_route_waiting(now=timezone.now(), actor=name))
        passes += 1
    seconds = round(time.monotonic() - started, 2)
    print(json.dumps({"routed": routed, "passes": passes, "seconds": seconds}))


if __name__ == "__main__":
    main()
