"""Fault tests (#18): a running system — Redis, Celery workers, beat and the web process, each a
real OS process — loses one part under load, and must lose nothing, do nothing twice, leave no
order half-written, and get every job moving again within 60 s of a worker being available.

Each test prints its recovery time and records it (shown in the terminal summary of a run).
The reconciler runs with its default settings (MF_RECONCILE_INTERVAL_S, MF_JOB_STALE_AFTER_S,
MF_JOB_LOST_GRACE_S, MF_WORKER_PING_TIMEOUT_S): the figures are the ones docs/operations.md
states. Cheap orders: one spacer each, all alike, so geometry and G-code are made once.
"""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import F

from production.models import Job
from tests.integration.conftest import database_url
from tests.integration.faults import (
    RECOVERY_LIMIT_S,
    FaultSystem,
    PrivatePostgres,
    caught_holding,
    check_outcome,
    database_at,
    new_key,
    recovery_s,
    seed,
    unfinished,
    wait_settled,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.fault,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]

ORDERS = 20
STEP_STATUSES = ["queued", "geometry_built", "validated"]  # the steps a worker claims


@pytest.fixture
def system(settings, tmp_path) -> Iterator[FaultSystem]:
    fault_system = FaultSystem(
        workdir=tmp_path, database_url=database_url(), media_root=settings.MEDIA_ROOT
    )
    yield fault_system
    fault_system.stop()


def report(request, system: FaultSystem, what: str, **figures: float) -> None:
    line = f"{what}: " + ", ".join(f"{name} {value:.1f} s" for name, value in figures.items())
    # What recovered the jobs, for who reads the output (pytest -s).
    print("\n" + "\n".join(system.grep("worker ready:", "is gone", "re-enqueueing")))
    print(line)
    request.node.user_properties.append(("fault recovery", line))


def held_by(node: str) -> list[int]:
    """Jobs whose current step a worker of this node name has claimed."""
    return list(
        Job.objects.filter(
            status__in=STEP_STATUSES,
            claimed_by__startswith=f"{node}@",
            claimed_at__gte=F("status_changed_at"),
        ).values_list("pk", flat=True)
    )


def place(system: FaultSystem, body: dict, count: int) -> dict[str, int]:
    accepted = {}
    for _ in range(count):
        key = new_key()
        status, order_id = system.post_order(body, key=key)
        assert status == 201, (status, system.logs())
        assert order_id is not None
        accepted[key] = order_id
    return accepted


# What fails and recovers here is a Celery worker and the reconciler's watch over it (worker
# pings, stale claims, messages sent again): the same on either database, so it runs once. The
# web process killed mid-write, below, leaves a transaction cut short: it runs on both.
@pytest.mark.db_independent
def test_a_worker_killed_mid_step_with_20_jobs_in_flight(system, request):
    body = seed(system)
    system.start_redis()
    system.start_beat()
    system.start_web()
    accepted = place(system, body, ORDERS)
    orders = list(accepted.values())
    doomed = system.start_worker("doomed")  # after the orders: see caught_holding
    # Mid-step: both of its pool processes hold a step.
    stranded = caught_holding(
        doomed, lambda: held_by("doomed"), steps=2, orders=orders, timeout=180
    )
    doomed.kill()
    rescuer = system.start_worker("rescuer", wait=False)
    available = system.wait_ready(rescuer)
    in_flight = unfinished(orders)
    settled_at = wait_settled(system, orders, timeout=300)
    stranded_s = recovery_s(stranded, since=available)
    every_s = recovery_s(in_flight, since=available)
    report(
        request,
        system,
        f"worker SIGKILLed holding {len(stranded)} steps, {len(in_flight)} jobs in flight",
        stranded_moving_again=stranded_s,
        every_job_moving_again=every_s,
        all_at_machines=settled_at - available,
    )
    check_outcome(system, accepted)
    assert stranded_s < RECOVERY_LIMIT_S and every_s < RECOVERY_LIMIT_S


