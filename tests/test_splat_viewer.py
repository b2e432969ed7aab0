"""The app's splat viewer (Spark, a third-party WebGL renderer from npm) in headless Chromium:
it frames the asset, and Spark's own decoders open our .spz, compressed .ply, .splat and .ply
(the sample asset) and show the object centred, judged by the canvas's pixels."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from canvas_pixels import CHROMIUM, CHROMIUM_ARGS, canvas_png, framing
from tv3dg.app.splat_viewer import SPARK_MODULE, VIEWER_DIR
from tv3dg.gaussians.formats import FORMATS, load, save
from tv3dg.gaussians.synthetic import SAMPLE_ASSET
from tv3dg.render.cameras import bounding_radius

pytestmark = pytest.mark.slow
SPARK_FORMATS = ["ply", "compressed.ply", "spz", "splat"]  # what Spark reads (it has no glTF loader)


class _Files(http.server.SimpleHTTPRequestHandler):
    """/viewer/... from the viewer folder, /assets/... from the test's folder."""

    roots: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        first, _, rest = path.split("?")[0].lstrip("/").partition("/")
        return str(self.roots[first] / rest) if first in self.roots else "/nonexistent"

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not SPARK_MODULE.is_file():
        pytest.fail(f"{SPARK_MODULE} is missing; `make viewer` installs the viewer's npm packages")
    assets = tmp_path_factory.mktemp("assets")
    sample = load(SAMPLE_ASSET)
    for name in SPARK_FORMATS:
        save(assets / f"sample{FORMATS[name].suffix}", sample)
    handler = type("Files", (_Files,), {"roots": {"viewer": VIEWER_DIR, "assets": assets}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bounding_radius(sample)
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def shown(browser, url: str, width: int = 480, height: int = 320) -> bytes:
    """The viewer's canvas once Spark has loaded the asset and drawn a few frames."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_function("window.tv3dgViewer.ready || window.tv3dgViewer.error", timeout=90_000)
    state = page.evaluate("window.tv3dgViewer")
    assert state["error"] is None, state["error"]
    page.wait_for_timeout(1000)
    png = canvas_png(page, page.locator("canvas"))
    page.close()
    return png


@pytest.mark.parametrize("name", SPARK_FORMATS)
def test_spark_shows_our_files_framed(served, browser, name, tmp_path):
    base, radius = served
    png = shown(browser, f"{base}/viewer/index.html?asset=../assets/sample{FORMATS[name].suffix}&radius={radius:.4g}")
    (tmp_path / "canvas.png").write_bytes(png)
    result = framing(png)
    print(f"{name}: {result}")
    result.check()
    assert result.object_pixels > 0.1 * 480 * 320  # the ball, not a speck


def test_a_tall_canvas_still_holds_the_whole_object(served, browser):
    base, radius = served
    result = framing(shown(browser, f"{base}/viewer/index.html?asset=../assets/sample.ply&radius={radius:.4g}", 240, 400))
    result.check()


def test_an_idle_viewer_stops_drawing_and_a_drag_draws_again(served, browser):
    """Left open in a tab, the viewer costs no CPU or GPU; orbiting it redraws."""
    base, radius = served
    page = browser.new_page(viewport={"width": 480, "height": 320})
    page.goto(f"{base}/viewer/index.html?asset=../assets/sample.spz&radius={radius:.4g}")
    page.wait_for_function("window.tv3dgViewer.ready || window.tv3dgViewer.error", timeout=90_000)
    state = "window.tv3dgViewer"
    page.wait_for_function(f"{state}.frames > 0 && !{state}.drawing", timeout=120_000)  # loaded, sorted, settled
    settled = page.evaluate(f"{state}.frames")
    page.wait_for_timeout(1500)
    assert page.evaluate(f"{state}.frames") == settled  # idle: the draw loop is off
    page.mouse.move(240, 160)
    page.mouse.down()
    page.mouse.move(300, 170, steps=5)
    page.mouse.up()
    page.wait_for_function(f"{state}.frames > {settled}", timeout=30_000)
    page.close()


def test_a_missing_asset_is_reported_on_the_page(served, browser):
    base, _ = served
    page = browser.new_page()
    page.goto(f"{base}/viewer/index.html?asset=../assets/none.spz&radius=1")
    page.wait_for_function("window.tv3dgViewer.ready || window.tv3dgViewer.error", timeout=90_000)
    assert "could not show the asset" in page.locator("#message").inner_text()
    page.close()
