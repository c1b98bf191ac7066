"""The explore web app: Starlette routes over a Space, behind an access token.

Every request carries the token (`?token=` or an `X-Token` header), as Jupyter's do; without it
the answer is 401 and nothing else runs. Bad input is HTTP 400 and a request over --max-memory
HTTP 413, each with one plain-text line the page shows; the server keeps running. Requests name
items by index and static files from a fixed list, so none can name a file.
"""

from __future__ import annotations

import html
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from inr_gon import __version__
from inr_gon.errors import InputError, one_line
from inr_gon.explore import images, shapes
from inr_gon.explore.space import MAX_UPLOADS, Space, TooBig
from inr_gon.limits import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, MAX_VIEW_SIDE
from inr_gon.modality import MODALITIES

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"explore.js": "text/javascript", "explore.css": "text/css"}  # the only files served
TOKEN_HEADER = b"x-token"


class TokenGate:
    """ASGI middleware: HTTP requests without the right token get 401 and reach nothing else."""

    def __init__(self, app, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            response = PlainTextResponse("error: this needs the access token: open the address "
                                         "that `inr-gon explore` printed", status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope) -> bool:
        given = dict(scope.get("headers") or []).get(TOKEN_HEADER)
        if given is None:
            values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
            given = values[0].encode("latin-1", "replace") if values else b""
        return secrets.compare_digest(given, self.token)


def _int(request: Request, name: str, default: int | None = None, lo: int = 0, hi: int = 2**31) -> int:
    text = request.query_params.get(name)
    if text is None and default is not None:
        return default
    try:
        value = int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"'{name}' must be a whole number, got {text!r}") from None
    if not lo <= value <= hi:
        raise InputError(f"'{name}' must lie in {lo}..{hi}, got {value}")
    return value


def _float(request: Request, name: str, default: float | None = None) -> float:
    text = request.query_params.get(name)
    if text is None and default is not None:
        return default
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"'{name}' must be a number, got {text!r}") from None


def _size(request: Request, default: int) -> tuple[int, int]:
    """(H, W) from w and h (pixels)."""
    return (_int(request, "h", default, 1, MAX_VIEW_SIDE), _int(request, "w", default, 1, MAX_VIEW_SIDE))


def _rect(request: Request) -> tuple[float, float, float, float]:
    return tuple(_float(request, k, d) for k, d in (("x0", -1.0), ("y0", -1.0), ("x1", 1.0), ("y1", 1.0)))


def _png(space: Space, render, started: float) -> Response:
    """render() -> image, then its PNG, both on the model thread (see space.py: one arena)."""
    body = space.work(lambda: images.png_bytes(render()))
    return Response(body, media_type="image/png", headers={
        "X-Render-Seconds": f"{time.perf_counter() - started:.4f}", "Cache-Control": "no-store"})


