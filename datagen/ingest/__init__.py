"""Real-video ingestion: open inputs, filter frames, sample clips, estimate poses.

sources        open_source / open_sources -> FrameSource (videos, image folders, RealEstate10K,
               nerfstudio/DL3DV, COLMAP, LLFF); IngestError names the bad item and its problem
frame_filters  filter_frames / filter_source: black, under/overexposed, blur, near-duplicates
sampling       sample_worldfm (16 = 4 refs + 12 targets), sample_wonderland (seen + unseen)
sfm            PoseEstimator, ColmapEstimator (pycolmap in a subprocess), KnownPosesEstimator
"""

from datagen.ingest.errors import IngestError
from datagen.ingest.frame_filters import (
    FilterThresholds,
    filter_frames,
    filter_source,
    require_frames,
)
from datagen.ingest.frame_source import SOURCE_LAYOUTS, FrameSource
from datagen.ingest.sampling import (
    WonderlandSample,
    WorldFMSample,
    nearest_reference,
    sample_wonderland,
    sample_worldfm,
)
from datagen.ingest.sfm import (
    ColmapEstimator,
    KnownPosesEstimator,
    PoseEstimator,
    SfmError,
    SfmResult,
    pycolmap_version,
)
from datagen.ingest.sources import open_source, open_sources

__all__ = [
    "SOURCE_LAYOUTS",
    "ColmapEstimator",
    "FilterThresholds",
    "FrameSource",
    "IngestError",
    "KnownPosesEstimator",
    "PoseEstimator",
    "SfmError",
    "SfmResult",
    "WonderlandSample",
    "WorldFMSample",
    "filter_frames",
    "filter_source",
    "nearest_reference",
    "open_source",
    "open_sources",
    "pycolmap_version",
    "require_frames",
    "sample_wonderland",
    "sample_worldfm",
]
