"""Data-parallel scaling of the sharded training step on the GPUs of one node.

Per model and per world size n (1, 2, 4, 8 — the GPUs of the node, ``--gpus``): n processes
(``torch.multiprocessing`` spawn, NCCL; ``--quick``: gloo on CPU), each its own rank; the model
is wrapped in FSDP1 (FULL_SHARD) with the sharding plan of ``training/sharding.py`` (one unit per
transformer block), bf16 mixed precision on CUDA (``BF16_MIXED``: fp32 sharded master weights,
bf16 compute, fp32 gradient reduction), per-block activation checkpointing as in the paper configs,
AdamW over the trainable parameters, ``--warmup`` untimed then ``--iters`` timed steps.

Models (random weights; speed and memory only), the per-GPU batch of each paper config:

    video_model   CameraVideoModule "paper": CogVideoX-5B-I2V-size frozen base + dual-branch camera
                  control (21 ControlNet blocks, LoRA 256); latents 13x60x90x16 given (no VAE
                  encode), text embeddings given (no T5); loss = module.diffusion_loss. 3/GPU.
    lalrm         the LaLRM network "paper" (24 x 1024, latent patch 2, deconv (4, 16, 16)) on
                  latents 13x32x48x16 + 49 Plücker frames 256x384; loss = mean square of the raw
                  Gaussian map: the Gaussian rendering and perceptual loss of the real objective are
                  left out (per-sample work with no communication). 3/GPU.
    frame_stage2  FrameDiT of PixArt-Σ XL/2 size (28 x 1152, PRoPE) at 512² (three 64x64 latents:
                  3072 tokens); loss = ε MSE at random t. 8/GPU.

Reported per (model, n): median step time, samples/s = n · batch / step, peak memory per GPU
(max over ranks of ``max_memory_allocated`` after wrapping), model FLOPs utilisation
``MFU = model FLOPs per step / step time / peak bf16 FLOPS`` (per GPU), and scaling efficiency
``throughput(n) / (n / n0 · throughput(n0))`` against the smallest n0 that fits (n0 = 1 unless
the model does not fit one GPU). Model FLOPs per sample: one forward counted with
``torch.utils.flop_counter.FlopCounterMode`` (sharded model, no grad), times ``2 + f`` with ``f`` the
trainable share of the parameters (backward = activation gradients everywhere + weight gradients
of the trainable weights; f = 1 gives the usual 3x forward); recomputation by activation
checkpointing is not counted (it is hardware, not model, FLOPs). Peak bf16 dense TFLOPS per GPU:
``PEAK_TFLOPS`` by GPU name.

    .venv/bin/python benchmarks/scaling.py                          # all models, n = 1, 2, 4, 8
    .venv/bin/python benchmarks/scaling.py --models frame_stage2 --gpus 1,2,4
    .venv/bin/python benchmarks/scaling.py --models lalrm,frame_stage2 --strategy ddp
    .venv/bin/python benchmarks/scaling.py --quick                  # CPU, tiny models, n = 1, 2
    .venv/bin/python benchmarks/scaling.py --models frame_stage2 --gpus 1 --compile-blocks --no-checkpointing

``--compile-blocks`` compiles every block (FSDP unit) with ``torch.compile`` before wrapping;
``--no-checkpointing`` turns per-block activation checkpointing off (more memory, no recompute).

``--strategy fsdp2`` shards with FSDP2 (``training.sharding.fully_shard_blocks``: the same units,
bf16 compute, fp32 reduction) and keeps the video model's frozen base as bf16 shards, which FSDP1
cannot (one dtype per unit). ``--strategy ddp`` measures the paper configs' replicated alternative (DDP, bf16 autocast) for
the models small enough to replicate (LaLRM, frame model). Every rank steps on the same random
batch (speed only). Results: ``benchmarks/results/scaling_<gpu>[_ddp|_fsdp2][_compiled][_nockpt].json``
(``scaling_quick*.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import Tensor, nn
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from datagen.atomic import atomic_write_json as write_json  # noqa: E402
from models.frame import FrameCondition, FrameDiT  # noqa: E402
from models.lalrm import LaLRM, lalrm_config  # noqa: E402
from training import sharding  # noqa: E402

GIB = 2**30
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16 per GPU (SXM)
MODELS = ("video_model", "lalrm", "frame_stage2")
PER_GPU_BATCH = {"video_model": 3, "lalrm": 3, "frame_stage2": 8}
TINY_DIT = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 16, "sample_size": 4}


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def peak_tflops(gpu_name: str) -> float | None:
    """Dense bf16 TFLOPS of one GPU from its CUDA name (None: unknown, no MFU)."""
    for key, value in PEAK_TFLOPS.items():
        if key in gpu_name.upper():
            return value
    return None


# ---- workloads: (model, block classes, loss(model, batch), batch) -----------------------------


class Workload:
    """A model to shard, its FSDP unit classes, a per-rank batch and the loss of one step."""

    def __init__(
        self,
        name: str,
        size: str,
        device: torch.device,
        batch: int,
        checkpointing: bool = True,
        frozen_bf16: bool = False,
    ):
        self.name, self.size, self.device, self.batch = name, size, device, batch
        self.frozen_bf16 = frozen_bf16
        self.checkpointing = checkpointing and size != "tiny"
        torch.manual_seed(0)
        with torch.device(device):
            getattr(self, f"_build_{name}")()

    def compile_blocks(self) -> int:
        """``torch.compile`` every FSDP unit block in place (before wrapping); returns how many."""
        blocks = sharding.block_units(self.model, self.blocks)
        for block in blocks:
            block.compile()
        return len(blocks)

    def _build_video_model(self) -> None:
        import video_model as bench  # benchmarks/video_model.py

        from training.modules.video_model import CameraVideoModule

        kwargs = bench.module_kwargs(self.size, self.device)
        # FSDP1 units need one dtype (fp32 shards, bf16 compute); FSDP2 keeps frozen bf16 shards
        kwargs["frozen_dtype"] = "bfloat16" if self.frozen_bf16 else None
        kwargs["gradient_checkpointing"] = self.checkpointing
        module = CameraVideoModule(**kwargs)
        module.forward = module.diffusion_loss  # the FSDP root's forward
        self.model, self.blocks = module, sharding.VIDEO_BLOCKS
        with torch.device("cpu"):  # the batch is drawn from CPU generators, then moved
            self.inputs = bench.make_batch(module, self.batch, False, self.device)

    def _build_lalrm(self) -> None:
        tiny = self.size == "tiny"
        cfg = lalrm_config(self.size, gradient_checkpointing=self.checkpointing)
        self.model, self.blocks = LaLRM(cfg), sharding.LALRM_BLOCKS
        T, h, w = (2, 4, 4) if tiny else (13, 32, 48)
        g = torch.Generator(self.device).manual_seed(1)
        B, F = self.batch, cfg.temporal_compression * (T - 1) + 1
        s = cfg.spatial_compression
        latents = torch.randn(B, cfg.latent_channels, T, h, w, generator=g, device=self.device)
        plucker = torch.randn(B, F, 6, s * h, s * w, generator=g, device=self.device)
        self.inputs = (latents, plucker)

    def _build_frame_stage2(self) -> None:
        if self.size == "tiny":
            dit = FrameDiT(**TINY_DIT)
        else:
            import frame_model as bench  # benchmarks/frame_model.py

            dit = FrameDiT(**bench.generator_config(self.size))
            if self.checkpointing:
                dit.enable_gradient_checkpointing()
        self.model, self.blocks = dit, sharding.FRAME_BLOCKS
        c = dit.config
        hw, B, dev = c.sample_size, self.batch, self.device
        px = hw * c.vae_scale_factor
        K = torch.tensor([[0.9 * px, 0, px / 2], [0, 0.9 * px, px / 2], [0, 0, 1]], device=dev)
        c2w = torch.eye(4, device=dev).repeat(B, 1, 1)
        c2w[:, 0, 3] = torch.linspace(0.1, 0.4, B, device=dev)
        g = torch.Generator(dev).manual_seed(1)
        latent = lambda: torch.randn(B, c.in_channels, hw, hw, generator=g, device=dev)  # noqa: E731
        cond = FrameCondition(
            anchor=latent(),
            reference=latent(),
            target_K=K.expand(B, 3, 3).clone(),
            target_c2w=c2w,
            reference_K=K.expand(B, 3, 3).clone(),
            reference_c2w=torch.eye(4, device=dev).repeat(B, 1, 1),
        )
        t = torch.randint(0, 1000, (B,), generator=g, device=dev)
        self.inputs = (latent(), t, cond, latent())

    def loss(self, model: nn.Module) -> Tensor:
        """Loss of the per-rank batch; under bf16 autocast on CUDA (what Lightning's bf16-mixed
        runs the step in, FSDP or DDP)."""
        cuda = self.device.type == "cuda"
        with torch.autocast(self.device.type, torch.bfloat16, enabled=cuda):
            return self._loss(model)

    def _loss(self, model: nn.Module) -> Tensor:
        if self.name == "video_model":
            return model(self.inputs)
        if self.name == "lalrm":
            return model(*self.inputs).float().pow(2).mean()
        x, t, cond, noise = self.inputs
        return (model(x, t, cond).float() - noise.float()).pow(2).mean()

    def trainable_fraction(self) -> float:
        """Trainable share of the parameters on the token path (video: base + camera branches,
        not the unused VAE)."""
        net = self.model.model if self.name == "video_model" else self.model
        params = list(net.parameters())
        total = sum(p.numel() for p in params)
        return sum(p.numel() for p in params if p.requires_grad) / total

    def parameters(self) -> dict:
        params = list(self.model.parameters())
        return {
            "total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad),
        }


def forward_flops(work: Workload, model: nn.Module) -> int:
    """FLOPs of one forward of the per-rank batch through ``model`` (no grad: no recompute)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        work.loss(model)
    return int(counter.get_total_flops())


