"""Running the geometry child isolated: bubblewrap when it works, resource limits always.

Part scripts are code. They run in a child process with a scrubbed environment, a fresh
working directory and rlimits (memory, CPU, file size, open files, no core dumps), and
everything it writes together is held to the output limit. When bubblewrap works on this
host the child also gets its own mount, PID, network, IPC and UTS namespaces, runs
unprivileged (as a uid of its own when the worker is root, else as nobody in a user
namespace) and so under a process and thread limit: it sees the interpreter, the system
libraries, child.py's directory and its working directory, nothing else of the host, and
no network at all.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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
# Tried in order. As root: no user namespace, since root mapped into one is still root to
# the kernel and RLIMIT_NPROC never binds root; the child keeps only CAP_SETUID/CAP_SETGID
# and child.py drops to a build uid of its own before the script runs. Not as root: a user
# namespace (the script runs as nobody in it, and RLIMIT_NPROC counts per namespace), or,
# where the kernel or a container forbids those, no namespace and every capability dropped.
_USERNS = ["--unshare-user", "--uid", "65534", "--gid", "65534"]
_SETUID_CAPS = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
# Build uids: this base plus the pid of the process that runs the build (bubblewrap), which
# no other living process has, so no two builds (nor any account) share the uid whose
# processes RLIMIT_NPROC counts.
BUILD_UID_BASE = 1_000_000_000
_WATCH_INTERVAL_S = 0.2  # how often the working directory's total size is checked

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
    output_mb: int = 200  # all files the build writes together (and RLIMIT_FSIZE per file)
    max_processes: int = 64  # processes and threads of one build (RLIMIT_NPROC, as its own uid)
    require_bwrap: bool = True  # without a working bubblewrap: refuse, or warn and use rlimits
    stl_tolerance_mm: float = 0.05
    stl_angular_tolerance: float = 0.2
    max_triangles: int = 1_000_000  # an uploaded STL mesh with more is refused


@dataclass(frozen=True)
class ChildExit:
    returncode: int  # negative: killed by that signal, as subprocess reports it
    log_tail: str  # the end of the child's stdout and stderr
    sandbox: str  # "bwrap" or "rlimits"
    process_limit: bool = False  # whether max_processes held (it needs bubblewrap)


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

    deadline = time.monotonic() + limits.timeout_s
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
            preexec_fn=functools.partial(
                _limit_child, limits, workdir=workdir if _drops_to_build_uid(wrapper) else None
            ),
        )
        try:
            settings = _sandbox_settings(process.pid, limits, wrapper)
            _send(process, json.dumps(settings).encode() + b"\n" + request)
            _watch(process, workdir=workdir, log=log, limits=limits, deadline=deadline)
        except BaseException:
            _kill(process)
            raise
        _kill(process)  # whatever the script started and left running
        if _disk_usage(workdir) + _file_size(log) > limits.output_mb * 1024 * 1024:
            raise BuildFailed(_output_message(limits))
        returncode = process.returncode
        if sandbox == "bwrap" and returncode > 128:
            # bubblewrap exits with 128 + N when its child dies of signal N
            returncode = 128 - returncode
        return ChildExit(
            returncode=returncode,
            log_tail=_tail(log),
            sandbox=sandbox,
            process_limit="max_processes" in settings,
        )


def _sandbox_settings(
    pid: int, limits: BuildLimits, wrapper: tuple[str, ...] | None
) -> dict[str, int]:
    """What child.py does before it runs anything of the script: the first line on its stdin.

    RLIMIT_NPROC counts the tasks of a uid, and never binds root: as root, the child moves
    to a uid of its own (bubblewrap runs it without a user namespace, where root is root);
    in a user namespace the count is per namespace. Without bubblewrap the child would have
    to count against the worker's own uid (or not at all, as root): no process limit there.
    """
    settings: dict[str, int] = {}
    if wrapper is not None:
        settings["max_processes"] = limits.max_processes
        if _drops_to_build_uid(wrapper):
            settings["uid"] = BUILD_UID_BASE + pid  # owns the working directory (_limit_child)
        elif os.geteuid() == 0:
            _warn_once(
                "bubblewrap works here only in a user namespace, where root is root "
                "to the kernel: builds run WITHOUT a process limit"
            )
    return settings


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _drops_to_build_uid(wrapper: tuple[str, ...] | None) -> bool:
    return (
        wrapper is not None
        and os.geteuid() == 0
        and not any(option.startswith("--unshare-user") for option in wrapper)
    )


def _send(process: subprocess.Popen[bytes], data: bytes) -> None:
    """The request on stdin; the child reads all of it before it runs anything."""
    assert process.stdin is not None
    try:
        process.stdin.write(data)
        process.stdin.close()
    except BrokenPipeError:
        pass  # the child died at start-up; its exit status tells why


def _watch(
    process: subprocess.Popen[bytes],
    *,
    workdir: Path,
    log: IO[bytes],
    limits: BuildLimits,
    deadline: float,
) -> None:
    """Wait for the child, killing it at the wall clock or when everything it wrote together
    (RLIMIT_FSIZE only bounds each file) passes the output limit."""
    budget = limits.output_mb * 1024 * 1024
    while True:
        try:
            process.wait(timeout=max(0.0, min(_WATCH_INTERVAL_S, deadline - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            pass
        if _disk_usage(workdir) + _file_size(log) > budget:
            _kill(process)
            raise BuildFailed(_output_message(limits))
        if time.monotonic() >= deadline:
            _kill(process)
            raise BuildFailed(f"geometry build exceeded {limits.timeout_s:g} s")


def _output_message(limits: BuildLimits) -> str:
    return f"geometry build wrote more than {limits.output_mb} MB (all files together)"


def _disk_usage(directory: Path) -> int:
    """Bytes the files under `directory` occupy (sparse files count what they really use)."""
    total = 0
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass  # removed meanwhile
    return total


def _file_size(file: IO[bytes]) -> int:
    return os.fstat(file.fileno()).st_blocks * 512


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
    identities = [[], _USERNS] if os.geteuid() == 0 else [_USERNS, ["--unshare-user-try"]]
    for identity in identities:
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
        # Mount, PID, network (loopback only), IPC, UTS, cgroup; the user namespace comes with
        # the identity (--unshare-all would always try one).
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        *identity,
        "--cap-drop", "ALL",
        *(_SETUID_CAPS if os.geteuid() == 0 and not identity else []),
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
    # Only the child's own directory of the project: .env files, the SQLite database and
    # media stay out of reach of part scripts.
    binds = [*_python_dirs(), str(CHILD_SCRIPT.parent)]
    # bubblewrap makes the directories on the way 0700 when it runs as root, which the build
    # uid could not pass: made 0755 here first.
    parents = {str(parent) for bind in binds for parent in Path(bind).parents[:-1]}
    for path in sorted(path for path in parents if not path.startswith("/usr")):
        options += ["--perms", "0755", "--dir", path]
    for path in binds:
        options += ["--ro-bind", path, path]
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


def _limit_child(limits: BuildLimits, *, workdir: Path | None, cpu: bool = True) -> None:
    """Runs in the forked child before exec: only async-signal-safe-ish calls here.

    cpu=False for a warm zygote (catalog.geometry.warm): each build it forks takes the CPU
    limit itself, counted from its fork, and the zygote runs none of a script's code."""
    if workdir is not None:
        # The build's only writable place, owned by the uid child.py drops to; bubblewrap,
        # root without capabilities by then, only needs to enter it.
        uid = BUILD_UID_BASE + os.getpid()
        os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o711)
    memory = limits.memory_mb * 1024 * 1024
    output = limits.output_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the soft limit, SIGKILL a second later if the child ignores it.
    if cpu:
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
            "building part geometry WITHOUT bubblewrap (%s): scripts run with rlimits (no process "
            "limit) and a scrubbed environment only, and can read what this user can read",
            _probe_failure(),
        )
