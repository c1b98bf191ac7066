"""The local model (models/local.py): one code per input pixel, a Gauss-Newton step from the
origin in its dual form, the LIIF-style decoder; `--preset superres` training, Run and the
tiled `render --scale` path (inference/superres.py)."""

import numpy as np
import pytest
import torch
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.inference.superres import upscale_photo
from inr_gon.io import write_png
from inr_gon.models.factory import build_model, check_config
from inr_gon.models.local import LocalGON
from inr_gon.models.local_geometry import BASES, Geometry, local_weights
from inr_gon.run import load_run

TINY = ["--preset", "superres", "--size", "16", "--hidden", "16", "--layers", "2", "--latent-dim", "4",
        "--steps", "3", "--device", "cpu", "--preview-every", "0", "--quiet"]


@pytest.mark.parametrize("basis, size", [("quadratic", 6), ("cubic", 16), ("wide", 9),
                                         ("wide_quadratic", 12), ("pyramid", 12)])
def test_window_weights_are_a_partition_of_unity_and_the_offsets_centred(basis, size):
    w = local_weights((12, 20), (3, 5), basis)  # [F, N, K]
    assert w.shape == (size, 240, 15)
    window = torch.tensor([p in ((0, 0), (5, 5), (8, 8)) for p in BASES[basis]])  # the windows alone
    assert torch.allclose(w[window].sum(-1), torch.ones(240), atol=1e-6)  # borders included
    assert w[~window].sum(-1).abs().max() < 1e-6  # a flat input adds nothing through them
    geo = Geometry.of((12, 20), (3, 5), basis=basis)
    z = torch.randn(2, 15, 4)
    want = torch.einsum("fnk,bkd->bnfd", w, z).flatten(-2)  # the dense 2D window
    assert torch.allclose(geo.mix(z), want, atol=1e-5)  # is the separable one


def test_the_cubic_basis_weighs_the_4x4_neighbours_any_way():
    """16 products of (1, t, t^2 - 1/3, t^3) per axis: at each output point they span every
    weighting of its 16 neighbours (LIIF's unfolding), so the weights have full rank there."""
    w = local_weights((8, 8), (4, 4), "cubic")  # [16, 64, 16], no border mirrors coincide at 2x
    point = w[:, 27]  # an output point inside: its 16 basis rows over the 16 input pixels
    assert torch.linalg.matrix_rank(point.double()) == 16


@pytest.mark.parametrize("basis", ["quadratic", "cubic", "wide"])
@pytest.mark.parametrize("homogeneous", [False, True])
def test_equal_codes_decode_to_a_flat_image_whatever_the_weights(basis, homogeneous):
    torch.manual_seed(0)
    net = LocalGON(code_dim=8, hidden=32, layers=3, activation="gelu", basis=basis,
                   homogeneous=homogeneous)
    geo = Geometry.of((32, 32), (8, 8), basis=basis)
    out = net.decoder(geo, torch.randn(2, 1, 8).expand(2, 64, 8))
    assert (out - out[:, :1]).abs().max() < 1e-5


@pytest.mark.parametrize("basis, homogeneous", [("quadratic", False), ("cubic", True), ("wide", False)])
def test_the_dual_step_is_the_damped_gauss_newton_step(basis, homogeneous):
    """Oracle: H = (2/M) (AJ)^T (AJ) built densely by autograd, z = -(H + lambda I)^-1 g. With
    the homogeneous decoder too: its Jacobian at the origin is the MLP's."""
    torch.manual_seed(0)
    net = LocalGON(code_dim=5, hidden=16, layers=2, activation="gelu", basis=basis,
                   homogeneous=homogeneous).double()
    geo = Geometry.of((12, 8), (3, 2), dtype=torch.float64, basis=basis)
    y = torch.rand(3, 6, 3, dtype=torch.float64)
    z = net.encode(geo, y)  # [B, 6, 5]

    def observed(flat):  # the box average of the decoder's output: [M*C]
        f = net.decoder(geo, flat.reshape(1, 6, 5))[0].reshape(3, 4, 2, 4, 3)
        return f.mean((1, 3)).reshape(-1)

    zero = torch.zeros(30, dtype=torch.float64)
    aj, f0 = torch.autograd.functional.jacobian(observed, zero), observed(zero)
    h = (2 / 6) * aj.T @ aj
    lam = (torch.nn.functional.softplus(net.rho) + 1e-3) * h.diagonal().mean() + 1e-6
    damped = h + lam * torch.eye(30, dtype=torch.float64)
    z2 = net.encode(geo, y, steps=2)
    for b in range(3):
        grad = (2 / 6) * aj.T @ (f0 - y[b].reshape(-1))
        want = -torch.linalg.solve(damped, grad)
        assert torch.allclose(z[b].reshape(-1), want, rtol=1e-5, atol=1e-7)
        # the chord step: the residual after decoding, the origin's Jacobian and damping again
        grad2 = (2 / 6) * aj.T @ (observed(want) - y[b].reshape(-1))
        want2 = want - torch.linalg.solve(damped, grad2)
        assert torch.allclose(z2[b].reshape(-1), want2, rtol=1e-5, atol=1e-7)


