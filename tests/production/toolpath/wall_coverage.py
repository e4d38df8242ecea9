"""How well the builtin slicer's lines fill a thin wall, measured per layer with shapely.

Each extrusion is drawn as the line it lays: a band along its path, as wide as its
cross-section / layer height (its *spacing width*: two lines that far apart just touch, the
flat-sided equivalent of PrusaSlicer's round-sided line) plus the round sides' bulge
`h (1 - π/4)` for the coverage. So:

- **coverage**: the union of the lines at their full (`;WIDTH:`) width, inside the wall, over
  the wall's area. The outer loop's round side reaches the wall's edge; neighbours at one
  spacing overlap by their round sides, which is how lines are meant to touch.
- **twice**: the area two different paths both cover at their spacing width (round sides
  left out), over the wall's area: two loops on top of each other, or a gap-fill line wider
  than its gap. Lines one spacing apart add nothing.
"""

import math
from dataclasses import dataclass

import shapely
from shapely.geometry import LinearRing, LineString, Polygon
from shapely.geometry.base import BaseGeometry

from tests.production.toolpath.gcode_reader import Extrusion, extrusions

FILAMENT_AREA = math.pi * (1.75 / 2) ** 2
BULGE = 1 - math.pi / 4  # of a layer height: what a round-sided line adds to its spacing width


@dataclass(frozen=True)
class LayerFill:
    layer: int
    coverage: float  # of the wall's area
    twice: float  # of the wall's area


def _paths(moves: list[Extrusion]) -> list[list[Extrusion]]:
    """Runs of moves each starting where the previous ended (no travel between them)."""
    runs: list[list[Extrusion]] = []
    for move in moves:
        last = runs[-1][-1] if runs else None
        joined = (
            last is not None
            and last.kind == move.kind
            and math.hypot(move.x0 - last.x1, move.y0 - last.y1) < 1e-3
        )
        if joined:
            runs[-1].append(move)
        else:
            runs.append([move])
    return runs


def _band(run: list[Extrusion], height: float, extra: float) -> BaseGeometry:
    length = sum(math.hypot(m.x1 - m.x0, m.y1 - m.y0) for m in run)
    volume = FILAMENT_AREA * sum(m.e - m.e_before for m in run)
    width = volume / (length * height) + extra
    points = [(run[0].x0, run[0].y0), *[(m.x1, m.y1) for m in run]]
    closed = len(points) >= 4 and math.dist(points[0], points[-1]) < 1e-3
    line = LinearRing(points[:-1]) if closed else LineString(points)
    return line.buffer(width / 2)


def layer_fills(
    gcode: bytes, wall: Polygon, *, first_layer_mm: float = 0.25, layer_mm: float = 0.2
) -> list[LayerFill]:
    """Coverage and double coverage of `wall` (bed coordinates) on every layer."""
    by_layer: dict[int, list[Extrusion]] = {}
    for move in extrusions(gcode):
        if move.layer is not None and move.kind != "Skirt/Brim":
            by_layer.setdefault(move.layer, []).append(move)
    area = wall.area
    fills = []
    for layer, moves in sorted(by_layer.items()):
        height = first_layer_mm if layer == 0 else layer_mm
        runs = _paths(moves)
        full = shapely.union_all([_band(r, height, BULGE * height) for r in runs])
        flat = [_band(r, height, 0.0) for r in runs]
        tree = shapely.STRtree(flat)
        pairs = tree.query(flat, predicate="intersects")
        overlaps = [
            flat[i].intersection(flat[j]) for i, j in zip(*pairs.tolist(), strict=True) if i < j
        ]
        twice = shapely.union_all(overlaps).area if overlaps else 0.0
        fills.append(LayerFill(layer, full.intersection(wall).area / area, twice / area))
    return fills
