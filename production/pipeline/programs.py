"""The toolpath step of a milled or laser-cut part: plan its program, verify it, keep its facts.

An FDM job is sliced (steps.plan_toolpath); a cnc_mill or laser job gets a MachineProgram
(production.toolpath.program) from its planner instead, for the best capable machine:

    cnc_mill: milling.plan_milling  -> cnc_verify.verify_program (z-map simulation) -> rs274
    laser:    laser.plan_cutting    -> laser_verify.verify_cutting (kerf, contours) -> rs274

A program the verifier fails is Rejected with the verifier's reason, as an FDM G-code that
does not print its part is. The stock is the material's plate or sheet
(Material.sheet_thicknesses_mm): a mill takes the thinnest plate at least as thick as the
part and faces it down; a laser cuts a part exactly as thick as its sheet. What the traveler
and the quote need (tools, stock, work offset, set-up steps, time) goes into the job's
toolpath meta as `ProgramFacts`; the G-code and a rendering (the simulated result of a milling
program, the cut paths of a laser program) are the step's files.

Pure like the other steps: no ORM, no clock.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from microfactory.errors import Rejected
from production import routing
from production.pipeline.validation import ValidationReport
from production.pipeline.values import (
    GCODE,
    BuiltPart,
    MaterialFacts,
    ProgramFacts,
    ProgramTool,
    Reuse,
    Stored,
    input_key,
)
from production.toolpath import engines
from production.toolpath.cnc_render import render_simulation
from production.toolpath.cnc_tools import DEFAULT_TOOL_TABLE, DIALECTS, MillProfile, ToolTable
from production.toolpath.cnc_verify import Envelope, verify_program
from production.toolpath.laser import ENGINE as LASER_ENGINE
from production.toolpath.laser import LaserProfile, plan_cutting
from production.toolpath.laser_verify import verify_cutting
from production.toolpath.milling import ENGINE as MILL_ENGINE
from production.toolpath.milling import plan_milling
from production.toolpath.program import MachineProgram, Stock, ToolUse, sheet_matches
from production.toolpath.rs274 import Rs274Unavailable, rs274_errors
from production.toolpath.vectors import cut_svg

CNC_MILL, LASER = "cnc_mill", "laser"
PROCESSES = (CNC_MILL, LASER)
# A part this much thicker than a plate still comes from it (the STL's rounding, a plate's
# tolerance); a mill faces a thicker plate down to the part, so any plate at least as thick does.
THICKER_THAN_PLATE_MM = 0.01
FILENAMES = {CNC_MILL: "part.nc", LASER: "part.gcode"}
RENDER_NAMES = {CNC_MILL: "simulated.png", LASER: "cut-paths.svg"}


@dataclass(frozen=True)
class ProgramChecks:
    """How programs are verified (MF_CNC_* and MF_RS274_* settings); rs274_binary "": the
    interpreter is not run."""

    zmap_resolution_mm: float = 0.2
    gouge_tolerance_mm: float = 0.05
    remaining_tolerance_mm: float = 0.1
    rs274_binary: str = "rs274"
    rs274_timeout_s: float = 30.0


@dataclass(frozen=True)
class PlannedProgram:
    """A milling or laser program with what the job keeps of it."""

    target: routing.MachineFacts
    facts: ProgramFacts
    engine: str
    estimated_time_s: float
    gcode: bytes = field(repr=False)
    verification: dict[str, object]
    render: bytes = field(default=b"", repr=False)  # PNG (milling) or SVG (laser); b"": none
    key: str = ""
    reused: bool = False

    @property
    def render_name(self) -> str:
        return RENDER_NAMES[self.target.process]

    @property
    def summary(self) -> str:
        """ "2 tools, ~5 min for CNC 3020 mill (GRBL 1.1), 120 × 80 × 6 mm aluminium-6061" """
        tools = len(self.facts.tools)
        milled = self.target.process == CNC_MILL
        what = f"{tools} tool{'s' if tools != 1 else ''}, " if milled else ""
        return (
            f"{what}~{round(self.estimated_time_s) // 60} min for "
            f"{self.target.model or self.target.name}, {self.facts.stock_text}"
        )


def stock_thickness(*, part_mm: float, material: MaterialFacts, process: str) -> float:
    """The plate (mill) or sheet (laser) the part is made from; Rejected when the material
    comes in none that fits: no plate as thick as the part, or no sheet of its thickness."""
    sheets = sorted(material.sheet_thicknesses_mm)
    listed = ", ".join(f"{t:g}" for t in sheets)
    if not sheets:
        raise Rejected(f"{material.name} is not stocked as plate or sheet: nothing to cut from")
    if process == CNC_MILL:
        fitting = [t for t in sheets if t + THICKER_THAN_PLATE_MM >= part_mm]
        if not fitting:
            raise Rejected(
                f"the part is {part_mm:g} mm thick; {material.name} is stocked only up to "
                f"{sheets[-1]:g} mm ({listed} mm)"
            )
        return fitting[0]
    matching = [t for t in sheets if sheet_matches(t, part_mm)]
    if not matching:
        raise Rejected(
            f"the part is {part_mm:g} mm thick; a laser cuts it only from a sheet of that "
            f"thickness, and {material.name} is stocked in {listed} mm"
        )
    return matching[0]


def program_target(
    *,
    process: str,
    material: MaterialFacts,
    report: ValidationReport,
    machines: Sequence[routing.MachineFacts],
) -> routing.MachineFacts:
    """The best capable machine of the process, as the slicer's target is chosen."""
    needs = routing.JobNeeds(
        process=process,
        material=material.slug,
        extents_mm=report.extents_mm,
        allowed_machines=frozenset(report.capable),
    )
    candidates = routing.capable_machines(needs, machines)
    if not candidates:
        raise Rejected("no machine can make this part with the chosen material")
    return candidates[0]


