"""Adapters from diffusers ε-prediction text-to-image models to the zoom sampler's denoiser API.

``(z [B, C, H, W], t [B] long, embeds [B, L, D], [mask [B, L]]) -> ε [B, C, H, W]``. UNets
(``UNet2DConditionModel``) and DiT-style transformers (``PixArtTransformer2DModel`` — the frame
model's stage-I prior — and others taking ``hidden_states``/``encoder_hidden_states``/``timestep``)
are supported; a learned-variance output (``2C`` channels) is cut to its ε half, and a
v-prediction output is converted to ε (``ε = α_t v + σ_t z``). Loading reads local folders only:
a diffusers pipeline root (``unet/`` or ``transformer/``, ``scheduler/``) or the platform's
stage-I image-prior export (``transformer/`` + ``config.json`` with its ``schedule``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .ddpm import DDPMSchedule

MODEL_FOLDERS = ("transformer", "unet")


class DiffusersDenoiser:
    """Wraps a diffusers UNet or transformer. prediction_type ``epsilon`` | ``v_prediction``
    (v needs the schedule's ``alphas_cumprod`` ``[T]``)."""

    def __init__(
        self,
        model: torch.nn.Module,
        prediction_type: str = "epsilon",
        alphas_cumprod: Tensor | None = None,
    ):
        if prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"unsupported prediction_type {prediction_type!r}")
        if prediction_type == "v_prediction" and alphas_cumprod is None:
            raise ValueError("v_prediction needs alphas_cumprod")
        self.model, self.prediction_type = model, prediction_type
        self.alphas_cumprod = alphas_cumprod
        self.is_unet = "UNet" in type(model).__name__

    def __call__(self, z: Tensor, t: Tensor, embeds: Tensor, mask: Tensor | None = None) -> Tensor:
        dtype = next(self.model.parameters()).dtype
        z_in, e_in = z.to(dtype), embeds.to(dtype)
        if self.is_unet:
            out = self.model(z_in, t, encoder_hidden_states=e_in, encoder_attention_mask=mask)
        else:
            kwargs = {}
            if "PixArt" in type(self.model).__name__:
                kwargs["added_cond_kwargs"] = {"resolution": None, "aspect_ratio": None}
            out = self.model(
                hidden_states=z_in,
                encoder_hidden_states=e_in,
                timestep=t,
                encoder_attention_mask=mask,
                **kwargs,
            )
        pred = (out.sample if hasattr(out, "sample") else out[0])[:, : z.shape[1]].to(z.dtype)
        if self.prediction_type == "epsilon":
            return pred
        ab = self.alphas_cumprod.to(z.device)[t].to(z.dtype).view(-1, 1, 1, 1)
        return ab.sqrt() * pred + (1 - ab).sqrt() * z


@dataclass
class LoadedDenoiser:
    """A denoiser loaded from a local diffusers folder with the schedule it was trained with."""

    denoiser: DiffusersDenoiser
    schedule: DDPMSchedule
    model: torch.nn.Module


def load_diffusers_denoiser(
    path: str | Path, torch_dtype: torch.dtype | None = None, device: str | None = None
) -> LoadedDenoiser:
    """Load ``<path>/{transformer|unet}`` (local files only) with its schedule: from
    ``<path>/config.json``'s ``schedule`` (stage-I export), else ``<path>/scheduler/``, else
    PixArt-Σ's (linear β 1e-4 → 0.02, 1000 steps, ε)."""
    import diffusers

    root = Path(path)
    sub = next((s for s in MODEL_FOLDERS if (root / s / "config.json").is_file()), None)
    if sub is None:
        raise FileNotFoundError(f"{root} has no {' or '.join(MODEL_FOLDERS)}/config.json")
    cls_name = json.loads((root / sub / "config.json").read_text())["_class_name"]
    model = getattr(diffusers, cls_name).from_pretrained(root, subfolder=sub, local_files_only=True)
    model = model.to(device=device, dtype=torch_dtype).eval()
    schedule, kind = _load_schedule(root)
    denoiser = DiffusersDenoiser(model, kind, schedule.alphas_cumprod)
    return LoadedDenoiser(denoiser, schedule, model)


def _load_schedule(root: Path) -> tuple[DDPMSchedule, str]:
    """(schedule, prediction type) of a model folder."""
    cfg_file, sched_file = root / "config.json", root / "scheduler" / "scheduler_config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    if "schedule" in cfg:
        s = cfg["schedule"]
    elif sched_file.is_file():
        s = json.loads(sched_file.read_text())
    else:
        s = {}
    schedule = DDPMSchedule.make(
        s.get("beta_schedule", "linear"),
        s.get("num_train_timesteps", 1000),
        s.get("beta_start", 1e-4),
        s.get("beta_end", 0.02),
    )
    if "trained_betas" in s and s["trained_betas"] is not None:
        schedule = DDPMSchedule(torch.tensor(s["trained_betas"]))
    return schedule, s.get("prediction_type", "epsilon")
