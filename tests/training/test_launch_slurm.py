"""Slurm launch mode: the sbatch script rendered field by field (and accepted by `bash -n`); the
submit / poll / Pipes-over-a-file path run end to end against fake `sbatch`, `squeue`, `sacct`,
`scancel`, `srun` and `scontrol` executables that this test writes onto PATH."""

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from training import launch_slurm
from training.launch import TrainingFailed, TrainingLauncher
from training.launch_slurm import SlurmConfig, config_from, parse_sacct, render_sbatch

ARGS = [
    '--data.init_args.train_sets=["file:///data/my shards/manifest.json"]',
    "--trainer.callbacks.init_args.prefix=checkpoints/image_vae/v1",
    "--model.init_args.note=it's $HOME",
]


def _sbatch_lines(script: str) -> list[str]:
    return [
        line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")
    ]


def test_multi_node_script_field_by_field(tmp_path):
    cfg = config_from(
        {
            "partition": "gpu",
            "account": "worlds",
            "time": "2-00:00:00",
            "nodes": 4,
            "cpus_per_task": 64,
            "mem": "0",
            "exclusive": True,
            "extra_sbatch": ["--reservation=big"],
            "setup": ["module load cuda/12.4", "source /shared/venv/bin/activate"],
            "workdir": "/shared/wonderforge",
            "rdzv_port": 29444,
        }
    )
    run_dir = tmp_path / "runs" / "image_vae" / "v1"
    script = render_sbatch(
        cfg,
        model="image_vae",
        version="v1",
        run_dir=run_dir,
        python="/shared/venv/bin/python",
        config="training/configs/image_vae/paper.yaml",
        args=ARGS,
        gpus_per_node=8,
        processes=8,
    )
    assert script.startswith("#!/bin/bash\n")
    assert _sbatch_lines(script) == [
        "--job-name=wf-image_vae",
        "--nodes=4",
        "--ntasks-per-node=1",
        "--time=2-00:00:00",
        f"--output={run_dir}/slurm-%j.out",
        "--open-mode=append",
        "--export=ALL",
        "--gpus-per-node=8",
        "--partition=gpu",
        "--account=worlds",
        "--cpus-per-task=64",
        "--mem=0",
        "--exclusive",
        "--reservation=big",
    ]
    body = script.split("set -euo pipefail\n", 1)[1]
    assert body.startswith("cd /shared/wonderforge\nmodule load cuda/12.4\nsource /shared/venv")
    assert (
        'WONDERFORGE_RDZV_HOST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"'
        in body
    )
    srun = body[body.index("srun ") :].replace("\\\n", " ")
    words = shlex.split(srun)
    assert words[:5] == [
        "srun",
        "--nodes=4",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        f"--output={run_dir}/train-node%n.log",
    ]
    assert words[5:14] == [
        "/shared/venv/bin/python",
        "-m",
        "torch.distributed.run",
        "--nnodes=$SLURM_JOB_NUM_NODES",  # expanded by the batch shell (quotes removed here)
        "--nproc_per_node=8",
        "--rdzv_id=$SLURM_JOB_ID",
        "--rdzv_backend=c10d",
        "--rdzv_endpoint=$WONDERFORGE_RDZV_HOST:29444",
        "-m",
    ]
    assert words[14:18] == [
        "training.cli",
        "fit",
        "--config",
        "training/configs/image_vae/paper.yaml",
    ]
    assert words[18:] == ARGS  # quoting survives spaces, quotes and $
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_single_process_script_runs_the_cli_directly(tmp_path):
    script = render_sbatch(
        SlurmConfig(),
        model="m",
        version="v",
        run_dir=tmp_path,
        python="python3",
        config="c.yaml",
        args=[],
        gpus_per_node=1,
        processes=1,
    )
    assert "torch.distributed.run" not in script
    assert "# (no setup lines)" in script and "--partition" not in script
    assert f"--output={tmp_path}/train.log" in script
    assert "python3 -m training.cli fit --config c.yaml" in script
    assert "#SBATCH --gpus-per-node=1" in script


