"""The model a config names: gon (the implicit SIREN GON), conv (the paper's convolutional GON),
ae (an autoencoder baseline) or local (one code per input pixel, for super-resolution); and
the rules each model sets on the config it is built from."""

from __future__ import annotations

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.models.base import Model
from inr_gon.models.baselines import AutoEncoder, ConvGON
from inr_gon.models.gon import GON
from inr_gon.models.local_sr import LocalSR

MODELS: dict[str, type[Model]] = {"gon": GON, "conv": ConvGON, "ae": AutoEncoder, "local": LocalSR}


def model_class(cfg: Config) -> type[Model]:
    """The class of the model cfg names, once that model's own rules hold for cfg."""
    if cfg.net.model not in MODELS:
        raise InputError(f"model '{cfg.net.model}' is not available in this version")
    if cfg.net.prior_length and cfg.net.model != "gon":
        raise InputError("--prior-length is the variational GON's prior (--model gon)")
    MODELS[cfg.net.model].check(cfg)
    return MODELS[cfg.net.model]


def check_config(cfg: Config) -> Config:
    """cfg's fields and their combinations (Config.validate), then its model's own rules."""
    model_class(cfg.validate())
    return cfg


def build_model(cfg: Config) -> Model:
    """The model cfg names, once its rules hold (MODELS)."""
    return model_class(cfg)(cfg)
