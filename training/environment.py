"""What a run executes on: package versions, Python, accelerators. Recorded with every run."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

PACKAGES = (
    "wonderforge",
    "torch",
    "lightning",
    "dagster",
    "webdataset",
    "diffusers",
    "transformers",
    "safetensors",
    "gsplat",
    "open3d",
    "pycolmap",
    "boto3",
    "numpy",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, None where it is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def accelerators() -> dict:
    """CUDA availability and the visible devices (name, memory, compute capability)."""
    import torch

    info: dict = {
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "devices": [],
        "cpu_threads": torch.get_num_threads(),
    }
    if info["cuda_available"]:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            info["devices"].append(
                {
                    "index": index,
                    "name": props.name,
                    "memory_gib": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}",
                    "bf16": torch.cuda.is_bf16_supported(),
                }
            )
    return info


def environment_report() -> dict:
    """One JSON-serialisable record of the environment."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
        "accelerators": accelerators(),
    }
