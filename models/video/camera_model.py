"""Camera-guided CogVideoX (Wonderland §3.2, App. A, D.2): a frozen I2V base with dual-branch
camera guidance.

Per-pixel Plücker rays go through two camera encoders (``camera_encoder.CameraEncoder``):

* ControlNet branch: trainable copies of the first ``K`` base blocks (paper: 21 of 42). Camera
  tokens ``c_ctrl`` are added to the video tokens ``z`` at the copy's input; after block ``i < K``
  the copy's video tokens go through a zero-linear and are added to the frozen block's output.
* LoRA branch: ``[z | c_lora]`` (channel-wise) -> linear initialised to ``[I | ·]`` (identity on
  the video part) -> frozen main blocks carrying camera-LoRA (paper rank 256) on attention
  q/k/v/out (optionally the feed-forward linears).

At initialisation the output equals the base's output exactly: the camera encoders end in zero
linears (camera tokens are 0), the ControlNet outputs pass zero linears, the concat linear is the
identity on the video part, LoRA ``B = 0``.

Modes (App. A): ``dual``, ``ctrl_only`` (Ctrl-branch), ``lora_only`` (Lora-branch);
``num_ctrl_blocks`` (block-1 / blocks-10 / 21 / blocks-30); ``with_weight_copy=False`` (copies
randomly re-initialised); ``lora_rank=0`` in ``dual`` mode = "Dual w/o LoraModule" (A.1: the
concat linear and the LoRA-branch camera encoder are trained, the main blocks get no LoRA).

The base is wrapped, not forked: its patch embedding, time embedding, blocks, ``norm_final``,
``norm_out`` and ``proj_out`` are called as they are. Only the loop over the blocks and the small
unpatchify reshape of ``CogVideoXTransformer3DModel.forward`` are repeated here, because that
forward cannot be split between the blocks.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from diffusers import CogVideoXTransformer3DModel
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .base import check_i2v, rotary_embedding
from .camera_encoder import CameraEncoder, zero_linear
from .lora import LoRAAdapters, block_lora_targets

MODES = ("dual", "ctrl_only", "lora_only")


@dataclass
class CameraControlConfig:
    """Architecture of the camera branches (defaults: the paper's values).

    mode: ``dual`` | ``ctrl_only`` | ``lora_only``.
    num_ctrl_blocks: ``K``, blocks copied into the ControlNet branch (paper 21 of 42).
    with_weight_copy: initialise the copies from the base blocks (False: random init, A.2).
    lora_rank / lora_alpha: camera-LoRA rank (paper 256) and scale numerator (default = rank,
        i.e. scale 1); ``lora_rank = 0`` leaves out the LoRA modules.
    lora_ff: also adapt the feed-forward linears (the paper names attention LoRA only).
    camera_channels: widths of the camera encoders' 3D-conv stages (one per spatial ×2).
    camera_dim: width of the LoRA-branch camera tokens (default: the transformer width, as the
        paper's tokens have "the same dimension as the video tokens").
    temporal_compression / spatial_compression: the VAE's factors (CogVideoX: 4 and 8).
    """

    mode: str = "dual"
    num_ctrl_blocks: int = 21
    with_weight_copy: bool = True
    lora_rank: int = 256
    lora_alpha: float | None = None
    lora_ff: bool = False
    camera_channels: list[int] = field(default_factory=lambda: [64, 128, 256])
    camera_dim: int | None = None
    temporal_compression: int = 4
    spatial_compression: int = 8

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0, got {self.lora_rank}")
        self.camera_channels = list(self.camera_channels)

    @property
    def use_ctrl(self) -> bool:
        return self.mode in ("dual", "ctrl_only")

    @property
    def use_lora_branch(self) -> bool:
        return self.mode in ("dual", "lora_only")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CameraControlConfig:
        return cls(**values)


class CameraTokens(NamedTuple):
    """Camera tokens ``[B, N, width]`` of the two branches (None where a branch is off)."""

    ctrl: Tensor | None
    lora: Tensor | None


def _reinitialise(module: nn.Module) -> None:
    for sub in module.modules():
        if sub is not module and hasattr(sub, "reset_parameters"):
            sub.reset_parameters()


class CameraGuidedCogVideoX(nn.Module):
    """Frozen CogVideoX I2V transformer + camera branches.

    ``base`` is adopted: frozen, put in eval mode, and (with LoRA) given forward hooks on its
    main-block linears; its ``state_dict`` keys do not change.
    """

    def __init__(self, base: CogVideoXTransformer3DModel, config: CameraControlConfig | dict):
        super().__init__()
        check_i2v(base.config)
        cfg = config if isinstance(config, CameraControlConfig) else CameraControlConfig(**config)
        self.config = cfg
        base.requires_grad_(False)
        base.eval()
        self.base = base
        bc = base.config
        self.width = bc.num_attention_heads * bc.attention_head_dim
        num_layers = len(base.transformer_blocks)
        encoder_kwargs = dict(
            channels=cfg.camera_channels,
            temporal_compression=cfg.temporal_compression,
            spatial_compression=cfg.spatial_compression,
            patch_size=bc.patch_size,
        )
        self.ctrl_encoder = self.ctrl_blocks = self.ctrl_out = None
        self.lora_encoder = self.concat_proj = self.lora = None
        if cfg.use_ctrl:
            if not 1 <= cfg.num_ctrl_blocks <= num_layers:
                raise ValueError(f"num_ctrl_blocks must be in [1, {num_layers}]")
            self.ctrl_encoder = CameraEncoder(self.width, **encoder_kwargs)
            blocks = [copy.deepcopy(base.transformer_blocks[i]) for i in range(cfg.num_ctrl_blocks)]
            for block in blocks:
                if not cfg.with_weight_copy:
                    _reinitialise(block)
                block.requires_grad_(True)
            self.ctrl_blocks = nn.ModuleList(blocks)
            self.ctrl_out = nn.ModuleList(
                [zero_linear(self.width, self.width) for _ in range(cfg.num_ctrl_blocks)]
            )
        if cfg.use_lora_branch:
            cam_dim = cfg.camera_dim or self.width
            self.lora_encoder = CameraEncoder(cam_dim, **encoder_kwargs)
            self.concat_proj = nn.Linear(self.width + cam_dim, self.width)
            with torch.no_grad():
                # [I | W_cam]: identity on the video part. The camera part keeps nn.Linear's
                # random init: the camera tokens start at 0 (zero linear), so the output is z
                # exactly, while a zero W_cam would leave both zero layers without gradient.
                self.concat_proj.weight[:, : self.width].copy_(torch.eye(self.width))
                self.concat_proj.bias.zero_()
            if cfg.lora_rank > 0:
                targets = block_lora_targets(num_layers, cfg.lora_ff)
                self.lora = LoRAAdapters(base, targets, cfg.lora_rank, cfg.lora_alpha)
        self.gradient_checkpointing = False
        self._rotary_cache: dict = {}

    # ---- parameters -------------------------------------------------------------------------

    def train(self, mode: bool = True) -> CameraGuidedCogVideoX:
        super().train(mode)
        self.base.eval()
        return self

    def named_trainable_parameters(self):
        """(name, parameter) of everything outside the frozen base."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("base.")]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable_parameters()]

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The camera branches' weights (everything but ``base.*``)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("base.")}

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load ``trainable_state_dict()`` output; KeyError on missing or unexpected keys."""
        expected = set(self.trainable_state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise KeyError(
                f"camera weights mismatch: missing {missing[:5]}, unexpected {extra[:5]}"
            )
        result = self.load_state_dict(state, strict=False)
        assert not result.unexpected_keys

    # ---- forward pieces ---------------------------------------------------------------------

    def encode_camera(self, plucker: Tensor) -> CameraTokens:
        """Plücker ``[B, F, 6, H, W]`` -> camera tokens of both branches ``[B, N, ·]``."""
        ctrl = self.ctrl_encoder(plucker) if self.ctrl_encoder is not None else None
        lora = self.lora_encoder(plucker) if self.lora_encoder is not None else None
        return CameraTokens(ctrl, lora)

    def rotary(self, T: int, h: int, w: int, device) -> tuple[Tensor, Tensor] | None:
        key = (T, h, w, str(device))
        if key not in self._rotary_cache:
            self._rotary_cache[key] = rotary_embedding(self.base.config, T, h, w, device)
        return self._rotary_cache[key]

    def _time_embedding(self, timestep: Tensor, batch: int, dtype: torch.dtype) -> Tensor:
        base = self.base
        timestep = torch.as_tensor(timestep, device=base.device).reshape(-1).expand(batch)
        emb = base.time_embedding(base.time_proj(timestep).to(dtype=dtype), None)
        if base.ofs_embedding is not None:  # CogVideoX I2V pipelines pass ofs = 2.0
            ofs = base.ofs_proj(timestep.new_full((1,), 2.0, dtype=torch.float32)).to(dtype)
            emb = emb + base.ofs_embedding(ofs)
        return emb

    def _block(self, block, video, text, emb, rotary):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, video, text, emb, rotary, use_reentrant=False)
        return block(video, text, emb, rotary)

    def _unpatchify(self, tokens: Tensor, emb: Tensor, B: int, T: int, h: int, w: int) -> Tensor:
        """Base output head: tokens ``[B, T·h/p·w/p, D]`` -> ``[B, C, T, h, w]`` (diffusers'
        CogVideoX 1.0 unpatchify, then channels first)."""
        base = self.base
        x = base.proj_out(base.norm_out(base.norm_final(tokens), temb=emb))
        p = base.config.patch_size
        x = x.reshape(B, T, h // p, w // p, -1, p, p)
        x = x.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)  # [B, T, C, h, w]
        return x.permute(0, 2, 1, 3, 4)

    def forward(
        self,
        latents: Tensor,
        image_latents: Tensor,
        text_embeds: Tensor,
        timestep: Tensor,
        plucker: Tensor | None = None,
        camera_tokens: CameraTokens | None = None,
    ) -> Tensor:
        """Model output (v-prediction for CogVideoX) ``[B, C, T, h, w]``.

        latents: noisy video latents ``[B, C, T, h, w]``; image_latents: conditioning latents
        ``[B, C, T, h, w]`` (first-frame latent, zeros after); text_embeds ``[B, L, D_text]``
        (``L`` = the base's ``max_text_seq_length``); timestep ``[B]`` or scalar;
        plucker ``[B, F, 6, 8h, 8w]`` with ``F = 4(T - 1) + 1``, or precomputed
        ``camera_tokens`` (``encode_camera``).
        """
        B, _, T, h, w = latents.shape
        base = self.base
        x = torch.cat([latents, image_latents], dim=1).permute(0, 2, 1, 3, 4)  # [B, T, 2C, h, w]
        emb = self._time_embedding(timestep, B, x.dtype)
        tokens = base.embedding_dropout(base.patch_embed(text_embeds, x))
        L = text_embeds.shape[1]
        text, video = tokens[:, :L], tokens[:, L:]
        rotary = self.rotary(T, h, w, x.device)
        if camera_tokens is None:
            if plucker is None:
                raise ValueError("pass plucker or camera_tokens")
            camera_tokens = self.encode_camera(plucker)
        for name, cam in zip(("ctrl", "lora"), camera_tokens):
            if cam is not None and cam.shape[1] != video.shape[1]:
                raise ValueError(
                    f"{name} camera tokens {tuple(cam.shape)} do not match {video.shape[1]} "
                    "video tokens: Plücker frames/size must match the latent grid"
                )
        ctrl = ctrl_text = None
        if self.ctrl_blocks is not None:
            ctrl, ctrl_text = video + camera_tokens.ctrl.to(video.dtype), text
        if self.concat_proj is not None:
            video = self.concat_proj(torch.cat([video, camera_tokens.lora.to(video.dtype)], -1))
        for i, block in enumerate(base.transformer_blocks):
            video, text = self._block(block, video, text, emb, rotary)
            if ctrl is not None and i < len(self.ctrl_blocks):
                ctrl, ctrl_text = self._block(self.ctrl_blocks[i], ctrl, ctrl_text, emb, rotary)
                video = video + self.ctrl_out[i](ctrl)
        return self._unpatchify(video, emb, B, T, h, w)
