"""End-to-end tests of the local runner (``python -m infra.local up``) on this machine.

Real services: RabbitMQ on 127.0.0.1:5672 (guest/guest; each test gets its own vhost through
``rabbitmqctl``), PostgreSQL on 127.0.0.1:5432 (user postgres, trust; each test gets its own database), and
an S3 API server (moto, started by the test on 127.0.0.1). Every wait is a poll with a deadline.
Where a step ran is checked from the run's event records in PostgreSQL, not from the runner's output.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from infra.specs import contract
from tests.conftest import postgres_database, rabbit_vhost, s3_server

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 600  # seconds for one `--once` invocation (start, run, stop) on a 2-core machine
SUBMITTED = re.compile(r'Submitting celery task for step "(?P<step>.+)" to queue "(?P<queue>.+)"\.')
RUN_LINE = re.compile(r"^run (?P<run_id>[0-9a-f-]{36}) \((?P<job>[^)]+)\): (?P<status>[A-Z_]+)", re.M)
EXAMPLE_STEPS = {"seed", "part_0", "part_1", "part_2", "part_3", "join"}






def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_file(tmp_path: Path, queues: list[dict], name: str = "Pulumi.test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"config": {"dagster-celery-aws:queues": queues}}))
    return path


def run_local(tmp_path: Path, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
    argv = [sys.executable, "-m", "infra.local", "up", "--state-dir", str(tmp_path / "state"), "--port", "0", *args]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    print(proc.stdout, proc.stderr)  # shown by pytest when the test fails
    return proc


# ---------------------------------------------------------------------------------------------- services
@pytest.fixture
def rabbit_url():
    with rabbit_vhost("dca-test") as vhost:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


@pytest.fixture
def pg_url():
    with postgres_database("dca_test") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture
def s3():
    """A moto S3 API server on 127.0.0.1 (any free port) and a client for it."""
    with s3_server() as server:
        yield server


def events(db_url: str, run_id: str) -> list:
    """The run's event records, read from PostgreSQL's event_logs table."""
    import psycopg2
    from dagster import EventLogEntry
    from dagster._serdes import deserialize_value

    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT event FROM event_logs WHERE run_id = %s ORDER BY id", (run_id,))
        return [deserialize_value(row[0], EventLogEntry) for row in cur.fetchall()]


def placement(entries) -> dict[str, tuple[str | None, str | None]]:
    """{step: (queue it was published to, Celery node that executed it)} from engine events."""
    out: dict[str, list] = {}
    for e in entries:
        ev = e.dagster_event
        if ev is None or not ev.step_key or ev.event_type_value != "ENGINE_EVENT":
            continue
        row = out.setdefault(ev.step_key, [None, None])
        if m := SUBMITTED.fullmatch(ev.message or ""):
            row[0] = m["queue"]
        metadata = getattr(ev.event_specific_data, "metadata", None) or {}
        if "Celery worker" in metadata:
            row[1] = metadata["Celery worker"].value
    return {k: tuple(v) for k, v in out.items()}


def step_starts(entries) -> dict[str, float]:
    return {e.dagster_event.step_key: e.timestamp for e in entries
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"}  # fmt: skip


def _run_id(proc: subprocess.CompletedProcess, job: str, status: str = "SUCCESS") -> str:
    m = RUN_LINE.search(proc.stdout)
    assert m, "no run line in the output"
    assert (m["job"], m["status"]) == (job, status)
    return m["run_id"]


# ---------------------------------------------------------------------------------------------- tests
def test_real_services_run_succeeds_with_steps_on_their_queues(tmp_path, rabbit_url, pg_url, s3):
    endpoint, client = s3
    bucket = f"dca-{uuid.uuid4().hex[:8]}"
    sf = stack_file(tmp_path, [{"name": "dagster", "concurrency": 2}, {"name": "heavy", "concurrency": 1}])
    proc = run_local(tmp_path, "--once", "--stack-file", str(sf), "--broker-url", rabbit_url,
                     "--database-url", pg_url, "--s3-endpoint", endpoint, "--bucket", bucket)  # fmt: skip
    assert proc.returncode == 0
    run_id = _run_id(proc, "example_job")

    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchone() == ("SUCCESS",)
    entries = events(pg_url, run_id)
    where = placement(entries)
    assert set(where) == EXAMPLE_STEPS
    for step, (queue_name, node) in where.items():
        assert queue_name is not None and node is not None, step
        # Workers are named after the one queue they consume (-q QUEUE -n QUEUE -> QUEUE@host).
        assert node.split("@", 1)[0] == queue_name, (step, queue_name, node)
    assert {q for q, _ in where.values()} == {"dagster", "heavy"}

    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    for step in EXAMPLE_STEPS:
        assert any(k.startswith(f"{contract.IO_PREFIX}/") and f"/{run_id}/{step}/" in k for k in keys), step
    logs = [k for k in keys if k.startswith(f"{contract.COMPUTE_LOGS_PREFIX}/") and run_id in k]
    assert logs, keys
    assert any(client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in logs)  # not all empty


def test_higher_priority_steps_start_first_on_a_busy_worker(tmp_path, rabbit_url, pg_url, s3):
    endpoint, _ = s3
    sf = stack_file(tmp_path, [{"name": "dagster", "concurrency": 1}, {"name": "heavy", "concurrency": 1}])
    proc = run_local(tmp_path, "--once", "--stack-file", str(sf), "--code-module", "tests.jobs.priority",
                     "--job", "priority_job", "--broker-url", rabbit_url, "--database-url", pg_url,
                     "--s3-endpoint", endpoint, "--bucket", "prio")  # fmt: skip
    assert proc.returncode == 0
    entries = events(pg_url, _run_id(proc, "priority_job"))
    where = placement(entries)
    assert all(node.split("@", 1)[0] == q for q, node in where.values()), where
    starts = step_starts(entries)
    highs = [starts[f"high_{i}"] for i in range(3)]
    lows = [starts[f"low_{i}"] for i in range(3)]
    # The lows were sent first (with the blocker) and the highs later, yet every high starts before any low.
    assert max(highs) < min(lows), sorted(starts, key=starts.get)
    assert starts["blocker"] < min(highs)


def test_queue_without_worker_is_reported_before_the_run(tmp_path):
    sf = stack_file(tmp_path, [{"name": "dagster"}])
    proc = run_local(tmp_path, "--once", "--stack-file", str(sf), timeout=180)
    assert proc.returncode == 2
    assert "queue(s) heavy" in proc.stdout and "part_0 -> heavy" in proc.stdout
    assert "submitted run" not in proc.stdout and "processes:" not in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_embedded_default_runs_the_job_end_to_end(tmp_path):
    sf = stack_file(tmp_path, [{"name": "dagster", "concurrency": 2}, {"name": "heavy"}])
    proc = run_local(tmp_path, "--once", "--stack-file", str(sf))
    assert proc.returncode == 0
    _run_id(proc, "example_job")
    assert "broker    embedded filesystem://" in proc.stdout and "embedded moto server" in proc.stdout
    rows = re.findall(r"^  (\S+)\s+(dagster|heavy)\s+(\S+)\s+[\d.]+ s\s+SUCCESS$", proc.stdout, re.M)
    assert {step for step, _, _ in rows} == EXAMPLE_STEPS
    assert all(node.split("@", 1)[0] == q for _, q, node in rows), rows
    assert "placement:" not in proc.stdout
    state = tmp_path / "state"
    for name in ("webserver", "daemon", "worker-dagster", "worker-heavy"):
        assert (state / "logs" / f"{name}.log").stat().st_size > 0, name
    instance_cfg = yaml.safe_load((state / "dagster_home" / "dagster.yaml").read_text())
    # The image's launcher section, unchanged (the runner's DCA_RUNS_MODE=daemon makes it DaemonRunLauncher,
    # Dagster's DefaultRunLauncher with a run worker health check: tests/test_runtime_files.py).
    assert instance_cfg["run_launcher"] == yaml.safe_load((REPO_ROOT / "worker_image" / "dagster.yaml").read_text())["run_launcher"]
    assert "sqlite" in instance_cfg["storage"]


def test_invalid_stack_file_is_a_clear_error(tmp_path):
    sf = stack_file(tmp_path, [{"name": "dagster", "maxWorker": 3}, {"name": "heavy", "minWorkers": -1}])
    proc = run_local(tmp_path, "--once", "--stack-file", str(sf), timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.startswith("error: ")
    assert "queues[0].maxWorker" in proc.stdout and "queues[1].minWorkers" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    missing = run_local(tmp_path, "--once", "--stack-file", str(tmp_path / "nope.yaml"), timeout=120)
    assert missing.returncode == 2 and "cannot read the stack file" in missing.stdout


@pytest.mark.parametrize("problem", ["port", "broker", "database", "s3"])
def test_unusable_port_or_service_is_a_clear_error(tmp_path, problem):
    sf = stack_file(tmp_path, [{"name": "dagster"}, {"name": "heavy"}])
    closed = _free_port()  # nothing listens there
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = {
            "port": ["--port", str(busy.getsockname()[1])],
            "broker": ["--broker-url", f"amqp://guest:guest@127.0.0.1:{closed}//"],
            "database": ["--database-url", f"postgresql://postgres@127.0.0.1:{closed}/x"],
            "s3": ["--s3-endpoint", f"http://127.0.0.1:{closed}"],
        }[problem]
        started = time.monotonic()
        proc = run_local(tmp_path, "--once", "--stack-file", str(sf), *args, timeout=120)
    assert proc.returncode == 2
    assert time.monotonic() - started < 60
    expected = {"port": "already in use", "broker": "broker at", "database": "database at", "s3": "S3 endpoint"}
    assert expected[problem] in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    assert "processes:" not in proc.stdout


def _group_members(groups: set[int]) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) in groups and fields[0] != "Z":
                out.add(int(entry))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process groups from /proc")
def test_sigterm_stops_every_process(tmp_path):
    sf = stack_file(tmp_path, [{"name": "dagster"}, {"name": "heavy"}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCA_")}
    argv = [sys.executable, "-m", "infra.local", "up", "--stack-file", str(sf),
            "--state-dir", str(tmp_path / "state"), "--port", "0"]  # fmt: skip
    runner = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in runner.stdout], daemon=True).start()
    seen, pids = [], set()
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not any(line.startswith("running; Ctrl-C") for line in seen):
            assert time.monotonic() < deadline and runner.poll() is None, "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            if m := re.match(r"^\s+\S+\s+pid (\d+)\s+running", seen[-1]):
                pids.add(int(m[1]))
        assert len(pids) == 4, "".join(seen)  # webserver, daemon, two workers
        assert _group_members(pids), "children should be running now"
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=120) == 130
    finally:
        if runner.poll() is None:
            runner.kill()
    assert _group_members(pids) == set()
