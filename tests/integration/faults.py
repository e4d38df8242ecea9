"""A whole system for the fault tests, each part a real OS process that a test can kill:
a Redis server (restartable on its port, empty), Celery workers, Celery beat, and the web
process (gunicorn, as in production), all on the test database and media directory.

And the checks every fault test makes afterwards: every order that got a 201 reaches a machine
(or an end), no step ran to completion twice and no artifact file was written twice, no order
is half-written, and how long the system took to get every unfinished job moving again.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from tests.integration.conftest import ROOT, free_port, redis_server_binary

# A job has reached its machine (the demo machines are manual: dispatched at once) or ended.
SETTLED = {"dispatched", "rejected", "failed", "cancelled", "done", "scrapped"}
# Each once; the traveler's comes anywhere after the toolpath's (rendered beside routing, #19).
PIPELINE_STEPS = ["geometry", "validation", "toolpath", "traveler", "routing", "dispatch"]
# Recovery bound the issue sets (#18): from a worker available again to every job moving.
RECOVERY_LIMIT_S = 60.0


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children at once (its own process group)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP the process and its children: nothing it holds can finish meanwhile."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            self.thaw()  # a frozen process acts on the SIGTERM only once it runs again
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-15000:] if self.log.exists() else ""


@dataclass
class FaultSystem:
    workdir: Path
    database_url: str
    media_root: Path
    redis_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    redis: Proc | None = None
    web: Proc | None = None
    web_port: int = 0
    token: str = ""
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self, var: Path) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.redis_url,
            # As in production (docker/production.env): the throttles count in Redis too.
            "MF_CACHE_URL": f"redis://127.0.0.1:{self.redis_port}/1",
            "DATABASE_URL": self.database_url,
            "MEDIA_ROOT": str(self.media_root),
            "MF_VAR_DIR": str(var),
            "SECRET_KEY": "fault-tests-" + secrets.token_urlsafe(40),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            **self.env_extra,
        }

    def _spawn(self, name: str, command: list[str]) -> Proc:
        var = self.workdir / f"var-{name}"
        var.mkdir(exist_ok=True)
        log = self.workdir / f"{name}.log"
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env(var),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, process, log)
        self.procs.append(proc)
        return proc

    # --- Redis ------------------------------------------------------------------------------

    def start_redis(self) -> None:
        """A Redis on this system's port, empty (no persistence: a restart loses everything)."""
        self.redis = self._spawn(
            f"redis-{len(self.procs)}",
            [
                redis_server_binary(),
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
        )
        client = redis.Redis.from_url(self.redis_url)
        wait_until(lambda: _pings(client), timeout=15, what="redis to answer", proc=self.redis)

    def kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()

    # --- Celery -----------------------------------------------------------------------------

    def start_worker(self, name: str, *, concurrency: int = 2, wait: bool = True) -> Proc:
        proc = self._spawn(
            name,
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
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "info",
            ],
        )
        if wait:
            self.wait_ready(proc)
        return proc

    def wait_ready(self, proc: Proc, timeout: float = 90) -> float:
        """Wait for a worker's "ready." line; the time.time() it was seen."""
        wait_until(lambda: " ready." in proc.output(), timeout=timeout, what="ready", proc=proc)
        return time.time()

    def start_beat(self) -> Proc:
        var = self.workdir / "var-beat"
        var.mkdir(exist_ok=True)
        return self._spawn(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "microfactory",
                "beat",
                "-l",
                "info",
                "--schedule",
                str(var / "beat-schedule"),
            ],
        )

    # --- the web process --------------------------------------------------------------------

    def start_web(self) -> Proc:
        self.web_port = free_port()
        self.web = self._spawn(
            f"web-{len(self.procs)}",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "microfactory.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                "2",
                "--timeout",
                "60",
            ],
        )
        wait_until(self._web_answers, timeout=60, what="the web process", proc=self.web)
        return self.web

    def _web_answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/v1/", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def post_order(self, body: dict, *, key: str, timeout: float = 30) -> tuple[int, int | None]:
        """POST one order; (status, order id) — status 0 when no answer came (connection
        refused or cut: the web process died)."""
        try:
            response = httpx.post(
                f"{self.base_url}/api/v1/orders/",
                content=json.dumps(body),
                headers={
                    "Authorization": f"Token {self.token}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                },
                timeout=timeout,
            )
        except httpx.HTTPError:
            return 0, None
        order_id = response.json().get("id") if response.status_code in (200, 201) else None
        return response.status_code, order_id

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def grep(self, *words: str) -> list[str]:
        """Lines of every process's log that hold one of `words` (for the report)."""
        return [
            f"{proc.name}: {line}"
            for proc in self.procs
            if proc.log.exists()
            for line in proc.log.read_text(errors="replace").splitlines()
            if any(word in line for word in words)
        ]

    def logs(self) -> str:
        return "\n".join(f"--- {proc.name} ---\n{proc.output()[-4000:]}" for proc in self.procs)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, proc: Proc | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited while waiting for {what}\n{proc.output()}")
        if time.monotonic() > deadline:
            log = proc.output() if proc else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{log}")
        time.sleep(0.25)


def caught_holding(
    worker: Proc, held: Callable[[], list[int]], *, steps: int, orders: list[int], timeout: float
) -> list[int]:
    """Catch a worker holding `steps` steps at once, and leave it frozen (Proc.freeze) there:
    the jobs it holds. Looking at a running worker is a race (a cached step takes a few hundred
    ms, and the pipeline may move on between the look and what the caller does next), so
    whenever it holds any step it is frozen and looked at again: it holds enough, or it is
    thawed to go on. The caller kills it, or thaws it.

    Start the worker after the orders are placed: with a backlog waiting, both of its pool
    processes are busy from the start. A worker that keeps up with orders as they come (cached
    steps are quick) may never hold two at once before every job settles: a PostgreSQL pass of
    CI failed so."""
    what = f"{worker.name} to hold {steps} steps at once"
    deadline = time.monotonic() + timeout
    while True:
        if held():
            worker.freeze()
            holding = held()
            if len(holding) >= steps:
                return holding
            worker.thaw()
        if not worker.alive():
            raise AssertionError(f"{worker.name} exited waiting for {what}\n{worker.output()}")
        if not unfinished(orders):
            raise AssertionError(f"every job settled before {what}\n{worker.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def new_key() -> str:
    return uuid.uuid4().hex


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- a PostgreSQL of one's own, to restart -----------------------------------------------


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster started with pg_ctl, so that it can be restarted
    (scripts/with-postgres.sh starts the suite's the same way, minus pg_ctl: see there)."""

    workdir: Path
    port: int
    bin: Path
    as_server: list[str]

    @property
    def url(self) -> str:
        return f"postgres://microfactory@127.0.0.1:{self.port}/microfactory"

    @classmethod
    def start(cls) -> "PrivatePostgres":
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        binaries = Path(os.environ.get("PG_BIN", "")) if os.environ.get("PG_BIN") else None
        if binaries is None:
            assert candidates, "PostgreSQL server binaries not found (set PG_BIN)"
            binaries = candidates[-1].parent
        # PostgreSQL refuses to run as root: as root the cluster runs as "postgres" (the user
        # scripts/with-postgres.sh creates), like the suite's own.
        root = os.geteuid() == 0
        as_server = (
            ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
            if root
            else []
        )
        workdir = Path(tempfile.mkdtemp(prefix="mf-fault-pg.", dir="/tmp" if root else None))
        if root:
            shutil.chown(workdir, "postgres")
        cluster = cls(workdir=workdir, port=free_port(), bin=binaries, as_server=as_server)
        cluster._run(
            "initdb",
            f"--pgdata={workdir / 'data'}",
            "--username=microfactory",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-p {cluster.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={workdir} -c fsync=off -c max_connections=200"
        )
        cluster._pg_ctl("start", "-o", options)
        cluster._run(
            "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "microfactory",
            "microfactory",
            as_server=False,
        )
        return cluster

    def _run(self, tool: str, *args: str, as_server: bool = True) -> None:
        command = [*(self.as_server if as_server else []), str(self.bin / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run(
            "pg_ctl",
            action,
            "-D",
            str(self.workdir / "data"),
            "-l",
            str(self.workdir / "server.log"),
            "-w",
            "-t",
            "60",
            *args,
        )

    def migrate(self, *, log: Path) -> None:
        with log.open("wb") as out:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput"],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": self.url},
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=300,
            )

    def restart(self) -> None:
        """Stop (fast: every connection is cut, open transactions roll back) and start again
        with the same options (pg_ctl keeps them in postmaster.opts)."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def database_at(url: str) -> Iterator[None]:
    """This process's default connection on another PostgreSQL database for the block."""
    from urllib.parse import urlsplit

    from django.db import connection

    parts = urlsplit(url)
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(
        NAME=parts.path.lstrip("/"),
        USER=parts.username or "",
        PASSWORD=parts.password or "",
        HOST=parts.hostname or "",
        PORT=str(parts.port or ""),
    )
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


# --- the checks -----------------------------------------------------------------------------


def seed(system: FaultSystem) -> dict:
    """The demo catalog, sites and manual machines (room for every job), and the requester's
    API token; the body of a cheap order: one spacer at its defaults, the same for every
    order, so its geometry and G-code are made once and every job reuses them."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from catalog.models import PartFamily
    from catalog.parameters import defaults, parse_schema
    from microfactory.accounts.services import api_token_create
    from production.models import Machine

    call_command("seed_demo", "--no-order", verbosity=0)
    Machine.objects.update(queue_limit=1000)
    user = get_user_model().objects.get(username="requester")
    system.token = api_token_create(user=user, name="fault tests", expires_in=None)[1]
    revision = PartFamily.objects.get(slug="spacer").current_revision()
    parameters = defaults(parse_schema(revision.parameter_schema))
    line = {"part": "spacer", "parameters": parameters, "material": "pla", "quantity": 1}
    return {"lines": [line]}


def job_statuses(order_ids: Iterable[int]) -> dict[int, str]:
    from production.models import Job

    return dict(Job.objects.filter(line__order_id__in=list(order_ids)).values_list("pk", "status"))


def wait_settled(system: FaultSystem, order_ids: list[int], *, timeout: float) -> float:
    """Wait until every job of these orders has settled; the time.time() it was seen."""

    def settled() -> bool:
        statuses = job_statuses(order_ids)
        return len(statuses) >= len(order_ids) and set(statuses.values()) <= SETTLED

    try:
        wait_until(settled, timeout=timeout, what="every job to reach its machine")
    except AssertionError as error:
        raise AssertionError(
            f"{error}\n{Counter(job_statuses(order_ids).values())}\n{system.logs()}"
        ) from None
    return time.time()


def unfinished(order_ids: Iterable[int]) -> list[int]:
    return [pk for pk, status in job_statuses(order_ids).items() if status not in SETTLED]


def recovery_s(job_ids: Iterable[int], *, since: float) -> float:
    """How long after `since` (a worker available again) the last of these jobs was moving
    again: for each, the first step that finished after `since`, taken as moving from when it
    started (or from `since`, for a step a live worker was already running then)."""
    from production.models import JobEvent

    worst = 0.0
    for job_id in job_ids:
        event = (
            JobEvent.objects.filter(job_id=job_id, finished_at__gte=at(since))
            .exclude(step="order")
            .order_by("finished_at")
            .first()
        )
        assert event is not None, f"job {job_id} never moved after recovery"
        worst = max(worst, event.started_at.timestamp() - since)
    return worst


def check_outcome(system: FaultSystem, accepted: dict[str, int]) -> None:
    """Every order answered 201 reached its machine, with each step run to completion once,
    each artifact file written once, and no order half-written (every order has its lines,
    every line in production its job); the idempotency keys placed one order each."""
    from orders.models import Order, OrderLine
    from production.models import Artifact, Job, JobArtifact, JobEvent

    order_ids = sorted(set(accepted.values()))
    assert len(order_ids) == len(accepted), "one idempotency key, one order"
    jobs = list(Job.objects.filter(line__order_id__in=order_ids))
    assert len(jobs) == len(order_ids), (len(jobs), len(order_ids))
    reasons = {job.pk: (job.status, job.reason) for job in jobs if job.status != "dispatched"}
    assert not reasons, f"{reasons}\n{system.logs()}"
    # Travelers are rendered beside routing (#19): a job at its machine gets its own seconds on.
    deadline = time.monotonic() + RECOVERY_LIMIT_S
    while JobEvent.objects.filter(job__in=jobs, step="traveler").count() < len(jobs):
        assert time.monotonic() < deadline, f"travelers not rendered\n{system.logs()}"
        time.sleep(0.5)
    per_step = Counter(JobEvent.objects.filter(job__in=jobs).values_list("job_id", "step"))
    assert set(per_step.values()) == {1}, [k for k, n in per_step.items() if n > 1]
    assert len(per_step) == len(jobs) * (1 + len(PIPELINE_STEPS))
    links = Counter(JobArtifact.objects.filter(job__in=jobs).values_list("job_id", "kind"))
    assert set(links.values()) == {1} and len(links) == len(jobs) * 5
    # Each artifact's file is on disk once: a step run twice, or a store repeated after a
    # crash, would leave a second file (Django's storage renames rather than overwrites).
    stored = {artifact.file.name for artifact in Artifact.objects.all()}
    on_disk = {
        str(path.relative_to(system.media_root))
        for path in (system.media_root / "artifacts").rglob("*")
        if path.is_file()
    }
    assert on_disk == stored, sorted(on_disk ^ stored)
    # No half-written order anywhere in the database (not only those answered 201).
    assert not Order.objects.filter(lines__isnull=True).exists()
    in_production = OrderLine.objects.filter(order__status="in_production", jobs__isnull=True)
    assert not in_production.exists(), list(in_production.values_list("order_id", flat=True))
