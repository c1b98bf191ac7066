"""Named recipes for `inr-gon train --preset NAME`: flat config values, one dict each.

Precedence when training: field defaults < FOLDER_DEFAULTS (images: a folder or an array; meshes) <
preset < `--config FILE` < explicit flags (and DATA).
Add a recipe by adding an entry; its values are checked like any config (config.py).
"""

from __future__ import annotations

from typing import Any

# What `train` starts from on a folder of images or an image array, or a folder of meshes, under
# --preset, --config and flags (cli/options.folder_defaults: as far as the other flags allow):
# the configurations that measured best here. Images (benchmarks/results/quality.md, CIFAR-10,
# 1,000 held out, 200 steps, batch 32, 1,024 latent values, one pass): every layer modulated by a
# 4x4 grid of 64-vectors with the Gauss-Newton step, 26.7 dB held-out, against 18.7 for the
# paper's GON, 23.0 for the functa recipe and 15.7 for the autoencoder, at 1.25x the paper's step.
# Meshes (benchmarks/results/shapes.md: 13 real meshes, 3 held out by seed, one thread): every
# layer modulated by a latent grid of 16-vectors, the Gauss-Newton step solved by conjugate
# gradients. At 2,000 steps with a 4^3 grid: held-out IoU after one step 0.73 against 0.41 with
# the gradient step, 0.82 against 0.76 after 100 refine steps, at 1.2x the gradient step (dense
# Gauss-Newton: 7.3x). lr 5e-4, not 1e-3: held for thousands of steps, 1e-3 made training
# collapse (0.002 -> 0.022 at step ~1,450 of 8,000; results/shapes/cg_stability/ has the probes)
# where 5e-4 trained on. A 6^3 grid (3,456 values) in the same training time as the 4^3 one
# (4,000 steps against 8,000, ~27 minutes): held-out IoU 0.84 against 0.72 after one step,
# 0.91 against 0.87 after 300 refine steps; training meshes 0.917 against 0.931. New shapes are
# what a latent space is for, so 6. The size is the one measured there (3 x 128, w0 10, batch
# 8 x 1,024). Four fifths of the SDF points near the surface (sdf_uniform 0.2, not the field's
# 0.8, which a single gradient-step latent needs; datasets/sampling.py), same 4,000 steps:
# training meshes 0.950 against 0.917, held out 0.846 / 0.922 against 0.842 / 0.914 after one
# / 300 refine steps (0.5: 0.938, 0.821 / 0.931; 0.1: 0.950, 0.841 / 0.929; docs/shapes.md).
# `--preset paper`: the paper's. Speed (issue 22, quality_clock_levers5*.md: the
# same 5 idle minutes on the 2-core VM, 500 held out): images train in bf16 where native
# (precision auto; the first phase and the step stay float32) on half the pixels a step
# (folder_defaults), 30.08 dB against 28.57 with neither, at 2.45x the steps a second. lr 3e-4
# for images, not the paper's 1e-4 (the field default): held out after 2,000 / 6,500 equal steps
# (6,500: the idle 20 minutes) +0.96 / +0.20 dB against 1e-4; 5e-4 fell behind 3e-4 and 1e-3
# diverged (docs/quality.md, "Learning rate"). The GON's step only: baselines and
# --variational keep 1e-4 (cli/options.folder_defaults).
# The same 1,024 values as an 8x8 grid of 16 (not 4x4 of 64), same step time: 34.23 dB held out
# against 31.78 after the time of 2,000 steps (docs/quality.md, "Grid density").
# torch.compile of the image step (docs/quality.md, "Compiled"): 1.7x the steps a second on the
# 2-core VM after a one-off compile of ~45 s (cold cache), so it repays itself after ~500 steps
# (~2 minutes). Runs shorter than twice that stay eager (COMPILE_FROM_*, folder_values).
# grad_clip 2 for images: a 60-minute run of the default collapsed at step 3,725 (36.8 -> 11.9
# dB, never back); healthy steps stay under 1.43x the running mean (400 steps, every step's
# norm logged), so 2x binds on spikes only (training/step.NormClip; docs/quality.md).
HALF = "half"  # points_per_signal: half the training size's pixels (folder_values)
# The image grid before the 8x8 of 16 (docs/quality.md, "Grid density"), which was measured for
# the Gauss-Newton GON only: --variational and the baselines keep this one, as measured, and so
# do images under 16 px a side (2 pixels a cell at least).
COARSE_GRID = dict(latent_grid=4, latent_dim=64)
# --variational on images: the Gauss-Newton step's Laplace posterior (models/laplace.py) with
# the SIREN rule's latent scale (latent_init 1: a unit latent moves phases by O(1) rad), since
# the posterior's noise reaches the prior's unit variance where the data say little. CIFAR-10,
# 150 steps, one thread (docs/quality.md, "Variational"): 20.4 dB held out, against 5.9 at
# step 75 with the deterministic GON's latent_init 5 (not learning) and 12.6 for the paper's step.
# prior_length 2 (a Matern field over the 8x8 grid's cells, laplace.grid_prior) against N(0, I):
# 1,500 steps, CIFAR-10 held out, 21.10 against 20.48 dB, HOG FD of 1,000 prior draws 0.52
# against 0.60, whole compositions instead of patchworks (docs/quality.md, "A prior over the
# grid's cells"); pixel FD 3.91 against 3.47 (some draws saturate).
VARIATIONAL_IMAGE = dict(latent_init=1.0, prior_length=2.0)
COMPILE_FROM_STEPS, COMPILE_FROM_SECONDS = 1000, 240
# Images at lr 3e-4 broke in both 60-minute runs, at lr ~2.8e-4 after 3,700 and 5,600 steps; the
# 20-minute runs (<= 10,900 steps) had decayed to ~1.7e-4 by then and stayed stable. Longer
# schedules start at LONG_LR (docs/quality.md, "A 60-minute run that collapsed").
LONG_FROM_STEPS, LONG_FROM_SECONDS, LONG_LR = 12_000, 1200, 1.5e-4
FOLDER_DEFAULTS: dict[str, dict[str, Any]] = {
    "image": dict(modulation="all", latent_grid=8, latent_dim=16, origin_step="gauss-newton",
                  precision="auto", points_per_signal=HALF, lr=3e-4, compile=True, grad_clip=2.0),
    "sdf": dict(modulation="all", latent_grid=6, latent_dim=16, origin_step="gauss-newton-cg",
                hidden=128, layers=3, w0=10.0, batch_size=8, sdf_points=1024, lr=5e-4,
                lr_min_ratio=0.1, sdf_uniform=0.2),
}


