"""`tv3dg doctor`'s checks: will this set-up run, and fit, before a long run finds out?

Each check gives one `Check` line: ok, warning (runs, but the user should know) or fail (would
stop the run; the message names the fix). Nothing heavy runs: configs, safetensors headers and
models on the meta device, plus on CUDA a small render with both rasterizers.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import torch

from tv3dg.calibrate.depth import check_depth_estimator
from tv3dg.errors import UserError
from tv3dg.init.initializers import check_initializer
from tv3dg.pipeline.config import GenerateConfig
from tv3dg.pipeline.memory import GIB, alternatives, estimate_memory, shapes_from_folders
from tv3dg.priors.diffusers_prior import resolve_device, resolve_dtype
from tv3dg.priors.ip_adapter import resolve_image_encoder, resolve_ip_adapter
from tv3dg.priors.loading import resolve_model_dir
from tv3dg.priors.random_weights import unet_config
from tv3dg.priors.registry import named_model
from tv3dg.priors.weight_checks import (
    check_adapter_file,
    check_image_encoder_folder,
    check_model_folder,
    meta_unet,
    read_safetensors_header,
)
from tv3dg.render.rasterizer import gsplat_available

Status = Literal["ok", "warning", "fail"]
MIN_VERSIONS = {"python": (3, 10), "torch": (2, 1), "diffusers": (0, 30), "transformers": (4, 40)}
SD15_LAYOUT_KEYS = ("in_channels", "cross_attention_dim", "block_out_channels", "down_block_types", "up_block_types")


@dataclass
class Check:
    name: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{self.status:<8} {self.name:<14} {self.message}"


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split("+")[0].split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def version_checks() -> list[Check]:
    import diffusers
    import transformers

    found = {"python": platform.python_version(), "torch": torch.__version__, "diffusers": diffusers.__version__,
             "transformers": transformers.__version__}
    checks = []
    for name, version in found.items():
        minimum = MIN_VERSIONS[name]
        if _version_tuple(version) < minimum:
            wanted = ".".join(map(str, minimum))
            checks.append(Check(name, "fail", f"{version} is older than {wanted}; upgrade to {name}>={wanted}"))
        else:
            checks.append(Check(name, "ok", version))
    return checks


@dataclass
class DeviceInfo:
    device: torch.device
    free_bytes: int  # free GPU memory on CUDA, available RAM on the CPU


def available_ram() -> tuple[int, int]:
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def device_checks(config: GenerateConfig) -> tuple[list[Check], DeviceInfo | None]:
    """The run's device and dtype as `generate` resolves them, its memory and its half-precision support."""
    try:
        device = resolve_device(config.prior.device)
    except UserError as err:
        return [Check("device", "fail", str(err))], None
    checks = []
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        name = torch.cuda.get_device_name(device)
        checks.append(Check("device", "ok", f"{device} {name}: {free / GIB:.1f} of {total / GIB:.1f} GiB free"))
        bf16 = torch.cuda.is_bf16_supported()
        checks.append(Check("half precision", "ok" if bf16 else "warning",
                            "float16 and bfloat16 supported" if bf16 else "float16 only; bfloat16 is not supported (keep prior.dtype=float16)"))
    else:
        free, total = available_ram()
        bundled = named_model(config.prior.model) is not None
        hint = "" if bundled else " (SD-1.5 at 512 px takes hours per hundred steps on a CPU; a CUDA GPU is meant)"
        status = "ok" if bundled else "warning"
        checks.append(Check("device", status, f"cpu: {free / GIB:.1f} of {total / GIB:.1f} GiB RAM available{hint}"))
    try:
        resolve_dtype(config.prior.dtype, device)
        checks.append(Check("dtype", "ok", f"{config.prior.dtype} on {device.type}"))
    except UserError as err:
        checks.append(Check("dtype", "fail", f"{err} (prior.dtype=float32)"))
    return checks, DeviceInfo(device, free)


