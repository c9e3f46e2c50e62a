"""Image files of a frame folder: natural-order listing, header checks, decoding, resizing.

PIL is imported here, at module level, so that any later pycolmap import in this process comes
after it (docs/camera-formats.md: pycolmap first breaks PIL's PNG writer).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from datagen.ingest.errors import IngestError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def natural_key(name: str) -> list:
    """Sort key that orders "frame2" before "frame10"."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """PNG/JPEG files directly inside `folder` (hidden files skipped), in natural order."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the header; PNGs are also checked chunk by chunk (truncation, bad CRC)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.format == "PNG":
                im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise IngestError(path, f"unreadable image ({e})") from None
    return int(h), int(w)


def check_sizes(item: Path, files: list[Path]) -> tuple[int, int]:
    """Common (H, W) of `files`; IngestError naming a mismatching file otherwise."""
    sizes = [image_size(p) for p in files]
    first = sizes[0]
    for p, s in zip(files, sizes):
        if s != first:
            n = sum(1 for t in sizes if t == first)
            raise IngestError(
                item,
                f"mixed image sizes: {n} of {len(files)} images are {first[1]}x{first[0]} "
                f"(WxH) but {p.name} is {s[1]}x{s[0]}",
            )
    return first


def fit_size(h: int, w: int, max_side: int | None) -> tuple[int, int]:
    """(H, W) scaled down so that max(H, W) <= max_side (aspect kept); unchanged otherwise."""
    if not max_side or max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [h, w, 3] (area-like downsampling via PIL's box/Lanczos)."""
    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))


def load_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode `path` to uint8 [H, W, 3] RGB, resized to `size` (H, W) when given."""
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise IngestError(path, f"cannot decode image ({e})") from None
    return resize(rgb, size) if size is not None else rgb


def save_png(rgb: np.ndarray, path: Path) -> None:
    """Write uint8 [H, W, 3] as PNG (fast compression)."""
    Image.fromarray(np.ascontiguousarray(rgb)).save(path, compress_level=1)
