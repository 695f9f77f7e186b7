"""``python -m dagster_celery_aws.retention``: delete finished runs older than the stack's ``retention.runDays``.

Dagster purges schedule and sensor ticks itself (instance ``retention``) but never runs: their rows and event
logs only grow. This loop, a sidecar of the daemon's task, deletes every hour the finished runs last updated
before the cutoff, oldest first, with ``DagsterInstance.delete_run`` (the run's row, then its events): one run per
statement group, ``BATCH`` runs per batch and a pause between batches, so that no long transaction or lock holds
the tables that running pipelines write. A run still queued or in progress is never deleted. Compute logs are not
touched here: the bucket's lifecycle expires them after the same number of days.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

from dagster_celery_aws.instance_settings import RUN_RETENTION_DAYS, SETTINGS_VAR

BATCH = 100  # runs per batch
PAUSE_SECONDS = 1.0  # between batches: the running pipelines' writes go first
EVERY_SECONDS = 3600  # between purges


def purge(instance, older_than: datetime, batch: int = BATCH, pause: float = PAUSE_SECONDS) -> list[int]:
    """Delete the finished runs last updated before ``older_than`` in batches; the size of each batch."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import FINISHED_STATUSES

    batches = []
    while True:
        records = instance.get_run_records(
            filters=RunsFilter(statuses=list(FINISHED_STATUSES), updated_before=older_than), limit=batch, ascending=True
        )
        if not records:
            return batches
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
        batches.append(len(records))
        if len(records) < batch:
            return batches
        time.sleep(pause)


def main() -> None:
    from dagster import DagsterInstance

    days = json.loads(os.environ.get(SETTINGS_VAR) or "{}").get(RUN_RETENTION_DAYS)
    if not days:
        print(f"no {RUN_RETENTION_DAYS} in {SETTINGS_VAR}: runs are kept", flush=True)
        return
    while True:
        with DagsterInstance.get() as instance:
            cutoff = datetime.now(timezone.utc) - timedelta(days=days)
            deleted = sum(purge(instance, cutoff))
        print(f"retention: deleted {deleted} run(s) last updated before {cutoff:%Y-%m-%d %H:%M} UTC", flush=True)
        time.sleep(EVERY_SECONDS)


if __name__ == "__main__":
    main()
