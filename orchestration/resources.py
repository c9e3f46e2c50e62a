"""Dagster resources: configuration shells that build the lower layers' objects.

Assets receive the built objects (`dg.ResourceParam[ArtifactStore]`), so the asset layer never
imports this module.
"""

from __future__ import annotations

import dagster as dg

from datagen.store import ArtifactStore, store_from_env, store_from_uri
from orchestration.home import project_home
from training.launch import TrainingLauncher


@dg.resource(
    config_schema={
        "uri": dg.Field(
            dg.Noneable(str),
            default_value=None,
            description="Store URI (path, file:///..., s3://bucket/prefix); default from env.",
        )
    },
    description=(
        "The artifact store: a local directory by default, S3 when `uri` or WONDERFORGE_STORE "
        "says so. Credentials and endpoint come from the environment (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL), never from run config."
    ),
)
def artifact_store(context: dg.InitResourceContext) -> ArtifactStore:
    uri = context.resource_config.get("uri")
    return store_from_uri(uri) if uri else store_from_env()


@dg.resource(
    config_schema={
        "mode": dg.Field(
            str, default_value="local", description="where training runs: local | k8s | slurm"
        ),
        "gpus": dg.Field(
            int,
            default_value=1,
            description="GPUs per run: 0 hides CUDA; >1 launches torchrun with min(gpus, visible)",
        ),
        "cuda_visible_devices": dg.Field(
            dg.Noneable(str), default_value=None, description="CUDA_VISIBLE_DEVICES of the runs"
        ),
        "cpu_threads": dg.Field(
            dg.Noneable(int),
            default_value=None,
            description="OMP/MKL threads per run (default: torch's, one per core)",
        ),
        "runs_dir": dg.Field(
            dg.Noneable(str),
            default_value=None,
            description="per-run folders (logs); default $WONDERFORGE_HOME/runs",
        ),
        "report_every_s": dg.Field(
            float, default_value=30.0, description="seconds between Pipes progress reports"
        ),
        "termination_timeout_s": dg.Field(
            float, default_value=60.0, description="grace period after SIGINT on cancellation"
        ),
        "processes_per_node": dg.Field(
            dg.Noneable(int),
            default_value=None,
            description="torchrun processes per node (default: from gpus); 2 with gpus 0: CPU DDP",
        ),
        "checkpoint_every_n_steps": dg.Field(
            int,
            default_value=500,
            description="save a resume checkpoint every N steps into the run folder (0: never)",
        ),
        "keep_resume_checkpoint": dg.Field(
            bool, default_value=False, description="keep <run>/ckpt/ after a successful run"
        ),
        "k8s": dg.Field(
            dg.Noneable(dg.Permissive()),
            default_value=None,
            description="mode k8s: K8sConfig fields (image, namespace, nodes, secret, volumes, "
            "volume_mounts, ...; training/launch_k8s.py, docs/operations.md)",
        ),
        "slurm": dg.Field(
            dg.Noneable(dg.Permissive()),
            default_value=None,
            description="mode slurm: SlurmConfig fields (partition, nodes, time, setup, ...; "
            "training/launch_slurm.py, docs/operations.md)",
        ),
    },
    required_resource_keys={"store"},
    description=(
        "Launches `python -m training.cli fit` out of process through Dagster Pipes, publishing "
        "to the run's artifact store (see docs/orchestration.md)."
    ),
)
def training_launcher(context: dg.InitResourceContext) -> TrainingLauncher:
    config = context.resource_config
    return TrainingLauncher(
        runs_dir=config["runs_dir"] or project_home() / "runs",
        mode=config["mode"],
        gpus=config["gpus"],
        cuda_visible_devices=config["cuda_visible_devices"],
        cpu_threads=config["cpu_threads"],
        store_uri=context.resources.store.uri(""),
        report_every_s=config["report_every_s"],
        termination_timeout_s=config["termination_timeout_s"],
        processes_per_node=config["processes_per_node"],
        checkpoint_every_n_steps=config["checkpoint_every_n_steps"],
        keep_resume_checkpoint=config["keep_resume_checkpoint"],
        k8s=config["k8s"],
        slurm=config["slurm"],
    )
