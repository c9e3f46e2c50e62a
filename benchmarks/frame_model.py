"""Frame-model inference speed: frames/s of one frame at 512×512, batch 1, on one GPU.

The paper-size configuration (``FrameDiT`` of PixArt-Σ XL/2 size: 28 layers, width 1152 = 16 × 72,
patch 2, PRoPE; three 64 × 64 latents side by side = 3072 tokens; SDXL-size image VAE) with RANDOM
weights: this measures speed only, never quality.

One frame = what ``FramePipeline.render`` does per frame after ``set_scene``:

    anchor encode   the anchor render (given: a random RGB image already on the device) → VAE
                    encoder → scaled latent (every frame has its own anchor, so this is per frame)
    generator       the few-step generator: timesteps [999, 200] (2 steps) or [999] (1 step)
    decode          the VAE decoder → RGB frame [3, H, W] in [0, 1]

Not in the frame time: the anchor's point-cloud / Gaussian render (the renderer's cost, its own
benchmark) and the per-scene work (the reference latent's VAE encode, once per scene, and, where
the variant caches, the reference tokens).

Variants (same run, same weights from one seed):

    baseline                   fp32 weights, eager, no caching (the reference tokens are re-embedded
                               every generator call), full VAE encoder + decoder in fp32
    bf16                       bf16 weights, eager, SDPA restricted to ``--sdpa`` (flash), the
                               reference tokens cached once per scene (FramePipeline's path)
    bf16_compile               bf16 + ``torch.compile(generator, mode=--compile-mode)``; compile time
                               measured separately (first calls) and excluded from frames/s
    bf16_compile_tiny_decoder  bf16_compile, but decoding with a small decoder (an ``AutoencoderKL``
                               decoder of ``--tiny-decoder-channels``, 1 layer per level, no
                               attention, random weights): the speed a distilled TAESD-size decoder
                               would give; its image quality is NOT measured. The anchor encode
                               still uses the full SDXL-size encoder.

Timing: per frame ``synchronize → wall clock → frame → synchronize``; ``--warmup`` untimed frames,
then ``--iters`` timed frames per (variant, steps). Latency median / p90 / mean; fps = 1000 /
median latency. Components from CUDA events recorded between the parts of each timed frame.
Peak memory = ``max_memory_allocated`` over the (variant, steps) run, resident weights included.

    bf16_compile_causal        bf16_compile with causal conditions (``condition_attention=
                               "causal"``, see ``models/frame/causal.py``): reference keys/values
                               cached per scene, the anchor's computed once per frame (timed as
                               part of the generator), each step runs the target tokens only
    bf16_compile_causal_small_codec  the above + the small VAE (same random-weight caveat) for
                               both the anchor encode and the decode
    bf16_frame_graph           the models of bf16_compile_causal_small_codec run through
                               ``FramePipeline.compile()``: a frame's whole work is one compiled
                               graph (one CUDA-graph replay per frame with reduce-overhead);
                               latency only, no per-part marks

Compile: both layouts' forwards compile to one graph each (no host syncs), so
``--compile-mode reduce-overhead`` runs them as CUDA graphs. On CPU the default ``--compile-backend`` is ``eager`` (dynamo
tracing only: inductor's C++ build takes minutes on 2 cores). Checks (JSON): max |Δ| of the eager
variants' frame vs ``FramePipeline.render`` on the same models and anchor, of compiled vs eager.

    .venv/bin/python benchmarks/frame_model.py                       # GPU, paper size, all variants
    .venv/bin/python benchmarks/frame_model.py --variants baseline,bf16 --steps 2
    .venv/bin/python benchmarks/frame_model.py --size tiny --device cpu --iters 2 --out /tmp/fm.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from diffusers.utils import logging as diffusers_logging  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from datagen.atomic import atomic_write_json as write_json  # noqa: E402
from models.autoencoders import decode, encode  # noqa: E402
from models.autoencoders.image_vae import build_image_vae, image_vae_config  # noqa: E402
from models.frame import (  # noqa: E402
    PIXART_CONFIGS,
    ConditionCache,
    DiffusionSchedule,
    FewStepSampler,
    FrameCondition,
    FrameDiT,
    FramePipeline,
    frame_config_from_pixart,
    pixart_config,
)
from models.geometry import K_from_fov  # noqa: E402

VARIANTS = (
    "baseline",
    "bf16",
    "bf16_compile",
    "bf16_compile_tiny_decoder",
    "bf16_compile_causal",
    "bf16_compile_causal_small_codec",
)
DESCRIPTIONS = {
    "baseline": "fp32 eager, no caching (reference tokens re-embedded at every generator call), "
    "full VAE encode + decode in fp32",
    "bf16": "bf16 weights + SDPA eager, reference tokens cached once per scene "
    "(FramePipeline.set_scene's cache), full VAE in bf16",
    "bf16_compile": "bf16 + torch.compile(generator); compile time excluded from fps",
    "bf16_compile_tiny_decoder": "bf16_compile + a small decoder (random weights, speed only: "
    "image quality NOT measured) instead of the full SDXL-size decoder; anchor encode still "
    "uses the full encoder",
    "bf16_compile_causal": "bf16_compile with causal conditions (condition_attention='causal'): "
    "the reference's keys/values cached per scene, the anchor's computed once per frame, each "
    "step runs the 1024 target tokens only; full VAE",
    "bf16_compile_causal_small_codec": "bf16_compile_causal + a small encoder for the anchor and "
    "a small decoder (random weights, speed only: image quality NOT measured)",
    "bf16_frame_graph": "bf16_compile_causal_small_codec's models run through "
    "FramePipeline.compile(): a frame's whole work (anchor encode, anchor keys/values, every "
    "step, decode) is one compiled graph, one CUDA-graph replay per frame with --compile-mode "
    "reduce-overhead; no per-part marks (components not reported)",
}
STEPS = {2: (999, 200), 1: (999,)}
REFERENCE_FPS = {"worldfm_a100_2step": 10.0, "worldfm_rtx4090_1step": 7.0}
TARGET_FPS = 40.0


@dataclass
class Spec:
    dtype: torch.dtype
    cache: bool
    compile: bool
    tiny_decoder: bool
    causal: bool = False
    small_encoder: bool = False
    frame_graph: bool = False


SPECS = {
    "baseline": Spec(torch.float32, False, False, False),
    "bf16": Spec(torch.bfloat16, True, False, False),
    "bf16_compile": Spec(torch.bfloat16, True, True, False),
    "bf16_compile_tiny_decoder": Spec(torch.bfloat16, True, True, True),
    "bf16_compile_causal": Spec(torch.bfloat16, True, True, False, causal=True),
    "bf16_compile_causal_small_codec": Spec(
        torch.bfloat16, True, True, True, causal=True, small_encoder=True
    ),
    "bf16_frame_graph": Spec(
        torch.bfloat16, True, True, True, causal=True, small_encoder=True, frame_graph=True
    ),
}


# ---- timing ------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Marks:
    """Named time points inside one frame: CUDA events on a GPU (no extra syncs), wall clock on
    CPU. ``durations()`` (after a sync) gives ms between consecutive marks."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.names: list[str] = []
        self.points: list = []

    def mark(self, name: str) -> None:
        self.names.append(name)
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.points.append(ev)
        else:
            self.points.append(time.perf_counter())

    def durations(self) -> dict[str, float]:
        out = {}
        for i in range(1, len(self.points)):
            a, b = self.points[i - 1], self.points[i]
            out[self.names[i]] = a.elapsed_time(b) if self.cuda else (b - a) * 1000.0
        return out


