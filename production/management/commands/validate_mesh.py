"""Print the design-for-manufacturing report for a mesh file.

    python manage.py validate_mesh part.stl                     # against every FDM machine
    python manage.py validate_mesh part.stl --machine mk4-1     # one machine, by slug
    python manage.py validate_mesh part.step --process cnc_mill --json
    python manage.py validate_mesh clip.stl --unit inch         # an STL drawn in inches

Exit status: 0 when the part passes (possibly with warnings), 1 when a check fails, 2 when
the input cannot be read at all (missing file, not an STL or STEP, unknown machine).
"""

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from catalog.models import Process

EXIT_PASS, EXIT_FAIL, EXIT_UNREADABLE = 0, 1, 2
_FORMATS = {".stl": "stl", ".step": "step", ".stp": "step"}
_MARKS = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL"}


class Command(BaseCommand):
    help = "Check a mesh (STL or STEP) against machines and print its DFM report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="an .stl, .step or .stp file")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--machine", help="check against this machine only (its slug)")
        which.add_argument(
            "--process",
            choices=Process.values,
            default=Process.FDM,
            help="check against every machine of this process, or a typical one if there is "
            "none (default: fdm)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--unit",
            choices=["mm", "inch", "m", "cm"],
            default="mm",
            help="the unit an STL was drawn in (default mm); the report suggests one when "
            "millimetres make no sense of the file",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Imported here: trimesh and the sandbox are worker-side modules (STYLE.md).
        from catalog.geometry import BuildFailed
        from catalog.geometry.step_import import step_to_stl
        from production import runner
        from production.models import Machine
        from production.pipeline.dfm.units import UNITS
        from production.pipeline.validation import DEFAULT_MACHINES, dfm_report

        path: Path = options["file"]
        file_format = _FORMATS.get(path.suffix.lower(), "stl")
        limits = runner.validation_limits()
        if options["machine"]:
            slug = options["machine"]
            machine = Machine.objects.filter(slug=slug).first()
            if machine is None:
                self._unreadable(f"no machine with the slug '{slug}'")
            facts = [m for m in runner.machine_facts(process=machine.process) if m.key == slug]
            machines = [runner.machine_limits(m) for m in facts]
        else:
            process = options["process"]
            facts = runner.machine_facts(process=process)
            machines = [runner.machine_limits(m) for m in facts] or [DEFAULT_MACHINES[process]]
        try:
            with path.open("rb") as upload:
                # One byte past the limit is enough to know the file is too big.
                mesh = upload.read(limits.max_file_bytes + 1)
        except OSError as error:
            self._unreadable(f"cannot read {path}: {error.strerror}")

        build_limits = runner.build_limits()
        try:
            report = dfm_report(
                mesh,
                machines=machines,
                limits=limits,
                file_format=file_format,
                step_converter=lambda step: step_to_stl(step, limits=build_limits),
                scale={name: scale for name, scale, _ in UNITS}.get(options["unit"], 1.0),
            )
        except BuildFailed as error:
            self._unreadable(f"the STEP file could not be converted: {error}")

        if options["json"]:
            self.stdout.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        else:
            self._print(path, report)
        if not report.readable:
            sys.exit(EXIT_UNREADABLE)
        if report.status == "fail":
            sys.exit(EXIT_FAIL)

    def _print(self, path: Path, report: Any) -> None:
        self.stdout.write(f"{path}: {report.status.upper()}")
        if report.readable and report.triangles:
            x, y, z = report.extents_mm
            self.stdout.write(
                f"  {report.triangles} triangles, {x:g} x {y:g} x {z:g} mm as modelled, "
                f"{report.volume_mm3:.0f} mm³"
            )
        if report.scale != 1.0:
            self.stdout.write(f"  checked at x{report.scale:g} (the file's unit to mm)")
        if report.unit_guess is not None:
            self.stdout.write(
                f"  looks drawn in {report.unit_guess.unit}: try --unit {report.unit_guess.unit}"
            )
        if report.orientation is not None:
            self.stdout.write(f"  print orientation: {report.orientation.label}")
        for check in report.checks:
            where = f" [{check.machine}]" if check.machine else ""
            self.stdout.write(f"  {_MARKS[check.status]} {check.name}{where}: {check.message}")
            if check.status != "pass":
                self.stdout.write(f"       measured {check.value}; limit {check.limit}")
        for machine in report.machines:
            self.stdout.write(f"  machine {machine.key} ({machine.process}): {machine.status}")

    def _unreadable(self, message: str) -> NoReturn:
        self.stderr.write(message)
        sys.exit(EXIT_UNREADABLE)
