"""Faults the deployment survives, proven on real services (RabbitMQ, PostgreSQL, an S3 API server).

The topology is the local runner's (``python -m infra.local up``, kept running: webserver, daemon, the
stack file's worker on queue ``dagster``); the fault jobs come from ``tests.jobs.faults``. Their held
step runs on queue ``faults`` (or ``orphan``), served by extra workers that the test starts exactly as the
runner starts its own -- the topology's command, the runner's worker environment and app dir -- so the test
may kill them without the runner treating it as its own crash. Each held step records every attempt (which
worker, which process) and waits for a release marker, so the test decides when a fault strikes.

Services a fault stops are PRIVATE instances started here (a RabbitMQ node, a PostgreSQL cluster), never the
machine's shared ones. Every wait is a poll with a deadline. docs/reliability.md lists the outcomes.

Three runners serve the module (a start costs ~40 s on 2 cores), so that a service one test restarts is no
other test's, and each test has a queue of its own (tests/jobs/faults.py): the tests pass in any order
(``pytest -p random_order --random-order``; docs/reliability.md):
- ``stack``: RabbitMQ 127.0.0.1:5672 and PostgreSQL 127.0.0.1:5432 (own vhost and database), moto S3 --
  faults 1, 2, 5, 7, 9, 10, 11, 13, 14, 15 (nothing restarts a service);
- ``pg_stack``: a private PostgreSQL -- fault 4 (the PostgreSQL restart);
- ``rabbit_stack``: a private RabbitMQ, PostgreSQL 127.0.0.1:5432 (own database) -- faults 3, 8 (no watchdog
  there: a queue is without a worker while the test restarts it), 6 (which restores the broker's config).
Fault 12 stops a runner of its own (vhost and database of its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from faults_support import PrivatePostgres, PrivateRabbit, Runner, Worker, alive, proc_table
from tests.conftest import REPO_ROOT, wait_for, postgres_database, rabbit_vhost, s3_server, unavailable

LOCATION = "tests.jobs.faults"
VALUE = "held-and-released"  # tests.jobs.faults.VALUE
RUN_DEADLINE = 180  # seconds for a released run to end
PG_OUTAGE = 15  # seconds PostgreSQL is down in fault 4
WATCHDOG_SECONDS = 10  # the runner's --no-consumer-seconds in these tests
MAX_DELIVERIES = 3  # broker.maxDeliveries' default: the test stack files do not set it
CRASH_DEADLINE = 90  # seconds for a run whose step kills its worker on every delivery to fail
RUN_WORKER_EXIT = 30  # seconds for a run worker to exit once its run has ended
ENDED = ("SUCCESS", "FAILURE", "CANCELED")
QUEUE_COLUMNS = ("messages", "messages_ready", "messages_unacknowledged", "consumers")  # rabbitmqctl list_queues
SPOT_GRACE = 8.0  # fault 13's stop grace (on ECS the container's stopTimeout: at most 120 s on Fargate)
# Each fault job's steps that take the marker dir (and the test's other config); tests.jobs.faults.
STEPS = {"hold": ("hold_{q}",), "pair": ("hold_{q}", "hold_{q}_b"), "crash": ("crash_{q}",), "short": ("hold_dagster",)}


def steps(job: str) -> tuple[str, ...]:
    """``<kind>_job_<queue>`` (tests.jobs.faults: each test has a queue of its own) -> its configured steps."""
    kind, _, queue = job.partition("_job")
    return tuple(s.format(q=queue.lstrip("_")) for s in STEPS[kind])

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds worker processes in /proc")




def _stack_file(path: Path) -> Path:
    # No run retries: each fault's outcome is that of its own run. With the default (one retry) a run these faults
    # fail -- by the watchdog, a lost worker, run monitoring -- is relaunched as a new run whose steps go to the
    # test's queue again (docs/operations.md, "Run retries"; tests/test_instance_settings.py tests the retry).
    path.write_text(yaml.safe_dump({"config": {"dagster-celery-aws:queues": [{"name": "dagster", "concurrency": 2}],
                                               "dagster-celery-aws:runs": {"retries": {"maxRetries": 0}}}}))  # fmt: skip
    return path


# ---------------------------------------------------------------------------------------------- services
@pytest.fixture(scope="module")
def shared_rabbit_vhost():
    with rabbit_vhost("dca-faults") as vhost:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}", vhost


@contextlib.contextmanager
def shared_pg_url():
    """A database of its own on the machine's PostgreSQL, for one runner."""
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
    vhost: str | None = None  # on the machine's RabbitMQ (queue_messages)

    def graphql(self):
        """The webserver's GraphQL API, which the UI uses."""
        from dagster_graphql import DagsterGraphQLClient

        return DagsterGraphQLClient("127.0.0.1", port_number=self.runner.port, timeout=60)

    def submit(self, job: str, tags: dict | None = None, **config) -> tuple[str, Path]:
        """Submit ``job`` through the webserver (as the UI does), its steps configured with a new marker dir
        and ``config``; returns the run id and the marker dir."""
        markers = self.root / f"markers-{uuid.uuid4().hex[:8]}"
        markers.mkdir()
        ops = {step: {"config": {"marker_dir": str(markers), **config}} for step in steps(job)}
        run_id = self.graphql().submit_job_execution(
            job, repository_location_name=LOCATION, tags=tags or {}, run_config={"ops": ops}
        )
        return run_id, markers

    def run_worker_pid(self, run_id: str) -> int:
        """The pid of the run's run worker, from Dagster's "Started process for run (pid: N)." event."""
        def pid():
            found = [re.search(r"\(pid: (\d+)\)", m) for k, _, m in self.messages(run_id) if m.startswith("Started process")]
            return int(found[0][1]) if found and found[0] else None

        return wait_for(f"run {run_id}'s run worker to start", pid, 120, interval=0.3)

    def queue_state(self, queue_name: str) -> dict[str, int]:
        """A queue of this stack's vhost on the machine's RabbitMQ: its messages (waiting or unacknowledged),
        those waiting (ready), those delivered and not yet acknowledged, and its consumers; all 0 for a queue
        that does not exist (yet)."""
        out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "--no-table-headers", "name", *QUEUE_COLUMNS],
                             check=True, capture_output=True, text=True, timeout=60).stdout  # fmt: skip
        for line in out.splitlines():
            name, *values = line.split("\t")
            if name == queue_name and len(values) == len(QUEUE_COLUMNS):
                return dict(zip(QUEUE_COLUMNS, map(int, values)))
        return dict.fromkeys(QUEUE_COLUMNS, 0)

    def queue_messages(self, queue_name: str) -> int:
        """Messages in a queue of this stack's vhost, waiting or unacknowledged."""
        return self.queue_state(queue_name)["messages"]

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
        from infra.specs import contract

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


