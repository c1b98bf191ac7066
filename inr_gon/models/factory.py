"""The model a config names: gon (the implicit SIREN GON), conv (the paper's convolutional GON)
or ae (an autoencoder baseline)."""

from __future__ import annotations

from torch import nn

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.models.baselines import AutoEncoder, ConvGON
from inr_gon.models.gon import GON

MODELS = {"gon": GON, "conv": ConvGON, "ae": AutoEncoder}


def build_model(cfg: Config) -> nn.Module:
    """gon: the implicit SIREN GON; conv: the paper's convolutional GON; ae: an autoencoder."""
    if cfg.net.model not in MODELS:
        raise InputError(f"model '{cfg.net.model}' is not available in this version")
    return MODELS[cfg.net.model](cfg)
