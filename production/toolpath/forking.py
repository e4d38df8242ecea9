"""Forked helper processes for the slicer: the primitives, and a map over two processes.

A plain os.fork with a pipe, not multiprocessing: the Celery worker's prefork children are
daemonic, and multiprocessing refuses to start children from those. A child only computes
and writes to its pipe (no database, no files), dies with its parent (PR_SET_PDEATHSIG) and
leaves with os._exit, so none of the parent's handlers, sockets or atexit hooks run in it.
Whatever a child fails to deliver is computed in the parent instead: slower, never
different. MF_TOOLPATH_PROCESSES=1 in the environment turns every fork off.
"""

import ctypes
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1


def allowed() -> bool:
    return hasattr(os, "fork") and os.environ.get("MF_TOOLPATH_PROCESSES", "2") != "1"


def fork(work: Callable[[IO[bytes]], None]) -> tuple[int, IO[bytes]]:
    """Start a child that runs `work` with the write end of a pipe, then leaves; return its
    pid and the read end."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        status = 1
        try:
            # The worker's signal handlers are the parent's business; this child just dies.
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            _die_with_parent()
            with os.fdopen(write_fd, "wb") as stream:
                work(stream)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, os.fdopen(read_fd, "rb")


def receive(stream: IO[bytes]) -> Any:
    """The next object the child sent; EOFError when it sent no more (or died)."""
    try:
        return pickle.load(stream)
    except (pickle.UnpicklingError, OSError, ValueError) as error:
        raise EOFError(str(error)) from error


def send(stream: IO[bytes], value: object) -> None:
    pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def reap(pid: int, *, finished: bool) -> None:
    """Wait for the child: it leaves once it has sent everything (or its pipe broke); if the
    parent stops reading early (an error, a time limit), kill it first."""
    try:
        if not finished:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass  # already reaped


def map_halves(function: Callable[[T], R], items: Sequence[T], *, least: int = 8) -> list[R]:
    """[function(item) for item in items], every other item computed in a forked child (which
    inherits the items, and sends back only the results). Fewer than `least` items, or forks
    not allowed: all here."""
    if len(items) < least or not allowed():
        return [function(item) for item in items]
    theirs = range(1, len(items), 2)

    def work(stream: IO[bytes]) -> None:
        # All at the end, in one message: sent one by one they would fill the pipe and stop
        # the child until the parent, busy with its own half, reads them.
        send(stream, [function(items[index]) for index in theirs])

    pid, stream = fork(work)
    results: list[R | None] = [None] * len(items)
    done: set[int] = set()
    finished = False
    try:
        for index in range(0, len(items), 2):
            results[index] = function(items[index])
            done.add(index)
        with stream:
            try:
                sent = receive(stream)
            except EOFError:
                sent = []  # the child died: its half is computed below
        for index, result in zip(theirs, sent, strict=False):
            results[index] = result
            done.add(index)
        finished = True
    finally:
        stream.close()
        reap(pid, finished=finished)
    for index in range(len(items)):
        if index not in done:  # the child died before sending it
            results[index] = function(items[index])
    return results  # type: ignore[return-value]  # every slot filled above


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe's end stops it anyway
        pass
