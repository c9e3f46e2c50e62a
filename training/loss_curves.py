"""Loss curves of a finished training run as a small PNG-ready image (PIL only).

The metric history comes from Lightning's default logger (no TensorBoard installed: `CSVLogger`),
which writes `<run_dir>/lightning_logs/version_<n>/metrics.csv` (`step` column plus one column per
logged metric, empty where a row lacks it); a resumed run adds a new version folder, later
versions override earlier rows of the same step. Without a CSV (e.g. the cluster launchers, whose
run folder is on the cluster) the Pipes progress messages `{"step", "metrics"}` are used.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Series = dict[str, list[tuple[int, float]]]  # metric name -> [(step, value)] sorted by step

PREFIX = "train/"
BACKGROUND = (24, 24, 24)
AXES = (110, 110, 110)
TEXT = (220, 220, 220)
CURVE_COLOURS = ((80, 170, 255), (255, 150, 60), (110, 210, 110), (230, 90, 90), (190, 130, 230))


def _ordered(points: dict[str, dict[int, float]]) -> Series:
    """Sort each metric by step and put `train/loss` first, the rest by name."""
    names = sorted(points, key=lambda name: (name != f"{PREFIX}loss", name))
    return {name: sorted(points[name].items()) for name in names if points[name]}


def _version(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.parent.name)
    return int(match.group(1)) if match else -1


def csv_metric_series(run_dir: Path, prefix: str = PREFIX) -> Series:
    """Finite `prefix*` metrics of every `lightning_logs/version_*/metrics.csv` under `run_dir`
    (versions in order, a later version's value wins for the same step)."""
    points: dict[str, dict[int, float]] = {}
    for path in sorted(Path(run_dir).glob("lightning_logs/*/metrics.csv"), key=_version):
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "step" not in reader.fieldnames:
                raise ValueError(f"{path}: no `step` column (columns: {reader.fieldnames})")
            names = [n for n in reader.fieldnames if n.startswith(prefix)]
            for row in reader:
                if not row.get("step"):
                    continue
                step = int(float(row["step"]))
                for name in names:
                    value = _finite(row.get(name))
                    if value is not None:
                        points.setdefault(name, {})[step] = value
    return _ordered(points)


def progress_metric_series(progress: list[dict], prefix: str = PREFIX) -> Series:
    """Finite `prefix*` metrics of Pipes progress messages `{"step", "metrics": {...}}`."""
    points: dict[str, dict[int, float]] = {}
    for message in progress:
        if not isinstance(message, dict) or "step" not in message:
            continue
        for name, raw in (message.get("metrics") or {}).items():
            value = _finite(raw)
            if name.startswith(prefix) and value is not None:
                points.setdefault(name, {})[int(message["step"])] = value
    return _ordered(points)


def run_metric_series(run_dir: Path, progress: list[dict], prefix: str = PREFIX) -> Series:
    """The run's metric history: the CSV log if it has any `prefix*` metric, else Pipes progress."""
    return csv_metric_series(run_dir, prefix) or progress_metric_series(progress, prefix)


def _finite(raw) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _label(value: float) -> str:
    return f"{value:.4g}"


def loss_curve_image(
    series: Series, width: int = 480, panel_height: int = 120, max_panels: int = 6
) -> np.ndarray:
    """One panel per metric (at most `max_panels`, `train/loss` first): value vs step with the
    min/max value and first/last step labelled. Returns uint8 [panels * panel_height, width, 3].
    """
    if not series:
        raise ValueError("no metric series to plot")
    names = list(series)[:max_panels]
    image = Image.new("RGB", (width, panel_height * len(names)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 58, 10, 16, 16
    for index, name in enumerate(names):
        steps = np.array([s for s, _ in series[name]], np.float64)
        values = np.array([v for _, v in series[name]], np.float64)
        y0 = index * panel_height
        x_lo, x_hi = left, width - right
        y_lo, y_hi = y0 + panel_height - bottom, y0 + top  # pixel rows of min and max value
        draw.text((4, y0 + 2), f"{name} ({len(values)} points)", fill=TEXT, font=font)
        draw.line([(x_lo, y_hi), (x_lo, y_lo), (x_hi, y_lo)], fill=AXES, width=1)
        v_min, v_max = float(values.min()), float(values.max())
        s_min, s_max = float(steps.min()), float(steps.max())
        draw.text((4, y_hi), _label(v_max), fill=TEXT, font=font)
        draw.text((4, y_lo - 10), _label(v_min), fill=TEXT, font=font)
        draw.text((x_lo, y_lo + 3), f"step {s_min:.0f}", fill=TEXT, font=font)
        last = f"{s_max:.0f}"
        draw.text((x_hi - 6 * len(last), y_lo + 3), last, fill=TEXT, font=font)
        span_v = v_max - v_min if v_max > v_min else 1.0
        span_s = s_max - s_min if s_max > s_min else 1.0
        xs = x_lo + 2 + (steps - s_min) / span_s * (x_hi - x_lo - 4)
        ys = y_lo - 2 - (values - v_min) / span_v * (y_lo - y_hi - 4)
        if v_max == v_min:
            ys = np.full_like(values, (y_lo + y_hi) / 2)
        if len(xs) == 1:
            xs = np.array([(x_lo + x_hi) / 2])
        colour = CURVE_COLOURS[index % len(CURVE_COLOURS)]
        points = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points if len(points) <= 40 else points[:1] + points[-1:]:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    return np.asarray(image, np.uint8)
