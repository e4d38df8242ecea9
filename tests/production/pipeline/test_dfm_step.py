"""STEP input, converted in the geometry sandbox (each test starts one CadQuery child)."""

from pathlib import Path

import pytest

from catalog.geometry import BuildLimits
from catalog.geometry.step_import import step_to_stl
from microfactory.errors import Rejected
from production.pipeline.validation import MachineLimits, dfm_report

pytestmark = pytest.mark.cad  # STEP reading in the sandbox; no database

BLOCK_STEP = Path(__file__).parents[2] / "data" / "meshes" / "block-20x10x5.step"
LIMITS = BuildLimits(require_bwrap=False)


def convert(step: bytes) -> bytes:
    return step_to_stl(step, limits=LIMITS)


def test_a_step_file_is_validated_like_its_stl():
    report = dfm_report(
        BLOCK_STEP.read_bytes(), machines=[MachineLimits("mk4")], file_format="step",
        step_converter=convert,
    )  # fmt: skip
    assert report.status == "pass"
    assert report.extents_mm == pytest.approx((20, 10, 5))
    assert report.volume_mm3 == pytest.approx(1000)


def test_a_step_file_opencascade_cannot_parse_is_unreadable():
    broken = b"ISO-10303-21;\nHEADER;\nthis is not STEP\nENDSEC;\n"
    with pytest.raises(Rejected, match="^OpenCascade could not parse it$"):
        convert(broken)


def test_a_file_that_is_not_step_at_all_is_refused_before_the_sandbox():
    with pytest.raises(Rejected, match="not a STEP file"):
        convert(b"solid cube\nendsolid cube\n")
