"""Gaussians in a binary glTF (`.glb`) with the Khronos extension `KHR_gaussian_splatting`
(the Release Candidate text of 2026-04-15, KhronosGroup/glTF commit 63770cc).

One mesh with one `POINTS` primitive whose extension object is
`{"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}` (3DGS colours are display-referred
sRGB). Attributes, all float: `POSITION`, `KHR_gaussian_splatting:ROTATION` (unit quaternion,
x y z w), `:SCALE` (linear), `:OPACITY` (in [0, 1]), `:SH_DEGREE_0_COEF_0` and, for each stored
band l >= 1, `:SH_DEGREE_l_COEF_n` (n = 0..2l, orders m = -l..l; the same basis and signs as the
Inria `.ply`); plus `COLOR_0` (linear RGB and opacity, 8 bits) for viewers that only draw points.
The extension's axes are glTF's (+Y up, front +Z), which are also our world's, so positions are
stored unchanged; the round trip is exact up to float32 rounding of exp/log and the sigmoid.

The reader takes what the extension allows (float or normalised integer rotation, scale and
opacity) from a single primitive; a node that moves the splats (a transform) is refused rather
than silently ignored.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from tv3dg.atomic import write_bytes_atomic
from tv3dg.errors import UserError
from tv3dg.gaussians.arrays import SplatArrays, logit
from tv3dg.gaussians.sh import MAX_SH_DEGREE, SH_C0

EXTENSION = "KHR_gaussian_splatting"
SPEC_VERSION = "Release Candidate, KhronosGroup/glTF 63770cc (2026-04-15)"
GLB_MAGIC, JSON_CHUNK, BIN_CHUNK = b"glTF", 0x4E4F534A, 0x004E4942
FLOAT, POINTS = 5126, 0
COMPONENT_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
TYPE_SIZES = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}


def sh_semantic(degree: int, n: int) -> str:
    return f"{EXTENSION}:SH_DEGREE_{degree}_COEF_{n}"


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def write_glb(path: Path, arrays: SplatArrays) -> None:
    quats = arrays.unit_quats
    columns: dict[str, tuple[np.ndarray, str]] = {
        "POSITION": (arrays.means, "VEC3"),
        f"{EXTENSION}:ROTATION": (quats[:, [1, 2, 3, 0]], "VEC4"),
        f"{EXTENSION}:SCALE": (np.exp(arrays.log_scales), "VEC3"),
        f"{EXTENSION}:OPACITY": (arrays.opacities, "SCALAR"),
        sh_semantic(0, 0): (arrays.sh_dc, "VEC3"),
    }
    for degree in range(1, arrays.sh_degree + 1):
        for n in range(2 * degree + 1):
            columns[sh_semantic(degree, n)] = (arrays.sh_rest[:, degree * degree - 1 + n], "VEC3")
    fallback = np.concatenate([_srgb_to_linear(np.clip(0.5 + SH_C0 * arrays.sh_dc, 0, 1)), arrays.opacities[:, None]], 1)

    blobs, views, accessors, attributes = [], [], [], {}
    offset = 0

    def add(semantic: str, data: bytes, accessor: dict) -> None:
        nonlocal offset
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data)})
        accessors.append({"bufferView": len(views) - 1, "count": arrays.num_points, **accessor})
        attributes[semantic] = len(accessors) - 1
        blobs.append(data + b"\0" * (-len(data) % 4))
        offset += len(blobs[-1])

    for semantic, (values, kind) in columns.items():
        values = np.ascontiguousarray(values, dtype="<f4")
        accessor = {"componentType": FLOAT, "type": kind}
        if semantic == "POSITION":  # glTF requires the bounds of POSITION
            accessor |= {"min": values.min(0).tolist(), "max": values.max(0).tolist()}
        add(semantic, values.tobytes(), accessor)
    add("COLOR_0", np.clip(np.round(fallback * 255), 0, 255).astype(np.uint8).tobytes(),
        {"componentType": 5121, "normalized": True, "type": "VEC4"})

    document = {
        "asset": {"version": "2.0", "generator": "tv3dg"},
        "extensionsUsed": [EXTENSION],
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{
            "attributes": attributes, "mode": POINTS,
            "extensions": {EXTENSION: {"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}},
        }]}],
        "buffers": [{"byteLength": offset}], "bufferViews": views, "accessors": accessors,
    }
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    body = b"".join(blobs)
    total = 12 + 8 + len(text) + 8 + len(body)
    write_bytes_atomic(path, b"".join([
        struct.pack("<4sII", GLB_MAGIC, 2, total), struct.pack("<II", len(text), JSON_CHUNK), text,
        struct.pack("<II", len(body), BIN_CHUNK), body,
    ]))


def read_glb(path: Path) -> SplatArrays:
    raw = path.read_bytes()
    document, binary = _chunks(path, raw)
    primitive = _splat_primitive(path, document)
    attributes = primitive["attributes"]
    missing = [s for s in ("POSITION", f"{EXTENSION}:ROTATION", f"{EXTENSION}:SCALE", f"{EXTENSION}:OPACITY",
                           sh_semantic(0, 0)) if s not in attributes]
    if missing:
        raise UserError(f"'{path}' lacks the {EXTENSION} attributes {', '.join(missing)}; the file is incomplete")

    def read(semantic: str) -> np.ndarray:
        return _accessor(path, document, binary, attributes[semantic])

    degree = 0
    while degree < MAX_SH_DEGREE and all(sh_semantic(degree + 1, n) in attributes for n in range(2 * degree + 3)):
        degree += 1
    rest = [read(sh_semantic(l, n)) for l in range(1, degree + 1) for n in range(2 * l + 1)]
    means = read("POSITION")
    n = means.shape[0]
    scales = read(f"{EXTENSION}:SCALE")
    if (scales < 0).any():
        raise UserError(f"'{path}' has negative scales, which {EXTENSION} forbids; the file is corrupt")
    with np.errstate(divide="ignore"):
        log_scales = np.log(scales)  # a zero scale becomes -inf and is reported as non-finite
    return SplatArrays(
        means=means,
        log_scales=log_scales.astype(np.float32),
        quats=read(f"{EXTENSION}:ROTATION")[:, [3, 0, 1, 2]],
        opacity_logits=logit(read(f"{EXTENSION}:OPACITY").reshape(n)),
        sh_dc=read(sh_semantic(0, 0)),
        sh_rest=np.stack(rest, axis=1) if rest else np.zeros((n, 0, 3), np.float32),
    )


def _chunks(path: Path, raw: bytes) -> tuple[dict, bytes]:
    """The JSON document and the binary chunk of a GLB, checking its declared lengths."""
    if len(raw) < 20 or raw[:4] != GLB_MAGIC:
        raise UserError(f"'{path}' is not a binary glTF (.glb) file; pass a .glb written with {EXTENSION}")
    _, version, total = struct.unpack_from("<4sII", raw)
    if version != 2:
        raise UserError(f"'{path}' is glTF version {version}; only glTF 2.0 is supported")
    if total != len(raw):
        raise UserError(f"'{path}' is {len(raw)} bytes but its header says {total}; the file is truncated or damaged")
    chunks, at = {}, 12
    while at + 8 <= len(raw):
        length, kind = struct.unpack_from("<II", raw, at)
        chunks.setdefault(kind, raw[at + 8 : at + 8 + length])
        at += 8 + length
    if JSON_CHUNK not in chunks:
        raise UserError(f"'{path}' has no JSON chunk; the .glb file is damaged")
    try:
        document = json.loads(chunks[JSON_CHUNK])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"'{path}' has an unreadable JSON chunk ({err}); the .glb file is damaged") from None
    return document, chunks.get(BIN_CHUNK, b"")


def _splat_primitive(path: Path, document: dict) -> dict:
    found = [(m, p) for m, mesh in enumerate(document.get("meshes", [])) for p in mesh.get("primitives", [])
             if EXTENSION in p.get("extensions", {})]
    if not found:
        raise UserError(f"'{path}' holds no {EXTENSION} primitive (a mesh?); pass Gaussians saved as .glb")
    if len(found) > 1:
        raise UserError(f"'{path}' holds {len(found)} {EXTENSION} primitives; only files with one are supported")
    mesh, primitive = found[0]
    kernel = primitive["extensions"][EXTENSION].get("kernel")
    if kernel != "ellipse":
        raise UserError(f"'{path}' uses the {EXTENSION} kernel {kernel!r}; only 'ellipse' (3DGS) is supported")
    for node in document.get("nodes", []):
        moved = any(key in node for key in ("matrix", "translation", "rotation", "scale"))
        if node.get("mesh") == mesh and moved:
            raise UserError(f"'{path}' places its splats with a node transform, which tv3dg does not apply; "
                            "bake the transform into the splats first")
    return primitive


def _accessor(path: Path, document: dict, binary: bytes, index: int) -> np.ndarray:
    """Accessor `index` as float32 [count, components], normalised integers mapped as glTF says."""
    try:
        accessor = document["accessors"][index]
        view = document["bufferViews"][accessor["bufferView"]]
        dtype = np.dtype(COMPONENT_DTYPES[accessor["componentType"]]).newbyteorder("<")
        width = TYPE_SIZES[accessor["type"]]
        count = accessor["count"]
    except (KeyError, IndexError, TypeError) as err:
        raise UserError(f"'{path}' has an accessor that glTF does not allow ({err!r}); the file is damaged") from None
    if "sparse" in accessor or view.get("buffer", 0) != 0:
        raise UserError(f"'{path}' uses sparse accessors or external buffers, which tv3dg does not read")
    element = dtype.itemsize * width
    stride = view.get("byteStride", element)
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    end = start + stride * (count - 1) + element if count else start
    if end > min(len(binary), view.get("byteOffset", 0) + view["byteLength"]):
        raise UserError(f"'{path}' is missing data its accessors point to; the file is truncated or damaged")
    rows = np.lib.stride_tricks.as_strided(
        np.frombuffer(binary, dtype=dtype, count=(end - start) // dtype.itemsize if count else 0, offset=start),
        shape=(count, width), strides=(stride, dtype.itemsize),
    ) if count else np.zeros((0, width), dtype)
    values = rows.astype(np.float32)
    if accessor.get("normalized") and dtype.kind in "iu":
        values = values / np.iinfo(dtype).max
        if dtype.kind == "i":
            values = np.maximum(values, -1.0)
    return values
