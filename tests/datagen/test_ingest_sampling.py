"""Clip sampling: WorldFM 16 = 4 references + 12 targets; Wonderland seen + unseen views."""

from __future__ import annotations

import numpy as np
import pytest

from datagen.ingest.sampling import nearest_reference, sample_wonderland, sample_worldfm


@pytest.mark.parametrize("num_available", [16, 17, 40, 500])
def test_worldfm_invariants(num_available):
    rng = np.random.default_rng(num_available)
    for _ in range(50):
        s = sample_worldfm(num_available, rng)
        frames, refs, targets = s
        assert frames.shape == (16,) and refs.shape == (4,) and targets.shape == (12,)
        assert (np.diff(frames) > 0).all() and frames[0] >= 0 and frames[-1] < num_available
        assert len(set(np.diff(frames))) == 1 and np.diff(frames)[0] <= 4  # one stride
        assert set(refs) | set(targets) == set(range(16)) and not set(refs) & set(targets)
        np.testing.assert_array_equal(refs, [0, 5, 10, 15])
        assert (np.diff(targets) > 0).all()


def test_worldfm_target_reference_is_temporally_closest():
    s = sample_worldfm(200, np.random.default_rng(3))
    for t, r in zip(s.targets, s.target_refs):
        gaps = np.abs(s.frames[s.refs] - s.frames[t])
        assert abs(s.frames[r] - s.frames[t]) == gaps.min()
    np.testing.assert_array_equal(nearest_reference([0, 3, 9, 10], [0, 3], [1, 2]), [0, 3])


def test_worldfm_needs_enough_frames_and_varies():
    with pytest.raises(ValueError, match="at least 16"):
        sample_worldfm(15, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    starts = {int(sample_worldfm(300, rng).frames[0]) for _ in range(20)}
    assert len(starts) > 5


@pytest.mark.parametrize(("num_available", "stride"), [(49, None), (60, 1), (300, None), (300, 4)])
def test_wonderland_invariants(num_available, stride):
    rng = np.random.default_rng(num_available)
    for _ in range(30):
        s = sample_wonderland(num_available, rng, stride=stride)
        frames, seen, unseen = s
        assert (np.diff(frames) > 0).all() and frames[-1] < num_available
        assert len(seen) == 49 and not set(seen) & set(unseen)
        assert set(seen) | set(unseen) == set(range(len(frames)))
        seen_idx = frames[seen]
        steps = set(np.diff(seen_idx))
        assert len(steps) == 1 and (stride is None or steps == {stride})
        lo, hi = seen_idx[0], seen_idx[-1]
        unseen_idx = frames[unseen]
        free_inside = (hi - lo + 1) - 49
        free_outside = num_available - (hi - lo + 1)
        assert len(unseen) == min(24, free_inside + free_outside)
        if free_outside:  # frames outside the scene range are among the unseen views
            assert ((unseen_idx < lo) | (unseen_idx > hi)).any()
        if free_inside and free_outside >= 12:
            assert ((unseen_idx > lo) & (unseen_idx < hi)).sum() == min(12, free_inside)


def test_wonderland_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 49"):
        sample_wonderland(40, rng)
    with pytest.raises(ValueError, match="spans"):
        sample_wonderland(100, rng, stride=3)
