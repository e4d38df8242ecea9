"""Running the geometry child isolated: bubblewrap when it works, resource limits always.

Part scripts are code. They run in a child process with a scrubbed environment, a fresh
working directory and rlimits (memory, CPU, file size, open files, no core dumps). When
bubblewrap works on this host the child also gets its own mount, PID, network, IPC and
user namespaces: it sees the interpreter, the system libraries, child.py's directory and
its working directory, nothing else of the host, and no network at all.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

CHILD_SCRIPT = Path(__file__).resolve().with_name("child.py")

# -I: no PYTHON* variables, user site or script directory on sys.path; -B: the sandbox is
# read-only, so don't try to write .pyc files.
_PYTHON_FLAGS = ["-I", "-B"]
_INNER_WORKDIR = "/build"  # where the working directory appears inside bubblewrap
_OPEN_FILES = 256
_LOG_TAIL_BYTES = 4000
_PROBE_TIMEOUT_S = 60  # the probe starts a bare interpreter; generous for a cold disk
_PR_SET_PDEATHSIG = 1

# Only what the dynamic loader and the C library read; the rest of /etc stays hidden.
_ETC_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"]
_ROOT_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
# Tried in order. Inside a user namespace the script runs as nobody; where the kernel or a
# container forbids user namespaces, bubblewrap still drops every capability.
_IDENTITIES = [["--unshare-user", "--uid", "65534", "--gid", "65534"], []]

_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the pre-exec hook must not load libraries
_warned_unsandboxed = False
_probe_failures: list[str] = []  # why each bubblewrap attempt failed, for the error message


class BuildFailed(Exception):
    """The build ran into a limit, crashed or could not be isolated: not the part's fault."""


@dataclass(frozen=True)
class BuildLimits:
    timeout_s: float = 120  # wall clock
    cpu_s: int = 120  # RLIMIT_CPU
    memory_mb: int = 4096  # RLIMIT_AS; importing CadQuery alone maps about 1 GB
    output_mb: int = 200  # all outputs together (RLIMIT_FSIZE per file, then a total check)
    require_bwrap: bool = True  # without a working bubblewrap: refuse, or warn and use rlimits
    stl_tolerance_mm: float = 0.05
    stl_angular_tolerance: float = 0.2
    max_triangles: int = 1_000_000  # an uploaded STL mesh with more is refused


@dataclass(frozen=True)
class ChildExit:
    returncode: int  # negative: killed by that signal, as subprocess reports it
    log_tail: str  # the end of the child's stdout and stderr
    sandbox: str  # "bwrap" or "rlimits"


