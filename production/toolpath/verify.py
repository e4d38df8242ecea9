"""Does a G-code print the part it was sliced from? Pure: bytes and a profile in, a report out.

Whichever engine wrote it, the G-code is read back move by move (G0/G1, G92, G28, absolute or
relative XYZ and E, M104/M109/M140/M190 and Klipper's PRINT_START) and compared with the
part's mesh, placed as both engines place it: centred on the bed, lowest point at z=0.
`verify_gcode` raises Rejected naming every failed check, so a G-code that does not match its
part never leaves the factory; `check_gcode` returns the same report without raising.

A plate (several copies placed on one bed, production.plates) has `verify_plate_gcode` and
`check_plate_gcode`: the same machine checks, then every extrusion matched to the copy whose
footprint it lies in, layer by layer, and each copy's height and volume checked on its own.

What counts as the print: every move after the first `;LAYER_CHANGE` comment. Before it is
the start sequence (heating, homing, the purge line at the front of the bed), which must stay
on the bed but is not part of the part. Both engines write `;LAYER_CHANGE` and `;TYPE:`
comments, as PrusaSlicer does.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from microfactory.errors import Rejected
from production.toolpath import slicing
from production.toolpath.paths import SKIRT_GAP_MM
from production.toolpath.profile import FdmProfile

PASS, FAIL = "pass", "fail"

# Default bounds of extruded volume / part volume. Sparse infill alone fills `infill_density`
# of the inside and shells only add to it, so the floor is that density with a quarter off
# for curved walls and overlaps (0.15 at 20 % infill). The ceiling: extrusion overlaps and
# rounding put a solid part near 1.0-1.1; 1.6 leaves room for small parts, while a G-code
# for a part twice as big fails.
MIN_VOLUME_PER_DENSITY = 0.75
MAX_VOLUME_RATIO = 1.6
LAYER_COUNT_TOLERANCE = 2
TEMPERATURE_TOLERANCE_C = 10.0  # either side of the material's temperature
POSITION_TOLERANCE_MM = 0.01  # coordinates are written with 3 decimals

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)\Z")
_MOVE_AXES = frozenset("XYZEF")
_UNSUPPORTED = {
    "G2": "a clockwise arc (G2)",
    "G3": "a counter-clockwise arc (G3)",
    "G5": "a Bézier move (G5)",
    "G20": "inch units (G20)",
    "G10": "a firmware retraction (G10)",
    "G11": "a firmware recovery (G11)",
}


@dataclass(frozen=True)
class Check:
    """One finding, shaped like the validation report's checks."""

    name: str
    status: str  # "pass" | "fail"
    value: str
    limit: str
    message: str


@dataclass(frozen=True)
class GcodeCheck:
    layers: int
    max_z_mm: float
    extruded_mm3: float  # the print's, without start sequence and skirt
    part_volume_mm3: float
    checks: tuple[Check, ...]
    copies: tuple["CopyCheck", ...] = ()  # a plate's copies, one row each; () for one part

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == FAIL)

    def to_json(self) -> dict[str, Any]:
        report = asdict(self)
        if not self.copies:
            del report["copies"]  # single-part reports keep the shape they always had
        return report


@dataclass(frozen=True)
class PlateCopy:
    """One copy on a plate, as the plate check sees it: where it stands and what it is."""

    label: str  # how messages name it: "job 12 copy 3"
    footprint: BaseGeometry  # its outline on the bed, in bed coordinates, as placed
    height_mm: float
    volume_mm3: float


@dataclass(frozen=True)
class CopyCheck:
    """What a plate's G-code prints for one copy."""

    label: str
    status: str  # "pass" | "fail"
    top_mm: float  # the highest extrusion within its footprint
    height_mm: float
    extruded_mm3: float
    volume_mm3: float


