"""The geometry child: builds one part inside the sandbox and writes its outputs.

Started by catalog.geometry.sandbox as ``python -I -B <this file>`` with the request on
stdin. It imports nothing from the project (the sandbox only exposes this directory and
the interpreter), and imports CadQuery only once it builds, so that the parent can import
the file-name constants below without loading OpenCascade.

The request's ``mode`` says what to build from:
``script``: run a CadQuery script (cqgi) with the parameters;
``step``: read MODEL_STEP_FILE (an uploaded STEP model) and export it like a script's result;
``stl``: read MODEL_STL_FILE (an uploaded mesh) with trimesh, check it, and pass it through
with a GLB and a line drawing made from the mesh itself (no STEP: a mesh has no exact shape);
``measure``: run a CadQuery script once per parameter set in ``configurations`` and only
measure each solid (the quote estimator's samples: one OpenCascade import for them all).

Everything it has to say goes into RESULT_FILE in the working directory:
``{"outcome": "built", "bbox_mm": [...], "volume_mm3": ..., "area_mm2": ...}``,
``{"outcome": "rejected", "message": ...}`` when the script cannot make a part with these
parameters, or ``{"outcome": "memory" | "output" | "processes", "message": ...}`` when a
limit was hit. ``measure`` writes ``{"outcome": "measured", "results": [...]}``, one entry per
configuration: its ``bbox_mm`` and ``volume_mm3``, or ``{"rejected": message}``. Before the
request, the first line on stdin holds the sandbox settings (process limit, the uid to run as).
No result file at all means the child crashed or was killed.

``--warm``: a zygote for catalog.geometry.warm. It imports CadQuery and OpenCascade once,
then serves build requests framed on stdin (4-byte big-endian length, then the bytes: a JSON
header, then the request), forking one build process per request from its untouched state,
so nothing of one build (module state, OpenCascade's globals, files in /tmp, processes it
left behind) is seen by the next. It answers each with one frame on stdout:
``{"returncode": N, "clean": bool}`` (``clean``: every process of the build is gone); the
build's outputs are in its working directory, as above. ``{"ready": true}`` comes first,
once the imports are done.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
from typing import Any, TypedDict, cast

STEP_FILE = "part.step"
STL_FILE = "part.stl"
SVG_FILE = "part.svg"
GLB_FILE = "part.glb"
RESULT_FILE = "result.json"
MODEL_STEP_FILE = "model.step"  # an uploaded static model, written here by the parent
MODEL_STL_FILE = "model.stl"
# A side thinner than this is no part: a zero-thickness box or a sheet left by a bad
# parameter. 0.01 mm is far below any nozzle or tool, far above OpenCascade's 1e-7 mm.
MIN_EXTENT_MM = 0.01

# cqgi compiles scripts under this file name; frames with it are the script's own lines.
_SCRIPT_FILENAME = "<cqscript>"

# The traveler drawing: isometric, from the front right and above, +Z up the page.
_VIEW_FROM = (1.0, -1.0, 1.0)
_VIEW_RIGHT = (1.0, 1.0, 0.0)  # square to _VIEW_FROM and horizontal


class _SvgOptions(TypedDict):
    """The options of CadQuery's getSVG that we set (its own names)."""

    width: int
    height: int
    marginLeft: int
    marginTop: int
    projectionDir: tuple[float, float, float]
    showAxes: bool
    showHidden: bool
    strokeColor: tuple[int, int, int]
    hiddenColor: tuple[int, int, int]


