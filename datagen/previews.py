"""Small preview images for asset metadata: contact sheets, depth colouring, data URIs."""

from __future__ import annotations

import base64

import numpy as np

from datagen.shards.codecs import encode_png


def depth_to_rgb(depth: np.ndarray) -> np.ndarray:
    """z-depth [H, W] -> uint8 [H, W, 3]: near bright, far dark (inverse depth), invalid black."""
    valid = depth > 0
    out = np.zeros((*depth.shape, 3), np.uint8)
    if not valid.any():
        return out
    inv = np.where(valid, 1.0 / np.maximum(depth, 1e-6), 0.0)
    lo, hi = np.percentile(inv[valid], [2, 98])
    t = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
    ramp = np.stack([t**0.5, t**1.5, 0.35 + 0.65 * (1 - t) * t * 4], -1).clip(0, 1)
    out[valid] = (ramp[valid] * 255).astype(np.uint8)
    return out


def resize_nearest(image: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour resize of [H, W, C] to `height` rows, keeping the aspect ratio."""
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    rows = (np.arange(height) * h / height).astype(int)
    cols = (np.arange(width) * w / width).astype(int)
    return image[rows][:, cols]


def contact_sheet(rows: list[list[np.ndarray]], tile_height: int = 96, gap: int = 2) -> np.ndarray:
    """Grid of uint8 [H, W, 3] tiles (rows may differ in length) on a dark background."""
    tiles = [[resize_nearest(t, tile_height) for t in row] for row in rows if row]
    width = max(sum(t.shape[1] + gap for t in row) for row in tiles) + gap
    height = len(tiles) * (tile_height + gap) + gap
    sheet = np.full((height, width, 3), 24, np.uint8)
    for r, row in enumerate(tiles):
        x, y = gap, gap + r * (tile_height + gap)
        for tile in row:
            sheet[y : y + tile_height, x : x + tile.shape[1]] = tile[..., :3]
            x += tile.shape[1] + gap
    return sheet


def png_markdown(image: np.ndarray, alt: str = "preview") -> str:
    """Markdown showing `image` inline (PNG data URI), for Dagster metadata."""
    data = base64.b64encode(encode_png(image, compress_level=6)).decode()
    return f"![{alt}](data:image/png;base64,{data})"


def clip_contact_sheet(clip, tile_height: int = 72) -> np.ndarray:
    """Rows: 4 frames spread over the clip, their depth, and the anchors of the first targets."""
    picks = sorted(set(np.linspace(0, clip.num_frames - 1, 4).round().astype(int).tolist()))
    rows = [[clip.rgb[i] for i in picks], [depth_to_rgb(clip.depth[i]) for i in picks]]
    if clip.pcr_rgb is not None:
        rows.append([clip.pcr_rgb[j] for j in range(min(4, len(clip.target_idx)))])
    return contact_sheet(rows, tile_height=tile_height)
