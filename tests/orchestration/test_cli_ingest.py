"""`wonderforge estimate-poses` and `wonderforge ingest` on rendered procedural footage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datagen.camera_formats import read_colmap, read_nerfstudio
from datagen.ingest.images import save_png
from datagen.shards import load_manifest, read_clips
from datagen.store import LocalStore
from datagen.worlds.video import write_video
from models.geometry import ate_rmse
from orchestration.cli import main as cli_main
from tests.fixtures.ingest_scene import rendered


def _broken(path):
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(300))
    return path


@pytest.mark.slow
def test_estimate_poses_writes_transforms_and_colmap_model(tmp_path, capsys):
    r = rendered(16, 256)
    images = tmp_path / "images"
    images.mkdir()
    for i, rgb in enumerate(r["rgb"]):
        save_png(rgb, images / f"frame_{i:02d}.png")
    out = tmp_path / "poses"
    argv = ["estimate-poses", "--images", str(images), "--out", str(out)]
    assert cli_main([*argv, "--camera-model", "SIMPLE_PINHOLE"]) == 0
    assert "registered 16/16 frames" in capsys.readouterr().out
    ns = read_nerfstudio(out / "transforms.json")
    assert len(ns) == 16 and (ns.height, ns.width) == (256, 256)
    assert all((out / name).resolve().is_file() for name in ns.names)  # paths resolve
    colmap = read_colmap(out / "sparse" / "0")
    assert colmap.names == [f"frame_{i:02d}.png" for i in range(16)]
    np.testing.assert_allclose(colmap.c2w, ns.c2w, atol=1e-6)
    gt = torch.from_numpy(r["c2w"])
    extent = float(np.linalg.norm(np.ptp(r["c2w"][:, :3, 3], axis=0)))
    assert ate_rmse(torch.from_numpy(ns.c2w), gt) < 0.01 * extent
    assert (out / "points3D.ply").stat().st_size > 1000


@pytest.mark.slow
def test_ingest_batch_reports_the_bad_item_and_writes_the_good_one(tmp_path, capsys):
    good = write_video(tmp_path / "room.mp4", rendered(24, 192)["rgb"])
    bad = _broken(tmp_path / "cut.mp4")
    out = tmp_path / "out"
    argv = ["ingest", str(bad), str(good), "--out", str(out), "--clip-max-side", "64"]
    argv += ["--num-depths", "32", "--camera-model", "SIMPLE_PINHOLE"]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    bad_line = next(line for line in text.splitlines() if line.startswith(str(bad)))
    assert "failed" in bad_line and "truncated" in bad_line
    good_line = next(line for line in text.splitlines() if line.startswith(str(good)))
    assert " ok " in good_line
    store = LocalStore(out)
    assert load_manifest(store, "room").num_samples == 1
    (clip,) = list(read_clips(store, "room"))
    assert clip.rgb.shape == (16, 64, 64, 3) and clip.provenance.source_kind == "real_video"
    quality = store.get_json("room/quality.json")
    assert quality["accepted"] == 1 and quality["clips"][0]["status"] == "accepted"
    assert store.get_json("cut/quality.json")["error"].startswith(str(bad))


def test_ingest_exits_non_zero_only_when_every_item_fails(tmp_path, capsys):
    bad = _broken(tmp_path / "cut.mp4")
    missing = tmp_path / "nope.mp4"
    assert cli_main(["ingest", str(bad), str(missing), "--out", str(tmp_path / "out")]) == 1
    text = capsys.readouterr().out
    assert f"{missing}: no such file or directory" in text and str(bad) in text