def released(markers: Path) -> list[Path]:
    return list((markers / "attempts").glob("*.released"))


def _start_stack(root: Path, broker_url: str, db_url: str, s3, extra: list[str] = (), vhost: str | None = None) -> Stack:
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
    return Stack(runner, db_url, client, bucket, root, vhost)


@contextlib.contextmanager
def _running(root: Path, broker_url: str, db_url: str, s3, extra: list[str] = (), vhost: str | None = None):
    s = _start_stack(root, broker_url, db_url, s3, extra, vhost)
    try:
        yield s
    finally:
        s.runner.stop()
        print(s.runner.output())


@pytest.fixture(scope="module")
def stack(tmp_path_factory, shared_rabbit_vhost, s3):
    """The machine's RabbitMQ (own vhost) and PostgreSQL (own database): no test restarts either."""
    with shared_pg_url() as db_url, _running(tmp_path_factory.mktemp("stack"), shared_rabbit_vhost[0], db_url, s3,
                                             ["--no-consumer-seconds", str(WATCHDOG_SECONDS)],
                                             vhost=shared_rabbit_vhost[1]) as s:  # fmt: skip
        yield s


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory, private_pg, s3):
    """A private PostgreSQL that fault 4 restarts, so that no other test's runner sees the restart."""
    with rabbit_vhost("dca-faults-pg") as vhost, _running(tmp_path_factory.mktemp("pgstack"),
                                                          f"amqp://guest:guest@127.0.0.1:5672/{vhost}", private_pg.url,
                                                          s3, vhost=vhost) as s:  # fmt: skip
        yield s


@pytest.fixture(scope="module")
def rabbit_stack(tmp_path_factory, private_rabbit, s3):
    """A private RabbitMQ that faults 3 and 6 restart."""
    with shared_pg_url() as db_url, _running(tmp_path_factory.mktemp("rstack"), private_rabbit.url, db_url, s3) as s:
        yield s


def _worker_of(workers: list[Worker], node: str) -> Worker:
    # node: "<queue>@<suffix>.<host>"; Worker.name: "<queue>@<suffix>"
    return next(w for w in workers if node.startswith(w.name + "."))


def _children(pid: int) -> list[int]:
    return [p for p, (pp, _) in proc_table().items() if pp == pid]


@contextlib.contextmanager
def held_run(stack, queue: str, suffixes: tuple[str, ...], job: str | None = None, tags: dict | None = None):
    """One worker per suffix on ``queue``, a run of ``job``, and its held step started: yields (workers,
    run id, markers, the first attempt's record); the workers are stopped afterwards."""
    workers = [stack.runner.start_worker(queue, s) for s in suffixes]
    try:
        run_id, markers = stack.submit(job or f"hold_job_{queue}", tags)
        first = wait_for("the held step to start", lambda: attempts(markers), 120)[0]
        yield workers, run_id, markers, first
    finally:
        for w in workers:
            w.stop()


