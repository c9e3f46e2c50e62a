"""Camera-format converters: hand-computed goldens, writer->reader round trips, errors, detection."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import PIL.Image  # before any pycolmap import, else PIL's PNG writer aborts
import pytest

from datagen.camera_formats import (
    CameraSet,
    detect_format,
    read_cameras,
    read_colmap,
    read_colmap_binary,
    read_colmap_text,
    read_llff,
    read_nerfstudio,
    read_realestate10k,
    read_worldfm,
    write_cameras,
    write_colmap_binary,
    write_colmap_text,
    write_llff,
    write_nerfstudio,
    write_realestate10k,
    write_worldfm,
)

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden" / "cameras"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())
HW = (EXPECTED["height"], EXPECTED["width"])


def assert_matches_expected(cams: CameraSet, names_key: str, atol: float) -> None:
    assert cams.names == EXPECTED["names"][names_key]
    assert (cams.height, cams.width) == HW
    assert cams.K.dtype == np.float64 and cams.c2w.dtype == np.float64
    np.testing.assert_allclose(cams.K, np.array(EXPECTED["K"], float), rtol=0, atol=atol)
    np.testing.assert_allclose(cams.c2w, np.array(EXPECTED["c2w"], float), rtol=0, atol=atol)


# ---------------------------------------------------------------------------- golden files


def test_colmap_text_golden():
    cams = read_colmap_text(GOLDEN / "colmap_text")
    assert_matches_expected(cams, "colmap", atol=1e-9)
    assert cams.distortion is None


def test_nerfstudio_golden():
    assert_matches_expected(read_nerfstudio(GOLDEN / "transforms.json"), "nerfstudio", atol=1e-9)


def test_blender_camera_angle_golden():
    cams = read_nerfstudio(GOLDEN / "transforms_blender.json", image_size=HW)
    assert_matches_expected(cams, "blender", atol=1e-9)


def test_llff_golden():
    cams = read_llff(GOLDEN / "poses_bounds.npy")
    assert_matches_expected(cams, "llff", atol=1e-9)
    np.testing.assert_array_equal(cams.bounds, np.array(EXPECTED["bounds"]))


def test_llff_golden_agrees_with_nerf_loader_convention():
    """Independent of our reader: NeRF's LLFF->OpenGL column shuffle, then OpenGL->OpenCV."""
    p = np.load(GOLDEN / "poses_bounds.npy")[:, :15].reshape(-1, 3, 5)
    gl = np.concatenate([p[:, :, 1:2], -p[:, :, 0:1], p[:, :, 2:4]], axis=2)
    cv_rot = gl[:, :, :3] @ np.diag([1.0, -1.0, -1.0])
    expected = np.array(EXPECTED["c2w"], float)
    np.testing.assert_array_equal(cv_rot, expected[:, :3, :3])
    np.testing.assert_array_equal(gl[:, :, 3], expected[:, :3, 3])


def test_realestate10k_golden():
    cams = read_realestate10k(GOLDEN / "re10k.txt", image_size=HW)
    assert_matches_expected(cams, "realestate10k", atol=1e-6)
    np.testing.assert_array_equal(cams.timestamps, EXPECTED["timestamps"])
    assert cams.meta["url"] == "https://www.youtube.com/watch?v=golden00000"


def test_worldfm_golden():
    cams = read_worldfm(GOLDEN / "meta.json")
    assert_matches_expected(cams, "worldfm", atol=1e-9)
    np.testing.assert_array_equal(cams.timestamps, EXPECTED["timestamps"])
    assert cams.bounds is None


def test_golden_rig_geometry_is_what_the_comment_says():
    """cam 1 looks along +x, cam 2 along -y (OpenCV z column), centres as documented."""
    c2w = np.array(EXPECTED["c2w"], float)
    np.testing.assert_array_equal(c2w[:, :3, 2], [[0, 0, 1], [1, 0, 0], [0, -1, 0]])
    np.testing.assert_array_equal(c2w[:, :3, 3], [[0, 0, 0], [1, 0, 0], [0, 2, -1]])


# ---------------------------------------------------------------------------- round trips


