"""Warm geometry children: CadQuery imported once per sandbox, not once per build.

A cold build (catalog.geometry.sandbox.run_child) starts bubblewrap, a Python interpreter and
CadQuery for every build: about 2 s of imports for 0.1-0.5 s of geometry. A warm child is
the same bubblewrap sandbox with the same limits (address space, file size, open files, no
core dumps, no network, a read-only view of the interpreter and child.py's directory),
started once, running child.py as a zygote: it imports CadQuery and OpenCascade, then forks
one build process per request. Each build starts from the zygote's untouched state, takes
its CPU and process limits itself, runs as its own uid as root (as a cold child does), and
everything it started is killed and the sandbox's scratch directories emptied before the
zygote answers, so nothing of one build is left for the next.

The worker keeps a pool of them per process (warm_pool_configure: MF_GEOMETRY_WARM_POOL
children, each replaced after MF_GEOMETRY_WARM_BUILDS builds). A child is replaced at once,
its successor importing while the worker does other work, after any crash, timeout or
limit hit (the build fails with the same reason as a cold one), or when a build left a
process it could not kill. Without a pool, without a working bubblewrap, or when every
warm child of the process is busy, a build runs in a cold child as before.

The build's working directory, made by the caller, is moved under the warm child's own
directory (bound at /build in its sandbox) for the build and moved back after, so callers
read its outputs where they put its inputs, warm or cold.
"""

from __future__ import annotations

import atexit
import errno
import functools
import json
import logging
import os
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sandbox
from .child import RESULT_FILE
from .sandbox import BuildFailed, BuildLimits, ChildExit

logger = logging.getLogger(__name__)

_FRAME = struct.Struct(">I")
_INNER_ROOT = "/build"  # the warm child's own directory inside bubblewrap
_BUILD_DIR = "build"  # a build's working directory, under the warm child's own directory
_START_TIMEOUT_S = 60  # importing CadQuery on a loaded machine; not counted to the build
_POLL_S = 0.2  # how often a running build's output size is checked (as sandbox._watch)
_CLEAN_OUTCOMES = ("built", "measured", "rejected")  # a verdict that hit no limit


@dataclass(frozen=True)
class PoolSettings:
    size: int  # warm children per process; 0: every build in a cold child
    builds_per_child: int  # builds before a warm child is replaced by a fresh one


class _Gone(Exception):
    """The warm child exited (or stopped answering on start-up)."""


class _Timeout(Exception):
    """No answer before the deadline."""


_lock = threading.Lock()
_settings: PoolSettings | None = None
_pools: dict[tuple[int, int], _Pool] = {}
_owner = os.getpid()  # a forked process (Celery's prefork) has no pool of its parent's
_atexit_registered = False


def warm_pool_configure(*, size: int, builds_per_child: int) -> None:
    """Run this process's builds in warm children from now on, `size` of them for each
    set of limits (0: cold children, as without a pool). Children start at the first build,
    or at warm_pool_prestart."""
    global _settings, _atexit_registered
    if size < 0 or builds_per_child < 1:
        raise ValueError("a warm pool needs size >= 0 and builds_per_child >= 1")
    warm_pool_close()
    with _lock:
        _settings = PoolSettings(size=size, builds_per_child=builds_per_child) if size else None
        if not _atexit_registered:
            atexit.register(warm_pool_close)
            _atexit_registered = True


def warm_pool_prestart(limits: BuildLimits) -> int:
    """Start the warm children for these limits now (they import while the process does other
    things), so the first build is warm too. How many were started."""
    pool = _pool_for(limits)
    return 0 if pool is None else pool.fill()


def warm_pool_close() -> None:
    """Stop every warm child of this process (a worker process shutting down)."""
    global _pools
    with _lock:
        pools, _pools = (list(_pools.values()) if os.getpid() == _owner else []), {}
    for pool in pools:
        pool.close()


def warm_pool_stats() -> dict[str, int]:
    """Counters of this process's pools, for tests and benchmarks."""
    with _lock:
        pools = list(_pools.values())
    totals = {"children": 0, "started": 0, "builds": 0, "recycled": 0, "cold": 0}
    for pool in pools:
        for name in totals:
            totals[name] += pool.stats[name]
    return totals


def run_child(request: bytes, *, workdir: Path, limits: BuildLimits) -> ChildExit:
    """sandbox.run_child's contract, in a warm child when this process has a pool."""
    pool = _pool_for(limits)
    if pool is not None:
        child = pool.run(request, workdir=workdir, limits=limits)
        if child is not None:
            return child
    return sandbox.run_child(request, workdir=workdir, limits=limits)