@pytest.mark.db_independent  # the broker lost, the jobs waiting for it sent again: runs once
def test_redis_killed_during_an_intake_burst_and_restarted_empty(system, request):
    body = seed(system)
    system.start_redis()
    system.start_beat()
    system.start_worker("w1")
    system.start_web()
    accepted = place(system, body, 5)
    system.kill_redis()
    # Intake while Redis is down: 201 (the job rows wait to be sent) or 503, never lost.
    refused = 0
    for _ in range(10):
        key = new_key()
        status, order_id = system.post_order(body, key=key)
        assert status in (201, 503), (status, system.logs())
        if status == 201:
            assert order_id is not None
            accepted[key] = order_id
        else:
            refused += 1
    system.start_redis()  # the same port, empty: every message sent before is lost
    back = time.time()
    accepted |= place(system, body, 5)
    orders = list(accepted.values())
    in_flight = unfinished(orders)
    settled_at = wait_settled(system, orders, timeout=300)
    every_s = recovery_s(in_flight, since=back)
    report(
        request,
        system,
        f"Redis killed, {10 - refused} of 10 orders taken while down, restarted empty",
        every_job_moving_again=every_s,
        all_at_machines=settled_at - back,
    )
    assert refused == 0, "an order POST was refused while Redis was down"
    check_outcome(system, accepted)
    assert every_s < RECOVERY_LIMIT_S


def test_the_web_process_killed_during_a_post_burst(system, request):
    body = seed(system)
    system.start_redis()
    system.start_beat()
    system.start_worker("w1")
    system.start_web()
    keys = [new_key() for _ in range(ORDERS)]
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def post(key: str) -> None:
        status, order_id = system.post_order(body, key=key)
        if status == 201 and order_id is not None:
            with lock:
                answers[key] = order_id

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post, key) for key in keys]
        wait_until(lambda: len(answers) >= 6, timeout=120, what="six orders placed")
        assert system.web is not None
        system.web.kill()  # mid-burst: requests in flight are cut
        for future in futures:
            future.result()
    cut = [key for key in keys if key not in answers]
    assert cut, "every request was answered before the web process died"
    system.start_web()
    back = time.time()
    # A careful client sends what got no answer again, with the same Idempotency-Key: an
    # order the dead process had committed comes back (200 or 201), never a second one.
    for key in cut:
        status, order_id = system.post_order(body, key=key)
        assert status in (200, 201) and order_id is not None, (status, system.logs())
        answers[key] = order_id
    orders = list(answers.values())
    in_flight = unfinished(orders)
    settled_at = wait_settled(system, orders, timeout=300)
    every_s = recovery_s(in_flight, since=back)
    report(
        request,
        system,
        f"web process SIGKILLed with {len(cut)} of {ORDERS} requests unanswered",
        every_job_moving_again=every_s,
        all_at_machines=settled_at - back,
    )
    check_outcome(system, answers)
    assert every_s < RECOVERY_LIMIT_S


@pytest.fixture
def private_postgres(tmp_path) -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test's own, migrated: restarting it disturbs no other
    test (the suite's cluster serves every pytest-xdist process at once)."""
    cluster = PrivatePostgres.start()
    try:
        cluster.migrate(log=tmp_path / "migrate.log")
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.postgres
def test_postgresql_restarted_under_load(system, private_postgres, request):
    system.database_url = private_postgres.url
    with database_at(private_postgres.url):
        body = seed(system)
        system.start_redis()
        system.start_beat()
        system.start_web()
        accepted = place(system, body, ORDERS)
        worker = system.start_worker("w1")  # after the orders: see caught_holding
        caught_holding(
            worker, lambda: held_by("w1"), steps=2, orders=list(accepted.values()), timeout=180
        )
        worker.thaw()
        # More orders while PostgreSQL restarts: each is placed (201) or refused (503, with
        # nothing written), never a 500; a refused one is sent again afterwards.
        answers: dict[str, int] = {}

        def post_during_restart() -> None:
            for _ in range(5):
                key = new_key()
                status, order_id = system.post_order(body, key=key)
                answers[key] = status if order_id is None else -order_id
                time.sleep(0.2)

        poster = threading.Thread(target=post_during_restart)
        poster.start()
        down = time.time()
        private_postgres.restart()
        back = time.time()
        poster.join()
        connection.close()  # this process's own connection died with the server
        assert all(code in (503,) or code < 0 for code in answers.values()), answers
        for key, code in answers.items():
            if code < 0:
                accepted[key] = -code
            else:  # refused while down: sent again, the same key
                status, order_id = system.post_order(body, key=key)
                assert status in (200, 201) and order_id is not None, (status, system.logs())
                accepted[key] = order_id
        orders = list(accepted.values())
        in_flight = unfinished(orders)
        settled_at = wait_settled(system, orders, timeout=300)
        every_s = recovery_s(in_flight, since=back)
        refused = sum(code == 503 for code in answers.values())
        report(
            request,
            system,
            f"PostgreSQL restarted in {back - down:.1f} s under load, "
            f"{refused} of {len(answers)} orders refused with 503 meanwhile",
            every_job_moving_again=every_s,
            all_at_machines=settled_at - back,
        )
        check_outcome(system, accepted)
        assert every_s < RECOVERY_LIMIT_S
