"""Launcher mode "k8s": training in Kubernetes pods through Dagster Pipes (dagster-k8s).

One node: a pod (`render_pod_spec`) launched by `dagster_k8s.PipesK8sClient`. Several nodes (or
`job: true`): an indexed Job with `completionMode: Indexed` plus a headless Service
(`render_job`); pod `i` runs
`torchrun --nnodes N --node_rank i` (i = the pod's completion index) against pod 0, reached
through the Service's DNS name. Global rank 0 lives in pod 0; its log stream carries the Pipes
messages, read with dagster-k8s' pod-log reader.

Every pod gets `nvidia.com/gpu` limits, the image, the namespace, the launcher's environment plus
the Pipes bootstrap variables, S3 credentials from a Secret (`envFrom`, never inline values),
the configured volumes and a memory-backed `/dev/shm`. The run folder (`runs_dir`) and a local
store must be on a volume mounted at the same path in the Dagster process and in the pods: the
run's log, resume checkpoints and fetched inputs live there. Rendering is pure (dicts in the
Kubernetes JSON layout); only `launch` talks to a cluster, and it imports `dagster_k8s` /
`kubernetes` only then (`pip install 'wonderforge[k8s]'`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shlex
import time
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

from training.config_files import CONFIG_ROOT

GPU_RESOURCE = "nvidia.com/gpu"
NODE_RANK_ENV = "NODE_RANK"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
JOB_LABEL = "wonderforge.dev/job"
CONTAINER = "train"
SECRET_NAMES = re.compile(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL)", re.IGNORECASE)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_JOB_NAME = 52  # pod hostnames are `<job>-<index>`; DNS labels stop at 63 characters
FAILED_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError"}


@dataclasses.dataclass
class K8sConfig:
    """Where and how training pods run (the launcher's `k8s` settings).

    image: container image holding this repository at `workdir` and its environment.
    namespace / service_account / image_pull_policy / node_selector / tolerations / labels /
    annotations: the usual pod fields. nodes: pods per run (> 1: indexed Job + headless Service).
    job: run a single node as a one-pod indexed Job too (no dagster-k8s limit of 5 h on a pod
    becoming ready, e.g. behind a GPU queue; needs Job and Service permissions).
    python: the interpreter in the image. secret: name of a Secret whose keys become environment
    variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...).
    cpu / memory: requests per pod (Kubernetes quantities, e.g. "32", "256Gi").
    shm_size: size of the memory-backed /dev/shm (DataLoader workers, NCCL); None: none.
    volumes / volume_mounts: Kubernetes Volume / VolumeMount dicts (camelCase), e.g. a
    ReadWriteMany claim mounted at the launcher's runs_dir.
    rdzv_port: torchrun's master port (multi-node). pod_wait_timeout_s: how long a run may take
    (0: no limit; dagster-k8s' default is one day). start_timeout_s: how long pod 0 of a
    multi-node Job may stay pending (0: no limit). poll_interval_s: Kubernetes API polling.
    ttl_seconds_after_finished: how long a finished Job stays visible (multi-node).
    kubeconfig_file / kube_context / load_incluster_config: how to reach the cluster (default:
    in-cluster config inside a pod, else ~/.kube/config).
    """

    image: str
    namespace: str = "default"
    nodes: int = 1
    workdir: str = "/opt/wonderforge"
    python: str = "python"
    image_pull_policy: str = "IfNotPresent"
    job: bool = False
    secret: str | None = None
    service_account: str | None = None
    cpu: str | None = None
    memory: str | None = None
    shm_size: str | None = "16Gi"
    node_selector: dict[str, str] = dataclasses.field(default_factory=dict)
    tolerations: list[dict] = dataclasses.field(default_factory=list)
    volumes: list[dict] = dataclasses.field(default_factory=list)
    volume_mounts: list[dict] = dataclasses.field(default_factory=list)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    rdzv_port: int = 29500
    pod_wait_timeout_s: float = 0.0
    start_timeout_s: float = 0.0
    poll_interval_s: float = 10.0
    ttl_seconds_after_finished: int = 3600
    kubeconfig_file: str | None = None
    kube_context: str | None = None
    load_incluster_config: bool | None = None

    def __post_init__(self):
        if not self.image:
            raise ValueError("k8s: `image` is required (an image with this repository installed)")
        if not _DNS_LABEL.match(self.namespace):
            raise ValueError(f"k8s: invalid namespace {self.namespace!r} (a DNS label)")
        if self.nodes < 1:
            raise ValueError(f"k8s: nodes must be >= 1, got {self.nodes}")
        if not 0 < self.rdzv_port < 65536:
            raise ValueError(f"k8s: rdzv_port {self.rdzv_port} is not a port number")
        names = {v.get("name") for v in self.volumes}
        for mount in self.volume_mounts:
            if mount.get("name") not in names or not mount.get("mountPath"):
                raise ValueError(
                    f"k8s: volume mount {mount} needs a `mountPath` and the `name` of one of the "
                    f"volumes {sorted(n for n in names if n)}"
                )

    @property
    def indexed(self) -> bool:
        """Whether runs are indexed Jobs (several nodes, or `job`) rather than bare pods."""
        return self.nodes > 1 or self.job


def config_from(value: K8sConfig | dict) -> K8sConfig:
    """A K8sConfig from itself or a dict of its fields (unknown keys are an error)."""
    if isinstance(value, K8sConfig):
        return value
    known = {f.name for f in dataclasses.fields(K8sConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"k8s: unknown settings {unknown}; known: {sorted(known)}")
    return K8sConfig(**value)


# ---- rendering (pure) ---------------------------------------------------------------------------


def k8s_name(model: str, version: str, suffix: str = "") -> str:
    """A DNS-1123 name for a run's objects: `wf-<model>-<version>[-<suffix>]`, at most 52
    characters (the version's hash is kept when the name has to be shortened)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", f"{model}-{version}".lower()).strip("-")
    tail = f"-{suffix}" if suffix else ""
    room = MAX_JOB_NAME - len("wf-") - len(tail)
    if len(clean) > room:
        clean = clean[: room - 9].rstrip("-") + "-" + clean[-8:]
    return f"wf-{clean}{tail}"


def container_config_path(config: Path) -> str:
    """The YAML's path relative to the repository root (the container's working directory)."""
    return PurePosixPath(Path(config).resolve().relative_to(CONFIG_ROOT.parent.parent)).as_posix()


def training_command(
    cfg: K8sConfig,
    config: str,
    args: list[str],
    log_path: str,
    processes: int,
    master: str | None = None,
) -> list[str]:
    """The container command: `training.runlog <log> -- [torchrun ...] -m training.cli fit`.

    master: pod 0's DNS name for a multi-node run (static rendezvous, node rank from
    $(NODE_RANK), which Kubernetes expands in commands)."""
    entry = ["-m", "training.cli", "fit", "--config", config, *args]
    if master is not None:
        torchrun = [
            "-m",
            "torch.distributed.run",
            f"--nnodes={cfg.nodes}",
            f"--nproc_per_node={processes}",
            f"--node_rank=$({NODE_RANK_ENV})",
            f"--master_addr={master}",
            f"--master_port={cfg.rdzv_port}",
        ]
        entry = [*torchrun, *entry]
    elif processes > 1:
        entry = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        entry += ["-m", "training.cli", "fit", "--config", config, *args]
    return [cfg.python, "-m", "training.runlog", log_path, "--", cfg.python, *entry]


def check_no_inline_secrets(env: dict[str, str]) -> None:
    """Refuse credentials as inline values: they belong in the Secret (`K8sConfig.secret`)."""
    leaked = sorted(name for name in env if SECRET_NAMES.search(name))
    if leaked:
        raise ValueError(
            f"k8s: refusing to put {leaked} into the pod spec as plain values; store them in a "
            "Kubernetes Secret and name it in the launcher's `k8s.secret` setting"
        )


def render_container(
    cfg: K8sConfig, command: list[str], env: dict[str, str], gpus: int
) -> dict[str, Any]:
    """The training container: image, command, env (+ the Secret), GPU limits, mounts."""
    check_no_inline_secrets(env)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "workingDir": cfg.workdir,
        "command": list(command),
        "env": [{"name": k, "value": str(v)} for k, v in sorted(env.items())],
    }
    if cfg.indexed:
        container["env"].append(
            {
                "name": NODE_RANK_ENV,
                "valueFrom": {
                    "fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}
                },
            }
        )
        container["ports"] = [{"name": "rdzv", "containerPort": cfg.rdzv_port}]
    if cfg.secret:
        container["envFrom"] = [{"secretRef": {"name": cfg.secret}}]
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if gpus > 0:
        limits[GPU_RESOURCE] = str(gpus)
    if cfg.cpu:
        requests["cpu"] = cfg.cpu
    if cfg.memory:
        requests["memory"] = limits["memory"] = cfg.memory
    container["resources"] = {"limits": limits, **({"requests": requests} if requests else {})}
    mounts = [dict(m) for m in cfg.volume_mounts]
    if cfg.shm_size:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if mounts:
        container["volumeMounts"] = mounts
    return container


def render_pod_spec(
    cfg: K8sConfig, command: list[str], env: dict[str, str], gpus: int
) -> dict[str, Any]:
    """A PodSpec (Kubernetes JSON layout) running `command` once (restartPolicy Never)."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [render_container(cfg, command, env, gpus)],
    }
    volumes = [dict(v) for v in cfg.volumes]
    if cfg.shm_size:
        volumes.append(
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": cfg.shm_size}}
        )
    if volumes:
        spec["volumes"] = volumes
    if cfg.service_account:
        spec["serviceAccountName"] = cfg.service_account
    if cfg.node_selector:
        spec["nodeSelector"] = dict(cfg.node_selector)
    if cfg.tolerations:
        spec["tolerations"] = [dict(t) for t in cfg.tolerations]
    return spec


def labels(cfg: K8sConfig, name: str, model: str, version: str) -> dict[str, str]:
    """Labels of every object of a run (values are DNS-label safe)."""
    return {
        **cfg.labels,
        "app.kubernetes.io/name": "wonderforge",
        "app.kubernetes.io/component": "training",
        "wonderforge.dev/model": re.sub(r"[^a-z0-9-]+", "-", model.lower()).strip("-")[:63],
        "wonderforge.dev/version": re.sub(r"[^a-z0-9-]+", "-", version.lower())[:63],
        JOB_LABEL: name,
    }


def service_host(cfg: K8sConfig, name: str) -> str:
    """DNS name of pod 0 of the indexed Job `name` behind its headless Service `name`."""
    return f"{name}-0.{name}.{cfg.namespace}.svc"


def render_job(
    cfg: K8sConfig,
    name: str,
    command: list[str],
    env: dict[str, str],
    gpus: int,
    run_labels: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(headless Service, indexed Job) of a multi-node run: `cfg.nodes` pods with completion
    indices 0..N-1, hostnames `<name>-<i>` under subdomain `<name>`, no pod restarts or Job
    retries (Dagster retries the step and the run resumes from its checkpoint)."""
    metadata = {"name": name, "namespace": cfg.namespace, "labels": dict(run_labels)}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {JOB_LABEL: name},
            "ports": [{"name": "rdzv", "port": cfg.rdzv_port, "targetPort": cfg.rdzv_port}],
        },
    }
    pod_spec = render_pod_spec(cfg, command, env, gpus)
    pod_spec["subdomain"] = name
    template_meta: dict[str, Any] = {"labels": dict(run_labels)}
    if cfg.annotations:
        template_meta["annotations"] = dict(cfg.annotations)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**metadata, "labels": dict(run_labels)},
        "spec": {
            "completionMode": "Indexed",
            "completions": cfg.nodes,
            "parallelism": cfg.nodes,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": cfg.ttl_seconds_after_finished,
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }
    return service, job


