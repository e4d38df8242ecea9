"""The geometry child: runs one CadQuery script inside the sandbox and writes its outputs.

Started by catalog.geometry.sandbox as ``python -I -B <this file>`` with the request on
stdin. It imports nothing from the project (the sandbox only exposes this directory and
the interpreter), and imports CadQuery only once it builds, so that the parent can import
the file-name constants below without loading OpenCascade.

Everything it has to say goes into RESULT_FILE in the working directory:
``{"outcome": "built", "bbox_mm": [...], "volume_mm3": ..., "area_mm2": ...}``,
``{"outcome": "rejected", "message": ...}`` when the script cannot make a part with these
parameters, or ``{"outcome": "memory" | "output", "message": ...}`` when a limit was hit.
No result file at all means the child crashed or was killed.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import sys
import traceback
from typing import Any

STEP_FILE = "part.step"
STL_FILE = "part.stl"
SVG_FILE = "part.svg"
RESULT_FILE = "result.json"

# cqgi compiles scripts under this file name; frames with it are the script's own lines.
_SCRIPT_FILENAME = "<cqscript>"

# The traveler drawing: isometric, from the front right and above, +Z up the page.
_VIEW_FROM = (1.0, -1.0, 1.0)
_VIEW_RIGHT = (1.0, 1.0, 0.0)  # square to _VIEW_FROM and horizontal
_SVG_OPTIONS = {
    "width": 600,
    "height": 450,
    "marginLeft": 40,
    "marginTop": 40,
    "projectionDir": _VIEW_FROM,
    "showAxes": False,
    "showHidden": True,
    "strokeColor": (20, 20, 20),
    "hiddenColor": (170, 170, 170),
}


class ScriptRefused(Exception):
    """The script ran but cannot give a part for these parameters."""


def main() -> int:
    request = json.load(sys.stdin)
    try:
        result = _build(request)
    except ScriptRefused as refusal:
        result = {"outcome": "rejected", "message": str(refusal)}
    except MemoryError:
        result = {"outcome": "memory", "message": "out of memory"}
    except OSError as error:
        if error.errno != errno.EFBIG:
            raise
        result = {"outcome": "output", "message": "output file too large"}
    with open(RESULT_FILE, "w", encoding="utf-8") as result_file:
        json.dump(result, result_file)
    return 0


def _build(request: dict[str, Any]) -> dict[str, Any]:
    import cadquery as cq
    from cadquery import cqgi
    from OCP.IFSelect import IFSelect_ReturnStatus

    try:
        model = cqgi.parse(request["script"])
    except SyntaxError as error:
        raise ScriptRefused(
            f"the script has a syntax error on line {error.lineno}: {error.msg}"
        ) from None
    try:
        build = model.build(build_parameters=request["parameters"])
    except SystemExit:  # cqgi catches Exception only
        raise ScriptRefused("the script called exit()") from None
    if not build.success:
        _raise_for_script_error(build.exception)
    if not build.results:
        raise ScriptRefused("the script did not call show_object()")

    solids = [solid for result in build.results for solid in _solids(cq, result.shape)]
    if not solids:
        raise ScriptRefused("the script's result contains no solid")
    if not all(solid.isValid() for solid in solids):
        raise ScriptRefused("the script produced an invalid solid (OpenCascade shape check failed)")
    shape = solids[0] if len(solids) == 1 else cq.Compound.makeCompound(solids)
    volume = shape.Volume()
    if volume <= 0:
        raise ScriptRefused("the script produced a solid with no volume")

    options = request["options"]
    measurements = {
        "outcome": "built",
        "bbox_mm": _exact_size(shape),
        "volume_mm3": volume,
        "area_mm2": shape.Area(),
    }
    step_written = shape.exportStep(STEP_FILE) == IFSelect_ReturnStatus.IFSelect_RetDone
    _check_written(STEP_FILE, step_written)
    # relative=False: the tolerance is a distance in millimetres, not a share of each edge.
    stl_written = shape.exportStl(
        STL_FILE,
        tolerance=options["stl_tolerance_mm"],
        angularTolerance=options["stl_angular_tolerance"],
        ascii=False,
        relative=False,
    )
    _check_written(STL_FILE, stl_written)
    # Python raises EFBIG itself when RLIMIT_FSIZE stops this write.
    with open(SVG_FILE, "w", encoding="utf-8") as svg_file:
        svg_file.write(_drawing(cq, shape))
    return measurements


def _check_written(path: str, written: bool) -> None:
    """OpenCascade's writers report failure with a status, not an exception."""
    if written:
        return
    file_size_limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if os.path.exists(path) and os.path.getsize(path) >= file_size_limit:
        raise OSError(errno.EFBIG, "file too large", path)
    raise RuntimeError(f"OpenCascade could not write {path}")


