"""The stack's instance settings (runs.retries, runs.maxConcurrentRuns, runs.tagLimits, runs.pools): from stack config
to dagster.yaml (infra/specs/instance.py, dagster_celery_aws.instance_settings), read by Dagster, and obeyed by a
real dagster-daemon on PostgreSQL: a failed run is retried and its retry succeeds; a run over a tag limit stays
queued while another run of the same tag runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._cli.job import execute_launch_command
from dagster._core.instance.config import dagster_instance_config
from dagster_shared.cli import WorkspaceOpts

from conftest import REPO_ROOT, port_open, postgres_database, s3_server, wait_for
from infra.local import runtime_files
from infra.specs import contract, instance, topology
from infra.stackfile.config import ConfigError, parse

JOBS = REPO_ROOT / "tests" / "jobs" / "instance_jobs.py"
BIN = Path(sys.executable).parent


def stack(**runs) -> dict:
    return {"queues": [{"name": "dagster"}], "runs": runs}


def test_settings_pass_dagsters_schema_and_reach_the_instance(tmp_path, monkeypatch):
    cfg = parse(stack(maxConcurrentRuns=3, retries={"maxRetries": 2, "retryOnStepFailure": True},
                      tagLimits=[{"key": "team", "limit": 1}, {"key": "db", "value": "warehouse", "limit": 2},
                                 {"key": "tenant", "perValue": True, "limit": 1}],
                      pools={"defaultLimit": 4}))  # fmt: skip
    settings = instance.settings(cfg)
    doc = runtime_files.instance_config({"sqlite": {"base_dir": str(tmp_path)}}, settings)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(doc))
    dagster_instance_config(str(tmp_path))  # Dagster's own validation (raises on a bad section)
    monkeypatch.setenv(contract.S3_BUCKET, "b")
    monkeypatch.setenv(contract.RUN_TASK_DEFINITION, "family")
    monkeypatch.setenv(contract.RUNS_MODE, "daemon")
    with DagsterInstance.from_config(str(tmp_path)) as inst:
        assert inst.run_retries_enabled and inst.run_retries_max_retries == 2
        assert inst.run_retries_retry_on_asset_or_op_failure is True
        concurrency = inst.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 3
        assert concurrency.pool_config.default_pool_limit == 4
        limits = concurrency.run_queue_config.tag_concurrency_limits
        assert limits == [{"key": "team", "limit": 1}, {"key": "db", "value": "warehouse", "limit": 2},
                          {"key": "tenant", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]  # fmt: skip


def test_defaults_retry_a_run_once_but_not_its_failed_steps():
    settings = instance.settings(parse(stack()))
    assert settings["run_retries"] == {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False}
    assert settings["concurrency"]["runs"] == {"max_concurrent_runs": 5, "tag_concurrency_limits": []}
    assert instance.settings(parse(stack(retries={"maxRetries": 0})))["run_retries"]["enabled"] is False


@pytest.mark.parametrize("runs, words", [
    ({"retries": {"maxRetries": -1}}, ["runs.retries.maxRetries"]),
    ({"retries": {"maxRetries": 11}}, ["runs.retries.maxRetries", "10"]),
    ({"tagLimits": [{"key": "team", "value": "a", "perValue": True, "limit": 1}]}, ["runs.tagLimits[0]", "not both"]),
    ({"tagLimits": [{"key": "team"}]}, ["runs.tagLimits[0].limit"]),
    ({"tagLimits": [{"key": "team", "limit": -1}]}, ["runs.tagLimits[0].limit"]),
    ({"pools": {"granularity": "step"}}, ["runs.pools.granularity", "op|run"]),
    ({"pools": {"defaultLimit": 1001}}, ["runs.pools.defaultLimit"]),
])  # fmt: skip
def test_bad_settings_name_the_key(runs, words):
    with pytest.raises(ConfigError) as err:
        parse(stack(**runs))
    for word in words:
        assert word in str(err.value)


def test_the_entry_point_writes_the_settings_then_runs_the_command(tmp_path):
    (tmp_path / "dagster.yaml").write_text((REPO_ROOT / "worker_image" / "dagster.yaml").read_text())
    value = instance.settings_value(parse(stack(retries={"maxRetries": 3})))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), contract.INSTANCE_SETTINGS: value}
    out = subprocess.run(
        [sys.executable, "-m", "dagster_celery_aws.instance_settings", sys.executable, "-c",
         "import os, yaml; print(yaml.safe_load(open(os.environ['DAGSTER_HOME'] + '/dagster.yaml'))['run_retries'])"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "'max_retries': 3" in out
    doc = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert doc["run_launcher"]["module"] == "dagster_celery_aws.run_launcher"  # the image's sections kept


# --- the daemon on PostgreSQL ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A dagster-daemon with the image's dagster.yaml and these settings, on a database of its own, and one code
    server that the daemon and the test's launches share: runs start from it (runs mode daemon, as the local
    runner); compute logs go to a moto S3 server."""
    home = tmp_path_factory.mktemp("home")
    cfg = parse(stack(maxConcurrentRuns=5, retries={"maxRetries": 1, "retryOnStepFailure": True},
                      tagLimits=[{"key": "team", "limit": 1}]))  # fmt: skip
    (home / "dagster.yaml").write_text(yaml.safe_dump(runtime_files.instance_config(None, instance.settings(cfg))))
    port = free_port()
    server = {"host": "127.0.0.1", "port": port, "location_name": "jobs"}
    (home / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"grpc_server": server}]}))
    with postgres_database("settings") as db, s3_server() as (endpoint, s3):
        s3.create_bucket(Bucket="logs")
        env = {
            **os.environ, "DAGSTER_HOME": str(home), contract.PG_HOST: "127.0.0.1", contract.PG_PORT: "5432",
            contract.PG_DB: db, contract.PG_USERNAME: "postgres", contract.PG_PASSWORD: "", contract.S3_BUCKET: "logs",
            contract.RUNS_MODE: "daemon", contract.RUN_TASK_DEFINITION: "unused", "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", contract.REGION: "us-east-1",
        }  # fmt: skip
        saved = dict(os.environ)
        os.environ.update(env)
        log = (home / "processes.log").open("w")
        commands = ([str(BIN / "dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(port), "-f", str(JOBS)],
                    [str(BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")])  # fmt: skip
        procs = []
        try:
            procs.append(subprocess.Popen(commands[0], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))  # fmt: skip
            wait_for("the code server", lambda: port_open(port), timeout=60)
            procs.append(subprocess.Popen(commands[1], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))  # fmt: skip
            with DagsterInstance.get() as inst:
                yield inst, home / "workspace.yaml"
        finally:
            for proc in reversed(procs):  # the daemon, then the code server and the run workers it started
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
            log.close()
            os.environ.clear()
            os.environ.update(saved)


def launch(daemon, job: str, config: dict | None = None, tags: dict | None = None) -> str:
    """Submit a run to the queue, as `dagster job launch` does (the daemon dequeues it)."""
    inst, workspace = daemon
    run = execute_launch_command(
        instance=inst, workspace_opts=WorkspaceOpts(workspace=[str(workspace)]), job_name=job,
        config_json=json.dumps(config) if config else None, tags=json.dumps(tags) if tags else None,
    )  # fmt: skip
    return run.run_id


def status(inst: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return inst.get_run_by_id(run_id).status


def test_a_failed_run_is_retried_and_the_retry_succeeds(daemon, tmp_path):
    inst = daemon[0]
    first = launch(daemon, "flaky", {"ops": {"fails_first_time": {"config": {"dir": str(tmp_path)}}}})
    wait_for("the first run to fail", lambda: status(inst, first) == DagsterRunStatus.FAILURE, timeout=120)

    def retry():
        runs = [r for r in inst.get_runs() if r.root_run_id == first]
        return runs[0] if runs and runs[0].status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE) else None

    run = wait_for("the retry to finish", retry, timeout=120)
    assert run.status == DagsterRunStatus.SUCCESS, run.status
    assert run.parent_run_id == first and run.tags["dagster/retry_number"] == "1"


def test_a_run_over_its_tag_limit_stays_queued_while_the_other_runs(daemon, tmp_path):
    inst = daemon[0]
    config = {"ops": {"waits_for_release": {"config": {"dir": str(tmp_path)}}}}
    first = launch(daemon, "held", config, {"team": "ml"})
    wait_for("the first run to start", lambda: status(inst, first) == DagsterRunStatus.STARTED, timeout=120)
    second = launch(daemon, "held", config, {"team": "ml"})
    # A run without the tag, queued after the second: once it has started, the daemon has dequeued past the second.
    third = launch(daemon, "untagged")
    wait_for("the untagged run to succeed", lambda: status(inst, third) == DagsterRunStatus.SUCCESS, timeout=120)
    assert status(inst, second) == DagsterRunStatus.QUEUED
    (tmp_path / "release").touch()
    wait_for("both held runs to succeed",
             lambda: status(inst, first) == status(inst, second) == DagsterRunStatus.SUCCESS, timeout=120)  # fmt: skip


def test_the_stacks_pool_limits_are_set_on_the_instance(daemon):
    """The step before serving (topology.BEFORE_SERVING) sets runs.pools.limits; a pool it does not name keeps its own."""
    inst = daemon[0]
    inst.event_log_storage.set_concurrency_slots("set-in-the-ui", 7)
    value = instance.settings_value(parse(stack(pools={"limits": {"warehouse": 2, "api": 0}})))
    command = dict(topology.BEFORE_SERVING)["pools"]
    assert command[0] == "python"
    subprocess.run([sys.executable, *command[1:]], env={**os.environ, contract.INSTANCE_SETTINGS: value}, check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    limits = {key: inst.event_log_storage.get_concurrency_info(key).slot_count for key in inst.event_log_storage.get_concurrency_keys()}
    assert limits == {"warehouse": 2, "api": 0, "set-in-the-ui": 7}