def random_cameras(n: int = 5, seed: int = 0, **kw) -> CameraSet:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    R = np.stack(
        [
            np.stack([1 - 2 * (y**2 + z**2), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x**2 + z**2), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x**2 + y**2)], -1),
        ],
        axis=1,
    )
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = R
    c2w[:, :3, 3] = rng.normal(scale=3.0, size=(n, 3))
    H, W = 180, 320
    K = np.tile(np.eye(3), (n, 1, 1))
    K[:, 0, 0] = rng.uniform(100, 400, n)
    K[:, 1, 1] = rng.uniform(100, 400, n)
    K[:, 0, 2] = rng.uniform(0.4, 0.6, n) * W
    K[:, 1, 2] = rng.uniform(0.4, 0.6, n) * H
    args = dict(names=[f"img_{i:03d}.png" for i in range(n)], K=K, c2w=c2w, height=H, width=W)
    args.update(kw)
    return CameraSet(**args).validate()


def assert_same(a: CameraSet, b: CameraSet, atol: float = 1e-9, names: bool = True) -> None:
    if names:
        assert a.names == b.names
    assert (a.height, a.width) == (b.height, b.width)
    np.testing.assert_allclose(a.K, b.K, rtol=0, atol=atol)
    np.testing.assert_allclose(a.c2w, b.c2w, rtol=0, atol=atol)


def test_colmap_text_roundtrip(tmp_path):
    cams = random_cameras()
    write_colmap_text(cams, tmp_path)
    assert_same(cams, read_colmap_text(tmp_path))


def test_colmap_text_roundtrip_with_distortion(tmp_path):
    cams = random_cameras(n=2)
    cams.distortion = [
        {"model": "OPENCV", "k1": 0.1, "k2": -0.02, "p1": 1e-3, "p2": -2e-3},
        {"model": "SIMPLE_RADIAL", "k": 0.05},
    ]
    cams.K[1, 1, 1] = cams.K[1, 0, 0]  # SIMPLE_RADIAL has one focal
    write_colmap_text(cams, tmp_path)
    back = read_colmap_text(tmp_path)
    assert_same(cams, back)
    assert back.distortion == cams.distortion


def test_colmap_binary_roundtrip_through_pycolmap(tmp_path):
    cams = random_cameras()
    write_colmap_binary(cams, tmp_path)
    assert (tmp_path / "cameras.bin").is_file() and (tmp_path / "images.bin").is_file()
    assert_same(cams, read_colmap_binary(tmp_path))
    assert_same(cams, read_colmap(tmp_path))  # auto: binary
    # COLMAP 3.x models have no rigs.bin / frames.bin
    (tmp_path / "rigs.bin").unlink()
    (tmp_path / "frames.bin").unlink()
    assert_same(cams, read_colmap_binary(tmp_path))
    # pycolmap is loaded now; PIL (imported first) must still write PNGs
    PIL.Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")


def test_colmap_text_is_readable_by_pycolmap_and_back(tmp_path):
    """Our text writer <-> pycolmap's text/binary reader and writer agree on the convention."""
    import pycolmap

    shutil.copytree(GOLDEN / "colmap_text", tmp_path / "txt")
    rec = pycolmap.Reconstruction(str(tmp_path / "txt"))
    (tmp_path / "bin").mkdir()
    rec.write_binary(str(tmp_path / "bin"))
    assert_matches_expected(read_colmap_binary(tmp_path / "bin"), "colmap", atol=1e-9)
    cams = random_cameras()
    write_colmap_text(cams, tmp_path / "mine")
    (tmp_path / "theirs").mkdir()
    pycolmap.Reconstruction(str(tmp_path / "mine")).write_text(str(tmp_path / "theirs"))
    assert_same(cams, read_colmap_text(tmp_path / "theirs"))


def test_nerfstudio_roundtrip(tmp_path):
    cams = random_cameras()
    write_nerfstudio(cams, tmp_path)
    assert_same(cams, read_nerfstudio(tmp_path / "transforms.json"))
    shared = random_cameras(K=np.tile(random_cameras().K[:1], (5, 1, 1)))
    write_nerfstudio(shared, tmp_path / "shared.json")
    data = json.loads((tmp_path / "shared.json").read_text())
    assert "fl_x" in data and "fl_x" not in data["frames"][0]
    assert_same(shared, read_nerfstudio(tmp_path / "shared.json"))


