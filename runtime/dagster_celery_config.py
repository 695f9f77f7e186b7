"""Celery settings of the workers: the deployment's celery_config.yaml with ``{env: ...}`` resolved in memory.

``dagster_celery.app`` (the app every worker runs) loads a module named ``dagster_celery_config`` when one
is importable (dagster_celery/make_app.py). ``dagster-celery worker start`` generates that module under
$DAGSTER_HOME with the resolved broker URL -- the broker password -- written to disk in plain text
(docs/facts.md). The workers here run ``celery -A dagster_celery.app worker`` with this module installed
instead: the same settings, resolved by dagster-celery's own validation, never written anywhere
(``dagster_celery_aws.celery_config``).

It also installs the ECS task scale-in protection hooks (no-ops outside ECS), has the worker run
``dagster_celery_aws.fast_task``'s ``execute_plan`` in place of dagster-celery's: the same task, keeping one
Dagster instance per pool process instead of building one per step (see that module), stores results with
Celery's database backend that also notifies the run worker (``dagster_celery_aws.result_notices``), and has
each pool process wait for its steps' compute-log uploads before it exits (``dagster_celery_aws.compute_logs``).
"""

import celery.signals

from dagster_celery_aws import celery_config, compute_logs, fast_task, protection

globals().update(celery_config.celery_settings())

protection.install()
# At worker start-up, after dagster_celery.app registered its task and before the pool forks: replace it.
celery.signals.import_modules.connect(fast_task.install_on_import_modules, weak=False)
celery.signals.worker_process_shutdown.connect(compute_logs.wait_for_uploads, weak=False)
