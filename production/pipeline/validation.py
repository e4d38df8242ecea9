"""Design-for-manufacturing report on a part's mesh, for every candidate machine: pure, no Django.

    mesh bytes -> read (limits, hostile input) -> repair and check integrity -> choose a print
    orientation -> measure walls and gaps -> check each machine -> ValidationReport

Each check has a status (pass / warn / fail), the measured value, the limit and a message
saying what to change. The part is makeable when at least one machine has no failed check;
otherwise validate_part raises ValidationRejected (a Rejected) carrying the whole report.
The modules behind it are in production/pipeline/dfm/; docs/validation.md explains each check.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from microfactory.errors import Rejected
from production.pipeline.dfm.checks import FAIL, PASS, WARN, Budget, Check, Refused, worst
from production.pipeline.dfm.fdm import build_volume_check, fdm_checks, turned_fit
from production.pipeline.dfm.integrity import Solid, make_solid
from production.pipeline.dfm.limits import (
    DEFAULT_MACHINES,
    FDM,
    MachineLimits,
    ValidationLimits,
)
from production.pipeline.dfm.machining import machining_checks
from production.pipeline.dfm.orientation import (
    Orientation,
    candidate_orientations,
    choose,
    ranked,
)
from production.pipeline.dfm.reading import file_size_check, read_stl
from production.pipeline.dfm.thickness import measure
from production.pipeline.dfm.units import UnitGuess, guess_unit

__all__ = [
    "DEFAULT_MACHINES",
    "FAIL",
    "PASS",
    "WARN",
    "Check",
    "MachineLimits",
    "MachineReport",
    "Orientation",
    "ValidationLimits",
    "ValidationRejected",
    "ValidationReport",
    "UnitGuess",
    "dfm_report",
    "validate_part",
]

FORMATS = ("stl", "step")
DEFAULT_LIMITS = ValidationLimits()


@dataclass(frozen=True)
class MachineReport:
    key: str
    process: str
    status: str  # the worst of its checks
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class ValidationReport:
    status: str = PASS  # the worst of `checks`
    readable: bool = True  # False: the bytes are not a mesh we can read at all
    file_format: str = "stl"
    volume_mm3: float = 0.0
    area_mm2: float = 0.0
    # As modelled: routing and the slicer place the part as modelled (see `orientation`).
    extents_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    triangles: int = 0
    bodies: int = 0
    fits: tuple[str, ...] = ()  # machines whose build volume holds the part as modelled
    capable: tuple[str, ...] = ()  # machines on which no check fails
    # The part's own checks, then each machine-specific check as measured on the best machine
    # (the one with the fewest failures and warnings, among those the part fits).
    checks: tuple[Check, ...] = ()
    orientation: Orientation | None = None  # the chosen print orientation (FDM)
    orientation_candidates: tuple[Orientation, ...] = ()
    machines: tuple[MachineReport, ...] = ()
    # Read as millimetres the mesh makes no sense; in this unit it would (see dfm/units.py).
    unit_guess: UnitGuess | None = None
    scale: float = 1.0  # the scale the mesh was checked at (1: as the file says, in mm)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(c.message for c in self.checks if c.status == WARN)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status == FAIL), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ValidationReport":
        """The report Job.dfm_report stores (to_json, through JSON): from_json(to_json(r)) == r.

        A report stored before it named the capable machines counts those it fits as capable.
        """
        orientation = data.get("orientation")
        guess = data.get("unit_guess")
        return cls(
            status=data.get("status", PASS),
            readable=data.get("readable", True),
            file_format=data.get("file_format", "stl"),
            volume_mm3=data.get("volume_mm3", 0.0),
            area_mm2=data.get("area_mm2", 0.0),
            extents_mm=_triple(data.get("extents_mm", (0.0, 0.0, 0.0))),
            triangles=data.get("triangles", 0),
            bodies=data.get("bodies", 0),
            fits=tuple(data.get("fits", ())),
            capable=tuple(data.get("capable", data.get("fits", ()))),
            checks=tuple(Check(**c) for c in data.get("checks", ())),
            orientation=None if orientation is None else _orientation(orientation),
            orientation_candidates=tuple(
                _orientation(o) for o in data.get("orientation_candidates", ())
            ),
            machines=tuple(
                MachineReport(
                    key=m["key"],
                    process=m["process"],
                    status=m["status"],
                    checks=tuple(Check(**c) for c in m["checks"]),
                )
                for m in data.get("machines", ())
            ),
            unit_guess=None
            if guess is None
            else UnitGuess(
                unit=guess["unit"],
                scale=guess["scale"],
                extents_mm=_triple(guess["extents_mm"]),
                reason=guess["reason"],
            ),
            scale=data.get("scale", 1.0),
        )


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = values
    return (x, y, z)


def _orientation(data: Mapping[str, Any]) -> Orientation:
    return Orientation(
        label=data["label"],
        down=_triple(data.get("down", (0.0, 0.0, -1.0))),
        matrix=tuple(tuple(row) for row in data["matrix"]),
        extents_mm=_triple(data["extents_mm"]),
        height_mm=data.get("height_mm", data["extents_mm"][2]),
        support_area_mm2=data.get("support_area_mm2", 0.0),
        support_volume_mm3=data.get("support_volume_mm3", 0.0),
        contact_area_mm2=data.get("contact_area_mm2", 0.0),
        base_width_mm=data.get("base_width_mm", 0.0),
        stable=data.get("stable", True),
        fits=data.get("fits", True),
        cost=data.get("cost", 0.0),
    )


class ValidationRejected(Rejected):
    """The part cannot be made: the reason is the first failed check; the report has all."""

    def __init__(self, report: ValidationReport) -> None:
        failure = report.first_failure
        super().__init__(failure.message if failure else "the part failed validation")
        self.report = report


def validate_part(
    mesh: bytes,
    *,
    machines: Sequence[MachineLimits] = (),
    build_volumes_mm: Mapping[str, tuple[float, float, float]] | None = None,
    limits: ValidationLimits = DEFAULT_LIMITS,
    file_format: str = "stl",
    step_converter: Callable[[bytes], bytes] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ValidationReport:
    """The report for a part that at least one machine can make; ValidationRejected otherwise.

    Calling it twice gives the same report (sampling is seeded), unless the time budget runs
    out on one call and not the other.
    """
    report = dfm_report(
        mesh,
        machines=machines,
        build_volumes_mm=build_volumes_mm,
        limits=limits,
        file_format=file_format,
        step_converter=step_converter,
        clock=clock,
    )
    if report.status == FAIL:
        raise ValidationRejected(report)
    return report


def dfm_report(
    mesh: bytes,
    *,
    machines: Sequence[MachineLimits] = (),
    build_volumes_mm: Mapping[str, tuple[float, float, float]] | None = None,
    limits: ValidationLimits = DEFAULT_LIMITS,
    file_format: str = "stl",
    step_converter: Callable[[bytes], bytes] | None = None,
    clock: Callable[[], float] = time.monotonic,
    scale: float = 1.0,
) -> ValidationReport:
    """The full report, failed or not; never raises for a bad part.

    `machines` are the candidates; `build_volumes_mm` ({key: volume}) is shorthand for FDM
    machines with 0.4 mm nozzles. STEP input needs `step_converter` (STEP bytes to STL bytes,
    raising Rejected when the file cannot be read), e.g. catalog.geometry.step_import.
    `scale` multiplies the mesh before anything is measured (millimetres per file unit: 25.4
    for a file drawn in inches, once its uploader accepts that); at 1, a mesh that makes no
    sense in millimetres gets a `units` check and the report's unit_guess.
    """
    if not 0 < scale <= 1000:
        raise ValueError(f"scale must be above 0 and at most 1000, not {scale!r}")
    candidates = _candidates(machines, build_volumes_mm)
    if file_format not in FORMATS:
        raise ValueError(f"file_format must be one of {FORMATS}, not {file_format!r}")
    checks: list[Check] = []
    budget = Budget(limits.time_budget_s, clock)
    try:
        stl, converted = _as_stl(mesh, file_format, step_converter, limits, checks)
        # An STL made from a STEP file is our own: only its triangle count is limited, and
        # the STEP file's size and readability were checked already.
        max_bytes = len(stl) if converted else limits.max_file_bytes
        triangles, read_checks = read_stl(
            stl, max_file_bytes=max_bytes, max_triangles=limits.max_triangles
        )
        if converted:
            read_checks = [c for c in read_checks if c.name not in ("file_size", "readable")]
        checks += read_checks
        if scale != 1.0:
            triangles = triangles * scale
        budget.check("the mesh repair")
        solid, integrity = make_solid(
            triangles,
            max_vertices=limits.max_vertices,
            max_hole_perimeter_mm=limits.max_hole_perimeter_mm,
            self_intersection_max_triangles=limits.self_intersection_max_triangles,
            budget=budget,
        )
        checks += integrity
        if solid is None:
            return ValidationReport(
                status=FAIL, file_format=file_format, triangles=len(triangles), checks=tuple(checks)
            )
        return _machine_report(solid, candidates, limits, budget, checks, file_format, scale)
    except Refused as refusal:
        checks.append(refusal.check)
        return ValidationReport(
            status=FAIL,
            readable=refusal.check.name != "readable",
            file_format=file_format,
            checks=tuple(checks),
        )


def _candidates(
    machines: Sequence[MachineLimits],
    build_volumes_mm: Mapping[str, tuple[float, float, float]] | None,
) -> tuple[MachineLimits, ...]:
    candidates = list(machines)
    for key, (x, y, z) in sorted((build_volumes_mm or {}).items()):
        candidates.append(MachineLimits(key, FDM, (float(x), float(y), float(z))))
    if not candidates:
        raise ValueError("validation needs at least one candidate machine")
    return tuple(candidates)


def _as_stl(
    mesh: bytes,
    file_format: str,
    step_converter: Callable[[bytes], bytes] | None,
    limits: ValidationLimits,
    checks: list[Check],
) -> tuple[bytes, bool]:
    """STL bytes, converting STEP first; True when converted."""
    if file_format == "stl":
        return mesh, False
    if step_converter is None:
        raise ValueError("STEP input needs a step_converter")
    checks.append(file_size_check(len(mesh), limits.max_file_bytes))
    try:
        stl = step_converter(mesh)
    except Rejected as refusal:
        raise Refused(
            Check(
                "readable",
                FAIL,
                "unreadable",
                "STL or STEP",
                f"the STEP file could not be read: {refusal}",
            )
        ) from None
    checks.append(Check("readable", PASS, "STEP", "STL or STEP", "read as STEP (tessellated)"))
    return stl, True


def _machine_report(
    solid: Solid,
    machines: tuple[MachineLimits, ...],
    limits: ValidationLimits,
    budget: Budget,
    checks: list[Check],
    file_format: str,
    scale: float,
) -> ValidationReport:
    mesh = solid.mesh
    # trimesh's extents (its referenced vertices' box) without its hashing and (n, 3) reductions.
    x, y, z = (round(float(v), 3) for v in solid.caster.size)
    extents = (x, y, z)
    printers = [m for m in machines if m.process == FDM]
    orientation, thickness = None, None
    candidates: tuple[Orientation, ...] = ()
    if printers:
        budget.check("choosing an orientation")
        candidates = candidate_orientations(
            solid,
            overhang_deg=limits.overhang_deg,
            bridge_mm=limits.bridge_mm,
            build_volumes_mm=[m.build_volume_mm for m in printers],
        )
        orientation = choose(candidates)
        budget.check("measuring walls")
        needed = max(limits.min_wall_factor * m.nozzle_mm for m in printers)
        thickness = measure(
            solid.triangles,
            solid.normals,
            solid.areas,
            solid.caster,
            samples=limits.wall_samples,
            reach_mm=max(4 * needed, 2.0),
        )
    guess = None
    if scale == 1.0:
        too_thin = thickness is not None and thickness.thinnest(thickness.walls_mm) < min(
            limits.min_wall_fail_factor * m.nozzle_mm for m in printers
        )
        guess = guess_unit(
            extents, walls_too_thin=too_thin, build_volumes_mm=[m.build_volume_mm for m in machines]
        )
        if guess is not None:
            checks.append(_units_check(extents, guess))
    budget.check("the machine checks")
    reports = []
    for machine in machines:
        if machine.process == FDM:
            assert orientation is not None and thickness is not None
            machine_checks = fdm_checks(
                machine,
                modelled_extents_mm=extents,
                orientation=orientation,
                thickness=thickness,
                limits=limits,
            )
        else:
            machine_checks = machining_checks(
                machine, solid=solid, modelled_extents_mm=extents, limits=limits
            )
        reports.append(
            MachineReport(
                machine.key,
                machine.process,
                worst(c.status for c in machine_checks),
                tuple(machine_checks),
            )
        )
    fits = tuple(r.key for r in reports if _check(r, "build_volume").status == PASS)
    if orientation is not None:
        checks.append(_orientation_check(orientation, candidates))
    checks.append(_build_volume_check(machines, extents, orientation, fits))
    best = min(
        reports,
        key=lambda r: (
            _check(r, "build_volume").status != PASS,
            sum(c.status == FAIL for c in r.checks),
            sum(c.status == WARN for c in r.checks),
        ),
    )
    checks += [c for c in best.checks if c.name != "build_volume"]
    return ValidationReport(
        status=worst(c.status for c in checks),
        file_format=file_format,
        volume_mm3=round(solid.volume_mm3, 3),
        area_mm2=round(float(solid.areas.sum()), 3),
        extents_mm=extents,
        triangles=len(mesh.faces),
        bodies=solid.bodies,
        fits=fits,
        capable=tuple(r.key for r in reports if r.status != FAIL),
        checks=tuple(checks),
        orientation=orientation,
        orientation_candidates=candidates,
        machines=tuple(reports),
        unit_guess=guess,
        scale=scale,
    )


_UNIT_WORDS = {"inch": "inches", "m": "metres", "cm": "centimetres"}


def _units_check(extents: tuple[float, float, float], guess: UnitGuess) -> Check:
    """A failure when the part is smaller than anything makeable, else a warning beside the
    wall checks that fail: either way the message offers the scale."""
    size = "{:g} x {:g} x {:g}".format(*extents)
    scaled = "{:.1f} x {:.1f} x {:.1f} mm".format(*guess.extents_mm)
    status = FAIL if guess.reason.startswith("smaller") else WARN
    return Check(
        "units", status, f"{size} file units", "a part drawn in millimetres",
        f"read as millimetres the part is {size} mm ({guess.reason}); it looks drawn in "
        f"{_UNIT_WORDS[guess.unit]}: {scaled}. Accept the scale (x{guess.scale:g}) to check "
        "and quote it at that size",
    )  # fmt: skip


def _check(report: MachineReport, name: str) -> Check:
    return next(c for c in report.checks if c.name == name)


def _orientation_check(chosen: Orientation, candidates: Sequence[Orientation]) -> Check:
    facts = (
        f"{chosen.support_area_mm2:.0f} mm² of support, {chosen.height_mm:.1f} mm high, "
        f"{chosen.contact_area_mm2:.0f} mm² on the bed"
    )
    others = [c for c in ranked(candidates) if c is not chosen]
    runner_up = (
        f"; runner-up {others[0].label} (score {others[0].cost:.0f} against {chosen.cost:.0f}, "
        f"{others[0].support_area_mm2:.0f} mm² of support, {others[0].height_mm:.1f} mm high)"
        if others
        else ""
    )
    limit = "stable; least support volume, then lowest, steadiest and most bed contact"
    if not chosen.stable:
        return Check(
            "orientation", WARN, chosen.label, limit,
            f"no orientation rests stably on a flat face; best {chosen.label} ({facts}): it "
            f"needs a raft or supports to stand{runner_up}",
        )  # fmt: skip
    return Check(
        "orientation", PASS, chosen.label, limit, f"print {chosen.label}: {facts}{runner_up}"
    )


def _build_volume_check(
    machines: tuple[MachineLimits, ...],
    extents: tuple[float, float, float],
    orientation: Orientation | None,
    fits: tuple[str, ...],
) -> Check:
    x, y, z = extents
    size = f"{x:.1f} x {y:.1f} x {z:.1f} mm"
    largest = max((m.build_volume_mm for m in machines), key=lambda v: v[0] * v[1] * v[2])
    limit = "{:.0f} x {:.0f} x {:.0f} mm".format(*largest)
    if fits:
        message = f"fits {len(fits)} of {len(machines)} candidate machines"
        return Check("build_volume", PASS, size, limit, message)
    for machine in machines:
        if turned_fit(machine, extents, orientation) is not None:
            return build_volume_check(machine, extents, orientation)
    return Check(
        "build_volume", FAIL, size, limit,
        f"the part ({size}) is larger than every capable machine's build volume",
    )  # fmt: skip
