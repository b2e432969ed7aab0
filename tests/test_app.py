"""`tv3dg app` in a real browser: headless Chromium (the system package) driven by Playwright.

One app server (the real `tv3dg app` command, bundled mini prior) serves every test of this
module; each test opens its own browser context, i.e. its own Gradio session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from canvas_pixels import CHROMIUM, CHROMIUM_ARGS, canvas_png, framing
from tv3dg.gaussians.formats import load
from tv3dg.gaussians.ply import load_ply

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from app_server import FAST as APP_FAST  # noqa: E402
from app_server import SMALL_MESH  # noqa: E402

pytestmark = pytest.mark.slow

# The app benchmarks' smaller exports, set the way a user would: key=value on the command line.
FAST = [*APP_FAST, SMALL_MESH]
RUN_TIMEOUT_MS = 240_000  # a 20-step run is ~15 s alone; two sessions queue behind each other


@dataclass
class Server:
    url: str
    runs: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    runs = tmp_path_factory.mktemp("runs")
    log = open(tmp_path_factory.mktemp("log") / "app.log", "w+")
    port = _free_port()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    process = subprocess.Popen(
        [sys.executable, "-m", "tv3dg.cli", "app", "--port", str(port), "--runs", str(runs),
         "--max-upload", "2mb", *FAST], stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                process.kill()
                pytest.fail(f"tv3dg app did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
    yield Server(url, runs)
    process.terminate()
    process.wait(30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing; `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _open(browser, server: Server):
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    page.locator("#prompt textarea, #prompt input").first.wait_for()
    return page


def _start(page, prompt: str, steps: int) -> None:
    page.locator("#prompt textarea, #prompt input").first.fill(prompt)
    page.locator("#steps input").fill(str(steps))
    page.locator("#generate").click()


def _wait_done(page, state: str = "done") -> str:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text(f"{state}:", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#status")).not_to_contain_text("processing")  # the progress overlay has gone
    return page.locator("#status").inner_text()


def _viewer(page):
    """The splat viewer's canvas (inside its iframe) once the asset is drawn."""
    frame = page.frame_locator("#asset iframe")
    frame.locator("canvas").wait_for(timeout=60_000)
    page.locator("#asset iframe").element_handle().content_frame().wait_for_function(
        "window.tv3dgViewer.ready || window.tv3dgViewer.error", timeout=90_000)
    return frame.locator("canvas")


def _check_framing(page, label: str):
    """The object fills 25-85% of the viewer's width, centred, on a light background."""
    page.wait_for_timeout(1500)  # a few frames of the software-GL renderer
    result = framing(canvas_png(page, _viewer(page)))
    print(f"{label}: {result}")
    result.check()


def _run_folders(server: Server) -> set[Path]:
    return set(server.runs.iterdir())


def _downloaded_zip(page, tmp_path: Path) -> zipfile.ZipFile:
    with page.expect_download() as download:
        page.locator("#download a").first.click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    return zipfile.ZipFile(target)


def test_a_short_generation_in_the_browser(browser, server, tmp_path):
    from playwright.sync_api import expect

    before = _run_folders(server)
    page = _open(browser, server)
    _start(page, "a red striped cube", 20)
    status = _wait_done(page)
    assert "20 steps" in status and "attribute accuracy" in status
    new = _run_folders(server) - before
    assert len(new) == 1 and next(iter(new)).name.split("-")[2:6] == ["a", "red", "striped", "cube"]
    _check_framing(page, "first load")  # the interactive splat viewer frames the object
    expect(page.locator("#preview img")).to_have_count(1)  # the live preview's last render
    run_dir = next(iter(new))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    links = page.locator("#asset_files a[download]")
    expect(links).to_have_count(2)  # asset.ply and asset.spz, the default export.formats
    for index in range(2):
        with page.expect_download() as download:
            links.nth(index).click()
        asset = tmp_path / download.value.suggested_filename
        download.value.save_as(asset)
        assert load(asset).num_points == metrics["num_gaussians"] > 0
    assert sorted(p.name for p in tmp_path.glob("asset.*")) == ["asset.ply", "asset.spz"]
    with _downloaded_zip(page, tmp_path) as archive:
        names = set(archive.namelist())
    for name in ("asset.ply", "asset.spz", "mesh.glb", "turntable.mp4", "views.png", "visual_prompt.png", "config.yaml",
                 "metrics.json", "checkpoints/last.safetensors"):
        assert f"{run_dir.name}/{name}" in names, name
    expect(page.locator("#mesh canvas")).to_have_count(1, timeout=60_000)
    screenshot = os.environ.get("TV3DG_APP_SCREENSHOT")  # docs/app.png is made this way
    if screenshot:
        time.sleep(15)  # let the software-GL viewers draw the splats and the mesh
    expect(page.locator("#gallery img")).to_have_count(1)
    page.screenshot(path=screenshot or str(tmp_path / "app.png"), full_page=True)
    page.context.close()

    later = _open(browser, server)  # a past run can be reopened from the gallery
    later.locator("#gallery img").first.click()
    expect(later.locator("#status")).to_contain_text(run_dir.name, timeout=60_000)
    _check_framing(later, "reopened from the gallery")
    later.context.close()


