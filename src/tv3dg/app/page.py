"""The app's page: inputs, live progress and preview, results, past runs, and the `/generate` API.

Every generation (from the page or the API) goes through one queue slot per device
(`concurrency_id="device"`), so users wait their turn and see their place in the queue; each
session's outputs are returned to that session only. With sign-in, each user's past runs are
theirs only; `/stop` stops the caller's own running generation, as the page's Stop button does.
"""

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from tv3dg.app import require_gradio
from tv3dg.app.inputs import AppSettings, PageInputs
from tv3dg.app.jobs import Finished, Sessions, run_job
from tv3dg.app.runs import runs_for, zip_run
from tv3dg.app.splat_viewer import SplatView, viewer_paths
from tv3dg.distill.objectives import LOSS_NAMES
from tv3dg.errors import UserError
from tv3dg.gaussians.formats import FORMATS

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web-font download
MONO_FONTS = ["ui-monospace", "monospace"]
VIEWER = {"clear_color": (1.0, 1.0, 1.0, 1.0), "camera_position": (None, None, 4.0)}  # white, as the renders
VIEWER_HEIGHT = 320
# Small images (the mini prior's 64 px visual prompt) fill their box instead of sitting in a corner.
CSS = "#visual_prompt img, #preview img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}"


def run_files(run_dir: Path) -> dict[str, Any]:
    """The files of a finished run, as the result components show them (absent ones as None)."""
    import json

    def existing(name: str) -> str | None:
        path = run_dir / name
        return str(path) if path.is_file() else None

    return {
        "asset": existing("asset.ply"),
        "asset_files": [path for fmt in FORMATS.values() if (path := existing(f"asset{fmt.suffix}"))] or None,
        "mesh": existing("mesh.glb"),
        "turntable": existing("turntable.mp4") or existing("turntable.gif"),
        "views": existing("views.png"),
        "visual_prompt": existing("visual_prompt.png"),
        "metrics": json.loads((run_dir / "metrics.json").read_text()),
    }


def summary(run_dir: Path, metrics: dict) -> str:
    """One status line for a finished run, with the mini prior's attribute reading when present."""
    state = "stopped" if metrics.get("interrupted") else "done"
    text = f"**{state}**: {metrics['steps']} steps in {metrics['time_s']:.1f} s → `{run_dir}`"
    attributes = metrics.get("attributes")
    if attributes:
        scores = ", ".join(f"{name} {value:.0%}" for name, value in attributes["prompt"].items())
        text += f"  \nattribute accuracy over {attributes['views']} views vs the prompt: {scores}"
    return text


