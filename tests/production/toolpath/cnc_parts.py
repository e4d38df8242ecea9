"""Parts for the milling tests, built with CadQuery in this process: the seed scripts at their
parameter ranges' corners and small hand-made solids with a pocket, a through hole and a slot.
"""

import tempfile
from pathlib import Path
from typing import Any

import cadquery as cq
from cadquery import cqgi

from catalog.parts import DEMO_PARTS


def seed_solid(slug: str, **parameters: Any) -> Any:
    """The seed part's solid, built by its script in process (no sandbox: our own scripts)."""
    part = next(p for p in DEMO_PARTS if p.slug == slug)
    result = cqgi.parse(part.script).build(build_parameters=parameters)
    if not result.success:
        raise RuntimeError(f"{slug} did not build: {result.exception}")
    return result.results[0].shape.val()


def step_and_stl(solid: Any, *, stl_tolerance_mm: float = 0.01) -> tuple[bytes, bytes]:
    """The STEP and STL of a solid, as the geometry step stores them. The planner reads the
    STEP when there is one: tests that never read the STL make it coarse (a fine one of a
    190 mm plate with 28 countersinks takes 10 s)."""
    with tempfile.TemporaryDirectory() as folder:
        step, stl = Path(folder) / "part.step", Path(folder) / "part.stl"
        cq.exporters.export(cq.Workplane().add(solid), str(step))
        cq.exporters.export(
            cq.Workplane().add(solid),
            str(stl),
            tolerance=stl_tolerance_mm,
            angularTolerance=max(0.05, stl_tolerance_mm * 5),
        )
        return step.read_bytes(), stl.read_bytes()


def block_with_features(
    *, thickness: float = 10.0, slot_width: float = 4.0, hole_d: float = 6.0
) -> Any:
    """A 60 x 40 block: a 20 x 15 pocket 4 mm deep at (-12, 0), a through hole at (18, 10)
    and a 20 mm slot 3 mm deep centred at (15, -12)."""
    part = (
        cq.Workplane()
        .box(60, 40, thickness, centered=(True, True, False))
        .faces(">Z")
        .workplane()
        .center(-12, 0)
        .rect(20, 15)
        .cutBlind(-4)
        .faces(">Z")
        .workplane(origin=(0, 0, thickness))
        .center(18, 10)
        .hole(hole_d)
        .faces(">Z")
        .workplane(origin=(0, 0, thickness))
        .center(15, -12)
        .slot2D(20, slot_width)
        .cutBlind(-3)
    )
    return part.val()
