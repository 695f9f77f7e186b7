"""Celery settings of the workers, read from celery_config.yaml with ``{env: ...}`` resolved in memory.

``dagster_celery.app`` (the app every worker runs) loads a module named ``dagster_celery_config`` when one
is importable (dagster_celery/make_app.py). ``dagster-celery worker start`` generates that module under
$DAGSTER_HOME with the resolved broker URL -- the broker password -- written to disk in plain text
(docs/facts.md). The workers here run ``celery -A dagster_celery.app worker`` with this module on PYTHONPATH
instead: the same settings, resolved by dagster-celery's own validation, never written anywhere.

It also installs the ECS task scale-in protection hooks (no-ops outside ECS), and has the worker run
``worker_runtime.fast_task``'s ``execute_plan`` in place of dagster-celery's: the same task, keeping one
Dagster instance per pool process instead of building one per step (see that module).
"""

import os

import celery.signals
from dagster_celery.cli import get_validated_config

import worker_runtime.fast_task
import worker_runtime.protection

CONFIG_PATH_VAR = "DAGSTER_CELERY_CONFIG"  # as dagster_project/celery_config.py: a path to another file
_path = os.environ.get(CONFIG_PATH_VAR) or "celery_config.yaml"  # in APP_DIR
_config = get_validated_config(_path)
if _config is None:  # an `{env: X}` whose variable is not set: the task definition lacks it
    raise RuntimeError(f"{_path}: could not resolve its settings; is every variable it names (env: ...) set?")

broker_url = _config["broker"]
if _config.get("backend"):
    result_backend = _config["backend"]
globals().update(_config.get("config_source") or {})

worker_runtime.protection.install()
# At worker start-up, after dagster_celery.app registered its task and before the pool forks: replace it.
celery.signals.import_modules.connect(worker_runtime.fast_task.install_on_import_modules, weak=False)
