"""The run folder's files: config.json, and checkpoints as safetensors + JSON, written atomically.

`train_state.safetensors` alone holds everything `--resume` needs (weights, Adam moments,
step, in its metadata), so one atomic rename moves a run from one consistent state to the
next: a crash at any moment leaves the previous checkpoint loadable. `model.safetensors` is
the decoder for everyone else; `train_state.json` is a readable summary.

Loading trusts nothing in the files: names, shapes, dtypes, finiteness and the optimizer's
hyper-parameters are checked against the model the config builds, so a damaged or edited
file is an InputError naming it, never a crash later in training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inr_gon.config import MODEL_FIELDS, Config
from inr_gon.errors import InputError
from inr_gon.io import load_tensors, read_json, save_tensors, write_json

MODEL_FILE, STATE_FILE, STATE_JSON = "model.safetensors", "train_state.safetensors", "train_state.json"
CONFIG_FILE = "config.json"  # written last: a folder is a run once it holds one


def is_run(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def load_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder")
    if not is_run(run_dir):
        raise InputError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    raw = read_json(run_dir / CONFIG_FILE)
    try:
        return Config.from_dict(raw, required=MODEL_FIELDS)
    except InputError as e:
        raise InputError(f"{run_dir / CONFIG_FILE}: {e}") from None


def save_config(run_dir: Path, cfg: Config) -> None:
    write_json(run_dir / CONFIG_FILE, cfg.to_dict())


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
        _check_values(v, f"{path}: tensor '{k}'", expected[k].dtype.is_floating_point)
    model.load_state_dict(weights)


def _check_values(v: torch.Tensor, what: str, floating: bool = True) -> None:
    if floating and not v.dtype.is_floating_point:
        raise InputError(f"{what} has dtype {v.dtype}, want a floating-point type")
    if v.dtype.is_floating_point and not torch.isfinite(v).all():
        raise InputError(f"{what} contains NaN or inf")


def save_checkpoint(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                    info: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    state = opt.state_dict()
    for idx, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"opt.{idx}.{name}"] = torch.as_tensor(value)
    groups = [{k: v for k, v in g.items()} for g in state["param_groups"]]
    meta = {"step": str(step), "param_groups": json.dumps(groups), "info": json.dumps(info)}
    try:
        save_tensors(run_dir / STATE_FILE, tensors, meta)
        save_model(run_dir, model)
        write_json(run_dir / STATE_JSON, {"step": step, **info})
    except InputError as e:  # disk full, read-only, ...: every file keeps its last whole version
        if step == 0:
            raise
        raise InputError(f"{e}; the checkpoint saved before is intact: once there is room, "
                         "--resume continues from it") from None


def load_checkpoint(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> tuple[int, dict]:
    """Restore model and optimizer from train_state.safetensors; returns (step, info)."""
    path = run_dir / STATE_FILE
    tensors, meta = load_tensors(path)
    try:
        step = int(meta["step"])
        groups = json.loads(meta["param_groups"])
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError, RecursionError) as e:
        raise InputError(f"{path}: checkpoint metadata is damaged ({e})") from None
    seconds = info.get("seconds", 0.0) if isinstance(info, dict) else None
    if step < 0 or not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise InputError(f"{path}: checkpoint metadata is damaged (step {step}, info {info!r:.60})")
    _load_strict(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    _check_groups(groups, opt.state_dict()["param_groups"], path)
    slots = _optimizer_slots(tensors, opt, path)
    try:
        opt.load_state_dict({"state": slots, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: optimizer state does not match the model ({e})") from None
    return step, info


def _check_groups(groups: Any, current: list[dict], path: Path) -> None:
    """Saved param groups must have the optimizer's keys, its parameter indices and values of
    the same kind (a number for a number, a pair for betas)."""
    def same_kind(a: Any, b: Any) -> bool:
        if isinstance(b, bool) or b is None:  # flags such as foreach/fused: None or a bool
            return a is None or isinstance(a, bool)
        if isinstance(b, (int, float)):
            return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
        if isinstance(b, (list, tuple)):
            return isinstance(a, list) and len(a) == len(b) and all(map(same_kind, a, b))
        return type(a) is type(b)

    ok = isinstance(groups, list) and len(groups) == len(current)
    for g, c in zip(groups if ok else [], current):
        ok = ok and isinstance(g, dict) and set(g) == set(c) and g["params"] == c["params"]
        ok = ok and all(same_kind(g[k], v) for k, v in c.items() if k != "params")
    if not ok:
        raise InputError(f"{path}: optimizer settings are damaged or from another optimizer")


def _optimizer_slots(tensors: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                     path: Path) -> dict[int, dict[str, torch.Tensor]]:
    """'opt.<param index>.<slot>' tensors -> {index: {slot: tensor}}, shapes checked; every
    parameter with a state has the same slots (a missing moment would fail mid-training)."""
    params = [p for g in opt.param_groups for p in g["params"]]  # state_dict's numbering
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if not k.startswith("opt."):
            continue
        idx, _, name = k[4:].partition(".")
        if not idx.isdigit() or int(idx) >= len(params) or not name:
            raise InputError(f"{path}: unexpected optimizer tensor '{k}'")
        want = () if name == "step" else params[int(idx)].shape
        if v.shape != want:
            raise InputError(f"{path}: optimizer tensor '{k}' has shape {tuple(v.shape)}, "
                             f"want {tuple(want)}")
        _check_values(v, f"{path}: optimizer tensor '{k}'")
        slots.setdefault(int(idx), {})[name] = v
    if len({frozenset(s) for s in slots.values()}) > 1:
        raise InputError(f"{path}: optimizer state is incomplete (some tensors are missing)")
    return slots
