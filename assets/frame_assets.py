"""Frame-model assets (WorldFM §2.3–2.5, docs/frame-model.md): the three training stages, the
teacher pairs and the evaluation, chained

    image_vae ─► frame_model_stage1 ─► frame_model_stage2 ─► frame_model_synthetic_ft
                 ─► teacher_pairs ─► frame_model_stage3 ─► frame_model_eval

Training assets run `train()` (Dagster Pipes, out of process) and publish under the registry
names `frame_stage1`, `frame_stage2`, `frame_synthetic_ft`, `frame_stage3`; each starts from its
parent's latest published version, given to the run as a store URI (fetched and verified there,
the VAE embedded in every export). Data: stage I and the synthetic finetune read the synthetic
shard sets; stage II, the teacher pairs and stage III the synthetic and (unless `include_real`
is false) the real ones. After
training, a preview strip of the published checkpoint is computed here (stage I: samples for
clip captions; II / III: anchor | prediction | GT). `teacher_pairs` and `frame_model_eval` run in
this process (on CUDA when available).
"""

import posixpath
import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.ingest import real_shards
from assets.policies import TRAINING_RETRY
from assets.synthetic import SHARDS_PREFIX, synthetic_shards
from assets.training_assets import KINDS, TrainingConfig, image_vae, train
from datagen.ingest.staging import SHARDS_PREFIX as REAL_SHARDS_PREFIX
from datagen.previews import png_markdown
from datagen.shards import manifest_key, published_sets
from datagen.shards.codecs import encode_png
from datagen.store import ArtifactStore
from training.config_files import config_path
from training.launch import TrainingLauncher
from training.publish import INDEX, fetch_published
from training.registry import config_hash, list_versions, resolve, version_prefix
from training.runtime import cpu_threads, resolve_device

STAGE1, STAGE2, SYNTHETIC_FT, STAGE3 = (
    "frame_stage1",
    "frame_stage2",
    "frame_synthetic_ft",
    "frame_stage3",
)
EVAL_PREFIX = "evaluations/frame_model"


class FrameTrainingConfig(TrainingConfig):
    """`TrainingConfig` + the preview made from the published checkpoint."""

    include_real: bool = Field(
        True,
        description="stage II / III: train on the published real-video shard sets too (frames "
        "are batched: they must have the synthetic sets' size)",
    )
    preview_count: int = Field(4, description="frames (or samples) in the preview strip")
    preview_steps: int = Field(20, description="DDIM steps of stage-I / stage-II previews")
    device: str = Field("auto", description="preview device: auto (cuda if available) | cpu | cuda")


class TeacherPairsConfig(dg.Config):
    """`training.teacher_pairs.TeacherPairsSpec` + where to run."""

    num_pairs: int = Field(1024, description="pairs to make (DMD used tens of thousands)")
    steps: int = Field(50, description="teacher DDIM steps (deterministic, eta 0)")
    seed: int = Field(0, description="target choice, anchor augmentation and noise")
    batch_size: int = Field(8, description="pairs per teacher forward")
    targets_per_clip: int | None = Field(4, description="targets per clip (None: all)")
    include_real: bool = Field(True, description="draw conditions from real-video sets too")
    device: str = Field("auto", description="auto (cuda if available) | cpu | cuda[:i]")
    cpu_threads: int = Field(1, description="torch threads when running on the CPU")


class FrameEvalConfig(dg.Config):
    """`training.evaluation.frame_model.FrameEvalConfig` + which shard sets and where to run."""

    sets: list[str] = Field(
        default_factory=list,
        description="shard-set prefixes to evaluate on; empty: the published synthetic and real "
        "sets outside the stage-III checkpoint's lineage (held out), else all of them",
    )
    teacher_steps: int = Field(25, description="DDIM steps of the stage-II teacher")
    max_clips: int = Field(8, description="clips evaluated")
    targets_per_clip: int | None = Field(None, description="first N targets per clip (None: all)")
    batch_size: int = Field(4, description="views per forward")
    seed: int = Field(0, description="noise seed (teacher and generator share the noise)")
    depth_tolerance: float = Field(0.05, description="relative depth agreement (occlusion test)")
    preview_rows: int = Field(4, description="frames in the preview strip")
    device: str = Field("auto", description="auto (cuda if available) | cpu | cuda[:i]")
    cpu_threads: int = Field(1, description="torch threads when running on the CPU")