def test_the_homogeneous_decoder_scales_with_the_contrast_of_the_codes():
    """Away from the origin the output's departure from f0 is homogeneous of degree 1 in the
    codes (an edge at any contrast gets one shape); the plain decoder's is not."""
    torch.manual_seed(0)
    geo = Geometry.of((16, 16), (4, 4))
    z = torch.randn(1, 16, 6)
    for homogeneous, want in ((True, True), (False, False)):
        dec = LocalGON(code_dim=6, hidden=32, layers=3, activation="gelu",
                       homogeneous=homogeneous).decoder
        f0, _ = dec.origin_jacobian(geo)
        with torch.no_grad():
            one, three = dec(geo, z) - f0, dec(geo, 3 * z) - f0
        assert torch.allclose(three, 3 * one, rtol=1e-3, atol=1e-4) == want


def test_a_conditioned_decoder_starts_as_the_plain_one_and_keeps_flat_inputs_flat():
    """The pixel pathway is zero at first (the same output as without it); trained, the step
    starts from what the decoder makes of z = 0 with the input's pixels, and a flat input
    still comes back flat."""
    torch.manual_seed(0)
    plain = LocalGON(code_dim=4, hidden=16, layers=2, activation="gelu", residual=True)
    cond = LocalGON(code_dim=4, hidden=16, layers=2, activation="gelu", residual=True,
                    conditioned=True)
    cond.load_state_dict({**plain.state_dict(), "decoder.pixels": cond.decoder.pixels}, strict=True)
    geo = Geometry.of((24, 24), (6, 6))
    y = torch.rand(2, 36, 3)
    with torch.no_grad():
        assert torch.allclose(cond(geo, y, 2), plain(geo, y, 2), atol=1e-6)
        cond.decoder.pixels.normal_()
        flat = torch.full((1, 576, 3), 0.6)  # away from the borders, as the plain model
        out = cond(Geometry.of((96, 96), (24, 24)), flat, 2).reshape(96, 96, 3)
        assert (out[32:64, 32:64] - out[48, 48]).abs().max() < 1 / 255
        assert not torch.allclose(cond(geo, y, 2), plain(geo, y, 2), atol=1e-3)