def build_app(settings: AppSettings) -> Any:
    """The `gr.Blocks` of the app (launch it with `launch_options`)."""
    gr = require_gradio()
    defaults = settings.defaults()
    sessions = Sessions()
    zips = Path(tempfile.mkdtemp(prefix="tv3dg-app-zips-"))  # downloads, rebuilt on demand
    atexit.register(shutil.rmtree, zips, ignore_errors=True)

    def plain(value: Any) -> float | None:
        return value if isinstance(value, (int, float)) else None  # a schedule stays the preset's

    with gr.Blocks(title="tv3dg", analytics_enabled=False) as demo:
        gr.Markdown("# tv3dg\nText + optional visual prompt → 3D Gaussian Splatting asset, mesh and turntable "
                    "(TV-3DG: VPCSM + SGC).")
        with gr.Row():
            with gr.Column(scale=1):
                prompt = gr.Textbox(label="Prompt", placeholder="a red striped cube", elem_id="prompt")
                image = gr.File(label="Visual prompt (optional: an 8-bit PNG/JPEG; "
                                "transparency becomes the background; without it a sample of the prompt is used)", file_types=["image"], elem_id="image")
                mode = gr.Radio(["texture", "style"], value=defaults.prior.ip_mode, label="Mode",
                                info="texture: the image shows the object; style: take only its look")
                loss = gr.Dropdown(list(LOSS_NAMES), value=defaults.distill.loss, label="Loss")
                with gr.Row():
                    # No minimum/maximum here: out-of-range steps get the command line's message.
                    steps = gr.Number(value=defaults.steps, precision=0, label=f"Steps (1 to {settings.max_steps})",
                                      elem_id="steps")
                    seed = gr.Number(value=defaults.seed, precision=0, label="Seed", elem_id="seed")
                with gr.Accordion("Advanced", open=False):
                    cfg = gr.Number(value=plain(defaults.distill.cfg_scale), label="CFG scale")
                    pag = gr.Number(value=plain(defaults.distill.pag_scale), label="PAG scale (VPCSM)")
                    ip_scale = gr.Number(value=defaults.prior.ip_scale, label="IP-Adapter scale")
                    sgc = gr.Checkbox(value=defaults.sgc.enabled, label="SGC (semantic-geometry calibration)")
                with gr.Row():
                    run_button = gr.Button("Generate", variant="primary", elem_id="generate")
                    stop_button = gr.Button("Stop", elem_id="stop")
                status = gr.Markdown(elem_id="status")
                preview = gr.Image(label="Preview (the current Gaussians)", interactive=False, height=200,
                                   elem_id="preview")
            with gr.Column(scale=2):
                with gr.Row():
                    splat_view = SplatView(gr, VIEWER_HEIGHT, VIEWER)
                    asset = splat_view.component
                    mesh = gr.Model3D(label="Mesh (mesh.glb)", elem_id="mesh", height=VIEWER_HEIGHT, **VIEWER)
                with gr.Row():
                    turntable = gr.Video(label="Turntable", elem_id="turntable", height=200)
                    views = gr.Image(label="views.png", elem_id="views", height=200)
                    visual_prompt = gr.Image(label="Visual prompt", elem_id="visual_prompt", height=200)
                with gr.Row():
                    metrics = gr.JSON(label="metrics.json", elem_id="metrics", open=False)
                    asset_files = gr.File(label="Gaussians in every format written (export.formats)",
                                          file_count="multiple", elem_id="asset_files")
                    download = gr.File(label="Run folder (zip)", elem_id="download")
        with gr.Accordion("Past runs (click one to reopen it)"):
            refresh = gr.Button("Refresh", size="sm")
            gallery = gr.Gallery(columns=8, height=180, object_fit="contain", allow_preview=False, elem_id="gallery",
                                 show_label=False)
            listed = gr.State([])
        current = gr.State(None)  # this session's last run folder
        api_trigger = gr.Button(visible=False)
        api_asset = gr.File(visible=False)  # the API's asset.ply (the page shows it in the viewer)

        results = [asset, asset_files, mesh, turntable, views, visual_prompt, metrics, download]

        def shown(run_dir: Path) -> list:
            files = run_files(run_dir)
            return [summary(run_dir, files["metrics"]), splat_view.value(files["asset"]), files["asset_files"],
                    files["mesh"], files["turntable"], files["views"], files["visual_prompt"], files["metrics"],
                    str(zip_run(run_dir, zips))]

        def generate_on_page(text, upload, mode_, loss_, steps_, seed_, cfg_, pag_, ip_, sgc_,
                             request: gr.Request, progress=gr.Progress()) -> Iterator[dict]:
            inputs = PageInputs(text, upload, mode_, loss_, steps_, seed_, cfg_, pag_, ip_, sgc_)
            stop = sessions.open(request.session_hash)
            try:
                for event in run_job(settings, inputs, stop, request.username):
                    if isinstance(event, Finished):
                        yield {status: "finished; loading the results", current: str(event.result.out_dir)}
                    else:
                        progress((event.step, event.total), desc=event.describe())
                        update = {status: event.describe()}
                        if event.preview is not None:
                            update[preview] = event.preview
                        yield update
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from None
            finally:
                sessions.close(request.session_hash, stop)

        def stop_session(request: gr.Request) -> bool:
            """Stop this client's running generation after its current step; its outputs are still
            written and returned. False when it has none running."""
            stopping = sessions.stop(request.session_hash)
            if stopping:
                gr.Info("stopping after the current step; every output is still written")
            return stopping

        def generate_api(text: str, upload: str | None, mode_: str, loss_: str, steps_: float, seed_: float,
                         request: gr.Request) -> tuple:
            """Run one generation; returns asset.ply, mesh.glb, the turntable, views.png and metrics.json."""
            inputs = PageInputs(text, upload, mode_, loss_, steps_, seed_)
            stop = sessions.open(request.session_hash)
            try:
                events = run_job(settings, inputs, stop, request.username)
                finished = [e for e in events if isinstance(e, Finished)][0]
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from None
            finally:
                sessions.close(request.session_hash, stop)
            files = run_files(finished.result.out_dir)
            return files["asset"], files["mesh"], files["turntable"], files["views"], files["metrics"]

        def list_runs(request: gr.Request) -> tuple[list, list[str]]:
            runs = [p for p in runs_for(settings.runs, request.username) if (p / "views.png").is_file()]
            return [(str(p / "views.png"), p.name) for p in runs], [p.name for p in runs]

        def reopen(names: list[str], event: gr.SelectData) -> list:
            run_dir = settings.runs / names[event.index]
            if not (run_dir / "metrics.json").is_file():
                raise gr.Error(f"run {run_dir.name} is no longer kept (this app keeps only its latest runs); "
                               "press Refresh", print_exception=False)
            return shown(run_dir)

        def show_current(run_dir: str | None) -> list:
            return shown(Path(run_dir)) if run_dir else [gr.skip()] * (1 + len(results))

        inputs = [prompt, image, mode, loss, steps, seed, cfg, pag, ip_scale, sgc]
        # The result viewers are filled by a second, quick event: a 3D viewer that was an output of the
        # long-running event never draws its scene in the browser.
        run_button.click(
            generate_on_page, inputs, [status, preview, current], concurrency_limit=1, concurrency_id="device",
            show_progress_on=[status], api_visibility="private",
        ).success(show_current, current, [status, *results], api_visibility="private").then(
            list_runs, None, [gallery, listed], api_visibility="private")
        stopping = gr.Checkbox(visible=False)  # whether a Stop found a run to stop
        stop_button.click(stop_session, None, stopping, concurrency_limit=None, api_visibility="private")
        api_trigger.click(
            generate_api, [prompt, image, mode, loss, steps, seed], [api_asset, mesh, turntable, views, metrics],
            api_name="generate", concurrency_limit=1, concurrency_id="device",
        )
        api_stop = gr.Button(visible=False)
        api_stop.click(stop_session, None, stopping, api_name="stop", concurrency_limit=None)
        refresh.click(list_runs, None, [gallery, listed], api_visibility="private")
        gallery.select(reopen, listed, [status, *results], api_visibility="private")
        demo.load(list_runs, None, [gallery, listed], api_visibility="private")
    return demo


def launch_options(settings: AppSettings, max_upload: str, accounts: list[tuple[str, str]]) -> dict:
    """`Blocks.launch` arguments: serve the runs folder, cap uploads, use no web fonts; with
    `accounts` (user, password), Gradio's sign-in guards the page, the API and the files."""
    gr = require_gradio()
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    return {"allowed_paths": [str(settings.runs.resolve()), *viewer_paths()], "max_file_size": max_upload, "ssr_mode": False,
            "theme": theme, "css": CSS, "show_error": True, "auth": accounts or None}
