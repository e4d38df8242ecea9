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