def mounted(path: str | Path, mounts: list[dict]) -> bool:
    """Whether `path` lies under one of the volume mounts."""
    path = PurePosixPath(str(path))
    return any(
        path == PurePosixPath(m["mountPath"]) or PurePosixPath(m["mountPath"]) in path.parents
        for m in mounts
    )


def check_shared_paths(cfg: K8sConfig, run_dir: Path, store_uri: str | None) -> None:
    """The run folder (and a local store) must be on a volume the pods mount at the same path."""
    if not mounted(run_dir, cfg.volume_mounts):
        raise ValueError(
            f"k8s: the run folder {run_dir} is not under any of the pods' volume mounts "
            f"{[m['mountPath'] for m in cfg.volume_mounts]}; mount a shared (ReadWriteMany) "
            "volume at the launcher's runs_dir in the Dagster process and in `k8s.volume_mounts` "
            "(docs/operations.md)"
        )
    if store_uri and store_uri.startswith("file://"):
        local = store_uri[len("file://") :]
        if not mounted(local, cfg.volume_mounts):
            raise ValueError(
                f"k8s: the artifact store {store_uri} is a local folder the pods do not mount; "
                "use an s3:// store or mount the folder at the same path"
            )


# ---- launching ----------------------------------------------------------------------------------


def _require_dagster_k8s():
    try:
        import dagster_k8s
        import dagster_k8s.pipes
        import kubernetes
    except ImportError as error:
        raise ImportError(
            "launcher mode 'k8s' needs the dagster-k8s package, which is not installed: "
            "pip install 'wonderforge[k8s]' (dagster-k8s==0.29.27, matching dagster 1.13.27)"
        ) from error
    return dagster_k8s, kubernetes


