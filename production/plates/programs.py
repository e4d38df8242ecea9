"""Plates of copies: the plan for N copies of jobs' parts on a machine's bed, and each
plate's program, sliced as one and checked copy by copy.

Pure: meshes and values in, values out; the only I/O is an external slicer.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import shapely
import trimesh
from shapely.geometry.base import BaseGeometry

from production.plates.arrange import Bed, CopyToPlace, arrange, lower_bound_plates
from production.plates.arrange import placed_footprint as moved
from production.plates.meshes import footprint, plate_copies, plate_stl
from production.plates.values import Arrangement, Plate
from production.toolpath import FdmProfile, engines
from production.toolpath.verify import GcodeCheck, verify_plate_gcode


@dataclass(frozen=True)
class PlatePlan:
    """Where every copy goes, and the least number of plates any plan could use."""

    arrangement: Arrangement
    footprints: Mapping[int, BaseGeometry]  # job -> its part's footprint, unplaced
    lower_bound: int

    def to_json(self) -> dict[str, object]:
        return {"lower_bound_plates": self.lower_bound, **self.arrangement.to_json()}


@dataclass(frozen=True)
class PlateProgram:
    """One plate's G-code and what it says: made by one engine, checked copy by copy."""

    number: int  # 1, 2, ... within the plan
    plate: Plate
    gcode: bytes = field(repr=False)
    engine: str
    layers: int
    filament_g: float
    estimated_time_s: int
    verification: GcodeCheck

    def to_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "copies": [p.to_json() for p in self.plate.placements],
            "engine": self.engine,
            "layers": self.layers,
            "filament_g": self.filament_g,
            "estimated_time_s": self.estimated_time_s,
            "verification": self.verification.to_json(),
        }


def plan_copies(
    parts: Mapping[int, trimesh.Trimesh],
    quantities: Mapping[int, int],
    bed: Bed,
    *,
    spacing_mm: float,
    max_plates: int,
) -> PlatePlan:
    """`quantities[job]` copies of each job's part (its mesh in print orientation) on as few
    plates as the fill finds. TooManyPlates when more than `max_plates` are needed; a copy
    no plate can take is in the arrangement's `unplaced`, with the reason."""
    footprints = {job: footprint(parts[job]) for job in sorted(quantities)}
    copies = [
        CopyToPlace(job, n, footprints[job])
        for job in sorted(quantities)
        for n in range(1, quantities[job] + 1)
    ]
    arrangement = arrange(copies, bed, spacing_mm=spacing_mm, max_plates=max_plates)
    area = sum(footprints[c.job].area for c in copies)
    return PlatePlan(arrangement, footprints, lower_bound_plates(area, bed))


def plate_program(
    number: int,
    plate: Plate,
    parts: Mapping[int, trimesh.Trimesh],
    profile: FdmProfile,
    *,
    engine: str,
    timeout_s: float,
    prusaslicer_binary: str = "prusa-slicer",
) -> PlateProgram:
    """Slice the plate's copies as placed and check that the G-code prints every one of them
    inside its own footprint, to its height and volume: Rejected naming the copy otherwise."""
    toolpath = engines.plan(
        plate_stl(plate, parts),
        profile,
        engine=engine,
        timeout_s=timeout_s,
        prusaslicer_binary=prusaslicer_binary,
        arranged=True,
    )
    verification = verify_plate_gcode(
        toolpath.gcode, copies=plate_copies(plate, parts), profile=profile
    )
    return PlateProgram(
        number=number,
        plate=plate,
        gcode=toolpath.gcode,
        engine=toolpath.engine,
        layers=toolpath.layers,
        filament_g=round(toolpath.filament_g, 2),
        estimated_time_s=round(toolpath.estimated_time_s),
        verification=verification,
    )


def plate_map_svg(
    plate: Plate, footprints: Mapping[int, BaseGeometry], bed: Bed, *, labels: Sequence[str]
) -> str:
    """A top view of the bed: each copy's outline where it stands, numbered with `labels`
    (one per placement, in order). Black on white, front edge of the bed at the bottom."""
    width, depth = bed.size_mm
    shapes = []
    for placement, label in zip(plate.placements, labels, strict=True):
        outline = moved(footprints[placement.job], placement)
        centre = shapely.Point(outline.representative_point())
        x0, y0, x1, y1 = outline.bounds
        size = min(12.0, max(3.0, 0.6 * min(x1 - x0, y1 - y0)))  # fits small parts, reads on big
        shapes.append(
            f'<path d="{_path(outline, depth)}"/>'
            f'<text x="{centre.x:.1f}" y="{depth - centre.y:.1f}" font-size="{size:.1f}">'
            f"{escape(label)}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 {width + 4:g} {depth + 4:g}">'
        "<style>path{fill:#ddd;stroke:#000;stroke-width:0.6}"
        "rect{fill:none;stroke:#000;stroke-width:0.8}"
        "text{font-family:sans-serif;font-weight:bold;text-anchor:middle;dominant-baseline:middle}"
        "</style>"
        f'<rect x="0" y="0" width="{width:g}" height="{depth:g}"/>' + "".join(shapes) + "</svg>"
    )


def _path(outline: BaseGeometry, depth: float) -> str:
    """SVG path data of the outline's rings, y turned so the bed's front is at the bottom."""
    rings = []
    for polygon in shapely.get_parts(outline):
        for ring in (polygon.exterior, *polygon.interiors):
            points = " L".join(f"{x:.1f},{depth - y:.1f}" for x, y in ring.coords)
            rings.append(f"M{points} Z")
    return " ".join(rings)
