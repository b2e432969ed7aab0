"""Cost of one distillation step per loss: UNet calls and rows, seconds, with the VAE backward.

    python benchmarks/distill_losses.py                      # the bundled mini prior
    python benchmarks/distill_losses.py --model DIR --ip-adapter FILE --batch 4 --device cuda

Each step encodes B random renders, computes the loss gradient with a visual prompt and
back-propagates it through the VAE encoder, as the 3D pipeline does. Prints, does not assert.
"""

from __future__ import annotations

import argparse
import time

import torch

from tv3dg.distill.config import DistillConfig
from tv3dg.distill.losses import compute_distillation, distillation_loss
from tv3dg.distill.objectives import LOSS_NAMES
from tv3dg.priors.config import MINI, PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior
from tv3dg.render.cameras import orbit_cameras



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=MINI)
    parser.add_argument("--ip-adapter", default=MINI)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--inversion-steps", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    prior = DiffusersPrior(PriorConfig(model=args.model, ip_adapter=args.ip_adapter, device=args.device, dtype=args.dtype))
    cameras = orbit_cameras(15.0, torch.linspace(0, 360, args.batch + 1)[:-1], 3.0, 40.0, prior.resolution)
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(3, prior.resolution, prior.resolution, generator=generator)
    conditions = prior.prepare_conditions("a red cube", reference, cameras)
    renders = torch.rand(args.batch, 3, prior.resolution, prior.resolution, generator=generator).to(prior.device)
    print(f"device {prior.device}, dtype {args.dtype}, batch {args.batch}, resolution {prior.resolution}, "
          f"inversion steps {args.inversion_steps}")
    print(f"{'loss':6s} {'UNet calls/step':>16s} {'rows/step':>10s} {'s/step':>8s}")
    for loss in LOSS_NAMES:
        config = DistillConfig(loss=loss, inversion_steps=args.inversion_steps)
        for step in range(args.steps + 1):  # step 0 warms up
            if step == 1:
                if prior.device.type == "cuda":
                    torch.cuda.synchronize()
                began, calls, rows = time.perf_counter(), prior.counter.calls, prior.counter.rows
            images = renders.clone().requires_grad_(True)
            latents = prior.encode_images(images)
            grad, _ = compute_distillation(prior, latents, conditions, step, config, generator, timestep=500)
            distillation_loss(latents, grad).backward()
        if prior.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - began) / args.steps
        print(f"{loss:6s} {(prior.counter.calls - calls) / args.steps:16.1f} "
              f"{(prior.counter.rows - rows) / args.steps:10.1f} {seconds:8.3f}")


if __name__ == "__main__":
    main()
