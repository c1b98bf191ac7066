"""The Typer app object and the option parsing shared by the commands (no logic of their own)."""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.console import Console

from inr_gon.config import Config
from inr_gon.errors import InputError

app = typer.Typer(
    name="inr-gon",
    help="Gradient Origin Networks: train, render, fit, sample and export implicit neural "
    "representations without an encoder.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()  # results on stdout
err = Console(stderr=True)  # progress and notes on stderr


def parse_size(text: str | None, name: str = "--size", limit: int = 16384) -> tuple[int, int] | None:
    """'S' -> (S, S); 'HxW' -> (H, W). Bounds keep a typo from asking for terabytes."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX]\s*(-?\d+)\s*)?", text)
    if not m:
        raise InputError(f"{name} must be S or HxW, got '{text}'")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) is not None else h
    if h <= 0 or w <= 0:
        raise InputError(f"{name} must be positive, got '{text}'")
    if h > limit or w > limit:
        raise InputError(f"{name} {h}x{w} is above the limit of {limit} per side")
    return h, w


def parse_grid(text: str, name: str = "--latent-grid") -> int:
    """'G', 'GxG' or 'GxGxG' -> G: latent grids are square (cubic in 3D)."""
    m = re.fullmatch(r"\s*(\d{1,6})\s*(?:[xX]\s*(\d{1,6})\s*){0,2}", text)
    sides = [int(s) for s in re.findall(r"\d+", text)] if m else []
    if not sides:
        raise InputError(f"{name} must be G or GxG, got '{text}'")
    if len(set(sides)) != 1:
        raise InputError(f"{name} grids are square: GxG with equal sides, got '{text}'")
    return sides[0]


def config_from_flags(base: Config | None = None, **flags: Any) -> Config:
    """Flags that were given (not None) override the base config's fields."""
    cfg = base or Config()
    size = flags.pop("size", None)
    changes = {k: v for k, v in flags.items() if v is not None}
    if size is not None:
        changes["height"], changes["width"] = parse_size(size)
    return cfg.replace(**changes).validate()


def note(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(message, highlight=False)
