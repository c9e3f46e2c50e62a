"""Clip validation names the clip and the problem."""

import dataclasses

import numpy as np
import pytest

from datagen.clips import ClipValidationError
from tests.fixtures.clips import make_clip


def test_valid_clip_passes():
    clip = make_clip()
    assert clip.validate() is clip
    assert clip.num_frames == 16 and clip.size == (24, 32)
    assert clip.valid_depth().sum() < clip.depth.size


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: {"key": "bad.key"}, "no dots"),
        (lambda c: {"rgb": c.rgb.astype(np.float32)}, "uint8"),
        (lambda c: {"K": c.K[:-1]}, "K has shape"),
        (lambda c: {"depth": c.depth[:, :-1]}, "depth has shape"),
        (lambda c: {"depth": np.where(c.depth > 3, np.nan, c.depth).astype(np.float32)}, "NaN"),
        (lambda c: {"depth": -c.depth}, ">= 0"),
        (lambda c: {"depth": np.zeros_like(c.depth)}, "no valid"),
        (lambda c: {"c2w": c.c2w * np.array([1.5, 1, 1, 1])[:, None]}, "orthonormal"),
        (lambda c: {"ref_idx": [0, 0, 5]}, "sorted and unique"),
        (lambda c: {"target_idx": [*c.target_idx, c.ref_idx[0]]}, "sorted and unique"),
        (lambda c: {"target_idx": sorted([*c.target_idx, c.ref_idx[1]])}, "overlap"),
        (lambda c: {"pcr_rgb": c.pcr_rgb[:-1]}, "pcr_rgb has shape"),
        (lambda c: {"vae_id": None}, "vae_id"),
        (lambda c: {"frame_ids": [1, 2]}, "frame_ids"),
        (lambda c: {"depth_conf": c.depth_conf * 2}, "[0, 1]"),
    ],
)
def test_invalid_clips_are_named(change, message):
    clip = make_clip(key="clip-bad")
    broken = dataclasses.replace(clip, **change(clip))
    with pytest.raises(ClipValidationError) as error:
        broken.validate()
    assert message in str(error.value)
    assert "clip-bad" in str(error.value) or "bad.key" in str(error.value)


def test_reflection_rejected():
    clip = make_clip()
    c2w = clip.c2w.copy()
    c2w[:, :3, 0] *= -1
    with pytest.raises(ClipValidationError, match="reflection"):
        dataclasses.replace(clip, c2w=c2w).validate()
