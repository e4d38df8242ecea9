"""Reads our milling programs back into straight and arc moves, for the tests' measurements
(LinuxCNC's interpreter runs them through production.toolpath.rs274)."""

import math
import re
from dataclasses import dataclass

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
