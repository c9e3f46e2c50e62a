"""WorldFM's explicit 3D anchor: the global point cloud of the reference frames and its
z-buffered render (RGB + validity mask) at every target pose.

``global_point_cloud`` lifts the confident depth of the reference frames to world points
(``models.geometry.unproject``, OpenCV cameras, pixel centres at ``+0.5``), merges them on a voxel
grid (one averaged point per occupied voxel) and caps the count. ``render_anchors`` splats them
with ``models.render.render_points`` at the target poses, in batches. The same two calls serve
synthetic clips, ingested videos and inference; the shuffling / masking augmentations of WorldFM
§2.4.1 are applied at training time by ``training.data.frame_task.augment_anchor``.
"""

from __future__ import annotations

import numpy as np
import torch

from models.geometry import unproject
from models.render import render_points


def auto_voxel_size(depth: np.ndarray, K: np.ndarray, valid: np.ndarray, px: float = 1.0) -> float:
    """Voxel edge that spans ``px`` pixels at the median valid depth: ``median z / focal * px``.

    ``depth`` ``[R, H, W]``, ``K`` ``[R, 3, 3]``, ``valid`` bool ``[R, H, W]``; 0 when nothing is
    valid.
    """
    if not valid.any():
        return 0.0
    focal = float(np.median(0.5 * (K[:, 0, 0] + K[:, 1, 1])))
    return float(np.median(depth[valid])) / focal * px


def voxel_downsample(
    points: np.ndarray, colors: np.ndarray, voxel_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """One point per occupied voxel: the mean position and mean colour of the points in it.

    ``points`` ``[N, 3]``, ``colors`` ``[N, C]`` -> ``[M, 3]``, ``[M, C]`` (float32), voxels in
    lexicographic order of their integer coordinates (deterministic). ``voxel_size <= 0`` returns
    the inputs unchanged.
    """
    if voxel_size <= 0 or len(points) == 0:
        return points.astype(np.float32), colors.astype(np.float32)
    cells = np.floor(points.astype(np.float64) / voxel_size).astype(np.int64)
    _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    m = len(counts)
    sums = np.zeros((m, 3), np.float64)
    np.add.at(sums, inverse, points)
    csum = np.zeros((m, colors.shape[1]), np.float64)
    np.add.at(csum, inverse, colors)
    return (sums / counts[:, None]).astype(np.float32), (csum / counts[:, None]).astype(np.float32)


def global_point_cloud(
    rgb: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    c2w: np.ndarray,
    confidence: np.ndarray | None = None,
    min_confidence: float = 0.3,
    voxel_size: float | None = None,
    voxel_px: float = 1.0,
    max_points: int | None = 600_000,
) -> tuple[np.ndarray, np.ndarray]:
    """World points and colours of the reference frames.

    ``rgb`` uint8 ``[R, H, W, 3]``, ``depth`` ``[R, H, W]`` (z-depth, 0 = invalid), ``K``
    ``[R, 3, 3]``, ``c2w`` ``[R, 4, 4]``; ``confidence`` ``[R, H, W]`` keeps pixels with
    ``confidence >= min_confidence`` (None: every pixel with depth > 0). ``voxel_size``: edge of the
    merging grid in scene units; None = ``auto_voxel_size`` (``voxel_px`` pixels at the median
    depth), 0 = no merging. At most ``max_points`` points are kept, evenly spaced in the merged
    order (deterministic). Returns ``points`` float32 ``[N, 3]`` and ``colors`` float32 ``[N, 3]``
    in [0, 1].
    """
    depth = np.asarray(depth, np.float32)
    valid = depth > 0
    if confidence is not None:
        valid &= np.asarray(confidence) >= min_confidence
    d = torch.from_numpy(depth)
    pts = unproject(
        d, torch.as_tensor(K, dtype=torch.float64), torch.as_tensor(c2w, dtype=torch.float64)
    )
    mask = torch.from_numpy(valid)
    points = pts[mask].float()
    colors = torch.from_numpy(np.asarray(rgb)).float()[mask] / 255.0
    if voxel_size is None:
        voxel_size = auto_voxel_size(depth, np.asarray(K), valid, voxel_px)
    if voxel_size > 0:
        p, c = voxel_downsample(points.numpy(), colors.numpy(), voxel_size)
        points, colors = torch.from_numpy(p), torch.from_numpy(c)
    if max_points is not None and points.shape[0] > max_points:
        keep = torch.linspace(0, points.shape[0] - 1, max_points).round().long()
        points, colors = points[keep], colors[keep]
    return points.numpy(), colors.numpy()


def render_anchors(
    points: np.ndarray | torch.Tensor,
    colors: np.ndarray | torch.Tensor,
    K: np.ndarray,
    c2w: np.ndarray,
    H: int,
    W: int,
    radius_px: float = 1.0,
    device: str | torch.device = "cpu",
    budget: int = 40_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Point-cloud renders at poses ``c2w`` ``[T, 4, 4]`` with ``K`` ``[T, 3, 3]``.

    ``points`` ``[N, 3]``, ``colors`` ``[N, 3]`` in [0, 1]. Returns ``pcr_rgb`` uint8
    ``[T, H, W, 3]`` (0 where empty) and ``pcr_mask`` bool ``[T, H, W]``; poses are batched so
    that one batch splats at most ``budget`` point-pixel samples.
    """
    T = len(c2w)
    out_rgb = np.zeros((T, H, W, 3), np.uint8)
    out_mask = np.zeros((T, H, W), bool)
    n = int(points.shape[0])
    if T == 0 or n == 0:
        return out_rgb, out_mask
    pts = torch.as_tensor(points, dtype=torch.float32).to(device)
    cols = torch.as_tensor(colors, dtype=torch.float32).to(device)
    per_pose = n * (2 * int(np.ceil(radius_px)) + 1) ** 2
    chunk = max(1, budget // per_pose)
    Kt = torch.as_tensor(np.asarray(K), dtype=torch.float32, device=device)
    Ct = torch.as_tensor(np.asarray(c2w), dtype=torch.float32, device=device)
    for s in range(0, T, chunk):
        rgb, mask, _ = render_points(
            pts, cols, Kt[s : s + chunk], Ct[s : s + chunk], H, W, radius_px
        )
        out_rgb[s : s + chunk] = (
            (rgb.permute(0, 2, 3, 1) * 255 + 0.5).clamp(0, 255).byte().cpu().numpy()
        )
        out_mask[s : s + chunk] = mask.cpu().numpy()
    return out_rgb, out_mask