def comment_safe(text: str) -> str:
    """Text for a G-code comment: "(" and ")" end or nest one, which GRBL and LinuxCNC refuse
    ("CO2 laser (GRBL 1.1)" becomes "CO2 laser [GRBL 1.1]")."""
    return text.replace("(", "[").replace(")", "]")


def laser_profile(machine: routing.MachineFacts) -> LaserProfile:
    """A laser cutter as its planner sees it. A source the cutting table does not know is the
    shop's configuration error: the job fails with it (ToolpathEngineError)."""
    x, y, _ = machine.build_volume_mm
    try:
        return LaserProfile(
            machine_model=comment_safe(machine.model or machine.name),
            bed_mm=(x, y),
            source=machine.laser_source or "co2",
            max_s=machine.max_power_s or 1000,
        )
    except ValueError as error:
        raise engines.ToolpathEngineError(f"{machine.name}: {error}") from error


def plan_program(
    *,
    process: str,
    material: MaterialFacts,
    built: BuiltPart,
    report: ValidationReport,
    machines: Sequence[routing.MachineFacts],
    checks: ProgramChecks,
    reuse: Reuse,
) -> PlannedProgram:
    """The verified program of a cnc_mill or laser part for the best capable machine; Rejected
    when no machine, stock, tool or cutting data makes it, or when its verification fails. A
    program stored for the same inputs is verified again rather than planned again."""
    if process not in PROCESSES:
        raise Rejected(f"no program planner for {process}")
    target = program_target(process=process, material=material, report=report, machines=machines)
    thickness = stock_thickness(part_mm=report.extents_mm[2], material=material, process=process)
    if process == LASER:
        return _laser_program(target, material, thickness, built, checks, reuse)
    return _milling_program(target, material, thickness, built, checks, reuse)


