"""Launching `python -m training.cli fit` out of process through Dagster Pipes.

`TrainingLauncher` is what training assets receive as a resource (orchestration/resources.py
builds it). mode "local" runs the training on this node with `dg.PipesSubprocessClient`: one
process, or `torchrun --nproc_per_node N` (as `python -m torch.distributed.run`) when more than
one GPU is requested and visible. The command runs inside `training.runlog`, which copies its
output to `<runs_dir>/<model>/<version>/train.log` so a failure can quote the log's tail.
Modes "k8s" (training/launch_k8s.py) and "slurm" (training/launch_slurm.py) run the same command
on a cluster. Runs save resume checkpoints every `checkpoint_every_n_steps` into
`<run dir>/ckpt/`; a run folder holding one continues from it (training/resume.py).
Lightning is not imported here: the Dagster process stays light.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
import time
import warnings
from pathlib import Path

import dagster as dg

from training.config_files import config_path
from training.resume import (
    CKPT_DIR,
    CKPT_DIR_ENV,
    CKPT_EVERY_ENV,
    find_resumable,
    is_complete_checkpoint,
    last_checkpoint,
)
from training.runlog import exit_code, tail

# dagster's own Pipes client calls this preview API on every launch; the warning says nothing
# about our code
warnings.filterwarnings("ignore", message=r"Function `PipesMessageReader\.expected_writer_count`")

MODES = ("local", "k8s", "slurm")
EVERY_S_ENV = "WONDERFORGE_PIPES_EVERY_S"  # read by training.pipes (not imported: Lightning)
USAGE_ERROR = 2  # exit code of a rejected command line / config: retrying cannot help


class TrainingFailed(RuntimeError):
    """The training process exited non-zero; the message names the config and quotes the log.

    exit_code: the process's exit code when known; `retryable` is False for usage errors."""

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.exit_code = exit_code

    @property
    def retryable(self) -> bool:
        return self.exit_code != USAGE_ERROR


@dataclasses.dataclass
class LaunchedRun:
    """A finished training process: what ran, where its files are, what it reported."""

    model: str
    version: str
    command: list[str]
    run_dir: Path
    log_path: Path
    seconds: float
    reported: dict  # metadata of the materialization PipesReporter reported ({} if none)
    progress: list[dict]  # PipesReporter's progress messages


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without CUDA)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


