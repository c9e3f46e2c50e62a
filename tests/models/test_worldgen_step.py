"""Progressive detail synthesis pieces: zoom cameras, coverage-aware opacity modulation, lifting
(back-projection, Gaussians -> surfels, the short fit), the additive zoom step, and the
Wonderland path (video model + LaLRM) with random tiny models."""

import math
from dataclasses import fields

import pytest
import torch

from models.geometry import K_from_fov, project, quaternion_to_matrix
from models.surfels import SurfelSet, add_level, render_surfels
from models.worldgen import (
    AnalyticImageModel,
    DepthPrediction,
    PlaneDepth,
    SynthesisConfig,
    World,
    WorldModels,
    ZoomLevel,
    backproject_surfels,
    fit_surfels,
    fixed_point,
    gaussians_to_surfels,
    initial_world,
    level_weights,
    magnify_K,
    orbit_cameras,
    parent_K,
    rasterize_surfels,
    render_world,
    world_coverage,
    zoom_camera,
    zoom_path,
    zoom_step,
)
from models.zoom.toy import toy_targets

S = 32
P = 2


pytestmark = pytest.mark.usefixtures("one_thread")


def _camera(size=S):
    return K_from_fov(50.0, size, size, dtype=torch.float64), torch.eye(4, dtype=torch.float64)


def _image(size=S, seed=0):
    return (toy_targets(1, 3, size, P, generator=torch.Generator().manual_seed(seed))[0] + 1) / 2


PLANE = PlaneDepth(torch.tensor([0.0, 0.0, 3.0]), torch.tensor([0.2, 0.1, -1.0]))


class AffinePlane:
    """The plane's depth through an unknown affine map (an affine-invariant estimator)."""

    name = "affine plane"

    def __call__(self, image, K, c2w):
        return DepthPrediction(0.5 * PLANE(image, K, c2w).value + 0.3)


def _models(depth=PLANE):
    return WorldModels(AnalyticImageModel(std=0.1), depth)


def _cfg(**kw):
    base = dict(steps=8, fit_steps=2, refine_steps=20, backend="torch", zoom_mode="focal")
    return SynthesisConfig(**{**base, **kw})


def test_zoom_cameras_make_the_next_view_the_sub_rectangle_around_the_centre():
    K, c2w = _camera(64)
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(200, 3, generator=g, dtype=torch.float64) * 0.4 + torch.tensor([0, 0, 3.0])
    uv0, _ = project(pts, K, c2w)
    centre = torch.tensor([40.0, 22.0], dtype=torch.float64)
    x = fixed_point(centre, (64, 64), P)
    Kz, cz = zoom_camera(K, c2w, P, x, torch.zeros(3, dtype=torch.float64), mode="focal")
    uv1, _ = project(pts, Kz, cz)
    offset = centre - 64 / (2 * P)  # the sub-rectangle's corner in the old view
    torch.testing.assert_close(uv1, P * (uv0 - offset))
    # the zoom stack's parent of the new view shows it as its centred footprint
    uvp, _ = project(pts, parent_K(Kz, P, (64, 64)), cz)
    torch.testing.assert_close(uv1, P * (uvp - 16.0))
    # a centre too close to the border is clamped so the sub-rectangle stays inside the image
    torch.testing.assert_close(fixed_point(torch.tensor([1.0, 63.0]), (64, 64), P),
                               fixed_point(torch.tensor([16.0, 48.0]), (64, 64), P))  # fmt: skip
    # dolly: exact for the fronto-parallel plane through the target
    plane = torch.cat([pts[:, :2], torch.full((200, 1), 3.0, dtype=torch.float64)], 1)
    uvq, _ = project(plane, K, c2w)
    target = torch.cat([torch.linalg.solve(K, torch.cat([x, torch.ones(1).double()])) * 3.0])
    Kd, cd = zoom_camera(K, c2w, P, x, target, mode="dolly")
    uvd, _ = project(plane, Kd, cd)
    torch.testing.assert_close(uvd, P * (uvq - offset))
    # log-scale interpolation: t = 0 and 1 are the two levels; focal grows geometrically
    Ks, _cs = zoom_path(K, c2w, P, x, target, torch.tensor([0.0, 0.5, 1.0]), "focal")
    torch.testing.assert_close(Ks[0], K)
    torch.testing.assert_close(Ks[2], Kz)
    assert Ks[1, 0, 0] == pytest.approx(K[0, 0] * math.sqrt(2))
    torch.testing.assert_close(magnify_K(Ks[1], 2**0.5, x), Kz)


def test_orbit_keeps_the_target_at_its_pixel():
    K, c2w = _camera()
    target = torch.tensor([0.3, -0.2, 3.0], dtype=torch.float64)
    cams = orbit_cameras(c2w, target, 9, 10.0)
    torch.testing.assert_close(cams[0], c2w)
    uv, _z = project(target.expand(9, 1, 3), K.expand(9, 3, 3), cams)
    torch.testing.assert_close(uv, uv[:1].expand_as(uv))
    assert not torch.allclose(cams[2], c2w)
    dist = (cams[:, :3, 3] - target).norm(dim=-1)
    torch.testing.assert_close(dist, dist[:1].expand_as(dist))


