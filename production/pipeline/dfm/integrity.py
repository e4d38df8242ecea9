"""From a triangle soup to a closed solid with outward normals, repaired where that is safe.

Safe repairs change nothing a person designed and are reported as warnings: welding
vertices closer than a tenth of a micrometre, dropping faces that collapse to a line or
repeat another face, turning faces to agree with their neighbours, turning inside-out shells
the right way out, and closing holes whose rim is short. Anything else (non-manifold edges,
big holes, a surface that folds through itself) fails: guessing there could make a part
that is not what was drawn.
"""

from dataclasses import dataclass

import numpy as np
import trimesh

from .checks import FAIL, PASS, WARN, Budget, Check, Refused
from .intersections import crossing_pairs
from .rays import RayCaster, TooCrowded

WELD_MM = 1e-4
_MAX_OPEN_EDGES = 10_000  # beyond this the "mesh" is a triangle soup: don't try to trace holes
_MAX_SHELLS_TESTED = 256  # inside/outside tests for shells with negative volume
# A direction no axis-aligned model edge or face lies along, for the inside/outside parity test.
_PARITY_DIRECTION = np.array([0.8017, 0.4669, 0.3734]) / np.linalg.norm([0.8017, 0.4669, 0.3734])


@dataclass(frozen=True)
class Solid:
    mesh: trimesh.Trimesh  # closed, consistently wound, normals outward
    caster: RayCaster
    bodies: int  # separate outer shells
    voids: int  # closed cavities inside a body
    volume_mm3: float
    centre_mm: tuple[float, float, float]  # centre of mass


def make_solid(
    triangles: np.ndarray,
    *,
    max_vertices: int,
    max_hole_perimeter_mm: float,
    self_intersection_max_triangles: int,
    budget: Budget,
) -> tuple[Solid | None, list[Check]]:
    """The repaired solid and the checks on the way; None when a check failed.

    Raises Refused only for the vertex limit and for meshes with nothing left after cleaning.
    """
    checks: list[Check] = []
    vertices, faces, welded = _weld(triangles)
    checks.append(_vertex_count_check(len(vertices), max_vertices))
    checks.append(
        Check("merged_vertices", PASS, "0", f"closer than {WELD_MM} mm", "no stray vertices")
        if welded == 0
        else Check(
            "merged_vertices", WARN, f"{welded} merged", f"closer than {WELD_MM} mm",
            f"merged {welded} vertices that were less than {WELD_MM} mm apart",
        )
    )  # fmt: skip
    faces, degenerate = _without_degenerate(faces)
    checks.append(_repair_check("degenerate_faces", degenerate, "faces with no area"))
    faces, duplicates = _without_duplicates(faces)
    checks.append(_repair_check("duplicate_faces", duplicates, "faces that repeated another face"))
    if len(faces) == 0:
        raise Refused(
            Check(
                "volume", FAIL, "0 mm³", "> 0 mm³",
                "every triangle of the mesh has zero area: there is no part in this file",
            )
        )  # fmt: skip
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.remove_unreferenced_vertices()

    edges = mesh.edges_sorted
    _, uses = np.unique(edges[:, 0] * len(mesh.vertices) + edges[:, 1], return_counts=True)
    non_manifold = int((uses > 2).sum())
    if non_manifold:
        checks.append(
            Check(
                "non_manifold_edges", FAIL, str(non_manifold), "0",
                f"{non_manifold} edge(s) are shared by more than two faces: the mesh is not a "
                "clean solid; re-export it, or union overlapping bodies in the CAD program",
            )
        )  # fmt: skip
        return None, checks
    checks.append(Check("non_manifold_edges", PASS, "0", "0", "every edge joins two faces"))

    winding = _fix_winding(mesh)
    checks.append(winding)
    if winding.status == FAIL:
        return None, checks

    watertight = _close_small_holes(mesh, max_hole_perimeter_mm)
    checks.append(watertight)
    if watertight.status == FAIL:
        return None, checks

    budget.check("the inside/outside test")
    caster = RayCaster(mesh.triangles)
    labels = trimesh.graph.connected_component_labels(
        mesh.face_adjacency, node_count=len(mesh.faces)
    )
    normals, bodies, voids = _orient_shells(mesh, labels, caster)
    checks.append(normals)
    volume, centre = _mass(mesh.triangles)
    if volume <= 0:
        checks.append(
            Check(
                "volume", FAIL, f"{volume:.1f} mm³", "> 0 mm³",
                "the part has no volume: its surfaces enclose nothing",
            )
        )  # fmt: skip
        return None, checks
    checks.append(Check("volume", PASS, f"{volume:.1f} mm³", "> 0 mm³", f"volume {volume:.1f} mm³"))

    budget.check("the self-intersection test")
    crossing = _self_intersection_check(mesh, labels, caster, self_intersection_max_triangles)
    checks.append(crossing)
    checks.append(_bodies_check(bodies, voids))
    if crossing.status == FAIL:
        return None, checks
    solid = Solid(
        mesh=mesh, caster=caster, bodies=bodies, voids=voids, volume_mm3=volume, centre_mm=centre
    )
    return solid, checks


