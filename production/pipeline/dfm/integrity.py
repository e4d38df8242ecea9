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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .arrays import column_max, column_min, row_sum, stable_order
from .checks import FAIL, PASS, WARN, Budget, Check, Refused
from .edges import Edges, edges_of
from .intersections import crossing_pairs
from .rays import RayCaster, TooCrowded, cross

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
    # The mesh's arrays, computed once: trimesh re-derives (and re-verifies) its own on reads.
    triangles: np.ndarray  # (faces, 3, 3)
    normals: np.ndarray  # (faces, 3) unit face normals, outward
    areas: np.ndarray  # (faces,) mm²
    edges: Edges


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
    vertices, faces = _referenced(vertices, faces)

    edges = edges_of(faces, len(vertices))
    non_manifold = edges.non_manifold
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

    winding, faces, edges = _fix_winding(faces, edges, len(vertices))
    checks.append(winding)
    if winding.status == FAIL:
        return None, checks

    watertight, vertices, faces, edges = _close_small_holes(
        vertices, faces, edges, max_hole_perimeter_mm
    )
    checks.append(watertight)
    if watertight.status == FAIL:
        return None, checks

    budget.check("the inside/outside test")
    shells = edges.shells(len(faces))
    corners = vertices[faces]
    caster = RayCaster(corners)  # its index is built on first use
    apex = corners.reshape(-1, 3).mean(axis=0)
    volumes = _signed_volumes(corners, apex)
    normals, faces, bodies, voids = _orient_shells(faces, shells, caster, volumes)
    checks.append(normals)
    if normals.status != PASS:  # turned shells: their corners and edges run the other way
        corners = vertices[faces]
        caster = RayCaster(corners)
        edges = edges_of(faces, len(vertices))
        volumes = _signed_volumes(corners, apex)
    volume, centre = _mass(corners, apex, volumes)
    if volume <= 0:
        checks.append(
            Check(
                "volume", FAIL, f"{_mm3(volume)} mm³", "> 0 mm³",
                "the part has no volume: its surfaces enclose nothing",
            )
        )  # fmt: skip
        return None, checks
    shown = _mm3(volume)
    checks.append(Check("volume", PASS, f"{shown} mm³", "> 0 mm³", f"volume {shown} mm³"))

    budget.check("the self-intersection test")
    crossing = _self_intersection_check(faces, shells, caster, self_intersection_max_triangles)
    checks.append(crossing)
    checks.append(_bodies_check(bodies, voids))
    if crossing.status == FAIL:
        return None, checks
    normal = cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normal, axis=1)
    unit = np.divide(normal, length[:, None], out=np.zeros_like(normal), where=length[:, None] > 0)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    solid = Solid(
        mesh=mesh,
        caster=caster,
        bodies=bodies,
        voids=voids,
        volume_mm3=volume,
        centre_mm=centre,
        triangles=corners,
        normals=unit,
        areas=length / 2,
        edges=edges,
    )
    return solid, checks