# ---- helpers ----------------------------------------------------------------------------------


def frame_sets(store: ArtifactStore, real: bool = True) -> list[str]:
    """Prefixes of the published synthetic (and, with `real`, real-video) shard sets."""
    sets = published_sets(store, SHARDS_PREFIX)
    if real:
        sets += published_sets(store, REAL_SHARDS_PREFIX)
    if not sets:
        raise ValueError(
            f"no published shard sets under {store.uri(SHARDS_PREFIX)}"
            + (f" or {store.uri(REAL_SHARDS_PREFIX)}" if real else "")
            + ": materialize synthetic_shards first (the synthetic_data job, or `wonderforge demo`)"
        )
    return sets


def _manifests(store: ArtifactStore, prefixes: list[str]) -> list[str]:
    return [store.uri(manifest_key(p)) for p in prefixes]


def _latest(store: ArtifactStore, model: str) -> tuple[str, str]:
    """(prefix, uri) of the latest published version of `model`."""
    prefix = resolve(store, model)
    return prefix, store.uri(prefix)


def imports_pretrained_prior(config: TrainingConfig) -> bool:
    """Whether a stage-I run imports a pretrained prior (`pretrained` in its YAML or overrides,
    e.g. PixArt-Σ for the paper size): it brings its own VAE, whose latent space its weights
    were trained in, so the platform's image_vae must not replace it."""
    import yaml

    key = "--model.init_args.pretrained"
    init = yaml.safe_load(config_path(STAGE1, config.size).read_text())["model"]["init_args"]
    value = init.get("pretrained")
    args = list(config.overrides)
    for i, arg in enumerate(args):
        if arg.startswith(key + "="):
            value = arg.split("=", 1)[1]
        elif arg == key and i + 1 < len(args):
            value = args[i + 1]
    return value not in (None, "", "null", "None")


def _preview(
    context, store: ArtifactStore, prefix: str, set_prefix: str, config: FrameTrainingConfig, kind
) -> dict:
    """Preview metadata of the published checkpoint at `prefix` on the first clips of
    `set_prefix` ({} if it cannot be made: a preview never fails a finished training)."""
    from training.data.frame_clips import iter_set_clips
    from training.frame_previews import frame_prediction_sheet, prior_samples_sheet

    device = resolve_device(config.device)
    try:
        clips = [clip for _, clip in iter_set_clips(store, [set_prefix], max_clips=2)]
        with tempfile.TemporaryDirectory(prefix="wonderforge-preview-") as tmp:
            export = fetch_published(store, prefix, Path(tmp) / "export")
            if kind == "prior":
                sheet, captions = prior_samples_sheet(
                    export, clips, config.preview_count, config.preview_steps, device=device
                )
                extra = {"preview_captions": dg.MetadataValue.json(captions)}
                alt = "samples / the frames their captions describe"
            else:
                sheet, psnr = frame_prediction_sheet(
                    export, clips, config.preview_count, config.preview_steps, device=device
                )
                extra = {"preview_psnr": round(psnr, 2)}
                alt = "anchor | prediction | ground truth"
    except Exception as error:
        context.log.warning(f"no preview: {type(error).__name__}: {error}")
        return {}
    return {"preview": dg.MetadataValue.md(png_markdown(sheet, alt)), **extra}


def _result(metadata: dict, version: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))


ASSET = {"group_name": "training", "pool": "gpu", "code_version": "1"}
TRAINING = {**ASSET, "retry_policy": TRAINING_RETRY}  # a retried run resumes (assets/policies.py)


# ---- training stages --------------------------------------------------------------------------


