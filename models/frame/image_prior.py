"""Stage I — the image prior (WorldFM §2.3): a PixArt-Σ DiT (diffusers
``PixArtTransformer2DModel``) with a T5 text encoder, ε- or v-prediction, classifier-free guidance.

This is also the text-to-image model the zoom-stack sampler uses: ``ImagePrior.predict_eps`` and
``guided_eps`` give ε at ``x_t`` for prompt embeddings, ``sample_images`` runs DDIM with CFG.

Sizes (``PIXART_CONFIGS``): ``paper`` = PixArt-Σ XL/2 at 512 px (28 layers, width 1152 = 16 × 72,
patch 2, latent 64 × 64, T5-XXL captions of 4096 channels, learned-σ head of 8 channels);
``small`` and ``tiny`` are the platform's own, trained from scratch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import PixArtTransformer2DModel
from torch import Tensor, nn

from models.autoencoders import decode
from models.video.text import TextEncoder

from .schedule import DiffusionSchedule, ddim_sample

PIXART_CONFIGS: dict[str, dict] = {
    "tiny": {
        "num_layers": 2,
        "num_attention_heads": 2,
        "attention_head_dim": 32,
        "sample_size": 8,
        "caption_channels": 32,
        "out_channels": 4,
    },
    "small": {
        "num_layers": 12,
        "num_attention_heads": 6,
        "attention_head_dim": 64,
        "sample_size": 32,
        "caption_channels": 256,
        "out_channels": 4,
    },
    "paper": {
        "num_layers": 28,
        "num_attention_heads": 16,
        "attention_head_dim": 72,
        "sample_size": 64,
        "caption_channels": 4096,
        "out_channels": 8,
    },
}

# the tiny/small T5 encoders trained with the platform's own priors (ByT5 tokenizer, no vocab)
TEXT_ENCODER_CONFIGS: dict[str, dict] = {
    "tiny": {"d_model": 32, "num_layers": 2, "num_heads": 4, "d_ff": 64, "max_length": 32},
    "small": {"d_model": 256, "num_layers": 4, "num_heads": 4, "d_ff": 1024, "max_length": 120},
}
PIXART_SIGMA_MAX_LENGTH = 300  # PixArt-Σ's T5 token budget


def pixart_config(size: str, **overrides) -> dict:
    """``PixArtTransformer2DModel`` keyword config of ``size`` (tiny, small, paper)."""
    if size not in PIXART_CONFIGS:
        raise ValueError(f"unknown image prior size {size!r}; one of {sorted(PIXART_CONFIGS)}")
    base = PIXART_CONFIGS[size]
    config = {
        "in_channels": 4,
        "patch_size": 2,
        "norm_type": "ada_norm_single",
        "norm_elementwise_affine": False,
        "norm_eps": 1e-6,
        "cross_attention_dim": base["num_attention_heads"] * base["attention_head_dim"],
        "use_additional_conditions": False,
        "interpolation_scale": None,
        **base,
    }
    config.update(overrides)
    return config


def build_pixart(size: str = "tiny", **overrides) -> PixArtTransformer2DModel:
    """A randomly initialised PixArt transformer of ``size``."""
    return PixArtTransformer2DModel(**pixart_config(size, **overrides))


def pixart_folder(path: str | Path) -> Path:
    """The transformer folder of a PixArt pipeline root, a stage-I export or the folder itself."""
    root = Path(path)
    return root / "transformer" if (root / "transformer" / "config.json").is_file() else root


def load_pixart(path: str | Path, dtype: torch.dtype | None = None) -> PixArtTransformer2DModel:
    """A pretrained PixArt(-Σ) transformer from a local folder (no downloads)."""
    return PixArtTransformer2DModel.from_pretrained(
        str(pixart_folder(path)), local_files_only=True, torch_dtype=dtype
    )


class PromptEncoder(TextEncoder):
    """Frozen T5 + tokenizer returning embeddings with their attention mask (as PixArt-Σ)."""

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """B prompts → ``embeds [B, L, D]``, ``mask [B, L]`` (1 = token)."""
        tok = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        ids = tok.input_ids.to(self.encoder.device)
        mask = tok.attention_mask.to(self.encoder.device)
        return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask


class ImagePrior(nn.Module):
    """PixArt transformer + diffusion schedule: raw predictions, ε, and CFG ε."""

    def __init__(self, transformer: PixArtTransformer2DModel, schedule: DiffusionSchedule):
        super().__init__()
        self.transformer = transformer
        self.schedule = schedule

    @property
    def latent_channels(self) -> int:
        return int(self.transformer.config.in_channels)

    def forward(self, x_t: Tensor, t: Tensor, embeds: Tensor, mask: Tensor | None = None) -> Tensor:
        """Prediction (ε or v per ``schedule.prediction_type``) ``[B, C, h, w]`` at ``x_t``; a
        learned-σ head's extra channels are dropped."""
        out = self.transformer(
            x_t.to(self.transformer.dtype),
            encoder_hidden_states=embeds.to(self.transformer.dtype),
            encoder_attention_mask=mask,
            timestep=t,
            added_cond_kwargs={"resolution": None, "aspect_ratio": None},
            return_dict=False,
        )[0]
        return out[:, : self.latent_channels]

    def predict_eps(self, x_t: Tensor, t: Tensor, embeds: Tensor, mask: Tensor | None = None):
        """ε̂ ``[B, C, h, w]`` (converted from v when the prior predicts v)."""
        return self.schedule.to_eps(x_t, self(x_t, t, embeds, mask), t)

    def guided_eps(
        self,
        x_t: Tensor,
        t: Tensor,
        cond: tuple[Tensor, Tensor],
        uncond: tuple[Tensor, Tensor],
        guidance_scale: float,
    ) -> Tensor:
        """CFG ε̂ = ε_u + s (ε_c − ε_u), one batched forward; cond/uncond = (embeds, mask)."""
        if guidance_scale == 1.0:
            return self.predict_eps(x_t, t, *cond)
        B = x_t.shape[0]
        embeds = torch.cat([cond[0], uncond[0].expand(B, -1, -1)])
        mask = torch.cat([cond[1], uncond[1].expand(B, -1)])
        eps = self.predict_eps(torch.cat([x_t, x_t]), torch.cat([t, t]), embeds, mask)
        eps_c, eps_u = eps.chunk(2)
        return eps_u + guidance_scale * (eps_c - eps_u)


@torch.no_grad()
def sample_images(
    prior: ImagePrior,
    text_encoder: PromptEncoder,
    vae: nn.Module,
    prompts: list[str],
    height: int,
    width: int,
    steps: int = 20,
    guidance_scale: float = 4.5,
    seed: int = 0,
) -> Tensor:
    """Text → images ``[B, 3, height, width]`` in [0, 1]: DDIM (η = 0) with CFG, VAE decode."""
    device = next(prior.parameters()).device
    cond = text_encoder.encode(prompts)
    uncond = text_encoder.encode([""])
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    g = torch.Generator(device="cpu").manual_seed(seed)
    shape = (len(prompts), prior.latent_channels, height // f, width // f)
    noise = torch.randn(shape, generator=g).to(device)

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        return prior.guided_eps(x, t, cond, uncond, guidance_scale)

    # guided_eps always returns ε, so DDIM runs on the ε-parameterised copy of the schedule
    eps_schedule = DiffusionSchedule(**{**prior.schedule.to_dict(), "prediction_type": "epsilon"})
    latents = ddim_sample(denoise, noise, eps_schedule, steps)
    return decode(vae, latents.float())
