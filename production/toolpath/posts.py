"""Post-processors: the milling planner's moves written as GRBL or LinuxCNC G-code.

The planner (milling.py) produces a list of moves in the work offset's coordinates; a post
writes them in one controller's dialect. The two differ where it matters on the shop floor:

- LinuxCNC has a tool changer interface and canned cycles: `T2 M6` then `G43 H2` (the tool's
  length from the tool table), and drilling as `G81` / `G83` with `G98` (retract to the height
  the cycle started from).
- GRBL has neither: a tool change is `M5`, a comment naming the tool and `M0` (the operator
  changes the tool, touches off Z and resumes), and each drilling cycle is expanded into the
  G0 / G1 moves it stands for, pecks included.

Both get the same frame: a comment header, `G17 G21 G40 G49 G80 G90 G94`, `G54`, and at the
end `M5` and `M30`. Comments are ASCII in parentheses (neither controller nests them).
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from production.toolpath.cnc_tools import ToolTable

DIALECTS = ("grbl", "linuxcnc")


@dataclass(frozen=True)
class Rapid:
    x: float | None = None
    y: float | None = None
    z: float | None = None


@dataclass(frozen=True)
class Feed:
    x: float | None
    y: float | None
    z: float | None
    feed: float


@dataclass(frozen=True)
class Arc:
    """A circular move in the XY plane, helical when z changes; i, j from the start point."""

    clockwise: bool
    x: float
    y: float
    z: float
    i: float
    j: float
    feed: float


@dataclass(frozen=True)
class Drill:
    """One drilling cycle: G81 (one plunge) or G83 (pecks of `peck` mm), from the retract
    plane `r` to depth `z`, returning to `clear` (the height it started from: G98)."""

    x: float
    y: float
    z: float
    r: float
    clear: float
    feed: float
    peck: float = 0.0  # 0: G81


@dataclass(frozen=True)
class ToolChange:
    number: int
    name: str
    rpm: int
    safe_z: float


@dataclass(frozen=True)
class Comment:
    text: str


Move = Rapid | Feed | Arc | Drill | ToolChange | Comment

PECK_CLEARANCE_MM = 0.3  # G83's return above the last peck's depth (LinuxCNC uses ~0.25)
SPINDLE_DWELL_S = 2.0  # after M3: let the spindle reach its speed before cutting


def post(moves: Sequence[Move], *, dialect: str, header: Sequence[str], safe_z: float) -> bytes:
    """The program's G-code in `dialect`."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    lines = [f"({_ascii(text)})" for text in header]
    lines += ["G17 G21 G40 G49 G80 G90 G94", "G54"]
    writer = _Writer(dialect)
    for move in moves:
        lines.extend(writer.write(move))
    lines += [f"G0 Z{_n(safe_z)}", "M5", "M30"]
    return ("\n".join(lines) + "\n").encode("ascii")


def expand_drill(move: Drill) -> list[Rapid | Feed]:
    """A drilling cycle as the straight moves it stands for (GRBL's program, the estimate)."""
    moves: list[Rapid | Feed] = [Rapid(x=move.x, y=move.y), Rapid(z=move.r)]
    if move.peck <= 0:
        moves += [Feed(None, None, move.z, move.feed), Rapid(z=move.clear)]
        return moves
    depth = move.r
    while depth > move.z + 1e-9:
        start = depth
        depth = max(depth - move.peck, move.z)
        if start < move.r:
            moves.append(Rapid(z=start + PECK_CLEARANCE_MM))
        moves += [Feed(None, None, depth, move.feed), Rapid(z=move.r)]
    moves.append(Rapid(z=move.clear))
    return moves


class _Writer:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.feed: float | None = None
        self.in_cycle = False

    def write(self, move: Move) -> list[str]:
        lines = []
        if self.in_cycle and not isinstance(move, Drill):
            lines.append("G80")
            self.in_cycle = False
        if isinstance(move, Comment):
            lines.append(f"({_ascii(move.text)})")
        elif isinstance(move, Rapid):
            lines.append("G0" + _axes(move.x, move.y, move.z))
        elif isinstance(move, Feed):
            lines.append("G1" + _axes(move.x, move.y, move.z) + self._f(move.feed))
        elif isinstance(move, Arc):
            code = "G2" if move.clockwise else "G3"
            lines.append(
                f"{code}{_axes(move.x, move.y, move.z)} I{_n(move.i)} J{_n(move.j)}"
                + self._f(move.feed)
            )
        elif isinstance(move, Drill):
            lines.extend(self._drill(move))
        else:
            lines.extend(self._tool_change(move))
        return lines

    def _f(self, feed: float) -> str:
        if self.feed is not None and math.isclose(feed, self.feed):
            return ""
        self.feed = feed
        return f" F{_n(feed, 1)}"

    def _drill(self, move: Drill) -> list[str]:
        if self.dialect == "grbl":
            out = []
            for step in expand_drill(move):
                out.extend(self.write(step))
            return out
        self.in_cycle = True
        self.feed = move.feed
        code = f"G83 Q{_n(move.peck)}" if move.peck > 0 else "G81"
        return [
            f"G0 X{_n(move.x)} Y{_n(move.y)}",
            f"G98 {code} X{_n(move.x)} Y{_n(move.y)} Z{_n(move.z)} R{_n(move.r)} "
            f"F{_n(move.feed, 1)}",
        ]

    def _tool_change(self, move: ToolChange) -> list[str]:
        self.feed = None
        name = _ascii(move.name)
        if self.dialect == "grbl":
            lines = [
                f"G0 Z{_n(move.safe_z)}",
                "M5",
                f"(TOOL CHANGE: load T{move.number} {name}, touch off Z on the stock top, resume)",
                "M0",
            ]
        else:
            lines = [
                f"G0 Z{_n(move.safe_z)}",
                "M5",
                f"(T{move.number} {name})",
                f"T{move.number} M6",
                f"G43 H{move.number}",
            ]
        return [*lines, f"S{move.rpm} M3", f"G4 P{_n(SPINDLE_DWELL_S, 1)}"]


def _axes(x: float | None, y: float | None, z: float | None) -> str:
    return "".join(f" {axis}{_n(v)}" for axis, v in (("X", x), ("Y", y), ("Z", z)) if v is not None)


def _n(value: float, digits: int = 4) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _ascii(text: str) -> str:
    """A comment both controllers read: ASCII, no parentheses inside."""
    plain = text.replace("\u00d8", "D").replace("\u00b0", " deg").replace("\u2013", "-")
    plain = re.sub(r"[()]", "", plain)
    return plain.encode("ascii", "replace").decode("ascii")


def linuxcnc_tool_table(table: ToolTable) -> str:
    """The machine's tools as a LinuxCNC tool table (.tbl): pocket = T number, lengths zero
    (measured at the machine); rs274 needs it to accept `T14 M6`."""
    return "".join(
        f"T{t.number} P{t.number} D{_n(t.diameter_mm)} Z0 ;{_ascii(t.name)}\n" for t in table.tools
    )
