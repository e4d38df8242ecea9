"""The pipeline's steps, in order, over values: one list for the worker and for make_part.

    build -> validate -> toolpath (orient, repair, slice, verify) -> traveler

Each step is a function from the job so far (`JobSoFar`, frozen) to its result, which goes
into the next JobSoFar. The worker (production.runner) runs one step per task: it loads the
JobSoFar from the database, calls the step, and stores the result. `manage.py make_part` runs
them all in one process on values it builds from the catalog. Routing is the worker's alone.

Pure: no ORM, no clock; the only I/O is the sandboxed build and an external slicer. A file
kept earlier for the same inputs comes back through `Setup.reuse`, so a step repeats no slow
work the worker already did.
"""

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from catalog import geometry
from microfactory.errors import Rejected
from production import routing
from production.pipeline import programs
from production.pipeline import traveler as travelers
from production.pipeline.dfm.limits import CNC_MILL, LASER, MachineLimits, ValidationLimits
from production.pipeline.print_mesh import (
    PrintOrientation,
    RepairedMesh,
    SliceMesh,
    is_identity,
    mesh_to_slice,
    oriented_stl,
    print_orientation,
)
from production.pipeline.validation import ValidationReport, validate_part
from production.pipeline.values import (
    DEFAULT_SLICER,
    DFM,
    GCODE,
    STEP,
    STL,
    SVG,
    TRAVELER,
    BuiltPart,
    GeometryMeta,
    MaterialFacts,
    Paperwork,
    PartSpec,
    PlannedMachine,
    Reuse,
    SlicerSettings,
    Stored,
    ToolpathMeta,
    input_key,
    nothing_stored,
)
from production.toolpath import FdmProfile, engines
from production.toolpath.verify import verify_gcode

FDM = "fdm"
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """How the shop makes parts: its machines, the limits from settings, and slicer choices."""

    machines: tuple[routing.MachineFacts, ...]
    build_limits: geometry.BuildLimits
    validation_limits: ValidationLimits
    prusaslicer_binary: str = "prusa-slicer"
    prusaslicer_timeout_s: float = 300.0
    slicer: SlicerSettings = DEFAULT_SLICER
    engine: str | None = None  # every machine's own engine when None (make_part --engine)
    reuse: Reuse = nothing_stored
    program_checks: programs.ProgramChecks = programs.ProgramChecks()  # mills and lasers


@dataclass(frozen=True)
class PlannedToolpath:
    """The toolpath step's result. Loaded back for the traveler step, only `meta` is set."""

    meta: ToolpathMeta
    gcode: bytes = field(default=b"", repr=False)
    key: str = ""
    reused: bool = False
    repaired: RepairedMesh | None = None  # the mesh sliced, when validation repaired it
    summary: str = ""  # "50 layers, 3.1 g, ~21 min for Prusa MK4, printed on its side"
    # A milling or laser program's rendering for the traveler: the simulated result (PNG) or
    # the cut paths (SVG); b"" for FDM. Loaded back for the traveler step with the meta.
    render: bytes = field(default=b"", repr=False)

    @property
    def gcode_name(self) -> str:
        """The G-code artifact's file name: part.gcode, or part.nc for a mill."""
        facts = self.meta.program_facts
        return facts.filename if facts is not None else "part.gcode"

    @property
    def render_name(self) -> str:
        return programs.RENDER_NAMES.get(self.meta.process, "render")

    def program_meta(self) -> dict[str, Any]:
        """What the G-code's own artifact keeps: the numbers that come with the program."""
        if self.meta.process != FDM:
            return {
                "engine": self.meta.engine,
                "process": self.meta.process,
                "estimated_time_s": self.meta.estimated_time_s,
                "program": dict(self.meta.program),
            }
        return {
            "engine": self.meta.engine,
            "layers": self.meta.layers,
            "filament_mm": self.meta.filament_mm,
            "filament_g": self.meta.filament_g,
            "estimated_time_s": self.meta.estimated_time_s,
            "layer_height_mm": self.meta.layer_height_mm,
            "nozzle_mm": self.meta.nozzle_mm,
            # The G-code check's report, and which checker made it: a repeat of the same inputs
            # takes it from here instead of checking the same program again (_verification).
            "verification": dict(self.meta.verification),
            "verifier": verifier_version(),
        }