def test_settings_are_validated():
    with pytest.raises(ValueError, match="unknown settings \\['gpus'\\]"):
        config_from({"gpus": 2})
    with pytest.raises(ValueError, match="not a Slurm time"):
        SlurmConfig(time="two days")
    with pytest.raises(ValueError, match="must be one `--name=value`"):
        SlurmConfig(extra_sbatch=["--mail-user=x\n#SBATCH --evil"])
    with pytest.raises(KeyError, match="without values: \\['missing'\\]"):
        launch_slurm.fill("{{present}} {{missing}}", {"present": "x"})


def test_sacct_lines_are_parsed():
    assert parse_sacct("COMPLETED|0:0") == ("COMPLETED", 0)
    assert parse_sacct("FAILED|2:0") == ("FAILED", 2)
    assert parse_sacct("CANCELLED by 1000|0:15") == ("CANCELLED", -15)
    assert parse_sacct("OUT_OF_MEMORY|0:125") == ("OUT_OF_MEMORY", -125)
    with pytest.raises(ValueError, match="cannot parse"):
        parse_sacct("|0:0")


# ---- fake Slurm ---------------------------------------------------------------------------------

FAKES = {
    "sbatch": r"""
        # fake sbatch --parsable SCRIPT: runs SCRIPT in the background as job <id>
        [ "$1" = "--parsable" ] || { echo "expected --parsable" >&2; exit 1; }
        script="$2"; state="$FAKE_SLURM_STATE"
        id=$(( $(cat "$state/next" 2>/dev/null || echo 100) + 1 )); echo "$id" > "$state/next"
        export SLURM_JOB_ID="$id" SLURM_JOB_NUM_NODES=1 SLURM_JOB_NODELIST=fakenode
        setsid bash -c 'bash "$1" > "$2/$3.out" 2>&1; echo $? > "$2/$3.exit"' _ "$script" "$state" "$id" \
            < /dev/null > /dev/null 2>&1 &
        echo $! > "$state/$id.pid"
        echo "$id;fakecluster"
    """,
    "squeue": r"""
        # fake squeue -h -j ID -o %T
        id="$3"; state="$FAKE_SLURM_STATE"
        [ -f "$state/$id.pid" ] && [ ! -f "$state/$id.exit" ] && echo RUNNING
        exit 0
    """,
    "sacct": r"""
        # fake sacct -j ID -X -n -P -o State,ExitCode
        id="$2"; state="$FAKE_SLURM_STATE"
        [ -f "$state/$id.exit" ] || exit 0
        if [ -f "$state/$id.cancelled" ]; then echo "CANCELLED by 0|0:15"
        elif [ "$(cat "$state/$id.exit")" = 0 ]; then echo "COMPLETED|0:0"
        else echo "FAILED|$(cat "$state/$id.exit"):0"; fi
    """,
    "scancel": r"""
        state="$FAKE_SLURM_STATE"; touch "$state/$1.cancelled"
        kill -TERM -- "-$(cat "$state/$1.pid")" 2>/dev/null || true
        echo 143 > "$state/$1.exit"
    """,
    "srun": r"""
        # fake srun [options] COMMAND...: one task, output to --output
        out=/dev/stdout
        while [ "${1#--}" != "$1" ]; do
            case "$1" in --output=*) out="${1#--output=}"; out="${out//%n/0}";; esac; shift
        done
        exec "$@" > "$out" 2>&1
    """,
    "scontrol": "echo fakenode\n",
}