@dg.asset(
    deps=[image_vae, synthetic_shards],
    kinds=KINDS,
    description="WorldFM stage I (§2.3): PixArt-Σ-style image prior (text-to-image, CFG) in the "
    "latent space of the latest image_vae, trained on frames and captions of the synthetic shard "
    "sets (or a PixArt-Σ import with its own VAE: `pretrained`); also the zoom stack's "
    "text-to-image model (registry: frame_stage1).",
    **TRAINING,
)
def frame_model_stage1(
    context: dg.AssetExecutionContext,
    config: FrameTrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    sets = frame_sets(store, real=False)
    vae_uri = None if imports_pretrained_prior(config) else _latest(store, "image_vae")[1]
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        STAGE1,
        _manifests(store, sets),
        extra_args=(f"--model.init_args.vae={vae_uri}",) if vae_uri else (),
        lineage=(vae_uri,) if vae_uri else (),
    )
    if vae_uri:
        metadata["image_vae"] = dg.MetadataValue.url(vae_uri)
    else:
        context.log.info("stage I imports a pretrained prior: its own VAE, not image_vae")
    metadata.update(
        _preview(context, store, version_prefix(STAGE1, run.version), sets[0], config, "prior")
    )
    return _result(metadata, run.version)


@dg.asset(
    deps=[frame_model_stage1, image_vae, synthetic_shards, real_shards],
    kinds=KINDS,
    description="WorldFM stage II (§2.4.1): the frame model — [noisy target | point-cloud render "
    "| reference] width-concatenated, PRoPE cameras, high-t biased timesteps, progressive anchor "
    "injection and random anchor masking — initialised from the latest frame_stage1, trained on "
    "the synthetic and real shard sets (registry: frame_stage2).",
    **TRAINING,
)
def frame_model_stage2(
    context: dg.AssetExecutionContext,
    config: FrameTrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    sets = frame_sets(store, config.include_real)
    _, prior_uri = _latest(store, STAGE1)
    _, vae_uri = _latest(store, "image_vae")
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        STAGE2,
        _manifests(store, sets),
        # the prior's own VAE (embedded in its export): the frame model shares its latent space
        extra_args=(f"--model.init_args.image_prior={prior_uri}", "--model.init_args.vae=null"),
        lineage=(prior_uri, vae_uri),
    )
    metadata["image_prior"] = dg.MetadataValue.url(prior_uri)
    metadata.update(
        _preview(context, store, version_prefix(STAGE2, run.version), sets[0], config, "frame")
    )
    return _result(metadata, run.version)


@dg.asset(
    deps=[frame_model_stage2, synthetic_shards],
    kinds=KINDS,
    description="WorldFM §2.4.2: short finetune of the latest frame_stage2 on synthetic shard "
    "sets only (exact poses and depth), a second chained run with a lower lr; the teacher of "
    "stage III (registry: frame_synthetic_ft; config frame_stage2/<size>_synthetic_ft.yaml).",
    **TRAINING,
)
def frame_model_synthetic_ft(
    context: dg.AssetExecutionContext,
    config: FrameTrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    sets = frame_sets(store, real=False)
    _, stage2_uri = _latest(store, STAGE2)
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        SYNTHETIC_FT,
        _manifests(store, sets),
        extra_args=(f"--model.init_args.init_from={stage2_uri}",),
        lineage=(stage2_uri,),
        config_file=(STAGE2, f"{config.size}_synthetic_ft"),
    )
    metadata["init_from"] = dg.MetadataValue.url(stage2_uri)
    prefix = version_prefix(SYNTHETIC_FT, run.version)
    metadata.update(_preview(context, store, prefix, sets[0], config, "frame"))
    return _result(metadata, run.version)


