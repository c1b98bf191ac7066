"""The model a config names: gon (the implicit SIREN GON), conv (the paper's convolutional GON),
ae (an autoencoder baseline) or local (one code per input pixel, for super-resolution); and
the rules each model sets on the config it is built from."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.models.base import check_image_model, check_whole_images
from inr_gon.models.baselines import AutoEncoder, ConvGON
from inr_gon.models.gon import GON
from inr_gon.models.local import LocalSR

MODELS = {"gon": GON, "conv": ConvGON, "ae": AutoEncoder, "local": LocalSR}


def check_local(cfg: Config) -> None:
    """LocalSR's rules: images, whole (it encodes each input pixel), no SIREN."""
    check_image_model(cfg, siren=False)
    check_whole_images(cfg, views=True)


CHECKS: dict[str, Callable[[Config], None]] = {"gon": GON.check, "conv": ConvGON.check,
                                                "ae": AutoEncoder.check, "local": check_local}


def check_config(cfg: Config) -> Config:
    """cfg's fields and their combinations (Config.validate), then its model's own rules."""
    cfg.validate()
    if cfg.net.model not in MODELS:
        raise InputError(f"model '{cfg.net.model}' is not available in this version")
    CHECKS[cfg.net.model](cfg)
    return cfg


def build_model(cfg: Config) -> nn.Module:
    """gon: the implicit SIREN GON; conv: the paper's convolutional GON; ae: an autoencoder."""
    if cfg.net.model not in MODELS:
        raise InputError(f"model '{cfg.net.model}' is not available in this version")
    CHECKS[cfg.net.model](cfg)
    return MODELS[cfg.net.model](cfg)
