"""Where the frame model's time goes: a torch.profiler breakdown by operator, for training and
for the few-step generator.

Workloads (random weights, ``--size`` of the PixArt-Σ family; ``paper`` = XL/2, 28 × 1152):

    train      one stage-II training step of ``benchmarks/scaling.py``'s workload: ε-MSE at
               random t on three 64 × 64 latents (3072 tokens), ``--batch`` samples, bf16
               autocast over fp32 weights, forward + backward (no optimizer step), per-block
               activation checkpointing unless ``--no-checkpointing``
    generate   the causal layout's per-frame generator work at batch 1 in bf16: the anchor's
               keys/values (``anchor_kv``) + one target step against the cached reference

Eager by default: the point is to attribute time to operators (PRoPE's ``einsum`` and ``cat``,
the linears, attention, layer norms, dtype copies), which compiled graphs fuse away.
``--compile`` profiles what is left after inductor (every block compiled for ``train``; the
generator's forward and ``anchor_kv`` for ``generate``; no CUDA graphs, so that kernels show):
the fused Triton kernels then appear under ``kernels``. Reported per
workload: wall time per iteration, and per operator the device time per iteration (``self``:
its own kernels; ``total``: with its children, e.g. ``aten::einsum`` → its ``bmm`` and copies),
with the share of the iteration's device time; the top kernels on CUDA. Backward kernels count
under their own operators (``aten::bmm``, ``aten::mm``, the attention backward), so the
inclusive "watched" times of ``einsum`` / ``cat`` cover the forward only. On CPU (``--device cpu``,
a smoke run) "device time" is CPU time.

    python3 benchmarks/frame_profile.py                                  # GPU, paper size
    python3 benchmarks/frame_profile.py --workloads train --batch 4 --no-checkpointing
    .venv/bin/python benchmarks/frame_profile.py --size tiny --device cpu --iters 1 --out /tmp/fp.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from datagen.atomic import atomic_write_json  # noqa: E402
from models.frame import ConditionCache, FrameCondition  # noqa: E402

WATCHED = {  # operators whose inclusive time answers a question
    "prope_projective": ("aten::einsum",),
    "concat": ("aten::cat",),
    "attention": (
        "aten::_scaled_dot_product_flash_attention",
        "aten::_scaled_dot_product_efficient_attention",
        "aten::_scaled_dot_product_cudnn_attention",
        "aten::_scaled_dot_product_flash_attention_backward",
        "aten::_scaled_dot_product_efficient_attention_backward",
        "aten::_scaled_dot_product_cudnn_attention_backward",
        "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
    ),
    "linear": ("aten::addmm", "aten::mm"),
    "layer_norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "dtype_copies": ("aten::_to_copy",),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(size: str, device: torch.device, batch: int, checkpointing: bool, compiled: bool):
    """A closure running one stage-II forward + backward (``scaling.Workload``)."""
    from scaling import Workload

    work = Workload("frame_stage2", size, device, batch, checkpointing)
    if compiled:
        work.compile_blocks()
    model = work.model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        work.loss(model).backward()

    return step


def generate_step(size: str, device: torch.device, compiled: bool):
    """A closure running the causal generator's per-frame work (anchor pass + one step)."""
    from frame_model import build_generator, compile_anchor_kv, compile_module

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    gen = build_generator(size, device, dtype, seed=0, causal=True)
    c = gen.config
    hw = c.sample_size
    px = hw * c.vae_scale_factor
    g = torch.Generator().manual_seed(1)

    def latent():
        return torch.randn(1, c.in_channels, hw, hw, generator=g).to(device, dtype)

    K = torch.tensor([[0.9 * px, 0, px / 2], [0, 0.9 * px, px / 2], [0, 0, 1]], device=device)
    c2w = torch.eye(4, device=device)
    moved = c2w.clone()
    moved[0, 3] = 0.2
    cond = FrameCondition(latent(), latent(), K[None], moved[None], K[None], c2w[None])
    with torch.no_grad():
        reference = gen.reference_kv(cond)
    x, t = latent(), torch.tensor([999], device=device)
    backend = "inductor" if device.type == "cuda" else "eager"
    forward = compile_module(gen, "default", backend) if compiled else gen
    anchor_kv = compile_anchor_kv(gen, "default", backend) if compiled else gen.anchor_kv

    @torch.no_grad()
    def step() -> None:
        cache = ConditionCache(reference, anchor_kv(cond, reference))
        forward(x, t, cond, cache=cache)

    return step


