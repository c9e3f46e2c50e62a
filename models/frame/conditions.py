"""The frame model's condition set 𝒞 = {x_ref, π_ref, π_tgt, x̂_tgt} (WorldFM §2.2) for a batch."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

_TENSORS = ("anchor", "reference", "target_K", "target_c2w", "reference_K", "reference_c2w")


@dataclass
class FrameCondition:
    """Conditions of ``B`` target frames.

    anchor: ``[B, C, h, w]`` scaled latent of the point-cloud render at the target pose (x̂_tgt);
    reference: ``[B, C, h, w]`` scaled latent of the reference image (x_ref);
    target_K, reference_K: ``[B, 3, 3]`` pixel intrinsics of the ``8h × 8w`` images;
    target_c2w, reference_c2w: ``[B, 4, 4]`` OpenCV camera-to-world;
    anchor_masked: ``[B]`` bool, True where the anchor is dropped (None: none dropped).
    """

    anchor: Tensor
    reference: Tensor
    target_K: Tensor
    target_c2w: Tensor
    reference_K: Tensor
    reference_c2w: Tensor
    anchor_masked: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.reference.shape[0]

    def masked(self) -> Tensor:
        """``[B]`` bool anchor-dropped flags (all False when unset)."""
        if self.anchor_masked is None:
            return torch.zeros(self.batch_size, dtype=torch.bool, device=self.reference.device)
        return self.anchor_masked.to(device=self.reference.device, dtype=torch.bool)

    def with_anchor_masked(self, masked: Tensor | None) -> FrameCondition:
        return replace(self, anchor_masked=masked)

    def to(self, device=None, dtype: torch.dtype | None = None) -> FrameCondition:
        """Move (and cast the latents to ``dtype``; cameras stay float32)."""
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                moved[f.name] = None
            elif f.name in ("anchor", "reference"):
                moved[f.name] = v.to(device=device, dtype=dtype or v.dtype)
            else:
                moved[f.name] = v.to(device=device)
        return FrameCondition(**moved)

    def index(self, idx) -> FrameCondition:
        """The conditions of the samples ``idx`` (slice, index tensor or list)."""
        return FrameCondition(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[idx]
                for f in fields(self)
            }
        )

    def to_dict(self, prefix: str = "cond_") -> dict[str, Tensor]:
        """Flat ``{prefix + name: tensor}`` (e.g. for safetensors); masks as uint8."""
        out = {prefix + n: getattr(self, n).contiguous() for n in _TENSORS}
        out[prefix + "anchor_masked"] = self.masked().to(torch.uint8)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Tensor], prefix: str = "cond_") -> FrameCondition:
        values = {n: d[prefix + n] for n in _TENSORS}
        masked = d.get(prefix + "anchor_masked")
        return cls(**values, anchor_masked=None if masked is None else masked.bool())


def cat_conditions(items: list[FrameCondition]) -> FrameCondition:
    """Concatenate conditions along the batch."""
    out = {n: torch.cat([getattr(c, n) for c in items]) for n in _TENSORS}
    return FrameCondition(**out, anchor_masked=torch.cat([c.masked() for c in items]))