def create_app(space: Space, token: str) -> Starlette:
    """The app for one Space (its `note`, why the gallery is empty say, is shown on the page)."""
    cfg = space.run.cfg
    h, w = cfg.size if cfg.modality.shared_grid else (0, 0)

    def need(modality: str) -> None:
        if space.modality != modality:
            raise InputError(f"this route is for {MODALITIES[modality].noun} runs; "
                             f"{space.run.path.name} is an {space.modality} run")

    def index(request: Request) -> Response:
        page = (STATIC / "index.html").read_text()
        return Response(page.replace("{{TOKEN}}", html.escape(token)), media_type="text/html",
                        headers={"Cache-Control": "no-store"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            return PlainTextResponse("error: no such file", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type=STATIC_TYPES[name])

    def info(request: Request) -> Response:
        return JSONResponse({
            "version": __version__, "run": space.run.path.name, "modality": space.modality,
            "backend": space.backend, "width": w, "height": h, "channels": space.channels,
            "variational": bool(cfg.net.variational), "max_memory_mib": space.max_memory // 2**20,
            "max_view_side": MAX_VIEW_SIDE, "max_upload_bytes": MAX_UPLOAD_BYTES,
            "max_upload_pixels": MAX_UPLOAD_PIXELS, "max_uploads": MAX_UPLOADS, "note": space.note,
            "loading": space.loading,
            "items": [it.summary(i) for i, it in enumerate(space.items)]})

    def item_png(request: Request) -> Response:
        started, i = time.perf_counter(), int(request.path_params["index"])
        kind = request.path_params["kind"]
        if space.modality == "sdf":
            if kind != "preview":
                raise InputError("a shape run has previews, not truth or recon")
            return _png(space, lambda: shapes.preview(space, i), started)
        item = space.item(i)
        if kind == "truth" and item.truth is not None:
            return _png(space, lambda: item.truth, started)
        if kind == "recon":
            return _png(space, lambda: images.view(space, i, (-1.0, -1.0, 1.0, 1.0), (h, w)), started)
        raise InputError(f"no '{kind}' picture for item {i}")

    def view(request: Request) -> Response:
        need("image")
        started = time.perf_counter()
        fn = images.bicubic if request.url.path.endswith("/bicubic.png") else images.view
        i, rect, size = _int(request, "item"), _rect(request), _size(request, max(h, w))
        return _png(space, lambda: fn(space, i, rect, size), started)

    def interpolate(request: Request) -> Response:
        need("image")
        started = time.perf_counter()
        a, b, t = _int(request, "a"), _int(request, "b"), _float(request, "t")
        size = _size(request, 4 * max(h, w))
        return _png(space, lambda: images.interpolate(space, a, b, t, size), started)

    def sample(request: Request) -> Response:
        need("image")
        started = time.perf_counter()
        seed, size = _int(request, "seed", 0), _size(request, 4 * max(h, w))
        return _png(space, lambda: images.sample(space, seed, size), started)

    async def upload(request: Request) -> Response:
        need("image")
        refine = _int(request, "refine", 0, 0, images.MAX_UPLOAD_REFINE)
        name = one_line(request.query_params.get("name", ""))[:80]
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
            raise TooBig(f"the upload is {int(length) / 2**20:.1f} MiB, over the "
                         f"{MAX_UPLOAD_BYTES // 2**20} MiB limit")
        body = bytearray()
        async for chunk in request.stream():  # counted as it arrives: no length is trusted
            body += chunk
            if len(body) > MAX_UPLOAD_BYTES:
                raise TooBig(f"the upload is over the {MAX_UPLOAD_BYTES // 2**20} MiB limit")
        fit = lambda: images.fit_upload(space, bytes(body), name, refine)  # noqa: E731
        index = await run_in_threadpool(space.work, fit)
        return JSONResponse(space.item(index).summary(index))

    def slice_png(request: Request) -> Response:
        need("sdf")
        started = time.perf_counter()
        axis = request.query_params.get("axis", "z")
        i, t = _int(request, "item"), _float(request, "t", 0.0)
        size = _int(request, "size", 256, 1, MAX_VIEW_SIDE)
        return _png(space, lambda: shapes.slice_image(space, i, axis, t, size), started)

    def mesh(request: Request) -> Response:
        need("sdf")
        i, r = _int(request, "item"), _int(request, "resolution", 64, 8, shapes.MAX_EXPLORE_RESOLUTION)
        body = space.work(lambda: shapes.mesh_bytes(space, i, r))
        name = f"{shapes.file_stem(space.item(i).name)}_{r}.ply"
        return Response(body, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def bad_input(request: Request, e: Exception) -> Response:
        return PlainTextResponse(f"error: {e}", status_code=413 if isinstance(e, TooBig) else 400)

    def not_found(request: Request, e: Exception) -> Response:
        return PlainTextResponse("error: no such page", status_code=404)

    routes = [
        Route("/", index), Route("/static/{name}", static), Route("/api/info", info),
        Route("/api/item/{index:int}/{kind}.png", item_png),
        Route("/api/view.png", view), Route("/api/bicubic.png", view),
        Route("/api/interpolate.png", interpolate), Route("/api/sample.png", sample),
        Route("/api/upload", upload, methods=["POST"]), Route("/api/slice.png", slice_png),
        Route("/api/mesh", mesh),
    ]
    app = Starlette(routes=routes, exception_handlers={InputError: bad_input, 404: not_found})
    app.add_middleware(TokenGate, token=token)
    return app
