"""Reads our milling programs back into straight and arc moves, for the tests' measurements,
and runs LinuxCNC's standalone interpreter (rs274) on them.

# TODO(lead): production/toolpath/rs274.py (engineer B) is the reusable runner; this helper
# is the stop-gap until the branches merge.
"""

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from production.toolpath.cnc_tools import DEFAULT_TOOL_TABLE, ToolTable
from production.toolpath.posts import linuxcnc_tool_table

WORD = re.compile(r"([GXYZIJFRQTSPHM])(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Cut:
    kind: str  # "rapid" | "feed" | "arc"
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    tool: int
    operation: str  # the comment's first word: "facing", "pocket", "helical", "drill", ...
    centre: tuple[float, float] | None = None  # arcs


def cuts(gcode: bytes, *, start_z: float = 10.0) -> list[Cut]:
    """Every move, canned drilling cycles (G81/G83) expanded into their plunges."""
    x, y, z = 0.0, 0.0, start_z
    tool, operation, motion = 0, "", "G0"
    found: list[Cut] = []
    for line in gcode.decode("ascii").splitlines():
        if line.startswith("(TOOL CHANGE: load T"):
            tool = int(line.split("load T")[1].split()[0])
            continue
        if line.startswith("("):
            head = line[1:].split(":")[0]
            if head in ("facing", "pocket", "helical", "drill", "countersink", "profile"):
                operation = head
            continue
        words = WORD.findall(line)
        codes = [f"{k}{v}" for k, v in words if k in "GM"]
        values = {k: float(v) for k, v in words if k not in "GM"}
        if "M6" in codes:
            tool = int(values["T"])
            continue
        for code in codes:
            if code in ("G0", "G1", "G2", "G3", "G81", "G83"):
                motion = code
        if not any(k in values for k in "XYZ"):
            continue
        nx, ny, nz = values.get("X", x), values.get("Y", y), values.get("Z", z)
        if motion in ("G81", "G83"):
            r = values["R"]
            found.append(Cut("rapid", (x, y, z), (nx, ny, z), tool, operation))
            found.append(Cut("rapid", (nx, ny, z), (nx, ny, r), tool, operation))
            found.append(Cut("feed", (nx, ny, r), (nx, ny, nz), tool, operation))
            found.append(Cut("rapid", (nx, ny, nz), (nx, ny, z), tool, operation))
            x, y = nx, ny
            continue
        kind = {"G0": "rapid", "G1": "feed"}.get(motion, "arc")
        centre = (x + values["I"], y + values["J"]) if kind == "arc" else None
        found.append(Cut(kind, (x, y, z), (nx, ny, nz), tool, operation, centre))
        x, y, z = nx, ny, nz
    return found


def lowest_z(found: list[Cut]) -> float:
    return min(min(c.start[2], c.end[2]) for c in found)


def arc_radius(cut: Cut) -> float:
    assert cut.centre is not None
    return math.dist(cut.start[:2], cut.centre)


def rs274_errors(gcode: bytes, *, tools: ToolTable = DEFAULT_TOOL_TABLE) -> str:
    """What LinuxCNC's interpreter says is wrong with the program; "" when it accepts it.
    The machine's tool table goes with it (rs274 refuses a T it does not know)."""
    binary = shutil.which("rs274")
    assert binary is not None, "rs274 (Debian's linuxcnc-uspace) is not installed"
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder) / "program.ngc"
        program.write_bytes(gcode)
        table = Path(folder) / "tools.tbl"
        table.write_text(linuxcnc_tool_table(tools), encoding="ascii")
        run = subprocess.run(
            [binary, "-t", str(table), "-g", str(program)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=folder,
            check=False,
        )
    if run.returncode == 0:
        return ""
    return (run.stderr + run.stdout[-2000:]).strip()
