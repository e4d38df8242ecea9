"""From STL bytes to one planar region per layer, in bed coordinates."""

import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
import trimesh
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from microfactory.errors import Rejected
from production.toolpath import forking
from production.toolpath.profile import FdmProfile

# Slicing exactly through a horizontal face yields broken sections; planes that close to a
# vertex move up by a hair, far below anything a printer resolves.
PLANE_NUDGE_MM = 2e-4
# Section outlines carry collinear points where triangle edges cross; dropping them keeps the
# G-code short, and offsetting a simplified outline is the largest single speed lever (as in
# the C++ slicers).
SIMPLIFY_MM = 0.0125  # PrusaSlicer's default "G-code resolution"
SNAP_DECIMALS = 5  # section end points are rounded to 0.01 µm
# Section segments (all distinct sections together) from which their regions are built in two
# processes: ~5 µs of GEOS each, so below this a forked child costs more CPU than it saves
# time (the small prismatic parts, 0.05-0.15 s of region building).
FORK_MIN_SEGMENTS = 30_000
# Faces meeting at a smaller angle are one flat wall (a CAD face's triangles, whose normals
# differ only by the STL's float rounding: ~1e-8 rad, where real edges bend 1e-3 rad or more).
COPLANAR_RAD = 1e-6


# The empty region, made once: shapely makes each MultiPolygon() from WKT (16 µs), and the
# planner needs thousands (geometries are immutable, so one serves all).
NOTHING = MultiPolygon()


@dataclass(frozen=True)
class Slice:
    z_mm: float  # top of the layer: where the nozzle sits while printing it
    height_mm: float
    region: MultiPolygon  # what the part covers at the middle of the layer


def load_mesh(stl: bytes) -> trimesh.Trimesh:
    """Read a binary or ASCII STL; refuse anything else or a mesh without faces."""
    if not _is_binary_stl(stl):
        try:
            stl.decode("ascii")
        except UnicodeDecodeError:
            raise Rejected("the file is neither a binary nor an ASCII STL") from None
    try:
        mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
    except ValueError:  # what trimesh raises for truncated or malformed ASCII facets
        raise Rejected("the STL could not be read") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise Rejected("the STL has no triangles")
    return mesh


def place_on_bed(mesh: trimesh.Trimesh, profile: FdmProfile) -> trimesh.Trimesh:
    """Centre the part on the bed with its lowest point at z=0, orientation as given."""
    (x0, y0, z0), (x1, y1, z1) = mesh.bounds
    size_x, size_y, height = x1 - x0, y1 - y0, z1 - z0
    bed_x, bed_y = profile.bed_mm
    if height > profile.max_height_mm:
        raise Rejected(
            f"the part is {height:.1f} mm tall; the printer reaches {profile.max_height_mm:g} mm"
        )
    if size_x > bed_x or size_y > bed_y:
        raise Rejected(
            f"the part's footprint {size_x:.1f} x {size_y:.1f} mm is bigger than "
            f"the {bed_x:g} x {bed_y:g} mm bed"
        )
    placed = mesh.copy()
    placed.apply_translation([bed_x / 2 - (x0 + x1) / 2, bed_y / 2 - (y0 + y1) / 2, -z0])
    return placed


def keep_on_bed(mesh: trimesh.Trimesh, profile: FdmProfile) -> trimesh.Trimesh:
    """An arranged plate as placed: XY kept, lowest point at z=0; refused if off the bed."""
    (x0, y0, z0), (x1, y1, z1) = (tuple(float(v) for v in corner) for corner in mesh.bounds)
    bed_x, bed_y = profile.bed_mm
    if z1 - z0 > profile.max_height_mm:
        raise Rejected(
            f"the plate is {z1 - z0:.1f} mm tall; the printer reaches {profile.max_height_mm:g} mm"
        )
    if x0 < 0 or y0 < 0 or x1 > bed_x or y1 > bed_y:
        raise Rejected(
            f"the plate's parts reach from X{x0:.1f} Y{y0:.1f} to X{x1:.1f} Y{y1:.1f}, "
            f"off the {bed_x:g} x {bed_y:g} mm bed"
        )
    placed = mesh.copy()
    placed.apply_translation([0.0, 0.0, -z0])
    return placed


def layer_tops(height_mm: float, profile: FdmProfile) -> list[float]:
    """Nozzle heights: the first layer, then one per layer whose middle is still in the part."""
    first, step = profile.first_layer_height_mm, profile.layer_height_mm
    tops = [first]
    # top_i = first + i * step, kept while its middle (top_i - step / 2) is below the part's top.
    count = math.ceil((height_mm - first + step / 2) / step - 1e-9)
    tops.extend(first + i * step for i in range(1, max(count, 1)))
    return tops


