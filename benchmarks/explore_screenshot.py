"""The README's picture of `inr-gon explore`: the page of a trained run in Chromium (Playwright),
a held-out item selected and zoomed in once with the wheel at its centre; the top of the page.

    python benchmarks/explore_screenshot.py RUN --out docs/explore_readme.png

RUN: the demo's run (`inr-gon demo --out RUN`). Debian's chromium (`which chromium`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright import sync_api

from inr_gon.explore import images
from inr_gon.explore.space import Space
from inr_gon.run import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser test's server and flags: one place
from test_explore_browser import ARGS, TOKEN, serving  # noqa: E402

from inr_gon.explore.server import create_app  # noqa: E402


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("run")
    ap.add_argument("--out", default=str(ROOT / "docs" / "explore_readme.png"))
    args = ap.parse_args()
    space = Space(load_run(args.run), "torch", 512 * 2**20)
    images.load_gallery(space, 4)  # 4 training and 4 held-out items, as the command's
    with serving(create_app(space, TOKEN)) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.set_default_timeout(120_000)  # the gallery is rendered on a 2-core CPU
        page.goto(f"{base}?token={TOKEN}")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_function("document.querySelectorAll('.card').length >= 4")
        cards = page.locator(".card")
        cards.nth(cards.count() - 2).click()  # a held-out item
        page.wait_for_function("document.getElementById('zoom-decoder').dataset.renders >= 1")
        box = page.locator("#zoom-decoder").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.mouse.wheel(0, -200)
        page.wait_for_function("!document.getElementById('zoom-rect').textContent.includes('zoom 1.00x')")
        page.wait_for_timeout(1500)  # the view at the new zoom, rendered
        page.screenshot(path=args.out)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
