"""``up``: validate, start the backing services, lay out the runtime files, start the topology, run the job.

Processes come from ``infra.specs.topology.process_specs``: the webserver, the daemon and, per queue, ONE worker
process with the queue's ``concurrency`` slots. Locally there is no autoscaling: a queue whose
``minWorkers`` is 0 still gets its worker (a step sent to a queue nobody consumes waits forever, dagster
issue #2336), and ``maxWorkers`` > 1 would only add processes competing for the same cores. Runs start as on
AWS with ``runs.mode: daemon`` whatever the stack file's mode (there is no ECS here): the image's run launcher
returns Dagster's DefaultRunLauncher, which starts each run as a subprocess of the daemon's code server.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

from dagster_celery_aws import canary
from dagster_celery_aws.celery_config import CONFIG_PATH_VAR
from dagster_celery_aws.queues import unserved

from infra.specs import code_locations, contract, topology
from infra.specs import instance as instance_settings
from infra.stackfile.config import ConfigError, RunsMode, load_stack_file
from infra.local import code, jobs, launch, runtime_files, services, watchdog
from infra.local.options import REPO_ROOT, Options
from infra.local.processes import Supervisor, local_argv

READY_TIMEOUT = 180.0  # seconds for the webserver to answer (code location load on a small machine)
ALERTS_FILE = "alerts.jsonl"  # pipeline alerts of the local runner, in its state directory (contract.ALERT_FILE)


class Failed(Exception):
    """Stop everything and exit with ``code`` after printing the message (no traceback)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def say(line: str = "") -> None:
    print(line, flush=True)


def _raise_interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C: stop every child, then exit
    raise KeyboardInterrupt


def node_name(spec: topology.ProcessSpec) -> str:
    """The Celery node name of a worker spec: its ``-n`` value with %h expanded as Celery expands it."""
    from celery.utils.nodenames import host_format

    argv = list(spec.command)
    return host_format(argv[argv.index("-n") + 1] if "-n" in argv else "celery@%h")