# ---------------------------------------------------------------------------------------------- fault 1
def test_worker_sigkilled_mid_step_is_redelivered_to_another_worker_and_run_succeeds(stack):
    q = "f1"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    with held_run(stack, q, ("a", "b")) as (workers, run_id, markers, first):
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
        keys = stack.output_objects(run_id, f"hold_{q}")
        assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        kinds = [(k, s) for k, s, _ in stack.messages(run_id)]
        assert kinds.count(("STEP_SUCCESS", f"hold_{q}")) == 1 and ("STEP_SUCCESS", "check") in kinds
        print(f"fault 1: redelivered {redelivered_in:.1f} s after SIGKILL; run SUCCESS {took:.1f} s after it")


# ---------------------------------------------------------------------------------------------- fault 2
def test_worker_sigterm_mid_step_finishes_the_step_then_exits(stack):
    q = "f2"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    from infra.local.processes import STOP_GRACE

    with held_run(stack, q, ("c", "d")) as (workers, run_id, markers, first):
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
        keys = stack.output_objects(run_id, f"hold_{q}")
        assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        print(f"fault 2: worker exited rc=0 {exited_in:.1f} s after SIGTERM, its step done; run SUCCESS")


# ---------------------------------------------------------------------------------------------- faults 13, 14
def _with_consumers(stack, queue: str, consumers: int, within: float) -> dict[str, int]:
    """The queue's consumers and waiting messages once it has ``consumers`` consumers (a stopping worker cancels
    its own at once), read with a passive AMQP queue declare: live and a few milliseconds a read, where a
    ``rabbitmqctl`` poll takes about a second, too long to be sure of reading within fault 13's grace."""
    from kombu import Connection

    def state():
        with Connection(f"amqp://guest:guest@127.0.0.1:5672/{stack.vhost}") as conn:
            _, ready, found = conn.default_channel.queue_declare(queue, passive=True)
        return found == consumers and {"consumers": found, "messages_ready": ready}

    return wait_for(f"queue {queue} to have {consumers} consumer(s)", state, within, interval=0.05)


def test_spot_interruption_past_the_grace_kills_the_step_and_another_worker_runs_it_again(stack):
    """A Fargate Spot interruption stops a worker's task as ECS stops any task: SIGTERM, then SIGKILL when the
    container's stopTimeout ends. The worker is stopped here by the runner's own stop (``Supervisor.stop``,
    the same rule) with a grace of SPOT_GRACE s, while it runs a step that outlasts it. It stops consuming at
    once (warm shutdown) and keeps the running step's message unacknowledged: nothing is redelivered during
    the grace. The SIGKILL at its end kills the step mid-way; RabbitMQ requeues the message and the queue's
    other worker runs the step again from the start; the run succeeds; the step ran twice, the first attempt
    never finished."""
    q = "f13"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    with held_run(stack, q, ("s1", "s2")) as (workers, run_id, markers, first):
        victim = _worker_of(workers, first["node"])
        other = next(w for w in workers if w is not victim)
        pool = _children(victim.pid)
        assert first["pid"] in pool
        _with_consumers(stack, q, 2, 30)  # both workers consume
        t0, wall0 = time.monotonic(), time.time()
        stopping = victim.stop_like_ecs(SPOT_GRACE)
        wait_for("the worker's warm shutdown", lambda: b"Warm shutdown" in victim.log.read_bytes(), SPOT_GRACE)
        warm = time.monotonic() - t0
        during = _with_consumers(stack, q, 1, SPOT_GRACE)
        cancelled = time.monotonic() - t0
        # Within the grace: the worker still runs the step, whose message it holds (nothing waits in the queue;
        # that the message was held, unacknowledged, shows when it is redelivered after the kill).
        assert cancelled < SPOT_GRACE, f"read {cancelled:.1f} s after SIGTERM: not within the grace"
        assert victim.popen.poll() is None and len(attempts(markers)) == 1, victim.log.read_text(errors="replace")
        assert during["messages_ready"] == 0, during
        wait_for("the worker to be killed", lambda: victim.popen.poll() is not None, SPOT_GRACE + 10)
        killed = time.monotonic() - t0
        assert victim.popen.returncode == -signal.SIGKILL, victim.log.read_text(errors="replace")[-3000:]
        assert killed >= SPOT_GRACE  # not before the grace ended
        wait_for("the killed worker's pool child to exit", lambda: not any(alive(p) for p in pool), 10)
        second = wait_for("the step to be redelivered", lambda: attempts(markers)[1:], 60)[0]
        redelivered = second["time"] - wall0
        assert second["node"].startswith(other.name + "."), (first, second)
        assert redelivered >= SPOT_GRACE  # the message stayed with the stopping worker for the whole grace
        release(markers)
        assert stack.wait_end(run_id) == "SUCCESS", stack.messages(run_id)
        took = time.monotonic() - t0
        stopping.join(timeout=30)
        assert not stopping.is_alive()
        assert len(attempts(markers)) == 2
        # Only the second attempt finished: the first one was killed while it waited for its release.
        assert [json.loads(p.read_text())["pid"] for p in released(markers)] == [second["pid"]]
        hold = [(k, m) for k, step, m in stack.messages(run_id) if step == f"hold_{q}"]
        kinds = [k for k, _ in hold]
        assert sum(f"Executing steps hold_{q} in celery worker" in m for _, m in hold) == 2, hold
        assert (kinds.count("STEP_START"), kinds.count("STEP_SUCCESS"), kinds.count("STEP_FAILURE")) == (2, 1, 0), hold
        keys = stack.output_objects(run_id, f"hold_{q}")
        assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        assert stack.queue_messages(q) == 0  # the second delivery was acknowledged
        print(f"fault 13: SIGTERM -> warm shutdown logged {warm:.1f} s, consumer cancelled {cancelled:.1f} s "
              f"(step running, its message unacked) -> SIGKILL at the end of the {SPOT_GRACE:.0f} s grace, worker "
              f"dead {killed:.1f} s -> redelivered to the other worker {redelivered:.1f} s -> run SUCCESS "
              f"{took:.1f} s after SIGTERM; the step ran twice")


