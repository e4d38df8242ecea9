"""Two routing processes at once never put more jobs on a machine than its queue limit: real
PostgreSQL, two OS processes running batch passes back to back while waiting jobs arrive."""

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from django.db import connection
from django.db.models import Count

from production.models import Job, Machine
from tests.builders import make_machine, make_ready_job

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True),  # the routing processes see committed rows only
]

ROOT = Path(__file__).resolve().parents[2]
MACHINES, LIMIT, JOBS = 16, 2, 80


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "") + "@"
    return f"postgres://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_router(name: str, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.production.router_process", name, str(workdir)],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "MF_VAR_DIR": str(workdir / f"var-{name}"),
            "SECRET_KEY": secrets.token_urlsafe(50),  # DEBUG is off: a real-looking key
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_two_routers_at_once_never_overfill_a_machine(user, tmp_path):
    for i in range(MACHINES):
        Machine.objects.filter(pk=make_machine(f"mk4-{i}").pk).update(queue_limit=LIMIT)
    # Every job fits every machine. Later ones are due earlier: each arrival is the most urgent
    # job yet, so a pass that read the queues before another pass committed would put it on
    # a machine the other pass has just filled.
    with patch("production.services.job_enqueue"):
        jobs = [
            make_ready_job(user=user, due_date=date(2030, 1, 1) - timedelta(days=i))
            for i in range(JOBS)
        ]
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(status=Job.Status.QUEUED)

    routers = [start_router(name, tmp_path) for name in ("router-a", "router-b")]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"{n}.ready").exists() for n in ("router-a", "router-b")):
            assert time.monotonic() < deadline, [r.stderr.read() for r in routers if r.poll()]
            time.sleep(0.05)
        for job in jobs:  # arrive one by one while both routers run
            Job.objects.filter(pk=job.pk).update(status=Job.Status.TRAVELER_READY)
            time.sleep(0.01)
        time.sleep(1.0)  # the last arrivals meet a full factory and wait
    finally:
        (tmp_path / "stop").touch()
        outputs = [router.communicate(timeout=60) for router in routers]
    reports = [json.loads(out) for out, _ in outputs]
    assert all(router.returncode == 0 for router in routers), [err for _, err in outputs]

    held = dict(
        Job.objects.filter(status__in=Job.ON_MACHINE)
        .values_list("machine__slug")
        .annotate(n=Count("pk"))
        .values_list("machine__slug", "n")
    )
    assert max(held.values()) <= LIMIT, held
    assert sum(held.values()) == MACHINES * LIMIT  # every place taken, none twice
    assert sum(r["routed"] for r in reports) == MACHINES * LIMIT
    assert all(r["routed"] > 0 for r in reports), reports  # both routers did route
    assert Job.objects.filter(status=Job.Status.TRAVELER_READY).count() == JOBS - MACHINES * LIMIT
    print(f"\nrouters: {reports}; jobs per machine: {sorted(held.values())}")
