"""Launcher mode "slurm": training as a Slurm batch job, reporting to Dagster through Pipes.

`render_sbatch` fills `SBATCH_TEMPLATE`: the `#SBATCH` options (nodes, GPUs per node,
partition, time, ...), the setup lines, and one `srun` that starts one task per node running
`torchrun --nnodes $SLURM_JOB_NUM_NODES` with c10d rendezvous on the job's first node (a plain
`python -m training.cli fit` for one process). `launch` writes the script into the run folder,
submits it with `sbatch --parsable` and polls `squeue` (then `sacct` for the final state) while
copying the node-0 log to the Dagster compute log. `scancel` ends the job when the Dagster step is
cancelled.

Pipes over a shared filesystem: the context goes to the job through its environment
(`PipesEnvContextInjector`; sbatch exports the submitting environment) and rank 0 appends its
messages to `<run dir>/pipes-messages.jsonl`, which Dagster tails (`PipesFileMessageReader`).
The run folder must therefore be on a filesystem the Dagster process and the nodes share, at the
same path (so must a local artifact store; an s3:// store needs nothing shared).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parent.parent
MESSAGES = "pipes-messages.jsonl"
SCRIPT = "job.sbatch"
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}
RETRYABLE = {"NODE_FAIL", "PREEMPTED", "TIMEOUT", "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE"}

SBATCH_TEMPLATE = """#!/bin/bash
{{sbatch_options}}
# wonderforge training job, rendered by training/launch_slurm.py: {{model}} {{version}}
set -euo pipefail
cd {{workdir}}
{{setup}}
export WONDERFORGE_RDZV_HOST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
echo "[wonderforge] job $SLURM_JOB_ID on $SLURM_JOB_NUM_NODES node(s), rendezvous $WONDERFORGE_RDZV_HOST"
srun {{srun_options}} \\
  {{command}}
