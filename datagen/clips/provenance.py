"""Where a clip came from and how its geometry was obtained."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SOURCE_KINDS = ("synthetic", "real_video", "generated")


@dataclass
class Provenance:
    """Provenance of one clip.

    source_kind: one of SOURCE_KINDS.
    scene_id / video_id: the world id (synthetic), the video or dataset scene id (real), or the
        prompt/world id (generated).
    license: free-text license note of the source material.
    pose_estimator / depth_estimator: e.g. "exact" (synthetic), "pycolmap-4.2.1", "plane-sweep-mvs".
    quality: estimator statistics (registration ratio, reprojection error, track length, ...).
    scale_factor: metres per scene unit after scale normalisation (1.0 when metric).
    generator_checkpoint: checkpoint URI/version of the model that produced a generated clip.
    extra: anything else a source wants to keep (JSON-serialisable).
    """

    source_kind: str
    scene_id: str
    video_id: str | None = None
    license: str = "unspecified"
    pose_estimator: str = "unknown"
    depth_estimator: str = "unknown"
    quality: dict[str, float] = field(default_factory=dict)
    scale_factor: float = 1.0
    generator_checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"provenance has unknown fields {unknown}")
        return cls(**data)
