"""LaLRM speed: feed-forward reconstruction latency, training-step time and memory, and the
pure-torch Gaussian renderer against gsplat.

All models have RANDOM weights (speed only, no quality). Three parts:

    forward   ``models.lalrm.reconstruct`` (Plücker rays + the LaLRM + Gaussian activation) of one
              scene: the paper configuration (24 blocks, width 1024, 16 heads) on 49-frame
              latents at 480×720 (13×60×90×16; 17 550 tokens) in bf16 with SDPA (flash on
              CUDA), for the deconvolution strides 8 (stage 2: a 240×360 map, 4 233 600
              Gaussians) and 16 (stage 1: full resolution, 16 934 400). Also the network alone.
              Target: under 1 s on one H100/H200 (GS-LRM: 0.23 s for 2-4 views on an A100).
    train     one optimiser step of ``LaLRMModule.loss_terms`` (the training loss: Gaussians →
              gsplat renders at ``views`` supervision cameras → MSE + perceptual) + backward +
              AdamW, bf16 autocast over fp32 weights (Lightning's bf16-mixed), from stored
              latents (the frozen VAE encode is not timed). Cases: ``small_stage1`` (small
              config, 25 frames at 256×384, gradient checkpointing), ``paper_stage1`` (49 frames
              at 256×384) and ``paper_stage2`` (49 frames at 480×720, stride 8), both with
              gradient checkpointing and the VGG-19 perceptual loss (random VGG weights).
              ``--train-views`` supervision views per scene (paper: 24 seen + 24 unseen, batch 3
              per GPU over 8 GPUs); peak memory = ``max_memory_allocated`` over the case.
    render    one scene of pixel-aligned Gaussians (a random Gaussian map of ``--render-frames``
              frames at ``--render-map``) rendered into ``--render-views`` cameras at
              ``--render-size``: forward and forward+backward, torch renderer on the CPU
              (``--cpu-threads``), torch renderer on CUDA, gsplat on CUDA; ratios vs gsplat.

Timing: ``--warmup`` untimed calls, then ``--iters`` timed ones, each ``synchronize → wall
clock → call → synchronize``; median / p90 / mean in ms. A case that fails (e.g. out of memory)
records its error and the run goes on. Results: ``benchmarks/results/lalrm.json`` (written after
every case; ``--quick`` writes ``lalrm_quick.json``).

    .venv/bin/python benchmarks/lalrm.py                      # GPU: everything, paper sizes
    .venv/bin/python benchmarks/lalrm.py --parts forward --upsample 8
    .venv/bin/python benchmarks/lalrm.py --quick              # CPU smoke: tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from datagen.atomic import atomic_write_json as write_json  # noqa: E402
from models.geometry import look_at, make_K, plucker_rays, scale_K  # noqa: E402
from models.lalrm import (  # noqa: E402
    LaLRM,
    VGG19PerceptualLoss,
    gaussians_from_map,
    lalrm_config,
    reconstruct,
    render_cameras,
    render_views,
    scene_of,
)

PARTS = ("forward", "train", "render")
# name: (size, upsample, frames, height, width, batch, gradient checkpointing, perceptual)
TRAIN_CASES = {
    "small_stage1": ("small", 16, 25, 256, 384, 2, True, "pyramid"),
    "paper_stage1": ("paper", 16, 49, 256, 384, 1, True, "vgg19"),
    "paper_stage2": ("paper", 8, 49, 480, 720, 1, True, "vgg19"),
    "tiny": ("tiny", 16, 9, 32, 32, 1, False, "pyramid"),
}
TARGET_FORWARD_S = 1.0
REFERENCE = {"gs_lrm_a100_2to4_views_s": 0.23}


# ---- timing ---------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, warmup: int, iters: int) -> dict:
    """Median / p90 / mean / min ms of ``fn()`` over ``iters`` synchronised calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    a = np.asarray(times)
    return {k: round(float(v), 2) for k, v in (("median", np.median(a)), ("p90", np.percentile(a, 90)),
                                               ("mean", a.mean()), ("min", a.min()))}  # fmt: skip


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def sdpa_context(device: torch.device, dtype: torch.dtype, name: str):
    if device.type != "cuda" or dtype == torch.float32 or name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION}[name]  # fmt: skip
    return sdpa_kernel([backend])


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def error_entry(error: Exception) -> dict:
    if isinstance(error, torch.OutOfMemoryError):
        torch.cuda.empty_cache()
    return {"error": f"{type(error).__name__}: {error}"[:1500]}


