"""The options the commands share, declared once, as the config declares train's.

Each is a field (default, one-line doc, bounds) of CommandOptions, or of the config where the
run already has one (`--device`: train's own field); `shared(name)` is its Typer option, so
every command spells a shared option with the same flag, doc and default:

    device: str = shared("device")
    max_memory: int = shared("max_memory", "MiB one request may use")  # a command's own doc

These options are how a command runs, not what a run is: none is saved in a run's config.
Bounds and choices say what is valid; each command checks its values in its own words.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import typer
from rich.markup import escape

from inr_gon.config import FIELDS, knob
from inr_gon.inference.fit import REFINE_LR
from inr_gon.presets import PRESETS


@dataclass
class CommandOptions:
    """The commands' options beside --device: those that use a run (render, fit, eval, ...)
    share the first ones; the later ones belong to one or a few commands."""

    run: str = knob(..., "Run folder")  # the RUN argument
    quiet: bool = knob(False, "No progress output")
    json: bool = knob(False, "Print the figures as JSON")
    out: str = knob(None, "Output folder")  # each command names its own default place
    size: str = knob(None, "Output resolution S or WxH (default: training size)")
    max_memory: int = knob(512, "MiB of activations per decoder call", bounds="[1, 2**40]")
    refine_steps: int = knob(0, "Latent refine steps after the first", bounds="[0, 10**6]")
    time_budget: str = knob("0", "SDF runs: refine each call's shapes for at most this long, "
                            "e.g. 20s (0 = no limit; alone it lifts the --refine-steps cap)")
    backend: str = knob("torch", "torch | onnx (RUN/decoder.onnx, from `inr-gon export`)",
                        choices=("torch", "onnx"))
    whole: bool = knob(False, "Encode each photo whole, at its own resolution, as tiles of the "
                       "training size (default: resampled to the training size)")
    latents: str = knob(None, "Saved latents (`fit --out`, `sample`) instead of inputs")
    # Options of one or a few commands, declared here all the same; a command may set its own
    # default (`shared("count", default=16)`) and doc.
    count: int = knob(8, "How many items")
    scale: float = knob(None, "Whole photos: render at S x each photo's own size (implies "
                        "--whole; a local run: any factor 1 to 16, default its largest --observe-scales)")
    fp16: bool = knob(False, "With --backend onnx: RUN/decoder_fp16.onnx (`export --fp16`)")
    int8: bool = knob(False, "Int8 decoder for CPUs: the hidden layers' products quantised "
                      "(held to a 0.5 dB PSNR-drop bound), RUN/decoder_int8.onnx beside the fp32 "
                      "decoder.onnx, never replacing it; use it with --decoder")
    decoder: str = knob(None, "With --backend onnx: this exported decoder file")
    tensorrt: bool = knob(False, "With --backend onnx on CUDA: TensorRT first")
    split: str = knob("all", "all | train | val (val/train: the run's own data)",
                      choices=("all", "train", "val"))
    limit: int = knob(None, "At most this many items")
    refine_lr: float = knob(REFINE_LR, "Adam step size of the refine steps")
    resolution: int = knob(None, "Shapes: marching-cubes grid R (R^3 cells)")
    port: int = knob(8765, "TCP port (0: any free one)")
    host: str = knob("127.0.0.1", "Address to listen on; anything but loopback is reachable "
                     "from other machines (with the token)")
    items: int = knob(8, "Training and held-out items each in the gallery")
    with_encoder: bool = knob(False, "Also the gradient-origin encoder (general, and for the "
                              "training grid)")
    frames: int = knob(24, "Frames from A to B, both included")
    fps: float = knob(12.0, "Frames per second of the animation")
    format: str = knob("ply", "ply | obj | glb", choices=("ply", "obj", "glb"))
    original_frame: bool = knob(False, "Put meshes back in each source file's frame (position, "
                                "scale)")
    dense: bool = knob(False, "Evaluate every grid point (default: skip blocks far from the "
                       "surface, coarse to fine)")
    prior: str = knob("auto", "model (variational runs) | fitted | auto",
                      choices=("model", "fitted", "auto"))
    seed: int = knob(0, "Seed of the prior draws")
    shapes: bool = knob(False, "3D instead: train on builtin:shapes3d (SDF), mesh the held-out "
                        "shapes, report Chamfer / normal consistency / IoU")
    config: str = knob(None, "JSON or TOML file of config fields, flat or grouped in tables net, "
                       "dataset, train, sdf (a run's config.json reproduces the run); flags "
                       "override it")
    preset: str = knob(None, f"Named recipe: {' | '.join(PRESETS)} (inr_gon/presets.py); "
                       "--config and flags override it")
    resume: bool = knob(False, "Continue the run in --out from its checkpoint")


SHARED: dict[str, dataclasses.Field] = {
    "device": FIELDS["device"],  # train's field: one doc and default for every command
    **{f.name: f for f in dataclasses.fields(CommandOptions)},
}
ARGUMENTS = ("run",)
SHORT = {"count": "-n", "resolution": "-r"}  # the short spellings some options also have
_UNSET: Any = object()


def shared(name: str, doc: str | None = None, default: Any = _UNSET, **typer_kw: Any) -> Any:
    """The Typer option (or argument) of shared field `name`: `--name-with-dashes` (and its
    SHORT spelling), its default or `default`, and its doc or `doc` (where a command says
    more). Booleans are plain flags."""
    f = SHARED[name]
    text = escape(doc or f.metadata["help"])  # help texts are rich markup (cli/common.py)
    value = f.default if default is _UNSET else default
    if name in ARGUMENTS:
        return typer.Argument(value, help=text, **typer_kw)
    flags = ("--" + name.replace("_", "-"), *([SHORT[name]] if name in SHORT else []))
    return typer.Option(value, *flags, help=text, **typer_kw)
