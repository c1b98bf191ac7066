"""Errors a user can fix (exit 2) and one-line warnings."""

from __future__ import annotations

import sys


class InputError(Exception):
    """Bad usage or bad input: the CLI prints `error: <message>` and exits 2."""


def warn(message: str) -> None:
    """One line on stderr; the CLI and the Python API share it."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