def test_spot_interruption_worker_stops_consuming_at_once_and_acks_a_step_that_ends_within_the_grace(stack):
    """Between SIGTERM and SIGKILL: a worker with a free slot (concurrency 2) runs a step, a second worker
    serves the same queue, and the first is stopped like ECS stops it (the runner's stop, with a grace of
    90 s: longer than the runner's grace, since a new run's start on a loaded machine can take most of
    20 s, and nothing shown depends on the grace's length).
    It cancels its consumer at once, so a step sent meanwhile goes to the other worker, not to the free slot
    (where it would be held, unacknowledged, until the stopping worker's connection closes); the running step
    ends within the grace and is acknowledged: once the worker has exited (rc 0, before any SIGKILL) the
    broker holds only the other worker's step, and nothing waits."""
    q = "f14"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    grace = 90  # s (see above)

    workers = [stack.runner.start_worker(q, "s3", concurrency=2)]
    run_id, markers = stack.submit(f"hold_job_{q}")
    late_markers = None
    try:
        first = wait_for("the held step to start", lambda: attempts(markers), 120)[0]
        victim = workers[0]
        assert first["node"].startswith(victim.name + ".") and first["pid"] in _children(victim.pid)
        workers.append(other := stack.runner.start_worker(q, "s4"))
        _with_consumers(stack, q, 2, 30)
        t0 = time.monotonic()
        stopping = victim.stop_like_ecs(grace)
        wait_for("the worker's warm shutdown", lambda: b"Warm shutdown" in victim.log.read_bytes(), grace)
        _with_consumers(stack, q, 1, grace)
        cancelled = time.monotonic() - t0
        late_run, late_markers = stack.submit(f"hold_job_{q}")
        late = wait_for("the late step to start", lambda: attempts(late_markers), grace)[0]
        started = time.monotonic() - t0
        assert late["node"].startswith(other.name + "."), late  # not the stopping worker's free slot
        during = stack.queue_state(q)
        assert victim.popen.poll() is None, victim.log.read_text(errors="replace")[-3000:]  # still in its grace
        assert (during["messages_ready"], during["messages_unacknowledged"]) == (0, 2), during  # a step each
        release(markers)
        wait_for("the worker to exit", lambda: victim.popen.poll() is not None, grace)
        exited = time.monotonic() - t0
        assert victim.popen.returncode == 0, victim.log.read_text(errors="replace")[-3000:]
        after = stack.queue_state(q)
        # The stopped worker's step was acknowledged, not requeued: only the other worker's step is held.
        assert (after["messages_ready"], after["messages_unacknowledged"]) == (0, 1), after
        stopping.join(timeout=30)
        assert not stopping.is_alive()
        assert stack.wait_end(run_id) == "SUCCESS" and len(attempts(markers)) == 1
        release(late_markers)
        assert stack.wait_end(late_run) == "SUCCESS" and len(attempts(late_markers)) == 1
        assert stack.queue_messages(q) == 0
        print(f"fault 14: SIGTERM -> consumer cancelled {cancelled:.1f} s; a step sent then started on the other "
              f"worker {started:.1f} s, not in the free slot -> the running step released, worker exited rc=0 "
              f"{exited:.1f} s after SIGTERM (grace {grace:.0f} s), its message acknowledged; both runs SUCCESS")
    finally:
        release(markers)
        if late_markers is not None:
            release(late_markers)
        for w in workers:
            w.stop()