def _write(path: Path, image: Image.Image) -> Path:
    image.save(path)
    return path


def test_bad_input_shows_the_command_line_message_and_leaves_no_folder(browser, server, tmp_path):
    from playwright.sync_api import expect

    before = _run_folders(server)
    page = _open(browser, server)
    page.locator("#generate").click()
    expect(page.get_by_text("the prompt is empty")).to_be_visible(timeout=30_000)
    deep = _write(tmp_path / "deep.png", Image.fromarray(np.full((64, 64), 40000, np.uint16)))  # 16 bits
    page.locator("#image input[type=file]").set_input_files(str(deep))
    _start(page, "a red striped cube", 20)
    expect(page.get_by_text("has more than 8 bits per channel; save it as 8-bit RGB(A)")).to_be_visible(timeout=30_000)
    assert _run_folders(server) == before
    assert "Traceback" not in page.content()
    page.context.close()


def test_two_sessions_at_once_each_get_their_own_result(browser, server):
    from playwright.sync_api import expect

    pages = [_open(browser, server) for _ in range(2)]
    prompts = ["a blue checkered sphere", "a green torus"]
    for page, prompt in zip(pages, prompts):
        _start(page, prompt, 10)
    # One generation per device: the second session waits and sees its place in the queue.
    expect(pages[1].locator("#status")).to_contain_text("queue: 1/", timeout=30_000)
    for page, prompt, other in zip(pages, prompts, reversed(prompts)):
        status = _wait_done(page)
        assert prompt.replace(" ", "-") in status and other.replace(" ", "-") not in status
        expect(_viewer(page)).to_have_count(1)
    for page in pages:
        page.context.close()


def test_stop_ends_at_a_step_boundary_and_writes_every_output(browser, server):
    from playwright.sync_api import expect

    page = _open(browser, server)
    _start(page, "a yellow cone", 400)
    expect(page.locator("#status")).to_contain_text("step ", timeout=RUN_TIMEOUT_MS)
    page.locator("#stop").click()
    status = _wait_done(page, "stopped")
    run_dir = Path(status.split("→")[1].split("\n")[0].strip())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["interrupted"] and 1 <= metrics["steps"] < 400
    assert load_ply(run_dir / "asset.ply").num_points == metrics["num_gaussians"]
    page.context.close()


def test_the_generate_api_with_gradio_client(server):
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False)
    example = Path(__file__).parents[1] / "examples" / "yellow_striped_cube.png"
    asset, mesh, turntable, views, metrics = client.predict(
        "a cylinder", handle_file(str(example)), "style", "vpcsm", 10, 1, api_name="/generate")
    assert load_ply(asset).num_points == metrics["num_gaussians"]
    assert Path(metrics["visual_prompt"]).name == "input_image.png"  # the upload, kept in the run folder
    assert Path(mesh).suffix == ".glb" and Path(views).suffix == ".png" and metrics["steps"] == 10
    with pytest.raises(Exception, match="steps must be at least 1"):
        client.predict("a cylinder", None, "texture", "vpcsm", 0, 1, api_name="/generate")


def test_a_past_run_reopens_framed_in_the_splat_viewer(browser, server, tmp_path):
    """The sample asset as a finished run: the gallery reopens it, the viewer frames it on a light
    background and both asset files are offered (this needs no generation, so it stays quick)."""
    from playwright.sync_api import expect

    from tv3dg.gaussians.formats import save
    from tv3dg.gaussians.synthetic import SAMPLE_ASSET

    run_dir = server.runs / "20000101-000000-the-sample-asset"
    run_dir.mkdir()
    sample = load(SAMPLE_ASSET)
    save(run_dir / "asset.ply", sample)
    save(run_dir / "asset.spz", sample)
    Image.new("RGB", (32, 32), "white").save(run_dir / "views.png")
    (run_dir / "metrics.json").write_text(json.dumps({"steps": 1, "time_s": 1.0, "num_gaussians": sample.num_points}))
    page = _open(browser, server)
    page.get_by_text("Refresh").click()
    page.locator("#gallery img").last.click()  # the oldest run, listed last
    expect(page.locator("#status")).to_contain_text(run_dir.name, timeout=60_000)
    _check_framing(page, "sample reopened")
    expect(page.locator("#asset_files a[download]")).to_have_count(2)
    page.context.close()