def _environment(svc: services.Services, layout: runtime_files.Layout, cfg, locs, code_path: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    for q in cfg.queues:  # a queue's own variables reach its workers only (Supervisor.start's extra_env)
        for name in (*q.access.environment, *q.access.secrets):
            env.pop(name, None)
    env.update(svc.env)
    env.update(code.access_env(cfg.access))
    # Every process resolves every resource's config: what it is not granted of a queue's variables, it gets as
    # a placeholder (dagster_celery_aws.scoped_env); a queue's workers get their own values on top (worker_env).
    env.update(topology.scoped_placeholders(cfg))
    # No contract.QUEUES: here the preflight names a job's queue without a worker before anything starts, and the
    # watchdog fails a run whose step waits on a queue nobody consumes; workers started beside the runner (the
    # fault tests') may serve queues the stack file does not list.
    env["DAGSTER_HOME"] = str(layout.dagster_home)
    env[contract.CODE_LOCATIONS] = code_locations.names(locs)
    env[contract.INSTANCE_SETTINGS] = instance_settings.settings_value(cfg)  # what runtime_files wrote into dagster.yaml
    env[contract.RUNS_MODE] = RunsMode.DAEMON.value  # no ECS here: every run starts from the daemon's code server
    # The code locations and their requirements first (the image installs them), then the image's APP_DIR: the
    # repository root (dagster_project; infra.local.jobs). The runtime (dagster_celery_aws, the workers'
    # dagster_celery_config) is installed in this Python's environment.
    path = (*code_path, str(REPO_ROOT), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env["PYTHONUNBUFFERED"] = "1"
    # The topology's commands (dagster-webserver, celery, ...) come from this Python's environment,
    # also when it was not activated (`.venv/bin/python -m infra.local`).
    env["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), env.get("PATH", "")) if p)
    # The runtime reads the Celery settings from this file instead of its packaged one, in the workers and in
    # the code location's executor (dagster_celery_aws.celery_config): the run worker sends with the settings
    # the workers consume with.
    env[CONFIG_PATH_VAR] = str(layout.app_dir / runtime_files.CELERY_CONFIG)
    return env


def _alert_environment(cfg, layout: runtime_files.Layout, port: int) -> dict[str, str]:
    """Pipeline alerts as on AWS (stack config ``alerts``), to a file of the state directory instead of the
    alarm topic: one JSON line per alert (docs/local.md)."""
    return {
        contract.ALERTS: ",".join(cfg.alerts.kinds()),
        **topology.alert_environment(cfg, str(layout.app_dir / topology.WORKSPACE)),
        contract.ALERT_FILE: str(layout.state / ALERTS_FILE),
        contract.UI_URL: f"http://127.0.0.1:{port}",
    }


def worker_env(cfg, queue: str) -> dict[str, str]:
    """What a worker of ``queue`` gets on top of every process's environment, as on ECS: what only workers
    get (``topology.worker_environment``) and its queue's own access (``queues[].access``)."""
    return {**topology.worker_environment(cfg), **code.access_env(cfg.queue(queue).access)}


def preflight(opts: Options, locs, layout, env, workers) -> tuple[str, dict[str, str]]:
    """Every job of every location, checked before anything runs: (the location of the job to run, its
    {step: queue}). The job to run must be one the stack's workers can run, with a worker for each of its
    queues; any other job that could not is named, so a run launched from the UI does not simply hang."""
    default = (layout.celery_config.get("config_source") or {}).get("task_default_queue", "dagster")
    served = {w.queue for w in workers}
    found, errors = None, []
    for loc in locs:
        found_jobs, error = jobs.inspect_location(loc, default, env)
        if error:
            errors.append(error)
            continue
        for name, job in found_jobs.items():
            if name == opts.job and found is None:
                if job["problem"]:
                    raise Failed(f"error: job {opts.job!r} cannot run on this stack: {job['problem']}.", 2)
                found = (loc.name, job["queues"])
            elif job["problem"]:
                say(f"  note: job {name!r} ({loc.name}) would not run on the stack's workers: {job['problem']}")
            elif unserved(job["queues"], served):
                missing = ", ".join(sorted(set(unserved(job["queues"], served).values())))
                say(f"  note: job {name!r} ({loc.name}) sends steps to queue(s) {missing} with no worker in "
                    f"{opts.stack_file}; such a run would be failed by the watchdog")  # fmt: skip
    for error in errors if found is not None or not opts.job else ():
        say(f"  note: code location {error}")
    if found is None and opts.job:
        where = "; ".join(errors) if errors else ", ".join(loc.name for loc in locs)
        raise Failed(f"error: cannot load job {opts.job!r} from the code locations: {where}", 2)
    return found or (None, {})


def warn_unset_secrets(cfg, environ=os.environ) -> list[str]:
    """A secret is an ARN only ECS can read: locally its variable comes from this shell (infra.local.code), so
    each one not set here is named, with where it would go."""
    granted = [(name, arn, "every process") for name, arn in cfg.access.secrets.items()]
    granted += [(name, arn, f"queue {q.name}'s workers") for q in cfg.queues for name, arn in q.access.secrets.items()]
    return [f"warning: secret {name} (for {where}) is not set in this shell: its value, {arn}, is readable only "
            f"on AWS; export {name}=... before starting to give it a local value" for name, arn, where in granted
            if name not in environ]  # fmt: skip


def default_job(opts: Options, locs) -> str | None:
    """The job launched when none is named: the example's with the example code, else none (serve only)."""
    if opts.canary:
        return canary.CANARY_JOB
    if opts.job or opts.select:
        return opts.job
    return "example_job" if all(loc.example for loc in locs) else None


def check_queues(opts: Options, queues: dict[str, str], workers) -> None:
    """Every queue the job's steps use must have a worker, or the run would wait forever (#2336)."""
    served = {w.queue for w in workers}
    missing = sorted(set(unserved(queues, served).values()))
    if missing:
        steps = ", ".join(f"{s} -> {q}" for s, q in sorted(queues.items()) if q in missing)
        raise Failed(
            f"error: job {opts.job!r} sends steps to queue(s) {', '.join(missing)} but {opts.stack_file} has no "
            f"worker for {'it' if len(missing) == 1 else 'them'} ({steps}); such a step would wait forever. "
            f"Add {' and '.join(f'{{name: {q}}}' for q in missing)} to the stack file's queues, or tag the ops "
            f"with one of: {', '.join(sorted(served))}.",
            2,
        )


def _launch_and_report(opts: Options, request: launch.Request, location, port: int, instance, workers, check) -> bool:
    """Launch as the UI does, wait for the run (or each run of the backfill), print each one's report with the
    error of each failed step; True when every run succeeded with every step on its queue."""
    try:
        run_ids, backfill = launch.launch(port, request, location)
    except Exception as err:  # noqa: BLE001 - LaunchError: the webserver's answer; else it did not answer
        raise Failed(f"error: the webserver did not accept {request.describe()}: {err}") from None
    if backfill:
        say(f"submitted backfill {backfill}: {request.describe()}")
        run_ids = launch.wait_for_backfill(port, backfill, opts.timeout, lambda s: say(f"  backfill status: {s}"), check)
        if not run_ids:
            say("error: the backfill launched no run")
            return False
    else:
        say(f"submitted run {run_ids[0]}: {request.describe()}")
    ok = True
    for run_id in run_ids:
        run = jobs.wait_for_run(instance, run_id, opts.timeout, lambda s: say(f"  run status: {s}"), check)
        rows = jobs.step_rows(instance, run_id)
        if run is not None:
            for line in jobs.report(instance, run, rows):
                say(line)
        problems = jobs.check_placement(rows, {node_name(w): w.queue for w in workers})
        for p in problems:
            say(f"  placement: {p}")
        if run is None or not run.is_finished:
            status = run.status.value if run else "not found"
            say(f"error: the run did not finish within {opts.timeout:.0f} s (status {status})")
        ok = ok and run is not None and run.is_success and not problems
    return ok


LOCK_FILE = ".runner.lock"


def claim_state_dir(state: Path):
    """One runner per state directory: two would share the embedded broker and bucket and take each other's
    steps. Returns the open lock file (an exclusive flock, released by the OS when the runner exits)."""
    import fcntl

    fh = open(state / LOCK_FILE, "a+")  # noqa: SIM115 - kept open for the runner's life
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise Failed(
            f"error: another local runner (pid {holder}) uses the state directory {state}; stop it, or give this "
            f"one its own with --state-dir (or DCA_STATE_DIR)", 2
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _wait_ready(sup: Supervisor, url: str, name: str, check) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        check()
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise Failed(f"error: the {name} did not answer on {url} within {READY_TIMEOUT:.0f} s; see {sup.logs}/{name}.log")


def _tail(path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return ""
    return "\n".join(f"    | {line}" for line in lines)


def _start_watchdog(opts: Options, cfg, instance, served: set[str]) -> watchdog.QueueWatchdog | None:
    """A run whose step waits on a queue with no consumer is failed, naming the queue (infra/local/watchdog.py),
    after --no-consumer-seconds or the stack's operations.noConsumerMinutes (the AWS alarm's threshold)."""
    seconds = opts.no_consumer_seconds
    if seconds is None:
        seconds = cfg.operations.no_consumer_minutes * 60
    if not seconds:
        return None
    say(f"watchdog: a run whose step waits {seconds:.0f} s on a queue with no consumer is failed")
    return watchdog.QueueWatchdog(instance, opts.broker_url, seconds, say, served=served).start()


def _runs_in_flight(instance, since: float) -> bool:
    """Whether a run created since ``since`` (this runner's start) is still going; False when the storage
    cannot say, so that a stop never waits on it."""
    from datetime import datetime, timezone

    from dagster import DagsterRunStatus, RunsFilter

    going = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    try:
        after = datetime.fromtimestamp(since, timezone.utc)
        return bool(instance.get_run_ids(RunsFilter(statuses=going, created_after=after), limit=1))
    except Exception:  # noqa: BLE001 - e.g. the database is down
        return False


def up(opts: Options) -> int:
    started = time.time()
    try:
        cfg = load_stack_file(opts.stack_file)
    except ConfigError as err:
        say(f"error: {err}")
        return 2
    specs = topology.process_specs(cfg)
    workers = [s for s in specs if s.role == "worker"]
    serving = [s for s in specs if s.role in ("webserver", "daemon", "flower")]
    try:
        locs = code.locations(opts, cfg)
    except ConfigError as err:
        say(f"error: {err}")
        return 2
    opts = dataclasses.replace(opts, job=default_job(opts, locs))
    if opts.canary:  # its queues: the stack file's, as the run tag the canary reads
        opts = dataclasses.replace(opts, tags=(*opts.tags, (canary.QUEUES_TAG, ",".join(q.name for q in cfg.queues))))
    request = None
    if opts.job or opts.select:
        request = launch.Request(opts.job, opts.select, opts.partition, opts.backfill, opts.tags)
    elif opts.once:
        say("error: --once needs something to launch: --job, or assets with --select")
        return 2
    for line in warn_unset_secrets(cfg):
        say(line)

    signal.signal(signal.SIGTERM, _raise_interrupt)
    svc = sup = dog = lock = instance = None
    try:
        opts.state_dir.mkdir(parents=True, exist_ok=True)
        lock = claim_state_dir(opts.state_dir)  # held until this process exits
        port = services.check_port_free(opts.port)
        svc = services.start(opts.broker_url, opts.database_url, opts.s3_endpoint, opts.bucket, opts.state_dir)
        layout = runtime_files.write(opts.state_dir, locs, svc.storage, svc.celery_overrides, instance_settings.settings(cfg))
        env = _environment(svc, layout, cfg, locs, code.python_path(locs, code.install_requirements(locs, opts.state_dir)))
        env.update(_alert_environment(cfg, layout, port))
        # Not the placeholders: the shell's values of the queues' secrets are read from here for their workers.
        scoped = topology.scoped_placeholders(cfg)
        os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH" and k not in scoped})
        say(f"stack file {opts.stack_file}: queues " + ", ".join(
            f"{w.queue} (concurrency {w.concurrency})" for w in workers))  # fmt: skip
        for line in svc.described:
            say(f"  {line}")
        location, queues = preflight(opts, locs, layout, env, workers)
        check_queues(opts, queues, workers)
        if queues:
            say(f"job {opts.job}: steps on queue(s) {', '.join(sorted(set(queues.values())))}")
        say(f"workers: dagster-celery worker list -y {runtime_files.write_cli_config(layout)}")

        sup = Supervisor(layout.app_dir, env, layout.logs)
        # As the daemon task does on ECS before anything serves (taskdef.container_definitions).
        for name, command in topology.BEFORE_SERVING:
            if sup.run_to_end(name, list(command), timeout=300) != 0:
                raise Failed(f"error: `{' '.join(command)}` failed: {_tail(layout.logs / f'{name}.log', 5).strip()}", 1)
        ports = {"webserver": port}
        if any(s.role == "flower" for s in serving):
            ports["flower"] = services.check_port_free(0)
        for spec in [*workers, *serving]:
            sup.start(spec.name, local_argv(spec, ports.get(spec.role, 0)),
                      extra_env=worker_env(cfg, spec.queue) if spec.queue else None)  # fmt: skip
        say("processes:")
        for line in sup.status_lines():
            say(line)

        def check() -> None:
            exited = sup.newly_exited()
            if exited:
                details = "\n".join(f"  {p.name}  pid {p.pid}  {p.state()}\n{_tail(p.log)}" for p in exited)
                raise Failed(f"error: a process stopped unexpectedly:\n{details}")

        _wait_ready(sup, f"http://127.0.0.1:{port}{contract.WEBSERVER_HEALTH_PATH}", "webserver", check)
        say(f"webserver: http://127.0.0.1:{port}")
        if cfg.alerts.kinds():
            say(f"alerts: {layout.state / ALERTS_FILE} (one JSON line per alert)")
        if any(s.role == "flower" for s in serving):  # operations.flower, as on AWS (at /flower)
            flower = f"http://127.0.0.1:{ports['flower']}{contract.FLOWER_PATH}"
            _wait_ready(sup, f"{flower}/healthcheck", "flower", check)
            say(f"flower: {flower}")

        from dagster import DagsterInstance

        instance = DagsterInstance.from_config(str(layout.dagster_home))
        dog = _start_watchdog(opts, cfg, instance, {w.queue for w in workers})
        ok = True
        if request is None:
            say("nothing to launch (no --job, no --select): the UI serves every code location")
        else:
            ok = _launch_and_report(opts, request, location, port, instance, workers, check)
        if opts.once:
            return 0 if ok else 1
        say("running; Ctrl-C to stop")
        while True:
            check()
            time.sleep(1)
    except Failed as err:
        say(str(err))
        return err.code
    except (services.StartupError, code.CodeError) as err:
        say(f"error: {err}")
        return 2
    except KeyboardInterrupt:
        say("stopping")
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        if dog is not None:
            dog.stop()
        if sup is not None:
            # Runs in flight get the grace too, as the workers' steps do (their steps may finish in it).
            sup.stop(busy=lambda: instance is not None and _runs_in_flight(instance, started))
            say("stopped:")
            for line in sup.status_lines():
                say(line)
        if svc is not None:
            svc.close()
        if lock is not None:
            lock.close()  # releases the state directory
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
