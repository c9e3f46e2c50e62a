"""Real-video ingestion end to end: item -> frames -> clip plans -> poses -> depth -> anchors.

`ingest_source(source, rng, ...)` returns one `IngestOutcome` per planned clip (accepted with
its validated `Clip`, or rejected at a stage with the reason); `ingest_paths` does it for a batch
of paths, where a bad item is reported with its name and problem while the others complete.
The stages are the functions the Dagster assets call one by one (`assets/ingest.py`):

  prepare_frames  filter frames, keep <= max_sfm_frames evenly spaced     (datagen.ingest.plan)
  plan_clips      WorldFM (4 refs + 12 targets) or Wonderland clip windows
  estimate_poses  SfM once over the item's working frames, or its known cameras (.poses)
  clip_geometry   slice a clip, pose gates, scale normalisation, optional downsizing
  clip_depths     plane-sweep MVS, coverage and static-scene statistics   (.depth)
  clip_anchors    global point cloud of the references rendered at the targets (.assemble)
  assemble_clip   provenance, Clip.validate()
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datagen.clips import ClipValidationError
from datagen.ingest.assemble import AnchorParams, assemble_clip, clip_anchors
from datagen.ingest.depth import MvsParams, clip_depths
from datagen.ingest.errors import IngestError
from datagen.ingest.frame_filters import FilterThresholds
from datagen.ingest.frame_source import FrameSource
from datagen.ingest.plan import (
    ClipPlan,
    VideoFrames,
    frames_needed,
    plan_clips,
    prepare_frames,
    sanitize_id,
)
from datagen.ingest.poses import (
    ClipGeometry,
    PoseTable,
    clip_geometry,
    default_estimator,
    estimate_poses,
)
from datagen.ingest.quality import IngestOutcome, QualityGates, depth_gate_reason
from datagen.ingest.sfm import PoseEstimator, SfmError
from datagen.ingest.sources import open_source


@dataclass(frozen=True)
class IngestOptions:
    """Everything but an explicit estimator. num_clips clips of `recipe` per item; SfM
    (`camera_model`, `matcher`; layouts with cameras use them) sees at most max_sfm_frames
    working frames; clips are downsized to clip_max_side (None: keep)."""

    recipe: str = "worldfm"
    num_clips: int = 1
    num_frames: int = 16
    num_refs: int = 4
    max_stride: int = 4
    wonderland_context: int = 49
    wonderland_unseen: int = 24
    max_sfm_frames: int = 96
    camera_model: str = "SIMPLE_RADIAL"
    matcher: str = "auto"
    clip_max_side: int | None = None
    filters: FilterThresholds | None = None
    mvs: MvsParams = field(default_factory=MvsParams)
    gates: QualityGates = field(default_factory=QualityGates)
    anchors: AnchorParams = field(default_factory=AnchorParams)


def source_frames(
    source: FrameSource, options: IngestOptions, video_id: str | None = None
) -> VideoFrames:
    """Stage 1: the item's working frames (IngestError when too few survive the filters)."""
    need = frames_needed(options.recipe, options.num_frames, options.wonderland_context)
    return prepare_frames(source, video_id, options.filters, options.max_sfm_frames, need)


def clip_plans(vf: VideoFrames, rng: np.random.Generator, options: IngestOptions):
    """Stage 2: the clips planned over the working frames."""
    o = options
    return plan_clips(
        len(vf), rng, vf.video_id, o.recipe, o.num_clips, o.num_frames, o.num_refs,
        o.max_stride, o.wonderland_context, o.wonderland_unseen,
    )  # fmt: skip


def depth_stage(
    geom: ClipGeometry, options: IngestOptions, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, dict[str, float], str]:
    """Stage 4: MVS depth of one clip -> (depth, conf, stats, rejection reason or '')."""
    depth, conf, stats = clip_depths(
        geom.rgb, geom.K, geom.c2w, geom.points, options.mvs,
        options.gates.min_confidence, device,
    )  # fmt: skip
    return depth, conf, stats, depth_gate_reason(stats, options.gates)


def finish_clip(
    geom: ClipGeometry,
    depth: np.ndarray,
    conf: np.ndarray,
    quality: dict[str, float],
    options: IngestOptions,
    device: str = "cpu",
    extra: dict | None = None,
) -> IngestOutcome:
    """Stage 5: anchors + provenance + validation -> accepted or rejected ("validate").

    `extra` goes to the provenance (default: the MVS settings and gates of `options`)."""
    pcr_rgb, pcr_mask, n_points = clip_anchors(geom, depth, conf, options.anchors, device)
    q = {**quality, "anchor_points": n_points, "anchor_coverage": float(pcr_mask.mean())}
    if extra is None:
        extra = {"mvs": options.mvs.to_dict(), "gates": options.gates.to_dict()}
    out = IngestOutcome(geom.plan.key, geom.video_id, quality=q)
    try:
        out.clip = assemble_clip(geom, depth, conf, pcr_rgb, pcr_mask, q, extra)
    except ClipValidationError as e:
        out.stage, out.reason = "validate", str(e)
    return out


