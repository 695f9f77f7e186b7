"""The local runner runs what ECS runs: the same commands (only the webserver's bind address and port
differ) and instance/Celery config that reads only variables every ECS task definition sets."""

from __future__ import annotations

import json

import pytest

from infra.stackfile.config import Operations, load_stack_file
from infra.local import runtime_files
from infra.local.processes import local_argv
from infra.tools.testing import run_stack
from infra.specs.topology import process_specs
from tests.conftest import REPO_ROOT, wait_for


@pytest.fixture(scope="module")
def dev():
    path = REPO_ROOT / "Pulumi.dev.yaml"
    return load_stack_file(path), run_stack(path, stack="dev")


def ecs_command(stack, spec) -> list[str]:
    """The command of the process's container, in whichever task it runs (ui.access 'ssm': the webserver's is in
    the daemon's task)."""
    containers = [c for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
                  for c in json.loads(t.inputs["containerDefinitions"]) if c["name"] == spec.name]  # fmt: skip
    (container,) = containers
    return container["command"]


def test_local_processes_run_the_task_definitions_commands(dev):
    cfg, stack = dev
    for spec in process_specs(cfg):
        if spec.role not in ("worker", "daemon", "webserver"):
            continue  # the run task's command comes from the launcher; the publisher needs CloudWatch
        local, ecs = local_argv(spec, 43210), ecs_command(stack, spec)
        if spec.role == "webserver":
            changed = [i for i, (a, b) in enumerate(zip(local, ecs)) if a != b]
            assert [ecs[i - 1] for i in changed] == ["-h", "-p"] and [local[i] for i in changed] == ["127.0.0.1", "43210"]
        else:
            assert local == ecs, spec.name


def _env_refs(value) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(_env_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_env_refs(v) for v in value)) if value else set()
    return set()


@pytest.mark.parametrize("storage", [None, {"sqlite": {"base_dir": "/tmp/x"}}], ids=["real-services", "embedded"])
def test_local_config_reads_only_variables_every_task_sets(dev, storage):
    _, stack = dev
    reads = _env_refs(runtime_files.instance_config(storage)) | _env_refs(runtime_files.celery_config({}))
    assert reads, "no env references found"
    for taskdef in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        for c in json.loads(taskdef.inputs["containerDefinitions"]):
            names = {e["name"] for e in c["environment"]} | {s["name"] for s in c["secrets"]}
            assert reads <= names, (taskdef.urn, c["name"], sorted(reads - names))


def test_local_flower_runs_the_task_definitions_command_on_127_0_0_1():
    path = REPO_ROOT / "Pulumi.dev.yaml"
    cfg = load_stack_file(path).model_copy(update={"operations": Operations(flower=True)})
    stack = run_stack(path, config={"operations": {"flower": True, "ecsExec": True}, "ui": {"access": "private"}}, stack="dev")
    (spec,) = [s for s in process_specs(cfg) if s.role == "flower"]
    local, ecs = local_argv(spec, 43210), ecs_command(stack, spec)
    assert local == [f"--port={43210}" if a.startswith("--port=") else a for a in ecs] + ["--address=127.0.0.1"]


def test_stop_gives_runs_in_flight_the_grace_too(tmp_path):
    """The runner's stop SIGTERMs each main process at once, then waits up to the grace while its mains live
    or ``busy()`` (its runs in flight) holds, before it signals what they leave behind."""
    import sys
    import time

    from infra.local.processes import Supervisor

    sup = Supervisor(tmp_path, {}, tmp_path)
    proc = sup.start("main", [sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    sup.stop(grace=30, busy=lambda: time.monotonic() - t0 < 1.0)  # a run that ends after 1 s
    took = time.monotonic() - t0
    assert proc.popen.returncode == -15 and 1.0 <= took < 10  # SIGTERM at once; the run waited for
    proc = sup.start("again", [sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    sup.stop(grace=0.5, busy=lambda: True)  # a run that never ends: only the grace
    assert time.monotonic() - t0 < 10 and proc.popen.returncode == -15


def test_stop_kills_a_main_process_past_the_grace_with_its_group_as_ecs_does(tmp_path):
    """A main process still running when the grace ends is SIGKILLed with its process group, as ECS kills a
    container past its stopTimeout: nothing in the group gets a second SIGTERM first (a Celery worker's pool
    child would turn it into an interrupt of its step, which would then fail and be acknowledged instead of
    requeued; tests/test_faults.py, fault 13)."""
    import signal
    import sys

    from infra.local.processes import Supervisor, _alive

    script = (
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: None)\n"  # the main: a warm shutdown that outlasts the grace
        "if os.fork() == 0:\n"  # a pool child, in the main's process group
        "    signal.signal(signal.SIGTERM, lambda *a: open(sys.argv[1] + '.term', 'w').close())\n"
        "    open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    ready = tmp_path / "child"
    sup = Supervisor(tmp_path, {}, tmp_path)
    proc = sup.start("main", [sys.executable, "-c", script, str(ready)])
    child = int(wait_for("the child to start", lambda: ready.exists() and ready.read_text(), 30))
    sup.stop(grace=0.5)
    assert proc.popen.returncode == -signal.SIGKILL
    wait_for("the child to be gone", lambda: not _alive(child), 10)
    assert not (tmp_path / "child.term").exists()  # killed, never interrupted


def test_a_read_only_ui_is_dagster_webservers_own_read_only_mode(tmp_path, monkeypatch):
    """ui.readOnly: the webserver's command (ECS and the local runner alike) asks dagster-webserver for its read-only
    mode, which its own command line parses as such; without it the UI may act."""
    from dagster_webserver.cli import create_dagster_webserver_cli

    from infra.stackfile.config import parse

    monkeypatch.chdir(tmp_path)  # the command's relative workspace.yaml, which the command line checks exists
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")

    def webserver(ui: dict):
        (spec,) = [s for s in process_specs(parse({"queues": [{"name": "dagster"}], "ui": ui})) if s.role == "webserver"]
        cli = create_dagster_webserver_cli()
        return cli.make_context(spec.command[0], list(spec.command[1:])).params

    assert webserver({"readOnly": True})["read_only"] is True
    assert webserver({})["read_only"] is False