@dataclass(frozen=True)
class TravelerDocument:
    traveler: travelers.Traveler
    pdf: bytes = field(repr=False)
    key: str
    reused: bool = False


@dataclass(frozen=True)
class JobSoFar:
    """A job as far as the pipeline has taken it: what to make, for whom, how, and each
    step's result once it has run."""

    part: PartSpec
    paperwork: Paperwork
    setup: Setup
    geometry: BuiltPart | None = None
    report: ValidationReport | None = None
    toolpath: PlannedToolpath | None = None
    traveler: TravelerDocument | None = None


@dataclass(frozen=True)
class Step:
    name: str  # the JobEvent step and the make_part report's key
    run: Callable[[JobSoFar], Any]
    keeps: str  # the JobSoFar field its result goes into
    needs: tuple[str, ...]  # the JobSoFar fields it reads (the worker loads only these)

    def after(self, so_far: JobSoFar) -> JobSoFar:
        """The job once this step has run on it."""
        return replace(so_far, **{self.keeps: self.run(so_far)})


# --- build ----------------------------------------------------------------------------------


def geometry_key(*, revision_checksum: str, parameters: Any, limits: geometry.BuildLimits) -> str:
    return input_key(
        "geometry",
        revision_checksum,
        parameters,
        geometry.ENGINE_VERSION,
        limits.stl_tolerance_mm,
        limits.stl_angular_tolerance,
    )


def build(so_far: JobSoFar) -> BuiltPart:
    """The part's STEP, STL and drawing: from its CadQuery script in the sandbox, or its static
    model (STEP converted, STL passed through with no STEP); found again when stored.
    Rejected first when the parameters break the revision's schema or rules, even when a
    build of them is stored: intake checks them, but no job may make a part its revision
    forbids (build_revision checks them again, for any other caller)."""
    part, setup = so_far.part, so_far.setup
    geometry.check_parameters(specs=part.specs, rules=part.rules, parameters=part.parameters)
    key = geometry_key(
        revision_checksum=part.revision_checksum,
        parameters=dict(part.parameters),
        limits=setup.build_limits,
    )
    kinds = (STEP, STL, SVG) if part.has_step else (STL, SVG)
    found = {kind: setup.reuse(kind, key) for kind in kinds}
    if all(stored is not None for stored in found.values()):
        return _reused_geometry(found, key)
    built = geometry.build_revision(
        kind=part.kind,
        script=part.script,
        model_bytes=part.model,
        parameters=part.parameters,
        specs=part.specs,
        rules=part.rules,
        limits=setup.build_limits,
    )
    meta = GeometryMeta(
        bbox_mm=built.bbox_mm,
        volume_mm3=built.volume_mm3,
        area_mm2=built.area_mm2,
        sandbox=built.sandbox,
        engine=geometry.ENGINE_VERSION,
    )
    step = built.step if part.has_step else b""
    return BuiltPart(stl=built.stl, svg=built.svg, meta=meta, step=step, key=key)


def _reused_geometry(found: dict[str, Stored | None], key: str) -> BuiltPart:
    stl, svg, step = found[STL], found[SVG], found.get(STEP)
    assert stl is not None and svg is not None
    return BuiltPart(
        stl=stl.content,
        svg=svg.content.decode(),
        meta=GeometryMeta.from_json(stl.meta),
        step=step.content if step is not None else b"",
        key=key,
        reused=True,
    )


# --- validate -------------------------------------------------------------------------------


def machine_limits(machine: routing.MachineFacts) -> MachineLimits:
    """A machine as validation sees it: a mill with its smallest end mill, a laser with its
    kerf (None: the shop's default from settings)."""
    smallest = None
    if machine.process == CNC_MILL:
        end_mill = programs.machine_tools(machine).smallest_end_mill()
        smallest = end_mill.diameter_mm if end_mill is not None else None
    return MachineLimits(
        key=machine.key,
        process=machine.process,
        build_volume_mm=machine.build_volume_mm,
        nozzle_mm=machine.nozzle_mm,
        name=machine.name,
        smallest_end_mill_mm=smallest,
        kerf_mm=machine.kerf_mm or None,
    )