def _pool_for(limits: BuildLimits) -> _Pool | None:
    """The pool for these limits: the zygote's own rlimits (address space, file size) are
    fixed when it starts, so each pair has its own children."""
    global _owner, _pools
    with _lock:
        if os.getpid() != _owner:
            _owner, _pools = os.getpid(), {}  # the parent's children are not ours to use
        if _settings is None:
            return None
        wrapper = sandbox.bwrap_wrapper()
        if wrapper is None:
            return None  # the cold path refuses or falls back to rlimits, as it always has
        key = (limits.memory_mb, limits.output_mb)
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = _Pool(_settings, limits, wrapper)
        return pool


class _Pool:
    def __init__(
        self, settings: PoolSettings, limits: BuildLimits, wrapper: tuple[str, ...]
    ) -> None:
        self.settings = settings
        self.limits = limits  # the zygote's rlimits come from these
        self.wrapper = wrapper
        self.idle: list[_Member] = []
        self.alive = 0  # idle or building
        self.closed = False
        self.lock = threading.Lock()
        self.stats = {"children": 0, "started": 0, "builds": 0, "recycled": 0, "cold": 0}

    def fill(self) -> int:
        started = 0
        with self.lock:
            while not self.closed and self.alive < self.settings.size:
                self.idle.append(self._start())
                started += 1
        return started

    def _start(self) -> _Member:
        """A new warm child (caller holds the lock). Returns at once: it imports meanwhile."""
        self.alive += 1
        self.stats["started"] += 1
        self.stats["children"] = self.alive
        return _Member(self.limits, self.wrapper)

    def _acquire(self) -> _Member | None:
        with self.lock:
            if self.closed:
                return None
            if self.idle:
                return self.idle.pop(0)
            if self.alive < self.settings.size:
                return self._start()
            return None  # all busy: this build runs cold

    def _release(self, member: _Member, *, recycle: bool) -> None:
        with self.lock:
            if recycle or self.closed:
                self.alive -= 1
                self.stats["recycled"] += int(recycle)
                member.close()
                if not self.closed and self.alive < self.settings.size:
                    self.idle.append(self._start())  # warms up before the next build
            else:
                self.idle.append(member)
            self.stats["children"] = self.alive

    def run(self, request: bytes, *, workdir: Path, limits: BuildLimits) -> ChildExit | None:
        """The build in a warm child, or None when none can take it (run it cold)."""
        member = self._acquire()
        if member is None:
            self.stats["cold"] += 1
            return None
        try:
            member.wait_ready()
        except (_Gone, _Timeout, OSError) as failure:
            logger.warning("a warm geometry child did not start (%s): building cold", failure)
            self._release(member, recycle=True)
            self.stats["cold"] += 1
            return None
        try:
            child = member.build(request, workdir=workdir, limits=limits, wrapper=self.wrapper)
        except _CrossDevice:
            self._release(member, recycle=False)
            self.stats["cold"] += 1
            return None
        except _Gone as failure:  # it died before it took the request: nothing ran
            logger.warning("a warm geometry child was gone (%s): building cold", failure)
            self._release(member, recycle=True)
            self.stats["cold"] += 1
            return None
        except BaseException:
            self.stats["builds"] += 1
            self._release(member, recycle=True)  # killed already: a limit, a timeout, a crash
            raise
        self.stats["builds"] += 1
        member.builds += 1
        recycle = (
            child.returncode != 0
            or not member.clean
            or _outcome(workdir) not in _CLEAN_OUTCOMES
            or member.builds >= self.settings.builds_per_child
        )
        self._release(member, recycle=recycle)
        return child

    def close(self) -> None:
        with self.lock:
            self.closed = True
            idle, self.idle = self.idle, []
            self.alive -= len(idle)
        for member in idle:
            member.close()


class _CrossDevice(Exception):
    """The build's directory cannot be moved under the warm child's (another file system)."""