def verify_gcode(
    gcode: bytes,
    *,
    stl: bytes,
    profile: FdmProfile,
    min_volume_ratio: float | None = None,
    max_volume_ratio: float = MAX_VOLUME_RATIO,
    temperature_tolerance_c: float = TEMPERATURE_TOLERANCE_C,
) -> GcodeCheck:
    """The report on a G-code that matches its part; Rejected naming what does not match."""
    report = check_gcode(
        gcode,
        stl=stl,
        profile=profile,
        min_volume_ratio=min_volume_ratio,
        max_volume_ratio=max_volume_ratio,
        temperature_tolerance_c=temperature_tolerance_c,
    )
    return _clean(report, "part")


def _clean(report: GcodeCheck, what: str) -> GcodeCheck:
    """The report when nothing failed; Rejected naming every failure otherwise."""
    if report.failures:
        raise Rejected(
            f"the G-code does not match its {what}: "
            + "; ".join(check.message for check in report.failures)
        )
    return report


def check_gcode(
    gcode: bytes,
    *,
    stl: bytes,
    profile: FdmProfile,
    min_volume_ratio: float | None = None,
    max_volume_ratio: float = MAX_VOLUME_RATIO,
    temperature_tolerance_c: float = TEMPERATURE_TOLERANCE_C,
) -> GcodeCheck:
    """Every check's outcome, failed or not. `min_volume_ratio` defaults to 0.75 x infill."""
    mesh = slicing.place_on_bed(slicing.load_mesh(stl), profile)
    (x0, y0, _), (x1, y1, height) = (tuple(float(v) for v in corner) for corner in mesh.bounds)
    part_volume = abs(float(mesh.volume))
    width = profile.line_width_mm
    run = _Run(
        profile,
        footprint=(x0, y0, x1, y1),
        first_layer_margin=profile.brim_width_mm + SKIRT_GAP_MM + (profile.skirt_loops + 1) * width,
        margin=width,
        temperature_tolerance_c=temperature_tolerance_c,
    )
    run.read(gcode)

    filament_area = math.pi * (profile.filament_mm / 2) ** 2
    extruded = run.extruded_e * filament_area
    low = MIN_VOLUME_PER_DENSITY * profile.infill_density
    low = low if min_volume_ratio is None else min_volume_ratio
    expected_layers = 1 + (height - profile.first_layer_height_mm) / profile.layer_height_mm
    ratio = extruded / part_volume if part_volume > 0 else math.inf
    checks = [
        *_machine_checks(run, profile, temperature_tolerance_c),
        first_problem(
            "footprint",
            run.problems,
            f"part outline + {run.first_layer_margin:.2f} mm on the first layer (brim, skirt), "
            f"+ {run.margin:.2f} mm above",
            "every extrusion lies within the part's footprint",
        ),
        compared(
            "height",
            abs(run.max_z - height) <= profile.layer_height_mm + 1e-6,
            f"{run.max_z:.3f} mm",
            f"{height:.3f} ± {profile.layer_height_mm:g} mm",
            f"the top extrusion is at {run.max_z:.3f} mm; the part is {height:.3f} mm tall",
        ),
        compared(
            "layers",
            abs(run.layers - expected_layers) <= LAYER_COUNT_TOLERANCE,
            str(run.layers),
            f"{expected_layers:.1f} ± {LAYER_COUNT_TOLERANCE}",
            f"{run.layers} layers for a {height:.2f} mm part "
            f"({profile.first_layer_height_mm:g} mm, then {profile.layer_height_mm:g} mm)",
        ),
        compared(
            "volume",
            low <= ratio <= max_volume_ratio,
            f"{ratio:.2f} x",
            f"{low:.2f} x to {max_volume_ratio:.2f} x",
            f"extrudes {extruded:.0f} mm³ for a {part_volume:.0f} mm³ part "
            f"at {profile.infill_density * 100:g} % infill",
        ),
    ]
    return GcodeCheck(
        layers=run.layers,
        max_z_mm=round(run.max_z, 3),
        extruded_mm3=round(extruded, 1),
        part_volume_mm3=round(part_volume, 1),
        checks=tuple(checks),
    )