def _laser_program(
    target: routing.MachineFacts,
    material: MaterialFacts,
    thickness: float,
    built: BuiltPart,
    checks: ProgramChecks,
    reuse: Reuse,
) -> PlannedProgram:
    profile = laser_profile(target)
    step = built.step or None
    key = input_key(
        "program", LASER, built.sha256, _sha256(built.step), material.slug, thickness,
        LASER_ENGINE, asdict(profile),
    )  # fmt: skip
    stored = reuse(GCODE, key)
    program = (
        _stored_program(stored, LASER, material.slug, thickness)
        if stored is not None
        else plan_cutting(
            step=step, stl=built.stl, material=material.slug, thickness_mm=thickness,
            machine=profile,
        )
    )  # fmt: skip
    # Rejected when the program does not cut its part out, or cuts into it.
    check = verify_cutting(
        program.gcode, step=step, stl=built.stl, material=material.slug,
        thickness_mm=thickness, machine=profile,
    )  # fmt: skip
    verification: dict[str, object] = check.to_json()
    verification["rs274"] = _rs274(program.gcode, (), checks)
    facts = program_facts(program, process=LASER) if stored is None else _facts(stored)
    return PlannedProgram(
        target=target,
        facts=facts,
        engine=program.engine,
        estimated_time_s=program.estimated_time_s,
        gcode=program.gcode,
        verification=verification,
        render=_print_svg(cut_svg(program)),
        key=key,
        reused=stored is not None,
    )


def machine_tools(machine: routing.MachineFacts) -> ToolTable:
    """The tools the mill holds: its T numbers of the shop's tool table (all of it when it
    names none). A number the table does not have is the shop's configuration error."""
    if not machine.tools:
        return DEFAULT_TOOL_TABLE
    by_number = {tool.number: tool for tool in DEFAULT_TOOL_TABLE.tools}
    unknown = [number for number in machine.tools if number not in by_number]
    if unknown:
        raise engines.ToolpathEngineError(
            f"{machine.name} lists T{', T'.join(str(n) for n in unknown)}, which the shop's "
            "tool table does not have"
        )
    return ToolTable(tools=tuple(by_number[number] for number in machine.tools))


def mill_profile(machine: routing.MachineFacts) -> MillProfile:
    """A mill as its planner sees it: its travel, spindle and G-code dialect (its flavour)."""
    if machine.flavour not in DIALECTS:
        raise engines.ToolpathEngineError(
            f"{machine.name}'s flavour {machine.flavour!r} is no CNC dialect "
            f"({', '.join(DIALECTS)})"
        )
    spindle = {"max_rpm": machine.spindle_max_rpm} if machine.spindle_max_rpm else {}
    try:
        return MillProfile(
            machine_model=comment_safe(machine.model or machine.name),
            travel_mm=machine.build_volume_mm,
            dialect=machine.flavour,
            **spindle,
        )
    except ValueError as error:
        raise engines.ToolpathEngineError(f"{machine.name}: {error}") from error


def _milling_program(
    target: routing.MachineFacts,
    material: MaterialFacts,
    thickness: float,
    built: BuiltPart,
    checks: ProgramChecks,
    reuse: Reuse,
) -> PlannedProgram:
    profile, tools = mill_profile(target), machine_tools(target)
    step = built.step or None
    key = input_key(
        "program", CNC_MILL, built.sha256, _sha256(built.step), material.slug, thickness,
        MILL_ENGINE, asdict(profile), tools.to_json(),
    )  # fmt: skip
    stored = reuse(GCODE, key)
    if stored is not None:
        facts, program = _facts(stored), _stored_program(stored, CNC_MILL, material.slug, thickness)
    else:
        # Rejected: a feature no tool makes, a plate thinner than the part, no cutting data.
        program = plan_milling(
            step=step, stl=built.stl, material=material.slug, stock_thickness_mm=thickness,
            tools=tools, machine=profile, dialect=profile.dialect,
        )  # fmt: skip
        facts = program_facts(program, process=CNC_MILL)
    # Rejected when the simulated stock is not the part: a gouge, stock left, no tabs, a move
    # outside the machine or the stock.
    check = verify_program(
        program.gcode,
        stl=built.stl,
        stock=program.stock,
        tools=program.tools,
        envelope=Envelope.for_travel(profile.travel_mm, program.stock),
        resolution_mm=checks.zmap_resolution_mm,
        gouge_tolerance_mm=checks.gouge_tolerance_mm,
        remaining_tolerance_mm=checks.remaining_tolerance_mm,
    )
    verification: dict[str, object] = check.to_json()
    verification["rs274"] = _rs274(program.gcode, program.tools, checks)
    return PlannedProgram(
        target=target,
        facts=facts,
        engine=program.engine,
        estimated_time_s=program.estimated_time_s,
        gcode=program.gcode,
        verification=verification,
        render=render_simulation(check.simulation),
        key=key,
        reused=stored is not None,
    )


