import json

import numpy as np
import pytest
import torch

from datagen.camera_formats import read_realestate10k
from datagen.clips import Clip
from datagen.trajectories import export_realestate10k, wonderland_recipe, worldfm_recipe
from datagen.worlds import (
    FAMILIES,
    NUM_LEVELS,
    Lighting,
    Material,
    Navigation,
    WorldSpec,
    captions_by_level,
    generate_world,
    make_clip,
    preview_image,
    render,
    render_clip,
)
from datagen.worlds import meshes as M
from datagen.worlds.builder import WorldBuilder
from datagen.worlds.noise import fbm
from models.geometry import K_from_fov, look_at, make_K, project, unproject

GREY = Material("grey", "plain", (0.5, 0.5, 0.5), scale=1.0)
NAV = Navigation((-1, -1), (1, 1), (1, 2), (0, 0, 0), 0.1, 0.1, (0, 0, 0), (0, 0, 1))


def _world(*parts):
    b = WorldBuilder(WorldSpec("test", 0), "analytic test scene")
    for i, part in enumerate(parts):
        b.add(b.node(b.root, f"part{i}", f"part {i}"), part, GREY)
    return b.build(Lighting(), NAV)


@pytest.fixture(scope="module")
def worlds():
    return {fam: generate_world(WorldSpec(fam, 11)) for fam in FAMILIES}


def test_plane_depth_is_exact():
    plane = M.box((40.0, 40.0, 0.01), (0.0, 0.0, 3.005))  # front face at z = 3
    world = _world(plane)
    K = make_K(50.0, 50.0, 32.0, 24.0, dtype=torch.float64)
    out = render(world, K, torch.eye(4, dtype=torch.float64), 48, 64)
    assert out["depth"].shape == (48, 64) and out["depth"].dtype == np.float32
    np.testing.assert_allclose(out["depth"], 3.0, rtol=0, atol=2e-5)
    np.testing.assert_allclose(
        out["normals"], np.broadcast_to([0, 0, -1.0], (48, 64, 3)), atol=1e-6
    )
    assert (out["instance"] == 1).all()


def test_sphere_depth_matches_ray_sphere_intersection():
    r, d, H, W = 1.0, 4.0, 65, 65  # odd size: the centre pixel lies on the optical axis
    # axis along x, so the optical axis meets the sphere inside a triangle, not at a pole vertex
    world = _world(M.sphere(r, 96, 192).transformed(M.pose([0.0, 0.0, d], 0.0, 90.0, 0.0)))
    K = make_K(60.0, 60.0, W / 2, H / 2, dtype=torch.float64)
    depth = render(world, K, torch.eye(4, dtype=torch.float64), H, W)["depth"]
    assert depth[32, 32] == pytest.approx(d - r, abs=1e-3)
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    ray = np.stack([(u - W / 2) / 60, (v - H / 2) / 60, np.ones_like(u)], -1)  # camera z = 1
    c = np.array([0.0, 0.0, d])
    a, bq = (ray * ray).sum(-1), (ray @ c)
    disc = bq**2 - a * (c @ c - r * r)
    z = (bq - np.sqrt(np.clip(disc, 0, None))) / a  # ray parameter = z-depth since ray_z = 1
    inner = disc > 0.05 * a  # away from the silhouette, where tessellation moves the edge
    assert inner.sum() > 500
    np.testing.assert_allclose(depth[inner], z[inner], rtol=0, atol=2e-3)
    assert (depth[disc < -0.05 * a] == 0).all()


def test_mesh_point_projects_to_pixel_that_shows_it(worlds):
    world = worlds["indoor"]
    H, W = 96, 128
    K = K_from_fov(70.0, H, W, dtype=torch.float64)
    nav = world.nav
    c2w = look_at(
        torch.tensor(nav.preview_eye, dtype=torch.float64),
        torch.tensor(nav.preview_target, dtype=torch.float64),
        torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
    )
    out = render(world, K, c2w, H, W)
    a = world.arrays
    centroids = a["vertices"][a["triangles"]].mean(1).astype(np.float64)
    uv, z = project(torch.from_numpy(centroids), K, c2w)
    uv, z = uv.numpy(), z.numpy()
    inside = (z > 0.3) & (uv[:, 0] > 1) & (uv[:, 0] < W - 1) & (uv[:, 1] > 1) & (uv[:, 1] < H - 1)
    # independent visibility: the first hit along the ray from the camera is the point itself
    eye = c2w[:3, 3].numpy()
    cand = np.flatnonzero(inside)
    dirs = centroids[cand] - eye
    dist = np.linalg.norm(dirs, axis=1)

    rays = np.concatenate([np.broadcast_to(eye, dirs.shape), dirs / dist[:, None]], 1)
    t = world.cast(rays)["t_hit"]
    visible = cand[np.abs(t - dist) < 1e-3 * dist]
    assert len(visible) > 100
    depth_t = torch.from_numpy(out["depth"]).double()
    points = unproject(depth_t, K, c2w).numpy()
    checked = 0
    for k in visible:
        col, row = int(uv[k, 0]), int(uv[k, 1])
        centre = (col + 0.5 - uv[k, 0], row + 0.5 - uv[k, 1])
        if max(abs(centre[0]), abs(centre[1])) > 0.25:
            continue  # on a pixel boundary the neighbouring surface may win
        if out["instance"][row, col] != a["tri_instance"][k]:
            continue  # a small part of another object of the same depth covers the centre
        footprint = z[k] / K[0, 0].item()
        assert np.linalg.norm(points[row, col] - centroids[k]) < 3 * footprint / 0.3
        assert out["depth"][row, col] == pytest.approx(z[k], rel=0.05)
        checked += 1
    assert checked > 30


