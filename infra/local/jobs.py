"""The job side: which queues a job's steps use, waiting for a run, and where each step ran.

Where a step ran is read from the run's event log, not from the op's tags:
- the run worker's engine event ``Submitting celery task for step "S" to queue "Q".`` (dagster_celery
  core_execution_loop) gives the queue the message was published to;
- the worker's engine event ``Executing steps S in celery worker`` carries the metadata entry
  ``Celery worker`` = the worker's node name (``self.request.hostname`` in dagster_celery.tasks);
- STEP_START .. STEP_SUCCESS/STEP_FAILURE timestamps give the duration.
The runner names each worker ``<queue>@%h`` (the topology's ``-n``) and subscribes it to that queue only
(``-q``), so the node name says which queue it consumed the step from; ``check_placement`` compares the two.

``python -m infra.local.jobs MODULE`` prints, for every job of the code location (the implicit asset job that
Materialize and backfills run included), its ``{step: queue}`` and why the stack's workers would not run it (an
executor that runs steps itself, a Celery executor with a broker of its own, an asset routed by asset tags:
``dagster_celery_aws.queues``, the rules of the executor and the image check) as JSON; the runner runs it from
the location's directory with the workers' environment, so the code is imported exactly as a worker imports it.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from dagster_celery_aws.queues import executor_problem, location_jobs, routing_problems, step_queues

SUBMITTED = re.compile(r'Submitting celery task for step "(?P<step>.+)" to queue "(?P<queue>.+)"\.')
WORKER_KEY = "Celery worker"


def inspect(job, default_queue: str, broker_url: str, served=None) -> dict:
    """{"queues": {step: queue}, "routing": [...], "problem": why the stack's workers would not run it, or None}.
    An executor that runs the steps itself (``executor_problem``) makes the job run, just not on the queues;
    ``routing`` (``routing_problems``: asset tags that route nothing, queues outside ``served``) makes it fail or
    hang: the image check stops a deployment for these, as ``make validate`` does."""
    problem = executor_problem(job, broker_url)
    if problem:
        return {"queues": {}, "routing": [], "problem": problem}
    queues = step_queues(job, default_queue)
    routing = routing_problems(job, queues, default_queue, served)
    return {"queues": queues, "routing": routing, "problem": "; ".join(routing) or None}


def inspect_location(loc, default_queue: str, env: dict[str, str], served=None) -> tuple[dict | None, str | None]:
    """Every job of a code location as ``python -m infra.local.jobs`` reports it, imported from the location's
    directory in a process of its own with ``env``: ({job: inspect(...)}, None), or (None, why it did not load).
    With ``served`` (the stack's queues), a step for any other queue is a routing problem."""
    import subprocess

    argv = [sys.executable, "-m", "infra.local.jobs", loc.module, default_queue]
    if served is not None:
        argv.append(",".join(sorted(served)))
    proc = subprocess.run(argv, cwd=loc.directory, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None, f"{loc.name} ({loc.module}): {(proc.stderr.strip().splitlines() or ['(no output)'])[-1]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def wait_for_run(instance, run_id: str, timeout: float, on_status: Callable[[str], None], check: Callable[[], None]):
    """Poll the run until it ends or ``timeout`` passes; ``check`` raises to abort (a process died)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        run = instance.get_run_by_id(run_id)
        status = run.status.value if run else "UNKNOWN"
        if status != last:
            on_status(status)
            last = status
        if run is not None and run.is_finished:
            return run
        if time.monotonic() > deadline:
            return run
        check()
        time.sleep(0.5)


@dataclass
class StepRow:
    step: str
    queue: str | None = None  # queue it was published to (run worker's engine event)
    worker: str | None = None  # Celery node that executed it (worker's engine event)
    start: float | None = None
    end: float | None = None
    status: str = "NOT STARTED"
    error: list[str] | None = None  # a failed step's error: the first line of it and of each cause

    @property
    def duration(self) -> float | None:
        return None if self.start is None or self.end is None else self.end - self.start


def step_rows(instance, run_id: str) -> list[StepRow]:
    from dagster import DagsterEventType

    rows: dict[str, StepRow] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        row = rows.setdefault(event.step_key, StepRow(event.step_key))
        kind = event.event_type
        if kind == DagsterEventType.ENGINE_EVENT:
            m = SUBMITTED.fullmatch(event.message or "")
            if m:
                row.queue = m["queue"]
            metadata = getattr(event.event_specific_data, "metadata", None) or {}
            if WORKER_KEY in metadata:
                row.worker = str(getattr(metadata[WORKER_KEY], "value", metadata[WORKER_KEY]))
        elif kind == DagsterEventType.STEP_START:
            row.start, row.status = entry.timestamp, "STARTED"
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            row.end = entry.timestamp
            row.status = "SUCCESS" if kind == DagsterEventType.STEP_SUCCESS else "FAILURE"
            if kind == DagsterEventType.STEP_FAILURE:
                row.error = error_lines(getattr(event.event_specific_data, "error", None)) or [event.message or ""]
    return sorted(rows.values(), key=lambda r: (r.start is None, r.start or 0, r.step))


def error_lines(error) -> list[str]:
    """The first line of a SerializableErrorInfo's message and of each of its causes: Dagster's wrapper
    ("Error occurred while executing op ...") first, the user's exception last."""
    lines = []
    while error is not None:
        first = (error.message or "").strip().splitlines()
        lines.append(first[0] if first else error.cls_name or "")
        error = error.cause
    return lines


def run_failure(instance, run_id: str) -> list[str]:
    """Why the run failed outside its steps (e.g. a partition it needs and lacks): its RUN_FAILURE event's error."""
    from dagster import DagsterEventType

    for entry in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        event = entry.dagster_event
        return error_lines(getattr(event.event_specific_data, "error", None)) or [event.message or ""]
    return []


def check_placement(rows: list[StepRow], node_queues: dict[str, str]) -> list[str]:
    """Problems where a step did not run on a worker of the queue it was sent to ({node name: queue})."""
    problems = []
    for r in rows:
        if r.worker is None or r.queue is None:
            problems.append(f"step {r.step}: no record of {'its queue' if r.queue is None else 'a worker'}")
        elif node_queues.get(r.worker) != r.queue:
            problems.append(f"step {r.step} was sent to queue {r.queue} but ran on {r.worker} "
                            f"(queue {node_queues.get(r.worker, 'unknown')})")  # fmt: skip
    return problems


def report(instance, run, rows: list[StepRow]) -> list[str]:
    record = instance.get_run_record_by_id(run.run_id)
    took = ""
    if record and record.start_time and record.end_time:
        took = f" in {record.end_time - record.start_time:.1f} s"
    lines = [f"run {run.run_id} ({run.job_name}): {run.status.value}{took}"]
    head = ("step", "queue", "worker", "duration", "status")
    table = [head] + [
        (r.step, r.queue or "-", r.worker or "-", "-" if r.duration is None else f"{r.duration:.2f} s", r.status)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    for r in rows:
        if r.error:
            lines.append(f"  step {r.step} failed: " + "\n    ".join(r.error))
    if run.status.value == "FAILURE" and not any(r.error for r in rows):
        reason = run_failure(instance, run.run_id)
        if reason:
            lines.append("  run failed: " + "\n    ".join(reason))
    return lines


if __name__ == "__main__":
    # python -m infra.local.jobs MODULE DEFAULT_QUEUE [QUEUE,...]: every job of the location, as JSON {job: inspect(...)}
    import os

    try:
        broker = os.environ["DAGSTER_CELERY_BROKER_URL"]  # infra/specs/contract.py BROKER_URL
        default = sys.argv[2] if len(sys.argv) > 2 else "dagster"
        served = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else None
        jobs = location_jobs(sys.argv[1])
        print(json.dumps({name: inspect(job, default, broker, served) for name, job in jobs.items()}))
    except Exception as err:  # noqa: BLE001 - reported to the runner as one line
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"{type(err).__name__}: {first}", file=sys.stderr)
        sys.exit(1)
