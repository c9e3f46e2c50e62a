"""WorldFM Stage III — DMD distillation of the stage-II frame model into a 2-step generator (§2.5).

Three copies of the stage-II model: the generator (trained), the real score (frozen) and the fake
score (trained on generator samples). One training iteration (manual optimisation):

1. every ``fake_updates_per_gen``-th iteration, a generator update: pick a generator step ``k``
   uniformly, reach ``x_{t_k}`` by backward simulation (the generator from noise, no grad), predict
   x̂₀ with grad; loss = ``dm_weight`` · DM loss(x̂₀) + ``regression_weight`` · MSE(generator's full
   sample from a teacher pair's noise, the teacher's output);
2. every iteration, a fake-score update: its denoising loss on the (detached) generator sample.

``trainer.global_step`` counts iterations (the generator optimiser's steps are not counted), so
``max_steps`` = iterations and the generator takes ``max_steps / fake_updates_per_gen`` steps.

Teacher pairs — the config chooses: ``teacher_pairs`` names precomputed pairs (a safetensors file
from ``save_teacher_pairs``, or a folder / published URI holding ``PAIRS_FILE``, e.g. a
``teacher_pairs/<version>/`` set made by ``training.teacher_pairs`` as its own asset); null makes
``fallback_pairs`` pairs on the fly from the first training batch (smoke runs). The export records
which (``teacher_pairs`` in config.json, ``regression_pairs_source`` in the publish metadata).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import lightning as L
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from models.frame import (
    PAPER_TIMESTEPS,
    DiffusionSchedule,
    FewStepSampler,
    FrameCondition,
    FrameDiT,
    TeacherPairs,
    distribution_matching_loss,
    fake_score_loss,
    make_teacher_pairs,
    regression_loss,
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
from training.sharding import (
    FRAME_BLOCKS,
    bf16_shard_policy,
    consolidate_for_export,
    fully_shard_blocks,
    is_fsdp2_sharded,
    same_on_all_ranks,
    unsharded_copy,
)

PAIRS_FILE = "teacher_pairs.safetensors"


def save_teacher_pairs(path: str | Path, pairs: TeacherPairs, **meta) -> Path:
    """``noise``, ``output`` and ``cond_*`` tensors + string metadata into one safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"noise": pairs.noise, "output": pairs.output, **pairs.conditions.to_dict()}
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(path),
        metadata={
            "format": "wonderforge.teacher_pairs",
            **{k: json.dumps(v) for k, v in meta.items()},
        },
    )
    return path


def load_teacher_pairs(path: str | Path) -> TeacherPairs:
    d = load_file(str(path))
    return TeacherPairs(d["noise"], d["output"], FrameCondition.from_dict(d))


def read_teacher_pairs(spec: str | Path) -> TeacherPairs:
    """Pairs from a safetensors file, or a folder / published URI holding ``PAIRS_FILE``."""
    if "://" not in str(spec) and Path(spec).is_file():
        return load_teacher_pairs(spec)
    with local_folder(spec) as folder:
        return load_teacher_pairs(folder / PAIRS_FILE)