def ingest_clip(
    plan: ClipPlan, vf: VideoFrames, poses: PoseTable, options: IngestOptions, device: str
) -> IngestOutcome:
    """Stages 3b–5 for one planned clip; never raises: an unexpected error rejects the clip at
    the stage it happened in, with the error as the reason."""
    stage, q = "poses", {}
    try:
        geom, q, reason = clip_geometry(plan, vf, poses, options.gates, options.clip_max_side)
        if geom is None:
            return IngestOutcome(plan.key, vf.video_id, "poses", reason, q)
        stage = "depth"
        depth, conf, dq, reason = depth_stage(geom, options, device)
        q = {**q, **dq}
        if reason:
            return IngestOutcome(plan.key, vf.video_id, "depth", reason, q)
        stage = "anchors"
        return finish_clip(geom, depth, conf, q, options, device)
    except Exception as e:  # a bug or an unforeseen input: recorded, the batch goes on
        reason = f"unexpected {type(e).__name__}: {e}"
        return IngestOutcome(plan.key, vf.video_id, stage, reason, q)


def ingest_source(
    source: FrameSource,
    rng: np.random.Generator,
    recipe: str | None = None,
    estimator: PoseEstimator | None = None,
    mvs: MvsParams | None = None,
    gates: QualityGates | None = None,
    device: str = "cpu",
    options: IngestOptions | None = None,
    video_id: str | None = None,
) -> list[IngestOutcome]:
    """All clips of one item. `recipe`, `mvs`, `gates` (when given) override `options` (default
    `IngestOptions()`: WorldFM, one clip). Raises IngestError
    (naming the item) only when the item yields no usable frames; every planned clip comes back
    as an outcome, SfM failures included (rejected at "poses")."""
    o = options or IngestOptions()
    o = IngestOptions(**{**o.__dict__, "recipe": recipe or o.recipe})
    if mvs is not None or gates is not None:
        o = IngestOptions(**{**o.__dict__, "mvs": mvs or o.mvs, "gates": gates or o.gates})
    vf = source_frames(source, o, video_id)
    plans = clip_plans(vf, rng, o)
    t0 = time.perf_counter()
    try:
        poses = estimate_poses(vf, estimator or default_estimator(vf, o.camera_model, o.matcher))
    except SfmError as e:
        return [
            IngestOutcome(p.key, vf.video_id, "poses", f"pose estimation failed: {e}")
            for p in plans
        ]
    sfm_s = time.perf_counter() - t0
    outcomes = []
    for plan in plans:
        out = ingest_clip(plan, vf, poses, o, device)
        out.quality.setdefault("sfm_time_s", sfm_s)
        outcomes.append(out)
    return outcomes


@dataclass
class ItemReport:
    """One input path of a batch: its outcomes, or the error that stopped it."""

    path: Path
    video_id: str
    outcomes: list[IngestOutcome] = field(default_factory=list)
    error: str = ""

    @property
    def accepted(self) -> int:
        return sum(o.accepted for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.error and self.accepted > 0


def ingest_paths(
    paths: list[str | Path],
    seed: int = 0,
    estimator: PoseEstimator | None = None,
    device: str = "cpu",
    options: IngestOptions | None = None,
    open_kwargs: dict | None = None,
) -> list[ItemReport]:
    """`ingest_source` for each path (opened with `open_source(**open_kwargs)`); one bad item
    never stops the batch: its report carries "<path>: <problem>" instead."""
    options = options or IngestOptions()
    reports: list[ItemReport] = []
    for i, p in enumerate(paths):
        p = Path(p)
        vid = sanitize_id(p.stem if p.suffix else p.name)
        if any(r.video_id == vid for r in reports):  # same name twice in one batch
            vid = f"{vid}-{i}"
        rep = ItemReport(p, vid)
        try:
            source = open_source(p, **(open_kwargs or {}))
            rep.outcomes = ingest_source(
                source, np.random.default_rng([seed, i]), options.recipe, estimator,
                device=device, options=options, video_id=vid,
            )  # fmt: skip
        except IngestError as e:
            rep.error = str(e) if str(p) in str(e) else f"{p}: {e.problem}"
        except Exception as e:
            rep.error = f"{p}: unexpected {type(e).__name__}: {e}"
        reports.append(rep)
    return reports