class NoMarks(Marks):
    def __init__(self):
        super().__init__(torch.device("cpu"))

    def mark(self, name: str) -> None:
        pass


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


# ---- models ------------------------------------------------------------------------------------


def generator_config(size: str, causal: bool = False) -> dict:
    return frame_config_from_pixart(
        pixart_config(size),
        camera_encoding="prope",
        condition_attention="causal" if causal else "full",
    )


def tiny_decoder_overrides(channels: tuple[int, ...]) -> dict:
    return {
        "block_out_channels": channels,
        "layers_per_block": 1,
        "mid_block_add_attention": False,
        "norm_num_groups": min(32, min(channels)),
    }


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@dataclass
class Models:
    generator: nn.Module  # FrameDiT or its torch.compile wrapper
    vae: nn.Module  # encodes the anchor (and the reference); decodes unless ``decoder`` given
    decoder: nn.Module  # the VAE used for decode
    dtype: torch.dtype
    cache: bool
    scene: dict = field(default_factory=dict)
    anchor_kv: object = None  # causal conditions: (compiled) FrameDiT.anchor_kv


def build_generator(
    size: str, device: torch.device, dtype: torch.dtype, seed: int, causal: bool = False
) -> FrameDiT:
    torch.manual_seed(seed)
    with torch.device(device):
        gen = FrameDiT(**generator_config(size, causal))
    return gen.to(dtype).eval().requires_grad_(False)


