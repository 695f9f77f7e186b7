"""The local runner's failure paths once it has started (``python -m infra.local up --once``, embedded services):
each ends in one message that says what happened and a non-zero exit code, never a hang or a traceback.

- a job no code location has, or a code location that does not import: exit 2 before any process starts;
- a worker that dies while the job runs: "a process stopped unexpectedly", naming it, exit 1;
- a run still going at ``--timeout``: "the run did not finish within", with its status, exit 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT

CODE = '''
import os, signal, time
from dagster import Definitions, job, op
from dagster_celery_aws import celery_executor, deployment_resources

QUEUE = {"dagster-celery/queue": "dagster"}


@op(tags=QUEUE)
def kill_my_worker():
    os.kill(os.getppid(), signal.SIGKILL)  # the pool child's parent: the Celery worker's main process


@op(tags=QUEUE)
def slow():
    time.sleep(8)


@job(executor_def=celery_executor)
def kill_job():
    kill_my_worker()


@job(executor_def=celery_executor)
def slow_job():
    slow()


defs = Definitions(jobs=[kill_job, slow_job], resources=deployment_resources())
'''


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("failing")
    (root / "failing_jobs.py").write_text(CODE)
    (root / "broken_jobs.py").write_text("raise ImportError('this location is broken on purpose')\n")
    (root / "Pulumi.one.yaml").write_text(yaml.safe_dump({"config": {"dagster-celery-aws:queues": [{"name": "dagster"}]}}))
    return root


def run(tmp_path, code_dir, module: str, job: str, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "infra.local", "up", "--once", "--state-dir", str(tmp_path / "state"), "--port", "0",
            "--stack-file", str(code_dir / "Pulumi.one.yaml"), "--code-module", module, "--code-dir", str(code_dir),
            "--job", job, *args]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout
    return proc


def test_a_job_no_location_has_or_a_location_that_does_not_import_is_named_before_anything_runs(tmp_path, code_dir):
    proc = run(tmp_path, code_dir, "failing_jobs", "no_such_job")
    assert proc.returncode == 2 and "processes:" not in proc.stdout
    assert "error: cannot load job 'no_such_job' from the code locations: failing_jobs" in proc.stdout
    proc = run(tmp_path, code_dir, "broken_jobs", "kill_job")
    assert proc.returncode == 2 and "processes:" not in proc.stdout
    assert "error: cannot load job 'kill_job' from the code locations: broken_jobs (broken_jobs): " in proc.stdout
    assert "this location is broken on purpose" in proc.stdout


def test_a_worker_that_dies_mid_run_stops_the_runner_naming_it(tmp_path, code_dir):
    proc = run(tmp_path, code_dir, "failing_jobs", "kill_job", "--timeout", "120")  # its step is lost with the worker
    assert proc.returncode == 1
    assert "error: a process stopped unexpectedly:" in proc.stdout
    lines = proc.stdout.split("error: a process stopped unexpectedly:", 1)[1].splitlines()
    assert lines[1].lstrip().startswith("worker-dagster") and "exited rc=-9" in lines[1], lines[:3]


def test_a_run_past_the_timeout_is_reported_with_its_status(tmp_path, code_dir):
    proc = run(tmp_path, code_dir, "failing_jobs", "slow_job", "--timeout", "1")
    assert proc.returncode == 1
    # Still queued, starting or started at 1 s, by the machine's load: the status is said, whichever it is.
    assert re.search(r"^error: the run did not finish within 1 s \(status (QUEUED|STARTING|STARTED)\)$", proc.stdout,
                     re.MULTILINE), proc.stdout
