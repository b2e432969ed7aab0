"""The app's view of asset.ply: a page of our own (viewer/index.html + viewer.js) in an iframe,
drawing the splats with Spark (an npm package that `make viewer` installs, pinned in
viewer/package-lock.json) and framing them as our renders do, on a white background.

Gradio's `gr.Model3D` cannot do this: only zoom and pan speed reach its splat canvas, so its fixed
camera shows our assets too close, on black. It remains the fallback (with a warning) where the
npm packages are not installed, e.g. in an installed wheel.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from tv3dg.errors import warn
from tv3dg.gaussians.formats import load
from tv3dg.render.cameras import bounding_radius

VIEWER_DIR = Path(__file__).parent / "viewer"
SPARK_MODULE = VIEWER_DIR / "node_modules" / "@sparkjsdev" / "spark" / "dist" / "spark.module.js"


def viewer_installed() -> bool:
    return SPARK_MODULE.is_file()


def viewer_url(asset: Path) -> str:
    """The viewer page for `asset`, as a URL relative to the app's page (Gradio's file route serves
    both). The asset's URL is relative to the viewer page, so any root path the app runs under works."""
    page = f"gradio_api/file={quote(str((VIEWER_DIR / 'index.html').resolve()))}"
    up = "../" * (len(VIEWER_DIR.resolve().parts) - 1)  # from the viewer's folder back to the file route
    query = urlencode({"asset": up + quote(str(asset.resolve()).lstrip("/")),
                       "radius": f"{bounding_radius(load(asset)):.4g}"})
    return f"{page}?{query}"


def viewer_html(asset: Path | None, height: int) -> str:
    if asset is None:
        return f'<div style="height:{height}px;display:flex;align-items:center;justify-content:center;color:#888">' \
               "the generated Gaussians appear here</div>"
    return (f'<iframe src="{escape(viewer_url(asset))}" title="3D Gaussians (asset.ply)" '
            f'style="width:100%;height:{height}px;border:0;display:block" loading="eager"></iframe>')


class SplatView:
    """The result component for asset.ply and the value it takes for a run's asset."""

    def __init__(self, gr: Any, height: int, fallback_options: dict) -> None:
        self.installed, self.height = viewer_installed(), height
        if self.installed:
            self.component = gr.HTML(viewer_html(None, height), label="3D Gaussians (asset.ply)", elem_id="asset")
        else:
            warn(f"the framed splat viewer is not installed ({SPARK_MODULE.relative_to(VIEWER_DIR)} is missing); "
                 "run `make viewer` in a clone of tv3dg; showing asset.ply in Gradio's own viewer meanwhile")
            self.component = gr.Model3D(label="3D Gaussians (asset.ply)", elem_id="asset", height=height,
                                        **fallback_options)

    def value(self, asset: str | None) -> str | None:
        if not self.installed:
            return asset
        return viewer_html(Path(asset) if asset else None, self.height)


def viewer_paths() -> list[str]:
    """What Gradio must serve besides the runs: the viewer page and its npm packages."""
    return [str(VIEWER_DIR.resolve())] if viewer_installed() else []
