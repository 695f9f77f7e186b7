"""Benchmark of the step path on real services: what a step costs on Celery, next to in-process and multiprocess.

    python benchmarks/step_path.py --quick          # a few minutes: one run of each shape but fan500 and sleep8x2, no multiprocess
    python benchmarks/step_path.py                  # full: 3 runs of each shape (medians), fan500, sleep8x2, multiprocess
    python benchmarks/step_path.py --compare before.json after.json   # before/after table from two outputs
    python benchmarks/step_path.py --quick --rtt-ms 1   # every service behind a 0.5 ms-each-way delay line

Services (as tests/test_local_e2e.py): RabbitMQ on 127.0.0.1:5672 (guest/guest) with a private vhost made by
``rabbitmqctl``, PostgreSQL on 127.0.0.1:5432 (user postgres, trust) with a private database, and a moto S3
server started here on 127.0.0.1. ``--broker-url`` / ``--database-url`` / ``--s3-endpoint`` use given ones.
``--rtt-ms X`` puts all three behind benchmarks/delay_proxy.py (X/2 each way, a process of its own), and every
process of the benchmark reaches them through it: the network of AWS, where a round trip within a region costs
0.5-1 ms, instead of the loopback's tens of microseconds.
The environment is the local runner's own (infra.local: services, runtime files, environment contract,
Supervisor), with the jobs of ``benchmarks.jobs``; the Celery workers are the topology's command
(``celery -A dagster_celery.app worker -Q dagster -n ... -c C``), W of them. Each run is executed by a fresh
``python`` process (a run worker, as Dagster's run launcher starts one), so no run profits from another's
imports; the workers stay up between runs, as on ECS.

Figures (see benchmarks/README.md): wall time (the run's start -> end), slot-seconds per step
(slots x wall / steps), dispatch latency (engine event "Submitting celery task" / "Launching subprocess"
-> STEP_START), step-to-step gap (the last upstream STEP_SUCCESS -> a step's STEP_START), worker time per
Celery task (the worker's own "succeeded in" figure), fixed-duration steps against the ideal, and a worker's
cold start (process start -> ready -> first step received -> its STEP_START).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT)]
HOOKS = REPO_ROOT / "benchmarks" / "roundtrip_hooks"

from benchmarks import roundtrips  # noqa: E402 - after the repository is on sys.path

CODE_MODULE = "benchmarks.jobs"
QUEUE = "dagster"
COLD_QUEUE = "bench-cold"
SUBMITTED = re.compile(r'^(Submitting celery task for step "|Launching subprocess for ")')
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")
SUCCEEDED = re.compile(r"Task execute_plan\[[^\]]+\] succeeded in ([0-9.]+)s")
EXECUTORS = ("inprocess", "multiprocess", "celery")


def say(text: str = "") -> None:
    print(text, flush=True)


# ------------------------------------------------------------------------------------------ run worker side
def run_one(job_name: str, run_config: str) -> None:
    """Executed in a fresh process: run one job against $DAGSTER_HOME and print its run id."""
    from dagster import DagsterInstance, execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repo = ReconstructableRepository.for_module(CODE_MODULE, "defs", working_directory=str(REPO_ROOT))
    with DagsterInstance.get() as instance:
        result = execute_job(repo.get_reconstructable_job(job_name), instance, run_config=json.loads(run_config))
        print(f"RUN {result.run_id} {'SUCCESS' if result.success else 'FAILURE'}", flush=True)


# ------------------------------------------------------------------------------------------ services
class Environment:
    """Private vhost + database + moto S3, the runner's runtime files, and W Celery workers on queue dagster."""

    def __init__(self, args, state: Path):
        self.args, self.state = args, state
        self.cleanups: list = []
        self.sup = None
        self.proxies = None
        self.round_trips: dict = {}

    def _enter(self, context):
        """Enter a context manager now; it is exited with the other clean-ups (last in, first out)."""
        value = context.__enter__()
        self.cleanups.append(lambda: context.__exit__(None, None, None))
        return value

    def __enter__(self):
        try:
            return self._start()
        except BaseException:  # `with` exits only what entered: a failed start cleans up (processes, vhost, ...)
            self.__exit__(None, None, None)
            raise

    def _start(self):
        from infra.stackfile.config import load_stack_file
        from infra.local import code, runtime_files, services
        from infra.local.processes import Supervisor
        from infra.local.runner import _environment, worker_env

        args = self.args
        broker, database, s3 = args.broker_url, args.database_url, args.s3_endpoint
        # The test suite's own helpers: a private vhost / database, deleted / dropped on exit.
        from tests.conftest import port_open, postgres_database, rabbit_vhost, wait_for
        from tests.faults_support import free_port

        if broker is None:
            vhost = self._enter(rabbit_vhost("dca-bench"))
            broker = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        if database is None:
            database = f"postgresql://postgres@127.0.0.1:5432/{self._enter(postgres_database('dca_bench'))}"
        if s3 is None:  # its own process: an S3 server thread here would compete with profiles for the GIL
            port = free_port()
            moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            self.cleanups.append(lambda: (moto.terminate(), moto.wait(10)))
            s3 = f"http://127.0.0.1:{port}"
            wait_for(f"moto_server on {s3}", lambda: moto.poll() is not None or port_open(port), 60)
            if moto.poll() is not None:
                raise RuntimeError(f"moto_server exited rc={moto.returncode} before listening on {s3}")
        if args.rtt_ms:
            direct = {"amqp": broker, "postgres": database, "s3": s3}
            broker, database, s3 = delayed = self._delayed(direct)
        self.svc = services.start(broker, database, s3, "bench", self.state)
        self.cleanups.append(self.svc.close)
        if args.rtt_ms:  # now that the S3 client has its (local) credentials
            for (name, url), through in zip(direct.items(), delayed):
                trips = self.round_trips[name] = round_trips(name, url, through)
                say(f"round trip to {name}, median: {trips['direct_ms']:.2f} ms direct, {trips['delayed_ms']:.2f} ms "
                    f"through the delay proxy (2·D = {args.rtt_ms} ms)")  # fmt: skip
        # As `python -m infra.local --code-module benchmarks.jobs` with the default stack file.
        self.cfg = load_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
        locs = code.locations(SimpleNamespace(code_module=CODE_MODULE, code_dir=None), self.cfg)
        self.layout = runtime_files.write(self.state, locs, self.svc.storage, self.svc.celery_overrides)
        self.env = _environment(self.svc, self.layout, self.cfg, locs, code.python_path(locs, []))
        # Every run worker and Celery worker records its round trips (benchmarks/roundtrips.py) here.
        self.roundtrips = self.state / "roundtrips"
        self.roundtrips.mkdir()
        self.env[roundtrips.ENV] = str(self.roundtrips)
        self.env["PYTHONPATH"] = os.pathsep.join([str(HOOKS), self.env["PYTHONPATH"]])
        self.worker_env = worker_env(self.cfg, QUEUE)  # the cold queue is not in the stack file: it takes these
        os.environ.update({k: v for k, v in self.env.items() if k != "PYTHONPATH"})
        from dagster import DagsterInstance

        self.instance = DagsterInstance.from_config(str(self.layout.dagster_home))  # creates the schema
        self.sup = Supervisor(self.layout.app_dir, self.env, self.layout.logs)
        self.workers = [self.start_worker(QUEUE, args.concurrency, i) for i in range(args.workers)]
        for w in self.workers:
            self.wait_ready(w)
        return self

    def _delayed(self, direct: dict[str, str]) -> list[str]:
        """The services' URLs through one delay proxy process (D = rtt/2 each way)."""
        from benchmarks.delay_proxy import DelayProxies

        netlocs = {name: urlsplit(url) for name, url in direct.items()}
        targets = [(u.hostname, u.port or DEFAULT_PORTS[u.scheme]) for u in netlocs.values()]
        self.proxies = DelayProxies(self.args.rtt_ms / 2, targets)
        self.cleanups.append(self.proxies.stop)
        delayed = []
        for u, target in zip(netlocs.values(), targets):
            userinfo = u.netloc.rpartition("@")[0]
            netloc = f"{userinfo + '@' if userinfo else ''}127.0.0.1:{self.proxies.ports[target]}"
            delayed.append(urlunsplit(u._replace(netloc=netloc)))
        return delayed

    def worker_argv(self, queue: str, concurrency: int, index: int) -> list[str]:
        from infra.specs import topology

        argv = list(topology.worker_command(queue, concurrency))
        argv[argv.index("-n") + 1] = f"{queue}{index or ''}@%h"
        return argv

    def start_worker(self, queue: str, concurrency: int, index: int = 0):
        return self.sup.start(f"worker-{queue}{index or ''}", self.worker_argv(queue, concurrency, index),
                              extra_env=self.worker_env)  # fmt: skip

    def wait_ready(self, proc, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-2000:]}")
            if " ready." in proc.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{proc.name} not ready after {timeout} s")

    def launch(self, job: str, run_config: dict) -> subprocess.Popen:
        argv = [sys.executable, str(Path(__file__).resolve()), "_run", job, json.dumps(run_config)]
        return subprocess.Popen(argv, cwd=self.layout.app_dir, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def run(self, job: str, run_config: dict, timeout: float = 900) -> str:
        """Run the job in a fresh process; its round trips and the workers' meanwhile are ``self.last_records``."""
        t0 = time.time()
        proc = self.launch(job, run_config)
        out, err = proc.communicate(timeout=timeout)
        m = re.search(r"^RUN (\S+) (\w+)$", out, re.M)
        if not m or m[2] != "SUCCESS":
            raise RuntimeError(f"run of {job} failed:\n{out[-3000:]}\n{err[-3000:]}")
        self.last_pid, self.last_records = proc.pid, roundtrips.read(self.roundtrips, t0, time.time())
        return m[1]

    def __exit__(self, *exc):
        if self.sup is not None:
            self.sup.stop(grace=10)
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as e:  # noqa: BLE001 - best effort
                say(f"cleanup: {type(e).__name__}: {e}")


DEFAULT_PORTS = {"amqp": 5672, "postgresql": 5432, "http": 80, "https": 443}


def round_trips(service: str, direct: str, delayed: str) -> dict[str, float]:
    """{direct_ms, delayed_ms}: median of one request and its answer on an open connection, direct and through
    the delay proxy, in turns (so that the machine's load falls on both alike): PostgreSQL ``SELECT 1`` (200),
    AMQP ``basic.qos`` -> ``qos-ok`` (200), S3 ``ListBuckets`` (50; most of it is moto's own time)."""
    with contextlib.ExitStack() as stack:
        calls = []
        for url in (direct, delayed):
            if service == "postgres":
                import psycopg2

                conn = psycopg2.connect(url)
                stack.callback(conn.close)
                conn.autocommit = True  # one statement, one round trip (no BEGIN before it)
                cur = conn.cursor()
                calls.append(lambda cur=cur: (cur.execute("SELECT 1"), cur.fetchall()))
            elif service == "amqp":
                from kombu import Connection

                channel = stack.enter_context(Connection(url)).default_channel
                calls.append(lambda channel=channel: channel.basic_qos(0, 1, False))
            else:
                from infra.local.services import s3_client

                calls.append(s3_client(url).list_buckets)
        times: list[list[float]] = [[], []]
        for _ in range(50 if service == "s3" else 200):
            for call, out in zip(calls, times):
                t = time.perf_counter()
                call()
                out.append(time.perf_counter() - t)
    return {"direct_ms": statistics.median(times[0]) * 1000, "delayed_ms": statistics.median(times[1]) * 1000}


# ------------------------------------------------------------------------------------------ measures
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def run_measures(instance, run_id: str) -> dict:
    from dagster import DagsterEventType

    record = instance.get_run_record_by_id(run_id)
    submitted, start, end = {}, {}, {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or not ev.step_key:
            continue
        if ev.event_type == DagsterEventType.ENGINE_EVENT and SUBMITTED.match(ev.message or ""):
            submitted.setdefault(ev.step_key, entry.timestamp)
        elif ev.event_type == DagsterEventType.STEP_START:
            start[ev.step_key] = entry.timestamp
        elif ev.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            end[ev.step_key] = entry.timestamp
    dispatch = [start[k] - submitted[k] for k in start if k in submitted]
    return {
        "run_id": run_id,
        "wall": record.end_time - record.start_time,
        "dispatch": dispatch,
        "start": start,
        "end": end,
        "gaps": step_gaps(start, end, upstream_steps(instance, record.dagster_run)),
    }


def upstream_steps(instance, dagster_run) -> dict[str, set[str]]:
    """{step key: the step keys it takes inputs from (Nothing inputs included)}, from the run's plan snapshot."""
    snap = instance.get_execution_plan_snapshot(dagster_run.execution_plan_snapshot_id)
    return {
        step.key: {h.step_key for i in step.inputs for h in i.upstream_output_handles}
        for step in snap.steps
    }


def step_gaps(start: dict, end: dict, upstream: dict[str, set[str]]) -> list[float]:
    """Step-to-step gap of each step that waits for others: the last of its upstream steps' STEP_SUCCESS -> its
    STEP_START (chain: every link but the first; fan-out: the join; diamond: left, right, bottom)."""
    gaps = []
    for key, ups in upstream.items():
        if ups and key in start and all(u in end for u in ups):
            gaps.append(start[key] - max(end[u] for u in ups))
    return gaps


def worker_task_times(logs: dict[Path, int]) -> list[float]:
    """Celery's "succeeded in Xs" per execute_plan task, from the worker logs past the given offsets."""
    out = []
    for path, offset in logs.items():
        with open(path, errors="replace") as fh:
            fh.seek(offset)
            out += [float(x) for x in SUCCEEDED.findall(fh.read())]
    return out


def log_offsets(env: Environment) -> dict[Path, int]:
    return {w.log: w.log.stat().st_size for w in env.workers}


def log_time(line: str) -> float | None:
    m = LOG_TIME.match(line)
    return datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


def cold_start(env: Environment) -> dict:
    """Queue a step for queue bench-cold, then start a worker for it: process start -> ready -> step received
    -> STEP_START (the worker's log lines and the run's event)."""
    from dagster import DagsterEventType, RunsFilter

    before = {r.run_id for r in env.instance.get_runs(RunsFilter(job_name="bench_cold_celery"))}
    run_proc = env.launch("bench_cold_celery", {})
    deadline = time.monotonic() + 300
    run_id = None
    while time.monotonic() < deadline:  # wait until the step is in the broker
        runs = [r for r in env.instance.get_runs(RunsFilter(job_name="bench_cold_celery")) if r.run_id not in before]
        if runs:
            run_id = runs[0].run_id
            logs = env.instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if any(SUBMITTED.match(e.dagster_event.message or "") for e in logs):
                break
        time.sleep(0.1)
    else:
        run_proc.kill()
        raise TimeoutError("the cold-start step was never submitted")
    t0 = time.time()
    worker = env.sup.start(f"worker-cold-{uuid.uuid4().hex[:4]}", env.worker_argv(COLD_QUEUE, 1, 0), extra_env=env.worker_env)
    try:
        out, err = run_proc.communicate(timeout=300)
        if "SUCCESS" not in out:
            raise RuntimeError(f"cold-start run failed: {out[-2000:]} {err[-2000:]}")
        ready = received = None
        for line in worker.log.read_text(errors="replace").splitlines():
            if ready is None and " ready." in line:
                ready = log_time(line)
            if received is None and "Task execute_plan[" in line and "received" in line:
                received = log_time(line)
        m = run_measures(env.instance, run_id)
        step_start = m["start"].get("cold_0")
        return {
            "ready": ready - t0 if ready else None,
            "received": received - t0 if received else None,
            "step_start": step_start - t0 if step_start else None,
        }
    finally:
        env.sup._stop([worker], grace=10)  # noqa: SLF001 - the runner's own stop, for this one worker
        env.sup.procs.remove(worker)


# ------------------------------------------------------------------------------------------ plan
QUICK_SHAPES = ("fan20", "fan100", "fan20out0", "fan20out1k", "fan20out100k", "fan20out1m", "diamond", "chains4x5", "chain10")
FULL_SHAPES = (*QUICK_SHAPES[:2], "fan500", *QUICK_SHAPES[2:], "sleep8x2")
MULTIPROCESS_SHAPES = ("fan20", "chain10", "sleep8x2")  # full mode only: a Python process per step (2.5-9 s)


def figure_of(shape: str) -> str:
    return next(f for f in ("fan", "chains", "chain", "diamond", "sleep") if shape.startswith(f))


def plan(args) -> list[tuple[str, str, str]]:
    """[(figure, shape, executor)] in the order of one repetition (executors interleaved)."""
    shapes = args.shapes or (QUICK_SHAPES if args.quick else FULL_SHAPES)
    out = []
    for shape in shapes:
        for e in EXECUTORS:
            if e == "multiprocess" and (args.quick or shape not in MULTIPROCESS_SHAPES):
                continue
            out.append((figure_of(shape), shape, e))
    return out


def main_measure(args) -> dict:
    from benchmarks import jobs as bench

    slots = args.workers * args.concurrency
    reps = args.reps or (1 if args.quick else 3)
    state = Path(tempfile.mkdtemp(prefix="dca-bench-"))
    results: dict = {
        "meta": {
            "label": args.label, "mode": "quick" if args.quick else "full", "reps": reps,
            "workers": args.workers, "concurrency": args.concurrency, "slots": slots,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_start": os.getloadavg(), "started": datetime.now().isoformat(timespec="seconds"),
            "rtt_ms": args.rtt_ms,
        },
        "runs": [],
        "cold": [],
    }  # fmt: skip
    t_start = time.monotonic()
    env = Environment(args, state)
    try:
        with env:
            results["meta"]["round_trip_ms"] = env.round_trips
            say(f"environment ready in {time.monotonic() - t_start:.0f} s: {args.workers} worker(s) x -c {args.concurrency}")
            # Not measured: one Celery run first, so that every pool process has imported the code location
            # and made its instance, as in a worker that has been up for a while (cold start: measured below).
            env.run(f"bench_fan{bench.FAN_SIZES[0]}_celery", {})
            say(f"  warm-up run done: {time.monotonic() - t_start:.0f} s")
            for rep in range(reps):
                for figure, shape, executor in plan(args):
                    job = f"bench_{shape}_{executor}"
                    cfg = {"execution": {"config": {"max_concurrent": slots}}} if executor == "multiprocess" else {}
                    offsets = log_offsets(env)
                    t = time.monotonic()
                    run_id = env.run(job, cfg)
                    m = run_measures(env.instance, run_id)
                    n_steps = len(m["start"])
                    row = {
                        "rep": rep, "figure": figure, "shape": shape, "executor": executor, "run_id": run_id,
                        "steps": n_steps, "slots": 1 if executor == "inprocess" else slots,
                        "wall": m["wall"], "process_seconds": time.monotonic() - t,
                        "dispatch": m["dispatch"], "gaps": m["gaps"],
                    }  # fmt: skip
                    if figure == "sleep":
                        row["ideal"] = math.ceil(bench.SLEEP_STEPS / row["slots"]) * bench.SLEEP_SECONDS
                    if executor == "celery":
                        row["worker_task"] = worker_task_times(offsets)
                    row["roundtrips"] = roundtrips.per_step(env.last_records, env.last_pid, n_steps)
                    if figure == "chain" and executor in roundtrips.LINK_EXECUTORS:
                        order = sorted(m["end"], key=m["end"].get)
                        row["chain_links"] = roundtrips.link_summary(
                            roundtrips.chain_links(env.last_records, order, env.last_pid, executor))
                    results["runs"].append(row)
                    say(f"  rep {rep + 1}/{reps} {job:<28} wall {m['wall']:6.2f} s  ({n_steps} steps)")
                if not args.no_cold:
                    results["cold"].append(cold_start(env))
                    say(f"  rep {rep + 1}/{reps} cold start: {results['cold'][-1]}")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    if env.proxies is not None:
        results["meta"]["proxy_late"] = env.proxies.stats.get("late")  # how late chunks left the delay line
    results["meta"]["loadavg_end"] = os.getloadavg()
    results["meta"]["seconds"] = time.monotonic() - t_start
    results["summary"] = summarize(results)
    return results


# ------------------------------------------------------------------------------------------ summary
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(results: dict) -> dict:
    """{shape: {executor: {figure: median over repetitions}}}, plus celery ratios."""
    by: dict = {}
    for r in results["runs"]:
        by.setdefault(r["shape"], {}).setdefault(r["executor"], []).append(r)
    out: dict = {}
    for shape, per in by.items():
        out[shape] = {}
        for executor, rows in per.items():
            s = {"runs": len(rows), "wall": med([r["wall"] for r in rows]), "slots": rows[0]["slots"]}
            s["slot_s_per_step"] = med([r["slots"] * r["wall"] / r["steps"] for r in rows])
            if rows[0]["dispatch"]:
                for q, name in ((0.5, "p50"), (0.95, "p95"), (1.0, "max")):
                    s[f"dispatch_{name}"] = med([pct(r["dispatch"], q) for r in rows])
            if rows[0].get("gaps"):
                s["gap_p50"] = med([pct(r["gaps"], 0.5) for r in rows])
            if "ideal" in rows[0]:
                s["ideal"] = rows[0]["ideal"]
                s["wall_over_ideal"] = s["wall"] / s["ideal"]
            if rows[0].get("worker_task"):
                s["worker_task_p50"] = med([pct(r["worker_task"], 0.5) for r in rows])
            if rows[0].get("roundtrips"):  # deterministic: the same in every repetition but for polls
                s["roundtrips"] = {k: med([r["roundtrips"][k] for r in rows]) for k in rows[0]["roundtrips"]}
            if rows[0].get("chain_links"):
                s["critical_path"] = {k: med([r["chain_links"][k] for r in rows]) for k in ("median", "min", "max", "pg", "amqp", "s3")}
                s["critical_path_calls"] = rows[0]["chain_links"]["calls"]
            out[shape][executor] = s
        cel = out[shape].get("celery")
        if cel:
            for base in ("inprocess", "multiprocess"):
                ref = out[shape].get(base)
                if ref:
                    cel[f"vs_{base}"] = {
                        k: (cel[k] / ref[k] if ref.get(k) else None)
                        for k in ("wall", "slot_s_per_step", "dispatch_p50", "gap_p50", "wall_over_ideal")
                        if k in cel and k in ref
                    }
    cold = results.get("cold") or []
    if cold:
        out["cold_start"] = {k: med([c[k] for c in cold]) for k in ("ready", "received", "step_start")}
    return out


def fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v * 1000:.0f} ms"
    if unit == "x":
        return f"{v:.2f}x"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def markdown(results: dict) -> str:
    meta, summary = results["meta"], results["summary"]
    lines = [
        f"### {meta.get('label') or 'step path'}: {meta['mode']} mode, medians of {meta['reps']} run(s); celery "
        f"{meta['workers']} worker(s) x -c {meta['concurrency']} = {meta['slots']} slots; multiprocess "
        f"max_concurrent {meta['slots']}; in-process 1 slot; {meta['cpus']} CPUs, load average "
        f"{meta['loadavg_start'][0]:.1f} at start; {meta['seconds']:.0f} s in all; {network(meta)}",
        "",
        "| shape | figure | in-process | multiprocess | celery | celery / in-process | celery / multiprocess |",
        "|---|---|---|---|---|---|---|",
    ]
    figures = [
        ("wall", "wall time", "s"),
        ("slot_s_per_step", "slot-seconds per step", "s"),
        ("dispatch_p50", "dispatch p50", "ms"),
        ("dispatch_p95", "dispatch p95", "ms"),
        ("dispatch_max", "dispatch max", "ms"),
        ("gap_p50", "step-to-step gap p50", "ms"),
        ("wall_over_ideal", "wall / ideal", "x"),
        ("worker_task_p50", "worker time per task p50", "ms"),
    ]
    for shape, per in summary.items():
        if shape == "cold_start":
            continue
        for key, name, unit in figures:
            if not any(key in s for s in per.values()):
                continue
            cells = [fmt(per.get(e, {}).get(key), unit) for e in EXECUTORS]
            cel = per.get("celery", {})
            ratios = [fmt(cel.get(f"vs_{b}", {}).get(key), "x") for b in ("inprocess", "multiprocess")]
            lines.append(f"| {shape} | {name} | " + " | ".join(cells + ratios) + " |")
    lines += ["", *headline(summary), "", *roundtrip_table(summary), "", "Goals:", *goals(summary, meta)]
    if "cold_start" in summary:
        c = summary["cold_start"]
        lines += ["", f"Celery worker cold start (process start ->): ready {fmt(c['ready'])}, first step received "
                      f"{fmt(c['received'])}, its STEP_START {fmt(c['step_start'])}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def network(meta: dict) -> str:
    if not meta.get("rtt_ms"):
        return "no added network delay"
    trips = ", ".join(f"{k} {v['direct_ms']:.2f} -> {v['delayed_ms']:.2f} ms" for k, v in meta["round_trip_ms"].items())
    return f"**emulated round trip {meta['rtt_ms']} ms** (delay proxy; one round trip, direct -> through it: {trips})"


GOAL_RATIO, GOAL_GAP, GOAL_DISPATCH = 1.5, 0.030, 0.010  # the goals (fan-outs; chain10 gap and dispatch)
GOAL_GAP_RATIO = 3.0  # with an emulated network: chain10's gap against in-process's
GOAL_EXTRA_ROUND_TRIPS = 4  # chain10: Celery's critical path per step against in-process's


def headline(summary: dict) -> list[str]:
    """One row per shape: the figures the goals are about, Celery next to in-process of the same invocation."""
    lines = [
        "| shape | celery slot-s/step | in-process s/step | ratio | gap p50 celery | gap p50 in-process | "
        "dispatch p50 celery | wall celery | wall in-process |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, per in summary.items():
        if shape == "cold_start" or "celery" not in per:
            continue
        c, i = per["celery"], per.get("inprocess", {})
        ratio = c.get("vs_inprocess", {}).get("slot_s_per_step")
        lines.append(
            f"| {shape} | {fmt(c.get('slot_s_per_step'))} | {fmt(i.get('slot_s_per_step'))} | {fmt(ratio, 'x')} | "
            f"{fmt(c.get('gap_p50'), 'ms')} | {fmt(i.get('gap_p50'), 'ms')} | {fmt(c.get('dispatch_p50'), 'ms')} | "
            f"{fmt(c.get('wall'))} | {fmt(i.get('wall'))} |"
        )
    return lines


def roundtrip_table(summary: dict) -> list[str]:
    """Round trips per step, Celery next to in-process: every one of the run's critical threads over its steps
    (all shapes), and, on a chain, the critical path of one link (benchmarks/roundtrips.py)."""
    lines = [
        "| shape | round trips per step: celery (pg/amqp/s3) | in-process | chain link critical path: celery "
        "median [min-max] (pg/amqp/s3) | in-process | difference |",
        "|---|---|---|---|---|---|",
    ]

    def per(s):
        r = s.get("roundtrips")
        return f"{r['total']:.1f} ({r['pg']:.1f}/{r['amqp']:.1f}/{r['s3']:.1f})" if r else "-"

    def path(s):
        c = s.get("critical_path")
        return f"{c['median']:g} [{c['min']:g}-{c['max']:g}] ({c['pg']:g}/{c['amqp']:g}/{c['s3']:g})" if c else "-"

    for shape, p in summary.items():
        if shape == "cold_start" or "celery" not in p:
            continue
        c, i = p["celery"], p.get("inprocess", {})
        diff = "-"
        if c.get("critical_path") and i.get("critical_path"):
            diff = f"+{c['critical_path']['median'] - i['critical_path']['median']:g}"
        lines.append(f"| {shape} | {per(c)} | {per(i)} | {path(c)} | {path(i)} | {diff} |")
    return lines


def goals(summary: dict, meta: dict | None = None) -> list[str]:
    """The goals, met or not, from one invocation's medians: with an emulated network (``rtt_ms`` > 0) the
    fan-outs' ratio and the chain's gap against in-process's; without, the fan-outs' ratio and the chain's gap
    and dispatch in milliseconds; and the chain's critical path in round trips."""
    rtt = (meta or {}).get("rtt_ms") or 0
    out = []
    fans = {k: v for k, v in summary.items() if k.startswith("fan") and "celery" in v and "inprocess" in v}
    ratios = {k: v["celery"]["vs_inprocess"].get("slot_s_per_step") for k, v in fans.items()}
    if ratios:
        worst = max(ratios, key=lambda k: ratios[k] or 0)
        ok = all(r is not None and r <= GOAL_RATIO for r in ratios.values())
        out.append(f"- fan-outs, celery slot-seconds per step <= {GOAL_RATIO}x in-process: "
                   f"{'met' if ok else 'NOT met'} (worst {worst}: {fmt(ratios[worst], 'x')})")  # fmt: skip
    chain = summary.get("chain10", {}).get("celery", {})
    inproc = summary.get("chain10", {}).get("inprocess", {})
    if rtt and chain.get("gap_p50") is not None and inproc.get("gap_p50"):
        ratio = chain["gap_p50"] / inproc["gap_p50"]
        out.append(f"- chain10 step-to-step gap p50 <= {GOAL_GAP_RATIO:g}x in-process's: "
                   f"{'met' if ratio <= GOAL_GAP_RATIO else 'NOT met'} ({fmt(chain['gap_p50'], 'ms')} against "
                   f"{fmt(inproc['gap_p50'], 'ms')}: {fmt(ratio, 'x')})")  # fmt: skip
    if not rtt and chain.get("gap_p50") is not None:
        out.append(f"- chain10 step-to-step gap p50 <= {GOAL_GAP * 1000:.0f} ms: "
                   f"{'met' if chain['gap_p50'] <= GOAL_GAP else 'NOT met'} ({fmt(chain['gap_p50'], 'ms')})")  # fmt: skip
    if not rtt and chain.get("dispatch_p50") is not None:
        out.append(f"- chain10 dispatch p50 <= {GOAL_DISPATCH * 1000:.0f} ms: "
                   f"{'met' if chain['dispatch_p50'] <= GOAL_DISPATCH else 'NOT met'} ({fmt(chain['dispatch_p50'], 'ms')})")  # fmt: skip
    if chain.get("critical_path") and inproc.get("critical_path"):
        extra = chain["critical_path"]["median"] - inproc["critical_path"]["median"]
        out.append(f"- chain10 critical path per step <= in-process's + {GOAL_EXTRA_ROUND_TRIPS} round trips: "
                   f"{'met' if extra <= GOAL_EXTRA_ROUND_TRIPS else 'NOT met'} (+{extra:g}: "
                   f"{chain['critical_path']['median']:g} against {inproc['critical_path']['median']:g})")  # fmt: skip
    return out


def compare(before: dict, after: dict) -> str:
    """Per shape in both outputs: Celery's figures before and after, each next to its own invocation's in-process."""
    lines = [
        "| shape | slot-s/step ratio before | after | gap p50 before | after | in-process after | "
        "dispatch p50 before | after | celery wall before | after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bs, as_ = before["summary"], after["summary"]
    for shape in [k for k in as_ if k in bs and k != "cold_start"]:
        b, a = bs[shape].get("celery", {}), as_[shape].get("celery", {})
        ai = as_[shape].get("inprocess", {})
        lines.append(
            f"| {shape} | {fmt(b.get('vs_inprocess', {}).get('slot_s_per_step'), 'x')} | "
            f"{fmt(a.get('vs_inprocess', {}).get('slot_s_per_step'), 'x')} | {fmt(b.get('gap_p50'), 'ms')} | "
            f"{fmt(a.get('gap_p50'), 'ms')} | {fmt(ai.get('gap_p50'), 'ms')} | {fmt(b.get('dispatch_p50'), 'ms')} | "
            f"{fmt(a.get('dispatch_p50'), 'ms')} | {fmt(b.get('wall'))} | {fmt(a.get('wall'))} |"
        )
    lines += [
        "",
        "| shape | round trips per step, celery: before | after | in-process: before | after | "
        "chain link critical path, celery: before | after | in-process: before | after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape in [k for k in as_ if k in bs and k != "cold_start"]:
        cells = []
        for figure, key in (("roundtrips", "total"), ("critical_path", "median")):
            for executor in ("celery", "inprocess"):
                for side in (bs, as_):
                    value = side[shape].get(executor, {}).get(figure, {}).get(key)
                    cells.append("-" if value is None else f"{value:.1f}".removesuffix(".0"))
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    cb, ca = bs.get("cold_start", {}), as_.get("cold_start", {})
    if cb.get("step_start") and ca.get("step_start"):
        lines += ["", f"Worker cold start to its first STEP_START: {fmt(cb['step_start'])} before, {fmt(ca['step_start'])} after."]
    lines += ["", "Goals, after:", *goals(as_, after.get("meta"))]
    return "\n".join(lines) + "\n"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_run"]:
        run_one(argv[1], argv[2])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one run of each job but fan500 and sleep8x2, no multiprocess (a few minutes)")
    p.add_argument("--shapes", nargs="+", default=None, choices=FULL_SHAPES, metavar="SHAPE",
                   help=f"only these shapes, of: {' '.join(FULL_SHAPES)}")  # fmt: skip
    p.add_argument("--no-cold", action="store_true", help="skip the worker cold-start probe")
    p.add_argument("--reps", type=int, default=0, help="runs of each job (default 3; 1 with --quick)")
    p.add_argument("--workers", type=int, default=1, help="Celery worker processes on queue dagster (W)")
    p.add_argument("--concurrency", type=int, default=2, help="-c of each worker (C); slots = W x C")
    p.add_argument("--label", default="", help="a name for this run in the output")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "step_path"), help="writes <out>.json and <out>.md")
    p.add_argument("--broker-url", default=None, help="amqp://... (default: a private vhost on 127.0.0.1:5672)")
    p.add_argument("--database-url", default=None, help="postgresql://... (default: a private database on 127.0.0.1)")
    p.add_argument("--s3-endpoint", default=None, help="S3 API endpoint (default: a moto server on 127.0.0.1)")
    p.add_argument("--rtt-ms", type=float, default=0, help="an emulated network: a delay proxy adding this round-trip "
                   "time (half each way) in front of the broker, the database and the S3 API (default 0: none)")  # fmt: skip
    p.add_argument("--compare", nargs=2, metavar=("BEFORE_JSON", "AFTER_JSON"), help="print a before/after table")
    args = p.parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(f).read_text()) for f in args.compare)
        say(compare(before, after))
        return 0
    if args.broker_url is None and shutil.which("rabbitmqctl") is None:
        p.error("rabbitmqctl not found: give --broker-url")
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up (vhost, database, workers) as Ctrl-C does
    results = main_measure(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    table = markdown(results)
    out.with_suffix(".md").write_text(table)
    say("")
    say(table)
    say(f"written: {out.with_suffix('.json')}, {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
