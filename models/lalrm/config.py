"""LaLRM architecture and Gaussian-activation settings, with the tiny / small / paper presets.

Paper (Wonderland §4 "Implementation Details", App. D.1, D.2): latent patch size ``p = 2``, Plücker
patch ``(4, 16, 16)`` = (VAE temporal ×4, ``8p``), 24 transformer blocks of width 1024 (GS-LRM
blocks: 16 heads of 64), 3D-DeConv strides ``(4, 16, 16)`` in the low-resolution stage and
``(4, 8, 8)`` in the high-resolution stage (a Gaussian map at half the video resolution).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

GAUSSIAN_CHANNELS = 12  # 3 RGB, 3 scale, 4 rotation (wxyz), 1 opacity, 1 ray distance


@dataclass
class LaLRMConfig:
    """LaLRM hyper-parameters.

    latent_channels: channels ``C`` of the video latents (CogVideoX 16, tiny VAE 8).
    latent_patch: spatial patch ``p`` of the latent tokenizer (paper 2).
    temporal_compression / spatial_compression: the video VAE's factors (4, 8); the Plücker
        tokenizer's kernel is ``(temporal_compression, spatial_compression · p, ... · p)``.
    width / depth / num_heads / mlp_ratio: the transformer (paper 1024 / 24 / 16 / 4).
    upsample: spatial stride ``s`` of the 3D deconvolution (temporal stride is
        ``temporal_compression``); the Gaussian map has ``s / (8 p)`` of the video resolution
        (paper: 16 low-res stage = full resolution, 8 high-res stage = half).
    near / far: ray-distance range of the Gaussian centres (scene units).
    scale_min / scale_max: Gaussian standard deviations in *pixels of the Gaussian map* (converted
        to world units with depth / focal; see ``gaussians``).
    opacity_bias: added to the opacity logit (initial opacity ``sigmoid(bias)``).
    gradient_checkpointing: recompute every transformer block in backward (training only).
    """

    latent_channels: int = 16
    latent_patch: int = 2
    temporal_compression: int = 4
    spatial_compression: int = 8
    width: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    upsample: int = 16
    near: float = 0.1
    far: float = 100.0
    scale_min: float = 0.1
    scale_max: float = 32.0
    opacity_bias: float = -2.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} not divisible by num_heads {self.num_heads}")
        if not 0 < self.near < self.far:
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")
        if not 0 < self.scale_min < self.scale_max:
            raise ValueError(
                f"need 0 < scale_min < scale_max, got {self.scale_min}, {self.scale_max}"
            )
        if self.latent_patch < 1 or self.upsample < 1:
            raise ValueError("latent_patch and upsample must be >= 1")

    @property
    def plucker_patch(self) -> tuple[int, int, int]:
        """Conv3d kernel = stride of the Plücker tokenizer, in pixel frames / pixels."""
        s = self.spatial_compression * self.latent_patch
        return (self.temporal_compression, s, s)

    @property
    def map_downsample(self) -> float:
        """Video resolution / Gaussian-map resolution (1 with ``upsample = 8 p``)."""
        return self.spatial_compression * self.latent_patch / self.upsample

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """Gaussian-map size for a ``height x width`` video."""
        s = self.spatial_compression * self.latent_patch
        return height // s * self.upsample, width // s * self.upsample

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LaLRMConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown LaLRM config keys {sorted(unknown)}")
        return cls(**values)


LALRM_CONFIGS: dict[str, dict] = {
    # CPU tests / smoke runs: latents of the tiny video VAE (8 channels), 9 frames at 64x64.
    "tiny": {
        "latent_channels": 8,
        "width": 64,
        "depth": 2,
        "num_heads": 4,
        "near": 0.5,
        "far": 10.0,
    },
    # one GPU: the platform's small video VAE (16 channels).
    "small": {"latent_channels": 16, "width": 512, "depth": 12, "num_heads": 8},
    # Wonderland D.2.
    "paper": {"latent_channels": 16, "width": 1024, "depth": 24, "num_heads": 16},
}


def lalrm_config(size: str = "tiny", **overrides) -> LaLRMConfig:
    """The preset of ``size`` (tiny, small, paper) with ``overrides`` applied."""
    if size not in LALRM_CONFIGS:
        raise ValueError(f"unknown LaLRM size {size!r}; one of {sorted(LALRM_CONFIGS)}")
    return LaLRMConfig.from_dict({**LALRM_CONFIGS[size], **overrides})