def _plane_level(index: int, K, c2w, color, lam: float) -> tuple[SurfelSet, ZoomLevel]:
    """Surfels of a plain-coloured view of the plane z = 2, and their level."""
    H = W = S
    depth = torch.full((H, W), 2.0, dtype=torch.float64)
    image = torch.tensor(color).view(3, 1, 1).expand(3, H, W).float()
    s = backproject_surfels(image, depth.float(), K, c2w)
    return s, ZoomLevel(index, "", K, c2w, lam, image, depth.float())


def test_coverage_aware_modulation_sums_to_one_and_leaves_no_ring():
    """Level 1 covers the centre of level 0's view. Between the levels, the tent weights of
    co-located surfels sum to 1; outside level 1 the coarse surfels stay opaque, so a zoomed
    frame is fully covered — plain Prop. 1 modulation leaves a half-transparent ring there."""
    K0, c2w = _camera()
    x = fixed_point(torch.tensor([S / 2, S / 2], dtype=torch.float64), (S, S), P)
    K1, _ = zoom_camera(K0, c2w, P, x, torch.zeros(3, dtype=torch.float64), mode="focal")
    s0, lv0 = _plane_level(0, K0, c2w, (1.0, 0.0, 0.0), 0.0)
    s1, lv1 = _plane_level(1, K1, c2w, (0.0, 0.0, 1.0), 1.0)
    surfels = add_level(s0, s1, 1.0)  # level 0's native scale is 0 already
    world = World(surfels, [lv0, lv1], P, "focal")
    cover = world_coverage(world)
    assert (cover[len(s0) :] == 1).all()
    inside = cover[: len(s0)] == 1
    assert 0.1 < inside.float().mean() < 0.5  # the central quarter of level 0 (plus a margin)
    for rho in (0.0, 0.25, 0.5, 0.9, 1.0, 1.7):
        w = level_weights(world.native_level(), torch.full((len(surfels),), rho).double(),
                          world.level_log_scales(), cover)  # fmt: skip
        w1 = w[len(s0) :].mean()
        assert torch.allclose(w[: len(s0)][inside] + w1, torch.ones(1).double())
        assert (w[: len(s0)][~inside] == 1).all()
    # a frame half-way between the levels
    Kh, _ = zoom_camera(K0, c2w, P, x, torch.zeros(3, dtype=torch.float64), t=0.5, mode="focal")
    ours = render_world(world, Kh, c2w, backend="torch")
    plain = render_surfels(
        surfels,
        torch.eye(4)[None],
        Kh.float()[None],
        S,
        S,
        world.level_log_scales().float(),
        render_log_scale=0.5,
        backend="torch",
    )
    assert ours.alpha.min() > 0.9
    assert plain.alpha.min() < 0.7  # the ring of plain Prop. 1 modulation
    # at a level's own camera only that level shows (coarse surfels centred just outside the
    # view may tint its outermost pixels)
    at1 = render_world(world, K1, c2w, backend="torch").rgb[0, :, 2:-2, 2:-2]
    assert at1[2].min() > 0.9 and at1[0].max() < 0.05


def test_backprojected_surfels_render_the_image_and_its_depth():
    K, c2w = _camera()
    image = _image()
    depth = PLANE(image, K, c2w).value
    s = backproject_surfels(image, depth, K, c2w)
    assert len(s) == S * S
    out = rasterize_surfels(s, K, c2w, S, S, backend="torch")
    assert out.alpha.min() > 0.95
    assert ((out.depth[0, 0] - depth).abs() / depth).max() < 0.01
    psnr = -10 * math.log10((out.rgb[0] - image).square().mean().item())
    assert psnr > 24
    # tangent frames are proper rotations whose normal faces the camera and the plane's normal
    R = quaternion_to_matrix(s.quats.double())
    n = torch.nn.functional.normalize(torch.tensor([0.2, 0.1, -1.0]).double(), dim=0)
    assert (R[:, :, 2] @ n).min() > 0.999
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(len(s)).double())
    # stride 2: a quarter of the surfels (one per 2x2 block), twice as large, still covering
    s2 = backproject_surfels(image, depth, K, c2w, stride=2)
    assert len(s2) == S * S // 4
    assert s2.scales.mean() == pytest.approx(2 * s.scales.mean().item(), rel=0.05)
    alpha2 = rasterize_surfels(s2, K, c2w, S, S, backend="torch").alpha
    assert alpha2.min() > 0.75 and alpha2[..., 1:-1, 1:-1].min() > 0.85


def test_fit_surfels_lowers_the_loss_on_a_fixed_view():
    K, c2w = _camera()
    image = _image()
    s = backproject_surfels(image, PLANE(image, K, c2w).value, K, c2w)
    s.colors = torch.full_like(s.colors, 0.5)  # start far from the image
    fitted, losses = fit_surfels(s, image[None], K[None].float(), c2w[None].float(), steps=8,
                                 lr=0.1, backend="torch")  # fmt: skip
    assert losses[-1] < 0.5 * losses[0]
    assert torch.equal(fitted.native_scale, s.native_scale) and len(fitted) == len(s)
    shift = (fitted.means - s.means).norm(dim=-1) / s.means.norm(dim=-1)
    assert shift.max() <= 0.05 + 1e-6  # centres move along their rays by at most 5 %


