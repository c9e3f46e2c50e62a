"""WorldFM Stage I — the image prior (§2.3): PixArt-Σ DiT + T5, trained (or imported) with Lightning.

With ``pretrained`` (a local PixArt-Σ pipeline root with ``transformer/``, ``vae/``,
``text_encoder/``, ``tokenizer/``, a transformer folder, or an earlier stage-I export) the weights
come from there; fit with ``max_steps=0`` to import and export. Otherwise the PixArt of ``size``
is pretrained from scratch on the platform's images and captions (ClipDataModule "image" task),
with the tiny/small T5 + ``ByT5Tokenizer`` unless ``text_encoder`` names a T5 folder.

Objective: DDPM (PixArt-Σ's linear β schedule, 1000 steps), ``t ~ U{0..999}``, MSE on ε (or v,
``prediction_type``), captions replaced by "" with probability ``caption_dropout`` (10 %) for
classifier-free guidance. A learned-σ head (PixArt-Σ's 8 output channels) keeps its extra channels
untrained: only the ε/v channels are used. ``sample`` generates images with CFG; ``prior`` exposes
``predict_eps`` / ``guided_eps`` for the zoom-stack sampler.

Export: ``transformer/`` (diffusers), ``text_encoder/`` + ``tokenizer/`` and ``vae/`` (unless
loaded from recorded paths), ``config.json`` (format ``wonderforge.frame_image_prior``).
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from models.autoencoders import encode
from models.frame import (
    PIXART_SIGMA_MAX_LENGTH,
    TEXT_ENCODER_CONFIGS,
    DiffusionSchedule,
    ImagePrior,
    PromptEncoder,
    build_pixart,
    load_pixart,
    pixart_folder,
    sample_images,
)
from training.modules.frame_common import build_vae, frozen, local_folder
from training.modules.optim import adamw_with_warmup

PRIOR_FORMAT = "wonderforge.frame_image_prior"


def _text_encoder(spec, size: str, pretrained: str | None, max_length: int | None):
    """(PromptEncoder, source path or None) from a folder, a dict of ``PromptEncoder.tiny``
    arguments, ``pretrained``'s ``text_encoder/``, or the size's own small T5."""
    if spec is None and pretrained and (Path(pretrained) / "text_encoder").is_dir():
        spec = pretrained
    if spec is None:
        if size not in TEXT_ENCODER_CONFIGS:
            raise ValueError(
                f"size {size!r} needs a T5 folder in `text_encoder` (T5-XXL for paper)"
            )
        spec = dict(TEXT_ENCODER_CONFIGS[size])
    if isinstance(spec, dict):
        args = dict(spec)
        if max_length:
            args["max_length"] = max_length
        return PromptEncoder.tiny(**args), None
    length = max_length or PIXART_SIGMA_MAX_LENGTH
    return PromptEncoder.from_pretrained(spec, max_length=length), str(spec)


class ImagePriorModule(L.LightningModule):
    """Stage-I image prior.

    size: tiny | small | paper (PixArt-Σ XL/2 512); transformer_overrides: PixArt config entries;
    pretrained: PixArt-Σ / stage-I folder (or published URI) to start from;
    text_encoder: T5 folder or ``PromptEncoder.tiny`` arguments (None: pretrained's or the size's);
    max_length: T5 tokens (None: 300 for T5 folders, the tiny config's otherwise);
    vae: image-VAE folder/URI or ``{size: ..}`` (None: ``pretrained/vae``);
    prediction_type: epsilon | v_prediction; schedule: ``DiffusionSchedule`` overrides;
    caption_dropout: probability of the empty caption; lr, betas, weight_decay, warmup_steps: AdamW.
    """

    def __init__(
        self,
        size: str = "tiny",
        pretrained: str | None = None,
        transformer_overrides: dict | None = None,
        text_encoder: str | dict | None = None,
        max_length: int | None = None,
        vae: str | dict | None = None,
        prediction_type: str = "epsilon",
        schedule: dict | None = None,
        caption_dropout: float = 0.1,
        lr: float = 2e-5,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.03,
        warmup_steps: int = 0,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self._sources: dict[str, str | None] = {"transformer": None}
        if pretrained:
            with local_folder(pretrained) as folder:
                transformer = load_pixart(folder)
                text, self._sources["text_encoder"] = _text_encoder(
                    text_encoder, size, str(folder), max_length
                )
                vae_fallback = folder / "vae" if (folder / "vae").is_dir() else None
                self.vae, self._sources["vae"] = build_vae(vae, vae_fallback)
                self._sources["transformer"] = str(pixart_folder(folder))
            if "://" in pretrained:
                self._sources = dict.fromkeys(self._sources)  # fetched copies: embed them
        else:
            text, self._sources["text_encoder"] = _text_encoder(
                text_encoder, size, None, max_length
            )
            transformer = build_pixart(size, **(transformer_overrides or {}))
            self.vae, self._sources["vae"] = build_vae(vae or {"size": size})
        if text.dim != transformer.config.caption_channels:
            raise ValueError(
                f"text encoder width {text.dim} != caption_channels "
                f"{transformer.config.caption_channels}"
            )
        if gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        sched = DiffusionSchedule(**{**(schedule or {}), "prediction_type": prediction_type})
        self.prior = ImagePrior(transformer, sched)
        self.text_encoder = frozen(text)
        self.vae = frozen(self.vae)
        self.strict_loading = False

    @property
    def schedule(self) -> DiffusionSchedule:
        return self.prior.schedule

    def train(self, mode: bool = True):
        super().train(mode)
        self.text_encoder.eval()
        self.vae.eval()
        return self

    # ---- objective ---------------------------------------------------------------------------

    def captions(self, batch: dict, B: int) -> list[str]:
        captions = [c or "" for c in (batch.get("caption") or [""] * B)]
        if self.training and self.hparams.caption_dropout > 0:
            drop = (torch.rand(B) < self.hparams.caption_dropout).tolist()
            captions = ["" if d else c for c, d in zip(captions, drop)]
        return captions

    def diffusion_loss(
        self, batch: dict, timesteps: Tensor | None = None, noise: Tensor | None = None
    ) -> Tensor:
        """MSE of the ε/v prediction on one "image" batch (``t ~ U{0..T−1}`` when not given)."""
        images = batch["image"]
        B = images.shape[0]
        embeds, mask = self.text_encoder.encode(self.captions(batch, B))
        with torch.no_grad():
            z0 = encode(self.vae, images.to(self.vae.dtype)).float()
        T = self.schedule.num_train_timesteps
        t = torch.randint(0, T, (B,), device=z0.device) if timesteps is None else timesteps
        t = t.to(z0.device).long()
        noise = torch.randn_like(z0) if noise is None else noise.to(z0)
        pred = self.prior(self.schedule.add_noise(z0, noise, t), t, embeds, mask)
        return F.mse_loss(pred.float(), self.schedule.target(z0, noise, t).float())

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.diffusion_loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["image"].shape[0])
        return loss

    def configure_optimizers(self):
        return adamw_with_warmup(self.prior.parameters(), self.hparams)

    def on_fit_start(self) -> None:
        if self.trainer.max_steps == 0 and self.hparams.pretrained is None:
            raise ValueError("max_steps=0 without `pretrained` would export untrained weights")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        skip = tuple(f"{k}." for k in ("text_encoder", "vae") if self._sources.get(k))
        if skip:
            state = checkpoint["state_dict"]
            checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(skip)}

    # ---- sampling ----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        prompts: list[str],
        steps: int = 20,
        guidance_scale: float = 4.5,
        seed: int = 0,
        height: int | None = None,
        width: int | None = None,
    ) -> Tensor:
        """Text → images ``[B, 3, H, W]`` in [0, 1] (DDIM + CFG); size defaults to the prior's."""
        f = 2 ** (len(self.vae.config.block_out_channels) - 1)
        size = self.prior.transformer.config.sample_size * f
        return sample_images(
            self.prior, self.text_encoder, self.vae, list(prompts), height or size, width or size,
            steps, guidance_scale, seed,
        )  # fmt: skip

    # ---- export / load -----------------------------------------------------------------------

    def export_pretrained(self, directory: str | Path) -> dict:
        """Write the stage-I export (module docstring); returns publish metadata."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.prior.transformer.save_pretrained(out / "transformer", safe_serialization=True)
        if not self._sources.get("text_encoder"):
            self.text_encoder.encoder.save_pretrained(out / "text_encoder")
            self.text_encoder.tokenizer.save_pretrained(out / "tokenizer")
        if not self._sources.get("vae"):
            self.vae.save_pretrained(out / "vae", safe_serialization=True)
        config = {
            "format": PRIOR_FORMAT,
            "version": 1,
            "schedule": self.schedule.to_dict(),
            "text_encoder": {
                "path": self._sources.get("text_encoder"),
                "max_length": self.text_encoder.max_length,
            },
            "vae": {"path": self._sources.get("vae")},
            "pretrained": self.hparams.pretrained,
        }
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        params = sum(p.numel() for p in self.prior.parameters())
        return {"prediction_type": self.schedule.prediction_type, "parameters": params}

    @classmethod
    def load(cls, directory: str | Path, map_location="cpu") -> ImagePriorModule:
        """Rebuild from an ``export_pretrained`` folder (or published URI)."""
        with local_folder(directory) as d:
            config = json.loads((d / "config.json").read_text())
            if config.get("format") != PRIOR_FORMAT:
                raise ValueError(f"{directory}: not an image-prior export")
            text = config["text_encoder"]
            module = cls(
                pretrained=str(d),
                text_encoder=str(d) if (d / "text_encoder").is_dir() else text["path"],
                max_length=text["max_length"],
                vae=str(d / "vae") if (d / "vae").is_dir() else config["vae"]["path"],
                prediction_type=config["schedule"]["prediction_type"],
                schedule={k: v for k, v in config["schedule"].items() if k != "prediction_type"},
            )
        return module.to(map_location).eval()


STAGE1_MODEL = "frame_stage1"  # the registry name the Dagster asset publishes under


def load_image_prior(source: str | Path, map_location="cpu"):
    """The text-to-image model of a stage-I export (a local folder or a published URI such as
    ``file:///…/checkpoints/frame_stage1/<version>``) as ``(prior, vae, text_encoder)``, in eval
    mode, for samplers outside Lightning (the zoom stack):

    - ``text_encoder.encode(prompts)`` → ``(embeds [B, L, D], mask [B, L])`` (``[""]``: unconditional);
    - ``prior.predict_eps(x_t, t, embeds, mask)`` → ε̂ ``[B, C, h, w]`` on the VAE's scaled latents
      (``prior.guided_eps`` for classifier-free guidance; ``prior.schedule``: its DDPM schedule);
    - ``models.autoencoders.decode(vae, latents)`` → images ``[B, 3, 8h, 8w]`` in [0, 1].
    """
    module = ImagePriorModule.load(source, map_location)
    return module.prior, module.vae, module.text_encoder


def load_published_image_prior(store, version: str = "latest", map_location="cpu"):
    """``load_image_prior`` of a published ``frame_stage1`` version (default: the registry's
    ``latest.json``) in the artifact store ``store``."""
    from training.registry import resolve

    return load_image_prior(store.uri(resolve(store, STAGE1_MODEL, version)), map_location)
