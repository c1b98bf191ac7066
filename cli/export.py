"""`inr-gon export`: ONNX decoder (and gradient-origin encoders), checked against torch."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from inr_gon.cli.common import app, note, out
from inr_gon.cli.shared import shared
from inr_gon.export.build import export_run, load_exportable
from inr_gon.export.check import ExportCheckError
from inr_gon.run import hold_if_inside


@app.command(epilog="Example: inr-gon export runs/demo --with-encoder")
def export(
    run: Path = shared("run"),
    out_file: Path = shared("out", "Decoder file (default RUN/decoder.onnx, or "
                                   "RUN/decoder_fp16.onnx with --fp16, RUN/decoder_int8.onnx "
                                   "with --int8)", show_default=False),
    fp16: bool = shared("fp16", "Half-precision decoder (held to a 0.5 dB PSNR-drop bound), "
                        "beside the fp32 decoder.onnx, never replacing it"),
    int8: bool = shared("int8"),
    with_encoder: bool = shared("with_encoder"),
    device: str = shared("device", "Provider the checks run on: auto | cpu | cuda[:i]"),
    quiet: bool = shared("quiet"),
) -> None:
    """Export the decoder to ONNX; each file is run in onnxruntime against torch before it is written."""
    r = load_exportable(run, device)
    try:
        with hold_if_inside(run, out_file or run / "decoder.onnx", is_dir=False):
            done = export_run(r, out_file, fp16=fp16, with_encoder=with_encoder, int8=int8)
    except ExportCheckError as e:
        print(f"error: {e}", file=sys.stderr)  # one line, unwrapped, as cli/app.py prints
        raise typer.Exit(1) from None
    if not quiet:
        table = Table("file", "precision", "checked on", "against torch", "value", "bound", "")
        for e in done:
            for c in e.checks:
                table.add_row(e.path.name, e.precision, c.inputs, c.measure, f"{c.value:.3g}",
                              f"{c.bound:g}", "ok")
        out.print(table)
    for e in done:
        note(f"wrote {e.path} ({e.kind}, {e.precision}, {e.bytes / 2**20:.2f} MiB; "
             f"checked on {e.provider})", quiet)
