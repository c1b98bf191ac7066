"""A latent grid's interpolation weights, dense or by corners, and the two products they take.

A point's bilinear (trilinear) weights are non-zero on its 2^d neighbouring cells only. Dense
[..., N, G^d] weights make every product with them cost N x G^d: plain MatMuls (what the ONNX
graph keeps), cheap for a 4 x 4 image grid, but with a 6^3 grid 216 columns of which 8 are
non-zero, and the grid products were half of a mesh training step (torch.profiler, the mesh
default, one thread). `Corners` keeps the 2^d (index, weight) pairs of each point and applies
the same matrix by a gather and a scatter: N x 2^d, whatever G.

`mix(w, table)` is w @ table ([..., G^d, X] -> [..., N, X]); `spread(w, g)` is w^T @ g
([..., N, X] -> [..., G^d, X]); w is a dense tensor, `Corners`, or None (no grid: one cell
that every point reads with weight 1). Both products are differentiable to any order in table /
g; dense weights also in the coordinates, corner weights are constants (`Siren.interp_weights`
gives coordinates that need a gradient dense weights).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor
from torch.nn import functional as F


class Corners:
    """Weights w [..., N, G^d] stored as each point's 2^d cells: index (long) and weight
    [..., N, 2^d], of a grid with `cells` = G^d cells in row-major order. The weights are
    constants here (no gradient flows to them: coordinates that need one get dense weights,
    `Siren.interp_weights`); the products are differentiable in table / g to any order."""

    def __init__(self, index: Tensor, weight: Tensor, cells: int) -> None:
        self.index, self.weight, self.cells = index, weight.detach(), cells
        self._plans: dict[int, tuple[Tensor, ...]] = {}

    @classmethod
    def at(cls, pos: Tensor, g: int) -> Corners:
        """The multilinear weights at pos [..., N, d] in grid units (clamped to [0, G-1], G >= 2):
        the same numbers as the tent functions relu(1 - |pos - i|) multiplied over the axes."""
        low = pos.detach().floor().clamp(0, g - 2)  # the lower corner; G-1 sits in the last cell
        frac = pos.detach() - low  # [..., N, d], in [0, 1]
        low, d = low.long(), pos.shape[-1]
        index, weight = [], []
        for bits in itertools.product((0, 1), repeat=d):  # axis 0 slowest, as dense
            i, w = 0, 1
            for axis, bit in enumerate(bits):
                i = i * g + low[..., axis] + bit
                w = w * (frac[..., axis] if bit else 1 - frac[..., axis])
            index.append(i)
            weight.append(w)
        return cls(torch.stack(index, -1), torch.stack(weight, -1), g**d)

    def dense(self) -> Tensor:
        """The same weights as a dense [..., N, G^d] tensor."""
        zeros = self.weight.new_zeros(*self.index.shape[:-1], self.cells)
        return zeros.scatter_add(-1, self.index, self.weight)

    def squared(self) -> Corners:
        """Elementwise w^2 (each point's corners are distinct cells)."""
        return Corners(self.index, self.weight.pow(2), self.cells)

    def plan(self, lead: torch.Size) -> tuple[Tensor, ...]:
        """For tables stacked [prod(lead) * G^d, X] and points [prod(lead) * N, X]: each point's
        rows and weights [L*N, 2^d] (mix), and the points sorted by row with each row's start
        and their weights (spread): the two as embedding_bag's bags, built once per batch."""
        n, k = self.index.shape[-2:]
        count = lead.numel()
        if count not in self._plans:
            rows = self.index.expand(*lead, n, k).reshape(-1, n, k)
            rows = (rows + torch.arange(count, device=rows.device)[:, None, None] * self.cells).reshape(-1, k)
            weight = self.weight.expand(*lead, n, k).reshape(-1, k)
            flat = rows.flatten()
            order = torch.argsort(flat, stable=True)
            sizes = flat.new_zeros(count * self.cells).index_add_(0, flat, torch.ones_like(flat))
            self._plans[count] = (rows, weight, order // k, sizes.cumsum(0) - sizes,
                                  weight.flatten()[order])
        return self._plans[count]

    def mix(self, table: Tensor) -> Tensor:
        """w @ table: table [..., G^d, X] -> [..., N, X]."""
        n, x = self.index.shape[-2], table.shape[-1]
        lead = torch.broadcast_shapes(self.index.shape[:-2], table.shape[:-2])
        flat = table.expand(*lead, self.cells, x).reshape(-1, x)
        return _Mix.apply(flat, self.plan(lead)).view(*lead, n, x)

    def spread(self, g: Tensor) -> Tensor:
        """w^T @ g: g [..., N, X] -> [..., G^d, X]."""
        n, x = g.shape[-2:]
        lead = torch.broadcast_shapes(self.index.shape[:-2], g.shape[:-2])
        flat = g.expand(*lead, n, x).reshape(-1, x)
        return _Spread.apply(flat, self.plan(lead)).view(*lead, self.cells, x)


def _bags(rows: Tensor, table: Tensor, offsets: Tensor | None, weight: Tensor) -> Tensor:
    """sum over each bag of weight x table[row]: embedding_bag, one fused gather and sum."""
    return F.embedding_bag(rows, table, offsets, mode="sum", per_sample_weights=weight.to(table.dtype))


class _Mix(torch.autograd.Function):
    """table rows [L*G^d, X] -> points [L*N, X]; its adjoint is _Spread and the reverse, so
    each one's backward is the other's forward (embedding_bag's own backward is ~40x slower)."""

    @staticmethod
    def forward(ctx, table: Tensor, plan: tuple[Tensor, ...]) -> Tensor:
        ctx.plan = plan
        return _bags(plan[0], table, None, plan[1])

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _Spread.apply(grad, ctx.plan), None


class _Spread(torch.autograd.Function):
    """points [L*N, X] -> table rows [L*G^d, X]: w^T g."""

    @staticmethod
    def forward(ctx, g: Tensor, plan: tuple[Tensor, ...]) -> Tensor:
        ctx.plan = plan
        return _bags(plan[2], g, plan[3], plan[4])

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _Mix.apply(grad, ctx.plan), None


Weights = Tensor | Corners | None


def mix(weights: Weights, table: Tensor) -> Tensor:
    """weights @ table: [..., G^d, X] -> [..., N, X] (None: table, one cell for every point)."""
    if weights is None:
        return table
    return weights.mix(table) if isinstance(weights, Corners) else weights @ table


def spread(weights: Weights, g: Tensor) -> Tensor:
    """weights^T @ g: [..., N, X] -> [..., G^d, X] (None: the sum over points, [..., 1, X])."""
    if weights is None:
        return g.sum(-2, keepdim=True)
    return weights.spread(g) if isinstance(weights, Corners) else weights.transpose(-1, -2) @ g


def squared(weights: Weights) -> Weights:
    """Elementwise weights^2 (None: one cell of weight 1)."""
    if isinstance(weights, Corners):
        return weights.squared()
    return None if weights is None else weights.pow(2)


def dense(weights: Weights) -> Tensor | None:
    """The dense [..., N, G^d] form (None stays None)."""
    return weights.dense() if isinstance(weights, Corners) else weights
