"""Print orientations: the candidates, what each costs, and the one we choose.

Candidates are the six axis-aligned ones (each face of the bounding box down), the four
largest flat faces the part can rest on (flat faces on its convex hull) down, and the part's
principal axes (of its inertia) either way. A candidate is stable when the faces touching the
bed make a footprint at least 1 mm wide and the centre of mass lies over it.

The choice: among stable candidates that fit a printer, the lowest cost

    cost = 0.1 / mm × support volume (mm³) + 2 mm × height (mm) - 0.1 × bed contact (mm²)
           + 25 mm² × (height / base width - tipping limit), when above the limit

so support dominates (its volume: the overhangs' area times their height over the bed, what
support costs in material and time; regions that print as bridges are not support), then a
lower part (fewer layers), a steady stand and a bigger first layer. A part stands on its rim
only when lying flat would cost much more: the tipping term makes a tall, narrow stand
expensive. The orientation as modelled is kept unless another one is cheaper by more than
TURN_MARGIN: designers usually model parts the way they print, and a few mm² of first layer
are no reason to turn a part over.

Bridges: a region of overhanging faces prints without support when at least half its rim rests
on material below and it is at most bridge_mm wide, measured as the widest circle that fits in
the region's footprint (an annular web between a hub and a rim is as wide as the ring, not as
the wheel).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, QhullError

from .arrays import along, column_max, column_min, row_max, row_mean, turned, unique
from .integrity import Solid, unique_rows

HEIGHT_COST_MM2_PER_MM = 2.0
SUPPORT_COST_MM2_PER_MM3 = 0.1  # an overhang 10 mm above the bed costs its area, as before
CONTACT_CREDIT = 0.1
TIPPING_LIMIT = 5.0  # height over the footprint's narrow side beyond which a part may tip
TIPPING_COST_MM2 = 25.0  # per unit of the ratio above the limit
TURN_MARGIN = 10.0  # another orientation must be this much cheaper than as modelled
CONTACT_TOLERANCE_MM = 0.01  # faces this close to the lowest point, facing down, touch the bed
# Tessellating a 45° chamfer or cone tilts its flat facets by up to a degree or so: a face
# counts as overhanging only when it leans this much beyond the limit.
OVERHANG_TOLERANCE_DEG = 2.0
_FACING_DOWN = -math.cos(math.radians(1))
_FACETS = 4  # flat-face candidates besides the six axes
_FACETS_CONSIDERED = 32  # the largest groups of faces facing one way looked at for them
_FLAT_MM = 0.01  # a flat face's corners lie this close to the plane it rests on
_CHUNK = 1 << 16  # vertices turned at once when measuring extents
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
    support_volume_mm3: float  # the same, times their height over the bed
    contact_area_mm2: float  # the first layer's area
    base_width_mm: float  # the narrow side of the footprint (the convex hull of the contact)
    stable: bool
    fits: bool  # fits at least one printer's build volume (turning it on the bed allowed)
    cost: float

    @property
    def tipping_ratio(self) -> float:
        return self.height_mm / self.base_width_mm if self.base_width_mm else math.inf


def candidate_orientations(
    solid: Solid,
    *,
    overhang_deg: float,
    bridge_mm: float,
    build_volumes_mm: Sequence[tuple[float, float, float]],
) -> tuple[Orientation, ...]:
    """Every candidate, as modelled first."""
    shape = _Shape.of(solid)
    downs = _candidate_downs(shape)
    extents = _extents(shape.vertices, [down for down, _ in downs])
    return tuple(
        _measure(shape, down, label, extent, overhang_deg, bridge_mm, build_volumes_mm)
        for (down, label), extent in zip(downs, extents, strict=True)
    )


def choose(candidates: Sequence[Orientation]) -> Orientation:
    """The cheapest stable candidate that fits; failing that the cheapest that fits; failing
    that the orientation as modelled (candidates[0]). As modelled wins unless another is
    cheaper by more than TURN_MARGIN."""
    return ranked(candidates)[0]


def ranked(candidates: Sequence[Orientation]) -> list[Orientation]:
    """The candidates best first (choose's order): the chosen one, then the runner-up, ..."""
    modelled = candidates[0]

    def rank(candidate: Orientation) -> tuple[int, float]:
        pool = 0 if candidate.stable and candidate.fits else 1 if candidate.fits else 2
        cost = round(candidate.cost, 3)
        if candidate is modelled:
            cost -= TURN_MARGIN
        return pool, cost

    return sorted(candidates, key=rank)  # sorted is stable: equals keep their order


def fits_volume(extents: Sequence[float], volume: Sequence[float]) -> bool:
    """Fits the build volume, turned on the bed if need be."""
    x, y, z = extents
    bx, by, bz = volume
    return z <= bz and ((x <= bx and y <= by) or (y <= bx and x <= by))


@dataclass(frozen=True)
class _Shape:
    """The solid's arrays that every candidate reads."""

    vertices: np.ndarray
    faces: np.ndarray
    triangles: np.ndarray  # vertices[faces], gathered once by the solid
    normals: np.ndarray
    areas: np.ndarray
    adjacency: np.ndarray  # (pairs, 2) faces sharing an edge
    adjacency_edges: np.ndarray  # (pairs, 2) the shared edge's vertices
    adjacency_far: np.ndarray  # (pairs, 2) each face's vertex off the shared edge
    adjacency_first: np.ndarray  # adjacency[:, 0], contiguous: gathers from it are faster
    adjacency_second: np.ndarray
    centre: np.ndarray

    @classmethod
    def of(cls, solid: Solid) -> "_Shape":
        return cls(
            vertices=np.asarray(solid.mesh.vertices),
            faces=np.asarray(solid.mesh.faces),
            triangles=solid.triangles,
            normals=solid.normals,
            areas=solid.areas,
            adjacency=solid.edges.adjacency,
            adjacency_edges=solid.edges.adjacency_edges,
            adjacency_far=solid.edges.adjacency_far,
            adjacency_first=np.ascontiguousarray(solid.edges.adjacency[:, 0]),
            adjacency_second=np.ascontiguousarray(solid.edges.adjacency[:, 1]),
            centre=np.asarray(solid.centre_mm, dtype=float),
        )


def _candidate_downs(shape: _Shape) -> list[tuple[np.ndarray, str]]:
    """The six axes, then the largest flat faces the part can rest on: planar patches that
    no other part of the mesh lies beyond (faces of the convex hull)."""
    downs = [(np.array(down), label) for down, label in _AXES]
    patches, normals, areas = _flat_patches(shape)
    for patch in np.argsort(-areas, kind="stable")[:_FACETS_CONSIDERED]:
        normal = normals[patch]
        if any(np.dot(normal, seen) > math.cos(math.radians(1)) for seen, _ in downs):
            continue
        plane = shape.vertices[shape.faces[patches[patch], 0]] @ normal
        if along(shape.vertices, normal).max() > plane + CONTACT_TOLERANCE_MM:
            continue  # something lies beyond this face: the part cannot rest on it
        label = "flat face down (normal {:.2f}, {:.2f}, {:.2f})".format(*np.round(normal, 2) + 0.0)
        downs.append((normal, label))
        if len(downs) == len(_AXES) + _FACETS:
            break
    for axis in _principal_axes(shape):
        for sign, end in ((1.0, "one end"), (-1.0, "the other end")):
            down = sign * axis
            if any(np.dot(down, seen) > math.cos(math.radians(1)) for seen, _ in downs):
                continue
            label = "principal axis down, {} (normal {:.2f}, {:.2f}, {:.2f})".format(
                end, *np.round(down, 2) + 0.0
            )
            downs.append((down, label))
    return downs


def _principal_axes(shape: _Shape) -> np.ndarray:
    """The surface's principal axes (rows): the eigenvectors of its area-weighted second
    moment about the centre, a cheap stand-in for the solid's inertia axes."""
    centroids = row_mean(shape.triangles) - shape.centre
    weighted = centroids * shape.areas[:, None]
    moment = weighted.T @ centroids
    _, vectors = np.linalg.eigh(moment)
    axes: np.ndarray = vectors.T
    return axes


def _flat_patches(shape: _Shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planar patches of two or more neighbouring faces (trimesh's facets): one face of each,
    its unit normal and its area.

    Neighbours are coplanar when their normals agree to 1e-4 (rounded): one sort and one
    graph walk, where trimesh's facets measure every neighbour pair's angle and radius
    (seconds on a million faces).
    """
    _, direction = unique_rows(np.round(shape.normals * 1e4).astype(np.int64))
    pairs = shape.adjacency[direction[shape.adjacency[:, 0]] == direction[shape.adjacency[:, 1]]]
    if len(pairs) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 3)), np.zeros(0)
    paired = np.zeros(len(shape.faces), dtype=bool)
    paired[pairs] = True
    members = np.flatnonzero(paired)
    local = np.full(len(shape.faces), -1)
    local[members] = np.arange(len(members))
    joined = local[pairs]
    graph = coo_matrix(
        (np.ones(len(joined), dtype=np.int8), (joined[:, 0], joined[:, 1])),
        shape=(len(members), len(members)),
    )
    count, patch = connected_components(graph, directed=False)
    weights = shape.areas[members]
    areas = np.bincount(patch, weights=weights, minlength=count)
    sums = np.column_stack(
        [np.bincount(patch, weights=weights * shape.normals[members, i], minlength=count)
         for i in range(3)]
    )  # fmt: skip
    lengths = np.linalg.norm(sums, axis=1, keepdims=True)
    normals = np.divide(sums, lengths, out=np.zeros_like(sums), where=lengths > 0)
    first = np.full(count, len(members))
    np.minimum.at(first, patch, np.arange(len(members)))
    return members[first], normals, areas


def _extents(vertices: np.ndarray, downs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The part's extents turned each way. An axis-aligned turn only swaps the axes (its
    matrix holds exact 0s and ±1s): its extents are the bounding box's, reordered. The
    others come from one pass over the vertices, in chunks to keep the temporaries small."""
    box = np.ptp(vertices, axis=0)
    rotations = [_rotation(down)[:3, :3] for down in downs]
    tilted = [i for i, rotation in enumerate(rotations) if np.count_nonzero(rotation) != 3]
    extents = [np.abs(rotation) @ box for rotation in rotations]
    if tilted:
        rows = np.concatenate([rotations[i] for i in tilted])  # (3 x tilted, 3)
        low = np.full(len(rows), np.inf)
        high = np.full(len(rows), -np.inf)
        for start in range(0, len(vertices), _CHUNK):
            chunk = turned(vertices[start : start + _CHUNK], rows)
            low = np.minimum(low, column_min(chunk))
            high = np.maximum(high, column_max(chunk))
        for i, extent in zip(tilted, (high - low).reshape(-1, 3), strict=True):
            extents[i] = extent
    return extents


def _rotation(down: np.ndarray) -> np.ndarray:
    matrix: np.ndarray = trimesh.geometry.align_vectors(down, [0.0, 0.0, -1.0])
    return matrix


def _measure(
    shape: _Shape,
    down: np.ndarray,
    label: str,
    extent: np.ndarray,
    overhang_deg: float,
    bridge_mm: float,
    build_volumes_mm: Sequence[tuple[float, float, float]],
) -> Orientation:
    matrix = _rotation(down)
    rotation = matrix[:3, :3]
    # Only heights and normals' Z in print coordinates for the whole mesh; X and Y only for
    # the few faces that need them.
    z = along(shape.vertices, rotation[2])
    normal_z = along(shape.normals, rotation[2])
    extents = tuple(float(v) for v in extent)
    facing_down = np.flatnonzero(normal_z < _FACING_DOWN)
    lowest = z.min()
    on_bed = row_max(z[shape.faces[facing_down]]) <= lowest + CONTACT_TOLERANCE_MM
    contact_faces = facing_down[on_bed]
    contact = np.zeros(len(shape.faces), dtype=bool)
    contact[contact_faces] = True
    contact_area = float(shape.areas[contact_faces].sum())
    touching = shape.vertices[unique(shape.faces[contact_faces])] @ rotation[:2].T
    footprint = shapely.convex_hull(shapely.multipoints(_hull_points(touching)))
    base = _narrow_side(footprint)
    centre = rotation[:2] @ shape.centre
    stable = bool(base >= STABLE_BASE_MM and footprint.buffer(1e-6).contains(shapely.Point(centre)))
    support, support_volume = _support(
        shape, rotation, z, normal_z, contact, overhang_deg, bridge_mm
    )
    height = extents[2]
    tipping = height / base if base > 0 else math.inf
    tipping_cost = TIPPING_COST_MM2 * min(max(tipping - TIPPING_LIMIT, 0.0), 1000.0)
    return Orientation(
        label=label,
        down=_triple(down, 6),
        matrix=tuple(tuple(round(float(v), 6) for v in row) for row in matrix),
        extents_mm=_triple(extent, 3),
        height_mm=round(height, 3),
        support_area_mm2=round(support, 1),
        support_volume_mm3=round(support_volume, 1),
        contact_area_mm2=round(contact_area, 1),
        base_width_mm=round(base, 3),
        stable=stable,
        fits=any(fits_volume(extents, volume) for volume in build_volumes_mm),
        cost=round(
            SUPPORT_COST_MM2_PER_MM3 * support_volume
            + HEIGHT_COST_MM2_PER_MM * height
            - CONTACT_CREDIT * contact_area
            + tipping_cost,
            3,
        ),
    )


def _triple(values: np.ndarray, digits: int) -> tuple[float, float, float]:
    x, y, z = (round(float(v), digits) for v in values)
    return x, y, z


def _hull_points(points: np.ndarray) -> np.ndarray:
    """The corners of the points' convex hull (qhull), or all of them when too few or in a
    line: shapely's hull is the same either way, and building thousands of points is slow."""
    if len(points) <= 64:
        return points
    try:
        corners: np.ndarray = points[ConvexHull(points).vertices]
        return corners
    except QhullError:
        return points


def _support(
    shape: _Shape,
    rotation: np.ndarray,
    z: np.ndarray,
    normal_z: np.ndarray,
    contact: np.ndarray,
    overhang_deg: float,
    bridge_mm: float,
) -> tuple[float, float]:
    """Projected area and volume of the overhangs that need support (`z` and `normal_z` are the
    vertices' heights and the normals' Z in print coordinates, `rotation` takes model to
    print coordinates).

    A face overhangs when it leans more than overhang_deg (+ the tolerance) from vertical;
    connected overhanging faces form a region. A region prints as a bridge, without support, when it
    is at most bridge_mm wide on the narrow side of its footprint and at least half of its
    rim rests on material below (the top of a horizontal hole, a slot's or pocket's ceiling);
    a region hanging free along most of its rim (a cantilever, a mushroom's cap) needs support.
    """
    steepest = math.sin(math.radians(overhang_deg + OVERHANG_TOLERANCE_DEG))
    overhang = (normal_z < -steepest) & ~contact
    faces = np.flatnonzero(overhang)
    if len(faces) == 0:
        return 0.0, 0.0
    # Regions: components of the graph of overhanging faces only.
    local = np.full(len(shape.faces), -1)
    local[faces] = np.arange(len(faces))
    pairs = shape.adjacency
    first_inside = overhang[shape.adjacency_first]
    second_inside = overhang[shape.adjacency_second]
    joined = np.flatnonzero(first_inside & second_inside)
    graph = coo_matrix(
        (
            np.ones(len(joined), dtype=np.int8),
            (local[shape.adjacency_first[joined]], local[shape.adjacency_second[joined]]),
        ),
        shape=(len(faces), len(faces)),
    )
    regions, region = connected_components(graph, directed=False)

    # Each region's box on the bed, one axis at a time: ufunc.at is several times faster on
    # 1-D arrays, and turning the vertices once is cheaper than turning every face's corners.
    corners = shape.faces[faces]
    plan = turned(shape.vertices, rotation[:2])  # (vertices, 2): where each lies on the bed
    sides = []
    for axis in range(2):
        along = plan[:, axis][corners]  # (faces, 3)
        low = np.full(regions, np.inf)
        high = np.full(regions, -np.inf)
        np.minimum.at(low, region, np.minimum(np.minimum(along[:, 0], along[:, 1]), along[:, 2]))
        np.maximum.at(high, region, np.maximum(np.maximum(along[:, 0], along[:, 1]), along[:, 2]))
        sides.append(high - low)
    narrow = np.minimum(sides[0], sides[1]) <= bridge_mm

    # The rim: edges between a region face and a face outside it. An edge rests on material
    # when the outside face's far corner lies below the edge.
    rim = np.flatnonzero(first_inside != second_inside)
    within = second_inside[rim].astype(int)  # which of the pair lies in the region: 0 or 1
    row = np.arange(len(rim))
    rim_region = region[local[pairs[rim][row, within]]]
    far_corner = shape.adjacency_far[rim][row, 1 - within]
    edges = shape.adjacency_edges[rim]
    length = np.linalg.norm(shape.vertices[edges[:, 0]] - shape.vertices[edges[:, 1]], axis=1)
    rests = z[far_corner] < row_mean(z[edges]) - 1e-6
    rim_length = np.bincount(rim_region, weights=length, minlength=regions)
    resting = np.bincount(rim_region, weights=length * rests, minlength=regions)
    rests_enough = resting >= 0.5 * rim_length
    projected = shape.areas[faces] * -normal_z[faces]
    # Wide by their box, yet perhaps narrow as a ring or a frame. Twice the area over the rim's
    # length is a strip's or a ring's width (and half a disc's): only where that says narrow is
    # the widest circle in the footprint measured, which costs a polygon union.
    strip = (
        2 * np.bincount(region, weights=projected, minlength=regions) / np.maximum(rim_length, 1e-9)
    )
    for wide in np.flatnonzero(~narrow & rests_enough & (strip <= bridge_mm)):
        narrow[wide] = _inscribed_width(plan[corners[region == wide]]) <= bridge_mm
    bridged = narrow & rests_enough

    needs = ~bridged[region]
    above = row_mean(z[corners]) - z.min()
    return float(projected[needs].sum()), float((projected * above)[needs].sum())


_INSCRIBED_TRIANGLES = 5_000  # regions with more faces are taken as wide (too slow to measure)


def _inscribed_width(triangles: np.ndarray) -> float:
    """The diameter of the widest circle inside the union of (k, 3, 2) triangles on the bed."""
    if len(triangles) > _INSCRIBED_TRIANGLES:
        return math.inf
    polygons = shapely.polygons(np.concatenate([triangles, triangles[:, :1]], axis=1))
    footprint = shapely.union_all(shapely.make_valid(polygons), grid_size=1e-4)
    if footprint.is_empty or footprint.area == 0:
        return 0.0
    parts = getattr(footprint, "geoms", [footprint])
    widest = max(
        shapely.maximum_inscribed_circle(part, tolerance=0.05).length
        for part in parts
        if part.geom_type == "Polygon"
    )
    return 2.0 * float(widest)


def _narrow_side(footprint: shapely.Geometry) -> float:
    if footprint.is_empty or footprint.area == 0:
        return 0.0
    corners = np.asarray(shapely.oriented_envelope(footprint).exterior.coords)
    sides = np.linalg.norm(np.diff(corners[:3], axis=0), axis=1)
    return float(sides.min())
