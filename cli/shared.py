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


@dataclass
class CommandOptions:
    """What the commands that use a run (render, fit, eval, ...) share beside --device."""

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


SHARED: dict[str, dataclasses.Field] = {
    "device": FIELDS["device"],  # train's field: one doc and default for every command
    **{f.name: f for f in dataclasses.fields(CommandOptions)},
}
ARGUMENTS = ("run",)


def shared(name: str, doc: str | None = None, **typer_kw: Any) -> Any:
    """The Typer option (or argument) of shared field `name`: `--name-with-dashes`, its
    default, and its doc or `doc` (where a command says more). Booleans are plain flags."""
    f = SHARED[name]
    text = escape(doc or f.metadata["help"])  # help texts are rich markup (cli/common.py)
    if name in ARGUMENTS:
        return typer.Argument(f.default, help=text, **typer_kw)
    return typer.Option(f.default, "--" + name.replace("_", "-"), help=text, **typer_kw)
