"""Kubernetes launch mode: pod spec and indexed-Job manifests asserted field by field and against
basic Kubernetes schema rules; launching through fakes of the dagster-k8s client / Kubernetes API
that run the pod's Pipes side for real (context from the rendered env, messages from its log)."""

import contextlib
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pytest
from dagster._core.pipes.utils import extract_message_or_forward_to_stdout

from training import launch_k8s
from training.config_files import config_path
from training.launch import TrainingFailed, TrainingLauncher
from training.launch_k8s import (
    COMPLETION_INDEX,
    GPU_RESOURCE,
    JOB_LABEL,
    K8sConfig,
    config_from,
    k8s_name,
    render_job,
    render_pod_spec,
    training_command,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
SHARED = {"name": "shared", "persistentVolumeClaim": {"claimName": "wf-runs"}}
REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path: Path, **overrides) -> K8sConfig:
    settings = {
        "image": "registry.example/wonderforge:1.0",
        "namespace": "ml",
        "secret": "wonderforge-s3",
        "service_account": "trainer",
        "cpu": "8",
        "memory": "64Gi",
        "node_selector": {"gpu": "h100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [SHARED],
        "volume_mounts": [{"name": "shared", "mountPath": str(tmp_path)}],
        "poll_interval_s": 0.01,
        **overrides,
    }
    return config_from(settings)


def assert_valid_pod_spec(spec: dict) -> None:
    """Schema basics of a PodSpec: what the API server would reject."""
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    volumes = {v["name"] for v in spec.get("volumes", [])}
    assert len(volumes) == len(spec.get("volumes", []))  # unique names
    for volume in spec.get("volumes", []):
        assert DNS_LABEL.match(volume["name"])
        assert len(set(volume) - {"name"}) == 1  # exactly one volume source
    (container,) = spec["containers"]
    assert DNS_LABEL.match(container["name"]) and container["image"]
    assert all(isinstance(part, str) for part in container["command"])
    for env in container["env"]:
        assert ENV_NAME.match(env["name"])
        assert ("value" in env) != ("valueFrom" in env)
        if "value" in env:
            assert isinstance(env["value"], str)
    for mount in container.get("volumeMounts", []):
        assert mount["name"] in volumes and mount["mountPath"].startswith("/")
    for kind in ("limits", "requests"):
        for name, quantity in container["resources"].get(kind, {}).items():
            assert isinstance(quantity, str) and QUANTITY.match(quantity), (name, quantity)
    limits, requests = container["resources"]["limits"], container["resources"].get("requests", {})
    if GPU_RESOURCE in requests:  # extended resources: requests must equal limits
        assert requests[GPU_RESOURCE] == limits[GPU_RESOURCE]


def test_single_node_pod_spec_field_by_field(tmp_path):
    cfg = _cfg(tmp_path)
    run_dir = tmp_path / "runs" / "image_vae" / "v1"
    command = training_command(
        cfg, "training/configs/image_vae/tiny.yaml", ["--x=1"], f"{run_dir}/train.log", 4
    )
    env = {"WONDERFORGE_STORE": "s3://bucket/wf", "PYTHONUNBUFFERED": "1"}
    spec = render_pod_spec(cfg, command, env, gpus=4)
    assert_valid_pod_spec(spec)
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "trainer"
    assert spec["nodeSelector"] == {"gpu": "h100"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert spec["volumes"] == [
        SHARED,
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
    ]
    (container,) = spec["containers"]
    assert container["name"] == "train"
    assert container["image"] == "registry.example/wonderforge:1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["workingDir"] == "/opt/wonderforge"
    assert container["command"] == [
        "python",
        "-m",
        "training.runlog",
        f"{run_dir}/train.log",
        "--",
        "python",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=4",
        "-m",
        "training.cli",
        "fit",
        "--config",
        "training/configs/image_vae/tiny.yaml",
        "--x=1",
    ]
    assert container["env"] == [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "WONDERFORGE_STORE", "value": "s3://bucket/wf"},
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "wonderforge-s3"}}]
    assert container["resources"] == {
        "limits": {GPU_RESOURCE: "4", "memory": "64Gi"},
        "requests": {"cpu": "8", "memory": "64Gi"},
    }
    assert container["volumeMounts"] == [
        {"name": "shared", "mountPath": str(tmp_path)},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    assert "ports" not in container and "subdomain" not in spec

    cpu_only = render_pod_spec(_cfg(tmp_path, shm_size=None, secret=None), ["python"], {}, gpus=0)
    assert_valid_pod_spec(cpu_only)
    assert cpu_only["containers"][0]["resources"]["limits"] == {"memory": "64Gi"}
    assert "envFrom" not in cpu_only["containers"][0]
    assert [v["name"] for v in cpu_only["volumes"]] == ["shared"]


def test_multi_node_indexed_job_and_headless_service(tmp_path):
    cfg = _cfg(tmp_path, nodes=4, rdzv_port=29400, annotations={"team": "worlds"})
    name = k8s_name("camera_video_model", "20261122T040604Z-60dabf62", "ab12")
    assert name == "wf-camera-video-model-20261122t040604z-60dabf62-ab12"
    master = launch_k8s.service_host(cfg, name)
    assert master == f"{name}-0.{name}.ml.svc"
    command = training_command(cfg, "c.yaml", ["--y=2"], "/r/train-node$(NODE_RANK).log", 8, master)
    labels = launch_k8s.labels(cfg, name, "camera_video_model", "20261122T040604Z-60dabf62")
    service, job = render_job(cfg, name, command, {"A": "1"}, gpus=8, run_labels=labels)

    assert service["apiVersion"] == "v1" and service["kind"] == "Service"
    assert service["metadata"] == {"name": name, "namespace": "ml", "labels": labels}
    assert service["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {JOB_LABEL: name},
        "ports": [{"name": "rdzv", "port": 29400, "targetPort": 29400}],
    }
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == name and job["metadata"]["namespace"] == "ml"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 3600
    template = spec["template"]
    # the Service selects exactly the Job's pods
    assert template["metadata"]["labels"][JOB_LABEL] == name
    assert template["metadata"]["annotations"] == {"team": "worlds"}
    pod = template["spec"]
    assert_valid_pod_spec(pod)
    assert pod["subdomain"] == name and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["resources"]["limits"][GPU_RESOURCE] == "8"
    assert container["ports"] == [{"name": "rdzv", "containerPort": 29400}]
    rank = [e for e in container["env"] if e["name"] == "NODE_RANK"]
    assert rank == [
        {
            "name": "NODE_RANK",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}},
        }
    ]
    torchrun = container["command"][container["command"].index("torch.distributed.run") + 1 :]
    assert torchrun[:5] == [
        "--nnodes=4",
        "--nproc_per_node=8",
        "--node_rank=$(NODE_RANK)",  # expanded by the kubelet from the env above
        f"--master_addr={master}",
        "--master_port=29400",
    ]
    for obj in (service, job):
        assert DNS_LABEL.match(obj["metadata"]["name"]) and len(obj["metadata"]["name"]) <= 52
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63 and re.match(
                r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", value
            )


