"""Training the camera-guided video model (Wonderland §3.2, App. A, D.2) with Lightning.

Objective (the CogVideoX I2V fine-tuning recipe of diffusers' examples): encode the clip with the
frozen VAE (or take ``latents`` from the batch), draw ``t ~ U{0..999}`` and ``ε``, noise with the
CogVideoX DDIM schedule (v-prediction, zero terminal SNR, SNR shift), condition on the first-frame
latent (the image is noised with ``σ = exp(N(-3, 0.5²))`` before encoding and dropped with
probability ``image_dropout``), and regress ``v``. The recipe writes the loss as
``1/(1-ᾱ_t) · ||x̂_0 - x_0||²`` with ``x̂_0`` from the predicted ``v``; that equals ``||v̂ - v||²``
exactly, which is what is computed here (better conditioned in bf16).

Only the camera branches train (camera encoders, ControlNet copies and zero linears, the concat
linear, LoRA); base, VAE and T5 are frozen, may be cast to bf16 (``frozen_dtype``) and are left
out of Lightning checkpoints when they are loaded from paths. ``export_pretrained(dir)`` writes
the camera weights (EMA when enabled) as safetensors + ``config.json``; ``CameraVideoModule.load``
rebuilds from it. ``generate_video`` samples from an image + a RealEstate10K file or a template
path and writes ``video.mp4`` + ``latents.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLCogVideoX
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from lightning.pytorch.strategies import FSDPStrategy
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers.models.t5.modeling_t5 import T5Block

from datagen.video_io import save_video_sample
from models.autoencoders import encode, latent_num_frames
from models.geometry import plucker_rays
from models.video import (
    CameraControlConfig,
    CameraGuidedCogVideoX,
    CameraVideoSampler,
    TextEncoder,
    build_base,
    image_condition_latents,
    load_base,
    make_scheduler,
    pad_image_latents,
)
from models.video.base import base_folder
from training.modules.optim import adamw_with_warmup

WEIGHTS = "camera_control.safetensors"
FORMAT = "wonderforge.camera_video_model"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ParamEMA:
    """Exponential moving average of named parameters (fp32 shadows on the parameters' device)."""

    def __init__(self, named_params, decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().float().clone() for n, p in named_params}

    @torch.no_grad()
    def update(self, named_params) -> None:
        for n, p in named_params:
            self.shadow[n].lerp_(p.detach().float(), 1.0 - self.decay)

    @contextmanager
    def applied(self, named_params):
        """Temporarily copy the averages into the parameters."""
        named_params = list(named_params)
        backup = {n: p.detach().clone() for n, p in named_params}
        with torch.no_grad():
            for n, p in named_params:
                p.copy_(self.shadow[n].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in named_params:
                    p.copy_(backup[n])


def _vae_folder(path: str | Path) -> Path:
    path = Path(path)
    return path / "vae" if (path / "vae" / "config.json").is_file() else path


def _plain(value: Any) -> Any:
    """JSON-able copy of a (diffusers FrozenDict) config."""
    return json.loads(
        json.dumps(dict(value), default=lambda v: list(v) if isinstance(v, tuple) else str(v))
    )


class CameraVideoModule(L.LightningModule):
    """Camera-guided CogVideoX training.

    pretrained_base: a CogVideoX-5B-I2V pipeline root (``transformer/``, ``vae/``,
        ``text_encoder/``, ``tokenizer/``, ``scheduler/``) or a transformer folder; or
    base_config: a ``CogVideoXTransformer3DModel`` config for a random base (tiny runs).
    control: ``CameraControlConfig`` fields (mode, num_ctrl_blocks, lora_rank, ...).
    vae: a diffusers ``AutoencoderKLCogVideoX`` folder, a config dict (random VAE, smoke runs)
        or a module; None -> ``pretrained_base/vae`` when present (else batches need ``latents``).
    text_encoder: a T5 folder (or pipeline root), a dict of ``TextEncoder.tiny`` arguments or a
        ``TextEncoder``; None -> ``pretrained_base`` when it has ``text_encoder/`` (else batches
        need ``text_embeds``).
    scheduler: a CogVideoX DDIM config dict or folder; None -> ``pretrained_base/scheduler`` or
        the CogVideoX-5B defaults.
    lr, betas, weight_decay, eps, warmup_steps: AdamW over the trainable parameters only.
    caption_dropout: probability of training on the empty prompt (for text CFG).
    image_dropout / image_noise_mean / image_noise_std: first-frame conditioning augmentation.
    gradient_checkpointing: recompute every block in backward.
    ema_decay: keep an EMA of the trainable weights (exported instead of the raw ones).
    frozen_dtype: cast the frozen base/VAE/T5 (e.g. "bfloat16" with ``precision: bf16-mixed``).
    embed_frozen_in_export: also write base/VAE/T5 into exports (always done for random ones).
    """

    def __init__(
        self,
        pretrained_base: str | None = None,
        base_config: dict | None = None,
        control: dict | None = None,
        vae: str | dict | None = None,
        text_encoder: str | dict | None = None,
        scheduler: str | dict | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 1e-4,
        eps: float = 1e-8,
        warmup_steps: int = 0,
        caption_dropout: float = 0.1,
        image_dropout: float = 0.05,
        image_noise_mean: float = -3.0,
        image_noise_std: float = 0.5,
        gradient_checkpointing: bool = False,
        ema_decay: float | None = None,
        frozen_dtype: str | None = None,
        embed_frozen_in_export: bool = False,
    ):
        super().__init__()
        objects = {"vae": vae, "text_encoder": text_encoder}
        self.save_hyperparameters(
            ignore=[k for k, v in objects.items() if isinstance(v, nn.Module)]
        )
        if (pretrained_base is None) == (base_config is None):
            raise ValueError("give exactly one of pretrained_base and base_config")
        base = load_base(pretrained_base) if pretrained_base else build_base(base_config)
        self.model = CameraGuidedCogVideoX(base, CameraControlConfig(**(control or {})))
        self.model.gradient_checkpointing = gradient_checkpointing
        self._sources = {"base": str(base_folder(pretrained_base)) if pretrained_base else None}
        self.vae = self._build_vae(vae, pretrained_base)
        self.text_encoder = self._build_text(text_encoder, pretrained_base, base.config)
        sched = scheduler
        if sched is None and pretrained_base and (Path(pretrained_base) / "scheduler").is_dir():
            sched = pretrained_base
        self.scheduler = make_scheduler("ddim", sched)
        if frozen_dtype:
            self._cast_frozen(DTYPES[frozen_dtype])
        self.ema: ParamEMA | None = None
        self._final_trainable: dict[str, Tensor] | None = None
        self.strict_loading = False  # checkpoints leave out path-loaded frozen weights

    # ---- construction ------------------------------------------------------------------------

    def _build_vae(self, vae, pretrained_base):
        self._sources["vae"] = None
        if vae is None and pretrained_base and (Path(pretrained_base) / "vae").is_dir():
            vae = pretrained_base
        if vae is None:
            return None
        if isinstance(vae, (str, Path)):
            self._sources["vae"] = str(_vae_folder(vae))
            vae = AutoencoderKLCogVideoX.from_pretrained(
                self._sources["vae"], local_files_only=True
            )
        elif isinstance(vae, dict):
            vae = AutoencoderKLCogVideoX.from_config(dict(vae))
        return vae.eval().requires_grad_(False)

    def _build_text(self, text, pretrained_base, base_config):
        self._sources["text_encoder"] = None
        max_length = base_config.max_text_seq_length
        if text is None and pretrained_base and (Path(pretrained_base) / "text_encoder").is_dir():
            text = pretrained_base
        if text is None:
            return None
        if isinstance(text, (str, Path)):
            self._sources["text_encoder"] = str(text)
            text = TextEncoder.from_pretrained(text, max_length=max_length)
        elif isinstance(text, dict):
            text = TextEncoder.tiny(**{"max_length": max_length, **text})
        if text.dim != base_config.text_embed_dim:
            raise ValueError(
                f"text encoder width {text.dim} != base text_embed_dim {base_config.text_embed_dim}"
            )
        return text.eval().requires_grad_(False)

    def _cast_frozen(self, dtype: torch.dtype) -> None:
        """Cast the large frozen parts (base blocks, VAE, T5); the base's small embedding and
        output layers stay in float32 beside the trainable weights."""
        for module in (self.model.base.transformer_blocks, self.vae, self.text_encoder):
            if module is not None:
                module.to(dtype)

    def train(self, mode: bool = True) -> CameraVideoModule:
        super().train(mode)
        for module in (self.vae, self.text_encoder):
            if module is not None:
                module.eval()
        return self

    # ---- batch -> conditioning ---------------------------------------------------------------

    def _latents(self, batch: dict) -> tuple[Tensor, Tensor]:
        """(clean latents, image-conditioning latents), both ``[B, C, T', h, w]``."""
        if "latents" in batch:
            latents = batch["latents"].float()
            image = batch.get("image_latents")
            # the causal VAE encodes frame 0 alone into latent frame 0 (no noise augmentation)
            image = latents[:, :, :1] if image is None else image.float()
            image = pad_image_latents(image, latents.shape[2])
        else:
            if self.vae is None:
                raise ValueError("batch has no 'latents' and the module has no VAE")
            frames = batch["frames"]
            B, T = frames.shape[0], latent_num_frames(frames.shape[1])
            with torch.no_grad():
                latents = encode(self.vae, frames, sample=True).float()
                hp = self.hparams
                sigma = torch.exp(
                    torch.randn(B, device=frames.device) * hp.image_noise_std + hp.image_noise_mean
                )
                image = image_condition_latents(self.vae, frames[:, 0], T, sigma).float()
        if self.training and self.hparams.image_dropout > 0:
            keep = torch.rand(image.shape[0], device=image.device) >= self.hparams.image_dropout
            image = image * keep.view(-1, 1, 1, 1, 1).to(image.dtype)
        return latents, image

    def _text(self, batch: dict, B: int) -> Tensor:
        if "text_embeds" in batch:
            text = batch["text_embeds"]
            if self.training and self.text_encoder is not None and self.hparams.caption_dropout:
                drop = torch.rand(B, device=text.device) < self.hparams.caption_dropout
                empty = self.text_encoder([""]).to(text)
                text = torch.where(drop.view(-1, 1, 1), empty, text)
            return text
        if self.text_encoder is None:
            raise ValueError("batch has no 'text_embeds' and the module has no text encoder")
        captions = [c or "" for c in (batch.get("caption") or [""] * B)]
        if self.training and self.hparams.caption_dropout:
            drop = torch.rand(B) < self.hparams.caption_dropout
            captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        return self.text_encoder(captions)

    def _plucker(self, batch: dict, latents: Tensor) -> Tensor:
        if "plucker" in batch:
            return batch["plucker"]
        h, w = latents.shape[-2:]
        s = self.model.config.spatial_compression
        return plucker_rays(batch["K"].float(), batch["c2w"].float(), h * s, w * s)

    # ---- objective ---------------------------------------------------------------------------

    def diffusion_loss(
        self, batch: dict, timesteps: Tensor | None = None, noise: Tensor | None = None
    ) -> Tensor:
        """v-prediction MSE on one batch (``timesteps [B]`` and ``noise`` drawn when None)."""
        latents, image = self._latents(batch)
        B = latents.shape[0]
        text = self._text(batch, B)
        plucker = self._plucker(batch, latents)
        sched = self.scheduler
        if timesteps is None:
            n = sched.config.num_train_timesteps
            timesteps = torch.randint(0, n, (B,), device=latents.device)
        timesteps = timesteps.to(latents.device).long()
        noise = torch.randn_like(latents) if noise is None else noise.to(latents)
        noisy = sched.add_noise(latents, noise, timesteps)
        target = sched.get_velocity(latents, noise, timesteps)
        pred = self.model(noisy, image, text, timesteps, plucker=plucker)
        return F.mse_loss(pred.float(), target.float())

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.diffusion_loss(batch)
        B = batch["latents" if "latents" in batch else "frames"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=B)
        return loss

    def configure_optimizers(self):
        params = [p for p in self.model.trainable_parameters() if p.requires_grad]
        return adamw_with_warmup(params, self.hparams, eps=self.hparams.eps)

    # ---- EMA, checkpoints --------------------------------------------------------------------

    def on_fit_start(self) -> None:
        if self.hparams.ema_decay and self.ema is None:
            self.ema = ParamEMA(self.model.named_trainable_parameters(), self.hparams.ema_decay)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update(self.model.named_trainable_parameters())

    def _frozen_prefixes(self) -> tuple[str, ...]:
        prefixes = []
        if self._sources["base"]:
            prefixes.append("model.base.")
        if self._sources["vae"]:
            prefixes.append("vae.")
        if self._sources["text_encoder"]:
            prefixes.append("text_encoder.")
        return tuple(prefixes)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        skip = self._frozen_prefixes()
        if skip:
            state = checkpoint["state_dict"]
            checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(skip)}
        if self.ema is not None:
            checkpoint["camera_ema"] = {k: v.cpu() for k, v in self.ema.shadow.items()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "camera_ema" in checkpoint and self.hparams.ema_decay:
            self.ema = ParamEMA(self.model.named_trainable_parameters(), self.hparams.ema_decay)
            for k, v in checkpoint["camera_ema"].items():
                self.ema.shadow[k].copy_(v)

    @contextmanager
    def ema_weights(self):
        """Inside: the trainable weights are their EMA (no-op without EMA)."""
        if self.ema is None:
            yield
            return
        with self.ema.applied(self.model.named_trainable_parameters()):
            yield

    def on_train_end(self) -> None:
        """Collect the final camera weights for ``export_pretrained`` on rank 0 (under FSDP every
        rank takes part in gathering the shards)."""
        fsdp = isinstance(self.trainer.strategy, FSDPStrategy)
        if not (fsdp or self.trainer.is_global_zero):
            return
        with self.ema_weights():
            if fsdp:
                full = self.trainer.strategy.lightning_module_state_dict()  # collective
                state = {
                    k[len("model.") :]: v
                    for k, v in full.items()
                    if k.startswith("model.") and not k.startswith("model.base.")
                }
            else:
                state = self.model.trainable_state_dict()
            if self.trainer.is_global_zero:  # copy while the EMA weights are in place
                self._final_trainable = {
                    k: v.detach().float().cpu().clone() for k, v in state.items()
                }

    # ---- export / load -----------------------------------------------------------------------

    def export_pretrained(self, directory: str | Path) -> dict:
        """Write ``camera_control.safetensors`` + ``config.json`` (+ ``base/``, ``vae/``,
        ``text_encoder/``, ``tokenizer/`` for components not loaded from a path, and
        ``scheduler/``). Returns metadata for the publish index."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = self._final_trainable
        if state is None:
            with self.ema_weights():
                state = {
                    k: v.detach().float().cpu().clone()
                    for k, v in self.model.trainable_state_dict().items()
                }
        save_file({k: v.contiguous() for k, v in state.items()}, out / WEIGHTS)
        embed = self.hparams.embed_frozen_in_export
        base = self.model.base
        if embed or not self._sources["base"]:
            base.save_pretrained(out / "base", safe_serialization=True)
        if self.vae is not None and (embed or not self._sources["vae"]):
            self.vae.save_pretrained(out / "vae", safe_serialization=True)
        if self.text_encoder is not None and (embed or not self._sources["text_encoder"]):
            self.text_encoder.encoder.save_pretrained(out / "text_encoder")
            self.text_encoder.tokenizer.save_pretrained(out / "tokenizer")
        self.scheduler.save_config(out / "scheduler")
        trainable = sum(v.numel() for v in state.values())
        config = {
            "format": FORMAT,
            "version": 1,
            "control": self.model.config.to_dict(),
            "base": {"path": self._sources["base"], "config": _plain(base.config)},
            "vae": {"path": self._sources["vae"], "present": self.vae is not None},
            "text_encoder": {
                "path": self._sources["text_encoder"],
                "present": self.text_encoder is not None,
                "max_length": self.text_encoder.max_length if self.text_encoder else None,
            },
            "ema": self.ema is not None,
            "trainable_parameters": trainable,
        }
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        return {"mode": self.model.config.mode, "trainable_parameters": trainable}

    @classmethod
    def load(
        cls, directory: str | Path, map_location: str | torch.device = "cpu"
    ) -> CameraVideoModule:
        """Rebuild a module from ``export_pretrained`` output (frozen parts from the folder or
        from the recorded paths) and load the camera weights (strict)."""
        d = Path(directory)
        config = json.loads((d / "config.json").read_text())
        if config.get("format") != FORMAT:
            raise ValueError(
                f"{d}: not a camera video model export (format {config.get('format')})"
            )

        def pick(name: str, sub: str):
            if (d / sub).is_dir():
                return str(d if name == "text_encoder" else d / sub)
            return config[name]["path"]

        module = cls(
            pretrained_base=pick("base", "base"),
            control=config["control"],
            vae=pick("vae", "vae"),
            text_encoder=pick("text_encoder", "text_encoder"),
            scheduler=str(d / "scheduler"),
            embed_frozen_in_export=(d / "base").is_dir(),
        )
        state = load_file(str(d / WEIGHTS))
        module.model.load_trainable_state_dict(state)
        return module.to(map_location).eval()

    def sampler(self, kind: str = "ddim") -> CameraVideoSampler:
        """A sampler over this module's model, VAE, text encoder and a copy of its scheduler."""
        sched = make_scheduler(kind, _plain(self.scheduler.config))
        frozen = self.hparams.frozen_dtype
        amp = DTYPES[frozen] if frozen and self.device.type == "cuda" else None
        return CameraVideoSampler(self.model, self.vae, self.text_encoder, sched, amp)


def fsdp_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int = 0) -> bool:
    """FSDP auto-wrap policy (``strategy.init_args.auto_wrap_policy`` in the YAML): one unit per
    CogVideoX block (frozen base blocks and trainable copies alike) and per T5 block. The VAE
    stays in the root unit: the step calls its ``encode``, not a forward, so its weights must be
    gathered for the whole step."""
    if recurse:
        return True
    return isinstance(module, (CogVideoXBlock, T5Block))


# ---- sampling to files ---------------------------------------------------------------------


def _fov_K(height: int, width: int, fov_deg: float, n: int) -> Tensor:
    f = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    return K.expand(n, 3, 3).clone()


def template_path(name: str, num_frames: int, seed: int = 0) -> np.ndarray:
    """``c2w [F, 4, 4]`` of a named camera template (``datagen.trajectories.templates``) from the
    origin looking along +x at 1.5 m height (world z up)."""
    from datagen.trajectories import templates as T

    eye, fwd = np.array([0.0, 0.0, 1.5]), np.array([1.0, 0.0, 0.0])
    builders = {
        "forward_dolly": lambda: T.forward_dolly(eye, fwd, 2.0, num_frames),
        "truck": lambda: T.truck(eye, fwd, 1.0, num_frames),
        "pan": lambda: T.pan(eye, fwd, 60.0, num_frames),
        "turn_360": lambda: T.turn_360(eye, fwd, num_frames),
        "orbit": lambda: T.orbit(eye + 3.0 * fwd, eye, 60.0, num_frames),
        "zoom_in": lambda: T.zoom_in(eye, eye + 4.0 * fwd, 1.5, num_frames),
        "random": lambda: T.random_motion(
            np.random.default_rng(seed), eye, fwd, num_frames, 0.05, 2.0
        ),
    }
    if name not in builders:
        raise ValueError(f"unknown template {name!r}; one of {sorted(builders)}")
    return builders[name]()


def trajectory_cameras(
    source: str, num_frames: int, height: int, width: int, fov_deg: float = 60.0, stride: int = 1
) -> tuple[Tensor, Tensor]:
    """``K [F, 3, 3]``, ``c2w [F, 4, 4]`` (float32) from a RealEstate10K camera file (every
    ``stride``-th pose) or a template name (intrinsics from ``fov_deg``)."""
    if Path(source).is_file():
        from datagen.camera_formats import read_realestate10k

        cams = read_realestate10k(source, (height, width))
        K, c2w = cams.K[::stride][:num_frames], cams.c2w[::stride][:num_frames]
        if len(c2w) < num_frames:
            raise ValueError(f"{source}: {len(c2w)} poses at stride {stride}, need {num_frames}")
        return torch.from_numpy(K).float(), torch.from_numpy(c2w).float()
    c2w = torch.from_numpy(template_path(source, num_frames)).float()
    return _fov_K(height, width, fov_deg, num_frames), c2w


def load_image(path: str | Path, height: int, width: int) -> Tensor:
    """An image file -> ``[3, height, width]`` in [0, 1] (bilinear, antialiased)."""
    import imageio.v3 as iio

    rgb = np.asarray(iio.imread(path))[..., :3]
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] / 255.0
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True)
    return x[0].clamp(0.0, 1.0)