def dfm_machines(
    machines: Sequence[routing.MachineFacts], *, process: str, material: MaterialFacts
) -> list[MachineLimits]:
    """The machines a DFM report is measured against: every one of the process with the
    material loaded or loadable. Rejected when there is none."""
    of_process = [m for m in machines if m.process == process]
    candidates = routing.with_material(of_process, material.slug)
    if not candidates:
        raise Rejected(f"no machine has {material.name} loaded for this process")
    # Plate and sheet come in the material's thicknesses: the mill's and laser's checks need them.
    sheets = material.sheet_thicknesses_mm if process in (CNC_MILL, LASER) else None
    return [replace(machine_limits(m), sheet_thicknesses_mm=sheets) for m in candidates]


def validate(so_far: JobSoFar) -> ValidationReport:
    """The DFM report against every machine with the material loaded. A failed check raises
    ValidationRejected, which carries the whole report. A report kept for the same mesh,
    machines, limits and checker (dfm_key) is read back instead of checking again."""
    part, built = so_far.part, _needs(so_far.geometry, "geometry")
    stored = so_far.setup.reuse(DFM, dfm_key(so_far))
    if stored is not None:
        return ValidationReport.from_json(json.loads(stored.content))
    machines = dfm_machines(so_far.setup.machines, process=part.process, material=part.material)
    return validate_part(built.stl, machines=machines, limits=so_far.setup.validation_limits)


def dfm_key(so_far: JobSoFar) -> str:
    """What determines a part's DFM report: its mesh (sha256), the machines it is checked
    against (with the material), the limits, and which checker made it (dfm_checker)."""
    part, built = so_far.part, _needs(so_far.geometry, "geometry")
    machines = dfm_machines(so_far.setup.machines, process=part.process, material=part.material)
    return input_key(
        "dfm",
        built.sha256,
        [asdict(machine) for machine in machines],
        asdict(so_far.setup.validation_limits),
        dfm_checker(),
    )


@functools.cache
def dfm_checker() -> str:
    """Which DFM checker made a report: the source of validation and of its checks, and the
    mesh library's version. Any change to them checks stored meshes again."""
    import trimesh

    from production.pipeline import dfm, validation

    checks = sorted(Path(str(dfm.__file__)).parent.glob("*.py"))
    sources = [Path(str(validation.__file__)).read_text(), *(p.read_text() for p in checks)]
    return input_key(trimesh.__version__, *sources)


# --- toolpath -------------------------------------------------------------------------------


def fdm_profile(
    machine: routing.MachineFacts,
    *,
    material: MaterialFacts,
    settings: SlicerSettings = DEFAULT_SLICER,
) -> FdmProfile:
    """The slicer settings for one machine with one material loaded, with `settings`'
    overrides. Rejected when a layer is thicker than the nozzle can lay down."""
    x, y, z = machine.build_volume_mm
    profile = FdmProfile(
        machine_model=machine.model or machine.name,
        bed_mm=(x, y),
        max_height_mm=z,
        flavour=machine.flavour,
        nozzle_mm=machine.nozzle_mm,
        nozzle_temp_c=material.nozzle_temp_c,
        bed_temp_c=material.bed_temp_c,
        filament_density_g_cm3=material.density_g_cm3,
    )
    overrides: dict[str, Any] = {
        "layer_height_mm": settings.layer_height_mm,
        "first_layer_height_mm": settings.first_layer_height_mm,
        "perimeters": settings.perimeters,
        "top_layers": settings.top_layers,
        "bottom_layers": settings.bottom_layers,
        "infill_density": (
            None if settings.infill_percent is None else settings.infill_percent / 100
        ),
        "brim_width_mm": settings.brim_width_mm,
        "seam": settings.seam,
        "min_layer_time_s": settings.min_layer_time_s,
    }
    profile = replace(profile, **{k: v for k, v in overrides.items() if v is not None})
    for name, height in (
        ("layer height", profile.layer_height_mm),
        ("first layer height", profile.first_layer_height_mm),
    ):
        if height > profile.nozzle_mm:
            raise Rejected(
                f"a {name} of {height:g} mm is more than the {profile.nozzle_mm:g} mm nozzle "
                f"of {machine.name} can lay down"
            )
    return profile


