"""A published camera-guided video model as a ``datagen.generated.VideoGenerator``, and the
image prior (frame model stage I) as a source of conditioning images.

``load_camera_video_model`` resolves a version in the checkpoint registry (``latest`` follows
the pointer), fetches the export (sha256-verified) and rebuilds ``CameraVideoModule``;
``CameraVideoGenerator`` samples with it (CFG on text, DDIM or DPM) and records the checkpoint
URI and sampling settings that go into every generated clip's provenance.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from datagen.store import ArtifactStore
from training.modules.video_model import CameraVideoModule
from training.publish import INDEX, fetch_published
from training.registry import resolve

MODEL = "camera_video_model"


def pick_device(device: str | None = "auto") -> torch.device:
    """``auto``/None -> CUDA when available, else CPU; anything else as given."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_geometry(module: CameraVideoModule) -> dict[str, int]:
    """The frame size and count the model was built for: ``height``, ``width`` (pixels) and
    ``num_frames`` (from the base's ``sample_*`` config and the VAE's spatial factor)."""
    config = module.model.base.config
    s = module.model.config.spatial_compression
    return {
        "height": int(config.sample_height) * s,
        "width": int(config.sample_width) * s,
        "num_frames": int(config.sample_frames),
    }


def load_camera_video_model(
    store: ArtifactStore,
    version: str = "latest",
    device: str | torch.device | None = "auto",
    cache_dir: str | Path | None = None,
) -> tuple[CameraVideoModule, dict[str, Any]]:
    """Fetch and load a published version; returns ``(module in eval mode, info)`` with info
    ``model``, ``version``, ``prefix``, ``uri`` and ``vae_id`` (``<uri>/vae`` when the export
    embeds its VAE, else the VAE path recorded at training).

    cache_dir: keep the fetched folder under ``cache_dir/<version>`` (reused when its index is
    there); default a temporary folder removed after loading (everything is read eagerly).
    """
    prefix = resolve(store, MODEL, version)
    info = {
        "model": MODEL,
        "version": posixpath.basename(prefix),
        "prefix": prefix,
        "uri": store.uri(prefix),
    }
    device = pick_device(device) if isinstance(device, str | None) else device

    def load(folder: Path) -> CameraVideoModule:
        if not (folder / INDEX).is_file():
            fetch_published(store, prefix, folder)
        config = json.loads((folder / "config.json").read_text())
        embedded = (folder / "vae" / "config.json").is_file()
        info["vae_id"] = f"{info['uri']}/vae" if embedded else str(config["vae"]["path"])
        return CameraVideoModule.load(folder, map_location=device)

    if cache_dir is not None:
        module = load(Path(cache_dir) / info["version"])
    else:
        with tempfile.TemporaryDirectory(prefix="wonderforge-video-") as tmp:
            module = load(Path(tmp) / "export")
    return module.eval(), info


class CameraVideoGenerator:
    """``datagen.generated.VideoGenerator`` over a ``CameraVideoModule``.

    checkpoint / vae_id: provenance strings (``load_camera_video_model``'s ``uri`` and
    ``vae_id``); steps, guidance_scale (text CFG; <= 1 disables it), scheduler (``ddim`` |
    ``dpm``), negative_prompt: sampling settings, kept in ``settings``.
    """

    def __init__(
        self,
        module: CameraVideoModule,
        checkpoint: str,
        vae_id: str,
        steps: int = 50,
        guidance_scale: float = 6.0,
        scheduler: str = "ddim",
        negative_prompt: str = "",
    ):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if module.vae is None:
            raise ValueError(f"{checkpoint}: the camera video model has no VAE to decode frames")
        self.module = module
        self.sampler = module.sampler(scheduler)
        self.checkpoint, self.vae_id = checkpoint, vae_id
        self.steps, self.guidance_scale = steps, guidance_scale
        self.negative_prompt = negative_prompt
        self.settings: dict[str, Any] = {
            "steps": steps,
            "guidance_scale": guidance_scale,
            "scheduler": scheduler,
            "negative_prompt": negative_prompt,
        }

    @property
    def geometry(self) -> dict[str, int]:
        return model_geometry(self.module)

    def __call__(
        self, image: Tensor, K: Tensor, c2w: Tensor, caption: str = "", seed: int = 0
    ) -> tuple[Tensor, Tensor]:
        """image ``[3, H, W]`` in [0, 1], K ``[F, 3, 3]``, c2w ``[F, 4, 4]`` -> latents
        ``[C, t, h, w]`` and frames ``[F, 3, H, W]`` in [0, 1] (both float32 on the CPU)."""
        latents, frames = self.sampler.sample(
            image,
            K,
            c2w,
            prompt=caption,
            num_frames=int(c2w.shape[0]),
            steps=self.steps,
            guidance_scale=self.guidance_scale,
            seed=seed,
            negative_prompt=self.negative_prompt,
        )
        return latents[0].cpu(), frames.clamp(0.0, 1.0).cpu()


def load_generator(
    store: ArtifactStore,
    version: str = "latest",
    device: str | None = "auto",
    steps: int = 50,
    guidance_scale: float = 6.0,
    scheduler: str = "ddim",
    cache_dir: str | Path | None = None,
) -> CameraVideoGenerator:
    """``load_camera_video_model`` + ``CameraVideoGenerator`` (checkpoint = the version's URI)."""
    module, info = load_camera_video_model(store, version, device, cache_dir)
    return CameraVideoGenerator(
        module, info["uri"], info["vae_id"], steps, guidance_scale, scheduler
    )


def image_prior_images(
    prior: str | Path,
    prompts: list[str],
    steps: int = 20,
    guidance_scale: float = 4.5,
    seed: int = 0,
    device: str | None = "auto",
) -> list[np.ndarray]:
    """Text -> uint8 ``[H, W, 3]`` images from an image-prior export (a folder or a published
    URI; ``ImagePriorModule``) at its native size, one per prompt."""
    from training.modules.frame_stage1 import ImagePriorModule

    if not prompts:
        raise ValueError("the image prior needs at least one prompt")
    module = ImagePriorModule.load(prior, map_location=pick_device(device))
    images = module.sample(list(prompts), steps=steps, guidance_scale=guidance_scale, seed=seed)
    array = (images.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)
    return list(array.cpu().numpy())
