"""Initial Gaussians from Shap-E, the 3D prior for open prompts (GaussianDreamer's choice).

diffusers' `ShapEPipeline` (text, `openai/shap-e`) or `ShapEImg2ImgPipeline` (an image,
`openai/shap-e-img2img`) decodes a mesh with vertex colours; its surface is sampled into points
and colours, which become isotropic Gaussians. Weights come from a local folder or the local
Hugging Face cache only.

Axes: Shap-E's meshes are z-up with the object's front facing -y (its first pan camera looks
from -y); this project is y-up with the front view on +z. The points are therefore rotated by
-90 degrees about x: (x, y, z) -> (x, z, -y), a proper rotation (x stays screen-right in both
front views). They are then centred on their bounding box and scaled so that the farthest point
lies at `init.radius`, the size the presets' cameras frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image
from torch import Tensor

from tv3dg.errors import UserError
from tv3dg.local_weights import find_local_model

SHAP_E_TO_WORLD = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # rows: world x, y, z


def resolve_shap_e(spec: str) -> Path:
    """The Shap-E pipeline folder (or cached id), or a one-line error saying what to provide."""
    folder = find_local_model(spec)
    if folder is None or not (folder / "model_index.json").is_file():
        raise UserError(
            f"Shap-E weights '{spec}' are not on this machine; put a diffusers Shap-E folder there "
            f"(e.g. `huggingface-cli download {spec if spec.count('/') == 1 else 'openai/shap-e'}` elsewhere) "
            "and pass init.shap_e_model=FOLDER, or use init.kind=sphere"
        )
    return folder


def shap_e_mesh(
    folder: Path, prompt: str | Image.Image, steps: int, guidance: float, generator: torch.Generator, device: torch.device
) -> trimesh.Trimesh:
    """Run the text (prompt is a string) or image (a PIL image) pipeline to a vertex-coloured mesh in Shap-E's axes."""
    from diffusers import ShapEImg2ImgPipeline, ShapEPipeline

    pipeline_class = ShapEPipeline if isinstance(prompt, str) else ShapEImg2ImgPipeline
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        pipeline = pipeline_class.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"Shap-E folder '{folder}' could not be loaded as a {pipeline_class.__name__} ({str(err).splitlines()[0]})") from None
    pipeline.set_progress_bar_config(disable=True)
    pipeline.to(device=device, dtype=dtype)
    # The decoder's own output is checked: on an empty mesh diffusers fails later with a bare torch.cat error.
    check = pipeline.shap_e_renderer.mesh_decoder.register_forward_hook(_refuse_empty_mesh)
    try:
        with torch.no_grad():
            mesh = pipeline(prompt, guidance_scale=guidance, num_inference_steps=steps, generator=generator,
                            output_type="mesh").images[0]
    finally:
        check.remove()
    colors = torch.stack([mesh.vertex_channels[c] for c in "RGB"], dim=1).float().cpu()
    return trimesh.Trimesh(
        vertices=mesh.verts.float().cpu().numpy(), faces=mesh.faces.cpu().numpy(),
        vertex_colors=(linear_to_srgb(colors).clamp(0, 1) * 255).round().to(torch.uint8).numpy(), process=False,
    )


def _refuse_empty_mesh(module: torch.nn.Module, inputs: tuple, mesh) -> None:
    """Forward hook on Shap-E's marching-cubes decoder: an SDF with no surface is the user's to hear about."""
    if len(mesh.verts) == 0 or len(mesh.faces) == 0:
        raise UserError("Shap-E decoded an empty mesh for this prompt; try another seed, or init.kind=sphere")


def linear_to_srgb(linear: Tensor) -> Tensor:
    """diffusers converts Shap-E's colours to linear light for its mesh output; renders here are sRGB."""
    linear = linear.clamp_min(0)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.pow(1 / 2.4) - 0.055)


def to_world(points: Tensor, radius: float) -> Tensor:
    """Shap-E axes -> this project's (see the module docstring), centred and scaled to `radius`."""
    points = points @ SHAP_E_TO_WORLD.T
    low, high = points.min(dim=0).values, points.max(dim=0).values
    points = points - (low + high) / 2
    return points * (radius / points.norm(dim=1).max().clamp_min(1e-8))


def as_pil(image: Tensor) -> Image.Image:
    """The first image of a [B,3,H,W] batch in [0,1] as a PIL image (the img2img pipeline's input)."""
    array = (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array))
