"""The run folder, in one place: its files (config.json, weights, checkpoints: checkpoint.py),
its writer lock (lock.py) and loading it as a trained model (load.py: `load_run` -> Run).

Training writes a run through this package, every command and the ONNX export read one
through it, and any command writing into a run holds its lock from here."""

from inr_gon.run.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    STATE_FILE,
    STATE_JSON,
    is_run,
    load_checkpoint,
    load_config,
    load_model_weights,
    save_checkpoint,
    save_config,
    save_model,
)
from inr_gon.run.load import Run, load_run
from inr_gon.run.lock import LOCK_FILE, hold, hold_if_inside, holder

__all__ = ["CONFIG_FILE", "LOCK_FILE", "MODEL_FILE", "STATE_FILE", "STATE_JSON", "Run", "hold",
           "hold_if_inside", "holder", "is_run", "load_checkpoint",
           "load_config", "load_model_weights", "load_run", "save_checkpoint", "save_config",
           "save_model"]
