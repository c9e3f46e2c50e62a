"""Camera-guided video model on one GPU: training-step time and peak memory, sampling time.

Configurations (RANDOM weights: speed and memory only, never quality). The camera branches come
from ``training/configs/camera_video_model/<size>.yaml``; the frozen base is a randomly
initialised CogVideoX-5B-I2V-sized transformer (``COGVIDEOX_5B_I2V``: 42 blocks, width 3072 =
48 × 64, learned positional embedding for 13 × 60 × 90 latents, T5-XXL width 4096) and the VAE
the paper-size CogVideoX VAE (``video_vae_config("paper")``):

    small   ControlNet copy of 10 blocks, camera-LoRA rank 64 (small.yaml)      ~1.5B trainable
    paper   ControlNet copy of 21 blocks, camera-LoRA rank 256 (paper.yaml)     ~3.3B trainable
            paper.yaml trains with FSDP on 8 GPUs; here: ONE GPU, no sharding — the question is
            whether one training step fits on one 80 GB GPU with gradient checkpointing + bf16
    tiny    (``--quick``) tiny.yaml at 64 × 64, 9 frames: a CPU smoke run of this script

Training step (what Lightning runs with ``precision: bf16-mixed``, ``frozen_dtype: bfloat16``,
``gradient_checkpointing: true``, ``gradient_clip_val: 1.0``): ``CameraVideoModule.diffusion_loss``
(v-prediction) under bf16 autocast on a batch of precomputed latents ``[B, 16, 13, 60, 90]`` and
T5 embeddings ``[B, 226, 4096]`` (random), Plücker rays from K / c2w at 480 × 720 for 49 frames,
backward, gradient clipping, AdamW step over the trainable parameters (fp32 weights and states;
base blocks and VAE in bf16). T5 and the VAE encoder are frozen and run once per clip, so they
are left out by default; ``--encode-frames`` puts the VAE encode of the 49 frames into the step.
``--warmup`` untimed steps (they allocate the optimizer states), then ``--iters`` timed steps;
step time = median of ``synchronize → wall clock``. Peak memory = ``max_memory_allocated`` /
``max_memory_reserved`` since the model was built (weights, states, activations).
A CUDA out-of-memory error is a result (``"fits": false`` with the peak reached), never a crash.
``--memory-cap-gib 79`` emulates an 80 GB H100 (79.1 GiB usable) on a larger GPU
(``torch.cuda.set_per_process_memory_fraction``); without a cap, ``fits_80gb`` compares the
reserved peak with 79 GiB.

Sampling (``CameraVideoSampler``): one image + a 49-frame camera path, text CFG (batch 2),
``--sample-steps`` DDIM steps, VAE decode of 49 frames (VAE tiling on for the paper-size VAE
unless ``--no-vae-tiling``). A short warm-up sample (2 steps) runs first; then ``--sample-videos``
timed videos: seconds per video = denoising + decode.

    .venv/bin/python benchmarks/video_model.py                        # GPU: small and paper
    .venv/bin/python benchmarks/video_model.py --configs paper --memory-cap-gib 79
    .venv/bin/python benchmarks/video_model.py --quick --out /tmp/video_model_quick.json  # CPU
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import yaml  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402

from datagen.atomic import atomic_write_json as write_json  # noqa: E402
from models.autoencoders import latents as vae_latents  # noqa: E402
from models.autoencoders.video_vae import video_vae_config  # noqa: E402
from models.geometry import K_from_fov, look_at  # noqa: E402
from training.config_files import config_path  # noqa: E402
from training.modules.video_model import CameraVideoModule  # noqa: E402

GIB = 2**30
H100_USABLE_GIB = 79.0  # an "80 GB" H100 reports ~79.1 GiB of total memory
# transformer/config.json of CogVideoX-5b-I2V (diffusers layout)
COGVIDEOX_5B_I2V = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 32,
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-5,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_learned_positional_embeddings": True,
    "use_rotary_positional_embeddings": True,
}
TRAINING_KEYS = ("lr", "betas", "weight_decay", "eps", "caption_dropout", "image_dropout")


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {}
    return {
        "peak_allocated_gib": _r(torch.cuda.max_memory_allocated(device) / GIB, 2),
        "peak_reserved_gib": _r(torch.cuda.max_memory_reserved(device) / GIB, 2),
    }


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error)


# ---- models and batches --------------------------------------------------------------------


def module_kwargs(size: str, device: torch.device) -> dict:
    """CameraVideoModule arguments: tiny.yaml as is; small/paper = their camera branches on a
    random CogVideoX-5B-I2V-sized base, paper-size VAE, no text encoder (embeddings given)."""
    init = yaml.safe_load(config_path("camera_video_model", size).read_text())["model"]
    init = init["init_args"]
    if size == "tiny":
        return {**init, "gradient_checkpointing": False}
    bf16 = device.type == "cuda"
    return {
        "base_config": COGVIDEOX_5B_I2V,
        "control": init["control"],
        "vae": video_vae_config("paper"),
        "text_encoder": None,
        "gradient_checkpointing": True,
        "frozen_dtype": "bfloat16" if bf16 else None,
        **{k: init[k] for k in TRAINING_KEYS if k in init},
    }


def build(size: str, device: torch.device, seed: int) -> CameraVideoModule:
    torch.manual_seed(seed)
    with torch.device(device):
        module = CameraVideoModule(**module_kwargs(size, device))
    return module.to(device)


def geometry(module: CameraVideoModule) -> tuple[int, int, int]:
    """(frames, height, width) the base was built for."""
    c, s = module.model.base.config, module.model.config.spatial_compression
    return int(c.sample_frames), int(c.sample_height) * s, int(c.sample_width) * s


def cameras(F: int, H: int, W: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """K ``[F, 3, 3]`` (60° fov) and c2w ``[F, 4, 4]``: a forward walk turning slightly."""
    t = torch.linspace(0, 1, F, dtype=torch.float64)
    eye = torch.stack([0.3 * torch.sin(2 * t), torch.zeros_like(t), 2.0 * t], -1)
    target = eye + torch.stack([torch.sin(0.5 * t), 0.1 * t, torch.ones_like(t)], -1)
    up = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64).expand_as(eye)
    c2w = look_at(eye, target, up).float().to(device)
    K = K_from_fov(60.0, H, W).float().expand(F, 3, 3).to(device)
    return K, c2w


def text_embeds(module: CameraVideoModule, batch: int, device, gen) -> torch.Tensor:
    c = module.model.base.config
    shape = (batch, c.max_text_seq_length, c.text_embed_dim)
    return torch.randn(shape, generator=gen).to(device)


def make_batch(module: CameraVideoModule, B: int, encode_frames: bool, device) -> dict:
    F, H, W = geometry(module)
    gen = torch.Generator().manual_seed(1)
    K, c2w = cameras(F, H, W, device)
    batch = {
        "K": K.expand(B, -1, -1, -1),
        "c2w": c2w.expand(B, -1, -1, -1),
        "text_embeds": text_embeds(module, B, device, gen),
    }
    if encode_frames:
        batch["frames"] = torch.rand(B, F, 3, H, W, generator=gen).to(device)
    else:
        c, s = module.model.base.config, module.model.config.spatial_compression
        T = vae_latents.latent_num_frames(F, module.model.config.temporal_compression)
        batch["latents"] = torch.randn(B, c.out_channels, T, H // s, W // s, generator=gen)
        batch["latents"] = batch["latents"].to(device)
    return batch


def describe(module: CameraVideoModule) -> dict:
    F, H, W = geometry(module)
    c, s = module.model.base.config, module.model.config.spatial_compression
    T = vae_latents.latent_num_frames(F, module.model.config.temporal_compression)
    video_tokens = T * (H // s // c.patch_size) * (W // s // c.patch_size)
    n = lambda m: sum(p.numel() for p in m.parameters()) if m is not None else 0  # noqa: E731
    return {
        "frames": F,
        "height": H,
        "width": W,
        "latents": [c.out_channels, T, H // s, W // s],
        "tokens": {"video": video_tokens, "text": int(c.max_text_seq_length)},
        "control": module.model.config.to_dict(),
        "params_M": {
            "trainable": _r(sum(p.numel() for p in module.model.trainable_parameters()) / 1e6, 1),
            "frozen_base": _r(n(module.model.base) / 1e6, 1),
            "vae": _r(n(module.vae) / 1e6, 1),
        },
    }


# ---- measurements --------------------------------------------------------------------------


def train_steps(module, batch: dict, warmup: int, iters: int, device: torch.device) -> dict:
    """Timed training steps (module docstring); OOM -> ``fits: false``."""
    amp = device.type == "cuda" and module.hparams.frozen_dtype is not None
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    params = [p for g in opt.param_groups for p in g["params"]]
    module.train()
    times, losses = [], []
    try:
        for i in range(warmup + iters):
            sync(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = module.diffusion_loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
            losses.append(float(loss.detach()))
        result = {
            "fits": True,
            "step_s": _r(statistics.median(times)),
            "steps_s": [_r(t) for t in times],
            "loss": [_r(v, 4) for v in losses],
        }
    except RuntimeError as error:
        if not is_oom(error):
            raise
        result = {"fits": False, "error": f"CUDA out of memory at step {len(losses)}"}
    result.update(memory(device))
    opt.zero_grad(set_to_none=True)
    del opt, params
    return result


def sample_video(
    module, steps: int, guidance: float, videos: int, tiling: bool, device: torch.device
) -> dict:
    """Seconds per video (denoising + decode) after a 2-step warm-up; OOM -> ``fits: false``."""
    module.eval()
    if tiling:
        module.vae.enable_tiling()
    F, H, W = geometry(module)
    K, c2w = cameras(F, H, W, device)
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(3, H, W, generator=gen).to(device)
    n = 2 if guidance > 1 else 1
    embeds = text_embeds(module, n, device, gen)
    sampler = module.sampler()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        sampler.sample(image, K, c2w, steps=2, guidance_scale=guidance, text_embeds=embeds)
        denoise, decode = [], []
        for v in range(videos):
            sync(device)
            start = time.perf_counter()
            latents, _ = sampler.sample(
                image,
                K,
                c2w,
                steps=steps,
                guidance_scale=guidance,
                seed=v,
                text_embeds=embeds,
                decode=False,
            )
            sync(device)
            mid = time.perf_counter()
            with torch.no_grad():
                frames = vae_latents.decode(module.vae, latents.to(sampler.dtype))
            sync(device)
            denoise.append(mid - start)
            decode.append(time.perf_counter() - mid)
        assert frames.shape[1] == F, frames.shape
        result = {
            "fits": True,
            "seconds_per_video": _r(statistics.median(d + e for d, e in zip(denoise, decode)), 2),
            "denoise_s": _r(statistics.median(denoise), 2),
            "decode_s": _r(statistics.median(decode), 2),
            "s_per_step": _r(statistics.median(denoise) / steps),
            "steps": steps,
            "guidance_scale": guidance,
            "cfg_batch": n,
            "vae_tiling": bool(tiling),
        }
    except RuntimeError as error:
        if not is_oom(error):
            raise
        result = {"fits": False, "error": "CUDA out of memory while sampling"}
    if device.type == "cuda":
        result["peak_allocated_gib"] = _r(torch.cuda.max_memory_allocated(device) / GIB, 2)
    return result


def run_config(size: str, args, device: torch.device) -> dict:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        module = build(size, device, args.seed)
    except RuntimeError as error:
        if not is_oom(error):
            raise
        return {"build": {"fits": False, "error": "CUDA out of memory while building"}}
    out = {"build_s": _r(time.perf_counter() - start, 1), **describe(module)}
    out["build_peak_gib"] = memory(device).get("peak_allocated_gib")  # incl. fp32 before casts
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)  # the fp32 -> bf16 cast of the base is over
        out["resident_gib"] = _r(torch.cuda.memory_allocated(device) / GIB, 2)  # weights as used
    batch = make_batch(module, args.batch, args.encode_frames, device)
    tiling = size != "tiny" and not args.no_vae_tiling  # tiles are for the 480x720 VAE
    if args.encode_frames and tiling:
        module.vae.enable_tiling()
    train = train_steps(module, batch, args.warmup, args.iters, device)
    train.update(batch=args.batch, encode_frames=args.encode_frames)
    if "peak_reserved_gib" in train and train["fits"]:
        train["fits_80gb"] = train["peak_reserved_gib"] <= H100_USABLE_GIB
    out["train"] = train
    del batch
    module.zero_grad(set_to_none=True)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if not args.skip_sampling:
        out["sample"] = sample_video(
            module,
            args.sample_steps,
            args.guidance_scale,
            args.sample_videos,
            tiling,
            device,
        )
    del module
    gc.collect()
    return out


def machine(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=_r(props.total_memory / GIB, 1))
        info["cuda"] = torch.version.cuda
    return info


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="small,paper", help="comma list of small, paper, tiny")
    ap.add_argument("--quick", action="store_true", help="tiny config on the CPU (smoke run)")
    ap.add_argument("--device", default=None, help="default cuda (cpu with --quick)")
    ap.add_argument("--batch", type=int, default=1, help="clips per training step")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--encode-frames", action="store_true", help="VAE encode inside the step")
    ap.add_argument("--skip-sampling", action="store_true")
    ap.add_argument("--sample-steps", type=int, default=None, help="default 50 (2 with --quick)")
    ap.add_argument("--sample-videos", type=int, default=1)
    ap.add_argument("--guidance-scale", type=float, default=6.0)
    ap.add_argument("--no-vae-tiling", action="store_true")
    ap.add_argument("--memory-cap-gib", type=float, default=None, help="emulate a smaller GPU")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.configs = "tiny"
        args.device = args.device or "cpu"
        args.iters = min(args.iters, 2)
    args.sample_steps = args.sample_steps or (2 if args.quick else 50)
    device = torch.device(args.device or "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available: run with --quick (CPU) or on a GPU machine")
    torch.set_num_threads(args.threads)
    diffusers_logging.set_verbosity_error()
    cap = None
    if args.memory_cap_gib and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        cap = min(1.0, args.memory_cap_gib * GIB / total)
        torch.cuda.set_per_process_memory_fraction(cap, device)
    sizes = [s.strip() for s in args.configs.split(",") if s.strip()]
    unknown = sorted(set(sizes) - {"tiny", "small", "paper"})
    if unknown:
        raise SystemExit(f"unknown configs {unknown}; expected small, paper or tiny")
    result = {
        "benchmark": "video_model",
        "weights": "random (speed and memory only; no quality measured)",
        "machine": machine(device),
        "memory_cap_gib": args.memory_cap_gib if cap else None,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "configs", "device")},
        "configs": {},
    }
    out = args.out or REPO / "benchmarks/results" / (
        "video_model_quick.json" if args.quick else "video_model.json"
    )
    for size in sizes:
        print(f"[video_model] {size} ...", flush=True)
        result["configs"][size] = run_config(size, args, device)
        write_json(out, result)  # partial results survive a later failure
        print(json.dumps({size: result["configs"][size]}, indent=2), flush=True)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
