"""Wall thickness and gap width, measured by rays from points sampled over the surface.

From each sample point a ray goes straight into the material (for walls) and straight out
into the air (for gaps). It counts only when it meets a surface facing it within 15° of
parallel: that is a wall or a gap. A ray that runs out along a surface meeting at a corner
(the edge of a hole through a curved wall, a chamfer) measures a corner, not a wall, and is
left out, and so is a wedge (the knife edge where a cut meets a face at a shallow angle);
wedges under 15° do count as walls that thin to nothing.
"""

import math
from dataclasses import dataclass

import numpy as np

from .checks import FAIL, Check, Refused
from .rays import RayCaster, TooCrowded

WALL_PARALLEL_DEG = 15.0
# The thinnest 0.1 % of samples are treated as stray hits (a ray grazing a tessellated
# curve) when stating "the thinnest wall"; a real thin wall covers far more of the surface.
IGNORED_FRACTION = 0.001
_OFFSET_MM = 1e-4  # rays start this far off the surface so they do not hit their own face
_SEED = 0  # the same samples every run: the same report for the same mesh


@dataclass(frozen=True)
class Thickness:
    walls_mm: np.ndarray  # per sample; inf where no facing surface is within reach
    gaps_mm: np.ndarray  # likewise, through the air outside the part
    area_per_sample_mm2: float
    reach_mm: float  # how far the rays look: anything thicker is "at least reach_mm"

    @property
    def ignored(self) -> int:
        return int(len(self.walls_mm) * IGNORED_FRACTION)

    def thinnest(self, values: np.ndarray) -> float:
        """The smallest value once the stray thinnest ones are set aside."""
        if len(values) == 0:
            return math.inf
        return float(np.partition(values, self.ignored)[self.ignored])

    def area_below(self, values: np.ndarray, limit_mm: float) -> float:
        """Surface area (mm²) whose samples measured less than limit_mm, 0 if only strays."""
        count = int((values < limit_mm).sum())
        return 0.0 if count <= self.ignored else count * self.area_per_sample_mm2


def measure(
    triangles: np.ndarray,
    face_normals: np.ndarray,
    areas: np.ndarray,
    caster: RayCaster,
    *,
    samples: int,
    reach_mm: float,
) -> Thickness:
    """Walls and gaps at `samples` points spread over the surface by area."""
    points, face = _sample_surface(triangles, areas, samples)
    normals = face_normals[face]
    facing = math.cos(math.radians(WALL_PARALLEL_DEG))
    try:
        # Into the material is behind the surface, out into the air ahead of it.
        inward, inward_face, outward, outward_face = caster.nearest_both_ways(
            points, normals, _OFFSET_MM, _OFFSET_MM + reach_mm
        )
    except TooCrowded:
        raise Refused(
            Check(
                "crowding", FAIL, "too many faces in one place", "a mesh a slicer can read",
                "thousands of faces are piled into the same small space: the mesh is "
                "corrupt or deliberately hostile; export it again",
            )
        ) from None  # fmt: skip
    results = []
    for sign, distance, hit in ((-1.0, inward, inward_face), (1.0, outward, outward_face)):
        # A wall's far side faces away from the ray's start, the same way the ray runs; a
        # gap's far side faces back at it: either way its normal is close to the direction.
        along = sign * np.einsum("ij,ij->i", face_normals[np.maximum(hit, 0)], normals)
        opposite = (hit >= 0) & ((along >= facing) if sign < 0 else (along <= -facing))
        results.append(np.where(opposite, distance, np.inf))
    return Thickness(
        walls_mm=results[0],
        gaps_mm=results[1],
        area_per_sample_mm2=float(areas.sum()) / max(len(points), 1),
        reach_mm=reach_mm,
    )


def _sample_surface(
    triangles: np.ndarray, areas: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points spread over the surface by area, and their faces: trimesh.sample.sample_surface
    with our seed (the same points), reading only the faces it picks."""
    random = np.random.default_rng(_SEED).random
    weight = np.cumsum(areas)
    face = np.searchsorted(weight, random(count) * weight[-1])
    origins = triangles[face, 0]
    vectors = triangles[face, 1:] - origins[:, None, :]
    lengths = random((count, 2, 1))
    outside = lengths.sum(axis=1).reshape(-1) > 1.0
    lengths[outside] -= 1.0
    lengths = np.abs(lengths)
    return (vectors * lengths).sum(axis=1) + origins, face