FAKE_TRAIN = """
import json, os, sys, time
from dagster_pipes import open_dagster_pipes
with open(os.environ["FAKE_ARGV_FILE"], "w") as f:
    json.dump(sys.argv[1:], f)
with open(os.environ["FAKE_ARGV_FILE"] + ".pid", "w") as f:
    f.write(str(os.getpid()))
print("fake training starts", flush=True)
with open_dagster_pipes() as pipes:
    pipes.report_custom_message({"step": 1, "metrics": {"train/loss": 0.5}})
    time.sleep(float(os.environ.get("FAKE_TRAIN_SECONDS", "0.3")))
    code = int(os.environ.get("FAKE_TRAIN_EXIT", "0"))
    if code:
        print("fake training: out of patience", flush=True)
        sys.exit(code)
    pipes.report_asset_materialization(metadata={"global_step": 5, "train/loss": 0.125})
print("fake training done", flush=True)
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir, state = tmp_path / "bin", tmp_path / "slurm-state"
    bin_dir.mkdir()
    state.mkdir()
    for name, body in FAKES.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + textwrap.dedent(body))
        path.chmod(0o755)
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN)
    python = bin_dir / "python-on-nodes"
    python.write_text(f'#!/bin/bash\nexec {sys.executable} {tmp_path / "fake_train.py"} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_STATE", str(state))
    return {"python": str(python), "state": state}


def _launcher(tmp_path, fake, **env) -> TrainingLauncher:
    slurm = {
        "python": fake["python"],
        "partition": "debug",
        "poll_interval_s": 0.1,
        "message_grace_s": 5.0,
        "setup": ["echo setting up"],
    }
    env = {"FAKE_ARGV_FILE": str(tmp_path / "argv.json"), **env}
    return TrainingLauncher(
        tmp_path / "runs", mode="slurm", gpus=1, store_uri="s3://b/p", slurm=slurm, env=env
    )


def _launch(launcher: TrainingLauncher):
    captured = {}

    @dg.asset
    def trained(context: dg.AssetExecutionContext):
        captured["run"] = launcher.run(context, "image_vae", "tiny", "v1", ARGS)
        return dg.MaterializeResult(metadata=captured["run"].reported)

    return dg.materialize([trained], raise_on_error=False), captured.get("run")


def test_job_is_submitted_polled_and_reports_through_a_shared_file(tmp_path, fake_slurm):
    result, run = _launch(_launcher(tmp_path, fake_slurm))
    assert result.success
    assert run.reported["global_step"].value == 5
    assert run.reported["train/loss"].value == 0.125
    assert run.reported["slurm_job_id"].value == "101"
    assert run.progress == [{"step": 1, "metrics": {"train/loss": 0.5}}]
    run_dir = tmp_path / "runs" / "image_vae" / "v1"
    script = (run_dir / "job.sbatch").read_text()
    assert "#SBATCH --partition=debug" in script and "echo setting up" in script
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:4] == ["-m", "training.cli", "fit", "--config"]
    assert argv[4] == "training/configs/image_vae/tiny.yaml"
    assert argv[5:7] == [
        f"--trainer.default_root_dir={run_dir}",
        "--trainer.enable_progress_bar=false",
    ]
    assert argv[-3:] == ARGS
    log = (run_dir / "train.log").read_text()
    assert "fake training starts" in log and "fake training done" in log
    assert not (run_dir / "pipes-messages.jsonl").exists()  # removed when the session closed
    assert "setting up" in (fake_slurm["state"] / "101.out").read_text()


def test_failed_job_raises_with_state_exit_code_and_log_tail(tmp_path, fake_slurm):
    result, _ = _launch(_launcher(tmp_path, fake_slurm, FAKE_TRAIN_EXIT="3"))
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    while error.cause is not None and "TrainingFailed" not in error.cls_name:
        error = error.cause
    assert "TrainingFailed" in error.cls_name
    assert "Slurm job 101 ended FAILED" in error.message
    assert "training image_vae failed (exit code 3)" in error.message
    assert "fake training: out of patience" in error.message.split("---")[-1]


def test_interrupted_wait_cancels_the_job(tmp_path, fake_slurm, monkeypatch):
    pid_file = tmp_path / "argv.json.pid"

    def interrupted(cfg, job_id, follow=None, sleep=None):
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:  # let training start
            time.sleep(0.05)
        raise RuntimeError("run terminated in the UI")

    monkeypatch.setattr(launch_slurm, "wait", interrupted)
    result, _ = _launch(_launcher(tmp_path, fake_slurm, FAKE_TRAIN_SECONDS="30"))
    assert not result.success
    assert (fake_slurm["state"] / "101.cancelled").exists()
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 20
    while _alive(pid):
        assert time.monotonic() < deadline, "scancel did not stop the fake training process"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status  # a zombie has exited


def test_retryable_states_and_usage_errors():
    assert TrainingFailed("x", exit_code=None).retryable
    assert not TrainingFailed("x", exit_code=2).retryable
    assert {"PREEMPTED", "NODE_FAIL", "TIMEOUT"} <= launch_slurm.RETRYABLE
