"""The gradient-origin encoder as plain tensor ops, for exporters that cannot trace autograd.grad.

Two graphs, both returning the latent to decode (the posterior mean of a variational run: its
step on the ELBO through the heads, `inr_gon.models.origin.variational_step`, or with
Gauss-Newton the step itself, `inr_gon.models.laplace`):
- `EncoderGraph`, the general one: coords [B, N, d] and values [B, N, C] -> z [B, D]. It is
  `GON.encode` itself: origin.py writes the inner backward out (`Siren.sines_vjp`, the cos chain),
  so any coordinates work and `inner_steps` > 1 repeats the step. Gradient and learned steps
  only: a Gauss-Newton step solves a linear system, which ONNX has no operator for.
- `GridEncoder`, for the run's own grid: from z0 = 0 the latent is affine in the values,
  z = values.flatten(1) @ A + b, one MatMul + Add with A [N*C, D] and b [D] precomputed
  (`inr_gon.models.origin.origin_affine`: the gradient, learned and Gauss-Newton steps alike).
"""

from __future__ import annotations

import copy

import onnx
import torch
from torch import Tensor, nn

from inr_gon.export.onnx import trace
from inr_gon.models.gon import GON, inner_kl_weight
from inr_gon.models.origin import heads_grad, origin_affine


class EncoderGraph(nn.Module):
    """coords [B or 1, N, d], values [B, N, C] -> latent [B, D]; `GON.encode`, per-signal form."""

    def __init__(self, model: GON) -> None:
        super().__init__()
        if model.origin.needs_hessian:
            raise ValueError("a Gauss-Newton step needs a linear solve, which ONNX lacks")
        self.model = model

    def forward(self, coords: Tensor, values: Tensor) -> Tensor:
        return self.model.encode(coords, values)  # coords [B or 1, N, d]: the explicit form


@torch.no_grad()
def grid_affine(model: GON, coords: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """(A [N*C, D], b [D]) in float64 with z = values.flatten(1) @ A + b for values [B, N, C]
    sampled at coords [N, d]; one origin step (inner_steps == 1), to_mu folded in.
    Float64 so the precomputed map carries no more rounding than one float32 product."""
    if model.cfg.net.inner_steps != 1:
        raise ValueError("the latent is affine in the values only for one inner step")
    model = copy.deepcopy(model).double()
    dec, pts = model.decoder, coords.double()
    if not model.cfg.net.variational or model.laplace:  # the Laplace mean is the step itself
        return origin_affine(dec, model.origin, pts, chunk=chunk)
    # A variational run's decoder input at the origin is the mean head's bias, shared by all:
    # x A + bias = -dL_rec/dz_in there. The step through the heads and to_mu are affine too.
    a, bias = origin_affine(dec, model.origin, pts, model.to_mu.bias, chunk)
    mu, logvar = model.to_mu, model.to_logvar
    zero = torch.zeros(1, a.shape[1], dtype=torch.float64)
    const = heads_grad(mu, logvar, mu(zero), logvar(zero), zero, None,
                       inner_kl_weight(model.cfg))[0]  # heads_grad is g W_mu + const
    a, bias = a @ mu.weight, bias @ mu.weight - const  # z = -heads_grad(-(x A + bias))
    return a @ mu.weight.T, bias @ mu.weight.T + mu.bias


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
