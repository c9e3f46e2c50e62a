"""Launching `python -m training.cli fit` out of process through Dagster Pipes.

`TrainingLauncher` is what training assets receive as a resource (orchestration/resources.py
builds it). mode "local" runs the training on this node with `dg.PipesSubprocessClient`: one
process, or `torchrun --nproc_per_node N` (as `python -m torch.distributed.run`) when more than
one GPU is requested and visible. The command runs inside `training.runlog`, which copies its
output to `<runs_dir>/<model>/<version>/train.log` so a failure can quote the log's tail.
Lightning is not imported here: the Dagster process stays light.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path

import dagster as dg

from training.config_files import config_path
from training.runlog import exit_code, tail

MODES = ("local",)
EVERY_S_ENV = "WONDERFORGE_PIPES_EVERY_S"  # read by training.pipes (not imported: Lightning)


class TrainingFailed(RuntimeError):
    """The training process exited non-zero; the message names the config and quotes the log."""


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

    mode: "local" (this node). gpus: GPUs one run may use; 0 hides CUDA, >1 uses torchrun with
    min(gpus, visible) processes. cuda_visible_devices: passed to the run when set.
    cpu_threads: OMP/MKL threads of the run (None: torch's default, one per core; 1 avoids
    threads stalling each other on a busy machine).
    store_uri: the artifact store the run publishes to (WONDERFORGE_STORE of the subprocess).
    runs_dir: parent of the per-run folders (logs, Lightning logs, fetched inputs).
    report_every_s: PipesReporter's progress interval. termination_timeout_s: how long a
    cancelled run gets to exit after SIGINT. env: extra environment variables.
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
    ):
        if mode not in MODES:
            raise ValueError(f"unknown launcher mode {mode!r}; available: {list(MODES)}")
        if gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {gpus}")
        self.runs_dir, self.mode, self.gpus = Path(runs_dir), mode, gpus
        self.cuda_visible_devices, self.store_uri = cuda_visible_devices, store_uri
        self.cpu_threads = cpu_threads
        self.report_every_s, self.termination_timeout_s = report_every_s, termination_timeout_s
        self.tail_lines, self.env, self.python = tail_lines, dict(env or {}), python

    def run_dir(self, model: str, version: str) -> Path:
        """`<runs_dir>/<model>/<version>`: the run's log, Lightning logs and fetched inputs."""
        return self.runs_dir / model / version

    def processes(self) -> int:
        """Processes per run: min(gpus, visible GPUs) when that is > 1, else 1."""
        return max(1, min(self.gpus, visible_gpus())) if self.gpus > 1 else 1

    def environment(self) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", EVERY_S_ENV: str(self.report_every_s), **self.env}
        if self.store_uri:
            env["WONDERFORGE_STORE"] = self.store_uri
        if self.cpu_threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.cpu_threads)
        if self.gpus == 0:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif self.cuda_visible_devices is not None:
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
    ) -> LaunchedRun:
        """Train `model` at `size` with `args` (LightningCLI overrides, applied in order).

        Raises TrainingFailed with the config, the exit code and the log's tail on failure."""
        config = config_path(model, size)
        run_dir = self.run_dir(model, version)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / "train.log"
        processes = self.processes()
        fixed = [f"--trainer.default_root_dir={run_dir}", "--trainer.enable_progress_bar=false"]
        if processes > 1:
            fixed.append(f"--trainer.devices={processes}")
        command = self.command(config, [*fixed, *args], processes)
        wrapped = [self.python, "-m", "training.runlog", str(log_path), "--", *command]
        client = dg.PipesSubprocessClient(
            env=self.environment(),
            cwd=str(run_dir),
            forward_termination=True,
            termination_timeout_seconds=self.termination_timeout_s,
        )
        context.log.info(f"training {model} ({processes} process(es)): {shlex.join(command)}")
        start = time.monotonic()
        try:
            invocation = client.run(
                context=context,
                command=wrapped,
                extras={"model": model, "size": size, "version": version},
            )
        except Exception as error:
            code = exit_code(log_path)
            if not code:
                raise
            raise TrainingFailed(self.failure_message(model, config, args, code, log_path)) from (
                error
            )
        seconds = time.monotonic() - start
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


def _reported_metadata(invocation: dg.PipesClientCompletedInvocation) -> dict:
    """Metadata of the materialization the run reported, {} when it reported none."""
    results = [r for r in invocation.get_results() if isinstance(r, dg.MaterializeResult)]
    return dict(results[0].metadata or {}) if results else {}
