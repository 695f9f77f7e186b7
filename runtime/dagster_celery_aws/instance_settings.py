"""``python -m dagster_celery_aws.instance_settings COMMAND ...``: the stack's instance settings into dagster.yaml, then COMMAND.

Dagster reads run retries (``run_retries``), run and pool concurrency (``concurrency``) and tick retention
(``retention``) only as plain values of the instance config: unlike storage or the run launcher, these keys take
no ``env:`` source (dagster ``_core/instance/config.py``, ``dagster_instance_config_schema``). The stack gives every
task those sections as JSON in ``DCA_INSTANCE_SETTINGS``; this module is the entry point of every container of
the stack's task definitions (``entryPoint``, so it also runs under the command EcsRunLauncher gives a run task):
it writes the sections over the image's ``$DAGSTER_HOME/dagster.yaml`` (a writable volume of the container) and
execs the command. The local runner writes the same file with :func:`merge`. Without the variable the file is
left as the image has it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

SETTINGS_VAR = "DCA_INSTANCE_SETTINGS"  # infra/specs/contract.py INSTANCE_SETTINGS
SECTIONS = ("run_retries", "concurrency", "retention")
# Not dagster.yaml sections: pool limits live in the instance's storage (dagster_celery_aws.pool_limits sets them);
# runs are purged by dagster_celery_aws.retention.
POOL_LIMITS = "pool_limits"
RUN_RETENTION_DAYS = "run_retention_days"


def merge(doc: dict, settings: dict) -> dict:
    """``doc`` (a parsed dagster.yaml) with each section of ``settings`` in place of its own."""
    unknown = sorted(set(settings) - {*SECTIONS, POOL_LIMITS, RUN_RETENTION_DAYS})
    if unknown:
        raise ValueError(f"{SETTINGS_VAR} has {', '.join(unknown)}: only {', '.join(SECTIONS)} are instance settings")
    return {**doc, **{k: v for k, v in settings.items() if k in SECTIONS}}


def write(dagster_home: Path, settings: dict) -> Path:
    """Merge ``settings`` into ``dagster_home``/dagster.yaml; atomic, as several containers of a task may start
    at once."""
    path = dagster_home / "dagster.yaml"
    doc = merge(yaml.safe_load(path.read_text()) or {}, settings)
    tmp = path.with_name(f".dagster.yaml.{os.getpid()}")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, path)
    return path


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(f"usage: python -m {__spec__.name} COMMAND [ARG ...]")
    raw = os.environ.get(SETTINGS_VAR)
    if raw:
        write(Path(os.environ["DAGSTER_HOME"]), json.loads(raw))
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
