"""Training the LaLRM (Wonderland §3.3, App. D.2) with Lightning.

One step: video latents of the context clip (``latents`` from the batch — generated clips store
them — or the frozen video VAE's encoding of ``context``) + the context's Plücker rays → the
LaLRM's pixel-aligned Gaussians → rendered at the supervision cameras ``sup_K`` / ``sup_c2w``
(seen + unseen views) → loss ``mse_weight · MSE + perceptual_weight · perceptual`` over the
views with ``sup_valid`` (padding slots are ignored). Logs ``train/loss``, ``train/mse``,
``train/perceptual``, ``train/psnr_seen`` and ``train/psnr_unseen``.

Progressive training: ``stage=1`` uses the deconvolution stride ``8p`` (paper (4, 16, 16): a
full-resolution Gaussian map) on benchmark clips; ``stage=2`` uses ``4p`` (paper (4, 8, 8): half
resolution) at high resolution with generated clips mixed in (``training.data.mixed``) and
starts from the stage-1 export (``init_from``; the deconv kernel is average-pooled,
``models.lalrm.adapt_state_dict``).

Perceptual loss: ``"pyramid"`` (``PyramidPerceptualLoss``, no pretrained weights) by default, or
``"vgg19"`` — the paper's — with ImageNet VGG-19 weights from a local safetensors file
(``vgg19_weights``, torchvision key layout ``features.<i>.weight``); nothing is downloaded.

``export_pretrained(dir)`` writes ``lalrm.safetensors`` + ``config.json`` (+ ``vae/`` when the
VAE was not loaded from a path); ``LaLRMModule.load(dir)`` rebuilds the module from it.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import lightning as L
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from datagen.store import store_from_env_uri
from models.autoencoders import PyramidPerceptualLoss, build_video_vae, encode
from models.lalrm import LaLRM, VGG19PerceptualLoss, adapt_state_dict, lalrm_config, render_views
from training.modules.autoencoder import load_autoencoder
from training.publish import fetch_published
from training.sharding import consolidate_for_export

WEIGHTS = "lalrm.safetensors"
FORMAT = "wonderforge.lalrm"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PERCEPTUAL = ("pyramid", "vgg19", "none")


def stage_upsample(stage: int, latent_patch: int, spatial_compression: int = 8) -> int:
    """Deconv stride of a training stage: ``8p`` (stage 1, full-resolution map) or ``4p``
    (stage 2, half resolution) — (4, 16, 16) and (4, 8, 8) for ``p = 2`` (D.2)."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    return spatial_compression * latent_patch // stage


def view_psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB per view ``[B, V]`` of ``pred`` (clamped to [0, 1]) vs ``target [B, V, 3, H, W]``."""
    mse = (pred.detach().float().clamp(0, 1) - target.float()).pow(2).flatten(2).mean(-1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def _local_folder(path: str, tmp: str) -> Path:
    """A local folder, or a published folder's ``file://`` / ``s3://`` URI fetched into ``tmp``."""
    if "://" not in path:
        return Path(path)
    return fetch_published(store_from_env_uri(path), "", Path(tmp) / "fetched")


