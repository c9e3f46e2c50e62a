"""Zoom-stack sampling: cross-scale consistency of the sampling modes, and joint-sampling overhead.

Consistency (analytic denoiser, ``models.zoom.toy``: exact ε for a Gaussian prior around each
level's target; N=4, 3×32×32, p=2, 50 DDPM steps, CFG w=2, prior std 0.3), per seed and mode:

    raw_psnr_db     cross-scale PSNR between D_1(x̂_{i+1}) and the centre of x̂_i, of the chains'
                    final clean estimates before blending (mean and min over level pairs)
    render_psnr_db  the same on the output images (Π_image of the stack: inf when consistent)
    seam_ratio      |step| across the layer boundary / mean |step| in the rendered images
    highpass        mean squared 3×3 high-pass of the output images (blur indicator)
    target_psnr_db  PSNR of the output images against the prompts' targets

for two prompt sets: ``consistent`` (one seamless scene at N zooms) and ``disagreeing``
(independent content per level).

Overhead (N=6, 4×64×64 latents, p=2, CFG): a dummy conv denoiser of configurable cost or the
stage-I prior's PixArt (random weights); the joint sampler's time split (synchronised on CUDA)
into ``denoiser``, ``blend_render`` (multi-resolution blending + re-rendering: the joint
sampler's own work), ``noise`` (drawing + rendering the next noise) and ``update`` (DDPM step,
shared with independent sampling); ``overhead_fraction`` = blend_render / denoiser (the issue's
measure), ``overhead_with_noise_fraction`` = (blend_render + noise) / denoiser, and the
end-to-end time of joint vs independent sampling (N independent chains batched into the same
denoiser calls). ``--compile 0,1,2``: eager, ``compile_consolidation=True``, ``"cudagraphs"``.
``isolated_ms_per_call``: the blending + re-rendering and the noise rendering timed on their own
(synchronised per call, back to back, and on CUDA their GPU time and kernel count), which tells
launch cost from GPU work.

    .venv/bin/python benchmarks/zoom_stack.py [--seeds 4 --steps 10 --devices cpu,cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from models.zoom import DDPMSchedule, JointZoomSampler, cross_scale_psnr, seam_ratio  # noqa: E402
from models.zoom.toy import GaussianPriorDenoiser, prior_embeds, toy_targets  # noqa: E402

MODES = [
    ("joint", {}),
    ("independent", {}),
    ("iterative", {}),
    ("naive_average", {}),
    ("joint_independent_noise", {"noise": "independent"}),
]


def _stats(x: torch.Tensor) -> dict:
    x = x.double()
    return {"mean": round(x.mean().item(), 2), "min": round(x.min().item(), 2)}


def consistency(seeds: int, steps: int = 50) -> dict:
    N, C, S, p = 4, 3, 32, 2
    sched = DDPMSchedule.make("linear")
    den = GaussianPriorDenoiser(sched)
    uncond = prior_embeds(torch.zeros(1, C, S, S), 1.0)
    rows: dict = {}
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        sets = {
            "consistent": toy_targets(N, C, S, p, generator=g),
            "disagreeing": torch.cat([toy_targets(1, C, S, p, generator=g) for _ in range(N)]),
        }
        for prompts, targets in sets.items():
            for name, kw in MODES:
                mode = name.replace("_independent_noise", "")
                sampler = JointZoomSampler(den, sched, N, p, mode=mode, num_steps=steps,
                                           guidance_scale=2.0, **kw)  # fmt: skip
                gen = torch.Generator().manual_seed(1000 + seed)
                out = sampler.sample(prior_embeds(targets, 0.3), (C, S, S), uncond, generator=gen)
                hp = out.images - nn.functional.avg_pool2d(
                    out.images, 3, 1, 1, count_include_pad=False
                )
                mse = (out.images - targets).square().mean()
                rows.setdefault(prompts, {}).setdefault(name, []).append(
                    {
                        "seed": seed,
                        "raw_psnr_db": _stats(cross_scale_psnr(out.samples, p)),
                        "render_psnr_db": _stats(cross_scale_psnr(out.images, p)),
                        "seam_ratio": round(seam_ratio(out.images, p)[:-1].mean().item(), 3),
                        "highpass": round(hp.square().mean().item(), 5),
                        "target_psnr_db": round((10 * torch.log10(4 / mse)).item(), 2),
                    }
                )
    summary = {
        prompts: {
            mode: {
                "raw_psnr_db_min": min(r["raw_psnr_db"]["min"] for r in runs),
                "raw_psnr_db_mean": round(
                    sum(r["raw_psnr_db"]["mean"] for r in runs) / len(runs), 2
                ),
                "seam_ratio_mean": round(sum(r["seam_ratio"] for r in runs) / len(runs), 3),
                "highpass_mean": round(sum(r["highpass"] for r in runs) / len(runs), 5),
                "target_psnr_db_mean": round(sum(r["target_psnr_db"] for r in runs) / len(runs), 2),
            }
            for mode, runs in by_mode.items()
        }
        for prompts, by_mode in rows.items()
    }
    setup = {"levels": N, "shape": [C, S, S], "p": p, "steps": steps, "guidance_scale": 2.0,
             "prior_std": 0.3, "seeds": seeds}  # fmt: skip
    return {"setup": setup, "summary": summary, "runs": rows}


class ConvDenoiser(nn.Module):
    """Dummy ε-model of tunable cost: ``depth`` 3×3 convs of ``width`` channels; the prompt
    embedding's mean is added as a bias so the conditioning path exists."""

    def __init__(self, channels: int, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1)]
        for _ in range(depth - 2):
            layers += [nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z, t, embeds):
        bias = embeds.flatten(1).mean(1).view(-1, 1, 1, 1)
        return self.net(z + bias) * 0.1