def slice_layers(mesh: trimesh.Trimesh, profile: FdmProfile) -> list[Slice]:
    """Cut the placed mesh at the middle of every layer; drop empty layers at the top."""
    height = float(mesh.bounds[1][2])
    tops = layer_tops(height, profile)
    heights = [profile.first_layer_height_mm] + [profile.layer_height_mm] * (len(tops) - 1)
    middles = _nudged(np.array([t - h / 2 for t, h in zip(tops, heights, strict=True)]), mesh)
    sections, creases = _sections(mesh, middles)
    # The layers of a prismatic stretch cut the same walls at the same places: their sections
    # are one region, built once (and one object, so what is planned per region later is
    # planned once too). Where a wall is flat, its triangles' diagonals cross each plane
    # elsewhere, at points on a straight run of the outline: a section is known by where it
    # crosses the mesh's creases (the edges between faces that are not coplanar).
    distinct: dict[bytes, int] = {}
    cuts: list[np.ndarray] = []
    which = []
    for segments, crease in zip(sections, creases, strict=True):
        snapped = np.round(segments[:, :, :2], SNAP_DECIMALS) if len(segments) else segments
        key = b"all" + snapped.tobytes()
        if crease is not None and crease.any():
            corners = np.column_stack([crease[crease >= 0], snapped[crease >= 0]])
            key = corners[np.lexsort(corners.T[::-1])].tobytes()
        which.append(distinct.setdefault(key, len(cuts)))
        if which[-1] == len(cuts):
            cuts.append(snapped)
    # Each section's region is its own: half of them are built in a forked child while
    # this process builds the other half (forking.map_halves), when there is enough of them
    # to pay for the child (its fork and copied pages cost ~30-60 ms of CPU).
    if sum(len(cut) for cut in cuts) >= FORK_MIN_SEGMENTS:
        regions = forking.map_halves(_region, cuts)
    else:
        regions = [_region(cut) for cut in cuts]
    # Cuts that differ only in points the simplification drops (where triangle diagonals
    # cross the plane) give the same region: one object for all of them, prepared once for
    # the planner's and the writer's many tests (what they build per region is keyed by its
    # bytes: paths.iter_layers, paths._walls, the writer's comb areas).
    same: dict[bytes, MultiPolygon] = {}
    regions = [same.setdefault(region.wkb, region) for region in regions]
    slices = [
        Slice(z_mm=top, height_mm=h, region=regions[index])
        for top, h, index in zip(tops, heights, which, strict=True)
    ]
    while slices and slices[-1].region.is_empty:
        slices.pop()
    if not slices:
        raise Rejected("no layer of the part has a closed outline to print")
    return slices


def polygons_of(geometry: BaseGeometry) -> list[Polygon]:
    """The polygonal parts of whatever shapely returned (collections hold stray lines too)."""
    return [
        part
        for part in shapely.get_parts(geometry)
        if isinstance(part, Polygon) and not part.is_empty
    ]


def point_at(xy: "np.ndarray | Sequence[float]") -> Point:
    """Point(xy) without its argument checks: the planner makes tens of thousands."""
    point: Point = shapely.points(xy)
    return point


def segment_at(a: "np.ndarray | Sequence[float]", b: "np.ndarray | Sequence[float]") -> LineString:
    """LineString([a, b]) at half its cost: travel routing makes one per travel and check."""
    segment: LineString = shapely.linestrings(np.array([a, b], dtype=float))
    return segment


def as_multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    polygons = polygons_of(geometry)
    return MultiPolygon(polygons) if polygons else NOTHING


def _is_binary_stl(stl: bytes) -> bool:
    # An 80-byte header, a triangle count, then exactly 50 bytes per triangle. ASCII files
    # start with "solid", but so do some binary headers, so the size is what decides.
    if len(stl) < 84:
        return False
    (count,) = struct.unpack_from("<I", stl, 80)
    return len(stl) == 84 + 50 * int(count)


