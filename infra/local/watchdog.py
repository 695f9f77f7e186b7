"""Ends a run whose step waits on a queue that nobody consumes, naming the queue.

A step sent to a queue with no worker waits forever: the run worker polls ``result.ready()`` with no timeout
(dagster issue #2336; docs/facts.md). It happens when a job uses a queue the stack lacks, or when the only
worker of a queue dies mid-step and none comes back (its step is requeued and nobody takes it). On AWS the
stack's alarm fires after ``operations.noConsumerMinutes``; locally this watchdog does the same job and ends
the run: every ``interval`` seconds it looks at each STARTED run's steps that were submitted to a queue and
have not ended (from the run's event log: ``infra.local.jobs.step_rows``), asks the broker how many
consumers each such queue has (a passive ``queue.declare``), and when a queue has had none for ``seconds``,
marks the run FAILURE with a message that names the step and the queue.

On the embedded filesystem broker, which counts no consumers, a queue has a consumer when the runner started
a worker for it. A broker that cannot be asked (e.g. restarting) is no evidence: the clock of that queue
starts again. The run worker of a
run failed this way notices it and exits, and a worker that takes the step later does not run it
(dagster_celery_aws.executor and fast_task; docs/reliability.md, fault 9).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from infra.local import jobs

WAITING = ("NOT STARTED", "STARTED")  # StepRow.status of a submitted step that has not ended


def message(step: str, queue: str, seconds: float) -> str:
    return (
        f'step "{step}" waits on Celery queue "{queue}", which has had no consumer for {seconds:.0f} s: no worker '
        f'serves queue "{queue}", so the step would wait forever (dagster issue #2336). Start a worker for '
        f'queue "{queue}" (add it to the stack file\'s queues) and run the job again.'
    )


class QueueWatchdog:
    def __init__(
        self, instance, broker_url: str | None, seconds: float, say: Callable[[str], None], interval: float = 2.0,
        served: set[str] = frozenset(),
    ):  # fmt: skip
        self.instance, self.broker_url, self.seconds, self.say = instance, broker_url, seconds, say
        self.served = served  # the queues the runner started workers for
        self.interval = min(interval, max(seconds / 4, 0.5))
        self._since: dict[tuple[str, str], float] = {}  # (run id, queue) -> first time seen without consumer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="queue-watchdog", daemon=True)

    def start(self) -> QueueWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_once(time.monotonic())
            except Exception as err:  # noqa: BLE001 - storage briefly unreachable: try again next time
                self.say(f"  watchdog: skipped a check ({type(err).__name__}: {err})")

    def consumers(self, queue: str) -> int | None:
        """Consumers of ``queue`` on the broker (0 if it does not exist); None if the broker cannot be asked."""
        if not (self.broker_url or "").startswith(("amqp://", "amqps://", "pyamqp://")):
            return 1 if queue in self.served else 0  # embedded broker: no consumer count to ask
        from amqp.exceptions import NotFound
        from kombu import Connection

        try:
            with Connection(self.broker_url, connect_timeout=3) as conn:
                channel = conn.channel()
                try:
                    return channel.queue_declare(queue=queue, passive=True).consumer_count
                except NotFound:
                    return 0
        except Exception:  # noqa: BLE001 - unreachable or restarting broker
            return None

    def check_once(self, now: float) -> list[str]:
        """One pass; returns the ids of the runs it failed."""
        from dagster import DagsterRunStatus, RunsFilter

        failed, seen = [], set()
        for run in self.instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
            waiting: dict[str, str] = {}  # queue -> first step waiting on it
            for row in jobs.step_rows(self.instance, run.run_id):
                if row.queue and row.status in WAITING:
                    waiting.setdefault(row.queue, row.step)
            for queue, step in waiting.items():
                key = (run.run_id, queue)
                seen.add(key)
                if self.consumers(queue) != 0:
                    self._since.pop(key, None)
                    continue
                since = self._since.setdefault(key, now)
                if now - since >= self.seconds:
                    text = message(step, queue, now - since)
                    self.instance.report_run_failed(run, text)
                    self.say(f"  watchdog: run {run.run_id} failed: {text}")
                    failed.append(run.run_id)
                    break
        self._since = {k: v for k, v in self._since.items() if k in seen}
        return failed
