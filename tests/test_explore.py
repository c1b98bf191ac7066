"""`inr-gon explore`: every route through Starlette's TestClient (token, bad inputs, the memory
refusal, uploads of hostile files, concurrency), and the command itself in a subprocess."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_files import garbage, png_raw, truncated_png
from PIL import Image
from starlette.testclient import TestClient
from test_cli import assert_input_error, run_cli

from inr_gon.errors import InputError
from inr_gon.explore import images, server, shapes
from inr_gon.explore.server import create_app
from inr_gon.explore.space import Space
from inr_gon.export.build import export_run
from inr_gon.inference.sample import slerp
from inr_gon.run import load_run

TOKEN = "test-token"


def png_array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))).astype(np.float32) / 255


def png_file(h: int = 8, w: int = 8) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def flat_png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def image_run(make_run):
    return make_run(data="builtin:shapes:16", hidden=32, latent_init=5.0, val_fraction=0.25)


def client_for(run_path, backend="torch", max_memory=64 * 2**20, items=3, decoder=None, **kw):
    space = Space(load_run(run_path), backend, max_memory, decoder)
    loader = images.load_gallery if space.modality == "image" else shapes.load_gallery
    space.note = loader(space, items)
    return TestClient(create_app(space, TOKEN), **kw), space


@pytest.fixture
def client(image_run):
    c, space = client_for(image_run)
    c.space = space
    return c


def get(c, path, **params):
    return c.get(path, params={"token": TOKEN, **params})


def test_every_route_needs_the_token(client):
    routes = ["/", "/static/explore.js", "/api/info", "/api/item/0/truth.png", "/api/view.png",
              "/api/bicubic.png", "/api/interpolate.png", "/api/sample.png", "/api/slice.png",
              "/api/mesh", "/nowhere"]
    for path in routes:
        for params in ({}, {"token": "wrong"}, {"token": ""}):
            r = client.get(path, params=params)
            assert r.status_code == 401 and r.text.startswith("error: ") and "\n" not in r.text.strip()
    assert client.post("/api/upload", content=png_file()).status_code == 401
    assert len(client.space.items) == 6  # the refused upload added nothing
    assert client.get("/api/info", headers={"X-Token": TOKEN}).status_code == 200


def test_page_and_static_files(client):
    r = get(client, "/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert f'data-token="{TOKEN}"' in r.text and "{{TOKEN}}" not in r.text
    assert "http" not in r.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    for name, kind in (("explore.js", "javascript"), ("explore.css", "css")):
        r = get(client, f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"] and "http" not in r.text
    for bad in ("index.html", "space.py", "..%2Fspace.py", "../server.py", "%2e%2e/__init__.py"):
        assert get(client, f"/static/{bad}").status_code == 404
    assert get(client, "/api/../../etc/passwd").status_code == 404


def test_info_lists_training_and_held_out_items_with_psnr(client):
    info = get(client, "/api/info").json()
    assert info["modality"] == "image" and (info["width"], info["height"]) == (8, 8)
    assert [it["split"] for it in info["items"]] == ["train"] * 3 + ["held-out"] * 3
    assert all(np.isfinite(it["psnr"]) for it in info["items"])


def test_views_are_the_decoder_on_the_requested_rectangle(client, image_run):
    space, run = client.space, load_run(image_run)
    z = space.items[1].z[None]
    whole = run.render(z, (8, 8))[0]
    r = get(client, "/api/view.png", item=1, w=8, h=8)
    assert r.status_code == 200 and float(r.headers["X-Render-Seconds"]) >= 0
    assert np.abs(png_array(r.content) - whole).max() <= 1 / 255 + 1e-6
    assert np.abs(png_array(get(client, "/api/item/1/recon.png").content) - whole).max() <= 1 / 255 + 1e-6
    # Zoomed: the lower right quadrant at 8x8 is that quadrant of a 16x16 render.
    fine = run.render(z, (16, 16))[0][8:, 8:]
    quad = png_array(get(client, "/api/view.png", item=1, x0=0, y0=0, x1=1, y1=1, w=8, h=8).content)
    assert np.abs(quad - fine).max() <= 1 / 255 + 1e-6
    wide = png_array(get(client, "/api/view.png", item=1, w=24, h=12).content)
    assert wide.shape == (12, 24, 3)


def test_bicubic_and_truth_at_the_training_size_are_the_training_pixels(client):
    truth = client.space.items[0].truth
    assert np.abs(png_array(get(client, "/api/item/0/truth.png").content) - truth).max() <= 1 / 255
    bic = png_array(get(client, "/api/bicubic.png", item=0, w=8, h=8).content)
    assert np.abs(bic - truth).max() <= 1 / 255 + 1e-5
    big = png_array(get(client, "/api/bicubic.png", item=0, w=32, h=32).content)
    assert big.shape == (32, 32, 3) and np.abs(big[::4, ::4].mean() - truth.mean()) < 0.1


@pytest.mark.parametrize("params", [
    {"item": 99}, {"item": -1}, {"item": "abc"}, {}, {"item": 0, "x1": -2}, {"item": 0, "x0": "nan"},
    {"item": 0, "y0": 5, "y1": 40}, {"item": 0, "w": 0}, {"item": 0, "w": 99999}, {"item": 0, "h": "1e9"},
])
def test_bad_view_requests_get_one_line(client, params):
    for path in ("/api/view.png", "/api/bicubic.png"):
        r = get(client, path, **params)
        assert r.status_code == 400 and r.text.startswith("error: ") and len(r.text.splitlines()) == 1


def test_shape_routes_on_an_image_run_are_one_line(client):
    for path in ("/api/slice.png", "/api/mesh"):
        r = get(client, path, item=0)
        assert r.status_code == 400 and "for shape (SDF) runs" in r.text
    assert get(client, "/api/item/0/preview.png").status_code == 400


def test_a_request_over_max_memory_is_refused_with_413(image_run):
    c, _ = client_for(image_run, max_memory=2 * 2**20)
    r = get(c, "/api/view.png", item=0, w=1024, h=1024)
    assert r.status_code == 413 and "--max-memory 2 MiB" in r.text and len(r.text.splitlines()) == 1
    assert get(c, "/api/bicubic.png", item=0, w=1024, h=1024).status_code == 413
    assert get(c, "/api/view.png", item=0, w=128, h=128).status_code == 200  # and it still serves


def test_interpolation_ends_are_the_items(client):
    a = png_array(get(client, "/api/view.png", item=0, w=16, h=16).content)
    b = png_array(get(client, "/api/view.png", item=4, w=16, h=16).content)
    walk = {t: png_array(get(client, "/api/interpolate.png", a=0, b=4, t=t, w=16, h=16).content)
            for t in (0, 0.5, 1)}
    assert np.abs(walk[0] - a).max() <= 2 / 255 and np.abs(walk[1] - b).max() <= 2 / 255
    za, zb = (client.space.items[i].z.double() for i in (0, 4))
    z = slerp(za, zb, torch.tensor([0.5]).double()).float()
    mid = load_run(client.space.run.path).render(z, (16, 16))
    assert np.abs(walk[0.5] - mid[0]).max() <= 2 / 255
    for bad in ({"a": 0, "b": 4, "t": 1.5}, {"a": 0, "b": 40, "t": 0}, {"a": 0, "b": 1}):
        assert get(client, "/api/interpolate.png", **bad).status_code == 400


def test_samples_need_a_variational_run(client, make_run):
    r = get(client, "/api/sample.png")
    assert r.status_code == 400 and "not variational" in r.text
    c, _ = client_for(make_run("vgon", data="builtin:shapes:16", variational=True))
    one, two = (get(c, "/api/sample.png", seed=s, w=16, h=16) for s in (1, 2))
    assert one.status_code == 200 and png_array(one.content).shape == (16, 16, 3)
    assert one.content != two.content


def test_an_upload_is_fitted_and_becomes_an_item(client):
    r = client.post("/api/upload", params={"token": TOKEN, "name": "mine"}, content=png_file(8, 8))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["split"] == "upload" and got["name"] == "mine" and got["seconds"] > 0
    assert got["id"] == 6 and np.isfinite(got["psnr"]) and got["refine_steps"] == 0
    assert get(client, "/api/info").json()["items"][6]["name"] == "mine"
    assert png_array(get(client, "/api/view.png", item=6, w=32, h=32).content).shape == (32, 32, 3)
    # Any size is resampled to the training size; refinement improves the fit.
    more = client.post("/api/upload", params={"token": TOKEN, "refine": 20}, content=png_file(30, 20)).json()
    assert more["refine_steps"] == 20 and more["name"] == "upload 2"
    once = client.post("/api/upload", params={"token": TOKEN}, content=png_file(30, 20)).json()
    assert more["psnr"] > once["psnr"]


def test_hostile_uploads_get_a_message_and_the_server_keeps_running(client, tmp_path, monkeypatch):
    files = {"garbage": garbage, "truncated": truncated_png}
    for name, write in files.items():
        write(tmp_path / name)
    row = b"\x00" * (1 + 20000 // 8)
    png_raw(tmp_path / "huge.png", 20000, 20000, 1, 0, row * 20000)
    cases = [(b"", 400, "empty"), ((tmp_path / "garbage").read_bytes(), 400, "not a usable image"),
             ((tmp_path / "truncated").read_bytes(), 400, "not a usable image"),
             ((tmp_path / "huge.png").read_bytes(), 413, "16-megapixel limit"),
             (flat_png(4000, 4100), 413, "4000x4100"),
             (png_file(1, 5), 400, "2x2")]
    for body, status, words in cases:
        r = client.post("/api/upload", params={"token": TOKEN}, content=body)
        assert r.status_code == status and words in r.text, r.text
        assert len(r.text.splitlines()) == 1 and str(tmp_path) not in r.text and "/tmp" not in r.text
    monkeypatch.setattr(server, "MAX_UPLOAD_BYTES", 1000)
    r = client.post("/api/upload", params={"token": TOKEN}, content=png_file(64, 64))
    assert r.status_code == 413 and "MiB limit" in r.text
    for bad in ("-1", "501", "x"):
        assert client.post("/api/upload", params={"token": TOKEN, "refine": bad},
                           content=png_file()).status_code == 400
    assert len(get(client, "/api/info").json()["items"]) == 6


def test_twenty_concurrent_requests_are_all_answered(client):
    def one(i):
        if i % 5 == 4:
            return client.post("/api/upload", params={"token": TOKEN}, content=png_file(8, 8)).status_code
        kind = ("view", "bicubic", "interpolate", "view")[i % 5]
        return get(client, f"/api/{kind}.png", item=i % 6, a=0, b=1, t=0.3, w=64, h=64).status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(one, range(20))) == [200] * 20
    assert [it.split for it in client.space.items].count("upload") == 4


def test_onnx_backend_renders_as_torch_does(image_run):
    export_run(load_run(image_run))
    c_onnx, _ = client_for(image_run, backend="onnx")
    c_torch, _ = client_for(image_run)
    args = dict(item=2, x0=-0.3, x1=0.2, y0=-0.1, y1=0.4, w=40, h=30)
    a = png_array(get(c_onnx, "/api/view.png", **args).content)
    b = png_array(get(c_torch, "/api/view.png", **args).content)
    assert np.abs(a - b).max() <= 2 / 255
    export_run(load_run(image_run), int8=True)  # --decoder: another exported file, e.g. int8
    c_int8, _ = client_for(image_run, backend="onnx", decoder=str(image_run / "decoder_int8.onnx"))
    q = png_array(get(c_int8, "/api/view.png", **args).content)
    assert q.shape == a.shape and np.abs(q - a).mean() < 4 / 255
    with pytest.raises(InputError, match="--backend onnx"):
        Space(load_run(image_run), "torch", decoder=str(image_run / "decoder_int8.onnx"))


def test_shape_run_previews_slices_and_meshes(make_run):
    run = make_run("sdf", data="builtin:shapes3d:6", modality="sdf", hidden=16, sdf_points=64,
                   sdf_samples=512, val_fraction=0.34)
    c, space = client_for(run, items=2)
    info = get(c, "/api/info").json()
    assert info["modality"] == "sdf"
    assert [it["split"] for it in info["items"]] == ["train"] * 2 + ["held-out"] * 2
    assert png_array(get(c, "/api/item/0/preview.png").content).shape[:2] == (192, 192)
    sl = get(c, "/api/slice.png", item=1, axis="x", t=0.2, size=48)
    assert sl.status_code == 200 and png_array(sl.content).shape == (48, 48, 3)
    for bad in ({"item": 1, "axis": "w"}, {"item": 1, "t": 3}, {"item": 9}):
        assert get(c, "/api/slice.png", **bad).status_code == 400
    for path in ("/api/view.png", "/api/bicubic.png", "/api/interpolate.png", "/api/sample.png"):
        r = get(c, path, item=0, a=0, b=1, t=0.5)  # an image route on a shape run
        assert r.status_code == 400 and "for image runs" in r.text
    assert "for image runs" in c.post("/api/upload", params={"token": TOKEN}, content=png_file()).text
    r = get(c, "/api/mesh", item=0, resolution=16)
    if r.status_code == 200:  # an untrained SDF may have no zero crossing: then one line, 400
        assert r.content.startswith(b"ply") and ".ply" in r.headers["content-disposition"]
    else:
        assert r.status_code == 400 and "does not cross zero" in r.text
    assert get(c, "/api/mesh", item=0, resolution=5000).status_code == 400


def refused(capsys, *args, words):
    code, _, err = run_cli(capsys, "explore", *args)
    assert_input_error(code, err, *words)


def test_command_errors_are_one_line(capsys, image_run, tmp_path):
    refused(capsys, image_run, "--port", "70000", words=["--port"])
    refused(capsys, tmp_path / "missing", words=["missing"])
    refused(capsys, image_run, "--backend", "onnx", words=["export"])
    refused(capsys, image_run, "--backend", "tf", words=["--backend"])
    refused(capsys, image_run, "--host", "no.such.host.invalid", words=["--host"])


def start_command(run, *args):
    """`inr-gon explore RUN --port 0` in a subprocess: (process, address with token)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "inr_gon", "explore", str(run), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def test_the_command_serves_and_stops_cleanly_on_ctrl_c(image_run):
    started = time.perf_counter()
    proc, address = start_command(image_run)
    try:
        assert address.startswith("http://127.0.0.1:") and "/?token=" in address
        with urllib.request.urlopen(address, timeout=30) as r:
            assert r.status == 200 and b"explore.js" in r.read()
        assert time.perf_counter() - started < 30  # the 2 s target is measured in docs/explore.md
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(address.split("?")[0] + "api/info", timeout=30)
        assert e.value.code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "stopped" in err and "Traceback" not in err


