"""`inr-gon explore`: a local web page to look into a trained run (see docs/explore.md)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from pathlib import Path

import uvicorn

from inr_gon.cli.common import app, note, out
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError, warn
from inr_gon.explore import images, shapes
from inr_gon.explore.server import create_app
from inr_gon.explore.space import Space
from inr_gon.run import load_run

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@app.command(epilog="Example: inr-gon explore runs/photos --backend onnx  (then open the printed address)")
def explore(
    run: Path = shared("run", "Run folder (only read: a run being trained can be explored)"),
    port: int = shared("port"),
    host: str = shared("host"),
    backend: str = shared("backend"),
    decoder: str = shared("decoder", "With --backend onnx: this exported decoder file (e.g. "
                                     "RUN/decoder_int8.onnx from `export --int8`)"),
    max_memory: int = shared("max_memory", "MiB one request may use (outputs and activations); "
                                           "requests run one at a time and larger ones are refused"),
    items: int = shared("items"),
    device: str = shared("device"),
    quiet: bool = shared("quiet", "No notes on stderr (the address is still printed)"),
) -> None:
    """Serve a web page to look into a run: gallery, zoom, walks and uploads (images), or
    previews, SDF slices and meshes (shapes). Ctrl-C stops it."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port must lie in 0..65535, got {port}")
    if not 1 <= items <= 64:
        raise InputError(f"--items must lie in 1..64, got {items}")
    if max_memory < 1:
        raise InputError("--max-memory must be positive")
    started = time.perf_counter()
    r = load_run(run, device)
    r.require_latent_space("explore")
    space = Space(r, backend, max_memory * 2**20, decoder)
    # The gallery is encoded while the page comes up: the page shows it when it is ready.
    space.load_in_background(images.load_gallery if space.modality == "image" else shapes.load_gallery,
                             items)
    token = secrets.token_urlsafe(32)
    sock = _listen(host, port)
    if host not in LOOPBACK and not _is_loopback(host):
        warn(f"--host {host}: the page is reachable from other machines (anyone with the token "
             "can use it)")
    shown = f"[{host}]" if ":" in host else host
    out.print(f"http://{shown}:{sock.getsockname()[1]}/?token={token}", highlight=False, soft_wrap=True)
    note(f"serving after {time.perf_counter() - started:.1f} s (the gallery loads in the background); "
         "Ctrl-C stops", quiet)
    server = uvicorn.Server(uvicorn.Config(create_app(space, token), log_level="warning",
                                           access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])  # uvicorn handles Ctrl-C: open requests finish, then it stops
    finally:
        sock.close()
        note("stopped", quiet)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket, or one line saying why not (port in use, unknown address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(f"--host {host}: not an address here ({e})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        hint = "; --port 0 takes any free port" if port else ""
        raise InputError(f"cannot listen on {host}:{port} ({e.strerror or e}){hint}") from None
    return sock