def test_llff_roundtrip(tmp_path):
    src = random_cameras(bounds=np.tile([[0.5, 9.0]], (5, 1)))
    K = src.K.copy()
    K[:, 1, 1] = K[:, 0, 0]
    K[:, 0, 2], K[:, 1, 2] = src.width / 2, src.height / 2
    cams = CameraSet(src.names, K, src.c2w, src.height, src.width, bounds=src.bounds)
    write_llff(cams, tmp_path / "poses_bounds.npy")
    back = read_llff(tmp_path / "poses_bounds.npy", names=cams.names)
    assert_same(cams, back)
    np.testing.assert_array_equal(back.bounds, cams.bounds)
    off_centre = K.copy()
    off_centre[:, 0, 2] += 3.0
    with pytest.raises(ValueError, match="principal point"):
        write_llff(CameraSet(src.names, off_centre, src.c2w, 180, 320, bounds=src.bounds), tmp_path)
    with pytest.raises(ValueError, match="one focal length"):
        write_llff(CameraSet(src.names, src.K, src.c2w, 180, 320, bounds=src.bounds), tmp_path)
    with pytest.raises(ValueError, match="needs near/far bounds"):
        write_llff(CameraSet(src.names, K, src.c2w, 180, 320), tmp_path)


def test_llff_names_from_images_dir(tmp_path):
    shutil.copy(GOLDEN / "poses_bounds.npy", tmp_path)
    (tmp_path / "images").mkdir()
    for n in ("c.jpg", "a.jpg", "b.jpg"):
        (tmp_path / "images" / n).write_bytes(b"")
    assert read_llff(tmp_path).names == ["a.jpg", "b.jpg", "c.jpg"]


def test_realestate10k_roundtrip(tmp_path):
    cams = random_cameras(names=["0", "1000", "2000", "3000", "4000"])
    write_realestate10k(cams, tmp_path / "cams.txt", url="https://example.com/v")
    back = read_realestate10k(tmp_path / "cams.txt", image_size=(cams.height, cams.width))
    assert_same(cams, back)
    np.testing.assert_array_equal(back.timestamps, [0, 1000, 2000, 3000, 4000])
    assert back.meta["url"] == "https://example.com/v"


def test_worldfm_roundtrip(tmp_path):
    cams = random_cameras(timestamps=np.arange(5) * 100, bounds=np.tile([[0.1, 5.0]], (5, 1)))
    write_worldfm(cams, tmp_path)
    back = read_worldfm(tmp_path / "meta.json")
    assert_same(cams, back)
    np.testing.assert_array_equal(back.timestamps, cams.timestamps)
    np.testing.assert_array_equal(back.bounds, cams.bounds)


@pytest.mark.parametrize("fmt", ["colmap", "nerfstudio", "worldfm"])
def test_write_cameras_then_read_cameras(tmp_path, fmt):
    cams = random_cameras(seed=3)
    write_cameras(cams, tmp_path / fmt, fmt)
    back = read_cameras(tmp_path / fmt)
    assert_same(cams, back)


def test_formats_agree_on_golden_rig():
    """The same rig read from every format gives the same cameras (names aside)."""
    ref = read_worldfm(GOLDEN / "meta.json")
    for cams in (
        read_colmap(GOLDEN / "colmap_text"),
        read_nerfstudio(GOLDEN / "transforms.json"),
        read_llff(GOLDEN / "poses_bounds.npy"),
        read_realestate10k(GOLDEN / "re10k.txt", HW),
    ):
        assert_same(ref, cams, atol=1e-6, names=False)


# ---------------------------------------------------------------------------- validation