class FrameDMDModule(L.LightningModule):
    """Stage-III DMD.

    teacher: stage-II export folder/URI (generator, real and fake score start from it);
    teacher_config: a ``FrameDiT`` config for a random teacher when ``teacher`` is None (smoke
        runs only; ignored when ``teacher`` is given);
    vae: image-VAE override (None: the teacher export's; ``{size: tiny}`` with teacher_config);
    timesteps: generator steps (``[999, 200]``; ``[999]`` = 1 step); stochastic: fresh noise
        between steps instead of the predicted ε;
    teacher_pairs: regression pairs (safetensors file, or a folder/URI with ``PAIRS_FILE``); fallback_pairs / teacher_steps: pairs made
        from the first batch when none are given; regression_batch_size: pairs per update;
    dm_weight, regression_weight: loss weights; dm_t_range: DM-loss noise levels;
    fake_t_range: fake-score training noise levels; fake_updates_per_gen: fake updates per
        generator update (two time-scale rule); anchor_mask_prob: anchors dropped while distilling;
    lr_generator, lr_fake, betas, weight_decay: AdamW of each.
    """

    def __init__(
        self,
        teacher: str | None = None,
        teacher_config: dict | None = None,
        vae: str | dict | None = None,
        timesteps: list[int] = list(PAPER_TIMESTEPS),  # noqa: B006 (jsonargparse default)
        stochastic: bool = False,
        teacher_pairs: str | None = None,
        fallback_pairs: int = 4,
        teacher_steps: int = 50,
        regression_batch_size: int = 4,
        dm_weight: float = 1.0,
        regression_weight: float = 0.25,
        dm_t_range: tuple[int, int] = (20, 980),
        fake_t_range: tuple[int, int] = (20, 980),
        fake_updates_per_gen: int = 5,
        anchor_mask_prob: float = 0.0,
        lr_generator: float = 2e-6,
        lr_fake: float = 2e-6,
        betas: tuple[float, float] = (0.0, 0.999),
        weight_decay: float = 0.01,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        if teacher is None and teacher_config is None:
            raise ValueError("give teacher (a stage-II export) or, for smoke runs, teacher_config")
        if teacher:
            export = load_frame_export(teacher)
            real, schedule = export.dit, export.schedule
            self.vae, self.vae_source = (
                build_vae(vae) if vae else (export.vae, export.config["vae"]["path"])
            )
        else:
            real, schedule = FrameDiT(**teacher_config), DiffusionSchedule()
            self.vae, self.vae_source = build_vae(vae or {"size": "tiny"})
        self.vae = frozen(self.vae)
        self.schedule = schedule
        self.real_score = frozen(real)
        self.generator = copy.deepcopy(real).train().requires_grad_(True)
        self.fake_score = copy.deepcopy(real).train().requires_grad_(True)
        if gradient_checkpointing:
            self.generator.enable_gradient_checkpointing()
            self.fake_score.enable_gradient_checkpointing()
        self.sampler = FewStepSampler(schedule, list(timesteps), stochastic)
        self.pairs: TeacherPairs | None = None
        if teacher_pairs:
            self.pairs = read_teacher_pairs(teacher_pairs)
            channels = real.config.in_channels
            if self.pairs.noise.shape[1] != channels or self.pairs.output.shape != (
                self.pairs.noise.shape
            ):
                raise ValueError(
                    f"teacher pairs {teacher_pairs}: noise {tuple(self.pairs.noise.shape)} and "
                    f"output {tuple(self.pairs.output.shape)} do not fit a teacher with "
                    f"{channels} latent channels"
                )
        self.last_generator_sample: Tensor | None = None

    def configure_model(self) -> None:
        """Under ``training.sharding.BlockShardStrategy`` (FSDP2; Lightning sets the device mesh):
        shard the generator, the fake score and the frozen real score, one unit per block and one
        per network, over the mesh's ``data_parallel`` dimension. Nothing otherwise."""
        mesh = getattr(self, "_device_mesh", None)
        if mesh is None or is_fsdp2_sharded(self):
            return
        policy = bf16_shard_policy(getattr(self.trainer, "precision", None))
        for net in (self.generator, self.fake_score, self.real_score):
            fully_shard_blocks(net, FRAME_BLOCKS, mesh["data_parallel"], policy)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()
        self.real_score.eval()
        return self

    # ---- losses ------------------------------------------------------------------------------

    def generator_sample(
        self, cond: FrameCondition, noise: Tensor | None = None, k: int | None = None
    ):
        """x̂₀ of the generator at step ``k`` (random if None) after backward simulation from
        ``noise``; differentiable w.r.t. the generator's last step only. Returns ``(x̂₀, k)``."""
        shape = cond.reference.shape
        noise = torch.randn(shape, device=cond.reference.device) if noise is None else noise
        if k is None:  # the same k on every rank: it sets how many generator passes run
            k = same_on_all_ranks(int(torch.randint(0, self.sampler.num_steps, ())))
        x = self.sampler.simulate(self.generator, noise, cond, k)
        return self.sampler.predict_x0(self.generator, x, k, cond), k

    def ensure_pairs(self, cond: FrameCondition) -> TeacherPairs | None:
        """The regression pairs (made from ``cond`` with the teacher when none were given)."""
        hp = self.hparams
        if self.pairs is None and hp.regression_weight > 0:
            n = min(hp.fallback_pairs, cond.batch_size)
            if n < 1:
                raise ValueError("regression loss needs teacher_pairs or fallback_pairs >= 1")
            self.pairs = make_teacher_pairs(
                self.real_score, cond.index(slice(0, n)), self.schedule, hp.teacher_steps
            )
        return self.pairs

    def generator_loss(self, cond: FrameCondition) -> dict[str, Tensor]:
        """``{"loss", "dm", "regression", "x0"}``: the generator's objective on one batch."""
        hp = self.hparams
        x0, k = self.generator_sample(cond)
        dm, stats = distribution_matching_loss(
            x0, cond, self.real_score, self.fake_score, self.schedule, tuple(hp.dm_t_range)
        )
        terms = {"dm": dm, "x0": x0, "step": torch.tensor(float(k)), **stats}
        loss = hp.dm_weight * dm
        pairs = self.ensure_pairs(cond)
        if hp.regression_weight > 0 and pairs is not None:
            idx = torch.randint(0, len(pairs), (min(hp.regression_batch_size, len(pairs)),))
            noise, target, pc = pairs.batch(idx)
            dev = cond.reference.device
            reg = regression_loss(
                self.generator, self.sampler, noise.to(dev), pc.to(dev), target.to(dev)
            )
            terms["regression"] = reg
            loss = loss + hp.regression_weight * reg
        terms["loss"] = loss
        return terms

    def fake_loss(self, x0: Tensor, cond: FrameCondition) -> Tensor:
        """The fake score's denoising loss on generator samples ``x0`` (detached)."""
        return fake_score_loss(
            self.fake_score, x0.detach(), cond, self.schedule, tuple(self.hparams.fake_t_range)
        )

    def training_step(self, batch: dict, batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_f = self.optimizers()
        # count iterations with the fake score's step only (see module docstring)
        opt_g._on_before_step = opt_g._on_after_step = lambda: None
        _, cond = encode_frame_batch(self.vae, batch)
        if hp.anchor_mask_prob > 0:
            cond = drop_anchors(cond, hp.anchor_mask_prob)
        B = cond.batch_size
        if self.global_step % max(1, hp.fake_updates_per_gen) == 0:
            terms = self.generator_loss(cond)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(terms["loss"])
            opt_g.step()
            x0 = terms.pop("x0").detach()
            for name, value in terms.items():
                self.log(f"train/generator_{name}", value.detach().float(), batch_size=B)
        else:
            with torch.no_grad():
                x0, _ = self.generator_sample(cond)
        self.last_generator_sample = x0
        loss_f = self.fake_loss(x0, cond)
        opt_f.zero_grad(set_to_none=True)
        self.manual_backward(loss_f)
        opt_f.step()
        self.log("train/fake_loss", loss_f.detach(), prog_bar=True, batch_size=B)

    def configure_optimizers(self):
        hp = self.hparams
        kw = {"betas": tuple(hp.betas), "weight_decay": hp.weight_decay}
        return [
            torch.optim.AdamW(self.generator.parameters(), lr=hp.lr_generator, **kw),
            torch.optim.AdamW(self.fake_score.parameters(), lr=hp.lr_fake, **kw),
        ]

    # ---- export ------------------------------------------------------------------------------

    def on_train_end(self) -> None:
        """Sharded: gather the generator's full weights onto rank 0 for ``export_pretrained``
        (every rank takes part; ``training.sharding``)."""
        self._export_state = consolidate_for_export(self, "generator.")

    def export_pretrained(self, directory: str | Path) -> dict:
        """The frame-model export of the generator (stage 3, with its timesteps)."""
        generator = unsharded_copy(
            self.generator,
            getattr(self, "_export_state", None),
            lambda: FrameDiT.from_config(self.generator.config),
        )
        save_frame_export(
            directory,
            generator,
            self.vae,
            self.schedule,
            self.vae_source,
            stage=3,
            timesteps=self.sampler.timesteps,
            stochastic=self.sampler.stochastic,
            teacher=self.hparams.teacher,
            teacher_pairs=self.hparams.teacher_pairs,
        )
        source = "precomputed" if self.hparams.teacher_pairs else "first batch"
        pairs = len(self.pairs) if self.pairs is not None else 0
        return {
            "stage": 3,
            "timesteps": self.sampler.timesteps,
            "regression_pairs": pairs,
            "regression_pairs_source": source if pairs else "none",
        }
