"""Shared pieces of the frame-model trainers (WorldFM stages I–III): folders and published URIs,
the image VAE, batch → latents + conditions, and the frame-model export format.

Frame-model export (stage II and III), a folder:

    config.json     {"format": "wonderforge.frame_model", "version": 1, "stage": 2 | 3,
                     "schedule": {...}, "timesteps": [999, 200] (stage III), "vae": {"path"}, ...}
    dit/            diffusers ``save_pretrained`` of the ``FrameDiT`` (stage III: the generator)
    vae/            the image VAE (unless it was loaded from a recorded path)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from datagen.store import store_from_env_uri
from models.autoencoders import build_image_vae, encode, load_image_vae
from models.frame import DiffusionSchedule, FrameCondition, FrameDiT
from training.publish import fetch_published

FRAME_FORMAT = "wonderforge.frame_model"


@contextmanager
def local_folder(path_or_uri: str | Path) -> Iterator[Path]:
    """A local path as is, or a published folder URI (``file://``, ``s3://``) fetched and
    sha256-verified into a temporary folder for the duration of the block."""
    text = str(path_or_uri)
    if "://" not in text:
        yield Path(text)
        return
    with tempfile.TemporaryDirectory(prefix="wonderforge-frame-") as tmp:
        yield fetch_published(store_from_env_uri(text), "", Path(tmp) / "folder")


def build_vae(spec: str | dict | None, fallback: str | Path | None = None):
    """The image VAE and its source path: ``spec`` a folder/URI (loaded), a dict (``size`` +
    config overrides, random weights), or None → ``fallback`` folder (e.g. ``<export>/vae``)."""
    if spec is None:
        spec = str(fallback) if fallback is not None else None
    if spec is None:
        raise ValueError("no VAE: give `vae` (a folder/URI or {size: tiny, ...})")
    if isinstance(spec, dict):
        cfg = dict(spec)
        return build_image_vae(cfg.pop("size", "tiny"), **cfg), None
    if "://" in str(spec):
        with local_folder(spec) as folder:
            return load_image_vae(folder), None  # fetched copies are embedded in exports
    return load_image_vae(spec), str(spec)


def frozen(module: torch.nn.Module) -> torch.nn.Module:
    return module.eval().requires_grad_(False)


@torch.no_grad()
def encode_frame_batch(vae, batch: dict, dtype: torch.dtype | None = None):
    """A "frame"-task batch → ``(target latent [B, C, h, w], FrameCondition)``: target, anchor and
    reference images encoded (posterior mode, scaled); ``anchor_masked`` from the batch."""
    images = torch.cat([batch["target"], batch["anchor"], batch["reference"]])
    latents = encode(vae, images.to(vae.dtype)).to(dtype or torch.float32)
    target, anchor, reference = latents.chunk(3)
    masked = batch.get("anchor_masked")
    if masked is not None and not torch.is_tensor(masked):
        masked = torch.as_tensor(masked)
    cond = FrameCondition(
        anchor=anchor,
        reference=reference,
        target_K=batch["target_K"].float(),
        target_c2w=batch["target_c2w"].float(),
        reference_K=batch["reference_K"].float(),
        reference_c2w=batch["reference_c2w"].float(),
        anchor_masked=None if masked is None else masked.to(target.device).bool(),
    )
    return target, cond


def drop_anchors(cond: FrameCondition, prob: float, generator=None) -> FrameCondition:
    """Drop each sample's anchor with probability ``prob`` (OR-ed with already-masked ones)."""
    B = cond.batch_size
    drop = torch.rand(B, generator=generator) < prob
    return cond.with_anchor_masked(cond.masked() | drop.to(cond.reference.device))


@dataclass
class FrameExport:
    dit: FrameDiT
    vae: AutoencoderKL
    schedule: DiffusionSchedule
    config: dict


def save_frame_export(
    directory: str | Path,
    dit: FrameDiT,
    vae: AutoencoderKL,
    schedule: DiffusionSchedule,
    vae_source: str | None = None,
    **extra,
) -> dict:
    """Write the frame-model export (see module docstring); returns its config."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    dit.save_pretrained(out / "dit", safe_serialization=True)
    if vae_source is None:
        vae.save_pretrained(out / "vae", safe_serialization=True)
    config = {
        "format": FRAME_FORMAT,
        "version": 1,
        "schedule": schedule.to_dict(),
        "vae": {"path": vae_source, "scaling_factor": float(vae.config.scaling_factor)},
        "camera_encoding": dit.config.camera_encoding,
        **extra,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return config


def load_frame_export(directory: str | Path, dtype: torch.dtype | None = None) -> FrameExport:
    """Read a frame-model export (local folder or published URI)."""
    with local_folder(directory) as d:
        config = json.loads((d / "config.json").read_text())
        if config.get("format") != FRAME_FORMAT:
            raise ValueError(
                f"{directory}: not a frame-model export (format {config.get('format')})"
            )
        dit = FrameDiT.from_pretrained(str(d / "dit"), local_files_only=True, torch_dtype=dtype)
        vae_dir = d / "vae" if (d / "vae").is_dir() else config["vae"]["path"]
        vae = load_image_vae(vae_dir)
    return FrameExport(dit, vae, DiffusionSchedule(**config["schedule"]), config)
