"""CameraVideoModule: loss falls, trains only the camera parts, export -> load, sampling to
files, configs."""

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import lightning as L
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from datagen.camera_formats import CameraSet, write_realestate10k
from datagen.video_io import read_mp4
from models.geometry import plucker_rays
from training.callbacks import PublishCheckpoint
from training.cli import config_path
from training.modules.video_model import (
    CameraVideoModule,
    generate_video,
    main,
    trajectory_cameras,
)

S = 32  # pixels; 9 frames -> latents 3 x 4 x 4, 12 video tokens
GOLDEN_RE10K = Path(__file__).resolve().parents[1] / "data" / "golden" / "cameras" / "re10k.txt"


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_kwargs(**overrides) -> dict:
    """The tiny YAML's model arguments at 32x32 (same architecture, smaller frames)."""
    cfg = yaml.safe_load(config_path("camera_video_model", "tiny").read_text())
    kwargs = cfg["model"]["init_args"]
    kwargs["base_config"].update(sample_width=S // 8, sample_height=S // 8)
    kwargs["vae"].update(sample_width=S, sample_height=S)
    kwargs.update(overrides)
    return kwargs


def make_module(seed: int = 0, **overrides) -> CameraVideoModule:
    torch.manual_seed(seed)
    return CameraVideoModule(**tiny_kwargs(**overrides))


def camera_batch(B: int = 2, F: int = 9, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[S * 1.0, 0, S / 2], [0, S * 1.0, S / 2], [0, 0, 1]]).expand(B, F, 3, 3)
    c2w = torch.eye(4).repeat(B, F, 1, 1)
    c2w[:, :, 0, 3] = torch.linspace(0, 1, F)
    c2w[B - 1, :, 2, 3] = torch.linspace(0, 0.5, F)
    return {
        "frames": torch.rand(B, F, 3, S, S, generator=g),
        "K": K,
        "c2w": c2w,
        "plucker": plucker_rays(K, c2w, S, S),
        "caption": ["a kitchen", "a garden"][:B],
    }


def test_loss_falls_on_a_fixed_batch():
    module = make_module(caption_dropout=0.0, image_dropout=0.0, lr=1e-3)
    batch = camera_batch()
    batch["latents"] = torch.randn(
        2, 8, 3, S // 8, S // 8, generator=torch.Generator().manual_seed(1)
    )
    t, noise = torch.tensor([300, 700]), torch.randn_like(batch["latents"])
    opt = module.configure_optimizers()
    frozen = {k: v.clone() for k, v in module.model.base.state_dict().items()}
    module.train()
    losses = []
    for _ in range(80):
        loss = module.diffusion_loss(batch, timesteps=t, noise=noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    for k, v in module.model.base.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in module.model.trainable_parameters())


def test_loss_from_frames_uses_the_vae_and_captions():
    module = make_module()
    module.train()
    loss = module.diffusion_loss(camera_batch())
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is None for p in module.vae.parameters())
    assert all(p.grad is None for p in module.text_encoder.parameters())
    assert module.model.lora_encoder.proj.weight.grad.abs().sum() > 0


class _Repeat(Dataset):
    def __init__(self, batch, n):
        self.batch, self.n = batch, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {k: v[0] for k, v in self.batch.items()}


def _collate(items):
    out = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "caption"}
    out["caption"] = [it["caption"] for it in items]
    return out


