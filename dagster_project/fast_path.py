"""Per-step costs of this code location on Celery that the code location itself removes.

A Celery step initialises its resources anew in the worker, where in-process execution does it once per
run (benchmarks/profile_step.py shows where a step's time goes):

1. ``S3Resource.get_client`` (dagster-aws) builds a new boto3 session and client on every call: botocore
   re-reads its endpoint and S3 service model JSON files every time, which was the largest single cost of
   a trivial step in the worker (~40% of it). ``CachedS3Resource`` is the same resource with the client
   kept per process and per configuration (boto3 clients are thread-safe; a forked process makes its own).
2. ``S3PickleIOManager`` builds its inner I/O manager on first use in each step, and that constructor
   lists the bucket prefix (one S3 request, an access check) every time. ``s3_pickle_io_manager`` keeps
   the inner I/O manager per process and configuration, so the check is made once per process.

The run worker (the process that runs a job's Celery executor) pays per step too. ``celery_executor`` is
dagster-celery's executor, with the same config and the same messages, which in the run worker first:
3. puts the run's Dagster instance on pooled connections (``worker_runtime.fast_task.pool_connections``, as
   the workers do): dagster-postgres opens a new PostgreSQL connection for every event outside the
   webserver, and the run worker writes one ("Submitting celery task") just before sending each step;
4. lowers ``TICK_SECONDS`` (``set_executor_poll_interval``): the executor sleeps 1 s between polls of its
   steps' results (dagster_celery.core_execution_loop), so each step that waits for another one starts up
   to 1 s late and the run ends up to 1 s after its last step (the module reads the value on every loop);
5. has the executor's Celery app read database results with ``BatchPolledDatabaseBackend``
   (``TunedCeleryExecutor.app_args``): each poll asks about every step still running, one
   ``AsyncResult.ready()`` each, i.e. with results in PostgreSQL (celery_config.yaml) 400 queries a second
   for 40 steps in flight at a 0.1 s poll; the batched backend asks one query per poll for all of them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import states
from celery.backends.database import DatabaseBackend, session_cleanup
from dagster import ExecutorDefinition, Field, StringSource, io_manager, multiple_process_executor_requirements
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.io_manager import PickledObjectS3IOManager
from dagster_celery import celery_executor as stock_celery_executor
from dagster_celery.executor import CeleryExecutor
from worker_runtime.fast_task import pool_connections

EXECUTOR_POLL_SECONDS = 0.1

_kept: dict[tuple[int, str], Any] = {}  # (pid, what and its configuration) -> object
_lock = threading.RLock()  # a factory may itself use per_process


def per_process(key: Any, make: Callable[[], Any]) -> Any:
    """The object made by ``make`` for ``key`` (JSON-able) in this process, made on first use."""
    k = (os.getpid(), json.dumps(key, sort_keys=True, default=str))
    with _lock:
        if k not in _kept:
            _kept[k] = make()
        return _kept[k]


def _aws_env() -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))


class CachedS3Resource(S3Resource):
    """``dagster_aws.s3.S3Resource`` whose boto3 client is made once per process and configuration (the
    resource's fields and the ``AWS_*`` environment boto3 reads, e.g. ``AWS_ENDPOINT_URL_S3``)."""

    def get_client(self) -> Any:
        return per_process(["s3-client", self.model_dump(), _aws_env()], super().get_client)


@io_manager(
    config_schema={
        "s3_bucket": Field(StringSource, description="S3 bucket of the outputs"),
        "s3_prefix": Field(StringSource, is_required=False, default_value="dagster", description="key prefix"),
    },
    description="dagster-aws's S3 pickle I/O manager (PickledObjectS3IOManager), made once per process",
)
def s3_pickle_io_manager(init_context) -> PickledObjectS3IOManager:
    """dagster-aws's ``PickledObjectS3IOManager`` (what ``S3PickleIOManager`` delegates to), made once per
    process, bucket, prefix and ``AWS_*`` environment, on a ``CachedS3Resource`` client."""
    bucket, prefix = init_context.resource_config["s3_bucket"], init_context.resource_config["s3_prefix"]
    return per_process(
        ["s3-pickle-io-manager", bucket, prefix, _aws_env()],
        lambda: PickledObjectS3IOManager(s3_bucket=bucket, s3_session=CachedS3Resource().get_client(), s3_prefix=prefix),
    )


def set_executor_poll_interval(seconds: float = EXECUTOR_POLL_SECONDS) -> None:
    import dagster_celery.core_execution_loop as loop

    loop.TICK_SECONDS = seconds


class BatchPolledDatabaseBackend(DatabaseBackend):
    """Celery's database result backend, whose reads of unfinished tasks are answered from one query per
    poll: the first read after ``BATCH_SECONDS`` asks which of the tasks read so far have finished; the
    others read in the same poll use that answer. A finished task is then read exactly as the stock backend
    reads it (result, traceback, retries on database errors); an unfinished one reads as PENDING, as the stock
    backend reads a task without a row. Writes (the workers' results) are the stock backend's.

    It also keeps its SQLAlchemy engine. Celery keeps one engine per database (a connection pool, pinged and
    recycled: its ``database_engine_options`` defaults) only in the processes its worker forks, and makes a
    new engine and a new connection for every read anywhere else (celery/backends/database/session.py), i.e.
    a PostgreSQL connection and SQLAlchemy's dialect set-up per poll in a run worker. A retryable database
    error drops the kept engine (Celery's ``on_backend_retryable_error``), so a restarted database is
    reconnected to."""

    BATCH_SECONDS = EXECUTOR_POLL_SECONDS / 2  # one executor poll reads all its steps well within this

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session_manager.forked = True  # the session manager's switch for "keep the engine"
        self._batch_lock = threading.Lock()
        self._waiting: set[str] = set()
        self._finished: set[str] = set()
        self._polled_at = float("-inf")

    def _get_task_meta_for(self, task_id):
        with self._batch_lock:
            if task_id not in self._finished:
                self._waiting.add(task_id)
                if time.monotonic() - self._polled_at >= self.BATCH_SECONDS:
                    self._finished |= self._finished_among(self._waiting)
                    self._waiting -= self._finished
                    self._polled_at = time.monotonic()
            finished = task_id in self._finished
        if finished:
            return super()._get_task_meta_for(task_id)
        task = self.task_cls(task_id)
        task.status, task.result = states.PENDING, None
        return task.to_dict()

    def _finished_among(self, task_ids: set[str]) -> set[str]:
        session = self.ResultSession()
        with session_cleanup(session):
            column = self.task_cls.task_id
            rows = session.query(column).filter(column.in_(task_ids), self.task_cls.status.in_(states.READY_STATES))
            return {task_id for (task_id,) in rows}


class TunedCeleryExecutor(CeleryExecutor):
    """dagster-celery's ``CeleryExecutor``; before it sends the run's steps, it tunes the run worker
    (this module's docstring, 3-5)."""

    def app_args(self):
        """The stock arguments of the executor's Celery app, with a ``db+...`` result backend read by
        ``BatchPolledDatabaseBackend``: Celery takes the part of a backend URL before ``+`` as a backend name
        or class path (celery/app/backends.py ``by_url``). Only this executor's app is affected; the workers
        store results with the stock backend."""
        args = super().app_args()
        backend = args["backend"]
        if backend and backend.startswith("db+"):
            args["backend"] = f"{__name__}:{BatchPolledDatabaseBackend.__name__}+{backend[len('db+'):]}"
        return args

    def execute(self, plan_context, execution_plan):
        pool_connections(plan_context.instance)
        set_executor_poll_interval()
        return super().execute(plan_context, execution_plan)


def _tuned_celery_executor(init_context) -> TunedCeleryExecutor:
    """dagster-celery's executor, as the stock definition makes it from the config, in the tuned class."""
    tuned = TunedCeleryExecutor.__new__(TunedCeleryExecutor)
    tuned.__dict__.update(vars(stock_celery_executor.executor_creation_fn(init_context)))
    return tuned


celery_executor = ExecutorDefinition(
    name=stock_celery_executor.name,
    config_schema=stock_celery_executor.config_schema,
    requirements=multiple_process_executor_requirements(),
    executor_creation_fn=_tuned_celery_executor,
    description="dagster-celery's celery_executor, tuning the run worker (dagster_project/fast_path.py)",
)
