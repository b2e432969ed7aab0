"""What every command that takes config keys shares: positional `key=value` overrides, read in
any order with the flags.

One syntax for all of them: `tv3dg generate --prompt "a cube" steps=300 --out runs/cube
sgc.enabled=false`. The overrides are applied by `tv3dg.config.merge_overrides` and checked by
`tv3dg.config.from_dict`, so every command rejects a misspelt key with the same message.
"""

from __future__ import annotations

import argparse


class IntermixedParser(argparse.ArgumentParser):
    """An ArgumentParser that lets flags come before, between or after the positional overrides.

    Plain argparse stops collecting a `nargs="*"` positional at the first flag, so
    `steps=300 --out DIR sgc.enabled=false` would fail; `parse_known_intermixed_args` does not.
    A parser with subcommands cannot be intermixed and parses as usual.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if self._intermixing or has_subcommands:
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls parse_known_args itself
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def add_overrides(parser: argparse.ArgumentParser, example: str) -> None:
    """The positional `key=value ...` argument, stored in `args.overrides`."""
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help=f"set any config key, checked strictly; values are YAML (e.g. {example})",
    )
