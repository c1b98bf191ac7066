"""The `shapes` demo family: one flat shape on a plain background, rendered analytically.

Factors of variation (drawn from a fixed seed, one row of uniforms per item, so item i
is the same whatever the count): kind (disc, triangle, square, hexagon), centre, size
(circumradius 0.35-0.65 of the half-frame, the whole shape inside [-0.9, 0.9]^2),
rotation, and two colours: a bright saturated foreground on a dark background of
roughly opposite hue (grey variant: foreground 0.75-1, background 0.05-0.35).

Rendering uses the pixel-centre grid of CONVENTIONS ((2i+1)/S - 1, y then x), so a
render at (H, W) is what a decoder sampled at those coordinates should produce; a
non-square (H, W) stretches the frame like the decoder's grid does. Anti-aliasing is the
exact box-filter coverage of each edge's half-plane (the signed distance at the pixel
centre, spread by the pixel footprint projected on the edge normal), multiplied over
the polygon's edges: exact along straight edges, close at corners and on the disc rim.
So averaging a 4x render over 4x4 blocks closely reproduces the 1x render.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEED = 20_240_601
KINDS = ("disc", "triangle", "square", "hexagon")
_SIDES = (0, 3, 4, 6)
_MARGIN = 0.9  # every point of a shape stays within [-0.9, 0.9] on both axes


@dataclass(frozen=True)
class ShapeParams:
    kind: np.ndarray  # [N] index into KINDS
    centre: np.ndarray  # [N, 2] (y, x) in [-1, 1]
    radius: np.ndarray  # [N] circumradius
    angle: np.ndarray  # [N] rotation in radians
    fg: np.ndarray  # [N, 3] RGB
    bg: np.ndarray  # [N, 3] RGB
    fg_grey: np.ndarray  # [N]
    bg_grey: np.ndarray  # [N]

    def take(self, indices: np.ndarray) -> ShapeParams:
        return ShapeParams(*(getattr(self, f)[indices] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.kind)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def shape_params(n: int, seed: int = SEED) -> ShapeParams:
    """The first n items of the family; rows are drawn in order, so prefixes agree."""
    u = np.random.default_rng(seed).random((n, 12))
    kind = np.minimum((u[:, 0] * len(KINDS)).astype(np.int64), len(KINDS) - 1)
    radius = 0.35 + 0.30 * u[:, 1]
    reach = _MARGIN - radius  # how far the centre may move and keep the shape inside
    centre = (2.0 * u[:, 2:4] - 1.0) * reach[:, None]
    sides = np.array(_SIDES)[kind]
    # Rotation within one symmetry period: more would only duplicate items.
    angle = u[:, 4] * 2.0 * np.pi / np.maximum(sides, 1)
    fg = _hsv_to_rgb(u[:, 5], 0.55 + 0.35 * u[:, 6], 0.80 + 0.20 * u[:, 7])
    bg_hue = (u[:, 5] + 0.33 + 0.34 * u[:, 8]) % 1.0
    bg = _hsv_to_rgb(bg_hue, 0.30 + 0.40 * u[:, 9], 0.10 + 0.25 * u[:, 10])
    fg_grey = 0.75 + 0.25 * u[:, 7]
    bg_grey = 0.05 + 0.30 * u[:, 10]
    return ShapeParams(kind, centre, radius, angle, fg, bg, fg_grey, bg_grey)


def _edge_coverage(d: np.ndarray, ny: np.ndarray, nx: np.ndarray, hy: float, hx: float):
    """Fraction of a pixel box (hy by hx) inside {distance < 0} of a straight edge with
    unit normal (ny, nx), given the signed distance d at the pixel centre.

    Across the edge the box's extent is the sum of two uniform variables (half-widths
    |nx| hx/2 and |ny| hy/2), whose tail is a trapezoid's: linear, then quadratic."""
    a = np.abs(nx) * (hx / 2)
    b = np.abs(ny) * (hy / 2)
    hi = np.maximum(a, b)
    lo = np.maximum(np.minimum(a, b), 1e-9)
    t = np.abs(d)
    tail = np.where(
        t >= hi + lo, 0.0,
        np.where(t > hi - lo, (hi + lo - t) ** 2 / (8.0 * hi * lo), 0.5 - t / (2.0 * hi)))
    return np.where(d > 0, tail, 1.0 - tail)


def _coverage(p: ShapeParams, i: int, ys: np.ndarray, xs: np.ndarray, hy: float, hx: float):
    py = ys[:, None] - p.centre[i, 0]
    px = xs[None, :] - p.centre[i, 1]
    sides = _SIDES[int(p.kind[i])]
    r = float(p.radius[i])
    if sides == 0:
        rho = np.sqrt(py**2 + px**2)
        safe = np.maximum(rho, 1e-12)  # the centre is deep inside: any normal will do
        return _edge_coverage(rho - r, py / safe, px / safe, hy, hx)
    apothem = r * np.cos(np.pi / sides)
    cov = np.ones_like(py * px)
    for j in range(sides):
        phi = float(p.angle[i]) + (2 * j + 1) * np.pi / sides  # outward normal of edge j
        ny, nx = np.sin(phi), np.cos(phi)
        d = py * ny + px * nx - apothem
        cov *= _edge_coverage(d, np.full_like(d, ny), np.full_like(d, nx), hy, hx)
    return cov


def render_shapes(p: ShapeParams, height: int, width: int, grey: bool = False) -> np.ndarray:
    """All items of p at (height, width) -> float32 [N, H, W, 3] (or 1 channel if grey)."""
    ys = (2.0 * np.arange(height) + 1.0) / height - 1.0
    xs = (2.0 * np.arange(width) + 1.0) / width - 1.0
    hy, hx = 2.0 / height, 2.0 / width
    out = np.empty((len(p), height, width, 1 if grey else 3), np.float32)
    for i in range(len(p)):
        cov = _coverage(p, i, ys, xs, hy, hx)[..., None]
        fg = p.fg_grey[i : i + 1] if grey else p.fg[i]
        bg = p.bg_grey[i : i + 1] if grey else p.bg[i]
        out[i] = bg + cov * (fg - bg)
    return out
