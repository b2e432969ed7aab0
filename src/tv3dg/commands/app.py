"""`tv3dg app`: the web app (Gradio) over the same generation as `tv3dg generate`."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from tv3dg.commands.arguments import add_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="a web app to generate, watch and download assets (needs tv3dg[app])",
        description="Serve a web page that runs `tv3dg generate` from the browser, one run at a time per device. "
        "Model paths and key=value config overrides given here apply to every run; the page sets the prompt, "
        "visual prompt, mode, loss, steps, seed and the advanced guidance options.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--config", help="preset name (mini, sd15) or a YAML file (default mini)")
    parser.add_argument("--model", help="SD-1.5 diffusers folder or cached HF id (sets prior.model)")
    parser.add_argument("--ip-adapter", help="IP-Adapter SD-1.5 .safetensors (sets prior.ip_adapter)")
    parser.add_argument("--image-encoder", help="the adapter's CLIP image-encoder folder (sets prior.image_encoder; "
                        "default: image_encoder/ beside the adapter)")
    parser.add_argument("--runs", type=Path, default=Path("runs/app"), help="folder of the runs (default runs/app)")
    parser.add_argument("--max-steps", type=int, default=2000, help="most steps a page may ask for (default 2000)")
    parser.add_argument("--max-upload", default="20mb", help="largest visual prompt upload (default 20mb)")
    parser.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD",
                        help="require sign-in with this account (repeat for more users); each user sees only "
                        "their own past runs")
    parser.add_argument("--auth-file", type=Path, metavar="FILE",
                        help="require sign-in with the accounts in FILE, one user:password a line")
    parser.add_argument("--keep-runs", type=int, metavar="N",
                        help="keep only the N latest finished runs (default: keep every run)")
    parser.add_argument("--max-runs-gb", type=float, metavar="X",
                        help="delete the oldest finished runs while the runs folder takes more than X GB "
                        "(default: no limit)")
    add_overrides(parser, "export.turntable_frames=24, applied to every run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.app.access import open_server_warning, read_accounts
    from tv3dg.app.retention import Retention
    from tv3dg.app.uploads import private_upload_folder
    from tv3dg.errors import warn

    accounts = read_accounts(args.auth, args.auth_file)
    retention = Retention.from_command_line(args.keep_runs, args.max_runs_gb)
    uploads = private_upload_folder()  # before Gradio is imported: it reads the folder once

    from tv3dg.app import require_gradio

    require_gradio()
    from tv3dg.app.inputs import AppSettings
    from tv3dg.app.page import build_app, launch_options

    paths = {"model": args.model, "ip_adapter": args.ip_adapter, "image_encoder": args.image_encoder}
    settings = AppSettings.from_command_line(args.config, paths, args.overrides, args.runs, args.max_steps,
                                             uploads, retention)
    warning = open_server_warning(args.host, accounts)
    if warning:
        warn(warning)
    app = build_app(settings)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        app.queue().launch(server_name=args.host, server_port=args.port,
                           **launch_options(settings, args.max_upload, accounts))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    """A `kill` or a service manager's stop ends the app as Ctrl-C does: Gradio closes the server
    and the exit handlers run (they remove the private upload folder)."""
    raise KeyboardInterrupt
