"""An int8 decoder for CPUs: the hidden layers' matrix products in 8-bit integers.

A SIREN decode on a CPU is half matrix products and half sines. CPUs with int8 dot-product
instructions (AVX512-VNNI, AVX-VNNI, Arm's dot product) run an int8 product several times
faster than a float32 one, so quantising the [H, H] products of the hidden layers takes most
of their half away. onnxruntime's dynamic quantisation does it (its `quantize_dynamic`: int8
weights per output column, activations quantised on each call from their own range, the
product accumulated in int32 and scaled back to float32). Only the hidden layers: the first
layer's phases reach tens of radians (an 8-bit step there is a large phase error), the
latent's shifts are small products, and the output layer sets the values themselves. The file
is held to the same PSNR-drop bound as an fp16 one (export/check.py).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx

from inr_gon.errors import InputError
from inr_gon.export.info import require_quantization


def hidden_products(proto: onnx.ModelProto, hidden: int) -> list[str]:
    """Names of the hidden layers' MatMul nodes: a sine's output times a [hidden, hidden]
    constant (the output layer's constant is [hidden, C]; the latent's shifts multiply no sine)."""
    shapes = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    sines = set()
    for n in proto.graph.node:  # in graph order; the first sine is followed by a (no-op) Cast
        if n.op_type == "Sin" or (n.op_type == "Cast" and n.input[0] in sines):
            sines.update(n.output)
    return [n.name for n in proto.graph.node
            if n.op_type == "MatMul" and n.input[0] in sines and shapes.get(n.input[1]) == (hidden, hidden)]


def int8_proto(proto: onnx.ModelProto, hidden: int) -> onnx.ModelProto:
    """The float32 decoder graph with its hidden layers' products dynamically quantised."""
    ortq = require_quantization()
    names = hidden_products(proto, hidden)
    if not names:
        raise InputError("this decoder has no hidden layer to quantise (--layers 1): export fp32")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        # Its root-logger advice to pre-process (shape inference, graph fusions) has nothing to
        # do for a chain of MatMul, Add and Sin whose shapes the quantiser infers itself.
        logging.disable(logging.WARNING)
        try:
            ortq.quantize_dynamic(proto, out, op_types_to_quantize=["MatMul"], nodes_to_quantize=names,
                                  per_channel=True, weight_type=ortq.QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return onnx.load(str(out))
