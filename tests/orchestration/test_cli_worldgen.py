"""`wonderforge generate / view / add-world-request` (orchestration/cli_worldgen.py): generate runs
end to end on a tiny input with the documented fallbacks, bad inputs fail with the file named,
view explains the missing extra, the viewer's scene data applies the modulation, and requests
become `world_requests` partitions."""

import argparse
import builtins
import socket

import dagster as dg
import numpy as np
import pytest
from PIL import Image

from assets.partitions import WORLD_REQUESTS
from datagen.store import LocalStore
from datagen.world_files import read_manifest, video_frame_count
from datagen.world_requests import load_request
from orchestration.cli_worldgen import add_worldgen_commands, parse_checkpoints

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WONDERFORGE_STORE", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # restored after the test
    return tmp_path


def _inputs(tmp_path, levels: int = 2):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([xx / 64, yy / 48, 0.5 + 0.3 * np.sin(xx / 5)], -1) * 255
    rgb = (rgb + rng.normal(0, 8, rgb.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "input.png")
    (tmp_path / "prompts.txt").write_text(
        "# one prompt per level\n" + "\n".join(f"level {i}" for i in range(levels)) + "\n"
    )
    return tmp_path / "input.png", tmp_path / "prompts.txt"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wonderforge")
    add_worldgen_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_generate_runs_end_to_end_on_a_tiny_input(home, capsys):
    image, prompts = _inputs(home)
    out = home / "world"
    rc = run(["generate", "--image", str(image), "--prompts", str(prompts), "--out", str(out),
              "--size", "32", "--steps", "4", "--seed", "3", "--fit-steps", "1",
              "--frames-per-level", "2", "--orbit-frames", "2", "--device", "cpu"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "world with 2 levels" in text and "fallback" in text and "wonderforge view" in text
    manifest = read_manifest(out)
    assert manifest["num_levels"] == 2 and manifest["seed"] == 3 and manifest["steps"] == 4
    assert manifest["size"] == [32, 32] and manifest["source_image"] == str(image)
    assert {c["source"] for c in manifest["checkpoints"].values()} == {"missing"}
    assert len(manifest["fallbacks"]) == 3
    assert video_frame_count(out / "zoom.mp4") == 3
    assert all((out / lv["files"]["ply"]).is_file() for lv in manifest["levels"])


def test_generate_names_bad_inputs(home, capsys):
    image, prompts = _inputs(home)
    missing = home / "nope.txt"
    assert run(["generate", "--image", str(image), "--prompts", str(missing), "--out",
                str(home / "w")]) == 1  # fmt: skip
    assert f"{missing}: prompts file not found" in capsys.readouterr().err
    (home / "broken.png").write_bytes(b"not an image")
    assert run(["generate", "--image", str(home / "broken.png"), "--prompts", str(prompts),
                "--out", str(home / "w")]) == 1  # fmt: skip
    assert "broken.png: not a readable image" in capsys.readouterr().err
    assert run(["generate", "--image", str(image), "--prompts", str(prompts), "--levels", "5",
                "--out", str(home / "w")]) == 1  # fmt: skip
    assert "levels=5 needs 1 to 2" in capsys.readouterr().err
    assert run(["generate", "--image", str(image), "--prompts", str(prompts)]) == 2
    with pytest.raises(ValueError, match="ROLE=PATH"):
        parse_checkpoints(["frame_stage1"])
    assert parse_checkpoints(["lalrm=none", "frame_stage1=s3://b/x"]) == {
        "lalrm": "none", "frame_stage1": "s3://b/x"}  # fmt: skip


def test_view_without_viser_explains_the_extra(home, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_viser(name, *args, **kwargs):
        if name == "viser" or name.startswith("viser."):
            raise ImportError("No module named 'viser'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_viser)
    assert run(["view", str(home)]) == 1
    err = capsys.readouterr().err
    assert "wonderforge[viewer]" in err and "viser" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_viewer_applies_the_modulation_live(home, capsys):
    from training.world_viewer import load_viewer_world, serve, splat_arrays

    image, prompts = _inputs(home, levels=3)
    out = home / "world"
    assert run(["generate", "--image", str(image), "--prompts", str(prompts), "--out", str(out),
                "--size", "32", "--steps", "3", "--fit-steps", "0", "--zoom-mode", "focal",
                "--frames-per-level", "2", "--orbit-frames", "2", "--device", "cpu"]) == 0  # fmt: skip
    vw = load_viewer_world(out)
    assert vw.num_levels == 3 and [len(s) for s in vw.level_sets] == [32 * 32] * 3
    # level 0 alone at zoom 0; level 2 fully at zoom 2 (level 1 only outside its view);
    # half/half between levels 0 and 1 where level 1 covers level 0
    n = len(vw.level_sets[0])
    cover0, cover1 = vw.cover[:n].numpy(), vw.cover[n : 2 * n].numpy()
    w0, w_half, w2 = vw.weights(0.0), vw.weights(0.5), vw.weights(2.0)
    assert (w0[0] == 1).all() and (w0[1] == 0).all() and (w0[2] == 0).all()
    assert (w2[2] == 1).all() and (w2[1][cover1 == 2] == 0).all() and (w2[1][cover1 < 2] == 1).all()
    assert 0.05 < (cover1 == 2).mean() < 0.5 and 0.05 < (cover0 >= 1).mean() < 0.5
    assert np.allclose(w_half[0][cover0 >= 1], 0.5) and np.allclose(w_half[1], 0.5)
    assert (w_half[0][cover0 == 0] == 1).all()
    K, _c2w = vw.camera(1.0)
    np.testing.assert_allclose(K, vw.manifest["levels"][1]["K"], rtol=1e-6)
    a = splat_arrays(vw.level_sets[2])
    world_means = a["position"] + a["scale"] * a["centers"]
    np.testing.assert_allclose(world_means, vw.level_sets[2].means.numpy(), rtol=1e-4, atol=1e-6)
    assert 0.1 < np.median(np.linalg.eigvalsh(a["covariances"])[:, -1]) < 10  # float16-friendly
    server = serve(out, "127.0.0.1", _free_port(), block=False)
    try:
        assert "world viewer: http://127.0.0.1:" in capsys.readouterr().out
    finally:
        server.stop()


def test_add_world_request_stores_it_and_adds_the_partition(home, capsys):
    image, prompts = _inputs(home)
    assert run(["add-world-request", "--image", str(image), "--prompts", str(prompts),
                "--zoom", "4", "--steps", "7"]) == 0  # fmt: skip
    rid = capsys.readouterr().out.splitlines()[0]
    store = LocalStore(home / "home" / "store")
    request, data = load_request(store, rid)
    assert request.prompts == ["level 0", "level 1"] and request.p == 4 and request.steps == 7
    assert data == image.read_bytes()
    instance = dg.DagsterInstance.get()
    assert rid in instance.get_dynamic_partitions(WORLD_REQUESTS.name)
    # the same request again is the same partition; --submit is the same path
    assert run(["generate", "--submit", "--image", str(image), "--prompts", str(prompts),
                "--zoom", "4", "--steps", "7"]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == rid
    assert instance.get_dynamic_partitions(WORLD_REQUESTS.name).count(rid) == 1
