"""A code location for the fault tests (tests/test_faults.py): steps whose timing the test controls.

``hold_<queue>`` runs on a queue of its own and, each time it starts (every delivery of its Celery message), records
the attempt in ``<marker_dir>/attempts/`` (which Celery worker, which process); it then waits -- a bounded
poll, never an endless wait -- until ``<marker_dir>/release`` exists, and returns a fixed value, written by
the S3 I/O manager to one key per run and step (so a step that runs twice writes the same object twice:
idempotent). ``check`` (queue ``dagster``) receives it and fails on a wrong value.

``crash_<queue>`` records its attempt the same way, then kills its Celery worker -- its own pool process, or the
whole worker (its process group, as an out-of-memory kill takes a whole ECS task) -- on every delivery.

Each fault test has a queue of its own (``f<fault number>``, ``orphan<fault number>``), so that no test sees
another's messages, consumers or leftovers, whatever the order the tests run in:

- ``faults_ready_job``: one trivial step; the runner's first job (``--job``), proving the topology works;
- ``hold_job_<queue>``: ``hold_<queue>``, then ``check`` (on a queue nobody serves: the orphan faults);
- ``pair_job_<queue>``: ``hold_<queue>`` and ``hold_<queue>_b``, both on the queue, independent;
- ``crash_job_<queue>``: ``crash_<queue>``, then ``check``; and ``ready``, independent of them;
- ``short_job``: ``hold_dagster`` alone, on the runner's own queue ``dagster``.
"""

import json
import os
import signal
import time
import uuid
from typing import Literal
from pathlib import Path

from dagster import Config, Definitions, OpExecutionContext, job, op
from dagster_celery_aws import celery_executor, deployment_resources

from dagster_project.example import _where

QUEUE_TAG = "dagster-celery/queue"
# Run monitoring ends a run still going after this long (dagster/max_runtime; worker_image/dagster.yaml
# enables run monitoring): the bound for a run whose step is lost in a way nothing else notices.
MAX_RUNTIME = {"dagster/max_runtime": "900"}
VALUE = "held-and-released"


class HoldConfig(Config):
    marker_dir: str
    wait_seconds: float = 600.0  # bound on the wait for the release marker


def _record_attempt(marker_dir: str) -> tuple[Path, dict]:
    attempts = Path(marker_dir) / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    record = {"node": _where(), "pid": os.getpid(), "ppid": os.getppid(), "time": time.time()}
    (attempts / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
    return attempts, record


def _hold(queue: str, suffix: str = ""):
    @op(name=f"hold_{queue}{suffix}", tags={QUEUE_TAG: queue})
    def hold(context: OpExecutionContext, config: HoldConfig) -> str:
        root = Path(config.marker_dir)
        attempts, record = _record_attempt(config.marker_dir)
        context.log.info(f"hold started on {record['node']} (pid {record['pid']})")
        deadline = time.monotonic() + config.wait_seconds
        while not (root / "release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{root / 'release'} did not appear within {config.wait_seconds:.0f} s")
            time.sleep(0.1)
        (attempts / f"{uuid.uuid4().hex}.released").write_text(json.dumps({**record, "time": time.time()}))
        context.log.info(f"hold released on {record['node']}")
        return VALUE

    return hold


@op(tags={QUEUE_TAG: "dagster"})
def check(context: OpExecutionContext, value: str) -> str:
    if value != VALUE:
        raise ValueError(f"the held step returned {value!r}, expected {VALUE!r}")
    context.log.info("the held step's output is correct")
    return value


@op(tags={QUEUE_TAG: "dagster"})
def ready() -> int:
    return 1


class CrashConfig(Config):
    marker_dir: str
    kill: Literal["pool", "worker"]  # the step's pool process, or the whole worker (its process group)


def _crash(queue: str):
    @op(name=f"crash_{queue}", tags={QUEUE_TAG: queue})
    def crash(config: CrashConfig) -> str:
        _record_attempt(config.marker_dir)
        if config.kill == "pool":
            os.kill(os.getpid(), signal.SIGKILL)
        os.killpg(os.getpgrp(), signal.SIGKILL)  # the test starts each worker in a process group of its own
        raise AssertionError("unreachable: the step killed its own process")

    return crash


HOLD_QUEUES = ("f1", "f2", "f3", "f4", "f6", "f13", "f14", "f15", "orphan5", "orphan9")
PAIR_QUEUES = ("f10", "f11")
CRASH_QUEUES = ("f7", "f8")


def _hold_job(queue: str):
    hold = _hold(queue)

    @job(name=f"hold_job_{queue}", executor_def=celery_executor, tags=MAX_RUNTIME)
    def hold_job():
        check(hold())

    return hold_job


def _pair_job(queue: str):
    first, second = _hold(queue), _hold(queue, "_b")

    @job(name=f"pair_job_{queue}", executor_def=celery_executor, tags=MAX_RUNTIME)
    def pair_job():
        first()
        second()

    return pair_job


def _crash_job(queue: str):
    crash = _crash(queue)

    @job(name=f"crash_job_{queue}", executor_def=celery_executor, tags=MAX_RUNTIME)
    def crash_job():
        check(crash())
        ready()

    return crash_job


hold_dagster = _hold("dagster")


@job(executor_def=celery_executor)
def faults_ready_job():
    ready()


@job(executor_def=celery_executor, tags=MAX_RUNTIME)
def short_job():
    hold_dagster()


defs = Definitions(
    jobs=[faults_ready_job, short_job, *map(_hold_job, HOLD_QUEUES), *map(_pair_job, PAIR_QUEUES),
          *map(_crash_job, CRASH_QUEUES)],
    resources=deployment_resources(),
)
