"""Meshes and plates: a part's footprint from its mesh, and a plate's meshes as placed.

Pure: meshes and values in, meshes, bytes and values out. The part's mesh is the one the
slicer gets (turned to its print orientation); its footprint is taken in the same
coordinates, so a placement means the same thing to both.
"""

from collections.abc import Mapping

import numpy as np
import shapely
import trimesh
from shapely.geometry import MultiPolygon, Polygon
from trimesh.path.polygons import projected

from production.plates.arrange import placed_footprint
from production.plates.values import Placement, Plate
from production.toolpath.verify import PlateCopy

# Footprint outlines are simplified to this (fewer vertices, faster rasters) after being grown
# by as much, so the simplified outline still covers the part's true shadow.
FOOTPRINT_TOLERANCE_MM = 0.05


def footprint(mesh: trimesh.Trimesh) -> Polygon | MultiPolygon:
    """The part's shadow on the bed: its mesh projected on XY, outline only (holes filled).

    The union of every triangle's projection (trimesh's `projected`), grown by
    FOOTPRINT_TOLERANCE_MM and simplified by as much.
    """
    shadow = projected(mesh, normal=[0.0, 0.0, 1.0], origin=[0.0, 0.0, 0.0])
    if shadow is None or shadow.is_empty:
        raise ValueError("the mesh casts no shadow on the bed")
    # `projected` works in the plane's own frame; for +Z through the origin that is XY itself
    # (checked by the tests), so the outline is in the mesh's coordinates.
    outlines = [
        Polygon(part.exterior) for part in shapely.get_parts(shadow) if isinstance(part, Polygon)
    ]
    grown = shapely.union_all(outlines).buffer(FOOTPRINT_TOLERANCE_MM)
    simple = grown.simplify(FOOTPRINT_TOLERANCE_MM, preserve_topology=True)
    assert isinstance(simple, Polygon | MultiPolygon)
    return simple


def placement_matrix(placement: Placement) -> np.ndarray:
    """4 x 4: turn about Z through the origin by the placement's rotation, then move."""
    turn = trimesh.transformations.rotation_matrix(
        np.radians(placement.rotation_deg), [0.0, 0.0, 1.0]
    )
    turn[:3, 3] = [placement.x_mm, placement.y_mm, 0.0]
    return np.asarray(turn, dtype=float)


def placed_meshes(plate: Plate, parts: Mapping[int, trimesh.Trimesh]) -> list[trimesh.Trimesh]:
    """Each copy's mesh where the plate puts it, standing on the bed (lowest point at z=0).

    `parts` maps a job to its part's mesh in print orientation, as its footprint was taken.
    """
    placed = []
    for placement in plate.placements:
        mesh = parts[placement.job].copy()
        mesh.apply_transform(placement_matrix(placement))
        mesh.apply_translation([0.0, 0.0, -float(mesh.bounds[0][2])])
        placed.append(mesh)
    return placed


def plate_stl(plate: Plate, parts: Mapping[int, trimesh.Trimesh]) -> bytes:
    """The plate's copies as one binary STL, in bed coordinates: what a slicer gets."""
    combined = trimesh.util.concatenate(placed_meshes(plate, parts))
    assert isinstance(combined, trimesh.Trimesh)
    exported = combined.export(file_type="stl")
    assert isinstance(exported, bytes)  # trimesh writes STL as binary
    return exported


def plate_copies(plate: Plate, parts: Mapping[int, trimesh.Trimesh]) -> tuple[PlateCopy, ...]:
    """What the plate G-code check needs to know about each copy: its label, its footprint
    where it was placed, its height and its volume."""
    jobs = {placement.job for placement in plate.placements}
    footprints = {job: footprint(parts[job]) for job in sorted(jobs)}
    return tuple(
        PlateCopy(
            label=f"job {placement.job} copy {placement.copy}",
            footprint=placed_footprint(footprints[placement.job], placement),
            height_mm=float(parts[placement.job].extents[2]),
            volume_mm3=abs(float(parts[placement.job].volume)),
        )
        for placement in plate.placements
    )
