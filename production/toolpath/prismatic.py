"""A part as a 2.5D mill sees it: an outline, pockets with floors, and round holes.

A 2.5D part is one whose every face is either horizontal (a top, a floor, the bottom) or
vertical (a wall): then its section is the same at every height between two floors, and it
can be cut from a plate from above alone. `describe_part` reads the CadQuery solid (the STEP
the geometry step stored): planar faces facing up or down give the levels, vertical cylinders
whose material lies outside give the holes with their exact diameters, and the solid's
sections between levels give the outline and the pockets. An uploaded STL has no solid: it is
read from the mesh instead (horizontal triangles give the levels, trimesh sections the
regions, circular section holes the holes), with the mesh's chordal error.

Anything else (a sloped face, a rounded edge along a horizontal axis, a countersink cone, a
face looking down above the bottom) cannot be reached by a flat end mill from above: the part
is refused with the feature named. Coordinates are the part's own, in millimetres; the
planner places them in the stock.
"""

import io
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import shapely
import trimesh
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from microfactory.errors import Rejected

ENGINE = "microfactory-prismatic 2"
# Chordal error of curved edges turned into polygons (STEP: our discretisation).
DEFLECTION_MM = 0.002
LEVEL_TOLERANCE_MM = 1e-3  # two horizontal faces this close in z are one level
VERTICAL_TOLERANCE = 1e-6  # |normal z| below this: a vertical face
MIN_REGION_AREA_MM2 = 0.01  # slivers from polygonised circles: not a feature

Ring = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Region:
    """A polygon with islands, as plain coordinate rings (the value, free of shapely)."""

    exterior: Ring
    interiors: tuple[Ring, ...] = ()

    @classmethod
    def of(cls, polygon: Polygon) -> "Region":
        polygon = shapely.geometry.polygon.orient(polygon, 1.0)
        return cls(
            exterior=_ring(polygon.exterior.coords),
            interiors=tuple(_ring(inner.coords) for inner in polygon.interiors),
        )

    @property
    def polygon(self) -> Polygon:
        return Polygon(self.exterior, list(self.interiors))


@dataclass(frozen=True)
class Hole:
    """A round vertical hole: drilled when a drill matches, else milled in a helix."""

    x_mm: float
    y_mm: float
    diameter_mm: float
    top_z_mm: float
    bottom_z_mm: float
    through: bool
    countersink_diameter_mm: float = 0.0  # 0: none; else its diameter at the top
    countersink_angle_deg: float = 0.0  # included angle of the cone (90 for metric screws)

    @property
    def depth_mm(self) -> float:
        return self.top_z_mm - self.bottom_z_mm

    @property
    def widest_mm(self) -> float:
        return max(self.diameter_mm, self.countersink_diameter_mm)


@dataclass(frozen=True)
class Pocket:
    """Material to clear between two heights inside the outline: a pocket, a slot, a step
    open to the outside, or a cut-out through the part (`through`)."""

    region: Region
    top_z_mm: float
    floor_z_mm: float
    through: bool
    width_mm: float  # diameter of the largest circle inside: the widest tool that enters

    @property
    def depth_mm(self) -> float:
        return self.top_z_mm - self.floor_z_mm

    open_side: bool = False  # reaches the outline: a step or a shoulder, not enclosed

    @property
    def kind(self) -> str:
        """What to call it in a message: open to the side, a step; long and narrow, a slot."""
        if self.open_side:
            return "step"
        if self.through:
            return "cut-out"
        length = self.region.polygon.exterior.length / 2
        narrow = not self.region.interiors and length > 3 * self.width_mm
        return "slot" if narrow else "pocket"

    @property
    def where(self) -> str:
        point = self.region.polygon.representative_point()
        return f"at x {point.x:.1f}, y {point.y:.1f}"


@dataclass(frozen=True)
class PrismaticPart:
    top_z_mm: float
    bottom_z_mm: float
    outline: Region  # the footprint: the section at the bottom, its openings filled
    pockets: tuple[Pocket, ...]
    holes: tuple[Hole, ...]
    levels: tuple[float, ...]  # every floor's z, top first
    source: str  # "step" | "mesh"

    @property
    def height_mm(self) -> float:
        return self.top_z_mm - self.bottom_z_mm

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        minx, miny, maxx, maxy = self.outline.polygon.bounds
        return (float(minx), float(miny), float(maxx), float(maxy))


