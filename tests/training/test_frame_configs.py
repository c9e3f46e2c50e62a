"""Frame-model configs: they validate, carry the paper's numbers, instantiate (tiny), and the three
stages chain through the CLI on shard sets (stage I -> II -> synthetic finetune -> III)."""

import json

import pytest
import yaml

from datagen.shards import write_shard_set
from datagen.store import LocalStore
from tests.fixtures.clips import make_clip
from training.cli import CONFIG_ROOT, run
from training.modules.frame_common import load_frame_export
from training.modules.frame_stage1 import ImagePriorModule
from training.modules.frame_stage2 import FrameModelModule
from training.modules.frame_stage3 import FrameDMDModule

CONFIGS = {
    "frame_stage1": ("tiny", "small", "paper"),
    "frame_stage2": ("tiny", "small", "paper", "tiny_synthetic_ft", "paper_synthetic_ft"),
    "frame_stage3": ("tiny", "small", "paper"),
}
ALL = [(m, s) for m, sizes in CONFIGS.items() for s in sizes]


pytestmark = pytest.mark.usefixtures("one_thread")


def cfg(model: str, size: str) -> dict:
    return yaml.safe_load((CONFIG_ROOT / model / f"{size}.yaml").read_text())


@pytest.mark.parametrize(("model", "size"), ALL)
def test_configs_validate_with_print_config(model, size, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    with pytest.raises(SystemExit) as done:
        run(["fit", "--config", str(CONFIG_ROOT / model / f"{size}.yaml"), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"].startswith(f"training.modules.{model}.")


def test_paper_configs_carry_the_paper_numbers():
    s1 = cfg("frame_stage1", "paper")["model"]["init_args"]
    assert s1["size"] == "paper" and s1["prediction_type"] == "epsilon"
    assert s1["caption_dropout"] == 0.1
    s2 = cfg("frame_stage2", "paper")
    m2 = s2["model"]["init_args"]
    assert m2["dit"]["camera_encoding"] == "prope" and m2["prediction_type"] == "epsilon"
    assert m2["timestep_sampling"]["kind"] == "logit_normal" and m2["timestep_sampling"]["mean"] > 0
    a = m2["anchor_schedule"]
    assert 0 < a["reference_only_steps"] < a["mask_start_step"] and a["mask_prob"] > 0
    ft = cfg("frame_stage2", "paper_synthetic_ft")
    assert ft["model"]["init_args"]["finetune"] and ft["model"]["init_args"]["init_from"]
    assert ft["model"]["init_args"]["lr"] < m2["lr"]
    assert ft["trainer"]["max_steps"] < s2["trainer"]["max_steps"] // 10
    s3 = cfg("frame_stage3", "paper")["model"]["init_args"]
    assert s3["timesteps"] == [999, 200] and s3["teacher"] and s3["teacher_pairs"]
    tiny = cfg("frame_stage2", "tiny")["model"]["init_args"]["dit"]
    assert tiny["attention_head_dim"] >= 16 and tiny["num_layers"] <= 4
    # the paper FrameDiT defaults are PixArt-Σ XL/2's
    import inspect

    from models.frame import FrameDiT

    defaults = {k: v.default for k, v in inspect.signature(FrameDiT.__init__).parameters.items()}
    assert (
        defaults["num_layers"],
        defaults["num_attention_heads"],
        defaults["attention_head_dim"],
    ) == (28, 16, 72)
    assert (defaults["patch_size"], defaults["sample_size"]) == (2, 64)


@pytest.mark.parametrize(
    ("model", "cls"),
    [
        ("frame_stage1", ImagePriorModule),
        ("frame_stage2", FrameModelModule),
        ("frame_stage3", FrameDMDModule),
    ],
)
def test_tiny_configs_instantiate_through_the_cli(model, cls, monkeypatch):
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    cli = run(["--config", str(CONFIG_ROOT / model / "tiny.yaml")], run=False)
    assert isinstance(cli.model, cls)


def _write_set(root, name: str, n: int, kind: str = "synthetic") -> str:
    store = LocalStore(root)
    clips = [make_clip(key=f"{name}-{i}", height=64, width=64, seed=i) for i in range(n)]
    for c in clips:
        c.provenance.source_kind = kind
    write_shard_set(store, f"shards/{name}", clips, "test", name, progress=False)
    return store.uri(f"shards/{name}/manifest.json")


@pytest.mark.slow
def test_three_stages_chain_through_the_cli(tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("WONDERFORGE_STORE", f"file://{store}")
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    real = _write_set(tmp_path / "data", "real", 2, "real_video")
    synthetic = _write_set(tmp_path / "data", "synth", 1)
    common = ["--trainer.accelerator", "cpu", "--trainer.logger", "false"]

    def fit(model, size, *extra):
        args = ["fit", "--config", str(CONFIG_ROOT / model / f"{size}.yaml"), *common, *extra]
        run([*args, "--trainer.default_root_dir", str(tmp_path / f"{model}-{size}")])
        return f"file://{store}/checkpoints/{model}/{size}"

    stage1 = fit(
        "frame_stage1", "tiny", "--data.init_args.train_sets", f"[{real}]",
        "--trainer.max_steps", "2",
    )  # fmt: skip
    index = json.loads((store / "checkpoints/frame_stage1/tiny/index.json").read_text())
    assert "transformer/config.json" in index["files"]
    stage2 = fit(
        "frame_stage2", "tiny", "--data.init_args.train_sets", f"[{real}]",
        "--model.init_args.image_prior", stage1, "--trainer.max_steps", "2",
    )  # fmt: skip
    ft = fit(
        "frame_stage2", "tiny_synthetic_ft", "--data.init_args.train_sets", f"[{synthetic}]",
        "--model.init_args.init_from", stage2, "--trainer.max_steps", "2",
    )  # fmt: skip
    fit(
        "frame_stage3", "tiny", "--data.init_args.train_sets", f"[{real}]",
        "--model.init_args.teacher", ft, "--trainer.max_steps", "2",
    )  # fmt: skip
    final = load_frame_export(f"file://{store}/checkpoints/frame_stage3/tiny")
    assert final.config["stage"] == 3 and final.config["timesteps"] == [999, 200]
    assert final.config["teacher"] == ft
    ft_export = load_frame_export(ft)
    assert ft_export.config["finetune"] and ft_export.config["init_from"] == stage2
