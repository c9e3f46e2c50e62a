"""LaLRM (Wonderland §3.3) for world generation: a clip of views -> 3D Gaussians in the world,
single-view depth (``LaLRMDepth``), and Gaussians registered to a level's depth -> surfels.

Cameras are given to the LaLRM relative to view 0 with translations divided by ``scene_scale``
(as its training clips are: relative to the first frame, scale-normalised); the Gaussians come
back in world units. Views: ``F = 4k + 1`` frames ``[F, 3, H, W]`` in [0, 1] with ``H`` and ``W``
multiples of ``8 · latent_patch``; frame 0 alone (``F = 1``) is a single-view pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.autoencoders import encode
from models.geometry import matrix_to_quaternion, plucker_rays, quaternion_to_matrix
from models.surfels import SurfelSet

from .aux_views import normalised_path
from .depth import DepthPrediction
from .lifting import gaussians_to_surfels
from .registration import align_scale_shift


class LaLRMReconstructor:
    """``model``: a ``models.lalrm.LaLRM``; ``vae``: its video VAE (to encode the views)."""

    def __init__(self, model, vae, name: str = "lalrm"):
        if vae is None:
            raise ValueError(f"{name}: the LaLRM needs its video VAE to encode views")
        self.model, self.vae, self.name = model, vae, name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _check(self, frames: Tensor) -> None:
        c = self.model.config
        F_, _, H, W = frames.shape
        unit = c.spatial_compression * c.latent_patch
        if (F_ - 1) % c.temporal_compression or H % unit or W % unit:
            raise ValueError(
                f"{self.name}: views {tuple(frames.shape)} need F = {c.temporal_compression}k + 1 "
                f"frames and H, W multiples of {unit}"
            )

    @torch.no_grad()
    def gaussians(self, frames: Tensor, K: Tensor, c2w: Tensor, scene_scale: float = 1.0) -> dict:
        """World Gaussians of views ``frames [F, 3, H, W]`` at ``K [F, 3, 3]``, ``c2w [F, 4, 4]``:
        means ``[N, 3]``, quats ``[N, 4]``, scales ``[N, 3]``, opacities ``[N]``, colors ``[N, 3]``
        (N = F·Hm·Wm, view-major), plus view 0's z-depth map ``depth0 [Hm, Wm]``."""
        self._check(frames)
        dev = self.device
        H, W = frames.shape[-2:]
        rel = normalised_path(c2w, scene_scale).float().to(dev)
        Kf = K.float().to(dev)
        latents = encode(self.vae, frames[None].float().to(dev))
        plucker = plucker_rays(Kf, rel, H, W)[None]
        g = self.model.gaussians(latents.float(), plucker, Kf[None], rel[None])
        Hm, Wm = g["map"].shape[-2:]
        R0 = c2w[0, :3, :3].to(torch.float64).to(dev)
        t0 = c2w[0, :3, 3].to(torch.float64).to(dev)
        means = (scene_scale * g["means"][0].double()) @ R0.T + t0
        rot = R0 @ quaternion_to_matrix(g["quats"][0].double())
        d0 = (g["distances"][0, : Hm * Wm] * g["directions"][0, : Hm * Wm, 2]).reshape(Hm, Wm)
        return {
            "means": means.float(),
            "quats": matrix_to_quaternion(rot).float(),
            "scales": (scene_scale * g["scales"][0]).float(),
            "opacities": g["opacities"][0].float(),
            "colors": g["colors"][0].float(),
            "depth0": (scene_scale * d0).float(),
            "map_size": (Hm, Wm),
        }

    def depth(
        self, image: Tensor, K: Tensor, c2w: Tensor, scene_scale: float = 1.0
    ) -> DepthPrediction:
        """Single-view z-depth ``[H, W]`` of ``image [3, H, W]`` (the map's, upsampled)."""
        g = self.gaussians(image[None], K[None], c2w[None], scene_scale)
        return DepthPrediction(upsample_depth(g["depth0"], image.shape[-2:]).to(image), "depth")


class LaLRMDepth:
    """``DepthEstimator`` from LaLRM ray distances of a single-view pass (``scene_scale``: the
    unit the world's depths are expected in)."""

    def __init__(self, reconstructor: LaLRMReconstructor, scene_scale: float = 1.0):
        self.reconstructor, self.scene_scale = reconstructor, scene_scale
        self.name = reconstructor.name

    def __call__(self, image: Tensor, K: Tensor, c2w: Tensor) -> DepthPrediction:
        return self.reconstructor.depth(image, K, c2w, self.scene_scale)


def upsample_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    """``[h, w]`` -> ``[*size]`` (bilinear)."""
    if tuple(depth.shape) == tuple(size):
        return depth
    return F.interpolate(depth[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def registered_surfels(g: dict, depth: Tensor, K: Tensor, c2w: Tensor) -> SurfelSet:
    """Surfels from LaLRM world Gaussians ``g`` (``LaLRMReconstructor.gaussians``) registered to a
    level's z-``depth [H, W]`` at camera 0 (``K``, ``c2w``): every Gaussian is scaled about camera
    0's centre by the least-squares ratio of the registered to the LaLRM depth over view 0, then
    view 0's Gaussians slide along their rays onto the registered depth (their scales follow)."""
    Hm, Wm = g["map_size"]
    n0 = Hm * Wm
    reg = F.interpolate(depth[None, None].float(), size=(Hm, Wm), mode="area")[0, 0]
    reg = reg.to(g["depth0"].device)
    ok = (reg > 0) & (g["depth0"] > 0)
    s, _ = align_scale_shift(g["depth0"], reg, ok.float(), with_shift=False)
    centre = c2w[:3, 3].to(g["means"])
    means = centre + s * (g["means"] - centre)
    scales = s * g["scales"].clone()
    ratio = torch.where(ok, reg / (s * g["depth0"]).clamp_min(1e-12), torch.ones_like(reg))
    ratio = ratio.flatten()
    means[:n0] = centre + ratio[:, None] * (means[:n0] - centre)
    scales[:n0] = scales[:n0] * ratio[:, None]
    return gaussians_to_surfels(means, g["quats"], scales, g["opacities"], g["colors"])
