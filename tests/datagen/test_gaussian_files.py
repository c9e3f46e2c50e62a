"""Gaussian scene files: INRIA 3DGS .ply (pre-activation values, plyfile-readable with the INRIA
property names) and antimatter15 .splat round trips, clear errors on malformed files."""

import numpy as np
import pytest
import torch
from plyfile import PlyData

from datagen.gaussian_files import (
    PLY_PROPERTIES,
    SH_C0,
    GaussianCloud,
    GaussianFileError,
    cloud_from_splat_bytes,
    read_ply,
    read_splat,
    splat_bytes,
    write_ply,
    write_splat,
)


def random_cloud(n: int = 50, seed: int = 0) -> GaussianCloud:
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    quats[quats[:, 0] < 0] *= -1
    return GaussianCloud(
        means=rng.normal(size=(n, 3)) * 3,
        scales=np.exp(rng.uniform(-5, 0, (n, 3))),
        quats=quats,
        opacities=rng.uniform(0.01, 0.99, n),
        colors=rng.uniform(0, 1, (n, 3)),
    )


def test_ply_round_trip_and_inria_layout(tmp_path):
    cloud = random_cloud()
    path = write_ply(tmp_path / "scene.ply", cloud)
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed away

    ply = PlyData.read(str(path))  # plain plyfile reads it
    vertex = ply["vertex"]
    assert [p.name for p in vertex.properties] == list(PLY_PROPERTIES)
    assert all(p.val_dtype in ("f4", "float32") for p in vertex.properties)
    assert len(vertex.data) == len(cloud)
    # stored values are the pre-activation ones of the INRIA layout
    np.testing.assert_allclose(vertex["opacity"], np.log(cloud.opacities / (1 - cloud.opacities)),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(vertex["scale_1"], np.log(cloud.scales[:, 1]), rtol=1e-6)
    np.testing.assert_allclose(vertex["f_dc_2"], (cloud.colors[:, 2] - 0.5) / SH_C0, rtol=1e-5)
    np.testing.assert_allclose(vertex["rot_0"], cloud.quats[:, 0], rtol=1e-6)  # w first
    assert np.all(vertex["nx"] == 0)

    back = read_ply(path)
    for name in ("means", "scales", "quats", "opacities", "colors"):
        np.testing.assert_allclose(getattr(back, name), getattr(cloud, name), rtol=1e-5,
                                   atol=1e-6, err_msg=name)  # fmt: skip


def test_ply_reader_ignores_sh_rest_and_rejects_other_plys(tmp_path):
    from plyfile import PlyElement

    cloud = random_cloud(5)
    names = [*PLY_PROPERTIES[:9], "f_rest_0", *PLY_PROPERTIES[9:]]
    data = np.zeros(5, dtype=[(n, "<f4") for n in names])
    ply = PlyData.read(str(write_ply(tmp_path / "a.ply", cloud)))["vertex"].data
    for n in PLY_PROPERTIES:
        data[n] = ply[n]
    data["f_rest_0"] = 7.0
    PlyData([PlyElement.describe(data, "vertex")]).write(str(tmp_path / "sh.ply"))
    np.testing.assert_allclose(read_ply(tmp_path / "sh.ply").colors, cloud.colors, atol=1e-6)

    points = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    PlyData([PlyElement.describe(points, "vertex")]).write(str(tmp_path / "points.ply"))
    with pytest.raises(GaussianFileError, match=r"points\.ply.*missing properties.*f_dc_0"):
        read_ply(tmp_path / "points.ply")
    (tmp_path / "junk.ply").write_bytes(b"not a ply")
    with pytest.raises(GaussianFileError, match=r"junk\.ply: not a readable \.ply"):
        read_ply(tmp_path / "junk.ply")


def test_splat_round_trip_quantises_to_eight_bits(tmp_path):
    cloud = random_cloud(64, seed=1)
    path = write_splat(tmp_path / "scene.splat", cloud)
    assert path.stat().st_size == 32 * len(cloud)
    back = read_splat(path)
    assert len(back) == len(cloud)
    # sorted by descending volume x opacity: match the records back to the input by position
    importance = np.prod(cloud.scales, axis=1) * cloud.opacities
    order = np.argsort(-importance, kind="stable")
    np.testing.assert_array_equal(back.means, cloud.means[order])  # float32: exact
    np.testing.assert_array_equal(back.scales, cloud.scales[order])
    assert np.abs(back.colors - cloud.colors[order]).max() <= 0.5 / 255 + 1e-6
    assert np.abs(back.opacities - cloud.opacities[order]).max() <= 0.5 / 255 + 1e-6
    # quaternions: 8-bit components, renormalised; same rotation up to sign
    dots = np.abs((back.quats * cloud.quats[order]).sum(1))
    assert dots.min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(back.quats, axis=1), 1.0, rtol=1e-6)
    raw = np.frombuffer(splat_bytes(cloud, sort=False), np.uint8).reshape(-1, 32)
    expected_w = np.clip(np.round(cloud.quats[:, 0] * 128 + 128), 0, 255)
    np.testing.assert_array_equal(raw[:, 28], expected_w)  # byte 28 = w

    with pytest.raises(GaussianFileError, match=r"bad\.splat: 33 bytes"):
        cloud_from_splat_bytes(b"\0" * 33, "bad.splat")


def test_cloud_from_tensors_and_shape_checks():
    g = {
        "means": torch.zeros(2, 4, 3),
        "scales": torch.ones(2, 4, 3),
        "quats": torch.tensor([1.0, 0, 0, 0]).expand(2, 4, 4),
        "opacities": torch.full((2, 4), 0.5),
        "colors": torch.rand(2, 4, 3),
    }
    cloud = GaussianCloud.from_tensors(g, index=1)
    assert len(cloud) == 4 and cloud.means.dtype == np.float32
    np.testing.assert_allclose(cloud.colors, g["colors"][1].numpy())
    with pytest.raises(GaussianFileError, match="pass index"):
        GaussianCloud.from_tensors(g)
    assert len(cloud.subset(cloud.opacities > 0.6)) == 0
    with pytest.raises(GaussianFileError, match=r"quats has shape \(4, 3\)"):
        GaussianCloud(cloud.means, cloud.scales, cloud.quats[:, :3], cloud.opacities, cloud.colors)
