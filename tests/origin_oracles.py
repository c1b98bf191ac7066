"""Other forms of the gradient-origin step, kept as oracles for the engine (inr_gon/models/origin.py):
the paper's autograd step, the backward pass written out per signal, and the shared-grid form
written from the Jacobian's factors. The product takes every step through `OriginStep`; these
check it. `box`: the observation's box (1: the points themselves)."""

from torch import Tensor

from inr_gon.models import origin
from inr_gon.models.origin import Observation, OriginStep
from inr_gon.models.siren import Siren, grid_jacobian_t


def zeros_latent(decoder: Siren, values: Tensor) -> Tensor:
    return values.new_zeros(values.shape[0], decoder.latent_size)


def latent_autograd(decoder, coords: Tensor, values: Tensor, z0: Tensor | None = None,
                    create_graph: bool = True, box: int = 1) -> Tensor:
    """coords [B, N, d] (or [N, d]), values [B, N / box, C] -> z = z0 - dL/dz0 [B, D]."""
    z0 = zeros_latent(decoder, values) if z0 is None else z0
    return origin.latent_autograd(decoder, coords, values, z0, create_graph, Observation(box))


def latent_explicit(decoder: Siren, coords: Tensor, values: Tensor, z0: Tensor | None = None,
                    box: int = 1) -> Tensor:
    """As latent_autograd, with the backward pass written out. coords [B, N, d] or [N, d]."""
    z0 = zeros_latent(decoder, values) if z0 is None else z0
    return z0 - origin.latent_grad(decoder, coords, values, z0, Observation(box))


def latent_shared_grid(decoder: Siren, coords: Tensor, values: Tensor, z0: Tensor | None = None,
                       box: int = 1) -> Tensor:
    """coords [N, d] shared by the batch, values [B, N / box, C] -> z [B, D], one step from a
    z0 [D] shared by the batch (default 0): F(c, z0) and J paid for once."""
    shared = values.new_zeros(decoder.latent_size) if z0 is None else z0
    f0, weights, v = origin.shared_jacobian(decoder, coords, shared)
    grad = grid_jacobian_t(weights, v, origin.residual(f0, values, Observation(box)))
    return -grad if z0 is None else z0 - grad


def origin_step(decoder: Siren, rule: OriginStep, coords: Tensor, values: Tensor,
                z: Tensor | None = None, box: int = 1) -> Tensor:
    """One step of rule (the engine's), with the observation given as its box."""
    return rule(decoder, coords, values, z, Observation(box))


def origin_affine(decoder: Siren, rule: OriginStep, coords: Tensor, z0: Tensor | None = None,
                  chunk: int = 4096, box: int = 1) -> tuple[Tensor, Tensor]:
    return origin.origin_affine(decoder, rule, coords, z0, chunk, Observation(box))