def build_vae(size: str, device: torch.device, dtype: torch.dtype, seed: int, **overrides):
    torch.manual_seed(seed + 1)
    with torch.device(device):
        vae = build_image_vae(size, **overrides)
    return vae.to(dtype).eval().requires_grad_(False)


def set_scene(m: Models, ref_rgb: Tensor, K: Tensor, c2w: Tensor, seed: int) -> None:
    """The per-scene cache, exactly as ``FramePipeline.set_scene``: reference latent, reference
    tokens (used only by caching variants), fixed initial noise."""
    gen = unwrap(m.generator)
    with torch.no_grad():
        ref = encode(m.vae, ref_rgb[None].to(next(m.vae.parameters()).dtype)).to(m.dtype)
        cond = FrameCondition(ref, ref, K[None], c2w[None], K[None], c2w[None])
        g = torch.Generator().manual_seed(seed)
        m.scene = {
            "reference": ref,
            "reference_K": K[None],
            "reference_c2w": c2w[None],
            "reference_tokens": gen.embed_reference(cond),
            "noise": torch.randn(ref.shape, generator=g).to(ref.device, m.dtype),
        }
        if gen.config.condition_attention == "causal":
            m.scene["reference_kv"] = gen.reference_kv(cond, m.scene["reference_tokens"])


@torch.no_grad()
def run_frame(
    m: Models, sampler: FewStepSampler, anchor_rgb: Tensor, K: Tensor, c2w: Tensor, marks: Marks
) -> Tensor:
    """One frame, as ``FramePipeline.render`` minus the anchor render, with marks between parts."""
    s = m.scene
    marks.mark("start")
    vae_dtype = next(m.vae.parameters()).dtype
    anchor = encode(m.vae, anchor_rgb[None].to(vae_dtype)).to(m.dtype)
    marks.mark("anchor_encode")
    cond = FrameCondition(
        anchor, s["reference"], K[None], c2w[None], s["reference_K"], s["reference_c2w"]
    )
    kw = {"reference_tokens": s["reference_tokens"]} if m.cache else {}
    if "reference_kv" in s:  # causal conditions: the anchor's keys/values once per frame
        kw = {"cache": ConditionCache(s["reference_kv"], m.anchor_kv(cond, s["reference_kv"]))}
        marks.mark("anchor_kv")
    x, x0 = s["noise"], None
    for k in range(sampler.num_steps):
        x0, x = sampler.step(m.generator, x, k, cond, **kw)
        marks.mark(f"step{k}")
    frame = decode(m.decoder, x0.to(next(m.decoder.parameters()).dtype))[0].float()
    marks.mark("decode")
    return frame


def unwrap(m: nn.Module) -> nn.Module:
    """The eager module under ``torch.compile`` / ``CudaGraphStep`` wrappers."""
    while True:
        if isinstance(m, CudaGraphStep):
            m = m.compiled
        elif hasattr(m, "_orig_mod"):
            m = m._orig_mod
        else:
            return m


def compile_module(m: nn.Module, mode: str, backend: str) -> nn.Module:
    if backend != "inductor":
        return torch.compile(m, backend=backend)
    c = torch.compile(m, mode=mode)
    return CudaGraphStep(c) if mode == "reduce-overhead" else c


