"""The Dagster-on-Celery runtime of dagster-celery-aws, installed in the image and in the dev virtualenv.

For a code location (what ``dagster_project/__init__.py`` does; the executor on ``Definitions``, so that the
UI's Materialize and backfills use it too)::

    from dagster import Definitions, asset, job
    from dagster_celery_aws import celery_executor, deployment_resources

    @asset(op_tags={"dagster-celery/queue": "ml"})
    def my_asset(): ...

    @job
    def my_job(): ...

    defs = Definitions(assets=[my_asset], jobs=[my_job], resources=deployment_resources(), executor=celery_executor)

- ``celery_executor``: dagster-celery's ``celery_executor`` (same config schema, same messages to the
  workers), configured from the deployment's Celery settings (``celery_config.yaml`` in this package, the
  file the workers read; ``$DAGSTER_CELERY_CONFIG`` names another; a run's ``execution: config:`` goes over
  it), and tuning the run worker: pooled database connections, a 0.1 s poll of the steps' results with one
  query per poll (``executor``).
- ``deployment_resources()``: ``{"s3": CachedS3Resource(), "io_manager": ...}``, the S3 pickle I/O manager
  on the deployment's bucket (``$DAGSTER_S3_BUCKET``) under the key prefix ``io``. A Celery step runs in
  another process, often on another machine: its inputs must come from S3, not from local disk.
- ``s3_pickle_io_manager``: dagster-aws's pickle I/O manager, made once per process (config
  ``s3_bucket``, ``s3_prefix``); ``CachedS3Resource``: dagster-aws's ``S3Resource`` with one boto3 client
  per process (``s3``).

For the image (named in worker_image/dagster.yaml, infra/specs/topology.py, and the ``dagster_celery_config``
settings module next to this package, which ``celery -A dagster_celery.app worker`` loads):

- ``fast_task``: the workers' ``execute_plan`` task, one Dagster instance per pool process;
- ``compute_logs``: dagster-aws's S3 compute log manager, mirroring a step's output with a thread;
- ``protection``: ECS task scale-in protection while a step runs;
- ``queue_metrics``: the queue-depth publisher (``python -m dagster_celery_aws.queue_metrics``);
- ``run_launcher``: dagster-aws's ECS run launcher, a run in any of the stack's task subnets;
- ``celery_config``: where the Celery settings are, read as is (executor) or resolved (workers, CLI);
- ``cli``: ``dagster-celery-aws worker list|terminate``;
- ``queues``: which queue each step goes to, and whether the stack has it (executor, image check, local runner);
- ``scoped_env``: placeholders for queue-scoped variables where they are not granted, checked before a step;
- ``canary``: an optional job with one step on every queue (``canary_job``; ``make verify ARGS=--canary``);
- ``prewarm``: a run's cold queues asked a worker as it starts (the executor).
- ``filesystem_broker``: the local runner's embedded broker, each message file whole before a consumer sees it.

The names above are imported on first use, so a process that needs only one module (the queue-metrics
sidecar, the instance's compute log manager) does not import the executor and its dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "celery_executor": "dagster_celery_aws.executor",
    "deployment_resources": "dagster_celery_aws.s3",
    "s3_pickle_io_manager": "dagster_celery_aws.s3",
    "CachedS3Resource": "dagster_celery_aws.s3",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
