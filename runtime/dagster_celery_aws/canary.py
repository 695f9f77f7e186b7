"""The canary: a tiny job that sends one step to every queue of the deployment, to see each queue's workers take a
step, its output reach S3 and its events reach the run storage. Optional: add ``canary_job`` to your
``Definitions`` (the example location has it); ``make verify ARGS=--canary`` launches it on AWS through the
webserver, ``make local ARGS=--canary`` runs it locally.

The queues are the run's ``dagster-celery-aws/canary-queues`` tag (comma-separated), which the launcher fills
from the stack: the job itself is the same in every process (webserver, daemon, run worker, every queue's
workers), whichever queues the stack has. ``canary_queues`` fans out one mapped ``canary_step`` per queue; a
mapped step's queue is its mapping key (``step_queue``, used by the executor), as an op's tags cannot differ per
mapped step.
"""

from __future__ import annotations

import os
import re
import socket

from dagster import DynamicOut, DynamicOutput, Failure, job, op


CANARY_JOB = "dca_canary"
QUEUES_TAG = "dagster-celery-aws/canary-queues"
ROUTE_TAG = "dagster-celery-aws/queue-from-mapping-key"
_ESCAPED = re.compile(r"_([0-9a-f]{2})")


def mapping_key(queue: str) -> str:
    """A queue name as a mapping key (letters, digits and ``_`` only): every other character, ``_`` too, is
    ``_`` and its two hex digits, so that ``queue_of`` reads it back."""
    return "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in queue)


def queue_of(key: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), key)


def step_queue(plan_context, step, queue: str, served=None) -> str:
    """The queue to send ``step`` to: its mapping key's for a step of an op tagged ``ROUTE_TAG``, else ``queue``
    (its op's ``dagster-celery/queue`` tag, or the default queue). A mapping key's queue outside ``served`` (the
    deployment's queues; None: no check) is refused: the step would wait forever. dagster-celery's loop has
    announced ``queue``; a step routed elsewhere is announced again, with its own queue, in the loop's words."""
    key = step.get_mapping_key()
    if key is None or not step.tags.get(ROUTE_TAG):
        return queue
    routed = queue_of(key)
    if served is not None and routed not in served:
        raise ValueError(f"step {step.key!r} is for queue {routed!r}, which the stack does not have (its queues: "
                         f"{', '.join(sorted(served))}): it would wait forever")  # fmt: skip
    if routed != queue:
        from dagster._core.events import DagsterEvent, EngineEventData

        message = f'Submitting celery task for step "{step.key}" to queue "{routed}".'
        DagsterEvent.engine_event(plan_context.for_step(step), message, EngineEventData())
    return routed


@op(out=DynamicOut(str))
def canary_queues(context):
    queues = [q.strip() for q in context.run.tags.get(QUEUES_TAG, "").split(",") if q.strip()]
    if not queues:
        raise Failure(f"the canary needs the run tag {QUEUES_TAG!r}: the stack's queues, comma-separated")
    for queue in queues:
        yield DynamicOutput(queue, mapping_key=mapping_key(queue))


@op(tags={ROUTE_TAG: "true"})
def canary_step(context, queue: str) -> str:
    where = f"{socket.gethostname()} pid {os.getpid()}"
    context.log.info(f"canary step for queue {queue!r} ran on {where}")
    context.add_output_metadata({"queue": queue, "worker": where})
    return where


@job(name=CANARY_JOB, description="One step on every queue of the deployment (dagster_celery_aws.canary)")
def canary_job():
    canary_queues().map(canary_step)