def gsplat_checks(device: torch.device | None) -> list[Check]:
    """gsplat importable; on CUDA its kernels load and draw what the torch rasterizer draws."""
    if not gsplat_available():
        return [Check("gsplat", "warning", "not installed (or fails to import); the torch rasterizer is used (pip install 'tv3dg[gpu]' for gsplat's CUDA kernels)")]
    import gsplat

    if device is None or device.type != "cuda":
        return [Check("gsplat", "ok", f"{gsplat.__version__} importable (its kernels run on CUDA only; the torch rasterizer is used here)")]
    from tv3dg.render.parity import backend_parity, parity_scene

    try:
        gaussians, cameras = parity_scene(2000, 2, 64, device)
        parity = backend_parity(gaussians, cameras, torch.ones(3, device=device))
    except Exception as err:  # a kernel build or load failure: reported, and the torch rasterizer is the fallback
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return [Check("gsplat", "fail", f"{gsplat.__version__} kernels failed ({first}); "
                      "install a gsplat wheel built for this torch and CUDA, or uninstall gsplat to use the torch rasterizer")]
    detail = f"mean |rgb| difference {parity.rgb:.1e}, |alpha| {parity.alpha:.1e} against the torch rasterizer"
    if not parity.agrees:
        return [Check("gsplat", "fail", f"{gsplat.__version__} draws differently: {detail}; "
                      "uninstall gsplat to use the torch rasterizer and report it")]
    return [Check("gsplat", "ok", f"{gsplat.__version__} kernels load; {detail}")]


@dataclass
class WeightState:
    """What the weight checks found, for the memory check."""

    model_dir: Path | None = None
    adapter: Path | None = None
    adapter_parameters: int = 0
    embed_dim: int = 0
    image_encoder: Path | None = None

    def complete(self, config: GenerateConfig) -> bool:
        """Everything the config asks for was found and checked."""
        return self.model_dir is not None and (config.prior.ip_adapter is None or self.image_encoder is not None)


def _attempt(name: str, run: Callable[[], str], checks: list[Check]) -> bool:
    """Run one check; a `UserError` becomes its fail line."""
    try:
        message = run()
    except UserError as err:
        checks.append(Check(name, "fail", str(err)))
        return False
    checks.append(Check(name, "ok", message))
    return True


def sd15_layout_warning(model_dir: Path) -> Check | None:
    """A folder that loads but is not laid out like SD-1.5 (the sd15 preset's settings were tuned on SD-1.5)."""
    def plain(value: object) -> object:
        return list(value) if isinstance(value, (list, tuple)) else value

    config, reference = meta_unet(model_dir).config, unet_config()
    differs = [key for key in SD15_LAYOUT_KEYS if plain(config[key]) != plain(reference[key])]
    if not differs:
        return None
    return Check("architecture", "warning", f"the UNet differs from SD-1.5's in {', '.join(differs)}; "
                 "it loads, but the sd15 preset was tuned for SD-1.5")


def weight_checks(config: GenerateConfig) -> tuple[list[Check], WeightState]:
    """The same checks as `check_prior_weights`, one line each; later ones are skipped when their input failed."""
    prior, checks, state = config.prior, [], WeightState()

    def model() -> str:
        state.model_dir = resolve_model_dir(prior.model)
        check_model_folder(state.model_dir)
        return f"{state.model_dir}: complete, configs and safetensors intact"

    if not _attempt("model", model, checks):
        return checks, state
    if named_model(prior.model) is None:
        warning = sd15_layout_warning(state.model_dir)
        if warning is not None:
            checks.append(warning)
    if prior.ip_adapter is None:
        checks.append(Check("ip-adapter", "ok", "none (text prompt only)"))
        return checks, state

    def adapter() -> str:
        state.adapter = resolve_ip_adapter(prior.ip_adapter)
        state.embed_dim = check_adapter_file(state.adapter, meta_unet(state.model_dir))
        state.adapter_parameters = read_safetensors_header(state.adapter).parameters
        return f"{state.adapter}: fits the UNet's cross-attention layers ({state.embed_dim}-d image embeddings)"

    if not _attempt("ip-adapter", adapter, checks):
        return checks, state

    def encoder() -> str:
        folder = resolve_image_encoder(state.adapter, prior.image_encoder)
        check_image_encoder_folder(folder, state.embed_dim)
        state.image_encoder = folder
        return f"{folder}: {state.embed_dim}-d embeddings, as the adapter expects"

    _attempt("image encoder", encoder, checks)
    return checks, state


