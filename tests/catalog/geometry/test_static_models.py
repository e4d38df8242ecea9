"""Static models: an uploaded STEP is converted in the sandbox, an STL is checked and passed
through; anything else is refused with a reason, first from its bytes, then by the parser."""

import io
import struct

import pytest
import trimesh

from catalog.geometry import (
    BuildLimits,
    ModelInvalid,
    build_geometry,
    build_revision,
    inspect_model,
)
from microfactory.errors import Rejected

pytestmark = pytest.mark.cad  # STEP/STL conversion in the sandbox; no database

LIMITS = BuildLimits(require_bwrap=False)
BOX = "import cadquery as cq\nshow_object(cq.Workplane().box(10, 20, 30))\n"
MB = 1024 * 1024


def box_stl(size: float = 10) -> bytes:
    return trimesh.creation.box((size, size, size)).export(file_type="stl")


def stl_with_triangles(count: int) -> bytes:
    """A binary STL of `count` identical (degenerate) triangles: only its size matters here."""
    return b"\0" * 80 + struct.pack("<I", count) + b"\0" * 50 * count


def inspect(content: bytes, *, max_bytes: int = 10 * MB, max_triangles: int = 1000):
    return inspect_model(content, max_bytes=max_bytes, max_triangles=max_triangles)


def test_a_binary_stl_is_recognised_with_its_triangle_count() -> None:
    info = inspect(box_stl())

    assert (info.format, info.triangles) == ("stl", 12)
    assert len(info.sha256) == 64


def test_an_ascii_stl_and_a_step_file_are_recognised() -> None:
    ascii_stl = trimesh.creation.box((1, 1, 1)).export(file_type="stl_ascii").encode()
    step = b"ISO-10303-21;\nHEADER;\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"

    assert inspect(ascii_stl).triangles == 12
    assert inspect(step).format == "step"


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04 a zip file, not a model" * 10, "neither a STEP nor an STL"),
        (b"%PDF-1.7", "neither a STEP nor an STL"),
        (stl_with_triangles(12)[:-30], "the STL file is truncated"),
        (b"solid x\nfacet normal 0 0 1\nouter loop\n", "ASCII STL file is truncated"),
        (b"ISO-10303-21;\nHEADER;\nDATA;\n#1=CARTESIAN_POINT", "STEP file is truncated"),
        (stl_with_triangles(0), "holds no triangles"),
        (stl_with_triangles(1001), "has 1,001 triangles; at most 1,000"),
    ],
)
def test_unusable_uploads_are_refused_with_a_reason(content: bytes, reason: str) -> None:
    with pytest.raises(ModelInvalid, match=reason):
        inspect(content)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ModelInvalid, match="at most 1.0 MB"):
        inspect(stl_with_triangles(30_000), max_bytes=MB, max_triangles=10**9)


def test_a_step_model_is_converted_to_stl_svg_and_glb_in_the_sandbox() -> None:
    step = build_geometry(BOX, {}, limits=LIMITS).step

    geometry = build_revision(
        kind="static", script="", model_bytes=step, parameters={}, specs=(), rules=(), limits=LIMITS
    )

    assert geometry.bbox_mm == (10.0, 20.0, 30.0)
    assert geometry.volume_mm3 == pytest.approx(6000)
    assert trimesh.load_mesh(io.BytesIO(geometry.stl), file_type="stl").is_watertight
    assert "<svg" in geometry.svg and geometry.glb.startswith(b"glTF")


def test_an_stl_model_passes_through_with_a_drawing_and_a_glb_but_no_step() -> None:
    geometry = build_revision(
        kind="static",
        script="",
        model_bytes=box_stl(10),
        parameters={},
        specs=(),
        rules=(),
        limits=LIMITS,
    )

    assert geometry.bbox_mm == (10.0, 10.0, 10.0)
    assert geometry.volume_mm3 == pytest.approx(1000)
    assert geometry.step == b""
    assert "<path" in geometry.svg and geometry.glb.startswith(b"glTF")


def test_the_sandbox_refuses_an_stl_that_does_not_parse_or_holds_two_bodies() -> None:
    two = trimesh.util.concatenate(
        [
            trimesh.creation.box((1, 1, 1)),
            trimesh.creation.box((1, 1, 1)).apply_translation((5, 0, 0)),
        ]
    ).export(file_type="stl")
    garbage = b"\0" * 80 + struct.pack("<I", 2) + b"\xff" * 100

    with pytest.raises(Rejected, match="holds 2 separate bodies"):
        build_revision(
            kind="static",
            script="",
            model_bytes=two,
            parameters={},
            specs=(),
            rules=(),
            limits=LIMITS,
        )
    with pytest.raises(Rejected, match="STL file"):
        build_revision(
            kind="static",
            script="",
            model_bytes=garbage,
            parameters={},
            specs=(),
            rules=(),
            limits=LIMITS,
        )


def test_the_sandbox_refuses_a_step_file_it_cannot_read() -> None:
    broken = b"ISO-10303-21;\nHEADER;\nnonsense\nEND-ISO-10303-21;\n"

    with pytest.raises(Rejected, match="STEP file"):
        build_revision(
            kind="static",
            script="",
            model_bytes=broken,
            parameters={},
            specs=(),
            rules=(),
            limits=LIMITS,
        )


def test_the_sandbox_refuses_a_mesh_over_the_triangle_limit() -> None:
    limits = BuildLimits(require_bwrap=False, max_triangles=10)

    with pytest.raises(Rejected, match="12 triangles; at most 10"):
        build_revision(
            kind="static",
            script="",
            model_bytes=box_stl(),
            parameters={},
            specs=(),
            rules=(),
            limits=limits,
        )
