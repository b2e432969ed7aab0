"""`tv3dg doctor`: check a set-up in seconds (versions, device, gsplat, weights, memory) before a long run."""

from __future__ import annotations

import argparse
import json

from tv3dg.commands.arguments import add_overrides

PLACEHOLDER_PROMPT = "a doctor's check"  # the checks do not depend on the prompt, but a config needs one


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check versions, device, gsplat, weights and memory for a config, in seconds",
        description="Check that a config will run here: python/torch/diffusers versions, the device and its "
        "memory, gsplat, the SD-1.5 folder, IP-Adapter and image encoder (from configs and safetensors "
        "headers; no model runs), Shap-E and the depth model when used, and a memory estimate. "
        "One line per check; exit status 1 when any check fails.",
    )
    parser.add_argument("--config", help="preset name (mini, sd15) or a YAML file (default mini)")
    parser.add_argument("--model", help="SD-1.5 diffusers folder or cached HF id (sets prior.model)")
    parser.add_argument("--ip-adapter", help="IP-Adapter SD-1.5 .safetensors (sets prior.ip_adapter)")
    parser.add_argument("--image-encoder", help="the adapter's CLIP image-encoder folder (sets prior.image_encoder)")
    parser.add_argument("--memory-limit", type=float, metavar="GIB",
                        help="compare the memory estimate with this many GiB instead of the device's free memory")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    add_overrides(parser, "camera.views_per_step=1 prior.dtype=bfloat16")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.commands.generate import prior_flag_updates
    from tv3dg.doctor import as_json, run_checks, summary
    from tv3dg.pipeline.config import build_config

    updates = {"prompt": PLACEHOLDER_PROMPT}
    prior = prior_flag_updates(args)
    if prior:
        updates["prior"] = prior
    config = build_config(args.config, updates, args.overrides)
    checks = run_checks(config, args.memory_limit)
    if args.json:
        print(json.dumps(as_json(checks), indent=2))
    else:
        for check in checks:
            print(check.line())
        print(summary(checks))
    if any(check.status == "fail" for check in checks):
        raise SystemExit(1)
