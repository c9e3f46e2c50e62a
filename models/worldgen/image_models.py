"""The text-to-image model of a zoom step and the fine-image sampler (Powers of Ten §4 in one step).

A ``ZoomImageModel`` gives the zoom sampler what it needs: an ε denoiser and its DDPM schedule,
the map between pixels ``[B, 3, H, W]`` in [0, 1] and the sampler's space (pixels in [-1, 1] or
VAE latents), and per-level conditions from the prompts and the coarse renders of the levels.

* ``LatentPriorImageModel``: the platform's stage-I image prior (PixArt + T5 + image VAE) with
  classifier-free guidance — the frame model's text-to-image prior.
* ``AnalyticImageModel``: the exact posterior of a Gaussian prior in pixel space
  (``models.zoom.toy``). A level's prior mean is the target image registered for its prompt
  (tests) or else the coarse render of its view: the documented no-checkpoint fallback, a
  stochastic super-resolution of the coarse render (prompts do not change it).

``sample_fine_image`` samples a two-level zoom stack ``[parent view, zoom view]`` jointly
(``JointZoomSampler``, mode ``joint``), with photograph-based zoom (Eq. 1) on the parent view's
render: the new level is generated from its prompt while its down-scaled version is pulled onto
the coarse world's appearance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from models.autoencoders import decode, encode
from models.zoom import DDPMSchedule, JointZoomSampler, PhotoGuidance, footprint
from models.zoom.toy import GaussianPriorDenoiser, prior_embeds

Conditions = tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]


class ZoomImageModel(Protocol):
    """See the module doc."""

    name: str
    schedule: DDPMSchedule
    guidance_scale: float
    clip_x0: float | None

    def denoiser(
        self, z: Tensor, t: Tensor, embeds: Tensor, mask: Tensor | None = None
    ) -> Tensor: ...

    def to_state(self, images: Tensor) -> Tensor: ...

    def to_pixels(self, state: Tensor) -> Tensor: ...

    def conditions(self, prompts: list[str], views: Tensor) -> Conditions: ...


class AnalyticImageModel:
    """Gaussian-prior model in pixel space (module doc). ``std``: prior standard deviation in
    [-1, 1] units; ``targets``: prompt -> image ``[3, H, W]`` in [0, 1]."""

    clip_x0 = 1.0
    guidance_scale = 1.0

    def __init__(
        self, std: float = 0.1, targets: dict[str, Tensor] | None = None, name: str = "analytic"
    ):
        self.std, self.targets, self.name = std, dict(targets or {}), name
        self.schedule = DDPMSchedule.make("linear")
        self._eps = GaussianPriorDenoiser(self.schedule)

    def denoiser(self, z, t, embeds, mask=None):
        return self._eps(z, t, embeds)

    def to_state(self, images: Tensor) -> Tensor:
        return images * 2.0 - 1.0

    def to_pixels(self, state: Tensor) -> Tensor:
        return ((state + 1.0) * 0.5).clamp(0.0, 1.0)

    def conditions(self, prompts: list[str], views: Tensor) -> Conditions:
        mus = []
        for prompt, view in zip(prompts, views):
            target = self.targets.get(prompt)
            mus.append(self.to_state(target if target is not None else view).to(views))
        return prior_embeds(torch.stack(mus), self.std), None, None, None


class LatentPriorImageModel:
    """The stage-I ``ImagePrior`` with its ``PromptEncoder`` and image VAE (latent space, CFG)."""

    clip_x0 = None

    def __init__(self, prior, text_encoder, vae, guidance_scale: float = 4.5, name="frame_stage1"):
        self.prior, self.text_encoder, self.vae = prior, text_encoder, vae
        self.guidance_scale, self.name = guidance_scale, name
        s = prior.schedule
        self.schedule = DDPMSchedule.make(
            s.beta_schedule, s.num_train_timesteps, s.beta_start, s.beta_end
        )

    @property
    def device(self) -> torch.device:
        return next(self.prior.parameters()).device

    @torch.no_grad()
    def denoiser(self, z, t, embeds, mask=None):
        return self.prior.predict_eps(z, t, embeds, mask).float()

    @torch.no_grad()
    def to_state(self, images: Tensor) -> Tensor:
        return encode(self.vae, images.to(self.device)).float()

    @torch.no_grad()
    def to_pixels(self, state: Tensor) -> Tensor:
        return decode(self.vae, state.to(self.device)).float()

    @torch.no_grad()
    def conditions(self, prompts: list[str], views: Tensor) -> Conditions:
        cond, mask = self.text_encoder.encode(list(prompts))
        uncond, umask = self.text_encoder.encode([""])
        return cond, mask, uncond, umask


@dataclass
class FineImage:
    """The new level ``image [3, H, W]`` in [0, 1], the stack's parent output ``parent [3, H, W]``
    and the sampler's denoiser calls ``nfe``."""

    image: Tensor
    parent: Tensor
    nfe: int


@torch.no_grad()
def sample_fine_image(
    model: ZoomImageModel,
    parent_view: Tensor,
    zoom_view: Tensor,
    prompts: tuple[str, str],
    p: int,
    steps: int = 50,
    guidance_scale: float | None = None,
    photo_guidance: bool = True,
    photo_steps: int = 5,
    photo_lr: float = 0.1,
    seed: int = 0,
) -> FineImage:
    """Sample the zoom view's image from its prompt (module doc). ``parent_view`` / ``zoom_view``
    ``[3, H, W]`` in [0, 1]: the coarse renders at the parent and the zoom camera;
    ``prompts``: (parent level's prompt, new level's prompt)."""
    views = torch.stack([parent_view, zoom_view])
    photo_state = model.to_state(parent_view[None])[0]
    C, h, w = photo_state.shape
    for n in (h, w):
        try:
            footprint(n, p, 1)
        except ValueError as error:
            raise ValueError(
                f"{model.name}: the sampler's {h}x{w} state cannot hold a zoom by {p} ({error})"
            ) from None
    cond, mask, uncond, umask = model.conditions(list(prompts), views)
    photo = None
    if photo_guidance:
        photo = PhotoGuidance(photo_state, level=0, steps=photo_steps, lr=photo_lr)
    gs = model.guidance_scale if guidance_scale is None else guidance_scale
    sampler = JointZoomSampler(
        model.denoiser, model.schedule, 2, p, mode="joint", num_steps=steps,
        guidance_scale=gs, photo=photo, clip_x0=model.clip_x0,
    )  # fmt: skip
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = sampler.sample(
        cond, (C, h, w), uncond, mask, umask,
        generator=_device_generator(gen, cond.device, seed), device=cond.device,
    )  # fmt: skip
    pixels = model.to_pixels(out.images).to(parent_view)
    return FineImage(pixels[1], pixels[0], out.nfe)


def _device_generator(gen: torch.Generator, device: torch.device, seed: int) -> torch.Generator:
    if device.type == "cpu":
        return gen
    return torch.Generator(device=device).manual_seed(seed)