def _drawing(cq: Any, shape: Any) -> str:
    """The SVG line drawing, hidden edges in grey.

    getSVG takes only a view direction and lets OpenCascade choose which way is up the
    page, which often puts +Z sideways. So the shape is first turned so that our view
    frame lands on the frame getSVG will use.
    """
    from OCP.gp import gp_Ax2, gp_Ax3, gp_Dir, gp_Pnt, gp_Trsf

    ours = gp_Ax2(gp_Pnt(), gp_Dir(*_VIEW_FROM), gp_Dir(*_VIEW_RIGHT))
    theirs = gp_Ax2(gp_Pnt(), gp_Dir(*_VIEW_FROM))
    turn = gp_Trsf()
    turn.SetDisplacement(gp_Ax3(ours), gp_Ax3(theirs))
    return cq.exporters.getSVG(shape.moved(cq.Location(turn)), _SVG_OPTIONS)


def _exact_size(shape: Any) -> list[float]:
    """Extents from the exact surfaces: Shape.BoundingBox() would include the mesh's sag."""
    from OCP.Bnd import Bnd_Box
    from OCP.BRepBndLib import BRepBndLib

    box = Bnd_Box()
    BRepBndLib.AddOptimal_s(shape.wrapped, box, False, False)  # no triangulation, no tolerances
    x_min, y_min, z_min, x_max, y_max, z_max = box.Get()
    # Rounded to 0.1 µm: the exact box still carries 1e-7 mm of modelling tolerance.
    return [round(x_max - x_min, 4), round(y_max - y_min, 4), round(z_max - z_min, 4)]


def _solids(cq: Any, shown: Any) -> list[Any]:
    """Every solid in one show_object() argument: a Workplane, a Shape or an Assembly."""
    if isinstance(shown, cq.Workplane):
        return [
            solid
            for value in shown.vals()
            if isinstance(value, cq.Shape)
            for solid in value.Solids()
        ]
    if isinstance(shown, cq.Assembly):
        return list(shown.toCompound().Solids())
    if isinstance(shown, cq.Shape):
        return list(shown.Solids())
    return []


def _raise_for_script_error(error: BaseException | None) -> None:
    """Turn cqgi's captured exception into a refusal, or a limit the parent reports."""
    if isinstance(error, MemoryError) or "OutOfMemory" in type(error).__name__:
        raise MemoryError
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        raise error
    if error is None:
        raise ScriptRefused("the script failed without an error message")
    text = str(error).strip() or "(no message)"
    line = _script_line(error)
    where = f" on line {line}" if line else ""
    raise ScriptRefused(f"the script failed{where}: {type(error).__name__}: {text}")


def _script_line(error: BaseException) -> int | None:
    """The innermost line of the script itself in the error's traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    lines = [frame.lineno for frame in frames if frame.filename == _SCRIPT_FILENAME]
    return lines[-1] if lines else None


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: tearing down OpenCascade's modules takes 0.7 s, a quarter
    # of a typical build. Every output file is closed by now.
    os._exit(status)
