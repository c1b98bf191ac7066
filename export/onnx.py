"""ONNX graphs of a run: the decoder, tracing, metadata, and single-file saving.

The exporter is torch's TorchScript-based one (`dynamo=False`): it ships with torch and needs no
onnxscript, and these graphs are straight chains of MatMul, Add, Sin and Cos that tracing
captures exactly. Every file carries the run's config, modality, coordinate convention and the
package version in its metadata; `export/info.read_info` refuses files without them.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from inr_gon import __version__
from inr_gon.config import Config
from inr_gon.export.info import FORMAT
from inr_gon.io import atomic_write
from inr_gon.models.siren import Siren

OPSET = 17
MAX_PROTO = 2**31 - 2**24  # protobuf's 2 GB limit, with room for the graph itself
COORDINATES = {
    "image": "pixel centres (2i + 1)/n - 1 in [-1, 1], [..., 2] as (y, x), row-major",
    "sdf": "points in [-1, 1]^3, [..., 3] as (x, y, z), meshes scaled into the unit sphere",
}


class DecoderGraph(nn.Module):
    """F(coords, latent) as the exported graph: coords [B or 1, N, d], latent [B, D] -> [B, N, C].

    w0 is folded into the weights, so each layer is one MatMul + Add + Sin, and the points are
    flattened to [B*N, H] so onnxruntime fuses each MatMul + Add into one Gemm. A latent grid
    is interpolated inside the graph (`Siren.interp_weights`: tent weights, then one MatMul per
    modulated layer). fp16 keeps the first layer, its sine and the latent shifts' arithmetic in
    float32: its phases reach tens of radians, where fp16 steps are ~1e-2 rad, and the
    coordinates of a 2048-pixel grid are closer than fp16 resolves near 1. Inputs and output
    stay float32 either way.
    """

    def __init__(self, dec: Siren, fp16: bool = False) -> None:
        super().__init__()
        self.dtype = torch.float16 if fp16 else torch.float32
        self.channels = dec.out.out_features  # a constant, so the output's last dim is static
        self.dec = copy.deepcopy(dec).float().requires_grad_(False)  # first layer and shifts

        def const(t: Tensor, scale: float = 1.0, dtype: torch.dtype = torch.float32) -> nn.Parameter:
            return nn.Parameter((t.detach().float() * scale).to(dtype).contiguous(), requires_grad=False)

        self.ws = nn.ParameterList(const(m.weight.T, dec.w0_hidden, self.dtype) for m in dec.hidden)
        self.bs = nn.ParameterList(const(m.bias, dec.w0_hidden, self.dtype) for m in dec.hidden)
        self.wo, self.bo = const(dec.out.weight.T, 1.0, self.dtype), const(dec.out.bias, 1.0, self.dtype)

    def forward(self, coords: Tensor, latent: Tensor) -> Tensor:
        weights = self.dec.interp_weights(coords, as_dense=True)  # MatMuls in the graph
        shifts = self.dec.shifts(weights, latent)  # [B, 1 or N, H] each
        pre = self.dec.base(coords) + shifts[0]  # [B, N, H]
        b, n = pre.shape[0], pre.shape[1]
        h = torch.sin(pre.flatten(0, 1)).to(self.dtype)  # [B*N, H]
        for k, (w, bias) in enumerate(zip(self.ws, self.bs)):
            pre = h @ w + bias
            if k + 1 < len(shifts):  # modulation all: [B, 1 or N, H] -> [B*N, H]
                pre = (pre.reshape(b, n, -1) + shifts[k + 1].to(self.dtype)).flatten(0, 1)
            h = torch.sin(pre)
        return (h @ self.wo + self.bo).float().reshape(b, n, self.channels)


def trace(module: nn.Module, args: tuple[Tensor, ...], inputs: list[str], output: str,
          axes: dict[str, dict[int, str]]) -> onnx.ModelProto:
    """A module -> ModelProto with dynamic axes; weights over 2 GB come back loaded in memory."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        path = os.path.join(tmp, "graph.onnx")
        torch.onnx.export(module.eval(), args, path, dynamo=False, opset_version=OPSET,
                          input_names=inputs, output_names=[output], dynamic_axes=axes,
                          do_constant_folding=True)
        return onnx.load(path)


def decoder_proto(decoder: Siren, fp16: bool = False) -> onnx.ModelProto:
    """coords [B or 1, N, d], latent [B, D] -> values [B, N, C]; B and N dynamic."""
    d, dz = decoder.coord.in_features, decoder.latent_size
    return trace(DecoderGraph(decoder, fp16), (torch.rand(2, 5, d), torch.randn(2, dz)),
                 ["coords", "latent"], "values",
                 {"coords": {0: "coords_batch", 1: "points"}, "latent": {0: "batch"},
                  "values": {0: "batch", 1: "points"}})


def add_metadata(model: onnx.ModelProto, kind: str, cfg: Config, precision: str,
                 extra: dict[str, str]) -> None:
    props = {"inr_gon.format": FORMAT, "inr_gon.kind": kind, "inr_gon.version": __version__,
             "inr_gon.config": cfg.to_json(), "inr_gon.modality": cfg.summary.modality,
             "inr_gon.coordinates": COORDINATES[cfg.summary.modality], "inr_gon.precision": precision,
             **extra}
    onnx.helper.set_model_props(model, props)
    model.producer_name, model.producer_version = "inr-gon", __version__
    model.doc_string = f"inr-gon {kind} of a {cfg.summary.modality} {cfg.net.model} run ({precision})"


def save_onnx(model: onnx.ModelProto, path: Path, limit: int = MAX_PROTO) -> list[Path]:
    """One self-contained file, written atomically; a model over `limit` bytes (protobuf's 2 GB
    ceiling) keeps its weights in a `.data` sidecar beside it. Returns the files written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if model.ByteSize() < limit:
        atomic_write(path, model.SerializeToString())
        return [path]
    data = path.with_name(path.name + ".data")
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / path.name
        onnx.save_model(model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        os.replace(Path(tmp) / data.name, data)  # weights first: the graph never names a missing file
        os.replace(staged, path)
    return [path, data]
