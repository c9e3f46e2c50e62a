"""WorldFM frame model (§2.4.1): a PixArt-Σ-style DiT over [noisy target │ anchor │ reference].

The three latents ``[B, C, h, w]`` are concatenated along the width (``[B, C, h, 3w]``), patch
embedded by one shared ``Conv2d`` (kernel = stride = patch, so patches never straddle two parts),
given 2D sinusoidal positions over the whole ``h × 3w`` grid and processed by self-attention-only
blocks (adaLN-single timestep modulation as in PixArt; no text cross-attention). The output is
split along the width and only the target part is kept (the final layer is token-wise, so it runs
on the target tokens only).

Camera encodings (``camera_encoding``): ``prope`` (projective relative encoding in attention with
2D RoPE inside each image, see ``prope``), ``plucker`` (6-D Plücker ray per patch → 2-layer MLP,
added), ``parametric`` (``[R | t]`` of c2w → MLP, added to the view's tokens), ``none``. The anchor
is rendered at the target pose, so it carries the target camera.

Anchor masking: for samples with ``anchor_masked`` the anchor latent is zeroed and the anchor's
tokens are removed from every attention's keys/values, so the target and reference tokens receive
exactly nothing from the anchor (its content, positions or camera).

Sinusoidal positions: PixArt normalises grid positions by ``grid / base_size``; here both axes are
normalised by the size of one view, so the target part has exactly PixArt's positions for an
``h × w`` image and the anchor and reference continue to the right.

Parameter names follow diffusers' ``PixArtTransformer2DModel`` so that ``load_image_prior_weights``
copies the stage-I prior (patch embedding, self-attention, MLP, adaLN-single, final layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.embeddings import get_1d_sincos_pos_embed_from_grid
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormSingle
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from models.geometry import plucker_rays

from .causal import KV, ConditionCache, ViewGeometry, view_block
from .conditions import FrameCondition
from .prope import grid_rope, projection_matrices, prope_attention

CAMERA_ENCODINGS = ("prope", "plucker", "parametric", "none")
CONDITION_ATTENTION = ("full", "causal")
VIEWS = ("target", "anchor", "reference")


def concat_width(*latents: Tensor) -> Tensor:
    """``n`` latents ``[B, C, h, w]`` → ``[B, C, h, n·w]`` (side by side)."""
    shapes = {tuple(x.shape) for x in latents}
    if len(shapes) != 1:
        raise ValueError(f"latents to concatenate must share a shape, got {sorted(shapes)}")
    return torch.cat(latents, dim=-1)


def split_width(x: Tensor, n: int) -> tuple[Tensor, ...]:
    """``[B, C, h, n·w]`` → ``n`` tensors ``[B, C, h, w]``."""
    if x.shape[-1] % n:
        raise ValueError(f"width {x.shape[-1]} is not divisible by {n}")
    return x.chunk(n, dim=-1)


def frame_pos_embed(
    dim: int, hp: int, wp: int, views: int, base_size: int, interpolation_scale: float
) -> Tensor:
    """2D sin-cos positions ``[hp·views·wp, dim]`` of the row-major ``hp × (views·wp)`` grid; both
    axes scaled as PixArt scales an ``hp × wp`` grid (first half: column, second half: row)."""
    cols = torch.arange(views * wp, dtype=torch.float32) / (wp / base_size) / interpolation_scale
    rows = torch.arange(hp, dtype=torch.float32) / (hp / base_size) / interpolation_scale
    gc, gr = torch.meshgrid(cols, rows, indexing="xy")  # [hp, views·wp] each
    emb_c = get_1d_sincos_pos_embed_from_grid(dim // 2, gc.reshape(-1), output_type="pt")
    emb_r = get_1d_sincos_pos_embed_from_grid(dim // 2, gr.reshape(-1), output_type="pt")
    return torch.cat([emb_c, emb_r], dim=1).float()


class PatchEmbed(nn.Module):
    """The shared patch embedding (``proj``: Conv2d, kernel = stride = patch)."""

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, h, w]`` → ``[B, D, h/p, w/p]``."""
        return self.proj(x)


