"""Smoke tests of published checkpoints: load the folder and run one forward pass, per model.

`smoke_test(model, folder)` looks the model up in a registry of functions
`(folder, device) -> {name: number}` that load a published (downloaded, verified) checkpoint
folder, run one small deterministic forward pass and return finite numbers describing it;
anything non-finite or any exception means the checkpoint is broken. The checkpoint asset checks
(assets/checkpoint_checks.py) call it.

Registered now: image_vae, video_vae, camera_video_model, lalrm_stage1, lalrm_stage2,
frame_stage1, frame_stage2, frame_synthetic_ft, frame_stage3. Other models register theirs with

    @register("my_model")
    def _my_model(folder: Path, device: torch.device) -> dict[str, float]: ...

either here or in a module listed in `PLUGIN_MODULES` (imported on first lookup), so that this
module stays light to import.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from pathlib import Path

import torch

SmokeFn = Callable[[Path, torch.device], dict[str, float]]
_REGISTRY: dict[str, SmokeFn] = {}
PLUGIN_MODULES: list[str] = []  # modules that call `register` for their models
SIZE = 64  # pixels per side of the smoke inputs (a multiple of 8 for the VAEs)


def register(model: str) -> Callable[[SmokeFn], SmokeFn]:
    """Decorator: `fn(folder, device) -> {name: number}` is the smoke test of `model`."""

    def decorate(fn: SmokeFn) -> SmokeFn:
        _REGISTRY[model] = fn
        return fn

    return decorate


def _load_plugins() -> None:
    for name in PLUGIN_MODULES:
        importlib.import_module(name)


def registered() -> list[str]:
    """Models with a smoke test."""
    _load_plugins()
    return sorted(_REGISTRY)


def has_smoke_test(model: str) -> bool:
    return model in registered()


def smoke_test(model: str, folder: str | Path, device: str | torch.device | None = None) -> dict:
    """Load the published folder of `model` and run one forward pass; returns its numbers.

    device: default the first CUDA device when there is one, else the CPU (one thread).
    Raises KeyError for a model without a smoke test, ValueError when an output is not finite."""
    _load_plugins()
    if model not in _REGISTRY:
        raise KeyError(f"no smoke test registered for {model!r}; registered: {sorted(_REGISTRY)}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            torch.manual_seed(0)  # noise draws inside forward passes are reproducible
            result = _REGISTRY[model](Path(folder), device)
    finally:
        torch.set_num_threads(threads)
    bad = {k: v for k, v in result.items() if not math.isfinite(float(v))}
    if bad:
        raise ValueError(f"{model} forward pass on {folder} produced non-finite values: {bad}")
    return result


def probe_frames(num_frames: int, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """Deterministic smooth frames ``[1, F, 3, size, size]`` in [0, 1]: moving colour ramps."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(3, generator=g) * 2 * math.pi
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    frames = []
    for f in range(num_frames):
        shift = f / max(1, num_frames)
        channels = [0.5 + 0.4 * torch.sin(6 * (x + shift) + 4 * y + p) for p in phase]
        frames.append(torch.stack(channels))
    return torch.stack(frames)[None].clamp(0, 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).pow(2).mean().clamp_min(1e-10)
    return float(-10 * torch.log10(mse))