def test_validate_messages():
    good = random_cameras(n=2)
    bad_rot = good.c2w.copy()
    bad_rot[1, :3, :3] *= 1.5
    with pytest.raises(ValueError, match=r"src\.json: rotation of frame 1 .*not orthonormal"):
        CameraSet(good.names, good.K, bad_rot, 180, 320).validate("src.json")
    bad_K = good.K.copy()
    bad_K[0, 0, 0] = -1
    with pytest.raises(ValueError, match="non-positive focal"):
        CameraSet(good.names, bad_K, good.c2w, 180, 320).validate()
    with pytest.raises(ValueError, match=r"K has shape \(1, 3, 3\)"):
        CameraSet(good.names, good.K[:1], good.c2w, 180, 320).validate()
    nan = good.c2w.copy()
    nan[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        CameraSet(good.names, good.K, nan, 180, 320).validate()
    with pytest.raises(ValueError, match="height must be a positive int"):
        CameraSet(good.names, good.K, good.c2w, 0, 320).validate()
    refl = good.c2w.copy()
    refl[0, :3, 0] *= -1
    with pytest.raises(ValueError, match="reflection"):
        CameraSet(good.names, good.K, refl, 180, 320).validate()


# ---------------------------------------------------------------------------- bad inputs


def _copy_golden(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    if (GOLDEN / name).is_dir():
        shutil.copytree(GOLDEN / name, dst)
    else:
        shutil.copy(GOLDEN / name, dst)
    return dst


def test_missing_files_name_the_file(tmp_path):
    for reader in (read_colmap_text, read_colmap_binary, read_nerfstudio, read_llff, read_worldfm):
        with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
            reader(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        read_realestate10k(tmp_path / "nope.txt", HW)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_cameras(tmp_path / "nothing_here")


def test_colmap_bad_column_count(tmp_path):
    d = _copy_golden(tmp_path, "colmap_text")
    text = (d / "images.txt").read_text().replace("0 -1 1 frame_001.png", "0 -1 frame_001.png")
    (d / "images.txt").write_text(text)
    with pytest.raises(ValueError, match=r"images\.txt:\d+: expected 10 columns"):
        read_colmap_text(d)


def test_colmap_bad_camera_params_and_model(tmp_path):
    d = _copy_golden(tmp_path, "colmap_text")
    (d / "cameras.txt").write_text("1 PINHOLE 128 96 100 100 64\n2 SIMPLE_PINHOLE 128 96 1 2 3\n")
    with pytest.raises(ValueError, match=r"cameras\.txt:1: camera model PINHOLE takes 4 params"):
        read_colmap_text(d)
    (d / "cameras.txt").write_text("1 FISHEYE_X 128 96 1 2 3\n")
    with pytest.raises(ValueError, match=r"cameras\.txt:1: unsupported camera model"):
        read_colmap_text(d)
    (d / "cameras.txt").write_text("1 PINHOLE 128 abc 100 100 64 48\n")
    with pytest.raises(ValueError, match=r"cameras\.txt:1: HEIGHT must be"):
        read_colmap_text(d)


def test_colmap_bad_quaternion_and_unknown_camera(tmp_path):
    d = _copy_golden(tmp_path, "colmap_text")
    good = (d / "images.txt").read_text()
    (d / "images.txt").write_text(good.replace("1 1 0 0 0 0 0 0 1", "1 2 0 0 0 0 0 0 1"))
    with pytest.raises(ValueError, match=r"images\.txt:\d+: quaternion norm"):
        read_colmap_text(d)
    (d / "images.txt").write_text(good.replace("1 1 0 0 0 0 0 0 1", "1 1 0 0 0 0 0 0 7"))
    with pytest.raises(ValueError, match=r"CAMERA_ID 7 is not in cameras\.txt"):
        read_colmap_text(d)


def test_colmap_binary_garbage(tmp_path):
    (tmp_path / "cameras.bin").write_bytes(b"\x01\x02garbage")
    (tmp_path / "images.bin").write_bytes(b"\x00")
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        read_colmap_binary(tmp_path)


def test_json_errors_name_the_file(tmp_path):
    p = tmp_path / "transforms.json"
    p.write_text('{"frames": [')
    with pytest.raises(ValueError, match=r"transforms\.json: malformed JSON"):
        read_nerfstudio(p)
    p.write_text(json.dumps({"fl_x": 1, "w": 4, "h": 4, "frames": [{"file_path": "a"}]}))
    with pytest.raises(ValueError, match=r"transforms\.json frame 0: missing 'transform_matrix'"):
        read_nerfstudio(p)
    data = json.loads((GOLDEN / "transforms.json").read_text())
    data["frames"][1]["transform_matrix"][0][0] = 3.0  # scaled rotation
    p.write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=r"transforms\.json: rotation of frame 1 .*not orthonormal"
    ):
        read_nerfstudio(p)
    with pytest.raises(ValueError, match="pass image_size"):
        read_nerfstudio(GOLDEN / "transforms_blender.json")
    m = tmp_path / "meta.json"
    data = json.loads((GOLDEN / "meta.json").read_text())
    data["frames"][2]["K"] = [[1, 0, 0], [0, 1, 0]]
    m.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"meta\.json frame 2: K has shape \(2, 3\)"):
        read_worldfm(m)


def test_llff_bad_shape(tmp_path):
    p = tmp_path / "poses_bounds.npy"
    np.save(p, np.zeros((3, 15)))
    with pytest.raises(ValueError, match=r"poses_bounds\.npy: expected an \[N, 17\] array"):
        read_llff(p)
    p.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"poses_bounds\.npy: not a readable"):
        read_llff(p)


