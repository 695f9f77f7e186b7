"""A code location with ``priority_job``: shows that the broker hands out waiting steps by priority.

Used by tests/test_local_e2e.py (``python -m infra.local up --code-module tests.jobs.priority``).
With ONE single-slot worker on queue ``dagster``:

1. ``blocker`` (priority 10, sent first) occupies the slot;
2. ``low_*`` (priority 1) are sent at the start too, and wait in the broker;
3. ``gate`` runs on queue ``heavy``; only then are ``high_*`` (priority 9) sent, i.e. AFTER the lows;
4. ``blocker`` ends once the run's event log shows every ``high_*`` submitted (bounded wait, no sleep
   as synchronisation), so the backlog holds lows sent first and highs sent later.
The broker then gives the freed slot the highs first: every ``high_*`` starts before any ``low_*``.
A FIFO broker (e.g. the embedded filesystem one) would start the lows first.
"""

import re
import time

from dagster import DagsterEventType, Definitions, OpExecutionContext, job, op
from dagster_celery_aws import celery_executor, deployment_resources

from dagster_project.example import example_job

QUEUE_TAG = "dagster-celery/queue"
PRIORITY_TAG = "dagster-celery/priority"
N = 3
WAIT_SECONDS = 120
SUBMITTED = re.compile(r'Submitting celery task for step "(?P<step>.+)" to queue "(?P<queue>.+)"\.')


@op(tags={QUEUE_TAG: "dagster", PRIORITY_TAG: "10"})
def blocker(context: OpExecutionContext) -> None:
    wanted = {f"high_{i}" for i in range(N)}
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        sent = {
            m["step"]
            for entry in context.instance.all_logs(context.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if (m := SUBMITTED.fullmatch(entry.dagster_event.message or ""))
        }
        if wanted <= sent:
            context.log.info(f"all of {sorted(wanted)} are waiting in the broker")
            return
        time.sleep(0.2)
    raise TimeoutError(f"{sorted(wanted)} were not all submitted within {WAIT_SECONDS} s")


@op(tags={QUEUE_TAG: "heavy"})
def gate() -> int:
    return 1


def _step(name: str, priority: int, with_input: bool):
    tags = {QUEUE_TAG: "dagster", PRIORITY_TAG: str(priority)}
    if with_input:

        @op(name=name, tags=tags)
        def after_gate(context: OpExecutionContext, gate: int) -> str:
            context.log.info(f"{name} ran")
            return name

        return after_gate

    @op(name=name, tags=tags)
    def no_input(context: OpExecutionContext) -> str:
        context.log.info(f"{name} ran")
        return name

    return no_input


LOWS = [_step(f"low_{i}", 1, with_input=False) for i in range(N)]
HIGHS = [_step(f"high_{i}", 9, with_input=True) for i in range(N)]


@job(executor_def=celery_executor)
def priority_job():
    blocker()
    for low in LOWS:
        low()
    g = gate()
    for high in HIGHS:
        high(g)


defs = Definitions(
    jobs=[priority_job, example_job],
    resources=deployment_resources(),
)
