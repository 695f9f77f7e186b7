"""Faults the deployment survives, proven on real services (RabbitMQ, PostgreSQL, an S3 API server).

The topology is the local runner's (``python -m infra.local up``, kept running: webserver, daemon, the
stack file's worker on queue ``dagster``); the fault jobs come from ``tests.jobs.faults``. Their held
step runs on queue ``faults`` (or ``orphan``), served by extra workers that the test starts exactly as the
runner starts its own -- the topology's command, the runner's worker environment and app dir -- so the test
may kill them without the runner treating it as its own crash. Each held step records every attempt (which
worker, which process) and waits for a release marker, so the test decides when a fault strikes.

Services a fault stops are PRIVATE instances started here (a RabbitMQ node, a PostgreSQL cluster), never the
machine's shared ones. Every wait is a poll with a deadline. docs/reliability.md lists the outcomes.

Two runners serve the module (a start costs ~40 s on 2 cores):
- ``stack``: RabbitMQ 127.0.0.1:5672 (own vhost), a private PostgreSQL, moto S3 -- faults 1, 2, 5, then 4
  (the PostgreSQL restart, last because it may end the runner);
- ``rabbit_stack``: a private RabbitMQ, PostgreSQL 127.0.0.1:5432 (own database), moto S3 -- faults 3, 6.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from faults_support import PrivatePostgres, PrivateRabbit, Runner, Worker, alive, proc_table
from tests.conftest import wait_for, postgres_database, rabbit_vhost, s3_server, unavailable

LOCATION = "tests.jobs.faults"
VALUE = "held-and-released"  # tests.jobs.faults.VALUE
RUN_DEADLINE = 180  # seconds for a released run to end
PG_OUTAGE = 15  # seconds PostgreSQL is down in fault 4
WATCHDOG_SECONDS = 10  # the runner's --no-consumer-seconds in these tests

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds worker processes in /proc")




def _stack_file(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"config": {"dagster-celery-aws:queues": [{"name": "dagster", "concurrency": 2}]}}))
    return path


# ---------------------------------------------------------------------------------------------- services
@pytest.fixture(scope="module")
def shared_rabbit_vhost():
    with rabbit_vhost("dca-faults") as vhost:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}", vhost


@pytest.fixture(scope="module")
def shared_pg_url():
    with postgres_database("dca_faults") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory):
    if not (Path("/usr/lib/postgresql/15/bin/initdb")).exists():
        unavailable("PostgreSQL 15 binaries (initdb, pg_ctl) are needed")
    # Not under pytest's tmp dirs: they are private to root, and the cluster runs as user postgres.
    root = Path(tempfile.mkdtemp(prefix="dca-faults-pg-"))
    try:
        pg = PrivatePostgres(root)
        try:
            pg.start()
            yield pg
        finally:
            pg.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_rabbit(tmp_path_factory):
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        unavailable("rabbitmq-server is needed")
    rabbit = PrivateRabbit(tmp_path_factory.mktemp("rabbit"))
    try:
        rabbit.start()
        yield rabbit
    finally:
        rabbit.kill()


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


# ---------------------------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    runner: Runner
    db_url: str
    s3: object
    bucket: str
    root: Path

    def submit(self, job: str, tags: dict | None = None) -> tuple[str, Path]:
        """Submit ``job`` through the webserver (as the UI does); returns the run id and its marker dir."""
        from dagster_graphql import DagsterGraphQLClient

        markers = self.root / f"markers-{uuid.uuid4().hex[:8]}"
        markers.mkdir()
        step = {"hold_job": "hold_faults", "orphan_job": "hold_orphan"}[job]
        client = DagsterGraphQLClient("127.0.0.1", port_number=self.runner.port, timeout=60)
        run_id = client.submit_job_execution(
            job, repository_location_name=LOCATION, tags=tags or {},
            run_config={"ops": {step: {"config": {"marker_dir": str(markers)}}}},
        )  # fmt: skip
        return run_id, markers

    def query(self, sql: str, args: tuple):
        """One query on the run storage; None while the database is unreachable (a fault may stop it)."""
        import psycopg2

        try:
            with psycopg2.connect(self.db_url, connect_timeout=2) as conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        except psycopg2.OperationalError:
            return None

    def status(self, run_id: str) -> str | None:
        rows = self.query("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        return rows[0][0] if rows else None

    def wait_end(self, run_id: str, timeout: float = RUN_DEADLINE) -> str:
        return wait_for(f"run {run_id} to end", lambda: self.status(run_id) in ("SUCCESS", "FAILURE", "CANCELED")
                        and self.status(run_id), timeout, interval=0.5)  # fmt: skip

    def messages(self, run_id: str) -> list[tuple[str, str | None, str]]:
        """(event type, step key, message) of the run's events, in order."""
        from dagster import EventLogEntry
        from dagster._serdes import deserialize_value

        rows = self.query("SELECT event FROM event_logs WHERE run_id = %s ORDER BY id", (run_id,)) or []
        out = []
        for (raw,) in rows:
            e = deserialize_value(raw, EventLogEntry)
            ev = e.dagster_event
            text = (ev.message if ev else None) or e.user_message or ""
            error = getattr(getattr(ev, "event_specific_data", None), "error", None) if ev else None
            if error is not None:  # a step's or a run's failure: the error's class and message
                text += f" [{error.cls_name}: {error.message.strip()}]"
            out.append((ev.event_type_value if ev else "LOG", ev.step_key if ev else None, text))
        return out

    def output_objects(self, run_id: str, step: str) -> list[str]:
        from infra import contract

        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{contract.IO_PREFIX}/").get("Contents", [])
        return [o["Key"] for o in listed if f"/{run_id}/{step}/" in o["Key"]]

    def output_value(self, key: str):
        return pickle.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