def compile_anchor_kv(gen: FrameDiT, mode: str, backend: str):
    """``torch.compile(gen.anchor_kv)``; with CUDA graphs (``reduce-overhead``) each call starts a
    new graph step and its keys/values are copied out of the graph's memory pool, since the
    target steps that read them are graph replays of their own."""
    if backend != "inductor":
        return torch.compile(gen.anchor_kv, backend=backend)
    fn = torch.compile(gen.anchor_kv, mode=mode)
    if mode != "reduce-overhead":
        return fn

    def anchor_kv(cond, reference_kv):
        torch.compiler.cudagraph_mark_step_begin()
        return [(k.clone(), v.clone()) for k, v in fn(cond, reference_kv)]

    return anchor_kv


class CudaGraphStep(nn.Module):
    """Marks a new CUDA-graph step before every call (``reduce-overhead``: each generator call
    may read the previous call's outputs)."""

    def __init__(self, compiled: nn.Module):
        super().__init__()
        self.compiled = compiled

    def forward(self, *a, **kw):
        torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(*a, **kw)


# ---- benchmark ---------------------------------------------------------------------------------


def poses(n: int, res: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """K [3, 3], reference c2w [4, 4], target c2ws [n, 4, 4] (a small sideways dolly)."""
    K = K_from_fov(60.0, res, res, dtype=torch.float32).to(device)
    c2ws = torch.eye(4).repeat(n, 1, 1)
    c2ws[:, 0, 3] = torch.linspace(0.0, 0.5, n)
    c2ws[:, 2, 3] = torch.linspace(0.0, 0.2, n)
    return K, torch.eye(4, device=device), c2ws.to(device)


def stats(lat: list[float]) -> dict:
    a = np.asarray(lat)
    return {
        "median": _r(np.median(a)),
        "p90": _r(np.percentile(a, 90)),
        "mean": _r(a.mean()),
        "min": _r(a.min()),
    }


def measure(
    m: Models,
    steps: int,
    schedule: DiffusionSchedule,
    anchors: Tensor,
    K: Tensor,
    c2ws: Tensor,
    warmup: int,
    iters: int,
    device: torch.device,
) -> dict:
    sampler = FewStepSampler(schedule, STEPS[steps])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup):
        run_frame(m, sampler, anchors[i % len(anchors)], K, c2ws[i % len(c2ws)], NoMarks())
    sync(device)
    lat, comps = [], []
    for i in range(iters):
        marks = Marks(device)
        sync(device)
        t0 = time.perf_counter()
        run_frame(m, sampler, anchors[i % len(anchors)], K, c2ws[i % len(c2ws)], marks)
        sync(device)
        lat.append((time.perf_counter() - t0) * 1000.0)
        d = marks.durations()
        gen = sum(v for k, v in d.items() if k.startswith("step"))
        gen += d.get("anchor_kv", 0.0)
        comps.append({"anchor_encode": d["anchor_encode"], "generator": gen, "decode": d["decode"]})
    comp_ms = {k: _r(np.median([c[k] for c in comps])) for k in comps[0]}
    comp_ms["generator_per_step"] = _r(comp_ms["generator"] / steps)
    comp_ms["sum_of_parts"] = _r(
        comp_ms["anchor_encode"] + comp_ms["generator"] + comp_ms["decode"]
    )
    return latency_result(STEPS[steps], warmup, lat, comp_ms, device)