def pixart_denoiser(size: str, dev: torch.device):
    """The stage-I prior's PixArt transformer of ``size`` (random weights, bf16 on CUDA) behind the
    zoom sampler's denoiser API, and a text-embedding stand-in ``[1, 120, D]``."""
    from models.frame.image_prior import build_pixart
    from models.zoom.denoisers import DiffusersDenoiser

    torch.manual_seed(0)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    with torch.device(dev):
        model = build_pixart(size).to(dtype).eval().requires_grad_(False)
    dim = model.config.cross_attention_dim
    return DiffusersDenoiser(model), model.config.caption_channels or dim


def isolated_consolidation(sampler: JointZoomSampler, shape, dev: torch.device, calls: int = 50):
    """The sampler's blending + re-rendering and noise rendering on their own (``[N, C, H, W]``
    inputs), per call: ``synced_ms`` (median of synchronise → call → synchronise, what the
    sampler's profile sees), ``pipelined_ms`` (``calls`` calls back to back / calls: the launch
    rate), ``device_ms`` and ``kernels`` (torch.profiler: GPU time and kernel launches)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    x = torch.randn(*shape, device=dev)
    out = {}
    for name, fn in (("blend_render", sampler.consolidate), ("noise", sampler.render_noise)):
        for _ in range(3):
            fn(x)
        synced = []
        for _ in range(calls):
            sync()
            t0 = time.perf_counter()
            fn(x)
            sync()
            synced.append(time.perf_counter() - t0)
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(x)
        sync()
        pipelined = (time.perf_counter() - t0) / calls
        row = {"synced_ms": round(1e3 * sorted(synced)[calls // 2], 4),
               "pipelined_ms": round(1e3 * pipelined, 4)}  # fmt: skip
        if cuda:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(10):
                    fn(x)
                sync()
            kernels = [e for e in prof.key_averages() if e.self_device_time_total > 0]
            row["device_ms"] = round(sum(e.self_device_time_total for e in kernels) / 1e4, 4)
            row["kernels"] = sum(e.count for e in kernels) / 10
        out[name] = row
    return out


def overhead(
    device: str,
    width: int,
    depth: int,
    steps: int,
    repeats: int,
    pixart: str | None = None,
    compile_consolidation: bool | str = False,
) -> dict:
    N, C, S, p = 6, 4, 64, 2
    dev = torch.device(device)
    if pixart:
        model, text_dim = pixart_denoiser(pixart, dev)
        cond = torch.randn(N, 120, text_dim, device=dev)
        uncond = torch.zeros(1, 120, text_dim, device=dev)
    else:
        model = ConvDenoiser(C, width, depth).to(dev).eval()
        cond, uncond = torch.randn(N, 8, 32, device=dev), torch.zeros(1, 8, 32, device=dev)
    sched = DDPMSchedule.make("linear")
    best: dict = {}
    samplers = {
        mode: JointZoomSampler(model, sched, N, p, mode=mode, num_steps=steps, guidance_scale=5.0,
                               compile_consolidation=compile_consolidation and mode == "joint")
        for mode in ("joint", "independent")
    }  # fmt: skip
    if compile_consolidation:  # compile outside the timing
        samplers["joint"].sample(cond, (C, S, S), uncond, generator=torch.Generator(device=dev))
    for _ in range(repeats):  # best of repeats; modes take turns within a repeat
        for mode in ("joint", "independent"):
            sampler = samplers[mode]
            g = torch.Generator(device=dev).manual_seed(0)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = sampler.sample(cond, (C, S, S), uncond, generator=g, profile=mode == "joint")
            if dev.type == "cuda":
                torch.cuda.synchronize()
            total = time.perf_counter() - t0
            if mode == "independent":
                best["independent_s"] = min(best.get("independent_s", 1e9), total)
            else:
                if total < best.get("joint_s", 1e9):
                    best["joint_s"], best["timings"] = total, out.timings
    tm = best["timings"]
    isolated = isolated_consolidation(samplers["joint"], (N, C, S, S), dev)
    return {
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "levels": N,
        "latent": [C, S, S],
        "steps": steps,
        "denoiser": {"pixart": pixart, "batch": 2 * N}
        if pixart
        else {"width": width, "depth": depth, "batch": 2 * N},
        "compile_consolidation": compile_consolidation,
        "ms_per_step": {k: round(1e3 * v / steps, 3) for k, v in tm.items()},
        "overhead_fraction": round(tm["blend_render"] / tm["denoiser"], 4),
        "overhead_with_noise_fraction": round(
            (tm["blend_render"] + tm["noise"]) / tm["denoiser"], 4
        ),
        "consolidate_fraction": round((sum(tm.values()) - tm["denoiser"]) / tm["denoiser"], 4),
        "joint_s": round(best["joint_s"], 4),
        "independent_s": round(best["independent_s"], 4),
        "joint_over_independent": round(best["joint_s"] / best["independent_s"], 4),
        "isolated_ms_per_call": isolated,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10, help="sampling steps of the overhead runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--devices", default="cpu,cuda")
    ap.add_argument(
        "--sizes",
        default="64x4,128x8",
        help="denoisers: dummy conv WIDTHxDEPTH and/or pixart-SIZE (the stage-I prior, random "
        "weights), e.g. 64x4,pixart-paper",
    )
    ap.add_argument(
        "--compile",
        default="0",
        help="consolidation: 0 eager, 1 compiled, 2 compiled + CUDA graphs; a list compares them",
    )
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (shared machine: 1)")
    ap.add_argument("--skip-consistency", action="store_true")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/zoom_consistency.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    result["env"] = {"torch": torch.__version__, "python": platform.python_version(),
                     "threads": args.threads}  # fmt: skip
    if not args.skip_consistency:
        result["consistency"] = consistency(args.seeds)
        print(json.dumps(result["consistency"]["summary"], indent=1))
    runs = result.setdefault("overhead", {})
    for device in args.devices.split(","):
        if device == "cuda" and not torch.cuda.is_available():
            continue
        for size in args.sizes.split(","):
            for flag in args.compile.split(","):
                compiled = {"0": False, "1": True, "2": "cudagraphs"}[flag]
                tag = {"0": "", "1": "_compiled", "2": "_cudagraphs"}[flag]
                if size.startswith("pixart-"):
                    name = size.split("-", 1)[1]
                    row = overhead(device, 0, 0, args.steps, args.repeats, name, compiled)
                    runs[f"{device}_pixart_{name}{tag}"] = row
                else:
                    width, depth = (int(v) for v in size.split("x"))
                    row = overhead(device, width, depth, args.steps, args.repeats, None, compiled)
                    runs[f"{device}_w{width}_d{depth}{tag}"] = row
                print(json.dumps(row), flush=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