def generate_video(
    module: CameraVideoModule,
    image: Tensor,
    trajectory: str | tuple[Tensor, Tensor],
    out_dir: str | Path,
    prompt: str = "",
    num_frames: int = 49,
    steps: int = 50,
    guidance_scale: float = 6.0,
    seed: int = 0,
    fps: float = 8.0,
    scheduler: str = "ddim",
) -> dict[str, Path]:
    """Sample one video from ``image [3, H, W]`` and a trajectory (RealEstate10K file, template
    name or ``(K, c2w)``), write ``video.mp4``, ``latents.safetensors`` and ``meta.json``."""
    H, W = image.shape[-2:]
    if isinstance(trajectory, str):
        K, c2w = trajectory_cameras(trajectory, num_frames, H, W)
    else:
        K, c2w = trajectory
    latents, frames = module.sampler(scheduler).sample(
        image,
        K,
        c2w,
        prompt=prompt,
        num_frames=num_frames,
        steps=steps,
        guidance_scale=guidance_scale,
        seed=seed,
    )
    meta = {
        "prompt": prompt,
        "num_frames": num_frames,
        "steps": steps,
        "seed": seed,
        "guidance_scale": guidance_scale,
        "scheduler": scheduler,
        "trajectory": trajectory if isinstance(trajectory, str) else "given",
        "K": K[:num_frames].tolist(),
        "c2w": c2w[:num_frames].tolist(),
    }
    return save_video_sample(out_dir, frames, latents[0], fps=fps, meta=meta)


def main(argv: list[str] | None = None) -> None:
    """``python -m training.modules.video_model --checkpoint DIR --image IMG --trajectory T
    --out DIR [--prompt ...]``."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--checkpoint", required=True, help="export_pretrained folder")
    ap.add_argument("--image", required=True)
    ap.add_argument("--trajectory", required=True, help="RealEstate10K txt or template name")
    ap.add_argument("--out", required=True)
    ap.add_argument("--prompt", default="")
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=720)
    ap.add_argument("--num-frames", type=int, default=49)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance-scale", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=float, default=8.0)
    ap.add_argument("--scheduler", choices=("ddim", "dpm"), default="ddim")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    a = ap.parse_args(argv)
    module = CameraVideoModule.load(a.checkpoint, map_location=a.device)
    if a.dtype:
        module.to(DTYPES[a.dtype])
    image = load_image(a.image, a.height, a.width)
    paths = generate_video(
        module,
        image,
        a.trajectory,
        a.out,
        a.prompt,
        a.num_frames,
        a.steps,
        a.guidance_scale,
        a.seed,
        a.fps,
        a.scheduler,
    )
    print(json.dumps({k: str(v) for k, v in paths.items()}))


if __name__ == "__main__":
    main()
