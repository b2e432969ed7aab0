"""`tv3dg mini train|export|eval|world`: the bundled mini prior over the procedural world.

`train` reproduces the shipped weights from nothing (resumable: run it again to continue),
`export` writes a run's current weights into the package, `eval` measures the model-card
numbers, `world` renders a sheet of world objects.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tv3dg.commands.arguments import add_overrides

DEFAULT_RUN_DIR = "runs/mini"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mini", help="train, export or evaluate the bundled mini prior")
    actions = parser.add_subparsers(dest="mini_command", required=True)

    train = actions.add_parser("train", help="train every stage (resumable) and export the weights into the package")
    train.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help=f"folder for checkpoints and logs (default {DEFAULT_RUN_DIR})")
    train.add_argument("--max-minutes", type=float, default=None, help="stop after this long; run again to resume")
    train.add_argument("--stage", dest="stages", action="append", default=None, metavar="NAME",
                       help="run only this stage (repeatable): pool, vae, classifier, shape_prior, prior "
                            "(world 2: pool, view_pool, vae, classifier, shape_prior)")
    train.add_argument("--no-export", action="store_true", help="do not copy the finished weights into the package")
    train.add_argument("--world", type=int, choices=(1, 2), default=1,
                       help="1: the shipped 32 px world; 2: world 2 (64 px, objects with a front), trained stage by "
                            "stage, each stage's weights written into the package when it finishes")
    add_overrides(train, "prior_steps=20000 vae_kl_weight=1e-6")
    train.set_defaults(func=run_train)

    export = actions.add_parser("export", help="write a run's current weights into the package (or --out)")
    export.add_argument("--run-dir", default=DEFAULT_RUN_DIR)
    export.add_argument("--out", default=None, help="weights folder (default: the package's)")
    export.add_argument("--raw-weights", action="store_true", help="export the raw prior weights instead of their EMA (early in training)")
    export.set_defaults(func=run_export)

    evaluate = actions.add_parser("eval", help="measure the model-card numbers of the shipped weights")
    evaluate.add_argument("--out", default="mini_eval.json", help="metrics JSON to write")
    evaluate.add_argument("--sheets", default=None, help="folder for sample contact sheets (PNG)")
    evaluate.add_argument("--prompts", type=int, default=48, help="objects per sampling test")
    evaluate.add_argument("--views", type=int, default=4, help="cameras per object")
    evaluate.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    evaluate.add_argument("--steps", type=int, default=30, help="DDIM steps")
    evaluate.add_argument("--world", type=int, choices=(1, 2), default=1,
                          help="2: check world 2's finished stages (classifier on fresh renders, VAE through the classifier)")
    evaluate.set_defaults(func=run_eval)

    world = actions.add_parser("world", help="render a contact sheet of random world objects")
    world.add_argument("--out", required=True, help="PNG to write")
    world.add_argument("--count", type=int, default=24, help="objects (8 per row)")
    world.add_argument("--seed", type=int, default=0)
    world.add_argument("--world", type=int, choices=(1, 2), default=1, help="2: world 2, as its prior's photos are taken")
    world.set_defaults(func=run_world)


def run_train(args: argparse.Namespace) -> None:
    from tv3dg.config import from_dict, merge_overrides
    from tv3dg.errors import UserError
    from tv3dg.priors.mini.training import STAGES, WORLD1_PLAN, MiniTrainConfig, train

    if args.world == 2:
        from tv3dg.priors.mini2.training import WORLD2_PLAN as plan, Mini2TrainConfig as config_class
    else:
        plan, config_class = WORLD1_PLAN, MiniTrainConfig
    config = from_dict(config_class, merge_overrides({}, args.overrides))
    unknown = [s for s in args.stages or () if s not in plan.order]
    if unknown:
        raise UserError(f"unknown stage '{unknown[0]}'; choose from {', '.join(plan.order)}")
    run_dir = Path(args.run_dir)
    stages = tuple(args.stages) if args.stages else plan.order
    if train(run_dir, config, args.max_minutes, stages, plan) and args.world == 1 and stages == STAGES and not args.no_export:
        from tv3dg.priors.mini.export import export_weights

        error = export_weights(run_dir)
        print(f"exported the mini weights into the package (reload error {error:.2e})")


def run_export(args: argparse.Namespace) -> None:
    from tv3dg.priors.mini.export import export_weights
    from tv3dg.priors.mini.paths import WEIGHTS_DIR

    error = export_weights(Path(args.run_dir), Path(args.out) if args.out else WEIGHTS_DIR, use_ema=not args.raw_weights)
    print(f"exported; reloaded weights match the trained model to {error:.2e} (max |noise difference|)")


def run_eval(args: argparse.Namespace) -> None:
    from tv3dg.atomic import write_text_atomic
    from tv3dg.errors import UserError
    from tv3dg.priors.mini.evaluate import EvalConfig, evaluate

    if args.prompts < 1 or args.views < 1:
        raise UserError("--prompts and --views must be at least 1")
    if args.world == 2:
        metrics = evaluate_world2_stages()
        write_text_atomic(args.out, json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
        return
    config = EvalConfig(prompts=args.prompts, views=args.views, steps=args.steps, guidance=args.guidance)
    metrics = evaluate(config, Path(args.sheets) if args.sheets else None)
    write_text_atomic(args.out, json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))


def run_world(args: argparse.Namespace) -> None:
    import torch

    from tv3dg.errors import UserError

    if args.count < 1:
        raise UserError("--count must be at least 1")
    from tv3dg.priors.mini.evaluate import save_sheet

    generator = torch.Generator().manual_seed(args.seed)
    if args.world == 2:
        from tv3dg.priors.mini2.world import photo_cameras, random_objects, render_objects

        objects = random_objects(args.count, generator)
        images = render_objects(objects, photo_cameras(args.count, 64, generator)).rgb
    else:
        from tv3dg.priors.mini.world import random_cameras, random_objects, render_objects

        objects = random_objects(args.count, generator)
        images = render_objects(objects, random_cameras(args.count, 32, generator)).rgb
    padding = torch.ones((-len(images)) % 8, *images.shape[1:])
    images = torch.cat([images, padding])
    save_sheet([images[i : i + 8] for i in range(0, len(images), 8)], Path(args.out))


def evaluate_world2_stages() -> dict:
    """World 2's stage checks on the package's weights: whichever stages have shipped."""
    import torch
    from diffusers import AutoencoderKL

    from tv3dg.errors import UserError
    from tv3dg.priors.mini2.classifier import load_classifier
    from tv3dg.priors.mini2.evaluate import classifier_accuracy, reconstruction_agreement
    from tv3dg.priors.mini2.paths import PACKAGE_WEIGHTS

    if not PACKAGE_WEIGHTS.classifier.is_file():
        raise UserError("world 2's classifier has not been trained yet; run `tv3dg mini train --world 2 --stage classifier`")
    classifier = load_classifier(PACKAGE_WEIGHTS.classifier)
    metrics = {"classifier_accuracy": classifier_accuracy(classifier)}
    if PACKAGE_WEIGHTS.vae.is_dir():
        vae = AutoencoderKL.from_pretrained(PACKAGE_WEIGHTS.vae, torch_dtype=torch.float32).eval()
        metrics["vae_agreement"] = reconstruction_agreement(vae, classifier)
    return metrics