def test_same_seed_same_world_and_images():
    spec = WorldSpec("outdoor", 3, {"trees": 3, "rocks": 3})
    a, b = generate_world(spec), generate_world(WorldSpec.from_json(spec.to_json()))
    assert a.spec.to_json() == b.spec.to_json() and a.id == b.id
    for key in a.arrays:
        assert np.array_equal(a.arrays[key], b.arrays[key]), key
    assert json.dumps(a.describe(), sort_keys=True) == json.dumps(b.describe(), sort_keys=True)
    img_a, img_b = preview_image(a, 48, 64), preview_image(b, 48, 64)
    assert img_a.shape == (48, 64, 3) and img_a.dtype == np.uint8
    assert np.array_equal(img_a, img_b)
    c = generate_world(WorldSpec("outdoor", 4, {"trees": 3, "rocks": 3}))
    assert c.id != a.id and not np.array_equal(preview_image(c, 48, 64), img_a)


def test_spec_json_round_trip_and_unknown_params():
    spec = WorldSpec("tabletop", 7, {"objects": 5})
    assert WorldSpec.from_json(spec.to_json()) == spec
    assert spec.world_id.startswith("tabletop-7-")
    with pytest.raises(ValueError, match="unknown params"):
        generate_world(WorldSpec("indoor", 1, {"nope": 1}))
    with pytest.raises(ValueError, match="unknown world family"):
        generate_world(WorldSpec("space", 1))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_world_has_a_caption_per_level(family, worlds):
    world = worlds[family]
    caps = world.captions()
    assert len(caps) == NUM_LEVELS and all(isinstance(c, str) and len(c) > 5 for c in caps)
    assert len(set(caps)) == NUM_LEVELS  # the zoom path reaches a new subject at every level
    by_level = captions_by_level(world.graph)
    assert all(len(level) >= 1 for level in by_level)
    for node in world.graph.walk():  # every node's subtree reaches surface detail (level 4)
        assert max(n.level for n in node.walk()) == NUM_LEVELS - 1, node.name


@pytest.mark.parametrize("family", FAMILIES)
def test_render_outputs_and_scene_variety(family, worlds):
    world = worlds[family]
    assert 1_000 < world.num_triangles < 80_000
    img = preview_image(world, 64, 64)
    assert img.std() > 15  # shaded, textured: not a flat image
    H = W = 64
    K = K_from_fov(70.0, H, W, dtype=torch.float64)
    nav = world.nav
    c2w = look_at(
        *(
            torch.tensor(x, dtype=torch.float64)
            for x in (nav.preview_eye, nav.preview_target, (0, 0, 1))
        )
    )
    out = render(world, K, c2w, H, W)
    hit = out["depth"] > 0
    assert hit.mean() > 0.4
    assert (out["instance"][~hit] == 0).all() and (out["instance"][hit] > 0).all()
    assert len(np.unique(out["instance"][hit])) >= 3
    np.testing.assert_allclose(np.linalg.norm(out["normals"][hit], axis=-1), 1.0, atol=1e-4)
    ss = render(world, K, c2w, H, W, supersample=2)
    assert np.array_equal(ss["depth"], out["depth"])  # supersampling keeps exact centre depth
    assert np.abs(ss["rgb"].astype(int) - out["rgb"].astype(int)).mean() < 20


def test_fine_noise_octaves_fade_with_pixel_footprint():
    p = torch.rand(4000, 2) * 20
    near = fbm(p, 6, torch.full((4000,), 1e-3))
    far = fbm(p, 6, torch.full((4000,), 2.0))
    assert near.std() > 2 * far.std()  # distant pixels keep only the coarse octaves


