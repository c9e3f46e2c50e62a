"""Lightning callbacks shared by every trainer."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import lightning as L
import torch

from datagen.store import store_from_env, store_from_env_uri
from training.environment import environment_report
from training.publish import publish_directory


def scalar_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The trainer's logged metrics as plain finite floats."""
    metrics = {}
    for name, value in trainer.callback_metrics.items():
        number = float(value.detach().float().mean()) if torch.is_tensor(value) else float(value)
        if math.isfinite(number):
            metrics[name] = number
    return metrics


class PublishCheckpoint(L.Callback):
    """At the end of fit, rank 0 exports the model (`export_pretrained(dir)`: safetensors +
    config.json) and publishes it with metrics, the resolved run config and the environment.

    store: store URI (default: the configured store); prefix: folder in the store;
    inputs: URIs the run trained on (shard manifests, parent checkpoints), recorded as lineage;
    None records the datamodule's `train_sets` when it has them. After publishing, `index` and
    `uri` (the folder's store URI) are set on rank 0.
    """

    def __init__(
        self,
        prefix: str,
        store: str | None = None,
        model_name: str = "",
        inputs: list[str] | None = None,
    ):
        super().__init__()
        self.prefix, self.store_uri, self.model_name = prefix.strip("/"), store, model_name
        self.inputs = list(inputs) if inputs is not None else None
        self.index: dict | None = None
        self.uri: str | None = None

    def lineage(self, trainer: L.Trainer) -> list[str]:
        """The `inputs` given, else the datamodule's train_sets (else none)."""
        if self.inputs is not None:
            return self.inputs
        return [str(s) for s in getattr(trainer.datamodule, "train_sets", None) or []]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must read it
        if not trainer.is_global_zero:
            return
        if not hasattr(pl_module, "export_pretrained"):
            raise TypeError(f"{type(pl_module).__name__} has no export_pretrained(dir) method")
        store = store_from_env_uri(self.store_uri) if self.store_uri else store_from_env()
        with tempfile.TemporaryDirectory(prefix="wonderforge-export-") as tmp:
            export_dir = Path(tmp) / "export"
            export_dir.mkdir()
            extra = pl_module.export_pretrained(export_dir) or {}
            config = Path(log_dir or "") / "config.yaml"
            if config.is_file():
                (export_dir / "run_config.yaml").write_bytes(config.read_bytes())
            self.index = publish_directory(
                export_dir,
                store,
                self.prefix,
                {
                    "model": self.model_name or type(pl_module).__name__,
                    "global_step": trainer.global_step,
                    "metrics": scalar_metrics(trainer),
                    "inputs": self.lineage(trainer),
                    "environment": environment_report(),
                    **extra,
                },
            )
            self.uri = store.uri(self.prefix)
