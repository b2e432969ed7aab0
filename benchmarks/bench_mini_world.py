"""Measure the mini world's render throughput and the mini prior's training-step cost (prints; asserts nothing).

Run: .venv/bin/python benchmarks/bench_mini_world.py [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tv3dg.priors.mini.architecture import IMAGE_SIZE, LATENT_CHANNELS, LATENT_SIZE, MAX_LENGTH, build_text_encoder, build_unet, build_vae
from tv3dg.priors.mini.world import any_cameras, random_objects, render_objects


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    objects, cameras = random_objects(128, generator), any_cameras(128, IMAGE_SIZE, generator)
    seconds = timed(lambda: render_objects(objects, cameras), 3)
    print(f"world render: 128 images at {IMAGE_SIZE}^2 (2x2 supersampled) in {seconds:.3f} s = {128 / seconds:.0f} images/s")

    vae, unet, text = build_vae(), build_unet(), build_text_encoder(616, 614, 615, MAX_LENGTH)
    print(f"parameters: unet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M, vae {sum(p.numel() for p in vae.parameters()) / 1e6:.2f}M")
    b = args.batch
    latents = torch.randn(b, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE)
    tokens = torch.randint(0, 614, (b, MAX_LENGTH))

    def unet_step() -> None:
        out = unet(latents, torch.randint(0, 1000, (b,)), encoder_hidden_states=text(tokens).last_hidden_state).sample
        F.mse_loss(out, latents).backward()

    print(f"unet+text train step, batch {b}: {timed(unet_step, 3):.3f} s ({args.threads} thread(s))")
    images = torch.rand(b // 2, 3, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1

    def vae_step() -> None:
        posterior = vae.encode(images).latent_dist
        F.mse_loss(vae.decode(posterior.sample()).sample, images).backward()

    print(f"vae train step, batch {b // 2}: {timed(vae_step, 3):.3f} s")


if __name__ == "__main__":
    main()
