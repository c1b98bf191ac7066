"""Entry point of `inr-gon` and `python -m inr_gon`: errors become one line and an exit code."""

from __future__ import annotations

import sys

from inr_gon.cli import (  # noqa: F401  (each registers its commands)
    demo,
    eval,
    explore,
    export,
    fit,
    interpolate,
    mesh,
    render,
    sample,
    train,
)
from inr_gon.cli.common import app
from inr_gon.errors import InputError
from inr_gon.oom import OutOfMemory
from inr_gon.training.train import TrainingError


def main(argv: list[str] | None = None) -> None:
    """0 done; 2 bad usage or input (one `error:` line); 1 a bug, a stopped training or
    out of memory (one `error:` line).
    Usage errors (unknown flag, missing argument) are the Typer app's own: exit 2."""
    try:
        app(args=argv, prog_name="inr-gon")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (TrainingError, OutOfMemory) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
