"""Does a laser program cut out its part, and only around it? Pure: bytes in, a report out.

The G-code is read back move by move (G0/G1, G20/G21, G90/G91, M3/M4/M5 and S), whoever wrote
it, and compared with the part's silhouette placed as the planner places it (laser.placement:
`sheet_margin_mm` from the sheet's front-left corner, the G54 origin). The silhouette comes from
laser.part_outline, the same function the planner uses; its measurements against the seed
parts' parameters are tested on their own (tests/production/toolpath/test_laser.py).

Checks: the beam is off on every travel; every cut closes its contour (a lead-in, then a ring
that ends where it began); every cut stays at least half the kerf off the part (so the cut's
edge never enters it); every edge of the part has its cut around it; contours inside others
are cut first; every move stays on the sheet, and the sheet on the bed; mm and the power range.
`verify_cutting` raises Rejected naming every failed check; `check_cutting` returns the report.
"""

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import shapely
from shapely.geometry import LinearRing, LineString, MultiPolygon, Polygon

from microfactory.errors import Rejected
from production.toolpath.laser import LaserProfile, cut_setting, part_outline, placement
from production.toolpath.verify import FAIL, PASS, Check

# Coordinates are written with 3 decimals (half a micron of rounding either way) and the
# silhouette's curves are sampled within a micron: 2 µm covers both.
POSITION_TOLERANCE_MM = 0.002
# How far a cut ring may stray from "half a kerf around a part edge" and still be that
# edge's cut (the buffer's round corners are exact; chords of a sampled arc are within 1 µm).
RING_MATCH_TOLERANCE_MM = 0.01

_WORD = re.compile(r"([A-Z])\s*([+-]?(?:\d+\.?\d*|\.\d+))")


@dataclass(frozen=True)
class Cut:
    """The moves of one beam-on stretch: pierce point first."""

    points: tuple[tuple[float, float], ...]

    @property
    def ring_start(self) -> int | None:
        """Where the closed ring begins (after the lead-in), or None when the cut is open."""
        end = self.points[-1]
        for index, point in enumerate(self.points[:-3]):
            if math.dist(point, end) <= POSITION_TOLERANCE_MM:
                ring = self.points[index:]
                if len(ring) >= 4 and Polygon(ring).area > 0:
                    return index
        return None

    @property
    def ring(self) -> tuple[tuple[float, float], ...]:
        """The closed ring, once round: further passes repeat it and are not drawn again."""
        start = self.ring_start
        if start is None:
            return ()
        for end in range(start + 3, len(self.points)):
            if math.dist(self.points[end], self.points[start]) <= POSITION_TOLERANCE_MM:
                if Polygon(self.points[start : end + 1]).area > 0:
                    return self.points[start : end + 1]
        return self.points[start:]

    @property
    def lead_in(self) -> tuple[tuple[float, float], ...]:
        start = self.ring_start
        return () if not start else self.points[: start + 1]


@dataclass(frozen=True)
class Travel:
    start: tuple[float, float]
    end: tuple[float, float]
    beam_on: bool


@dataclass(frozen=True)
class LaserMoves:
    """A laser program read back: its cuts in order, its travels, what the reader met."""

    cuts: tuple[Cut, ...]
    travels: tuple[Travel, ...]
    points: tuple[tuple[float, float], ...]  # every position the head reaches
    max_s: float
    problems: tuple[str, ...]  # units, unreadable words: each fails the "readable" check


