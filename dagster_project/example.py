"""The example job: a seed step, a fan-out over two Celery queues, and a join that checks the values.

Every step prints and logs (so its compute logs are not empty) and says which Celery worker ran it.
"""

import os
import socket

from dagster import In, OpExecutionContext, job, op
from dagster_celery_aws import celery_executor

QUEUE_TAG = "dagster-celery/queue"  # dagster-celery's op tag; untagged steps go to queue `dagster`
PRIORITY_TAG = "dagster-celery/priority"  # 0..10 on the `dagster` queue (default 5)
HEAVY_QUEUE = "heavy"

SEED = 3
FAN_OUT = 4


def _where() -> str:
    """The Celery worker running this step (node name, e.g. `heavy@host`), else host and pid."""
    try:
        from celery import current_task

        if current_task and current_task.request.hostname:
            return str(current_task.request.hostname)
    except ImportError:  # pragma: no cover - celery is a dependency of the image
        pass
    return f"{socket.gethostname()}:{os.getpid()}"


def _report(context: OpExecutionContext, message: str) -> None:
    text = f"{context.op.name}: {message} (worker {_where()})"
    print(text, flush=True)  # compute log (stdout)
    context.log.info(text)  # event log (storage)


@op(tags={QUEUE_TAG: "dagster", PRIORITY_TAG: "7"})
def seed(context: OpExecutionContext) -> int:
    _report(context, f"seed = {SEED}")
    return SEED


def _part(index: int):
    @op(name=f"part_{index}", tags={QUEUE_TAG: HEAVY_QUEUE})
    def part(context: OpExecutionContext, seed: int) -> int:
        value = seed * 10 + index
        _report(context, f"part {index} = {value}")
        return value

    return part


PARTS = [_part(i) for i in range(FAN_OUT)]


@op(ins={"parts": In(list[int])})  # no queue tag: queue `dagster`
def join(context: OpExecutionContext, parts: list[int]) -> int:
    expected = [SEED * 10 + i for i in range(FAN_OUT)]
    assert sorted(parts) == expected, f"expected {expected}, got {sorted(parts)}"
    total = sum(parts)
    _report(context, f"total = {total}")
    return total


# The executor is on Definitions too; named here as well so that other locations importing this job
# (tests/jobs/priority.py) run it on Celery.
@job(executor_def=celery_executor)
def example_job():
    value = seed()
    join([part(value) for part in PARTS])