def verify_plate_gcode(
    gcode: bytes,
    *,
    copies: Sequence[PlateCopy],
    profile: FdmProfile,
    min_volume_ratio: float | None = None,
    max_volume_ratio: float = MAX_VOLUME_RATIO,
    temperature_tolerance_c: float = TEMPERATURE_TOLERANCE_C,
    tolerance_mm: float | None = None,
) -> GcodeCheck:
    """The report on a plate's G-code that prints every copy where it was placed; Rejected
    naming what does not match."""
    report = check_plate_gcode(
        gcode,
        copies=copies,
        profile=profile,
        min_volume_ratio=min_volume_ratio,
        max_volume_ratio=max_volume_ratio,
        temperature_tolerance_c=temperature_tolerance_c,
        tolerance_mm=tolerance_mm,
    )
    return _clean(report, "plate")


def check_plate_gcode(
    gcode: bytes,
    *,
    copies: Sequence[PlateCopy],
    profile: FdmProfile,
    min_volume_ratio: float | None = None,
    max_volume_ratio: float = MAX_VOLUME_RATIO,
    temperature_tolerance_c: float = TEMPERATURE_TOLERANCE_C,
    tolerance_mm: float | None = None,
) -> GcodeCheck:
    """Every check's outcome for a plate of copies, failed or not.

    Besides what any G-code must do (the machine checks of `check_gcode`): on every layer,
    every extrusion lies within one copy's footprint grown by `tolerance_mm` (a line width by
    default), the skirt and brim around the plate; and each copy is printed to its height
    with its volume (`copies` in the report, one row each). Nothing may extrude outside the
    bed.
    """
    if not copies:
        raise ValueError("a plate has at least one copy")
    width = profile.line_width_mm
    tolerance = width if tolerance_mm is None else tolerance_mm
    run = _Run(
        profile,
        footprint=None,
        first_layer_margin=profile.brim_width_mm + SKIRT_GAP_MM + (profile.skirt_loops + 1) * width,
        margin=tolerance,
        temperature_tolerance_c=temperature_tolerance_c,
    )
    run.read(gcode)

    filament_area = math.pi * (profile.filament_mm / 2) ** 2
    owner, outside = _owners(run.segments, copies, run.first_layer_margin, tolerance)
    extruded = np.zeros(len(copies))
    tops = np.zeros(len(copies))
    for (_, _, _, _, _, z, _, pushed, skirt), belongs_to in zip(run.segments, owner, strict=True):
        if belongs_to >= 0 and not skirt:
            extruded[belongs_to] += pushed * filament_area
            tops[belongs_to] = max(tops[belongs_to], z)

    low = MIN_VOLUME_PER_DENSITY * profile.infill_density
    low = low if min_volume_ratio is None else min_volume_ratio
    rows = []
    for index, copy in enumerate(copies):
        ratio = extruded[index] / copy.volume_mm3 if copy.volume_mm3 > 0 else math.inf
        ok = (
            abs(tops[index] - copy.height_mm) <= profile.layer_height_mm + 1e-6
            and low <= ratio <= max_volume_ratio
        )
        rows.append(
            CopyCheck(
                label=copy.label,
                status=PASS if ok else FAIL,
                top_mm=round(float(tops[index]), 3),
                height_mm=round(copy.height_mm, 3),
                extruded_mm3=round(float(extruded[index]), 1),
                volume_mm3=round(copy.volume_mm3, 1),
            )
        )
    failed = [row for row in rows if row.status == FAIL]
    tallest = max(copy.height_mm for copy in copies)
    total_volume = sum(copy.volume_mm3 for copy in copies)
    total_extruded = run.extruded_e * filament_area
    ratio = total_extruded / total_volume if total_volume > 0 else math.inf
    expected_layers = 1 + (tallest - profile.first_layer_height_mm) / profile.layer_height_mm
    checks = [
        *_machine_checks(run, profile, temperature_tolerance_c),
        _found(
            "footprint",
            outside,
            f"each copy's outline + {tolerance:.2f} mm on every layer; skirt and brim within "
            f"{run.first_layer_margin:.2f} mm of the plate on the first",
            "every extrusion lies within its own copy's footprint",
        ),
        _found(
            "copies",
            [
                f"{row.label} is printed to {row.top_mm:.2f} mm of {row.height_mm:.2f} mm with "
                f"{row.extruded_mm3:.0f} mm³ for {row.volume_mm3:.0f} mm³"
                for row in failed
            ],
            f"each copy: its height ± {profile.layer_height_mm:g} mm, "
            f"{low:.2f} x to {max_volume_ratio:.2f} x its volume",
            f"each of the {len(copies)} copies is printed whole",
        ),
        compared(
            "height",
            abs(run.max_z - tallest) <= profile.layer_height_mm + 1e-6,
            f"{run.max_z:.3f} mm",
            f"{tallest:.3f} ± {profile.layer_height_mm:g} mm",
            f"the top extrusion is at {run.max_z:.3f} mm; the tallest copy is {tallest:.3f} mm",
        ),
        compared(
            "layers",
            abs(run.layers - expected_layers) <= LAYER_COUNT_TOLERANCE,
            str(run.layers),
            f"{expected_layers:.1f} ± {LAYER_COUNT_TOLERANCE}",
            f"{run.layers} layers for a tallest copy of {tallest:.2f} mm",
        ),
        compared(
            "volume",
            low <= ratio <= max_volume_ratio,
            f"{ratio:.2f} x",
            f"{low:.2f} x to {max_volume_ratio:.2f} x",
            f"extrudes {total_extruded:.0f} mm³ for {len(copies)} copies of "
            f"{total_volume:.0f} mm³ in all at {profile.infill_density * 100:g} % infill",
        ),
    ]
    return GcodeCheck(
        layers=run.layers,
        max_z_mm=round(run.max_z, 3),
        extruded_mm3=round(total_extruded, 1),
        part_volume_mm3=round(total_volume, 1),
        checks=tuple(checks),
        copies=tuple(rows),
    )


