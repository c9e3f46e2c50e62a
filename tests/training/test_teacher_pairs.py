"""Teacher pairs: made by the teacher's deterministic DDIM sampler from seeded noise on shard-clip
conditions, bit-identical for a fixed seed, published atomically with a manifest and a latest
pointer; stage III reads them from the store URI (and still makes its own without them)."""

import json

import pytest
import torch

from datagen.shards import manifest_key, write_shard_set
from datagen.store import LocalStore
from models.frame import ddim_sample
from tests.fixtures.clips import make_clip
from training.data.frame_clips import frame_triplets, iter_set_clips
from training.modules.frame_common import load_frame_export
from training.modules.frame_stage2 import FrameModelModule
from training.modules.frame_stage3 import (
    PAIRS_FILE,
    FrameDMDModule,
    load_teacher_pairs,
    save_teacher_pairs,
)
from training.teacher_pairs import (
    LATEST,
    MANIFEST,
    PREFIX,
    TeacherPairsSpec,
    build_teacher_pairs,
    resolve_pair_set,
)

S = 32
TINY_DIT = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 16, "sample_size": 4}
SPEC = TeacherPairsSpec(num_pairs=5, steps=3, seed=7, batch_size=2, targets_per_clip=3)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def setup(tmp_path):
    """A store with one shard set (2 clips of 32×32) and a random tiny stage-II export."""
    store = LocalStore(tmp_path / "store")
    clips = [make_clip(f"c{i}", num_frames=8, height=S, width=S, seed=i) for i in range(2)]
    write_shard_set(store, "shards/synthetic/w0", clips, "synthetic", "w0", progress=False)
    torch.manual_seed(0)
    FrameModelModule(dit=dict(TINY_DIT), vae={"size": "tiny"}).export_pretrained(tmp_path / "t")
    return store, tmp_path / "t"


def test_pairs_are_the_teachers_ddim_outputs_deterministic_and_published(setup):
    store, teacher = setup
    prefix, manifest = build_teacher_pairs(teacher, store, ["shards/synthetic/w0"], SPEC)
    a = load_teacher_pairs(store.root / prefix / PAIRS_FILE)
    # a second run (a new version, or the same one rewritten within the same second)
    again, manifest2 = build_teacher_pairs(teacher, store, ["shards/synthetic/w0"], SPEC)
    assert prefix.startswith(f"{PREFIX}/") and again.startswith(f"{PREFIX}/")
    b = load_teacher_pairs(store.root / again / PAIRS_FILE)
    assert len(a) == 5 and a.noise.shape == a.output.shape == (5, 4, S // 8, S // 8)
    for x, y in [
        (a.noise, b.noise),
        (a.output, b.output),
        (a.conditions.anchor, b.conditions.anchor),
    ]:
        assert torch.equal(x, y)
    assert manifest["sha256"] == manifest2["sha256"]  # the artifact itself is bit-identical
    # the outputs are the teacher's deterministic sampler applied to the stored noise
    export = load_frame_export(teacher)
    dit = export.dit.eval()
    with torch.no_grad():
        redo = ddim_sample(lambda x, t: dit(x, t, a.conditions), a.noise, export.schedule, 3)
    torch.testing.assert_close(redo, a.output, rtol=1e-4, atol=1e-5)
    # the manifest: what, from what, how; 2 clips x 3 targets capped at 5 pairs
    assert manifest["num_pairs"] == 5 and manifest["steps"] == 3 and manifest["seed"] == 7
    assert manifest["sets"] == [store.uri(manifest_key("shards/synthetic/w0"))]
    assert [s["clip"] for s in manifest["samples"]] == ["c0"] * 3 + ["c1"] * 2
    assert manifest["latent_shape"] == [4, S // 8, S // 8] and manifest["image_size"] == [S, S]
    index = json.loads((store.root / prefix / "index.json").read_text())
    assert set(index["files"]) == {PAIRS_FILE, MANIFEST}
    assert index["inputs"] == [*manifest["sets"], str(teacher)]
    assert store.get_json(f"{PREFIX}/{LATEST}")["prefix"] == again == resolve_pair_set(store)
    other = build_teacher_pairs(
        teacher, store, ["shards/synthetic/w0"], TeacherPairsSpec(**{**SPEC.__dict__, "seed": 8})
    )[0]
    c = load_teacher_pairs(store.root / other / PAIRS_FILE)
    assert not torch.equal(c.noise, a.noise)


def test_stage3_reads_published_pairs_and_still_falls_back_without(setup):
    store, teacher = setup
    prefix, _ = build_teacher_pairs(teacher, store, ["shards/synthetic/w0"], SPEC)
    uri = store.uri(prefix)
    module = FrameDMDModule(teacher=str(teacher), teacher_pairs=uri, regression_batch_size=2)
    stored = load_teacher_pairs(store.root / prefix / PAIRS_FILE)
    assert torch.equal(module.pairs.output, stored.output)
    cond = stored.conditions.index(slice(0, 2))
    assert module.ensure_pairs(cond) is module.pairs  # precomputed: nothing made on the fly
    terms = module.generator_loss(cond)
    assert torch.isfinite(terms["regression"]) and terms["regression"] > 0
    meta = module.export_pretrained(setup[1].parent / "s3")
    assert meta["regression_pairs"] == 5 and meta["regression_pairs_source"] == "precomputed"
    exported = json.loads((setup[1].parent / "s3" / "config.json").read_text())
    assert exported["teacher_pairs"] == uri
    on_the_fly = FrameDMDModule(teacher=str(teacher), fallback_pairs=2, teacher_steps=2)
    assert on_the_fly.pairs is None
    made = on_the_fly.ensure_pairs(cond)
    assert len(made) == 2 and not torch.equal(made.output, stored.output[:2])


def test_bad_pairs_and_mixed_frame_sizes_are_named(setup, tmp_path):
    store, teacher = setup
    pairs = load_teacher_pairs(
        store.root
        / build_teacher_pairs(teacher, store, ["shards/synthetic/w0"], SPEC)[0]
        / PAIRS_FILE
    )
    pairs.noise = pairs.noise[:, :3]
    bad = save_teacher_pairs(tmp_path / "bad.safetensors", pairs)
    with pytest.raises(ValueError, match=r"bad\.safetensors.*4 latent channels"):
        FrameDMDModule(teacher=str(teacher), teacher_pairs=str(bad))
    big = make_clip("big", num_frames=8, height=S, width=2 * S, seed=3)
    write_shard_set(store, "shards/synthetic/w1", [big], "synthetic", "w1", progress=False)
    clips = iter_set_clips(store, ["shards/synthetic/w0", "shards/synthetic/w1"])
    with pytest.raises(ValueError, match=r"clip 'big' of shard set 'shards/synthetic/w1' is 64x32"):
        list(frame_triplets(clips))
