"""Jobs for tests/test_instance_settings.py: run retries and tag concurrency limits, on the daemon's own paths.

Each job reads a directory from its run config; the test creates files there to steer it."""

from pathlib import Path

from dagster import Definitions, in_process_executor, job, op


@op(config_schema={"dir": str})
def fails_first_time(context):
    # The first run leaves a mark and fails; its retry finds the mark and succeeds.
    mark = Path(context.op_config["dir"]) / f"tried-{context.run.root_run_id or context.run_id}"
    if not mark.exists():
        mark.touch()
        raise RuntimeError("first attempt fails on purpose")


@job(executor_def=in_process_executor)  # no process per step: the tests time the queue, not steps
def flaky():
    fails_first_time()


@op(config_schema={"dir": str})
def waits_for_release(context):
    # Holds its run in progress until the test creates <dir>/release.
    from time import monotonic, sleep

    release, deadline = Path(context.op_config["dir"]) / "release", monotonic() + 120
    while not release.exists() and monotonic() < deadline:
        sleep(0.1)
    assert release.exists(), "never released"


@job(executor_def=in_process_executor)  # no process per step: the tests time the queue, not steps
def held():
    waits_for_release()


@op
def quick():
    pass


@job(executor_def=in_process_executor)  # no process per step: the tests time the queue, not steps
def untagged():
    quick()


defs = Definitions(jobs=[flaky, held, untagged])
