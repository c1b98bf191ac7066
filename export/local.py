"""ONNX form of a `local` run's decoder (models/local.py), its check against torch, and the
decode function `render RUN photo.png --scale S --backend onnx` hands the model.

The graph is the decoder's own forward traced with a Geometry made of its inputs: codes
[B, h*w, d], the window's axis factors fy [3, H, h] and fx [3, W, w], and the cell size [1]
-> values [B, H*W, C], every axis but the basis and channels dynamic. The encoder stays in
torch: its Gauss-Newton step solves a linear system (a Cholesky factor of a gram that depends
only on the parameters and the geometry), which ONNX has no operator for; the chord steps'
decodes and the final render go through the graph.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.export.check import TOL, Check, Items, diff
from inr_gon.export.onnx import trace
from inr_gon.export.runtime import decoder_session
from inr_gon.models.local import LocalDecoder
from inr_gon.models.local_geometry import Geometry
from inr_gon.models.render import DEFAULT_MAX_MEMORY

INPUTS = ["codes", "fy", "fx", "cell"]
NO_FP16 = "--fp16: a local run's decoder is exported in float32 only (leave out --fp16)"


class LocalDecoderGraph(nn.Module):
    """(codes, fy, fx, cell) -> values: LocalDecoder.forward on the Geometry they make."""

    def __init__(self, dec: LocalDecoder) -> None:
        super().__init__()
        self.dec = dec

    def forward(self, codes: Tensor, fy: Tensor, fx: Tensor, cell: Tensor) -> Tensor:
        return self.dec(Geometry(fy, fx, cell, (fy.shape[2], fx.shape[2]), self.dec.basis), codes)


def local_decoder_proto(dec: LocalDecoder) -> onnx.ModelProto:
    """The graph of a local decoder, traced on a small geometry; B, H, W, h, w dynamic."""
    geo = Geometry.of((7, 9), (3, 4), basis=dec.basis)
    args = (torch.randn(2, 12, dec.latent_dim), geo.fy, geo.fx, torch.tensor([geo.cell]))
    graph = LocalDecoderGraph(dec).float().requires_grad_(False)
    return trace(graph, args, INPUTS, "values",
                 {"codes": {0: "batch", 1: "codes"}, "fy": {1: "height", 2: "in_height"},
                  "fx": {1: "width", 2: "in_width"}, "values": {0: "batch", 1: "points"}})


def local_feeds(geo: Geometry, codes: Tensor) -> dict[str, np.ndarray]:
    """The graph's inputs for codes [B, h*w, d] read through `geo`."""
    def host(t: Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    return {"codes": host(codes), "fy": host(geo.fy), "fx": host(geo.fx),
            "cell": np.array([geo.cell], np.float32)}


@torch.no_grad()
def check_local_decoder(run_session, model, cfg: Config, items: Items | None, name: str) -> list[Check]:
    """run_session(feeds) -> values against the torch decoder of `model` (LocalSR, float32 on
    the CPU): random codes on a random geometry (a block of it, as a tile's render reads), and
    the codes of a few training items rendered at the training size."""
    g = torch.Generator().manual_seed(0)
    z = model.encode(items.coords, items.values) if items is not None else None
    scale = float(z.std()) if z is not None and z.numel() > 1 else 1.0
    geo = model.geometry((23, 17), (6, 5)).window(slice(3, 21), slice(1, 16))
    codes = torch.randn(3, 30, model.decoder.latent_dim, generator=g) * scale
    cases = [("random codes and geometry", geo, codes)]
    if z is not None:
        geo = model.geometry(cfg.size, tuple(z.shape[1:3]))
        cases.append((f"{len(z)} training items", geo, z.flatten(1, 2)))
    checks = []
    for label, geo, codes in cases:
        d = diff(run_session(local_feeds(geo, codes)), model.decoder(geo, codes))
        checks.append(Check(name, label, "max |diff|", d, TOL, d <= TOL))
    return checks


def require_local_export(precision: str, with_encoder: bool) -> None:
    """What a local run's export cannot do, in one line each."""
    if precision != "fp32":
        raise InputError(f"--{precision}: a local run's decoder is exported in float32 only "
                         f"(leave out --{precision})")
    if with_encoder:
        raise InputError("--with-encoder: a local run's step solves a linear system, which ONNX has "
                         "no operator for (render --backend onnx keeps the step in torch)")


def onnx_local_decoder(run, path=None, tensorrt: bool = False, quiet: bool = False, fp16: bool = False):
    """RUN/decoder.onnx of a local run (or `path`) as the model's decode function:
    (Geometry, codes [B, h*w, d]) -> values [B, H*W, C], a torch tensor on the codes' device.
    The calls together decode at most DEFAULT_MAX_MEMORY of activations at a time:
    onnxruntime's arena keeps the largest call's memory for the session's life (a batch of 32
    tiles in one call: 2.6 GB peak RSS for a whole photo at 4x). On the CPU the tiles are
    split between concurrent one-thread calls, as `decode_points` splits points."""
    if fp16:
        raise InputError(NO_FP16)
    _, s = decoder_session(run, path, tensorrt, quiet, local=True)

    def decode(geo: Geometry, codes: Tensor) -> Tensor:
        per_item = geo.out_hw[0] * geo.out_hw[1] * run.model.point_bytes
        n = max(1, min(DEFAULT_MAX_MEMORY // (per_item * s.workers), -(-len(codes) // s.workers)))
        with ThreadPoolExecutor(s.workers) as pool:
            parts = list(pool.map(lambda i: s.run(local_feeds(geo, codes[i:i + n])),
                                  range(0, len(codes), n)))
        return torch.from_numpy(np.concatenate(parts)).to(codes.device)

    return decode