"""
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclasses.dataclass
class SlurmConfig:
    """Where and how the batch job runs (the launcher's `slurm` settings).

    partition / account / qos / constraint / time / mem / cpus_per_task / exclusive: the usual
    sbatch options (None: the cluster's default). nodes: nodes per run. extra_sbatch: more sbatch
    options, e.g. ["--reservation=big"]. setup: shell lines run before training (module loads,
    activating the environment). workdir: the repository on the nodes (default: this checkout,
    which a shared filesystem makes the same). python: the interpreter on the nodes (default:
    the launcher's). rdzv_port: c10d rendezvous port on the first node. poll_interval_s: seconds
    between squeue polls. message_grace_s: how long to wait, after the job ends, for the last Pipes
    messages to appear on the shared filesystem. sacct_grace_polls: polls to wait for sacct to
    record a job that left the queue. sbatch / squeue / sacct / scancel: the commands.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    time: str = "24:00:00"
    nodes: int = 1
    cpus_per_task: int | None = None
    mem: str | None = None
    exclusive: bool = False
    extra_sbatch: list[str] = dataclasses.field(default_factory=list)
    setup: list[str] = dataclasses.field(default_factory=list)
    workdir: str | None = None
    python: str | None = None
    rdzv_port: int = 29500
    poll_interval_s: float = 15.0
    message_grace_s: float = 60.0
    sacct_grace_polls: int = 20
    sbatch: str = "sbatch"
    squeue: str = "squeue"
    sacct: str = "sacct"
    scancel: str = "scancel"

    def __post_init__(self):
        if self.nodes < 1:
            raise ValueError(f"slurm: nodes must be >= 1, got {self.nodes}")
        if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", self.time):
            raise ValueError(f"slurm: time {self.time!r} is not a Slurm time (e.g. 24:00:00)")
        for option in self.extra_sbatch:
            if not option.startswith("--") or "\n" in option:
                raise ValueError(
                    f"slurm: extra_sbatch option {option!r} must be one `--name=value`"
                )
        if not 0 < self.rdzv_port < 65536:
            raise ValueError(f"slurm: rdzv_port {self.rdzv_port} is not a port number")


def config_from(value: SlurmConfig | dict) -> SlurmConfig:
    """A SlurmConfig from itself or a dict of its fields (unknown keys are an error)."""
    if isinstance(value, SlurmConfig):
        return value
    known = {f.name for f in dataclasses.fields(SlurmConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"slurm: unknown settings {unknown}; known: {sorted(known)}")
    return SlurmConfig(**value)


# ---- rendering (pure) ---------------------------------------------------------------------------


def fill(template: str, values: dict[str, str]) -> str:
    """Replace every `{{name}}`; a placeholder without a value is an error."""
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise KeyError(f"sbatch template placeholders without values: {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def sbatch_options(cfg: SlurmConfig, job_name: str, run_dir: Path, gpus_per_node: int) -> list[str]:
    """The `#SBATCH` lines."""
    options = [
        f"--job-name={job_name}",
        f"--nodes={cfg.nodes}",
        "--ntasks-per-node=1",
        f"--time={cfg.time}",
        f"--output={run_dir / 'slurm-%j.out'}",
        "--open-mode=append",
        "--export=ALL",
    ]
    if gpus_per_node > 0:
        options.append(f"--gpus-per-node={gpus_per_node}")
    for name in ("partition", "account", "qos", "constraint", "cpus_per_task", "mem"):
        value = getattr(cfg, name)
        if value is not None:
            options.append(f"--{name.replace('_', '-')}={value}")
    if cfg.exclusive:
        options.append("--exclusive")
    options += cfg.extra_sbatch
    return [f"#SBATCH {shlex.quote(option)}" for option in options]


def training_command(
    cfg: SlurmConfig, python: str, config: str, args: list[str], processes: int
) -> str:
    """The shell text srun runs on every node: torchrun with c10d rendezvous on the first node
    when there are several processes in all, else the training CLI itself."""
    entry = ["-m", "training.cli", "fit", "--config", config, *args]
    quoted = " ".join(shlex.quote(part) for part in [python, *entry])
    if cfg.nodes == 1 and processes == 1:
        return quoted
    torchrun = [
        shlex.quote(python),
        "-m torch.distributed.run",
        '--nnodes="$SLURM_JOB_NUM_NODES"',
        f"--nproc_per_node={processes}",
        '--rdzv_id="$SLURM_JOB_ID"',
        "--rdzv_backend=c10d",
        f'--rdzv_endpoint="$WONDERFORGE_RDZV_HOST:{cfg.rdzv_port}"',
    ]
    return " ".join(torchrun) + " " + " ".join(shlex.quote(part) for part in entry)


def log_name(cfg: SlurmConfig) -> str:
    """srun's output file name: `train.log`, or one per node (`%n`: node index in the job)."""
    return "train.log" if cfg.nodes == 1 else "train-node%n.log"


def render_sbatch(
    cfg: SlurmConfig,
    *,
    model: str,
    version: str,
    run_dir: Path,
    python: str,
    config: str,
    args: list[str],
    gpus_per_node: int,
    processes: int,
) -> str:
    """The batch script of one training run."""
    srun = [
        f"--nodes={cfg.nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        f"--output={shlex.quote(str(run_dir / log_name(cfg)))}",
    ]
    return fill(
        SBATCH_TEMPLATE,
        {
            "sbatch_options": "\n".join(sbatch_options(cfg, f"wf-{model}", run_dir, gpus_per_node)),
            "model": model,
            "version": version,
            "workdir": shlex.quote(cfg.workdir or str(REPO_ROOT)),
            "setup": "\n".join(cfg.setup) or "# (no setup lines)",
            "srun_options": " ".join(srun),
            "command": training_command(cfg, python, config, args, processes),
        },
    )


# ---- submitting and polling ---------------------------------------------------------------------


def _run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"slurm: `{command[0]}` not found on PATH: run Dagster on a Slurm login node or set "
            "the launcher's slurm.sbatch / squeue / sacct / scancel"
        ) from None


def submit(cfg: SlurmConfig, script: Path, env: dict[str, str]) -> str:
    """`sbatch --parsable script` → the job id."""
    done = _run([cfg.sbatch, "--parsable", str(script)], env)
    job_id = done.stdout.strip().split(";")[0]
    if done.returncode != 0 or not job_id.isdigit():
        raise RuntimeError(
            f"slurm: sbatch {script} failed (exit code {done.returncode}): "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return job_id


def queue_state(cfg: SlurmConfig, job_id: str) -> str | None:
    """The job's state while Slurm still queues or runs it (squeue), else None."""
    done = _run([cfg.squeue, "-h", "-j", job_id, "-o", "%T"])
    state = done.stdout.strip().split("\n")[0].strip() if done.returncode == 0 else ""
    return state or None


def final_state(cfg: SlurmConfig, job_id: str) -> tuple[str, int] | None:
    """(state, exit code) of a finished job from sacct; None while sacct has no record.

    The exit code is the job's `code:signal` as one number: the code, or -signal."""
    done = _run([cfg.sacct, "-j", job_id, "-X", "-n", "-P", "-o", "State,ExitCode"])
    line = done.stdout.strip().split("\n")[0].strip() if done.returncode == 0 else ""
    return parse_sacct(line) if line else None


def parse_sacct(line: str) -> tuple[str, int]:
    """`State|ExitCode` (`sacct -P -o State,ExitCode`) → (state, exit code or -signal):
    "COMPLETED|0:0" → ("COMPLETED", 0), "CANCELLED by 1000|0:15" → ("CANCELLED", -15)."""
    state, _, code = line.strip().partition("|")
    if not state.strip():
        raise ValueError(f"slurm: cannot parse sacct output {line!r}")
    number, _, signal = code.partition(":")
    exit_code = -int(signal) if signal.isdigit() and int(signal) else int(number or 0)
    return state.split()[0], exit_code


class _LogFollower:
    """Copies what a log file gained since the last call to our stdout (the compute log)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def __call__(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        if chunk:
            self.offset += len(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()


def wait(cfg: SlurmConfig, job_id: str, follow=None, sleep=time.sleep) -> tuple[str, int]:
    """Poll until the job has left the queue; its (final state, exit code)."""
    missing = 0
    while True:
        if follow is not None:
            follow()
        if queue_state(cfg, job_id) not in ACTIVE:
            final = final_state(cfg, job_id)
            if final is not None and final[0] not in ACTIVE:
                return final
            missing += 1
            if missing > cfg.sacct_grace_polls:
                raise RuntimeError(
                    f"slurm: job {job_id} left the queue but sacct has no final state for it "
                    "(is job accounting enabled?)"
                )
        sleep(cfg.poll_interval_s)


def cancel(cfg: SlurmConfig, job_id: str) -> None:
    _run([cfg.scancel, job_id])


def launch(launcher, context, model, config, args, run_dir, env, extras):
    """Run one training as a Slurm job; returns (Pipes invocation, srun command, log path).

    Called by `TrainingLauncher.run` in mode "slurm"."""
    from training.launch import TrainingFailed

    cfg: SlurmConfig = launcher.cluster
    python = cfg.python or launcher.python
    processes = launcher.processes()
    if cfg.nodes > 1:
        args = [*args, f"--trainer.num_nodes={cfg.nodes}"]
    config_rel = str(Path(config).resolve().relative_to(REPO_ROOT))
    script_text = render_sbatch(
        cfg,
        model=model,
        version=extras["version"],
        run_dir=run_dir,
        python=python,
        config=config_rel,
        args=args,
        gpus_per_node=launcher.gpus,
        processes=processes,
    )
    script = run_dir / SCRIPT
    tmp = script.with_name(f".{SCRIPT}.tmp")
    tmp.write_text(script_text)
    os.replace(tmp, script)
    log_path = run_dir / ("train.log" if cfg.nodes == 1 else "train-node0.log")
    command = training_command(cfg, python, config_rel, args, processes)
    reader = dg.PipesFileMessageReader(str(run_dir / MESSAGES))
    with dg.open_pipes_session(
        context=context,
        context_injector=dg.PipesEnvContextInjector(),
        message_reader=reader,
        extras=extras,
    ) as session:
        job_env = {**os.environ, **env, **session.get_bootstrap_env_vars()}
        job_id = submit(cfg, script, job_env)
        context.log.info(
            f"submitted Slurm job {job_id} ({cfg.nodes} node(s) x {processes} process(es)): "
            f"{script}; log {log_path}"
        )
        follow = _LogFollower(log_path)
        finished = False
        try:
            state, code = wait(cfg, job_id, follow=follow)
            finished = True
        finally:
            if not finished:
                context.log.warning(f"cancelling Slurm job {job_id}")
                cancel(cfg, job_id)
        follow()
        _await_closed(session, cfg.message_grace_s)
        if state != "COMPLETED" or code != 0:
            message = launcher.failure_message(model, config, args, code, log_path)
            raise TrainingFailed(
                f"Slurm job {job_id} ended {state}\n{message}",
                code if state not in RETRYABLE else None,
            )
    invocation = dg.PipesClientCompletedInvocation(session, metadata={"slurm_job_id": job_id})
    return invocation, shlex.split(command), log_path


def _await_closed(session: Any, grace_s: float) -> None:
    """Give a shared filesystem time to show rank 0's last messages (its `closed` message)."""
    deadline = time.monotonic() + grace_s
    handler = session.message_handler
    while (
        handler.received_opened_message
        and not handler.received_closed_message
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
