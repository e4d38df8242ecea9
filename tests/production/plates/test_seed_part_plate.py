"""Quantity 5 of a seed part: one plate, one program per engine, verified copy by copy."""

import io
import os
import shutil
from functools import cache

import pytest
import trimesh

from catalog.geometry import BuildLimits, build_geometry
from catalog.parts import DEMO_PARTS
from production.plates.arrange import Bed, CopyToPlace, arrange
from production.plates.meshes import footprint, plate_copies, plate_stl
from production.toolpath import engines
from production.toolpath.verify import verify_plate_gcode
from tests.production.toolpath.gcode_reader import make_profile

pytestmark = pytest.mark.cad  # builds the part in the CadQuery sandbox; no database

PROFILE = make_profile()
JOB = 7


@cache
def spacer() -> trimesh.Trimesh:
    part = next(p for p in DEMO_PARTS if p.slug == "spacer")
    defaults = {parameter["name"]: parameter["default"] for parameter in part.schema}
    built = build_geometry(part.script, defaults, limits=BuildLimits(require_bwrap=False))
    mesh = trimesh.load_mesh(io.BytesIO(built.stl), file_type="stl")
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


@pytest.mark.parametrize(
    "engine",
    [
        engines.BUILTIN,
        pytest.param(
            engines.PRUSASLICER,
            marks=pytest.mark.skipif(
                shutil.which("prusa-slicer") is None and not os.environ.get("CI"),
                reason="prusa-slicer is not installed (Debian package prusa-slicer)",
            ),
        ),
    ],
)
def test_five_spacers_make_one_plate_whose_gcode_prints_each_copy(engine: str) -> None:
    parts = {JOB: spacer()}
    copies = [CopyToPlace(JOB, n, footprint(spacer())) for n in range(1, 6)]
    arrangement = arrange(copies, Bed(PROFILE.bed_mm))
    (plate,) = arrangement.plates
    assert [p.copy for p in plate.placements] == [1, 2, 3, 4, 5]

    toolpath = engines.plan(
        plate_stl(plate, parts), PROFILE, engine=engine, timeout_s=300, arranged=True
    )
    report = verify_plate_gcode(toolpath.gcode, copies=plate_copies(plate, parts), profile=PROFILE)
    assert [row.label for row in report.copies] == [f"job {JOB} copy {n}" for n in range(1, 6)]
    assert all(row.status == "pass" for row in report.copies)
    one = report.copies[0]
    assert one.top_mm == pytest.approx(one.height_mm, abs=PROFILE.layer_height_mm)