def breakdown(prof, iters: int, cuda: bool, top: int) -> dict:
    """Per-operator device time per iteration (self and inclusive), watched groups, kernels."""
    events = prof.key_averages()

    def self_t(e) -> float:
        return (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1e3 / iters

    def total_t(e) -> float:
        return (e.device_time_total if cuda else e.cpu_time_total) / 1e3 / iters

    ops = [e for e in events if e.key.startswith("aten::")]
    total = sum(self_t(e) for e in events if not cuda or e.key.startswith("aten::"))
    if cuda:  # all kernel time, whether or not an aten op launched it
        total = sum(e.self_device_time_total for e in events if _is_kernel(e)) / 1e3 / iters
    rows = sorted(ops, key=self_t, reverse=True)[:top]
    out = {
        "device_ms_per_iter": round(total, 3),
        "by_operator": [
            {
                "op": e.key,
                "calls_per_iter": round(e.count / iters, 1),
                "self_ms": round(self_t(e), 3),
                "total_ms": round(total_t(e), 3),
                "self_share": round(self_t(e) / total, 4) if total else None,
            }
            for e in rows
        ],
        "watched_inclusive_ms": {
            name: round(sum(total_t(e) for e in ops if e.key in keys), 3)
            for name, keys in WATCHED.items()
        },
    }
    if cuda:
        kernels = sorted((e for e in events if _is_kernel(e)), key=self_t, reverse=True)[:top]
        out["kernels"] = [
            {"kernel": e.key[:160], "ms": round(self_t(e), 3), "calls_per_iter": e.count / iters}
            for e in kernels
        ]
    return out


def _is_kernel(event) -> bool:
    return str(getattr(event, "device_type", "")).endswith("CUDA") and not event.key.startswith(
        "aten::"
    )


def run(name: str, step, device: torch.device, warmup: int, iters: int, top: int) -> dict:
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    wall = (time.perf_counter() - t0) / iters
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(iters):
            step()
        _sync(device)
    result = {"wall_ms_per_iter": round(1e3 * wall, 3), **breakdown(prof, iters, cuda, top)}
    print(f"{name}: {result['wall_ms_per_iter']} ms/iter; watched (inclusive ms/iter):")
    print(json.dumps(result["watched_inclusive_ms"]), flush=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workloads", default="train,generate")
    ap.add_argument("--batch", type=int, default=8, help="training batch (paper: 8 per GPU)")
    ap.add_argument("--no-checkpointing", action="store_true")
    ap.add_argument(
        "--compile", action="store_true", help="profile torch.compile'd code (no CUDA graphs)"
    )
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/frame_profile.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("no CUDA device: pass --device cpu (with --size tiny)")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(workloads) - {"train", "generate"}
    if unknown:
        ap.error(f"unknown workloads {sorted(unknown)}: choose from train, generate")
    result: dict = {
        "size": args.size,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "batch": args.batch,
        "activation_checkpointing": not args.no_checkpointing,
        "compiled": args.compile,
        "iters": args.iters,
        "workloads": {},
    }
    for name in workloads:
        if name == "train":
            step = train_step(
                args.size, device, args.batch, not args.no_checkpointing, args.compile
            )
        else:
            step = generate_step(args.size, device, args.compile)
        result["workloads"][name] = run(name, step, device, args.warmup, args.iters, args.top)
        atomic_write_json(args.out, result)  # each workload's result kept as it finishes
        del step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
