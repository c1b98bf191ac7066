"""SIREN decoder F(coords, z) with the latent as a per-signal bias of the first layer.

Concatenating z to every coordinate, [c, z] @ W^T, is the same as c @ Wc^T + z @ Wz^T: the
latent only shifts the first layer's phases. Splitting W lets a batch that shares one
coordinate grid compute c @ Wc^T once, and lets each column block get the initialisation of
its own role (see `Siren.reset_parameters`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn


class Siren(nn.Module):
    """pre1 = c Wc^T + b + z Wz^T;  h1 = sin(w0 pre1);  h_k = sin(w0' (h_{k-1} W_k^T + b_k));
    out = h_L Wo^T + bo.  coords [..., N, d], z [..., D] -> values [..., N, C]."""

    def __init__(
        self,
        coord_dim: int,
        latent_dim: int,
        out_dim: int,
        hidden: int = 256,
        layers: int = 4,
        w0: float = 30.0,
        w0_hidden: float = 30.0,
        latent_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.w0, self.w0_hidden, self.latent_init = w0, w0_hidden, latent_init
        self.coord = nn.Linear(coord_dim, hidden)  # Wc, b
        self.latent = nn.Linear(latent_dim, hidden, bias=False)  # Wz
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, out_dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        d, dz = self.coord.in_features, self.latent.in_features
        # Coordinates: SIREN's first layer, U(+-1/d) with d = 2 or 3, so w0 * Wc spans
        # frequencies up to ~w0/d. The reference GON used U(+-1/34) over [c, z], which cuts
        # the coordinate frequencies ~17x and makes the start of training blurry.
        self.coord.weight.uniform_(-1 / d, 1 / d)
        # Latent: z is a phase shift, w0 * z Wz^T. Sized like a hidden layer's input
        # (sqrt(6/dz)/w0) so a unit-scale z moves phases by O(1) rad, times latent_init.
        bound = self.latent_init * math.sqrt(6 / dz) / self.w0
        self.latent.weight.uniform_(-bound, bound)
        for layer in [*self.hidden, self.out]:
            b = math.sqrt(6 / layer.in_features) / self.w0_hidden
            layer.weight.uniform_(-b, b)

    def first(self, coords: Tensor) -> Tensor:
        """The latent-free part of the first pre-activation: coords [..., d] -> [..., H]."""
        return self.coord(coords)

    def shift(self, z: Tensor) -> Tensor:
        """The latent's phase shift: z [..., D] -> [..., 1, H], broadcast over points."""
        return self.latent(z).unsqueeze(-2)

    def trunk(self, pre1: Tensor) -> Tensor:
        """First pre-activation [..., H] -> values [..., C]."""
        h = torch.sin(self.w0 * pre1)
        for layer in self.hidden:
            h = torch.sin(self.w0_hidden * layer(h))
        return self.out(h)

    def forward(self, coords: Tensor, z: Tensor) -> Tensor:
        return self.trunk(self.first(coords) + self.shift(z))

    def trunk_vjp(self, pre1: Tensor, cotangent: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """Values and d<g, F>/d pre1 with g = cotangent(values), written out (the cos chain).

        Plain tensor ops only, so it is differentiable by ordinary autograd (no create_graph)
        and exportable to ONNX, which cannot trace autograd.grad.
        pre1 [..., H] -> (values [..., C], grad [..., H]).
        """
        pres, h = [], torch.sin(self.w0 * pre1)
        for layer in self.hidden:
            pres.append(layer(h))
            h = torch.sin(self.w0_hidden * pres[-1])
        values = self.out(h)
        g = cotangent(values) @ self.out.weight  # dL/dh_L  [..., H]
        for layer, p in zip(reversed(self.hidden), reversed(pres)):
            g = (g * (self.w0_hidden * torch.cos(self.w0_hidden * p))) @ layer.weight
        return values, g * (self.w0 * torch.cos(self.w0 * pre1))

    def flops_per_point(self) -> int:
        """Multiply-adds x 2 of one forward evaluation at one coordinate (latent shift excluded)."""
        mats = [self.coord, *self.hidden, self.out]
        return sum(2 * m.in_features * m.out_features for m in mats)
