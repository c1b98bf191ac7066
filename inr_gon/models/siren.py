"""SIREN decoder F(coords, z) whose latent shifts the phases of its sine layers.

Concatenating z to every coordinate, [c, z] @ W^T, is the same as c @ Wc^T + z @ Wz^T: the
latent shifts the first layer's phases. Two options extend that (issue 12):
- modulation "all": z also shifts every later sine layer through its own map M_k, the shift
  modulations of functa (Dupont et al. 2022): pre_k = h_{k-1} W_k^T + b_k + z M_k^T.
- latent_grid G: z is a G^d grid of latent_dim-vectors, flat [B, G^d * D] in row-major cell
  order, channels last ([B, G, G(, G), D] viewed flat), grid axis i along coordinate i.
  Cell centres sit at -1 + 2 i / (G - 1) (align_corners=True: the first and last cover -1 and
  1, so every coordinate in [-1, 1] interpolates and none extrapolates; outside, it clamps).
  The vector at a coordinate is the bilinear (trilinear in 3D) mix of its 2^d neighbours.
  Interpolation is linear, so the shifts are projected on the grid first ([B, G^d, H]) and then
  interpolated: G^d x D x H per signal instead of N x D x H.

The interpolation weights are tent functions, w_i(p) = relu(1 - |p - i|), multiplied over the
axes: dense [N, G^d] weights, no gather, so the ONNX graph is plain Sub/Abs/Relu/Mul/MatMul. In
torch, grids of more than CORNERS_ABOVE cells per corner are applied by their 2^d corners
instead (`cells.Corners`: the same matrix, N x 2^d work instead of N x G^d).

Speed: the frequencies are folded into the weights (sin(w0 (h W^T + b)) = sin(h (w0 W)^T + w0 b)),
so scaling touches [H, H] weights instead of every [B, N, H] activation, forward and backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inr_gon.config import MODULATIONS
from inr_gon.models.cells import Corners, Weights, dense, mix, spread

# Dense weights up to G^d = 4 x 2^d cells (a 4 x 4 image grid), corners above (3D grids from
# 4^3). Training step by corners against dense, one thread, interleaved, idle VM
# (benchmarks/corners.py, results/corners.json): the mesh default (6^3) 2.00x faster, an 8^3
# grid 6.27x, the image default (4 x 4) 1.00x, so small grids keep the plain MatMul.
CORNERS_ABOVE = 4


def full_precision(t: Tensor) -> torch.autocast:
    """Float32 inside, whatever the `--precision bf16` autocast outside (bfloat16 keeps 8
    significant bits). What stays float32 under it, and why: a SIREN's first phase (w0 c Wc^T
    reaches tens of radians, where 8 bits move a sine by up to 0.1 rad), the Gauss-Newton
    steps' grams, factors and solves (a bf16 gram is factorised with 3-digit entries) and the
    local model's bicubic base (bf16 adds half an 8-bit level). t: any tensor on the device."""
    return torch.autocast(t.device.type, enabled=False)


