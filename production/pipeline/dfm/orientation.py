"""Print orientations: the candidates, what each costs, and the one we choose.

Candidates are the six axis-aligned ones (each face of the bounding box down) and the four
largest flat faces the part can rest on (flat faces on its convex hull) down. A candidate is
stable when the faces touching the bed make a footprint at least 1 mm wide and the centre of
mass lies over it.

The choice: among stable candidates that fit a printer, the lowest cost

    cost = support area (mm²) + 2 mm × height (mm) - 0.1 × bed contact area (mm²)

so support dominates, then a lower part (fewer layers) and a bigger first layer. Ties keep
the orientation as modelled: designers usually model parts the way they print.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HEIGHT_COST_MM2_PER_MM = 2.0
CONTACT_CREDIT = 0.1
CONTACT_TOLERANCE_MM = 0.01  # faces this close to the lowest point, facing down, touch the bed
# Tessellating a 45° chamfer or cone tilts its flat facets by up to a degree or so: a face
# counts as overhanging only when it leans this much beyond the limit.
OVERHANG_TOLERANCE_DEG = 2.0
_FACING_DOWN = -math.cos(math.radians(1))
_FACETS = 4  # flat-face candidates besides the six axes
_FACETS_CONSIDERED = 32  # the largest facets looked at when finding them
STABLE_BASE_MM = 1.0  # a footprint narrower than this is a line or a point, not a base
_AXES = (
    ((0.0, 0.0, -1.0), "as modelled (−Z down)"),
    ((0.0, 0.0, 1.0), "upside down (+Z down)"),
    ((-1.0, 0.0, 0.0), "on its side (−X down)"),
    ((1.0, 0.0, 0.0), "on its side (+X down)"),
    ((0.0, -1.0, 0.0), "on its side (−Y down)"),
    ((0.0, 1.0, 0.0), "on its side (+Y down)"),
)


@dataclass(frozen=True)
class Orientation:
    label: str
    down: tuple[float, float, float]  # the model's direction that faces the bed
    matrix: tuple[tuple[float, ...], ...]  # 4 x 4 rotation from model to print coordinates
    extents_mm: tuple[float, float, float]  # in print coordinates
    height_mm: float
    support_area_mm2: float  # overhangs that need support, projected onto the bed
    contact_area_mm2: float  # the first layer's area
    base_width_mm: float  # the narrow side of the footprint (the convex hull of the contact)
    stable: bool
    fits: bool  # fits at least one printer's build volume (turning it on the bed allowed)
    cost: float


def candidate_orientations(
    mesh: trimesh.Trimesh,
    *,
    centre_mm: Sequence[float],
    overhang_deg: float,
    bridge_mm: float,
    build_volumes_mm: Sequence[tuple[float, float, float]],
) -> tuple[Orientation, ...]:
    """Every candidate, as modelled first. `centre_mm` is the centre of mass."""
    shape = _Shape.of(mesh, centre_mm)
    return tuple(
        _measure(shape, down, label, overhang_deg, bridge_mm, build_volumes_mm)
        for down, label in _candidate_downs(mesh)
    )


def choose(candidates: Sequence[Orientation]) -> Orientation:
    """The cheapest stable candidate that fits; failing that the cheapest that fits; failing
    that the orientation as modelled (candidates[0])."""
    for pool in (
        [c for c in candidates if c.stable and c.fits],
        [c for c in candidates if c.fits],
    ):
        if pool:
            return min(pool, key=lambda c: round(c.cost, 3))  # min keeps the first of equals
    return candidates[0]


def fits_volume(extents: Sequence[float], volume: Sequence[float]) -> bool:
    """Fits the build volume, turned on the bed if need be."""
    x, y, z = extents
    bx, by, bz = volume
    return z <= bz and ((x <= bx and y <= by) or (y <= bx and x <= by))


@dataclass(frozen=True)
class _Shape:
    """The mesh's arrays, read once: trimesh re-verifies its caches on every property read."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    adjacency: np.ndarray  # (pairs, 2) faces sharing an edge
    adjacency_edges: np.ndarray  # (pairs, 2) the shared edge's vertices
    adjacency_far: np.ndarray  # (pairs, 2) each face's vertex off the shared edge
    centre: np.ndarray

    @classmethod
    def of(cls, mesh: trimesh.Trimesh, centre: Sequence[float]) -> "_Shape":
        return cls(
            vertices=np.asarray(mesh.vertices),
            faces=np.asarray(mesh.faces),
            normals=np.asarray(mesh.face_normals),
            areas=np.asarray(mesh.area_faces),
            adjacency=np.asarray(mesh.face_adjacency),
            adjacency_edges=np.asarray(mesh.face_adjacency_edges),
            adjacency_far=np.asarray(mesh.face_adjacency_unshared),
            centre=np.asarray(centre, dtype=float),
        )


def _candidate_downs(mesh: trimesh.Trimesh) -> list[tuple[np.ndarray, str]]:
    """The six axes, then the largest flat faces the part can rest on: planar facets that
    no other part of the mesh lies beyond (faces of the convex hull)."""
    downs = [(np.array(down), label) for down, label in _AXES]
    facets, normals = mesh.facets, mesh.facets_normal
    if len(facets) == 0:
        return downs
    vertices = np.asarray(mesh.vertices)
    faces = np.asarray(mesh.faces)
    for facet in np.argsort(-mesh.facets_area, kind="stable")[:_FACETS_CONSIDERED]:
        normal = normals[facet]
        if any(np.dot(normal, seen) > math.cos(math.radians(1)) for seen, _ in downs):
            continue
        plane = vertices[faces[facets[facet][0], 0]] @ normal
        if (vertices @ normal).max() > plane + CONTACT_TOLERANCE_MM:
            continue  # something lies beyond this face: the part cannot rest on it
        label = "flat face down (normal {:.2f}, {:.2f}, {:.2f})".format(*np.round(normal, 2) + 0.0)
        downs.append((normal, label))
        if len(downs) == len(_AXES) + _FACETS:
            break
    return downs


