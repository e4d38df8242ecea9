"""engines.py: one call for every toolpath engine, and the versions that key the cache."""

import os
import shutil

import pytest

from production.toolpath import ENGINE, plan_toolpath
from production.toolpath.engines import ToolpathEngineError, engine_version, plan
from production.toolpath.prusaslicer import CONFIG_REVISION, prusaslicer_version
from tests.production.toolpath.gcode_reader import box_stl, make_profile

needs_prusaslicer = pytest.mark.skipif(
    shutil.which("prusa-slicer") is None and not os.environ.get("CI"),
    reason="prusa-slicer is not installed (Debian package prusa-slicer)",
)

BOX = box_stl(12, 12, 3)


def test_builtin_is_our_own_slicer() -> None:
    toolpath = plan(BOX, make_profile(), engine="builtin", timeout_s=1)
    assert toolpath == plan_toolpath(BOX, make_profile())
    assert toolpath.engine == ENGINE


def test_builtin_needs_no_prusaslicer() -> None:
    toolpath = plan(
        BOX, make_profile(), engine="builtin", timeout_s=1, prusaslicer_binary="/nonexistent"
    )
    assert toolpath.layers > 0
    assert engine_version("builtin", prusaslicer_binary="/nonexistent") == ENGINE


@needs_prusaslicer
def test_prusaslicer_slices_the_same_part_into_the_same_kind_of_toolpath() -> None:
    toolpath = plan(BOX, make_profile(), engine="prusaslicer", timeout_s=120)
    builtin = plan(BOX, make_profile(), engine="builtin", timeout_s=120)
    assert toolpath.engine.startswith("prusaslicer ")
    assert toolpath.layers == builtin.layers
    assert toolpath.filament_mm == pytest.approx(builtin.filament_mm, rel=0.3)


@needs_prusaslicer
def test_the_prusaslicer_cache_version_has_its_version_and_our_config_revision() -> None:
    version = engine_version("prusaslicer")
    assert version == (
        f"prusaslicer {prusaslicer_version('prusa-slicer')}; config {CONFIG_REVISION}"
    )
    assert version != engine_version("builtin")


def test_a_missing_prusaslicer_fails_planning_and_versioning() -> None:
    with pytest.raises(ToolpathEngineError, match="PrusaSlicer"):
        engine_version("prusaslicer", prusaslicer_binary="/nonexistent")
    with pytest.raises(ToolpathEngineError, match="PrusaSlicer"):
        plan(
            BOX,
            make_profile(),
            engine="prusaslicer",
            timeout_s=10,
            prusaslicer_binary="/nonexistent",
        )


def test_an_unknown_engine_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown toolpath engine 'cura'"):
        plan(BOX, make_profile(), engine="cura", timeout_s=10)
    with pytest.raises(ValueError, match="unknown toolpath engine 'cura'"):
        engine_version("cura")
