"""SIREN decoder F(coords, z) with the latent as a per-signal bias of the first layer.

Concatenating z to every coordinate, [c, z] @ W^T, is the same as c @ Wc^T + z @ Wz^T: the
latent only shifts the first layer's phases. Splitting W lets a batch that shares one
coordinate grid compute c @ Wc^T once, and lets each column block get the initialisation of
its own role (see `Siren.reset_parameters`).

Speed: the frequencies are folded into the weights (sin(w0 (h W^T + b)) = sin(h (w0 W)^T + w0 b)),
so scaling touches [H, H] weights instead of every [B, N, H] activation, forward and backward;
a batch at the reference size spends as long on elementwise passes as on matmuls otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F


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
        return self.sines(self.w0 * pre1)

    def forward(self, coords: Tensor, z: Tensor) -> Tensor:
        # w0 (c Wc^T + b + z Wz^T) with w0 folded into the small operands: no [B, N, H] scaling.
        w0 = self.w0
        phase = F.linear(coords, w0 * self.coord.weight, w0 * self.coord.bias)
        return self.sines(phase + F.linear(z, w0 * self.latent.weight).unsqueeze(-2))

    def sines(self, phase1: Tensor) -> Tensor:
        """First phase w0 * pre1 [..., H] -> values [..., C]."""
        h = torch.sin(phase1)
        for weight, bias in self.hidden_folded():
            h = torch.sin(F.linear(h, weight, bias))
        return self.out(h)

    def hidden_folded(self) -> list[tuple[Tensor, Tensor]]:
        """(w0' W_k, w0' b_k) of the later sine layers: their phases in one addmm each."""
        s = self.w0_hidden
        return [(s * layer.weight, s * layer.bias) for layer in self.hidden]

    def trunk_vjp(self, pre1: Tensor, cotangent: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """Values and d<g, F>/d pre1 with g = cotangent(values), written out (the cos chain).

        Plain tensor ops only, so it is differentiable by ordinary autograd (no create_graph)
        and exportable to ONNX, which cannot trace autograd.grad.
        pre1 [..., H] -> (values [..., C], grad [..., H]).
        """
        folded = self.hidden_folded()
        phases = [self.w0 * pre1]  # phase_k = w0_k * pre_k
        for weight, bias in folded:
            phases.append(F.linear(torch.sin(phases[-1]), weight, bias))
        values = self.out(torch.sin(phases[-1]))
        g = cotangent(values) @ self.out.weight  # dL/dh_L  [..., H]
        for (weight, _), phase in zip(reversed(folded), reversed(phases[1:])):
            g = (g * torch.cos(phase)) @ weight  # dL/dh_{k-1}; w0' is inside weight
        return values, (g * torch.cos(phases[0])) * self.w0

    def flops_per_point(self) -> int:
        """Multiply-adds x 2 of one forward evaluation at one coordinate (latent shift excluded)."""
        mats = [self.coord, *self.hidden, self.out]
        return sum(2 * m.in_features * m.out_features for m in mats)
