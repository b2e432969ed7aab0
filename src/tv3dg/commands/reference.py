"""The command-line reference: every subcommand's usage and options, read from the argparse parsers
that `tv3dg.cli.build_parser` builds (the documentation site renders it, so it cannot drift)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator


def subcommands(parser: argparse.ArgumentParser, path: str = "tv3dg") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(`tv3dg generate`, parser) for every command that runs something, nested ones included."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield path, parser
        return
    for action in actions:
        for name, child in action.choices.items():
            yield from subcommands(child, f"{path} {name}")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _argument(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("*", "+") else "")
    names = ", ".join(f"`{flag}`" for flag in action.option_strings)
    if action.nargs == 0:
        return names
    if action.choices is not None:
        return f"{names} `{'|'.join(str(c) for c in action.choices)}`"
    metavar = action.metavar or action.dest.upper()
    return f"{names} `{metavar}`"


def _default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or action.default == []:
        return ""
    return f"`{action.default}`"


def command_markdown(name: str, parser: argparse.ArgumentParser) -> list[str]:
    """One command: its description, usage and a table of its arguments."""
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines = [f"## `{name}`", "", _cell(parser.description or ""), "", "```text", usage, "```", ""]
    rows = [a for a in parser._actions if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]
    if rows:
        lines += ["| argument | default | meaning |", "|---|---|---|"]
        lines += [f"| {_argument(a)} | {_default(a)} | {_cell(a.help or '')} |" for a in rows]
        lines.append("")
    return lines


def cli_reference_markdown(parser: argparse.ArgumentParser) -> str:
    """The command-line reference page for the parser `tv3dg.cli.build_parser()` returns."""
    lines = [
        "# Command-line reference",
        "",
        "Generated from the `tv3dg` argument parsers when the site is built; `tv3dg COMMAND --help` prints",
        "the same. Commands that take `key=value` accept any [configuration key](config.md), before,",
        "between or after the flags.",
        "",
    ]
    for name, child in subcommands(parser):
        lines += command_markdown(name, child)
    return "\n".join(lines)