def test_manifests_deserialize_into_kubernetes_models(tmp_path):
    """Strict check with the real client models (unknown fields raise) when dagster-k8s is
    installed (`wonderforge[k8s]`)."""
    kubernetes = pytest.importorskip("kubernetes")
    models = pytest.importorskip("dagster_k8s.models")
    cfg = _cfg(tmp_path, nodes=2)
    command = training_command(cfg, "c.yaml", [], "/r/log", 2, "master")
    name = k8s_name("image_vae", "v1")
    service, job = render_job(
        cfg, name, command, {"A": "1"}, 2, launch_k8s.labels(cfg, name, "m", "v")
    )
    for cls, body in ((kubernetes.client.V1Service, service), (kubernetes.client.V1Job, job)):
        model = models.k8s_model_from_dict(cls, models.k8s_snake_case_dict(cls, body))
        assert model.metadata.name == name
    pod = models.k8s_model_from_dict(
        kubernetes.client.V1PodSpec,
        models.k8s_snake_case_dict(kubernetes.client.V1PodSpec, job["spec"]["template"]["spec"]),
    )
    assert pod.containers[0].resources.limits[GPU_RESOURCE] == "2"


def test_names_stay_dns_labels():
    long = k8s_name("a_very_long_model_name_for_a_frame_stage_three", "20261122T040604Z-60dabf62")
    assert len(long) <= 52 and DNS_LABEL.match(long) and long.endswith("60dabf62")
    assert DNS_LABEL.match(f"{long}-9999")  # pod hostnames <job>-<index> stay labels


def test_invalid_settings_and_inline_secrets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown settings \\['gpu'\\]"):
        config_from({"image": "x", "gpu": 1})
    with pytest.raises(ValueError, match="`image` is required"):
        K8sConfig(image="")
    with pytest.raises(ValueError, match=r"volume mount .* needs a `mountPath` and the `name`"):
        K8sConfig(image="x", volume_mounts=[{"name": "missing", "mountPath": "/m"}])
    with pytest.raises(ValueError, match="nodes must be >= 1"):
        K8sConfig(image="x", nodes=0)
    cfg = _cfg(tmp_path)
    with pytest.raises(ValueError, match=r"\['AWS_SECRET_ACCESS_KEY'\] .* Kubernetes Secret"):
        render_pod_spec(cfg, ["python"], {"AWS_SECRET_ACCESS_KEY": "hunter2"}, gpus=1)
    with pytest.raises(ValueError, match="not under any of the pods' volume mounts"):
        launch_k8s.check_shared_paths(cfg, Path("/elsewhere/runs/m/v"), "s3://b/p")
    with pytest.raises(ValueError, match="local folder the pods do not mount"):
        launch_k8s.check_shared_paths(cfg, tmp_path / "runs", "file:///srv/store")
    launch_k8s.check_shared_paths(cfg, tmp_path / "runs", f"file://{tmp_path}/store")


