"""The local model's observation at any scale (models/local_geometry.py): area averages over
whatever output pixels an input pixel overlaps, the step taken through them, training on a
span of factors, and renders at fractional factors (inference/superres.py)."""

import numpy as np
import pytest
import torch
from cli_helpers import assert_input_error, run_cli

from inr_gon.datasets.resize import resize_image
from inr_gon.fields import scale_spans
from inr_gon.inference.superres import render_size, upscale_photo
from inr_gon.io import write_png
from inr_gon.models.local import LocalGON
from inr_gon.models.local_geometry import Geometry, area_downsample, area_matrix
from inr_gon.models.render import box_downsample
from inr_gon.run import load_run

TINY = ["--preset", "superres", "--size", "16", "--hidden", "16", "--layers", "2", "--latent-dim", "4",
        "--steps", "3", "--device", "cpu", "--preview-every", "0", "--quiet"]


@pytest.mark.parametrize("out_side, in_side", [(32, 8), (32, 11), (13, 5), (7, 7), (40, 13)])
def test_an_input_pixel_is_the_area_average_of_the_output_it_covers(out_side, in_side):
    a = area_matrix(out_side, in_side)  # [in, out]
    assert a.shape == (in_side, out_side) and (a >= 0).all()
    assert torch.allclose(a.sum(1), torch.ones(in_side, dtype=torch.float64))  # an average
    # every output pixel is shared out whole among the input pixels it overlaps
    assert torch.allclose(a.sum(0), torch.full((out_side,), in_side / out_side, dtype=torch.float64))


@pytest.mark.parametrize("big, small", [((32, 32), (11, 11)), ((33, 22), (9, 6)), ((24, 18), (8, 6))])
def test_area_downsample_is_the_data_loaders_area_resize(big, small):
    """The oracle: datasets/resize.py, written independently (prefix sums); the same aspect,
    so it crops nothing."""
    img = np.random.default_rng(0).random((*big, 3))
    got = area_downsample(torch.tensor(img, dtype=torch.float32)[None], small)[0].numpy()
    assert np.abs(got - resize_image(img, small)).max() < 1e-5


def test_a_whole_factor_is_the_box_average():
    img = torch.rand(2, 24, 16, 3)
    assert torch.allclose(area_downsample(img, (6, 4)), box_downsample(img, 4), atol=1e-6)
    geo = Geometry.of((24, 16), (6, 4))
    assert torch.allclose(geo.observe(img.flatten(1, 2)), box_downsample(img, 4).flatten(1, 2), atol=1e-6)


def test_the_dual_step_at_a_fractional_factor_is_the_damped_gauss_newton_step():
    """As the whole-factor oracle in test_local.py, with A the area average of 11 x 7 output
    pixels over 4 x 3 input pixels (2.75x and 2.33x), built densely from area_matrix."""
    torch.manual_seed(0)
    net = LocalGON(code_dim=5, hidden=16, layers=2, activation="gelu", basis="wide").double()
    geo = Geometry.of((11, 7), (4, 3), dtype=torch.float64, basis="wide")
    a = torch.kron(area_matrix(11, 4), area_matrix(7, 3))  # [12, 77]
    y = torch.rand(2, 12, 3, dtype=torch.float64)
    z, z2 = net.encode(geo, y), net.encode(geo, y, steps=2)

    def observed(flat):  # [M*C]
        return (a @ net.decoder(geo, flat.reshape(1, 12, 5))[0]).reshape(-1)

    zero = torch.zeros(60, dtype=torch.float64)
    aj, f0 = torch.autograd.functional.jacobian(observed, zero), observed(zero)
    h = (2 / 12) * aj.T @ aj
    lam = (torch.nn.functional.softplus(net.rho) + 1e-3) * h.diagonal().mean() + 1e-6
    damped = h + lam * torch.eye(60, dtype=torch.float64)
    for b in range(2):
        want = -torch.linalg.solve(damped, (2 / 12) * aj.T @ (f0 - y[b].reshape(-1)))
        assert torch.allclose(z[b].reshape(-1), want, rtol=1e-5, atol=1e-7)
        grad2 = (2 / 12) * aj.T @ (observed(want) - y[b].reshape(-1))
        assert torch.allclose(z2[b].reshape(-1), want - torch.linalg.solve(damped, grad2),
                              rtol=1e-5, atol=1e-7)


def test_a_geometry_of_chosen_points_decodes_as_the_whole_grid_does():
    torch.manual_seed(0)
    dec = LocalGON(code_dim=4, hidden=16, layers=2, activation="gelu", basis="wide").decoder
    whole = Geometry.of((17, 13), (6, 5), basis="wide")
    ys = (torch.arange(17, dtype=torch.float64) + 0.5) * 6 / 17
    xs = (torch.arange(13, dtype=torch.float64) + 0.5) * 5 / 13
    part = Geometry.at(ys[3:9], xs[2:], (6, 5), 5 / 13, basis="wide")
    z = torch.randn(2, 30, 4)
    with torch.no_grad():
        want = dec(whole, z).reshape(2, 17, 13, -1)[:, 3:9, 2:]
        assert torch.allclose(dec(part, z).reshape(2, 6, 11, -1), want, atol=1e-6)
    with pytest.raises(ValueError, match="no observation"):
        part.observe(torch.zeros(1, 66, 3))


def test_observe_scales_take_fractions_and_spans():
    assert scale_spans("2,4") == [(2, 2), (4, 4)]
    assert scale_spans("1-4, 2.5") == [(1, 4), (2.5, 2.5)]


def test_a_span_of_factors_trains_and_renders_any_factor_without_seams(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--inner-steps", "2",
                           "--observe-scales", "1-4", "--out", run)
    assert code == 0, err
    r = load_run(run)
    assert r.model.largest_scale == 4
    flat = np.full((40, 37, 3), 0.4, dtype=np.float32)  # several tiles, a fractional factor
    hw = render_size(2.5, None, flat.shape[:2])
    up = upscale_photo(r, flat, hw)
    assert up.shape == (100, 92, 3)  # 37 x 2.5 = 92.5, rounded to even
    inside = up[8:-8, 8:-8]  # each tile decodes at its own phase: a seam would be a jump
    assert np.abs(np.diff(inside, axis=0)).max() < 1e-2 and np.abs(np.diff(inside, axis=1)).max() < 1e-2
    assert r.upscale(flat[None, :16, :16], 2.5).shape == (1, 40, 40, 3)
    write_png(tmp_path / "p.png", flat)
    code, _, err = run_cli(capsys, "render", run, tmp_path / "p.png", "--scale", "2.5",
                           "--out", tmp_path / "o", "--quiet")
    assert code == 0, err


def test_a_gon_refuses_spans_and_fractions_in_one_line(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "builtin:shapes:48", "--size", "16", "--steps", "1",
                           "--observe-scales", "1-4", "--out", tmp_path / "run", "--quiet")
    assert_input_error(code, err, "--model local")