def folder_values(kind: str, height: int, width: int, steps: int,
                  budget_seconds: float = 0.0) -> dict[str, Any]:
    """FOLDER_DEFAULTS[kind] for a height x width training size (HALF resolved) and a run of
    that many steps and time budget (0 = none): compile only where it repays itself twice over
    (COMPILE_FROM_*), images' lr lower for schedules longer than 20 minutes (LONG_*)."""
    out = dict(FOLDER_DEFAULTS[kind])
    if out.get("points_per_signal") == HALF:
        out["points_per_signal"] = height * width // 2
    long_run = steps >= COMPILE_FROM_STEPS and (budget_seconds == 0 or budget_seconds >= COMPILE_FROM_SECONDS)
    if out.get("compile") and not long_run:
        out.pop("compile")
    longer = steps > LONG_FROM_STEPS and (budget_seconds == 0 or budget_seconds > LONG_FROM_SECONDS)
    if kind == "image" and longer:
        out["lr"] = LONG_LR
    return out


PAPER_LATENT = dict(modulation="first", latent_grid=0, origin_step="gradient")

PRESETS: dict[str, dict[str, Any]] = {
    # `inr-gon demo`. Tuned on the built-in shapes (measured, see the README): w0 = 10 suits
    # 32 px signals (w0 = 30 left high-frequency noise in 4x renders); 4096 items instead of
    # 512 closed most of the held-out gap. The image recipe (every layer modulated by a 4x4 grid
    # of 64, one Gauss-Newton step, half the pixels a step; float32, so the README's figures
    # hold on every CPU): held-out 30.07 dB at 900 steps in 142 s on the 2-core VM, against
    # 27.74 dB for the paper's latent with two gradient steps (issue 22 item 8).
    "demo": dict(
        data="builtin:shapes:4096", height=32, width=32, hidden=128, layers=3, latent_dim=64,
        w0=10.0, inner_steps=1, steps=900, batch_size=32, lr=1e-3, lr_min_ratio=0.05,
        val_fraction=0.1, preview_every=300, checkpoint_every=300, log_every=25,
        modulation="all", latent_grid=4, origin_step="gauss-newton", points_per_signal=512,
    ),
    # `inr-gon demo --shapes`. w0 10: SDFs of these shapes are smoother than photos; it beat 30
    # in short runs here. 256 shapes, 8 held out: with 36 training shapes the held-out IoU was
    # 0.41 (train-set overfitting); with 248 it was 0.74, same steps.
    "shapes": dict(
        data="builtin:shapes3d:256", hidden=128, layers=3, latent_dim=32, w0=10.0, steps=600,
        batch_size=8, sdf_points=1024, sdf_samples=20_000, lr=1e-3, lr_min_ratio=0.1,
        val_fraction=8 / 256, preview_every=300, checkpoint_every=300, log_every=20, **PAPER_LATENT,
    ),
    # Super-resolution (issue 23): --model local, one 16-vector per input pixel found by a
    # Gauss-Newton step from the origin and two chord steps against the box-averaged input, a
    # 3 x 128 GELU decoder reading each output point's 4 x 4 neighbourhood of codes and of the
    # input's pixels, added to bicubic of the input (each measured to win at equal steps: the
    # pixels, benchmarks/superres_levers.py, +0.09 / +0.26 / +0.07 dB on CIFAR-10 4x / 2x and
    # Kodak 4x after 1,000 steps); trained on views downsampled 2x and 4x,
    # scored at full size (docs/superres.md has the measurement). Give it DATA: images of at
    # least the training size (photos with --crops --size 48 --observe-scales 2,3,4).
    # precision auto: bf16 autocast where native (the step's algebra stays float32), measured
    # 1.89x the steps a second on the 2-core VM and the same held-out figures at 300 steps.
    # image_loss l1 (EDSR's and LIIF's): +0.04 / +0.10 / +0.11 dB on CIFAR-10 4x / 2x and
    # Kodak 4x over the squared error at 2,000 equal steps (superres_levers.py).
    # inner_steps 3 (two chord steps after the Gauss-Newton step, each a decode deeper): after
    # 1,000 steps it is ahead of 2 inner steps after 2,000 on all three (+0.57 / +0.98 / +0.43
    # against +0.56 / +0.97 / +0.39), for 1.35x the time a step (superres_cnn.py steptime).
    # local_window wide (an 8 x 8 window beside the 4 x 4 one): +0.05 / +0.06 / +0.09 dB at
    # 1,000 equal steps for 1.18x the time a step; the 16 x 16 pyramid adds nothing more.
    "superres": dict(
        model="local", latent_dim=16, hidden=128, layers=3, observe_scales="2,4", steps=4000,
        inner_steps=3, local_base="bicubic", local_pixels=True, local_window="wide",
        precision="auto", image_loss="l1",
        batch_size=32, lr=1e-3, lr_min_ratio=0.1, val_fraction=0.1, preview_every=500,
        checkpoint_every=500, log_every=25, **PAPER_LATENT,
    ),
    # The paper's implicit GON on 28 x 28 images (Bond-Taylor & Willcocks 2021): SIREN 4 x 256,
    # w0 30, latent 32, batch 64, Adam 1e-4 (benchmarks/train_reference.py).
    "paper": dict(
        height=28, width=28, hidden=256, layers=4, w0=30.0, w0_hidden=30.0, latent_dim=32,
        batch_size=64, lr=1e-4, val_fraction=0.1, **PAPER_LATENT,
    ),
}
# The demo's 4x (demos/images.py): the superres recipe on the demo's own shapes drawn at 64 px,
# views box-downsampled 4x, the demo's split (same count, fraction and seed: nothing it scores
# is trained on). The 32 px held-out inputs are then rendered at 128 px with the cell of 4x.
# Measured beside bicubic in the README's demo figures.
PRESETS["demo_superres"] = {
    **PRESETS["superres"], "data": "builtin:shapes:4096", "height": 64, "width": 64,
    "observe_scales": "4", "batch_size": 16, "steps": 40, "val_fraction": 0.1,
    "precision": "fp32",  # the README's figures on every CPU, bf16 or not
    "image_loss": "mse",  # the README's figures were measured with it (l1 not run at 40 steps)
    "inner_steps": 2, "local_window": "quadratic",  # likewise (3, wide not run at 40 steps)
    "preview_every": 0, "checkpoint_every": 0, "log_every": 10,
}
