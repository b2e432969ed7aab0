"""3DGS .ply files: exact round trip, the Inria layout, other tools' variants, clear errors."""

import os
import stat

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from tv3dg.errors import UserError
from tv3dg.gaussians.model import Gaussians
from tv3dg.gaussians.ply import load_ply, save_ply
from tv3dg.render.cameras import orbit_cameras
from tv3dg.render.rasterizer import rasterize


def random_gaussians(n: int, degree: int) -> Gaussians:
    gen = torch.Generator().manual_seed(degree)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen), log_scales=torch.randn(n, 3, generator=gen) - 3,
        quats=torch.randn(n, 4, generator=gen), opacity_logits=torch.randn(n, 1, generator=gen),
        sh_dc=torch.randn(n, 1, 3, generator=gen), sh_rest=torch.randn(n, (degree + 1) ** 2 - 1, 3, generator=gen),
    )


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_round_trip_is_exact(tmp_path, degree):
    g = random_gaussians(37, degree)
    save_ply(tmp_path / "a.ply", g)
    back = load_ply(tmp_path / "a.ply")
    assert back.max_sh_degree == degree and back.active_sh_degree == degree
    for (name, a), (_, b) in zip(g.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b), name


def test_layout_is_the_inria_one(tmp_path):
    g = random_gaussians(4, 1)
    with torch.no_grad():
        g.sh_rest.copy_(torch.arange(4 * 3 * 3, dtype=torch.float32).reshape(4, 3, 3))  # [n, coeff, channel]
    save_ply(tmp_path / "a.ply", g)
    ply = PlyData.read(str(tmp_path / "a.ply"))
    names = [p.name for p in ply["vertex"].properties]
    assert names == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(9)] + [
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert all(p.val_dtype in ("f4", "float32", "float") for p in ply["vertex"].properties)
    v = ply["vertex"].data[1]
    g = g.requires_grad_(False)
    # f_rest is channel-major: the three red coefficients first, then green, then blue.
    assert [v[f"f_rest_{i}"] for i in range(9)] == pytest.approx([9, 12, 15, 10, 13, 16, 11, 14, 17])
    assert v["opacity"] == pytest.approx(float(g.opacity_logits[1, 0]))  # a logit, not an opacity
    assert v["scale_2"] == pytest.approx(float(g.log_scales[1, 2]))  # a log
    assert v["rot_0"] == pytest.approx(float(g.quats[1, 0]))  # w first, as stored
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "a.ply").st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_reads_other_tools_variants(tmp_path):
    """ascii, doubles, shuffled order, extra properties and no normals: the same Gaussians."""
    g = random_gaussians(5, 1)
    save_ply(tmp_path / "ours.ply", g)
    data = PlyData.read(str(tmp_path / "ours.ply"))["vertex"].data
    names = [n for n in data.dtype.names if n not in ("nx", "ny", "nz")][::-1]  # reversed order
    other = np.empty(len(data), dtype=[(n, "f8") for n in names] + [("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for n in names:
        other[n] = data[n]
    other["red"] = 200
    PlyData([PlyElement.describe(other, "vertex")], text=True).write(str(tmp_path / "other.ply"))
    back = load_ply(tmp_path / "other.ply")
    for (name, a), (_, b) in zip(g.named_parameters(), back.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)


def test_loaded_asset_renders_like_the_original(tmp_path):
    g = random_gaussians(60, 2)
    with torch.no_grad():
        g.means.mul_(0.3)
        g.log_scales.add_(1.0)
    save_ply(tmp_path / "a.ply", g)
    cameras = orbit_cameras(20.0, 45.0, 3.0, 40.0, 24)
    with torch.no_grad():
        ours = rasterize(g, cameras, torch.ones(3)).rgb
        theirs = rasterize(load_ply(tmp_path / "a.ply"), cameras, torch.ones(3)).rgb
    assert torch.equal(ours, theirs) and (ours < 0.99).any()


def write_vertex(path, fields: dict, text: bool = False):
    n = len(next(iter(fields.values())))
    array = np.empty(n, dtype=[(k, "f4") for k in fields])
    for k, v in fields.items():
        array[k] = v
    PlyData([PlyElement.describe(array, "vertex")], text=text).write(str(path))


def valid_fields(n: int = 3) -> dict:
    fields = {k: np.zeros(n) for k in ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
                                        "scale_0", "scale_1", "scale_2", "rot_1", "rot_2", "rot_3"]}
    fields["rot_0"] = np.ones(n)
    return fields


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("hello, I am not a ply"), "not a readable .ply"),
        (lambda p: p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n\x00\x01"),
         "not a readable .ply"),
        (lambda p: write_vertex(p, {"x": [0.0], "y": [0.0], "z": [0.0], "red": [1.0]}), "not a 3DGS .ply: it lacks f_dc_0"),
        (lambda p: write_vertex(p, {**valid_fields(), "f_rest_0": np.zeros(3), "f_rest_1": np.zeros(3)}), "2 f_rest properties"),
        (lambda p: write_vertex(p, {**valid_fields(), "opacity": np.array([0.0, np.nan, 0.0])}), "non-finite"),
        (lambda p: write_vertex(p, {**valid_fields(), "rot_0": np.array([1.0, 0.0, 1.0])}), "all-zero rotation"),
        (lambda p: write_vertex(p, valid_fields(0)), "holds no Gaussians"),
        (lambda p: PlyData([PlyElement.describe(np.zeros(2, dtype=[("a", "f4")]), "face")]).write(str(p)), "no 'vertex'"),
    ],
    ids=["missing", "text", "truncated", "point-cloud", "bad-sh", "nan", "zero-quat", "empty", "no-vertex"],
)
def test_malformed_files_give_one_line_user_errors(tmp_path, make, message):
    path = tmp_path / "bad.ply"
    make(path)
    with pytest.raises(UserError, match=message) as err:
        load_ply(path)
    assert "\n" not in str(err.value) and "bad.ply" in str(err.value)


def test_valid_minimal_file_without_normals_loads(tmp_path):
    write_vertex(tmp_path / "min.ply", valid_fields(2))
    g = load_ply(tmp_path / "min.ply")
    assert g.num_points == 2 and g.max_sh_degree == 0
