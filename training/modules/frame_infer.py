"""Frame-model demo: a camera path through a scene → mp4 (WorldFM online inference).

``python -m training.modules.frame_infer --checkpoint EXPORT --image REF.png --points CLOUD.npz
--trajectory orbit --out DIR`` loads a frame-model export (stage III: its generator steps, e.g.
``[999, 200]``; stage II: ``--steps`` DDIM steps), takes the reference at the path's first pose,
streams the frames with ``FramePipeline`` and writes ``video.mp4``, ``anchors.mp4`` and
``meta.json``. Clouds: ``.npz`` with ``points [N, 3]`` and ``colors [N, 3]`` (0–1 or 0–255) or a
``.ply`` with x, y, z, red, green, blue.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from datagen.video_io import write_mp4
from models.frame import FramePipeline
from training.modules.frame_common import load_frame_export

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_pipeline(
    checkpoint: str | Path,
    steps: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    **kwargs,
) -> FramePipeline:
    """A ``FramePipeline`` over a frame-model export: the distilled generator's own timesteps, or
    ``steps`` DDIM steps (stage II exports, default 25; also overrides a generator's)."""
    export = load_frame_export(checkpoint, dtype=dtype)
    timesteps = export.config.get("timesteps")
    if steps is not None or timesteps is None:
        timesteps = export.schedule.ddim_timesteps(steps or 25)
    dit, vae = export.dit.to(device), export.vae.to(device)
    return FramePipeline(dit, vae, export.schedule, timesteps, **kwargs)


def load_points(path: str | Path) -> tuple[Tensor, Tensor]:
    """``points [N, 3]``, ``colors [N, 3]`` in [0, 1] from ``.npz`` or ``.ply``."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            points, colors = data["points"], data["colors"]
    elif path.suffix == ".ply":
        from plyfile import PlyData

        v = PlyData.read(str(path))["vertex"]
        points = np.stack([v["x"], v["y"], v["z"]], -1)
        colors = np.stack([v["red"], v["green"], v["blue"]], -1)
    else:
        raise ValueError(f"{path}: expected a .npz or .ply point cloud")
    colors = colors.astype(np.float32)
    if colors.max() > 1.0:
        colors = colors / 255.0
    return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(colors)


def render_trajectory(
    pipeline: FramePipeline, Ks: Tensor, c2ws: Tensor, out_dir: str | Path, fps: float = 10.0
) -> dict[str, Path]:
    """Stream ``Ks [F, 3, 3]``, ``c2ws [F, 4, 4]`` (scene already set) → ``video.mp4`` (frames)
    and ``anchors.mp4`` (point-cloud renders) in ``out_dir``."""
    frames, anchors = [], []
    for K, c2w in zip(Ks, c2ws):
        frame, anchor = pipeline.render(K, c2w, return_anchor=True)
        frames.append(frame.cpu())
        anchors.append(anchor.cpu())
    out = Path(out_dir)
    return {
        "video": write_mp4(torch.stack(frames), out / "video.mp4", fps),
        "anchors": write_mp4(torch.stack(anchors), out / "anchors.mp4", fps),
    }


def main(argv: list[str] | None = None) -> dict[str, str]:
    """CLI (see module docstring); prints and returns the written paths."""
    from training.modules.video_model import load_image, trajectory_cameras

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="frame-model export (stage II or III)")
    ap.add_argument("--image", required=True, help="reference image (at the path's first pose)")
    ap.add_argument("--points", required=True, help=".npz or .ply scene point cloud")
    ap.add_argument("--trajectory", required=True, help="template name or RealEstate10K txt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--num-frames", type=int, default=48)
    ap.add_argument("--fov", type=float, default=60.0)
    ap.add_argument("--steps", type=int, default=None, help="DDIM steps (stage-II exports)")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radius-px", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    a = ap.parse_args(argv)
    pipe = load_pipeline(
        a.checkpoint, a.steps, a.device, DTYPES[a.dtype], seed=a.seed, radius_px=a.radius_px
    )
    Ks, c2ws = trajectory_cameras(a.trajectory, a.num_frames, a.height, a.width, a.fov)
    points, colors = load_points(a.points)
    image = load_image(a.image, a.height, a.width)
    pipe.set_scene(image, Ks[0], c2ws[0], points, colors)
    paths = render_trajectory(pipe, Ks, c2ws, a.out, a.fps)
    meta = {
        "checkpoint": str(a.checkpoint),
        "timesteps": pipe.sampler.timesteps,
        "trajectory": a.trajectory,
        "K": Ks.tolist(),
        "c2w": c2ws.tolist(),
    }
    paths["meta"] = Path(a.out) / "meta.json"
    paths["meta"].write_text(json.dumps(meta, indent=2))
    result = {k: str(v) for k, v in paths.items()}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
