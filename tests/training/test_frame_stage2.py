"""Stage II (frame model): anchor schedule, loss falls on a fixed batch, anchors dropped per the
schedule, initialisation from the stage-I prior, export -> load, the chained synthetic finetune."""

import pytest
import torch

from models.frame import FrameCondition
from training.modules.frame_common import encode_frame_batch, load_frame_export
from training.modules.frame_stage1 import ImagePriorModule
from training.modules.frame_stage2 import AnchorSchedule, FrameModelModule

S = 64
TINY_DIT = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 32, "sample_size": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def frame_batch(B=2, seed=0) -> dict:
    """A "frame"-task batch at S x S: images in [0, 1], cameras looking at the origin."""
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[S * 0.9, 0, S / 2], [0, S * 0.9, S / 2], [0, 0, 1]]).expand(B, 3, 3)
    c2w = torch.eye(4).repeat(B, 2, 1, 1)
    c2w[:, 0, 0, 3] = torch.linspace(0.1, 0.4, B)
    return {
        "target": torch.rand(B, 3, S, S, generator=g),
        "anchor": torch.rand(B, 3, S, S, generator=g),
        "anchor_mask": torch.ones(B, 1, S, S),
        "reference": torch.rand(B, 3, S, S, generator=g),
        "target_K": K.clone(),
        "target_c2w": c2w[:, 0],
        "reference_K": K.clone(),
        "reference_c2w": c2w[:, 1],
        "anchor_masked": torch.zeros(B, dtype=torch.bool),
    }


def make(**kw) -> FrameModelModule:
    torch.manual_seed(0)
    args = {"dit": dict(TINY_DIT), "vae": {"size": "tiny"}, "lr": 1e-3, "weight_decay": 0.0}
    return FrameModelModule(**{**args, **kw})


def test_anchor_schedule_reference_only_ramp_and_late_masking():
    paper = AnchorSchedule(
        reference_only_steps=100, ramp_steps=100, mask_start_step=300, mask_prob=0.2
    )
    assert paper.drop_prob(0) == paper.drop_prob(99) == 1.0
    assert paper.drop_prob(150) == pytest.approx(0.5)  # ramp 1 -> 0 (masking starts later)
    assert paper.drop_prob(200) == paper.drop_prob(299) == 0.0
    assert paper.drop_prob(300) == paper.drop_prob(10_000) == 0.2
    direct = AnchorSchedule(reference_only_steps=10, ramp_steps=10, mask_prob=0.2)
    assert direct.drop_prob(15) == pytest.approx(0.6)  # ramp 1 -> the final masking probability
    assert direct.drop_prob(20) == direct.drop_prob(500) == 0.2
    assert AnchorSchedule().drop_prob(0) == 0.0


def test_tiny_loss_falls_on_a_fixed_batch():
    module = make().train()
    z0, cond = encode_frame_batch(module.vae, frame_batch())
    t, noise = torch.tensor([300, 900]), torch.randn_like(z0)
    opt = module.configure_optimizers()
    losses = []
    for _ in range(40):
        loss = module.diffusion_loss(z0, cond, t, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


def test_training_step_drops_anchors_on_the_schedule(monkeypatch):
    module = make(anchor_schedule={"reference_only_steps": 5, "ramp_steps": 5, "mask_prob": 0.0})
    seen: list[FrameCondition] = []
    monkeypatch.setattr(module, "diffusion_loss", lambda z0, cond: seen.append(cond) or z0.sum())
    monkeypatch.setattr(module, "log", lambda *a, **k: None)
    batch = frame_batch(B=8)
    module.training_step(batch, 0)  # global_step 0: reference only
    assert seen[-1].masked().all()
    monkeypatch.setattr(type(module), "global_step", property(lambda self: 50))
    module.training_step(batch, 0)  # after the ramp with mask_prob 0: every anchor in
    assert not seen[-1].masked().any()
    batch["anchor_masked"][0] = True  # the data's own masking is kept
    module.training_step(batch, 0)
    assert seen[-1].masked().tolist() == [True] + [False] * 7


def test_initialises_from_the_stage1_prior(tmp_path):
    torch.manual_seed(1)
    prior = ImagePriorModule(size="tiny", vae={"size": "tiny"})
    prior.export_pretrained(tmp_path / "prior")
    module = FrameModelModule(
        image_prior=str(tmp_path / "prior"), dit={"camera_encoding": "plucker"}
    )
    assert module.dit.config.num_layers == 2 and module.dit.inner_dim == 64
    report = module.init_report
    assert report["missing"] == [k for k in module.dit.state_dict() if k.startswith("camera_embed")]
    pix = prior.prior.transformer.state_dict()
    own = module.dit.state_dict()
    for name in (
        "pos_embed.proj.weight",
        "transformer_blocks.1.attn1.to_v.weight",
        "adaln_single.linear.bias",
    ):
        assert torch.equal(own[name], pix[name])
    assert module.vae_source == str(tmp_path / "prior" / "vae")


def test_export_load_and_chained_synthetic_finetune(tmp_path):
    module = make(dit={**TINY_DIT, "camera_encoding": "parametric"}, prediction_type="v_prediction")
    with torch.no_grad():
        module.dit.camera_embed[2].weight.normal_(0, 0.05)  # not the zero init
    meta = module.export_pretrained(tmp_path / "stage2")
    assert meta["camera_encoding"] == "parametric"
    export = load_frame_export(tmp_path / "stage2")
    assert export.config["stage"] == 2 and export.schedule.prediction_type == "v_prediction"
    z0, cond = encode_frame_batch(module.vae, frame_batch())
    t = torch.tensor([5, 999])
    with torch.no_grad():
        expected = module.dit.eval()(z0, t, cond)
        assert torch.equal(export.dit.eval()(z0, t, cond), expected)
        z0b, _ = encode_frame_batch(export.vae, frame_batch())
        assert torch.equal(z0b, z0)
    with pytest.raises(ValueError, match="init_from"):
        FrameModelModule(finetune=True)
    ft = FrameModelModule(init_from=str(tmp_path / "stage2"), finetune=True, lr=1e-4)
    assert ft.schedule.prediction_type == "v_prediction"  # the export's
    with torch.no_grad():
        assert torch.equal(ft.dit.eval()(z0, t, cond), expected)
    assert ft.configure_optimizers().param_groups[0]["lr"] == 1e-4