def test_under_bf16_autocast_the_step_and_the_base_stay_float32():
    """`--precision bf16`: the MLP's matmuls in bfloat16, but the step's factor is the float32
    one bit for bit, the output float32, and the result within bf16's error of float32's;
    training through it gives float32 gradients."""
    torch.manual_seed(0)
    net = LocalGON(code_dim=4, hidden=32, layers=3, activation="gelu", residual=True,
                   conditioned=True)
    torch.nn.init.normal_(net.decoder.pixels, std=0.1)
    geo = Geometry.of((32, 32), (8, 8))
    y = torch.rand(2, 64, 3)
    with torch.no_grad():
        exact = net.origin(geo)
        want = net(geo, y, 2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = net.origin(geo)
            got = net(geo, y, 2)
    assert all(a.dtype == torch.float32 and torch.equal(a, b) for a, b in zip(fast, exact))
    assert got.dtype == torch.float32
    err = (got - want).abs()
    assert 0 < err.max() < 0.02 and err.mean() < 2e-3  # bf16 did run, and only the MLP
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(geo, y, 2).pow(2).mean().backward()
    assert all(p.grad.dtype == torch.float32 and p.grad.isfinite().all()
               for p in net.parameters() if p.grad is not None)


def test_inference_keeps_the_factorisation_until_a_parameter_changes(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--out", run)[0] == 0
    model = load_run(run).model
    x = torch.rand(2, 4, 4, 3)
    with torch.no_grad():
        first = model.encode_images(x, (16, 16))
        assert len(model._origins) == 1 and torch.equal(model.encode_images(x, (16, 16)), first)
        model.net.rho.add_(1.0)  # a changed parameter (as after a load or a step) rebuilds it
        changed = model.encode_images(x, (16, 16))
    assert torch.allclose(changed, model.encode_images(x, (16, 16)), atol=1e-6)  # autograd: fresh
    assert not torch.allclose(changed, first)


def test_the_bicubic_base_interpolates_and_a_flat_input_still_decodes_flat():
    torch.manual_seed(0)
    y = torch.rand(2, 30, 3)
    assert torch.allclose(Geometry.of((5, 6), (5, 6)).interp(y), y, atol=1e-6)  # at 1x: itself
    net = LocalGON(code_dim=4, hidden=16, layers=2, activation="gelu", residual=True)
    geo = Geometry.of((96, 96), (24, 24))
    flat = torch.full((1, 576, 3), 0.3)
    with torch.no_grad():
        z = net.encode(geo, flat, steps=2)
        out = net.decoder(geo, z).reshape(96, 96, 3)
    assert z.shape == (1, 576, 4 + 3) and torch.equal(z[..., 4:], flat)
    # no speckle, with the base too: flat away from the borders (where mirroring bends the
    # step's system), as the model without a base
    assert (out[32:64, 32:64] - out[48, 48]).abs().max() < 1 / 255  # below one 8-bit level
    # the base is bicubic of the input: codes of 0 give bicubic + the origin's value
    geo = Geometry.of((20, 24), (5, 6))
    zero = torch.cat([torch.zeros(2, 30, 4), y], -1)
    f0, _ = net.decoder.origin_jacobian(geo)
    assert torch.allclose(net.decoder(geo, zero), geo.interp(y) + f0, atol=1e-5)


def test_a_window_of_the_render_is_that_block_of_the_whole_render():
    torch.manual_seed(0)
    net = LocalGON(code_dim=4, hidden=16, layers=2, activation="gelu")
    geo = Geometry.of((20, 24), (5, 6))
    z = torch.randn(1, 30, 4)
    whole = net.decoder(geo, z).reshape(1, 20, 24, 3)
    block = net.decoder(geo.window(slice(3, 11), slice(5, 19)), z).reshape(1, 8, 14, 3)
    assert torch.allclose(block, whole[:, 3:11, 5:19], atol=1e-6)


def test_preset_superres_trains_and_renders_through_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--out", run)
    assert code == 0, err
    r = load_run(run)
    small = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    z = r.encode(small)  # a 4x4 input into a 16x16 run: encoded for 4x
    assert tuple(z.shape) == (2, 4, 4, 4 + 3)  # 4-vector codes and the pixels (bicubic base)
    big = r.render(z, (16, 20))
    assert big.shape == (2, 16, 20, 3) and big.min() >= 0 and big.max() <= 1
    with pytest.raises(Exception, match="code grids"):
        r.render(torch.zeros(2, 64), (16, 16))


def test_render_scale_tiles_a_photo_without_seams(tmp_path, capsys):
    # 2 inner steps: the chord steps of a 3-step untrained model drift (their Jacobian is the
    # origin's), which would show here as tiles that disagree, not as a seam of the blend
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--inner-steps", "2",
                   "--out", run)[0] == 0
    r = load_run(run)
    flat = np.full((40, 37, 3), 0.4, dtype=np.float32)  # several tiles (16 + overlap 4)
    up = upscale_photo(r, flat, (120, 111))
    assert up.shape == (120, 111, 3)
    # a constant photo: every tile sees the same values, so a seam would show as a jump inside
    # (the photo's own border is the model's answer there, and mirrored in every tile)
    inside = up[9:-9, 9:-9]
    assert np.abs(np.diff(inside, axis=0)).max() < 1e-2 and np.abs(np.diff(inside, axis=1)).max() < 1e-2
    ramp = np.linspace(0, 1, 40 * 37 * 3, dtype=np.float32).reshape(40, 37, 3)
    write_png(tmp_path / "p.png", ramp)
    code, _, err = run_cli(capsys, "render", run, tmp_path / "p.png", "--scale", "2",
                           "--out", tmp_path / "o", "--quiet")
    assert code == 0, err
    from imageio.v3 import imread
    assert imread(tmp_path / "o/p.png").shape == (80, 74, 3)


@pytest.mark.parametrize("args, words", [(["--scale", "0"], "--scale"),
                                         (["--scale", "0.5"], "factor 1 to 16"),
                                         (["--size", "10x40"], "factor 1 to 16 per side"),
                                         (["--size", "50x40"], "keeps the aspect ratio"),
                                         (["--size", "340x340"], "1 to 16"),  # 17x
                                         (["--size", "20000x20000"], "limit of 16384")])
def test_bad_scales_are_one_line_and_exit_2(tmp_path, capsys, args, words):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--out", run)[0] == 0
    write_png(tmp_path / "p.png", np.zeros((20, 20, 3), dtype=np.float32))
    code, _, err = run_cli(capsys, "render", run, tmp_path / "p.png", *args, "--out", tmp_path / "o")
    assert_input_error(code, err, words)


@pytest.mark.parametrize("command", [["sample", "-n", "2"], ["interpolate", "A", "A"],
                                     ["fit", "A", "--refine-steps", "2"]])
def test_commands_of_a_latent_space_refuse_a_local_run_in_one_line(tmp_path, capsys, command):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--out", run)[0] == 0
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), dtype=np.float32))
    args = [str(tmp_path / "a.png") if a == "A" else a for a in command]
    out = tmp_path / ("o.gif" if command[0] == "interpolate" else "o.safetensors")
    code, _, err = run_cli(capsys, args[0], run, *args[1:], "--out", out)
    assert_input_error(code, err, "local run", "--scale")