def attempts(markers: Path) -> list[dict]:
    d = markers / "attempts"
    rows = [json.loads(p.read_text()) for p in d.glob("*.json")] if d.is_dir() else []
    return sorted(rows, key=lambda r: r["time"])


def release(markers: Path) -> None:
    (markers / "release").write_text("go")


def _start_stack(root: Path, broker_url: str, db_url: str, s3, extra: list[str] = ()) -> Stack:
    endpoint, client = s3
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    runner = Runner(root / "state", ["--stack-file", str(_stack_file(root / "Pulumi.faults.yaml")),
                                     "--code-module", LOCATION, "--job", "faults_ready_job",
                                     "--broker-url", broker_url, "--database-url", db_url,
                                     "--s3-endpoint", endpoint, "--bucket", bucket, *extra])  # fmt: skip
    try:
        runner.wait_running()
    except BaseException:
        runner.stop()
        raise
    return Stack(runner, db_url, client, bucket, root)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, shared_rabbit_vhost, private_pg, s3):
    s = _start_stack(tmp_path_factory.mktemp("stack"), shared_rabbit_vhost[0], private_pg.url, s3,
                     ["--no-consumer-seconds", str(WATCHDOG_SECONDS)])  # fmt: skip
    try:
        yield s
    finally:
        s.runner.stop()
        print(s.runner.output())


@pytest.fixture(scope="module")
def rabbit_stack(tmp_path_factory, private_rabbit, shared_pg_url, s3):
    s = _start_stack(tmp_path_factory.mktemp("rstack"), private_rabbit.url, shared_pg_url, s3)
    try:
        yield s
    finally:
        s.runner.stop()
        print(s.runner.output())


def _worker_of(workers: list[Worker], node: str) -> Worker:
    # node: "<queue>@<suffix>.<host>"; Worker.name: "<queue>@<suffix>"
    return next(w for w in workers if node.startswith(w.name + "."))


def _children(pid: int) -> list[int]:
    return [p for p, (pp, _) in proc_table().items() if pp == pid]


@contextlib.contextmanager
def held_run(stack, queue: str, suffixes: tuple[str, ...], job: str = "hold_job"):
    """One worker per suffix on ``queue``, a run of ``job``, and its held step started: yields (workers,
    run id, markers, the first attempt's record); the workers are stopped afterwards."""
    workers = [stack.runner.start_worker(queue, s) for s in suffixes]
    try:
        run_id, markers = stack.submit(job)
        first = wait_for("the held step to start", lambda: attempts(markers), 120)[0]
        yield workers, run_id, markers, first
    finally:
        for w in workers:
            w.stop()


# ---------------------------------------------------------------------------------------------- fault 1
def test_worker_sigkilled_mid_step_is_redelivered_to_another_worker_and_run_succeeds(stack):
    with held_run(stack, "faults", ("a", "b")) as (workers, run_id, markers, first):
        victim = _worker_of(workers, first["node"])
        other = next(w for w in workers if w is not victim)
        pool = _children(victim.pid)
        assert first["pid"] in pool  # the step runs in a pool child of the worker's main process
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)  # the MAIN process: its broker connection dies with it
        victim.popen.wait(timeout=10)
        # The pool child notices its parent is gone (billiard) and exits; a container would take it along.
        wait_for("the killed worker's pool child to exit", lambda: not any(alive(p) for p in pool), 30)
        second = wait_for("the step to be redelivered", lambda: attempts(markers)[1:], 60)[0]
        redelivered_in = time.monotonic() - killed_at
        assert second["node"].startswith(other.name + "."), (first, second)
        release(markers)
        assert stack.wait_end(run_id) == "SUCCESS"
        took = time.monotonic() - killed_at
        assert len(attempts(markers)) == 2
        keys = stack.output_objects(run_id, "hold_faults")
        assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        kinds = [(k, s) for k, s, _ in stack.messages(run_id)]
        assert kinds.count(("STEP_SUCCESS", "hold_faults")) == 1 and ("STEP_SUCCESS", "check") in kinds
        print(f"fault 1: redelivered {redelivered_in:.1f} s after SIGKILL; run SUCCESS {took:.1f} s after it")