def describe_part(*, step: bytes | None, stl: bytes) -> PrismaticPart:
    """The part's 2.5D description: from its solid when there is one, else from its mesh."""
    if step:
        return describe_solid(_read_step(step))
    return describe_mesh(stl)


# --- from the CadQuery solid -----------------------------------------------------------------


def _read_step(step: bytes) -> Any:
    import cadquery as cq

    # cadquery.importers reads files only: a temporary one, gone when read.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.step"
        path.write_bytes(step)
        try:
            shape = cq.importers.importStep(str(path))
        except ValueError as error:
            raise Rejected(f"the STEP file cannot be read: {error}") from error
    solids = shape.solids().vals()
    if len(solids) != 1:
        raise Rejected(f"a milled part must be one solid, not {len(solids)}")
    return solids[0]


def describe_solid(solid: Any) -> PrismaticPart:
    """Read a CadQuery Solid's faces: levels, walls and holes; refuse any other face."""
    bbox = solid.BoundingBox()
    bottom, top = float(bbox.zmin), float(bbox.zmax)
    up: list[float] = []
    cylinders: dict[tuple[float, float, float], list[Any]] = {}
    cones: dict[tuple[float, float], list[Any]] = {}
    for face in solid.Faces():
        kind = face.geomType()
        if kind == "PLANE":
            normal = face.normalAt(face.Center())
            if abs(normal.z) <= VERTICAL_TOLERANCE:
                continue  # a flat wall
            if abs(abs(normal.z) - 1) > VERTICAL_TOLERANCE:
                raise Rejected(f"a sloped face {_at(face)} cannot be milled from above in 2.5D")
            z = float(face.Center().z)
            if normal.z < 0 and z > bottom + LEVEL_TOLERANCE_MM:
                raise Rejected(
                    f"a face looking down {_at(face)} (an undercut) cannot be reached from above"
                )
            if normal.z > 0:
                up.append(z)
        elif kind == "CYLINDER":
            cylinder = face._geomAdaptor().Cylinder()
            axis = cylinder.Axis()
            direction, location = axis.Direction(), axis.Location()
            radius = float(cylinder.Radius())
            if abs(abs(direction.Z()) - 1) > VERTICAL_TOLERANCE:
                raise Rejected(
                    f"a rounded edge (r {radius:.1f} mm, its axis not vertical) {_at(face)} "
                    "needs a ball-end mill or another set-up: not 2.5D"
                )
            key = (round(location.X(), 4), round(location.Y(), 4), round(radius, 4))
            cylinders.setdefault(key, []).append(face)
        elif kind == "CONE":
            cone = face._geomAdaptor().Cone()
            axis = cone.Axis()
            if abs(abs(axis.Direction().Z()) - 1) > VERTICAL_TOLERANCE:
                raise Rejected(f"a cone {_at(face)} with its axis not vertical: not 2.5D")
            key2 = (round(axis.Location().X(), 4), round(axis.Location().Y(), 4))
            cones.setdefault(key2, []).append(face)
        elif _vertical(face):
            continue  # a wall of another shape: an involute, a spline, an ellipse
        else:
            name = {"BSPLINE": "free-form", "BEZIER": "free-form", "EXTRUSION": "curved"}.get(
                kind, kind.lower()
            )
            raise Rejected(f"a {name} face {_at(face)} cannot be milled from above in 2.5D")
    levels = _levels(up, top=top, bottom=bottom)
    holes = tuple(
        hole
        for key, faces in sorted(cylinders.items())
        if (hole := _hole(key, faces, bottom=bottom)) is not None
    )
    holes = _countersunk(holes, cones)

    def section(z: float) -> BaseGeometry:
        return _solid_section(solid, z)

    return _describe(levels, section, holes, top=top, bottom=bottom, source="step")