def _nudged(middles: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    vertex_z = np.unique(mesh.vertices[:, 2])
    at = np.clip(np.searchsorted(vertex_z, middles), 1, max(len(vertex_z) - 1, 1))
    nearest = np.minimum(
        np.abs(vertex_z[at] - middles), np.abs(vertex_z[np.maximum(at - 1, 0)] - middles)
    )
    return np.where(nearest < PLANE_NUDGE_MM / 2, middles + PLANE_NUDGE_MM, middles)


def _sections(
    mesh: trimesh.Trimesh, heights: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """The (n, 2, 2) segments where each horizontal plane at `heights` cuts the mesh: what
    trimesh.intersections.mesh_multiplane returns, bit for bit and in its order, but for all
    planes in one numpy pass instead of a call per plane (a third of slicing a tall part).
    With each section its segment ends' edges ((n, 2): the edge's vertices as one number,
    -1 for an edge between coplanar faces; None for a section trimesh cut).

    A plane crosses a face when one corner lies above it and two below, or the reverse
    (beyond trimesh's tolerance); its segment runs from the crossing on the edge from that
    odd corner to the next corner to the one on the edge to the corner after, each the odd
    corner plus (height - its z) / the edge's unit direction's z along that direction, the
    same operations in the same order as trimesh. A plane with a corner on it (which
    _nudged makes rare) is cut by trimesh itself.
    """
    vertices, faces = mesh.vertices, mesh.faces
    corner_z = vertices[faces][:, :, 2]
    order = np.argsort(heights, kind="stable")
    # Every plane within twice the tolerance of a face's height range, tested exactly below.
    first = np.searchsorted(heights[order], corner_z.min(axis=1) - 2 * trimesh.tol.merge)
    stop = np.searchsorted(heights[order], corner_z.max(axis=1) + 2 * trimesh.tol.merge, "right")
    counts = np.maximum(stop - first, 0)
    face = np.repeat(np.arange(len(faces)), counts)
    nth = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    plane = order[np.repeat(first, counts) + nth]
    dots = corner_z[face] - heights[plane][:, None]
    signs = np.zeros(dots.shape, dtype=np.int8)
    signs[dots < -trimesh.tol.merge] = -1
    signs[dots > trimesh.tol.merge] = 1
    touching = (signs == 0).any(axis=1)
    touched = np.unique(plane[touching])
    total = signs.sum(axis=1, dtype=np.int64)
    crossed = ~touching & (np.abs(total) == 1)  # two corners on one side, one on the other
    face, plane, signs, total = face[crossed], plane[crossed], signs[crossed], total[crossed]
    by_plane = np.lexsort((face, plane))  # trimesh's order: faces in order, plane by plane
    face, plane, signs, total = face[by_plane], plane[by_plane], signs[by_plane], total[by_plane]
    odd = np.argmax(signs != np.sign(total)[:, None], axis=1)
    tail = faces[face, odd]
    edges = np.column_stack(
        [tail, faces[face, (odd + 1) % 3], tail, faces[face, (odd + 2) % 3]]
    ).reshape(-1, 2)
    start = vertices[edges[:, 0]]
    direction = trimesh.util.unitize(vertices[edges[:, 1]] - start)
    along = (np.repeat(heights[plane], 2) - start[:, 2]) / direction[:, 2]
    points = (start + along.reshape((-1, 1)) * direction)[:, :2].reshape((-1, 2, 2))
    crease = _edge_codes(mesh, edges).reshape((-1, 2))
    bounds = np.searchsorted(plane, np.arange(len(heights) + 1))
    sections = [points[bounds[k] : bounds[k + 1]] for k in range(len(heights))]
    creases: list[np.ndarray | None] = [
        crease[bounds[k] : bounds[k + 1]] for k in range(len(heights))
    ]
    if len(touched):
        cut, _, _ = trimesh.intersections.mesh_multiplane(
            mesh,
            plane_origin=[0.0, 0.0, 0.0],
            plane_normal=[0.0, 0.0, 1.0],
            heights=heights[touched],
        )
        for k, segments in zip(touched.tolist(), cut, strict=True):
            sections[k], creases[k] = segments, None
    return sections, creases


def _edge_codes(mesh: trimesh.Trimesh, edges: np.ndarray) -> np.ndarray:
    """Each edge's (vertex pair's) number, -1 for one between two coplanar faces (a diagonal
    of a flat wall: where a plane crosses it, the section runs straight on)."""
    count = len(mesh.vertices)
    codes = edges.min(axis=1).astype(np.int64) * count + edges.max(axis=1)
    shared = mesh.face_adjacency_edges[mesh.face_adjacency_angles < COPLANAR_RAD]
    flat = shared.min(axis=1).astype(np.int64) * count + shared.max(axis=1)
    return np.where(np.isin(codes, flat), -1, codes)


def _region(segments: np.ndarray) -> MultiPolygon:
    """The area inside the section's segments ((n, 2, 2) end points, any order, already
    snapped to SNAP_DECIMALS so the ends two triangles share meet exactly), by GEOS.

    The segments are noded where bodies cross each other and turned into faces; a face
    inside an odd number of others is a hole (holes, islands in holes), and faces of bodies
    that overlap join.
    """
    if not len(segments):
        return NOTHING
    # One MultiLineString straight from the flat coordinates: the very geometry
    # shapely.multilinestrings(segments) makes, without a LineString object per segment first
    # (~15 times slower: 3 ms of a cover plate's section).
    count = len(segments)
    lines = shapely.from_ragged_array(
        shapely.GeometryType.MULTILINESTRING,
        segments.reshape(-1, 2),
        (np.arange(0, 2 * count + 1, 2), np.array([0, count])),
    )[0]
    area = shapely.build_area(shapely.node(lines))
    return as_multipolygon(area.simplify(SIMPLIFY_MM, preserve_topology=True))
