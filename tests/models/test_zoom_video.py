"""Continuous zoom video from a zoom stack (log-scale interpolation between levels)."""

import pytest
import torch

from models.zoom import crop_centre, log_zoom_path, render_images, zoom_frame, zoom_video
from models.zoom.toy import toy_targets

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("p", [2, 4])
def test_zoom_video_hits_every_level_and_is_continuous(p):
    N, fpl = 3, 8
    layers = toy_targets(N, 3, 32, p, generator=torch.Generator().manual_seed(0))
    rendered = render_images(layers, p)
    zooms = log_zoom_path(N, fpl)
    assert zooms.shape == ((N - 1) * fpl + 1,)
    torch.testing.assert_close(zooms.diff(), torch.full((len(zooms) - 1,), 1 / fpl))  # log-uniform
    frames = zoom_video(layers, p, zooms)
    assert frames.shape == (len(zooms), 3, 32, 32)
    for i in range(N):
        assert torch.equal(frames[i * fpl], rendered[i])  # integer zoom = the level's render
    # approaching the next level from below converges to it
    for i in range(N - 1):
        near = zoom_frame(rendered, i + 1 - 1e-4, p)
        assert (near - rendered[i + 1]).abs().mean() < 0.02
    # no popping: every frame-to-frame change is of the same size as a typical one
    steps = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    assert steps.max() < 2.5 * steps.median()


def test_half_way_frame_shows_the_centre_half_zoom():
    """At z = 0.5 with p = 4 the frame shows the centre 1/2 of level 0 magnified ×2, with level
    1 (the centre 1/4 of level 0) shown at its own resolution in the frame's centre half."""
    p = 4
    layers = toy_targets(2, 1, 32, p, generator=torch.Generator().manual_seed(1))
    rendered = render_images(layers, p)
    frame = zoom_frame(rendered, 0.5, p)
    ring = torch.ones(32, 32, dtype=torch.bool)
    ring[7:25, 7:25] = False  # outside level 1's footprint (8:24) with a pixel of margin
    ring[[0, -1], :] = ring[:, [0, -1]] = False  # interpolate clamps at the crop's edge
    up = torch.nn.functional.interpolate(
        crop_centre(rendered[:1], 2, 1), scale_factor=2, mode="bilinear"
    )[0]
    torch.testing.assert_close(frame[:, ring], up[:, ring], rtol=0, atol=1e-5)
    inner = frame[:, 10:22, 10:22]  # level 1, reduced ×2: frame px 8 + a <-> pooled px a
    down = torch.nn.functional.avg_pool2d(rendered[1:2], 2)[0][:, 2:14, 2:14]
    shifted = torch.nn.functional.avg_pool2d(rendered[1:2], 2)[0][:, 3:15, 2:14]

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return ((a * b).sum() / (a.norm() * b.norm())).item()

    assert corr(inner, down) > 0.9 and corr(inner, down) > corr(inner, shifted) + 0.1
