"""Checkpoints: safetensors + JSON, written atomically.

`train_state.safetensors` alone holds everything `--resume` needs (weights, Adam moments,
step, in its metadata), so one atomic rename moves a run from one consistent state to the
next: a crash at any moment leaves the previous checkpoint loadable. `model.safetensors` is
the decoder for everyone else; `train_state.json` is a readable summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inr_gon.errors import InputError
from inr_gon.io import load_tensors, save_tensors, write_json

MODEL_FILE, STATE_FILE, STATE_JSON = "model.safetensors", "train_state.safetensors", "train_state.json"


def save_model(run_dir: Path, model: nn.Module) -> None:
    save_tensors(run_dir / MODEL_FILE, model.state_dict(), {"format": "inr-gon"})


def load_model_weights(run_dir: Path, model: nn.Module, file: str = MODEL_FILE) -> None:
    tensors, _ = load_tensors(run_dir / file)
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_strict(model, weights if file == STATE_FILE else tensors, run_dir / file)


def _load_strict(model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise InputError(f"{path}: weights do not match the config "
                         f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for k, v in weights.items():
        if v.shape != expected[k].shape:
            raise InputError(f"{path}: tensor '{k}' has shape {tuple(v.shape)}, "
                             f"config wants {tuple(expected[k].shape)}")
    model.load_state_dict(weights)


def save_checkpoint(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                    info: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    state = opt.state_dict()
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"opt.{idx}.{name}"] = torch.as_tensor(value)
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    meta = {"step": str(step), "param_groups": json.dumps(groups), "info": json.dumps(info)}
    save_tensors(run_dir / STATE_FILE, tensors, meta)
    save_model(run_dir, model)
    write_json(run_dir / STATE_JSON, {"step": step, **info})


def load_checkpoint(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, dict]:
    """Restore model and optimizer from train_state.safetensors; returns (step, info)."""
    path = run_dir / STATE_FILE
    tensors, meta = load_tensors(path)
    try:
        step = int(meta["step"])
        groups = json.loads(meta["param_groups"])
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError) as e:
        raise InputError(f"{path}: checkpoint metadata is damaged ({e})") from None
    _load_strict(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            slots.setdefault(int(idx), {})[name] = v
    try:
        opt.load_state_dict({"state": slots, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise InputError(f"{path}: optimizer state does not match the model ({e})") from None
    return step, info
