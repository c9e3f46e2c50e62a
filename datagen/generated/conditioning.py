"""Conditioning views for generated videos: a first image and the camera path to follow.

Camera paths are sampled like RealEstate10K's: smooth walkthrough motion, mostly forward walks
and stochastic wandering, with some pans, sideways trucks and orbits
(``RE10K_TEMPLATE_WEIGHTS``), built from ``datagen.trajectories`` templates. Three sources:

- ``world_conditionings``: procedural worlds: a collision-free path sampled in the world
  (``sample_trajectory``) and the exact render of its first view (metric scale);
- ``image_conditionings``: given images (user files, or images an image prior sampled), centre
  cropped and resized, with a world-free path from the origin (``free_camera_path``; the
  scene's scale is unknown, ``path_scale`` sets the travel in the units the model was trained in).

Cameras are OpenCV ``c2w`` (world z up for the templates) and pixel ``K`` at the output size.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import torch
from PIL import Image

from datagen.store import ArtifactStore, InvalidKey
from datagen.trajectories import templates as T
from datagen.trajectories.sampler import sample_trajectory
from datagen.worlds import World, render
from models.geometry import K_from_fov

# RealEstate10K is dominated by forward walks through rooms; pans, sideways moves and arcs
# around objects make up most of the rest. Turn-in-place and zoom paths are left out.
RE10K_TEMPLATE_WEIGHTS: dict[str, float] = {
    "forward_dolly": 0.3,
    "random": 0.3,
    "pan": 0.15,
    "truck": 0.15,
    "orbit": 0.1,
}
EYE_HEIGHT = 1.5


@dataclass
class Conditioning:
    """One video to generate.

    name: id of the source (world id or image name), recorded as the clip's ``scene_id``.
    image: uint8 ``[H, W, 3]``, the first frame; K ``[F, 3, 3]`` and c2w ``[F, 4, 4]`` float64,
    the camera path (frame 0 = the image's camera); caption: text prompt (may be empty);
    source: JSON-ready description (kind, template and its parameters, ...).
    """

    name: str
    image: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    caption: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.c2w.shape[0])


def choose_template(rng: np.random.Generator, templates: Sequence[str] | None = None) -> str:
    """A template name: drawn with ``RE10K_TEMPLATE_WEIGHTS`` when ``templates`` is None or
    empty, else uniformly from ``templates`` (each checked against ``TEMPLATES``)."""
    if not templates:
        names = list(RE10K_TEMPLATE_WEIGHTS)
        weights = np.array([RE10K_TEMPLATE_WEIGHTS[n] for n in names])
        return str(rng.choice(names, p=weights / weights.sum()))
    unknown = sorted(set(templates) - set(T.TEMPLATES))
    if unknown:
        raise ValueError(f"unknown trajectory templates {unknown}; expected some of {T.TEMPLATES}")
    return str(rng.choice(list(templates)))


def free_camera_path(
    rng: np.random.Generator, template: str, num_frames: int, path_scale: float = 1.0
) -> tuple[np.ndarray, dict[str, Any]]:
    """A world-free path ``c2w [F, 4, 4]`` (float64) of ``template`` starting at the origin
    1.5 above the ground, heading in a random direction with a small pitch, and its parameters.

    Distances are ``path_scale`` × metre-like ranges (dolly 0.5-1.5, truck 0.3-1.0, orbit
    radius 2-4, random walk up to 0.05 per frame); angles do not scale.
    """
    if num_frames < 2:
        raise ValueError(f"a camera path needs at least 2 frames, got {num_frames}")
    if path_scale <= 0:
        raise ValueError(f"path_scale must be positive, got {path_scale}")
    eye = np.array([0.0, 0.0, EYE_HEIGHT])
    yaw, pitch = float(rng.uniform(-180, 180)), float(rng.uniform(-10, 5))
    fwd = T.direction(yaw, pitch)
    sign = float(rng.choice([-1.0, 1.0]))
    s = path_scale
    params: dict[str, Any] = {"yaw_deg": yaw, "pitch_deg": pitch}
    if template == "forward_dolly":
        d = float(rng.uniform(0.5, 1.5) * s * (1.0 if rng.random() < 0.8 else -1.0))
        return T.forward_dolly(eye, fwd, d, num_frames), {**params, "distance": d}
    if template == "truck":
        d = sign * float(rng.uniform(0.3, 1.0)) * s
        return T.truck(eye, fwd, d, num_frames), {**params, "distance": d}
    if template == "pan":
        angle = sign * float(rng.uniform(20, 60))
        return T.pan(eye, fwd, angle, num_frames), {**params, "yaw_deg_total": angle}
    if template == "turn_360":
        return T.turn_360(eye, fwd, num_frames), params
    if template == "orbit":
        radius, arc = float(rng.uniform(2.0, 4.0) * s), sign * float(rng.uniform(15, 45))
        center = eye + radius * fwd
        path = T.orbit(center, eye, arc, num_frames)
        return path, {**params, "radius": radius, "arc_deg": arc}
    if template == "zoom_in":
        target = eye + 3.0 * s * fwd
        path = T.zoom_in(eye, target, 1.5 * s, num_frames)
        return path, {**params, "target_distance": 3.0 * s, "end_distance": 1.5 * s}
    if template == "random":
        speed = 0.05 * s
        path = T.random_motion(rng, eye, fwd, num_frames, max_speed=speed, max_turn_deg=3.0)
        return path, {**params, "max_speed": speed, "max_turn_deg": 3.0}
    raise ValueError(f"unknown template {template!r}; expected one of {T.TEMPLATES}")


def fov_intrinsics(height: int, width: int, fov_deg: float, num_frames: int) -> np.ndarray:
    """``K [F, 3, 3]`` float64 of a centred pinhole with horizontal field of view ``fov_deg``."""
    K = K_from_fov(fov_deg, height, width, dtype=torch.float64).numpy()
    return np.repeat(K[None], num_frames, axis=0)


def crop_resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 ``[h, w, 3]`` -> uint8 ``[height, width, 3]``: centre crop to the target aspect,
    then a Lanczos resize."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {rgb.dtype} {list(rgb.shape)}")
    h, w = rgb.shape[:2]
    if h * width > w * height:  # too tall: crop rows
        ch, cw = max(1, round(w * height / width)), w
    else:
        ch, cw = h, max(1, round(h * width / height))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(rgb[top : top + ch, left : left + cw])
    if crop.shape[:2] == (height, width):
        return crop
    image = Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image)


def image_conditionings(
    images: Sequence[tuple[str, np.ndarray]],
    count: int,
    num_frames: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    templates: Sequence[str] | None = None,
    fov_deg: float = 60.0,
    path_scale: float = 1.0,
    captions: Sequence[str] | None = None,
    kind: str = "image",
) -> list[Conditioning]:
    """``count`` conditionings cycling through ``images`` (``(name, uint8 [h, w, 3])``), each with
    its own sampled template path; ``captions`` per image (default empty); ``kind`` is recorded
    in ``source`` (``image`` for user files, ``image_prior`` for sampled ones)."""
    if not images:
        raise ValueError("no conditioning images given")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    out = []
    K = fov_intrinsics(height, width, fov_deg, num_frames)
    for i in range(count):
        j = i % len(images)
        name, rgb = images[j]
        template = choose_template(rng, templates)
        c2w, params = free_camera_path(rng, template, num_frames, path_scale)
        source = {
            "kind": kind,
            "name": name,
            "template": template,
            "template_params": params,
            "fov_deg": fov_deg,
            "path_scale": path_scale,
        }
        out.append(
            Conditioning(
                name=name,
                image=crop_resize(rgb, height, width),
                K=K.copy(),
                c2w=c2w,
                caption="" if captions is None else captions[j],
                source=source,
            )
        )
    return out


def world_conditionings(
    worlds: Sequence[World],
    count: int,
    num_frames: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    templates: Sequence[str] | None = None,
    fov_deg: float = 60.0,
    supersample: int = 2,
) -> list[Conditioning]:
    """``count`` conditionings cycling through ``worlds``: a valid path of a sampled template in
    the world (collision-free, views not blocked) and the rendered first view; the caption is
    the world's level-0 caption."""
    if not worlds:
        raise ValueError("no worlds given")
    out = []
    K = fov_intrinsics(height, width, fov_deg, num_frames)
    for i in range(count):
        world = worlds[i % len(worlds)]
        template = choose_template(rng, templates)
        traj = sample_trajectory(world, num_frames, rng, template)
        image = render(world, K[0], traj.c2w[0], height, width, supersample)["rgb"]
        source = {
            "kind": "world",
            "name": world.id,
            "world_spec": world.spec.to_dict(),
            "template": traj.template,
            "template_params": traj.params,
            "fov_deg": fov_deg,
        }
        out.append(Conditioning(world.id, image, K.copy(), traj.c2w, world.captions()[0], source))
    return out


def _is_store_object(store: ArtifactStore, ref: str) -> bool:
    try:
        return "://" not in ref and store.exists(ref)
    except InvalidKey:  # an absolute or odd path is no store key
        return False


def load_image_ref(ref: str, store: ArtifactStore | None = None) -> np.ndarray:
    """uint8 ``[H, W, 3]`` of a conditioning image: a local path (or ``file://`` URI), else a
    key of ``store`` (an ``ArtifactStore``). ValueError naming ``ref`` when it is neither or
    does not decode."""
    path = Path(unquote(urlsplit(ref).path)) if ref.startswith("file://") else Path(ref)
    try:
        if path.is_file():
            data = path.read_bytes()
        elif store is not None and _is_store_object(store, ref):
            data = store.get_bytes(ref)
        else:
            where = f" nor a key of {store.uri()}" if store is not None else ""
            raise ValueError(f"conditioning image {ref!r}: not a file{where}")
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError) as error:
        raise ValueError(f"conditioning image {ref!r}: cannot decode ({error})") from None
