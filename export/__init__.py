"""ONNX export of a GON run and onnxruntime sessions for it (import name `inr_gon.export`).

onnx.py: the decoder graph, tracing, metadata, files. encoder.py: the gradient-origin encoder
without autograd (general, and the shared-grid affine map). check.py: exported graphs against
torch. build.py: `export_run`. runtime.py: sessions, providers, `onnx_renderer`, `onnx_encoder`.
Nothing here imports onnxruntime at import time: torch-only use works without it.
"""