# ---------------------------------------------------------------------------------------------- fault 2
def test_worker_sigterm_mid_step_finishes_the_step_then_exits(stack):
    from infra.local.processes import STOP_GRACE

    with held_run(stack, "faults", ("c", "d")) as (workers, run_id, markers, first):
        victim = _worker_of(workers, first["node"])
        signalled = time.monotonic()
        victim.popen.send_signal(signal.SIGTERM)  # what ECS sends first (then SIGKILL after stopTimeout)
        wait_for("the worker to begin its warm shutdown", lambda: b"Warm shutdown" in victim.log.read_bytes(), 30)
        assert victim.popen.poll() is None  # it waits for its running step
        release(markers)
        # Bounded by the runner's stop grace (20 s; Fargate's stopTimeout is at most 120 s).
        rc = victim.popen.wait(timeout=STOP_GRACE)
        exited_in = time.monotonic() - signalled
        assert rc == 0, victim.log.read_text(errors="replace")[-3000:]
        assert stack.wait_end(run_id) == "SUCCESS"
        assert len(attempts(markers)) == 1  # finished where it ran: not redelivered
        keys = stack.output_objects(run_id, "hold_faults")
        assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        print(f"fault 2: worker exited rc=0 {exited_in:.1f} s after SIGTERM, its step done; run SUCCESS")


# ---------------------------------------------------------------------------------------------- fault 5
def test_orphan_queue_left_without_worker_fails_the_run_naming_the_queue(stack):
    with held_run(stack, "orphan", ("e",), job="orphan_job") as ([worker], run_id, markers, _):
        try:
            worker.stop()  # SIGKILL to the worker's process group: it disappears and never comes back
            gone = time.monotonic()
            status = stack.wait_end(run_id, timeout=WATCHDOG_SECONDS + 60)
            took = time.monotonic() - gone
            assert status == "FAILURE"
            failures = [m for kind, _, m in stack.messages(run_id) if kind in ("RUN_FAILURE", "PIPELINE_FAILURE")]
            assert failures and 'queue "orphan"' in failures[-1] and "hold_orphan" in failures[-1], failures
            assert took < WATCHDOG_SECONDS + 30
            print(f"fault 5: run FAILURE {took:.1f} s after the queue's last worker vanished: {failures[-1]}")
        finally:
            release(markers)  # lets any copy of the held step end


# ---------------------------------------------------------------------------------------------- fault 4
def test_postgres_restart_mid_run_ends_the_run(stack, private_pg):
    """PostgreSQL goes down mid-step and stays down while the step ends (PG_OUTAGE s), then comes back.
    The run must END -- SUCCESS, or FAILURE with a database error -- never stay STARTED."""
    with held_run(stack, "faults", ("f",)) as (_, run_id, markers, _):
        t0 = time.monotonic()
        private_pg.stop(mode="fast")  # every connection is cut; nothing can be stored while it is down
        release(markers)
        wait_for("the step to see its release", lambda: list((markers / "attempts").glob("*.released")), 30)
        # The outage: the database stays down while the step ends and the executor collects its result.
        wait_for("the outage to last PG_OUTAGE seconds", lambda: time.monotonic() - t0 > PG_OUTAGE, PG_OUTAGE + 5)
        private_pg.start()
        down = time.monotonic() - t0
        status = stack.wait_end(run_id, timeout=RUN_DEADLINE)
        took = time.monotonic() - t0
        msgs = stack.messages(run_id)
        if status == "FAILURE":
            failure = [m for k, _, m in msgs if k in ("PIPELINE_FAILURE", "RUN_FAILURE", "STEP_FAILURE")]
            assert any("Operational" in m or "connection" in m.lower() for m in failure), failure
        else:
            assert status == "SUCCESS", status
            keys = stack.output_objects(run_id, "hold_faults")
            assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        print(f"fault 4: PostgreSQL down {down:.1f} s; run {status} {took:.1f} s after the stop; "
              f"{len(attempts(markers))} attempt(s); hold_faults events: "
              f"{[k for k, step, _ in msgs if step == 'hold_faults']}")