def _vae_roundtrip(vae: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    from models.autoencoders import decode, encode

    latents = encode(vae, x)
    recon = decode(vae, latents)
    if recon.shape != x.shape:
        raise ValueError(f"reconstruction shape {tuple(recon.shape)} != input {tuple(x.shape)}")
    return {
        "latent_std": float(latents.float().std()),
        "latent_elements": float(latents.numel()),
        "psnr": _psnr(recon, x),
    }


@register("image_vae")
def _image_vae(folder: Path, device: torch.device) -> dict[str, float]:
    """Encode + decode one 64×64 image ``[1, 3, 64, 64]``."""
    from models.autoencoders import load_image_vae

    vae = load_image_vae(folder).to(device).eval()
    return _vae_roundtrip(vae, probe_frames(1)[:, 0].to(device))


@register("video_vae")
def _video_vae(folder: Path, device: torch.device) -> dict[str, float]:
    """Encode + decode one 9-frame 64×64 clip ``[1, 9, 3, 64, 64]`` (latents ``[1, C, 3, 8, 8]``)."""
    from models.autoencoders import load_video_vae

    vae = load_video_vae(folder).to(device).eval()
    return _vae_roundtrip(vae, probe_frames(9).to(device))


def _orbit_cameras(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``K [1, n, 3, 3]`` (60° FOV) and ``c2w [1, n, 4, 4]`` sliding sideways along +x."""
    f = 0.5 * size / math.tan(math.radians(30))
    K = torch.tensor([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])
    c2w = torch.eye(4).repeat(n, 1, 1)
    c2w[:, 0, 3] = torch.linspace(0, 0.5, n)
    return K.expand(1, n, 3, 3).clone(), c2w[None]


@register("camera_video_model")
def _camera_video_model(folder: Path, device: torch.device) -> dict[str, float]:
    """The v-prediction loss of one clip at t = 500 (frames from the base's sample size, or
    random latents / text embeddings when the export has no VAE / text encoder)."""
    from models.autoencoders import latent_num_frames
    from training.modules.video_model import CameraVideoModule

    module = CameraVideoModule.load(folder, map_location=device)
    base = module.model.base.config
    frames = int(base.sample_frames)
    size = int(base.sample_height) * 8
    g = torch.Generator().manual_seed(0)
    batch: dict = {}
    K, c2w = _orbit_cameras(frames, size)
    batch["K"], batch["c2w"] = K.to(device), c2w.to(device)
    if module.vae is not None:
        batch["frames"] = probe_frames(frames, size).to(device)
    else:
        channels = int(base.in_channels) // 2
        shape = (
            1,
            channels,
            latent_num_frames(frames),
            int(base.sample_height),
            int(base.sample_width),
        )
        batch["latents"] = torch.randn(shape, generator=g).to(device)
    if module.text_encoder is not None:
        batch["caption"] = ["a quiet street"]
    else:
        shape = (1, int(base.max_text_seq_length), int(base.text_embed_dim))
        batch["text_embeds"] = torch.randn(shape, generator=g).to(device)
    module.eval()
    loss = module.diffusion_loss(batch, timesteps=torch.tensor([500]))
    trainable = sum(p.numel() for p in module.model.trainable_parameters())
    return {"loss_t500": float(loss), "trainable_parameters": float(trainable)}


# ---- shape and finiteness checks of the forward passes below ---------------------------------


def _require(folder: Path, name: str, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``x`` when it has ``shape`` and only finite values; else a ValueError naming ``folder``."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{folder}: {name} has shape {tuple(x.shape)}, expected {tuple(shape)}")
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"{folder}: {name} has {bad} non-finite values of {x.numel()}")
    return x


def _parameters(module: torch.nn.Module) -> float:
    return float(sum(p.numel() for p in module.parameters()))


# ---- LaLRM (training/modules/lalrm.py) --------------------------------------------------------

LALRM_KEYS = {"means": 3, "quats": 4, "scales": 3, "opacities": 0, "colors": 3}


def _lalrm(folder: Path, device: torch.device, stage: int) -> dict[str, float]:
    """Gaussians of random latents ``[1, C, 2, 2p, 2p]`` (5 frames of ``16p x 16p`` pixels) with
    sliding cameras: N = 5·Hm·Wm finite Gaussians (means, quats, scales, opacities, colors)."""
    from models.lalrm import reconstruct
    from training.evaluation.lalrm import vae_fallback
    from training.modules.lalrm import LaLRMModule

    module = LaLRMModule.load(folder, map_location=device, vae=vae_fallback(folder))
    if module.hparams.stage != stage:
        raise ValueError(f"{folder}: a stage-{module.hparams.stage} LaLRM export, expected {stage}")
    c = module.model.config
    h = w = 2 * c.latent_patch
    latent_frames = 2
    frames = c.temporal_compression * (latent_frames - 1) + 1
    H, W = h * c.spatial_compression, w * c.spatial_compression
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, c.latent_channels, latent_frames, h, w, generator=g).to(device)
    K, c2w = _orbit_cameras(frames, H)
    gaussians = reconstruct(module.model, latents, K.to(device), c2w.to(device))
    Hm, Wm = c.map_size(H, W)
    n = frames * Hm * Wm
    for key, channels in LALRM_KEYS.items():
        _require(
            folder, f"gaussians[{key!r}]", gaussians[key], (1, n, channels) if channels else (1, n)
        )
    return {
        "gaussians": float(n),
        "opacity_mean": float(gaussians["opacities"].mean()),
        "distance_mean": float(gaussians["distances"].mean()),
        "scale_mean": float(gaussians["scales"].mean()),
        "color_std": float(gaussians["colors"].std()),
        "vae_loaded": float(module.vae is not None),
        "parameters": _parameters(module.model),
    }


@register("lalrm_stage1")
def _lalrm_stage1(folder: Path, device: torch.device) -> dict[str, float]:
    """LaLRM stage 1: see ``_lalrm``."""
    return _lalrm(folder, device, stage=1)


@register("lalrm_stage2")
def _lalrm_stage2(folder: Path, device: torch.device) -> dict[str, float]:
    """LaLRM stage 2: see ``_lalrm``."""
    return _lalrm(folder, device, stage=2)


# ---- frame model (training/modules/frame_stage1.py, frame_stage2.py, frame_stage3.py) -----------

T_PROBE = 500  # the timestep of the one-prediction smoke tests


def _eps_probe(folder: Path, schedule, predict, shape: tuple[int, ...], device) -> dict[str, float]:
    """ε̂ of ``predict(x_t, t)`` at ``t = 500`` for a random latent ``x0`` of ``shape`` and its
    noise; returns its MSE against that noise and its std."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=g).to(device)
    noise = torch.randn(shape, generator=g).to(device)
    t = torch.full((shape[0],), T_PROBE, dtype=torch.long, device=device)
    x_t = schedule.add_noise(x0, noise, t)
    eps = _require(
        folder, "eps prediction", schedule.to_eps(x_t, predict(x_t, t), t).float(), shape
    )
    return {
        "eps_mse_t500": float((eps - noise).pow(2).mean()),
        "eps_std": float(eps.std()),
    }


@register("frame_stage1")
def _frame_stage1(folder: Path, device: torch.device) -> dict[str, float]:
    """The image prior's ε̂ ``[1, C, s, s]`` (its sample size) at t = 500 for one caption."""
    from training.modules.frame_stage1 import load_image_prior

    prior, _, text_encoder = load_image_prior(folder, map_location=device)
    size = int(prior.transformer.config.sample_size)
    embeds, mask = text_encoder.encode(["a quiet street"])
    out = _eps_probe(
        folder,
        prior.schedule,
        lambda x_t, t: prior(x_t, t, embeds, mask),
        (1, prior.latent_channels, size, size),
        device,
    )
    return {**out, "parameters": _parameters(prior)}


def _frame_condition(dit, device: torch.device):
    """A random ``FrameCondition`` of one target at the DiT's latent size (``[1, C, s, s]``
    anchor and reference latents, 60° FOV cameras 0.5 apart along +x)."""
    from models.frame import FrameCondition

    c = dit.config
    s = int(c.sample_size)
    g = torch.Generator().manual_seed(1)
    anchor, reference = torch.randn(2, 1, int(c.in_channels), s, s, generator=g).to(device)
    K, c2w = _orbit_cameras(2, s * int(c.vae_scale_factor))
    K, c2w = K[0].to(device), c2w[0].to(device)
    return FrameCondition(anchor, reference, K[:1], c2w[1:], K[1:], c2w[:1])


def _frame_export(folder: Path, device: torch.device, stage: int):
    from training.modules.frame_common import load_frame_export

    export = load_frame_export(folder)
    if export.config.get("stage") != stage:
        raise ValueError(
            f"{folder}: a stage-{export.config.get('stage')} frame-model export, expected {stage}"
        )
    export.dit.to(device).eval()
    return export


def _frame_stage2(folder: Path, device: torch.device) -> dict[str, float]:
    """The frame model's ε̂ ``[1, C, s, s]`` at t = 500 for a random condition (stage-II export)."""
    export = _frame_export(folder, device, stage=2)
    dit = export.dit
    cond = _frame_condition(dit, device)
    shape = tuple(cond.reference.shape)
    out = _eps_probe(folder, export.schedule, lambda x_t, t: dit(x_t, t, cond), shape, device)
    return {**out, "parameters": _parameters(dit)}


register("frame_stage2")(_frame_stage2)
register("frame_synthetic_ft")(_frame_stage2)  # the same export format, a finetune of stage II


@register("frame_stage3")
def _frame_stage3(folder: Path, device: torch.device) -> dict[str, float]:
    """The distilled generator's few-step sample ``[1, C, s, s]`` (its own timesteps, e.g.
    999 -> 200) from seeded noise for a random condition."""
    from models.frame import FewStepSampler

    export = _frame_export(folder, device, stage=3)
    if not export.config.get("timesteps"):
        raise ValueError(f"{folder}: the stage-III export records no generator timesteps")
    sampler = FewStepSampler(
        export.schedule, export.config["timesteps"], bool(export.config.get("stochastic", False))
    )
    dit = export.dit
    cond = _frame_condition(dit, device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(tuple(cond.reference.shape), generator=g).to(device)
    for k in range(sampler.num_steps):
        x0, x = sampler.step(dit, x, k, cond)
        _require(folder, f"x0 of generator step {k}", x0.float(), tuple(cond.reference.shape))
    return {
        "steps": float(sampler.num_steps),
        "sample_std": float(x0.float().std()),
        "sample_mean": float(x0.float().mean()),
        "parameters": _parameters(dit),
    }
