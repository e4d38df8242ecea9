"""The mesh's edges and which faces they join, from one sort: every check reads these.

trimesh derives the same facts (edges_sorted, face_adjacency, is_winding_consistent, ...)
with a separate sort each, and drops them whenever the faces change; on a million triangles
that is several seconds of sorting 3M edges again and again. Here they are computed once
per set of faces and handed to whatever needs them.
"""

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .arrays import stable_order


@dataclass(frozen=True)
class Edges:
    directed: np.ndarray  # (3 faces, 2) each face's edges as its corners run: face i, rows 3i..3i+2
    uses: np.ndarray  # (3 faces,) how many faces use each of those edges, in either direction
    adjacency: np.ndarray  # (pairs, 2) faces sharing an edge used by exactly two faces
    adjacency_edges: np.ndarray  # (pairs, 2) that edge's vertices
    adjacency_far: np.ndarray  # (pairs, 2) each face's vertex off the shared edge
    adjacency_rows: np.ndarray  # (pairs, 2) the shared edge's row in `directed`, per face
    counts: np.ndarray  # (distinct edges,) faces using each edge
    consistent: bool  # every shared edge runs one way in one face and back in the other

    @property
    def non_manifold(self) -> int:
        """Distinct edges used by more than two faces."""
        return int((self.counts > 2).sum())

    def shells(self, face_count: int) -> np.ndarray:
        """Each face's connected shell (faces joined across shared edges), numbered from 0."""
        pairs = self.adjacency
        graph = coo_matrix(
            (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
            shape=(face_count, face_count),
        )
        shells: np.ndarray = connected_components(graph, directed=False)[1]
        return shells


def edges_of(faces: np.ndarray, vertex_count: int) -> Edges:
    """The edges of `faces` (indices into `vertex_count` vertices)."""
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2).astype(np.int64)
    low = np.minimum(directed[:, 0], directed[:, 1])
    keys = low * max(vertex_count, 1) + np.maximum(directed[:, 0], directed[:, 1])
    order = stable_order(keys)
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, len(keys)])
    uses = np.empty(len(keys), dtype=np.int64)
    uses[order] = np.repeat(counts, counts)
    shared = starts[counts == 2]
    first, second = order[shared], order[shared + 1]
    edge = directed[first]
    # An edge's row is 3 x face + k; the corner off it is the face's corner k + 2.
    far_first = faces[first // 3, (first % 3 + 2) % 3]
    far_second = faces[second // 3, (second % 3 + 2) % 3]
    return Edges(
        directed=directed,
        uses=uses,
        adjacency=np.column_stack([first // 3, second // 3]),
        adjacency_edges=edge,
        adjacency_far=np.column_stack([far_first, far_second]).astype(np.int64),
        adjacency_rows=np.column_stack([first, second]),
        counts=counts,
        consistent=bool((directed[first, 0] == directed[second, 1]).all()),
    )