def pipes_k8s_client(cfg: K8sConfig):
    """A `dagster_k8s.PipesK8sClient` for single-pod runs."""
    dagster_k8s, _ = _require_dagster_k8s()
    return dagster_k8s.PipesK8sClient(
        poll_interval=cfg.poll_interval_s,
        kubeconfig_file=cfg.kubeconfig_file,
        kube_context=cfg.kube_context,
        load_incluster_config=cfg.load_incluster_config,
    )


def kube_apis(cfg: K8sConfig) -> tuple[Any, Any]:
    """(CoreV1Api, BatchV1Api) for multi-node runs."""
    _, kubernetes = _require_dagster_k8s()
    if cfg.load_incluster_config or (
        cfg.load_incluster_config is None
        and not (cfg.kubeconfig_file or cfg.kube_context)
        and os.getenv("KUBERNETES_SERVICE_HOST")
    ):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config(
            config_file=cfg.kubeconfig_file, context=cfg.kube_context
        )
    return kubernetes.client.CoreV1Api(), kubernetes.client.BatchV1Api()


def pod_log_reader():
    """dagster-k8s' reader that extracts Pipes messages from a pod's log stream."""
    dagster_k8s, _ = _require_dagster_k8s()
    return dagster_k8s.pipes.PipesK8sPodLogsMessageReader()