# ---------------------------------------------------------------------------------------------- fault 15
def test_runs_mode_daemon_health_check_asks_the_code_server_that_started_the_run(stack):
    """runs.mode 'daemon' (the local runner's mode): run monitoring's health check of a run asks the code server
    recorded on it. A run it is running: RUNNING. A run it does not run, or a code server that is gone with its
    task (its socket with it): FAILED, so the run is ended instead of staying STARTED."""
    q = "f15"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    from types import SimpleNamespace

    from dagster._core.launcher import WorkerStatus
    from dagster._core.storage.tags import GRPC_INFO_TAG

    from dagster_celery_aws.run_launcher import DaemonRunLauncher

    launcher = DaemonRunLauncher()
    with held_run(stack, q, ("a",)) as (_, run_id, markers, _first):
        try:
            rows = stack.query("SELECT value FROM run_tags WHERE run_id = %s AND key = %s", (run_id, GRPC_INFO_TAG))
            (info,) = [value for (value,) in rows]
            assert launcher.check_run_worker_health(SimpleNamespace(run_id=run_id, tags={GRPC_INFO_TAG: info})).status \
                == WorkerStatus.RUNNING
            stranger = launcher.check_run_worker_health(SimpleNamespace(run_id=uuid.uuid4().hex, tags={GRPC_INFO_TAG: info}))
            assert stranger.status == WorkerStatus.FAILED and "no longer runs" in stranger.msg
            gone_info = json.dumps({"host": "localhost", "socket": str(stack.root / "gone.sock")})
            gone = launcher.check_run_worker_health(SimpleNamespace(run_id=run_id, tags={GRPC_INFO_TAG: gone_info}))
            assert gone.status == WorkerStatus.FAILED and "is gone" in gone.msg, gone
            # A run this launcher did not start (a run task of runs.mode 'task'): nothing to ask, not failed.
            assert launcher.check_run_worker_health(SimpleNamespace(run_id=run_id, tags={})).status == WorkerStatus.RUNNING
        finally:
            release(markers)
        assert stack.wait_end(run_id) == "SUCCESS"

# ---------------------------------------------------------------------------------------------- fault 5
def test_orphan_queue_left_without_worker_fails_the_run_naming_the_queue(stack):
    q = "orphan5"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    with held_run(stack, q, ("e",)) as ([worker], run_id, markers, _):
        try:
            worker.stop()  # SIGKILL to the worker's process group: it disappears and never comes back
            gone = time.monotonic()
            status = stack.wait_end(run_id, timeout=WATCHDOG_SECONDS + 60)
            took = time.monotonic() - gone
            assert status == "FAILURE"
            failures = [m for kind, _, m in stack.messages(run_id) if kind in ("RUN_FAILURE", "PIPELINE_FAILURE")]
            assert failures and f'queue "{q}"' in failures[-1] and f"hold_{q}" in failures[-1], failures
            assert took < WATCHDOG_SECONDS + 30
            print(f"fault 5: run FAILURE {took:.1f} s after the queue's last worker vanished: {failures[-1]}")
        finally:
            release(markers)  # lets any copy of the held step end


# ---------------------------------------------------------------------------------------------- faults 7, 8
def _crash_failure(stack, run_id: str, queue: str) -> str:
    """The run's one STEP_FAILURE of ``crash_<queue>``, which must name the fault."""
    failures = [m for kind, step, m in stack.messages(run_id) if kind == "STEP_FAILURE" and step == f"crash_{queue}"]
    assert len(failures) == 1, stack.messages(run_id)
    for part in (f'step "crash_{queue}"', f'queue "{queue}"', f"started {MAX_DELIVERIES} times", "out of memory",
                 "native code", f"broker.maxDeliveries = {MAX_DELIVERIES}"):  # fmt: skip
        assert part in failures[0], failures[0]
    kinds = [(k, s) for k, s, _ in stack.messages(run_id)]
    # The step failed like any step: what depends on it does not run, the independent step ran.
    assert ("STEP_START", "check") not in kinds and ("STEP_SUCCESS", "ready") in kinds, "\n".join(map(str, kinds))
    return failures[0]


