"""The ablation grid in the mini world: variants x cases x seeds, written as `tv3dg batch` jobs.

Three kinds of case:
- text: text only (the visual prompt comes from Func Switch); scored on every attribute the text names;
- style: the text names a shape, the visual prompt shows a *different* object; the asset should have
  the text's shape with the image's colour and pattern (style fusion);
- texture: the visual prompt shows the object the text names; shape, colour and pattern should all
  follow (texture fusion).
Together they use every shape, colour and pattern of the world (checked by `check_coverage`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mini_quality import STYLE_CASES, TEXT_PROMPTS, world_image

from tv3dg.atomic import write_text_atomic
from tv3dg.errors import UserError
from tv3dg.priors.mini.world import COLOUR_NAMES, PATTERNS, SHAPES

TEXTURE_CASES = (  # (text, (shape, colour, pattern) of the visual prompt's object): the same shape
    ("a cube", ("cube", "red", "striped")),
    ("a sphere", ("sphere", "cyan", "striped")),
    ("a cone", ("cone", "brown", "plain")),
    ("a torus", ("torus", "orange", "checkered")),
    ("a pyramid", ("pyramid", "yellow", "pinstriped")),
    ("a cylinder", ("cylinder", "pink", "dotted")),
    ("an octahedron", ("octahedron", "purple", "checkered")),
    ("a prism", ("prism", "grey", "plain")),
)
FULL_SEEDS = 3  # seeds 0..N-1
FULL_STEPS = 400  # the mini preset's steps
QUICK_SEEDS = 1
QUICK_STEPS = 20
# Every job's outputs beyond the asset are trimmed: nothing measured reads the turntable or the mesh.
EXPORT_OVERRIDES = ("export.turntable_frames=8", "export.mesh.texture=false")
QUICK_CASES = ("text_a_red_striped_cube", "style_a_cube", "texture_a_torus")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # text | style | texture
    prompt: str
    image: tuple[str, str, str] | None = None  # (shape, colour, pattern) shown by the visual prompt

    @property
    def mode(self) -> str | None:
        """The fusion the method prescribes: style blocks for a different object, all layers for the same."""
        return {"style": "style", "texture": "texture"}.get(self.kind)


@dataclass(frozen=True)
class Variant:
    name: str
    role: str  # default | ablation | baseline (preset settings) | baseline (customary settings)
    label: str
    loss: str = "vpcsm"
    overrides: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("text", "style", "texture")
    mode: str | None = None  # None: the case's own fusion mode
    note: str = field(default="", compare=False)


DEFAULT = "vpcsm"
VARIANTS = (
    Variant("vpcsm", "default", "VPCSM (mini preset: CFG 7.5, PAG 1, SGC, shape-prior init)"),
    Variant("vpcsm_no_sgc", "ablation", "VPCSM without SGC", overrides=("sgc.enabled=false",)),
    Variant("vpcsm_sphere", "ablation", "VPCSM, sphere init instead of the shape prior",
            overrides=("init.kind=sphere",)),
    Variant("vpcsm_texture_fusion", "ablation", "VPCSM, texture fusion on the style cases",
            kinds=("style",), mode="texture"),
    Variant("vpcsm_no_view_words", "ablation", "VPCSM without view-dependent prompts",
            overrides=("prior.view_dependent_prompts=false",)),
    Variant("vpcsm_pag5", "ablation", "VPCSM with PAG 5, where its term is about 9% of the classifier term (PAG 1: 2%; "
            "benchmarks/results/pag_sweep.json)", overrides=("distill.pag_scale=5",)),
    Variant("csm", "baseline (preset settings)",
            "CSM: the classifier term on inverted noise, that is VPCSM without PAG", loss="csm"),
    Variant("csd", "baseline (preset settings)", "CSD (classifier term, random noise)", loss="csd"),
    Variant("sds", "baseline (preset settings)", "SDS at the preset's CFG 7.5", loss="sds"),
    Variant("sds_cfg100", "baseline (customary settings)", "SDS at CFG 100 (DreamFusion)", loss="sds",
            overrides=("distill.cfg_scale=100",)),
    Variant("sds_cfg100_no_view_words", "baseline (customary settings)", "SDS at CFG 100 without view-dependent prompts",
            loss="sds", overrides=("distill.cfg_scale=100", "prior.view_dependent_prompts=false")),
    Variant("ism", "baseline (preset settings)", "ISM at the preset's settings (w=1-abar, the preset's inversion steps to s, one more to t)",
            loss="ism"),
    Variant("ism_lucid", "baseline (customary settings)",
            "ISM, LucidDreamer-like (w=sqrt((1-abar)/abar), 5 inversion steps, delta 80)", loss="ism",
            overrides=("distill.weighting=sqrt", "distill.inversion_steps=5", "distill.ism_delta=80")),
)


def slug(text: str) -> str:
    return text.replace(" ", "_")


def all_cases() -> list[Case]:
    cases = [Case(f"text_{slug(p)}", "text", p) for p in TEXT_PROMPTS]
    cases += [Case(f"style_{slug(t)}", "style", t, image) for t, image in STYLE_CASES]
    cases += [Case(f"texture_{slug(t)}", "texture", t, image) for t, image in TEXTURE_CASES]
    return cases


def check_coverage(cases: list[Case]) -> None:
    """Every shape, colour and pattern of the world appears in some case's text or visual prompt."""
    words = " ".join(c.prompt for c in cases).split() + [name for c in cases if c.image for name in c.image]
    missing = [name for name in SHAPES + COLOUR_NAMES + PATTERNS if name not in words]
    if missing:
        raise ValueError(f"the grid never shows {missing}")