def test_realestate10k_bad_lines(tmp_path):
    p = tmp_path / "cam.txt"
    lines = (GOLDEN / "re10k.txt").read_text().splitlines()
    p.write_text("\n".join([*lines[:2], " ".join(lines[2].split()[:18])]) + "\n")
    with pytest.raises(ValueError, match=r"cam\.txt:3: expected 19 columns"):
        read_realestate10k(p, HW)
    p.write_text("\n".join([*lines[:2], lines[2].replace("33367", "abc")]) + "\n")
    with pytest.raises(ValueError, match=r"cam\.txt:3: timestamp must be"):
        read_realestate10k(p, HW)
    p.write_text(lines[0] + "\n")
    with pytest.raises(ValueError, match=r"cam\.txt: no camera lines"):
        read_realestate10k(p, HW)


# ---------------------------------------------------------------------------- auto-detection


def test_detect_format(tmp_path):
    assert detect_format(GOLDEN / "colmap_text") == "colmap"
    assert detect_format(GOLDEN / "colmap_text" / "images.txt") == "colmap"
    assert detect_format(GOLDEN / "transforms.json") == "nerfstudio"
    assert detect_format(GOLDEN / "transforms_blender.json") == "nerfstudio"
    assert detect_format(GOLDEN / "poses_bounds.npy") == "llff"
    assert detect_format(GOLDEN / "re10k.txt") == "realestate10k"
    assert detect_format(GOLDEN / "meta.json") == "worldfm"
    renamed = tmp_path / "cams.json"
    shutil.copy(GOLDEN / "meta.json", renamed)
    assert detect_format(renamed) == "worldfm"  # by content, not name
    for name, fmt in (("transforms.json", "nerfstudio"), ("poses_bounds.npy", "llff")):
        d = tmp_path / fmt
        d.mkdir()
        shutil.copy(GOLDEN / name, d)
        assert detect_format(d) == fmt
    with pytest.raises(ValueError, match="ambiguous"):
        detect_format(GOLDEN)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no camera file found"):
        detect_format(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello world\n")
    with pytest.raises(ValueError, match=r"notes\.txt: cannot tell the camera format"):
        detect_format(tmp_path / "notes.txt")


def test_read_cameras_dispatch():
    assert_matches_expected(read_cameras(GOLDEN / "colmap_text"), "colmap", 1e-9)
    assert_matches_expected(read_cameras(GOLDEN / "poses_bounds.npy"), "llff", 1e-9)
    assert_matches_expected(
        read_cameras(GOLDEN / "re10k.txt", image_size=HW), "realestate10k", 1e-6
    )
    assert_matches_expected(read_cameras(GOLDEN / "meta.json"), "worldfm", 1e-9)
    blender = read_cameras(GOLDEN / "transforms_blender.json", format="blender", image_size=HW)
    assert_matches_expected(blender, "blender", 1e-9)
    with pytest.raises(ValueError, match="need image_size"):
        read_cameras(GOLDEN / "re10k.txt")
    with pytest.raises(ValueError, match="unknown camera format"):
        read_cameras(GOLDEN / "meta.json", format="ply")
