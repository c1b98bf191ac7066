"""Where a local model's codes sit and how an output point reads them (models/local.py).

An output point at position x (input pixel units; pixel k's centre at k + 1/2) reads the codes
of its 4 x 4 neighbourhood of input pixels with weights W_f(q, k): the cubic B-spline window
w(t_k) times a basis of the offsets t_k = centre_k - x: products of (1, t, t^2 - 1/3, t^3)
along y and along x (`BASES`); the wide bases add the same B-spline stretched over 8 x 8 (and
16 x 16) input pixels, for context. Past a border a window reads mirror images of the input's
pixels. Everything a pair (output size, input size) fixes is a `Geometry`, built once and
cached by the model. The sizes need not be multiples: an input pixel is the area average of the
output pixels it overlaps (`area_matrix`), so a 32 x 32 output observed at 11 x 11 is as well
defined as at 8 x 8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from inr_gon.models.siren import full_precision

RADIUS = 2  # the cubic B-spline's support: a 4 x 4 neighbourhood of codes


def bspline3(t: Tensor) -> Tensor:
    """The cubic B-spline kernel: C2, support |t| < 2, sums to 1 over integer shifts."""
    a = t.abs()
    return torch.where(a < 1, 2 / 3 - a**2 + a**3 / 2, torch.where(a < 2, (2 - a) ** 3 / 6, 0 * a))


def reflect(k: Tensor, n: int) -> Tensor:
    """Index k of a virtual pixel past a border -> its mirror image in 0..n-1 (..., 1, 0 | 0, 1, ...)."""
    k = k.abs() - (k < 0).long()  # -1 -> 0, -2 -> 1
    return torch.where(k >= n, 2 * n - 1 - k, k).clamp(0, n - 1)


def keys_cubic(t: Tensor) -> Tensor:
    """Keys' cubic convolution kernel (a = -1/2), bicubic interpolation: 1 at 0, 0 at the other
    integers, support |t| < 2."""
    a = t.abs()
    return torch.where(a < 1, 1.5 * a**3 - 2.5 * a**2 + 1,
                       torch.where(a < 2, -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2, 0 * a))


def centres(out_side: int, in_side: int) -> Tensor:
    """The centres of out_side output pixels spanning in_side input pixels, in input pixel
    units: [out] float64."""
    return (torch.arange(out_side, dtype=torch.float64) + 0.5) * in_side / out_side


def area_matrix(out_side: int, in_side: int) -> Tensor:
    """A [in, out], float64: A[i, j] = the share of input pixel i that output pixel j covers
    (pixel i spans [i, i + 1) in input pixel units, pixel j [j r, (j + 1) r), r = in / out).
    Rows sum to 1: an input pixel is the area average of the output over its footprint. A
    whole ratio s gives the s x s box average; any other, the same average with the pixels cut
    by the footprint's edges weighted by the part inside it (OpenCV's INTER_AREA)."""
    r = in_side / out_side
    edges = torch.arange(out_side + 1, dtype=torch.float64) * r
    i = torch.arange(in_side, dtype=torch.float64)[:, None]
    return (torch.minimum(i + 1, edges[1:]) - torch.maximum(i, edges[:-1])).clamp(min=0)


def area_downsample(images: Tensor, hw: tuple[int, int]) -> Tensor:
    """images [B, H, W, C] -> [B, h, w, C], each pixel the area average of what it covers (any
    ratio; a whole one is the box average), in float32 whatever the autocast."""
    (hh, ww), (h, w) = images.shape[1:3], hw
    ay = area_matrix(hh, h).to(images.device, torch.float32)
    ax = area_matrix(ww, w).to(images.device, torch.float32)
    return _area_average(images, ay, ax)


def _area_average(grid: Tensor, ay: Tensor, ax: Tensor) -> Tensor:
    """grid [B, H, W, C] -> [B, h, w, C] by the area matrices ay [h, H] and ax [w, W]."""
    with full_precision(grid):
        return torch.einsum("iY,bYXc,jX->bijc", ay, grid.to(ay.dtype), ax)


def _axis_taps(x: Tensor, in_side: int) -> tuple[Tensor, Tensor]:
    """Along one axis, the 4 input pixels each output point at x [out] (input pixel units)
    reads and their weights: (m [out, 4] indices, after mirroring; w [5, out, 4] =
    w(t) psi_a(t)), t = centre of the virtual neighbour k - x, w the cubic B-spline, psi = (1, t,
    t^2 - 1/3, t^3), the 5th row bicubic's weights. A full window always: w sums to 1 and w t,
    w (t^2 - 1/3) and w t^3 to 0 at every position (the B-spline's moments up to degree 3 do not
    depend on the position, and its odd ones vanish), so a flat input meets the same weights
    everywhere, borders included. With 4 taps, the 4 products span every weighting of them.
    float64."""
    k, t = _offsets(x, RADIUS)
    w = bspline3(t)
    # the 5th row: bicubic interpolation of the input itself (the base a residual decoder adds)
    return reflect(k, in_side), torch.stack([w, w * t, w * (t**2 - 1 / 3), w * t**3, keys_cubic(t)])


def _offsets(x: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    """The 2 radius virtual neighbours k [out, 2 radius] each output point at x [out] (input
    pixel units) reads (before mirroring) and their offsets t = k + 1/2 - x."""
    k = torch.floor(x - 0.5).long()[:, None] - radius + 1 + torch.arange(2 * radius)
    return k, k + 0.5 - x[:, None]


def _wide_taps(x: Tensor, in_side: int, stretch: int) -> tuple[Tensor, Tensor]:
    """A wide window: the cubic B-spline stretched, w_s(t) = w(t/s)/s, over 4 s taps, times
    (1, u, u^2 - 1/3), u = t/s: the same moments (sampling w at spacing 1/s reproduces cubics
    too), so it sums to 1 and the others to 0 everywhere. It gives a point the context of a
    4 s x 4 s neighbourhood at the smoothness of its scale."""
    k, t = _offsets(x, stretch * RADIUS)
    u = t / stretch
    w = bspline3(u) / stretch
    return reflect(k, in_side), torch.stack([w, w * u, w * (u**2 - 1 / 3)])


STRETCHES = (2, 4)  # the wide windows' rows: 5, 6, 7 (8 x 8), then 8, 9, 10 (16 x 16)


def axis_factors(x: Tensor, in_side: int) -> Tensor:
    """The taps of the output points at x [out] (input pixel units) as dense matrices
    D_a[j, m] (mirror images that coincide add): [11, out, in], the window's four factors,
    bicubic's, then each wide window's three."""
    rows = []
    for m, w in (_axis_taps(x, in_side), *(_wide_taps(x, in_side, s) for s in STRETCHES)):
        dense = torch.zeros(len(w), len(x), in_side, dtype=torch.float64)
        at = torch.arange(len(x))[:, None].expand_as(m)
        for a in range(len(w)):
            dense[a].index_put_((at, m), w[a], accumulate=True)
        rows.append(dense)
    return torch.cat(rows)


BICUBIC = 4  # the axis factors' row of bicubic interpolation
# (y factor, x factor) of each basis function f. quadratic: 1, t_y, t_x, t_y^2, t_x^2, t_y t_x
# (degree <= 2); cubic: all 16 products, i.e. any weighting of the 4 x 4 neighbours, varying
# smoothly with the point (LIIF's feature unfolding without its seams).
QUADRATIC = ((0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1))
# wide: the quadratic basis and the 8 x 8 window's 1, u_y, u_x (wide_quadratic: its degree 2
# too); pyramid: and the 16 x 16 window's 1, u_y, u_x
BASES = {"quadratic": QUADRATIC,
         "cubic": tuple((a, b) for a in range(4) for b in range(4)),
         "wide": QUADRATIC + ((5, 5), (6, 5), (5, 6)),
         "wide_quadratic": QUADRATIC + ((5, 5), (6, 5), (5, 6), (7, 5), (5, 7), (6, 6)),
         "pyramid": QUADRATIC + ((5, 5), (6, 5), (5, 6), (8, 8), (9, 8), (8, 9))}


def local_weights(out_hw: tuple[int, int], in_hw: tuple[int, int],
                  basis: str = "quadratic") -> Tensor:
    """W_f [F, H*W, h*w] (output points and input pixels row-major), float32, dense: the
    outer products of the axis factors (a test oracle; the model uses Geometry's taps)."""
    fy = axis_factors(centres(out_hw[0], in_hw[0]), in_hw[0])
    fx = axis_factors(centres(out_hw[1], in_hw[1]), in_hw[1])
    w = [torch.einsum("jm,in->jimn", fy[a], fx[b]).reshape(out_hw[0] * out_hw[1], -1)
         for a, b in BASES[basis]]
    return torch.stack(w).float()


@dataclass(frozen=True)
class Geometry:
    """What a (output size, input size) pair fixes: the window's axis factors, dense (an output
    point reads 4 input pixels per axis; the products are small GEMMs), and the observation,
    per axis too. The 2D weights are W_f = fy[a] (x) fx[b], (a, b) = BASES[basis][f]; the
    observation A = ay (x) ax (area averages), and the observed factor A W_f, for the step,
    box_y[a] (x) box_x[b] with box_y = ay fy. A geometry of chosen points (`at`, a tile's
    block of a larger render) decodes only: it has no observation."""

    fy: Tensor  # [11, H, h] (the 5th: bicubic)
    fx: Tensor  # [11, W, w]
    cell: float  # output pixel size in input pixels
    in_hw: tuple[int, int]
    basis: str = "quadratic"
    ay: Tensor | None = None  # [h, H]: input pixel i's area average over the output rows
    ax: Tensor | None = None  # [w, W]

    @staticmethod
    def of(out_hw: tuple[int, int], in_hw: tuple[int, int], device=None,
           dtype: torch.dtype = torch.float32, basis: str = "quadratic") -> Geometry:
        """The whole output grid of out_hw pixels over an input of in_hw, any ratio."""
        geo = Geometry.at(centres(out_hw[0], in_hw[0]), centres(out_hw[1], in_hw[1]), in_hw,
                          in_hw[1] / out_hw[1], device, dtype, basis)
        return replace(geo, ay=area_matrix(out_hw[0], in_hw[0]).to(device, dtype),
                       ax=area_matrix(out_hw[1], in_hw[1]).to(device, dtype))

    @staticmethod
    def at(ys: Tensor, xs: Tensor, in_hw: tuple[int, int], cell: float, device=None,
           dtype: torch.dtype = torch.float32, basis: str = "quadratic") -> Geometry:
        """The output points of rows at ys [H] and columns at xs [W] (input pixel units),
        output pixels cell input pixels wide."""
        fy, fx = axis_factors(ys, in_hw[0]), axis_factors(xs, in_hw[1])
        return Geometry(fy.to(device, dtype), fx.to(device, dtype), cell, tuple(in_hw), basis)

    @property
    def pair_y(self) -> list[int]:
        return [a for a, _ in BASES[self.basis]]

    @property
    def pair_x(self) -> list[int]:
        return [b for _, b in BASES[self.basis]]

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.fy.shape[1], self.fx.shape[1]

    def mix(self, z: Tensor) -> Tensor:
        """sum_k W_f(q, k) z_k for every output point q and basis f: codes [B, h*w, d] ->
        [B, H*W, F*d] (along x, then along y), as batched matrix products: onnxruntime runs
        them as GEMMs, where its Einsum kernel took a third of an exported decoder's call."""
        (h, w), d = self.in_hw, z.shape[-1]
        rows = sorted(set(self.pair_x))  # the x factors some basis function uses
        pick = [rows.index(b) for b in self.pair_x]
        zt = z.reshape(-1, h, w, d).transpose(1, 2).reshape(-1, 1, w, h * d)  # [B, 1, w, h d]
        along_x = torch.matmul(self.fx[rows][None], zt)[:, pick]  # [B, F, W, h d]
        along_x = along_x.reshape(*along_x.shape[:3], h, d).transpose(2, 3)  # [B, F, h, W, d]
        big_w = along_x.shape[3]
        mixed = torch.matmul(self.fy[self.pair_y][None], along_x.flatten(3))  # [B, F, H, W d]
        mixed = mixed.reshape(*mixed.shape[:3], big_w, d).permute(0, 2, 3, 1, 4)  # [B, H, W, F, d]
        return mixed.flatten(1, 2).flatten(-2)

    def interp(self, pixels: Tensor) -> Tensor:
        """Bicubic interpolation of the input: pixels [B, h*w, C] -> [B, H*W, C]."""
        (h, w), c = self.in_hw, pixels.shape[-1]
        out = torch.einsum("Yh,bhwc,Xw->bYXc", self.fy[BICUBIC], pixels.reshape(-1, h, w, c),
                           self.fx[BICUBIC])
        return out.flatten(1, 2)

    def observed_factors(self) -> tuple[Tensor, Tensor]:
        """The axis factors as the input sees them, A_y fy and A_x fx: ([11, h, h], [11, w, w])."""
        if self.ay is None:
            raise ValueError("a geometry of chosen points has no observation")
        return torch.matmul(self.ay, self.fy), torch.matmul(self.ax, self.fx)

    def observed_gram(self) -> tuple[Tensor, Tensor]:
        """(A W_f)(A W_g)^T as factors: ([F, F, h, h], [F, F, w, w])."""
        oy, ox = self.observed_factors()
        py, px = self.pair_y, self.pair_x
        yy = torch.einsum("aik,bjk->abij", oy, oy)[py][:, py]
        xx = torch.einsum("aik,bjk->abij", ox, ox)[px][:, px]
        return yy, xx

    def adjoint(self, x: Tensor) -> Tensor:
        """sum_f (A W_f)^T x_f: x [B, F, h, w, d] per basis -> [B, h*w, d]."""
        oy, ox = self.observed_factors()
        py, px = oy[self.pair_y], ox[self.pair_x]  # [F, h, h], [F, w, w]
        return torch.einsum("fik,fjl,bfijd->bkld", py, px, x).flatten(1, 2)

    def observe(self, values: Tensor) -> Tensor:
        """The area average A: values [B, N, C] at every output point -> [B, M, C] per input
        pixel, in float32 whatever the autocast (bf16 would move it by half an 8-bit level)."""
        if self.ay is None:
            raise ValueError("a geometry of chosen points has no observation")
        (hh, ww), c = self.out_hw, values.shape[-1]
        return _area_average(values.reshape(-1, hh, ww, c), self.ay, self.ax).flatten(1, 2)

    def window(self, rows: slice, cols: slice) -> Geometry:
        """The output points of rows x cols only (a block of the output), same codes; it
        decodes only (no observation)."""
        return Geometry(self.fy[:, rows], self.fx[:, cols], self.cell, self.in_hw, self.basis)

    def rows(self, rows: slice) -> Geometry:
        """A strip of whole output rows (for rendering in chunks)."""
        return self.window(rows, slice(None))
