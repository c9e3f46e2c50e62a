"""The frozen CogVideoX image-to-video base: building/loading it and its rotary embeddings.

The I2V form of ``CogVideoXTransformer3DModel`` takes ``in_channels = 2 × latent channels``:
noisy video latents concatenated channel-wise with the image-conditioning latents.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from torch import Tensor


def build_base(config: dict) -> CogVideoXTransformer3DModel:
    """A randomly initialised base from a config dict (tiny test/smoke models)."""
    return CogVideoXTransformer3DModel.from_config(dict(config))


def base_folder(path: str | Path) -> Path:
    """The transformer folder of ``path``: ``path/transformer`` for a pipeline root, else ``path``."""
    path = Path(path)
    return path / "transformer" if (path / "transformer" / "config.json").is_file() else path


def load_base(path: str | Path, dtype: torch.dtype | None = None) -> CogVideoXTransformer3DModel:
    """Load a pretrained base (a CogVideoX-5B-I2V pipeline root or its ``transformer`` folder)."""
    folder = base_folder(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no CogVideoX transformer config.json under {path}")
    return CogVideoXTransformer3DModel.from_pretrained(
        str(folder), local_files_only=True, torch_dtype=dtype
    )


def check_i2v(config) -> None:
    """ValueError unless ``config`` describes a CogVideoX 1.0 image-to-video transformer."""
    out = config.out_channels or config.in_channels
    if config.in_channels != 2 * out:
        raise ValueError(
            f"base must be image-to-video (in_channels = 2 × out_channels), got "
            f"in={config.in_channels}, out={out}"
        )
    if config.patch_size_t is not None:
        raise ValueError(
            "CogVideoX 1.5 bases (patch_size_t) are not supported; the paper's base is "
            "CogVideoX-5B-I2V (1.0)"
        )


def _crop_region(grid_h: int, grid_w: int, base_w: int, base_h: int):
    """diffusers' ``get_resize_crop_region_for_grid``: fit the grid into the base size."""
    if grid_h / grid_w > base_h / base_w:
        rh, rw = base_h, round(base_h / grid_h * grid_w)
    else:
        rw, rh = base_w, round(base_w / grid_w * grid_h)
    top, left = round((base_h - rh) / 2.0), round((base_w - rw) / 2.0)
    return (top, left), (top + rh, left + rw)


def rotary_embedding(
    config, num_latent_frames: int, h: int, w: int, device: torch.device
) -> tuple[Tensor, Tensor] | None:
    """CogVideoX 1.0 3D RoPE (cos, sin) ``[T' · h/p · w/p, head_dim]`` for a latent grid
    ``T' × h × w``, as the I2V pipeline builds it; None when the base has no rotary embedding."""
    if not config.use_rotary_positional_embeddings:
        return None
    p = config.patch_size
    gh, gw = h // p, w // p
    crops = _crop_region(gh, gw, config.sample_width // p, config.sample_height // p)
    return get_3d_rotary_pos_embed(
        embed_dim=config.attention_head_dim,
        crops_coords=crops,
        grid_size=(gh, gw),
        temporal_size=num_latent_frames,
        device=device,
    )
