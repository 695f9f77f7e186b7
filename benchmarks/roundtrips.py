"""Count the network round trips of a run's steps: every PostgreSQL statement, begin, commit and rollback,
every AMQP method, every S3 request, recorded where it is made (process, thread, time), for step_path.py.

Time on this machine is mostly CPU; on AWS every round trip to RDS, Amazon MQ or S3 costs 0.5-1 ms or more,
so the number of *sequential* round trips on a step's path is what decides its latency there. Counting them
where the client makes them is deterministic: the same code makes the same calls, whatever the load.

``install()`` (run in every process of the benchmark by ``roundtrip_hooks/sitecustomize.py`` when
``DCA_BENCH_ROUNDTRIPS`` names a directory) wraps:
- psycopg2: each connection is made with a counting connection class (psycopg2's ``connection_factory``):
  a cursor's ``execute`` is one round trip, plus one for the ``BEGIN`` psycopg2 sends first when a
  non-autocommit connection has no transaction open; ``commit``/``rollback`` are one when a transaction is open
  (psycopg2 sends nothing otherwise); ``executemany`` is one per parameter set; a connection's opening is
  recorded as ``connect``. The parameters of an insert into Dagster's event log give the event types and step
  keys it writes.
- py-amqp: every method a channel sends (``AbstractChannel.send_method``). With publisher confirms on
  (celery_config.yaml ``confirm_publish``) a publish waits for the broker's ack: a round trip.
- botocore: every HTTP request (``Endpoint._send``).
- Celery: ``task_prerun`` / ``task_postrun`` in a pool process, which mark a task's window (its step key and id).
Each record is one JSON line in ``<dir>/<pid>.jsonl``: start and end time, pid, thread, kind, a short detail.

``critical_path(records, executor)`` reads a chain's records back and counts, per link, the round trips on the
chain's critical path: from the step's upstream STEP_SUCCESS write to its own STEP_SUCCESS write (see there).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

ENV = "DCA_BENCH_ROUNDTRIPS"
_local = threading.local()
_state = {"pid": None, "fd": None}


# ------------------------------------------------------------------------------------------ recording
def _fd() -> int:
    if _state["pid"] != os.getpid():  # a forked pool process writes its own file
        _state["pid"] = os.getpid()
        _state["fd"] = os.open(Path(os.environ[ENV]) / f"{os.getpid()}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return _state["fd"]


def _waited_for(t: threading.Thread) -> bool:
    """The main thread, or a worker of a ``concurrent.futures`` pool: boto3's ``upload_fileobj`` (the S3 I/O
    manager's put) sends its request from s3transfer's pool while the caller waits for it."""
    return t is threading.main_thread() or t.name.startswith("ThreadPoolExecutor-")


def record(kind: str, start: float, detail: str = "", **extra) -> None:
    t = threading.current_thread()
    line = {"t0": start, "t1": time.time(), "pid": os.getpid(), "main": _waited_for(t),
            "thread": t.name, "kind": kind, "detail": detail[:120], **extra}  # fmt: skip
    os.write(_fd(), (json.dumps(line, default=str) + "\n").encode())


def _event_fields(params) -> dict:
    """The Dagster event types and step keys an event-log insert writes: read from the serialized
    ``EventLogEntry`` values among its parameters (whatever the statement names them: a CTE renames them)."""
    values = params.values() if isinstance(params, dict) else params if isinstance(params, (list, tuple)) else ()
    types, steps = [], []
    for v in values:
        if isinstance(v, str) and v.startswith('{"__class__": "EventLogEntry"'):
            event = json.loads(v).get("dagster_event") or {}
            if event.get("event_type_value"):
                types.append(event["event_type_value"])
                steps.append(event.get("step_key"))
    return {"events": types, "steps": steps} if types else {}


def _summary(query) -> str:
    text = query.decode(errors="replace") if isinstance(query, bytes) else str(query)
    return re.sub(r"\s+", " ", text).strip()


def _install_psycopg2() -> None:
    import psycopg2
    import psycopg2.extensions as ext

    class CountingCursor(ext.cursor):
        def execute(self, query, vars=None):  # noqa: A002 - psycopg2's name
            if not self.connection.autocommit and self.connection.status == ext.STATUS_READY:
                record("pg begin", time.time())
            t0 = time.time()
            try:
                return super().execute(query, vars)
            finally:
                record("pg statement", t0, _summary(query), **_event_fields(vars))

        def executemany(self, query, vars_list):
            vars_list = list(vars_list)
            t0 = time.time()
            try:
                return super().executemany(query, vars_list)
            finally:
                for _ in vars_list:
                    record("pg statement", t0, _summary(query))

    class CountingConnection(ext.connection):
        def cursor(self, *args, **kwargs):
            kwargs.setdefault("cursor_factory", CountingCursor)
            return super().cursor(*args, **kwargs)

        def _end(self, kind, fn):
            if self.status != ext.STATUS_BEGIN:
                return fn()
            t0 = time.time()
            try:
                return fn()
            finally:
                record(kind, t0)

        def commit(self):
            return self._end("pg commit", super().commit)

        def rollback(self):
            return self._end("pg rollback", super().rollback)

    original = psycopg2.connect

    def connect(*args, **kwargs):
        kwargs.setdefault("connection_factory", CountingConnection)
        t0 = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            record("pg connect", t0)

    psycopg2.connect = connect


def _install_amqp() -> None:
    from amqp import spec
    from amqp.abstract_channel import AbstractChannel

    names = {v: f"{k}" for k, v in vars(spec.Basic).items() if isinstance(v, tuple)}
    original = AbstractChannel.send_method

    def send_method(self, sig, *args, **kwargs):
        t0 = time.time()
        try:
            return original(self, sig, *args, **kwargs)
        finally:
            record(f"amqp {names.get(sig, sig)}", t0, sync=bool(kwargs.get("wait")))

    AbstractChannel.send_method = send_method


def _install_botocore() -> None:
    from botocore.endpoint import Endpoint

    original = Endpoint._send

    def _send(self, request):
        t0 = time.time()
        try:
            return original(self, request)
        finally:
            record("s3 request", t0, f"{request.method} {request.url.split('?')[0][-60:]}")

    Endpoint._send = _send


def _install_celery() -> None:
    from celery import signals

    def step_of(kwargs) -> str | None:
        """The step key of an execute_plan message (dagster-celery sends its arguments as keywords)."""
        keys = ((kwargs or {}).get("execute_step_args_packed") or {}).get("step_keys_to_execute") or []
        return keys[0] if keys else None

    def prerun(task_id=None, kwargs=None, **_):
        record("task start", time.time(), task_id=task_id, step=step_of(kwargs))

    def postrun(task_id=None, kwargs=None, **_):
        record("task end", time.time(), task_id=task_id, step=step_of(kwargs))

    signals.task_prerun.connect(prerun, weak=False)
    signals.task_postrun.connect(postrun, weak=False)


def install() -> None:
    """Wrap the clients (module docstring); nothing unless $DCA_BENCH_ROUNDTRIPS names a directory."""
    if not os.environ.get(ENV):
        return
    for hook in (_install_psycopg2, _install_amqp, _install_botocore, _install_celery):
        try:
            hook()
        except ImportError:  # a process without that client
            pass


# ------------------------------------------------------------------------------------------ reading
ROUND_TRIP_KINDS = ("pg statement", "pg begin", "pg commit", "pg rollback", "amqp Publish", "s3 request")


def is_round_trip(r: dict) -> bool:
    """A call the caller waits for a reply to: every PostgreSQL statement, begin, commit and rollback; a publish
    (confirmed); a synchronous AMQP method; an S3 request. Acks and other one-way AMQP methods are not."""
    return r["kind"] in ROUND_TRIP_KINDS or (r["kind"].startswith("amqp") and r.get("sync"))


def service(r: dict) -> str:
    return r["kind"].split()[0]


def read(directory: Path, since: float, until: float, pids: set[int] | None = None) -> list[dict]:
    """The records made between ``since`` and ``until`` (by the given processes), in time order."""
    out = []
    for path in Path(directory).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:  # a line being written
                continue
            if since <= r["t0"] <= until and (pids is None or r["pid"] in pids):
                out.append(r)
    return sorted(out, key=lambda r: (r["t0"], r["t1"]))


def _writes(r: dict, event: str, step: str) -> bool:
    return event in r.get("events", ()) and step in r.get("steps", ())


def _task_windows(records: list[dict]) -> dict[str, list[dict]]:
    """{step key: the main-thread records of its Celery task's window (task start .. task end) in its process}."""
    out, open_ = {}, {}
    for r in records:
        if r["kind"] == "task start":
            open_[r["pid"]] = r["step"]
            out[r["step"]] = []
        elif r["kind"] == "task end":
            open_.pop(r["pid"], None)
        elif r["main"] and r["pid"] in open_:
            out[open_[r["pid"]]].append(r)
    return out


LINK_EXECUTORS = ("inprocess", "celery")


def chain_links(records: list[dict], steps: list[str], run_pid: int, executor: str) -> list[list[dict]]:
    """The round trips on a chain's critical path, per link ``steps[i-1] -> steps[i]``.

    In-process: the run worker's main thread, after its write of ``steps[i-1]``'s STEP_SUCCESS, up to and
    including its write of ``steps[i]``'s STEP_SUCCESS.
    Celery: (a) in ``steps[i-1]``'s task, after that write, to the task's end (what the worker writes after
    the step: the result); (b) in the run worker's main thread, from the end of (a) (the result is stored and
    its notice sent) to its publish of ``steps[i]``'s message: reading the result, the step's submit event,
    the publish; (c) in ``steps[i]``'s task, from its start to its STEP_SUCCESS write. Other threads (the
    run-end watch, deferred compute-log uploads) are off the path and not counted; so is an AMQP ack (one-way)."""
    if executor not in LINK_EXECUTORS:  # multiprocess: each step in a process of its own, no task windows
        raise ValueError(f"chain links are counted for the executors {', '.join(LINK_EXECUTORS)}, not {executor!r}")
    links = []
    if executor == "inprocess":
        main = [r for r in records if r["pid"] == run_pid and r["main"] and is_round_trip(r)]
        for prev, step in zip(steps, steps[1:]):
            a = next(i for i, r in enumerate(main) if _writes(r, "STEP_SUCCESS", prev))
            b = next(i for i, r in enumerate(main) if _writes(r, "STEP_SUCCESS", step))
            links.append(main[a + 1 : b + 1])
        return links
    windows = _task_windows(records)
    run_main = [r for r in records if r["pid"] == run_pid and r["main"] and is_round_trip(r)]
    publishes = [i for i, r in enumerate(run_main) if r["kind"] == "amqp Publish"]
    for n, (prev, step) in enumerate(zip(steps, steps[1:]), start=1):
        before, mine = windows[prev], [r for r in windows[step] if is_round_trip(r)]
        k = next(i for i, r in enumerate(before) if _writes(r, "STEP_SUCCESS", prev))
        tail = [r for r in before[k + 1 :] if is_round_trip(r)]
        stored = tail[-1]["t1"] if tail else before[k]["t1"]
        publish = publishes[n]  # the n-th publish (0-based) sends steps[n]
        dispatch = [r for r in run_main[: publish + 1] if r["t0"] >= stored]
        j = next(i for i, r in enumerate(mine) if _writes(r, "STEP_SUCCESS", step))
        links.append(tail + dispatch + mine[: j + 1])
    return links


def describe(link: list[dict]) -> dict:
    """{'total': n, 'pg': .., 'amqp': .., 's3': ..} of one link's round trips."""
    by = Counter(service(r) for r in link)
    return {"total": len(link), **{s: by.get(s, 0) for s in ("pg", "amqp", "s3")}}


def link_summary(links: list[list[dict]]) -> dict:
    """Median, min and max per link, and the median link's calls (kind, detail) for the report."""
    if not links:
        return {}
    totals = [len(link) for link in links]
    mid = sorted(links, key=len)[len(links) // 2]
    return {
        "median": statistics.median(totals), "min": min(totals), "max": max(totals), "links": totals,
        **{k: statistics.median(describe(link)[k] for link in links) for k in ("pg", "amqp", "s3")},
        "calls": [f"{r['kind']}: {', '.join(r.get('events', [])) or r['detail'][:70]}" for r in mid],
    }  # fmt: skip


def per_step(records: list[dict], run_pid: int, steps: int) -> dict:
    """Every round trip of a run's critical threads (the run worker's main thread, the Celery tasks' windows)
    over its steps, by service; and the AMQP acks (one-way) and other threads' round trips, apart."""
    windows = _task_windows(records)
    in_tasks = [r for w in windows.values() for r in w if is_round_trip(r)]
    run_main = [r for r in records if r["pid"] == run_pid and r["main"] and is_round_trip(r)]
    counted = {id(r) for r in in_tasks + run_main}
    other = [r for r in records if is_round_trip(r) and id(r) not in counted]
    by = Counter(service(r) for r in in_tasks + run_main)
    return {
        "total": (len(in_tasks) + len(run_main)) / steps,
        **{s: by.get(s, 0) / steps for s in ("pg", "amqp", "s3")},
        "acks": sum(1 for r in records if r["kind"] == "amqp Ack") / steps,
        "other_threads": len(other) / steps,
    }