def latency_result(timesteps, warmup: int, lat: list[float], components, device) -> dict:
    """One (variant, steps) entry of the JSON from per-frame latencies ``lat`` (ms)."""
    lat_stats = stats(lat)
    out = {
        "timesteps": list(timesteps),
        "warmup": warmup,
        "iters": len(lat),
        "latency_ms": lat_stats,
        "fps": _r(1000.0 / lat_stats["median"]),
        "fps_mean": _r(1000.0 / lat_stats["mean"]),
        "components_ms_median": components,
        "peak_memory_gb": None,
    }
    if device.type == "cuda":
        out["peak_memory_gb"] = _r(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    return out


def frame_graph_pipeline(
    gen: FrameDiT, vae: nn.Module, schedule, steps: int, mode: str, backend: str, scene
) -> FramePipeline:
    """A ``FramePipeline`` over ``gen`` and ``vae`` (encode and decode) compiled as one graph per
    frame, with the scene ``(ref_rgb, K, c2w, seed, points)`` set."""
    for sub in ("encoder", "decoder"):  # the frame graph compiles them itself
        setattr(vae, sub, unwrap(getattr(vae, sub)))
    ref_rgb, K, c2w, seed, pts = scene
    pipe = FramePipeline(gen, vae, schedule, STEPS[steps], seed=seed)
    if backend == "inductor":
        pipe.compile(mode=mode)
    else:
        pipe.compile(mode=None, backend=backend)
    pipe.set_scene(ref_rgb, K, c2w, points=pts, colors=pts)
    return pipe


def measure_pipeline(
    pipe: FramePipeline, anchors: Tensor, K: Tensor, c2ws: Tensor, warmup: int, iters: int, device
) -> dict:
    """Latency of ``pipe.render_from_anchor`` (the frame graph): as ``measure``, no components."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(warmup):
        pipe.render_from_anchor(anchors[i % len(anchors)], K, c2ws[i % len(c2ws)])
    sync(device)
    lat = []
    for i in range(iters):
        sync(device)
        t0 = time.perf_counter()
        pipe.render_from_anchor(anchors[i % len(anchors)], K, c2ws[i % len(c2ws)])
        sync(device)
        lat.append((time.perf_counter() - t0) * 1000.0)
    return latency_result(pipe.sampler.timesteps, warmup, lat, None, device)


@torch.no_grad()
def check_against_eager(m: Models, schedule: DiffusionSchedule, anchor_rgb, K, c2w) -> float:
    """Max |Δ| between the compiled variant's frame and the same models run eagerly."""
    gen = unwrap(m.generator)
    eager = Models(gen, m.vae, m.decoder, m.dtype, m.cache, m.scene, gen.anchor_kv)
    sampler = FewStepSampler(schedule, STEPS[2])
    got = run_frame(m, sampler, anchor_rgb, K, c2w, NoMarks())
    saved = (m.vae.encoder, m.decoder.decoder)
    m.vae.encoder, m.decoder.decoder = unwrap(saved[0]), unwrap(saved[1])
    try:
        want = run_frame(eager, sampler, anchor_rgb, K, c2w, NoMarks())
    finally:
        m.vae.encoder, m.decoder.decoder = saved
    return float((got - want).abs().max())


@torch.no_grad()
def check_against_pipeline(
    m: Models, schedule: DiffusionSchedule, ref_rgb, anchor_rgb, K, ref_c2w, c2w, seed
) -> float:
    """Max |Δ| between this benchmark's frame and ``FramePipeline.render`` (anchor render replaced
    by the same anchor image) on the same models: the timed code path is the pipeline's."""
    pipe = FramePipeline(m.generator, m.vae, schedule, STEPS[2], seed=seed)
    pts = torch.rand(16, 3, device=ref_rgb.device)
    pipe.set_scene(ref_rgb, K, ref_c2w, points=pts, colors=pts)
    pipe.render_anchor = lambda K, c2w: anchor_rgb
    want = pipe.render(K, c2w)
    got = run_frame(m, FewStepSampler(schedule, STEPS[2]), anchor_rgb, K, c2w, NoMarks())
    return float((got - want).abs().max())


def sdpa_context(name: str, device: torch.device, dtype: torch.dtype):
    if device.type != "cuda" or dtype == torch.float32 or name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }[name]
    return sdpa_kernel([backend])


