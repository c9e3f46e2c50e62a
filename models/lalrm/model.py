"""The Latent Large Reconstruction Model (Wonderland §3.3, App. D.1, D.2).

latents ``[B, C, T', h, w]`` + Plücker ``[B, F, 6, H, W]`` (``F = 4(T' - 1) + 1``, ``H = 8h``)
→ tokenizers (``tokenizers``) → ``depth`` pre-norm transformer blocks (GS-LRM's block: LayerNorm,
multi-head self-attention through ``F.scaled_dot_product_attention`` — flash attention on CUDA in
bf16 —, LayerNorm, GELU MLP ×4; no positional embedding: the Plücker rays carry position) →
LayerNorm → 3D deconvolution of kernel = stride ``(4, s, s)`` (a per-token linear map to
``12 · 4 · s · s`` values, unpatchified) → the 12-channel Gaussian map ``[B, F, 12, Hm, Wm]``,
``Hm = (h / p) · s``. The deconvolution yields ``4 T' = F + 3`` frames; the first three belong to
the replicated first-frame rays of the Plücker tokenizer and are dropped, so map frame ``f``
comes from the token of latent frame ``ceil(f / 4)``, exactly the VAE's causal grouping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from models.geometry import scale_K

from .config import GAUSSIAN_CHANNELS, LaLRMConfig
from .gaussians import gaussians_from_map
from .tokenizers import LaLRMTokenizer, tokens_to_grid


class Attention(nn.Module):
    """Multi-head self-attention ``[B, N, D] → [B, N, D]`` with SDPA."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, bias=False)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden, bias=False), nn.GELU(), nn.Linear(hidden, dim, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GaussianDecoder(nn.Module):
    """Tokens ``[B, N, D]`` on grid ``(T', h', w')`` → raw Gaussian map ``[B, F, 12, h's, w's]``
    with ``F = 4 T' - 3`` (LayerNorm + 3D deconvolution, three leading frames dropped)."""

    def __init__(self, dim: int, temporal: int, upsample: int):
        super().__init__()
        self.temporal = temporal
        self.norm = nn.LayerNorm(dim)
        stride = (temporal, upsample, upsample)
        self.deconv = nn.ConvTranspose3d(dim, GAUSSIAN_CHANNELS, kernel_size=stride, stride=stride)

    def forward(self, tokens: Tensor, grid: tuple[int, int, int]) -> Tensor:
        x = self.deconv(tokens_to_grid(self.norm(tokens), grid))  # [B, 12, 4T', Hm, Wm]
        return x[:, :, self.temporal - 1 :].transpose(1, 2)


class LaLRM(nn.Module):
    """Video latents + Plücker rays → per-pixel Gaussian map; see the module doc.

    ``forward(latents [B, C, T', h, w], plucker [B, F, 6, 8h, 8w]) → [B, F, 12, Hm, Wm]`` (raw,
    before activations); ``gaussians(...)`` adds the activations and the pixel-aligned centres.
    """

    def __init__(self, config: LaLRMConfig | dict):
        super().__init__()
        self.config = config if isinstance(config, LaLRMConfig) else LaLRMConfig.from_dict(config)
        c = self.config
        self.tokenizer = LaLRMTokenizer(c)
        self.blocks = nn.ModuleList(
            Block(c.width, c.num_heads, c.mlp_ratio) for _ in range(c.depth)
        )
        self.decoder = GaussianDecoder(c.width, c.temporal_compression, c.upsample)
        self.apply(_init_weights)

    @property
    def gradient_checkpointing(self) -> bool:
        return self.config.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.config.gradient_checkpointing = bool(value)

    def forward(self, latents: Tensor, plucker: Tensor) -> Tensor:
        c = self.config
        if latents.shape[1] != c.latent_channels:
            raise ValueError(f"expected {c.latent_channels} latent channels, got {latents.shape}")
        T, h, w = latents.shape[2:]
        F_, H, W = plucker.shape[1], plucker.shape[-2], plucker.shape[-1]
        expected = (
            c.temporal_compression * (T - 1) + 1,
            c.spatial_compression * h,
            c.spatial_compression * w,
        )
        if (F_, H, W) != expected:
            raise ValueError(
                f"latents {tuple(latents.shape)} need Plücker of {expected[0]} frames at "
                f"{expected[1]}x{expected[2]}, got {tuple(plucker.shape)}"
            )
        dtype = self.tokenizer.merge.weight.dtype
        x, grid = self.tokenizer(latents.to(dtype), plucker.to(dtype))
        for block in self.blocks:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.decoder(x, grid)

    def map_intrinsics(self, K: Tensor, height: int, width: int) -> Tensor:
        """Intrinsics ``[..., 3, 3]`` of the ``height x width`` video → of the Gaussian map."""
        Hm, Wm = self.map_size(height, width)
        return scale_K(K, Wm / width, Hm / height)

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """Gaussian-map size for a ``height x width`` video."""
        return self.config.map_size(height, width)

    def gaussians(
        self, latents: Tensor, plucker: Tensor, K: Tensor, c2w: Tensor
    ) -> dict[str, Tensor]:
        """Pixel-aligned Gaussians of the context: ``K [B, F, 3, 3]`` (video pixels), ``c2w
        [B, F, 4, 4]`` of the context frames → ``gaussians_from_map``'s dict (N = F·Hm·Wm) plus
        ``map`` (raw ``[B, F, 12, Hm, Wm]``)."""
        raw = self(latents, plucker)
        H, W = plucker.shape[-2:]
        c = self.config
        out = gaussians_from_map(
            raw,
            self.map_intrinsics(K, H, W),
            c2w,
            near=c.near,
            far=c.far,
            scale_min=c.scale_min,
            scale_max=c.scale_max,
            opacity_bias=c.opacity_bias,
        )
        out["map"] = raw
        return out


def _init_weights(module: nn.Module) -> None:
    """Truncated-normal (σ 0.02) linear / conv weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def adapt_state_dict(state: dict[str, Tensor], model: LaLRM) -> dict[str, Tensor]:
    """``state`` of a LaLRM with another deconvolution stride, made loadable into ``model``.

    Progressive training (D.2) goes from strides ``(4, 16, 16)`` to ``(4, 8, 8)``: the deconv
    kernel ``[D, 12, 4, s, s]`` is average-pooled by ``s / s'`` (each new map pixel starts as the
    mean of the old pixels it covers) or, when ``s' > s``, repeated. Other entries pass as they
    are (their shapes do not depend on the stride).
    """
    key = "decoder.deconv.weight"
    target = model.state_dict()[key].shape
    if key not in state or state[key].shape == target:
        return dict(state)
    w = state[key]
    old, new = w.shape[-1], target[-1]
    if w.shape[:3] != target[:3]:
        raise ValueError(f"{key}: cannot adapt {tuple(w.shape)} to {tuple(target)}")
    flat = w.flatten(0, 2)  # [D·12·4, s, s]
    if old % new == 0:
        flat = F.avg_pool2d(flat[:, None], old // new)[:, 0]
    elif new % old == 0:
        r = new // old
        flat = flat.repeat_interleave(r, dim=-1).repeat_interleave(r, dim=-2)
    else:
        raise ValueError(f"{key}: strides {old} and {new} are not multiples of each other")
    return {**state, key: flat.reshape(target).contiguous()}
