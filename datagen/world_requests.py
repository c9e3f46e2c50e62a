"""World-generation inputs: prompt files, input images, and world requests in the artifact store.

A request (one ``world_requests`` partition) lives under ``requests/worlds/<id>/``::

    image.<ext>     the input image (bytes as given)
    prompts.txt     one prompt per level, level 0 describing the input image
    request.json    {id, levels, p, centres, steps, seed, size, zoom_mode, image, created}
                    (written last: a request without it is incomplete and never listed)

The id is ``w`` + 12 hex digits of the sha1 of the image bytes, the prompts and the settings, so
submitting the same request twice gives the same partition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datagen.store import ArtifactStore

REQUESTS_PREFIX = "requests/worlds"
REQUEST_FILE = "request.json"
PROMPTS_FILE = "prompts.txt"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class WorldRequestError(ValueError):
    """A malformed world input or request; the message names the file and the problem."""


def parse_prompts(text: str, where: str = "<prompts>") -> list[str]:
    """One prompt per non-empty line (``#`` comment lines skipped)."""
    prompts = [s.strip() for s in text.splitlines()]
    prompts = [s for s in prompts if s and not s.startswith("#")]
    if not prompts:
        raise WorldRequestError(f"{where}: no prompts (one per line, level 0 first)")
    return prompts


def read_prompts(path: str | os.PathLike) -> list[str]:
    """Prompts of a ``prompts.txt`` (see ``parse_prompts``)."""
    path = Path(path)
    if not path.is_file():
        raise WorldRequestError(f"{path}: prompts file not found")
    return parse_prompts(path.read_text(encoding="utf-8"), str(path))


def decode_image(data: bytes, size: tuple[int, int], where: str = "<image>") -> torch.Tensor:
    """Image bytes -> ``[3, H, W]`` float in [0, 1]: centre-cropped to the aspect of ``size =
    (H, W)`` and resized (Lanczos)."""
    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as error:  # PIL raises several types on bad data
        raise WorldRequestError(f"{where}: not a readable image ({error})") from None
    H, W = size
    w, h = img.size
    if h * W > w * H:  # too tall: crop rows
        ch = round(w * H / W)
        box = (0, (h - ch) // 2, w, (h - ch) // 2 + ch)
    else:
        cw = round(h * W / H)
        box = (((w - cw) // 2), 0, (w - cw) // 2 + cw, h)
    img = img.crop(box).resize((W, H), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def read_image(path: str | os.PathLike, size: tuple[int, int]) -> torch.Tensor:
    """An image file -> ``[3, H, W]`` in [0, 1] (``decode_image``)."""
    path = Path(path)
    if not path.is_file():
        raise WorldRequestError(f"{path}: image not found")
    return decode_image(path.read_bytes(), size, str(path))


@dataclass
class WorldRequest:
    """What to generate: ``prompts`` (level 0 first), ``levels`` (default: one per prompt),
    zoom factor ``p``, per-step zoom ``centres`` in normalised image coordinates (default the
    centre), sampler ``steps``, ``seed``, working ``size`` (None: the image model's), zoom mode."""

    prompts: list[str]
    levels: int | None = None
    p: int = 2
    centres: list[list[float]] | None = None
    steps: int = 50
    seed: int = 0
    size: int | None = None
    zoom_mode: str = "dolly"
    image: str = "image.png"
    id: str = ""
    created: str = field(default="")

    def __post_init__(self):
        if self.levels is None:
            self.levels = len(self.prompts)
        if not 1 <= self.levels <= len(self.prompts):
            raise WorldRequestError(
                f"levels={self.levels} needs 1 to {len(self.prompts)} (one prompt per level)"
            )
        if self.p not in (2, 4):
            raise WorldRequestError(f"zoom factor must be 2 or 4, got {self.p}")
        if self.centres is not None:
            for c in self.centres:
                if len(c) != 2 or not all(0.0 <= float(v) <= 1.0 for v in c):
                    raise WorldRequestError(f"zoom centre {c} must be two numbers in [0, 1]")

    def settings(self) -> dict:
        d = asdict(self)
        d.pop("created")
        d.pop("id")
        return d


def request_id(image_bytes: bytes, request: WorldRequest) -> str:
    """``w`` + 12 hex of sha1(image bytes, settings)."""
    h = hashlib.sha1(image_bytes)
    h.update(json.dumps(request.settings(), sort_keys=True).encode())
    return "w" + h.hexdigest()[:12]


def request_prefix(rid: str) -> str:
    return f"{REQUESTS_PREFIX}/{rid}"


def save_request(
    store: ArtifactStore, image_bytes: bytes, suffix: str, request: WorldRequest
) -> str:
    """Store a request (image, prompts, request.json last); returns its id (idempotent)."""
    suffix = suffix.lower() if suffix.lower() in IMAGE_SUFFIXES else ".png"
    request.image = f"image{suffix}"
    rid = request.id or request_id(image_bytes, request)
    request.id = rid
    request.created = request.created or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    prefix = request_prefix(rid)
    store.put_bytes(f"{prefix}/{request.image}", image_bytes)
    store.put_bytes(f"{prefix}/{PROMPTS_FILE}", ("\n".join(request.prompts) + "\n").encode())
    store.put_json(f"{prefix}/{REQUEST_FILE}", asdict(request))
    return rid


def request_from_files(image: str | os.PathLike, prompts: str | os.PathLike, **settings):
    """``(image bytes, suffix, WorldRequest)`` from local files (clear errors naming them)."""
    image = Path(image)
    if not image.is_file():
        raise WorldRequestError(f"{image}: image not found")
    data = image.read_bytes()
    decode_image(data, (16, 16), str(image))  # fail early on unreadable images
    return data, image.suffix, WorldRequest(read_prompts(prompts), **settings)


def load_request(store: ArtifactStore, rid: str) -> tuple[WorldRequest, bytes]:
    """A stored request and its image bytes; LookupError when it does not exist."""
    key = f"{request_prefix(rid)}/{REQUEST_FILE}"
    if not store.exists(key):
        raise LookupError(f"no world request {rid!r}: {store.uri(key)} does not exist")
    data = store.get_json(key)
    try:
        request = WorldRequest(**data)
    except TypeError as error:
        raise WorldRequestError(f"{store.uri(key)}: malformed request ({error})") from None
    return request, store.get_bytes(f"{request_prefix(rid)}/{request.image}")


def inbox_items(inbox: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(image, prompts.txt)`` of every folder of ``inbox`` holding both (sorted by name); a
    folder's image is its first file with an image suffix."""
    root = Path(inbox)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: world inbox not found")
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        prompts = folder / PROMPTS_FILE
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if prompts.is_file() and images:
            items.append((images[0], prompts))
    return items