# The DFM checks whose warning means the part may come loose or tip over while printing.
BRIM_RISKS = ("tipping", "first_layer")
AUTO_BRIM_MM = 5.0


def with_brim_if_at_risk(profile: FdmProfile, report: ValidationReport) -> FdmProfile:
    """A brim of AUTO_BRIM_MM when the DFM report warns that the part may tip or come loose
    (and the profile has none): the warning acted on, not only printed on the traveler."""
    risky = any(c.name in BRIM_RISKS and c.status == "warn" for c in report.checks)
    if not risky or profile.brim_width_mm > 0:
        return profile
    return replace(profile, brim_width_mm=AUTO_BRIM_MM)


@dataclass(frozen=True)
class SliceInputs:
    """What a slicer gets for a part: the machine it is sliced for, that machine's profile,
    and the mesh to slice (repaired where validation repaired it), turned to print."""

    target: routing.MachineFacts
    profile: FdmProfile
    mesh: SliceMesh
    orientation: PrintOrientation
    stl: bytes = field(repr=False)  # the mesh in print orientation


def slice_inputs(so_far: JobSoFar) -> SliceInputs:
    """The best capable machine and the part as it will be sliced for it; Rejected when no
    machine can make it. A plate of copies (production.plates) starts from the same mesh."""
    part, setup = so_far.part, so_far.setup
    built, report = _needs(so_far.geometry, "geometry"), _needs(so_far.report, "report")
    if part.process != FDM:
        raise Rejected(f"no toolpath engine for {part.process_label} yet")
    needs = routing.JobNeeds(
        process=part.process,
        material=part.material.slug,
        extents_mm=report.extents_mm,
        allowed_machines=frozenset(report.capable),
    )
    candidates = routing.capable_machines(needs, setup.machines)
    if not candidates:
        raise Rejected("no machine can make this part with the chosen material")
    mesh = mesh_to_slice(built, report.checks, limits=setup.validation_limits, reuse=setup.reuse)
    target = _prefer_stored_program(candidates, so_far=so_far, mesh=mesh)
    if setup.engine is not None:
        target = replace(target, toolpath_engine=setup.engine)
    profile = fdm_profile(target, material=part.material, settings=setup.slicer)
    if setup.slicer.brim_width_mm is None:
        profile = with_brim_if_at_risk(profile, report)
    orientation = print_orientation(report.orientation, target.build_volume_mm)
    return SliceInputs(
        target, profile, mesh, orientation, oriented_stl(mesh.content, orientation.matrix)
    )


