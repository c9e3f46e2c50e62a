"""WorldFM Stage II — the frame model (§2.4.1) and its synthetic-data finetune (§2.4.2).

Objective (§2.2): ε-prediction MSE ``‖ε − ε_θ(z_t, t, 𝒞)‖²`` on the target latent, with the
condition set 𝒞 = {reference latent, reference and target poses, point-cloud render latent}
from the ClipDataModule "frame" task (images encoded by the frozen image VAE). Training
strategies, all configurable:

- noise-schedule biasing: ``timestep_sampling`` (``TimestepSampler``; default logit-normal with
  mean 0.5 on t/T, i.e. mean t ≈ 600 instead of 500 — the paper gives no distribution);
- progressive condition injection + random anchor masking: ``anchor_schedule``
  (``AnchorSchedule``): reference only at first, the anchor ramped in, random masking later.

Initialisation: ``image_prior`` (stage-I export or PixArt-Σ folder: dimensions from its config,
weights copied by ``load_image_prior_weights``), or ``init_from`` (a stage-II export: the
synthetic finetune, a second chained run with ``finetune: true``), or random (``dit``).
``export_pretrained`` writes the frame-model export (``frame_common``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from models.frame import (
    DiffusionSchedule,
    FrameCondition,
    FrameDiT,
    TimestepSampler,
    frame_config_from_pixart,
    load_image_prior_weights,
    load_pixart,
)
from training.modules.frame_common import (
    build_vae,
    drop_anchors,
    encode_frame_batch,
    frozen,
    load_frame_export,
    local_folder,
    save_frame_export,
)
from training.modules.optim import adamw_with_warmup
from training.sharding import consolidate_for_export, unsharded_copy


@dataclass
class AnchorSchedule:
    """Probability of dropping the anchor at a training step (WorldFM §2.4.1).

    ``step < reference_only_steps``: 1 (reference only); then over ``ramp_steps`` linearly down to
    ``mask_prob`` if masking starts by the ramp's end (``mask_start_step`` None or ≤ ramp end),
    else down to 0 and ``mask_prob`` from ``mask_start_step`` on (random anchor masking "in the
    later stages").
    """

    reference_only_steps: int = 0
    ramp_steps: int = 0
    mask_start_step: int | None = None
    mask_prob: float = 0.0

    def drop_prob(self, step: int) -> float:
        s0 = self.reference_only_steps
        s1 = s0 + self.ramp_steps
        start = s1 if self.mask_start_step is None else self.mask_start_step
        end = self.mask_prob if start <= s1 else 0.0
        if step < s0:
            return 1.0
        if step < s1:
            return 1.0 + (end - 1.0) * (step - s0) / self.ramp_steps
        return self.mask_prob if step >= start else 0.0


class FrameModelModule(L.LightningModule):
    """Stage-II frame model.

    dit: ``FrameDiT`` config (the full config without ``image_prior``; overrides such as
        ``camera_encoding`` with it);
    image_prior: stage-I export / PixArt-Σ folder or URI to initialise from;
    init_from: stage-II export to continue from (synthetic finetune); finetune: require it;
    vae: image-VAE folder/URI or ``{size: ..}`` (None: the export's / prior's ``vae/``);
    prediction_type: epsilon (paper, the default) | v_prediction (None: the export's); schedule: ``DiffusionSchedule`` overrides;
    timestep_sampling: ``TimestepSampler`` fields; anchor_schedule: ``AnchorSchedule`` fields;
    lr, betas, weight_decay, warmup_steps: AdamW; gradient_checkpointing: recompute blocks.
    """

    def __init__(
        self,
        dit: dict | None = None,
        image_prior: str | None = None,
        init_from: str | None = None,
        finetune: bool = False,
        vae: str | dict | None = None,
        prediction_type: str | None = None,
        schedule: dict | None = None,
        timestep_sampling: dict | None = None,
        anchor_schedule: dict | None = None,
        lr: float = 2e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.03,
        warmup_steps: int = 0,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        if finetune and not init_from:
            raise ValueError("a finetune run needs `init_from` (the stage-II export to finetune)")
        if init_from and image_prior:
            raise ValueError("give at most one of init_from and image_prior")
        self.init_report: dict = {}
        sched = dict(schedule or {})
        if prediction_type:
            sched["prediction_type"] = prediction_type
        if init_from:
            export = load_frame_export(init_from)
            self.dit = export.dit
            sched = {**export.schedule.to_dict(), **sched}
            self.vae, self.vae_source = (
                build_vae(vae) if vae else (export.vae, export.config["vae"]["path"])
            )
        elif image_prior:
            with local_folder(image_prior) as folder:
                pixart = load_pixart(folder)
                self.dit = FrameDiT(**frame_config_from_pixart(pixart.config, **(dit or {})))
                self.init_report = load_image_prior_weights(self.dit, pixart.state_dict())
                del pixart
                fallback = folder / "vae" if (folder / "vae").is_dir() else None
                self.vae, self.vae_source = build_vae(vae, fallback)
                if "://" in image_prior:
                    self.vae_source = None
        else:
            self.dit = FrameDiT(**(dit or {}))
            self.vae, self.vae_source = build_vae(vae or {"size": "tiny"})
        self.vae = frozen(self.vae)
        if gradient_checkpointing:
            self.dit.enable_gradient_checkpointing()
        self.schedule = DiffusionSchedule(**sched)
        self.timesteps = TimestepSampler(
            **{
                "num_train_timesteps": self.schedule.num_train_timesteps,
                **(timestep_sampling or {}),
            }
        )
        self.anchor_schedule = AnchorSchedule(**(anchor_schedule or {}))

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()
        return self

    # ---- objective ---------------------------------------------------------------------------

    def diffusion_loss(
        self,
        z0: Tensor,
        cond: FrameCondition,
        timesteps: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """ε/v MSE for target latents ``z0 [B, C, h, w]`` under ``cond`` (biased ``t`` if None)."""
        B = z0.shape[0]
        t = self.timesteps(B, z0.device) if timesteps is None else timesteps.to(z0.device).long()
        noise = torch.randn_like(z0) if noise is None else noise.to(z0)
        pred = self.dit(self.schedule.add_noise(z0, noise, t), t, cond)
        return F.mse_loss(pred.float(), self.schedule.target(z0, noise, t).float())

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        z0, cond = encode_frame_batch(self.vae, batch)
        p = self.anchor_schedule.drop_prob(self.global_step)
        cond = drop_anchors(cond, p)
        loss = self.diffusion_loss(z0, cond)
        B = z0.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=B)
        self.log("train/anchor_drop_prob", p, batch_size=B)
        self.log("train/anchor_masked", cond.masked().float().mean(), batch_size=B)
        return loss

    def configure_optimizers(self):
        return adamw_with_warmup(self.dit.parameters(), self.hparams)

    # ---- export ------------------------------------------------------------------------------

    def on_train_end(self) -> None:
        """Under FSDP: gather the full DiT weights onto rank 0 for ``export_pretrained`` (every
        rank takes part; ``training.sharding``)."""
        self._export_state = consolidate_for_export(self, "dit.")

    def export_pretrained(self, directory: str | Path) -> dict:
        """The frame-model export (stage 2); returns publish metadata."""
        hp = self.hparams
        dit = unsharded_copy(
            self.dit,
            getattr(self, "_export_state", None),
            lambda: FrameDiT.from_config(self.dit.config),
        )
        save_frame_export(
            directory,
            dit,
            self.vae,
            self.schedule,
            self.vae_source,
            stage=2,
            finetune=bool(hp.finetune),
            init_from=hp.init_from,
            image_prior=hp.image_prior,
            timestep_sampling=asdict(self.timesteps),
            anchor_schedule=asdict(self.anchor_schedule),
        )
        return {
            "stage": 2,
            "camera_encoding": self.dit.config.camera_encoding,
            "parameters": sum(p.numel() for p in self.dit.parameters()),
        }

    @classmethod
    def load(cls, directory: str | Path, map_location="cpu") -> FrameModelModule:
        """A module around a frame-model export (for sampling or further training)."""
        return cls(init_from=str(directory)).to(map_location).eval()
