"""Video files -> frames via imageio v3 and its ffmpeg plugin, with clear errors for bad files.

Frames are decoded in order; `fps` keeps at most that many frames per second of video,
`max_frames` stops decoding early, `max_side` downsizes. Timestamps are source index / fps
(constant frame rate, as ffmpeg reports it).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from datagen.ingest.errors import IngestError
from datagen.ingest.images import fit_size, resize

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")
PLUGIN = "FFMPEG"

# (substring of ffmpeg's stderr, problem) checked in order
_FFMPEG_PROBLEMS = (
    ("moov atom not found", "truncated or incomplete video (its 'moov' index is missing)"),
    ("no decoder found", "unsupported codec{codec}: ffmpeg has no decoder for it"),
    ("decoder (codec", "unsupported codec{codec}: ffmpeg has no decoder for it"),
    ("could not find codec parameters", "corrupt or truncated video stream{codec}"),
    ("does not contain any stream", "no video stream in the file"),
    ("invalid data found when processing input", "corrupt file or unsupported container"),
    ("end of file", "truncated video (unexpected end of file)"),
)


def _ffmpeg_problem(err: BaseException) -> str:
    text = str(err)
    low = text.lower()
    m = re.search(r"Video: ([^,]+)", text)
    codec = f" {m.group(1).strip()!r}" if m else ""
    for needle, problem in _FFMPEG_PROBLEMS:
        if needle in low:
            return problem.format(codec=codec)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(" ")]
    return f"cannot decode video ({lines[-1] if lines else type(err).__name__})"


def read_video(
    path: str | Path,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    max_side: int | None = None,
    min_frames: int = 2,
    min_decoded_ratio: float = 0.9,
) -> tuple[np.ndarray, np.ndarray, list[int], dict[str, Any]]:
    """Decode a video -> (frames uint8 [N, H, W, 3], timestamps float64 [N] s, source indices, meta).

    Raises IngestError naming the file for: empty/truncated/corrupt files, unsupported codecs or
    containers, fewer than `min_frames` frames, or far fewer decodable frames than the container
    announces (< min_decoded_ratio of duration * fps: a file cut short mid-stream).
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "video file not found")
    if path.stat().st_size == 0:
        raise IngestError(path, "empty file (0 bytes)")
    try:
        meta = iio.immeta(path, plugin=PLUGIN)
    except Exception as e:  # imageio-ffmpeg raises OSError/RuntimeError with ffmpeg's stderr
        raise IngestError(path, _ffmpeg_problem(e)) from None
    src_fps = float(meta.get("fps") or 0.0)
    if not math.isfinite(src_fps) or src_fps <= 0:
        raise IngestError(path, f"no usable frame rate in the container (fps={src_fps})")
    w0, h0 = (int(v) for v in meta.get("size", (0, 0)))
    out_size = fit_size(h0, w0, max_side) if h0 and w0 else None
    frames, stamps, indices = [], [], []
    last_bin, decoded, stopped = -1, 0, False
    try:
        for i, frame in enumerate(iio.imiter(path, plugin=PLUGIN)):
            decoded = i + 1
            t = i / src_fps
            if fps is not None:  # first frame of each 1/fps interval
                b = math.floor(t * fps + 1e-9)
                if b == last_bin:
                    continue
                last_bin = b
            frame = np.asarray(frame)[..., :3]
            frame = resize(frame, out_size) if out_size else frame
            if frames and frame.shape != frames[0].shape:
                raise IngestError(
                    path, f"frame size changes mid-stream at frame {i} ({frame.shape[:2]})"
                )
            frames.append(frame)
            stamps.append(t)
            indices.append(i)
            if max_frames is not None and len(frames) >= max_frames:
                stopped = True
                break
    except IngestError:
        raise
    except Exception as e:
        raise IngestError(path, _ffmpeg_problem(e)) from None
    duration = float(meta.get("duration") or 0.0)
    expected = round(duration * src_fps) if math.isfinite(duration) else 0
    if not stopped and expected > 1 and decoded < min_decoded_ratio * expected - 1:
        raise IngestError(
            path,
            f"truncated or corrupt video: decoded {decoded} of the ~{expected} frames its "
            f"container announces ({duration:.2f} s at {src_fps:g} fps)",
        )
    if decoded == 0:
        raise IngestError(path, "no decodable frames (zero-frame video)")
    if len(frames) < min_frames:
        what = "frame" if len(frames) == 1 else "frames"
        raise IngestError(path, f"only {len(frames)} {what}; need at least {min_frames}")
    info = {
        "fps": src_fps,
        "codec": meta.get("codec"),
        "duration_s": duration,
        "source_size": [h0, w0],
        "decoded_frames": decoded,
    }
    return np.stack(frames), np.asarray(stamps, dtype=np.float64), indices, info
