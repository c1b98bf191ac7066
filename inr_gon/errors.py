"""Errors a user can fix (exit 2), one-line warnings, and sizes as messages write them."""

from __future__ import annotations

import sys


def one_line(text: str) -> str:
    """Messages name user files, whose names may hold newlines or undecodable bytes: keep
    every message on one printable line."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def wxh(height: int, width: int) -> str:
    """A size as users read and write it: width x height ("1024x768" is 1024 wide, 768 tall,
    as in ffmpeg and ImageMagick). The code keeps (H, W) tuples; every message goes through here."""
    return f"{width}x{height}"


class InputError(Exception):
    """Bad usage or bad input: the CLI prints `error: <message>` and exits 2."""

    def __str__(self) -> str:
        return one_line(super().__str__())


def warn(message: str) -> None:
    """One line on stderr; the CLI and the Python API share it."""
    print(f"warning: {one_line(message)}", file=sys.stderr, flush=True)
