"""The visual prompt is encoded once per prompt, not once per step, and an in-place edit re-encodes it."""

import torch

from tiny_models import make_tiny_world
from tv3dg.priors.config import PriorConfig
from tv3dg.priors.diffusers_prior import DiffusersPrior


def test_visual_prompt_embeddings_are_reused_until_the_image_changes(tmp_path, monkeypatch):
    world = make_tiny_world(tmp_path, camera_conditioned=True)
    prior = DiffusersPrior(PriorConfig(model=str(world.model_dir), ip_adapter=str(world.ip_adapter), device="cpu"))
    calls = {"n": 0}
    encode = prior.image_features

    def counting(images):
        calls["n"] += 1
        return encode(images)

    monkeypatch.setattr(prior, "image_features", counting)
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = prior.prepare_conditions("a cube", image).image_embeds
    again = prior.prepare_conditions("a cube", image).image_embeds
    assert calls["n"] == 1 and torch.equal(first, again)
    image.mul_(0.5)
    changed = prior.prepare_conditions("a cube", image).image_embeds
    assert calls["n"] == 2 and not torch.equal(first, changed)
