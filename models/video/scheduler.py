"""CogVideoX noise schedulers (v-prediction, zero terminal SNR, SNR shift)."""

from __future__ import annotations

from pathlib import Path

from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

# scheduler/scheduler_config.json of CogVideoX-5B(-I2V); the 2B model uses snr_shift_scale 3.0.
COGVIDEOX_5B_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "snr_shift_scale": 1.0,
}

KINDS = {"ddim": CogVideoXDDIMScheduler, "dpm": CogVideoXDPMScheduler}


def make_scheduler(kind: str = "ddim", config: dict | str | Path | None = None):
    """A CogVideoX DDIM or DPM scheduler from a config dict, a folder holding
    ``scheduler_config.json`` (or a pipeline root with ``scheduler/``), or the 5B defaults."""
    if kind not in KINDS:
        raise ValueError(f"scheduler kind must be one of {sorted(KINDS)}, got {kind!r}")
    cls = KINDS[kind]
    if isinstance(config, (str, Path)):
        folder = Path(config)
        if (folder / "scheduler" / "scheduler_config.json").is_file():
            folder = folder / "scheduler"
        return cls.from_config(cls.load_config(str(folder), local_files_only=True))
    values = dict(COGVIDEOX_5B_SCHEDULER)
    values.update({k: v for k, v in (config or {}).items() if not k.startswith("_")})
    return cls.from_config(values)
