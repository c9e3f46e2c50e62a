"""3D Gaussian scene files: the INRIA 3DGS ``.ply`` layout and the antimatter15 ``.splat`` layout.

``GaussianCloud`` holds one scene in *activated* values (numpy float32): means ``[N, 3]`` (world),
scales ``[N, 3]`` (standard deviations), quats ``[N, 4]`` (unit, wxyz), opacities ``[N]`` in
[0, 1], colors ``[N, 3]`` RGB in [0, 1] — the dict ``models.lalrm.gaussians_from_map`` returns.

``.ply`` (INRIA 3DGS, binary little endian, every property float32, in this order)::

    x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 opacity scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3

with pre-activation values: ``opacity`` = logit, ``scale_*`` = log, ``rot_*`` = quaternion wxyz,
``f_dc_*`` = degree-0 spherical-harmonic coefficients ``(rgb - 0.5) / C0`` with
``C0 = 0.28209479177387814``; normals are 0 and no ``f_rest_*`` are written (view-independent
colour). The reader accepts files with ``f_rest_*`` (ignored: degree 0 only) and extra properties.

``.splat`` (antimatter15/splat): 32 bytes per Gaussian, no header, little endian::

    float32 x, y, z | float32 scale_0..2 (linear) | uint8 R, G, B, A | uint8 rot wxyz (q·128 + 128)

Gaussians are written in descending ``volume · opacity`` (the viewer's order); colours, opacity
and rotation are quantised to 8 bits, so a round trip is exact only to 1/255 (colour, opacity)
and about 1/128 (quaternion components).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from datagen.atomic import atomic_write_bytes

SH_C0 = 0.28209479177387814
PLY_PROPERTIES = (
    "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
SPLAT_DTYPE = np.dtype(
    [("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)]
)
OPACITY_EPS = 1e-6  # opacities are clamped to [eps, 1 - eps] before the logit
SCALE_MIN = 1e-12  # scales are clamped to >= this before the log


class GaussianFileError(ValueError):
    """A Gaussian file (or cloud) is malformed; the message names the file and the problem."""


@dataclass
class GaussianCloud:
    """One scene of N Gaussians (activated values, float32 numpy; see the module doc)."""

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    colors: np.ndarray

    def __post_init__(self) -> None:
        for name in ("means", "scales", "quats", "opacities", "colors"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float32))
        n = len(self.means)
        expected = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,),
                    "colors": (n, 3)}  # fmt: skip
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise GaussianFileError(
                    f"GaussianCloud.{name} has shape {getattr(self, name).shape}, expected {shape}"
                )

    def __len__(self) -> int:
        return len(self.means)

    @classmethod
    def from_tensors(cls, gaussians: dict, index: int | None = None) -> GaussianCloud:
        """From a dict of torch tensors or arrays (``means``, ``scales``, ``quats``, ``opacities``,
        ``colors``), ``[N, ...]`` or batched ``[B, N, ...]`` (then ``index`` picks the scene)."""
        arrays = {}
        for name in ("means", "scales", "quats", "opacities", "colors"):
            value = gaussians[name]
            if hasattr(value, "detach"):
                value = value.detach().float().cpu().numpy()
            value = np.asarray(value)
            batched = value.ndim == (2 if name == "opacities" else 3)
            if batched:
                if index is None:
                    if value.shape[0] != 1:
                        raise GaussianFileError(f"{name}: {value.shape[0]} scenes, pass index")
                    index = 0
                value = value[index]
            arrays[name] = value
        return cls(**arrays)

    def subset(self, keep: np.ndarray) -> GaussianCloud:
        """The Gaussians selected by a boolean mask or index array ``keep``."""
        return GaussianCloud(
            self.means[keep], self.scales[keep], self.quats[keep], self.opacities[keep],
            self.colors[keep],
        )  # fmt: skip


# ---- .ply (INRIA 3DGS) ---------------------------------------------------------------------------


def ply_bytes(cloud: GaussianCloud) -> bytes:
    """The cloud as a binary little-endian INRIA 3DGS ``.ply``."""
    n = len(cloud)
    opacity = np.clip(cloud.opacities.astype(np.float64), OPACITY_EPS, 1.0 - OPACITY_EPS)
    quats = cloud.quats / np.maximum(np.linalg.norm(cloud.quats, axis=1, keepdims=True), 1e-12)
    columns = {
        **dict(zip("xyz", cloud.means.T)),
        **{k: np.zeros(n, np.float32) for k in ("nx", "ny", "nz")},
        **{f"f_dc_{i}": (cloud.colors[:, i] - 0.5) / SH_C0 for i in range(3)},
        "opacity": np.log(opacity / (1.0 - opacity)),
        **{f"scale_{i}": np.log(np.maximum(cloud.scales[:, i], SCALE_MIN)) for i in range(3)},
        **{f"rot_{i}": quats[:, i] for i in range(4)},
    }
    vertex = np.empty(n, dtype=[(name, "<f4") for name in PLY_PROPERTIES])
    for name in PLY_PROPERTIES:
        vertex[name] = columns[name]
    buffer = io.BytesIO()
    PlyData([PlyElement.describe(vertex, "vertex")], byte_order="<").write(buffer)
    return buffer.getvalue()


def cloud_from_ply_bytes(data: bytes, where: str = "<bytes>") -> GaussianCloud:
    """Parse an INRIA 3DGS ``.ply`` (``where`` names it in errors); DC colour only."""
    try:
        ply = PlyData.read(io.BytesIO(data))
    except Exception as error:  # plyfile raises several types for malformed input
        raise GaussianFileError(f"{where}: not a readable .ply file ({error})") from None
    if "vertex" not in [element.name for element in ply.elements]:
        raise GaussianFileError(f"{where}: no 'vertex' element")
    vertex = ply["vertex"].data
    names = set(vertex.dtype.names or ())
    needed = [p for p in PLY_PROPERTIES if p not in ("nx", "ny", "nz")]
    missing = [p for p in needed if p not in names]
    if missing:
        raise GaussianFileError(
            f"{where}: not a 3D Gaussian .ply (INRIA layout): missing properties {missing}"
        )

    def stack(keys: list[str]) -> np.ndarray:
        return np.stack([np.asarray(vertex[k], np.float64) for k in keys], axis=-1)

    quats = stack([f"rot_{i}" for i in range(4)])
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    if (norm == 0).any():
        raise GaussianFileError(f"{where}: {int((norm == 0).sum())} zero quaternions")
    return GaussianCloud(
        means=stack(["x", "y", "z"]),
        scales=np.exp(stack([f"scale_{i}" for i in range(3)])),
        quats=quats / norm,
        opacities=1.0 / (1.0 + np.exp(-np.asarray(vertex["opacity"], np.float64))),
        colors=stack([f"f_dc_{i}" for i in range(3)]) * SH_C0 + 0.5,
    )


def write_ply(path: str | os.PathLike, cloud: GaussianCloud) -> Path:
    """Write ``cloud`` as an INRIA 3DGS ``.ply`` (atomically); returns the path."""
    return atomic_write_bytes(path, ply_bytes(cloud))


def read_ply(path: str | os.PathLike) -> GaussianCloud:
    """Read an INRIA 3DGS ``.ply`` (see ``cloud_from_ply_bytes``)."""
    return cloud_from_ply_bytes(Path(path).read_bytes(), str(path))


# ---- .splat (antimatter15) -----------------------------------------------------------------------


def _quantise(x: np.ndarray, scale: float, offset: float) -> np.ndarray:
    return np.clip(np.round(x * scale + offset), 0, 255).astype(np.uint8)


def splat_bytes(cloud: GaussianCloud, sort: bool = True) -> bytes:
    """The cloud in the 32-byte ``.splat`` layout, sorted by descending volume · opacity."""
    order = np.arange(len(cloud))
    if sort:
        importance = np.prod(cloud.scales.astype(np.float64), axis=1) * cloud.opacities
        order = np.argsort(-importance, kind="stable")
    quats = cloud.quats[order].astype(np.float64)
    quats /= np.maximum(np.linalg.norm(quats, axis=1, keepdims=True), 1e-12)
    records = np.empty(len(cloud), SPLAT_DTYPE)
    records["position"] = cloud.means[order]
    records["scale"] = cloud.scales[order]
    rgba = np.concatenate([cloud.colors[order], cloud.opacities[order, None]], axis=1)
    records["rgba"] = _quantise(rgba, 255.0, 0.0)
    records["rot"] = _quantise(quats, 128.0, 128.0)
    return records.tobytes()


def cloud_from_splat_bytes(data: bytes, where: str = "<bytes>") -> GaussianCloud:
    """Parse ``.splat`` bytes (``where`` names them in errors)."""
    if len(data) % SPLAT_DTYPE.itemsize:
        raise GaussianFileError(
            f"{where}: {len(data)} bytes is not a multiple of {SPLAT_DTYPE.itemsize} "
            "(not a .splat file, or truncated)"
        )
    records = np.frombuffer(data, SPLAT_DTYPE)
    quats = (records["rot"].astype(np.float64) - 128.0) / 128.0
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    if (norm == 0).any():
        raise GaussianFileError(f"{where}: {int((norm == 0).sum())} zero quaternions")
    rgba = records["rgba"].astype(np.float32) / 255.0
    return GaussianCloud(
        means=records["position"],
        scales=records["scale"],
        quats=quats / norm,
        opacities=rgba[:, 3],
        colors=rgba[:, :3],
    )


def write_splat(path: str | os.PathLike, cloud: GaussianCloud, sort: bool = True) -> Path:
    """Write ``cloud`` as a ``.splat`` file (atomically); returns the path."""
    return atomic_write_bytes(path, splat_bytes(cloud, sort))


def read_splat(path: str | os.PathLike) -> GaussianCloud:
    """Read a ``.splat`` file (see ``cloud_from_splat_bytes``)."""
    return cloud_from_splat_bytes(Path(path).read_bytes(), str(path))
