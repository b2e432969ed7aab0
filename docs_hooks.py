"""MkDocs hook: pages generated when the site is built, so none is a hand copy that can drift.

- `reference/cli.md` from the `tv3dg` argument parsers (`tv3dg.commands.reference`);
- `reference/config.md` from the typed config classes (`tv3dg.pipeline.reference`);
- `mini-world.md` from the mini prior's model card, with the files it links to;
- `contributing.md` from CONTRIBUTING.md.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

from tv3dg.cli import build_parser
from tv3dg.commands.reference import cli_reference_markdown
from tv3dg.pipeline.reference import config_reference_markdown

ROOT = Path(__file__).resolve().parent
MODEL_CARD = ROOT / "src" / "tv3dg" / "priors" / "mini" / "MODEL_CARD.md"


def on_files(files: Files, config) -> Files:
    generated = {
        "reference/cli.md": cli_reference_markdown(build_parser()),
        "reference/config.md": config_reference_markdown(),
        "mini-world.md": MODEL_CARD.read_text(encoding="utf-8"),
        "contributing.md": (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8"),
    }
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    for path in sorted((MODEL_CARD.parent / "card").iterdir()):
        files.append(File.generated(config, f"card/{path.name}", abs_src_path=str(path)))
    return files
