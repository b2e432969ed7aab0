"""`tv3dg 2d`: optimise one image with a distillation loss and write a strip of its progress.

The 2D view of the method (paper Fig. 2-3): the same loss code as in 3D (SDS, CSD, ISM, CSM,
VPCSM) moves a single image, so the losses can be compared side by side. Runs on the bundled
mini prior by default, or on SD-1.5 + IP-Adapter weights given by path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tv3dg.atomic import atomic_path
from tv3dg.commands.arguments import add_overrides
from tv3dg.distill.objectives import LOSS_NAMES, loss_help
from tv3dg.distill.playground_config import MAX_LR, PlaygroundConfig, build_playground_config
from tv3dg.errors import UserError
from tv3dg.priors.config import MINI, PriorConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "2d", help="2D playground: optimise one image with a distillation loss",
        description="Optimise one image with SDS, CSD, ISM, CSM or VPCSM and write a strip of its progress. "
        "The loss settings default to the distill section of the preset of the prior it runs on: mini on the "
        "bundled prior, sd15 with --model (--config picks another preset), its schedules stretched "
        "to --steps. Each flag sets a config key; any prior.*, distill.* or other key can be set as key=value, "
        "e.g. distill.weighting=sqrt prior.ip_scale=0.5.",
    )
    parser.add_argument("--prompt", help="text prompt")
    parser.add_argument("--image", help="visual prompt, a PNG/JPEG (transparency becomes white); needs an IP-Adapter")
    parser.add_argument("--loss", choices=LOSS_NAMES, help=loss_help())
    parser.add_argument("--config", help="preset name (mini, sd15) or a YAML file whose distill section "
                        "gives the loss defaults (default: mini on the bundled prior, sd15 with --model)")
    parser.add_argument("--model", help="SD-1.5 diffusers folder or cached HF id (default: the bundled mini prior)")
    parser.add_argument("--ip-adapter", help="IP-Adapter SD-1.5 .safetensors (default: the mini one with the mini model)")
    parser.add_argument("--image-encoder", help="CLIP image-encoder folder (default: image_encoder/ beside the adapter)")
    parser.add_argument("--negative-prompt", help="negative prompt (default empty)")
    parser.add_argument("--steps", type=int, help=f"optimisation steps (default {PlaygroundConfig.steps})")
    parser.add_argument("--lr", type=float, help=f"Adam learning rate, in (0, {MAX_LR:g}] (default {PlaygroundConfig.lr})")
    parser.add_argument("--target", choices=("image", "latent"),
                        help=f"optimise RGB pixels (default {PlaygroundConfig.target}; the step reaches them as "
                        "distill.target_space says) or the latent itself")
    parser.add_argument("--cfg", type=float, help="classifier guidance scale (default: the preset's distill.cfg_scale; "
                        "SDS is usually run at 100)")
    parser.add_argument("--pag", type=float, help="PAG scale for vpcsm (default: the preset's distill.pag_scale; 0 = off)")
    parser.add_argument("--ip-scale", type=float, help=f"IP-Adapter scale (default {PriorConfig.ip_scale:g})")
    parser.add_argument("--ip-mode", choices=("texture", "style"), help="IP scale on all layers or style blocks only")
    parser.add_argument("--frames", type=int, help=f"snapshots in the strip (default {PlaygroundConfig.frames})")
    parser.add_argument("--out", type=Path, default=Path("playground.png"), help="strip image (default playground.png)")
    parser.add_argument("--seed", type=int, help=f"random seed (default {PlaygroundConfig.seed})")
    parser.add_argument("--device", help=f"auto, cpu or cuda (default {PriorConfig.device})")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help=f"default {PriorConfig.dtype}")
    add_overrides(parser, "distill.weighting=sqrt prior.ip_scale=0.5")
    parser.set_defaults(func=run)


def flag_updates(args: argparse.Namespace) -> dict:
    """Config data from the flags given (a flag left out keeps the config's default)."""
    top = {"prompt": args.prompt, "image": args.image, "steps": args.steps, "lr": args.lr, "target": args.target,
           "frames": args.frames, "seed": args.seed}
    prior = {"device": args.device, "dtype": args.dtype, "negative_prompt": args.negative_prompt,
             "image_encoder": args.image_encoder, "ip_scale": args.ip_scale, "ip_mode": args.ip_mode,
             "model": args.model, "ip_adapter": args.ip_adapter}
    distill = {"loss": args.loss, "cfg_scale": args.cfg, "pag_scale": args.pag}
    updates: dict = {k: v for k, v in top.items() if v is not None}
    updates["prior"] = {k: v for k, v in prior.items() if v is not None}
    if args.model is not None:
        updates["prior"]["ip_adapter"] = args.ip_adapter  # another model: no adapter unless one is given
    updates["distill"] = {k: v for k, v in distill.items() if v is not None}
    return updates


def preset_name(chosen: dict, config: str | None) -> str:
    """--config, else the preset of the prior the run uses: mini for the bundled one, sd15 for any other."""
    if config is not None:
        return config
    prior = chosen.get("prior")
    model = prior.get("model", MINI) if isinstance(prior, dict) else MINI
    return MINI if model == MINI else "sd15"


def playground_config(args: argparse.Namespace) -> tuple[PlaygroundConfig, str]:
    """The run's config and the preset its distillation defaults came from."""
    from tv3dg.config import from_dict, merge_overrides, to_dict
    from tv3dg.pipeline.config import GenerateConfig, preset_data

    chosen = merge_overrides(flag_updates(args), args.overrides)
    preset = preset_name(chosen, args.config)
    defaults = from_dict(GenerateConfig, preset_data(preset))
    return build_playground_config(chosen, to_dict(defaults.distill), defaults.steps), preset


def save_strip(frames: list[torch.Tensor], path: Path) -> None:
    """Snapshots side by side, left to right, written atomically as one image."""
    strip = torch.cat(frames, dim=-1).clamp(0, 1)
    array = (strip.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp)


def run(args: argparse.Namespace) -> None:
    from tv3dg.distill.playground import optimise_image
    from tv3dg.priors.diffusers_prior import DiffusersPrior
    from tv3dg.priors.images import read_image

    if args.out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out '{args.out}' must end in .png or .jpg")
    config, preset = playground_config(args)
    print(f"loss defaults: the distill section of the {preset} preset", flush=True)
    reference = read_image(config.image) if config.image is not None else None
    prior = DiffusersPrior(config.prior)
    prior.report_dropped_words(config.prompt)
    conditions = prior.prepare_conditions(config.prompt, reference)
    steps = config.steps
    report_every = max(steps // 10, 1)

    def report(step: int, logs: dict[str, float]) -> None:
        if (step + 1) % report_every == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps}  t={int(logs['t'])}  grad_rms={logs['grad_rms']:.4f}  "
                  f"unet_calls={int(logs['unet_calls'])}", flush=True)

    result = optimise_image(prior, conditions, config.distill, steps, config.lr, config.target, config.frames,
                            config.seed, report)
    save_strip(result.frames, args.out)
    calls = sum(log["unet_calls"] for log in result.logs)
    print(f"wrote {args.out}: {len(result.frames)} snapshots at steps {result.frame_steps}; "
          f"{result.seconds:.1f} s, {result.seconds / steps:.3f} s/step, {calls / steps:.1f} UNet calls/step")