# ---- inputs -------------------------------------------------------------------------------------


def cameras(frames: int, height: int, width: int, device, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``K [F, 3, 3]``, ``c2w [F, 4, 4]`` (float32): an arc of cameras around a point 3 units
    ahead (a forward-facing sweep like the benchmark clips)."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.linspace(-0.4, 0.4, frames)
    eye = torch.stack([3 * torch.sin(angles), 0.05 * torch.randn(frames, generator=g),
                       3 - 3 * torch.cos(angles)], -1)  # fmt: skip
    target = torch.tensor([0.0, 0.0, 3.0]).expand_as(eye)
    up = torch.tensor([0.0, -1.0, 0.0]).expand_as(eye)
    c2w = look_at(eye, target, up).float()
    K = make_K(0.9 * width, 0.9 * width, width / 2, height / 2).float().expand(frames, 3, 3)
    return K.contiguous().to(device), c2w.to(device)


def build_model(size: str, upsample: int, device, dtype, checkpointing: bool = False) -> LaLRM:
    torch.manual_seed(0)
    config = lalrm_config(size, upsample=upsample, gradient_checkpointing=checkpointing)
    with torch.device(device):
        model = LaLRM(config)
    return model.to(dtype)


def latents_for(model: LaLRM, frames: int, height: int, width: int, batch: int, device) -> Tensor:
    c = model.config
    T = (frames - 1) // c.temporal_compression + 1
    g = torch.Generator(device="cpu").manual_seed(1)
    shape = (batch, c.latent_channels, T, height // c.spatial_compression,
             width // c.spatial_compression)  # fmt: skip
    return torch.randn(shape, generator=g).to(device)


# ---- parts --------------------------------------------------------------------------------------


@torch.no_grad()
def bench_forward(args, device: torch.device, dtype: torch.dtype, size: str, upsample: int) -> dict:
    """Latency of ``reconstruct`` (rays + network + activation) and of the network alone."""
    F, H, W = args.frames, args.height, args.width
    reset_peak(device)
    model = build_model(size, upsample, device, dtype).eval().requires_grad_(False)
    latents = latents_for(model, F, H, W, 1, device).to(dtype)
    K, c2w = cameras(F, H, W, device)
    Hm, Wm = model.map_size(H, W)
    c = model.config
    tokens = ((F - 1) // 4 + 1) * (H // 8 // c.latent_patch) * (W // 8 // c.latent_patch)
    out = {
        "size": size,
        "upsample": upsample,
        "frames": F,
        "resolution": [H, W],
        "latents": list(latents.shape[1:]),
        "tokens": tokens,
        "map": [F, 12, Hm, Wm],
        "gaussians": F * Hm * Wm,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "dtype": str(dtype).split(".")[-1],
    }
    plucker = plucker_rays(K[None], c2w[None], H, W).to(dtype)
    with sdpa_context(device, dtype, args.sdpa):
        g = reconstruct(model, latents, K, c2w, dtype=dtype)
        assert g["means"].shape == (1, out["gaussians"], 3) and g["means"].dtype == torch.float32
        del g
        out["reconstruct_ms"] = timed(
            lambda: reconstruct(model, latents, K, c2w, dtype=dtype),
            device,
            args.warmup,
            args.iters,
        )
        out["network_ms"] = timed(lambda: model(latents, plucker), device, args.warmup, args.iters)
    out["peak_memory_gb"] = peak_gb(device)
    out["under_target"] = out["reconstruct_ms"]["median"] / 1000.0 < TARGET_FORWARD_S
    return out


def train_batch(model: LaLRM, F: int, H: int, W: int, views: int, batch: int, device) -> dict:
    """A synthetic LaLRM batch: stored latents, context cameras and ``views`` supervision views
    (half seen, half unseen) with random targets."""
    K, c2w = cameras(F, H, W, device)
    sup = torch.linspace(0, F - 1, views).round().long()
    g = torch.Generator(device="cpu").manual_seed(2)
    expand = lambda x: x[None].expand(batch, *x.shape).contiguous()  # noqa: E731
    return {
        "latents": latents_for(model, F, H, W, batch, device),
        "context_plucker": expand(plucker_rays(K, c2w, H, W)),
        "context_K": expand(K),
        "context_c2w": expand(c2w),
        "sup": torch.rand(batch, views, 3, H, W, generator=g).to(device),
        "sup_K": expand(K[sup]),
        "sup_c2w": expand(c2w[sup]),
        "sup_valid": torch.ones(batch, views, dtype=torch.bool, device=device),
        "sup_is_seen": expand(torch.arange(views, device=device) < views // 2),
    }


def bench_train(args, device: torch.device, dtype: torch.dtype, name: str) -> dict:
    """One optimiser step of the training loss (``LaLRMModule.loss_terms``)."""
    from training.modules.lalrm import LaLRMModule

    size, upsample, F, H, W, batch, ckpt, perceptual = TRAIN_CASES[name]
    views = args.train_views
    reset_peak(device)
    torch.manual_seed(0)
    module = LaLRMModule(
        size=size,
        model={"upsample": upsample, "gradient_checkpointing": ckpt},
        perceptual="pyramid" if perceptual == "pyramid" else "none",
        render_backend="auto",
        warmup_steps=0,
    )
    if perceptual == "vgg19":  # the paper's loss network, random weights (speed only)
        module.perceptual = VGG19PerceptualLoss()
    module = module.to(device).train()
    opt = module.configure_optimizers()
    data = train_batch(module.model, F, H, W, views, batch, device)
    Hm, Wm = module.model.map_size(H, W)

    def step():
        with autocast(device, dtype):
            loss = module.loss_terms(data)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out = {
        "size": size, "upsample": upsample, "frames": F, "resolution": [H, W], "batch": batch,
        "views": views, "gaussians_per_scene": F * Hm * Wm, "gradient_checkpointing": ckpt,
        "perceptual": perceptual, "dtype": str(dtype).split(".")[-1],
        "params_M": round(sum(p.numel() for p in module.model.parameters()) / 1e6, 1),
    }  # fmt: skip
    with sdpa_context(device, dtype, args.sdpa):
        out["step_ms"] = timed(step, device, args.warmup, args.train_iters)
    out["peak_memory_gb"] = peak_gb(device)
    out["render_backend"] = "gsplat" if device.type == "cuda" else "torch"
    return out


def render_scene(args, device: torch.device) -> tuple[dict, Tensor, Tensor, int, int]:
    """Pixel-aligned Gaussians of a random map + the render cameras, on ``device``."""
    F = args.render_frames
    Hm, Wm = (int(x) for x in args.render_map.split("x"))
    H, W = (int(x) for x in args.render_size.split("x"))
    K, c2w = cameras(F, Hm, Wm, "cpu")
    g = torch.Generator().manual_seed(3)
    gmap = torch.randn(1, F, 12, Hm, Wm, generator=g)
    scene = scene_of(gaussians_from_map(gmap, K[None], c2w[None], 0.5, 10.0))
    picks = torch.linspace(0, F - 1, args.render_views).round().long()
    Kv, cv = scale_K(K[picks], W / Wm, H / Hm), c2w[picks]
    return {k: v.to(device) for k, v in scene.items()}, Kv.to(device), cv.to(device), H, W


def bench_render(args, device_name: str, backend: str) -> dict:
    device = torch.device(device_name)
    scene, K, c2w, H, W = render_scene(args, device)
    out = {"device": device_name, "backend": backend, "gaussians": int(scene["means"].shape[0]),
           "views": len(K), "resolution": [H, W]}  # fmt: skip

    def forward():
        with torch.no_grad():
            render_cameras(scene, K, c2w, H, W, chunk=len(K), backend=backend)

    leaf = {k: v[None].clone().requires_grad_(True) for k, v in scene.items()}

    def forward_backward():
        rgb = render_views(leaf, K[None], c2w[None], H, W, backend=backend).rgb
        rgb.square().mean().backward()

    iters = args.render_iters
    out["forward_ms"] = timed(forward, device, 1, iters)
    out["forward_backward_ms"] = timed(forward_backward, device, 1, iters)
    return out


# ---- main ---------------------------------------------------------------------------------------


def machine(device: torch.device) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}  # fmt: skip
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="CPU smoke run: tiny model, 9 frames at 64x64, tiny render scene")  # fmt: skip
    ap.add_argument("--device", default=None, help="default cuda (cpu with --quick)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    ap.add_argument("--size", default="paper", help="forward: LaLRM size (tiny, small, paper)")
    ap.add_argument("--upsample", default="8,16", help="forward: deconvolution strides")
    ap.add_argument("--frames", type=int, default=49)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=720)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--sdpa", default="flash", choices=["flash", "cudnn", "efficient", "auto"])
    ap.add_argument("--train-cases", default="small_stage1,paper_stage1,paper_stage2")
    ap.add_argument("--train-views", type=int, default=8, help="supervision views per scene")
    ap.add_argument("--train-iters", type=int, default=5)
    ap.add_argument("--render-frames", type=int, default=9)
    ap.add_argument("--render-map", default="64x96", help="Gaussian map per frame, HxW")
    ap.add_argument("--render-size", default="256x384", help="render resolution, HxW")
    ap.add_argument("--render-views", type=int, default=4)
    ap.add_argument("--render-iters", type=int, default=3)
    ap.add_argument("--cpu-threads", type=int, default=None, help="torch threads on the CPU")
    ap.add_argument("--warmup", type=int, default=None, help="default 3 (CUDA), 1 (CPU)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.device = args.device or "cpu"
        args.size, args.upsample, args.frames, args.height, args.width = "tiny", "16,8", 9, 64, 64
        args.dtype = "float32" if args.device == "cpu" else args.dtype
        args.train_cases, args.train_views, args.train_iters = "tiny", 4, 2
        args.render_map, args.render_size, args.render_views = "16x16", "32x32", 2
        args.render_iters, args.iters = 2, 3
    args.device = args.device or "cuda"
    args.warmup = (
        args.warmup if args.warmup is not None else (3 if args.device.startswith("cuda") else 1)
    )
    args.out = args.out or REPO / "benchmarks/results" / (
        "lalrm_quick.json" if args.quick else "lalrm.json"
    )
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA is not available: pass --quick (CPU) or --device cpu")
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[
        args.dtype
    ]
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if any(p not in PARTS for p in parts):
        sys.exit(f"--parts must be from {PARTS}")
    result: dict = {
        "benchmark": "lalrm",
        "weights": "random (speed only; no quality measured)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "target_forward_s": TARGET_FORWARD_S,
        "reference": REFERENCE,
        "forward": {}, "train": {}, "render": {},
        "machine": machine(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
    if "forward" in parts:
        for up in (int(u) for u in args.upsample.split(",")):
            name = f"{args.size}_upsample{up}"
            try:
                entry = bench_forward(args, device, dtype, args.size, up)
                print(f"forward {name}: {entry['reconstruct_ms']['median']:.1f} ms "
                      f"({entry['gaussians']:,} Gaussians, peak {entry['peak_memory_gb']} GB)", flush=True)  # fmt: skip
            except Exception as error:  # reported; the run goes on
                entry = error_entry(error)
                print(f"forward {name}: {entry['error'][:200]}", flush=True)
            result["forward"][name] = entry
            write_json(args.out, result)
    if "train" in parts:
        for name in (c.strip() for c in args.train_cases.split(",") if c.strip()):
            if name not in TRAIN_CASES:
                sys.exit(f"unknown train case {name!r}; one of {sorted(TRAIN_CASES)}")
            try:
                entry = bench_train(args, device, dtype, name)
                print(f"train {name}: {entry['step_ms']['median']:.1f} ms/step, "
                      f"peak {entry['peak_memory_gb']} GB", flush=True)  # fmt: skip
            except Exception as error:
                entry = error_entry(error)
                print(f"train {name}: {entry['error'][:200]}", flush=True)
            result["train"][name] = entry
            write_json(args.out, result)
    if "render" in parts:
        cases = [("torch_cpu", "cpu", "torch")]
        if torch.cuda.is_available():
            cases += [("torch_cuda", "cuda", "torch"), ("gsplat", "cuda", "gsplat")]
        else:
            result["render"]["gsplat"] = {"skipped": "no CUDA"}
        for name, dev, backend in cases:
            try:
                entry = bench_render(args, dev, backend)
                print(f"render {name}: forward {entry['forward_ms']['median']:.1f} ms, "
                      f"forward+backward {entry['forward_backward_ms']['median']:.1f} ms", flush=True)  # fmt: skip
            except Exception as error:
                entry = error_entry(error)
                print(f"render {name}: {entry['error'][:200]}", flush=True)
            result["render"][name] = entry
            write_json(args.out, result)
        gs = result["render"].get("gsplat", {})
        if "forward_ms" in gs:
            result["render"]["ratio_vs_gsplat"] = {
                name: {
                    key: round(r[key]["median"] / gs[key]["median"], 1)
                    for key in ("forward_ms", "forward_backward_ms")
                }
                for name, r in result["render"].items()
                if name in ("torch_cpu", "torch_cuda") and "forward_ms" in r
            }
    result["date_end"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(args.out, result)
    print("wrote", args.out)
    return result


if __name__ == "__main__":
    main()