def _vertical(face: Any, samples: int = 5) -> bool:
    """Whether every normal on a grid over the face is horizontal: a wall."""
    umin, umax, vmin, vmax = face._uvBounds()
    for i in range(samples):
        for j in range(samples):
            u = umin + (umax - umin) * (i + 0.5) / samples
            v = vmin + (vmax - vmin) * (j + 0.5) / samples
            normal, _ = face.normalAt(u, v)
            if abs(normal.z) > 1e-6:
                return False
    return True


def _countersunk(
    holes: tuple[Hole, ...], cones: dict[tuple[float, float], list[Any]]
) -> tuple[Hole, ...]:
    """Each cone must open upwards from the top of a round hole on its axis: a countersink.
    The hole then starts at the cone's top, with the countersink's diameter and angle."""
    found = list(holes)
    for (x, y), faces in sorted(cones.items()):
        box = faces[0].BoundingBox()
        for face in faces[1:]:
            box.add(face.BoundingBox())
        diameter, angle = (
            float(box.xlen),
            2 * math.degrees(faces[0]._geomAdaptor().Cone().SemiAngle()),
        )
        where = f"at x {x:.1f}, y {y:.1f}, z {float(box.zmax):.1f}"
        index = next(
            (
                i
                for i, h in enumerate(found)
                if math.dist((h.x_mm, h.y_mm), (x, y)) < 1e-3
                and abs(h.top_z_mm - float(box.zmin)) < LEVEL_TOLERANCE_MM
                and diameter > h.diameter_mm + 1e-3
            ),
            None,
        )
        if index is None:
            raise Rejected(
                f"a cone (a chamfer) {where} needs a chamfer tool; the tool table has none"
            )
        found[index] = replace(
            found[index],
            top_z_mm=float(box.zmax),
            countersink_diameter_mm=round(diameter, 4),
            countersink_angle_deg=round(abs(angle), 3),
        )
    return tuple(found)


def _at(face: Any) -> str:
    c = face.Center()
    return f"at x {c.x:.1f}, y {c.y:.1f}, z {c.z:.1f}"


def _hole(key: tuple[float, float, float], faces: list[Any], *, bottom: float) -> Hole | None:
    """A round hole when the cylinder's faces close a full circle and the material lies
    outside it (a boss or a corner fillet has its material inside, or is partial)."""
    x, y, radius = key
    zmin = min(float(f.BoundingBox().zmin) for f in faces)
    zmax = max(float(f.BoundingBox().zmax) for f in faces)
    height = zmax - zmin
    if height <= 0:
        return None
    covered = sum(float(f.Area()) for f in faces) / (2 * math.pi * radius * height)
    if covered < 0.999:
        return None
    face = faces[0]
    umin, umax, vmin, vmax = face._uvBounds()
    u, v = (umin + umax) / 2, (vmin + vmax) / 2
    normal, point = face.normalAt(u, v)
    outward = (point.x - x) * normal.x + (point.y - y) * normal.y
    if outward > 0:
        return None  # a boss: its material is inside the cylinder
    return Hole(
        x_mm=x,
        y_mm=y,
        diameter_mm=2 * radius,
        top_z_mm=zmax,
        bottom_z_mm=zmin,
        through=zmin <= bottom + LEVEL_TOLERANCE_MM,
    )


def _solid_section(solid: Any, z: float) -> BaseGeometry:
    """The solid's section at height z, as shapely polygons (edges discretised finely)."""
    import cadquery as cq

    plane = cq.Face.makePlane(basePnt=cq.Vector(0, 0, z), dir=cq.Vector(0, 0, 1))
    cut = solid.intersect(plane)
    polygons = []
    for face in cut.Faces():
        outer = Polygon(_wire_points(face.outerWire()))
        for inner in face.innerWires():
            outer = outer.difference(Polygon(_wire_points(inner)))
        polygons.append(outer)
    return shapely.union_all(polygons) if polygons else Polygon()