def read_laser_gcode(gcode: bytes) -> LaserMoves:
    """The cuts (beam-on stretches of G1 moves) and travels of a laser program."""
    position = (0.0, 0.0)
    absolute, motion, spindle_on, s_value = True, "G0", False, 0.0
    cuts: list[Cut] = []
    travels: list[Travel] = []
    points: list[tuple[float, float]] = [position]
    current: list[tuple[float, float]] = []
    problems: list[str] = []
    max_s = 0.0

    def close_cut() -> None:
        if len(current) > 1:
            cuts.append(Cut(points=tuple(current)))
        current.clear()

    for number, raw in enumerate(gcode.decode("utf-8", errors="replace").splitlines(), 1):
        line = re.sub(r"\([^)]*\)", "", raw.split(";", 1)[0]).upper()
        words = _WORD.findall(line)
        if re.sub(r"\s", "", _WORD.sub("", line)):
            problems.append(f"line {number}: cannot read {raw.strip()!r}")
            continue
        target = list(position)
        moves = False
        for letter, value in words:
            code = f"{letter}{float(value):g}"
            if code in ("G0", "G1"):
                motion = code
            elif code == "G20":
                problems.append(f"line {number}: inch units (G20)")
            elif code in ("G90", "G91"):
                absolute = code == "G90"
            elif code in ("G2", "G3"):
                problems.append(f"line {number}: an arc ({code}); laser programs use G1 only")
            elif code in ("M3", "M4"):
                spindle_on = True
            elif code in ("M5", "M30", "M2"):
                spindle_on = False
            elif letter == "S":
                s_value = float(value)
                max_s = max(max_s, s_value)
            elif letter in "XY":
                axis = "XY".index(letter)
                target[axis] = float(value) if absolute else target[axis] + float(value)
                moves = True
        beam_on = spindle_on and s_value > 0
        if beam_on and not current:
            current.append(position)
        if not beam_on:
            close_cut()
        if not moves:
            continue
        end = (target[0], target[1])
        if motion == "G0":
            close_cut()
            travels.append(Travel(start=position, end=end, beam_on=beam_on))
        elif beam_on:
            current.append(end)
        points.append(end)
        position = end
    close_cut()
    return LaserMoves(
        cuts=tuple(cuts),
        travels=tuple(travels),
        points=tuple(points),
        max_s=max_s,
        problems=tuple(problems),
    )


@dataclass(frozen=True)
class CuttingCheck:
    contours: int
    cut_length_mm: float
    travel_length_mm: float
    kerf_mm: float
    min_clearance_mm: float  # from the cuts to the part: at least half the kerf
    sheet_mm: tuple[float, float]
    checks: tuple[Check, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == FAIL)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def verify_cutting(
    gcode: bytes,
    *,
    step: bytes | None,
    stl: bytes,
    material: str,
    thickness_mm: float,
    machine: LaserProfile,
) -> CuttingCheck:
    """The report on a laser program that cuts its part out; Rejected naming what does not."""
    report = check_cutting(
        gcode, step=step, stl=stl, material=material, thickness_mm=thickness_mm, machine=machine
    )
    if report.failures:
        raise Rejected(
            "the laser program does not cut its part: "
            + "; ".join(check.message for check in report.failures)
        )
    return report


def check_cutting(
    gcode: bytes,
    *,
    step: bytes | None,
    stl: bytes,
    material: str,
    thickness_mm: float,
    machine: LaserProfile,
) -> CuttingCheck:
    """Every check on a laser program against its part, failed ones included."""
    kerf = cut_setting(source=machine.source, material=material, thickness_mm=thickness_mm).kerf_mm
    part, sheet, _ = placement(part_outline(step=step, stl=stl), margin_mm=machine.sheet_margin_mm)
    moves = read_laser_gcode(gcode)
    return CuttingCheck(
        contours=len(moves.cuts),
        cut_length_mm=sum(LineString(c.points).length for c in moves.cuts),
        travel_length_mm=sum(math.dist(t.start, t.end) for t in moves.travels),
        kerf_mm=kerf,
        min_clearance_mm=_clearance(moves, part),
        sheet_mm=sheet,
        checks=(
            _readable(moves),
            _beam_off_on_travels(moves),
            _contours_closed(moves),
            _kerf_clearance(moves, part, kerf),
            _part_edges_cut(moves, part, kerf),
            _inner_first(moves),
            _on_sheet(moves, sheet, machine),
            _power(moves, machine),
        ),
    )


def _check(name: str, ok: bool, value: str, limit: str, message: str) -> Check:
    return Check(name=name, status=PASS if ok else FAIL, value=value, limit=limit, message=message)


def _readable(moves: LaserMoves) -> Check:
    return _check(
        "readable",
        not moves.problems,
        str(len(moves.problems)),
        "0 problems",
        "; ".join(moves.problems[:3]) or "every line read, in mm",
    )


def _beam_off_on_travels(moves: LaserMoves) -> Check:
    lit = [t for t in moves.travels if t.beam_on and t.start != t.end]
    return _check(
        "beam_off_on_travels",
        not lit,
        f"{len(lit)} of {len(moves.travels)}",
        "0 travels with the beam on",
        f"{len(lit)} travels (G0) with the beam on" if lit else "the beam is off on every travel",
    )


