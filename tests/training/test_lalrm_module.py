"""LaLRMModule: loss falls on a fixed batch, export -> load gives identical outputs, Lightning fit
on shards (stage 1 through ClipDataModule, stage 2 through MixedClipDataModule with generated
clips), VGG-19 perceptual option, configs."""

import dataclasses
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from datagen.clips import Provenance
from datagen.shards import write_shard_set
from datagen.store import LocalStore
from models.autoencoders import build_video_vae, encode
from models.lalrm import vgg19_features
from tests.fixtures.clips import make_clip
from training import cli
from training.callbacks import PublishCheckpoint
from training.data import ClipDataModule, LaLRMTaskConfig, collate, lalrm_sample
from training.data.mixed import MixedClipDataModule, interleave
from training.modules.lalrm import LaLRMModule, stage_upsample

S = 32  # pixels: latents 4x4 -> 2x2 tokens per latent frame


pytestmark = pytest.mark.usefixtures("one_thread")


def smooth_clip(key: str, frames: int = 16, size: int = S, seed: int = 0, latents=None):
    """make_clip's cameras with smooth sinusoid frames drifting right (uint8), no extras."""
    clip = make_clip(key, num_frames=frames, height=size, width=size, seed=seed, with_extras=False)
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    freq, phase = rng.uniform(1, 3, (3, 2)), rng.uniform(0, 2 * np.pi, 3)
    rgb = np.stack(
        [
            np.stack(
                [
                    0.5 + 0.4 * np.sin(2 * np.pi * (f[0] * (xx + 0.02 * t) + f[1] * yy) + ph)
                    for f, ph in zip(freq, phase)
                ],
                axis=-1,
            )
            for t in range(frames)
        ]
    )
    clip = dataclasses.replace(clip, rgb=(rgb * 255).round().astype(np.uint8))
    if latents is not None:
        provenance = Provenance(source_kind="generated", scene_id=key, generator_checkpoint="t")
        clip = dataclasses.replace(clip, latents=latents, vae_id="tiny", provenance=provenance)
    return clip


