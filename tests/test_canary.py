"""The canary (dagster_celery_aws.canary): one step on every queue of the stack, each on a worker of its queue.

End to end with the local runner (``--canary``) on its embedded services -- one runner, three queues, two of them
with names a mapping key cannot hold -- and the runner's own placement check: each step's queue as the run
worker's executor announced it, against the Celery node that ran it; then ``verify``'s canary check through the
same webserver's GraphQL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import yaml

from dagster_celery_aws import canary
from infra.tools import verify
from tests.conftest import wait_for
from tests.test_local_e2e import REPO_ROOT, RUN_LINE

QUEUES = ["dagster", "gpu.small", "ml_2-b"]


@pytest.mark.parametrize("queue", [*QUEUES, "a.b_c-d", "_x_", "Ünï"])
def test_a_queue_name_survives_a_mapping_key(queue):
    key = canary.mapping_key(queue)
    assert re.fullmatch(r"[A-Za-z0-9_]+", key) and canary.queue_of(key) == queue


def test_a_mapped_step_goes_to_its_keys_queue_and_only_to_a_served_one():
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.definitions.reconstruct import reconstructable
    from dagster._core.execution.plan.state import KnownExecutionState

    plan = create_execution_plan(reconstructable(canary.canary_job))
    step = plan.get_step_by_key("canary_queues")
    assert canary.step_queue(None, step, "dagster", {"dagster"}) == "dagster"  # not mapped: the op's queue
    mapped = create_execution_plan(
        reconstructable(canary.canary_job),
        known_state=KnownExecutionState(
            dynamic_mappings={"canary_queues": {"result": [canary.mapping_key("gpu.small")]}}
        ),
    ).get_step_by_key(f"canary_step[{canary.mapping_key('gpu.small')}]")
    with pytest.raises(ValueError, match=r"queue 'gpu.small', which the stack does not have \(its queues: dagster\)"):
        canary.step_queue(None, mapped, "dagster", {"dagster"})


def test_the_canary_runs_one_step_on_every_queue_locally_and_verify_launches_it(tmp_path):
    """One runner: ``--canary`` launches the canary and keeps serving; ``verify``'s canary check then launches it
    again through the same webserver, once with the stack's queues and once with none (its first step fails). A queue
outside the stack fails the run at once only where the run worker knows the stack's queues (DCA_QUEUES: on AWS,
not in the local runner, whose watchdog fails such a run later): the unit test above."""
    stack = tmp_path / "Pulumi.canary.yaml"
    stack.write_text(yaml.safe_dump({"config": {"dagster-celery-aws:queues": [{"name": q} for q in QUEUES]}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
    argv = [sys.executable, "-m", "infra.local", "up", "--state-dir", str(tmp_path / "state"), "--port", "0",
            "--canary", "--stack-file", str(stack)]  # fmt: skip
    log_path = tmp_path / "runner.log"
    with open(log_path, "w+") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:

            def reported():
                assert proc.poll() is None, log_path.read_text()[-3000:]
                return RUN_LINE.search(log_path.read_text())

            run = wait_for("the canary's run report", reported, timeout=600, interval=1)
            out = log_path.read_text()
            assert run["job"] == canary.CANARY_JOB and run["status"] == "SUCCESS", out[-3000:]
            ran = dict(re.findall(r"^\s+canary_step\[\w+\]\s+(\S+)\s+(\S+)\s", out, re.M))
            assert sorted(ran) == sorted(QUEUES), out[-3000:]  # one step per queue, each reported on its queue
            assert "placement:" not in out  # each ran on a worker of the queue it was sent to

            url = re.search(r"^webserver: (http://127\.0\.0\.1:\d+)$", out, re.M)[1]
            (ok,) = verify.check_canary(url, QUEUES, timeout=300, poll=0.5)
            assert ok.ok and "SUCCESS" in ok.line(), ok.line()
            (failed,) = verify.check_canary(url, [], timeout=300, poll=0.5)  # no queue: the canary's first step fails
            assert not failed.ok and "FAILURE" in failed.line(), failed.line()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