def _wire_points(wire: Any) -> list[tuple[float, float]]:
    from OCP.BRepAdaptor import BRepAdaptor_Curve
    from OCP.BRepTools import BRepTools_WireExplorer
    from OCP.GCPnts import GCPnts_QuasiUniformDeflection
    from OCP.GeomAbs import GeomAbs_Line
    from OCP.TopAbs import TopAbs_REVERSED

    points: list[tuple[float, float]] = []
    explorer = BRepTools_WireExplorer(wire.wrapped)
    while explorer.More():
        edge = explorer.Current()
        curve = BRepAdaptor_Curve(edge)
        if curve.GetType() == GeomAbs_Line:
            ends = [curve.Value(curve.FirstParameter()), curve.Value(curve.LastParameter())]
        else:
            sampled = GCPnts_QuasiUniformDeflection(curve, DEFLECTION_MM)
            ends = [sampled.Value(i) for i in range(1, sampled.NbPoints() + 1)]
        edge_points = [(float(p.X()), float(p.Y())) for p in ends]
        if edge.Orientation() == TopAbs_REVERSED:
            edge_points.reverse()
        points.extend(edge_points[:-1])
        explorer.Next()
    return points


# --- from a mesh -----------------------------------------------------------------------------


def describe_mesh(stl: bytes) -> PrismaticPart:
    """Read an STL: the same description, from its triangles (chordal error included)."""
    mesh = trimesh.load_mesh(io.BytesIO(stl), file_type="stl")
    if not mesh.is_watertight:
        raise Rejected("the mesh is not watertight")
    bottom, top = (float(v) for v in mesh.bounds[:, 2])
    normals, centers = mesh.face_normals, mesh.triangles_center
    up: list[float] = []
    for normal, center in zip(normals, centers, strict=True):
        nz = float(normal[2])
        if abs(nz) < 1e-3:
            continue
        if abs(nz) < 1 - 1e-6:
            raise Rejected(
                f"a sloped or curved face at x {center[0]:.1f}, y {center[1]:.1f}, "
                f"z {center[2]:.1f} cannot be milled from above in 2.5D"
            )
        if nz < 0 and center[2] > bottom + LEVEL_TOLERANCE_MM:
            raise Rejected(
                f"a face looking down at z {center[2]:.1f} (an undercut) cannot be reached "
                "from above"
            )
        if nz > 0:
            up.append(float(center[2]))
    levels = _levels(up, top=top, bottom=bottom)

    def section(z: float) -> BaseGeometry:
        cut = mesh.section(plane_origin=(0, 0, z), plane_normal=(0, 0, 1))
        if cut is None:
            return Polygon()
        planar, to_3d = cut.to_2D()
        # to_2D may rotate the plane's frame: bring the polygons back to the part's x, y.
        polygons = [
            shapely.affinity.affine_transform(
                p, [to_3d[0][0], to_3d[0][1], to_3d[1][0], to_3d[1][1], to_3d[0][3], to_3d[1][3]]
            )
            for p in planar.polygons_full
        ]
        return shapely.union_all(polygons)

    holes = _mesh_holes(levels, section, bottom=bottom)
    return _describe(levels, section, holes, top=top, bottom=bottom, source="mesh")


def _mesh_holes(
    levels: Sequence[float], section: Any, *, bottom: float, tolerance_mm: float = 0.05
) -> tuple[Hole, ...]:
    """Round openings of the sections, followed down the bands while they stay the same."""
    found: dict[tuple[float, float, float], list[float]] = {}
    for upper, lower in zip(levels, levels[1:], strict=False):
        for polygon in _polygons(section((upper + lower) / 2)):
            for inner in polygon.interiors:
                circle = _circle(list(inner.coords), tolerance_mm)
                if circle is None:
                    continue
                key = next(
                    (k for k in found if math.dist(k[:2], circle[:2]) < tolerance_mm), circle
                )
                found.setdefault(key, []).extend([upper, lower])
    return tuple(
        Hole(
            x_mm=x,
            y_mm=y,
            diameter_mm=2 * r,
            top_z_mm=max(zs),
            bottom_z_mm=min(zs),
            through=min(zs) <= bottom + LEVEL_TOLERANCE_MM,
        )
        for (x, y, r), zs in sorted(found.items())
    )


