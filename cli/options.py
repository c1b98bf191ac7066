"""`train` options generated from the config fields, and the config a run starts from.

Each field of inr_gon.config with cli=True becomes `--field-name` (booleans `--x/--no-x`),
its help the field's doc, its default shown (with the defaults for images and meshes where
presets.FOLDER_DEFAULTS sets them). A command decorated with @config_options gets
the values typed on the command line as `fields` (options left at their default are absent).
Precedence: field defaults < folder defaults (presets.FOLDER_DEFAULTS) < --preset < --config FILE
< explicit flags (and DATA).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from inr_gon.cli.common import note
from inr_gon.config import FIELD_GROUP, FIELDS, GROUPS, Config, duration_seconds, route, typed
from inr_gon.datasets import ARRAY_EXTS, detect_modality
from inr_gon.errors import InputError
from inr_gon.modality import MODALITIES
from inr_gon.presets import (
    COARSE_GRID,
    COMPILE_FROM_STEPS,
    FOLDER_DEFAULTS,
    HALF,
    PRESETS,
    VARIATIONAL_IMAGE,
    folder_values,
)

PANELS = {"net": "Model", "dataset": "Data", "train": "Training", "sdf": "SDF sampling"}
TYPES = {"int": int, "float": float, "bool": bool, "str": str}
SUMMARY_FIELDS = tuple(f.name for f in dataclasses.fields(GROUPS["summary"]))  # set by train


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option(name: str) -> inspect.Parameter:
    f = FIELDS[name]
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    flag = flag_name(name)
    decl = f"{flag}/--no-{flag[2:]}" if kind == "bool" else flag
    # help is rich markup (cli/common.py): escaped, "[tensorboard]" would be read as a tag
    opt = typer.Option(f.default, decl, help=escape(f.metadata["help"]), show_default=shown_default(name),
                       rich_help_panel=PANELS[FIELD_GROUP[name]])
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                             annotation=TYPES[kind])


def shown_default(name: str) -> str | bool:
    """What `[default: ...]` says in --help: the field's default and, where the kind of data
    changes it (presets.FOLDER_DEFAULTS), the default for images and for meshes."""
    kinds = [(kind, label) for kind, label in (("image", "images"), ("sdf", "meshes"))
             if name in FOLDER_DEFAULTS[kind]]
    if not kinds:
        return True
    shown = [_default_text(name, FIELDS[name].default, "image")]
    shown += [f"{label}: {_default_text(name, FOLDER_DEFAULTS[kind][name], kind)}" for kind, label in kinds]
    return "; ".join(shown)


def _default_text(name: str, value: Any, kind: str) -> str:
    if value == HALF:
        return "half the pixels"
    if name == "compile":
        return f"compile from {COMPILE_FROM_STEPS:,} steps" if value else "no-compile"
    if name == "latent_grid" and value:  # as --latent-grid is written: GxG, GxGxG for shapes
        return MODALITIES[kind].grid_text(value)
    return str(value)


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Typer sees func's own parameters and one option per config field; func gets the
    fields given on the command line as `fields` ({name: value})."""
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "fields"]
    generated = [_option(name) for name in FIELDS if FIELDS[name].metadata["cli"]]
    names = {p.name for p in generated}

    @functools.wraps(func)
    def command(ctx: typer.Context, **kwargs: Any) -> Any:
        values = {k: kwargs.pop(k) for k in names}
        return func(fields={k: v for k, v in values.items() if _typed(ctx, k)}, **kwargs)

    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=typer.Context)
    params = [context, *own, *generated]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    del command.__wrapped__  # typer must read the generated signature, not func's
    return command