def fixed_batch(num_context=5, num_seen=1, num_unseen=1, clips=1) -> dict:
    cfg = LaLRMTaskConfig(
        num_context=num_context,
        stride=1,
        num_seen=num_seen,
        num_unseen=num_unseen,
        random_start=False,
    )
    rng = np.random.default_rng(0)
    return collate([lalrm_sample(smooth_clip(f"c{i}", seed=i), rng, cfg) for i in range(clips)])


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory) -> Path:
    """A saved random tiny video VAE (8 latent channels)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "video_vae"
    build_video_vae("tiny").save_pretrained(path, safe_serialization=True)
    return path


def trainer(tmp_path, steps: int, callbacks=()) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
    )


def test_loss_falls_on_a_fixed_batch():
    """40 AdamW steps on one clip (5 context frames, 1 seen + 1 unseen view at 32x32)."""
    torch.manual_seed(0)
    module = LaLRMModule(size="tiny", vae={"size": "tiny"}, lr=1e-3, weight_decay=0.0)
    batch = fixed_batch()
    with torch.no_grad():
        batch["latents"] = module.latents(batch)
    opt = module.configure_optimizers()
    module.train()
    losses = []
    for _ in range(40):
        terms = module.loss_terms(batch)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(terms["loss"].item())
    assert all(math.isfinite(x) for x in losses)
    final = sum(losses[-3:]) / 3
    assert final < 0.5 * losses[0], (losses[0], final)
    assert terms["psnr_seen"] > 12 and "psnr_unseen" in terms


def test_loss_ignores_padded_views_and_reports_seen_unseen():
    torch.manual_seed(0)
    module = LaLRMModule(size="tiny", vae={"size": "tiny"}, perceptual="none").eval()
    batch = fixed_batch(num_seen=1, num_unseen=2)
    with torch.no_grad():
        terms = module.loss_terms(batch)
        # corrupting a padded slot's target changes nothing
        batch["sup_valid"][0, 2] = False
        before = module.loss_terms(batch)["mse"]
        batch["sup"][0, 2] = 1.0 - batch["sup"][0, 2]
        after = module.loss_terms(batch)["mse"]
    assert set(terms) >= {"loss", "mse", "perceptual", "psnr_seen", "psnr_unseen"}
    torch.testing.assert_close(before, after)
    assert terms["perceptual"] == 0 and terms["loss"] == terms["mse"]


def test_export_then_load_gives_identical_outputs(tmp_path, vae_dir):
    torch.manual_seed(0)
    module = LaLRMModule(size="tiny", vae=str(vae_dir)).eval()
    with torch.no_grad():  # move away from the initialisation
        for p in module.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    info = module.export_pretrained(tmp_path / "export")
    assert info["stage"] == 1 and info["upsample"] == 16 and info["parameters"] > 0
    assert {p.name for p in (tmp_path / "export").iterdir()} == {"lalrm.safetensors", "config.json"}
    loaded = LaLRMModule.load(tmp_path / "export")
    assert loaded.vae_path == str(vae_dir)
    batch = fixed_batch(num_context=9, num_seen=2, num_unseen=2)
    with torch.no_grad():
        a, b = module.gaussians(batch), loaded.gaussians(batch)
        for key in ("map", "means", "scales", "quats", "opacities", "colors"):
            assert torch.equal(a[key], b[key]), key
        assert torch.equal(module.render(batch, a).rgb, loaded.render(batch, b).rgb)


def test_random_vae_is_exported_beside_the_weights(tmp_path):
    torch.manual_seed(0)
    module = LaLRMModule(size="tiny", vae={"size": "tiny"}).eval()
    module.export_pretrained(tmp_path / "export")
    assert (tmp_path / "export" / "vae" / "config.json").is_file()
    loaded = LaLRMModule.load(tmp_path / "export")
    batch = fixed_batch()
    torch.testing.assert_close(loaded.latents(batch), module.latents(batch), rtol=0, atol=0)


def test_stage2_starts_from_the_stage1_export(tmp_path):
    assert stage_upsample(1, 2) == 16 and stage_upsample(2, 2) == 8
    torch.manual_seed(0)
    stage1 = LaLRMModule(size="tiny", vae={"size": "tiny"})
    stage1.export_pretrained(tmp_path / "s1")
    stage2 = LaLRMModule(size="tiny", stage=2, init_from=str(tmp_path / "s1"))
    assert stage2.model.config.upsample == 8
    w1 = stage1.model.state_dict()
    for name, value in stage2.model.state_dict().items():
        if name != "decoder.deconv.weight":
            assert torch.equal(value, w1[name]), name
    assert stage2.model.decoder.deconv.weight.shape[-2:] == (8, 8)
    # a published (file://) export works too
    uri = LocalStore(tmp_path / "store")
    from training.publish import publish_directory

    publish_directory(tmp_path / "s1", uri, "checkpoints/lalrm/s1", {})
    again = LaLRMModule(size="tiny", stage=2, init_from=uri.uri("checkpoints/lalrm/s1"))
    assert torch.equal(again.model.decoder.deconv.weight, stage2.model.decoder.deconv.weight)


def test_vgg19_perceptual_option_reads_local_safetensors(tmp_path):
    torch.manual_seed(0)
    features = vgg19_features(31)
    state = {f"features.{k}": 0.05 * torch.randn_like(v) for k, v in features.state_dict().items()}
    save_file(state, tmp_path / "vgg19.safetensors")
    with pytest.raises(ValueError, match="vgg19_weights"):
        LaLRMModule(size="tiny", perceptual="vgg19")
    module = LaLRMModule(
        size="tiny",
        vae={"size": "tiny"},
        perceptual="vgg19",
        vgg19_weights=str(tmp_path / "vgg19.safetensors"),
    )
    assert torch.equal(module.perceptual.features[0].weight, state["features.0.weight"])
    terms = module.loss_terms(fixed_batch())
    assert terms["perceptual"] > 0 and torch.isfinite(terms["loss"])
    terms["loss"].backward()
    assert module.model.tokenizer.latent.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in module.perceptual.parameters())
    # Lightning checkpoints leave out the VGG weights
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert not any(k.startswith("perceptual.") for k in checkpoint["state_dict"])


# ---- shards: stage 1 (ClipDataModule) and stage 2 (MixedClipDataModule) -------------------------


@pytest.fixture(scope="module")
def shard_sets(tmp_path_factory, vae_dir):
    """Benchmark-style clips (16 frames, no latents) and generated clips (9 frames with latents
    of the tiny VAE); their manifest URIs."""
    root = tmp_path_factory.mktemp("shards")
    store = LocalStore(root)
    bench = [make_clip(f"bench-{i:04d}", 16, S, S, seed=i, with_extras=False) for i in range(4)]
    write_shard_set(store, "shards/bench", bench, "test", "bench", progress=False)
    from models.autoencoders import load_video_vae

    vae = load_video_vae(vae_dir).eval()
    generated = []
    for i in range(2):
        clip = smooth_clip(f"gen-{i:04d}", frames=9, seed=10 + i)
        frames = torch.from_numpy(clip.rgb).permute(0, 3, 1, 2).float()[None] / 255
        with torch.no_grad():
            latents = encode(vae, frames)[0].numpy()
        generated.append(smooth_clip(f"gen-{i:04d}", frames=9, seed=10 + i, latents=latents))
    write_shard_set(store, "shards/gen", generated, "test", "gen", progress=False)
    return store.uri("shards/bench/manifest.json"), store.uri("shards/gen/manifest.json")


LALRM_TASK = {"num_context": 9, "stride": 1, "num_seen": 2, "num_unseen": 2}
GEN_TASK = {"num_context": 9, "stride": 1, "num_seen": 4, "num_unseen": 0}


def test_fit_on_shards_publishes_an_export(tmp_path, shard_sets, vae_dir):
    L.seed_everything(0)
    bench, _ = shard_sets
    module = LaLRMModule(size="tiny", vae=str(vae_dir), warmup_steps=1)
    data = ClipDataModule("lalrm", [bench], task_config=LALRM_TASK, batch_size=1, epoch_batches=2)
    store_uri = (tmp_path / "models").as_uri()
    publish = PublishCheckpoint("checkpoints/lalrm/t1", store=store_uri, model_name="lalrm")
    fit = trainer(tmp_path, 3, [publish])
    fit.fit(module, datamodule=data)
    assert fit.global_step == 3  # two epochs of 2 batches
    for name in (
        "train/loss",
        "train/mse",
        "train/perceptual",
        "train/psnr_seen",
        "train/psnr_unseen",
    ):
        assert math.isfinite(float(fit.callback_metrics[name])), name
    index = LocalStore(tmp_path / "models").get_json("checkpoints/lalrm/t1/index.json")
    assert {"lalrm.safetensors", "config.json"} <= set(index["files"])
    assert index["stage"] == 1 and index["global_step"] == 3
    loaded = LaLRMModule.load(tmp_path / "models" / "checkpoints" / "lalrm" / "t1")
    for name, value in module.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value), name


def test_mixed_datamodule_interleaves_by_ratio_deterministically(shard_sets):
    bench, gen = shard_sets

    def keys_of_epoch(seed: int) -> list[bool]:
        data = MixedClipDataModule(
            "lalrm",
            [bench],
            [gen],
            mix_ratio=0.25,
            task_config=LALRM_TASK,
            mix_task_config=GEN_TASK,
            batch_size=1,
            epoch_batches=8,
            seed=seed,
        )
        assert data.split() == (6, 2) and data.batches_per_rank() == 8
        assert set(data.dataset_summary().values()) == {4, 2}
        batches = list(data.train_dataloader())
        assert len(batches) == 8
        for b in batches:  # generated batches carry latents and their own view count
            assert ("latents" in b) == b["key"][0].startswith("gen")
            assert b["sup"].shape[1] == 4
        return [("latents" in b) for b in batches]

    first = keys_of_epoch(0)
    assert sum(first) == 2 and first == keys_of_epoch(0)
    assert list(interleave(iter("ab"), iter("X"), 2, 1, __import__("random").Random(0))) in (
        ["a", "b", "X"],
        ["a", "X", "b"],
        ["X", "a", "b"],
    )
    with pytest.raises(ValueError, match="mix_ratio"):
        MixedClipDataModule("lalrm", [bench], [gen], mix_ratio=1.5)


def test_stage2_fit_on_mixed_shards(tmp_path, shard_sets, vae_dir):
    L.seed_everything(0)
    bench, gen = shard_sets
    module = LaLRMModule(size="tiny", stage=2, vae=str(vae_dir))
    data = MixedClipDataModule(
        "lalrm",
        [bench],
        [gen],
        mix_ratio=0.5,
        task_config=LALRM_TASK,
        mix_task_config=GEN_TASK,
        batch_size=1,
        epoch_batches=2,
    )
    fit = trainer(tmp_path, 2)
    fit.fit(module, datamodule=data)
    assert fit.global_step == 2 and math.isfinite(float(fit.callback_metrics["train/loss"]))


def test_lalrm_task_resizes_frames_and_intrinsics():
    clip = smooth_clip("c0")
    cfg = LaLRMTaskConfig(num_context=5, num_seen=2, num_unseen=2, height=16, width=16)
    sample = lalrm_sample(clip, np.random.default_rng(0), cfg)
    assert sample["context"].shape == (5, 3, 16, 16) and sample["sup"].shape == (4, 3, 16, 16)
    assert sample["context_plucker"].shape == (5, 6, 16, 16)
    torch.testing.assert_close(
        sample["context_K"][0, 0, 0], torch.tensor(float(clip.K[0, 0, 0]) / 2)
    )
    latent_clip = smooth_clip("g0", frames=9, latents=np.zeros((8, 3, 4, 4), np.float32))
    cfg = LaLRMTaskConfig(num_context=9, stride=1, num_seen=2, num_unseen=0, height=16)
    with pytest.raises(ValueError, match="misalign"):
        lalrm_sample(latent_clip, np.random.default_rng(0), cfg)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_module_bf16_step_with_gsplat():
    from models.render.gaussians import resolve_backend

    if resolve_backend("auto", torch.device("cuda")) != "gsplat":
        pytest.skip("gsplat's CUDA extension is not available")
    torch.manual_seed(0)
    module = (
        LaLRMModule(
            size="tiny",
            vae={"size": "tiny"},
            model={"gradient_checkpointing": True},
            render_backend="gsplat",
        )
        .cuda()
        .train()
    )
    batch = {
        k: v.cuda() if torch.is_tensor(v) else v
        for k, v in fixed_batch(num_context=9, num_seen=2, num_unseen=2, clips=2).items()
    }
    with torch.autocast("cuda", dtype=torch.bfloat16):
        terms = module.loss_terms(batch)
    assert torch.isfinite(terms["loss"]) and terms["psnr_unseen"] > 0
    terms["loss"].backward()
    grads = [p.grad for p in module.model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# ---- configs ---------------------------------------------------------------------------------

CONFIGS = ["tiny", "tiny_stage2", "small", "small_stage2", "paper", "paper_stage2"]


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_parse_with_print_config(name, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    with pytest.raises(SystemExit) as done:
        cli.run(["fit", "--config", str(cli.config_path("lalrm", name)), "--print_config"])
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "training.modules.lalrm.LaLRMModule"
    stage = 2 if name.endswith("stage2") else 1
    assert printed["model"]["init_args"]["stage"] == stage
    data = printed["data"]
    if stage == 2:
        assert data["class_path"] == "training.data.mixed.MixedClipDataModule"
        assert 0 < data["init_args"]["mix_ratio"] < 1
    else:
        assert data["init_args"]["task"] == "lalrm"


def test_tiny_config_instantiates_through_the_cli(monkeypatch):
    monkeypatch.setattr("sys.argv", ["wonderforge-train"])
    built = cli.run(["--config", str(cli.config_path("lalrm", "tiny"))], run=False)
    assert isinstance(built.model, LaLRMModule) and built.model.vae is not None
    assert built.model.model.config.upsample == 16 and len(built.model.model.blocks) == 2


def test_paper_configs_carry_the_paper_numbers():
    def load(name):
        return yaml.safe_load(cli.config_path("lalrm", name).read_text())

    for name, steps, size in (
        ("paper", 200_000, (256, 384)),
        ("paper_stage2", 100_000, (480, 720)),
    ):
        cfg = load(name)
        model = cfg["model"]["init_args"]
        assert model["size"] == "paper" and model["model"]["gradient_checkpointing"]
        assert model["perceptual"] == "vgg19"
        task = cfg["data"]["init_args"]["task_config"]
        assert task["num_context"] == 49 and task["num_unseen"] == 24
        assert (task["height"], task["width"]) == size
        per_gpu = cfg["data"]["init_args"]["batch_size"]
        assert per_gpu * cfg["trainer"]["devices"] == 24
        assert cfg["trainer"]["max_steps"] == steps
        assert cfg["trainer"]["precision"] == "bf16-mixed"
    from models.lalrm import lalrm_config

    paper = lalrm_config("paper")
    assert (paper.depth, paper.width, paper.latent_channels) == (24, 1024, 16)
    assert paper.plucker_patch == (4, 16, 16)
    assert stage_upsample(2, paper.latent_patch) == 8
    # stage 2: 49 x 240 x 360 Gaussians per scene (D.2: 4,233,600)
    Hm, Wm = lalrm_config("paper", upsample=8).map_size(480, 720)
    assert 49 * Hm * Wm == 4_233_600
    tiny = load("tiny")["model"]["init_args"]
    assert lalrm_config(tiny["size"]).latent_channels == 8