def test_fit_with_ema_publishes_an_export_that_loads_to_identical_outputs(tmp_path):
    module = make_module(ema_decay=0.5, lr=1e-2)
    loader = DataLoader(_Repeat(camera_batch(B=1), 4), batch_size=2, collate_fn=_collate)
    store_dir = tmp_path / "store"
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[PublishCheckpoint("checkpoints/cvm", store=f"file://{store_dir}")],
    )
    trainer.fit(module, loader)
    assert "train/loss" in trainer.callback_metrics
    index = json.loads((store_dir / "checkpoints/cvm/index.json").read_text())
    assert {"camera_control.safetensors", "config.json", "base/config.json"} <= set(index["files"])
    assert index["mode"] == "dual" and index["trainable_parameters"] > 0

    export = tmp_path / "export"
    shutil.copytree(store_dir / "checkpoints/cvm", export)
    loaded = CameraVideoModule.load(export)
    x = camera_batch(B=1, seed=3)
    lat = torch.randn(1, 8, 3, S // 8, S // 8)
    args = (lat, lat, torch.randn(1, 16, 32), torch.tensor([500]))
    module.eval()
    with torch.no_grad():
        with module.ema_weights():
            expected = module.model(*args, plucker=x["plucker"])
        raw = module.model(*args, plucker=x["plucker"])
        got = loaded.model(*args, plucker=x["plucker"])
        assert torch.equal(got, expected)
        assert not torch.equal(raw, expected)  # the export holds the EMA, not the last step
        assert torch.equal(loaded.text_encoder(["a hall"]), module.text_encoder(["a hall"]))
    with pytest.raises(KeyError, match="mismatch"):
        loaded.model.load_trainable_state_dict({})

    # the sampling entry point on the published export: image file + RealEstate10K file
    K, c2w = trajectory_cameras("truck", 9, S, S)
    cams = CameraSet([str(i) for i in range(9)], K.double().numpy(), c2w.double().numpy(), S, S)
    write_realestate10k(cams, tmp_path / "path.txt")
    iio.imwrite(tmp_path / "image.png", (torch.rand(S, S, 3) * 255).to(torch.uint8).numpy())
    main(
        [
            "--checkpoint",
            str(export),
            "--image",
            str(tmp_path / "image.png"),
            "--trajectory",
            str(tmp_path / "path.txt"),
            "--out",
            str(tmp_path / "sample"),
            "--height",
            str(S),
            "--width",
            str(S),
            "--num-frames",
            "9",
            "--steps",
            "2",
        ]
    )
    assert read_mp4(tmp_path / "sample" / "video.mp4").shape == (9, S, S, 3)
    meta = json.loads((tmp_path / "sample" / "meta.json").read_text())
    torch.testing.assert_close(torch.tensor(meta["c2w"]), c2w, atol=1e-5, rtol=0)


def test_lightning_checkpoint_leaves_out_path_loaded_frozen_weights(tmp_path):
    module = make_module()
    module._sources["base"] = "/pretend/CogVideoX"  # as if loaded from a path
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    keys = set(ckpt["state_dict"])
    assert not any(k.startswith("model.base.") for k in keys)
    assert {f"model.{k}" for k in module.model.trainable_state_dict()} <= keys


def test_generate_video_from_template_and_realestate10k(tmp_path):
    module = make_module().eval()
    with torch.no_grad():
        for p in module.model.trainable_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    image = torch.rand(3, S, S)
    paths = generate_video(
        module, image, "forward_dolly", tmp_path / "tpl", prompt="a room", num_frames=9, steps=2
    )
    assert read_mp4(paths["video"]).shape == (9, S, S, 3)
    from safetensors.torch import load_file

    assert load_file(paths["latents"])["latents"].shape == (8, 3, S // 8, S // 8)
    meta = json.loads(paths["meta"].read_text())
    assert meta["num_frames"] == 9 and len(meta["c2w"]) == 9

    K, c2w = trajectory_cameras(str(GOLDEN_RE10K), 1, S, S)
    assert K.shape == (1, 3, 3) and c2w.shape == (1, 4, 4)
    with pytest.raises(ValueError, match="need 9"):
        trajectory_cameras(str(GOLDEN_RE10K), 9, S, S)
    with pytest.raises(ValueError, match="unknown template"):
        trajectory_cameras("spiral", 9, S, S)


def test_configs_carry_the_paper_numbers():
    cfgs = {
        s: yaml.safe_load(config_path("camera_video_model", s).read_text())
        for s in ("tiny", "small", "paper")
    }
    paper = cfgs["paper"]
    control = paper["model"]["init_args"]["control"]
    assert control == {
        **control,
        "mode": "dual",
        "num_ctrl_blocks": 21,
        "lora_rank": 256,
        "with_weight_copy": True,
    }
    task = paper["data"]["init_args"]["task_config"]
    assert (task["num_frames"], task["height"], task["width"]) == (49, 480, 720)
    per_gpu = paper["data"]["init_args"]["batch_size"]
    assert per_gpu * paper["trainer"]["devices"] == 24
    assert paper["trainer"]["max_steps"] == 40_000
    assert cfgs["small"]["trainer"]["devices"] == 1
    tiny = cfgs["tiny"]["model"]["init_args"]["base_config"]
    assert tiny["attention_head_dim"] >= 16 and tiny["num_layers"] <= 4


@pytest.mark.parametrize("size", ["tiny", "small", "paper"])
def test_configs_validate_with_print_config(size, capsys, monkeypatch):
    from training.cli import run

    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    with pytest.raises(SystemExit) as done:
        run(["fit", "--config", str(config_path("camera_video_model", size)), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "training.modules.video_model.CameraVideoModule"


def test_tiny_config_instantiates_through_the_cli(monkeypatch):
    from training.cli import run

    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    cli = run(["--config", str(config_path("camera_video_model", "tiny"))], run=False)
    assert isinstance(cli.model, CameraVideoModule)
    assert len(cli.model.model.ctrl_blocks) == 2 and cli.model.model.lora.targets