@pytest.mark.parametrize("recipe", ["worldfm", "wonderland"])
def test_rendered_clips_pass_validation(recipe, worlds):
    world = worlds["tabletop"]
    kwargs = {"num_seen": 6, "stride": 2, "num_unseen": 4} if recipe == "wonderland" else {}
    clip = make_clip(world, recipe, seed=2, H=32, W=40, **kwargs)
    assert isinstance(clip, Clip) and clip.validate() is clip
    assert clip.provenance.source_kind == "synthetic" and clip.provenance.scene_id == world.id
    assert clip.provenance.pose_estimator == clip.provenance.depth_estimator == "exact"
    assert clip.caption == world.captions()[0] and clip.level_captions == world.captions()
    np.testing.assert_array_equal(clip.depth_conf, (clip.depth > 0).astype(np.float32))
    assert clip.pcr_rgb.shape == (len(clip.target_idx), 32, 40, 3)
    assert clip.pcr_mask.mean() > 0.3  # the reference point cloud covers most target pixels
    extra = clip.provenance.extra
    if recipe == "worldfm":
        assert clip.num_frames == 16 and len(clip.ref_idx) == 4 and len(clip.target_idx) == 12
    else:
        assert [clip.frame_ids[i] for i in clip.ref_idx] == extra["seen_frames"]
        assert sorted(extra["unseen_inside"] + extra["unseen_outside"]) == [
            clip.frame_ids[i] for i in clip.target_idx
        ]
    json.dumps(clip.provenance.to_dict())


def test_render_clip_uses_recipe_frames_and_exact_geometry(worlds):
    world = worlds["indoor"]
    rec = wonderland_recipe(num_seen=4, stride=3, num_unseen=3, rng=np.random.default_rng(0))
    from datagen.trajectories import sample_trajectory

    traj = sample_trajectory(world, rec.num_poses, np.random.default_rng(1), "forward_dolly")
    K = K_from_fov(60.0, 24, 32, dtype=torch.float64).numpy()
    clip = render_clip(world, traj.c2w, K, 24, 32, rec, "indoor-clip")
    np.testing.assert_allclose(clip.c2w, traj.c2w[rec.frame_ids], atol=1e-6)
    single = render(world, K, traj.c2w[rec.frame_ids[2]], 24, 32)
    assert np.array_equal(clip.depth[2], single["depth"])
    with pytest.raises(ValueError, match="needs"):
        render_clip(world, traj.c2w[:-1], K, 24, 32, rec, "bad")
    assert worldfm_recipe().num_poses == 16


def test_realestate10k_export_round_trip(tmp_path, worlds):
    from datagen.trajectories import sample_trajectory

    world = worlds["outdoor"]
    traj = sample_trajectory(world, 10, np.random.default_rng(0), "orbit")
    K = K_from_fov(60.0, 90, 160, dtype=torch.float64).numpy()
    path = export_realestate10k(tmp_path / "cams.txt", traj.c2w, K, 90, 160)
    cams = read_realestate10k(path, (90, 160))
    np.testing.assert_allclose(cams.c2w, traj.c2w, atol=1e-6)
    np.testing.assert_allclose(cams.K[0], K, atol=1e-9)
    assert cams.timestamps.tolist() == [round(i * 1e6 / 30) for i in range(10)]


@pytest.mark.parametrize("supersample", [1, 2])
def test_render_views_equals_one_render_per_view(worlds, supersample, monkeypatch):
    """One batched cast + shading pass gives the pixels of per-view ``render`` calls (also across
    the ray-budget split into groups, and with a different focal length per view)."""
    import importlib

    from datagen.trajectories import sample_trajectory
    from datagen.worlds import render_views

    render_module = importlib.import_module("datagen.worlds.render")  # the package shadows it

    world = worlds["indoor"]
    rng = np.random.default_rng(0)
    traj = sample_trajectory(world, 3, rng, "random")
    Ks = np.stack([K_from_fov(f, 24, 32, dtype=torch.float64).numpy() for f in (50, 60, 70)])
    monkeypatch.setattr(render_module, "MAX_BATCH_RAYS", 2 * 24 * 32 * supersample**2)
    batched = render_views(world, Ks, traj.c2w, 24, 32, supersample)
    for i in range(3):
        one = render(world, Ks[i], traj.c2w[i], 24, 32, supersample)
        for key in ("depth", "normals", "instance"):
            np.testing.assert_array_equal(batched[key][i], one[key], err_msg=key)
        diff = np.abs(batched["rgb"][i].astype(int) - one["rgb"].astype(int))
        assert diff.max() <= 1, (i, diff.max())  # float rounding of the shading order only
    assert batched["rgb"].shape == (3, 24, 32, 3)