def launch(launcher, context, model, config, args, run_dir, env, extras):
    """Run one training on Kubernetes; returns (Pipes invocation, container command, log path).

    Called by `TrainingLauncher.run` in mode "k8s" (`args` already hold the run folder, the
    device count and --ckpt_path when resuming)."""
    from training.launch import TrainingFailed

    cfg: K8sConfig = launcher.cluster
    check_shared_paths(cfg, run_dir, launcher.store_uri)
    processes = launcher.processes()
    gpus = launcher.gpus
    config_rel = container_config_path(config)
    version = extras["version"]
    name = k8s_name(model, version, secrets.token_hex(2))
    run_labels = labels(cfg, name, model, version)
    if not cfg.indexed:
        log_path = run_dir / "train.log"
        command = training_command(cfg, config_rel, args, str(log_path), processes)
        spec = render_pod_spec(cfg, command, env, gpus)
        meta = {"labels": run_labels, "annotations": dict(cfg.annotations)}
        context.log.info(f"training {model} in a pod ({processes} process(es)) in {cfg.namespace}")
        invocation = pipes_k8s_client(cfg).run(
            context=context,
            extras=extras,
            namespace=cfg.namespace,
            base_pod_meta=meta,
            base_pod_spec=spec,
            pod_wait_timeout=cfg.pod_wait_timeout_s,
        )
        return invocation, command, log_path

    log_path = run_dir / "train-node0.log"
    node_log = str(run_dir / f"train-node$({NODE_RANK_ENV}).log")
    if cfg.nodes > 1:
        args = [*args, f"--trainer.num_nodes={cfg.nodes}"]
    command = training_command(
        cfg, config_rel, args, node_log, processes, master=service_host(cfg, name)
    )
    core, batch = kube_apis(cfg)
    reader = pod_log_reader()
    with dg.open_pipes_session(
        context=context,
        context_injector=dg.PipesEnvContextInjector(),
        message_reader=reader,
        extras=extras,
    ) as session:
        service, job = render_job(
            cfg, name, command, {**env, **session.get_bootstrap_env_vars()}, gpus, run_labels
        )
        core.create_namespaced_service(cfg.namespace, service)
        try:
            batch.create_namespaced_job(cfg.namespace, job)
            context.log.info(
                f"training {model} as indexed Job {cfg.namespace}/{name}: {cfg.nodes} pods x "
                f"{processes} process(es): {shlex.join(command)}"
            )
            leader = wait_for_leader(core, cfg, name)
            reader.consume_pod_logs(
                context=context, core_api=core, pod_name=leader, namespace=cfg.namespace
            )
            failed = wait_for_job(batch, cfg, name)
            if failed is not None:
                code = leader_exit_code(core, cfg, leader)
                message = launcher.failure_message(model, config, args, code or 1, log_path)
                raise TrainingFailed(f"Job {cfg.namespace}/{name}: {failed}\n{message}", code)
        finally:
            _delete(batch.delete_namespaced_job, name, cfg.namespace, "Background")
            _delete(core.delete_namespaced_service, name, cfg.namespace, None)
    return dg.PipesClientCompletedInvocation(session), command, log_path


