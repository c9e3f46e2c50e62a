"""Byte codecs for shard members: PNG/JPEG images, 16-bit PNG depth, .npy arrays, JSON."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from PIL import Image


def encode_png(image: np.ndarray, compress_level: int = 1) -> bytes:
    """[H, W] or [H, W, 3] uint8/bool, or [H, W] uint16 -> PNG bytes (lossless)."""
    if image.dtype == np.bool_:
        pil = Image.fromarray(image.astype(np.uint8) * 255, mode="L")
    elif image.dtype == np.uint16:
        pil = Image.fromarray(image)
    else:
        pil = Image.fromarray(np.ascontiguousarray(image))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """[H, W, 3] uint8 -> JPEG bytes at `quality` (1-100)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [H, W(, 3)] or uint16 [H, W] (16-bit PNG)."""
    with Image.open(io.BytesIO(data)) as pil:
        pil.load()
        if pil.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(pil, dtype=np.uint16)
        if pil.mode not in ("L", "RGB"):
            pil = pil.convert("RGB")
        return np.asarray(pil)


def encode_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def decode_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def encode_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def decode_json(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))
