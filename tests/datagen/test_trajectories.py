import numpy as np
import pytest

from datagen.trajectories import (
    TEMPLATES,
    check_poses,
    clearance,
    forward_depths,
    inside_geometry,
    motion_stats,
    sample_start,
    sample_trajectory,
    wonderland_recipe,
    worldfm_recipe,
)
from datagen.trajectories import templates as T
from datagen.worlds import FAMILIES, WorldSpec, generate_world


@pytest.fixture(scope="module")
def worlds():
    return {fam: generate_world(WorldSpec(fam, 21)) for fam in FAMILIES}


def _is_rigid_no_roll(c2w):
    R = c2w[:, :3, :3]
    assert np.allclose(R.transpose(0, 2, 1) @ R, np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(R), 1.0, atol=1e-9)
    assert np.allclose(R[:, 2, 0], 0.0, atol=1e-9)  # camera x axis stays horizontal: no roll
    assert (R[:, 2, 1] < 0).all()  # camera y (down) points down


@pytest.mark.parametrize("family", FAMILIES)
def test_no_sampled_pose_violates_clearance(family, worlds):
    world = worlds[family]
    nav = world.nav
    rng = np.random.default_rng(0)
    for template in TEMPLATES:
        traj = sample_trajectory(world, 12, rng, template)
        c2w = traj.c2w
        assert c2w.shape == (12, 4, 4) and c2w.dtype == np.float64
        _is_rigid_no_roll(c2w)
        eyes = c2w[:, :3, 3]
        assert (clearance(world, eyes) >= nav.clearance).all(), template
        s = np.linspace(0, 1, 9)[1:-1, None, None]
        mids = (eyes[:-1] * (1 - s) + eyes[1:] * s).reshape(-1, 3)
        assert (clearance(world, mids) >= nav.clearance).all(), template
        assert not inside_geometry(world, eyes).any(), template
        depth = np.median(forward_depths(world, c2w), axis=1)
        assert (depth >= nav.min_view_depth).all(), template
        assert (eyes[:, :2] >= np.array(nav.region_min) - 1.5).all()
        assert (eyes[:, :2] <= np.array(nav.region_max) + 1.5).all()


def test_start_poses_are_semantically_valid(worlds):
    rng = np.random.default_rng(3)
    indoor, tabletop, outdoor = worlds["indoor"], worlds["tabletop"], worlds["outdoor"]
    for _ in range(5):
        eye, fwd = sample_start(indoor, rng)
        lo, hi = indoor.nav.eye_height
        assert lo <= eye[2] <= hi and abs(np.linalg.norm(fwd) - 1) < 1e-9
        assert np.all(eye[:2] >= indoor.nav.region_min) and np.all(eye[:2] <= indoor.nav.region_max)
        eye, fwd = sample_start(tabletop, rng)
        r = np.linalg.norm(eye[:2] - np.array(tabletop.nav.center[:2]))
        assert tabletop.nav.ring[0] - 1e-9 <= r <= tabletop.nav.ring[1] + 1e-9
        to_center = np.array(tabletop.nav.center) - eye
        assert np.dot(fwd, to_center / np.linalg.norm(to_center)) > 0.95  # looks at the table
        eye, _ = sample_start(outdoor, rng)
        from datagen.trajectories import ground_height

        above = eye[2] - ground_height(outdoor, eye[None, :2])[0]
        assert outdoor.nav.eye_height[0] - 1e-6 <= above <= outdoor.nav.eye_height[1] + 1e-6


def test_validity_check_rejects_bad_poses(worlds):
    world = worlds["indoor"]
    sx = world.nav.region_max[0] + 0.5  # the +x wall's inner face
    wall_hugger = T.look_pose([sx - 0.1, 0.0, 1.5], [sx + 1.0, 0.0, 1.5])
    v = check_poses(world, wall_hugger[None])
    assert not v.ok and any("clearance" in r for r in v.reasons)
    assert any("view depth" in r for r in v.reasons)
    inside_wall = T.look_pose([sx + 0.1, 0.0, 1.5], [0.0, 0.0, 1.5])
    assert inside_geometry(world, inside_wall[None, :3, 3]).all()
    assert not check_poses(world, inside_wall[None]).ok
    # a path whose end poses are fine but whose middle crosses the wall fails the segment test
    a = T.look_pose([sx - 1.0, 0.0, 1.5], [0, 0, 1.5])
    b = T.look_pose([sx - 1.0, 0.0, 1.5], [0, 0, 1.5])
    b[0, 3] = sx + 1.0
    assert check_poses(world, np.stack([a, b]), min_view_depth=0).segment_clearance < 0.35


