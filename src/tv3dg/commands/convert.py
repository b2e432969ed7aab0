"""`tv3dg convert IN OUT`: Gaussians from one file format to another, chosen by the extensions.

Reads any supported format (an Inria `.ply` from any 3DGS tool, of SH degree 0..3, included) and
writes any; a bad input is one line on stderr, a non-zero exit and no output file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tv3dg.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    from tv3dg.gaussians.formats import FORMATS

    suffixes = ", ".join(f.suffix for f in FORMATS.values())
    parser = subparsers.add_parser(
        "convert", help="convert Gaussians between .ply, .compressed.ply, .spz, .splat and .glb",
        description=f"Convert a Gaussian-splat file to another format; the extensions choose the formats ({suffixes}).",
    )
    parser.add_argument("input", type=Path, help="the file to read")
    parser.add_argument("output", type=Path, help="the file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from tv3dg.gaussians.formats import format_of, load, save

    target = format_of(args.output)  # an unknown output extension fails before any reading
    if args.output.exists() and not args.overwrite:
        raise UserError(f"'{args.output}' exists; pass --overwrite to replace it")
    if args.output.resolve() == args.input.resolve():
        raise UserError(f"'{args.input}' is both input and output; name another output file")
    gaussians = load(args.input)
    save(args.output, gaussians)
    dropped = gaussians.max_sh_degree > target.max_sh_degree
    note = f"; {target.suffix} keeps SH degree {target.max_sh_degree} only" if dropped else ""
    print(f"wrote {args.output} ({gaussians.num_points} Gaussians, SH degree "
          f"{min(gaussians.max_sh_degree, target.max_sh_degree)}, {args.output.stat().st_size:,} bytes){note}")
