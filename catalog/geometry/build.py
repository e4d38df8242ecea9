"""Building a part's geometry in the sandbox, as plain values: from a CadQuery script, or
from an uploaded static model (STEP converted, STL passed through)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from catalog.parameters import (
    ParameterError,
    ParameterSpec,
    ParameterValue,
    Rule,
    SchemaError,
    validate_parameters,
)
from microfactory.errors import Rejected

from .child import (
    GLB_FILE,
    MIN_EXTENT_MM,
    MODEL_STEP_FILE,
    MODEL_STL_FILE,
    RESULT_FILE,
    STEP_FILE,
    STL_FILE,
    SVG_FILE,
)
from .drawing import DrawingInvalid, drawing_clean
from .sandbox import BuildFailed, BuildLimits, ChildExit
from .uploads import model_format
from .warm import run_child

# Bump when the child's outputs change for the same script (SVG view, export options), so
# that artifacts cached under ENGINE_VERSION are built again. 2: GLB, touching solids fused.
# 3: drawings cleaned to an allow-list (drawing.py), so no cached drawing escapes the cleaning.
_OUTPUTS_REVISION = 3
SCRIPT, STATIC = "script", "static"  # PartRevision.Kind values
_RESULT_MAX_BYTES = 64 * 1024
_MESSAGE_MAX_CHARS = 300


def _engine_version() -> str:
    try:
        return f"cadquery {version('cadquery')}, OCP {version('cadquery-ocp')}"
    except PackageNotFoundError:
        return "cadquery not installed"


ENGINE_VERSION = f"{_engine_version()}, outputs {_OUTPUTS_REVISION}"


@dataclass(frozen=True)
class Geometry:
    step: bytes = field(repr=False)  # empty for a part made from an uploaded STL mesh
    stl: bytes = field(repr=False)  # binary STL, millimetres
    svg: str = field(repr=False)  # line drawing, hidden edges in grey, for travelers
    glb: bytes = field(repr=False)  # binary glTF for the browser viewer: millimetres, +Y up
    bbox_mm: tuple[float, float, float]
    volume_mm3: float
    area_mm2: float
    sandbox: str  # "bwrap" or "rlimits": the isolation actually used


def check_parameters(
    *,
    specs: Sequence[ParameterSpec],
    rules: Sequence[Rule],
    parameters: Mapping[str, object],
) -> dict[str, ParameterValue]:
    """The parameters, canonical, if they fit the revision's schema and its own rules; else
    Rejected with the reason ("Bore diameter 30 mm must be less than outer diameter - 4 = 6
    mm").

    Intake checks them too, but a build must not trust its caller: a line written before a
    rule existed, a preview, a command or a stored artifact would otherwise make a part the
    revision forbids. build_revision runs this first; the pipeline's build step also runs it
    before it reuses a stored build.
    """
    try:
        return validate_parameters(specs, parameters, rules=rules)
    except ParameterError as error:
        # Its text says each message once (a rule is filed under every field it names).
        raise Rejected(f"the parameters break the revision's rules: {error}") from None
    except SchemaError as error:
        raise Rejected(f"the revision's rules cannot be checked: {error}") from None


def build_revision(
    *,
    kind: str,
    script: str,
    model_bytes: bytes,
    parameters: Mapping[str, float | int | str | bool],
    specs: Sequence[ParameterSpec],
    rules: Sequence[Rule],
    limits: BuildLimits,
) -> Geometry:
    """A revision's geometry, whatever it is made from: a CadQuery script run with these
    parameters, or a static model (STEP: converted; STL: checked and passed through, with no
    STEP). The parameters are checked against the revision's schema (`specs`) and `rules`
    first (check_parameters). Raises Rejected or BuildFailed as build_geometry does. Building
    twice gives the same STL, SVG and GLB."""
    checked = check_parameters(specs=specs, rules=rules, parameters=parameters)
    if kind == SCRIPT:
        return build_geometry(script, checked, limits=limits)
    if kind != STATIC:
        raise BuildFailed(f"unknown revision kind {kind!r}")
    if not model_bytes:
        raise Rejected("the static model has no file")
    fmt = model_format(model_bytes)
    model = (MODEL_STEP_FILE if fmt == "step" else MODEL_STL_FILE, model_bytes)
    return _build({"mode": fmt}, model=model, limits=limits)


def build_geometry(
    script: str, parameters: Mapping[str, float | int | str | bool], *, limits: BuildLimits
) -> Geometry:
    """Run a CadQuery script (cqgi: top-level parameter assignments + show_object) with these
    parameter values in a sandboxed subprocess. Never imports CadQuery in this process.

    Raises Rejected when the script cannot make a part with these values, BuildFailed when
    the build itself could not finish (time, memory or output limit, crash, no sandbox).
    A second call builds again and gives the same STL and SVG bytes; the STEP file differs
    only in the time stamp OpenCascade writes into its header.
    """
    return _build(
        {"mode": SCRIPT, "script": script, "parameters": dict(parameters)},
        model=None,
        limits=limits,
    )


@dataclass(frozen=True)
class Measurement:
    """What a build of one configuration measures, without its files."""

    bbox_mm: tuple[float, float, float]
    volume_mm3: float


MEASURE_BATCH_MAX = 500  # configurations measured by one child; the result file stays small


def measure_geometry(
    script: str,
    configurations: Sequence[Mapping[str, float | int | str | bool]],
    *,
    limits: BuildLimits,
) -> list[Measurement | Rejected]:
    """Run a CadQuery script once per parameter set in one sandboxed child and measure each
    solid as build_geometry would (same volume, same exact bounding box), writing no files.

    One OpenCascade import for the whole batch: measuring 100 configurations of a seed part
    takes seconds where 100 builds take minutes. A configuration the script refuses is its
    Rejected in the list; a limit hit or a crash fails the whole batch (BuildFailed).
    `limits.timeout_s` and `cpu_s` are for the whole batch.
    """
    if len(configurations) > MEASURE_BATCH_MAX:
        raise ValueError(f"at most {MEASURE_BATCH_MAX} configurations a batch")
    request = {
        "mode": "measure",
        "script": script,
        "configurations": [dict(values) for values in configurations],
        "options": {},
    }
    payload = json.dumps(request, allow_nan=False).encode()
    with tempfile.TemporaryDirectory(
        prefix="microfactory-measure-", ignore_cleanup_errors=True
    ) as tmp:
        child = run_child(payload, workdir=Path(tmp), limits=limits)
        # Room for each configuration's numbers or its one-line refusal.
        result = _read_result(
            Path(tmp), child, limits, max_bytes=_RESULT_MAX_BYTES + 1024 * len(configurations)
        )
    if result.get("outcome") != "measured":
        raise BuildFailed(f"geometry child did not measure: {result.get('outcome')!r}")
    entries = result.get("results")
    if not isinstance(entries, list) or len(entries) != len(configurations):
        raise BuildFailed("geometry child measured another number of configurations")
    measured: list[Measurement | Rejected] = []
    for entry in entries:
        try:
            if "rejected" in entry:
                measured.append(Rejected(_one_line(str(entry["rejected"]))))
                continue
            x, y, z = (float(size) for size in entry["bbox_mm"])
            volume = float(entry["volume_mm3"])
            _check_measurements((x, y, z), volume, mesh=False)
        except Rejected as refusal:
            measured.append(refusal)
            continue
        except (KeyError, TypeError, ValueError) as error:
            raise BuildFailed(f"geometry child wrote malformed measurements: {error!r}") from None
        measured.append(Measurement(bbox_mm=(x, y, z), volume_mm3=volume))
    return measured


def _build(
    request: dict[str, Any], *, model: tuple[str, bytes] | None, limits: BuildLimits
) -> Geometry:
    """Run the child once on this request (and model file) and read its outputs."""
    request["options"] = {
        "stl_tolerance_mm": limits.stl_tolerance_mm,
        "stl_angular_tolerance": limits.stl_angular_tolerance,
        "max_triangles": limits.max_triangles,
    }
    payload = json.dumps(request, allow_nan=False).encode()
    with tempfile.TemporaryDirectory(
        prefix="microfactory-geometry-", ignore_cleanup_errors=True
    ) as tmp:
        workdir = Path(tmp)
        if model is not None:
            (workdir / model[0]).write_bytes(model[1])
        child = run_child(payload, workdir=workdir, limits=limits)
        result = _read_result(workdir, child, limits)
        budget = limits.output_mb * 1024 * 1024
        outputs: list[bytes] = []
        for name in (STEP_FILE, STL_FILE, SVG_FILE, GLB_FILE):
            try:
                output = _read_output(workdir / name, budget - sum(map(len, outputs)))
            except FileNotFoundError:
                if name == STEP_FILE and request["mode"] == "stl":
                    outputs.append(b"")
                    continue
                raise BuildFailed(f"geometry child reported success but wrote no {name}") from None
            if output is None:
                raise BuildFailed(f"geometry outputs exceeded {limits.output_mb} MB")
            outputs.append(output)
        step, stl, svg, glb = outputs
    try:
        # The one place every drawing passes (scripts, STEP and STL uploads; previews, jobs
        # and the admin's test build): what the sandbox wrote is cleaned before anyone keeps it.
        drawing = drawing_clean(svg.decode())
    except (DrawingInvalid, UnicodeDecodeError) as error:
        raise BuildFailed(f"geometry child wrote an unusable drawing: {error}") from None
    try:
        x, y, z = (float(size) for size in result["bbox_mm"])
        volume = float(result["volume_mm3"])
        _check_measurements((x, y, z), volume, mesh=request["mode"] == "stl")
        return Geometry(
            step=step,
            stl=stl,
            svg=drawing,
            glb=glb,
            bbox_mm=(x, y, z),
            volume_mm3=volume,
            area_mm2=float(result["area_mm2"]),
            sandbox=child.sandbox,
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise BuildFailed(f"geometry child wrote malformed outputs: {error!r}") from None


def _check_measurements(bbox: tuple[float, float, float], volume: float, *, mesh: bool) -> None:
    """Refuse a degenerate part whatever the child let through: the child checks the solid
    itself, this checks what it reported. An uploaded mesh may report no volume (one that is
    not watertight: the toolpath step repairs it), a solid may not."""
    if not all(math.isfinite(size) for size in (*bbox, volume)):
        raise Rejected("the part's size or volume is not a finite number")
    if min(bbox) < MIN_EXTENT_MM:
        size = " x ".join(f"{side:g}" for side in bbox)
        raise Rejected(
            f"the part is degenerate: {size} mm (every side must be at least {MIN_EXTENT_MM:g} mm)"
        )
    if volume <= 0 and not mesh:
        raise Rejected("the part has no volume")


def _read_result(
    workdir: Path, child: ChildExit, limits: BuildLimits, *, max_bytes: int = _RESULT_MAX_BYTES
) -> dict[str, Any]:
    """The child's verdict; raises Rejected or BuildFailed unless the part was built (or
    the batch measured)."""
    try:
        raw = _read_output(workdir / RESULT_FILE, max_bytes)
    except FileNotFoundError:
        raise BuildFailed(_describe_exit(child, limits)) from None
    try:
        result = json.loads(raw) if raw is not None else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        raise BuildFailed("geometry child wrote an unreadable result")
    outcome = result.get("outcome")
    if outcome in ("built", "measured"):
        return result
    if outcome == "rejected":
        raise Rejected(_one_line(str(result.get("message", "the script failed"))))
    if outcome == "memory":
        raise BuildFailed(f"geometry build exceeded the {limits.memory_mb} MB memory limit")
    if outcome == "output":
        raise BuildFailed(f"geometry outputs exceeded {limits.output_mb} MB")
    if outcome == "processes":
        raise BuildFailed(_process_message(limits))
    raise BuildFailed(f"geometry child reported an unknown outcome {outcome!r}")


def _process_message(limits: BuildLimits) -> str:
    return f"geometry build stopped: too many processes or threads (limit {limits.max_processes})"


# What a crash by each signal is, in words; the signal's name follows in brackets.
_CRASHES = {
    signal.SIGSEGV: "segfault",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "arithmetic fault",
    signal.SIGABRT: "aborted",
}


def _describe_exit(child: ChildExit, limits: BuildLimits) -> str:
    """Why a child that left no result stopped, in one line."""
    if child.returncode == -signal.SIGXCPU:
        return f"geometry build exceeded the {limits.cpu_s} s CPU time limit"
    log = child.log_tail
    if "MemoryError" in log or "bad_alloc" in log or "Cannot allocate memory" in log:
        return f"geometry build exceeded the {limits.memory_mb} MB memory limit"
    if child.process_limit and (
        "can't start new thread" in log or "Resource temporarily unavailable" in log
    ):
        return _process_message(limits)
    if child.returncode == -signal.SIGXFSZ:
        return f"geometry build wrote a file over the {limits.output_mb} MB output limit"
    if child.returncode == -signal.SIGKILL:
        return (
            f"geometry build was killed (SIGKILL), most likely at the {limits.cpu_s} s CPU "
            f"time limit or by the kernel for memory"
        )
    last_line = next((line for line in reversed(log.splitlines()) if line.strip()), "")
    if child.returncode < 0:
        try:
            crash = signal.Signals(-child.returncode)
            what, name = _CRASHES.get(crash, "killed"), crash.name
        except ValueError:
            what, name = "killed", f"signal {-child.returncode}"
        return _one_line(f"geometry child crashed: {what} ({name}): {last_line or 'no output'}")
    return _one_line(
        f"geometry child exited with status {child.returncode} without a result: "
        f"{last_line or 'no output'}"
    )


def _read_output(path: Path, budget: int) -> bytes | None:
    """Bytes of a regular file the child wrote, or None when it is larger than `budget`.

    O_NOFOLLOW: a script could leave a symlink to a host file here, which this process,
    outside the sandbox, must not read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as error:  # ELOOP: a symlink
        raise BuildFailed(f"geometry child left {path.name} unreadable: {error.strerror}") from None
    with os.fdopen(fd, "rb") as output:
        info = os.fstat(output.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BuildFailed(f"geometry child left {path.name} as something other than a file")
        if info.st_size > budget:
            return None
        return output.read(budget + 1)


def _one_line(text: str) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    if len(line) > _MESSAGE_MAX_CHARS:
        line = line[: _MESSAGE_MAX_CHARS - 1].rstrip() + "…"
    return line
