"""Run the whole pipeline for one part synchronously (no broker, no order) and write the files.

    python manage.py make_part shaft-collar --param bore_d=25 --material petg --out /tmp/collar

writes part.step, part.stl, drawing.svg, part.gcode, traveler.pdf and report.json. Any failure
exits non-zero with a one-line reason.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from catalog.models import PartFamily
from catalog.parameters import (
    ParameterError,
    SchemaError,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from microfactory.errors import Rejected

T = TypeVar("T")


class Command(BaseCommand):
    help = "Build, validate, slice, print the traveler for and route one part, synchronously."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("part", help="part family slug, e.g. shaft-collar")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--material", help="material slug (default: the part's first)")
        parser.add_argument("--machine", help="only consider this machine (slug)")
        parser.add_argument("--out", required=True, type=Path, help="directory for the files")

    def handle(self, *args: Any, **options: Any) -> None:
        from catalog import geometry
        from production import routing, runner
        from production.pipeline import traveler as travelers
        from production.pipeline.validation import validate_part
        from production.toolpath import engines
        from production.toolpath.verify import verify_gcode

        report: dict[str, Any] = {"steps": {}}
        out: Path = options["out"]
        family = PartFamily.objects.filter(slug=options["part"]).first()
        if family is None:
            raise CommandError(f"unknown part '{options['part']}'")
        revision = family.current_revision()
        if revision is None:
            raise CommandError(f"part '{family.slug}' has no published revision")
        raw = dict(self._pair(p) for p in options["param"])
        try:
            parameters = validate_parameters(
                parse_schema(revision.parameter_schema),
                raw,
                rules=parse_rules(revision.rules),
                fill_defaults=True,
            )
        except ParameterError as error:
            raise CommandError(f"bad parameter: {error}") from error
        except SchemaError as error:
            raise CommandError(f"the part's schema is broken: {error}") from error
        materials = {m.slug: m for m in revision.materials.all()}
        material_slug = options["material"] or next(iter(sorted(materials)), None)
        if material_slug not in materials:
            raise CommandError(
                f"material '{material_slug}' is not offered for {family.slug}; choose "
                + ", ".join(sorted(materials))
            )
        material = materials[material_slug]
        machines = runner.machine_facts(process=revision.process)
        if options["machine"]:
            machines = [m for m in machines if m.key == options["machine"]]
            if not machines:
                raise CommandError(f"no {revision.process} machine '{options['machine']}'")
        out.mkdir(parents=True, exist_ok=True)
        report.update(
            part=family.slug,
            revision=revision.number,
            checksum=revision.checksum,
            parameters=parameters,
            material=material.slug,
        )

        def step(name: str, run: Callable[[], T]) -> T:
            started = time.monotonic()
            try:
                result = run()
            except Rejected as refusal:
                report["steps"][name] = {"status": "rejected", "reason": str(refusal)}
                self._write_report(out, report)
                raise CommandError(f"{name}: rejected: {refusal}") from refusal
            except (
                geometry.BuildFailed,
                routing.NoMachineAvailable,
                engines.ToolpathEngineError,
            ) as error:
                report["steps"][name] = {"status": "failed", "reason": str(error)}
                self._write_report(out, report)
                raise CommandError(f"{name}: {error}") from error
            report["steps"][name] = {
                "status": "ok",
                "seconds": round(time.monotonic() - started, 3),
            }
            return result

        built = step(
            "geometry",
            lambda: geometry.build_geometry(
                revision.script, parameters, limits=runner.build_limits()
            ),
        )
        (out / "part.step").write_bytes(built.step)
        (out / "part.stl").write_bytes(built.stl)
        (out / "drawing.svg").write_text(built.svg)
        geometry_meta = {
            "bbox_mm": list(built.bbox_mm),
            "volume_mm3": built.volume_mm3,
            "area_mm2": built.area_mm2,
            "sandbox": built.sandbox,
        }
        report["steps"]["geometry"].update(geometry_meta)

        loaded = [m for m in machines if material.slug in m.materials]
        if not loaded:
            report["steps"]["validation"] = {"status": "rejected", "reason": "no machine"}
            self._write_report(out, report)
            raise CommandError(f"validation: no machine has {material.name} loaded")
        dfm = step(
            "validation",
            lambda: validate_part(
                built.stl, build_volumes_mm={m.key: m.build_volume_mm for m in loaded}
            ),
        )
        report["steps"]["validation"]["report"] = dfm.to_json()

        needs = routing.JobNeeds(
            process=revision.process, material=material.slug, extents_mm=dfm.extents_mm
        )
        candidates = routing.capable_machines(needs, machines)
        if not candidates:
            raise CommandError("toolpath: no capable machine for this part and material")
        target = candidates[0]
        profile = runner.fdm_profile(target, material=material)
        toolpath = step(
            "toolpath",
            lambda: engines.plan(
                built.stl,
                profile,
                engine=target.toolpath_engine,
                timeout_s=settings.PRUSASLICER_TIMEOUT_S,
                prusaslicer_binary=settings.PRUSASLICER_BINARY,
            ),
        )
        (out / "part.gcode").write_bytes(toolpath.gcode)
        verification = step(
            "verification", lambda: verify_gcode(toolpath.gcode, stl=built.stl, profile=profile)
        )
        toolpath_meta = {
            "engine": toolpath.engine,
            "layers": toolpath.layers,
            "filament_mm": round(toolpath.filament_mm, 1),
            "filament_g": round(toolpath.filament_g, 2),
            "estimated_time_s": round(toolpath.estimated_time_s),
            "layer_height_mm": profile.layer_height_mm,
            "nozzle_mm": profile.nozzle_mm,
            "planned_for": target.key,
            "profile": asdict(profile),
            "verification": verification.to_json(),
        }
        report["steps"]["toolpath"].update(toolpath_meta)

        def traveler_pdf() -> bytes:
            traveler = runner.make_traveler(
                job_number="MAKE-PART",
                station_url="",
                order_reference="make_part (no order)",
                organisation="",
                requested_by="",
                due_date=None,
                priority="normal",
                revision=revision,
                parameters=parameters,
                quantity=1,
                material=material,
                geometry_meta=geometry_meta,
                drawing_svg=built.svg,
                toolpath_meta=toolpath_meta,
                dfm_report=dfm.to_json(),
                printed_at=timezone.now(),
            )
            return travelers.render_traveler(traveler)

        (out / "traveler.pdf").write_bytes(step("traveler", traveler_pdf))
        chosen = step(
            "routing",
            lambda: routing.choose_machine(
                routing.JobNeeds(
                    process=revision.process,
                    material=material.slug,
                    extents_mm=dfm.extents_mm,
                    profile_key=target.profile_key,
                ),
                machines,
            ),
        )
        report["steps"]["routing"].update(machine=chosen.key, site=chosen.site)
        report["seconds"] = round(sum(s.get("seconds", 0) for s in report["steps"].values()), 3)
        self._write_report(out, report)
        self.stdout.write(
            f"{family.slug} r{revision.number} -> {chosen.name} ({chosen.site}): "
            f"{toolpath.layers} layers, {toolpath.filament_g:.1f} g, files in {out}"
        )

    @staticmethod
    def _pair(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise CommandError(f"--param must be NAME=VALUE, got '{text}'")
        return name.strip(), value.strip()

    @staticmethod
    def _write_report(out: Path, report: dict[str, Any]) -> None:
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