def run_child(request: bytes, *, workdir: Path, limits: BuildLimits) -> ChildExit:
    """Run child.py with `request` on stdin in `workdir`; BuildFailed on timeout or no sandbox."""
    wrapper = bwrap_wrapper()
    python = [sys.executable, *_PYTHON_FLAGS]
    if wrapper is not None:
        command = [*wrapper, *_workdir_binds(workdir), *python, str(CHILD_SCRIPT)]
        env, sandbox = _child_env(home=_INNER_WORKDIR), "bwrap"
    elif limits.require_bwrap:
        raise BuildFailed(f"no working bubblewrap sandbox for part scripts: {_probe_failure()}")
    else:
        _warn_unsandboxed()
        command = [*python, str(CHILD_SCRIPT)]
        env, sandbox = _child_env(home=str(workdir)), "rlimits"

    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,  # a file, not a pipe: its size is bounded by RLIMIT_FSIZE
            cwd=workdir,
            env=env,
            close_fds=True,
            start_new_session=True,  # its own process group, killed as one on timeout
            preexec_fn=functools.partial(_limit_child, limits),
        )
        try:
            process.communicate(request, timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            raise BuildFailed(f"geometry build exceeded {limits.timeout_s:g} s") from None
        except BaseException:
            _kill(process)
            raise
        _kill(process)  # whatever the script started and left running
        returncode = process.returncode
        if sandbox == "bwrap" and returncode > 128:
            # bubblewrap exits with 128 + N when its child dies of signal N
            returncode = 128 - returncode
        return ChildExit(returncode=returncode, log_tail=_tail(log), sandbox=sandbox)


@functools.cache
def bwrap_wrapper() -> tuple[str, ...] | None:
    """The bubblewrap command line that works on this host, or None. Probed once per process.

    A bwrap binary is not enough: containers and hardened kernels often refuse the
    namespaces it needs, so the wrapper is tried on a bare interpreter start-up first.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        _probe_failures.append("bwrap is not installed (Debian package bubblewrap)")
        return None
    bare_python = [sys.executable, "-I", "-c", ""]
    for identity in _IDENTITIES:
        wrapper = (bwrap, *_bwrap_options(identity))
        with tempfile.TemporaryDirectory(prefix="microfactory-bwrap-probe-") as probe_dir:
            try:
                probe = subprocess.run(
                    [*wrapper, *_workdir_binds(Path(probe_dir)), *bare_python],
                    env=_child_env(home=_INNER_WORKDIR),
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired:
                _probe_failures.append("bwrap did not start python in time")
                continue
        if probe.returncode == 0:
            return wrapper
        message = probe.stderr.decode(errors="replace").strip().splitlines()
        _probe_failures.append(message[-1] if message else f"bwrap exited {probe.returncode}")
    logger.warning("bubblewrap does not work here: %s", _probe_failure())
    return None


def _probe_failure() -> str:
    return "; ".join(dict.fromkeys(_probe_failures)) or "unknown reason"


def _bwrap_options(identity: list[str]) -> list[str]:
    options = [
        "--unshare-all",  # mount, PID, network (loopback only), IPC, UTS, cgroup
        *identity,
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",  # no ioctl(TIOCSTI) into the worker's terminal
        # Fresh /proc, /dev and /tmp first: binds below stay visible even under /tmp.
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for path in _ROOT_DIRS:
        if os.path.islink(path):  # merged /usr: /lib -> usr/lib
            options += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            options += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        options += ["--ro-bind-try", path, path]
    for path in _python_dirs():
        options += ["--ro-bind", path, path]
    # Only the child's own directory of the project: .env files, the SQLite database and
    # media stay out of reach of part scripts.
    options += ["--ro-bind", str(CHILD_SCRIPT.parent), str(CHILD_SCRIPT.parent)]
    return options


def _python_dirs() -> list[str]:
    """The virtualenv and the interpreter it points at, as given and with symlinks resolved."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths.append(os.path.dirname(os.path.realpath(sys.executable)))
    dirs = {os.path.abspath(path) for path in paths} | {os.path.realpath(path) for path in paths}
    return sorted(path for path in dirs if not path.startswith("/usr/") and path != "/usr")


def _workdir_binds(workdir: Path) -> list[str]:
    return ["--bind", str(workdir), _INNER_WORKDIR, "--chdir", _INNER_WORKDIR, "--"]


def _child_env(*, home: str) -> dict[str, str]:
    """A fresh environment: nothing of the worker's (settings, secrets, URLs) gets through."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,  # temporary files land in the working directory and go with it
        "LANG": "C.UTF-8",
        # glibc reserves 64 MB of address space per thread arena; OpenCascade's parallel
        # mesher would otherwise spend the RLIMIT_AS budget on reservations it never uses.
        "MALLOC_ARENA_MAX": "2",
    }


def _limit_child(limits: BuildLimits) -> None:
    """Runs in the forked child before exec: only async-signal-safe-ish calls here."""
    memory = limits.memory_mb * 1024 * 1024
    output = limits.output_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the soft limit, SIGKILL a second later if the child ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    resource.setrlimit(resource.RLIMIT_NOFILE, (_OPEN_FILES, _OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Without bubblewrap's --die-with-parent: a worker that dies takes its child along.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole process group. Safe after the child has exited: Linux does
    not hand out a process group's id again while any member of the group lives."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _tail(log: IO[bytes]) -> str:
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
    return log.read().decode(errors="replace")


def _warn_unsandboxed() -> None:
    global _warned_unsandboxed
    if not _warned_unsandboxed:
        _warned_unsandboxed = True
        logger.warning(
            "building part geometry WITHOUT bubblewrap (%s): scripts run with rlimits and a "
            "scrubbed environment only, and can read what this user can read",
            _probe_failure(),
        )
