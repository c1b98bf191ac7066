"""The original implicit GON training step (Bond-Taylor & Willcocks' code), written plainly.

The original concatenates the latent to every coordinate, [c, z] -> one first layer, takes the
latent as -autograd.grad of the inner loss with create_graph=True, and uses losses summed over
points and averaged over batch and channels:

    z = zeros(B, 1, D).requires_grad_()
    g = F(cat(c, z.repeat(1, N, 1)))
    L_inner = ((g - x) ** 2).sum(1).mean()
    z = -autograd.grad(L_inner, [z], create_graph=True, retain_graph=True)[0]
    g = F(cat(c, z.repeat(1, N, 1)))
    L_outer = ((g - x) ** 2).sum(1).mean()
    opt.zero_grad(); L_outer.backward(); opt.step()

Mapping to inr-gon's conventions (models/origin.py), so both compute the same numbers:
- first layer: [Wc | Wz] over [c, z] is inr-gon's split coord/latent layer (siren.py);
- inner loss: the original's batch mean gives dL_inner/dz_b = (N / (B C)) dL_b/dz_b, where
  L_b = sum_{n,c} (g - x)^2 / N is inr-gon's per-signal loss; so inr-gon's latent is the
  original's times B C / N (`latent_scale`, one [B, D] multiply);
- outer loss: the original's sum over points is N times inr-gon's mean, and so are its
  gradients (compare loss / N and gradients / N).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inr_gon.models.siren import Siren


class ReferenceSiren(nn.Module):
    """F([c, z]) with one first layer over the concatenation, sin(w0 (W x + b)) throughout."""

    def __init__(self, ours: Siren) -> None:
        super().__init__()
        d, h = ours.coord.in_features, ours.coord.out_features
        self.w0, self.w0_hidden, self.latent_dim = ours.w0, ours.w0_hidden, ours.latent.in_features
        self.first = nn.Linear(d + ours.latent.in_features, h)
        self.hidden = nn.ModuleList(nn.Linear(h, h) for _ in ours.hidden)
        self.out = nn.Linear(h, ours.out.out_features)
        with torch.no_grad():  # the same function as `ours`
            self.first.weight.copy_(torch.cat([ours.coord.weight, ours.latent.weight], dim=1))
            self.first.bias.copy_(ours.coord.bias)
            for mine, theirs in zip(self.hidden, ours.hidden):
                mine.load_state_dict(theirs.state_dict())
            self.out.load_state_dict(ours.out.state_dict())

    def forward(self, x: Tensor) -> Tensor:
        h = torch.sin(self.w0 * self.first(x))
        for layer in self.hidden:
            h = torch.sin(self.w0_hidden * layer(h))
        return self.out(h)

    def grads_as_ours(self, n_points: int) -> dict[str, Tensor]:
        """Weight gradients under inr-gon's parameter names and loss scale (/ N)."""
        d = self.first.in_features - self.latent_dim
        g = {"coord.weight": self.first.weight.grad[:, :d], "coord.bias": self.first.bias.grad,
             "latent.weight": self.first.weight.grad[:, d:]}
        for i, layer in enumerate(self.hidden):
            g[f"hidden.{i}.weight"], g[f"hidden.{i}.bias"] = layer.weight.grad, layer.bias.grad
        g["out.weight"], g["out.bias"] = self.out.weight.grad, self.out.bias.grad
        return {k: v / n_points for k, v in g.items()}


def reference_loss(net: ReferenceSiren, c: Tensor, x: Tensor, latent_scale: float) -> Tensor:
    """The original outer loss. c [B, N, d] (one grid per item, as the original stacks them),
    x [B, N, C]."""
    b, n, _ = x.shape
    z = torch.zeros(b, 1, net.latent_dim, device=x.device, dtype=x.dtype).requires_grad_()
    g = net(torch.cat((c, z.repeat(1, n, 1)), dim=-1))
    inner = ((g - x) ** 2).sum(1).mean()
    z = -torch.autograd.grad(inner, [z], create_graph=True, retain_graph=True)[0] * latent_scale
    g = net(torch.cat((c, z.repeat(1, n, 1)), dim=-1))
    return ((g - x) ** 2).sum(1).mean()


def reference_step(net: ReferenceSiren, opt: torch.optim.Optimizer, c: Tensor, x: Tensor,
                   latent_scale: float) -> Tensor:
    """One original training step; returns the outer loss (the original's scale)."""
    outer = reference_loss(net, c, x, latent_scale)
    opt.zero_grad()
    outer.backward()
    opt.step()
    return outer.detach()
