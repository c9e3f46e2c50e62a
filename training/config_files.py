"""Where the YAML configs live: one per model and size (`training/configs/<model>/<size>.yaml`).

Kept free of Lightning so the Dagster process can name configs without importing it.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
SIZES = ("tiny", "small", "paper")


def config_path(model: str, size: str) -> Path:
    """The YAML of `model` at `size`; a clear error when there is none."""
    path = CONFIG_ROOT / model / f"{size}.yaml"
    if not path.is_file():
        known = sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no config {path} (models: {known}; sizes: {list(SIZES)})")
    return path
