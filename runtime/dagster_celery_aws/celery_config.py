"""The Celery settings of the deployment (``celery_config.yaml``), shared by the workers and the run worker.

The run worker sends steps with the same broker and Celery settings as the workers consume them, so the
code location's executor is configured from the very file the workers' settings module reads
(``dagster_celery_config``; the same shape as ``dagster-celery worker start -y``).

The file is ``celery_config.yaml`` in this package, unless ``$DAGSTER_CELERY_CONFIG`` names another one
(e.g. the local runner, which generates its own settings).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONFIG_PATH_VAR = "DAGSTER_CELERY_CONFIG"
PACKAGED = Path(__file__).with_name("celery_config.yaml")


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_PATH_VAR)
    if not explicit:
        return PACKAGED
    path = Path(explicit)
    if not path.is_file():
        raise FileNotFoundError(f"{CONFIG_PATH_VAR}={explicit}: no such file")
    return path


def executor_config(path: Path | None = None) -> dict[str, Any]:
    """The ``execution: config:`` block, as the dagster-celery CLI reads it (``{env: ...}`` kept as is:
    Dagster resolves it when the run starts, in the process that runs it)."""
    path = path or config_path()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return dict(data["execution"]["config"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected an `execution: config:` block") from exc


def resolved_config(path: Path | None = None) -> dict[str, Any]:
    """The block validated against the executor's schema by dagster-celery, defaults filled in and
    ``{env: ...}`` resolved from this process's environment, in memory."""
    from dagster_celery.cli import get_validated_config  # here: reading the file's path needs no Dagster

    path = path or config_path()
    config = get_validated_config(str(path))
    if config is None:  # an `{env: X}` whose variable is not set: the task definition lacks it
        raise RuntimeError(f"{path}: could not resolve its settings; is every variable it names (env: ...) set?")
    return dict(config)


def celery_settings(path: Path | None = None) -> dict[str, Any]:
    """The workers' Celery settings from the resolved block, as ``dagster-celery worker start`` writes them into
    its generated settings module: ``broker_url``, ``result_backend`` and the ``config_source`` values. A
    database result backend is Celery's, which on PostgreSQL also notifies the run worker
    (``result_notices.NotifyingDatabaseBackend``)."""
    from dagster_celery_aws.result_notices import NotifyingDatabaseBackend, with_backend_class

    config = resolved_config(path)
    settings = {"broker_url": config["broker"]}
    if config.get("backend"):
        settings["result_backend"] = with_backend_class(config["backend"], NotifyingDatabaseBackend)
    settings.update(config.get("config_source") or {})
    return settings