def _owners(
    segments: Sequence[tuple[int, float, float, float, float, float, int, float, bool]],
    copies: Sequence[PlateCopy],
    skirt_reach: float,
    tolerance: float,
) -> tuple[list[int], list[str]]:
    """The copy each extrusion belongs to (-1: none, or skirt), and the problems found.

    A line belongs to a copy when it lies wholly within that copy's footprint grown by the
    tolerance: a line from one copy to another, or beside them, belongs to none. Skirt and
    brim lines on the first layer lie within `skirt_reach` of the plate's outline instead.
    """
    if not segments:
        return [], []
    coords = np.array([s[1:5] for s in segments], dtype=float).reshape(-1, 2, 2)
    lines = shapely.linestrings(coords)
    grown = [copy.footprint.buffer(tolerance + POSITION_TOLERANCE_MM) for copy in copies]
    tree = shapely.STRtree(grown)
    line_index, copy_index = tree.query(lines, predicate="covered_by")
    owner = np.full(len(segments), -1)
    # The lowest-numbered copy wins where grown outlines overlap (spacing under 2 tolerances).
    for line, copy in zip(line_index.tolist(), copy_index.tolist(), strict=True):
        if owner[line] < 0 or copy < owner[line]:
            owner[line] = copy
    plate = shapely.union_all([copy.footprint for copy in copies]).convex_hull
    problems = []
    for index, (number, x0, y0, x1, y1, _, layer, _, skirt) in enumerate(segments):
        if skirt and layer == 1:
            owner[index] = -1
            # Skirt loops go around the plate's convex hull; both ends near it means the
            # whole straight line is (the distance to a convex set is convex).
            far = max(plate.distance(shapely.Point(x, y)) for x, y in ((x0, y0), (x1, y1)))
            if far > skirt_reach + POSITION_TOLERANCE_MM:
                problems.append(
                    f"line {number} draws skirt or brim at X{x1:.3f} Y{y1:.3f}, {far:.2f} mm "
                    f"from the plate's copies (allowed {skirt_reach:.2f} mm)"
                )
        elif owner[index] < 0:
            nearest = int(tree.query_nearest(lines[index])[0])
            far = float(copies[nearest].footprint.distance(lines[index]))
            problems.append(
                f"line {number} extrudes from X{x0:.3f} Y{y0:.3f} to X{x1:.3f} Y{y1:.3f} on "
                f"layer {layer} outside every copy's footprint ({far:.2f} mm from "
                f"{copies[nearest].label}'s)"
            )
    return owner.tolist(), problems


