"""`tv3dg convert IN OUT`: every pair of formats, foreign Inria .ply files of any SH degree, and
bad input as one line, a non-zero exit and no output file."""

import itertools

import numpy as np
import pytest
import trimesh
from plyfile import PlyData, PlyElement

from splat_cases import errors, in_range_gaussians, tolerances
from tv3dg.cli import main
from tv3dg.gaussians.formats import FORMATS, load, save
from tv3dg.gaussians.ply import save_ply


@pytest.mark.parametrize("source, target", list(itertools.product(FORMATS, FORMATS)))
def test_every_pair_converts(tmp_path, capsys, source, target):
    src = tmp_path / f"in{FORMATS[source].suffix}"
    dst = tmp_path / "out" / f"converted{FORMATS[target].suffix}"
    save(src, in_range_gaussians(400, 3, seed=1))
    assert main(["convert", str(src), str(dst)]) == 0
    before, after = load(src), load(dst)
    assert after.num_points == 400
    assert after.max_sh_degree == min(before.max_sh_degree, FORMATS[target].max_sh_degree)
    limits = tolerances(target, before)
    for attribute, error in errors(before, after).items():
        assert error <= limits[attribute], f"{source}->{target} {attribute}: {error:.3g} > {limits[attribute]:.3g}"
    out = capsys.readouterr().out
    assert f"wrote {dst} (400 Gaussians" in out
    assert ("keeps SH degree 0 only" in out) == (target == "splat" and before.max_sh_degree > 0)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_foreign_inria_ply_of_any_degree(tmp_path, degree):
    """Another tool's .ply: doubles, its own property order, no normals, extra colour properties."""
    g = in_range_gaussians(300, degree, seed=degree)
    save_ply(tmp_path / "ours.ply", g)
    data = PlyData.read(str(tmp_path / "ours.ply"))["vertex"].data
    names = [n for n in data.dtype.names if n not in ("nx", "ny", "nz")][::-1]
    foreign = np.empty(len(data), dtype=[(n, "<f8") for n in names] + [("red", "u1")])
    for n in names:
        foreign[n] = data[n]
    foreign["red"] = 7
    PlyData([PlyElement.describe(foreign, "vertex")]).write(str(tmp_path / "foreign.ply"))
    for name, fmt in FORMATS.items():
        out = tmp_path / f"from_foreign{fmt.suffix}"
        assert main(["convert", str(tmp_path / "foreign.ply"), str(out)]) == 0
        back = load(out)
        assert back.max_sh_degree == min(degree, fmt.max_sh_degree)
        limits = tolerances(name, g)
        for attribute, error in errors(g, back).items():
            assert error <= limits[attribute] + 1e-6, f"degree {degree} -> {name} {attribute}: {error:.3g}"


def mesh_ply(path):
    trimesh.creation.box().export(path)


def truncated_spz(path):
    save(path, in_range_gaussians(500, 0))
    path.write_bytes(path.read_bytes()[:-100])


def truncated_ply(path):
    save(path, in_range_gaussians(500, 0))
    path.write_bytes(path.read_bytes()[:-100])


@pytest.mark.parametrize(
    "make_input, input_name, output_name, message",
    [
        (lambda p: p.write_text("v 0 0 0\n"), "mesh.obj", "out.spz", "extension tv3dg does not know"),
        (lambda p: save(p, in_range_gaussians(5, 0)), "in.ply", "out.ksplat", "'.*out.ksplat' has an extension"),
        (truncated_spz, "cut.spz", "out.ply", "not a readable .spz file"),
        (truncated_ply, "cut.ply", "out.spz", "not a readable .ply file"),
        (mesh_ply, "box.ply", "out.glb", "not a 3DGS .ply: it lacks"),
        (lambda p: None, "missing.splat", "out.ply", "does not exist"),
    ],
    ids=["unknown-input", "unknown-output", "truncated-spz", "truncated-ply", "mesh-ply", "missing"],
)
def test_bad_input_is_one_line_and_no_file(tmp_path, capsys, make_input, input_name, output_name, message):
    src, out_dir = tmp_path / input_name, tmp_path / "out"
    make_input(src)
    out_dir.mkdir()
    assert main(["convert", str(src), str(out_dir / output_name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tv3dg: error: ")
    assert __import__("re").search(message, err), err
    assert list(out_dir.iterdir()) == []  # neither the output nor a temporary file


def test_existing_output_needs_overwrite(tmp_path, capsys):
    save(tmp_path / "a.ply", in_range_gaussians(5, 0))
    (tmp_path / "b.spz").write_bytes(b"keep me")
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "b.spz")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and (tmp_path / "b.spz").read_bytes() == b"keep me"
    assert main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "b.spz"), "--overwrite"]) == 0
    assert load(tmp_path / "b.spz").num_points == 5
