"""The project home: where the artifact store and the Dagster instance live by default.

`WONDERFORGE_HOME` (default `./.wonderforge` in the current directory) holds:
  store/    the local artifact store (unless `WONDERFORGE_STORE` points elsewhere, e.g. s3://...)
  dagster/  DAGSTER_HOME: the instance config copied from the repo's dagster.yaml + sqlite storage
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GPU_POOL = "gpu"


def project_home() -> Path:
    """Absolute project home directory (created on demand)."""
    home = Path(os.environ.get("WONDERFORGE_HOME", Path.cwd() / ".wonderforge")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def dagster_yaml_source() -> Path:
    """The instance config to install: `WONDERFORGE_DAGSTER_YAML` (a path, relative ones from the
    repository root, e.g. `dagster.postgres.yaml`), else the repository's `dagster.yaml`."""
    chosen = os.environ.get("WONDERFORGE_DAGSTER_YAML")
    candidate = REPO_ROOT / (chosen or "dagster.yaml")
    if not candidate.is_file():
        what = f"WONDERFORGE_DAGSTER_YAML={chosen!r}: " if chosen else ""
        raise FileNotFoundError(f"{what}{candidate} not found: is the checkout complete?")
    return candidate


def prepare_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project's instance directory and refresh its dagster.yaml.

    An explicit DAGSTER_HOME from the environment is respected; when it lacks a dagster.yaml the
    project's is copied in, so a fresh home always gets sqlite storage and the `gpu` pool.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or project_home() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    source = dagster_yaml_source()
    if not target.exists() or target.read_bytes() != source.read_bytes():
        tmp = target.with_suffix(".yaml.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return home
