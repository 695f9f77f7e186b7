"""The local runner checks every job of the code locations before it runs one: a job the stack's workers
would not run (its executor runs steps itself, or its Celery executor has a broker of its own) is refused
when asked for and named otherwise, instead of a run that stays STARTED until --timeout."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

CODE = '''
from dagster import Config, Definitions, asset, in_process_executor, job, op
from dagster_celery import celery_executor as stock_celery_executor

from dagster_project import example_job


@op
def hello():
    return 1


@job(executor_def=in_process_executor)
def in_process_job():
    hello()


@job(executor_def=stock_celery_executor.configured({"broker": "amqp://elsewhere:5672//"}))
def own_broker_job():
    hello()


class Needed(Config):
    table: str


@op
def configured(config: Needed):
    return config.table


@job
def needs_config_job():
    configured()


@asset
def orders():  # Materialize runs the implicit asset job: with no executor on Definitions, not on Celery
    return 1


defs = Definitions(assets=[orders], jobs=[example_job, in_process_job, own_broker_job, needs_config_job])
'''


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("preflight")
    (root / "mixed_jobs.py").write_text(CODE)
    return root


def run(tmp_path, code_dir, job: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "infra.local", "up", "--once", "--state-dir", str(tmp_path / "state"), "--port", "0",
            "--code-module", "mixed_jobs", "--code-dir", str(code_dir), "--job", job]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout, proc.stderr)
    return proc


@pytest.mark.parametrize(
    "job, words",
    [
        ("in_process_job", "its executor 'in_process' runs the steps itself, not on the stack's Celery workers"),
        ("own_broker_job", "its Celery executor names a broker of its own"),
    ],
)
def test_a_job_the_stack_cannot_run_is_refused_before_anything_runs(tmp_path, code_dir, job, words):
    proc = run(tmp_path, code_dir, job)
    assert proc.returncode == 2
    assert f"error: job {job!r} cannot run on this stack: {words}" in proc.stdout
    assert "processes:" not in proc.stdout  # refused before any process started


def test_the_other_jobs_that_could_not_run_are_named_at_start(tmp_path, code_dir):
    proc = run(tmp_path, code_dir, "example_job")
    assert proc.returncode == 0
    assert "note: job 'in_process_job' (mixed_jobs) would not run on the stack's workers" in proc.stdout
    assert "note: job 'own_broker_job' (mixed_jobs) would not run on the stack's workers" in proc.stdout
    assert "note: job 'needs_config_job' (mixed_jobs) would not run on the stack's workers: it cannot run without run config" in proc.stdout
    # The cause, not the config error's generic first line.
    assert 'Missing required config entry "ops" at the root' in proc.stdout
    assert ("note: job '__ASSET_JOB' (mixed_jobs) would not run on the stack's workers: its executor "
            "'multi_or_in_process_executor' runs the steps itself") in proc.stdout  # fmt: skip