def plan_toolpath(so_far: JobSoFar) -> PlannedToolpath:
    """Slice the part for the best capable machine: the mesh as validation repaired it,
    turned to the orientation its DFM report chose; then check the G-code against the part.
    Stored G-code for the same inputs is checked again rather than sliced again. A milled or
    laser-cut part gets its verified program instead (plan_machine_program)."""
    if so_far.part.process in programs.PROCESSES:
        return plan_machine_program(so_far)
    setup = so_far.setup
    given = slice_inputs(so_far)
    target, profile, mesh, orientation, stl = (
        given.target,
        given.profile,
        given.mesh,
        given.orientation,
        given.stl,
    )
    binary = setup.prusaslicer_binary
    # ToolpathEngineError here (engine not installed) ends the job FAILED.
    version = engines.engine_version(target.toolpath_engine, prusaslicer_binary=binary)
    # The orientation is part of the key: the same mesh turned another way is another program.
    key = input_key("toolpath", mesh.sha256, orientation.matrix, version, asdict(profile))
    stored = setup.reuse(GCODE, key)
    if stored is not None:
        program, numbers = stored.content, dict(stored.meta)
    else:
        toolpath = engines.plan(
            stl,
            profile,
            engine=target.toolpath_engine,
            timeout_s=setup.prusaslicer_timeout_s,
            prusaslicer_binary=binary,
        )
        program = toolpath.gcode
        numbers = {
            "engine": toolpath.engine,
            "layers": toolpath.layers,
            "filament_mm": round(toolpath.filament_mm, 1),
            "filament_g": round(toolpath.filament_g, 2),
            "estimated_time_s": round(toolpath.estimated_time_s),
        }
    # Rejected when the G-code does not print this part, as oriented. Reused G-code keeps the
    # report stored with it only if the same checker made it.
    verification = _verification(stored, program, stl=stl, profile=profile)
    meta = ToolpathMeta(
        engine=str(numbers["engine"]),
        layers=int(numbers["layers"]),
        filament_mm=float(numbers["filament_mm"]),
        filament_g=float(numbers["filament_g"]),
        estimated_time_s=int(numbers["estimated_time_s"]),
        layer_height_mm=profile.layer_height_mm,
        nozzle_mm=profile.nozzle_mm,
        first_layer_height_mm=profile.first_layer_height_mm,
        perimeters=profile.perimeters,
        top_layers=profile.top_layers,
        bottom_layers=profile.bottom_layers,
        infill_percent=round(profile.infill_density * 100, 3),
        brim_width_mm=profile.brim_width_mm,
        planned_for=target.key,
        profile_key=target.profile_key,
        orientation=orientation.label,
        orientation_matrix=orientation.matrix,
        sliced_sha256=mesh.sha256,
        repaired=mesh.repaired is not None,
        verification=verification,
    )
    turned = "" if is_identity(orientation.matrix) else f", printed {orientation.label}"
    repaired = ", repaired mesh" if mesh.repaired is not None else ""
    return PlannedToolpath(
        meta=meta,
        gcode=program,
        key=key,
        reused=stored is not None,
        repaired=mesh.repaired,
        summary=f"{meta.layers} layers, {meta.filament_g} g, "
        f"~{meta.estimated_time_s // 60} min for {target.model or target.name}{turned}{repaired}",
    )


def plan_machine_program(so_far: JobSoFar) -> PlannedToolpath:
    """A cnc_mill or laser part's program for the best capable machine, from the material's
    plate or sheet, verified against the part (production.pipeline.programs)."""
    part, setup = so_far.part, so_far.setup
    built, report = _needs(so_far.geometry, "geometry"), _needs(so_far.report, "report")
    planned = programs.plan_program(
        process=part.process,
        material=part.material,
        built=built,
        report=report,
        machines=setup.machines,
        checks=setup.program_checks,
        reuse=setup.reuse,
    )
    target = planned.target
    meta = ToolpathMeta(
        engine=planned.engine,
        layers=0,
        filament_mm=0.0,
        filament_g=0.0,
        estimated_time_s=round(planned.estimated_time_s),
        layer_height_mm=0.0,
        nozzle_mm=0.0,
        planned_for=target.key,
        profile_key=target.profile_key,
        orientation="as modelled",
        sliced_sha256=built.sha256,
        verification=planned.verification,
        process=part.process,
        program=planned.facts.to_json(),
    )
    return PlannedToolpath(
        meta=meta,
        gcode=planned.gcode,
        key=planned.key,
        reused=planned.reused,
        summary=planned.summary,
        render=planned.render,
    )


def _toolpath_key(
    machine: routing.MachineFacts, *, so_far: JobSoFar, mesh: SliceMesh
) -> str | None:
    """The G-code input key this part would have on this machine (as plan_toolpath makes
    it); None where the machine's profile or engine cannot slice it."""
    setup, report = so_far.setup, _needs(so_far.report, "report")
    target = machine if setup.engine is None else replace(machine, toolpath_engine=setup.engine)
    try:
        profile = fdm_profile(target, material=so_far.part.material, settings=setup.slicer)
        if setup.slicer.brim_width_mm is None:
            profile = with_brim_if_at_risk(profile, report)
        version = engines.engine_version(
            target.toolpath_engine, prusaslicer_binary=setup.prusaslicer_binary
        )
    except (Rejected, engines.ToolpathEngineError):
        return None
    orientation = print_orientation(report.orientation, target.build_volume_mm)
    return input_key("toolpath", mesh.sha256, orientation.matrix, version, asdict(profile))


