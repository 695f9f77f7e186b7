"""The image's runtime files, laid out under the state dir with the few local changes, each stated here.

``<state>/app`` plays the image's APP_DIR (the working directory of every process, so the topology's
relative ``workspace.yaml`` argument resolves to this file) and ``<state>/dagster_home`` its DAGSTER_HOME.
Each file is the image's (``worker_image/``; ``celery_config.yaml`` from the runtime package, where
``$DAGSTER_CELERY_CONFIG`` points the workers and the run worker instead), loaded, with named keys replaced,
and dumped:

- ``dagster.yaml``: with embedded storage, ``storage`` -> sqlite. Everything else (the run launcher, run
  coordinator, S3 compute logs, run monitoring, ...) is kept: the runner gives every process runs mode
  ``daemon`` (``DCA_RUNS_MODE``; no ECS here), so the image's launcher starts each run from the daemon's code
  server, as on AWS with ``runs.mode: daemon``. The stack's instance settings (infra/specs/instance.py) are
  written in, as each container's entry point does on AWS.
- ``workspace.yaml``: generated from the stack file's code locations (infra/specs/code_locations.py), each loaded
  from its own directory on this machine (or ``--code-module`` from ``--code-dir``).
- ``celery_config.yaml``: unchanged with a real broker; with the embedded one,
  ``config_source.broker_transport_options`` are set (the broker URL itself stays ``{env: ...}``).
- ``celery_cli.yaml``: that file resolved (``write_cli_config``), for dagster-celery's own ``worker list -y``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from dagster_celery_aws import instance_settings
from dagster_celery_aws.celery_config import PACKAGED as PACKAGED_CELERY_CONFIG

from infra.specs import code_locations, topology
from infra.local.options import IMAGE_DIR

STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
CELERY_CONFIG = PACKAGED_CELERY_CONFIG.name  # written to the app dir
CLI_CONFIG = "celery_cli.yaml"  # the same settings resolved, for dagster-celery's own worker list|terminate -y


@dataclass(frozen=True)
class Layout:
    state: Path
    app_dir: Path
    dagster_home: Path
    logs: Path
    celery_config: dict  # the `execution.config` block the workers and the run worker use


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _dump(doc: dict, path: Path, header: str) -> None:
    path.write_text(f"# {header}\n" + yaml.safe_dump(doc, sort_keys=False))


def instance_config(storage: dict | None, settings: dict | None = None) -> dict:
    doc = instance_settings.merge(_load(IMAGE_DIR / "dagster.yaml"), settings or {})
    if storage is not None:
        for key in STORAGE_KEYS:
            doc.pop(key, None)
        doc["storage"] = storage
    return doc


def celery_config(overrides: dict) -> dict:
    doc = _load(PACKAGED_CELERY_CONFIG)
    cfg = doc.setdefault("execution", {}).setdefault("config", {})
    for key, value in overrides.items():
        if key == "config_source":
            cfg["config_source"] = {**(cfg.get("config_source") or {}), **value}
        else:
            cfg[key] = value
    return doc


def write(state: Path, locations, storage: dict | None, celery_overrides: dict, settings: dict | None = None) -> Layout:
    app_dir, home, logs = state / "app", state / "dagster_home", state / "logs"
    for d in (app_dir, home, logs):
        d.mkdir(parents=True, exist_ok=True)
    note = "written by infra.local from {} (changes: see infra/local/runtime_files.py)"
    _dump(instance_config(storage, settings), home / "dagster.yaml", note.format("worker_image/dagster.yaml"))
    ws = code_locations.workspace(locations, in_image=False)
    _dump(ws, app_dir / topology.WORKSPACE, "written by infra.local from the stack file's code locations (infra/specs/code_locations.py)")
    cc = celery_config(celery_overrides)
    _dump(cc, app_dir / CELERY_CONFIG, note.format(f"dagster_celery_aws/{CELERY_CONFIG}"))
    return Layout(state, app_dir, home, logs, cc["execution"]["config"])


def write_cli_config(layout: Layout) -> Path:
    """``celery_config.yaml`` with its ``env:`` sources resolved from this process's environment, as
    ``dagster-celery-aws config`` prints it, for ``dagster-celery worker list|terminate -y`` (docs/operations.md). Readable by its owner only: it holds the broker URL the runner was given."""
    from dagster_celery_aws.cli import resolved_yaml

    path = layout.app_dir / CLI_CONFIG
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(resolved_yaml(layout.app_dir / CELERY_CONFIG))
    return path
