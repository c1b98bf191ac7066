"""Local latents for super-resolution: one code per input pixel, found from the origin.

A low-resolution image y (L x L pixels, each the box average of s x s points of the output)
gets a grid of d-vectors z_k, one per input pixel k. An output point q at position x (in input
pixel units; pixel k's centre at k + 1/2) reads the codes of its 4 x 4 neighbourhood through a
smooth window and a small basis of the offsets t_k = centre_k - x:

    pre(q) = b + cell * w_c + sum_f sum_k W_f(q, k) M_f z_k,    F(q) = MLP(pre(q))

W_0 is the cubic B-spline window w(t_k) (it sums to 1); W_f (f >= 1) multiplies it by
t_y, t_x, t_y^2 - 1/3, t_x^2 - 1/3 or t_y t_x, whose window sums are 0. Past a border the
window reads mirror images of the input's pixels, so every point meets a whole window. Equal
codes therefore give a constant pre-activation and a flat output, whatever the weights, and a
flat input gets equal codes (the step's system is then the same at every pixel): no speckle
by construction. Nothing depends on the absolute position
(the decoder is translation-equivariant on the input grid, as a convolutional SR network), and
`cell` (output pixel size in input pixels, 1/s) tells the decoder the scale, as in LIIF (Chen
et al. 2021), whose local codes, relative offsets and cell size this follows; here the codes
come from one damped Gauss-Newton step from z = 0 instead of a convolutional encoder.

The step. At z = 0 every point has the same pre-activation p0, so F(q, 0) = f0 and
dF(q)/dz_k = sum_f W_f(q, k) Jm M_f with Jm = dMLP/dpre at p0 [C, H]. With the box average A
the observed Jacobian is K = sum_f (A W_f) (x) (Jm M_f): [L^2 C, L^2 d]. The damped step
z = -(H + lambda I)^-1 g, H = (2/M) K^T K, g = (2/M) K^T (A f0 - y), is taken in its dual form
z = K^T (K K^T + lambda' I)^-1 (y - A f0) (push-through identity): an (L^2 C)^2 system shared
by the batch, instead of (L^2 d)^2. Everything is plain tensor algebra, differentiable by
ordinary autograd, so training back-propagates through the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inr_gon.models.origin import POINTS, Observation
from inr_gon.models.render import box_downsample

BASIS = 6  # 1, t_y, t_x, t_y^2, t_x^2, t_y t_x
RADIUS = 2  # the cubic B-spline's support: a 4 x 4 neighbourhood of codes


def bspline3(t: Tensor) -> Tensor:
    """The cubic B-spline kernel: C2, support |t| < 2, sums to 1 over integer shifts."""
    a = t.abs()
    return torch.where(a < 1, 2 / 3 - a**2 + a**3 / 2, torch.where(a < 2, (2 - a) ** 3 / 6, 0 * a))


def reflect(k: Tensor, n: int) -> Tensor:
    """Index k of a virtual pixel past a border -> its mirror image in 0..n-1 (..., 1, 0 | 0, 1, ...)."""
    k = k.abs() - (k < 0).long()  # -1 -> 0, -2 -> 1
    return torch.where(k >= n, 2 * n - 1 - k, k).clamp(0, n - 1)


def axis_factors(out_side: int, in_side: int) -> Tensor:
    """D_a[j, m] = sum over the 4 virtual neighbours k of output pixel j that mirror onto input
    pixel m of w(t) psi_a(t), t = centre of k - position of j (input pixel units), w the cubic
    B-spline, psi = (1, t, t^2 - 1/3). A full window always: w sums to 1, w t to 0 and
    w (t^2 - 1/3) to 0 at every position (the B-spline reproduces polynomials up to degree 3),
    so a flat input meets the same weights everywhere, borders included. [3, out, in] float64."""
    x = (torch.arange(out_side, dtype=torch.float64) + 0.5) * in_side / out_side
    first = torch.floor(x - 0.5).long() - 1
    out = torch.zeros(3, out_side, in_side, dtype=torch.float64)
    for o in range(2 * RADIUS):
        k = first + o
        t = k + 0.5 - x
        w = bspline3(t)
        m = reflect(k, in_side)
        for a, psi in enumerate((torch.ones_like(t), t, t**2 - 1 / 3)):
            out[a].index_put_((torch.arange(out_side), m), w * psi, accumulate=True)
    return out


PAIRS = ((0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1))  # (y factor, x factor) of each basis f


def local_weights(out_hw: tuple[int, int], in_hw: tuple[int, int]) -> Tensor:
    """W_f [BASIS, H*W, h*w] (output points and input pixels row-major), float32: the outer
    products of the axis factors, basis 1, t_y, t_x, t_y^2 - 1/3, t_x^2 - 1/3, t_y t_x."""
    fy, fx = axis_factors(out_hw[0], in_hw[0]), axis_factors(out_hw[1], in_hw[1])
    w = [torch.einsum("jm,in->jimn", fy[a], fx[b]).reshape(out_hw[0] * out_hw[1], -1)
         for a, b in PAIRS]
    return torch.stack(w).float()


def box_rows(weights: Tensor, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> Tensor:
    """A W_f: each input pixel's row is the mean of the rows of the output points it covers.
    [BASIS, H*W, K] -> [BASIS, h*w, K]."""
    (hh, ww), (h, w) = out_hw, in_hw
    sy, sx = hh // h, ww // w
    x = weights.reshape(weights.shape[0], h, sy, w, sx, -1)
    return x.mean((2, 4)).flatten(1, 2)


NEIGHBOURS = (2 * RADIUS) ** 2  # input pixels an output point reads (4 x 4)


@dataclass(frozen=True)
class Geometry:
    """What a (output size, input size) pair fixes: each output point's 4 x 4 neighbour
    pixels and their weights, and the box average of the dense weights (for the step)."""

    index: Tensor  # [N, 16] input pixels read by each output point (weight 0 past a border)
    weights: Tensor  # [BASIS, N, 16]
    observed: Tensor | None  # [BASIS, M, K] dense A W_f, M = K; None: output not a multiple
    cell: float  # output pixel size in input pixels

    @staticmethod
    def of(out_hw: tuple[int, int], in_hw: tuple[int, int], device=None) -> Geometry:
        dense = local_weights(out_hw, in_hw)  # [F, N, K]
        # a point reads at most 4 x 4 input pixels (fewer where mirror images coincide)
        support = dense.abs().sum(0)
        index = support.topk(min(NEIGHBOURS, dense.shape[-1]), dim=-1).indices.sort(-1).values
        weights = dense.gather(2, index.expand(dense.shape[0], -1, -1))
        whole = out_hw[0] % in_hw[0] == 0 and out_hw[1] % in_hw[1] == 0
        observed = box_rows(dense, out_hw, in_hw).to(device) if whole else None
        return Geometry(index.to(device), weights.to(device), observed, in_hw[1] / out_hw[1])


class LocalDecoder(nn.Module):
    """F(q, z): codes [B, K, d] of an input grid -> values [B, N, C] at the output points of a
    Geometry. An MLP of `layers` layers of `hidden` units (sine, SIREN init, or GELU)."""

    def __init__(self, code_dim: int, out_dim: int, hidden: int = 128, layers: int = 3,
                 activation: str = "sine", w0: float = 30.0) -> None:
        super().__init__()
        self.code_dim, self.activation, self.w0 = code_dim, activation, w0
        self.mods = nn.Parameter(torch.empty(BASIS, code_dim, hidden))  # M_f
        self.bias = nn.Parameter(torch.empty(hidden))
        self.cell = nn.Parameter(torch.zeros(hidden))
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, out_dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        bound = math.sqrt(6 / self.code_dim)
        self.mods.uniform_(-bound, bound)
        self.bias.uniform_(-math.pi, math.pi)
        if self.activation == "sine":
            for layer in [*self.hidden, self.out]:
                b = math.sqrt(6 / layer.in_features) / self.w0
                layer.weight.uniform_(-b, b)

    def act(self, x: Tensor) -> Tensor:
        return torch.sin(x) if self.activation == "sine" else F.gelu(x)

    def mlp(self, pre: Tensor) -> Tensor:
        h = self.act(pre)
        for layer in self.hidden:
            scale = self.w0 if self.activation == "sine" else 1.0
            h = self.act(scale * layer(h))
        return self.out(h)

    def origin_pre(self, geo: Geometry) -> Tensor:
        """p0 = b + cell * w_c: every point's pre-activation at z = 0. [H]"""
        return self.bias + geo.cell * self.cell

    def forward(self, geo: Geometry, z: Tensor) -> Tensor:
        """codes [B, K, d] -> [B, N, C]."""
        near = z[:, geo.index]  # [B, N, 16, d]
        mixed = torch.einsum("fnj,bnjd->bnfd", geo.weights, near).flatten(-2)  # [B, N, F*d]
        pre = self.origin_pre(geo) + mixed @ self.mods.flatten(0, 1)  # [B, N, H]
        return self.mlp(pre)

    def origin_jacobian(self, geo: Geometry) -> tuple[Tensor, Tensor]:
        """(f0 [C], V [BASIS, C, d]) with V_f = Jm M_f, Jm = dMLP/dpre at p0 [C, H]."""
        p0 = self.origin_pre(geo)
        with torch.enable_grad():
            p = p0 if p0.requires_grad else p0.detach().requires_grad_(True)
            f0 = self.mlp(p)
            rows = [torch.autograd.grad(f0[c], p, create_graph=True, retain_graph=True)[0]
                    for c in range(f0.shape[0])]
        jm = torch.stack(rows)  # [C, H]
        return f0, torch.einsum("ch,fdh->fcd", jm, self.mods)