class LaLRMModule(L.LightningModule):
    """LaLRM training (see the module doc).

    size / model: preset (tiny, small, paper) and overrides of ``LaLRMConfig`` fields
        (e.g. ``gradient_checkpointing``); ``upsample`` defaults to the stage's stride.
    stage: 1 (low resolution, benchmark clips) or 2 (high resolution, generated clips mixed in).
    vae: frozen video VAE to encode ``context`` when a batch has no ``latents``: a local diffusers
        folder or a published URI, a dict ``{size: tiny, **overrides}`` (random VAE, smoke runs),
        a module, or None (batches must carry ``latents``).
    init_from: an export (folder or URI) to start from (stage 2 from stage 1).
    mse_weight / perceptual_weight / perceptual / vgg19_weights: the loss (see module doc).
    lr, betas, weight_decay, eps: AdamW (no decay on norms and biases); warmup_steps linear
        warm-up, then cosine annealing to ``min_lr_ratio · lr`` at the trainer's last step.
    background: RGB behind the Gaussians; render_mode "3dgs" | "2dgs"; render_backend "auto"
        (gsplat on CUDA, torch elsewhere) | "gsplat" | "torch".
    vae_dtype: cast the frozen VAE (e.g. "bfloat16").
    """

    def __init__(
        self,
        size: str = "tiny",
        model: dict | None = None,
        stage: int = 1,
        vae: str | dict | None = None,
        init_from: str | None = None,
        mse_weight: float = 1.0,
        perceptual_weight: float = 0.5,
        perceptual: str = "pyramid",
        vgg19_weights: str | None = None,
        lr: float = 4e-4,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.05,
        eps: float = 1e-8,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
        render_mode: str = "3dgs",
        render_backend: str = "auto",
        vae_dtype: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["vae"] if isinstance(vae, nn.Module) else None)
        overrides = dict(model or {})
        patch = overrides.get("latent_patch", lalrm_config(size).latent_patch)
        overrides.setdefault("upsample", stage_upsample(stage, patch))
        self.model = LaLRM(lalrm_config(size, **overrides))
        self.vae_path: str | None = None
        self.vae = self._build_vae(vae, vae_dtype)
        self.perceptual = self._build_perceptual(perceptual, vgg19_weights)
        self.register_buffer("background", torch.tensor(background, dtype=torch.float32), False)
        if init_from:
            self.load_model_weights(init_from)
        self.strict_loading = False  # Lightning checkpoints leave out path-loaded frozen weights

    # ---- construction ------------------------------------------------------------------------

    def _build_vae(self, vae, dtype: str | None) -> nn.Module | None:
        if vae is None:
            return None
        if isinstance(vae, (str, Path)):
            self.vae_path = str(vae)
            vae = load_autoencoder("video", "tiny", pretrained=str(vae))
        elif isinstance(vae, dict):
            cfg = dict(vae)
            vae = build_video_vae(cfg.pop("size", "tiny"), **cfg)
        channels = int(vae.config.latent_channels)
        if channels != self.model.config.latent_channels:
            raise ValueError(
                f"VAE has {channels} latent channels, the LaLRM expects "
                f"{self.model.config.latent_channels}"
            )
        if dtype:
            vae = vae.to(DTYPES[dtype])
        return vae.eval().requires_grad_(False)

    @staticmethod
    def _build_perceptual(kind: str, weights: str | None) -> nn.Module | None:
        if kind not in PERCEPTUAL:
            raise ValueError(f"perceptual must be one of {PERCEPTUAL}, got {kind!r}")
        if kind == "none":
            return None
        if kind == "pyramid":
            return PyramidPerceptualLoss()
        if not weights:
            raise ValueError("perceptual='vgg19' needs vgg19_weights: a local safetensors file")
        loss = VGG19PerceptualLoss()
        loss.load_features(load_file(str(weights)))
        return loss

    def load_model_weights(self, directory: str) -> None:
        """Load the LaLRM weights of an export (folder or URI), adapting the deconv stride."""
        with tempfile.TemporaryDirectory(prefix="wonderforge-lalrm-") as tmp:
            state = load_file(str(_local_folder(directory, tmp) / WEIGHTS))
        self.model.load_state_dict(adapt_state_dict(state, self.model))

    def train(self, mode: bool = True) -> LaLRMModule:
        super().train(mode)
        for module in (self.vae, self.perceptual):
            if module is not None:
                module.eval()
        return self

    # ---- batch -> Gaussians -> renders -------------------------------------------------------

    def latents(self, batch: dict) -> Tensor:
        """Scaled video latents ``[B, C, T', h, w]`` of the context clip."""
        if "latents" in batch:
            return batch["latents"].float()
        if self.vae is None:
            raise ValueError("batch has no 'latents' and the module has no VAE to encode 'context'")
        with torch.no_grad():
            return encode(self.vae, batch["context"]).float()

    def gaussians(self, batch: dict) -> dict[str, Tensor]:
        """The context's pixel-aligned Gaussians (``LaLRM.gaussians``: means ``[B, N, 3]``, ...)."""
        return self.model.gaussians(
            self.latents(batch),
            batch["context_plucker"],
            batch["context_K"],
            batch["context_c2w"],
        )

    def render(self, batch: dict, gaussians: dict[str, Tensor] | None = None):
        """Renders at the supervision cameras: ``RenderOutput`` with rgb ``[B, V, 3, H, W]``."""
        gaussians = self.gaussians(batch) if gaussians is None else gaussians
        H, W = batch["sup"].shape[-2:]
        hp = self.hparams
        return render_views(
            gaussians,
            batch["sup_K"],
            batch["sup_c2w"],
            H,
            W,
            background=self.background,
            mode=hp.render_mode,
            backend=hp.render_backend,
        )

    def loss_terms(self, batch: dict) -> dict[str, Tensor]:
        """loss, mse, perceptual (over views with ``sup_valid``), psnr_seen / psnr_unseen (mean
        over valid views of each kind; absent when there is none)."""
        pred = self.render(batch).rgb
        target = batch["sup"].float()
        valid = batch["sup_valid"].bool()
        if not valid.any():
            raise ValueError("batch has no valid supervision view")
        per_view = (pred - target).pow(2).flatten(2).mean(-1)  # [B, V]
        terms = {"mse": (per_view * valid).sum() / valid.sum()}
        if self.perceptual is not None and self.hparams.perceptual_weight:
            terms["perceptual"] = self.perceptual(pred[valid], target[valid])
        else:
            terms["perceptual"] = pred.new_zeros(())
        hp = self.hparams
        terms["loss"] = hp.mse_weight * terms["mse"] + hp.perceptual_weight * terms["perceptual"]
        psnr = view_psnr(pred, target)
        seen = batch["sup_is_seen"].bool()
        for name, mask in (("psnr_seen", valid & seen), ("psnr_unseen", valid & ~seen)):
            if mask.any():
                terms[name] = psnr[mask].mean()
        return terms

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        terms = self.loss_terms(batch)
        B = batch["sup"].shape[0]
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=B)
        metrics = {f"train/{k}": v.detach() for k, v in terms.items() if k != "loss"}
        self.log_dict(metrics, batch_size=B)
        return terms["loss"]

    # ---- optimisation ------------------------------------------------------------------------

    def configure_optimizers(self):
        hp = self.hparams
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        groups = [
            {"params": decay, "weight_decay": hp.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps)
        trainer = self._trainer
        total = trainer.max_steps if trainer is not None and trainer.max_steps > 0 else None
        if total is None and not hp.warmup_steps:
            return opt
        warmup, floor = max(0, hp.warmup_steps), hp.min_lr_ratio

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if total is None or total <= warmup:
                return 1.0
            progress = min(1.0, (step - warmup) / (total - warmup))
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- checkpoints, export, load -----------------------------------------------------------

    def _frozen_prefixes(self) -> tuple[str, ...]:
        return ("perceptual.", "vae.") if self.vae_path else ("perceptual.",)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        skip = self._frozen_prefixes()
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(skip)}

    def on_train_end(self) -> None:
        """Under FSDP: gather the full weights onto rank 0 for ``export_pretrained`` (every rank
        takes part; ``training.sharding``)."""
        self._export_state = consolidate_for_export(self, "model.")

    def export_pretrained(self, directory: str | Path) -> dict:
        """Write ``lalrm.safetensors`` + ``config.json`` (+ ``vae/`` for a VAE not loaded from a
        path); returns metadata for the publish index."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        source = getattr(self, "_export_state", None) or self.model.state_dict()
        state = {k: v.detach().float().cpu().contiguous() for k, v in source.items()}
        save_file(state, out / WEIGHTS)
        if self.vae is not None and not self.vae_path:
            self.vae.save_pretrained(out / "vae", safe_serialization=True)
        parameters = sum(v.numel() for v in state.values())
        hp = self.hparams
        config = {
            "format": FORMAT,
            "version": 1,
            "model": self.model.config.to_dict(),
            "stage": hp.stage,
            "vae": {"path": self.vae_path, "present": self.vae is not None},
            "render": {
                "background": [float(x) for x in self.background],
                "mode": hp.render_mode,
            },
            "parameters": parameters,
        }
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        return {"stage": hp.stage, "parameters": parameters, "upsample": self.model.config.upsample}

    @classmethod
    def load(
        cls,
        directory: str | Path,
        map_location: str | torch.device = "cpu",
        vae: str | None = None,
    ) -> LaLRMModule:
        """Rebuild a module from ``export_pretrained`` output (a local folder); strict weights.
        ``vae`` (a local folder or published URI) replaces the VAE the export names, e.g. when
        the path recorded at training does not exist on this machine."""
        d = Path(directory)
        config = json.loads((d / "config.json").read_text())
        if config.get("format") != FORMAT:
            raise ValueError(f"{d}: not a LaLRM export (format {config.get('format')})")
        if vae is None:
            vae = str(d / "vae") if (d / "vae").is_dir() else config["vae"]["path"]
        render = config.get("render", {})
        module = cls(
            size="tiny",
            model=config["model"],
            stage=config["stage"],
            vae=vae,
            perceptual="none",
            background=tuple(render.get("background", (0.0, 0.0, 0.0))),
            render_mode=render.get("mode", "3dgs"),
        )
        module.model.load_state_dict(load_file(str(d / WEIGHTS)))
        return module.to(map_location).eval()
