"""The Typer app object and the option parsing shared by the commands (no logic of their own)."""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from inr_gon import __version__
from inr_gon.errors import InputError, wxh
from inr_gon.limits import MAX_RENDER_SIDE


class _FlagsShownAsFlags:
    """Help shows a boolean flag by its name alone (typer would print `<bool>` beside it)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class Command(_FlagsShownAsFlags, TyperCommand):
    pass


class Group(_FlagsShownAsFlags, TyperGroup):
    pass


class App(typer.Typer):
    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


app = App(
    cls=Group,
    name="inr-gon",
    help="Gradient Origin Networks: train, render, fit, sample and export implicit neural "
    "representations without an encoder.",
    add_completion=False,
    rich_markup_mode="rich",  # help texts are rich markup: brackets in them are escaped
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"inr-gon {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit")) -> None:
    """Gradient Origin Networks: train, render, fit, sample and export implicit neural
    representations without an encoder."""


out = Console()  # results on stdout
err = Console(stderr=True)  # progress and notes on stderr


def parse_grid(text: str, name: str = "--latent-grid") -> int:
    """'G', 'GxG' or 'GxGxG' -> G: latent grids are square (cubic in 3D)."""
    m = re.fullmatch(r"\s*(\d{1,6})\s*(?:[xX]\s*(\d{1,6})\s*){0,2}", text)
    sides = [int(s) for s in re.findall(r"\d+", text)] if m else []
    if not sides:
        raise InputError(f"{name} must be G or GxG, got '{text}'")
    if len(set(sides)) != 1:
        raise InputError(f"{name} grids are square: GxG with equal sides, got '{text}'")
    return sides[0]


def parse_size(text: str | None, name: str = "--size",
               limit: int = MAX_RENDER_SIDE) -> tuple[int, int] | None:
    """'S' -> (S, S); 'WxH' (width x height, as ffmpeg and ImageMagick write it) -> (H, W), the
    order the code keeps. Bounds keep a typo from asking for terabytes."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(-?\d+)\s*(?:[xX]\s*(-?\d+)\s*)?", text)
    if not m:
        raise InputError(f"{name} must be S or WxH (width x height), got '{text}'")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) is not None else w
    if h <= 0 or w <= 0:
        raise InputError(f"{name} must be positive, got '{text}'")
    if h > limit or w > limit:
        raise InputError(f"{name} {wxh(h, w)} is above the limit of {limit} per side")
    return h, w


def note(message: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(message, highlight=False, soft_wrap=True)
