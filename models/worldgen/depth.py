"""Depth estimators for progressive detail synthesis (pluggable; ``DepthEstimator`` protocol).

An estimator maps an image and its camera to a ``DepthPrediction``: a map ``[H, W]`` that is
z-depth (``kind="depth"``) or inverse depth (``kind="disparity"``), metric or only up to an affine
transform — depth registration (``registration``) aligns it to the coarse geometry either way.

* ``OracleDepth``: exact depth from a function of the camera (tests, synthetic scenes);
  ``PlaneDepth`` is the oracle of a plane (also the documented fallback when nothing else is
  configured: a fronto-parallel plane in front of the base camera).
* ``CallableDepth``: any configured ``image [3, H, W] -> [H, W]`` function (a monocular network).
* ``models.worldgen.lalrm_lift.LaLRMDepth``: LaLRM ray distances of a single-view pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from models.geometry import camera_rays

KINDS = ("depth", "disparity")


@dataclass
class DepthPrediction:
    """``value [H, W]``: z-depth or disparity (``kind``); ``metric``: already in scene units;
    ``valid [H, W]`` bool or None (all valid)."""

    value: Tensor
    kind: str = "depth"
    metric: bool = False
    valid: Tensor | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"depth kind must be one of {KINDS}, got {self.kind!r}")
        if self.value.dim() != 2:
            raise ValueError(f"depth prediction must be [H, W], got {tuple(self.value.shape)}")

    def mask(self) -> Tensor:
        ok = torch.isfinite(self.value) & (self.value > 0)
        return ok if self.valid is None else ok & self.valid

    def as_depth(self, eps: float = 1e-6) -> Tensor:
        """z-depth ``[H, W]`` (disparity inverted; invalid pixels 0)."""
        m = self.mask()
        v = self.value if self.kind == "depth" else 1.0 / self.value.clamp_min(eps)
        return torch.where(m, v, torch.zeros_like(v))


class DepthEstimator(Protocol):
    """``(image [3, H, W] in [0, 1], K [3, 3], c2w [4, 4]) -> DepthPrediction``."""

    name: str

    def __call__(self, image: Tensor, K: Tensor, c2w: Tensor) -> DepthPrediction: ...


class OracleDepth:
    """Exact z-depth ``depth_fn(K, c2w, H, W) -> [H, W]`` of a known scene (metric)."""

    name = "oracle"

    def __init__(self, depth_fn: Callable[[Tensor, Tensor, int, int], Tensor]):
        self.depth_fn = depth_fn

    def __call__(self, image: Tensor, K: Tensor, c2w: Tensor) -> DepthPrediction:
        H, W = image.shape[-2:]
        d = self.depth_fn(K, c2w, H, W).to(image)
        return DepthPrediction(d, "depth", metric=True)


def plane_depth(point: Tensor, normal: Tensor, K: Tensor, c2w: Tensor, H: int, W: int) -> Tensor:
    """z-depth ``[H, W]`` of the plane through ``point`` with ``normal`` (world, ``[3]``) at every
    pixel centre (0 where the ray misses it or hits it behind the camera). float64 inside."""
    o, d = camera_rays(K.to(torch.float64), c2w.to(torch.float64), H, W)
    n, q = normal.to(torch.float64), point.to(torch.float64)
    denom = d @ n
    t = ((q - o) @ n) / torch.where(denom.abs() > 1e-12, denom, torch.ones_like(denom))
    t = torch.where((denom.abs() > 1e-12) & (t > 0), t, torch.zeros_like(t))
    return (t * (d @ c2w[:3, 2].to(torch.float64))).float()  # ray distance -> z-depth


class PlaneDepth(OracleDepth):
    """Oracle of the plane through ``point`` with ``normal`` (world)."""

    name = "plane"

    def __init__(self, point: Tensor, normal: Tensor):
        self.point, self.normal = torch.as_tensor(point), torch.as_tensor(normal)
        super().__init__(lambda K, c2w, H, W: plane_depth(self.point, self.normal, K, c2w, H, W))


def fronto_parallel_plane(c2w: Tensor, distance: float) -> PlaneDepth:
    """The plane at z-depth ``distance`` in front of camera ``c2w`` (facing it)."""
    axis = c2w[:3, 2].to(torch.float64)
    return PlaneDepth(c2w[:3, 3].to(torch.float64) + distance * axis, -axis)


class CallableDepth:
    """A configured monocular estimator ``fn(image [3, H, W]) -> [H, W]`` of ``kind`` (depth or
    disparity), affine-invariant unless ``metric``."""

    def __init__(
        self,
        fn: Callable[[Tensor], Tensor],
        kind: str = "depth",
        metric: bool = False,
        name: str = "callable",
    ):
        self.fn, self.kind, self.metric, self.name = fn, kind, metric, name

    def __call__(self, image: Tensor, K: Tensor, c2w: Tensor) -> DepthPrediction:
        value = self.fn(image)
        if value.shape != image.shape[-2:]:
            raise ValueError(
                f"depth estimator {self.name!r} returned {tuple(value.shape)}, expected "
                f"{tuple(image.shape[-2:])}"
            )
        return DepthPrediction(value.to(image), self.kind, self.metric)
