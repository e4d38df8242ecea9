"""`make run` (scripts/run.py) and `make worker` (scripts/worker.py), as real processes.

One `make run` (web and worker of the real Procfile, embedded Redis, SQLite in a temporary
var/) serves the first three tests in order: a worker killed under it is started again while
the web keeps answering; `make worker` joins its Redis; SIGTERM stops everything. A second run
with a small Procfile shows a crash loop given up on. The rest is `make worker`'s Redis lookup
when there is nothing to join.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import run  # noqa: E402  (scripts/run.py: its /proc helpers)

pytestmark = [
    pytest.mark.integration,
    # The runs use SQLite databases of their own, whatever the suite's database: once is enough.
    pytest.mark.db_independent,
    pytest.mark.xdist_group("make_run"),  # the tests of the shared run, in order, in one process
    pytest.mark.timeout(240),
]


def clean_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without what points at the test suite's own Redis, database and files."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "PORT", "DEBUG", "SECRET_KEY"}
        and not name.startswith(("MF_", "PYTEST_", "DJANGO_"))
    }
    return {**env, "MF_VAR_DIR": str(var_dir), **extra}


class MakeRun:
    """scripts/run.py in a session of its own, its output in a file."""

    def __init__(self, var_dir: Path, *args: str, **env: str) -> None:
        self.var_dir = var_dir
        self.port = free_port()
        self.log = var_dir / "make-run.log"
        var_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "run.py"), *args],
            cwd=ROOT,
            env=clean_env(var_dir, PORT=str(self.port), **env),
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, *, timeout: float = 90, after: int = 0) -> re.Match[str]:
        """The first match of `pattern` in the output from offset `after` on."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern, re.MULTILINE).search(self.output(), after)
            if found:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the output:\n{self.output()[-6000:]}")
            time.sleep(0.2)

    def web_status(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.port}/api/v1/", timeout=5).status_code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    started = time.monotonic()
    running = MakeRun(tmp_path_factory.mktemp("make-run") / "var", "web", "worker")
    try:
        running.wait_for(r"Microfactory is running at", timeout=180)
        running.wait_for(r"worker\.1 .*ready\.", timeout=120)
        print(f"\nmake run: web and worker up in {time.monotonic() - started:.1f} s")
        yield running
    finally:
        running.stop()


def test_a_worker_killed_under_make_run_is_started_again_while_the_web_keeps_answering(
    make_run: MakeRun,
) -> None:
    shell = int(make_run.wait_for(r"worker\.1 started \(pid=(\d+)\)").group(1))
    worker = next(pid for pid, _state in run.proc_children(shell))  # celery, under the shell
    answers: list[int | str] = []
    done = threading.Event()

    def keep_asking() -> None:
        while not done.is_set():
            try:
                answers.append(make_run.web_status())
            except httpx.HTTPError as failure:
                answers.append(repr(failure))
            time.sleep(0.2)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    mark = len(make_run.output())
    killed_at = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    try:
        make_run.wait_for(
            r"worker\.1 was killed by SIGKILL; starting it again in 1 s \(restart 1 of at most 5"
            r" a minute\); the other processes keep running",
            after=mark,
            timeout=30,
        )
        new_shell = int(make_run.wait_for(r"worker\.1 started \(pid=(\d+)\)", after=mark)[1])
        make_run.wait_for(r"worker\.1 .*ready\.", after=mark, timeout=60)
        back_in = time.monotonic() - killed_at
    finally:
        done.set()
        asker.join()
    assert new_shell != shell and not run.alive(worker)
    assert answers and set(answers) == {200}, answers  # the web never stopped answering
    assert make_run.process.poll() is None
    print(f"\nworker killed, restarted and ready in {back_in:.1f} s; web: {len(answers)} × 200")


def environ_of(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


def test_make_run_links_to_its_own_port_and_shows_where_sent_mail_is_read(
    make_run: MakeRun,
) -> None:
    """The worker prints travelers and sends e-mails without a request: its links use
    MF_SITE_URL, which must name the port the web runs on (not 8000 whatever PORT is)."""
    site = f"http://127.0.0.1:{make_run.port}"
    shells = re.findall(r"worker\.1 started \(pid=(\d+)\)", make_run.output())
    celery = next(pid for pid, _state in run.proc_children(int(shells[-1])))
    assert environ_of(celery)["MF_SITE_URL"] == site
    assert f"sent mail    {site}/dev/mail/" in make_run.output()


def test_make_worker_joins_the_redis_of_make_run(make_run: MakeRun, tmp_path: Path) -> None:
    redis_url = json.loads((make_run.var_dir / "run.json").read_text())["redis_url"]
    assert redis_url in make_run.output()  # the one its processes use (the banner says it)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "worker.py"),
            *("-Q", "routing", "--concurrency", "1", "-n", "extra@%h", "-l", "info"),
        ],
        cwd=ROOT,
        env=clean_env(make_run.var_dir),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "extra@" not in log.read_text() or " ready." not in log.read_text():
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # Its links point at the web of the run it joined.
        assert environ_of(worker.pid)["MF_SITE_URL"] == f"http://127.0.0.1:{make_run.port}"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    output = log.read_text()
    assert f"worker: joining the Redis of `make run`: {redis_url}" in output
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    assert re.search(rf"Connected to redis://[^ ]*127\.0\.0\.1:{port}/0", output), output


