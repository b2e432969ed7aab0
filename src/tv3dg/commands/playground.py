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
from tv3dg.config import from_dict, merge_overrides
from tv3dg.distill.objectives import LOSS_NAMES, loss_help, LOSSES
from tv3dg.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "2d", help="2D playground: optimise one image with a distillation loss",
        description="Optimise one image with SDS, CSD, ISM, CSM or VPCSM and write a strip of its progress.",
    )
    parser.add_argument("--prompt", required=True, help="text prompt")
    parser.add_argument("--image", type=Path, help="visual prompt (reference image); needs an IP-Adapter")
    parser.add_argument("--loss", choices=LOSS_NAMES, default="vpcsm", help=loss_help())
    parser.add_argument("--model", help="SD-1.5 diffusers folder or cached HF id (default: the bundled mini prior)")
    parser.add_argument("--ip-adapter", help="IP-Adapter SD-1.5 .safetensors (default: the mini one with the mini model)")
    parser.add_argument("--image-encoder", help="CLIP image-encoder folder (default: image_encoder/ beside the adapter)")
    parser.add_argument("--negative-prompt", default="", help="negative prompt (default empty)")
    parser.add_argument("--steps", type=int, default=200, help="optimisation steps (default 200)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    parser.add_argument("--target", choices=("image", "latent"), default="image",
                        help="optimise RGB pixels through the VAE encoder (default) or the latent directly")
    parser.add_argument("--cfg", type=float, help="classifier guidance scale (default 100 for sds, else 7.5)")
    parser.add_argument("--pag", type=float, help="PAG scale for vpcsm (default 3; 0 = off)")
    parser.add_argument("--ip-scale", type=float, help="IP-Adapter scale (default 1)")
    parser.add_argument("--ip-mode", choices=("texture", "style"), help="IP scale on all layers or style blocks only")
    parser.add_argument("--frames", type=int, default=8, help="snapshots in the strip (default 8)")
    parser.add_argument("--out", type=Path, default=Path("playground.png"), help="strip image (default playground.png)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any prior.* or distill.* config key, e.g. distill.weighting=sqrt (repeatable)")
    parser.set_defaults(func=run)


def build_configs(args: argparse.Namespace):
    """PriorConfig and DistillConfig from the flags, then the --set overrides (strict keys)."""
    from tv3dg.distill.config import DistillConfig
    from tv3dg.priors.config import PriorConfig

    # without --model the PriorConfig defaults apply: the bundled mini model and its IP-Adapter
    prior: dict = {"device": args.device, "dtype": args.dtype, "negative_prompt": args.negative_prompt}
    if args.model is not None:
        prior["model"] = args.model
        prior["ip_adapter"] = args.ip_adapter
    elif args.ip_adapter is not None:
        prior["ip_adapter"] = args.ip_adapter
    if args.image_encoder is not None:
        prior["image_encoder"] = args.image_encoder
    if args.ip_scale is not None:
        prior["ip_scale"] = args.ip_scale
    if args.ip_mode is not None:
        prior["ip_mode"] = args.ip_mode
    distill: dict = {
        "loss": args.loss,
        "cfg_scale": args.cfg if args.cfg is not None else LOSSES[args.loss].playground_cfg,
        "t_max": [0, 0.98, 0.5, max(args.steps // 2, 1)],  # anneal over the first half of the run
    }
    if args.pag is not None:
        distill["pag_scale"] = args.pag
    data = merge_overrides({"prior": prior, "distill": distill}, args.set)
    unknown = sorted(set(data) - {"prior", "distill"})
    if unknown:
        raise UserError(f"--set key '{unknown[0]}' must start with prior. or distill.")
    return from_dict(PriorConfig, data["prior"], prefix="prior."), from_dict(DistillConfig, data["distill"], prefix="distill.")


def save_strip(frames: list[torch.Tensor], path: Path) -> None:
    """Snapshots side by side, left to right, written atomically as one image."""
    strip = torch.cat(frames, dim=-1).clamp(0, 1)
    array = (strip.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp)


def run(args: argparse.Namespace) -> None:
    from tv3dg.distill.playground import optimise_image
    from tv3dg.priors.diffusers_prior import DiffusersPrior
    from tv3dg.priors.images import load_image

    if args.steps < 1 or args.frames < 1:
        raise UserError("--steps and --frames must be positive integers")
    if not 0 < args.lr <= 10:
        raise UserError(f"--lr must lie in (0, 10], got {args.lr}")
    if args.out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out '{args.out}' must end in .png or .jpg")
    prior_config, distill_config = build_configs(args)
    reference = load_image(args.image) if args.image is not None else None
    prior = DiffusersPrior(prior_config)
    conditions = prior.prepare_conditions(args.prompt, reference)
    report_every = max(args.steps // 10, 1)

    def report(step: int, logs: dict[str, float]) -> None:
        if (step + 1) % report_every == 0 or step + 1 == args.steps:
            print(f"step {step + 1}/{args.steps}  t={int(logs['t'])}  grad_rms={logs['grad_rms']:.4f}  "
                  f"unet_calls={int(logs['unet_calls'])}", flush=True)

    result = optimise_image(prior, conditions, distill_config, args.steps, args.lr, args.target, args.frames, args.seed, report)
    save_strip(result.frames, args.out)
    calls = sum(log["unet_calls"] for log in result.logs)
    print(f"wrote {args.out}: {len(result.frames)} snapshots at steps {result.frame_steps}; "
          f"{result.seconds:.1f} s, {result.seconds / args.steps:.3f} s/step, {calls / args.steps:.1f} UNet calls/step")
