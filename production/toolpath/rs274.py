"""Run a program through LinuxCNC's own G-code interpreter, as a second opinion on our syntax.

`rs274` (Debian package linuxcnc-uspace) is LinuxCNC's standalone interpreter: it reads a
program as the machine would and prints the canonical machining calls it makes, stopping at
the first error. It runs here in a temporary directory of its own, which is also its HOME:
it may read or write a parameter file in its working directory, and it maps its tool table
into `$HOME/.tool.mmap`. With one HOME for all, runs at the same time read each other's tool
tables (a verdict about another program's tools) and one run truncating the file another
has mapped kills that one with SIGBUS (seen in CI). It gets a tool table written from the
program's tools (an unknown T number is an error to it), no terminal (`-g`: no interactive
menu) and a time limit. An interpreter killed by a signal says nothing about the program: it
is run again, up to `ATTEMPTS` times, then `Rs274Crashed` (a transient error: the step is
retried later) is raised rather than a rejection.

    rs274_errors(gcode, tools=program.tools)  # () when the interpreter accepts the program
"""

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from microfactory.errors import TransientError
from production.toolpath.program import ToolUse

BINARY = "rs274"  # MF_RS274_BINARY
TIMEOUT_S = 30.0  # MF_RS274_TIMEOUT_S
ATTEMPTS = 3
_T_WORD = re.compile(r"T\s*(\d+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^)]*\)|;.*$", re.MULTILINE)


class Rs274Unavailable(RuntimeError):
    """The interpreter is not installed: a set-up problem, not a fault of the program."""


class Rs274Crashed(TransientError):
    """The interpreter was killed by a signal on every attempt: no verdict on the program."""


def rs274_errors(
    gcode: bytes,
    *,
    tools: Sequence[ToolUse] | None = None,
    binary: str = BINARY,
    timeout_s: float = TIMEOUT_S,
) -> tuple[str, ...]:
    """The errors LinuxCNC's interpreter reports on the program; () when it accepts it.

    `tools` fill the interpreter's tool table; without them, every T number the program
    names is entered with no diameter, so only the syntax and motion are judged. Running it
    twice, or at the same time, gives the same answer: nothing outside its temporary
    directory is touched.
    """
    for _attempt in range(ATTEMPTS):
        try:
            run = _run_once(gcode, tools, binary, timeout_s)
        except subprocess.TimeoutExpired:
            return (f"rs274 did not finish within {timeout_s:g} s",)
        if run.returncode >= 0:
            break
    else:
        raise Rs274Crashed(
            f"{binary} was killed by signal {-run.returncode} on {ATTEMPTS} attempts"
        )
    if run.returncode == 0:
        return ()
    # stderr: "executing", then the message and the offending block, one per line.
    lines = [
        line.strip()
        for line in run.stderr.decode("utf-8", errors="replace").splitlines()
        if line.strip() and line.strip() != "executing"
    ]
    if not lines:
        return (f"rs274 exited with status {run.returncode}",)
    message, *block = lines
    return (f"{message}: {block[0]}" if block else message,)


def _run_once(
    gcode: bytes, tools: Sequence[ToolUse] | None, binary: str, timeout_s: float
) -> subprocess.CompletedProcess[bytes]:
    """One run of the interpreter in a fresh temporary directory, its HOME too."""
    with tempfile.TemporaryDirectory(prefix="rs274-") as folder:
        work = Path(folder)
        (work / "program.ngc").write_bytes(gcode)
        (work / "tools.tbl").write_text(_tool_table(gcode, tools))
        try:
            return subprocess.run(
                [binary, "-g", "-t", "tools.tbl", "program.ngc", "canon.txt"],
                cwd=work,
                env={**os.environ, "HOME": folder},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError as missing:
            raise Rs274Unavailable(
                f"{binary} is not installed (Debian package linuxcnc-uspace)"
            ) from missing


def _tool_table(gcode: bytes, tools: Sequence[ToolUse] | None) -> str:
    """LinuxCNC's tool table format: one `T<n> P<pocket> D<diameter> ;<comment>` per tool."""
    if tools is not None:
        rows = {tool.number: (tool.diameter_mm, tool.name) for tool in tools}
    else:
        text = _COMMENT.sub(" ", gcode.decode("utf-8", errors="replace"))
        rows = {int(n): (0.0, "from the program") for n in _T_WORD.findall(text)}
    return "".join(
        f"T{number} P{number} D{diameter:.3f} ;{_plain(name)}\n"
        for number, (diameter, name) in sorted(rows.items())
        if number > 0
    )


def _plain(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable() and ch not in ";\n")[:60]
