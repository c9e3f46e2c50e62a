"""Training entry point: `python -m training.cli fit --config training/configs/<model>/<size>.yaml`.

Lightning's CLI reads one YAML per model and size; any field can be overridden on the command
line (`--trainer.max_steps 100`, `--data.init_args.batch_size 8`). The resolved config is saved
beside the logs and published with the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.cli import LightningCLI

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"
SIZES = ("tiny", "small", "paper")


def config_path(model: str, size: str) -> Path:
    """The YAML of `model` at `size`; a clear error when there is none."""
    path = CONFIG_ROOT / model / f"{size}.yaml"
    if not path.is_file():
        known = sorted(p.name for p in CONFIG_ROOT.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no config {path} (models: {known}; sizes: {list(SIZES)})")
    return path


def run(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI; tests pass `args`."""
    return LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main() -> None:
    run()


if __name__ == "__main__":
    main()