def _delete(delete, name: str, namespace: str, propagation: str | None) -> None:
    """Delete an object; a missing one is fine (the TTL controller may have removed it)."""
    try:
        if propagation:
            delete(name, namespace, propagation_policy=propagation)
        else:
            delete(name, namespace)
    except Exception as error:
        if getattr(error, "status", None) != 404:
            raise


def _pods(core, cfg: K8sConfig, name: str) -> list:
    return list(
        core.list_namespaced_pod(cfg.namespace, label_selector=f"{JOB_LABEL}={name}").items or []
    )


def _index(pod) -> str | None:
    annotations = pod.metadata.annotations or {}
    labels_ = pod.metadata.labels or {}
    return annotations.get(COMPLETION_INDEX, labels_.get(COMPLETION_INDEX))


def wait_for_leader(core, cfg: K8sConfig, name: str, sleep=time.sleep) -> str:
    """Name of pod 0 once it runs (or already ended); fails fast on image errors and after
    `start_timeout_s` (0: wait as long as the cluster queues it)."""
    start = time.monotonic()
    while True:
        for pod in _pods(core, cfg, name):
            if _index(pod) != "0":
                continue
            if pod.status.phase in ("Running", "Succeeded", "Failed"):
                return pod.metadata.name
            for status in pod.status.container_statuses or []:
                waiting = getattr(status.state, "waiting", None)
                if waiting is not None and waiting.reason in FAILED_WAITING:
                    raise RuntimeError(
                        f"k8s: pod {pod.metadata.name} cannot start: {waiting.reason}: "
                        f"{waiting.message} (image {cfg.image})"
                    )
        if cfg.start_timeout_s and time.monotonic() - start > cfg.start_timeout_s:
            raise TimeoutError(
                f"k8s: pod 0 of Job {cfg.namespace}/{name} did not start within "
                f"{cfg.start_timeout_s:.0f} s (k8s.start_timeout_s)"
            )
        sleep(cfg.poll_interval_s)


def wait_for_job(batch, cfg: K8sConfig, name: str, sleep=time.sleep) -> str | None:
    """Wait for the Job to finish: None when every index succeeded, else why it failed."""
    start = time.monotonic()
    while True:
        status = batch.read_namespaced_job_status(name, cfg.namespace).status
        for condition in status.conditions or []:
            if condition.status != "True":
                continue
            if condition.type == "Complete":
                return None
            if condition.type == "Failed":
                return f"{condition.reason}: {condition.message}"
        if (status.succeeded or 0) >= cfg.nodes:
            return None
        if status.failed:
            return f"{status.failed} pod(s) failed"
        if cfg.pod_wait_timeout_s and time.monotonic() - start > cfg.pod_wait_timeout_s:
            return f"still running after {cfg.pod_wait_timeout_s:.0f} s (k8s.pod_wait_timeout_s)"
        sleep(cfg.poll_interval_s)


def leader_exit_code(core, cfg: K8sConfig, pod_name: str) -> int | None:
    """Exit code of the training container of pod 0, when Kubernetes recorded one."""
    pod = core.read_namespaced_pod_status(pod_name, cfg.namespace)
    for status in pod.status.container_statuses or []:
        terminated = getattr(status.state, "terminated", None)
        if status.name == CONTAINER and terminated is not None:
            return int(terminated.exit_code)
    return None
