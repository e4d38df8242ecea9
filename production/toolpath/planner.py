"""The slicer's entry point: STL bytes and a printer profile in, G-code and its numbers out."""

from collections.abc import Iterator
from dataclasses import dataclass

from microfactory.errors import Rejected
from production.toolpath import gcode, parallel, paths, slicing
from production.toolpath.profile import FdmProfile

ENGINE = "microfactory-fdm 0.7"  # part of every toolpath's cache key: bump on output changes


@dataclass(frozen=True)
class Toolpath:
    gcode: bytes
    layers: int
    filament_mm: float
    filament_g: float
    estimated_time_s: float
    engine: str


def plan_toolpath(stl: bytes, profile: FdmProfile, *, arranged: bool = False) -> Toolpath:
    """Slice a binary or ASCII STL into G-code for the profile's printer.

    The part is centred on the bed; an `arranged` STL (a plate: copies already placed in bed
    coordinates, production.plates) is sliced where it stands. Pure and deterministic: the
    same bytes and profile give byte-identical G-code, so a second call only repeats the
    work. Raises Rejected for a mesh that cannot be printed.
    """
    mesh = slicing.load_mesh(stl)
    mesh = slicing.keep_on_bed(mesh, profile) if arranged else slicing.place_on_bed(mesh, profile)
    slices = slicing.slice_layers(mesh, profile)
    start = gcode.purge_line(profile)[-1]
    # Planned in a child process while this one writes the G-code (parallel.py): the same
    # plans, so the same bytes.
    layers = parallel.planned_layers(slices, profile, start=(float(start[0]), float(start[1])))
    printed = [False]  # whether any layer has a path besides the skirt

    def noting(plans: Iterator[paths.LayerPlan]) -> Iterator[paths.LayerPlan]:
        for plan in plans:
            if not printed[0]:
                printed[0] = any(path.kind != paths.Kind.SKIRT for path in plan.paths)
            yield plan

    program = gcode.write_program(noting(layers), profile, engine=ENGINE, layer_count=len(slices))
    if not printed[0]:
        raise Rejected(
            f"no wall of the part is wide enough for one {profile.line_width_mm:g} mm line"
        )
    return Toolpath(
        gcode=program.text.encode("ascii"),
        layers=program.layers,
        filament_mm=program.filament_mm,
        filament_g=program.filament_g,
        estimated_time_s=program.estimated_time_s,
        engine=ENGINE,
    )
