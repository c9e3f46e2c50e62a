"""A published camera video model as the generator of datagen's generated videos: registry
resolution, provenance strings, latents that decode to the stored frames, determinism."""

import numpy as np
import pytest
import torch

from datagen.generated import generate_batch, image_conditionings, write_generated_shards
from datagen.shards import read_clips
from datagen.store import LocalStore
from models.autoencoders import decode
from tests.training.test_video_evaluation import S, tiny_module
from training.publish import publish_directory
from training.registry import promote_latest, version_prefix
from training.video_generation import CameraVideoGenerator, load_generator

F = 9


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def published(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    tiny_module().export_pretrained(tmp_path / "export")
    prefix = version_prefix("camera_video_model", "v1")
    publish_directory(tmp_path / "export", store, prefix, {"inputs": [], "metrics": {}})
    promote_latest(store, "camera_video_model", "v1")
    return store


def test_published_model_generates_clips_whose_latents_decode_to_their_frames(published):
    store = published
    gen = load_generator(store, steps=2, guidance_scale=2.0, device="cpu")
    uri = store.uri("checkpoints/camera_video_model/v1")
    assert isinstance(gen, CameraVideoGenerator)
    assert gen.checkpoint == uri and gen.vae_id == f"{uri}/vae"  # the tiny export embeds it
    assert gen.geometry == {"height": S, "width": S, "num_frames": F}
    assert gen.settings == {
        "steps": 2,
        "guidance_scale": 2.0,
        "scheduler": "ddim",
        "negative_prompt": "",
    }
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    conds = image_conditionings([("room.png", image)], 2, F, S, S, np.random.default_rng(1))
    generate_batch(store, "b0", gen, conds, seed=3, progress=False)
    write_generated_shards(store, "b0")
    clips = list(read_clips(store, "shards/generated/b0"))
    assert len(clips) == 2
    for clip in clips:
        assert clip.rgb.shape == (F, S, S, 3) and clip.latents.shape == (8, 3, S // 8, S // 8)
        assert clip.provenance.generator_checkpoint == uri
        with torch.no_grad():
            frames = decode(gen.module.vae, torch.from_numpy(clip.latents)[None])[0]
        expected = (frames.clamp(0, 1) * 255).permute(0, 2, 3, 1).numpy()
        assert np.abs(expected - clip.rgb.astype(np.float32)).max() <= 0.51  # uint8 rounding

    # same seed, same video; another seed, another video
    image_t = torch.from_numpy(conds[0].image.copy()).permute(2, 0, 1).float() / 255
    K, c2w = torch.from_numpy(conds[0].K).float(), torch.from_numpy(conds[0].c2w).float()
    a, _ = gen(image_t, K, c2w, "", 3)
    b, _ = gen(image_t, K, c2w, "", 3)
    c, _ = gen(image_t, K, c2w, "", 4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(a.numpy(), clips[0].latents)
    assert not torch.equal(a, c)


def test_generator_rejects_bad_settings(published):
    with pytest.raises(ValueError, match="steps must be >= 1"):
        load_generator(published, steps=0, device="cpu")
    with pytest.raises(LookupError, match="version 'v9' is not published"):
        load_generator(published, version="v9", device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generation_and_evaluation_on_cuda_match_the_cpu(published, tmp_path):
    """The generator and the evaluation on CUDA: CPU tensors in and out, same video as on the
    CPU up to kernel differences, bf16 autocast path (frozen weights in bf16)."""
    from training.evaluation.video_model import EvalClip, VideoEvalConfig, evaluate_videos

    cpu = load_generator(published, steps=3, guidance_scale=2.0, device="cpu")
    gpu = load_generator(published, steps=3, guidance_scale=2.0, device="cuda")
    cond = image_conditionings(
        [("a", np.full((S, S, 3), 120, np.uint8))], 1, F, S, S, np.random.default_rng(0)
    )[0]
    image = torch.from_numpy(cond.image.copy()).permute(2, 0, 1).float() / 255
    K, c2w = torch.from_numpy(cond.K).float(), torch.from_numpy(cond.c2w).float()
    lat_cpu, frames_cpu = cpu(image, K, c2w, "", 0)
    lat_gpu, frames_gpu = gpu(image, K, c2w, "", 0)
    assert lat_gpu.device.type == "cpu" and frames_gpu.device.type == "cpu"
    # cuDNN convolutions run in TF32 by default: small differences through VAE and DDIM
    torch.testing.assert_close(lat_gpu, lat_cpu, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(frames_gpu, frames_cpu, atol=1e-2, rtol=0)

    gpu.module.to(torch.bfloat16)  # everything in bf16: inputs follow the base's dtype
    _, frames_bf16 = gpu(image, K, c2w, "", 0)
    assert frames_bf16.dtype == torch.float32 and (frames_bf16 - frames_cpu).abs().mean() < 0.1

    clip = EvalClip("c", "set", frames_cpu, K, c2w)
    result = evaluate_videos(
        lambda c, s: gpu(c.frames[0], c.K, c.c2w, "", s)[1], [clip], VideoEvalConfig(), None
    )
    assert result.metrics["psnr"] > 20