def test_step_killing_its_pool_process_on_every_delivery_fails_after_max_deliveries(stack):
    """The step SIGKILLs its own pool process each time it starts (a native crash, or the kernel's OOM killer
    taking the biggest process). The worker's main process lives: Celery requeues the message (reject on
    worker lost) and the same worker takes it again. The delivery after the third start finds three starts
    of its task in the run's event log and fails the step without running it; the run fails; the worker
    still serves and the message is gone."""
    q = "f7"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    worker = stack.runner.start_worker(q, "p")
    try:
        t0 = time.monotonic()
        run_id, markers = stack.submit(f"crash_job_{q}", kill="pool")
        assert stack.wait_end(run_id, timeout=CRASH_DEADLINE) == "FAILURE", stack.messages(run_id)
        took = time.monotonic() - t0
        assert len(attempts(markers)) == MAX_DELIVERIES
        failure = _crash_failure(stack, run_id, q)
        assert worker.popen.poll() is None and stack.queue_messages(q) == 0
        assert b"exited with 'signal 9 (SIGKILL)'" in worker.log.read_bytes()
        print(f"fault 7: run FAILURE {took:.1f} s after submission, {MAX_DELIVERIES} starts: {failure}")
    finally:
        worker.stop()


def test_run_failed_by_the_watchdog_never_runs_its_waiting_step_and_its_run_worker_exits(stack):
    """No worker serves queue "orphan": the step waits in the broker and the watchdog fails the run (as
    ``instance.report_run_failed``). The run worker notices that its run ended, revokes the step and exits.
    A worker for the queue that starts later takes the message and drops it without running the step (one
    log line naming run and step). That worker starts ``--without-mingle``: Celery's revoke lives in the
    memory of the workers alive when it was sent, and a new worker learns it from them at start (mingle) --
    here it must not, as when every worker that heard it has restarted since, so what drops the step is the
    worker's own check of the run's status."""
    q = "orphan9"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    run_id, markers = stack.submit(f"hold_job_{q}")
    run_worker = stack.run_worker_pid(run_id)
    assert stack.wait_end(run_id, timeout=WATCHDOG_SECONDS + 60) == "FAILURE"
    failed = time.monotonic()
    wait_for("the run worker to exit", lambda: not alive(run_worker), RUN_WORKER_EXIT)
    exited_in = time.monotonic() - failed
    assert stack.queue_messages(q) == 1  # its step still waits
    worker = stack.runner.start_worker(q, "late", extra_args=("--without-mingle",))
    try:
        started = time.monotonic()
        line = f"not running step hold_{q} of run {run_id}".encode()
        wait_for("the late worker to drop the step", lambda: line in worker.log.read_bytes(), 60)
        wait_for("the queue to be empty", lambda: stack.queue_messages(q) == 0, 30)
        dropped_in = time.monotonic() - started
        assert attempts(markers) == []
        assert [k for k, step, _ in stack.messages(run_id) if step == f"hold_{q}" and k.startswith("STEP_")] == []
        print(f"fault 9: run worker exited {exited_in:.1f} s after the watchdog failed the run; a worker started "
              f"later dropped the step's message {dropped_in:.1f} s after it started, without running it")
    finally:
        worker.stop()


def _ends_its_celery_work(stack, run_id: str, markers: Path, run_worker: int, since: float, queue: str) -> str:
    """The run is over: its running step was interrupted (the revoke's SIGTERM to the step's pool process,
    which Dagster turns into an interrupt of the step: a STEP_FAILURE), its run worker exited, the step that
    waited in the queue never started and its message is gone. Returns the timings."""
    def interrupted():
        return [m for k, step, m in stack.messages(run_id) if (k, step) == ("STEP_FAILURE", f"hold_{queue}")]

    (failure,) = wait_for("the running step to be interrupted", interrupted, 30)
    assert "DagsterExecutionInterruptedError" in failure, failure
    stopped = time.monotonic() - since
    wait_for("the run worker to exit", lambda: not alive(run_worker), RUN_WORKER_EXIT)
    exited = time.monotonic() - since
    wait_for("the queue to be empty", lambda: stack.queue_messages(queue) == 0, 30)
    assert len(attempts(markers)) == 1 and not released(markers)
    return f"running step interrupted {stopped:.1f} s, run worker exited {exited:.1f} s after it"


def test_run_terminated_from_the_ui_stops_its_steps_and_its_run_worker_exits(stack):
    """Two independent held steps on the test's queue and one worker with one slot: one runs, the other waits
    in the queue. Terminate through the webserver's GraphQL API, as the UI's Terminate button does: the run
    worker revokes both, the running one interrupted (dagster issue 23222: it used to run on), ends CANCELED
    and exits."""
    q = "f10"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    with held_run(stack, q, ("t",), job=f"pair_job_{q}") as ([worker], run_id, markers, _):
        run_worker = stack.run_worker_pid(run_id)
        t0 = time.monotonic()
        stack.graphql().terminate_run(run_id)
        assert stack.wait_end(run_id, timeout=60) == "CANCELED", stack.messages(run_id)
        ended = time.monotonic() - t0
        timings = _ends_its_celery_work(stack, run_id, markers, run_worker, t0, q)
        assert worker.popen.poll() is None  # the worker goes on
        print(f"fault 10: run CANCELED {ended:.1f} s after the terminate request; {timings}")