@dataclass
class AttentionContext:
    """Per-forward attention inputs: ``mask`` ``[B, 1, 1, N]`` bool (True = key visible) or None;
    PRoPE per-token ``P``, ``P_inv`` ``[B, N, 4, 4]`` and ``rope`` coefficients, or None."""

    mask: Tensor | None = None
    P: Tensor | None = None
    P_inv: Tensor | None = None
    rope: tuple[Tensor, ...] | None = None
    rotate_values: bool = True


class SelfAttention(nn.Module):
    """Multi-head self-attention (PixArt ``attn1`` names: ``to_q/k/v``, ``to_out.0``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float = 0.0):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(dropout)])

    def forward(self, x: Tensor, ctx: AttentionContext) -> Tensor:
        """``x [B, N, D]`` → ``[B, N, D]``."""
        B, N, _ = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.view(B, N, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.to_q(x)), heads(self.to_k(x)), heads(self.to_v(x))
        if ctx.P is not None:
            o = prope_attention(q, k, v, ctx.P, ctx.P_inv, ctx.rope, ctx.mask, ctx.rotate_values)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=ctx.mask)
        o = o.transpose(1, 2).reshape(B, N, self.heads * self.head_dim)
        return self.to_out[1](self.to_out[0](o))


class FrameBlock(nn.Module):
    """PixArt's block (adaLN-single) without cross-attention: modulated self-attention + MLP."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.attn1 = SelfAttention(dim, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.ff = FeedForward(dim, dropout=dropout, activation_fn="gelu-approximate")
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def modulation(self, t_mod: Tensor) -> tuple[Tensor, ...]:
        """adaLN-single ``t_mod [B, 6D]`` → shift/scale/gate of attention and MLP, ``[B, 1, D]``."""
        return (self.scale_shift_table[None] + t_mod.reshape(t_mod.shape[0], 6, -1)).chunk(6, 1)

    def forward(self, x: Tensor, t_mod: Tensor, ctx: AttentionContext) -> Tensor:
        """``x [B, N, D]``, ``t_mod [B, 6D]`` (adaLN-single) → ``[B, N, D]``."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.modulation(t_mod)
        h = self.norm1(x) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.attn1(h, ctx)
        h = self.norm2(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.ff(h)


def _mlp(in_dim: int, dim: int) -> nn.Sequential:
    """Two-layer MLP whose last layer starts at zero (adds nothing at initialisation)."""
    mlp = nn.Sequential(nn.Linear(in_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class FrameDiT(ModelMixin, ConfigMixin):
    """The frame model ε_θ(z_t, t, 𝒞) (WorldFM §2.2, §2.4.1).

    in_channels: latent channels C; out_channels: channels of ``proj_out`` (C, or 2C to keep
        PixArt-Σ's learned-σ head; the forward returns the first C = the ε / v prediction);
    sample_size: latent size of one view the positions are normalised to (PixArt's);
    vae_scale_factor: pixels per latent (the intrinsics are in pixels of the ``8h × 8w`` image);
    camera_encoding: prope | plucker | parametric | none; rope_base: PRoPE's RoPE frequency base;
    prope_rotate_values: GTA-style RoPE on values/outputs (reference PRoPE) or on q/k only;
    condition_attention: ``full`` (the paper: one self-attention over all three views, every
    token modulated by t) or ``causal`` (clean, block-causal conditions whose keys/values are
    cached across steps and frames, see ``causal``).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int | None = None,
        patch_size: int = 2,
        num_layers: int = 28,
        num_attention_heads: int = 16,
        attention_head_dim: int = 72,
        sample_size: int = 64,
        interpolation_scale: float | None = None,
        vae_scale_factor: int = 8,
        camera_encoding: str = "prope",
        rope_base: float = 100.0,
        prope_rotate_values: bool = True,
        norm_eps: float = 1e-6,
        dropout: float = 0.0,
        condition_attention: str = "full",
    ):
        super().__init__()
        if camera_encoding not in CAMERA_ENCODINGS:
            raise ValueError(f"camera_encoding must be one of {CAMERA_ENCODINGS}")
        if condition_attention not in CONDITION_ATTENTION:
            raise ValueError(f"condition_attention must be one of {CONDITION_ATTENTION}")
        dim = num_attention_heads * attention_head_dim
        self.inner_dim = dim
        self.out_channels = out_channels or in_channels
        if self.out_channels % in_channels:
            raise ValueError("out_channels must be a multiple of in_channels")
        self.pos_embed = PatchEmbed(in_channels, dim, patch_size)
        self.adaln_single = AdaLayerNormSingle(dim, use_additional_conditions=False)
        self.transformer_blocks = nn.ModuleList(
            FrameBlock(dim, num_attention_heads, attention_head_dim, norm_eps, dropout)
            for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * self.out_channels)
        self.camera_embed = None
        if camera_encoding == "plucker":
            self.camera_embed = _mlp(6, dim)
        elif camera_encoding == "parametric":
            self.camera_embed = _mlp(12, dim)
        self.gradient_checkpointing = False
        self._pos_cache: dict[tuple, Tensor] = {}  # positions per (grid, device, dtype)

    # ---- embedding ---------------------------------------------------------------------------

    def _interp(self) -> float:
        s = self.config.interpolation_scale
        return float(s) if s is not None else float(max(self.config.sample_size // 64, 1))

    def view_positions(self, view: int, hp: int, wp: int, device, dtype) -> Tensor:
        """Sinusoidal positions ``[D, hp, wp]`` of view ``view`` (0 target, 1 anchor, 2 reference)."""
        key = (hp, wp, str(device), dtype)
        if key not in self._pos_cache:
            base = self.config.sample_size // self.config.patch_size
            pos = frame_pos_embed(self.inner_dim, hp, wp, 3, base, self._interp())
            pos = pos.view(hp, 3, wp, -1).permute(1, 3, 0, 2)  # [3, D, hp, wp]
            self._pos_cache[key] = pos.to(device=device, dtype=dtype).contiguous()
        return self._pos_cache[key][view]

    def _camera_tokens(self, K: Tensor, c2w: Tensor, hp: int, wp: int) -> Tensor | None:
        """Additive camera embedding ``[B, D, hp, wp]`` (plucker / parametric) or None."""
        enc = self.config.camera_encoding
        dtype = self.pos_embed.proj.weight.dtype
        if enc == "plucker":
            f = self.config.vae_scale_factor * self.config.patch_size
            rays = plucker_rays(K.float(), c2w.float(), hp * f, wp * f, downsample=f)
            return self.camera_embed(rays.permute(0, 2, 3, 1).to(dtype)).permute(0, 3, 1, 2)
        if enc == "parametric":
            Rt = c2w[:, :3, :4].reshape(-1, 12).to(dtype)
            return self.camera_embed(Rt)[:, :, None, None].expand(-1, -1, hp, wp)
        return None

    def embed_view(self, latent: Tensor, view: int, K: Tensor, c2w: Tensor) -> Tensor:
        """Tokens of one view as a grid ``[B, D, hp, wp]``: patch embedding + positions (+ additive
        camera embedding). The reference's grid does not change along a camera path: cache it."""
        x = self.pos_embed(latent.to(self.pos_embed.proj.weight.dtype))
        x = x + self.view_positions(view, x.shape[-2], x.shape[-1], x.device, x.dtype)
        cam = self._camera_tokens(K, c2w, x.shape[-2], x.shape[-1])
        return x if cam is None else x + cam.to(x.dtype)

    def embed_reference(self, cond: FrameCondition) -> Tensor:
        """``[B, D, hp, wp]`` reference tokens (pass as ``reference_tokens`` to reuse them)."""
        return self.embed_view(cond.reference, 2, cond.reference_K, cond.reference_c2w)

    def _context(self, cond: FrameCondition, hp: int, wp: int) -> AttentionContext:
        device = cond.reference.device
        cols = torch.arange(3 * wp, device=device).repeat(hp)
        rows = torch.arange(hp, device=device).repeat_interleave(3 * wp)
        view_id = cols // wp
        ctx = AttentionContext(rotate_values=self.config.prope_rotate_values)
        masked = cond.masked()
        if cond.anchor_masked is not None:  # no host sync: compiles to one graph
            is_anchor = view_id == 1
            ctx.mask = ~(masked[:, None] & is_anchor[None])[:, None, None, :]
        if self.config.camera_encoding == "prope":
            f = self.config.vae_scale_factor * self.config.patch_size
            K = torch.stack([cond.target_K, cond.target_K, cond.reference_K], 1).float()
            c2w = torch.stack([cond.target_c2w, cond.target_c2w, cond.reference_c2w], 1).float()
            P, P_inv = projection_matrices(K, c2w, hp * f, wp * f)  # [B, 3, 4, 4]
            ctx.P, ctx.P_inv = P[:, view_id], P_inv[:, view_id]
            ctx.rope = grid_rope(
                cols % wp, rows, self.config.attention_head_dim, self.config.rope_base
            )
        return ctx

    # ---- causal conditions (cached keys/values) -------------------------------------------------

    def _view_geometry(self, K: Tensor, c2w: Tensor, hp: int, wp: int) -> ViewGeometry:
        """PRoPE inputs of one view's ``hp·wp`` tokens for cameras ``K [B, 3, 3]``, ``c2w [B, 4, 4]``."""
        geo = ViewGeometry(rotate_values=self.config.prope_rotate_values)
        if self.config.camera_encoding != "prope":
            return geo
        f = self.config.vae_scale_factor * self.config.patch_size
        P, P_inv = projection_matrices(K.float()[:, None], c2w.float()[:, None], hp * f, wp * f)
        n = hp * wp
        geo.P, geo.P_inv = P.expand(-1, n, 4, 4), P_inv.expand(-1, n, 4, 4)
        cols = torch.arange(wp, device=K.device).repeat(hp)
        rows = torch.arange(hp, device=K.device).repeat_interleave(wp)
        geo.rope = grid_rope(cols, rows, self.config.attention_head_dim, self.config.rope_base)
        return geo

    def _clean_modulation(self, B: int, device, dtype) -> Tensor:
        """adaLN-single of ``t = 0`` ``[B, 6D]``: conditions are clean inputs."""
        t0 = torch.zeros(B, device=device, dtype=torch.long)
        return self.adaln_single(t0, None, batch_size=B, hidden_dtype=dtype)[0]

    def _view_block(self, block, x, t_mod, geo, attended, mask=None) -> tuple[Tensor, KV]:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(view_block, block, x, t_mod, geo, attended, mask, use_reentrant=False)
        return view_block(block, x, t_mod, geo, attended, mask)

    def _clean_view_kv(
        self, grid: Tensor, K: Tensor, c2w: Tensor, attended: list[KV] | None
    ) -> list[KV]:
        """Per-layer ``(k', v')`` of a condition view's token ``grid [B, D, hp, wp]`` (t = 0),
        attending to itself and, per layer, to ``attended``."""
        B, _, hp, wp = grid.shape
        x = grid.flatten(2).transpose(1, 2)
        t0 = self._clean_modulation(B, x.device, x.dtype)
        geo = self._view_geometry(K, c2w, hp, wp)
        kvs = []
        for i, block in enumerate(self.transformer_blocks):
            x, kv = self._view_block(block, x, t0, geo, [attended[i]] if attended else [])
            kvs.append(kv)
        return kvs

    def reference_kv(
        self, cond: FrameCondition, reference_tokens: Tensor | None = None
    ) -> list[KV]:
        """Causal layout: the reference's per-layer keys/values (once per scene)."""
        self._require_causal()
        tokens = self.embed_reference(cond) if reference_tokens is None else reference_tokens
        return self._clean_view_kv(tokens, cond.reference_K, cond.reference_c2w, None)

    def anchor_kv(self, cond: FrameCondition, reference_kv: list[KV]) -> list[KV]:
        """Causal layout: the anchor's per-layer keys/values (once per frame); a masked anchor
        is zeroed as in the full layout, and the target does not attend to it."""
        self._require_causal()
        B = cond.batch_size
        masked = cond.masked()
        anchor = torch.where(masked.view(B, 1, 1, 1), torch.zeros_like(cond.anchor), cond.anchor)
        grid = self.embed_view(anchor, 1, cond.target_K, cond.target_c2w)
        return self._clean_view_kv(grid, cond.target_K, cond.target_c2w, reference_kv)

    def condition_cache(
        self, cond: FrameCondition, reference_tokens: Tensor | None = None
    ) -> ConditionCache:
        """Both caches for ``cond`` (pass as ``forward(..., cache=)``)."""
        reference = self.reference_kv(cond, reference_tokens)
        return ConditionCache(reference, self.anchor_kv(cond, reference))

    def _require_causal(self) -> None:
        if self.config.condition_attention != "causal":
            raise ValueError("condition caches need condition_attention='causal'")

    def _forward_causal(
        self, sample: Tensor, timestep: Tensor, cond: FrameCondition, cache: ConditionCache
    ) -> Tensor:
        B, C, h, w = sample.shape
        p = self.config.patch_size
        hp, wp = h // p, w // p
        if cache.anchor is None:
            cache = ConditionCache(cache.reference, self.anchor_kv(cond, cache.reference))
        grid = self.embed_view(sample, 0, cond.target_K, cond.target_c2w)
        x = grid.flatten(2).transpose(1, 2)  # [B, n, D]
        t_mod, t_emb = self.adaln_single(timestep, None, batch_size=B, hidden_dtype=x.dtype)
        geo = self._view_geometry(cond.target_K, cond.target_c2w, hp, wp)
        mask = None
        if cond.anchor_masked is not None:  # keys: [target | anchor | reference]
            n = hp * wp
            visible = torch.ones(B, 3 * n, dtype=torch.bool, device=x.device)
            visible[:, n : 2 * n] = ~cond.masked()[:, None]
            mask = visible[:, None, None, :]
        for i, block in enumerate(self.transformer_blocks):
            x, _ = self._view_block(
                block, x, t_mod, geo, [cache.anchor[i], cache.reference[i]], mask
            )
        return self._final(x, t_emb, hp, wp, C)

    def _final(self, x: Tensor, t_emb: Tensor, hp: int, wp: int, C: int) -> Tensor:
        """Target tokens ``[B, hp·wp, D]`` → prediction ``[B, C, h, w]``."""
        shift, scale = (self.scale_shift_table[None] + t_emb[:, None]).chunk(2, dim=1)
        x = self.proj_out(self.norm_out(x) * (1 + scale) + shift)
        return unpatchify(x, hp, wp, self.config.patch_size, self.out_channels)[:, :C]

    # ---- forward -----------------------------------------------------------------------------

    def forward(
        self,
        sample: Tensor,
        timestep: Tensor,
        cond: FrameCondition,
        reference_tokens: Tensor | None = None,
        cache: ConditionCache | None = None,
    ) -> Tensor:
        """``sample`` = noisy target latent ``[B, C, h, w]``, ``timestep [B]`` → prediction
        ``[B, C, h, w]`` (ε or v). ``reference_tokens``: cached ``embed_reference(cond)``;
        ``cache``: causal layout only, the conditions' keys/values (``condition_cache``)."""
        if self.config.condition_attention == "causal":
            if cache is None:
                cache = ConditionCache(self.reference_kv(cond, reference_tokens))
            return self._forward_causal(sample, timestep, cond, cache)
        if cache is not None:
            raise ValueError("cache is only used with condition_attention='causal'")
        B, C, h, w = sample.shape
        p = self.config.patch_size
        hp, wp = h // p, w // p
        masked = cond.masked()
        anchor = torch.where(masked.view(B, 1, 1, 1), torch.zeros_like(cond.anchor), cond.anchor)
        if reference_tokens is None:
            reference_tokens = self.embed_reference(cond)
        grids = [
            self.embed_view(sample, 0, cond.target_K, cond.target_c2w),
            self.embed_view(anchor, 1, cond.target_K, cond.target_c2w),
            reference_tokens.expand(B, -1, -1, -1),
        ]
        grid = torch.cat(grids, dim=-1)  # [B, D, hp, 3wp]: the width-concatenated token grid
        x = grid.flatten(2).transpose(1, 2)  # [B, N, D], row-major over hp x 3wp
        t_mod, t_emb = self.adaln_single(timestep, None, batch_size=B, hidden_dtype=x.dtype)
        ctx = self._context(cond, hp, wp)
        for block in self.transformer_blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, t_mod, ctx, use_reentrant=False)
            else:
                x = block(x, t_mod, ctx)
        x = x.view(B, hp, 3 * wp, -1)[:, :, :wp].reshape(B, hp * wp, -1)  # keep the target
        return self._final(x, t_emb, hp, wp, C)


def unpatchify(x: Tensor, hp: int, wp: int, p: int, channels: int) -> Tensor:
    """Tokens ``[B, hp·wp, p·p·c]`` (PixArt's ``(p, q, c)`` order) → ``[B, c, hp·p, wp·p]``."""
    B = x.shape[0]
    x = x.reshape(B, hp, wp, p, p, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(B, channels, hp * p, wp * p)


def frame_config_from_pixart(pixart_config: dict, **overrides) -> dict:
    """A ``FrameDiT`` config with the dimensions of a ``PixArtTransformer2DModel`` config."""
    c = dict(pixart_config)
    config = {
        "in_channels": c["in_channels"],
        "out_channels": c["in_channels"],
        "patch_size": c.get("patch_size") or 2,
        "num_layers": c["num_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "attention_head_dim": c["attention_head_dim"],
        "sample_size": c["sample_size"],
        "interpolation_scale": c.get("interpolation_scale"),
        "norm_eps": c.get("norm_eps", 1e-6),
    }
    config.update(overrides)
    return config


@torch.no_grad()
def load_image_prior_weights(frame: FrameDiT, pixart_state: dict[str, Tensor]) -> dict[str, list]:
    """Copy a (stage-I) ``PixArtTransformer2DModel`` state dict into ``frame`` where names and
    shapes match; a learned-σ ``proj_out`` (2C outputs) gives its ε rows to a C-output frame model.
    Cross-attention and caption projection have no counterpart and are skipped.

    Returns ``{"loaded", "skipped" (prior keys unused), "mismatched", "missing" (frame keys not
    loaded)}``.
    """
    own = frame.state_dict()
    report: dict[str, list] = {"loaded": [], "skipped": [], "mismatched": [], "missing": []}
    p, C = frame.config.patch_size, frame.out_channels
    for name, value in pixart_state.items():
        if name not in own:
            report["skipped"].append(name)
            continue
        target = own[name]
        if name.startswith("proj_out.") and value.shape[0] != target.shape[0]:
            src_c = value.shape[0] // (p * p)
            if src_c > C and src_c % C == 0:
                value = value.reshape(p, p, src_c, *value.shape[1:])[:, :, :C].reshape(target.shape)
        if value.shape != target.shape:
            report["mismatched"].append(name)
            continue
        target.copy_(value.to(target.dtype))
        report["loaded"].append(name)
    loaded = set(report["loaded"])
    report["missing"] = [k for k in own if k not in loaded]
    return report
