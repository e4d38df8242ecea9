"""Run the pipeline for one part synchronously (no broker, no order) and write the files.

    python manage.py make_part shaft-collar --param bore_d=25 --material petg --out /tmp/collar
    python manage.py make_part --mesh bracket.stl --layer-height 0.15 --infill 40 --json
    python manage.py make_part spacer --quantity 12 --out /tmp/spacers

Runs the worker's own steps (production.pipeline.steps.STEPS: build, validate, toolpath with
the DFM orientation and repaired mesh, traveler) against the machines in the database, then
says which machine the router would send it to. With --out it writes part.step (not for an STL
mesh), part.stl, drawing.svg, part-repaired.stl (when validation repaired the mesh),
part.gcode, traveler.pdf and report.json; --json prints the report on stdout.

With --quantity N (more than 1) it also plans the plates for N copies on that machine's bed
(production.plates: spacing MF_PLATE_SPACING_MM, at most MF_PLATES_MAX_PER_PLAN plates), slices
each plate as one program and checks it copy by copy, and writes plate-1.gcode, plate-1.pdf
(the plate traveler: plate map, jobs, a QC row per copy), plate-2.gcode, ... and the plan in
report.json ("plates").

Exit status: 0 made; 1 refused (bad parameter or option, unmakeable part, no machine; also
a build or slicer that failed), with a one-line reason on stderr; 2 the --mesh file cannot be
read as a mesh (missing, not an STL or STEP file, truncated or corrupt).
"""