class _Member:
    """One warm child: bubblewrap running child.py --warm, its directory and its log."""

    def __init__(self, limits: BuildLimits, wrapper: tuple[str, ...]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="microfactory-warm-"))
        os.chmod(self.root, 0o711)  # a build's uid passes through to its directory only
        self.log = tempfile.TemporaryFile()
        self.builds = 0
        self.clean = True
        self.ready = False
        self._buffer = b""
        python = [sys.executable, *sandbox._PYTHON_FLAGS, str(sandbox.CHILD_SCRIPT), "--warm"]
        # One BLAS thread: a zygote that forks must not hold threads (OpenBLAS starts some
        # at import), and builds never multiply large matrices.
        env = {**sandbox._child_env(home=_INNER_ROOT), "OPENBLAS_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [*wrapper, *sandbox._workdir_binds(self.root), *python],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=self.root,
            env=env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=functools.partial(sandbox._limit_child, limits, workdir=None, cpu=False),
        )

    def wait_ready(self) -> None:
        if not self.ready:
            answer = self._answer(time.monotonic() + _START_TIMEOUT_S, watch=None)
            if answer.get("ready") is not True:
                raise _Gone(f"unexpected first answer {answer!r}")
            self.ready = True

    def build(
        self, request: bytes, *, workdir: Path, limits: BuildLimits, wrapper: tuple[str, ...]
    ) -> ChildExit:
        inner = self.root / _BUILD_DIR
        try:
            os.rename(workdir, inner)
        except OSError as error:
            if error.errno == errno.EXDEV:
                raise _CrossDevice from None
            raise
        moved = os.lstat(inner)
        settings = sandbox._sandbox_settings(self.process.pid, limits, wrapper)
        try:
            if "uid" in settings:  # as root: the build's uid owns its directory, as cold
                os.chown(inner, settings["uid"], settings["uid"])
            os.chmod(inner, 0o711)
            self.log.seek(0)
            self.log.truncate()
            header = {"dir": _BUILD_DIR, "cpu_s": limits.cpu_s, "settings": settings}
            self._send(json.dumps(header).encode(), request)
            budget = limits.output_mb * 1024 * 1024
            deadline = time.monotonic() + limits.timeout_s

            def watch() -> None:
                if sandbox._disk_usage(inner) + sandbox._file_size(self.log) > budget:
                    raise BuildFailed(sandbox._output_message(limits))

            try:
                answer = self._answer(deadline, watch=watch)
            except _Timeout:
                raise BuildFailed(f"geometry build exceeded {limits.timeout_s:g} s") from None
            except _Gone:
                self.kill()
                answer = {"returncode": _bwrap_returncode(self.process.returncode)}
        except BaseException:
            self.kill()  # before its directory moves back: nothing may write there any more
            self._restore(inner, moved, workdir)
            raise
        self.clean = bool(answer.get("clean", False))
        self._restore(inner, moved, workdir)
        if sandbox._disk_usage(workdir) + sandbox._file_size(self.log) > budget:
            self.clean = False
            raise BuildFailed(sandbox._output_message(limits))
        return ChildExit(
            returncode=int(answer["returncode"]),
            log_tail=sandbox._tail(self.log),
            sandbox="bwrap",
            process_limit="max_processes" in settings,
        )

    def _restore(self, inner: Path, moved: os.stat_result, workdir: Path) -> None:
        """Move the build's directory back to the caller, if it is still the one moved in
        (without a user namespace a build could put a symlink in its place)."""
        try:
            now = os.lstat(inner)
        except FileNotFoundError:
            now = None
        if (
            now is None
            or not stat.S_ISDIR(now.st_mode)
            or (now.st_dev, now.st_ino) != (moved.st_dev, moved.st_ino)
        ):
            self.clean = False
            self.kill()
            workdir.mkdir(exist_ok=True)  # the caller's cleanup expects it
            raise BuildFailed("geometry build replaced its working directory")
        os.rename(inner, workdir)
        for entry in os.listdir(self.root):  # whatever else a build left beside it
            path = self.root / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _send(self, *frames: bytes) -> None:
        assert self.process.stdin is not None
        try:
            for frame in frames:
                self.process.stdin.write(_FRAME.pack(len(frame)) + frame)
            self.process.stdin.flush()
        except BrokenPipeError:
            raise _Gone("the warm child closed its input") from None

    def _answer(self, deadline: float, *, watch: Any) -> dict[str, Any]:
        """The next frame from the child, watching the build every _POLL_S meanwhile."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while True:
            if len(self._buffer) >= _FRAME.size:
                (length,) = _FRAME.unpack(self._buffer[: _FRAME.size])
                end = _FRAME.size + length
                if len(self._buffer) >= end:
                    frame, self._buffer = self._buffer[_FRAME.size : end], self._buffer[end:]
                    answer: dict[str, Any] = json.loads(frame)
                    return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            readable, _, _ = select.select([fd], [], [], min(_POLL_S, remaining))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _Gone(f"exited: {sandbox._tail(self.log).strip()[-300:] or 'no output'}")
                self._buffer += chunk
            if watch is not None:
                watch()

    def kill(self) -> None:
        """Kill the sandbox: bubblewrap's group, and with its PID namespace all inside."""
        sandbox._kill(self.process)

    def close(self) -> None:
        self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _bwrap_returncode(returncode: int | None) -> int:
    """bubblewrap exits with 128 + N when its child dies of signal N (as sandbox.run_child)."""
    if returncode is None:
        return -9
    return 128 - returncode if returncode > 128 else returncode


def _outcome(workdir: Path) -> str | None:
    """The verdict the build wrote (read as build.py reads it: no symlinks followed)."""
    try:
        fd = os.open(workdir / RESULT_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as result:
            if not stat.S_ISREG(os.fstat(result.fileno()).st_mode):
                return None
            outcome = json.loads(result.read(64 * 1024)).get("outcome")
    except (OSError, ValueError, AttributeError):
        return None
    return outcome if isinstance(outcome, str) else None
