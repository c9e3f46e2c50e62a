"""What the image and video VAE modules share: sized configs and local pretrained loading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import torch

M = TypeVar("M")


def vae_config(
    kind: str,
    sizes: dict[str, dict],
    size: str,
    blocks: tuple[str, str],
    defaults: dict,
    overrides: dict,
) -> dict:
    """The diffusers keyword config of a ``kind`` (image, video) VAE of ``size``.

    Later entries win: what both VAEs share (RGB in and out, 4 levels of ``blocks`` = (down
    block, up block), SiLU, no shift factor, upcast), the class's ``defaults``, ``sizes[size]``,
    then ``overrides``. ValueError when ``size`` is not one of ``sizes``.
    """
    if size not in sizes:
        raise ValueError(f"unknown {kind} VAE size {size!r}; one of {sorted(sizes)}")
    down, up = blocks
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": (down,) * 4,
        "up_block_types": (up,) * 4,
        "act_fn": "silu",
        "shift_factor": None,
        "force_upcast": True,
        **defaults,
        **sizes[size],
        **overrides,
    }


def _vae_folder(path: str | os.PathLike) -> tuple[str, str | None]:
    """(folder, subfolder): a VAE folder itself, or a pipeline folder holding ``vae/``."""
    path = Path(path)
    if (path / "config.json").is_file():
        return str(path), None
    if (path / "vae" / "config.json").is_file():
        return str(path), "vae"
    raise FileNotFoundError(f"{path}: no config.json (nor vae/config.json) of a diffusers VAE")


def load_vae_folder(cls: type[M], path: str | os.PathLike, dtype: torch.dtype | None = None) -> M:
    """Load a diffusers VAE of class ``cls`` from a local folder (or a pipeline's ``vae/``);
    never downloads. Raises ValueError when the folder holds another model class."""
    folder, subfolder = _vae_folder(path)
    config = cls.load_config(folder, subfolder=subfolder, local_files_only=True)
    if config.get("_class_name", cls.__name__) != cls.__name__:
        raise ValueError(f"{path}: holds a {config['_class_name']}, not an {cls.__name__}")
    return cls.from_pretrained(
        folder, subfolder=subfolder, local_files_only=True, torch_dtype=dtype
    )
