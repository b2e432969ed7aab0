"""Where the optimisation starts: a coarse 3D prior from the text (Shap-E for open prompts, the
bundled mini world's shape prior for the mini prior), a sphere or box of random points, or the
user's own point cloud, mesh or Gaussian `.ply`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import trimesh
from plyfile import PlyData, PlyElementParseError
from torch import Tensor

from tv3dg.errors import UserError
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.ply import load_ply
from tv3dg.init.shap_e import as_pil, resolve_shap_e, shap_e_mesh, to_world
from tv3dg.priors.config import MINI
from tv3dg.priors.registry import named_model

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".stl", ".off")
KINDS = ("shap_e", "mini_shape_prior", "sphere", "box", "file")
RENAMED = {"prior": "mini_shape_prior"}


@dataclass
class InitConfig:
    """The starting Gaussians."""

    kind: str = "mini_shape_prior"
    """One of `shap_e` (Shap-E from the text), `mini_shape_prior` (the mini world's text-to-point prior), `sphere`, `box`, `file`."""
    path: str | None = None
    """For `kind: file`: a 3DGS `.ply`, a point-cloud `.ply` or a mesh."""
    num_points: int = 2048
    """Number of starting Gaussians."""
    radius: float = 0.6
    """Sphere radius, box half-size, or the Shap-E object's radius, world units."""
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """RGB colour of sphere and box points, each in 0..1."""
    opacity: float = 0.1
    """Starting opacity of every Gaussian."""
    scale: float | None = None
    """Starting Gaussian standard deviation, world units; null: the distance to the nearest neighbours."""
    shap_e_model: str = "openai/shap-e"
    """A diffusers ShapEPipeline folder or cached id."""
    shap_e_image_model: Optional[str] = None
    """With a visual prompt in texture mode: a ShapEImg2ImgPipeline folder or cached id (e.g. `openai/shap-e-img2img`) that starts from the image; null: from the text."""
    shap_e_steps: int = 64
    """Shap-E sampling steps."""
    shap_e_guidance: float = 15.0
    """Shap-E guidance scale."""

    def __post_init__(self) -> None:
        if self.kind in RENAMED:
            raise UserError(
                f"init.kind={self.kind} is now init.kind={RENAMED[self.kind]} (the bundled mini world's shape prior); "
                "for real prompts use init.kind=shap_e"
            )
        if self.kind not in KINDS:
            raise UserError(f"config key 'init.kind' must be one of {list(KINDS)}, got {self.kind!r}")


def check_initializer(config: InitConfig, prior_model: str) -> None:
    """Fail before any model loads when the initialiser cannot run with this prior or lacks its input."""
    if config.kind == "mini_shape_prior" and prior_model != MINI:
        raise UserError(
            "init.kind=mini_shape_prior only knows the mini world's primitives; "
            f"with prior.model={prior_model} use init.kind=shap_e, sphere, box or file"
        )
    if config.kind == "shap_e":
        resolve_shap_e(config.shap_e_model)
        if config.shap_e_image_model is not None:
            resolve_shap_e(config.shap_e_image_model)
    if config.kind == "file":
        _existing_path(config.path)


def initial_gaussians(
    config: InitConfig,
    prompt: str,
    sh_degree: int,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
    texture_image: Tensor | None = None,
) -> Gaussians:
    """Build the starting Gaussians on the CPU; a 3DGS `.ply` is taken as it is (its SH degree is kept).

    `device` runs Shap-E; `texture_image` ([B,3,H,W], a visual prompt in texture mode) makes
    Shap-E start from the image when `shap_e_image_model` is set.
    """
    if config.kind == "file":
        path = _existing_path(config.path)
        if path.suffix.lower() == ".ply" and _is_gaussian_ply(path):
            return load_ply(path)
        xyz, rgb = _points_from_file(path, config.num_points, generator)
    elif config.kind == "shap_e":
        use_image = texture_image is not None and config.shap_e_image_model is not None
        folder = resolve_shap_e(config.shap_e_image_model if use_image else config.shap_e_model)
        condition = as_pil(texture_image) if use_image else prompt
        mesh = shap_e_mesh(folder, condition, config.shap_e_steps, config.shap_e_guidance, generator, device)
        xyz, rgb = _surface_samples(mesh, config.num_points, generator)
        xyz = to_world(xyz, config.radius)
    elif config.kind == "mini_shape_prior":
        xyz, rgb = _text_to_points(prompt, config.num_points, generator)
    elif config.kind == "sphere":
        xyz = _uniform_ball(config.num_points, generator) * config.radius
        rgb = torch.tensor(config.color).expand(config.num_points, 3)
    else:
        xyz = (torch.rand(config.num_points, 3, generator=generator) * 2 - 1) * config.radius
        rgb = torch.tensor(config.color).expand(config.num_points, 3)
    return Gaussians.from_points(xyz.float(), rgb.float(), sh_degree=sh_degree, scale=config.scale, opacity=config.opacity)


def _text_to_points(prompt: str, num_points: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points of the bundled mini world's text-to-point prior."""
    model = named_model(MINI)
    if model is None or model.shape_prior is None:
        raise UserError("init.kind=mini_shape_prior needs the bundled text-to-point prior, which is not installed; use init.kind=sphere")
    return model.shape_prior()(prompt, num_points, generator)


def _uniform_ball(n: int, generator: torch.Generator) -> Tensor:
    directions = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=-1)
    return directions * torch.rand(n, 1, generator=generator) ** (1 / 3)


def _existing_path(path: str | None) -> Path:
    if not path:
        raise UserError("init.kind=file needs init.path=FILE (a .ply point cloud or Gaussians, or a mesh)")
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise UserError(f"init file '{resolved}' does not exist; pass an existing .ply or mesh file")
    return resolved


def _is_gaussian_ply(path: Path) -> bool:
    try:
        vertex = PlyData.read(str(path))["vertex"]
    except (KeyError, PlyElementParseError, ValueError, OSError) as err:
        raise UserError(f"'{path}' is not a readable .ply file ({type(err).__name__}); export it again") from None
    names = {p.name for p in vertex.properties}
    return {"f_dc_0", "opacity", "scale_0", "rot_0"} <= names


def _points_from_file(path: Path, num_points: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Surface samples of a mesh, or the points of a point cloud (subsampled), with colours."""
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES + (".ply",):
        raise UserError(f"init file '{path}' must be .ply or a mesh ({', '.join(MESH_SUFFIXES)})")
    try:
        geometry = trimesh.load(path, force="mesh" if suffix != ".ply" else None, process=False)
    except (ValueError, OSError) as err:
        raise UserError(f"cannot read init file '{path}' ({type(err).__name__}: {err}); check the file") from None
    if isinstance(geometry, trimesh.Trimesh) and len(geometry.faces) > 0:
        return _surface_samples(geometry, num_points, generator)
    if hasattr(geometry, "vertices") and len(geometry.vertices) > 0:
        vertices = np.asarray(geometry.vertices)
        pick = torch.randperm(len(vertices), generator=generator)[:num_points].numpy()
        points = vertices[pick]
        colors = _vertex_colors(geometry, len(vertices))[pick]
        return torch.from_numpy(np.asarray(points)).float(), torch.from_numpy(np.asarray(colors)).float()
    raise UserError(f"init file '{path}' holds no points or faces; give a point cloud or a mesh")


def _surface_samples(mesh: trimesh.Trimesh, num_points: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points uniform over the mesh's surface, coloured by their face."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    points, face_index = trimesh.sample.sample_surface(mesh, num_points, seed=seed)
    colors = _face_colors(mesh)[face_index]
    return torch.from_numpy(np.asarray(points)).float(), torch.from_numpy(np.asarray(colors)).float()


def _vertex_colors(geometry: trimesh.Trimesh | trimesh.PointCloud, count: int) -> np.ndarray:
    colors = getattr(geometry, "colors", None)
    if colors is None or len(colors) != count:
        visual = getattr(geometry, "visual", None)
        colors = getattr(visual, "vertex_colors", None)
    if colors is None or len(colors) != count:
        return np.full((count, 3), 0.5)
    return np.asarray(colors)[:, :3] / 255.0


def _face_colors(mesh: trimesh.Trimesh) -> np.ndarray:
    if mesh.visual.kind == "vertex":
        return mesh.visual.vertex_colors[mesh.faces][:, :, :3].mean(axis=1) / 255.0
    if mesh.visual.kind == "face":
        return mesh.visual.face_colors[:, :3] / 255.0
    return np.full((len(mesh.faces), 3), 0.5)