def _typed(ctx: typer.Context, name: str) -> bool:
    """Whether option `name` was given on the command line (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def read_config_file(path: Path, quiet: bool = False) -> dict[str, Any]:
    """A JSON or TOML file of config fields, flat ({"hidden": 64}) or grouped ([net] hidden = 64);
    a run's config.json too: the fields train writes from the data are ignored, with a note."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the config file ({e})") from None
    if path.suffix.lower() == ".toml":
        if sys.version_info < (3, 11):
            raise InputError(f"{path}: TOML config files need Python 3.11 or later; use JSON")
        import tomllib  # standard library from 3.11 on

        try:
            raw = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as e:
            raise InputError(f"{path}: not valid TOML ({e})") from None
    else:
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a config file must hold an object of fields")
    try:
        values = typed({name: v for kw in route(raw).values() for name, v in kw.items()})
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    # A run's own config.json reproduces the run: what train wrote there from the data is
    # read from the data again (route() already set `extra` aside).
    written = [*(["extra"] if "extra" in raw else []), *(k for k in SUMMARY_FIELDS if k in values)]
    if written:
        note(f"{path}: {', '.join(written)} ignored (written by train from the data)", quiet)
    return {k: v for k, v in values.items() if k not in SUMMARY_FIELDS}


def preset_values(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in PRESETS:
        raise InputError(f"--preset '{name}' is unknown (one of: {', '.join(PRESETS)})")
    return dict(PRESETS[name])


def starting_config(preset: str | None, config_file: Path | None, given: dict[str, Any],
                    quiet: bool = False) -> Config:
    """defaults < folder defaults < preset < config file < given (flags and DATA, None = not
    given); validated."""
    values = preset_values(preset)
    if config_file is not None:
        values.update(read_config_file(config_file, quiet))
    values.update({k: v for k, v in given.items() if v is not None})
    return Config.from_dict({**folder_defaults(values), **values})


def folder_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The measured best model for the kind of data (presets.FOLDER_DEFAULTS): a folder of
    images or an image array, a folder of meshes; none for built-in data. Only what the other
    choices allow: no latent grid on images smaller than 2 cells a side, the gradient step for
    the baselines (Gauss-Newton is the implicit GON's) and for --variational on meshes (images
    take its Laplace form), none for --model conv (no SIREN to modulate)."""
    data = values.get("data")
    if not isinstance(data, str) or data.startswith("builtin:"):
        return {}
    path = Path(data)
    if not (path.is_dir() or path.is_file() and path.suffix.lower() in ARRAY_EXTS):
        return {}
    try:
        kind = detect_modality(data)
    except InputError:  # an empty or mixed folder: `train` says so when it loads it
        return {}
    h, w = (values.get(k, FIELDS[k].default) for k in ("height", "width"))
    chosen = folder_values(kind, h, w, *_run_length(values))
    model = values.get("model", FIELDS["model"].default)
    if model == "conv":
        return {}
    variational = values.get("variational")
    # lr and grid were measured for the GON's step; a mesh's variational run (per-shape points,
    # CG solves: no Laplace form) takes the paper's step
    if model != "gon" or variational and kind != "image":
        chosen["origin_step"] = "gradient"
        chosen.pop("lr", None)
        if kind == "image":
            chosen.update(COARSE_GRID)
    elif variational:  # images: the Laplace step (laplace.py)
        chosen.update(VARIATIONAL_IMAGE)
    if kind == "image" and min(h, w) < 2 * chosen["latent_grid"]:  # the coarser grid measured before
        chosen.update(COARSE_GRID)
    if min(h, w) < 2 * chosen["latent_grid"]:
        chosen.update(latent_grid=0, latent_dim=FIELDS["latent_dim"].default)
    if model != "gon" or values.get("observe_scales", "1") != "1":  # they need whole images
        chosen.pop("points_per_signal", None)
    grid, step = (values.get(k, chosen.get(k)) for k in ("latent_grid", "origin_step"))
    if not grid or step != "gauss-newton":  # the grid prior is the Laplace step's, on a grid
        chosen.pop("prior_length", None)
    return chosen


def _run_length(values: dict[str, Any]) -> tuple[int, float]:
    """(steps, time budget in seconds) as given, for folder_values; (0, 0) where either is not
    a number yet (Config reports that, in its own words)."""
    try:
        steps = int(values.get("steps", FIELDS["steps"].default))
        return steps, duration_seconds(str(values.get("time_budget", FIELDS["time_budget"].default)))
    except (TypeError, ValueError):
        return 0, 0.0