def _signed_volumes(triangles: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """Each face's tetrahedron with `apex`: positive where the face looks away from it. For a
    closed shell they add up to its volume wherever the apex is; one near the part keeps the
    sum accurate for parts modelled far from the origin."""
    u = triangles - apex
    volumes: np.ndarray = np.einsum("ij,ij->i", u[:, 0], cross(u[:, 1], u[:, 2])) / 6
    return volumes


def _mass(
    triangles: np.ndarray, apex: np.ndarray, volumes: np.ndarray
) -> tuple[float, tuple[float, float, float]]:
    """Volume and centre of mass of a closed mesh, from its _signed_volumes with `apex`."""
    volume = float(volumes.sum())
    if volume <= 0:
        return volume, (0.0, 0.0, 0.0)
    # A tetrahedron's centre of mass is the mean of its four corners.
    centroids = (row_sum(triangles) + apex) / 4
    centre = (volumes[:, None] * centroids).sum(axis=0) / volume
    return volume, (float(centre[0]), float(centre[1]), float(centre[2]))


def _weld(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Shared vertices from STL's per-triangle corners. STL repeats every corner exactly, so
    only corners that differ but lie within WELD_MM of each other count as repaired."""
    corners = triangles.reshape(-1, 3)
    grid = np.round(corners / WELD_MM).astype(np.int64)
    first, inverse = unique_rows(grid)
    # "Exactly" as trimesh.grouping.unique_rows has it: equal to 8 decimals.
    # Column by column (numpy gathers 1-D arrays several times faster than rows).
    kept = first[inverse]  # each corner's welded vertex, as the corner it was taken from
    welded = 0
    for column in range(3):
        exact = np.round(corners[:, column] * 1e8).astype(np.int64)
        if (exact != exact[kept]).any():  # some corners moved: count the distinct ones
            welded = len(unique_rows(np.round(corners * 1e8).astype(np.int64))[0]) - len(first)
            break
    return corners[first], inverse.reshape(-1, 3), welded


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first occurrence of each distinct row of an (n, 3) integer array, in order, and
    each row's index into those.

    One sort of one 64-bit key per row: several times faster than sorting the rows
    (numpy's unique(axis=0), trimesh's unique_rows). The key packs the row exactly when its
    values' ranges allow, else it is a hash checked against the rows themselves.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low = column_min(rows)
    sizes = [int(top) - int(bottom) + 1 for top, bottom in zip(column_max(rows), low, strict=True)]
    exact = sizes[0] * sizes[1] * sizes[2] < 2**63
    if exact:  # the columns from their lowest values, packed (no (n, 3) temporaries)
        x, y, z = (rows[:, axis] - low[axis] for axis in range(3))
        keys = (x * sizes[1] + y) * sizes[2] + z
    else:
        rows = rows - low
        keys = _hash(rows)
    # Any order of equal keys gives the same answer (each group's lowest index, its rank).
    order = stable_order(keys) if exact else np.argsort(keys)
    ordered = keys[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    if not exact and ((~new[1:]) & (rows[order[1:]] != rows[order[:-1]]).any(axis=1)).any():
        # Two different rows share a hash (never seen in practice): sort the rows instead.
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return first[order], rank[inverse.ravel()]
    starts = np.flatnonzero(new)
    first = np.minimum.reduceat(order, starts)
    by_first = stable_order(first)
    rank = np.empty_like(by_first)
    rank[by_first] = np.arange(len(by_first))
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[order] = np.repeat(rank, np.diff(np.r_[starts, len(rows)]))
    return first[by_first], inverse


def _hash(rows: np.ndarray) -> np.ndarray:
    """splitmix64 over a row's three values."""
    key = np.zeros(len(rows), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(3):
            key ^= rows[:, column].astype(np.uint64)
            key += np.uint64(0x9E3779B97F4A7C15)
            key = (key ^ (key >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            key ^= key >> np.uint64(31)
    return key


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
    first, _ = unique_rows(np.sort(faces, axis=1))
    first = np.sort(first)
    return faces[first], len(faces) - len(first)


def _referenced(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Only the vertices some face uses (removed faces may leave some behind), renumbered."""
    used = np.zeros(len(vertices), dtype=bool)
    used[faces] = True
    if used.all():
        return vertices, faces
    number = np.cumsum(used) - 1
    return vertices[used], number[faces]


def _repair_check(name: str, removed: int, what: str) -> Check:
    if removed == 0:
        return Check(name, PASS, "0", "0", f"no {what}")
    return Check(name, WARN, f"{removed} removed", "0", f"removed {removed} {what}")


def _fix_winding(
    faces: np.ndarray, edges: Edges, vertex_count: int
) -> tuple[Check, np.ndarray, Edges]:
    """Turn faces to agree with their neighbours: in each shell the fewer faces are turned."""
    if edges.consistent:
        passed = Check("winding", PASS, "consistent", "consistent", "faces are wound consistently")
        return passed, faces, edges
    turn = _faces_to_turn(edges, len(faces))
    if turn is None:
        return (
            Check(
                "winding", FAIL, "inconsistent", "consistent",
                "faces point in mixed directions and cannot be made to agree (a one-sided "
                "surface such as a Möbius strip): re-export the part as a solid",
            ),
            faces,
            edges,
        )  # fmt: skip
    faces = faces.copy()
    faces[turn] = faces[turn][:, ::-1]
    flipped = int(turn.sum())
    turned = Check(
        "winding", WARN, f"{flipped} faces turned", "consistent",
        f"turned {flipped} faces round to agree with their neighbours",
    )  # fmt: skip
    return turned, faces, edges_of(faces, vertex_count)


def _faces_to_turn(edges: Edges, face_count: int) -> np.ndarray | None:
    """Which faces to turn so that every shared edge runs one way in one face and back in the
    other; None when no choice does (a one-sided surface). In each shell the smaller side
    is the one turned.

    Neighbours whose shared edge runs the same way in both must end up one turned and one
    not; the others alike. Over a graph with two nodes per face (as is, turned) joining the
    states that agree, a face is turned when its "as is" node cannot reach its shell's
    first face as is, and no choice exists when its two nodes reach each other: one graph
    walk for the whole mesh, however many shells it has.
    """
    first, second = edges.adjacency[:, 0], edges.adjacency[:, 1]
    rows = edges.adjacency_rows
    same_way = (edges.directed[rows[:, 0], 0] == edges.directed[rows[:, 1], 0]).astype(np.int64)
    states = coo_matrix(
        (
            np.ones(2 * len(first), dtype=np.int8),
            (
                np.concatenate([first, first + face_count]),
                np.concatenate(
                    [second + face_count * same_way, second + face_count * (1 - same_way)]
                ),
            ),
        ),
        shape=(2 * face_count,) * 2,
    )
    _, reach = connected_components(states, directed=False)
    if (reach[:face_count] == reach[face_count:]).any():
        return None
    shells = edges.shells(face_count)
    root = np.full(shells.max() + 1, face_count)
    np.minimum.at(root, shells, np.arange(face_count))
    turn = reach[:face_count] != reach[root[shells]]
    size = np.bincount(shells)
    turned = np.bincount(shells, weights=turn)
    flipped: np.ndarray = turn ^ (2 * turned > size)[shells]
    return flipped


def _close_small_holes(
    vertices: np.ndarray, faces: np.ndarray, edges: Edges, max_perimeter_mm: float
) -> tuple[Check, np.ndarray, np.ndarray, Edges]:
    """Fill holes whose rim is at most max_perimeter_mm long with a fan of triangles."""
    limit = f"closed (holes ≤ {max_perimeter_mm:g} mm filled)"
    open_edges = edges.directed[edges.uses == 1]  # directed, as the faces run
    unchanged = (vertices, faces, edges)
    if len(open_edges) == 0:
        return Check("watertight", PASS, "closed", limit, "the mesh is closed"), *unchanged
    refusal = (
        "the mesh has holes: it is not a closed solid ({}); holes up to "
        f"{max_perimeter_mm:g} mm round are filled automatically"
    )
    if len(open_edges) > _MAX_OPEN_EDGES:
        value = f"{len(open_edges)} open edges"
        return Check("watertight", FAIL, value, limit, refusal.format(value)), *unchanged
    loops = _boundary_loops(open_edges)
    if loops is None:
        value = f"{len(open_edges)} open edges meeting at shared corners"
        return Check("watertight", FAIL, value, limit, refusal.format(value)), *unchanged
    perimeters = [
        float(np.linalg.norm(vertices[loop] - vertices[np.roll(loop, -1)], axis=1).sum())
        for loop in loops
    ]
    big = [p for p in perimeters if p > max_perimeter_mm]
    if big:
        value = f"{len(loops)} hole(s), the largest {max(big):.1f} mm round"
        return Check("watertight", FAIL, value, limit, refusal.format(value)), *unchanged
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
    vertices = np.concatenate(new_vertices)
    faces = np.concatenate(new_faces)
    edges = edges_of(faces, len(vertices))
    if (edges.uses != 2).any():
        value = f"{len(loops)} hole(s)"
        return Check("watertight", FAIL, value, limit, refusal.format(value)), *unchanged
    filled = Check(
        "watertight", WARN, f"{len(loops)} hole(s) filled", limit,
        f"filled {len(loops)} small hole(s) in the mesh, up to {max(perimeters):.1f} mm round",
    )  # fmt: skip
    return filled, vertices, faces, edges


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
    faces: np.ndarray, shells: np.ndarray, caster: RayCaster, volumes: np.ndarray
) -> tuple[Check, np.ndarray, int, int]:
    """Turn inside-out shells the right way out; tell them from cavities, whose normals
    rightly point inwards, by whether they lie inside another shell (ray parity).
    `volumes` are the faces' _signed_volumes."""
    triangles = caster.triangles
    shell_volume = np.bincount(shells, weights=volumes)
    negative = np.flatnonzero(shell_volume < 0)
    reach = 2 * float(np.linalg.norm(caster.size)) + 1
    inverted: list[int] = []
    if len(negative) > _MAX_SHELLS_TESTED:
        # Too many shells to test one by one: only a mesh inside out as a whole is turned.
        if shell_volume.sum() < 0:
            inverted = list(range(len(shell_volume)))
    else:
        for shell in negative:
            own = shells == shell
            corner = triangles[np.argmax(own), 0]
            if caster.crossings(corner, _PARITY_DIRECTION, reach, ignore=own) % 2 == 0:
                inverted.append(int(shell))
    if inverted:
        flip = np.isin(shells, inverted)
        faces = faces.copy()
        faces[flip] = faces[flip][:, ::-1]
    voids = len(negative) - len(set(inverted) & set(negative.tolist()))
    bodies = len(shell_volume) - voids
    if not inverted:
        outward = Check("normals", PASS, "outward", "outward", "normals point outwards")
        return outward, faces, bodies, voids
    return (
        Check(
            "normals", WARN, f"{len(inverted)} shell(s) turned", "outward",
            f"turned {len(inverted)} inside-out shell(s) the right way out",
        ),
        faces,
        bodies,
        voids,
    )  # fmt: skip


def _self_intersection_check(
    faces: np.ndarray, labels: np.ndarray, caster: RayCaster, max_triangles: int
) -> Check:
    limit = "no crossing faces"
    if len(faces) > max_triangles:
        return Check(
            "self_intersections", WARN, "not checked", limit,
            f"self-intersections were not checked: the mesh has more than {max_triangles} "
            "triangles",
        )  # fmt: skip
    try:
        pairs = crossing_pairs(faces, caster)
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


def _mm3(volume: float) -> str:
    """A volume for people: one decimal, but never "0.0" for a volume that is not zero (a mesh
    drawn in metres is thousandths of a mm³)."""
    return f"{volume:.1f}" if abs(volume) >= 1 or volume == 0 else f"{volume:.2g}"