def test_run_monitoring_ends_a_run_past_its_max_runtime_and_its_celery_work(stack):
    """Run monitoring (the daemon, every poll_interval_seconds of worker_image/dagster.yaml) terminates a run
    past its ``dagster/max_runtime`` through the run launcher and marks it failed: the same end as fault 10."""
    q = "f11"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    monitoring = yaml.safe_load((REPO_ROOT / "worker_image" / "dagster.yaml").read_text())["run_monitoring"]
    tags = {"dagster/max_runtime": "1"}
    with held_run(stack, q, ("m",), job=f"pair_job_{q}", tags=tags) as (_, run_id, markers, _):
        run_worker = stack.run_worker_pid(run_id)
        t0 = time.monotonic()
        assert stack.wait_end(run_id, timeout=monitoring["poll_interval_seconds"] + 60) == "FAILURE"
        ended = time.monotonic() - t0
        failures = [m for kind, _, m in stack.messages(run_id) if kind in ("RUN_FAILURE", "PIPELINE_FAILURE")]
        assert any("Exceeded maximum runtime of 1 seconds" in m for m in failures), failures
        timings = _ends_its_celery_work(stack, run_id, markers, run_worker, t0, q)
        print(f"fault 11: run monitoring failed the run {ended:.1f} s after its step started (poll "
              f"{monitoring['poll_interval_seconds']} s); {timings}")


# ---------------------------------------------------------------------------------------------- fault 4
def test_postgres_restart_mid_run_the_run_succeeds(pg_stack, private_pg):
    """PostgreSQL goes down mid-step and stays down while the step ends (PG_OUTAGE s), then comes back.
    The run succeeds: the step's result and events wait out the outage (result_backend_always_retry, Dagster's
    connection retries), its output is written once with the right value."""
    stack = pg_stack
    q = "f4"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    with held_run(stack, q, ("f",)) as (_, run_id, markers, _):
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
        assert status == "SUCCESS", msgs
        keys = stack.output_objects(run_id, f"hold_{q}")
        assert len(keys) == 1 and stack.output_value(keys[0]) == VALUE, keys
        print(f"fault 4: PostgreSQL down {down:.1f} s; run {status} {took:.1f} s after the stop; "
              f"{len(attempts(markers))} attempt(s); hold_{q} events: "
              f"{[k for k, step, _ in msgs if step == 'hold_' + q]}")


# ---------------------------------------------------------------------------------------------- fault 3
def test_broker_restart_mid_run_the_run_reconnects_and_succeeds(rabbit_stack, private_rabbit):
    """The run worker waits for results in the database (celery_config.yaml: backend), not on the broker, so
    the connection reset does not end it; the worker lets its late-acked step finish instead of cancelling
    it (worker_cancel_long_running_tasks_on_connection_loss: false). The broker requeued the unacked
    message, so the step may run a second time (idempotent output). The run succeeds."""
    q = "f3"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    with held_run(rabbit_stack, q, ("g",)) as (_, run_id, markers, _):
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
                 lambda: private_rabbit.consumers(q) >= 1 and private_rabbit.consumers("dagster") >= 1, 60)
        print(f"fault 3: broker down {down:.1f} s; run in flight SUCCESS {ended:.1f} s after the stop; "
              f"{len(attempts(markers))} attempt(s) of the held step")


def test_step_killing_its_whole_worker_on_every_delivery_fails_after_max_deliveries(rabbit_stack):
    """The step kills its whole worker (its process group, as an out-of-memory kill takes a whole ECS task)
    each time it starts; RabbitMQ requeues the message when the connection drops, and the test starts a new
    worker each time, as ECS restarts the task. The worker after the third start fails the step without
    running it, and lives."""
    q = "f8"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    run_id, markers = rabbit_stack.submit(f"crash_job_{q}", kill="worker")
    t0 = time.monotonic()
    workers = []
    try:
        for i in range(MAX_DELIVERIES + 1):
            w = rabbit_stack.runner.start_worker(q, f"k{i}", may_exit=True)
            workers.append(w)
            wait_for("the worker to die or the run to end",
                     lambda w=w: w.popen.poll() is not None or rabbit_stack.status(run_id) in ENDED, 60, interval=0.2)
        assert rabbit_stack.wait_end(run_id, timeout=CRASH_DEADLINE) == "FAILURE", rabbit_stack.messages(run_id)
        took = time.monotonic() - t0
        assert [w.popen.poll() is None for w in workers] == [False] * MAX_DELIVERIES + [True]
        assert len(attempts(markers)) == MAX_DELIVERIES
        failure = _crash_failure(rabbit_stack, run_id, q)
        print(f"fault 8: run FAILURE {took:.1f} s after submission ({MAX_DELIVERIES} workers killed and "
              f"restarted; a worker start ~{took / (MAX_DELIVERIES + 1):.0f} s): {failure}")
    finally:
        for w in workers:
            w.stop()


