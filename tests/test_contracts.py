"""The app boundaries (pyproject.toml, [tool.importlinter]; docs/architecture.md) hold: a
broken contract fails the suite, not only `make contracts`."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_between_apps_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_the_route_quote_matches_a_laser_sheet_as_the_planner_and_dfm_do():
    """orders.quoting cannot import production.toolpath (only production.public): its copy of
    the sheet rule must stay the one production.toolpath.program.sheet_matches applies."""
    from orders.quoting import MachiningRates
    from production.toolpath.program import SHEET_THICKER_MM, SHEET_THINNER_MM

    rates = MachiningRates()
    assert (rates.laser_sheet_thinner_mm, rates.laser_sheet_thicker_mm) == (
        SHEET_THINNER_MM,
        SHEET_THICKER_MM,
    )


def test_the_slicer_settings_know_the_seams_the_profile_knows():
    from production.pipeline.values import SEAMS as SETTINGS_SEAMS
    from production.toolpath.profile import SEAMS

    assert SETTINGS_SEAMS == SEAMS
