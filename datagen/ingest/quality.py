"""Quality gates of real-video ingestion and the per-clip outcome record.

Every planned clip ends as one `IngestOutcome`: accepted (with its `Clip`) or rejected at a
stage with a reason in words and the statistics measured so far. Nothing is dropped silently.

Gates (`QualityGates`, defaults in brackets):
  poses   video-level SfM registration ratio >= min_registration_ratio [0.6]; every frame of the
          clip registered; SfM mean reprojection error <= max_reprojection_error_px [1.5];
          mean track length >= min_track_length [2.0]; at least min_points [30] sparse points
          inside the clip's views (they give the depth range and the scale)
  depth   mean confident-depth coverage over the clip's frames >= min_depth_coverage [0.3], and
          every frame >= min_frame_coverage [0.02]; static-scene score >= min_static_score [0.5]
Confident depth = depth > 0 and MVS confidence >= min_confidence [0.05]. The static-scene score
is the fraction of matched (textured) plane-sweep pixels that survive the cross-view geometric
consistency check: moving objects (and bad poses) break consistency (see `datagen.ingest.depth`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from datagen.clips import Clip

STAGES = ("frames", "poses", "depth", "anchors", "validate")


@dataclass(frozen=True)
class QualityGates:
    """Thresholds a clip must meet (module docstring)."""

    min_registration_ratio: float = 0.6
    max_reprojection_error_px: float = 1.5
    min_track_length: float = 2.0
    min_points: int = 30
    min_confidence: float = 0.05
    min_depth_coverage: float = 0.3
    min_frame_coverage: float = 0.02
    min_static_score: float = 0.5

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class IngestOutcome:
    """One planned clip: accepted (`clip` set, `stage` = "accepted") or rejected at `stage`
    (one of STAGES) with `reason`. `quality` holds the statistics measured (JSON numbers)."""

    key: str
    video_id: str
    stage: str = "accepted"
    reason: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    clip: Clip | None = None

    @property
    def accepted(self) -> bool:
        return self.stage == "accepted"

    def record(self) -> dict[str, Any]:
        """JSON-ready row (no arrays): key, video_id, status, stage, reason, quality."""
        return {
            "key": self.key,
            "video_id": self.video_id,
            "status": "accepted" if self.accepted else "rejected",
            "stage": self.stage,
            "reason": self.reason,
            "quality": {k: _json_number(v) for k, v in self.quality.items()},
        }


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fail(checks: list[tuple[bool, str]]) -> str:
    return "; ".join(msg for bad, msg in checks if bad)


def pose_gate_reason(q: dict[str, float], gates: QualityGates) -> str:
    """'' when the pose statistics `q` pass, else the failed gates in words."""
    err = q.get("reprojection_error_px", math.nan)
    track = q.get("track_length", math.nan)
    return _fail(
        [
            (
                q["video_registration_ratio"] < gates.min_registration_ratio,
                f"SfM registered {q['video_registration_ratio']:.0%} of the video's frames "
                f"(< {gates.min_registration_ratio:.0%})",
            ),
            (
                math.isfinite(err) and err > gates.max_reprojection_error_px,
                f"reprojection error {err:.2f} px > {gates.max_reprojection_error_px} px",
            ),
            (
                math.isfinite(track) and track < gates.min_track_length,
                f"mean track length {track:.2f} < {gates.min_track_length}",
            ),
            (
                q.get("num_points", 0) < gates.min_points,
                f"{int(q.get('num_points', 0))} sparse points in view (< {gates.min_points})",
            ),
        ]
    )


def depth_gate_reason(q: dict[str, float], gates: QualityGates) -> str:
    """'' when the depth statistics `q` pass, else the failed gates in words."""
    return _fail(
        [
            (
                q["depth_coverage"] < gates.min_depth_coverage,
                f"depth coverage {q['depth_coverage']:.0%} < {gates.min_depth_coverage:.0%}",
            ),
            (
                q["min_frame_coverage"] < gates.min_frame_coverage,
                f"a frame has {q['min_frame_coverage']:.1%} depth coverage "
                f"(< {gates.min_frame_coverage:.1%})",
            ),
            (
                q["static_score"] < gates.min_static_score,
                f"static-scene score {q['static_score']:.2f} < {gates.min_static_score} "
                "(moving content or inconsistent poses)",
            ),
        ]
    )


def quality_table(records: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> str:
    """Markdown table of outcome records (`IngestOutcome.record()` rows)."""
    columns = columns or (
        "video_registration_ratio",
        "reprojection_error_px",
        "track_length",
        "depth_coverage",
        "static_score",
        "scale_factor",
    )
    head = ["clip", "status", "stage", *columns, "reason"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        vals = []
        for c in columns:
            v = r["quality"].get(c)
            vals.append("—" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v))
        reason = (r.get("reason") or "").replace("|", "/")
        lines.append(
            "| " + " | ".join([r["key"], r["status"], r["stage"], *vals, reason or "—"]) + " |"
        )
    return "\n".join(lines)
