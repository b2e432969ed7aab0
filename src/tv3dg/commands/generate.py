"""`tv3dg generate`: text (+ optional visual prompt) -> 3D Gaussians, mesh and turntable."""

from __future__ import annotations

import argparse
from pathlib import Path

from tv3dg.commands.arguments import add_overrides
from tv3dg.distill.objectives import LOSS_NAMES, loss_help
from tv3dg.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="text (+ visual prompt) -> 3D Gaussian asset, mesh and turntable",
        description="Generate a 3D Gaussian Splatting asset from a text prompt and an optional visual prompt "
        "(TV-3DG: VPCSM + SGC). Any config key can be set as key=value, e.g. steps=300 sgc.enabled=false.",
    )
    parser.add_argument("--prompt", help="text prompt, e.g. \"a red striped cube\"")
    parser.add_argument("--image", help="visual prompt, a PNG/JPEG (transparency becomes the render background); "
                        "without it a sample of the prompt is used")
    parser.add_argument("--mode", choices=("texture", "style"), help="texture: image agrees with the text; style: take only its look")
    parser.add_argument("--loss", choices=LOSS_NAMES, help=loss_help())
    parser.add_argument("--config", help="preset name (mini, sd15) or a YAML file (default mini)")
    parser.add_argument("--model", help="SD-1.5 diffusers folder or cached HF id (sets prior.model)")
    parser.add_argument("--ip-adapter", help="IP-Adapter SD-1.5 .safetensors (sets prior.ip_adapter)")
    parser.add_argument("--image-encoder", help="the adapter's CLIP image-encoder folder (sets prior.image_encoder; "
                        "default: image_encoder/ beside the adapter)")
    parser.add_argument("--steps", type=int, help="optimisation steps")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR (its config.yaml, then overrides)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished or unfinished run already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_overrides(parser, "steps=300 sgc.enabled=false distill.t_min=1e-2")
    parser.set_defaults(func=run)


def flag_updates(args: argparse.Namespace) -> dict:
    """Config data from the explicit flags (only those given)."""
    updates: dict = {}
    for key, value in (("prompt", args.prompt), ("image", args.image), ("steps", args.steps), ("seed", args.seed)):
        if value is not None:
            updates[key] = value
    prior = prior_flag_updates(args)
    if args.mode is not None:
        prior["ip_mode"] = args.mode
    if prior:
        updates["prior"] = prior
    if args.loss is not None:
        updates["distill"] = {"loss": args.loss}
    return updates


def prior_flag_updates(args: argparse.Namespace) -> dict:
    """`prior` config data from --model, --ip-adapter and --image-encoder (only those given)."""
    pairs = (("model", args.model), ("ip_adapter", args.ip_adapter), ("image_encoder", args.image_encoder))
    return {key: value for key, value in pairs if value is not None}


def run(args: argparse.Namespace) -> None:
    from tv3dg.pipeline.config import build_config
    from tv3dg.pipeline.run import generate

    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            raise UserError("--resume DIR writes into DIR; drop --out or make it the same folder")
        config_file = args.resume / "config.yaml"
        if not config_file.is_file():
            raise UserError(f"'{args.resume}' has no config.yaml to resume from; pass the output folder of a run")
        config = build_config(str(config_file), flag_updates(args), args.overrides)
        out_dir = args.resume
    else:
        if args.out is None:
            raise UserError("say where to write the results with --out DIR")
        config = build_config(args.config, flag_updates(args), args.overrides)
        out_dir = args.out
    result = generate(config, out_dir, resume=args.resume is not None, progress=not args.quiet, overwrite=args.overwrite)
    state = f"interrupted; continue with --resume {out_dir}" if result.interrupted else "done"
    print(f"{state}: {result.metrics['steps']} steps in {result.metrics['time_s']:.1f} s -> {out_dir}")
    attributes = result.metrics.get("attributes")
    if attributes:
        print(f"attribute accuracy over {attributes['views']} views vs prompt: {attributes['prompt']}")
        if "visual_prompt" in attributes:
            print(f"vs visual prompt: {attributes['visual_prompt']}")
    if result.interrupted:
        raise SystemExit(130)
