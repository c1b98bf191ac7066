"""`inr-gon mesh`: a trained SDF run's shapes as mesh files, each with a PNG preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inr_gon.config import Config
from inr_gon.datasets import Sampling, load_shapes
from inr_gon.datasets.clouds import is_cloud_file, load_cloud_set
from inr_gon.datasets.meshes import to_original
from inr_gon.errors import InputError, warn
from inr_gon.inference.shape_metrics import components
from inr_gon.inference.shape_refine import SDF_REFINE_LR, shape_latents
from inr_gon.io import unique_names, write_png
from inr_gon.models.render import DEFAULT_MAX_MEMORY
from inr_gon.plots import image_grid
from inr_gon.progress import Progress
from inr_gon.shapes.mesh import FORMATS, export_mesh, extract_mesh, network_sdf, sdf_volume
from inr_gon.shapes.splat import render_mesh
from inr_gon.training.sdf import training_shapes


def shape_inputs(cfg: Config, inputs: list[str], quiet: bool = False):
    """Mesh files, folders, builtin specs or point-cloud files (datasets/clouds.py) ->
    (names, points [S, P, 3], sdf [S, P], centers [S, 3], scales [S]), sampled as the run's
    training data was (clouds: approximately, in the same groups)."""
    sampling = Sampling.from_config(cfg)
    sets = [load_cloud_set(spec, sampling) if is_cloud_file(spec)
            else load_shapes(spec, sampling, quiet) for spec in inputs]
    names = [n for s in sets for n in s.names]
    return (names, np.concatenate([s.points for s in sets]),
            np.concatenate([s.sdf for s in sets]), np.concatenate([s.centers for s in sets]),
            np.concatenate([s.scales for s in sets]))


def mesh_run(run, inputs: list[str], out_dir: Path, resolution: int = 256, fmt: str = "ply",
             original_frame: bool = False, n: int = 8, dense: bool = False,
             max_memory: int = DEFAULT_MAX_MEMORY, quiet: bool = False, refine_steps: int = 0,
             lr: float = SDF_REFINE_LR, latents: tuple[list[str], Tensor] | None = None,
             seconds: float | None = None) -> list[dict]:
    """`inr-gon mesh`: a mesh file and a PNG preview per input shape (or per training shape, or
    per saved latent: latents = (names, z [B, D]), e.g. from `fit --out`). Input latents come
    from the gradient-origin step and refine_steps more (shape_refine.shape_latents), within
    `seconds` of refinement if given."""
    run.require_shapes("`mesh`")
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if latents is not None:
        if inputs or original_frame or refine_steps:
            raise InputError("--latents meshes saved latents: give no INPUT, --original-frame "
                             "or --refine-steps with it")
        names, z = latents
        centers, scales = None, None
    else:
        names, points, sdf, centers, scales = (shape_inputs(run.cfg, inputs, quiet) if inputs
                                               else training_shapes(run.cfg, n, quiet))
        _, z = shape_latents(run.model, torch.from_numpy(points),
                             torch.from_numpy(sdf)[..., None], run.cfg.sdf.sdf_clamp,
                             refine_steps, lr, run.device, seconds=seconds)
    rows, previews = [], []
    with Progress(f"meshing at {resolution}^3", len(names), unit="shapes", quiet=quiet,
                  transient=True) as bar:
        for i, name in enumerate(unique_names([n.replace("/", "_") for n in names])):
            frame = (centers[i], float(scales[i])) if original_frame else None
            rows += _mesh_one(run, z[i], name, out_dir, resolution, fmt, dense, max_memory,
                              frame, previews)
            bar.update(advance=1)
    if len(previews) > 1:
        write_png(out_dir / "grid.png", image_grid(np.stack(previews)))
    return rows


def _mesh_one(run, z, name: str, out_dir: Path, resolution: int, fmt: str, dense: bool,
              max_memory: int, frame, previews: list) -> list[dict]:
    """One shape: marching cubes, its PNG preview (appended to previews) and its mesh file;
    frame: (center, scale) to put it back in its source file's frame, or None."""
    mesh = extract_mesh(sdf_volume(network_sdf(run.decoder, z.to(run.device), max_memory),
                                   resolution, dense))
    if mesh is None:
        warn(f"{name}: the network's SDF does not cross zero on the {resolution}^3 grid; "
             "no mesh written")
        return []
    previews.append(render_mesh(mesh, 256))
    write_png(out_dir / f"{name}.png", previews[-1])
    if frame is not None:
        mesh.vertices = to_original(mesh.vertices, *frame)
    export_mesh(mesh, out_dir / f"{name}.{fmt}", fmt)
    return [{"name": name, "file": str(out_dir / f"{name}.{fmt}"),
             "preview": str(out_dir / f"{name}.png"), "vertices": len(mesh.vertices),
             "faces": len(mesh.faces), "components": components(mesh),
             "watertight": bool(mesh.is_watertight)}]
