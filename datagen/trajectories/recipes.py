"""Clip recipes: which frames of a sampled path a clip keeps and how they split.

A ``Recipe`` says how many poses to sample (``num_poses``), which of them become clip frames
(``frame_ids``, sorted trajectory indices) and, within the clip, the reference/seen frames
(``ref_idx``) and the target/unseen frames (``target_idx``).

- WorldFM (§2.4): 16 frames; 4 references spread over the clip build the global point cloud, the
  other 12 are targets; each target's reference is the temporally closest one
  (``extra["target_ref"]``).
- Wonderland (§3.3): a long path sampled with a large ``stride`` gives the seen frames (the
  video clip); unseen frames are drawn from the frames skipped inside the covered range and from
  frames outside it (``margin`` poses before and after). ``ref_idx`` = seen, ``target_idx`` =
  unseen; ``extra`` lists both sets by trajectory index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Recipe:
    """name, num_poses, frame_ids ``[F]`` (trajectory indices), ref_idx / target_idx (clip
    indices), extra (JSON-ready details recorded in the clip's provenance)."""

    name: str
    num_poses: int
    frame_ids: list[int]
    ref_idx: list[int]
    target_idx: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


def worldfm_recipe(num_frames: int = 16, num_refs: int = 4) -> Recipe:
    """WorldFM: ``num_refs`` references spread evenly over ``num_frames`` frames, rest targets."""
    if not 1 <= num_refs < num_frames:
        raise ValueError(f"need 1 <= num_refs < num_frames, got {num_refs}, {num_frames}")
    refs = sorted({round(float(x)) for x in np.linspace(0, num_frames - 1, num_refs)})
    targets = [i for i in range(num_frames) if i not in refs]
    nearest = {t: min(refs, key=lambda r, t=t: (abs(r - t), r)) for t in targets}
    return Recipe(
        "worldfm",
        num_frames,
        list(range(num_frames)),
        refs,
        targets,
        {"target_ref": [nearest[t] for t in targets]},
    )


def wonderland_recipe(
    num_seen: int = 49,
    stride: int = 3,
    num_unseen: int = 24,
    margin: int | None = None,
    rng: np.random.Generator | None = None,
) -> Recipe:
    """Wonderland: ``num_seen`` frames every ``stride`` poses, ``num_unseen`` unseen frames, half
    from inside the covered range (when available) and the rest from ``margin`` poses outside it
    on either side (default ``2 * stride``)."""
    rng = rng or np.random.default_rng(0)
    margin = 2 * stride if margin is None else margin
    span = (num_seen - 1) * stride + 1
    total = span + 2 * margin
    seen = [margin + stride * k for k in range(num_seen)]
    inside = sorted(set(range(margin, margin + span)) - set(seen))
    outside = list(range(margin)) + list(range(margin + span, total))
    n_in = min(len(inside), num_unseen - min(len(outside), num_unseen // 2))
    n_out = min(len(outside), num_unseen - n_in)
    pick_in = sorted(rng.choice(inside, n_in, replace=False).tolist()) if n_in else []
    pick_out = sorted(rng.choice(outside, n_out, replace=False).tolist()) if n_out else []
    unseen = sorted(pick_in + pick_out)
    frames = sorted(seen + unseen)
    pos = {f: i for i, f in enumerate(frames)}
    return Recipe(
        "wonderland",
        total,
        frames,
        [pos[f] for f in seen],
        [pos[f] for f in unseen],
        {
            "stride": stride,
            "seen_frames": seen,
            "unseen_inside": [int(x) for x in pick_in],
            "unseen_outside": [int(x) for x in pick_out],
        },
    )


def make_recipe(name: str, rng: np.random.Generator | None = None, **kwargs) -> Recipe:
    """``worldfm`` or ``wonderland`` with keyword overrides."""
    if name == "worldfm":
        return worldfm_recipe(**kwargs)
    if name == "wonderland":
        return wonderland_recipe(rng=rng, **kwargs)
    raise ValueError(f"unknown recipe {name!r}; expected 'worldfm' or 'wonderland'")
