import numpy as np
import pytest
import torch

from inr_gon.models.render import (
    MIN_POINTS,
    axis,
    bytes_per_point,
    decode_chunked,
    grid,
    grid3d,
    render_images,
)
from inr_gon.models.siren import Siren
from inr_gon.plots import image_grid, upscale_nearest


def test_pixel_centres():
    assert torch.allclose(axis(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    g = grid(2, 3)
    assert g.shape == (6, 2)
    assert torch.allclose(g[1], torch.tensor([-0.5, 0.0]))  # (y, x), row-major
    assert grid3d(3).shape == (27, 3)


@pytest.mark.parametrize("h,w", [(1, 1), (7, 13), (33, 5), (64, 48)])
def test_render_shapes_at_odd_sizes(h, w):
    torch.manual_seed(0)
    net = Siren(2, 4, 3, hidden=16, layers=2)
    out = render_images(net, torch.randn(2, 4), h, w)
    assert out.shape == (2, h, w, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


def test_chunking_does_not_change_values():
    torch.manual_seed(0)
    net = Siren(2, 4, 1, hidden=32, layers=3)
    z, coords = torch.randn(3, 4), grid(50, 70)
    sliced = decode_chunked(net, coords, z, max_memory=3 * MIN_POINTS * bytes_per_point(net))
    one_by_one = decode_chunked(net, coords, z, max_memory=1)  # 1 latent, 1024 points a call
    whole = decode_chunked(net, coords, z, max_memory=2**30)
    with torch.no_grad():
        direct = net(coords, z)
    assert torch.equal(sliced, whole)  # slices of points: the same arithmetic, bit for bit
    assert torch.allclose(one_by_one, whole, atol=1e-6)  # fewer rows per matmul: last bits may move
    assert torch.allclose(whole, direct, atol=1e-6)


@pytest.mark.parametrize("grid_cells,modulation", [(0, "first"), (4, "all")])
def test_any_number_of_latents_decodes_within_max_memory(grid_cells, modulation):
    """Issue 22 item 6: 1,000 grid latents once took 8.9 GB at 512 MiB, the chunks floored at
    1,024 points per latent. Every decoder call now holds at most max_memory of activations
    (latents x points x bytes_per_point), whatever the number of latents."""
    torch.manual_seed(0)
    net = Siren(2, 4, 3, hidden=16, layers=3, modulation=modulation, latent_grid=grid_cells)
    z, coords = torch.randn(1000, net.latent_size) * 0.1, grid(32, 32)
    calls = []
    real = net.forward

    def counted(c, zz):
        calls.append((zz.shape[0], c.shape[0]))
        return real(c, zz)

    net.forward = counted
    budget = 2**20  # 1 MiB: 1,000 latents x 1,024 points would need 64 (or 112) MiB
    out = decode_chunked(net, coords, z, max_memory=budget)
    assert max(b * n for b, n in calls) * bytes_per_point(net) <= budget
    assert sum(b * n for b, n in calls) == 1000 * 1024  # every (latent, point) once
    assert bytes_per_point(net) == 4 * 16 * (4 + (3 if grid_cells else 0))
    with torch.no_grad():
        assert torch.allclose(out[:5], real(coords, z[:5]), atol=1e-5)


def test_image_grid_layout():
    imgs = np.zeros((5, 4, 6, 3), np.float32)
    g = image_grid(imgs, cols=3, pad=1)
    assert g.shape == (2 * 5 + 1, 3 * 7 + 1, 3)


def test_nearest_upscale_replicates_pixels_at_any_factor():
    imgs = np.random.default_rng(0).random((2, 8, 6, 3))
    assert np.array_equal(upscale_nearest(imgs, 4), imgs.repeat(4, 1).repeat(4, 2))
    up = upscale_nearest(imgs, 3.75)  # 8 -> 30, 6 -> 22 (22.5 rounds to even)
    assert up.shape == (2, 30, 22, 3)
    # each output pixel copies the input pixel its centre lies in
    assert np.array_equal(up[:, 29, 21], imgs[:, 7, 5]) and np.array_equal(up[:, 3, 4], imgs[:, 0, 1])


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (64, 48), (1000, 777)])
def test_lazy_grid_slices_equal_the_full_grid(h, w):
    from inr_gon.models.render import LazyGrid

    full, lazy = grid(h, w), LazyGrid(h, w)
    assert lazy.shape == tuple(full.shape)
    assert torch.equal(lazy[0:h * w], full)
    assert torch.equal(lazy[3:h * w - 2], full[3:h * w - 2])  # bit for bit, any slice


def test_png_quantisation_in_blocks_equals_the_whole_image():
    from inr_gon.io import to_uint8

    x = np.random.default_rng(0).random((517, 300, 3)).astype(np.float32) * 1.2 - 0.1
    x[5, 7, 1] = np.nan  # written as black
    whole = (np.clip(np.nan_to_num(x, nan=0.0), 0, 1) * 255.0 + 0.5).astype(np.uint8)
    assert np.array_equal(to_uint8(x, rows=64), whole) and to_uint8(x)[5, 7, 1] == 0
