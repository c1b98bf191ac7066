"""The gradient-origin encoder as plain tensor ops, for exporters that cannot trace autograd.grad.

Two graphs, both returning the latent to decode (the posterior mean of a variational run,
whose step is taken on the ELBO through the heads: see `inr_gon.models.gon.variational_step`):
- `EncoderGraph`, the general one: coords [B, N, d] and values [B, N, C] -> z [B, D]. The
  inner backward of the SIREN is written out by `Siren.trunk_vjp` (the cos chain), so any
  coordinates work, and `inner_steps` > 1 repeats the step.
- `GridEncoder`, for the run's own grid: at z0 = 0 the latent is affine in the values,
  z = values.flatten(1) @ A + b, one MatMul + Add with A [N*C, D] and b [D] precomputed from
  F(c, 0) and J = dF/dz (see `inr_gon.models.gon.latent_shared_grid`).
"""

from __future__ import annotations

import copy

import onnx
import torch
from torch import Tensor, nn

from inr_gon.export.onnx import trace
from inr_gon.models.gon import (
    GON,
    gradient_origin,
    grid_jacobian,
    heads_grad,
    inner_kl_weight,
    variational_step,
)


class EncoderGraph(nn.Module):
    """coords [B or 1, N, d], values [B, N, C] -> latent [B, D]; as `GON.encode`."""

    def __init__(self, model: GON) -> None:
        super().__init__()
        self.decoder, self.steps = model.decoder, model.cfg.net.inner_steps
        self.variational = model.cfg.net.variational
        if self.variational:
            self.to_mu, self.to_logvar = model.to_mu, model.to_logvar
            self.kl_scale = inner_kl_weight(model.cfg)

    def forward(self, coords: Tensor, values: Tensor) -> Tensor:
        # traceable: the mean over points, not (2/N) times a sum, keeps N a dynamic dimension
        # in the exported graph instead of a constant traced from the example input.
        if not self.variational:
            return gradient_origin(self.decoder, coords, values, self.steps, traceable=True)
        z = None  # the origin; eps None: the decoder input is the mean of the heads at z
        for _ in range(self.steps):
            z = variational_step(self.decoder, self.to_mu, self.to_logvar, coords, values, z, None,
                                 self.kl_scale, traceable=True)
        return self.to_mu(z)


@torch.no_grad()
def grid_affine(model: GON, coords: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """(A [N*C, D], b [D]) in float64 with z = values.flatten(1) @ A + b for values [B, N, C]
    sampled at coords [N, d]; one gradient-origin step (inner_steps == 1), to_mu folded in.
    Float64 so the precomputed map carries no more rounding than one float32 product."""
    if model.cfg.net.inner_steps != 1:
        raise ValueError("the latent is affine in the values only for one inner step")
    model = copy.deepcopy(model).double()
    dec, n = model.decoder, coords.shape[0]
    c = dec.out.out_features
    blocks, bias = [], torch.zeros(dec.latent.in_features, dtype=torch.float64)
    # A variational run's decoder input at the origin is the mean head's bias, shared by all.
    z0 = model.to_mu.bias if model.cfg.net.variational else None
    for i in range(0, n, chunk):
        pts = coords[i:i + chunk].double()
        m = pts.shape[0]
        f0, jac = grid_jacobian(dec, pts, z0)  # F(c, z0) [m, C], J [C, m, D]
        jac = (2.0 / n) * jac
        blocks.append(jac.permute(1, 0, 2).reshape(m * c, -1))  # row n*C + k: point n, channel k
        bias -= torch.einsum("nc,cnd->d", f0, jac)  # z = (2/N) J^T (x - F(c, 0))
    a = torch.cat(blocks)  # x A + bias = -dL_rec/dz_in
    if model.cfg.net.variational:  # the step through the heads and to_mu are affine too: fold in
        mu, logvar = model.to_mu, model.to_logvar
        zero = torch.zeros(1, a.shape[1], dtype=torch.float64)
        const = heads_grad(mu, logvar, mu(zero), logvar(zero), zero, None,
                           inner_kl_weight(model.cfg))[0]  # heads_grad is g W_mu + const
        a, bias = a @ mu.weight, bias @ mu.weight - const  # z = -heads_grad(-(x A + bias))
        a, bias = a @ mu.weight.T, bias @ mu.weight.T + mu.bias
    return a, bias


class GridEncoder(nn.Module):
    """values [B, N, C] on the run's own grid -> latent [B, D] = values.flatten(1) @ A + b."""

    def __init__(self, a: Tensor, b: Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a.float())
        self.register_buffer("b", b.float())

    def forward(self, values: Tensor) -> Tensor:
        return values.flatten(1) @ self.a + self.b


def encoder_proto(model: GON) -> onnx.ModelProto:
    """coords [B or 1, N, d], values [B, N, C] -> latent [B, D]; B and N dynamic."""
    d, c = model.cfg.coord_dim, model.cfg.out_dim
    return trace(EncoderGraph(model), (torch.rand(2, 5, d), torch.rand(2, 5, c)), ["coords", "values"],
                 "latent", {"coords": {0: "coords_batch", 1: "points"},
                            "values": {0: "batch", 1: "points"}, "latent": {0: "batch"}})


def grid_encoder_proto(model: GON, coords: Tensor) -> onnx.ModelProto:
    """values [B, N, C] sampled at coords [N, d] -> latent [B, D]; B dynamic."""
    a, b = grid_affine(model, coords)
    return trace(GridEncoder(a, b), (torch.rand(2, coords.shape[0], model.cfg.out_dim),), ["values"],
                 "latent", {"values": {0: "batch"}, "latent": {0: "batch"}})
