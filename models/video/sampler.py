"""Camera-guided image-to-video sampling: image + camera path (+ text) -> latents and frames.

Classifier-free guidance on text, as CogVideoX I2V: the unconditional branch uses the empty
prompt; the image latents and the camera tokens condition both branches (the paper guides the
camera through the architecture, not through CFG). Works with the CogVideoX DDIM and DPM
schedulers (v-prediction).
"""

from __future__ import annotations

import contextlib

import torch
from diffusers import CogVideoXDPMScheduler
from torch import Tensor

from models.autoencoders import latents as vae_latents
from models.geometry import invert_se3, plucker_rays

from .camera_model import CameraGuidedCogVideoX, CameraTokens
from .latents import image_condition_latents
from .text import TextEncoder


def relative_cameras(c2w: Tensor) -> Tensor:
    """``[F, 4, 4]`` -> the same path in the first camera's frame (frame 0 = identity)."""
    return invert_se3(c2w[:1]) @ c2w


class CameraVideoSampler:
    """Runs the denoising loop of a ``CameraGuidedCogVideoX``.

    vae: CogVideoX VAE (as ``models.autoencoders.latents`` uses it); text_encoder: ``TextEncoder``
    or None (then ``text_embeds`` must be given to ``sample``); scheduler: CogVideoX DDIM/DPM;
    autocast: run the transformer under ``torch.autocast`` with this dtype (needed when frozen
    and trainable weights have different dtypes, e.g. bf16 base + fp32 camera branches).
    """

    def __init__(
        self,
        model: CameraGuidedCogVideoX,
        vae,
        text_encoder: TextEncoder | None,
        scheduler,
        autocast: torch.dtype | None = None,
    ):
        self.model, self.vae, self.text_encoder = model, vae, text_encoder
        self.scheduler, self.autocast = scheduler, autocast

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Input dtype: float32 under autocast, else the base's weights' dtype."""
        if self.autocast is not None:
            return torch.float32
        return next(self.model.base.parameters()).dtype

    def _amp(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def _text(self, prompt: str, negative_prompt: str, cfg: bool) -> Tensor:
        prompts = [negative_prompt, prompt] if cfg else [prompt]
        return self.text_encoder(prompts).to(self.device, self.dtype)

    @torch.no_grad()
    def sample(
        self,
        image: Tensor,
        K: Tensor,
        c2w: Tensor,
        prompt: str = "",
        num_frames: int | None = None,
        steps: int = 50,
        guidance_scale: float = 6.0,
        seed: int = 0,
        negative_prompt: str = "",
        text_embeds: Tensor | None = None,
        decode: bool = True,
        eta: float = 0.0,
    ) -> tuple[Tensor, Tensor | None]:
        """Generate one video.

        image ``[3, H, W]`` in [0, 1] (first frame); K ``[F, 3, 3]`` (pixels at ``H × W``);
        c2w ``[F, 4, 4]`` (made relative to the first camera here); num_frames: the first
        ``num_frames`` cameras (default all; must be ``4k + 1``); text_embeds ``[1 or 2, L, D]``
        replaces the text encoder (``[uncond, cond]`` when ``guidance_scale > 1``).
        Returns latents ``[1, C, T', h, w]`` and frames ``[F, 3, H, W]`` in [0, 1] (None unless
        ``decode``).
        """
        model, device, dtype = self.model, self.device, self.dtype
        F = int(num_frames or c2w.shape[0])
        if F > c2w.shape[0] or F > K.shape[0]:
            raise ValueError(f"{F} frames requested, {c2w.shape[0]} cameras given")
        T = vae_latents.latent_num_frames(F, model.config.temporal_compression)
        H, W = image.shape[-2:]
        s = model.config.spatial_compression
        cfg = guidance_scale > 1.0
        n = 2 if cfg else 1

        rel = relative_cameras(c2w[:F].double().to(device)).float()
        plucker = plucker_rays(K[:F].float().to(device), rel, H, W)[None].to(dtype)
        with self._amp():
            cam = model.encode_camera(plucker)
        cam = CameraTokens(*(None if t is None else t.expand(n, -1, -1) for t in cam))

        text = self._text(prompt, negative_prompt, cfg) if text_embeds is None else text_embeds
        text = text.to(device, dtype)
        if text.shape[0] != n:
            raise ValueError(f"text_embeds must have batch {n} (guidance {guidance_scale})")

        img = image_condition_latents(self.vae, image[None].to(device), T, sample=False).to(dtype)
        C = img.shape[1]
        gen = torch.Generator("cpu").manual_seed(seed)
        latents = torch.randn(1, C, T, H // s, W // s, generator=gen).to(device, dtype)
        latents = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(steps, device=device)
        timesteps = self.scheduler.timesteps
        old_x0 = None
        for i, t in enumerate(timesteps):
            inp = self.scheduler.scale_model_input(latents.expand(n, -1, -1, -1, -1), t)
            with self._amp():
                pred = model(
                    inp, img.expand(n, -1, -1, -1, -1), text, t.expand(n), camera_tokens=cam
                ).float()
            if cfg:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance_scale * (cond - uncond)
            # the schedulers' step is elementwise, so the [B, C, T, h, w] layout is fine
            if isinstance(self.scheduler, CogVideoXDPMScheduler):
                prev_t = timesteps[i - 1] if i > 0 else None
                latents, old_x0 = self.scheduler.step(
                    pred,
                    old_x0,
                    t,
                    prev_t,
                    latents.float(),
                    generator=gen,
                    eta=eta,
                    return_dict=False,
                )
            else:
                latents = self.scheduler.step(
                    pred, t, latents.float(), eta=eta, generator=gen, return_dict=False
                )[0]
            latents = latents.to(dtype)
        frames = vae_latents.decode(self.vae, latents)[0].float() if decode else None
        return latents.float(), frames
