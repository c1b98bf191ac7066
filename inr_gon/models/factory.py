"""The model a config names: gon (the implicit SIREN GON), conv (the paper's convolutional GON),
ae (an autoencoder baseline) or local (one code per input pixel, for super-resolution)."""

from __future__ import annotations

from torch import nn

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.models.baselines import AutoEncoder, ConvGON
from inr_gon.models.gon import GON
from inr_gon.models.local import LocalSR

MODELS = {"gon": GON, "conv": ConvGON, "ae": AutoEncoder, "local": LocalSR}


def build_model(cfg: Config) -> nn.Module:
    """gon: the implicit SIREN GON; conv: the paper's convolutional GON; ae: an autoencoder."""
    if cfg.net.model not in MODELS:
        raise InputError(f"model '{cfg.net.model}' is not available in this version")
    return MODELS[cfg.net.model](cfg)
