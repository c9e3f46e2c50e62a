"""AutoencoderModule: loss terms, tiny VAEs learn, Trainer + ClipDataModule + PublishCheckpoint,
pretrained import without training, and the LightningCLI path with the tiny config."""

import math

import lightning as L
import pytest
import torch

from datagen.shards import write_shard_set
from datagen.store import LocalStore
from models.autoencoders import build_image_vae, encode, load_image_vae, load_video_vae
from tests.fixtures.clips import make_clip
from training import cli
from training.callbacks import PublishCheckpoint
from training.data import ClipDataModule
from training.modules.autoencoder import AutoencoderModule, kl_per_value, psnr
from training.publish import publish_directory

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def shard_set(tmp_path):
    """A published set of 4 clips (9 frames, 32×32) in a local store; its manifest URI."""
    store = LocalStore(tmp_path / "data")
    clips = [make_clip(f"vae-{i:04d}", num_frames=9, height=32, width=32, seed=i) for i in range(4)]
    write_shard_set(store, "shards/vae", clips, "test", "vae", progress=False)
    return store.uri("shards/vae/manifest.json")


def smooth_clips(n: int, frames: int, size: int, seed: int = 0) -> torch.Tensor:
    """``[n, F, 3, size, size]`` in [0.1, 0.9]: sinusoids drifting to the right over time."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    shift = 0.03 * torch.arange(frames).view(1, frames, 1, 1, 1)
    freq = 1 + 2 * torch.rand(n, 1, 3, 2, 1, 1, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, 3, 1, 1, generator=g)
    arg = freq[:, :, :, 0] * (xx + shift) + freq[:, :, :, 1] * yy
    return 0.5 + 0.4 * torch.sin(2 * math.pi * arg + phase)


def train_on_fixed_batch(module: AutoencoderModule, x: torch.Tensor, steps: int) -> list[float]:
    optimizer = module.configure_optimizers()
    losses = []
    for _ in range(steps):
        loss = module.loss_terms(x)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_kl_and_psnr():
    zeros = torch.zeros(2, 4, 3, 3)
    assert kl_per_value(zeros, zeros, 100).item() == 0.0
    kl = kl_per_value(torch.ones(2, 4, 3, 3), zeros, 12)  # 0.5 per element, 36 elements
    assert kl.item() == pytest.approx(0.5 * 36 / 12)
    target = torch.full((2, 3, 4, 4), 0.5)
    assert psnr(target + 0.1, target).item() == pytest.approx(20.0, abs=1e-3)


def test_loss_terms_read_the_task_batches():
    torch.manual_seed(0)
    module = AutoencoderModule(kind="image", size="tiny")
    x = smooth_clips(2, 1, 32)[:, 0]
    terms = module.loss_terms(module.pixels({"image": x}))
    assert set(terms) == {"loss", "recon", "kl", "perceptual", "psnr"}
    expected = terms["recon"] + 1e-6 * terms["kl"] + 0.5 * terms["perceptual"]
    torch.testing.assert_close(terms["loss"], expected)
    with pytest.raises(KeyError, match="'frames'"):
        AutoencoderModule(kind="video", size="tiny").pixels({"image": x})
    with pytest.raises(ValueError, match="unknown autoencoder kind"):
        AutoencoderModule(kind="audio")


def test_tiny_image_vae_learns_a_fixed_batch():
    L.seed_everything(0)
    module = AutoencoderModule(kind="image", size="tiny", lr=2e-3)
    losses = train_on_fixed_batch(module, smooth_clips(2, 1, 32)[:, 0], steps=60)
    final = sum(losses[-5:]) / 5
    assert final < 0.4 * losses[0], (losses[0], final)


@pytest.mark.slow
def test_tiny_video_vae_learns_a_fixed_batch():
    L.seed_everything(0)
    module = AutoencoderModule(kind="video", size="tiny", lr=2e-3)
    losses = train_on_fixed_batch(module, smooth_clips(1, 9, 32), steps=60)
    final = sum(losses[-5:]) / 5
    assert final < 0.6 * losses[0], (losses[0], final)


def test_trainer_trains_on_shards_and_publishes_the_video_vae(tmp_path, shard_set):
    L.seed_everything(0)
    module = AutoencoderModule(kind="video", size="tiny", compute_scale_batches=2)
    data = ClipDataModule(
        "video", [shard_set], task_config={"num_frames": 9}, batch_size=2, epoch_batches=2
    )
    store_uri = (tmp_path / "models").as_uri()
    publish = PublishCheckpoint("checkpoints/video_vae/t1", store=store_uri, model_name="vae")
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[publish],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 2
    for name in ("train/loss", "train/recon", "train/kl", "train/perceptual", "train/psnr"):
        assert math.isfinite(float(trainer.callback_metrics[name]))

    store = LocalStore(tmp_path / "models")
    index = store.get_json("checkpoints/video_vae/t1/index.json")
    assert index["kind"] == "video" and index["latent_channels"] == 8
    assert {"config.json", "diffusion_pytorch_model.safetensors"} <= set(index["files"])
    factor = index["scaling_factor"]
    assert factor > 0 and factor == module.vae.config.scaling_factor
    loaded = load_video_vae(tmp_path / "models" / "checkpoints" / "video_vae" / "t1").eval()
    assert loaded.config.scaling_factor == factor
    frames = next(iter(data.train_dataloader()))["frames"][:1]
    with torch.no_grad():
        latents = encode(loaded, frames)
        torch.testing.assert_close(latents, encode(module.vae.eval(), frames), rtol=0, atol=0)
    assert latents.shape == (1, 8, 3, 4, 4)


def test_pretrained_import_keeps_weights_and_scaling_factor(tmp_path, shard_set):
    torch.manual_seed(1)
    source = build_image_vae("tiny", scaling_factor=0.123)
    source.save_pretrained(tmp_path / "export", safe_serialization=True)
    models = LocalStore(tmp_path / "models")
    publish_directory(tmp_path / "export", models, "checkpoints/image_vae/src", {"kind": "image"})
    data = ClipDataModule("image", [shard_set], batch_size=2, epoch_batches=1)

    for pretrained in (
        str(tmp_path / "export"),
        models.uri("checkpoints/image_vae/src"),  # file:// URI of a published folder
    ):
        module = AutoencoderModule(kind="image", size="paper", pretrained=pretrained)
        assert sum(p.numel() for p in module.vae.parameters()) < 2e6  # tiny, not paper size
        publish = PublishCheckpoint("checkpoints/image_vae/out", store=models.uri(""))
        trainer = L.Trainer(
            max_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[publish],
            default_root_dir=tmp_path,
        )
        trainer.fit(module, datamodule=data)
        assert publish.index["scaling_factor"] == 0.123 and publish.index["global_step"] == 0
        out = load_image_vae(tmp_path / "models" / "checkpoints" / "image_vae" / "out")
        for name, tensor in source.state_dict().items():
            assert torch.equal(out.state_dict()[name], tensor), name

    untrained = AutoencoderModule(kind="image", size="tiny")
    trainer = L.Trainer(max_steps=0, logger=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="untrained"):
        trainer.fit(untrained, datamodule=data)


def test_cli_fits_and_publishes_the_tiny_image_vae(tmp_path, shard_set, monkeypatch):
    monkeypatch.setenv("WONDERFORGE_STORE", str(tmp_path / "models"))
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    cli.run(
        [
            "fit",
            "--config",
            str(cli.config_path("image_vae", "tiny")),
            "--data.init_args.train_sets",
            f"[{shard_set}]",
            "--data.init_args.task_config",
            "{frames_per_clip: 2, height: 32, width: 32}",
            "--trainer.max_steps",
            "3",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.callbacks.init_args.prefix",
            "checkpoints/image_vae/cli",
        ]
    )
    store = LocalStore(tmp_path / "models")
    index = store.get_json("checkpoints/image_vae/cli/index.json")
    assert index["global_step"] == 3 and index["kind"] == "image"
    assert index["scaling_factor"] > 0 and index["latent_channels"] == 4
    assert "run_config.yaml" in index["files"] and "train/loss" in index["metrics"]
    vae = load_image_vae(tmp_path / "models" / "checkpoints" / "image_vae" / "cli")
    assert vae.config.scaling_factor == index["scaling_factor"]


@pytest.mark.parametrize("model", ["video_vae", "image_vae"])
@pytest.mark.parametrize("size", ["tiny", "small", "paper"])
def test_configs_parse(model, size, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["fit", "--config", str(cli.config_path(model, size)), "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "training.modules.autoencoder.AutoencoderModule" in printed
    assert f"size: {size}" in printed and "PublishCheckpoint" in printed