def test_local_pixels_needs_the_bicubic_base(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--local-base", "none",
                           "--local-pixels", "--out", tmp_path / "run")
    assert_input_error(code, err, "--local-pixels", "--local-base bicubic")


def test_a_run_reading_the_pixels_trains_renders_and_reloads(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "builtin:shapes:48", *TINY, "--local-pixels", "--out", run)[0] == 0
    r = load_run(run)
    assert r.model.decoder.pixels is not None and r.cfg.net.local_pixels
    small = np.random.default_rng(0).random((1, 4, 4, 3)).astype(np.float32)
    big = r.render(r.encode(small), (16, 16))
    assert big.shape == (1, 16, 16, 3) and np.isfinite(big).all()


@pytest.mark.parametrize("model", ["local", "gon"])
def test_image_loss_l1_trains_on_the_mean_absolute_error_and_still_reports_the_mse(model):
    """`--image-loss l1`: the loss back-propagated is mean |pred - truth| (what EDSR and LIIF
    train with); the step's "mse" stays the squared error that PSNR is read from."""
    extra = (dict(model="local", local_base="bicubic", observe_scales="2", latent_dim=4)
             if model == "local" else dict(latent_dim=4))
    x = torch.rand(2, 8 * 8, 3)
    coords = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, 8)] * 2, indexing="ij"), -1).reshape(-1, 2)
    outs = {}
    for loss in ("mse", "l1"):
        cfg = Config.of(data="builtin:shapes", height=8, width=8, hidden=16, layers=2, image_loss=loss,
                        **extra)
        torch.manual_seed(0)
        outs[loss] = build_model(check_config(cfg))(coords, x)
    pred = outs["l1"]["pred"].detach()
    assert torch.allclose(outs["l1"]["mse"], outs["mse"]["mse"])  # same weights, same prediction
    assert torch.allclose(outs["l1"]["loss"], (pred - x).abs().mean())  # one view: exactly
    assert torch.allclose(outs["mse"]["loss"], (pred - x).pow(2).mean())
    assert not torch.allclose(outs["l1"]["loss"], outs["mse"]["loss"])