def test_missing_dagster_k8s_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dagster_k8s", None)
    with pytest.raises(ImportError, match=r"pip install 'wonderforge\[k8s\]'"):
        launch_k8s.pipes_k8s_client(_cfg(tmp_path))


# ---- launching against fakes --------------------------------------------------------------------

POD_SCRIPT = """
from dagster_pipes import open_dagster_pipes
with open_dagster_pipes() as pipes:
    pipes.log.info("pod says hello")
    pipes.report_custom_message({"step": 1, "metrics": {"train/loss": 0.5}})
    pipes.report_asset_materialization(metadata={"global_step": 7, "train/loss": 0.25})
print("ordinary pod output")
"""


def _run_pod(env_list: list[dict]) -> list[str]:
    """Run the Pipes side of a pod with the env it was given; its log lines (stdout+stderr)."""
    env = {e["name"]: e["value"] for e in env_list if "value" in e}
    done = subprocess.run(
        [sys.executable, "-c", POD_SCRIPT],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return (done.stderr + done.stdout).splitlines()


class _LogLinesReader(dg.PipesMessageReader):
    """Stands in for PipesK8sPodLogsMessageReader: messages from a pod's log lines."""

    @contextlib.contextmanager
    def read_messages(self, handler):
        self.handler = handler
        yield {"stdio": "stderr"}

    def consume_pod_logs(self, context, core_api, pod_name, namespace):
        for line in core_api.logs[pod_name]:
            extract_message_or_forward_to_stdout(self.handler, line)

    def no_messages_debug_text(self) -> str:
        return "test reader over fake pod logs"


class _FakePipesK8sClient:
    calls: ClassVar[list[dict]] = []

    def run(self, *, context, extras, namespace, base_pod_meta, base_pod_spec, pod_wait_timeout):
        self.calls.append(
            {"namespace": namespace, "meta": base_pod_meta, "spec": base_pod_spec, "extras": extras}
        )
        self.calls[-1]["pod_wait_timeout"] = pod_wait_timeout
        reader = _LogLinesReader()
        with dg.open_pipes_session(
            context=context,
            context_injector=dg.PipesEnvContextInjector(),
            message_reader=reader,
            extras=extras,
        ) as session:
            env = [*base_pod_spec["containers"][0]["env"]]
            env += [{"name": k, "value": v} for k, v in session.get_bootstrap_env_vars().items()]
            core = types.SimpleNamespace(logs={"pod": _run_pod(env)})
            reader.consume_pod_logs(context, core, "pod", namespace)
        return dg.PipesClientCompletedInvocation(session)


def _launch(launcher: TrainingLauncher, version: str = "20260101T000000Z-aaaaaaaa"):
    captured = {}

    @dg.asset
    def trained(context: dg.AssetExecutionContext):
        captured["run"] = launcher.run(context, "image_vae", "tiny", version, ["--x=1"])
        return dg.MaterializeResult(metadata=captured["run"].reported)

    result = dg.materialize([trained], raise_on_error=False)
    return result, captured.get("run")


def test_single_node_launch_through_pipes_k8s_client(tmp_path, monkeypatch):
    _FakePipesK8sClient.calls = []
    monkeypatch.setattr(launch_k8s, "pipes_k8s_client", lambda cfg: _FakePipesK8sClient())
    cfg = _cfg(tmp_path)
    launcher = TrainingLauncher(
        tmp_path / "runs", mode="k8s", gpus=2, store_uri="s3://bucket/wf", k8s=cfg
    )
    result, run = _launch(launcher)
    assert result.success
    assert run.reported["global_step"].value == 7 and run.progress[0]["step"] == 1
    (call,) = _FakePipesK8sClient.calls
    assert call["namespace"] == "ml" and call["pod_wait_timeout"] == 0.0
    assert call["extras"]["model"] == "image_vae"
    assert call["meta"]["labels"]["wonderforge.dev/model"] == "image-vae"
    (container,) = call["spec"]["containers"]
    run_dir = tmp_path / "runs" / "image_vae" / "20260101T000000Z-aaaaaaaa"
    assert container["command"][:5] == [
        "python",
        "-m",
        "training.runlog",
        f"{run_dir}/train.log",
        "--",
    ]
    assert "--nproc_per_node=2" in container["command"]
    relative = str(config_path("image_vae", "tiny").relative_to(REPO))
    assert container["command"][container["command"].index("--config") + 1] == relative
    assert f"--trainer.default_root_dir={run_dir}" in container["command"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WONDERFORGE_STORE"] == "s3://bucket/wf"
    assert env["WONDERFORGE_CKPT_DIR"] == str(run_dir / "ckpt")
    assert "CUDA_VISIBLE_DEVICES" not in env


class _FakeCluster:
    """CoreV1Api + BatchV1Api fakes: creating the Job "starts" pod 0, which runs the Pipes side
    with the Job's env; the Job then completes (or fails with `exit_code`)."""

    def __init__(self, exit_code: int = 0):
        self.exit_code, self.created, self.deleted, self.logs = exit_code, [], [], {}
        self.polls = 0

    def create_namespaced_service(self, namespace, body):
        self.created.append(("Service", namespace, body))

    def create_namespaced_job(self, namespace, body):
        self.created.append(("Job", namespace, body))
        env = body["spec"]["template"]["spec"]["containers"][0]["env"]
        self.logs["pod-0"] = _run_pod(env)

    def list_namespaced_pod(self, namespace, label_selector):
        self.polls += 1
        job = next(b for kind, _, b in self.created if kind == "Job")
        assert label_selector == f"{JOB_LABEL}={job['metadata']['name']}"
        phase = "Pending" if self.polls == 1 else "Running"
        pods = []
        for i in range(job["spec"]["completions"]):
            meta = types.SimpleNamespace(
                name=f"pod-{i}", annotations={COMPLETION_INDEX: str(i)}, labels={}
            )
            status = types.SimpleNamespace(phase=phase, container_statuses=[])
            pods.append(types.SimpleNamespace(metadata=meta, status=status))
        return types.SimpleNamespace(items=pods[::-1])

    def read_namespaced_job_status(self, name, namespace):
        kind = "Complete" if self.exit_code == 0 else "Failed"
        condition = types.SimpleNamespace(
            type=kind, status="True", reason="BackoffLimitExceeded", message="pod failed"
        )
        return types.SimpleNamespace(
            status=types.SimpleNamespace(conditions=[condition], succeeded=0, failed=0)
        )

    def read_namespaced_pod_status(self, name, namespace):
        terminated = types.SimpleNamespace(exit_code=self.exit_code)
        status = types.SimpleNamespace(
            name="train", state=types.SimpleNamespace(terminated=terminated)
        )
        return types.SimpleNamespace(status=types.SimpleNamespace(container_statuses=[status]))

    def delete_namespaced_job(self, name, namespace, propagation_policy=None):
        self.deleted.append(("Job", name, propagation_policy))

    def delete_namespaced_service(self, name, namespace):
        self.deleted.append(("Service", name, None))


@pytest.mark.parametrize(
    ("nodes", "as_job", "exit_code"), [(2, False, 0), (2, False, 137), (1, True, 0)]
)
def test_multi_node_launch_creates_job_reads_pod_zero_and_cleans_up(
    tmp_path, monkeypatch, nodes, as_job, exit_code
):
    cluster = _FakeCluster(exit_code)
    reader = _LogLinesReader()
    monkeypatch.setattr(launch_k8s, "kube_apis", lambda cfg: (cluster, cluster))
    monkeypatch.setattr(launch_k8s, "pod_log_reader", lambda: reader)
    launcher = TrainingLauncher(
        tmp_path / "runs",
        mode="k8s",
        gpus=8,
        store_uri="s3://b/p",
        k8s=_cfg(tmp_path, nodes=nodes, job=as_job),
    )
    result, run = _launch(launcher)
    kinds = [kind for kind, _, _ in cluster.created]
    assert kinds == ["Service", "Job"]
    job = cluster.created[1][2]
    name = job["metadata"]["name"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert job["spec"]["completions"] == nodes and f"--nnodes={nodes}" in command
    assert ("--trainer.num_nodes=2" in command) == (nodes == 2)
    assert any(a.endswith("train-node$(NODE_RANK).log") for a in command)
    assert cluster.deleted == [("Job", name, "Background"), ("Service", name, None)]
    if exit_code == 0:
        assert result.success
        assert run.reported["global_step"].value == 7
        assert run.log_path.name == "train-node0.log"
    else:
        assert not result.success
        error = result.get_step_failure_events()[0].step_failure_data.error
        while error.cause is not None and "TrainingFailed" not in error.cls_name:
            error = error.cause
        assert "TrainingFailed" in error.cls_name
        assert f"Job ml/{name}: BackoffLimitExceeded: pod failed" in error.message
        assert "training image_vae failed (exit code 137)" in error.message


def test_failed_exit_code_of_training_is_kept(tmp_path):
    error = TrainingFailed("boom", exit_code=137)
    assert error.exit_code == 137 and error.retryable
    assert not TrainingFailed("usage", exit_code=2).retryable