def _contours_closed(moves: LaserMoves) -> Check:
    open_cuts = [n for n, cut in enumerate(moves.cuts, 1) if cut.ring_start is None]
    return _check(
        "contours_closed",
        bool(moves.cuts) and not open_cuts,
        f"{len(moves.cuts) - len(open_cuts)} of {len(moves.cuts)} closed",
        f"end within {POSITION_TOLERANCE_MM} mm of the ring's start",
        f"cuts {open_cuts[:5]} do not close their contour"
        if open_cuts
        else ("every contour closes" if moves.cuts else "the program cuts nothing"),
    )


def _clearance(moves: LaserMoves, part: MultiPolygon) -> float:
    if not moves.cuts:
        return math.inf
    paths = shapely.MultiLineString([c.points for c in moves.cuts])
    return float(paths.distance(part))


def _kerf_clearance(moves: LaserMoves, part: MultiPolygon, kerf: float) -> Check:
    clearance = _clearance(moves, part)
    ok = clearance >= kerf / 2 - POSITION_TOLERANCE_MM
    return _check(
        "kerf_clearance",
        ok,
        f"{clearance:.4f} mm",
        f">= {kerf / 2:g} mm (half the kerf)",
        "every cut stays half the kerf off the part"
        if ok
        else f"a cut comes {clearance:.3f} mm from the part: the beam's edge enters it "
        f"(half the kerf is {kerf / 2:g} mm)",
    )


def _part_edges_cut(moves: LaserMoves, part: MultiPolygon, kerf: float) -> Check:
    """Every ring of the part (outline and holes) has a cut ring half a kerf around it."""
    rings = [LinearRing(c.ring) for c in moves.cuts if c.ring]
    edges = [p.exterior for p in part.geoms] + [r for p in part.geoms for r in p.interiors]
    reach = kerf / 2 + RING_MATCH_TOLERANCE_MM
    uncut = 0
    for edge in edges:
        # Only rings whose bounding box is within reach can match: spares most of the
        # (quadratic) Hausdorff distances on a plate with many holes.
        near = shapely.box(*edge.bounds).buffer(reach, join_style="mitre")
        if not any(
            near.contains(ring)
            and abs(ring.hausdorff_distance(edge) - kerf / 2) <= RING_MATCH_TOLERANCE_MM
            for ring in rings
        ):
            uncut += 1
    return _check(
        "part_edges_cut",
        uncut == 0,
        f"{len(edges) - uncut} of {len(edges)}",
        "every outline and hole",
        f"{uncut} edges of the part (outline or holes) have no cut around them"
        if uncut
        else "every outline and hole of the part has its cut",
    )


def _inner_first(moves: LaserMoves) -> Check:
    """A contour inside another is cut before it: once a part is free it can shift."""
    areas = [Polygon(c.ring) if c.ring else None for c in moves.cuts]
    late = 0
    for i, outer in enumerate(areas):
        for inner in areas[i + 1 :]:
            if outer is not None and inner is not None and outer.contains(inner):
                late += 1
    return _check(
        "inner_before_outer",
        late == 0,
        f"{late} late",
        "0 contours cut after the contour around them",
        f"{late} contours are cut after the contour around them" if late else "inner first",
    )


def _on_sheet(moves: LaserMoves, sheet: tuple[float, float], machine: LaserProfile) -> Check:
    tol = POSITION_TOLERANCE_MM
    outside = [
        p
        for p in moves.points
        if not (-tol <= p[0] <= sheet[0] + tol and -tol <= p[1] <= sheet[1] + tol)
    ]
    fits = sheet[0] <= machine.bed_mm[0] and sheet[1] <= machine.bed_mm[1]
    worst = max((max(-p[0], -p[1], p[0] - sheet[0], p[1] - sheet[1]) for p in outside), default=0.0)
    return _check(
        "on_sheet_and_bed",
        fits and not outside,
        f"{len(outside)} points off the sheet"
        if outside
        else f"{sheet[0]:.1f} x {sheet[1]:.1f} mm",
        f"sheet within the {machine.bed_mm[0]:g} x {machine.bed_mm[1]:g} mm bed",
        "every move is on the sheet and the sheet on the bed"
        if fits and not outside
        else (
            f"{len(outside)} moves leave the sheet (by up to {worst:.3f} mm)"
            if outside
            else "the sheet does not fit the bed"
        ),
    )


def _power(moves: LaserMoves, machine: LaserProfile) -> Check:
    ok = 0 < moves.max_s <= machine.max_s
    return _check(
        "power",
        ok,
        f"S{moves.max_s:g}",
        f"S1..S{machine.max_s} ($30)",
        "the power stays within the machine's S range"
        if ok
        else f"S{moves.max_s:g} is outside the machine's range S1..S{machine.max_s}",
    )
