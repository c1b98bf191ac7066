"""Entry point of `inr-gon` and `python -m inr_gon`: errors become one line and an exit code."""

from __future__ import annotations

import importlib
import sys

import typer

from inr_gon.cli.common import app
from inr_gon.errors import InputError, one_line
from inr_gon.oom import OutOfMemory, is_out_of_memory, what_ran_out
from inr_gon.training.train import TrainingError

try:  # typer 0.2x carries its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # older typer runs on click itself
    from click.exceptions import ClickException


# each command's module under inr_gon/cli, of its name: importing it registers it on `app`
COMMANDS = ("demo", "eval", "explore", "export", "fit", "interpolate", "mesh", "render", "sample",
            "train")


def register(argv: list[str]) -> None:
    """Import the module of the command named in argv, or all of them (for `--help`, a typo's
    list of commands): `inr-gon explore` then starts without what the others import (the `onnx`
    package, the plotting stack), which is most of its start-up beyond torch."""
    name = next((a for a in argv if not a.startswith("-")), None)
    for module in [name] if name in COMMANDS else COMMANDS:
        importlib.import_module(f"inr_gon.cli.{module}")


def main(argv: list[str] | None = None) -> None:
    """0 done; 2 bad usage or input (one `error:` line); 1 a stopped training or out of memory
    (one `error:` line); 130 interrupted. Usage mistakes (unknown option, missing argument)
    come from the parser: one `error:` line too, naming the command's --help."""
    register(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, prog_name="inr-gon", standalone_mode=False)
    except ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `inr-gon`: its help, printed already
            sys.exit(2)
        where = f" (see: {e.ctx.command_path} --help)" if getattr(e, "ctx", None) else ""
        print(f"error: {one_line(e.format_message()).rstrip('.')}{where}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Abort:  # Ctrl-C or end of input before a command ran
        sys.exit(130)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (TrainingError, OutOfMemory) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except (MemoryError, RuntimeError) as e:  # out of memory where no command named its flags
        if not is_out_of_memory(e):
            raise
        print(f"error: ran out of {what_ran_out(e)}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