import hashlib
import io
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trimesh
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from catalog import geometry
from catalog.models import Material, PartFamily
from catalog.parameters import (
    ParameterError,
    SchemaError,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from microfactory.errors import Rejected
from production import machines as shop
from production import routing, runner
from production.job_values import material_facts, part_spec
from production.pipeline.steps import STEPS, JobSoFar, SliceInputs, slice_inputs
from production.pipeline.validation import ValidationRejected
from production.pipeline.values import Paperwork, PartSpec, SlicerSettings
from production.plate_runner import keep_out_zones_of_profile
from production.plates.arrange import Bed, bed_for
from production.plates.programs import (
    PlatePlan,
    PlateProgram,
    plan_copies,
    plate_map_svg,
    plate_program,
)
from production.plates.traveler import PlateCopyRow, PlateJob, PlateTraveler, render_plate_traveler
from production.plates.values import TooManyPlates
from production.toolpath import engines

REFUSED, UNREADABLE = 1, 2
JOB = 1  # make_part's one job, as the plate plan names it
FDM = "fdm"
# option -> (SlicerSettings field, type, what it must be)
SLICER_OPTIONS = {
    "layer_height": ("layer_height_mm", float, "a positive number of mm"),
    "first_layer_height": ("first_layer_height_mm", float, "a positive number of mm"),
    "perimeters": ("perimeters", int, "a whole number, 0 or more"),
    "top_layers": ("top_layers", int, "a whole number, 0 or more"),
    "bottom_layers": ("bottom_layers", int, "a whole number, 0 or more"),
    "infill": ("infill_percent", float, "a percentage from 0 to 100"),
    "brim": ("brim_width_mm", float, "a width in mm, 0 or more (0: no brim)"),
    "seam": ("seam", str, "nearest, aligned or corner"),
    "min_layer_time": ("min_layer_time_s", float, "a number of seconds, 0 or more (0: none)"),
}


class Refusal(Exception):
    """The run stops here: `code` is the exit status, the message its one-line reason."""

    def __init__(self, message: str, code: int = REFUSED) -> None:
        super().__init__(message)
        self.code = code


class Command(BaseCommand):
    help = (
        "Build, validate, slice and print the traveler for one part (a catalog part or any "
        "STL/STEP mesh) with the worker's steps, synchronously."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("part", nargs="?", help="part family slug, e.g. shaft-collar")
        parser.add_argument("--mesh", type=Path, help="an STL or STEP file, instead of a part")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--material", help="material slug (default: the part's first)")
        parser.add_argument("--machine", help="only consider this machine (slug)")
        parser.add_argument(
            "--engine", help="slice with this engine instead of the machine's: builtin|prusaslicer"
        )
        parser.add_argument("--layer-height", metavar="MM")
        parser.add_argument("--first-layer-height", metavar="MM")
        parser.add_argument("--perimeters", metavar="N")
        parser.add_argument("--top-layers", metavar="N", help="solid layers under a top surface")
        parser.add_argument("--bottom-layers", metavar="N", help="solid layers over a bottom")
        parser.add_argument("--infill", metavar="PERCENT", help="sparse infill density, 0-100")
        parser.add_argument("--brim", metavar="MM", help="brim width in mm (0: none)")
        parser.add_argument(
            "--seam", help="where loops start: nearest (default), aligned (at the back), corner"
        )
        parser.add_argument(
            "--min-layer-time", metavar="S", help="slow down, then wait, below this (0: none)"
        )
        parser.add_argument(
            "--quantity", metavar="N", help="copies: plans, slices and checks their plates"
        )
        parser.add_argument("--out", type=Path, help="directory for the files (default: none)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        report: dict[str, Any] = {"steps": {}}
        try:
            self._make(options, report)
        except Refusal as refusal:
            self._finish(options, report)
            raise CommandError(str(refusal), returncode=refusal.code) from None
        self._finish(options, report)

    def _make(self, options: dict[str, Any], report: dict[str, Any]) -> None:
        slicer = slicer_settings(options)
        quantity = copies_wanted(options["quantity"])
        engine = options["engine"]
        if engine is not None and engine not in engines.ENGINES:
            raise Refusal(f"bad option: --engine must be one of {', '.join(engines.ENGINES)}")
        if options["mesh"] is not None:
            if options["part"] or options["param"]:
                raise Refusal("give either a part (with --param) or --mesh, not both")
            part = self._mesh_part(options["mesh"], options["material"])
        elif options["part"]:
            part = self._catalog_part(options)
        else:
            raise Refusal("name a part family, or give --mesh FILE")
        machines = runner.machine_facts(process=part.process)
        if options["machine"]:
            machines = [m for m in machines if m.key == options["machine"]]
            if not machines:
                raise Refusal(f"no {part.process} machine '{options['machine']}'")
        report.update(
            part=part.family_name,
            revision=part.revision_number,
            checksum=part.revision_checksum,
            parameters=dict(part.parameters),
            material=part.material.slug,
            settings={k: v for k, v in asdict(slicer).items() if v is not None},
        )
        so_far = JobSoFar(
            part=part,
            paperwork=Paperwork(
                job_number="MAKE-PART",
                station_url="",
                order_reference="make_part (no order)",
                organisation="",
                requested_by="",
                due_date=None,
                priority="normal",
                quantity=quantity,
                printed_at=timezone.now(),
            ),
            setup=runner.pipeline_setup(machines=machines, slicer=slicer, engine=engine),
        )
        for step in STEPS:
            so_far = self._run(step, so_far, report, mesh=options["mesh"] is not None)
        self._write(options["out"], so_far, report)
        report["steps"]["routing"] = would_route(so_far, machines)
        if quantity > 1:
            self._plates(so_far, quantity, options["out"], report)
        report["seconds"] = round(sum(s.get("seconds", 0) for s in report["steps"].values()), 3)

    def _run(self, step: Any, so_far: JobSoFar, report: dict[str, Any], *, mesh: bool) -> JobSoFar:
        """Run one shared step; a refusal or failure stops the run with its reason."""
        started = time.monotonic()
        try:
            so_far = step.after(so_far)
        except ValidationRejected as refusal:
            report["steps"][step.name] = {
                "status": "rejected",
                "reason": str(refusal),
                "report": refusal.report.to_json(),
            }
            code = REFUSED if refusal.report.readable else UNREADABLE
            raise Refusal(f"{step.name}: rejected: {refusal}", code) from None
        except Rejected as refusal:
            report["steps"][step.name] = {"status": "rejected", "reason": str(refusal)}
            # Building a mesh only reads it: a mesh the sandbox refuses is one it cannot read.
            code = UNREADABLE if mesh and step.name == "geometry" else REFUSED
            raise Refusal(f"{step.name}: rejected: {refusal}", code) from None
        except (geometry.BuildFailed, engines.ToolpathEngineError) as failure:
            report["steps"][step.name] = {"status": "failed", "reason": str(failure)}
            raise Refusal(f"{step.name}: failed: {failure}") from None
        entry: dict[str, Any] = {"status": "ok", "seconds": round(time.monotonic() - started, 3)}
        if step.name == "geometry":
            assert so_far.geometry is not None
            entry.update(so_far.geometry.meta.to_json())
        elif step.name == "validation":
            assert so_far.report is not None
            entry["report"] = so_far.report.to_json()
        elif step.name == "toolpath":
            assert so_far.toolpath is not None
            entry.update(so_far.toolpath.meta.to_json(), summary=so_far.toolpath.summary)
        report["steps"][step.name] = entry
        return so_far

    def _plates(
        self, so_far: JobSoFar, quantity: int, out: Path | None, report: dict[str, Any]
    ) -> None:
        """Plan the plates for `quantity` copies on the machine the part was sliced for, slice
        and check each, and write its G-code and traveler."""
        started = time.monotonic()
        given = slice_inputs(so_far)
        mesh = trimesh.load_mesh(io.BytesIO(given.stl), file_type="stl")
        parts = {JOB: mesh}
        bed = bed_for(given.profile, keep_out_zones=keep_out_zones_of_profile(given.target.key))
        try:
            plan = plan_copies(
                parts,
                {JOB: quantity},
                bed,
                spacing_mm=settings.PLATE_SPACING_MM,
                max_plates=settings.PLATES_MAX_PER_PLAN,
            )
        except TooManyPlates as refusal:
            report["plates"] = {"status": "rejected", "reason": str(refusal)}
            raise Refusal(f"plates: rejected: {refusal}") from None
        report["plates"] = {"status": "planning", **plan.to_json()}
        if plan.arrangement.unplaced:
            reason = plan.arrangement.unplaced[0].reason
            count = len(plan.arrangement.unplaced)
            report["plates"]["status"] = "rejected"
            raise Refusal(f"plates: rejected: {count} of {quantity} copies fit no plate: {reason}")
        setup = so_far.setup
        programs = []
        for number, plate in enumerate(plan.arrangement.plates, start=1):
            try:
                programs.append(
                    plate_program(
                        number,
                        plate,
                        parts,
                        given.profile,
                        engine=given.target.toolpath_engine,
                        timeout_s=setup.prusaslicer_timeout_s,
                        prusaslicer_binary=setup.prusaslicer_binary,
                    )
                )
            except Rejected as refusal:
                report["plates"]["status"] = "rejected"
                raise Refusal(f"plates: plate {number} rejected: {refusal}") from None
            except engines.ToolpathEngineError as failure:
                report["plates"]["status"] = "failed"
                raise Refusal(f"plates: plate {number} failed: {failure}") from None
        report["plates"] = {
            "status": "ok",
            "seconds": round(time.monotonic() - started, 3),
            "copies": quantity,
            "lower_bound_plates": plan.lower_bound,
            "plates": [program.to_json() for program in programs],
            "estimated_time_s": sum(program.estimated_time_s for program in programs),
            "filament_g": round(sum(program.filament_g for program in programs), 2),
        }
        if out is None:
            return
        for program in programs:
            traveler = self._plate_traveler(so_far, given, plan, program, bed)
            (out / f"plate-{program.number}.gcode").write_bytes(program.gcode)
            (out / f"plate-{program.number}.pdf").write_bytes(render_plate_traveler(traveler))
            report["files"] += [f"plate-{program.number}.gcode", f"plate-{program.number}.pdf"]

    def _plate_traveler(
        self, so_far: JobSoFar, given: SliceInputs, plan: PlatePlan, program: PlateProgram, bed: Bed
    ) -> PlateTraveler:
        placements = program.plate.placements
        quantity = so_far.paperwork.quantity
        part = so_far.part
        return PlateTraveler(
            plate_reference=f"{so_far.paperwork.job_number} P{program.number}",
            plate_number=program.number,
            plates_in_plan=len(plan.arrangement.plates),
            printed_at=f"{so_far.paperwork.printed_at:%Y-%m-%d %H:%M}",
            machine=given.target.model or given.target.name,
            material=part.material.name,
            engine=program.engine,
            layers=program.layers,
            filament_g=program.filament_g,
            estimated_time_s=program.estimated_time_s,
            map_svg=plate_map_svg(
                program.plate,
                plan.footprints,
                bed,
                labels=[str(n) for n in range(1, len(placements) + 1)],
            ),
            jobs=(
                PlateJob(
                    job_number=so_far.paperwork.job_number,
                    part_name=part.family_name,
                    revision_label=f"r{part.revision_number}",
                    material=part.material.name,
                    order_reference=so_far.paperwork.order_reference,
                    copies=len(placements),
                ),
            ),
            copies=tuple(
                PlateCopyRow(n, so_far.paperwork.job_number, p.copy, quantity)
                for n, p in enumerate(placements, start=1)
            ),
        )

    def _catalog_part(self, options: dict[str, Any]) -> PartSpec:
        family = PartFamily.objects.filter(slug=options["part"]).first()
        if family is None:
            raise Refusal(f"unknown part '{options['part']}'")
        revision = family.current_revision()
        if revision is None:
            raise Refusal(f"part '{family.slug}' has no published revision")
        raw = dict(_pair(p) for p in options["param"])
        try:
            parameters = validate_parameters(
                parse_schema(revision.parameter_schema),
                raw,
                rules=parse_rules(revision.rules),
                fill_defaults=True,
            )
        except ParameterError as error:
            raise Refusal(f"bad parameter: {error}") from None
        except SchemaError as error:
            raise Refusal(f"the part's schema is broken: {error}") from None
        materials = {m.slug: m for m in revision.materials.all()}
        slug = options["material"] or next(iter(sorted(materials)), None)
        if slug not in materials:
            raise Refusal(
                f"material '{slug}' is not offered for {family.slug}; choose "
                + ", ".join(sorted(materials))
            )
        return part_spec(
            revision=revision, parameters=parameters, material=materials[slug], with_model=True
        )

    def _mesh_part(self, path: Path, material_slug: str | None) -> PartSpec:
        """Any mesh as a static part, built by the worker's static-model rules (STEP converted
        in the sandbox, STL passed through) in the material asked for."""
        try:
            model = path.read_bytes()
        except OSError as error:
            raise Refusal(f"cannot read {path}: {error.strerror}", UNREADABLE) from None
        try:
            info = geometry.inspect_model(
                model,
                max_bytes=settings.CATALOG_MODEL_MAX_MB * 1024 * 1024,
                max_triangles=settings.CATALOG_MODEL_MAX_TRIANGLES,
            )
        except geometry.ModelInvalid as error:
            raise Refusal(f"{path}: {error}", UNREADABLE) from None
        return PartSpec(
            family_name=path.name,
            revision_number=0,
            revision_checksum=hashlib.sha256(b"mesh:" + model).hexdigest(),
            kind=geometry.STATIC,
            process=FDM,
            process_label="FDM 3D printing",
            material=material_facts(_mesh_material(material_slug)),
            model=model,
            has_step=info.format == "step",
        )

    def _write(self, out: Path | None, so_far: JobSoFar, report: dict[str, Any]) -> None:
        if out is None:
            return
        built, toolpath, traveler = so_far.geometry, so_far.toolpath, so_far.traveler
        assert built is not None and toolpath is not None and traveler is not None
        files = {
            "part.step": built.step,
            "part.stl": built.stl,
            "drawing.svg": built.svg.encode(),
            "part-repaired.stl": toolpath.repaired.content if toolpath.repaired else b"",
            # part.nc for a mill; a mill's simulated result or a laser's cut paths beside it
            toolpath.gcode_name: toolpath.gcode,
            toolpath.render_name: toolpath.render,
            "traveler.pdf": traveler.pdf,
        }
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            if content:
                (out / name).write_bytes(content)
        report["files"] = sorted(name for name, content in files.items() if content)

    def _finish(self, options: dict[str, Any], report: dict[str, Any]) -> None:
        """The report, however far the run got: into --out, onto stdout, and a summary."""
        text = json.dumps(report, indent=2, default=str, ensure_ascii=False)
        out: Path | None = options["out"]
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "report.json").write_text(text)
        if options["json"]:
            self.stdout.write(text)
            return
        toolpath = report["steps"].get("toolpath", {})
        routed = report["steps"].get("routing")
        if routed is None:
            return
        where = (
            f"{routed['machine']} ({routed['site']})"
            if routed["status"] == "ok"
            else f"no machine now ({routed['reason']})"
        )
        self.stdout.write(
            f"{report['part']} r{report['revision']} -> {where}: {toolpath.get('summary', '')}"
            + (f"; files in {out}" if out is not None else "")
        )


def slicer_settings(options: dict[str, Any]) -> SlicerSettings:
    """The slicer options given, checked: a bad value is refused (exit 1) with its option."""
    values: dict[str, Any] = {}
    for option, (name, kind, what) in SLICER_OPTIONS.items():
        raw = options.get(option)
        if raw is None:
            continue
        flag = "--" + option.replace("_", "-")
        try:
            value = kind(raw)
            values[name] = value
            SlicerSettings(**{name: value})
        except ValueError:
            raise Refusal(f"bad option: {flag} must be {what}, not {raw!r}") from None
    return SlicerSettings(**values)


def copies_wanted(raw: str | None) -> int:
    """--quantity, checked: a whole number from 1 to the order limit (MF_ORDER_MAX_QUANTITY)."""
    if raw is None:
        return 1
    most = settings.ORDER_MAX_QUANTITY
    try:
        quantity = int(raw)
    except ValueError:
        quantity = 0
    if not 1 <= quantity <= most:
        raise Refusal(
            f"bad option: --quantity must be a whole number from 1 to {most}, not {raw!r}"
        )
    return quantity


def _mesh_material(slug: str | None) -> Material:
    """The material asked for, or the first (by slug) an FDM machine has loaded."""
    if slug is not None:
        material = Material.objects.filter(slug=slug).first()
        if material is None:
            raise Refusal(f"unknown material '{slug}'")
        return material
    loaded = sorted({m for facts in runner.machine_facts(process=FDM) for m in facts.materials})
    material = Material.objects.filter(slug__in=loaded).order_by("slug").first()
    if material is None:
        raise Refusal("no FDM machine has a material loaded; name one with --material")
    return material


def would_route(so_far: JobSoFar, machines: list[routing.MachineFacts]) -> dict[str, Any]:
    """Where the router would send the job now (make_part routes nothing)."""
    assert so_far.report is not None and so_far.toolpath is not None
    meta = so_far.toolpath.meta
    needs = routing.JobNeeds(
        process=so_far.part.process,
        material=so_far.part.material.slug,
        extents_mm=so_far.report.extents_mm,
        profile_key=meta.profile_key,
        nozzle_mm=meta.nozzle_mm if meta.process == FDM else None,  # a program has no nozzle
        estimated_time_s=meta.estimated_time_s,
        allowed_machines=frozenset(so_far.report.capable),
    )
    try:
        chosen = routing.choose_machine(needs, machines, changeover_s=shop.changeover_s())
    except (routing.NoMachineAvailable, Rejected) as reason:
        return {"status": "waiting", "reason": str(reason)}
    return {"status": "ok", "machine": chosen.key, "site": chosen.site}


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise Refusal(f"--param must be NAME=VALUE, got '{text}'")
    return name.strip(), value.strip()
