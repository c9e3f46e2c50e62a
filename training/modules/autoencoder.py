"""Training (or importing) the platform's autoencoders: the video VAE and the image VAE.

One LightningModule for both kinds. ``kind="video"`` reads ``frames [B, F, 3, H, W]`` from the
ClipDataModule's "video" task, ``kind="image"`` reads ``image [B, 3, H, W]`` from its "image" task
(both in [0, 1]). Loss = ``recon_weight`` · L1 + ``kl_weight`` · KL + ``perceptual_weight`` ·
``PyramidPerceptualLoss`` (on frames / images). KL is LDM's: summed over a sample's latent
elements and, like the mean L1, divided by the sample's number of pixel values, so a weight of
1e-6 means what it means in LDM's autoencoder at any resolution.

With ``pretrained`` (a local diffusers folder, or the ``file://`` / ``s3://`` URI of a published
folder) the weights and the scaling factor come from there; fit with ``max_steps=0`` to import
and export without training. Otherwise the VAE of ``size`` starts from random weights. At the end
of fit (and in ``export_pretrained``) the latent scaling factor is re-estimated on
``compute_scale_batches`` training batches whenever the weights changed since it was last set.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Iterable
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from datagen.store import store_from_env_uri
from models.autoencoders import (
    PyramidPerceptualLoss,
    build_image_vae,
    build_video_vae,
    decode_unscaled,
    estimate_scaling_factor,
    latent_posterior,
    load_image_vae,
    load_video_vae,
)
from training.publish import fetch_published

KINDS = {"video": "frames", "image": "image"}


def load_autoencoder(
    kind: str, size: str, pretrained: str | None = None, overrides: dict | None = None
) -> torch.nn.Module:
    """A VAE of ``kind``: loaded from ``pretrained`` (local folder or published-folder URI,
    fetched and sha256-verified), else built at ``size`` with ``overrides`` of its config."""
    if kind not in KINDS:
        raise ValueError(f"unknown autoencoder kind {kind!r}; one of {sorted(KINDS)}")
    if pretrained is None:
        build = build_video_vae if kind == "video" else build_image_vae
        return build(size, **(overrides or {}))
    load = load_video_vae if kind == "video" else load_image_vae
    if "://" not in pretrained:
        return load(pretrained)
    with tempfile.TemporaryDirectory(prefix="wonderforge-vae-") as tmp:
        return load(fetch_published(store_from_env_uri(pretrained), "", Path(tmp) / "vae"))


def kl_per_value(mean: Tensor, logvar: Tensor, num_values: int) -> Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, I)) summed per sample, / ``num_values``, batch-averaged."""
    kl = 0.5 * (mean.float() ** 2 + logvar.float().exp() - 1.0 - logvar.float())
    return kl.flatten(1).sum(1).mean() / num_values


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Mean PSNR in dB of ``pred`` (clamped to [0, 1]) against ``target``, per sample averaged."""
    mse = (pred.detach().float().clamp(0, 1) - target.float()).pow(2).flatten(1).mean(1)
    return (-10.0 * torch.log10(mse.clamp_min(1e-10))).mean()


class AutoencoderModule(L.LightningModule):
    """Video (``AutoencoderKLCogVideoX``) or image (``AutoencoderKL``) VAE training/import.

    kind: "video" | "image"; size: tiny | small | paper (ignored when ``pretrained`` is given);
    vae_overrides: config entries replacing the size's (e.g. ``latent_channels``);
    sample_posterior: decode a posterior sample (True) or its mean while training;
    compute_scale_batches: batches encoded to estimate the scaling factor (1 / latent std).
    """

    def __init__(
        self,
        kind: str = "video",
        size: str = "tiny",
        pretrained: str | None = None,
        recon_weight: float = 1.0,
        kl_weight: float = 1e-6,
        perceptual_weight: float = 0.5,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        sample_posterior: bool = True,
        compute_scale_batches: int = 4,
        gradient_checkpointing: bool = False,
        vae_overrides: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.kind, self.size = kind, size
        self.vae = load_autoencoder(kind, size, pretrained, vae_overrides)
        if gradient_checkpointing:
            self.vae.enable_gradient_checkpointing()
        self.perceptual = PyramidPerceptualLoss()
        self.scale_is_current = pretrained is not None

    def pixels(self, batch: dict) -> Tensor:
        """The batch's frames ``[B, F, 3, H, W]`` (video) or images ``[B, 3, H, W]`` (image)."""
        key = KINDS[self.kind]
        if key not in batch:
            raise KeyError(f"{self.kind} VAE needs {key!r} in the batch; got {sorted(batch)}")
        return batch[key]

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Loss and its terms for pixels ``x`` in [0, 1]: loss, recon, kl, perceptual, psnr."""
        posterior = latent_posterior(self.vae, x)
        z = posterior.sample() if self.hparams.sample_posterior else posterior.mode()
        recon = decode_unscaled(self.vae, z).float()
        terms = {
            "recon": (recon - x).abs().mean(),
            "kl": kl_per_value(posterior.mean, posterior.logvar, x[0].numel()),
            "perceptual": self.perceptual(recon, x),
        }
        hp = self.hparams
        terms["loss"] = (
            hp.recon_weight * terms["recon"]
            + hp.kl_weight * terms["kl"]
            + hp.perceptual_weight * terms["perceptual"]
        )
        terms["psnr"] = psnr(recon, x)
        return terms

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        x = self.pixels(batch)
        terms = self.loss_terms(x)
        self.scale_is_current = False
        metrics = {f"train/{name}": value.detach() for name, value in terms.items()}
        self.log("train/loss", metrics.pop("train/loss"), prog_bar=True, batch_size=x.shape[0])
        self.log_dict(metrics, batch_size=x.shape[0])
        return terms["loss"]

    def configure_optimizers(self):
        hp = self.hparams
        return torch.optim.AdamW(
            self.vae.parameters(), lr=hp.lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay
        )

    def on_fit_start(self) -> None:
        if self.trainer.max_steps == 0 and self.hparams.pretrained is None:
            raise ValueError("max_steps=0 without `pretrained` would export untrained weights")

    @torch.no_grad()
    def update_scaling_factor(self, batches: Iterable[dict]) -> float:
        """Set the VAE's ``scaling_factor`` to 1 / std of the posterior means (unscaled latents)
        of the first ``compute_scale_batches`` of ``batches``; returns it."""
        latents = [
            latent_posterior(self.vae, self.pixels(batch).to(self.device)).mode()
            for batch in itertools.islice(batches, max(1, self.hparams.compute_scale_batches))
        ]
        if not latents:
            raise ValueError("no batches to estimate the latent scaling factor from")
        factor = estimate_scaling_factor(latents)
        self.vae.register_to_config(scaling_factor=factor)
        self.scale_is_current = True
        return factor

    def ensure_scaling_factor(self) -> float:
        """Re-estimate the scaling factor on the trainer's training data if the weights changed."""
        if not self.scale_is_current:
            trainer = self._trainer
            datamodule = trainer.datamodule if trainer is not None else None
            if datamodule is not None:
                loader = datamodule.train_dataloader()
            elif trainer is not None and trainer.train_dataloader is not None:
                loader = trainer.train_dataloader
            else:
                raise RuntimeError("no training data to estimate the scaling factor from")
            self.update_scaling_factor(iter(loader))
        return float(self.vae.config.scaling_factor)

    def on_fit_end(self) -> None:
        self.ensure_scaling_factor()

    def export_pretrained(self, directory: str | Path) -> dict:
        """Diffusers ``save_pretrained`` (config.json + safetensors) into ``directory``; returns
        ``{"scaling_factor", "kind", "latent_channels"}`` for the published index."""
        factor = self.ensure_scaling_factor()
        if not math.isfinite(factor):
            raise ValueError(f"scaling factor {factor} is not finite")
        self.vae.save_pretrained(str(directory), safe_serialization=True)
        return {
            "scaling_factor": factor,
            "kind": self.kind,
            "latent_channels": int(self.vae.config.latent_channels),
        }