def _tool_use(tool: ProgramTool) -> ToolUse:
    return ToolUse(
        number=tool.number,
        name=tool.name,
        kind=tool.kind,
        diameter_mm=tool.diameter_mm,
        operations=tool.operations,
        spindle_rpm=tool.spindle_rpm,
        feed_mm_min=tool.feed_mm_min,
        plunge_mm_min=tool.plunge_mm_min,
        stepdown_mm=tool.stepdown_mm,
        power_percent=tool.power_percent,
    )


def _rs274(gcode: bytes, tools: Sequence[ToolUse], checks: ProgramChecks) -> str:
    """LinuxCNC's interpreter on the program: "accepted", or "not installed" where it is not
    (a set-up without LinuxCNC still makes parts; the tests run it everywhere). Rejected
    with its errors when it refuses the program."""
    if not checks.rs274_binary:
        return "not run"
    try:
        errors = rs274_errors(
            gcode, tools=tools, binary=checks.rs274_binary, timeout_s=checks.rs274_timeout_s
        )
    except Rs274Unavailable:
        return "not installed"
    if errors:
        raise Rejected("LinuxCNC's interpreter refuses the program: " + "; ".join(errors))
    return "accepted"


def program_facts(program: MachineProgram, *, process: str) -> ProgramFacts:
    """What the job's toolpath meta keeps of a program: everything but the G-code."""
    stock = program.stock
    return ProgramFacts(
        dialect=program.dialect,
        stock_x_mm=round(stock.x_mm, 3),
        stock_y_mm=round(stock.y_mm, 3),
        stock_thickness_mm=stock.thickness_mm,
        stock_material=stock.material,
        stock_margin_mm=stock.margin_mm,
        tools=tuple(
            ProgramTool(
                number=tool.number,
                name=tool.name,
                kind=tool.kind,
                diameter_mm=tool.diameter_mm,
                operations=tool.operations,
                spindle_rpm=tool.spindle_rpm,
                feed_mm_min=round(tool.feed_mm_min, 1),
                plunge_mm_min=round(tool.plunge_mm_min, 1),
                stepdown_mm=round(tool.stepdown_mm, 3),
                power_percent=tool.power_percent,
            )
            for tool in program.tools
        ),
        work_offset=program.work_offset,
        setup_steps=program.setup_steps,
        warnings=program.warnings,
        cut_length_mm=round(program.cut_length_mm, 1),
        rapid_length_mm=round(program.rapid_length_mm, 1),
        filename=FILENAMES[process],
    )


def program_meta(planned: PlannedProgram) -> dict[str, object]:
    """What the G-code's own artifact keeps: the program's facts, so a later job with the same
    inputs finds them with the file."""
    return {
        "engine": planned.engine,
        "process": planned.target.process,
        "estimated_time_s": round(planned.estimated_time_s),
        "program": planned.facts.to_json(),
    }


def _facts(stored: Stored) -> ProgramFacts:
    return ProgramFacts.from_json(stored.meta.get("program") or {})


def _stored_program(
    stored: Stored, process: str, material: str, thickness: float
) -> MachineProgram:
    """A program stored earlier, as the value the verifier and the renderer read."""
    facts = _facts(stored)
    return MachineProgram(
        process=process,
        gcode=stored.content,
        dialect=facts.dialect,
        engine=str(stored.meta.get("engine", "")),
        estimated_time_s=float(stored.meta.get("estimated_time_s", 0)),
        stock=Stock(
            x_mm=facts.stock_x_mm,
            y_mm=facts.stock_y_mm,
            thickness_mm=thickness,
            material=material,
            margin_mm=facts.stock_margin_mm,
        ),
        tools=tuple(_tool_use(tool) for tool in facts.tools),
    )


def _print_svg(svg: bytes) -> bytes:
    """The cut paths drawn for paper: a cutter's 0.01 mm hairline would vanish on a traveler."""
    return svg.replace(b'stroke-width="0.01"', b'stroke-width="0.4"')


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest() if content else ""
