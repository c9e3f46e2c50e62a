"""Per-call generator latency of the frame model's two attention layouts (GPU, batch 1).

    full    one forward over [target │ anchor │ reference] (3 × n tokens), the paper's layout
    causal  reference pass (per scene), anchor pass (per frame), target step (per denoising step)
            with the cached keys/values (``models/frame/causal.py``)

For each: eager bf16 and ``torch.compile`` bf16 (inductor, ``--compile-mode``), median of
``--iters`` CUDA-event-timed calls after warm-up. Derived: generator ms per frame at 1 and 2 steps
(full: steps × forward; causal: anchor pass + steps × target step). Random weights (speed only).

    python3 benchmarks/frame_layouts.py --device cuda --out benchmarks/results/frame_layouts.json
    .venv/bin/python benchmarks/frame_layouts.py --size tiny --device cpu --iters 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.frame_model import CudaGraphStep, compile_anchor_kv  # noqa: E402
from models.frame import (  # noqa: E402
    ConditionCache,
    FrameCondition,
    FrameDiT,
    frame_config_from_pixart,
    pixart_config,
)
from models.geometry import K_from_fov  # noqa: E402


def timed(fn, iters: int, warmup: int, device: torch.device) -> float:
    """Median ms of ``fn()``."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            out.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
    return round(float(np.median(out)), 3)


def build(size: str, layout: str, device, dtype) -> FrameDiT:
    torch.manual_seed(0)
    cfg = frame_config_from_pixart(pixart_config(size), condition_attention=layout)
    with torch.device(device):
        return FrameDiT(**cfg).to(dtype).eval().requires_grad_(False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile-mode", default="default")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/frame_layouts.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    res = {"size": args.size, "device": str(device), "dtype": str(dtype), "layouts": {}}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
    S = pixart_config(args.size)["sample_size"]
    K = K_from_fov(60.0, 8 * S, 8 * S).to(device)[None]
    c2w_t = torch.eye(4, device=device)[None]
    c2w_r = c2w_t.clone()
    c2w_r[0, 0, 3] = 0.3
    g = torch.Generator().manual_seed(0)
    lat = [torch.randn(1, 4, S, S, generator=g).to(device, dtype) for _ in range(3)]
    cond = FrameCondition(lat[0], lat[1], K, c2w_t, K, c2w_r)
    t = torch.tensor([999], device=device)
    x = lat[2]
    with torch.no_grad():
        for layout in ("full", "causal"):
            gen = build(args.size, layout, device, dtype)
            entry: dict = {}
            modes = ["eager"] + ([] if args.no_compile else ["compile"])
            for mode in modes:
                if mode == "compile":
                    t0 = time.perf_counter()
                    fwd = torch.compile(gen, mode=args.compile_mode)
                    anchor_kv = compile_anchor_kv(gen, args.compile_mode, "inductor")
                    if args.compile_mode == "reduce-overhead":
                        fwd = CudaGraphStep(fwd)
                else:
                    fwd, anchor_kv = gen, gen.anchor_kv
                r: dict = {}
                if layout == "full":
                    tokens = gen.embed_reference(cond)
                    r["forward"] = timed(
                        lambda f=fwd, tk=tokens: f(x, t, cond, reference_tokens=tk),
                        args.iters, args.warmup, device,
                    )  # fmt: skip
                    r["frame_1step"] = r["forward"]
                    r["frame_2step"] = 2 * r["forward"]
                else:
                    r["reference_pass"] = timed(
                        lambda g=gen: g.reference_kv(cond), args.iters, args.warmup, device
                    )
                    ref = gen.reference_kv(cond)
                    r["anchor_pass"] = timed(
                        lambda a=anchor_kv, kv=ref: a(cond, kv), args.iters, args.warmup, device
                    )
                    cache = ConditionCache(ref, gen.anchor_kv(cond, ref))
                    r["target_step"] = timed(
                        lambda f=fwd, c=cache: f(x, t, cond, cache=c),
                        args.iters,
                        args.warmup,
                        device,
                    )
                    r["frame_1step"] = round(r["anchor_pass"] + r["target_step"], 3)
                    r["frame_2step"] = round(r["anchor_pass"] + 2 * r["target_step"], 3)
                if mode == "compile":
                    r["compile_and_timing_s"] = round(time.perf_counter() - t0, 1)
                entry[mode] = r
                print(layout, mode, json.dumps(r), flush=True)
            res["layouts"][layout] = entry
            del gen
            if device.type == "cuda":
                torch.cuda.empty_cache()
    ratios = {}
    for mode in res["layouts"]["full"]:
        f, c = res["layouts"]["full"][mode], res["layouts"]["causal"][mode]
        ratios[mode] = {s: round(f[f"frame_{s}"] / c[f"frame_{s}"], 3) for s in ("1step", "2step")}
    res["speedup_causal_vs_full"] = ratios
    print("speed-up causal vs full (generator ms per frame):", json.dumps(ratios))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