def _found(name: str, problems: Sequence[str], limit: str, ok: str) -> Check:
    if not problems:
        return Check(name, PASS, "ok", limit, ok)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return Check(name, FAIL, f"{len(problems)} problem(s)", limit, problems[0] + more)


def _machine_checks(
    run: "_Run", profile: FdmProfile, temperature_tolerance_c: float
) -> list[Check]:
    """What any G-code must satisfy, whatever it prints: numbers, moves, heat, the bed."""
    return [
        first_problem(
            "numbers", run.problems, "finite decimal numbers", "every number is a number"
        ),
        first_problem(
            "commands",
            run.problems,
            "G0/G1 moves in mm",
            "only straight moves in millimetres (arcs are disabled in every engine's config)",
        ),
        first_problem(
            "nozzle temperature",
            run.problems,
            f"{profile.nozzle_temp_c} ± {temperature_tolerance_c:g} °C, reached before extruding",
            "the nozzle is at the material's temperature whenever it extrudes",
        ),
        first_problem(
            "bed temperature",
            run.problems,
            f"{profile.bed_temp_c} ± {temperature_tolerance_c:g} °C before extruding",
            "the bed is at the material's temperature whenever the nozzle extrudes",
        ),
        first_problem(
            "machine travel",
            run.problems,
            "{:g} x {:g} x {:g} mm".format(*profile.bed_mm, profile.max_height_mm),
            "every move stays within the machine's travel",
        ),
        first_problem(
            "bed",
            run.problems,
            "{:g} x {:g} mm".format(*profile.bed_mm),
            "every extrusion lies on the bed",
        ),
    ]


def first_problem(name: str, problems: dict[str, tuple[str, int]], limit: str, ok: str) -> Check:
    """The check `name` of a reading that noted `problems` (the first of each kind, and how
    many): passed when it noted none; else failed, saying the first and how many more."""
    if name not in problems:
        return Check(name, PASS, "ok", limit, ok)
    first, count = problems[name]
    more = f" (and {count - 1} more)" if count > 1 else ""
    return Check(name, FAIL, f"{count} problem(s)", limit, first + more)


def compared(name: str, ok: bool, value: str, limit: str, message: str) -> Check:
    """A measured check: passed, or failed saying what was expected."""
    """A measured check: passed, or failed saying what was expected."""
    if ok:
        return Check(name, PASS, value, limit, message)
    return Check(name, FAIL, value, limit, f"{message}: expected {limit}")


