"""What no command may do, watched while a hostile row runs: reach the network, or open a file
under the case's `outside/` folder (files a mesh names by URL, absolute path or `..`)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

import pytest

_opened: list[str] | None = None  # paths opened while watching; None: not watching


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # an audit hook cannot be removed: it records only inside watch()


@contextlib.contextmanager
def watch(forbidden: Path):
    """Fail when anything tries to connect or resolve a host name, or opens a file under
    `forbidden` (every open() and os.open() raises the "open" audit event)."""
    global _opened
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise OSError("network access refused by the test")

    opened: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for owner, name in [(socket.socket, "connect"), (socket.socket, "connect_ex"),
                            (socket, "create_connection"), (socket, "getaddrinfo")]:
            mp.setattr(owner, name, refuse)
        _opened = opened
        try:
            yield
        finally:
            _opened = None
    assert not attempts, f"network access: {attempts}"
    root = os.path.abspath(forbidden) + os.sep
    assert not [p for p in opened if p.startswith(root)], f"opened outside the data: {opened}"