@dataclass(frozen=True)
class Grid:
    variants: tuple[Variant, ...]
    cases: tuple[Case, ...]
    seeds: tuple[int, ...]
    steps: int
    quick: bool

    @classmethod
    def build(cls, quick: bool, max_cases: int | None = None, seeds: int | None = None, steps: int | None = None,
              variants: list[str] | None = None) -> "Grid":
        """The full or quick grid, optionally cut down (first `max_cases` cases, named `variants`)."""
        unknown = set(variants or ()) - {v.name for v in VARIANTS}
        if unknown:
            raise UserError(f"unknown variant(s) {sorted(unknown)}; choose from {[v.name for v in VARIANTS]}")
        chosen = tuple(v for v in VARIANTS if variants is None or v.name in variants)
        cases = all_cases()
        check_coverage(cases)
        if quick:
            cases = [c for name in QUICK_CASES for c in cases if c.id == name]
        if max_cases is not None:
            cases = cases[:max_cases]
        seeds = seeds or (QUICK_SEEDS if quick else FULL_SEEDS)
        return cls(chosen, tuple(cases), tuple(range(seeds)), steps or (QUICK_STEPS if quick else FULL_STEPS), quick)

    def cells(self) -> list[tuple[Variant, Case, int]]:
        return [(v, c, s) for v in self.variants for c in self.cases if c.kind in v.kinds for s in self.seeds]

    def run_order(self) -> list[tuple[Variant, Case, int]]:
        """The cells seed by seed and, within a seed, case by case with every variant of the case
        together: a grid run in pieces adds whole paired comparisons against the default, and after a
        first piece every claim can already be looked at on a few cases."""
        case_index = {case.id: i for i, case in enumerate(self.cases)}
        return sorted(self.cells(), key=lambda cell: (cell[2], case_index[cell[1].id]))

    def describe(self) -> dict:
        return {
            "quick": self.quick, "steps": self.steps, "seeds": list(self.seeds),
            "variants": [{"name": v.name, "role": v.role, "label": v.label, "loss": v.loss,
                          "overrides": list(v.overrides), "kinds": list(v.kinds), "mode": v.mode} for v in self.variants],
            "cases": [{"id": c.id, "kind": c.kind, "prompt": c.prompt, "image": c.image} for c in self.cases],
            "jobs": len(self.cells()), "export_overrides": list(EXPORT_OVERRIDES),
        }


def job_id(variant: Variant, case: Case, seed: int) -> str:
    return f"{variant.name}__{case.id}__s{seed}"


def image_name(image: tuple[str, str, str]) -> str:
    return f"images/{'_'.join(image)}.png"


def write_jobs(grid: Grid, folder: Path, only: set[str] | None = None, name: str = "jobs.jsonl") -> Path:
    """Render the visual prompts and write the jobs (all, or those whose id is in `only`) to
    `folder/name`, image paths relative to it."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for variant, case, seed in grid.run_order():
        if only is not None and job_id(variant, case, seed) not in only:
            continue
        job: dict = {"id": job_id(variant, case, seed), "prompt": case.prompt, "loss": variant.loss, "seed": seed,
                     "steps": grid.steps, "config": "mini", "overrides": [*EXPORT_OVERRIDES, *variant.overrides],
                     "tags": {"variant": variant.name, "case": case.id, "kind": case.kind, "seed": seed}}
        if case.image is not None:
            path = folder / image_name(case.image)
            if not path.exists():
                world_image(*case.image, path)
            job["image"] = image_name(case.image)
        mode = variant.mode or case.mode
        if mode is not None:
            job["mode"] = mode
        lines.append(json.dumps(job))
    path = folder / name
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
