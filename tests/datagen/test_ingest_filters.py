"""Per-frame quality filters: black / exposure, blur relative to the video, near-duplicates."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from datagen.ingest.errors import IngestError
from datagen.ingest.frame_filters import (
    FilterThresholds,
    filter_frames,
    filter_source,
    laplacian_variance,
    require_frames,
)
from datagen.ingest.sources import open_source, open_sources


def _textured(n: int, h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """n frames panning over one noise texture (4 px per frame): sharp, distinct, well exposed."""
    rng = np.random.default_rng(seed)
    big = rng.integers(40, 216, (h, w + 4 * n, 3)).astype(np.uint8)
    big = np.repeat(np.repeat(big[::2, ::2], 2, 0), 2, 1)[:h]  # 2x2 blobs
    return np.stack([big[:, 4 * i : 4 * i + w] for i in range(n)])


def _box_blur(rgb: np.ndarray, r: int = 3) -> np.ndarray:
    x = rgb.astype(np.float64)
    for axis in (0, 1):
        x = sum(np.roll(x, s, axis=axis) for s in range(-r, r + 1)) / (2 * r + 1)
    return x.round().astype(np.uint8)


def test_clean_frames_are_all_kept():
    keep, report = filter_frames(_textured(6))
    np.testing.assert_array_equal(keep, np.arange(6))
    assert report["reasons"] == [[]] * 6 and report["num_kept"] == 6
    assert report["sharpness"].shape == (6,) and report["median_sharpness"] > 0


def test_black_frame_is_flagged_black():
    frames = _textured(5)
    frames[2] = np.random.default_rng(1).integers(0, 6, frames[2].shape)  # sensor noise only
    keep, report = filter_frames(frames)
    assert report["reasons"][2] == ["black"]
    np.testing.assert_array_equal(keep, [0, 1, 3, 4])
    assert report["counts"]["black"] == 1


def test_exposure_problems():
    frames = _textured(5)
    frames[1] = 255  # blown out
    frames[3] = frames[3] // 10  # very dark but not black
    _, report = filter_frames(frames)
    assert report["reasons"][1] == ["overexposed"]
    assert report["reasons"][3] == ["underexposed"]


def test_blurred_frame_is_flagged_blur():
    frames = _textured(7)
    frames[4] = _box_blur(frames[4])
    keep, report = filter_frames(frames)
    assert report["reasons"][4] == ["blur"]
    assert 4 not in keep and len(keep) == 6
    assert report["sharpness"][4] < 0.3 * report["median_sharpness"]


def test_duplicates_collapse_to_the_first_frame():
    frames = _textured(5)
    frames = np.concatenate([frames[:2], frames[1:2], frames[1:2], frames[2:]])  # 1, 1', 1''
    keep, report = filter_frames(frames)
    assert report["reasons"][2] == ["duplicate"] and report["reasons"][3] == ["duplicate"]
    np.testing.assert_array_equal(keep, [0, 1, 4, 5, 6])
    assert report["dup_diff"][2] == 0.0 and np.isnan(report["dup_diff"][0])
    # compared with the last kept frame, not the previous one: the black frame in between
    # does not hide the duplicate after it
    frames2 = _textured(3)
    frames2 = np.stack([frames2[0], frames2[1], np.zeros_like(frames2[0]), frames2[1]])
    _, r2 = filter_frames(frames2)
    assert r2["reasons"] == [[], [], ["black"], ["duplicate"]]


def test_thresholds_and_laplacian():
    flat = np.full((20, 20), 100.0)
    assert laplacian_variance(flat) == 0.0
    frames = _textured(4)
    frames[1] = _box_blur(frames[1], 1)
    _, strict = filter_frames(frames, FilterThresholds(blur_rel=0.9))
    _, loose = filter_frames(frames, FilterThresholds(blur_rel=0.01))
    assert "blur" in strict["reasons"][1] and loose["reasons"][1] == []


def test_require_frames_names_the_item():
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    _, report = filter_frames(frames)
    with pytest.raises(IngestError, match=r"night\.mp4: all 4 frames are black"):
        require_frames("night.mp4", report)
    frames = _textured(3)
    frames[1:] = frames[0]
    _, report = filter_frames(frames)
    with pytest.raises(IngestError, match=r"still\.mp4: only 1 of 3 frames .*duplicate: 2"):
        require_frames("still.mp4", report)
    _, ok = filter_frames(_textured(3))
    require_frames("fine.mp4", ok)


def test_filter_source_on_videos_with_black_frames(tmp_path):
    frames = _textured(8, 96, 128)
    frames[3] = 0
    iio.imwrite(tmp_path / "walk.mp4", frames, plugin="FFMPEG", fps=8, codec="libx264")
    iio.imwrite(tmp_path / "dark.mp4", frames * 0, plugin="FFMPEG", fps=8, codec="libx264")
    sources, failed = open_sources([tmp_path / "walk.mp4", tmp_path / "dark.mp4"])
    assert not failed
    kept, report = filter_source(sources[0])
    assert report["reasons"][3] == ["black"] and len(kept) == 7
    assert kept.meta["source_indices"] == [0, 1, 2, 4, 5, 6, 7]
    np.testing.assert_allclose(kept.timestamps, np.array([0, 1, 2, 4, 5, 6, 7]) / 8)
    with pytest.raises(IngestError, match=r"dark\.mp4: all 8 frames are black"):
        filter_source(sources[1])
    folder = tmp_path / "lazy"
    folder.mkdir()
    for i, f in enumerate(frames):
        iio.imwrite(folder / f"{i}.png", f)
    lazy = open_source(folder)
    kept, _ = filter_source(lazy)
    assert not lazy.is_loaded and kept.frame_names == [f"{i}.png" for i in (0, 1, 2, 4, 5, 6, 7)]
