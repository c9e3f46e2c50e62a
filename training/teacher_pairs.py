"""Teacher pairs for the DMD regression loss (WorldFM §2.5, DMD §3.3): (noise, conditions, teacher
output latent) triplets made by the stage-II teacher's deterministic multi-step sampler from fixed
noise, for conditions drawn from shard clips, published as one artifact set.

Layout in the artifact store::

    teacher_pairs/<version>/teacher_pairs.safetensors   noise, output, cond_* (stage III reads it)
    teacher_pairs/<version>/manifest.json               what was made, from what, how
    teacher_pairs/<version>/index.json                  files + sha256, written last (publish.py)
    teacher_pairs/latest.json                           {version, prefix, uri, ...}

A version folder without ``index.json`` is not published. Stage III takes the version's URI as
``teacher_pairs`` (``read_teacher_pairs`` fetches and verifies it). The pairs are a function of
(teacher, shard sets, seed, steps, batch size, selection): the same inputs give bit-identical
tensors on the same device.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from datagen.shards import manifest_key
from datagen.store import ArtifactStore
from models.frame import TeacherPairs, cat_conditions, make_teacher_pairs
from training.data.frame_clips import batches, frame_triplets, iter_set_clips
from training.data.frame_task import FrameTaskConfig
from training.modules.frame_common import encode_frame_batch, load_frame_export
from training.modules.frame_stage3 import PAIRS_FILE, save_teacher_pairs
from training.publish import INDEX, publish_directory
from training.registry import new_version

PREFIX = "teacher_pairs"
MANIFEST = "manifest.json"
LATEST = "latest.json"
FORMAT = "wonderforge.teacher_pairs"


@dataclasses.dataclass
class TeacherPairsSpec:
    """How to make a pair set.

    num_pairs: pairs to make (fewer if the shard sets run out of targets);
    steps: DDIM steps of the teacher (η = 0, trailing spacing from t = 999);
    seed: drives target choice, anchor augmentation and the noise;
    batch_size: pairs per teacher forward (chunk i's noise is drawn from seed · 1000003 + i);
    targets_per_clip: targets used per clip (None: all 12);
    task: the frame task's anchor augmentation (``FrameTaskConfig`` fields; None: as in
        training, i.e. the dataclass defaults with the anchor never masked).
    """

    num_pairs: int = 1024
    steps: int = 50
    seed: int = 0
    batch_size: int = 8
    targets_per_clip: int | None = 4
    task: dict | None = None

    def task_config(self) -> FrameTaskConfig:
        return FrameTaskConfig(**(self.task or {"anchor_mask_prob": 0.0}))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@torch.no_grad()
def make_pair_set(
    teacher: str | Path,
    store: ArtifactStore,
    set_prefixes: Iterable[str],
    spec: TeacherPairsSpec,
    device: str | torch.device = "cpu",
) -> tuple[TeacherPairs, dict]:
    """Run the teacher (a stage-II export folder or URI) on conditions from the shard sets.

    Returns ``(pairs, info)``: pairs on the CPU (``noise``, ``output`` ``[P, C, h, w]`` and their
    conditions) and ``{"samples": one {"set", "clip", "target_idx", "reference_idx"} per pair,
    "image_size": [H, W], "teacher_config": the export's config.json}``."""
    if spec.num_pairs < 1 or spec.steps < 1:
        raise ValueError(f"num_pairs and steps must be >= 1, got {spec.num_pairs}, {spec.steps}")
    set_prefixes = list(set_prefixes)
    export = load_frame_export(teacher)
    dit, vae = export.dit.to(device).eval(), export.vae.to(device).eval()
    triplets = frame_triplets(
        iter_set_clips(store, set_prefixes),
        spec.task_config(),
        seed=spec.seed,
        per_clip=spec.targets_per_clip,
        limit=spec.num_pairs,
    )
    parts: list[TeacherPairs] = []
    samples: list[dict] = []
    size: list[int] = []
    progress = tqdm(total=spec.num_pairs, desc="teacher pairs", unit="pair")
    for i, batch in enumerate(batches(triplets, spec.batch_size)):
        size = list(batch["target"].shape[-2:])
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        _, cond = encode_frame_batch(vae, batch)
        n = len(batch["key"])
        seed = spec.seed * 1_000_003 + i  # chunk i's noise
        parts.append(make_teacher_pairs(dit, cond, export.schedule, spec.steps, seed, n))
        samples += [
            {"set": s, "clip": k, "target_idx": int(t), "reference_idx": int(r)}
            for s, k, t, r in zip(
                batch["set"], batch["key"], batch["target_idx"], batch["reference_idx"]
            )
        ]
        progress.update(n)
    progress.close()
    if not parts:
        raise ValueError(
            f"no frame targets in the shard sets {set_prefixes} of {store.uri()}: "
            "teacher pairs need clips with point-cloud renders"
        )
    pairs = TeacherPairs(
        torch.cat([p.noise for p in parts]),
        torch.cat([p.output for p in parts]),
        cat_conditions([p.conditions for p in parts]),
    )
    return pairs, {"samples": samples, "image_size": size, "teacher_config": export.config}


def publish_pair_set(
    store: ArtifactStore,
    pairs: TeacherPairs,
    manifest: dict,
    version: str | None = None,
    promote: bool = True,
) -> str:
    """Write the pairs + ``manifest.json`` under ``teacher_pairs/<version>/`` (index last, so a
    crash publishes nothing; its ``inputs`` = the manifest's ``sets`` + ``teacher``, the lineage)
    and, with ``promote``, point ``teacher_pairs/latest.json`` at it. Returns the prefix."""
    version = version or new_version({k: v for k, v in manifest.items() if k != "created"})
    prefix = f"{PREFIX}/{version}"
    with tempfile.TemporaryDirectory(prefix="wonderforge-pairs-") as tmp:
        folder = Path(tmp)
        # no extra safetensors metadata (the manifest has it): safetensors writes its metadata
        # map in arbitrary order, and the file must be bit-identical for identical pairs
        path = save_teacher_pairs(folder / PAIRS_FILE, pairs)
        manifest = {
            **manifest,
            "format": FORMAT,
            "version": version,
            "file": PAIRS_FILE,
            "sha256": _sha256(path),
            "num_pairs": len(pairs),
            "latent_shape": list(pairs.noise.shape[1:]),
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        inputs = [
            *manifest.get("sets", []),
            *([manifest["teacher"]] if "teacher" in manifest else []),
        ]
        info = {"model": PREFIX, "num_pairs": len(pairs), "inputs": inputs}
        publish_directory(folder, store, prefix, info)
    if promote:
        store.put_json(
            f"{PREFIX}/{LATEST}",
            {
                "version": version,
                "prefix": prefix,
                "uri": store.uri(prefix),
                "num_pairs": len(pairs),
                "teacher": manifest.get("teacher"),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
    return prefix


def build_teacher_pairs(
    teacher: str | Path,
    store: ArtifactStore,
    set_prefixes: list[str],
    spec: TeacherPairsSpec,
    device: str | torch.device = "cpu",
    teacher_uri: str | None = None,
) -> tuple[str, dict]:
    """``make_pair_set`` + ``publish_pair_set``: returns (the version's prefix, its manifest)."""
    pairs, info = make_pair_set(teacher, store, set_prefixes, spec, device)
    teacher_config = info["teacher_config"]
    manifest = {
        "teacher": teacher_uri or str(teacher),
        "teacher_stage": teacher_config.get("stage"),
        "teacher_finetune": teacher_config.get("finetune"),
        "sampler": "ddim (eta 0, trailing spacing)",
        "steps": spec.steps,
        "schedule": teacher_config.get("schedule"),
        "seed": spec.seed,
        "batch_size": spec.batch_size,
        "targets_per_clip": spec.targets_per_clip,
        "task": dataclasses.asdict(spec.task_config()),
        "sets": [store.uri(manifest_key(p)) for p in set_prefixes],
        "image_size": info["image_size"],
        "samples": info["samples"],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    prefix = publish_pair_set(store, pairs, manifest)
    return prefix, store.get_json(f"{prefix}/{MANIFEST}")


def resolve_pair_set(store: ArtifactStore, version: str = "latest") -> str:
    """The prefix of a published pair set ("latest" follows ``teacher_pairs/latest.json``)."""
    if version == "latest":
        key = f"{PREFIX}/{LATEST}"
        if not store.exists(key):
            raise LookupError(
                f"no teacher pairs: {store.uri(key)} does not exist (materialize teacher_pairs)"
            )
        version = store.get_json(key)["version"]
    prefix = f"{PREFIX}/{version}"
    if not store.exists(f"{prefix}/{INDEX}"):
        raise LookupError(f"teacher pairs {version!r} are not published at {store.uri(prefix)}")
    return prefix
