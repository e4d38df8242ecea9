"""Design-for-manufacturing checks on a part's mesh: pure, no Django.

The walking skeleton's checks: the mesh is one closed, consistently wound solid with positive
volume, and it fits the build volume of at least one candidate machine in the orientation it
was modelled in. Issue 5 adds wall thickness, overhangs and orientation choice.
"""

import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import trimesh

from microfactory.errors import Rejected

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    value: str
    limit: str
    message: str


@dataclass(frozen=True)
class ValidationReport:
    volume_mm3: float
    area_mm2: float
    extents_mm: tuple[float, float, float]
    triangles: int
    bodies: int
    fits: tuple[str, ...]  # keys of the machines whose build volume the part fits
    checks: tuple[Check, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(c.message for c in self.checks if c.status == WARN)

    def to_json(self) -> dict:
        return asdict(self)


def load_mesh(stl: bytes) -> trimesh.Trimesh:
    """Parse STL bytes into one mesh, refusing what is not a usable triangle mesh."""
    try:
        mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl", process=True)
    except Exception as error:  # trimesh raises many types for garbage input
        raise Rejected(f"the mesh could not be read: {error}") from error
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise Rejected("the mesh has no triangles")
    if not np.isfinite(mesh.vertices).all():
        raise Rejected("the mesh has coordinates that are not numbers")
    return mesh


def validate_part(
    stl: bytes, *, build_volumes_mm: Mapping[str, tuple[float, float, float]]
) -> ValidationReport:
    """Refuse parts no candidate machine can make; describe the ones that can be made.

    Raises Rejected naming the first failed check. Calling it twice gives the same report.
    """
    mesh = load_mesh(stl)
    checks: list[Check] = []
    watertight = bool(mesh.is_watertight)
    checks.append(
        Check(
            "watertight",
            PASS if watertight else FAIL,
            "closed" if watertight else "open edges",
            "closed",
            "the mesh is closed" if watertight else "the mesh has holes: it is not a closed solid",
        )
    )
    winding = bool(mesh.is_winding_consistent)
    checks.append(
        Check(
            "winding",
            PASS if winding else FAIL,
            "consistent" if winding else "inconsistent",
            "consistent",
            "faces are wound consistently" if winding else "faces point in mixed directions",
        )
    )
    volume = float(mesh.volume) if watertight else 0.0
    checks.append(
        Check(
            "volume",
            PASS if volume > 0 else FAIL,
            f"{volume:.1f} mm³",
            "> 0 mm³",
            f"volume {volume:.1f} mm³" if volume > 0 else "the part has no volume",
        )
    )
    bodies = int(mesh.body_count)
    checks.append(
        Check(
            "bodies",
            PASS if bodies == 1 else WARN,
            str(bodies),
            "1",
            "one solid body" if bodies == 1 else f"{bodies} separate bodies will be made together",
        )
    )
    x, y, z = (float(v) for v in mesh.extents)
    fits = tuple(
        key
        for key, (bx, by, bz) in sorted(build_volumes_mm.items())
        if x <= bx and y <= by and z <= bz
    )
    largest = max(build_volumes_mm.values(), default=(0.0, 0.0, 0.0), key=lambda v: v[0] * v[1] * v[2])
    size = f"{x:.1f} x {y:.1f} x {z:.1f} mm"
    checks.append(
        Check(
            "build_volume",
            PASS if fits else FAIL,
            size,
            "{:.0f} x {:.0f} x {:.0f} mm".format(*largest),
            f"fits {len(fits)} of {len(build_volumes_mm)} candidate machines"
            if fits
            else f"the part ({size}) is larger than every capable machine's build volume",
        )
    )
    for check in checks:
        if check.status == FAIL:
            raise Rejected(check.message)
    return ValidationReport(
        volume_mm3=round(volume, 3),
        area_mm2=round(float(mesh.area), 3),
        extents_mm=(round(x, 3), round(y, 3), round(z, 3)),
        triangles=len(mesh.faces),
        bodies=bodies,
        fits=fits,
        checks=tuple(checks),
    )