class TrainingLauncher:
    """Runs a model's YAML config (plus overrides) out of process and reports through Pipes.

    mode: "local" (this node), "k8s" or "slurm" (`k8s` / `slurm`: their K8sConfig / SlurmConfig,
    or dicts of its fields). gpus: GPUs one run may use (per node on clusters); 0 hides CUDA, >1
    uses torchrun with min(gpus, visible) processes (all `gpus` on clusters).
    processes_per_node: force the number of torchrun processes (e.g. 2 with gpus=0: CPU DDP over
    gloo). cuda_visible_devices: passed to local runs when set.
    cpu_threads: OMP/MKL threads of the run (None: torch's default, one per core; 1 avoids
    threads stalling each other on a busy machine).
    store_uri: the artifact store the run publishes to (WONDERFORGE_STORE of the subprocess).
    runs_dir: parent of the per-run folders (logs, Lightning logs, fetched inputs).
    report_every_s: PipesReporter's progress interval. termination_timeout_s: how long a
    cancelled run gets to exit after SIGINT. env: extra environment variables.
    checkpoint_every_n_steps: resume-checkpoint interval (0: none); keep_resume_checkpoint: keep
    `<run dir>/ckpt/` after a successful run (default: delete it, the export is published).
    """

    def __init__(
        self,
        runs_dir: str | os.PathLike,
        mode: str = "local",
        gpus: int = 1,
        cuda_visible_devices: str | None = None,
        cpu_threads: int | None = None,
        store_uri: str | None = None,
        report_every_s: float = 30.0,
        termination_timeout_s: float = 60.0,
        tail_lines: int = 40,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
        processes_per_node: int | None = None,
        checkpoint_every_n_steps: int = 500,
        keep_resume_checkpoint: bool = False,
        k8s=None,
        slurm=None,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown launcher mode {mode!r}; available: {list(MODES)}")
        if gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {gpus}")
        if processes_per_node is not None and processes_per_node < 1:
            raise ValueError(f"processes_per_node must be >= 1, got {processes_per_node}")
        if checkpoint_every_n_steps < 0:
            raise ValueError(
                f"checkpoint_every_n_steps must be >= 0, got {checkpoint_every_n_steps}"
            )
        self.processes_per_node = processes_per_node
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.keep_resume_checkpoint = keep_resume_checkpoint
        self.cluster = _cluster_config(mode, k8s, slurm)
        self.runs_dir, self.mode, self.gpus = Path(runs_dir), mode, gpus
        self.cuda_visible_devices, self.store_uri = cuda_visible_devices, store_uri
        self.cpu_threads = cpu_threads
        self.report_every_s, self.termination_timeout_s = report_every_s, termination_timeout_s
        self.tail_lines, self.env, self.python = tail_lines, dict(env or {}), python

    def run_dir(self, model: str, version: str) -> Path:
        """`<runs_dir>/<model>/<version>`: the run's log, Lightning logs and fetched inputs."""
        return self.runs_dir / model / version

    def processes(self) -> int:
        """Processes per node: `processes_per_node` when set; on clusters max(1, gpus); locally
        min(gpus, visible GPUs) when that is > 1, else 1."""
        if self.processes_per_node is not None:
            return self.processes_per_node
        if self.mode != "local":
            return max(1, self.gpus)
        return max(1, min(self.gpus, visible_gpus())) if self.gpus > 1 else 1

    def checkpoint_environment(self, run_dir: Path) -> dict[str, str]:
        """Variables that make the run save resume checkpoints into `<run dir>/ckpt/`."""
        if self.checkpoint_every_n_steps <= 0:
            return {}
        return {
            CKPT_DIR_ENV: str(run_dir / CKPT_DIR),
            CKPT_EVERY_ENV: str(self.checkpoint_every_n_steps),
        }

    def resumable_version(self, model: str, config_hash: str, is_published) -> str | None:
        """An unpublished earlier version of `model` with the same config hash whose run folder
        holds a complete resume checkpoint (None: start a new version)."""
        return find_resumable(self.runs_dir, model, config_hash, is_published)

    def resume_args(self, context, run_dir: Path) -> list[str]:
        """`--ckpt_path <run dir>/ckpt/last.ckpt` when the run folder holds a complete one."""
        ckpt = last_checkpoint(run_dir)
        if not ckpt.exists():
            return []
        if not is_complete_checkpoint(ckpt):
            context.log.warning(f"ignoring incomplete resume checkpoint {ckpt}; starting at step 0")
            return []
        context.log.info(f"resuming from {ckpt}")
        return [f"--ckpt_path={ckpt}"]

    def environment(self) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", EVERY_S_ENV: str(self.report_every_s), **self.env}
        if self.store_uri:
            env["WONDERFORGE_STORE"] = self.store_uri
        if self.cpu_threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.cpu_threads)
        if self.gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif self.cuda_visible_devices is not None and self.mode == "local":
            env["CUDA_VISIBLE_DEVICES"] = self.cuda_visible_devices
        return env

    def command(self, config: Path, args: list[str], processes: int = 1) -> list[str]:
        """The training command (without the log wrapper)."""
        entry = ["-m", "training.cli", "fit", "--config", str(config), *args]
        if processes > 1:
            torchrun = ["-m", "torch.distributed.run", "--standalone"]
            return [self.python, *torchrun, f"--nproc_per_node={processes}", *entry]
        return [self.python, *entry]

    def run(
        self,
        context: dg.AssetExecutionContext,
        model: str,
        size: str,
        version: str,
        args: list[str],
        config_model: str | None = None,
    ) -> LaunchedRun:
        """Train `model` at `size` with `args` (LightningCLI overrides, applied in order); the
        YAML is `<config_model or model>/<size>.yaml`.

        Raises TrainingFailed with the config, the exit code and the log's tail on failure."""
        config = config_path(config_model or model, size)
        run_dir = self.run_dir(model, version)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / "train.log"
        processes = self.processes()
        fixed = [f"--trainer.default_root_dir={run_dir}", "--trainer.enable_progress_bar=false"]
        if processes > 1:
            fixed.append(f"--trainer.devices={processes}")
        fixed += self.resume_args(context, run_dir)
        env = {**self.environment(), **self.checkpoint_environment(run_dir)}
        extras = {"model": model, "size": size, "version": version}
        logged_before = _size(log_path)  # a resumed run's log already ends with an exit code
        start = time.monotonic()
        try:
            if self.mode == "local":
                command = self.command(config, [*fixed, *args], processes)
                wrapped = [self.python, "-m", "training.runlog", str(log_path), "--", *command]
                client = dg.PipesSubprocessClient(
                    env=env,
                    cwd=str(run_dir),
                    forward_termination=True,
                    termination_timeout_seconds=self.termination_timeout_s,
                )
                context.log.info(
                    f"training {model} ({processes} process(es)): {shlex.join(command)}"
                )
                invocation = client.run(context=context, command=wrapped, extras=extras)
            else:
                cluster = _cluster_module(self.mode)
                invocation, command, log_path = cluster.launch(
                    self, context, model, config, [*fixed, *args], run_dir, env, extras
                )
        except TrainingFailed:
            raise
        except Exception as error:
            code = exit_code(log_path) if _size(log_path) > logged_before else None
            if not code:
                raise
            message = self.failure_message(model, config, args, code, log_path)
            raise TrainingFailed(message, exit_code=code) from error
        seconds = time.monotonic() - start
        if not self.keep_resume_checkpoint:
            shutil.rmtree(run_dir / CKPT_DIR, ignore_errors=True)
        return LaunchedRun(
            model=model,
            version=version,
            command=command,
            run_dir=run_dir,
            log_path=log_path,
            seconds=seconds,
            reported=_reported_metadata(invocation),
            progress=list(invocation.get_custom_messages()),
        )

    def failure_message(
        self, model: str, config: Path, args: list[str], code: int, log_path: Path
    ) -> str:
        shown = "\n".join(f"  {arg}" for arg in args) or "  (none)"
        return (
            f"training {model} failed (exit code {code})\n"
            f"config: {config}\noverrides:\n{shown}\nlog: {log_path}\n"
            f"--- last {self.tail_lines} lines of the log ---\n"
            f"{tail(log_path, self.tail_lines)}"
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _cluster_config(mode: str, k8s, slurm):
    """The cluster config of `mode` (None for local), validated; dicts become config objects."""
    if mode == "local":
        return None
    config = {"k8s": k8s, "slurm": slurm}[mode]
    if config is None:
        raise ValueError(f"launcher mode {mode!r} needs its `{mode}` settings (docs/operations.md)")
    return _cluster_module(mode).config_from(config)


def _cluster_module(mode: str):
    if mode == "k8s":
        from training import launch_k8s

        return launch_k8s
    from training import launch_slurm

    return launch_slurm


def _reported_metadata(invocation: dg.PipesClientCompletedInvocation) -> dict:
    """Metadata of the materialization the run reported, {} when it reported none."""
    results = [r for r in invocation.get_results() if isinstance(r, dg.MaterializeResult)]
    return dict(results[0].metadata or {}) if results else {}
