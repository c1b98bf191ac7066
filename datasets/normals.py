"""Normals of an unoriented point cloud, so that it can be fitted as an oriented one.

Hoppe et al. 1992 ("Surface reconstruction from unorganized points"), the construction most
point-cloud libraries ship:
1. each point's normal direction is the least-variance axis (PCA) of it and its k nearest
   neighbours;
2. signs are made consistent along a minimum spanning tree of the neighbour graph weighted by
   1 - |n_i . n_j|, so a sign travels first between neighbours whose planes agree;
3. each connected part of the graph is turned to face out: for outward normals of a closed
   surface the area-weighted sum of n . (p - c) is 3 x its volume (divergence theorem), positive
   for any point c, so a part whose sum is negative is flipped whole.
Measured on 5,000-point samples of the 13 shared meshes with k = 12: 92-100 % of the signs right
on 12, 74 % on a scorpion whose thin legs put both sides of a leg among a point's neighbours
(docs/shapes.md); a flipped patch weakens the winding number there, it does not break it.
"""

from __future__ import annotations

import numpy as np

NORMAL_NEIGHBOURS = 12  # the PCA neighbourhood of step 1 (k)


def estimate_normals(points: np.ndarray, k: int = NORMAL_NEIGHBOURS) -> np.ndarray:
    """points [N, 3] (N > k, not all on one line) -> unit normals [N, 3], oriented outward."""
    import igl
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    tree, children, centres, widths = igl.octree(points)
    near = igl.knn(points, points, k + 1, tree, children, centres, widths)  # [N, k + 1], itself first
    hood = points[near]  # [N, k + 1, 3]
    local = hood - hood.mean(axis=1, keepdims=True)
    _, axes = np.linalg.eigh(np.einsum("nki,nkj->nij", local, local))  # ascending variance
    normals = axes[:, :, 0].copy()  # step 1
    mst = spanning_tree(normals, near)
    _, part = connected_components(mst, directed=False)
    for p in np.unique(part):
        idx = np.flatnonzero(part == p)
        order, parent = breadth_first_order(mst, int(idx[0]), directed=False)
        for v in order[1:]:  # step 2: parents come first in breadth-first order
            if normals[v] @ normals[parent[v]] < 0:
                normals[v] = -normals[v]
        flux = np.einsum("ij,ij->", normals[idx], points[idx] - points[idx].mean(axis=0))
        if flux < 0:  # step 3
            normals[idx] = -normals[idx]
    return normals


def spanning_tree(normals: np.ndarray, near: np.ndarray):
    """The minimum spanning tree (symmetric CSR) of the neighbour graph near [N, k + 1],
    weights 1 - |n_i . n_j|."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    n, k1 = near.shape
    i, j = np.repeat(np.arange(n), k1 - 1), near[:, 1:].ravel()
    w = 1.0 - np.abs(np.einsum("ij,ij->i", normals[i], normals[j])) + 1e-9  # 0 would mean no edge
    graph = coo_matrix((w, (i, j)), shape=(n, n)).tocsr()
    mst = minimum_spanning_tree(graph.maximum(graph.T))
    return (mst + mst.T).tocsr()
