"""The generated references of the documentation site: every config key described, every preset key
listed, every command-line option shown; and every results file the docs name exists."""

import argparse
import re
from pathlib import Path

import pytest

from tv3dg.cli import build_parser
from tv3dg.commands.reference import cli_reference_markdown, subcommands
from tv3dg.config import field_descriptions
from tv3dg.pipeline.config import PRESETS, preset_data
from tv3dg.pipeline.reference import config_reference_markdown, config_sections, preset_keys

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_key_and_section_has_a_description():
    sections = config_sections()
    assert len([key for section in sections for key in section.keys]) > 100
    undescribed = [key.key for section in sections for key in section.keys if not key.description]
    assert undescribed == [], f"give these fields an attribute docstring (see CONTRIBUTING.md, Documenting): {undescribed}"
    assert [section.name for section in sections if not section.summary] == []


@pytest.mark.parametrize("preset", PRESETS)
def test_every_key_a_preset_sets_is_in_the_reference(preset):
    listed = {key.key for section in config_sections() for key in section.keys}
    page = config_reference_markdown()
    set_by_preset = preset_keys(preset_data(preset))
    assert len(set_by_preset) > 30
    assert [key for key in set_by_preset if key not in listed] == []
    assert [key for key in set_by_preset if f"| `{key}` |" not in page] == []


def test_the_reference_shows_each_presets_own_value():
    keys = {key.key: key for section in config_sections() for key in section.keys}
    assert keys["steps"].values == {"mini": 400, "sd15": 3000}
    assert keys["camera.resolution"].values == {"mini": 64, "sd15": 512}
    assert keys["distill.t_max"].values["mini"] == [0, 0.98, 0.5, 300]
    assert keys["distill.loss"].type.startswith("one of ")
    assert "| `steps` | int | `400` | `3000` |" in config_reference_markdown()


def test_field_descriptions_read_the_attribute_docstrings():
    from dataclasses import dataclass

    @dataclass
    class Example:
        described: int = 1
        """Its meaning,
        over two lines."""
        bare: int = 2

    assert field_descriptions(Example) == {"described": "Its meaning, over two lines."}


def test_the_cli_reference_lists_every_option_of_every_command():
    parser = build_parser()
    page = cli_reference_markdown(parser)
    commands = dict(subcommands(parser))
    assert {"tv3dg generate", "tv3dg 2d", "tv3dg render", "tv3dg batch", "tv3dg app", "tv3dg mini train"} <= set(commands)
    for name, command in commands.items():
        section = page.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            shown = action.option_strings or [action.metavar or action.dest]
            assert all(f"`{flag}`" in section for flag in shown), (name, shown)
    assert "`--verbose`" in page


def documentation_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_results_file_the_docs_name_exists():
    named = {
        (path.relative_to(ROOT), match)
        for path in documentation_files()
        for match in re.findall(r"benchmarks/results/[\w./*-]*\w", path.read_text(encoding="utf-8"))
    }
    assert len(named) > 5
    missing = [(str(doc), result) for doc, result in sorted(named) if not any(ROOT.glob(result))]  # a name may be a glob
    assert missing == []


def test_the_site_builds_offline():
    """No plugin that fetches at build time (Material's social cards download fonts) and no web fonts."""
    import yaml

    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    plugins = {next(iter(p)) if isinstance(p, dict) else p for p in site["plugins"]}
    assert plugins <= {"search", "mkdocstrings"}
    assert site["theme"]["font"] is False
    assert site["strict"] is True


def test_every_relative_link_of_the_readme_resolves():
    """The site's links are checked by `mkdocs build --strict`; the README is not part of the site."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in t]
    assert len(targets) > 10
    assert [t for t in targets if not (ROOT / t).exists()] == []