def test_templates_do_what_they_say():
    eye, fwd = np.array([0.0, 0.0, 1.5]), np.array([1.0, 0.0, 0.0])
    dolly = T.forward_dolly(eye, fwd, 2.0, 9)
    np.testing.assert_allclose(dolly[-1, :3, 3], [2.0, 0.0, 1.5], atol=1e-9)
    np.testing.assert_allclose(dolly[:, :3, 2], np.tile(fwd, (9, 1)), atol=1e-9)
    truck = T.truck(eye, fwd, 1.0, 5)
    np.testing.assert_allclose(truck[-1, :3, 3] - eye, truck[0, :3, 0], atol=1e-9)  # camera right
    pan = T.pan(eye, fwd, 90.0, 7)
    np.testing.assert_allclose(pan[:, :3, 3], np.tile(eye, (7, 1)), atol=1e-12)
    np.testing.assert_allclose(pan[-1, :3, 2], [0.0, 1.0, 0.0], atol=1e-9)
    turn = T.turn_360(eye, fwd, 8)
    yaws = np.degrees(np.arctan2(turn[:, 1, 2], turn[:, 0, 2])) % 360
    np.testing.assert_allclose(np.sort(yaws), np.arange(0, 360, 45), atol=1e-6)
    center = np.array([2.0, 1.0, 0.5])
    orbit = T.orbit(center, [5.0, 1.0, 1.5], 120.0, 10)
    radius = np.linalg.norm(orbit[:, :2, 3] - center[:2], axis=1)
    np.testing.assert_allclose(radius, 3.0, atol=1e-9)
    to_c = center - orbit[:, :3, 3]
    np.testing.assert_allclose(
        orbit[:, :3, 2], to_c / np.linalg.norm(to_c, axis=1, keepdims=True), atol=1e-9
    )
    zoom = T.zoom_in(eye, [4.0, 0.0, 1.5], 0.5, 10)
    assert np.linalg.norm(zoom[-1, :3, 3] - [4.0, 0.0, 1.5]) == pytest.approx(0.5)
    steps = np.linalg.norm(np.diff(zoom[:, :3, 3], axis=0), axis=1)
    assert steps[0] < steps[4] and steps[-1] < steps[4]  # eased in and out
    for path in (dolly, truck, pan, turn, orbit, zoom):
        _is_rigid_no_roll(path)


def test_random_motion_is_smooth_with_bounded_velocities():
    rng = np.random.default_rng(5)
    for _ in range(5):
        path = T.random_motion(
            rng, [0, 0, 1.5], [1.0, 0.0, 0.0], 40, max_speed=0.05, max_turn_deg=3.0
        )
        assert path.shape == (40, 4, 4)
        _is_rigid_no_roll(path)
        stats = motion_stats(path)
        assert 0 < stats["max_step_m"] <= 0.05 and 0 < stats["max_turn_deg"] <= 3.0
        acc = np.linalg.norm(np.diff(path[:, :3, 3], 2, axis=0), axis=1)
        assert acc.max() < 0.02  # C1 spline: no velocity jumps at keyframes


def test_worldfm_recipe():
    rec = worldfm_recipe()
    assert rec.num_poses == 16 and rec.frame_ids == list(range(16))
    assert rec.ref_idx == [0, 5, 10, 15] and len(rec.target_idx) == 12
    assert set(rec.ref_idx).isdisjoint(rec.target_idx)
    assert sorted(rec.ref_idx + rec.target_idx) == list(range(16))
    assert rec.extra["target_ref"][:3] == [0, 0, 5]  # temporally closest reference


def test_wonderland_recipe_seen_and_unseen():
    rec = wonderland_recipe(num_seen=13, stride=4, num_unseen=8, rng=np.random.default_rng(1))
    seen = rec.extra["seen_frames"]
    assert len(seen) == 13 and np.all(np.diff(seen) == 4)
    assert rec.num_poses == seen[-1] + 1 + 8  # margin of 2 * stride on both sides
    inside, outside = rec.extra["unseen_inside"], rec.extra["unseen_outside"]
    assert len(inside) == len(outside) == 4
    assert all(seen[0] < f < seen[-1] and f not in seen for f in inside)
    assert all(f < seen[0] or f > seen[-1] for f in outside)
    assert [rec.frame_ids[i] for i in rec.ref_idx] == seen
    assert [rec.frame_ids[i] for i in rec.target_idx] == sorted(inside + outside)
    assert rec.frame_ids == sorted(rec.frame_ids) and len(set(rec.frame_ids)) == 21
