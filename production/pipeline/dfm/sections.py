"""A part cut into horizontal slices, as shapely polygons, for the CNC and laser checks.

A 3-axis mill working from one side sees a 2.5D part as a stack of slabs: between two
consecutive floor heights (faces looking at the tool) the part's cross-section does not
change, so one section per slab, taken half-way up it, describes everything the cutter has
to reach there. A laser sees one slab: the plate.

Coordinates are the tool frame's: the tool comes down -Z onto the part, x and y are the
section's plane. `to_model` maps a point of the tool frame back to the part as modelled, for
messages that say where a feature is.
"""

from dataclasses import dataclass

import numpy as np
import shapely
import trimesh
from shapely.geometry.base import BaseGeometry

_FLAT = 0.9998  # |cos| above this (1°): a face looks straight at the tool
_LEVEL_MM = 0.01  # floor heights closer than this are one floor
_THINNEST_SLAB_MM = 0.02  # thinner steps are tessellation noise, not a slab of their own


@dataclass(frozen=True)
class Slab:
    floor_mm: float  # the height the cutter goes down to here (tool frame)
    ceiling_mm: float  # the next floor up, or the top of the part
    material: BaseGeometry  # the part's cross-section half-way up the slab


@dataclass(frozen=True)
class Sliced:
    slabs: tuple[Slab, ...]  # bottom first
    top_mm: float
    bottom_mm: float
    rotation: np.ndarray  # (3, 3): model frame -> tool frame

    def to_model(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """A tool-frame point as modelled."""
        mx, my, mz = self.rotation.T @ np.array([x, y, z])
        return (float(mx), float(my), float(mz))

    @property
    def footprint(self) -> BaseGeometry:
        """Everything the part covers seen from the tool: the union of its sections."""
        return shapely.union_all([slab.material for slab in self.slabs])


def tool_frame(axis: tuple[float, float, float]) -> np.ndarray:
    """The rotation taking `axis` (the side the tool comes from, a unit vector) to +Z."""
    matrix = trimesh.geometry.align_vectors(np.array(axis, dtype=float), np.array([0.0, 0, 1]))
    return np.asarray(matrix, dtype=float)[:3, :3]


def slice_for_milling(
    mesh: trimesh.Trimesh, axis: tuple[float, float, float], *, max_slabs: int
) -> Sliced:
    """The slabs between the floors the cutter coming from `axis` must reach. When a curved
    part has more floor heights than `max_slabs`, the largest floors are kept."""
    rotation = tool_frame(axis)
    turned = _turned(mesh, rotation)
    bottom, top = float(turned.bounds[0][2]), float(turned.bounds[1][2])
    normals = np.asarray(turned.face_normals)
    looking_up = normals[:, 2] > _FLAT
    heights = np.round(np.asarray(turned.triangles_center)[looking_up, 2] / _LEVEL_MM) * _LEVEL_MM
    areas = np.asarray(turned.area_faces)[looking_up]
    floors: dict[float, float] = {}
    for height, area in zip(heights.tolist(), areas.tolist(), strict=True):
        if bottom + _THINNEST_SLAB_MM < height < top - _THINNEST_SLAB_MM:
            floors[height] = floors.get(height, 0.0) + area
    kept = sorted(floors, key=floors.__getitem__, reverse=True)[: max(max_slabs - 1, 0)]
    levels = [bottom, *sorted(kept)]
    ceilings = [*levels[1:], top]
    middles = [(low + high) / 2 for low, high in zip(levels, ceilings, strict=True)]
    sections = _sections(turned, middles)
    slabs = tuple(
        Slab(low, high, material)
        for low, high, material in zip(levels, ceilings, sections, strict=True)
        if not material.is_empty
    )
    return Sliced(slabs, top, bottom, rotation)


def slice_plate(mesh: trimesh.Trimesh, axis: tuple[float, float, float]) -> Sliced:
    """A plate's outline: one slab, its section half-way through, `axis` its normal."""
    rotation = tool_frame(axis)
    turned = _turned(mesh, rotation)
    bottom, top = float(turned.bounds[0][2]), float(turned.bounds[1][2])
    (material,) = _sections(turned, [(bottom + top) / 2])
    return Sliced((Slab(bottom, top, material),), top, bottom, rotation)


def _turned(mesh: trimesh.Trimesh, rotation: np.ndarray) -> trimesh.Trimesh:
    transform = np.eye(4)
    transform[:3, :3] = rotation
    turned = mesh.copy()
    turned.apply_transform(transform)
    return turned


def _sections(mesh: trimesh.Trimesh, heights: list[float]) -> list[BaseGeometry]:
    """The cross-section at each height as one (multi)polygon, holes included."""
    found = []
    for height in heights:
        section = mesh.section(plane_origin=[0.0, 0.0, height], plane_normal=[0.0, 0.0, 1.0])
        if section is None:
            found.append(shapely.Polygon())
            continue
        # The identity keeps the tool frame's x and y: every section shares them.
        planar, _ = section.to_2D(to_2D=np.eye(4), check=False)
        found.append(shapely.make_valid(shapely.union_all(list(planar.polygons_full))))
    return found
