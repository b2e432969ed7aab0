"""SGC's depth estimator: a transformers depth-estimation model (DPT, Depth Anything, ...) on the
reference views, from a local folder or a Hugging Face id already in the local cache.

DPT and Depth Anything predict relative inverse depth (disparity: larger is nearer) up to an
unknown scale and shift. The estimator returns its negation, so that it increases with distance
like the rendered depth; SGC compares the two with a Pearson correlation over the foreground,
which ignores any scale and shift (and, over an object's short depth range, the 1/z bend of
disparity). Models that predict metric depth (`sgc.depth_output=depth`) are returned as they are.
"""

from __future__ import annotations

from pathlib import Path
import torch
import torch.nn.functional as F
from torch import Tensor

from tv3dg.errors import UserError
from tv3dg.local_weights import find_local_model


def is_plugin(spec: str) -> bool:
    """"package.module:function" names a plug-in; anything else a model folder or cached id."""
    return ":" in spec and not Path(spec).expanduser().exists()


def _model_folder(spec: str) -> Path:
    folder = find_local_model(spec)
    if folder is None or not (folder / "config.json").is_file():
        raise UserError(
            f"depth estimator '{spec}' is not on this machine; pass sgc.depth_estimator=FOLDER of a transformers "
            "depth-estimation model (e.g. Depth Anything or DPT, downloaded elsewhere) or package.module:function"
        )
    return folder


def check_depth_estimator(spec: str | None) -> None:
    """Fail before any model loads when a built-in estimator's weights are missing."""
    if spec and not is_plugin(spec):
        _model_folder(spec)


class DepthEstimator:
    """images [B,3,H,W] in [0,1] -> depth-like maps [B,1,H,W] (larger = farther), without gradients."""

    def __init__(self, spec: str, output: str, device: torch.device) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        folder = _model_folder(spec)
        try:
            self.model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True).eval().to(device)
            self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise UserError(f"depth estimator '{folder}' could not be loaded ({str(err).strip().splitlines()[0]})") from None
        self.model.requires_grad_(False)
        self.sign = -1.0 if output == "disparity" else 1.0
        self.device = device

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        arrays = [image.permute(1, 2, 0).float().cpu().numpy() for image in images]
        pixels = self.processor(images=arrays, do_rescale=False, return_tensors="pt").pixel_values
        predicted = self.model(pixel_values=pixels.to(self.device, self.model.dtype)).predicted_depth.float()
        depth = F.interpolate(predicted.unsqueeze(1), size=images.shape[-2:], mode="bicubic", align_corners=False)
        return self.sign * depth.to(images.device)
