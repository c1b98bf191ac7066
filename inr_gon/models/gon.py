"""The gradient-origin latent and the GON losses.

A signal x sampled at coordinates c gets the latent z = -dL/dz0 at z0 = 0, where L is its
reconstruction loss under the decoder F; training back-propagates through that step.

The inner loss of a signal is its own sum of squared errors over channels, divided by its
number of points: it never mixes batch-mates (the reference code's batch mean made a latent
depend on the batch size), and a latent does not change scale with the number of points (a
random subset per step, or a different resolution, gives the same expected latent).

Three ways to take the step, equal up to rounding (tests check it):
- `latent_autograd`: the reference, autograd.grad with create_graph=True.
- `latent_explicit`: the same gradient written out (Siren.sines_vjp), for per-signal coords.
- `latent_shared_grid`: at z0 = 0 neither F(c, 0) nor J = dF/dz(c, 0) depends on the signal,
  so z = (2/N) J^T (x - F(c, 0)) is affine in x; a batch sharing one grid pays for F(c, 0)
  and J once (C backward passes over N points, not B).

The step rule (`OriginStep`, issue 12) preconditions that gradient: `gradient` is the paper's
step, `learned` scales each latent value by a trained step size (Meta-SGD), `gauss-newton`
solves with the damped Gauss-Newton matrix H = (2/N) J^T J of the inner loss. From the origin
on one grid each is a linear map P of the gradient, so the first step stays affine in the
signal (`origin_affine`, what encoder_grid.onnx holds); further steps (`inner_steps` > 1) are
taken per signal from the current z. `origin_step` is the one implementation of a step.

Variational GON (`variational_step`), as the paper's Variational-GON.py: the step is taken on
the ELBO through linear heads, (mu, logvar) = heads(z0), reparameterised, with the KL in the
inner loss too; the resulting latent goes through the heads again for the outer ELBO.
`detach_inner` (an ablation) stops back-propagation through the step.

Observed inputs (issue 13): a signal may be observed through a linear operator A instead of
point by point. Here A is the box average: each of the M observed values is the mean of `box`
consecutive fine points (`render.box_grid` lays out the k x k sub-pixel centres of each pixel
of a small image that way, box = k^2). The inner loss becomes |A F(c_fine, z) - x|^2 / M, so
the step uses A J and A F0; its gradient is J^T A^T r, the residual spread back over the fine
points. Every step function takes `box` (default 1: A = I, the points observed directly).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inr_gon.config import ORIGIN_STEPS, Config, observe_scales
from inr_gon.models.render import DEFAULT_MAX_MEMORY, box_downsample, box_grid, render_images
from inr_gon.models.siren import Siren, grid_gram, grid_jacobian, grid_jacobian_t


def inner_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Per-signal loss [..., N, C] -> [...]: sum over channels, mean over points."""
    return (pred - target).pow(2).sum(-1).mean(-1)


def observe(fine: Tensor, box: int = 1) -> Tensor:
    """A: the mean of each `box` consecutive fine points, [..., M*box, C'] -> [..., M, C']."""
    return fine if box == 1 else fine.unflatten(-2, (-1, box)).mean(-2)


def observe_t(r: Tensor, box: int = 1) -> Tensor:
    """A^T: each observed value's residual spread over its fine points, [..., M, C] ->
    [..., M*box, C]."""
    return r if box == 1 else r.repeat_interleave(box, dim=-2) / box


def residual(pred: Tensor, values: Tensor, box: int = 1) -> Tensor:
    """dL/dF of the inner loss at fine predictions [..., M*box, C]: A^T 2 (A F - x) / M.
    Dividing by the shape entry keeps M dynamic in an exported graph (2.0 / M would be traced
    as a constant)."""
    return observe_t(2 * (observe(pred, box) - values) / values.shape[-2], box)


def zeros_latent(decoder: Siren, values: Tensor) -> Tensor:
    return values.new_zeros(values.shape[0], decoder.latent_size)


def latent_autograd(decoder: Siren, coords: Tensor, values: Tensor, z0: Tensor | None = None,
                    create_graph: bool = True, box: int = 1) -> Tensor:
    """coords [B, N, d] (or [N, d]), values [B, N / box, C] -> z = z0 - dL/dz0  [B, D]."""
    if z0 is None:
        z0 = zeros_latent(decoder, values)
    with torch.enable_grad():
        z0 = z0 if z0.requires_grad else z0.detach().requires_grad_(True)
        # Summing per-signal losses keeps each signal's gradient its own.
        loss = inner_loss(observe(decoder(coords, z0), box), values).sum()
        (grad,) = torch.autograd.grad(loss, z0, create_graph=create_graph)
    return z0 - grad


