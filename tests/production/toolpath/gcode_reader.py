"""Reads our G-code back into moves, and builds the meshes and profiles the tests slice."""

import math
import re
from dataclasses import dataclass

import trimesh

from production.toolpath import FdmProfile

BED_MM = (250.0, 210.0)
BED_CENTRE = (BED_MM[0] / 2, BED_MM[1] / 2)


@dataclass(frozen=True)
class Extrusion:
    """One G1 that moves and names an E: from (x0, y0) to (x1, y1)."""

    layer: int | None  # None before the first ;LAYER: marker (the purge line)
    kind: str  # the ;TYPE: it was drawn under, e.g. "External perimeter"
    x0: float
    y0: float
    x1: float
    y1: float
    e_before: float  # absolute E before and after the move
    e: float

    def distance_to(self, x: float, y: float) -> float:
        """Shortest distance from the point to this segment."""
        dx, dy = self.x1 - self.x0, self.y1 - self.y0
        length_sq = dx * dx + dy * dy
        t = 0.0 if length_sq == 0 else ((x - self.x0) * dx + (y - self.y0) * dy) / length_sq
        t = min(1.0, max(0.0, t))
        return math.hypot(self.x0 + t * dx - x, self.y0 + t * dy - y)


WORD = re.compile(r"([XYZEF])(-?\d+(?:\.\d+)?)")


def extrusions(gcode: bytes) -> list[Extrusion]:
    """Every move that extrudes, in file order, tagged with the layer it belongs to."""
    layer: int | None = None
    kind = ""
    x = y = e = 0.0
    found = []
    for line in gcode.decode("ascii").splitlines():
        if line.startswith(";LAYER:"):
            layer = int(line.removeprefix(";LAYER:"))
            continue
        if line.startswith(";TYPE:"):
            kind = line.removeprefix(";TYPE:")
            continue
        if line.startswith("G92"):
            e = 0.0
            continue
        if not line.startswith(("G0 ", "G1 ")):
            continue
        words = {k: float(v) for k, v in WORD.findall(line)}
        nx, ny = words.get("X", x), words.get("Y", y)
        moves_xy = "X" in words or "Y" in words
        if line.startswith("G1 ") and moves_xy and "E" in words:
            found.append(Extrusion(layer, kind, x, y, nx, ny, e, words["E"]))
        x, y, e = nx, ny, words.get("E", e)
    return found


def header_value(gcode: bytes, prefix: str) -> str:
    """The text after the first comment line starting with `prefix`."""
    for line in gcode.decode("ascii").splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip()
    raise AssertionError(f"no line starts with {prefix!r}")


def seconds_of(duration: str) -> int:
    """`1h 2m 3s` -> 3723, as PrusaSlicer-aware tools parse it."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(int(part[:-1]) * units[part[-1]] for part in duration.split())


def make_profile(**overrides: object) -> FdmProfile:
    """A Prusa MK4 with the slicer's defaults, changed where a test says so."""
    settings: dict[str, object] = {
        "machine_model": "Prusa MK4",
        "bed_mm": BED_MM,
        "max_height_mm": 220.0,
        **overrides,
    }
    return FdmProfile(**settings)  # type: ignore[arg-type]


def stl_of(mesh: trimesh.Trimesh) -> bytes:
    data = mesh.export(file_type="stl")
    assert isinstance(data, bytes)
    return data


def box_stl(x: float, y: float, z: float) -> bytes:
    return stl_of(trimesh.creation.box(extents=(x, y, z)))


def tube_stl(inner_radius: float, outer_radius: float, height: float) -> bytes:
    return stl_of(trimesh.creation.annulus(r_min=inner_radius, r_max=outer_radius, height=height))


def two_boxes_stl(size: float, gap: float, height: float) -> bytes:
    """Two separate boxes side by side along x, `gap` apart."""
    left = trimesh.creation.box(extents=(size, size, height))
    right = trimesh.creation.box(extents=(size, size, height))
    right.apply_translation((size + gap, 0, 0))
    both = trimesh.util.concatenate([left, right])
    assert isinstance(both, trimesh.Trimesh)
    return stl_of(both)


PERIMETER_KINDS = ("External perimeter", "Perimeter", "Overhang perimeter")
# A travel that starts or ends on a perimeter touches it: only what lies further along counts.
CROSSING_TRIM_MM = 0.05


@dataclass(frozen=True)
class TravelStats:
    """The travel of one G-code file (ours or PrusaSlicer's), layer by layer.

    A travel is a run of consecutive moves in X/Y that do not extrude (a combed travel is
    several G0 moves and counts once); a crossing is a travel, made without a retraction,
    that crosses a perimeter line drawn on the same layer (before or after it).
    """

    travels: int
    travel_mm: float
    retractions: int
    unretracted_crossings: int


def travel_stats(gcode: bytes) -> TravelStats:
    import shapely
    from shapely.geometry import LineString
    from shapely.ops import substring

    layer = -1
    kind = ""
    x = y = e = 0.0
    retracted = False
    travels: list[tuple[int, bool, list[tuple[float, float]]]] = []
    perimeters: dict[int, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
    current: list[tuple[float, float]] | None = None
    retractions = 0
    for line in gcode.decode("ascii", errors="replace").splitlines():
        if line.startswith(";LAYER_CHANGE"):
            layer += 1
            current = None
            continue
        if line.startswith(";TYPE:"):
            kind = line.removeprefix(";TYPE:")
            continue
        if line.startswith("G92"):
            e = float(WORD.findall(line)[0][1]) if "E" in line else e
            continue
        if not line.startswith(("G0 ", "G1 ")):
            continue
        words = {k: float(v) for k, v in WORD.findall(line.split(";")[0])}
        nx, ny, ne = words.get("X", x), words.get("Y", y), words.get("E", e)
        moved = abs(nx - x) > 1e-6 or abs(ny - y) > 1e-6
        if moved and ne > e + 1e-9:
            if kind in PERIMETER_KINDS and layer >= 0:
                perimeters.setdefault(layer, []).append(((x, y), (nx, ny)))
            retracted = False
            current = None
        elif moved:
            if layer >= 0:
                if current is None:
                    current = [(x, y)]
                    travels.append((layer, retracted, current))
                current.append((nx, ny))
        elif ne < e - 1e-9:
            retractions += 1 if layer >= 0 else 0
            retracted = True
            current = None
        elif ne > e + 1e-9:
            retracted = False
            current = None
        x, y, e = nx, ny, ne
    crossings = 0
    lines = {layer: shapely.multilinestrings(segments) for layer, segments in perimeters.items()}
    for geometry in lines.values():
        shapely.prepare(geometry)
    length = 0.0
    for layer, was_retracted, points in travels:
        path = LineString(points)
        length += path.length
        if was_retracted or layer not in lines or path.length <= 2 * CROSSING_TRIM_MM:
            continue
        inner = substring(path, CROSSING_TRIM_MM, path.length - CROSSING_TRIM_MM)
        if lines[layer].intersects(inner):
            crossings += 1
    return TravelStats(
        travels=len(travels),
        travel_mm=round(length, 1),
        retractions=retractions,
        unretracted_crossings=crossings,
    )
