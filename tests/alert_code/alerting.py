"""A code location that gives the alert sensors something to report (tests/test_alerts.py): a run that fails
(its error quotes a secret), a run that waits for a file, and a sensor that always fails."""

import os
import time
from pathlib import Path

import dagster as dg


@dg.op
def explode():
    raise ValueError(f"boom with password {os.environ['DAGSTER_PG_PASSWORD']}\nsecond line of the error")


@dg.job(executor_def=dg.in_process_executor)
def failing_job():
    explode()


@dg.op
def wait_for_release():
    release = Path(os.environ["ALERT_TEST_RELEASE"])
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


@dg.job(executor_def=dg.in_process_executor)
def slow_job():
    wait_for_release()


def run_failure_alert_started(instance: dg.DagsterInstance) -> bool:
    """Whether the run-failure alert has ticked once: a run status sensor's first tick sets its cursor to the latest
    run event and reports only what comes after (dagster's run_status_sensor), so a run that failed before is not
    its to report (docs/operations.md)."""
    return any(s.name == "alert_run_failure" and s.instigator_data and s.instigator_data.cursor
               for s in instance.all_instigator_state())


@dg.sensor(jobs=[failing_job, slow_job], default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=1)
def launch_once(context):
    if context.cursor:
        return dg.SkipReason("launched")
    if not run_failure_alert_started(context.instance):
        return dg.SkipReason("waiting for the run-failure alert's first tick")
    context.update_cursor("launched")
    return [dg.RunRequest(job_name="failing_job", run_key="failing"), dg.RunRequest(job_name="slow_job", run_key="slow")]


@dg.sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=1)
def broken_sensor(context):
    raise RuntimeError("the sensor broke\nsecond line")


defs = dg.Definitions(jobs=[failing_job, slow_job], sensors=[launch_once, broken_sensor])
