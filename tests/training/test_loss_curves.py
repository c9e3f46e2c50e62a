"""Loss curves from a run's CSV log (or Pipes progress) rendered as a PNG; a plot failure is a
warning, never a failed training asset."""

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from assets.training_assets import loss_curve_metadata
from training.loss_curves import (
    BACKGROUND,
    CURVE_COLOURS,
    csv_metric_series,
    loss_curve_image,
    progress_metric_series,
    run_metric_series,
)


def _write_csv(run_dir, version: int, rows: list[str]) -> None:
    folder = run_dir / "lightning_logs" / f"version_{version}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_csv_series_merge_versions_skip_gaps_and_order_loss_first(tmp_path):
    header = "epoch,step,train/recon,train/loss,val/loss"
    _write_csv(tmp_path, 0, [header, "0,0,2.0,4.0,", "0,1,,3.0,9.0", "0,2,1.5,nan,"])
    _write_csv(tmp_path, 1, [header, "0,2,1.0,2.5,", "0,3,0.5,2.0,"])  # resumed at step 2
    series = csv_metric_series(tmp_path)
    assert list(series) == ["train/loss", "train/recon"]
    assert series["train/loss"] == [(0, 4.0), (1, 3.0), (2, 2.5), (3, 2.0)]
    assert series["train/recon"] == [(0, 2.0), (2, 1.0), (3, 0.5)]
    assert run_metric_series(tmp_path, [{"step": 9, "metrics": {"train/loss": 1.0}}]) == series


def test_progress_series_is_the_fallback_without_a_csv(tmp_path):
    progress = [
        {"step": 1, "metrics": {"train/loss": 3.0, "lr": 0.1}},
        {"step": 2, "metrics": {"train/loss": float("inf")}},
        {"step": 3, "metrics": {"train/loss": 1.0}},
    ]
    assert progress_metric_series(progress) == {"train/loss": [(1, 3.0), (3, 1.0)]}
    assert run_metric_series(tmp_path, progress) == {"train/loss": [(1, 3.0), (3, 1.0)]}
    assert run_metric_series(tmp_path, []) == {}


def test_csv_without_a_step_column_names_the_file(tmp_path):
    _write_csv(tmp_path, 0, ["epoch,train/loss", "0,1.0"])
    with pytest.raises(ValueError, match=r"version_0/metrics.csv: no `step` column"):
        csv_metric_series(tmp_path)


def test_image_draws_a_falling_curve_per_metric():
    steps = list(range(0, 200, 10))
    series = {
        "train/loss": [(s, 5.0 * np.exp(-s / 50)) for s in steps],
        "train/kl": [(s, 0.01 * s) for s in steps],
    }
    image = loss_curve_image(series, width=400, panel_height=100)
    assert image.shape == (200, 400, 3) and image.dtype == np.uint8
    assert (image[0, -1] == BACKGROUND).all()
    loss = np.argwhere((image[:100] == CURVE_COLOURS[0]).all(-1))  # (row, col) of the curve
    assert len(loss) > 200 and not (image[100:] == CURVE_COLOURS[0]).all(-1).any()
    left, right = loss[loss[:, 1] < 120], loss[loss[:, 1] > 350]
    assert left[:, 0].mean() < 45 < 70 < right[:, 0].mean()  # high at the start, low at the end
    kl = np.argwhere((image[100:] == CURVE_COLOURS[1]).all(-1))
    assert kl[kl[:, 1] < 120][:, 0].mean() > kl[kl[:, 1] > 350][:, 0].mean()  # rising
    flat = loss_curve_image({"train/loss": [(5, 1.0)]})  # one point, constant value: a dot
    assert (flat == CURVE_COLOURS[0]).all(-1).sum() > 4
    with pytest.raises(ValueError, match="no metric series"):
        loss_curve_image({})


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(("info", message))

    def warning(self, message):
        self.lines.append(("warning", message))


def test_loss_curve_metadata_is_a_png_and_a_broken_log_only_warns(tmp_path):
    _write_csv(tmp_path / "ok", 0, ["step,train/loss", "0,2.0", "1,1.0", "2,0.5"])
    context = SimpleNamespace(log=_Log())
    run = SimpleNamespace(model="m", run_dir=tmp_path / "ok", progress=[])
    markdown = loss_curve_metadata(context, run)["loss_curve"].value
    prefix = "![m loss curves](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    png = Image.open(io.BytesIO(base64.b64decode(markdown[len(prefix) : -1])))
    assert png.format == "PNG" and png.size == (480, 120)

    _write_csv(tmp_path / "bad", 0, ["epoch,train/loss", "0,1.0"])
    broken = SimpleNamespace(model="m", run_dir=tmp_path / "bad", progress=[])
    assert loss_curve_metadata(context, broken) == {}
    assert context.log.lines[-1][0] == "warning" and "no `step` column" in context.log.lines[-1][1]
    empty = SimpleNamespace(model="m", run_dir=tmp_path / "none", progress=[])
    assert loss_curve_metadata(context, empty) == {} and context.log.lines[-1][0] == "info"