def test_sigterm_stops_every_process_of_make_run_and_removes_its_run_file(
    make_run: MakeRun,
) -> None:
    processes = run.descendants(make_run.process.pid)
    assert len(processes) >= 4  # supervisor, Redis, web (and its child), worker (and its pool)
    make_run.process.send_signal(signal.SIGTERM)
    assert make_run.process.wait(60) == 0
    output = make_run.output()
    assert "run: all processes stopped" in output
    assert "did not stop within" not in output  # each stopped by itself, worker warm shutdown
    assert [pid for pid in processes if run.alive(pid)] == []
    assert not (make_run.var_dir / "run.json").exists()


def test_a_process_that_keeps_dying_is_given_up_and_the_run_stops(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "web: exec python -m http.server $PORT --bind 127.0.0.1\ncrash: echo crashing now; exit 3\n"
    )
    started = time.monotonic()
    making = MakeRun(tmp_path / "var", "--procfile", str(procfile), MF_RUN_RESTARTS_PER_MIN="2")
    try:
        assert making.process.wait(120) == 1
    finally:
        making.stop()
    output = making.output()
    assert (
        "crash.1 exited with status 3; starting it again in 1 s (restart 1 of at most 2" in output
    )
    assert (
        "crash.1 exited with status 3; starting it again in 2 s (restart 2 of at most 2" in output
    )
    assert (
        "crash.1 exited with status 3: 3 deaths within 60 s, more than MF_RUN_RESTARTS_PER_MIN=2;"
        " giving up: stopping everything" in output
    )
    assert output.count("web.1 started") == 1  # the others were not restarted
    assert "run: all processes stopped" in output
    print(f"\ncrash loop given up after {time.monotonic() - started:.1f} s (setup included)")


# --- make worker with nothing to join ---------------------------------------------------------


def make_worker(var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "worker.py"), *args],
        cwd=ROOT,
        env=clean_env(var_dir, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


HOW = "start `make run` in another terminal first, or name a Redis"


def test_make_worker_without_redis_url_or_make_run_says_so(tmp_path: Path) -> None:
    done = make_worker(tmp_path, "-Q", "routing")
    assert done.returncode == 2
    assert "REDIS_URL is not set and no `make run` is running in this checkout" in done.stderr
    assert HOW in done.stderr


def test_make_worker_does_not_join_a_make_run_that_has_ended(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "run.json").write_text(
        json.dumps({"pid": gone.pid, "redis_url": "redis://127.0.0.1:6379/0"})
    )
    done = make_worker(tmp_path)
    assert done.returncode == 2
    assert f"the `make run` that wrote {tmp_path / 'run.json'} (pid {gone.pid}) is no longer" in (
        done.stderr
    )


def test_make_worker_does_not_join_a_redis_that_does_not_answer(tmp_path: Path) -> None:
    stand_in = tmp_path / "run.py"  # a live process that looks like `make run`
    stand_in.write_text("import time\ntime.sleep(60)\n")
    alive = subprocess.Popen([sys.executable, str(stand_in)])
    try:
        url = f"redis://127.0.0.1:{free_port()}/0"
        (tmp_path / "run.json").write_text(json.dumps({"pid": alive.pid, "redis_url": url}))
        done = make_worker(tmp_path)
    finally:
        alive.kill()
        alive.wait()
    assert done.returncode == 2
    assert f"the Redis of `make run` (pid {alive.pid}) at {url} does not answer" in done.stderr


def test_make_worker_uses_redis_url_when_it_is_set(tmp_path: Path) -> None:
    done = make_worker(tmp_path, "--help", REDIS_URL="redis://127.0.0.1:1/0")
    assert done.returncode == 0, done.stderr
    assert "worker: Redis from REDIS_URL: redis://127.0.0.1:1/0" in done.stdout
    assert "celery worker" in done.stdout.lower() or "--concurrency" in done.stdout
