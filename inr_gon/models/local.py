"""Local latents for super-resolution: one code per input pixel, found from the origin.

A low-resolution image y (L x L pixels, each the box average of s x s points of the output)
gets a grid of d-vectors z_k, one per input pixel k. An output point q at position x (in input
pixel units; pixel k's centre at k + 1/2) reads the codes of its 4 x 4 neighbourhood through a
smooth window and a small basis of the offsets t_k = centre_k - x:

    pre(q) = b + cell * w_c + sum_f sum_k W_f(q, k) M_f z_k,    F(q) = MLP(pre(q))

W_0 is the cubic B-spline window w(t_k) (it sums to 1); W_f (f >= 1) multiplies it by
t_y, t_x, t_y^2 - 1/3, t_x^2 - 1/3 or t_y t_x, whose window sums are 0 (`local_window wide`,
the preset: three more, the window stretched over 8 x 8 pixels times 1, u_y, u_x, u = t/2,
sums 1, 0, 0, for context). Past a border a
window reads mirror images of the input's pixels, so every point meets a whole window. Equal
codes therefore give a constant pre-activation and a flat output, whatever the weights, and a
flat input gets equal codes away from the borders (there the step's system is the same at
every pixel; mirroring bends it within a few pixels of a border): no speckle by construction.
With `local_base bicubic` the output is added to bicubic interpolation (Keys) of the input,
which the latent then carries beside the codes, so the codes model the residual (as VDSR's
global residual); a flat input's bicubic is flat. Nothing depends on the absolute position
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

More steps (`inner_steps`) are chord Gauss-Newton steps, i.e. iterative back-projection: the
residual is taken again after decoding, r_i = y - A F(z_i), and z_{i+1} = z_i + K^T (K K^T +
lambda' I)^-1 r_i with the same K and the same Cholesky factor (the Jacobian stays the origin's).
The first step is linear in y; the next ones see what the decoder made of it. Measured
(docs/superres.md): at equal training steps two steps beat one on held-out photos and CIFAR-10.

`conditioned` (config `local_pixels`, the preset): the MLP also reads the input's pixels through
the same window, pre += sum_f W_f P_f y_k. Then F(q, 0) is no longer flat, so the first
residual is taken after decoding z = 0, and every step is a chord step whose K is the Jacobian
of the model without P (the exact one would vary from point to point and image to image).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inr_gon.models.local_geometry import BASES, Geometry
from inr_gon.models.origin import DAMPING_FLOOR, DAMPING_INIT
from inr_gon.models.siren import full_precision

HOMOGENEOUS_EPS = 1e-2  # below this pre-activation contrast the scaled decoder is linear


class LocalDecoder(nn.Module):
    """F(q, z): codes [B, K, d] of an input grid -> values [B, N, C] at the output points of a
    Geometry. An MLP of `layers` layers of `hidden` units (sine, SIREN init, or GELU)."""

    def __init__(self, code_dim: int, out_dim: int, hidden: int = 128, layers: int = 3,
                 activation: str = "sine", w0: float = 30.0, residual: bool = False,
                 basis: str = "quadratic", homogeneous: bool = False,
                 conditioned: bool = False) -> None:
        super().__init__()
        self.code_dim, self.activation, self.w0 = code_dim, activation, w0
        self.residual = residual  # latents carry the input pixels; bicubic of them is added
        self.basis, self.homogeneous = basis, homogeneous
        self.latent_dim = code_dim + (out_dim if residual else 0)  # what a latent holds
        self.mods = nn.Parameter(torch.empty(len(BASES[basis]), code_dim, hidden))  # M_f
        # conditioned (with the residual's pixels): the MLP also reads the input's pixels
        # through the same window, sum_f W_f P_f y_k; zero at first, so it starts as without
        self.pixels = (nn.Parameter(torch.zeros(len(BASES[basis]), out_dim, hidden))
                       if conditioned else None)
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
        """codes [B, K, d] (residual: [B, K, d + C], the input's pixels last) -> [B, N, C]."""
        p0 = self.origin_pre(geo)
        if self.pixels is None:
            read, weight = z[..., :self.code_dim], self.mods  # [B, K, d], [F, d, H]
        else:  # codes and pixels through one window: [B, K, d + C], [F, d + C, H]
            read, weight = z, torch.cat([self.mods, self.pixels], 1)
        delta = geo.mix(read) @ weight.flatten(0, 1)  # [B, N, H]
        out = self.mlp(p0 + delta) if not self.homogeneous else self.scaled(p0, delta)
        if not self.residual:
            return out
        with full_precision(z):
            return out.float() + geo.interp(z[..., self.code_dim:].float())

    def scaled(self, p0: Tensor, delta: Tensor) -> Tensor:
        """f0 + n (MLP(p0 + delta / n) - f0), n = sqrt(mean(delta^2) + eps^2): the MLP reads
        the local pattern at unit size, and the output's departure from f0 scales with the
        pattern's contrast n. An edge at any contrast gets the same shape (the map is
        homogeneous of degree 1 in delta once n >> eps, as an SR map of natural images nearly
        is), where MLP(p0 + delta) is nearly linear at the small contrasts most of a photo
        has. Its value and Jacobian at the origin are the MLP's (n -> eps, dn/ddelta = 0
        there), so the step from the origin is unchanged."""
        n = (delta.pow(2).mean(-1, keepdim=True) + HOMOGENEOUS_EPS**2).sqrt()  # [B, N, 1]
        f0 = self.mlp(p0)
        return f0 + n * (self.mlp(p0 + delta / n) - f0)

    def origin_jacobian(self, geo: Geometry) -> tuple[Tensor, Tensor]:
        """(f0 [C], V [F, C, d]) with V_f = Jm M_f, Jm = dMLP/dpre at p0 [C, H]."""
        p0 = self.origin_pre(geo)
        with torch.enable_grad():
            p = p0 if p0.requires_grad else p0.detach().requires_grad_(True)
            f0 = self.mlp(p)
            rows = [torch.autograd.grad(f0[c], p, create_graph=True, retain_graph=True)[0]
                    for c in range(f0.shape[0])]
        jm = torch.stack(rows)  # [C, H]
        return f0, torch.einsum("ch,fdh->fcd", jm, self.mods)


class LocalGON(nn.Module):
    """Codes from damped Gauss-Newton steps from the origin against the box-averaged
    observation, then the local decoder. rho: the learned damping, as gon.OriginStep."""

    def __init__(self, code_dim: int = 16, out_dim: int = 3, hidden: int = 128, layers: int = 3,
                 activation: str = "sine", w0: float = 30.0, residual: bool = False,
                 basis: str = "quadratic", homogeneous: bool = False,
                 conditioned: bool = False) -> None:
        super().__init__()
        self.decoder = LocalDecoder(code_dim, out_dim, hidden, layers, activation, w0, residual,
                                    basis, homogeneous, conditioned)
        self.rho = nn.Parameter(torch.tensor(math.log(math.expm1(DAMPING_INIT))))

    def origin(self, geo: Geometry) -> tuple[Tensor, Tensor, Tensor]:
        """What the step needs and the signal does not change: (f0 [C], V [F, C, d], the
        Cholesky factor of K K^T + lambda' I [M C, M C]), in float32 whatever the autocast."""
        with full_precision(self.rho):
            return self._origin(geo)

    def _origin(self, geo: Geometry) -> tuple[Tensor, Tensor, Tensor]:
        f0, v = self.decoder.origin_jacobian(geo)
        (h, w), c = geo.in_hw, v.shape[1]
        n = h * w * c
        # K K^T = sum_{f,g} (A W_f)(A W_g)^T (x) V_f V_g^T, each A W_f a Kronecker product of axes
        yy, xx = geo.observed_gram()
        vv = torch.einsum("fcd,ged->fgce", v, v)
        gram = torch.einsum("fgik,fgjl,fgce->ijckle", yy, xx, vv).reshape(n, n)
        d_total = h * w * v.shape[-1]
        # lambda of H = (2/M) K^T K, in the dual: (M/2) lambda = (softplus(rho) + floor) tr(K K^T) / D
        lam = (F.softplus(self.rho) + DAMPING_FLOOR) * gram.diagonal().sum() / d_total + 0.5e-6 * h * w
        eye = torch.eye(n, dtype=gram.dtype, device=gram.device)
        return f0, v, torch.linalg.cholesky(gram + lam * eye)

    def encode(self, geo: Geometry, observed: Tensor, steps: int = 1,
               origin: tuple[Tensor, Tensor, Tensor] | None = None, decode=None) -> Tensor:
        """observed [B, M, C] (the input image, pixels row-major) -> latents [B, M, d] (d + C
        with the bicubic base: `latent`). decode:
        what the chord steps decode with, (geo, codes) -> values (default the decoder; an
        exported graph of it for `render --backend onnx`)."""
        f0, v, chol = self.origin(geo) if origin is None else origin
        decode = decode or self.decoder
        b, m, c = observed.shape
        if self.decoder.pixels is not None:  # A F(0) depends on the pixels: decode z = 0
            zero = observed.new_zeros(b, m, self.decoder.code_dim)
            fit = geo.observe(decode(geo, self.latent(zero, observed)))
        else:
            fit = f0.expand_as(observed)  # A F(0) = f0: the origin decodes flat
            if self.decoder.residual:  # ... plus the bicubic base, whatever the codes
                fit = fit + geo.observe(geo.interp(observed))
        z = None
        for i in range(steps):
            if i:
                fit = geo.observe(decode(geo, self.latent(z, observed)))
            with full_precision(observed):
                r = (observed - fit.float()).reshape(b, m * c)
                x = torch.cholesky_solve(r.T, chol).T.reshape(b, *geo.in_hw, c)
                dz = geo.adjoint(torch.einsum("bijc,fcd->bfijd", x, v))  # K^T x, per code
            z = dz if z is None else z + dz
        return self.latent(z, observed)

    def latent(self, codes: Tensor, observed: Tensor) -> Tensor:
        """What the decoder reads: the codes, and with a residual decoder the input's pixels."""
        return torch.cat([codes, observed], -1) if self.decoder.residual else codes

    def forward(self, geo: Geometry, observed: Tensor, steps: int = 1) -> Tensor:
        """The output [B, N, C] at the geometry's points from the input [B, M, C]."""
        return self.decoder(geo, self.encode(geo, observed, steps))