@dataclass
class _Run:
    """The machine's state while reading the file, and what was found wrong on the way."""

    profile: FdmProfile
    # The part's bounding box on the bed; None for a plate, whose extrusions are kept in
    # `segments` and matched to its copies afterwards.
    footprint: tuple[float, float, float, float] | None
    first_layer_margin: float
    margin: float
    temperature_tolerance_c: float
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    e: float = 0.0
    relative_xyz: bool = False
    relative_e: bool = False
    layers: int = 0  # ;LAYER_CHANGE comments seen; 0 while in the start sequence
    kind: str = ""  # the last ;TYPE:
    nozzle_c: float | None = None  # target
    nozzle_reached: bool = False  # waited for (M109, PRINT_START) at an acceptable target
    bed_c: float | None = None
    max_z: float = 0.0
    extruded_e: float = 0.0
    # check name -> (the first problem found, how many were found)
    problems: dict[str, tuple[str, int]] = field(default_factory=dict)
    # a plate's extrusions: (line, x0, y0, x1, y1, z, layer, E pushed, skirt or brim)
    segments: list[tuple[int, float, float, float, float, float, int, float, bool]] = field(
        default_factory=list
    )

    def _problem(self, check: str, message: str) -> None:
        first, count = self.problems.get(check, (message, 0))
        self.problems[check] = (first, count + 1)

    def read(self, gcode: bytes) -> None:
        try:
            text = gcode.decode("utf-8")
        except UnicodeDecodeError as error:
            self._problem("numbers", f"byte {error.start} is not text")
            text = gcode.decode("utf-8", errors="replace")
        for number, raw in enumerate(text.splitlines(), start=1):
            code, _, comment = raw.partition(";")
            if not code.strip():
                if raw.startswith(";LAYER_CHANGE"):
                    self.layers += 1
                elif raw.startswith(";TYPE:"):
                    self.kind = raw[6:].strip()
                continue
            words = code.split()
            command = words[0].upper()
            if command in ("G0", "G1"):
                self._move(number, raw, words[1:])
            elif command in ("M104", "M109", "M140", "M190"):
                self._temperature(number, raw, command, words[1:])
            elif command == "G92":
                self._set_position(number, raw, words[1:])
            elif command == "G28":
                axes = {w[0].upper() for w in words[1:]} & set("XYZ") or set("XYZ")
                for axis in axes:  # homed axes are at 0 (our bed's origin is the home)
                    setattr(self, axis.lower(), 0.0)
            elif command == "G90":
                self.relative_xyz = self.relative_e = False
            elif command == "G91":
                self.relative_xyz = self.relative_e = True
            elif command == "M82":
                self.relative_e = False
            elif command == "M83":
                self.relative_e = True
            elif command in ("PRINT_START", "START_PRINT"):
                self._print_start(number, raw, words[1:])
            elif command in _UNSUPPORTED:
                self._problem("commands", f"line {number} is {_UNSUPPORTED[command]}: {_show(raw)}")

    def _words(
        self, number: int, raw: str, words: list[str], axes: frozenset[str]
    ) -> dict[str, float]:
        values: dict[str, float] = {}
        for word in words:
            letter, text = word[:1].upper(), word[1:]
            if letter not in axes:
                continue
            if not _NUMBER.match(text):
                self._problem("numbers", f"line {number} has {word!r}: {_show(raw)}")
                continue
            values[letter] = float(text)
        return values

    def _move(self, number: int, raw: str, words: list[str]) -> None:
        values = self._words(number, raw, words, _MOVE_AXES)
        if "F" in values and values["F"] <= 0:
            self._problem("numbers", f"line {number} has a feed rate of {values['F']:g}")
        x = _axis(self.x, values.get("X"), relative=self.relative_xyz)
        y = _axis(self.y, values.get("Y"), relative=self.relative_xyz)
        z = _axis(self.z, values.get("Z"), relative=self.relative_xyz)
        e = _axis(self.e, values.get("E"), relative=self.relative_e)
        if {"X", "Y", "Z"} & values.keys():
            self._within_travel(number, raw, x, y, z)
        pushed = e - self.e
        if pushed > 0 and (x != self.x or y != self.y):
            self._extrusion(number, raw, (self.x, self.y), (x, y), z, pushed)
        self.x, self.y, self.z, self.e = x, y, z, e

    def _extrusion(
        self,
        number: int,
        raw: str,
        start: tuple[float, float],
        end: tuple[float, float],
        z: float,
        pushed: float,
    ) -> None:
        self._temperatures_at(number, raw)
        bed_x, bed_y = self.profile.bed_mm
        tolerance = POSITION_TOLERANCE_MM
        for px, py in (start, end):
            if not (
                -tolerance <= px <= bed_x + tolerance and -tolerance <= py <= bed_y + tolerance
            ):
                self._problem(
                    "bed",
                    f"line {number} extrudes at X{px:.3f} Y{py:.3f}, off the "
                    f"{bed_x:g} x {bed_y:g} mm bed: {_show(raw)}",
                )
                break
        if self.layers == 0:
            return  # the start sequence: purge line, not part of the part
        if self.footprint is None:
            skirt = self.kind.startswith(("Skirt", "Brim"))
            self.segments.append((number, *start, *end, z, self.layers, pushed, skirt))
            self.max_z = max(self.max_z, z)
            if not skirt:
                self.extruded_e += pushed
            return
        margin = self.first_layer_margin if self.layers == 1 else self.margin
        x0, y0, x1, y1 = self.footprint
        for px, py in (start, end):
            outside = math.hypot(max(x0 - px, 0.0, px - x1), max(y0 - py, 0.0, py - y1))
            if outside > margin + tolerance:
                self._problem(
                    "footprint",
                    f"line {number} extrudes at X{px:.3f} Y{py:.3f} on layer {self.layers}, "
                    f"{outside:.2f} mm outside the part's footprint "
                    f"(allowed {margin:.2f} mm): {_show(raw)}",
                )
                break
        self.max_z = max(self.max_z, z)
        if not self.kind.startswith(("Skirt", "Brim")):
            self.extruded_e += pushed

    def _within_travel(self, number: int, raw: str, x: float, y: float, z: float) -> None:
        bed_x, bed_y = self.profile.bed_mm
        top, tolerance = self.profile.max_height_mm, POSITION_TOLERANCE_MM
        inside = (
            -tolerance <= x <= bed_x + tolerance
            and -tolerance <= y <= bed_y + tolerance
            and -tolerance <= z <= top + tolerance
        )
        if not inside:
            self._problem(
                "machine travel",
                f"line {number} moves to X{x:.3f} Y{y:.3f} Z{z:.3f}, outside the machine's "
                f"{bed_x:g} x {bed_y:g} x {top:g} mm: {_show(raw)}",
            )

    def _set_position(self, number: int, raw: str, words: list[str]) -> None:
        values = self._words(number, raw, words, frozenset("XYZE"))
        if not words:  # a bare G92 zeroes every axis
            values = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
        for axis, value in values.items():
            setattr(self, axis.lower(), value)

    def _temperature(self, number: int, raw: str, command: str, words: list[str]) -> None:
        values = self._words(number, raw, words, frozenset("SR"))
        target = values.get("S", values.get("R"))
        if target is None:
            return
        if command in ("M104", "M109"):
            self.nozzle_c = target
            if command == "M109":
                self.nozzle_reached = self._nozzle_ok(target)
        else:
            self.bed_c = target

    def _print_start(self, number: int, raw: str, words: list[str]) -> None:
        """Klipper's start macro heats bed and nozzle and waits for both."""
        for word in words:
            key, _, text = word.partition("=")
            if key.upper() not in ("EXTRUDER", "EXTRUDER_TEMP", "BED", "BED_TEMP"):
                continue
            if not _NUMBER.match(text):
                self._problem("numbers", f"line {number} has {word!r}: {_show(raw)}")
            elif key.upper().startswith("EXTRUDER"):
                self.nozzle_c = float(text)
                self.nozzle_reached = self._nozzle_ok(self.nozzle_c)
            else:
                self.bed_c = float(text)

    def _nozzle_ok(self, target: float) -> bool:
        return abs(target - self.profile.nozzle_temp_c) <= self.temperature_tolerance_c

    def _temperatures_at(self, number: int, raw: str) -> None:
        if self.nozzle_c is None:
            self._problem(
                "nozzle temperature", f"line {number} extrudes before any nozzle temperature"
            )
        elif not self._nozzle_ok(self.nozzle_c):
            self._problem(
                "nozzle temperature",
                f"line {number} extrudes with the nozzle set to {self.nozzle_c:g} °C: {_show(raw)}",
            )
        elif not self.nozzle_reached:
            self._problem(
                "nozzle temperature",
                f"line {number} extrudes before waiting for the nozzle to heat (M109)",
            )
        wanted = self.profile.bed_temp_c
        if self.bed_c is None:
            if wanted > 0:
                self._problem(
                    "bed temperature", f"line {number} extrudes before any bed temperature"
                )
        elif abs(self.bed_c - wanted) > self.temperature_tolerance_c:
            self._problem(
                "bed temperature",
                f"line {number} extrudes with the bed set to {self.bed_c:g} °C: {_show(raw)}",
            )


def _axis(current: float, word: float | None, *, relative: bool) -> float:
    """Where an axis is after a move that may name it."""
    if word is None:
        return current
    return current + word if relative else word


def _show(raw: str) -> str:
    """A G-code line quoted in a message: short and printable."""
    text = "".join(ch if ch.isprintable() else "?" for ch in raw.strip())
    return repr(text[:60])