DAMPING_INIT = 0.1  # as gon.OriginStep: lambda relative to the mean of diag H
DAMPING_FLOOR = 1e-3


class LocalGON(nn.Module):
    """Codes from one damped Gauss-Newton step from the origin against the box-averaged
    observation, then the local decoder. rho: the learned damping, as gon.OriginStep."""

    def __init__(self, code_dim: int = 16, out_dim: int = 3, hidden: int = 128, layers: int = 3,
                 activation: str = "sine", w0: float = 30.0) -> None:
        super().__init__()
        self.decoder = LocalDecoder(code_dim, out_dim, hidden, layers, activation, w0)
        self.rho = nn.Parameter(torch.tensor(math.log(math.expm1(DAMPING_INIT))))

    def encode(self, geo: Geometry, observed: Tensor) -> Tensor:
        """observed [B, M, C] (the input image, pixels row-major) -> codes [B, M, d]."""
        f0, v = self.decoder.origin_jacobian(geo)
        a = geo.observed  # [F, M, K]
        m, c = observed.shape[1], observed.shape[2]
        # K K^T = sum_{f,g} (A_f A_g^T) (x) (V_f V_g^T): [(m, c), (m', c')]
        aa = torch.einsum("fmk,gnk->fgmn", a, a)
        vv = torch.einsum("fcd,ged->fgce", v, v)
        gram = torch.einsum("fgmn,fgce->mcne", aa, vv).reshape(m * c, m * c)
        d_total = a.shape[-1] * v.shape[-1]
        # lambda of H = (2/M) K^T K, in the dual: (M/2) lambda = (softplus(rho) + floor) tr(K K^T) / D
        lam = (F.softplus(self.rho) + DAMPING_FLOOR) * gram.diagonal().sum() / d_total + 0.5e-6 * m
        eye = torch.eye(m * c, dtype=gram.dtype, device=gram.device)
        err = (observed - f0).reshape(observed.shape[0], m * c)  # y - A f0 (A f0 = f0: flat)
        x = torch.linalg.solve(gram + lam * eye, err.T).T.reshape(-1, m, c)  # [B, M, C]
        return torch.einsum("fmk,bmc,fcd->bkd", a, x, v)  # K^T x, per code

    def forward(self, geo: Geometry, observed: Tensor) -> Tensor:
        """The output [B, N, C] at the geometry's points from the input [B, M, C]."""
        return self.decoder(geo, self.encode(geo, observed))


