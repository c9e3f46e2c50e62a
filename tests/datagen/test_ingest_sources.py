"""Opening videos, image folders and dataset layouts as FrameSources; bad items fail clearly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from datagen.camera_formats import CameraSet, write_cameras
from datagen.ingest.sources import FrameSource, IngestError, open_source, open_sources

H, W = 48, 64


def _frames(n: int, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """Smooth frames with a moving bright square (compress well, differ frame to frame)."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = (x * 255 // w).astype(np.uint8)
        out[i, ..., 1] = (y * 255 // h).astype(np.uint8)
        out[i, ..., 2] = 60 + 10 * seed
        x0 = 4 + 3 * i
        out[i, 10:26, x0 : x0 + 12] = 240
    return out


def _write_video(path: Path, frames: np.ndarray, fps: float = 10.0, faststart: bool = False):
    params = ["-movflags", "+faststart"] if faststart else None
    iio.imwrite(path, frames, plugin="FFMPEG", fps=fps, codec="libx264", ffmpeg_params=params)
    return path


def _write_pngs(folder: Path, frames: np.ndarray, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for rgb, name in zip(frames, names):
        Image.fromarray(rgb).save(folder / name)
    return [folder / n for n in names]


def _cameras(names: list[str], h: int = H, w: int = W, seed: int = 0) -> CameraSet:
    """A smooth rig of len(names) cameras with pinhole K (principal point at the centre)."""
    n = len(names)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    for i, a in enumerate(np.linspace(-0.3, 0.3, n) + 0.01 * seed):
        c, s = np.cos(a), np.sin(a)
        c2w[i, :3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
        c2w[i, :3, 3] = [0.5 * a, 0.05 * i, -0.2 * i]
    K = np.array([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]])
    return CameraSet(
        names=names, K=np.repeat(K[None], n, 0), c2w=c2w, height=h, width=w, bounds=None
    )


# ------------------------------------------------------------------------------------ video


def test_video_frames_size_and_timestamps(tmp_path):
    frames = _frames(12)
    src = open_source(_write_video(tmp_path / "clip.mp4", frames))
    assert isinstance(src, FrameSource)
    assert (src.name, src.layout, len(src)) == ("clip", "video", 12)
    assert src.frames.shape == (12, H, W, 3) and src.frames.dtype == np.uint8
    assert (src.height, src.width) == (H, W)
    np.testing.assert_allclose(src.timestamps, np.arange(12) / 10.0)
    assert src.meta["fps"] == 10.0 and src.meta["codec"] == "h264"
    assert src.cameras is None
    err = np.abs(src.frames.astype(int) - frames.astype(int)).mean(axis=(1, 2, 3))
    assert err.max() < 6.0  # lossy codec, same content


def test_video_fps_max_frames_and_resize(tmp_path):
    path = _write_video(tmp_path / "clip.mov", _frames(20))
    half = open_source(path, fps=5.0)
    assert half.meta["source_indices"] == list(range(0, 20, 2))
    np.testing.assert_allclose(np.diff(half.timestamps), 0.2)
    first = open_source(path, max_frames=3, max_side=32)
    assert len(first) == 3 and first.frames.shape == (3, 24, 32, 3)


def test_truncated_video_names_the_file(tmp_path):
    data = _write_video(tmp_path / "full.mp4", _frames(20)).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # index ('moov') at the end is lost
    with pytest.raises(IngestError, match=r"cut\.mp4: truncated"):
        open_source(cut)


def test_video_cut_mid_stream_is_reported(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (30, H, W, 3), dtype=np.uint8)
    data = _write_video(tmp_path / "full.mp4", noise, faststart=True).read_bytes()
    cut = tmp_path / "midcut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # index intact, half the frames gone
    with pytest.raises(IngestError, match=r"midcut\.mp4: truncated or corrupt video: decoded"):
        open_source(cut)


def test_garbage_webm_names_file_and_container(tmp_path):
    bad = tmp_path / "noise.webm"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(IngestError, match=r"noise\.webm: corrupt file or unsupported container"):
        open_source(bad)


def test_unsupported_codec(tmp_path):
    data = bytearray(_write_video(tmp_path / "ok.mp4", _frames(10), faststart=True).read_bytes())
    stsd = data.find(b"stsd")
    entry = data.find(b"avc1", stsd)  # the sample entry's codec fourcc
    data[entry : entry + 4] = b"zzzz"
    bad = tmp_path / "odd_codec.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(IngestError, match=r"odd_codec\.mp4: unsupported codec .*zzzz"):
        open_source(bad)


def test_zero_and_one_frame_videos(tmp_path):
    one = _write_video(tmp_path / "one.mp4", _frames(1))
    with pytest.raises(IngestError, match=r"one\.mp4: only 1 frame; need at least 2"):
        open_source(one)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match=r"empty\.mp4: empty file"):
        open_source(empty)


# ----------------------------------------------------------------------------- image folders


def test_image_folder_natural_order_lazy_and_resize(tmp_path):
    frames = _frames(11)
    names = [f"frame{i}.png" for i in range(11)]  # frame10 must come after frame9
    _write_pngs(tmp_path / "shots", frames, names)
    src = open_source(tmp_path / "shots")
    assert src.layout == "images" and src.frame_names == names
    assert not src.is_loaded
    np.testing.assert_array_equal(src.load([10, 2]), frames[[10, 2]])
    np.testing.assert_array_equal(src.frames, frames)
    small = open_source(tmp_path / "shots", max_side=32, lazy=False)
    assert small.is_loaded and small.frames.shape == (11, 24, 32, 3)
    sub = src.subset([1, 5])
    assert sub.frame_names == ["frame1.png", "frame5.png"]
    assert sub.meta["source_indices"] == [1, 5]
    np.testing.assert_array_equal(sub.frames, frames[[1, 5]])


def test_mixed_image_sizes_name_the_odd_file(tmp_path):
    folder = tmp_path / "mixed"
    _write_pngs(folder, _frames(3), ["a.png", "b.png", "c.png"])
    _write_pngs(folder, _frames(1, 32, 32), ["d.png"])
    with pytest.raises(IngestError, match=r"mixed: mixed image sizes: .*d\.png is 32x32"):
        open_source(folder)


def test_unreadable_image_and_single_image(tmp_path):
    folder = tmp_path / "broken"
    _write_pngs(folder, _frames(2), ["a.png", "b.png"])
    data = (folder / "b.png").read_bytes()
    (folder / "b.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match=r"b\.png: unreadable image"):
        open_source(folder)
    lone = _write_pngs(tmp_path / "lone", _frames(1), ["only.png"])
    with pytest.raises(IngestError, match=r"lone: only 1 image; need at least 2"):
        open_source(lone[0].parent)
    with pytest.raises(IngestError, match=r"no such file"):
        open_source(tmp_path / "missing")
    (tmp_path / "notes.xyz").write_text("hi")
    with pytest.raises(IngestError, match=r"notes\.xyz: unsupported file type"):
        open_source(tmp_path / "notes.xyz")


def test_batch_keeps_going_past_bad_items(tmp_path):
    good_video = _write_video(tmp_path / "good.mp4", _frames(8))
    _write_pngs(tmp_path / "good_dir", _frames(3), ["0.png", "1.png", "2.png"])
    bad_video = tmp_path / "bad.webm"
    bad_video.write_bytes(b"\x1a\x45\xdf\xa3 not really webm" * 50)
    one = _write_video(tmp_path / "one.mp4", _frames(1))
    mixed = tmp_path / "mixed"
    _write_pngs(mixed, _frames(2), ["a.png", "b.png"])
    _write_pngs(mixed, _frames(1, 32, 32), ["c.png"])
    paths = [bad_video, good_video, one, mixed, tmp_path / "good_dir", tmp_path / "nope.mp4"]
    ok, failed = open_sources(paths)
    assert [s.name for s in ok] == ["good", "good_dir"]
    assert [p for p, _ in failed] == [bad_video, one, mixed, tmp_path / "nope.mp4"]
    for path, reason in failed:
        assert reason.startswith(str(path) + ": ")


# ---------------------------------------------------------------------------------- layouts


def _assert_same_cameras(got: CameraSet, want: CameraSet):
    np.testing.assert_allclose(got.c2w, want.c2w, atol=1e-6)
    np.testing.assert_allclose(got.K, want.K, atol=1e-6)
    assert (got.height, got.width) == (want.height, want.width)


def test_nerfstudio_layout_and_downscaled_images(tmp_path):
    names = [f"images/frame_{i:05d}.png" for i in range(1, 6)]
    cams = _cameras(names)
    write_cameras(cams, tmp_path / "scene" / "transforms.json", "nerfstudio")
    frames = _frames(5)
    _write_pngs(tmp_path / "scene" / "images", frames, [Path(n).name for n in names])
    src = open_source(tmp_path / "scene")
    assert src.layout == "nerfstudio" and src.frame_names == names
    assert src.cameras.names == names
    _assert_same_cameras(src.cameras, cams)
    np.testing.assert_array_equal(src.frames, frames)
    assert "timestamps" in src.meta  # positions, the layout has no times
    small = open_source(tmp_path / "scene" / "transforms.json", max_side=32)
    assert (small.height, small.width) == (24, 32)
    np.testing.assert_allclose(small.cameras.K[:, :2], cams.K[:, :2] / 2)
    np.testing.assert_allclose(small.cameras.c2w, cams.c2w)


def test_malformed_transforms_json_names_the_file(tmp_path):
    scene = tmp_path / "scene"
    _write_pngs(scene / "images", _frames(2), ["a.png", "b.png"])
    (scene / "transforms.json").write_text('{"frames": [ {"file_path": "images/a.png",')
    with pytest.raises(
        IngestError, match=r"transforms\.json: malformed camera file: malformed JSON"
    ):
        open_source(scene)
    frame = {"file_path": "images/a.png", "transform_matrix": [[1, 0, 0]]}
    (scene / "transforms.json").write_text(
        json.dumps({"w": W, "h": H, "fl_x": 50, "frames": [frame]})
    )
    with pytest.raises(IngestError, match=r"transforms\.json: malformed camera file: .*shape"):
        open_source(scene)


def test_missing_image_of_a_layout(tmp_path):
    names = ["images/a.png", "images/b.png", "images/c.png"]
    write_cameras(_cameras(names), tmp_path / "transforms.json", "nerfstudio")
    _write_pngs(tmp_path / "images", _frames(2), ["a.png", "b.png"])
    with pytest.raises(IngestError, match=r"c\.png: image listed in transforms\.json not found"):
        open_source(tmp_path)


def test_colmap_text_layout(tmp_path):
    names = [f"{i:03d}.png" for i in range(4)]
    cams = _cameras(names)
    write_cameras(cams, tmp_path / "scene" / "sparse" / "0", "colmap")
    frames = _frames(4)
    _write_pngs(tmp_path / "scene" / "images", frames, names)
    src = open_source(tmp_path / "scene")
    assert src.layout == "colmap" and src.cameras.names == names
    _assert_same_cameras(src.cameras, cams)
    same = open_source(tmp_path / "scene" / "sparse" / "0")
    _assert_same_cameras(same.cameras, cams)
    (tmp_path / "scene" / "sparse" / "0" / "images.txt").write_text("1 1 0 0 0 0 0 0 1\n\n")
    with pytest.raises(IngestError, match=r"malformed camera file: .*images\.txt:1"):
        open_source(tmp_path / "scene")


def test_llff_layout_and_pose_count_mismatch(tmp_path):
    names = [f"IMG_{i:04d}.png" for i in range(5)]
    cams = _cameras(names)
    cams.bounds = np.tile([0.5, 10.0], (5, 1))
    write_cameras(cams, tmp_path / "fern", "llff")
    frames = _frames(5)
    _write_pngs(tmp_path / "fern" / "images", frames, names)
    src = open_source(tmp_path / "fern")
    assert src.layout == "llff" and src.cameras.names == names
    _assert_same_cameras(src.cameras, cams)
    np.testing.assert_allclose(src.cameras.bounds, cams.bounds)
    (tmp_path / "fern" / "images" / names[0]).unlink()
    with pytest.raises(IngestError, match=r"fern: poses_bounds\.npy holds 5 poses but images/"):
        open_source(tmp_path / "fern")


def test_realestate10k_layout(tmp_path):
    stamps = [1_000_000 + 33_366 * i for i in range(5)]
    cams = _cameras([str(s) for s in stamps])
    cams.timestamps = np.array(stamps)
    write_cameras(cams, tmp_path / "re10k" / "abc123.txt", "realestate10k")
    frames = _frames(4)
    _write_pngs(tmp_path / "re10k" / "abc123", frames, [f"{s}.png" for s in stamps[:4]])
    src = open_source(tmp_path / "re10k")
    assert src.layout == "realestate10k" and src.name == "abc123" and len(src) == 4
    assert src.meta["cameras_without_frames"] == 1
    np.testing.assert_allclose(src.timestamps, np.array(stamps[:4]) / 1e6)
    np.testing.assert_allclose(src.cameras.c2w, cams.c2w[:4], atol=1e-6)
    np.testing.assert_allclose(src.cameras.K, cams.K[:4], atol=1e-6)
    np.testing.assert_array_equal(src.frames, frames)
    assert "CC BY 4.0" in src.license
    txt = tmp_path / "re10k" / "abc123.txt"
    lines = txt.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:10])
    txt.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=re.escape(f"{txt}: malformed camera file: line 3:")):
        open_source(txt)
