"""Find and read the Celery settings that the workers are started with (``celery_config.yaml``).

The run worker sends steps with the same broker and Celery settings as the workers consume them, so the
job's executor is configured from the very file the workers' settings module reads
(worker_image/dagster_celery_config.py, the same shape as ``dagster-celery worker start -y``).

Where the file is, first match wins:
1. ``$DAGSTER_CELERY_CONFIG`` (a path), e.g. a local runner that generates its own settings;
2. ``<package parent>/celery_config.yaml``: the image layout (/opt/dagster/app);
3. ``<package parent>/worker_image/celery_config.yaml``: the repository layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONFIG_PATH_VAR = "DAGSTER_CELERY_CONFIG"
_PARENT = Path(__file__).resolve().parent.parent
CANDIDATES = (_PARENT / "celery_config.yaml", _PARENT / "worker_image" / "celery_config.yaml")


def celery_config_path() -> Path:
    explicit = os.environ.get(CONFIG_PATH_VAR)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_PATH_VAR}={explicit}: no such file")
        return path
    for path in CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"celery_config.yaml not found in {[str(p) for p in CANDIDATES]}; set {CONFIG_PATH_VAR}"
    )


def celery_executor_config(path: Path | None = None) -> dict[str, Any]:
    """The ``execution: config:`` block, as the dagster-celery CLI reads it (``{env: ...}`` kept as is:
    Dagster resolves it when the run starts, in the process that runs it)."""
    path = path or celery_config_path()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return dict(data["execution"]["config"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected an `execution: config:` block") from exc