def machine(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["torch_threads"] = torch.get_num_threads()
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    info["tf32_cudnn_conv"] = torch.backends.cudnn.allow_tf32
    return info


def run_frame_graph(
    name, entry, gen, vae, schedule, step_list, args, backend, scene, anchors, c2ws, device
) -> None:
    """The ``frame_graph`` variant: per step count a compiled ``FramePipeline``; its first frame
    (the compile) timed apart; frames checked against the same pipeline run eagerly."""
    entry["compile"] = {"backend": backend, "mode": args.compile_mode, "scope": "whole frame"}
    entry["steps"], entry["compile_s"] = {}, {}
    K = scene[1]
    with sdpa_context(args.sdpa, device, torch.bfloat16):
        for s in step_list:
            try:
                t0 = time.perf_counter()
                pipe = frame_graph_pipeline(
                    gen, vae, schedule, s, args.compile_mode, backend, scene
                )
                got = pipe.render_from_anchor(anchors[0], K, c2ws[0])
                sync(device)
            except Exception as e:  # reported; the variant is skipped
                entry["error"] = f"{type(e).__name__}: {e}"[:2000]
                print(name, "compile failed:", entry["error"].splitlines()[0], flush=True)
                return
            entry["compile_s"][str(s)] = _r(time.perf_counter() - t0, 1)
            print(f"{name}: steps={s} compiled in {entry['compile_s'][str(s)]} s", flush=True)
            r = measure_pipeline(pipe, anchors, K, c2ws, args.warmup, args.iters, device)
            if not args.no_check:
                eager = FramePipeline(gen, vae, schedule, STEPS[s], seed=scene[3])
                eager.set_scene(
                    *scene[:3], points=pipe._scene["points"], colors=pipe._scene["colors"]
                )
                want = eager.render_from_anchor(anchors[0], K, c2ws[0])
                r["max_abs_diff_vs_eager"] = float((got - want).abs().max())
            entry["steps"][str(s)] = r
            print(
                f"{name:27s} steps={s} latency {r['latency_ms']['median']:8.2f} ms "
                f"(p90 {r['latency_ms']['p90']:.2f})  {r['fps']:7.2f} fps  "
                f"peak {r['peak_memory_gb']} GB",
                flush=True,
            )
            del pipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="paper", choices=sorted(PIXART_CONFIGS))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + str(VARIANTS))
    ap.add_argument("--steps", default="2,1", help="comma list of generator step counts (2, 1)")
    ap.add_argument("--resolution", type=int, default=None, help="default: 8 × the DiT's latent")
    ap.add_argument("--warmup", type=int, default=None, help="default 5 (CUDA), 1 (CPU smoke)")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--compile-mode",
        default="max-autotune-no-cudagraphs",
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
    )
    ap.add_argument(
        "--compile-vae",
        action="store_true",
        help="also torch.compile the VAE encoder / decoder in the compile variants",
    )
    ap.add_argument(
        "--sdpa",
        default="flash",
        choices=["flash", "cudnn", "efficient", "auto"],
        help="SDPA backend of the bf16 variants on CUDA",
    )
    ap.add_argument(
        "--tiny-decoder-channels",
        default=None,
        help="decoder block_out_channels (default 64,64,64,64; tiny: 16,16,16,16)",
    )
    ap.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend (default: inductor on CUDA; eager on CPU, where inductor's C++ "
        "codegen takes minutes on 2 cores: the smoke run then checks dynamo tracing only)",
    )
    ap.add_argument(
        "--no-check",
        action="store_true",
        help="skip the checks (eager vs FramePipeline.render, compiled vs eager)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/frame_model.json")
    args = ap.parse_args()
    diffusers_logging.set_verbosity_error()  # "modules to keep in float32: []" on every .to()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA is not available: pass --device cpu (with --size tiny)")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in SPECS]
    if bad:
        sys.exit(f"unknown variants {bad}; choose from {VARIANTS}")
    step_list = [int(s) for s in args.steps.split(",")]
    if any(s not in STEPS for s in step_list):
        sys.exit(f"--steps must be from {sorted(STEPS)}")
    if args.warmup is None:
        args.warmup = 5 if device.type == "cuda" else 1
    backend = args.compile_backend or ("inductor" if device.type == "cuda" else "eager")
    gcfg = generator_config(args.size)
    res = args.resolution or 8 * gcfg["sample_size"]
    if args.tiny_decoder_channels:
        tiny_ch = tuple(int(c) for c in args.tiny_decoder_channels.split(","))
    else:
        tiny_ch = (16,) * 4 if args.size == "tiny" else (64,) * 4
    tiny_over = tiny_decoder_overrides(tiny_ch)

    schedule = DiffusionSchedule()
    g = torch.Generator().manual_seed(args.seed + 7)
    ref_rgb = torch.rand(3, res, res, generator=g).to(device)
    anchors = torch.rand(2, 3, res, res, generator=g).to(device)
    K, ref_c2w, c2ws = poses(max(args.iters, args.warmup, 2), res, device)

    result: dict = {
        "benchmark": "frame_model",
        "size": args.size,
        "resolution": [res, res],
        "batch": 1,
        "weights": "random (speed only; no quality measured)",
        "frame": "anchor latent encode (VAE encoder, per frame: every frame has its own anchor "
        "render) + generator steps + VAE decode; excluded: the anchor point-cloud render, the "
        "per-scene reference encode",
        "generator": {
            "class": "FrameDiT",
            "config": gcfg,
            "params_M": None,
            "tokens": 3 * (res // 8 // gcfg["patch_size"]) ** 2,
        },
        "vae": {"size": args.size, "encoder_params_M": None, "decoder_params_M": None},
        "tiny_decoder": {
            "config_overrides": {
                k: list(v) if isinstance(v, tuple) else v for k, v in tiny_over.items()
            },
            "decoder_params_M": None,
            "note": "AutoencoderKL decoder with random weights: measures the speed a distilled "
            "TAESD-size decoder would give; image quality is NOT measured (it would have to be "
            "distilled to the SDXL latent space)",
        },
        "settings": {
            "compile_backend": backend,
            "compile_mode": args.compile_mode if backend == "inductor" else None,
            "compile_vae": args.compile_vae,
            "sdpa_bf16": args.sdpa if device.type == "cuda" else "n/a (cpu)",
            "warmup": args.warmup,
            "iters": args.iters,
            "fps": "1000 / median per-frame latency (synchronised, batch 1)",
        },
        "reference_fps": REFERENCE_FPS,
        "target_fps": TARGET_FPS,
        "variants": {},
        "fps_ratio_vs_baseline": {},
        "machine": machine(device),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(
        f"frame model {args.size} {res}x{res} on {result['machine'].get('gpu', device)}", flush=True
    )

    built: dict = {}  # dtype -> (generator, vae), shared by the variants of one dtype
    compiled: dict = {}  # "generator" / "vae_encoder" / ... -> compiled module or error
    tiny_vae = None
    for name in variants:
        spec = SPECS[name]
        entry: dict = {"description": DESCRIPTIONS[name], "dtype": str(spec.dtype).split(".")[-1]}
        result["variants"][name] = entry
        key = (spec.dtype, spec.causal)
        for other in list(built):
            if other != key:  # free the other generator's weights before measuring
                del built[other]
                compiled.pop(("generator", other), None)
                compiled.pop(("anchor_kv", other), None)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        if key not in built:
            gen = build_generator(args.size, device, spec.dtype, args.seed, spec.causal)
            vae = build_vae(args.size, device, spec.dtype, args.seed)
            built[key] = (gen, vae)
            result["generator"]["params_M"] = _r(n_params(gen) / 1e6, 1)
            result["vae"]["encoder_params_M"] = _r(
                (n_params(vae.encoder) + n_params(vae.quant_conv)) / 1e6, 1
            )
            result["vae"]["decoder_params_M"] = _r(
                (n_params(vae.decoder) + n_params(vae.post_quant_conv)) / 1e6, 1
            )
        gen, vae = built[key]
        decoder = vae
        if spec.tiny_decoder:
            if tiny_vae is None:
                tiny_vae = build_vae(args.size, device, spec.dtype, args.seed + 1, **tiny_over)
                cfg = image_vae_config(args.size, **tiny_over)
                assert cfg["latent_channels"] == vae.config.latent_channels
                result["tiny_decoder"]["decoder_params_M"] = _r(
                    (n_params(tiny_vae.decoder) + n_params(tiny_vae.post_quant_conv)) / 1e6, 3
                )
                result["tiny_decoder"]["encoder_params_M"] = _r(
                    (n_params(tiny_vae.encoder) + n_params(tiny_vae.quant_conv)) / 1e6, 3
                )
            decoder = tiny_vae
        encoder_vae = tiny_vae if spec.small_encoder else vae
        if spec.frame_graph:
            run_frame_graph(name, entry, gen, decoder, schedule, step_list, args, backend,
                            (ref_rgb, K, ref_c2w, args.seed, anchors.new_zeros(16, 3)), anchors,
                            c2ws, device)  # fmt: skip
            write_json(args.out, result)
            continue
        model, anchor_kv = gen, gen.anchor_kv
        if spec.compile:
            entry["compile"] = {"backend": backend, "mode": args.compile_mode if backend == "inductor" else None,
                                "vae": args.compile_vae}  # fmt: skip
            if ("generator", key) not in compiled:
                try:
                    compiled[("generator", key)] = compile_module(gen, args.compile_mode, backend)
                    if spec.causal:
                        compiled[("anchor_kv", key)] = compile_anchor_kv(
                            gen, args.compile_mode, backend
                        )
                except Exception as e:  # reported; the variant is skipped
                    compiled[("generator", key)] = e
            model = compiled[("generator", key)]
            anchor_kv = compiled.get(("anchor_kv", key), gen.anchor_kv)
            if args.compile_vae:
                for part, sub in ((encoder_vae, "encoder"), (decoder, "decoder")):
                    mod = getattr(part, sub)
                    if unwrap(mod) is mod:
                        setattr(part, sub, compile_module(mod, args.compile_mode, backend))
            if isinstance(model, Exception):
                entry["error"] = f"{type(model).__name__}: {model}"[:2000]
                print(name, "compile failed:", entry["error"].splitlines()[0], flush=True)
                continue
        m = Models(model, encoder_vae, decoder, spec.dtype, spec.cache, anchor_kv=anchor_kv)
        entry["steps"] = {}
        with sdpa_context(args.sdpa, device, spec.dtype):
            set_scene(m, ref_rgb, K, ref_c2w, args.seed)
            if spec.compile:
                # compile = first calls (all step counts share the shapes); excluded from fps
                t0 = time.perf_counter()
                try:
                    for s in step_list:
                        run_frame(
                            m, FewStepSampler(schedule, STEPS[s]), anchors[0], K, c2ws[0], NoMarks()
                        )
                    sync(device)
                except Exception as e:  # reported; the variant is skipped
                    entry["error"] = f"{type(e).__name__}: {e}"[:2000]
                    print(name, "compile failed:", entry["error"].splitlines()[0], flush=True)
                    compiled[("generator", key)] = e
                    write_json(args.out, result)
                    continue
                entry["compile_s"] = _r(time.perf_counter() - t0, 1)
                print(f"{name}: compiled in {entry['compile_s']} s", flush=True)
            for s in step_list:
                r = measure(m, s, schedule, anchors, K, c2ws, args.warmup, args.iters, device)
                entry["steps"][str(s)] = r
                c = r["components_ms_median"]
                print(
                    f"{name:27s} steps={s} latency {r['latency_ms']['median']:8.2f} ms "
                    f"(p90 {r['latency_ms']['p90']:.2f})  {r['fps']:7.2f} fps  "
                    f"encode {c['anchor_encode']:.2f} gen {c['generator']:.2f} "
                    f"decode {c['decode']:.2f} ms  peak {r['peak_memory_gb']} GB",
                    flush=True,
                )
            if args.no_check:
                pass
            elif spec.compile:
                entry["max_abs_diff_vs_eager"] = check_against_eager(
                    m, schedule, anchors[0], K, c2ws[0]
                )
            elif not spec.tiny_decoder and not spec.causal:
                entry["max_abs_diff_vs_FramePipeline_render"] = check_against_pipeline(
                    m, schedule, ref_rgb, anchors[0], K, ref_c2w, c2ws[0], args.seed
                )
        write_json(args.out, result)  # partial results survive a later failure

    base = result["variants"].get("baseline", {}).get("steps", {})
    for name, entry in result["variants"].items():
        ratios = {}
        for s, r in entry.get("steps", {}).items():
            if s in base:
                ratios[s] = _r(r["fps"] / base[s]["fps"])
        result["fps_ratio_vs_baseline"][name] = ratios
    result["date_end"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_json(args.out, result)
    print("fps ratio vs baseline:", json.dumps(result["fps_ratio_vs_baseline"]))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