class Siren(nn.Module):
    """phase_1 = w0 (c Wc^T + b + zeta M_1^T);  phase_k = w0' (h_{k-1} W_k^T + b_k [+ zeta M_k^T]);
    h_k = sin(phase_k);  out = h_L Wo^T + bo;  zeta = z, or the latent grid interpolated at c.
    coords [..., N, d], z [..., D_total] -> values [..., N, C]."""

    def __init__(self, coord_dim: int, latent_dim: int, out_dim: int, hidden: int = 256,
                 layers: int = 4, w0: float = 30.0, w0_hidden: float = 30.0,
                 latent_init: float = 1.0, modulation: str = "first", latent_grid: int = 0) -> None:
        super().__init__()
        if modulation not in MODULATIONS:
            raise ValueError(f"modulation must be one of {MODULATIONS}, got {modulation!r}")
        self.w0, self.w0_hidden, self.latent_init = w0, w0_hidden, latent_init
        self.grid, self.cells = latent_grid, max(latent_grid, 1) ** coord_dim
        self.coord = nn.Linear(coord_dim, hidden)  # Wc, b
        self.latent = nn.Linear(latent_dim, hidden, bias=False)  # M_1 (Wz)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        n_mods = layers - 1 if modulation == "all" else 0
        self.mods = nn.ModuleList(nn.Linear(latent_dim, hidden, bias=False) for _ in range(n_mods))
        self.out = nn.Linear(hidden, out_dim)
        self.reset_parameters()

    @property
    def latent_size(self) -> int:
        """D_total: the length of a flat latent (G^d x D with a grid)."""
        return self.cells * self.latent.in_features

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
        for m in self.mods:  # the same O(1) rad per unit z in the later layers
            b = self.latent_init * math.sqrt(6 / dz) / self.w0_hidden
            m.weight.uniform_(-b, b)
        for layer in [*self.hidden, self.out]:
            b = math.sqrt(6 / layer.in_features) / self.w0_hidden
            layer.weight.uniform_(-b, b)

    # -- the latent's side: interpolation weights, phase shifts and their transpose ----------

    def interp_weights(self, coords: Tensor, as_dense: bool = False) -> Weights:
        """Bilinear/trilinear weights of the grid cells at coords [..., N, d] -> [..., N, G^d]
        (rows sum to 1; `Corners` above CORNERS_ABOVE cells a corner, unless as_dense or the
        coordinates need a gradient), or None without a grid."""
        if not self.grid:
            return None
        g, d = self.grid, coords.shape[-1]
        pos = ((coords + 1) * (0.5 * (g - 1))).clamp(0, g - 1)  # grid units [..., N, d]
        if g > 1 and self.cells > CORNERS_ABOVE * 2**d and not (as_dense or coords.requires_grad):
            return Corners.at(pos, g)
        nodes = torch.arange(g, dtype=coords.dtype, device=coords.device)
        tent = torch.relu(1 - (pos.unsqueeze(-1) - nodes).abs())  # [..., N, d, G]
        w = tent[..., 0, :]
        for axis in range(1, coords.shape[-1]):  # outer product over axes, row-major cells
            w = (w.unsqueeze(-1) * tent[..., axis, None, :]).flatten(-2)
        return w

    def mod_weights(self) -> list[tuple[Tensor, float]]:
        """(M_k, w0_k) of each modulated layer, the first first."""
        return [(self.latent.weight, self.w0)] + [(m.weight, self.w0_hidden) for m in self.mods]

    def shifts(self, weights: Weights, z: Tensor) -> list[Tensor]:
        """Phase shift w0_k zeta M_k^T of each modulated layer: z [B, D_total] ->
        [B, 1, H] each (no grid) or [B, N, H] (weights [B or 1, N, G^d] or [N, G^d])."""
        cells = z.reshape(*z.shape[:-1], self.cells, -1)  # [B, G^d, D]
        out = []
        for m, w0 in self.mod_weights():
            table = F.linear(cells, w0 * m)  # [B, G^d, H]: projected on the grid, then mixed
            out.append(mix(weights, table))
        return out

    def latent_vjp(self, weights: Weights, grads: list[Tensor]) -> Tensor:
        """The transpose of `shifts`: dL/dphase_k [..., N, H] of the modulated layers ->
        dL/dz [..., D_total], summed over points."""
        total = 0
        for (m, w0), g in zip(self.mod_weights(), grads):
            total = total + spread(weights, g) @ (w0 * m)  # [..., G^d, D]
        return total.flatten(-2)

    def latent_factor(self, grads: list[Tensor]) -> Tensor:
        """v = sum_k dL/dphase_k (w0_k M_k): grads [..., N, H] -> [..., N, D]. With per-point
        cotangents, row n of dL/dz is weights[n] (x) v[n] (see `grid_jacobian`)."""
        return sum(g @ (w0 * m) for (m, w0), g in zip(self.mod_weights(), grads))

    # -- the trunk -----------------------------------------------------------------------------

    def base(self, coords: Tensor) -> Tensor:
        """The latent-free part of the first phase, w0 (c Wc^T + b): coords [..., d] -> [..., H]."""
        return F.linear(coords, self.w0 * self.coord.weight, self.w0 * self.coord.bias)

    def forward(self, coords: Tensor, z: Tensor) -> Tensor:
        _, phase1, later = self.phases(coords, z)
        return self.sines(phase1, later)

    def phases(self, coords: Tensor, z: Tensor) -> tuple[Tensor | None, Tensor, list[Tensor]]:
        """(interpolation weights, the first phase [..., N, H], the later layers' shifts), in
        float32 under bf16 autocast (`full_precision`); the later layers' matmuls are not."""
        with full_precision(coords):
            weights = self.interp_weights(coords)
            s = self.shifts(weights, z.to(coords.dtype))
            return weights, self.base(coords) + s[0], s[1:]

    def sines(self, phase1: Tensor, later: Sequence[Tensor] = ()) -> Tensor:
        """First phase [..., H] and the later layers' shifts (modulation all) -> values [..., C]."""
        h = torch.sin(phase1)
        for k, (weight, bias) in enumerate(self.hidden_folded()):
            pre = F.linear(h, weight, bias)
            h = torch.sin(pre + later[k] if later else pre)
        return self.out(h)

    def hidden_folded(self) -> list[tuple[Tensor, Tensor]]:
        """(w0' W_k, w0' b_k) of the later sine layers: their phases in one addmm each."""
        s = self.w0_hidden
        return [(s * layer.weight, s * layer.bias) for layer in self.hidden]

    def sines_vjp(self, phase1: Tensor, later: list[Tensor],
                  cotangent: Callable[[Tensor], Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Values and d<g, F>/dphase_k of each modulated layer, g = cotangent(values), written
        out (the cos chain). Plain tensor ops only, so it is differentiable by ordinary autograd
        (no create_graph) and exportable to ONNX, which cannot trace autograd.grad.
        phase1 [..., N, H] -> (values [..., N, C], [dL/dphase_k [..., N, H]] for modulated k)."""
        folded = self.hidden_folded()
        phases = [phase1]
        for k, (weight, bias) in enumerate(folded):
            pre = F.linear(torch.sin(phases[-1]), weight, bias)
            phases.append(pre + later[k] if later else pre)
        values = self.out(torch.sin(phases[-1]))
        g = cotangent(values) @ self.out.weight  # dL/dh_L  [..., N, H]
        grads = []
        for (weight, _), phase in zip(reversed(folded), reversed(phases[1:])):
            g = g * torch.cos(phase)  # dL/dphase_k
            grads.append(g)
            g = g @ weight  # dL/dh_{k-1}; w0' is inside weight
        grads.append(g * torch.cos(phases[0]))
        grads.reverse()
        return values, grads[:1 + len(self.mods)]

    def flops_per_point(self) -> int:
        """Multiply-adds x 2 of one forward evaluation at one coordinate (latent shift excluded)."""
        mats = [self.coord, *self.hidden, self.out]
        return sum(2 * m.in_features * m.out_features for m in mats)


# -- Jacobians with a latent grid: J[n, c] = weights[n] (x) v[n, c], D_total = G^d x D ----------

def grid_jacobian(weights: Weights, v: Tensor) -> Tensor:
    """The dense J: weights [..., N, G^d] (None: no grid), v [..., N, C, D] -> [..., N, C, D_total]."""
    if weights is None:
        return v
    weights = dense(weights)
    return (weights[..., :, None, :, None] * v[..., None, :]).flatten(-2)


def grid_jacobian_t(weights: Weights, v: Tensor, r: Tensor) -> Tensor:
    """sum over points and channels of J^T r: r [..., N, C] -> [..., D_total]."""
    u = torch.einsum("...nc,...ncd->...nd", r, v)
    return spread(weights, u).flatten(-2)


def grid_gram(weights: Weights, v: Tensor) -> Tensor:
    """J^T J [..., D_total, D_total] from its factors, as one dense product. A point touches only
    2^d cells, but summing the G^d x G^d blocks from those pairs alone (4^d index_adds of
    [N, D, D]) measured no faster on a CPU: 3.90 vs 3.88 s per step with a 4x4 grid of 64,
    14.6 vs 10.4 s with a 4^3 grid of 16 (B 8, 4096 points), so dense it is."""
    j = grid_jacobian(weights, v).flatten(-3, -2)  # [..., N*C, D_total]
    return j.transpose(-1, -2) @ j
