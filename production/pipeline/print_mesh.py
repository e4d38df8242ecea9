"""The mesh the slicer gets: the built one, or the one validation repaired, turned to the print
orientation the DFM report chose. Pure: bytes and values in, bytes and values out."""

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import trimesh

from microfactory.errors import Rejected
from production.pipeline.dfm.checks import Budget, Refused
from production.pipeline.dfm.integrity import make_solid
from production.pipeline.dfm.limits import ValidationLimits
from production.pipeline.dfm.orientation import Orientation
from production.pipeline.dfm.reading import read_stl
from production.pipeline.validation import WARN, Check
from production.pipeline.values import (
    IDENTITY,
    REPAIRED,
    BuiltPart,
    Matrix,
    Reuse,
    input_key,
)

# Checks whose warning means validation changed the mesh (docs/validation.md, "Mesh integrity").
REPAIRS = frozenset(
    {"merged_vertices", "degenerate_faces", "duplicate_faces", "winding", "watertight", "normals"}
)
TURN_90_Z: Matrix = (
    (0.0, -1.0, 0.0, 0.0),
    (1.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 0.0),
    (0.0, 0.0, 0.0, 1.0),
)


@dataclass(frozen=True)
class PrintOrientation:
    label: str
    matrix: Matrix  # 4 x 4, model to print coordinates


AS_MODELLED = PrintOrientation("as modelled", IDENTITY)


@dataclass(frozen=True)
class RepairedMesh:
    """The mesh as validation repaired it: stored beside the built one, and sliced instead."""

    content: bytes = field(repr=False)
    key: str
    repaired_from: str  # the built STL's sha256
    repairs: tuple[str, ...]  # the warnings that say what was repaired
    reused: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def meta(self) -> dict[str, object]:
        return {"repaired_from": self.repaired_from, "repairs": list(self.repairs)}


@dataclass(frozen=True)
class SliceMesh:
    content: bytes = field(repr=False)
    sha256: str
    repaired: RepairedMesh | None = None


def repairs_of(checks: Sequence[Check]) -> tuple[str, ...]:
    """What validation's safe repairs changed (their warnings), sorted; empty: nothing."""
    return tuple(sorted(c.message for c in checks if c.name in REPAIRS and c.status == WARN))


def mesh_to_slice(
    built: BuiltPart, checks: Sequence[Check], *, limits: ValidationLimits, reuse: Reuse
) -> SliceMesh:
    """The built STL, or the mesh as validation repaired it (found again, content-addressed,
    when `reuse` has it)."""
    repairs = repairs_of(checks)
    if not repairs:
        return SliceMesh(built.stl, built.sha256)
    key = input_key("repaired-stl", built.sha256, limits.max_hole_perimeter_mm)
    stored = reuse(REPAIRED, key)
    if stored is not None:
        content, reused = stored.content, True
    else:
        content, reused = repaired_stl(built.stl, limits=limits), False
    repaired = RepairedMesh(content, key, built.sha256, repairs, reused=reused)
    return SliceMesh(content, repaired.sha256, repaired)


def repaired_stl(stl: bytes, *, limits: ValidationLimits) -> bytes:
    """The mesh as validation repairs it (welded, cleaned, rewound, small holes closed, shells
    turned outwards), as binary STL.

    Runs validation's integrity pass again, because production.pipeline.validation does not
    hand back its repaired mesh; the crossing-faces test, which repairs nothing, is skipped.
    """
    try:
        triangles, _ = read_stl(
            stl, max_file_bytes=limits.max_file_bytes, max_triangles=limits.max_triangles
        )
        solid, checks = make_solid(
            triangles,
            max_vertices=limits.max_vertices,
            max_hole_perimeter_mm=limits.max_hole_perimeter_mm,
            self_intersection_max_triangles=0,
            budget=Budget(limits.time_budget_s),
        )
    except Refused as refusal:  # validation passed this mesh: only changed limits get here
        raise Rejected(str(refusal)) from None
    if solid is None:
        raise Rejected(next(c.message for c in checks if c.status == "fail"))
    return _binary_stl(solid.mesh)


def print_orientation(
    chosen: Orientation | None, build_volume_mm: tuple[float, float, float]
) -> PrintOrientation:
    """The orientation the DFM report chose, turned 90° about Z when only that fits the bed;
    as modelled when the report chose none (older reports) or it does not fit this machine
    (the part as modelled fits every capable machine)."""
    if chosen is None:
        return AS_MODELLED
    x, y, z = chosen.extents_mm
    width, depth, height = build_volume_mm
    matrix = tuple(tuple(float(v) for v in row) for row in chosen.matrix)
    if z > height:
        return AS_MODELLED
    if x <= width and y <= depth:
        return PrintOrientation(chosen.label, matrix)
    if y <= width and x <= depth:
        turned = _compose(TURN_90_Z, matrix)
        return PrintOrientation(f"{chosen.label}, turned 90° about Z", turned)
    return AS_MODELLED


def _compose(first: Matrix, second: Matrix) -> Matrix:
    """first @ second: `second` applied, then `first`."""
    return tuple(
        tuple(sum(first[i][k] * second[k][j] for k in range(4)) for j in range(4)) for i in range(4)
    )


def is_identity(matrix: Matrix) -> bool:
    return all(abs(matrix[i][j] - IDENTITY[i][j]) < 1e-9 for i in range(4) for j in range(4))


def oriented_stl(stl: bytes, matrix: Matrix) -> bytes:
    """The STL turned by a 4 x 4 matrix, as binary STL; unchanged for the identity."""
    if is_identity(matrix):
        return stl
    mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
    mesh.apply_transform(np.array(matrix, dtype=float))
    return _binary_stl(mesh)


def _binary_stl(mesh: trimesh.Trimesh) -> bytes:
    exported = mesh.export(file_type="stl")
    assert isinstance(exported, bytes)  # trimesh writes STL as binary
    return exported
