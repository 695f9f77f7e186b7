"""The operator's commands on a real worker: ``dagster-celery-aws worker list|terminate`` (the runtime's console
script) and ``celery -A dagster_celery.app inspect active``, with the deployment's packaged Celery settings.

The worker is the topology's own command (``celery -A dagster_celery.app worker -Q Q -n Q@%h``) on the real
RabbitMQ (127.0.0.1:5672, a vhost of its own), run in an empty directory: the settings come from the installed
runtime, their ``env:`` sources from the environment, as in a worker's ECS task.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from infra.specs import contract, topology
from tests.conftest import wait_for

BIN = Path(sys.executable).parent  # the console scripts of this environment (celery, dagster-celery-aws)
CLI = str(BIN / "dagster-celery-aws")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_CELERY_CONFIG", "ECS_AGENT_URI", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def worker(vhost, tmp_path):
    """A worker of the topology on its own queue; yields (node name, queue, the process, its environment)."""
    queue = f"cli-{uuid.uuid4().hex[:8]}"
    env = _env(**{
        contract.BROKER_URL: f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
        contract.BACKEND_URL: f"db+sqlite:///{tmp_path / 'results.sqlite'}",
        "DAGSTER_HOME": str(tmp_path),
    })  # fmt: skip
    log = open(tmp_path / "worker.log", "w")
    proc = subprocess.Popen(list(topology.worker_command(queue, 1)), cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield f"{queue}@{socket.gethostname()}", queue, proc, env
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def test_list_shows_the_worker_and_terminate_stops_it(worker, tmp_path):
    node, queue, proc, env = worker

    def listed():
        out = _run([CLI, "worker", "list"], env, tmp_path)
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        return out.returncode == 0 and out

    out = wait_for("the worker in `worker list`", listed, timeout=90, interval=0.5)
    assert f"{node}: 0 running" in out.stdout.splitlines()

    # Celery's own command, on dagster-celery's app with the packaged settings module.
    inspect = _run(["celery", "-A", "dagster_celery.app", "inspect", "active"], env, tmp_path)
    assert inspect.returncode == 0, inspect.stderr[-3000:]
    assert f"{node}: OK" in inspect.stdout and "1 node online." in inspect.stdout

    # -y: another settings file, here with the broker URL itself instead of an env: source.
    other = tmp_path / "celery.yaml"
    other.write_text(yaml.safe_dump({"execution": {"config": {"broker": env[contract.BROKER_URL]}}}))
    bare = {k: v for k, v in env.items() if k not in (contract.BROKER_URL, contract.BACKEND_URL)}
    stop = _run([CLI, "worker", "terminate", queue, "-y", str(other)], bare, tmp_path)
    assert stop.returncode == 0 and stop.stdout.strip() == f"shutdown sent to {node}", stop.stderr
    assert proc.wait(timeout=60) == 0  # a warm shutdown
    assert "Got shutdown from remote" in (tmp_path / "worker.log").read_text()

    gone = _run([CLI, "worker", "list"], env, tmp_path)
    assert gone.returncode == 1 and "no worker answered" in gone.stderr


def test_dagster_celery_own_commands_work_with_the_resolved_settings(worker, tmp_path):
    """The seed's ``dagster-celery worker list|terminate -y CONFIG`` on the deployment's settings: the packaged file
    as it is fails in dagster-celery (its ``env:`` sources are not resolved there); ``dagster-celery-aws config``
    resolved through a pipe (nothing written to disk) works, as in a worker's task (``bash -c`` under ECS Exec)."""
    node, queue, proc, env = worker
    from dagster_celery_aws.celery_config import PACKAGED

    raw = _run(["dagster-celery", "worker", "list", "-y", str(PACKAGED)], env, tmp_path)
    assert raw.returncode != 0 and 'Param "broker" is not a str' in raw.stderr

    def listed():
        out = _run(["bash", "-c", "dagster-celery worker list -y <(dagster-celery-aws config)"], env, tmp_path)
        assert out.returncode == 0 and proc.poll() is None, out.stderr[-3000:]
        return node in out.stdout and out

    out = wait_for("the worker in dagster-celery's `worker list`", listed, timeout=90, interval=0.5)
    assert f"'{node}': []" in out.stdout  # inspect().active() as dagster-celery prints it: no running task

    stop = _run(["bash", "-c", f"dagster-celery worker terminate {queue} -y <(dagster-celery-aws config)"], env, tmp_path)
    assert stop.returncode == 0, stop.stderr[-3000:]
    assert proc.wait(timeout=60) == 0  # a warm shutdown of the worker dagster-celery named {queue}@<this host>
    assert "Got shutdown from remote" in (tmp_path / "worker.log").read_text()


def test_settings_that_cannot_be_resolved_are_one_clear_error(tmp_path):
    env = _env()
    env.pop(contract.BROKER_URL, None)
    out = _run([CLI, "worker", "list"], env, tmp_path)
    assert out.returncode == 2 and "could not resolve its settings" in out.stderr, out.stderr
    missing = _run([CLI, "worker", "terminate", "--all", "-y", str(tmp_path / "missing.yaml")], env, tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_worker_names_follow_dagster_celery():
    from dagster_celery_aws.cli import node_name

    assert node_name("heavy") == f"heavy@{socket.gethostname()}"  # the worker of queue heavy on this host
    assert node_name("heavy@ip-10-0-1-5") == "heavy@ip-10-0-1-5"


def test_a_running_step_is_listed_with_its_run_and_step():
    """What ``worker list`` prints of a task from ``inspect().active()``: for a step, the executor's message
    (dagster_celery.executor._submit_task's kwargs) gives its run and step keys."""
    from dagster._core.definitions.reconstruct import ReconstructableJob
    from dagster._grpc.types import ExecuteStepArgs
    from dagster._serdes import pack_value

    from dagster_celery_aws.cli import describe

    origin = ReconstructableJob.for_module("dagster_project", "example_job").get_python_origin()
    args = ExecuteStepArgs(job_origin=origin, run_id="r-1", step_keys_to_execute=["part_2"])
    task = {"id": "t-1", "name": "execute_plan", "kwargs": {"execute_step_args_packed": pack_value(args)}}
    assert describe(task) == "execute_plan t-1 run r-1 step part_2"
    assert describe({"id": "t-2", "name": "celery.ping", "kwargs": {}}) == "celery.ping t-2"