# ---------------------------------------------------------------------------------------------- fault 3
def test_broker_restart_mid_run_the_run_reconnects_and_succeeds(rabbit_stack, private_rabbit):
    """The run worker waits for results in the database (celery_config.yaml: backend), not on the broker, so
    the connection reset does not end it; the worker lets its late-acked step finish instead of cancelling
    it (worker_cancel_long_running_tasks_on_connection_loss: false). The broker requeued the unacked
    message, so the step may run a second time (idempotent output). The run succeeds."""
    with held_run(rabbit_stack, "faults", ("g",)) as (_, run_id, markers, _):
        t0 = time.monotonic()
        private_rabbit.stop()  # `rabbitmqctl stop`: every connection is closed
        private_rabbit.start()
        down = time.monotonic() - t0
        release(markers)
        status = rabbit_stack.wait_end(run_id, timeout=180)
        ended = time.monotonic() - t0
        assert status == "SUCCESS", rabbit_stack.messages(run_id)
        # The workers reconnected by themselves: both queues have a consumer again.
        wait_for("the workers to consume again",
                 lambda: private_rabbit.consumers("faults") >= 1 and private_rabbit.consumers("dagster") >= 1, 60)
        print(f"fault 3: broker down {down:.1f} s; run in flight SUCCESS {ended:.1f} s after the stop; "
              f"{len(attempts(markers))} attempt(s) of the held step")


# ---------------------------------------------------------------------------------------------- fault 6
CONSUMER_TIMEOUT_MS = 5000


def test_step_longer_than_consumer_timeout_runs_twice(rabbit_stack, private_rabbit):
    """A private broker restarted with consumer_timeout = 5 s (checked every second). The step is held past
    it: RabbitMQ closes the worker's channel (PRECONDITION_FAILED) and requeues the message, another worker
    runs the step again from the start while the first copy still runs; the first worker then stops with
    an unrecoverable error. With idempotent output the run still succeeds -- but the step ran twice."""
    private_rabbit.stop()
    private_rabbit.configure(consumer_timeout_ms=CONSUMER_TIMEOUT_MS)
    private_rabbit.start()
    with held_run(rabbit_stack, "faults", ("h", "i")) as (workers, run_id, markers, first):
        t0 = time.monotonic()
        victim = _worker_of(workers, first["node"])
        other = next(w for w in workers if w is not victim)
        second = wait_for("the step to be delivered again", lambda: attempts(markers)[1:], 60)[0]
        redelivered = second["time"] - first["time"]
        assert second["node"].startswith(other.name + "."), (first, second)
        assert redelivered >= CONSUMER_TIMEOUT_MS / 1000 - 1.5  # not before the timeout (tick: 1 s)
        assert b"PRECONDITION_FAILED - delivery acknowledgement on channel" in victim.log.read_bytes()
        release(markers)
        assert rabbit_stack.wait_end(run_id) == "SUCCESS"
        took = time.monotonic() - t0
        msgs = rabbit_stack.messages(run_id)
        assert [k for k, step, _ in msgs if step == "hold_faults"].count("STEP_SUCCESS") == 2  # it ran twice
        keys = rabbit_stack.output_objects(run_id, "hold_faults")
        assert len(keys) == 1 and rabbit_stack.output_value(keys[0]) == VALUE, keys
        rc = wait_for("the timed-out worker to stop", lambda: victim.popen.poll(), 60)
        assert rc != 0  # "Unrecoverable error: PreconditionFailed": the worker process ends
        print(f"fault 6: second delivery {redelivered:.1f} s after the first (consumer_timeout "
              f"{CONSUMER_TIMEOUT_MS / 1000:.0f} s); run SUCCESS {took:.1f} s after the first start; step ran "
              f"twice; timed-out worker exited rc={rc}")


def test_stack_consumer_timeout_is_rendered_from_config():
    """The other half of fault 6: the stack's broker configuration sets consumer_timeout from
    broker.consumerTimeoutMinutes (default 120 min, above RabbitMQ's 30 min), so a step shorter than that
    keeps its delivery; a longer step needs a larger value (the failure mode above)."""
    from infra.components.broker import rabbitmq_conf
    from infra.config import Broker
    from infra.testing import run_stack

    assert rabbitmq_conf(Broker()) == "consumer_timeout = 7200000\n"  # 120 min in ms
    for minutes in (45, 24 * 60):
        stack = run_stack(config={"queues": [{"name": "dagster"}], "broker": {"consumerTimeoutMinutes": minutes}})
        (cfg,) = stack.of_type("aws:mq/configuration:Configuration")
        assert f"consumer_timeout = {minutes * 60 * 1000}" in cfg.inputs["data"].splitlines()
        (broker,) = stack.of_type("aws:mq/broker:Broker")
        assert broker.inputs["configuration"]["id"]  # the broker uses that configuration
