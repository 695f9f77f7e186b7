"""Benchmark of a run's start on real services: submit -> first STEP_START, runs mode "task" against "daemon".

    python benchmarks/run_start.py              # 10 runs per mode: all of mode task, then all of mode daemon
    python benchmarks/run_start.py --runs 20    # N runs per mode

Services as benchmarks/step_path.py has them (the test suite's helpers): RabbitMQ on 127.0.0.1:5672
(guest/guest) with a private vhost, PostgreSQL on 127.0.0.1:5432 (user postgres, trust) with a private
database, and an S3 API (moto) on 127.0.0.1. The processes are the local runner's (infra.local: runtime
files, environment contract, Supervisor): the webserver (to submit through GraphQL, as the UI's Launch button
does), the daemon (QueuedRunCoordinator: it dequeues and launches) and one Celery worker
per queue (warm: started once, as the stack's workers are). The job is the example location's ``example_job``
(dagster_project, the image's default code location); only its start is measured.

The two modes differ only in the run launcher the daemon gets (``dagster.yaml``, rewritten per mode, and
``DCA_RUNS_MODE``), and the daemon is restarted between modes:

- ``daemon``: the image's launcher with ``DCA_RUNS_MODE=daemon`` (Dagster's DefaultRunLauncher, with a run
  worker health check): the daemon's code server starts the run worker (its own multiprocessing child, ``spawn``), as in the daemon's task on ECS;
- ``task``: ``ColdProcessRunLauncher`` below: a fresh ``dagster api execute_run`` process per run, the command
  EcsRunLauncher gives a run task's container. What a Fargate task adds on top (provisioning, image pull,
  container start) is not here: see benchmarks/README.md for the public figure.

Figures per run, from the run's events: submit (the GraphQL call returns) -> RUN_STARTING (the daemon dequeued
and launched it; includes the QueuedRunCoordinator's dequeue interval), -> RUN_START (the run worker is up),
-> the first STEP_START (the first step runs on a Celery worker); and the run worker's peak RSS (VmHWM,
sampled from /proc while the run starts), which sizes the daemon's task in mode daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]

from dagster._core.launcher import RunLauncher  # noqa: E402
from dagster._serdes import ConfigurableClass  # noqa: E402

from benchmarks.step_path import pct, say  # noqa: E402
from dagster_celery_aws.run_launcher import MODES  # noqa: E402  (the runs modes: task, daemon)

JOB = "example_job"  # dagster_project: a seed step on queue dagster, a fan-out over dagster and heavy, a join
COLD_LAUNCHER = {"module": "benchmarks.run_start", "class": "ColdProcessRunLauncher"}


class ColdProcessRunLauncher(RunLauncher, ConfigurableClass):
    """Runs mode "task" on one machine: each run in a fresh interpreter running ``dagster api execute_run``, the
    command EcsRunLauncher puts in a run task's container (dagster_aws.ecs.launcher), without the task."""

    def __init__(self, inst_data=None):
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self):
        return self._inst_data

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data)

    def launch_run(self, context) -> None:
        from dagster._grpc.types import ExecuteRunArgs

        run = context.dagster_run
        args = ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref())
        subprocess.Popen(list(args.get_command_args()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def terminate(self, run_id: str) -> bool:
        return False


# ------------------------------------------------------------------------------------------ environment
@contextlib.contextmanager
def environment(state: Path):
    """The local runner's environment on a private vhost, database and moto S3, with a warm Celery worker per
    queue: yields (env, layout, port, Supervisor, specs by role, code location name)."""
    from infra.specs import code_locations, instance, topology
    from infra.stackfile.config import parse
    from infra.local import code, runtime_files, services
    from infra.local.processes import Supervisor
    from infra.local.runner import _environment, worker_env
    from tests.conftest import postgres_database, rabbit_vhost
    from tests.faults_support import free_port

    cfg = parse({"queues": [{"name": "dagster", "concurrency": 2}, {"name": "heavy"}], "runs": {"maxConcurrentRuns": 1}})
    locs = code_locations.resolve(cfg, REPO_ROOT)  # the example, dagster_project
    with rabbit_vhost("dca-runstart") as vhost, postgres_database("dca_runstart") as db:
        svc = services.start(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", f"postgresql://postgres@127.0.0.1:5432/{db}",
                             None, "bench", state)  # fmt: skip
        sup = None
        try:
            layout = runtime_files.write(state, locs, svc.storage, svc.celery_overrides, instance.settings(cfg))
            env = _environment(svc, layout, cfg, locs, code.python_path(locs, []))
            os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
            sup = Supervisor(layout.app_dir, env, layout.logs)
            for name, command in topology.BEFORE_SERVING:  # as the runner and the daemon task do
                if sup.run_to_end(name, list(command), timeout=300) != 0:
                    raise RuntimeError(f"`{' '.join(command)}` failed: {(layout.logs / f'{name}.log').read_text()[-2000:]}")
            specs = topology.process_specs(cfg)
            for spec in specs:
                if spec.role == "worker":
                    sup.start(spec.name, list(spec.command), extra_env=worker_env(cfg, spec.queue))
            yield env, layout, free_port(), sup, {s.role: s for s in specs}, locs[0].name
        finally:
            if sup is not None:
                sup.stop(grace=10)
            svc.close()


def set_mode(layout, env: dict[str, str], mode: str, image_launcher: dict) -> None:
    """The instance config and DCA_RUNS_MODE of ``mode`` (task: the cold-process launcher above; daemon: the
    image's launcher, which DCA_RUNS_MODE=daemon turns into DaemonRunLauncher)."""
    import yaml

    from infra.specs import contract

    path = layout.dagster_home / "dagster.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["run_launcher"] = COLD_LAUNCHER if mode == "task" else image_launcher
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    env[contract.RUNS_MODE] = mode  # the Supervisor's environment: the next processes it starts


def start_serving(sup, specs, port: int, mode: str) -> list:
    from infra.local.processes import local_argv
    from tests.conftest import wait_for

    procs = [sup.start(f"daemon-{mode}", list(specs["daemon"].command)),
             sup.start(f"webserver-{mode}", local_argv(specs["webserver"], port))]  # fmt: skip

    def ready() -> bool:
        import urllib.request

        for p in procs:
            if p.popen.poll() is not None:
                raise RuntimeError(f"{p.name} exited: {p.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    wait_for("the webserver", ready, 300, 0.5)
    return procs


def stop_serving(sup, procs) -> None:
    sup._stop(procs, grace=10)  # noqa: SLF001 - the runner's own stop, for these processes
    for p in procs:
        sup.procs.remove(p)


# ------------------------------------------------------------------------------------------ measures
def _status_field(pid: int, name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) // 1024  # kB -> MiB
    except OSError:
        return None
    return None


def _run_workers() -> dict[int, str]:
    """This benchmark's processes that are run workers: a code server's spawned child (daemon) or
    `dagster api execute_run` (task); another suite's processes on the machine are not counted."""
    from infra.local.processes import descendants

    found = {}
    for pid in descendants(os.getpid()):
        try:
            text = b" ".join(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))
        except OSError:
            continue
        if b"execute_run" in text or (b"multiprocessing.spawn" in text and b"spawn_main" in text):
            found[pid] = text.decode(errors="replace")[:80]
    return found


def one_run(instance, port: int, location: str) -> dict:
    from dagster import DagsterEventType

    from infra.local import graphql

    before = set(_run_workers())
    t0 = time.time()
    run_id = graphql.launch_run(port, location, JOB)  # as the UI's Launch button
    peak = 0
    first_step = None
    deadline = time.monotonic() + 300
    while first_step is None and time.monotonic() < deadline:
        for pid in set(_run_workers()) - before:
            peak = max(peak, _status_field(pid, "VmHWM") or 0)
        starts = instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START, limit=1).records
        if starts:
            first_step = starts[0].event_log_entry.timestamp
        time.sleep(0.05)  # sampling interval of the RSS probe and the poll; the figures come from event times
    if first_step is None:
        raise TimeoutError(f"run {run_id}: no STEP_START within 300 s")
    while not instance.get_run_by_id(run_id).is_finished and time.monotonic() < deadline:
        for pid in set(_run_workers()) - before:
            peak = max(peak, _status_field(pid, "VmHWM") or 0)
        time.sleep(0.1)
    run = instance.get_run_by_id(run_id)
    times = {}
    for name, kind in (("RUN_STARTING", DagsterEventType.RUN_STARTING), ("RUN_START", DagsterEventType.RUN_START)):
        recs = instance.get_records_for_run(run_id, of_type=kind, limit=1).records
        times[name] = recs[0].event_log_entry.timestamp - t0 if recs else None
    return {"run_id": run_id, "status": run.status.value, "starting": times["RUN_STARTING"],
            "run_start": times["RUN_START"], "first_step": first_step - t0, "rss_mib": peak or None}  # fmt: skip


def fmt(v) -> str:
    return "-" if v is None else f"{v:.2f} s"


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| mode | N | submit -> RUN_STARTING p50 | -> RUN_START p50 | -> first STEP_START p50 | max | run worker peak RSS |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for mode, rows in results.items():
        col = {k: [r[k] for r in rows if r[k] is not None] for k in ("starting", "run_start", "first_step", "rss_mib")}
        rss = f"{max(col['rss_mib'])} MiB" if col["rss_mib"] else "-"
        lines.append(f"| {mode} | {len(rows)} | {fmt(pct(col['starting'], 0.5))} | {fmt(pct(col['run_start'], 0.5))} | "
                     f"**{fmt(pct(col['first_step'], 0.5))}** | {fmt(max(col['first_step']))} | {rss} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10, help="runs per mode (N)")
    args = p.parse_args(argv)
    if shutil.which("rabbitmqctl") is None:
        p.error("rabbitmqctl not found: this benchmark makes a private vhost on 127.0.0.1:5672")
    load_start = os.getloadavg()[0]
    state = Path(tempfile.mkdtemp(prefix="dca-runstart-"))
    results: dict[str, list[dict]] = {m: [] for m in MODES}
    ok = False
    try:
        with environment(state) as (env, layout, port, sup, specs, location):
            import yaml
            from dagster import DagsterInstance

            image_launcher = yaml.safe_load((layout.dagster_home / "dagster.yaml").read_text())["run_launcher"]
            for mode in MODES:
                set_mode(layout, env, mode, image_launcher)
                procs = start_serving(sup, specs, port, mode)
                try:
                    with DagsterInstance.from_config(str(layout.dagster_home)) as instance:
                        # Not counted: the first run after a start waits for the daemon's code server to load.
                        one_run(instance, port, location)
                        for i in range(args.runs):
                            row = one_run(instance, port, location)
                            results[mode].append(row)
                            say(f"  {mode:<6} {i + 1}/{args.runs}: first STEP_START {fmt(row['first_step'])} "
                                f"(RUN_STARTING {fmt(row['starting'])}, RUN_START {fmt(row['run_start'])}), "
                                f"{row['status']}, run worker {row['rss_mib']} MiB")  # fmt: skip
                finally:
                    stop_serving(sup, procs)
        ok = True
    finally:
        if ok:
            shutil.rmtree(state, ignore_errors=True)
        else:
            say(f"logs kept in {state / 'logs'}")
    say("")
    say(f"{os.cpu_count()} CPUs, load average {load_start:.1f} at start and {os.getloadavg()[0]:.1f} at end; job {JOB}; "
        f"the daemon's dequeue interval is the image's (dagster.yaml)")
    say(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