class LocalSR(nn.Module):
    """The `local` model of a run (config `model local`, `--preset superres`): LocalGON with the
    training step and the methods a Run calls. Its latent is the code grid [B, h, w, d] of an
    input of h x w pixels, encoded for one output scale s (the step observes the input as box
    averages of s x s output points, and the decoder is told the cell size 1/s)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        net = cfg.net
        self.net = LocalGON(net.latent_dim, cfg.out_dim, net.hidden, net.layers, "gelu")
        self.scales = [int(s) for s in cfg.train.observe_scales.split(",")]
        self._geos: dict = {}

    @property
    def decoder(self) -> LocalDecoder:
        return self.net.decoder

    def geometry(self, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> Geometry:
        key = (tuple(out_hw), tuple(in_hw), str(self.net.rho.device))
        if key not in self._geos:
            self._geos[key] = Geometry.of(out_hw, in_hw, self.net.rho.device)
        return self._geos[key]

    def encode_images(self, images: Tensor, scale: int) -> Tensor:
        """images [B, h, w, C] -> codes [B, h, w, d] for rendering at scale x."""
        b, h, w, c = images.shape
        geo = self.geometry((h * scale, w * scale), (h, w))
        return self.net.encode(geo, images.reshape(b, h * w, c)).reshape(b, h, w, -1)

    def render(self, z: Tensor, height: int, width: int, max_memory: int = 512 * 2**20):
        """codes [B, h, w, d] -> images [B, H, W, C] (numpy, in [0, 1]), rows in chunks."""
        b, h, w, _ = z.shape
        geo = self.geometry((height, width), (h, w))
        per_row = b * width * self.net.decoder.out.in_features * 16  # ~4 live float activations
        rows = max(1, max_memory // max(per_row, 1))
        out = torch.empty(b, height * width, self.cfg.out_dim)
        with torch.no_grad():
            for r in range(0, height, rows):
                sl = slice(r * width, min(height, r + rows) * width)
                part = Geometry(geo.index[sl], geo.weights[:, sl], geo.observed, geo.cell)
                out[:, sl] = self.net.decoder(part, z.flatten(1, 2)).clamp(0, 1).cpu()
        return out.reshape(b, height, width, -1).numpy()

    # -- what the training loop and its evaluation call ---------------------------------------

    def view(self, values: Tensor, scale: int) -> Tensor:
        """The full-size values [B, H*W, C] box-downsampled by scale -> [B, h, w, C]."""
        (hh, ww), c = self.cfg.size, values.shape[-1]
        return box_downsample(values.reshape(-1, hh, ww, c), scale)

    def forward(self, coords: Tensor, values: Tensor, generator=None) -> dict[str, Tensor]:
        """One view per observe scale, each super-resolved to the training size and scored
        there; the loss is their mean."""
        (hh, ww) = self.cfg.size
        losses, preds = [], []
        for s in self.scales:
            z = self.encode_images(self.view(values, s), s)
            geo = self.geometry((hh, ww), tuple(z.shape[1:3]))
            pred = self.net.decoder(geo, z.flatten(1, 2))
            preds.append(pred)
            losses.append((pred - values).pow(2).mean())
        loss = torch.stack(losses).mean()
        zero = values.new_zeros(())
        return {"loss": loss, "rec": loss, "kl": zero, "mse": loss.detach(), "pred": preds[-1],
                "z": z}

    def encode(self, coords: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
        """Evaluation: the view at the largest observe scale, encoded for that scale."""
        s = max(self.scales)
        return self.encode_images(self.view(values, s), s)

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        """Codes rendered at the training size: [B, H*W, C]."""
        geo = self.geometry(self.cfg.size, tuple(z.shape[1:3]))
        return self.net.decoder(geo, z.flatten(1, 2))