def _circle(
    points: list[tuple[float, float]], tolerance_mm: float
) -> tuple[float, float, float] | None:
    """(x, y, r) of the circle through a ring's vertices, or None when it is no circle. The
    radius is the vertices' (on the true circle for an STL of a cylinder)."""
    if len(points) < 12:
        return None
    ring = points[:-1]
    cx = sum(p[0] for p in ring) / len(ring)
    cy = sum(p[1] for p in ring) / len(ring)
    distances = [math.dist((cx, cy), p) for p in ring]
    r = max(distances)
    if r - min(distances) > tolerance_mm:
        return None
    return (round(cx, 4), round(cy, 4), round(r, 4))


# --- shared ----------------------------------------------------------------------------------


def _levels(up: Iterable[float], *, top: float, bottom: float) -> tuple[float, ...]:
    """Every distinct height a floor or the top lies at, top first, and the bottom."""
    levels: list[float] = []
    for z in sorted([*up, top], reverse=True):
        if not levels or levels[-1] - z > LEVEL_TOLERANCE_MM:
            levels.append(z)
    if levels[-1] - bottom > LEVEL_TOLERANCE_MM:
        levels.append(bottom)
    else:
        levels[-1] = bottom
    return tuple(levels)


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    if isinstance(geometry, MultiPolygon):
        return [p for p in geometry.geoms if not p.is_empty]
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon) and g.area > 0]


def _describe(
    levels: Sequence[float],
    section: Any,
    holes: tuple[Hole, ...],
    *,
    top: float,
    bottom: float,
    source: str,
) -> PrismaticPart:
    """Pockets from the sections between levels: what the footprint has and a band lacks,
    minus the round holes (drilled or milled on their own)."""
    if len(levels) < 2 or top - bottom <= LEVEL_TOLERANCE_MM:
        raise Rejected("the part has no height")
    lowest = _polygons(section((levels[-2] + levels[-1]) / 2))
    if not lowest:
        raise Rejected("the part has no section above its bottom")
    if len(lowest) > 1:
        raise Rejected(f"the part falls apart into {len(lowest)} pieces at its bottom")
    footprint = Polygon(lowest[0].exterior)
    pockets: list[Pocket] = []
    open_above: list[Pocket] = []  # the previous band's pockets, to merge same regions into
    for upper, lower in zip(levels, levels[1:], strict=False):
        band = shapely.union_all(_polygons(section((upper + lower) / 2)))
        removed = footprint.difference(band)
        for hole in holes:
            if hole.bottom_z_mm - LEVEL_TOLERANCE_MM <= lower and upper <= hole.top_z_mm + 1e-3:
                disc = shapely.Point(hole.x_mm, hole.y_mm).buffer(
                    hole.widest_mm / 2 + 0.01, quad_segs=256
                )
                removed = removed.difference(disc)
        here: list[Pocket] = []
        for polygon in _polygons(removed):
            if polygon.area < MIN_REGION_AREA_MM2:
                continue
            polygon = polygon.buffer(0)
            same = next(
                (
                    p
                    for p in open_above
                    if p.region.polygon.symmetric_difference(polygon).area < MIN_REGION_AREA_MM2
                ),
                None,
            )
            if same is not None:
                pockets.remove(same)
                top_z = same.top_z_mm
            else:
                top_z = upper
            pocket = Pocket(
                region=Region.of(polygon),
                top_z_mm=top_z,
                floor_z_mm=lower,
                through=lower <= bottom + LEVEL_TOLERANCE_MM,
                width_mm=_width(polygon),
                open_side=polygon.exterior.intersection(footprint.exterior).length > 0.01,
            )
            pockets.append(pocket)
            here.append(pocket)
        open_above = here
    return PrismaticPart(
        top_z_mm=top,
        bottom_z_mm=bottom,
        outline=Region.of(footprint),
        pockets=tuple(pockets),
        holes=holes,
        levels=tuple(levels),
        source=source,
    )


def _width(polygon: Polygon) -> float:
    """Diameter of the largest circle that fits in the polygon."""
    circle = shapely.maximum_inscribed_circle(polygon, tolerance=0.001)
    return float(2 * circle.length)


def _ring(coords: Iterable[Sequence[float]]) -> Ring:
    return tuple((round(float(x), 6), round(float(y), 6)) for x, y, *_ in coords)
