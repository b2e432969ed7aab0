"""Every Gaussian file format: round trips within the format's stated quantisation (SH degree 0
and 3, and 300k Gaussians), the choice of format by extension, and one-line errors for bad files."""

import time

import numpy as np
import pytest
import trimesh

from splat_cases import errors, in_range_gaussians, tolerances
from tv3dg.errors import UserError
from tv3dg.gaussians.formats import FORMATS, format_of, load, save
from tv3dg.gaussians.gltf import EXTENSION


@pytest.mark.parametrize("degree", [0, 3])
@pytest.mark.parametrize("name", list(FORMATS))
def test_round_trip_within_the_format_quantisation(tmp_path, name, degree):
    g = in_range_gaussians(700, degree, seed=degree)
    path = tmp_path / f"asset{FORMATS[name].suffix}"
    assert save(path, g).name == name
    back = load(path)
    assert back.num_points == g.num_points
    assert back.max_sh_degree == back.active_sh_degree == min(degree, FORMATS[name].max_sh_degree)
    limits = tolerances(name, g)
    for attribute, error in errors(g, back).items():
        assert error <= limits[attribute], f"{name} {attribute}: error {error:.3g} > {limits[attribute]:.3g}"


@pytest.mark.parametrize("name", list(FORMATS))
def test_300k_gaussians_round_trip(tmp_path, name):
    g = in_range_gaussians(300_000, 0, seed=7)
    path = tmp_path / f"big{FORMATS[name].suffix}"
    start = time.perf_counter()
    save(path, g)
    back = load(path)
    assert back.num_points == 300_000
    limits = tolerances(name, g)
    for attribute, error in errors(g, back).items():
        assert error <= limits[attribute], f"{name} {attribute}: error {error:.3g} > {limits[attribute]:.3g}"
    print(f"{name}: {path.stat().st_size / 300_000:.1f} bytes/Gaussian, {time.perf_counter() - start:.2f} s")


def test_compact_formats_are_smaller_than_the_inria_ply(tmp_path):
    g = in_range_gaussians(5000, 3)
    sizes = {}
    for name, fmt in FORMATS.items():
        save(tmp_path / f"a{fmt.suffix}", g)
        sizes[name] = (tmp_path / f"a{fmt.suffix}").stat().st_size
    assert sizes["spz"] < sizes["ply"] / 3  # random SH compress worse than real assets' ~10x
    assert sizes["compressed.ply"] < sizes["ply"] / 3
    assert sizes["splat"] == 32 * 5000


def test_format_is_chosen_by_the_longest_extension():
    assert format_of("a/asset.ply").name == "ply"
    assert format_of("a/asset.compressed.ply").name == "compressed.ply"
    assert format_of("A.SPZ").name == "spz"
    with pytest.raises(UserError, match=r"'mesh.obj' has an extension .* use one of .ply, .compressed.ply"):
        format_of("mesh.obj")


def test_a_compressed_ply_loads_whatever_its_name(tmp_path):
    g = in_range_gaussians(300, 1)
    save(tmp_path / "a.compressed.ply", g)
    (tmp_path / "a.compressed.ply").rename(tmp_path / "renamed.ply")
    assert load(tmp_path / "renamed.ply").num_points == 300


def test_glb_follows_the_khr_gaussian_splatting_schema(tmp_path):
    """The JSON a glTF viewer reads: extension declared, POINTS primitive, the required properties,
    attribute semantics and accessor types of the extension's table, and float xyzw rotations."""
    import json
    import struct

    g = in_range_gaussians(50, 2)
    save(tmp_path / "a.glb", g)
    raw = (tmp_path / "a.glb").read_bytes()
    magic, version, total = struct.unpack_from("<4sII", raw)
    assert (magic, version, total) == (b"glTF", 2, len(raw))
    length, _ = struct.unpack_from("<II", raw, 12)
    doc = json.loads(raw[20 : 20 + length])
    assert EXTENSION in doc["extensionsUsed"]
    primitive = doc["meshes"][0]["primitives"][0]
    assert primitive["mode"] == 0
    assert primitive["extensions"][EXTENSION] == {"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}
    types = {k: doc["accessors"][i]["type"] for k, i in primitive["attributes"].items()}
    assert types[f"{EXTENSION}:ROTATION"] == "VEC4" and types[f"{EXTENSION}:SCALE"] == "VEC3"
    assert types[f"{EXTENSION}:OPACITY"] == "SCALAR" and types["POSITION"] == "VEC3"
    assert sorted(k for k in types if "SH_DEGREE" in k) == sorted(
        f"{EXTENSION}:SH_DEGREE_{l}_COEF_{n}" for l in range(3) for n in range(2 * l + 1))
    position = doc["accessors"][primitive["attributes"]["POSITION"]]
    np.testing.assert_allclose(position["min"], g.means.detach().min(0).values.numpy(), rtol=0, atol=1e-7)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3 + 1])


@pytest.mark.parametrize("name", list(FORMATS))
def test_truncated_files_give_one_line_errors(tmp_path, name):
    path = tmp_path / f"asset{FORMATS[name].suffix}"
    save(path, in_range_gaussians(1000, 1))
    truncate(path)
    with pytest.raises(UserError) as err:
        load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_mesh_is_not_gaussians(tmp_path):
    box = trimesh.creation.box()
    box.export(tmp_path / "mesh.ply")
    box.export(tmp_path / "mesh.glb")
    with pytest.raises(UserError, match="not a 3DGS .ply: it lacks"):
        load(tmp_path / "mesh.ply")
    with pytest.raises(UserError, match=f"holds no {EXTENSION} primitive"):
        load(tmp_path / "mesh.glb")


def test_missing_file_and_foreign_bytes(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load(tmp_path / "nothing.spz")
    (tmp_path / "text.spz").write_text("not gaussians")
    with pytest.raises(UserError, match="not a readable .spz file"):
        load(tmp_path / "text.spz")
    (tmp_path / "text.glb").write_text("not gaussians either")
    with pytest.raises(UserError, match="not a binary glTF"):
        load(tmp_path / "text.glb")