_SVG_OPTIONS: _SvgOptions = {
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


_GLB_COLOUR = (0.62, 0.66, 0.72)  # a neutral grey-blue for the browser viewer
_DRAWING_MAX_EDGES = 200_000  # a drawing of an uploaded mesh stays a few MB at most


class ScriptRefused(Exception):
    """The script ran but cannot give a part for these parameters."""


class ProcessLimit(Exception):
    """The build could not start another process or thread (RLIMIT_NPROC)."""


def main() -> int:
    if sys.argv[1:] == ["--warm"]:
        return _zygote()
    _enter_sandbox(json.loads(sys.stdin.readline()))
    return _serve(json.load(sys.stdin))


def _serve(request: dict[str, Any]) -> int:
    """Build one request in the working directory and write its verdict (RESULT_FILE)."""
    leader = os.getpid()
    try:
        result = _build(request)
    except ScriptRefused as refusal:
        result = {"outcome": "rejected", "message": str(refusal)}
    except ProcessLimit:
        result = {"outcome": "processes", "message": "too many processes or threads"}
    except MemoryError:
        result = {"outcome": "memory", "message": "out of memory"}
    except OSError as error:
        if error.errno != errno.EFBIG:
            raise
        result = {"outcome": "output", "message": "output file too large"}
    if os.getpid() != leader:
        # A process the script forked came back here: only the child itself has a verdict,
        # and forks writing theirs at once would leave the parent a garbled file.
        os._exit(1)
    with open(RESULT_FILE, "w", encoding="utf-8") as result_file:
        json.dump(result, result_file)
    return 0


def _enter_sandbox(settings: dict[str, int]) -> None:
    """The parent's first line: the process limit, and as root the build's own uid.

    Done before anything of the script runs. As root with only CAP_SETUID and CAP_SETGID
    left (bubblewrap dropped the rest), setuid() drops those too; no_new_privs and nosuid
    mounts keep them from coming back.
    """
    if "max_processes" in settings:
        limit = settings["max_processes"]
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    if "uid" in settings:
        os.setgroups([])
        os.setgid(settings["uid"])
        os.setuid(settings["uid"])


def _build(request: dict[str, Any]) -> dict[str, Any]:
    mode = request.get("mode", "script")
    if mode == "stl":
        return _pass_mesh_through(request["options"])
    import cadquery as cq

    if mode == "measure":
        return _measure(cq, request)
    if mode == "step":
        try:
            shown = [cq.importers.importStep(MODEL_STEP_FILE)]
        except Exception as error:  # OpenCascade reports unreadable files in many ways
            raise ScriptRefused(f"the STEP file could not be read: {_short(error)}") from None
        return _export(cq, _one_solid(cq, shown, what="the STEP file"), request["options"])
    shown = _run_script(cq, request)
    return _export(cq, _one_solid(cq, shown, what="the script"), request["options"])


def _measure(cq: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Volume and exact size of the solid each parameter set gives, exactly as a build
    measures them (the same checks, the same bounding box), without exporting anything."""
    results: list[dict[str, Any]] = []
    for parameters in request["configurations"]:
        try:
            shown = _run_script(cq, {"script": request["script"], "parameters": parameters})
            shape = _one_solid(cq, shown, what="the script")
        except ScriptRefused as refusal:
            results.append({"rejected": str(refusal)})
            continue
        results.append({"bbox_mm": _exact_size(shape), "volume_mm3": shape.Volume()})
    return {"outcome": "measured", "results": results}


def _run_script(cq: Any, request: dict[str, Any]) -> list[Any]:
    """The objects the script showed with these parameters."""
    from cadquery import cqgi

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
    return [result.shape for result in build.results]


def _one_solid(cq: Any, shown: list[Any], *, what: str) -> Any:
    """The one solid a part is made of. Solids that touch or overlap are fused into one;
    separate ones are refused, since a job makes one part."""
    solids = [solid for item in shown for solid in _solids(cq, item)]
    if not solids:
        where = "the script's result" if what == "the script" else what
        raise ScriptRefused(f"{where} contains no solid")
    if not all(solid.isValid() for solid in solids):
        raise ScriptRefused(f"{what} produced an invalid solid (OpenCascade shape check failed)")
    if len(solids) > 1:
        fused = solids[0].fuse(*solids[1:]).clean()
        pieces = fused.Solids()
        if len(pieces) != 1:
            shows = "shows" if what == "the script" else "holds"
            raise ScriptRefused(
                f"{what} {shows} {len(pieces)} solids; a part must be one solid "
                "(union them, or make them touch)"
            )
        solids = list(pieces)
    shape = solids[0]
    volume = shape.Volume()
    if not math.isfinite(volume) or volume <= 0:
        raise ScriptRefused(f"{what} produced a solid with no volume")
    size = _exact_size(shape)
    if not all(math.isfinite(side) for side in size):
        raise ScriptRefused(f"{what} produced a solid of no finite size")
    if min(size) < MIN_EXTENT_MM:
        sides = " x ".join(f"{side:g}" for side in size)
        raise ScriptRefused(
            f"{what} produced a degenerate solid, {sides} mm: every side must be at least "
            f"{MIN_EXTENT_MM:g} mm"
        )
    return shape


def _export(cq: Any, shape: Any, options: dict[str, Any]) -> dict[str, Any]:
    """STEP, STL, GLB and the SVG drawing of one solid, and its measurements."""
    from OCP.IFSelect import IFSelect_ReturnStatus

    volume = shape.Volume()
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
    # Same tolerances as the STL, so the writer reuses its triangulation instead of meshing
    # again. glTF is +Y up: CadQuery's exporter turns the part; units stay millimetres.
    from cadquery.occ_impl.exporters.assembly import exportGLTF

    assembly = cq.Assembly().add(shape, name="part", color=cq.Color(*_GLB_COLOUR))
    glb_written = exportGLTF(
        assembly,
        GLB_FILE,
        binary=True,
        tolerance=options["stl_tolerance_mm"],
        angularTolerance=options["stl_angular_tolerance"],
    )
    _check_written(GLB_FILE, bool(glb_written))
    # Python raises EFBIG itself when RLIMIT_FSIZE stops this write.
    with open(SVG_FILE, "w", encoding="utf-8") as svg_file:
        svg_file.write(_drawing(cq, shape))
    return measurements


def _pass_mesh_through(options: dict[str, Any]) -> dict[str, Any]:
    """An uploaded STL: checked with trimesh, written back as binary STL with a GLB and a
    drawing of its feature edges. No STEP: a mesh has no exact shape to export."""
    import numpy
    import trimesh

    try:
        mesh = trimesh.load_mesh(MODEL_STL_FILE, file_type="stl")
    except MemoryError:
        raise
    except Exception as error:  # trimesh reports malformed files with assorted exceptions
        raise ScriptRefused(f"the STL file could not be read: {_short(error)}") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ScriptRefused("the STL file holds no triangles")
    if len(mesh.faces) > options["max_triangles"]:
        raise ScriptRefused(
            f"the STL file has {len(mesh.faces)} triangles; at most "
            f"{options['max_triangles']} are allowed"
        )
    bodies = mesh.body_count
    if bodies > 1:
        raise ScriptRefused(
            f"the STL file holds {bodies} separate bodies; a part must be one solid"
        )
    volume = float(abs(mesh.volume)) if mesh.is_watertight else 0.0
    measurements = {
        "outcome": "built",
        "bbox_mm": [round(float(size), 4) for size in mesh.extents],
        "volume_mm3": volume,
        "area_mm2": float(mesh.area),
    }
    with open(STL_FILE, "wb") as stl_file:
        stl_file.write(cast(bytes, mesh.export(file_type="stl")))  # binary formats are bytes
    # glTF is +Y up, like the GLB CadQuery writes for scripts: turn -90° about X.
    turned = mesh.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(-numpy.pi / 2, [1, 0, 0]))
    with open(GLB_FILE, "wb") as glb_file:
        glb_file.write(cast(bytes, turned.export(file_type="glb")))
    with open(SVG_FILE, "w", encoding="utf-8") as svg_file:
        svg_file.write(_mesh_drawing(numpy, mesh))
    return measurements


def _mesh_drawing(numpy: Any, mesh: Any) -> str:
    """The mesh's feature edges (a fold over 20°, an open edge, or the outline of a smooth
    surface as seen from the view) in the same isometric view as the drawings of scripts,
    without hidden-line removal."""
    view_from = numpy.array(_VIEW_FROM) / numpy.linalg.norm(_VIEW_FROM)
    facing = mesh.face_normals @ view_from > 0
    pairs = mesh.face_adjacency
    outline = facing[pairs[:, 0]] != facing[pairs[:, 1]]
    folds = (mesh.face_adjacency_angles > numpy.radians(20)) | outline
    open_edges = mesh.edges_unique[numpy.bincount(mesh.edges_unique_inverse) == 1]
    edges = numpy.vstack([mesh.face_adjacency_edges[folds], open_edges])[:_DRAWING_MAX_EDGES]
    right = numpy.array(_VIEW_RIGHT) / numpy.linalg.norm(_VIEW_RIGHT)
    up = numpy.cross(view_from, right)
    points = numpy.column_stack([mesh.vertices @ right, -(mesh.vertices @ up)])
    width, height = _SVG_OPTIONS["width"], _SVG_OPTIONS["height"]
    margin_x, margin_y = _SVG_OPTIONS["marginLeft"], _SVG_OPTIONS["marginTop"]
    low, high = points.min(axis=0), points.max(axis=0)
    span = numpy.maximum(high - low, 1e-9)
    scale = min((width - 2 * margin_x) / span[0], (height - 2 * margin_y) / span[1])
    points = (points - low) * scale + [margin_x, margin_y]
    path = " ".join(
        f"M{points[a][0]:.2f} {points[a][1]:.2f}L{points[b][0]:.2f} {points[b][1]:.2f}"
        for a, b in edges
    )
    r, g, b = _SVG_OPTIONS["strokeColor"]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><path d="{path}" fill="none" '
        f'stroke="rgb({r},{g},{b})" stroke-width="0.7"/></svg>'
    )


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


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
    svg: str = cq.exporters.getSVG(shape.moved(cq.Location(turn)), _SVG_OPTIONS)
    return svg


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
    if isinstance(error, OSError) and error.errno == errno.EAGAIN:
        raise ProcessLimit  # fork() or clone() refused: RLIMIT_NPROC
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
        raise ProcessLimit
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


# --- the warm zygote (catalog.geometry.warm) ---------------------------------------------

_FRAME = struct.Struct(">I")
_FRAME_MAX_BYTES = 64 * 1024 * 1024  # a request: a script, its parameters, options
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_SCRATCH_DIRS = ("/tmp", "/dev/shm")  # writable places outside the build's own directory
_REAP_ATTEMPTS = 100


def _zygote() -> int:
    """Serve builds until stdin closes: import once, fork per build (module docstring)."""
    libc = ctypes.CDLL(None, use_errno=True)
    # Not dumpable: a build (the same uid as this process without root) can then neither
    # ptrace it nor open /proc/<zygote>/mem or its fds (the request pipe), so it cannot
    # leave anything behind in the process every later build is forked from.
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    _warm_imports()
    _write_frame({"ready": True})
    while True:
        header_bytes = _read_frame()
        request_bytes = _read_frame()
        if header_bytes is None or request_bytes is None:
            return 0  # the worker closed the pool
        header = json.loads(header_bytes)
        _write_frame(_serve_forked(libc, header, request_bytes))


def _warm_imports() -> None:
    """What a build imports, so that a forked build finds it loaded. Only imports: running
    OpenCascade here could start its thread pool, which a forked child would not have."""
    import cadquery  # noqa: F401
    import numpy  # noqa: F401
    import trimesh  # noqa: F401
    from cadquery import cqgi  # noqa: F401
    from cadquery.occ_impl.exporters.assembly import exportGLTF  # noqa: F401
    from OCP.Bnd import Bnd_Box  # noqa: F401
    from OCP.BRepBndLib import BRepBndLib  # noqa: F401
    from OCP.gp import gp_Ax2  # noqa: F401
    from OCP.IFSelect import IFSelect_ReturnStatus  # noqa: F401


def _serve_forked(libc: Any, header: dict[str, Any], request_bytes: bytes) -> dict[str, Any]:
    """Fork one build, wait for it, then make sure nothing of it is left."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = _build_forked(libc, header, request_bytes)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    clean = _reap(header["settings"].get("uid"))
    _clear_scratch()
    return {"returncode": os.waitstatus_to_exitcode(status), "clean": clean}


def _build_forked(libc: Any, header: dict[str, Any], request_bytes: bytes) -> int:
    """In the forked build process: cut it off from the request pipes, enter its working
    directory, take its limits, then build as a cold child would."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stdout and stderr: the log the worker reads; the answer pipe is gone
    os.close(devnull)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    directory = header["dir"]
    if not isinstance(directory, str) or "/" in directory or directory in ("", ".", ".."):
        raise ValueError(f"bad working directory {directory!r}")
    os.chdir(directory)
    home = os.getcwd()
    os.environ["HOME"] = os.environ["TMPDIR"] = home
    tempfile.tempdir = None  # asked again: TMPDIR is this build's directory now
    # CPU time counts from the fork: the zygote's imports are not the build's.
    cpu_s = int(header["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    _enter_sandbox(header["settings"])
    return _serve(json.loads(request_bytes))


def _reap(uid: int | None) -> bool:
    """Kill every process the build left (it may have forked and left its group); True when
    none is left. kill(-1) reaches every process of the sandbox's PID namespace the caller
    may signal, except its init and the caller: as root, the build ran as its own uid, which
    root without CAP_KILL cannot signal, so a process of that uid does it.

    Only inside bubblewrap's PID namespace, where this process is 2 under bubblewrap's init:
    anywhere else kill(-1) would reach the host's processes. There it answers False, and the
    worker replaces the whole sandbox instead (killing it kills all inside)."""
    if (os.getpid(), os.getppid()) != (2, 1):
        return False
    for _ in range(_REAP_ATTEMPTS):
        if uid is None:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            reaper = os.fork()
            if reaper == 0:
                try:
                    os.setgroups([])
                    os.setgid(uid)
                    os.setuid(uid)
                    os.kill(-1, signal.SIGKILL)
                except BaseException:
                    pass
                os._exit(0)
            os.waitpid(reaper, 0)
        if not _others_alive():
            return True
        time.sleep(0.01)
    return False


def _others_alive() -> bool:
    """Whether any process but the sandbox's init and this one is alive (not a zombie)."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, os.getpid()):
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state not in (b"Z", b"X"):
            return True
    return False


def _clear_scratch() -> None:
    """Empty the sandbox's own writable places, so the next build finds nothing there."""
    for directory in _SCRATCH_DIRS:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(directory, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _read_frame() -> bytes | None:
    header = _read_exactly(_FRAME.size)
    if header is None:
        return None
    (length,) = _FRAME.unpack(header)
    if length > _FRAME_MAX_BYTES:
        raise ValueError(f"request frame of {length} bytes")
    return _read_exactly(length)


def _read_exactly(count: int) -> bytes | None:
    chunks: list[bytes] = []
    while count:
        chunk = os.read(0, count)
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _write_frame(answer: dict[str, Any]) -> None:
    data = json.dumps(answer).encode()
    os.write(1, _FRAME.pack(len(data)) + data)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: tearing down OpenCascade's modules takes 0.7 s, a quarter
    # of a typical build. Every output file is closed by now.
    os._exit(status)