def optional_model_checks(config: GenerateConfig) -> list[Check]:
    """Shap-E when `init.kind=shap_e`, the depth model when SGC has one: present on this machine."""
    checks: list[Check] = []

    def shap_e() -> str:
        check_initializer(config.init, config.prior.model)
        return f"{config.init.shap_e_model} found"

    def depth() -> str:
        check_depth_estimator(config.sgc.depth_estimator)
        return f"{config.sgc.depth_estimator} found"

    if config.init.kind == "shap_e":
        _attempt("shap-e", shap_e, checks)
    if config.sgc.enabled and config.sgc.depth_estimator:
        _attempt("depth model", depth, checks)
    return checks


def size(num_bytes: int) -> str:
    return f"{num_bytes / GIB:.1f} GiB" if num_bytes >= GIB / 10 else f"{num_bytes / 2**20:.0f} MiB"


def memory_check(config: GenerateConfig, weights: WeightState, device: DeviceInfo | None, limit_gib: float | None) -> Check:
    """The estimate against `limit_gib` (or the device's free memory), naming settings that fit when it does not."""
    if not weights.complete(config) or device is None:
        return Check("memory", "warning", "not estimated: a weight or device check failed above")
    shapes = shapes_from_folders(weights.model_dir, weights.adapter_parameters, weights.image_encoder)
    cuda = device.device.type == "cuda"
    gsplat = cuda and gsplat_available()
    estimate = estimate_memory(config, shapes, cuda=cuda, gsplat=gsplat)
    limit = limit_gib * GIB if limit_gib is not None else device.free_bytes
    where = f"the limit of {limit / GIB:.1f} GiB" if limit_gib is not None else f"{limit / GIB:.1f} GiB free on {device.device.type}"
    largest = max(estimate.parts, key=estimate.parts.get)
    summary = f"estimate {size(estimate.total)} (largest: {largest}, {size(estimate.parts[largest])}) against {where}"
    if estimate.total <= limit:
        return Check("memory", "ok", summary)
    options = [f"{' '.join(o)} ({size(e.total)})" for o, e in alternatives(config, shapes, cuda, gsplat) if e.total <= limit]
    fix = f"; these fit: {', '.join(options)}" if options else "; no single setting fits: use a larger device"
    return Check("memory", "fail", f"{summary}: does not fit{fix}")


def run_checks(config: GenerateConfig, memory_limit_gib: float | None = None) -> list[Check]:
    """Every check for `config`, in the order a run would meet the problems."""
    checks = version_checks()
    device_lines, device = device_checks(config)
    checks += device_lines
    checks += gsplat_checks(device.device if device else None)
    weight_lines, weights = weight_checks(config)
    checks += weight_lines
    checks += optional_model_checks(config)
    checks.append(memory_check(config, weights, device, memory_limit_gib))
    return checks


def as_json(checks: list[Check]) -> dict:
    return {"ok": not any(c.status == "fail" for c in checks), "checks": [asdict(c) for c in checks]}


def summary(checks: list[Check]) -> str:
    counts = {status: sum(c.status == status for c in checks) for status in ("ok", "warning", "fail")}
    verdict = "ready" if counts["fail"] == 0 else "not ready"
    return f"{verdict}: {counts['ok']} ok, {counts['warning']} warnings, {counts['fail']} failed"
