"""Errors a user can fix (exit 2) and one-line warnings."""

from __future__ import annotations

import sys


def one_line(text: str) -> str:
    """Messages name user files, whose names may hold newlines or undecodable bytes: keep
    every message on one printable line."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\r", "\\r").replace("\n", "\\n")


class InputError(Exception):
    """Bad usage or bad input: the CLI prints `error: <message>` and exits 2."""

    def __str__(self) -> str:
        return one_line(super().__str__())


def warn(message: str) -> None:
    """One line on stderr; the CLI and the Python API share it."""
    print(f"warning: {one_line(message)}", file=sys.stderr, flush=True)