@dg.asset(
    deps=[frame_model_synthetic_ft, synthetic_shards, real_shards],
    description="DMD regression pairs (WorldFM §2.5): the latest frame_synthetic_ft's "
    "deterministic DDIM sampler run from seeded noise on conditions drawn from the shard sets; "
    "(noise, conditions, teacher output latent) in teacher_pairs/<version>/ with a manifest.",
    kinds={"pytorch", "safetensors"},
    **ASSET,
)
def teacher_pairs(
    context: dg.AssetExecutionContext,
    config: TeacherPairsConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    from training.frame_previews import teacher_pairs_sheet
    from training.teacher_pairs import TeacherPairsSpec, build_teacher_pairs

    sets = frame_sets(store, config.include_real)
    teacher_prefix, teacher_uri = _latest(store, SYNTHETIC_FT)
    spec = TeacherPairsSpec(
        num_pairs=config.num_pairs,
        steps=config.steps,
        seed=config.seed,
        batch_size=config.batch_size,
        targets_per_clip=config.targets_per_clip,
    )
    device = resolve_device(config.device)
    with tempfile.TemporaryDirectory(prefix="wonderforge-teacher-") as tmp:
        local = fetch_published(store, teacher_prefix, Path(tmp) / "teacher")
        with cpu_threads(device, config.cpu_threads):
            prefix, manifest = build_teacher_pairs(
                local, store, sets, spec, device, teacher_uri=teacher_uri
            )
            try:
                pairs_file = store.get_file(f"{prefix}/{manifest['file']}", Path(tmp) / "pairs")
                sheet = teacher_pairs_sheet(local, pairs_file, count=4)
                preview = {
                    "preview": dg.MetadataValue.md(
                        png_markdown(sheet, "reference | anchor | teacher output")
                    )
                }
            except Exception as error:  # the preview never fails the pairs
                context.log.warning(f"no preview: {type(error).__name__}: {error}")
                preview = {}
    context.log.info(f"{manifest['num_pairs']} teacher pairs published to {store.uri(prefix)}")
    metadata = {
        "uri": dg.MetadataValue.url(store.uri(prefix)),
        "version": manifest["version"],
        "num_pairs": manifest["num_pairs"],
        "steps": manifest["steps"],
        "seed": manifest["seed"],
        "latent_shape": dg.MetadataValue.json(manifest["latent_shape"]),
        "sha256": manifest["sha256"],
        "teacher": dg.MetadataValue.url(teacher_uri),
        "inputs": dg.MetadataValue.json(manifest["sets"]),
        **preview,
    }
    return _result(metadata, manifest["version"])


@dg.asset(
    deps=[frame_model_synthetic_ft, teacher_pairs, synthetic_shards, real_shards],
    kinds=KINDS,
    description="WorldFM stage III (§2.5): DMD of the latest frame_synthetic_ft into a 2-step "
    "generator (999 -> 200 -> 0): frozen real score, fake score trained on generator samples, "
    "regression on the latest teacher_pairs; synthetic and real shard sets (registry: "
    "frame_stage3).",
    **TRAINING,
)
def frame_model_stage3(
    context: dg.AssetExecutionContext,
    config: FrameTrainingConfig,
    store: dg.ResourceParam[ArtifactStore],
    launcher: dg.ResourceParam[TrainingLauncher],
) -> dg.MaterializeResult:
    from training.teacher_pairs import resolve_pair_set

    sets = frame_sets(store, config.include_real)
    _, teacher_uri = _latest(store, SYNTHETIC_FT)
    pairs_uri = store.uri(resolve_pair_set(store))
    run, _, metadata = train(
        context,
        config,
        store,
        launcher,
        STAGE3,
        _manifests(store, sets),
        extra_args=(
            f"--model.init_args.teacher={teacher_uri}",
            f"--model.init_args.teacher_pairs={pairs_uri}",
        ),
        lineage=(teacher_uri, pairs_uri),
    )
    metadata["teacher"] = dg.MetadataValue.url(teacher_uri)
    metadata["teacher_pairs"] = dg.MetadataValue.url(pairs_uri)
    prefix = version_prefix(STAGE3, run.version)
    metadata.update(_preview(context, store, prefix, sets[0], config, "frame"))
    return _result(metadata, run.version)


# ---- evaluation -------------------------------------------------------------------------------


def _prefix_of(store: ArtifactStore, uri: str) -> str | None:
    """The store key prefix of a URI inside `store`, None for URIs elsewhere."""
    root = store.uri("").rstrip("/") + "/"
    return uri[len(root) :].strip("/") if uri.startswith(root) else None


def lineage(store: ArtifactStore, prefix: str) -> set[str]:
    """Every URI in the transitive `inputs` of the published folder at `prefix` (checkpoints,
    teacher pairs, shard manifests)."""
    seen: set[str] = set()
    todo = [prefix]
    while todo:
        key = posixpath.join(todo.pop(), INDEX)
        if not store.exists(key):
            continue
        for uri in store.get_json(key).get("inputs", []):
            if uri not in seen:
                seen.add(uri)
                inner = _prefix_of(store, uri)
                if inner is not None:
                    todo.append(inner)
    return seen


def _teacher_of(context, store: ArtifactStore, generator_prefix: str) -> str:
    """The frame_synthetic_ft version the generator was distilled from (its export's `teacher`),
    else the latest one."""
    config = store.get_json(f"{generator_prefix}/config.json")
    for version in list_versions(store, SYNTHETIC_FT):
        prefix = version_prefix(SYNTHETIC_FT, version)
        if store.uri(prefix) == config.get("teacher"):
            return prefix
    context.log.warning(
        f"the generator's teacher {config.get('teacher')} is not a published {SYNTHETIC_FT} "
        "version of this store: evaluating the latest one"
    )
    return resolve(store, SYNTHETIC_FT)


@dg.asset(
    deps=[frame_model_stage3],
    kinds={"pytorch"},
    description="Frame-model evaluation on held-out clips: novel-view PSNR / SSIM of the "
    "point-cloud render alone, the multi-step stage-II teacher and the 2-step generator, "
    "reprojection consistency along each clip's camera path, preview anchor | teacher | "
    "generator | GT; report in evaluations/frame_model/<stage-III version>/.",
    **ASSET,
)
def frame_model_eval(
    context: dg.AssetExecutionContext,
    config: FrameEvalConfig,
    store: dg.ResourceParam[ArtifactStore],
) -> dg.MaterializeResult:
    from training.evaluation import frame_model as evaluation

    generator_prefix, generator_uri = _latest(store, STAGE3)
    teacher_prefix = _teacher_of(context, store, generator_prefix)
    if config.sets:
        sets, held_out = list(config.sets), None
    else:
        sets, held_out = evaluation.held_out_sets(
            store, frame_sets(store), lineage(store, generator_prefix)
        )
        if not held_out:
            context.log.warning(
                "every published shard set is in the generator's lineage: evaluating on "
                "training sets (materialize a new shard partition to hold one out)"
            )
    eval_config = evaluation.FrameEvalConfig(
        teacher_steps=config.teacher_steps,
        max_clips=config.max_clips,
        targets_per_clip=config.targets_per_clip,
        batch_size=config.batch_size,
        seed=config.seed,
        depth_tolerance=config.depth_tolerance,
        preview_rows=config.preview_rows,
    )
    device = resolve_device(config.device)
    with cpu_threads(device, config.cpu_threads):
        result = evaluation.evaluate_published(
            store, teacher_prefix, generator_prefix, sets, eval_config, device
        )
    out = f"{EVAL_PREFIX}/{posixpath.basename(generator_prefix)}"
    report = {
        "generator": generator_uri,
        "teacher": store.uri(teacher_prefix),
        "sets": _manifests(store, sets),
        "held_out": held_out,
        "config": eval_config.__dict__,
        "metrics": result.metrics,
        "clips": result.clips,
    }
    store.put_bytes(f"{out}/preview.png", encode_png(result.preview, compress_level=6))
    store.put_json(f"{out}/report.json", report)
    m = result.metrics
    metadata = {
        "uri": dg.MetadataValue.url(store.uri(out)),
        "report": dg.MetadataValue.url(store.uri(f"{out}/report.json")),
        "metrics": dg.MetadataValue.json(m),
        **{f"{k}_psnr": round(m[f"{k}/psnr"], 3) for k in evaluation.METHODS},
        **{f"{k}_ssim": round(m[f"{k}/ssim"], 4) for k in evaluation.METHODS},
        **{
            f"consistency_{k}_psnr": round(m[f"consistency/{k}_psnr"], 3)
            for k in ("ground_truth", *evaluation.METHODS)
        },
        "held_out": "given" if held_out is None else held_out,
        "sets": dg.MetadataValue.json(report["sets"]),
        "generator": dg.MetadataValue.url(generator_uri),
        "teacher": dg.MetadataValue.url(store.uri(teacher_prefix)),
        "preview": dg.MetadataValue.md(
            png_markdown(result.preview, " | ".join(evaluation.PREVIEW_COLUMNS))
        ),
    }
    return _result(metadata, f"{posixpath.basename(generator_prefix)}-{config_hash(report)}")