# ---------------------------------------------------------------------------------------------- fault 6
CONSUMER_TIMEOUT_MS = 5000


def test_step_longer_than_consumer_timeout_runs_twice(rabbit_stack, private_rabbit):
    """A private broker restarted with consumer_timeout = 5 s (checked every second). The step is held past
    it: RabbitMQ closes the worker's channel (PRECONDITION_FAILED) and requeues the message, another worker
    runs the step again from the start while the first copy still runs; the first worker then stops with
    an unrecoverable error. With idempotent output the run still succeeds -- but the step ran twice."""
    q = "f6"  # this test's own queue (tests/jobs/faults.py): no other test's messages or consumers
    private_rabbit.stop()
    private_rabbit.configure(consumer_timeout_ms=CONSUMER_TIMEOUT_MS)
    private_rabbit.start()
    try:
        _consumer_timeout_runs_twice(rabbit_stack, q)
    finally:  # the broker as the other tests know it, whatever the order they run in
        private_rabbit.stop()
        private_rabbit.configure(consumer_timeout_ms=None)
        private_rabbit.start()


def _consumer_timeout_runs_twice(rabbit_stack, q: str) -> None:
    with held_run(rabbit_stack, q, ("h", "i")) as (workers, run_id, markers, first):
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
        assert [k for k, step, _ in msgs if step == f"hold_{q}"].count("STEP_SUCCESS") == 2  # it ran twice
        keys = rabbit_stack.output_objects(run_id, f"hold_{q}")
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
    from infra.aws.components.broker import rabbitmq_conf
    from infra.stackfile.config import Broker
    from infra.tools.testing import run_stack

    assert rabbitmq_conf(Broker()) == "consumer_timeout = 7200000\n"  # 120 min in ms
    for minutes in (45, 24 * 60):
        stack = run_stack(config={"queues": [{"name": "dagster"}], "broker": {"consumerTimeoutMinutes": minutes}})
        (cfg,) = stack.of_type("aws:mq/configuration:Configuration")
        assert f"consumer_timeout = {minutes * 60 * 1000}" in cfg.inputs["data"].splitlines()
        (broker,) = stack.of_type("aws:mq/broker:Broker")
        assert broker.inputs["configuration"]["id"]  # the broker uses that configuration



# ---------------------------------------------------------------------------------------------- fault 12
def test_ctrl_c_on_the_runner_lets_a_step_shorter_than_the_grace_finish(tmp_path, s3):
    """Ctrl-C (SIGINT) to a runner that keeps running, while its own worker runs a step: the runner stops
    like ECS stops a task -- SIGTERM to each main process, the stop grace, then the rest -- so the worker
    finishes the step (warm shutdown) and the run succeeds."""
    from infra.local.processes import STOP_GRACE

    with rabbit_vhost("dca-ctrlc") as vhost, postgres_database("dca_ctrlc") as db:
        stack = _start_stack(tmp_path, f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                             f"postgresql://postgres@127.0.0.1:5432/{db}", s3, vhost=vhost)  # fmt: skip
        try:
            run_id, markers = stack.submit("short_job")
            wait_for("the step to start", lambda: attempts(markers), 120)
            (worker_log,) = (stack.runner.state / "logs").glob("worker-dagster*.log")
            t0 = time.monotonic()
            stack.runner.popen.send_signal(signal.SIGINT)
            wait_for("the worker's warm shutdown", lambda: b"Warm shutdown" in worker_log.read_bytes(), 30)
            release(markers)  # the step ends now, well within the grace
            rc = stack.runner.popen.wait(timeout=STOP_GRACE + 30)
            stopped = time.monotonic() - t0
            assert rc == 130, stack.runner.output()[-3000:]
            assert stack.status(run_id) == "SUCCESS", stack.messages(run_id)
            assert ("STEP_SUCCESS", "hold_dagster") in [(k, s) for k, s, _ in stack.messages(run_id)]
            assert len(released(markers)) == 1
            print(f"fault 12: runner exited rc=130 {stopped:.1f} s after Ctrl-C (grace {STOP_GRACE:.0f} s); "
                  f"the step finished, run SUCCESS")
        finally:
            stack.runner.stop()