def latent_grad(decoder: Siren, coords: Tensor, values: Tensor, z: Tensor,
                box: int = 1) -> Tensor:
    """dL/dz of each signal's inner loss at latents z [B or 1, D], backward pass written out.
    coords [B or 1, N, d] or [N, d], values [B, N / box, C] -> [B, D]."""
    weights = decoder.interp_weights(coords)
    s = decoder.shifts(weights, z)
    cot = lambda pred: residual(pred, values, box)  # noqa: E731
    _, grads = decoder.sines_vjp(decoder.base(coords) + s[0], s[1:], cot)
    return decoder.latent_vjp(weights, grads)


def latent_explicit(decoder: Siren, coords: Tensor, values: Tensor,
                    z0: Tensor | None = None, box: int = 1) -> Tensor:
    """As latent_autograd, with the backward pass written out. coords [B, N, d] or [N, d]."""
    if z0 is None:
        z0 = zeros_latent(decoder, values)
    return z0 - latent_grad(decoder, coords, values, z0, box)


def jacobian(decoder: Siren, coords: Tensor, z: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """F and the factors of J = dF/dz: coords [N, d] or [B or 1, N, d], z [B or 1, D] ->
    (values [B, N, C], weights [..., N, G^d] or None, v [B, N, C, D]) with
    J[b, n, c] = weights[n] (x) v[b, n, c] (`inr_gon.siren.grid_jacobian`). One cotangent per
    output channel: C backward passes, all sharing one forward pass."""
    c = decoder.out.out_features
    weights = decoder.interp_weights(coords)
    s = decoder.shifts(weights, z)
    eye = torch.eye(c, dtype=z.dtype, device=z.device)
    cot = lambda pred: eye.reshape(c, *[1] * (pred.dim() - 1), c)  # noqa: E731  [C, 1.., C]
    f, grads = decoder.sines_vjp(decoder.base(coords) + s[0], s[1:], cot)  # grads [C, B, N, H]
    return f, weights, decoder.latent_factor(grads).movedim(0, -2)  # v [B, N, C, D]


def gauss_newton_matrix(weights: Tensor | None, v: Tensor, box: int = 1) -> Tensor:
    """H = (2/M) (AJ)^T (AJ) of the inner loss from J's factors (v [..., N, C, D], M = N / box
    observed points) -> [..., D, D]. A = I keeps J factored (sparse with a grid); a box
    average mixes the cells of a pixel's fine points, so AJ is formed densely ([M, C, D])."""
    m = v.shape[-3] // box
    if box == 1:
        return grid_gram(weights, v) * (2 / m)
    aj = observed_jacobian(weights, v, box).flatten(-3, -2)  # [..., M*C, D_total]
    return aj.transpose(-1, -2) @ aj * (2 / m)


def observed_jacobian(weights: Tensor | None, v: Tensor, box: int = 1) -> Tensor:
    """A J, dense: [..., N, C, D] factors -> [..., N / box, C, D_total]."""
    j = grid_jacobian(weights, v)  # [..., N, C, D_total]
    return j if box == 1 else j.unflatten(-3, (-1, box)).mean(-3)


def shared_grid_grad(decoder: Siren, coords: Tensor, values: Tensor,
                     z0: Tensor | None = None, box: int = 1) -> Tensor:
    """dL/dz at a z0 [D] shared by the batch (default 0): coords [N, d], values [B, N / box, C]
    -> [B, D]. F(c, z0) and its Jacobian are then signal-independent: paid for once."""
    f0, weights, v = shared_jacobian(decoder, coords, values, z0)
    return grid_jacobian_t(weights, v, residual(f0, values, box))


def shared_jacobian(decoder: Siren, coords: Tensor, like: Tensor, z0: Tensor | None = None
                    ) -> tuple[Tensor, Tensor | None, Tensor]:
    """(F(c, z0) [N, C], weights [N, G^d] or None, v [N, C, D]) at a z0 [D] shared by every
    signal (default 0): `jacobian` once for the whole batch."""
    if z0 is None:
        z0 = like.new_zeros(decoder.latent_size)
    f0, weights, v = jacobian(decoder, coords, z0[None])
    return f0[0], weights, v[0]


def latent_shared_grid(decoder: Siren, coords: Tensor, values: Tensor,
                       z0: Tensor | None = None, box: int = 1) -> Tensor:
    """coords [N, d] shared by the batch, values [B, N / box, C] -> z [B, D], one step from z0."""
    grad = shared_grid_grad(decoder, coords, values, z0, box)
    return -grad if z0 is None else z0 - grad


DAMPING_INIT = 0.1  # lambda / mean(diag H) at the start (before its floor)
DAMPING_FLOOR = 1e-3  # ... and its floor: cond(H + lambda I) <= D / 1e-3 + 1, float32-safe
ABS_FLOOR = 1e-6  # lambda where H = 0 (a dead decoder): the step stays finite


class OriginStep(nn.Module):
    """How a latent moves given its inner gradient g [..., D]:
    gradient: z - g (the paper);  learned: z - alpha * g, alpha [D] trained with the decoder
    (Meta-SGD, Li et al. 2017; init 1 so the first step is the paper's);  gauss-newton:
    z - (H + lambda I)^-1 g with H = (2/N) J^T J, lambda = (softplus(rho) + 1e-3) mean(diag H)
    + 1e-6: relative to H, so it follows the decoder's scale, and never singular."""

    def __init__(self, kind: str = "gradient", size: int = 1) -> None:
        super().__init__()
        if kind not in ORIGIN_STEPS:
            raise ValueError(f"origin step must be one of {ORIGIN_STEPS}, got {kind!r}")
        self.kind = kind
        if kind == "learned":
            self.alpha = nn.Parameter(torch.ones(size))
        elif kind == "gauss-newton":  # softplus(rho) = DAMPING_INIT
            self.rho = nn.Parameter(torch.tensor(math.log(math.expm1(DAMPING_INIT))))

    @property
    def needs_hessian(self) -> bool:
        return self.kind == "gauss-newton"

    def damping(self, hessian: Tensor) -> Tensor:
        """lambda [...] of H [..., D, D]."""
        scale = hessian.diagonal(dim1=-2, dim2=-1).mean(-1)
        return (F.softplus(self.rho) + DAMPING_FLOOR) * scale + ABS_FLOOR

    def precondition(self, grad: Tensor, hessian: Tensor | None = None) -> Tensor:
        """P g for rows grad [..., K, D] (hessian [..., D, D] shared by the rows) or [B, D]."""
        if self.kind == "gradient":
            return grad
        if self.kind == "learned":
            return self.alpha * grad
        lam = self.damping(hessian)[..., None, None]
        eye = torch.eye(hessian.shape[-1], dtype=hessian.dtype, device=hessian.device)
        # Rows: X (H + lam I) = g  <=>  X = g (H + lam I)^-1, H + lam I symmetric.
        return torch.linalg.solve(hessian + lam * eye, grad, left=False)


PAPER_STEP = OriginStep()


def origin_step(decoder: Siren, rule: OriginStep, coords: Tensor, values: Tensor,
                z: Tensor | None = None, box: int = 1) -> Tensor:
    """One step of `rule` from z [B, D] (None: the origin) -> [B, D]. From the origin on one
    grid (coords [N, d]) F(c, 0), J and H are signal-independent: paid for once per batch.
    box > 1: values [B, N / box, C] observe box averages of the fine points coords."""
    if z is None and coords.dim() == 2:
        f0, weights, v = shared_jacobian(decoder, coords, values)
        grad = grid_jacobian_t(weights, v, residual(f0, values, box))
        hessian = gauss_newton_matrix(weights, v, box) if rule.needs_hessian else None
        return -rule.precondition(grad, hessian)
    z0 = zeros_latent(decoder, values) if z is None else z
    if not rule.needs_hessian:
        return z0 - rule.precondition(latent_grad(decoder, coords, values, z0, box))
    f, weights, v = jacobian(decoder, coords, z0)  # per signal: v [B, N, C, D]
    grad = grid_jacobian_t(weights, v, residual(f, values, box))
    return z0 - rule.precondition(grad[:, None], gauss_newton_matrix(weights, v, box))[:, 0]


def origin_affine(decoder: Siren, rule: OriginStep, coords: Tensor, z0: Tensor | None = None,
                  chunk: int = 4096, box: int = 1) -> tuple[Tensor, Tensor]:
    """The first step from z0 [D] (default the origin) on one grid coords [N, d] as an affine
    map of the M = N / box observed values: z - z0 = values.flatten(1) @ A + b, A [M*C, D],
    b [D]. The step is P(-g) with P linear and g = (2/M) (AJ)^T (A F(c, z0) - x):
    A = P((2/M) AJ) row by row and b = -P((2/M) (AJ)^T A F(c, z0)). J is built `chunk` points
    at a time (a multiple of box) to bound memory."""
    chunk = max(chunk // box, 1) * box
    parts = [shared_jacobian(decoder, coords[i:i + chunk], coords, z0)
             for i in range(0, coords.shape[0], chunk)]
    f0, v = torch.cat([p[0] for p in parts]), torch.cat([p[2] for p in parts])
    weights = None if parts[0][1] is None else torch.cat([p[1] for p in parts])
    m = coords.shape[0] // box
    rows = (2.0 / m) * observed_jacobian(weights, v, box).flatten(0, 1)  # [M*C, D]
    hessian = gauss_newton_matrix(weights, v, box) if rule.needs_hessian else None
    a = rule.precondition(rows, hessian)  # row m*C + k: observed point m, channel k
    b = -rule.precondition(observe(f0, box).flatten()[None] @ rows, hessian)[0]
    return a, b


def gradient_origin(decoder: Siren, coords: Tensor, values: Tensor, steps: int = 1,
                    rule: OriginStep = PAPER_STEP, box: int = 1) -> Tensor:
    """The latent of each signal: one step of `rule` from zero (shared-grid form when coords is
    [N, d]), then steps-1 further steps from the current z, per signal."""
    z = origin_step(decoder, rule, coords, values, box=box)
    for _ in range(steps - 1):
        z = origin_step(decoder, rule, coords, values, z, box)
    return z


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per signal: [B, D] -> [B]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def inner_kl_weight(cfg: Config) -> float:
    """The KL weight of the inner ELBO: C x kl_weight, as inner_loss sums the C channels while
    the outer loss averages them, so inner = C x outer per signal."""
    return cfg.out_dim * cfg.net.kl_weight


def heads_grad(to_mu: nn.Linear, to_logvar: nn.Linear, mu0: Tensor, logvar0: Tensor, g: Tensor,
               eps: Tensor | None, kl_scale: float) -> Tensor:
    """dL/dz0 of the inner ELBO through the linear heads (mu0, logvar0) = heads(z0), given
    g = dL_rec/dz_in [B, D] at the decoder input z_in = mu0 + eps * sigma0 (mu0 if eps is None).
    Linear in g: the exported grid encoder folds it into one affine map."""
    std0 = torch.exp(0.5 * logvar0)
    g_mu = g + kl_scale * mu0  # dL/dmu
    g_logvar = kl_scale * 0.5 * (std0.pow(2) - 1.0)  # dL/dlogvar
    if eps is not None:
        g_logvar = g_logvar + 0.5 * g * eps * std0
    return g_mu @ to_mu.weight + g_logvar @ to_logvar.weight


def variational_step(decoder: Siren, to_mu: nn.Linear, to_logvar: nn.Linear, coords: Tensor,
                     values: Tensor, z0: Tensor | None, eps: Tensor | None,
                     kl_scale: float, box: int = 1) -> Tensor:
    """One step on the paper's inner ELBO (its Variational-GON.py): from z0 [B, D] (None = the
    origin), z = z0 - dL/dz0 with (mu, logvar) = heads(z0) and
        L(z0) = inner_loss(F(c, mu + eps * sigma), x) + kl_scale * KL(N(mu, sigma^2) || N(0, I)).
    The heads are linear, so the chain rule through them is written out. eps [B, D], or None for
    the posterior mean (inference): from the origin the decoder input b_mu is then shared by the
    batch and the shared-grid form applies."""
    origin = z0 is None
    if origin:
        z0 = values.new_zeros(1, to_mu.in_features)
    mu0, logvar0 = to_mu(z0), to_logvar(z0)  # [1 or B, D]
    if eps is None and origin and coords.dim() == 2:
        g = shared_grid_grad(decoder, coords, values, mu0[0], box)  # dL_rec/dz_in  [B, D]
    else:
        z_in = mu0 if eps is None else mu0 + eps * torch.exp(0.5 * logvar0)
        g = latent_grad(decoder, coords, values, z_in.expand(values.shape[0], -1), box)
    return z0 - heads_grad(to_mu, to_logvar, mu0, logvar0, g, eps, kl_scale)


def decoder_for(cfg: Config) -> Siren:
    """The SIREN decoder a config describes (GON and the autoencoder baseline)."""
    return Siren(cfg.coord_dim, cfg.net.latent_dim, cfg.out_dim, cfg.net.hidden, cfg.net.layers, cfg.net.w0,
                 cfg.net.w0_hidden, cfg.net.latent_init, cfg.net.modulation, cfg.net.latent_grid)


class GON(nn.Module):
    """Implicit GON: a SIREN decoder, its gradient-origin encoder (the step rule `origin`, with
    parameters for learned and gauss-newton steps), an optional variational head."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.decoder = decoder_for(cfg)
        size = self.decoder.latent_size
        self.origin = OriginStep(cfg.net.origin_step, size)
        if cfg.net.variational:  # the paper's VGON: z -> (mu, log sigma^2), reparameterised
            self.to_mu = nn.Linear(size, size)
            self.to_logvar = nn.Linear(size, size)

    def posterior(self, coords: Tensor, values: Tensor, generator: torch.Generator | None = None,
                  sample: bool = False, box: int = 1) -> tuple[Tensor, Tensor | None]:
        """(mean, log-variance or None) of each signal's latent. values [B, N / box, C], box
        averages of the fine points coords (box 1: the points themselves). sample: draw the
        inner step's reparameterisation noise (training), else use the mean."""
        cfg = self.cfg
        if not cfg.net.variational:
            z = gradient_origin(self.decoder, coords, values, cfg.net.inner_steps, self.origin,
                                box)
            return (z.detach() if cfg.net.detach_inner else z), None
        eps = _normal(values.shape[0], cfg.latent_size, values, generator) if sample else None
        kl_scale, z = inner_kl_weight(cfg), None
        for _ in range(cfg.net.inner_steps):
            z = variational_step(self.decoder, self.to_mu, self.to_logvar, coords, values, z, eps,
                                 kl_scale, box)
        z = z.detach() if cfg.net.detach_inner else z
        return self.to_mu(z), self.to_logvar(z)

    def encode(self, coords: Tensor, values: Tensor, box: int = 1) -> Tensor:
        """The latent to decode: the posterior mean. [B, D]."""
        return self.posterior(coords, values, box=box)[0]

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        return self.decoder(coords, z)

    def render(self, z: Tensor, height: int, width: int,
               max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Latents [B, D] -> images [B, H, W, C] at any size, in bounded memory."""
        return render_images(self.decoder, z, height, width, max_memory)

    def forward(self, coords: Tensor, values: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The training step's outputs; with --observe-scales, the mean over the views of the
        losses, each view's latent scored against the full-resolution values."""
        outs = [self.view_step(coords, values, s, generator)
                for s in observe_scales(self.cfg.train.observe_scales)]
        if len(outs) == 1:
            return outs[0]
        mean = {k: torch.stack([o[k] for o in outs]).mean() for k in ("loss", "rec", "kl", "mse")}
        return {**outs[0], **mean}  # pred and z: the first view's

    def view_step(self, coords: Tensor, values: Tensor, scale: int,
                  generator: torch.Generator | None) -> dict[str, Tensor]:
        """Encode the view box-downsampled by `scale` (coords: the whole training grid [N, 2],
        row-major; scale 1: the values as given), decode at coords, score against values."""
        if scale == 1:
            fine, seen = coords, values
        else:
            (h, w), c = self.cfg.size, values.shape[-1]
            fine = box_grid(h // scale, w // scale, scale).to(coords)
            seen = box_downsample(values.reshape(-1, h, w, c), scale).flatten(1, 2)
        mu, logvar = self.posterior(fine, seen, generator, sample=True, box=scale * scale)
        z, kl = mu, values.new_zeros(())
        if logvar is not None:
            z = mu + _normal(*mu.shape, mu, generator) * torch.exp(0.5 * logvar)
            kl = kl_normal(mu, logvar).mean()
        return step_outputs(self.decoder(coords, z), values, z, self.cfg, kl)


def _normal(b: int, d: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn((b, d), generator=generator, device=like.device, dtype=like.dtype)


def step_outputs(pred: Tensor, values: Tensor, z: Tensor, cfg: Config,
                 kl: Tensor | None = None) -> dict[str, Tensor]:
    """What a model's forward returns to the training loop; kl None: no variational term."""
    rec = outer_loss(pred, values, cfg)
    loss = rec if kl is None else rec + cfg.net.kl_weight * kl
    return {"loss": loss, "rec": rec, "kl": values.new_zeros(()) if kl is None else kl,
            "mse": (pred.detach() - values).pow(2).mean(), "pred": pred, "z": z}


def outer_loss(pred: Tensor, target: Tensor, cfg: Config) -> Tensor:
    """Images: mean squared error. SDF: DeepSDF's clamped L1."""
    if cfg.summary.modality == "sdf":
        return clamped_l1(pred, target, cfg.sdf.sdf_clamp).mean()
    return (pred - target).pow(2).mean()


def clamped_l1(pred: Tensor, target: Tensor, clamp: float) -> Tensor:
    """DeepSDF's clamped L1 of each shape: [..., N, 1] -> [...] (mean over its points)."""
    return (pred.clamp(-clamp, clamp) - target.clamp(-clamp, clamp)).abs().mean((-2, -1))
