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

    train = actions.add_parser("train", help="train every stage (resumable); each writes its weights into the package")
    train.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help=f"folder for checkpoints and logs (default {DEFAULT_RUN_DIR})")
    train.add_argument("--max-minutes", type=float, default=None, help="stop after this long; run again to resume")
    train.add_argument("--stage", dest="stages", action="append", default=None, metavar="NAME",
                       help="run only this stage (repeatable): pool, view_pool, vae, classifier, shape_prior, prior, prior_eyes")
    add_overrides(train, "prior_steps=12000 weights_dir=/tmp/trial")
    train.set_defaults(func=run_train)

    export = actions.add_parser("export", help="write a run's current prior weights into the package (or --out)")
    export.add_argument("--run-dir", default=DEFAULT_RUN_DIR)
    export.add_argument("--out", default=None, help="weights folder (default: the package's)")
    export.add_argument("--stage", choices=("prior", "prior_eyes"), default="prior", help="which diffusion stage to export")
    export.add_argument("--raw-weights", action="store_true", help="export the raw prior weights instead of their EMA (early in training)")
    export.set_defaults(func=run_export)

    evaluate = actions.add_parser("eval", help="measure the model-card numbers of the shipped weights")
    evaluate.add_argument("--out", default="mini_eval.json", help="metrics JSON to write")
    evaluate.add_argument("--sheets", default=None, help="folder for sample contact sheets (PNG)")
    evaluate.add_argument("--prompts", type=int, default=48, help="objects per sampling check")
    evaluate.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    evaluate.add_argument("--steps", type=int, default=30, help="DDIM steps")
    evaluate.add_argument("--weights", default=None, help="a complete weights folder to measure (a `weights_dir=` trial); default: the package's")
    evaluate.set_defaults(func=run_eval)

    world = actions.add_parser("world", help="render a contact sheet of random world objects, as the prior's photos show them")
    world.add_argument("--out", required=True, help="PNG to write")
    world.add_argument("--count", type=int, default=24, help="objects (8 per row)")
    world.add_argument("--seed", type=int, default=0)
    world.set_defaults(func=run_world)


def run_train(args: argparse.Namespace) -> None:
    from tv3dg.config import from_dict, merge_overrides
    from tv3dg.errors import UserError
    from tv3dg.priors.mini.stages import train
    from tv3dg.priors.mini.training import TRAINING_PLAN, MiniTrainConfig

    config = from_dict(MiniTrainConfig, merge_overrides({}, args.overrides))
    unknown = [s for s in args.stages or () if s not in TRAINING_PLAN.order]
    if unknown:
        raise UserError(f"unknown stage '{unknown[0]}'; choose from {', '.join(TRAINING_PLAN.order)}")
    train(Path(args.run_dir), config, TRAINING_PLAN, args.max_minutes, tuple(args.stages) if args.stages else None)


def run_export(args: argparse.Namespace) -> None:
    from tv3dg.priors.mini.export import export_prior
    from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS, WeightPaths

    paths = WeightPaths(Path(args.out)) if args.out else PACKAGE_WEIGHTS
    error = export_prior(Path(args.run_dir), paths, args.stage, use_ema=not args.raw_weights)
    print(f"exported; reloaded weights match the trained model to {error:.2e} (max |noise difference|)")


def run_eval(args: argparse.Namespace) -> None:
    from tv3dg.atomic import write_text_atomic
    from tv3dg.errors import UserError
    from tv3dg.priors.mini.evaluate import PriorCheckConfig, evaluate
    from tv3dg.priors.mini.paths import PACKAGE_WEIGHTS, WeightPaths

    if args.prompts < 1:
        raise UserError("--prompts must be at least 1")
    config = PriorCheckConfig(prompts=args.prompts, steps=args.steps, guidance=args.guidance)
    paths = PACKAGE_WEIGHTS if args.weights is None else WeightPaths(Path(args.weights))
    if not paths.classifier.is_file() or not (paths.model / "unet").is_dir():
        raise UserError(f"'{paths.root}' is not a complete mini weights folder (copy the package's weights there before a trial)")
    metrics = evaluate(config, Path(args.sheets) if args.sheets else None, paths)
    write_text_atomic(args.out, json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))


def run_world(args: argparse.Namespace) -> None:
    import torch

    from tv3dg.errors import UserError

    if args.count < 1:
        raise UserError("--count must be at least 1")
    from tv3dg.priors.mini.architecture import IMAGE_SIZE
    from tv3dg.priors.mini.evaluate import save_sheet
    from tv3dg.priors.mini.world import photo_cameras, random_objects, render_objects

    generator = torch.Generator().manual_seed(args.seed)
    objects = random_objects(args.count, generator)
    images = render_objects(objects, photo_cameras(args.count, IMAGE_SIZE, generator)).rgb
    padding = torch.ones((-len(images)) % 8, *images.shape[1:])
    images = torch.cat([images, padding])
    save_sheet([images[i : i + 8] for i in range(0, len(images), 8)], Path(args.out))