def _prefer_stored_program(
    candidates: Sequence[routing.MachineFacts], *, so_far: JobSoFar, mesh: SliceMesh
) -> routing.MachineFacts:
    """The best capable machine; but among those routing ranks alike on what it weighs first
    (material loaded, idle), the first whose program for this very part is stored already: a
    repeat order then reuses that G-code rather than slicing it for another printer model
    (~1 s). Queue lengths still spread the work over that model's machines when routed."""
    material = so_far.part.material.slug

    def rank(machine: routing.MachineFacts) -> tuple[bool, bool]:
        return material not in machine.materials, machine.state != "idle"

    for machine in candidates:
        if rank(machine) != rank(candidates[0]):
            break
        key = _toolpath_key(machine, so_far=so_far, mesh=mesh)
        if key is not None and so_far.setup.reuse(GCODE, key) is not None:
            return machine
    return candidates[0]


@functools.cache
def verifier_version() -> str:
    """Which G-code checker made a report: its source and the slicer it measures with. Any
    change to either checks stored programs again."""
    from production.toolpath import slicing, verify

    return input_key(*(Path(str(module.__file__)).read_text() for module in (verify, slicing)))


def _verification(
    stored: Stored | None, program: bytes, *, stl: bytes, profile: FdmProfile
) -> dict[str, Any]:
    """The G-code check's report. A stored program's own key fixes the program, the mesh, its
    orientation and the profile, so the report stored with it stands if the same checker made
    it; else (or for a new program) the program is checked now (Rejected when it fails)."""
    if stored is not None and stored.meta.get("verifier") == verifier_version():
        report = stored.meta.get("verification")
        if isinstance(report, dict):
            return dict(report)
    return verify_gcode(program, stl=stl, profile=profile).to_json()


# --- traveler -------------------------------------------------------------------------------


def planned_machine(machines: Sequence[routing.MachineFacts], key: str) -> PlannedMachine | None:
    found = next((m for m in machines if m.key == key), None)
    return None if found is None else PlannedMachine(found.name, found.model, found.site)


def render_traveler(so_far: JobSoFar) -> TravelerDocument:
    """The traveler PDF, as of the paperwork's `printed_at`; found again when stored."""
    built = _needs(so_far.geometry, "geometry")
    report, toolpath = _needs(so_far.report, "report"), _needs(so_far.toolpath, "toolpath")
    traveler = travelers.traveler_of(
        part=so_far.part,
        paperwork=so_far.paperwork,
        geometry=built.meta,
        drawing_svg=built.svg,
        toolpath=toolpath.meta,
        dfm_warnings=report.warnings,
        planned=planned_machine(so_far.setup.machines, toolpath.meta.planned_for),
        render=toolpath.render,
    )
    key = input_key("traveler", travelers.traveler_html(traveler))
    stored = so_far.setup.reuse(TRAVELER, key)
    if stored is not None:
        return TravelerDocument(traveler, stored.content, key, reused=True)
    return TravelerDocument(traveler, travelers.render_traveler(traveler), key)


# --- the list -------------------------------------------------------------------------------

STEPS: tuple[Step, ...] = (
    Step("geometry", build, keeps="geometry", needs=()),
    Step("validation", validate, keeps="report", needs=("geometry",)),
    Step("toolpath", plan_toolpath, keeps="toolpath", needs=("geometry", "report")),
    Step("traveler", render_traveler, keeps="traveler", needs=("geometry", "report", "toolpath")),
)
# What a job needs before it can be routed: the worker runs these one status at a time; the
# traveler is rendered beside routing (production.runner.job_traveler_render, #19).
TO_ROUTING = STEPS[:-1]


def _needs(value: T | None, name: str) -> T:
    if value is None:
        raise ValueError(f"this step runs after the one that makes the {name}")
    return value
