"""The explore page in a real browser: Playwright for Python driving Debian's Chromium (never
`playwright install`, whose browser download is not reachable here). Loads the page, zooms with
the wheel, pans with a drag, moves the interpolation slider, uploads an image and a non-image,
and checks what the page shows; saves a screenshot (INR_GON_SCREENSHOTS=DIR: there as well)."""

import contextlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image

from inr_gon.explore import images, shapes
from inr_gon.explore.server import create_app
from inr_gon.explore.space import Space
from inr_gon.run import load_run

CHROMIUM = shutil.which("chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-token"



@contextlib.contextmanager
def serving(app):
    """The app on a free loopback port in a thread: its base address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def browser():
    """Chromium through Playwright; skipped with one line where either is missing, except in CI
    (CI=true), whose .ci/run installs Chromium: there a missing browser fails."""
    missing = ("chromium is not installed (apt-get install chromium)" if CHROMIUM is None else None)
    try:
        from playwright import sync_api
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(missing)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def screenshot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=tmp_path / name, full_page=True)
    assert (tmp_path / name).stat().st_size > 1000
    if os.environ.get("INR_GON_SCREENSHOTS"):
        shutil.copy(tmp_path / name, Path(os.environ["INR_GON_SCREENSHOTS"]) / name)


def wait_text(page, element: str, text: str, start: bool = False) -> None:
    how = "startsWith" if start else "includes"
    page.wait_for_function(f"document.getElementById({element!r}).textContent.{how}({text!r})")


def test_the_image_page_in_chromium(browser, make_run, tmp_path):
    run = os.environ.get("INR_GON_EXPLORE_RUN") or make_run(
        data="builtin:shapes:16", hidden=32, latent_init=5.0, val_fraction=0.25)
    space = Space(load_run(run), "torch", 256 * 2**20)
    assert images.load_gallery(space, 3) is None
    n = len(space.items)
    pics = tmp_path / "pics"
    pics.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(pics / "mine.png")
    (pics / "notes.png").write_bytes(b"this is not an image at all")
    with serving(create_app(space, TOKEN)) as base:
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"outside request {r.url}")
                if not r.url.startswith((base, "blob:", "data:")) else None)
        page.goto(f"{base}?token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator(".card").count() == n
        assert "dB" in page.locator(".card").first.inner_text()
        assert "image run, " in page.inner_text("#run-info")
        page.wait_for_function("document.getElementById('zoom-decoder').dataset.renders >= 1")
        before = page.inner_text("#zoom-rect")
        assert "zoom 1.00x" in before

        # Wheel over the decoder view: zoom in at the pointer, rendered again on demand.
        box = page.locator("#zoom-decoder").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
        page.mouse.wheel(0, -400)
        page.wait_for_function("!document.getElementById('zoom-rect').textContent.includes('zoom 1.00x')")
        zoomed = page.inner_text("#zoom-rect")
        assert float(zoomed.split("zoom ")[1].rstrip("x")) > 1.5
        # Drag: pan.
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6, steps=4)
        page.mouse.up()
        page.wait_for_function(f"document.getElementById('zoom-rect').textContent !== {zoomed!r}")
        assert "zoom" in page.inner_text("#zoom-rect")

        # The interpolation slider.
        page.select_option("#walk-b", "4")
        page.locator("#walk-t").fill("0.8")
        wait_text(page, "walk-caption", "t = 0.80", start=True)

        # An upload: fitted, shown at 4x beside bicubic, added to the gallery.
        page.set_input_files("#upload-file", str(pics / "mine.png"))
        page.fill("#upload-refine", "3")
        page.click("#upload-button")
        wait_text(page, "upload-caption", "fitted in")
        assert "3 refinement steps" in page.inner_text("#upload-caption")
        assert page.locator("#upload-result").is_visible()
        page.wait_for_function(f"document.querySelectorAll('.card').length === {n + 1}")
        screenshot(page, tmp_path, "explore_image.png")

        # A non-image: one line on the page, and the server goes on serving.
        page.set_input_files("#upload-file", str(pics / "notes.png"))
        page.click("#upload-button")
        wait_text(page, "upload-message", "not a usable")
        assert page.inner_text("#upload-message").startswith("error: not a usable image")
        page.locator("#walk-t").fill("0.2")
        wait_text(page, "walk-caption", "t = 0.20", start=True)
        assert errors == []


def test_the_shape_page_in_chromium(browser, make_run, tmp_path):
    run = os.environ.get("INR_GON_EXPLORE_SDF_RUN") or make_run(
        data="builtin:shapes3d:6", modality="sdf", hidden=16, sdf_points=64, sdf_samples=512,
        val_fraction=0.34)
    space = Space(load_run(run), "torch", 256 * 2**20)
    assert shapes.load_gallery(space, 2) is None
    with serving(create_app(space, TOKEN)) as base:
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}?token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        assert "sdf run" in page.inner_text("#run-info")
        assert page.locator(".card").count() == len(space.items)
        assert page.locator("#zoom-section").is_hidden() and page.locator("#slice-section").is_visible()
        page.wait_for_function("document.getElementById('slice-image').src.startsWith('blob:')")
        first = page.get_attribute("#slice-image", "src")
        page.select_option("#slice-axis", "y")
        page.locator("#slice-t").fill("0.3")
        wait_text(page, "slice-t-value", "0.30")
        page.wait_for_function(f"document.getElementById('slice-image').src !== {first!r}")
        page.fill("#mesh-resolution", "32")
        href = page.get_attribute("#mesh-link", "href")
        assert "api/mesh?" in href and "resolution=32" in href and f"token={TOKEN}" in href
        page.locator(".card").nth(1).click()
        assert "item=1" in page.get_attribute("#mesh-link", "href")
        screenshot(page, tmp_path, "explore_shapes.png")
        assert errors == []