# ---- one world size ---------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error)


def _rank_main(rank: int, world: int, port: int, job: dict, out: str) -> None:
    """One rank: build, shard, time steps; rank 0 writes its result JSON to ``out``."""
    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    torch.set_num_threads(job["threads"])
    cuda = job["device"] == "cuda"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    result: dict = {"n": world, "batch_per_gpu": job["batch"]}
    try:
        fsdp2 = job["strategy"] == "fsdp2"
        work = Workload(
            job["model"], job["size"], device, job["batch"], job["checkpointing"], fsdp2 and cuda
        )
        result["activation_checkpointing"] = work.checkpointing
        if job["compile_blocks"]:
            result["compiled_blocks"] = work.compile_blocks()
        result["parameters"] = work.parameters()
        result["trainable_fraction"] = _r(work.trainable_fraction(), 4)
        if job["strategy"] == "fsdp":
            model = FSDP(
                work.model,
                auto_wrap_policy=sharding.block_wrap_policy(work.blocks),
                mixed_precision=sharding.BF16_MIXED if cuda else None,
                use_orig_params=True,
                device_id=device,
                limit_all_gathers=True,
            )
        elif fsdp2:  # fully_shard per block + root; frozen weights stay bf16 shards
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import MixedPrecisionPolicy

            mesh = init_device_mesh(device.type, (world,))
            mp = MixedPrecisionPolicy(torch.bfloat16, torch.float32) if cuda else None
            model = sharding.fully_shard_blocks(work.model, work.blocks, mesh, mp)
        else:  # ddp: replicated fp32 weights, bf16 autocast (the paper configs' `strategy: ddp`)
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(work.model, device_ids=[device.index] if cuda else None)
        result["forward_flops"] = forward_flops(work, model)  # per rank, sharded forward
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=1e-5, betas=(0.9, 0.95), weight_decay=0.01)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        times, losses = [], []
        for i in range(job["warmup"] + job["iters"]):
            dist.barrier()
            _sync(device)
            start = time.perf_counter()
            loss = work.loss(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip = getattr(model, "clip_grad_norm_", None)  # FSDP: over all shards
            clip(1.0) if clip else torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            _sync(device)
            if i >= job["warmup"]:
                times.append(time.perf_counter() - start)
            losses.append(_r(loss.detach().float().item(), 5))
        step = torch.tensor([statistics.median(times)], dtype=torch.float64, device=device)
        dist.all_reduce(step, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
        result.update(fits=True, step_s=_r(step.item(), 4), losses=losses)
        result["steps_s_rank0"] = [_r(t, 4) for t in times]
        if cuda:
            peak = torch.tensor([torch.cuda.max_memory_allocated(device) / GIB], device=device)
            dist.all_reduce(peak, op=dist.ReduceOp.MAX)
            result["peak_memory_gib"] = _r(peak.item(), 2)
    except RuntimeError as error:
        if not _is_oom(error):
            raise
        result.update(fits=False, error=f"out of memory on rank {rank}: {str(error)[:200]}")
    if rank == 0:
        write_json(Path(out), result)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(job: dict, world: int) -> dict:
    """Spawn ``world`` ranks for ``job``; rank 0's result (or the failure)."""
    with tempfile.TemporaryDirectory(prefix="wonderforge-scaling-") as tmp:
        out = Path(tmp) / "rank0.json"
        try:
            mp.spawn(_rank_main, args=(world, _free_port(), job, str(out)), nprocs=world)
        except Exception as error:  # a crashed rank: record it, go on with the next run
            message = f"{type(error).__name__}: {error}"
            return {"n": world, "fits": False, "error": message[:300] + " ... " + message[-1700:]}
        return json.loads(out.read_text())


def summarise(runs: list[dict], peak: float | None) -> list[dict]:
    """Add samples/s, MFU and scaling efficiency (vs the smallest n that fits)."""
    flops = next((r["forward_flops"] for r in runs if "forward_flops" in r), None)
    frac = next((r["trainable_fraction"] for r in runs if "trainable_fraction" in r), 1.0)
    base = next((r for r in runs if r.get("fits")), None)
    for r in runs:
        if not r.get("fits"):
            continue
        r["samples_per_s"] = _r(r["n"] * r["batch_per_gpu"] / r["step_s"], 3)
        if flops is not None:
            model_flops = flops * (2.0 + frac)  # per rank and step
            r["model_tflops_per_gpu_step"] = _r(model_flops / 1e12, 6)
            achieved = model_flops / r["step_s"] / 1e12
            r["achieved_tflops_per_gpu"] = _r(achieved, 6)
            if peak:
                r["mfu"] = _r(achieved / peak, 4)
        base_thr = base["samples_per_s"] / base["n"]
        r["baseline_n"] = base["n"]
        r["scaling_efficiency"] = _r(r["samples_per_s"] / (r["n"] * base_thr), 4)
    return runs


def machine(cuda: bool) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__}
    if cuda:
        info.update(
            gpu=torch.cuda.get_device_name(0),
            gpus=torch.cuda.device_count(),
            gpu_memory_gib=_r(torch.cuda.get_device_properties(0).total_memory / GIB, 1),
            cuda=torch.version.cuda,
        )
    else:
        info["cpu_threads_per_rank"] = 1
    return info


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma list of {MODELS}")
    ap.add_argument("--gpus", default=None, help="world sizes, e.g. 1,2,4,8 (default: powers of 2)")
    ap.add_argument("--size", default="paper", help="model size: paper | small | tiny")
    ap.add_argument("--batch", type=int, default=None, help="per-GPU batch (default: the config's)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--strategy", choices=("fsdp", "fsdp2", "ddp"), default="fsdp")
    ap.add_argument("--quick", action="store_true", help="CPU, gloo, tiny models, n = 1, 2")
    ap.add_argument(
        "--compile-blocks", action="store_true", help="torch.compile each block (FSDP unit)"
    )
    ap.add_argument(
        "--no-checkpointing", action="store_true", help="no per-block activation checkpointing"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        ap.error(f"unknown models {unknown}; choose from {MODELS}")
    cuda = not args.quick
    if cuda and not torch.cuda.is_available():
        ap.error("no CUDA device: use --quick for the CPU check")
    if args.quick:
        size, warmup, iters, default_worlds = "tiny", 1, 2, [1, 2]
    else:
        size, warmup, iters = args.size, args.warmup, args.iters
        count = torch.cuda.device_count()
        default_worlds = [n for n in (1, 2, 4, 8) if n <= count]
    worlds = [int(n) for n in args.gpus.split(",")] if args.gpus else default_worlds
    if cuda and max(worlds) > torch.cuda.device_count():
        ap.error(f"--gpus {worlds} exceeds the {torch.cuda.device_count()} visible GPUs")
    info = machine(cuda)
    gpu_name = info.get("gpu", "cpu")
    peak = peak_tflops(gpu_name) if cuda else None
    tag = "quick" if args.quick else gpu_name.split()[-1].lower().replace("/", "-")
    suffix = "" if args.strategy == "fsdp" else f"_{args.strategy}"
    suffix += "_compiled" if args.compile_blocks else ""
    suffix += "_nockpt" if args.no_checkpointing else ""
    out = args.out or REPO / "benchmarks/results" / f"scaling_{tag}{suffix}.json"
    result = {
        "machine": info,
        "peak_bf16_tflops_per_gpu": peak,
        "size": size,
        "strategy": args.strategy,
        "compile_blocks": args.compile_blocks,
        "activation_checkpointing": not args.no_checkpointing,
        "warmup": warmup,
        "iters": iters,
        "models": {},
    }
    jobs = [(m, n) for m in models for n in worlds]
    runs: dict[str, list[dict]] = {m: [] for m in models}
    for model, n in tqdm(jobs, desc="scaling runs"):
        job = {
            "model": model,
            "size": size,
            "batch": args.batch or PER_GPU_BATCH[model],
            "device": "cuda" if cuda else "cpu",
            "threads": 1 if args.quick else max(1, (os.cpu_count() or 2) // max(worlds)),
            "warmup": warmup,
            "iters": iters,
            "strategy": args.strategy,
            "compile_blocks": args.compile_blocks,
            "checkpointing": not args.no_checkpointing,
        }
        try:
            runs[model].append(run_world(job, n))
        except Exception:
            runs[model].append({"n": n, "fits": False, "error": traceback.format_exc()[-2000:]})
        result["models"][model] = summarise(runs[model], peak)
        write_json(out, result)  # partial results survive a later failure
    print(json.dumps(result["models"], indent=1))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