def test_a_port_in_use_is_one_line(image_run, capsys):
    proc, address = start_command(image_run)
    try:
        port = address.split(":")[2].split("/")[0]
        refused(capsys, image_run, "--port", port, words=["cannot listen", port])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_the_gallery_loads_in_the_background(image_run):
    space = Space(load_run(image_run), "torch", 64 * 2**20)
    c = TestClient(create_app(space, TOKEN))
    release = threading.Event()

    def slow(s, n):
        release.wait(30)
        return images.load_gallery(s, n)

    loaded = space.load_in_background(slow, 2)
    first = get(c, "/api/info").json()
    assert first["loading"] is True and first["items"] == []
    release.set()
    loaded.result(30)
    done = get(c, "/api/info").json()
    assert done["loading"] is False and len(done["items"]) == 4 and done["note"] is None

    def broken(s, n):
        raise ValueError("bad file")

    space.load_in_background(broken, 2).result(30)
    assert "ValueError: bad file" in get(c, "/api/info").json()["note"]


def test_an_address_beyond_loopback_is_served_with_a_warning(image_run):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "inr_gon", "explore", str(image_run), "--port", "0",
                             "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        warning = proc.stderr.readline()
        address = proc.stdout.readline()
        assert warning.startswith("warning: --host 0.0.0.0: the page is reachable from other machines")
        assert address.startswith("http://0.0.0.0:") and "token=" in address
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_every_static_file_is_package_data():
    """The page's files install with the package (pyproject's package-data), and the server
    serves exactly those."""
    tomllib = pytest.importorskip("tomllib")
    root = Path(server.__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    static = sorted(p.name for p in server.STATIC.iterdir())
    assert static == sorted([*server.STATIC_TYPES, "index.html"])
    assert all(any(fnmatch(f"static/{name}", g) for g in globs["inr_gon.explore"]) for name in static)