def _measure(
    shape: _Shape,
    down: np.ndarray,
    label: str,
    overhang_deg: float,
    bridge_mm: float,
    build_volumes_mm: Sequence[tuple[float, float, float]],
) -> Orientation:
    matrix = trimesh.geometry.align_vectors(down, [0.0, 0.0, -1.0])
    rotation = matrix[:3, :3]
    vertices = shape.vertices @ rotation.T
    normals = shape.normals @ rotation.T
    corner_z = vertices[:, 2][shape.faces]
    extents = tuple(float(v) for v in np.ptp(vertices, axis=0))
    contact = (normals[:, 2] < _FACING_DOWN) & (
        corner_z.max(axis=1) <= vertices[:, 2].min() + CONTACT_TOLERANCE_MM
    )
    contact_area = float(shape.areas[contact].sum())
    touching = vertices[np.unique(shape.faces[contact]), :2]
    footprint = shapely.convex_hull(shapely.multipoints(touching))
    base = _narrow_side(footprint)
    centre = (shape.centre @ rotation.T)[:2]
    stable = bool(base >= STABLE_BASE_MM and footprint.buffer(1e-6).contains(shapely.Point(centre)))
    support = _support_area(shape, vertices, normals, contact, overhang_deg, bridge_mm)
    height = extents[2]
    return Orientation(
        label=label,
        down=tuple(round(float(v), 6) for v in down),
        matrix=tuple(tuple(round(float(v), 6) for v in row) for row in matrix),
        extents_mm=tuple(round(v, 3) for v in extents),
        height_mm=round(height, 3),
        support_area_mm2=round(support, 1),
        contact_area_mm2=round(contact_area, 1),
        base_width_mm=round(base, 3),
        stable=stable,
        fits=any(fits_volume(extents, volume) for volume in build_volumes_mm),
        cost=round(support + HEIGHT_COST_MM2_PER_MM * height - CONTACT_CREDIT * contact_area, 3),
    )


def _support_area(
    shape: _Shape,
    vertices: np.ndarray,
    normals: np.ndarray,
    contact: np.ndarray,
    overhang_deg: float,
    bridge_mm: float,
) -> float:
    """Projected area of the overhangs that need support.

    A face overhangs when it leans more than overhang_deg (+ the tolerance) from vertical;
    connected overhanging faces form a region. A region prints as a bridge, without support, when it
    is at most bridge_mm wide on the narrow side of its footprint and at least half of its
    rim rests on material below (the top of a horizontal hole, a slot's or pocket's ceiling);
    a region hanging free along most of its rim (a cantilever, a mushroom's cap) needs support.
    """
    steepest = math.sin(math.radians(overhang_deg + OVERHANG_TOLERANCE_DEG))
    overhang = (normals[:, 2] < -steepest) & ~contact
    if not overhang.any():
        return 0.0
    pairs = shape.adjacency
    inside = overhang[pairs]
    joined = pairs[inside.all(axis=1)]
    count = len(shape.faces)
    graph = coo_matrix((np.ones(len(joined)), (joined[:, 0], joined[:, 1])), shape=(count, count))
    _, region = connected_components(graph, directed=False)
    faces = np.flatnonzero(overhang)
    labels = np.full(count, -1)
    labels[faces] = np.unique(region[faces], return_inverse=True)[1].ravel()
    regions = labels.max() + 1

    low = np.full((regions, 2), np.inf)
    high = np.full((regions, 2), -np.inf)
    corners = vertices[shape.faces[faces], :2]
    np.minimum.at(low, labels[faces], corners.min(axis=1))
    np.maximum.at(high, labels[faces], corners.max(axis=1))
    narrow = (high - low).min(axis=1) <= bridge_mm

    # The rim: edges between a region face and a face outside it. An edge rests on material
    # when the outside face's far corner lies below the edge.
    rim = inside[:, 0] != inside[:, 1]
    within = inside[rim, 1].astype(int)  # which of the pair lies in the region: 0 or 1
    row = np.arange(len(within))
    region_face = pairs[rim][row, within]
    far_corner = shape.adjacency_far[rim][row, 1 - within]
    z = vertices[:, 2]
    edges = shape.adjacency_edges[rim]
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    rests = z[far_corner] < z[edges].mean(axis=1) - 1e-6
    rim_length = np.bincount(labels[region_face], weights=length, minlength=regions)
    resting = np.bincount(labels[region_face], weights=length * rests, minlength=regions)
    bridged = narrow & (resting >= 0.5 * rim_length)

    projected = shape.areas[faces] * -normals[faces, 2]
    return float(projected[~bridged[labels[faces]]].sum())


def _narrow_side(footprint: shapely.Geometry) -> float:
    if footprint.is_empty or footprint.area == 0:
        return 0.0
    corners = np.asarray(shapely.oriented_envelope(footprint).exterior.coords)
    sides = np.linalg.norm(np.diff(corners[:3], axis=0), axis=1)
    return float(sides.min())