def _signed_volumes(triangles: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """Each face's tetrahedron with `apex`: positive where the face looks away from it. For a
    closed shell they add up to its volume wherever the apex is; one near the part keeps the
    sum accurate for parts modelled far from the origin."""
    u = triangles - apex
    return np.einsum("ij,ij->i", u[:, 0], np.cross(u[:, 1], u[:, 2])) / 6


def _mass(triangles: np.ndarray) -> tuple[float, tuple[float, float, float]]:
    """Volume and centre of mass of a closed mesh, from the same tetrahedra."""
    apex = triangles.reshape(-1, 3).mean(axis=0)
    volumes = _signed_volumes(triangles, apex)
    volume = float(volumes.sum())
    if volume <= 0:
        return volume, (0.0, 0.0, 0.0)
    # A tetrahedron's centre of mass is the mean of its four corners.
    centroids = (triangles.sum(axis=1) + apex) / 4
    centre = (volumes[:, None] * centroids).sum(axis=0) / volume
    return volume, (float(centre[0]), float(centre[1]), float(centre[2]))


def _weld(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Shared vertices from STL's per-triangle corners. STL repeats every corner exactly, so
    only corners that differ but lie within WELD_MM of each other count as repaired."""
    corners = triangles.reshape(-1, 3)
    exact, _ = trimesh.grouping.unique_rows(corners)
    grid = np.round(corners / WELD_MM).astype(np.int64)
    unique, inverse = trimesh.grouping.unique_rows(grid)
    return corners[unique], inverse.reshape(-1, 3).astype(np.int64), len(exact) - len(unique)


def _vertex_count_check(count: int, max_vertices: int) -> Check:
    if count > max_vertices:
        raise Refused(
            Check(
                "vertices", FAIL, str(count), f"≤ {max_vertices}",
                f"the mesh has {count} vertices; up to {max_vertices} are accepted: export it "
                "with a coarser tessellation",
            )
        )  # fmt: skip
    return Check("vertices", PASS, str(count), f"≤ {max_vertices}", f"{count} vertices")


def _without_degenerate(faces: np.ndarray) -> tuple[np.ndarray, int]:
    """Faces whose corners merged into one point or one edge; removing them leaves no gap."""
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    return faces[ok], int((~ok).sum())


def _without_duplicates(faces: np.ndarray) -> tuple[np.ndarray, int]:
    """The first of faces on the same three vertices, in either winding."""
    first, _ = trimesh.grouping.unique_rows(np.sort(faces, axis=1))
    first = np.sort(first)
    return faces[first], len(faces) - len(first)


def _repair_check(name: str, removed: int, what: str) -> Check:
    if removed == 0:
        return Check(name, PASS, "0", "0", f"no {what}")
    return Check(name, WARN, f"{removed} removed", "0", f"removed {removed} {what}")


def _edge_uses(mesh: trimesh.Trimesh) -> np.ndarray:
    """How many faces use each undirected edge, per entry of mesh.edges_sorted."""
    edges = mesh.edges_sorted
    keys = edges[:, 0] * len(mesh.vertices) + edges[:, 1]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse]


def _fix_winding(mesh: trimesh.Trimesh) -> Check:
    if mesh.is_winding_consistent:
        return Check("winding", PASS, "consistent", "consistent", "faces are wound consistently")
    before = mesh.faces.copy()
    trimesh.repair.fix_winding(mesh)
    if not mesh.is_winding_consistent:
        return Check(
            "winding", FAIL, "inconsistent", "consistent",
            "faces point in mixed directions and cannot be made to agree (a one-sided "
            "surface such as a Möbius strip): re-export the part as a solid",
        )  # fmt: skip
    flipped = int((mesh.faces != before).any(axis=1).sum())
    return Check(
        "winding", WARN, f"{flipped} faces turned", "consistent",
        f"turned {flipped} faces round to agree with their neighbours",
    )  # fmt: skip


def _close_small_holes(mesh: trimesh.Trimesh, max_perimeter_mm: float) -> Check:
    """Fill holes whose rim is at most max_perimeter_mm long with a fan of triangles."""
    limit = f"closed (holes ≤ {max_perimeter_mm:g} mm filled)"
    faces = mesh.faces
    open_edges = mesh.edges[_edge_uses(mesh) == 1]  # directed, as the faces run
    if len(open_edges) == 0:
        return Check("watertight", PASS, "closed", limit, "the mesh is closed")
    refusal = (
        "the mesh has holes: it is not a closed solid ({}); holes up to "
        f"{max_perimeter_mm:g} mm round are filled automatically"
    )
    if len(open_edges) > _MAX_OPEN_EDGES:
        value = f"{len(open_edges)} open edges"
        return Check("watertight", FAIL, value, limit, refusal.format(value))
    loops = _boundary_loops(open_edges)
    if loops is None:
        value = f"{len(open_edges)} open edges meeting at shared corners"
        return Check("watertight", FAIL, value, limit, refusal.format(value))
    vertices = mesh.vertices
    perimeters = [
        float(np.linalg.norm(vertices[loop] - vertices[np.roll(loop, -1)], axis=1).sum())
        for loop in loops
    ]
    big = [p for p in perimeters if p > max_perimeter_mm]
    if big:
        value = f"{len(loops)} hole(s), the largest {max(big):.1f} mm round"
        return Check("watertight", FAIL, value, limit, refusal.format(value))
    new_vertices, new_faces = [vertices], [faces]
    next_index = len(vertices)
    for loop in loops:
        rim = np.stack([np.roll(loop, -1), loop], axis=1)  # the rim edges reversed
        if len(loop) == 3:
            new_faces.append(np.array([[loop[2], loop[1], loop[0]]]))
            continue
        new_vertices.append(vertices[loop].mean(axis=0, keepdims=True))
        new_faces.append(np.column_stack([rim, np.full(len(loop), next_index)]))
        next_index += 1
    mesh.vertices = np.concatenate(new_vertices)
    mesh.faces = np.concatenate(new_faces)
    if (_edge_uses(mesh) != 2).any():
        value = f"{len(loops)} hole(s)"
        return Check("watertight", FAIL, value, limit, refusal.format(value))
    return Check(
        "watertight", WARN, f"{len(loops)} hole(s) filled", limit,
        f"filled {len(loops)} small hole(s) in the mesh, up to {max(perimeters):.1f} mm round",
    )  # fmt: skip


def _boundary_loops(open_edges: np.ndarray) -> list[np.ndarray] | None:
    """Closed rims from directed open edges; None where two rims share a corner."""
    following: dict[int, int] = {}
    for start, end in open_edges.tolist():
        if start in following:
            return None
        following[start] = end
    loops = []
    while following:
        start, current = next(iter(following.items()))
        loop = [start]
        del following[start]
        while current != start:
            if current not in following:
                return None
            loop.append(current)
            current = following.pop(current)
        loops.append(np.array(loop, dtype=np.int64))
    return loops


def _orient_shells(
    mesh: trimesh.Trimesh, labels: np.ndarray, caster: RayCaster
) -> tuple[Check, int, int]:
    """Turn inside-out shells the right way out; tell them from cavities, whose normals
    rightly point inwards, by whether they lie inside another shell (ray parity)."""
    triangles = mesh.triangles
    apex = triangles.reshape(-1, 3).mean(axis=0)
    shell_volume = np.bincount(labels, weights=_signed_volumes(triangles, apex))
    negative = np.flatnonzero(shell_volume < 0)
    reach = 2 * float(np.linalg.norm(mesh.extents)) + 1
    inverted: list[int] = []
    if len(negative) > _MAX_SHELLS_TESTED:
        # Too many shells to test one by one: only a mesh inside out as a whole is turned.
        if shell_volume.sum() < 0:
            inverted = list(range(len(shell_volume)))
    else:
        for shell in negative:
            own = labels == shell
            corner = triangles[np.argmax(own), 0]
            if caster.crossings(corner, _PARITY_DIRECTION, reach, ignore=own) % 2 == 0:
                inverted.append(int(shell))
    if inverted:
        flip = np.isin(labels, inverted)
        faces = mesh.faces.copy()
        faces[flip] = faces[flip][:, ::-1]
        mesh.faces = faces
    voids = len(negative) - len(set(inverted) & set(negative.tolist()))
    bodies = len(shell_volume) - voids
    if not inverted:
        return Check("normals", PASS, "outward", "outward", "normals point outwards"), bodies, voids
    return (
        Check(
            "normals", WARN, f"{len(inverted)} shell(s) turned", "outward",
            f"turned {len(inverted)} inside-out shell(s) the right way out",
        ),
        bodies,
        voids,
    )  # fmt: skip


def _self_intersection_check(
    mesh: trimesh.Trimesh, labels: np.ndarray, caster: RayCaster, max_triangles: int
) -> Check:
    limit = "no crossing faces"
    if len(mesh.faces) > max_triangles:
        return Check(
            "self_intersections", WARN, "not checked", limit,
            f"self-intersections were not checked: the mesh has more than {max_triangles} "
            "triangles",
        )  # fmt: skip
    try:
        pairs = crossing_pairs(mesh.faces, caster)
    except TooCrowded:
        return Check(
            "self_intersections", WARN, "not checked", limit,
            "self-intersections were not checked: faces are piled up too densely",
        )  # fmt: skip
    if len(pairs) == 0:
        return Check("self_intersections", PASS, "0", limit, "no faces cross each other")
    same_shell = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    if same_shell.any():
        return Check(
            "self_intersections", FAIL, f"{int(same_shell.sum())} crossing face pair(s)", limit,
            "the part's surface folds through itself: the mesh is broken; re-export it from "
            "the CAD program",
        )  # fmt: skip
    overlapping = len(np.unique(labels[pairs]))
    return Check(
        "self_intersections", WARN, f"{len(pairs)} crossing face pair(s)", limit,
        f"{overlapping} bodies overlap: they will be merged into one when sliced",
    )  # fmt: skip


def _bodies_check(bodies: int, voids: int) -> Check:
    cavities = f", {voids} closed internal cavit{'y' if voids == 1 else 'ies'}" if voids else ""
    if bodies == 1:
        return Check("bodies", PASS, f"1{cavities}", "1", f"one solid body{cavities}")
    return Check(
        "bodies",
        WARN,
        f"{bodies}{cavities}",
        "1",
        f"{bodies} separate bodies will be made together",
    )