def test_gaussians_to_surfels_uses_the_two_largest_axes():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(50, 4, generator=g), dim=-1)
    scales = torch.rand(50, 3, generator=g) + 0.1
    s = gaussians_to_surfels(torch.zeros(50, 3), q, scales, torch.rand(50), torch.rand(50, 3))
    R0, R1 = quaternion_to_matrix(q.double()), quaternion_to_matrix(s.quats.double())
    order = scales.argsort(dim=-1, descending=True)
    torch.testing.assert_close(s.scales, torch.gather(scales, 1, order[:, :2]))
    for i in range(50):
        a, b, c = order[i].tolist()
        torch.testing.assert_close(R1[i, :, 0], R0[i, :, a])
        torch.testing.assert_close(R1[i, :, 1], R0[i, :, b])
        assert abs(float(R1[i, :, 2] @ R0[i, :, c])) == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(torch.linalg.det(R1), torch.ones(50).double())


def test_zoom_step_is_additive_and_registers_its_depth():
    K, c2w = _camera()
    world = initial_world(_image(), K, c2w, "level 0", _models(), _cfg())
    assert len(world.levels) == 1 and len(world.surfels) == S * S
    before = {f.name: getattr(world.surfels, f.name).clone() for f in fields(SurfelSet)}
    n0 = len(world.surfels)
    world1 = zoom_step(world, "level 1", _models(AffinePlane()), _cfg(), seed=1)
    for name, value in before.items():  # existing surfels bit-identical, first
        assert torch.equal(getattr(world1.surfels, name)[:n0], value)
        assert torch.equal(getattr(world.surfels, name), value)  # the input world is untouched
    lv = world1.levels[1]
    assert len(world1.surfels) == n0 + lv.num_surfels and lv.num_surfels == S * S
    assert (world1.surfels.native_scale[n0:] == lv.log_scale).all()
    assert lv.log_scale == pytest.approx(world.base_log_scale + 1.0)
    # registered onto the world's plane: the affine map is undone (up to the coarse render's
    # expected depth, which leans towards the nearer of overlapping surfels on a slanted plane)
    reg = lv.stats["registration"]
    assert reg["scale"] == pytest.approx(2.0, rel=0.05) and reg["shift"] == pytest.approx(
        -0.6, abs=0.1
    )
    true = PLANE(lv.image, lv.K, lv.c2w).value
    assert ((lv.depth - true).abs() / true).max() < 0.05
    assert lv.stats["coarse_coverage"] == 1.0 and lv.coarse["rgb"].shape == (3, S, S)
    assert lv.stats["registration"]["reliable_fraction"] > 0.8
    # the new level's own view shows the new image
    out = render_world(world1, lv.K, lv.c2w, backend="torch")
    assert -10 * math.log10((out.rgb[0] - lv.image).square().mean().item()) > 20


@pytest.mark.slow
def test_wonderland_path_with_random_tiny_video_model_and_lalrm():
    """image -> camera-guided video -> LaLRM -> surfels at scale 0, then a zoom step lifting
    LaLRM Gaussians of the auxiliary views (random tiny weights: shapes, additivity, stats)."""
    import yaml

    from models.worldgen import LaLRMDepth, LaLRMReconstructor, VideoModelAuxViews
    from training.config_files import config_path
    from training.modules.lalrm import LaLRMModule
    from training.modules.video_model import CameraVideoModule

    cfg = yaml.safe_load(config_path("camera_video_model", "tiny").read_text())["model"]
    torch.manual_seed(0)
    video = CameraVideoModule(**cfg["init_args"]).eval()
    lalrm = LaLRMModule(size="tiny", vae=video.vae, perceptual="none").eval()
    rec = LaLRMReconstructor(lalrm.model, lalrm.vae)
    models = WorldModels(AnalyticImageModel(), LaLRMDepth(rec),
                         VideoModelAuxViews(video.sampler(), (64, 64), steps=2), rec)  # fmt: skip
    K, c2w = _camera(64)
    cfg = _cfg(zoom_mode="dolly", refine_steps=5)
    world = initial_world(_image(64), K, c2w, "a", models, cfg)
    assert world.levels[0].stats["path"] == "wonderland"
    assert len(world.surfels) == 9 * 64 * 64  # 9 frames of a full-resolution Gaussian map
    n0 = len(world.surfels)
    world1 = zoom_step(world, "b", models, cfg)
    lv = world1.levels[1]
    assert lv.stats["depth_source"] == "lalrm" and lv.stats["aux_views"] == 9
    assert len(world1.surfels) == n0 + 9 * 64 * 64
    assert torch.equal(world1.surfels.means[:n0], world.surfels.means)
    assert torch.isfinite(world1.surfels.means).all() and (lv.depth > 0).all()
