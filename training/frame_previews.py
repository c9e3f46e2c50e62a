"""Preview strips of published frame-model checkpoints, made right after training (as the VAE
previews in ``training.previews``): stage I → text-to-image samples for clip captions over the
real frames they describe; stage II / III → anchor | prediction | ground truth per target view.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from datagen.clips.clip import Clip
from datagen.previews import contact_sheet
from training.data.frame_clips import CLEAN_ANCHORS, batches, frame_triplets
from training.evaluation.frame_model import generate_frames, latent_shape, psnr
from training.modules.frame_common import load_frame_export
from training.previews import torch_threads

TILE = 64
PATCH_PIXELS = 16  # VAE ×8 · patch 2: frame sides the DiTs accept


def _threads(device) -> contextlib.AbstractContextManager:
    return torch_threads(1) if torch.device(device).type == "cpu" else contextlib.nullcontext()


def _uint8(x: torch.Tensor) -> list[np.ndarray]:
    """``[N, 3, H, W]`` in [0, 1] → N uint8 ``[H, W, 3]`` tiles."""
    return list((x.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())


def _captioned(clips: list[Clip], count: int) -> Iterator[tuple[str, np.ndarray]]:
    """Up to ``count`` (caption, frame) pairs: each clip's caption then its level captions, with
    frames spread over the clip, cycling through the clips."""
    options = []
    for clip in clips:
        captions = [c for c in [clip.caption, *clip.level_captions] if c] or [""]
        frames = np.linspace(0, clip.num_frames - 1, len(captions)).round().astype(int)
        options.append([(c, clip.rgb[f]) for c, f in zip(captions, frames)])
    depth = max((len(o) for o in options), default=0)
    picked = [o[i] for i in range(depth) for o in options if i < len(o)]
    yield from picked[:count]


@torch.no_grad()
def prior_samples_sheet(
    export_dir: str | Path,
    clips: list[Clip],
    count: int = 4,
    steps: int = 20,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, list[str]]:
    """Stage-I preview: row 1 samples of the published prior (DDIM ``steps``, CFG 4.5) for
    ``count`` captions of ``clips``, row 2 the frames those captions describe. Returns the sheet
    and the captions."""
    from training.modules.frame_stage1 import ImagePriorModule

    pairs = list(_captioned(clips, count))
    if not pairs:
        raise ValueError("no clips to take captions from")
    captions = [c for c, _ in pairs]
    # the first frame's size, rounded down to sides the prior accepts
    h, w = (max(PATCH_PIXELS, n // PATCH_PIXELS * PATCH_PIXELS) for n in pairs[0][1].shape[:2])
    with _threads(device):
        module = ImagePriorModule.load(export_dir, map_location=device)
        images = module.sample(captions, steps=steps, seed=seed, height=h, width=w)
    real = [frame for _, frame in pairs]
    return contact_sheet([_uint8(images), real], tile_height=TILE), captions


@torch.no_grad()
def frame_prediction_sheet(
    export_dir: str | Path,
    clips: list[Clip],
    count: int = 4,
    steps: int = 20,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, float]:
    """Stage-II / III preview: one row per target view — anchor | prediction | ground truth — for
    the first ``count`` targets of ``clips`` (clean anchors). A stage-III export samples with its
    own timesteps, a stage-II one with DDIM ``steps``. Returns the sheet and the mean PSNR of the
    predictions."""
    with _threads(device):
        export = load_frame_export(export_dir)
        export.dit.to(device).eval()
        export.vae.to(device).eval()
        timesteps = export.config.get("timesteps")
        samples = frame_triplets([("", c) for c in clips], CLEAN_ANCHORS, seed, limit=count)
        batch = next(batches(samples, count), None)
        if batch is None:
            raise ValueError("no frame targets in the preview clips")
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        target = batch["target"]
        shape = (target.shape[0], *latent_shape(export, *target.shape[-2:]))
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        pred = generate_frames(export, batch, noise, timesteps, None if timesteps else steps)
    rows = [
        [a, p, t]
        for a, p, t in zip(_uint8(batch["anchor"]), _uint8(pred), _uint8(target), strict=True)
    ]
    return contact_sheet(rows, tile_height=TILE), float(psnr(pred, target).mean())


@torch.no_grad()
def teacher_pairs_sheet(export_dir: str | Path, pairs_file: str | Path, count: int = 4):
    """Teacher-pairs preview: one row per pair — reference | anchor | teacher output — decoded
    with the teacher export's VAE. Returns the sheet (uint8 ``[H, W, 3]``)."""
    from models.autoencoders import decode
    from training.modules.frame_stage3 import load_teacher_pairs

    vae = load_frame_export(export_dir).vae.eval()
    pairs = load_teacher_pairs(pairs_file)
    n = min(count, len(pairs))
    cond = pairs.conditions.index(slice(0, n))
    with _threads("cpu"):
        images = [decode(vae, z.float()) for z in (cond.reference, cond.anchor, pairs.output[:n])]
    return contact_sheet([list(row) for row in zip(*map(_uint8, images))], tile_height=TILE)
