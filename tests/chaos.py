"""Runs in flight through the local runner while the broker's and the database's connections are cut: what
clients see of an Amazon MQ broker reboot or an RDS Multi-AZ failover (docs/reliability.md, "Outage bounds").

``chaos(...)`` starts the runner (``python -m infra.local up``: webserver, daemon, workers on queues ``dagster``
and ``heavy``) on RabbitMQ 127.0.0.1:5672 and PostgreSQL 127.0.0.1:5432 -- a vhost and a database of its own --
each reached through a ``FaultProxy``, and an S3 API server. It launches ``runs`` runs of ``example_job`` at once
through the webserver's GraphQL as the UI does, waits ``cut_at`` seconds (at least until a run has
started), then for each service of ``cuts`` in
turn resets every connection to it and refuses new ones for ``cut_seconds``. Right after the database is back it
asks the webserver for the runs (a UI request: it must not fail on a pooled connection the database closed).
It returns each run's end and the time from the launch until the last run ended. Used by tests/test_chaos.py
(cheap) and benchmarks/chaos.py (the issue's table).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infra.local import graphql, launch
from tests.conftest import REPO_ROOT, postgres_database, rabbit_vhost, s3_server, wait_for
from tests.fault_proxy import FaultProxy
from tests.faults_support import Runner

JOB = "example_job"  # dagster_project: seed on queue dagster, four parts on heavy, a join on dagster
ENDED = ("SUCCESS", "FAILURE", "CANCELED")
SERVICES = {"broker": 5672, "database": 5432}
RUNS = """query { runsOrError(limit: 100) { __typename ... on Runs { results { runId status } }
                                           ... on PythonError { message } } }"""


@dataclass
class Outcome:
    statuses: dict[str, str]  # run id -> its end
    seconds: float  # from the launch until the last run ended
    ui_after_database: str | None = None  # the webserver's answer's type right after the database came back
    cut_at: dict[str, float] = field(default_factory=dict)  # service -> seconds after the launch
    failures: dict[str, list[str]] = field(default_factory=dict)  # run id -> its failure events' messages

    @property
    def succeeded(self) -> int:
        return sum(s == "SUCCESS" for s in self.statuses.values())


def _stack_file(path: Path) -> Path:
    queues = [{"name": "dagster", "concurrency": 2}, {"name": "heavy", "concurrency": 2}]
    path.write_text(yaml.safe_dump({"config": {"dagster-celery-aws:queues": queues}}))
    return path


def _statuses(db: str, run_ids: list[str]) -> dict[str, str]:
    import psycopg2

    with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db)) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (run_ids,))
            return dict(cur.fetchall())


def _failure_messages(db: str, run_id: str) -> list[str]:
    """The run's failure events (run and step failures, engine errors), each as its message and error."""
    import psycopg2
    from dagster._serdes import deserialize_value

    with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db)) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT event FROM event_logs WHERE run_id = %s ORDER BY id", (run_id,))
            entries = [deserialize_value(row[0]) for (row) in cur.fetchall()]
    out = []
    for entry in entries:
        ev = entry.dagster_event
        if ev is not None and ev.event_type_value in ("RUN_FAILURE", "STEP_FAILURE", "ENGINE_EVENT") and (
                ev.event_type_value != "ENGINE_EVENT" or getattr(ev.event_specific_data, "error", None)):  # fmt: skip
            error = getattr(ev.event_specific_data, "error", None)
            out.append(f"{ev.event_type_value} {ev.step_key or ''}: {ev.message} {error.to_string() if error else ''}")
    return out


def ui_runs(port: int) -> str:
    """The UI's runs list (a GraphQL query through the webserver): its answer's type, or the error."""
    try:
        return graphql.query(port, RUNS, {})["runsOrError"]["__typename"]
    except Exception as err:  # noqa: BLE001 - the answer is what is reported
        return f"{type(err).__name__}: {err}"


def chaos(root: Path, runs: int, cuts: tuple[str, ...], cut_seconds: float, cut_at: float, deadline: float = 900,
          repo: Path = REPO_ROOT, env: dict[str, str] | None = None) -> Outcome:  # fmt: skip
    """The scenario of the module docstring; ``repo``/``env``: the tree whose runner runs (the benchmark's
    "before")."""
    with rabbit_vhost("dca-chaos") as vhost, postgres_database("dca_chaos") as db, s3_server() as (endpoint, _):
        proxies = {name: FaultProxy(port) for name, port in SERVICES.items()}
        runner = Runner(root / "state", [
            "--stack-file", str(_stack_file(root / "Pulumi.chaos.yaml")), "--job", JOB,
            "--broker-url", f"amqp://guest:guest@127.0.0.1:{proxies['broker'].port}/{vhost}",
            "--database-url", f"postgresql://postgres@127.0.0.1:{proxies['database'].port}/{db}",
            "--s3-endpoint", endpoint, "--bucket", f"chaos-{uuid.uuid4().hex[:8]}"], env=env, cwd=repo)  # fmt: skip
        try:
            runner.wait_running(deadline)
            port = runner.port
            location = launch.find_location(port, JOB)
            start = time.monotonic()
            run_ids = [graphql.launch_run(port, location, JOB) for _ in range(runs)]
            outcome = Outcome({}, 0.0)

            def started():
                return set(_statuses(db, run_ids).values()) - {"QUEUED", "NOT_STARTED", "STARTING"}

            wait_for("a run to start", started, deadline, interval=0.2)  # the cut finds runs in flight
            time.sleep(max(0.0, cut_at - (time.monotonic() - start)))  # when the fault strikes: the scenario's
            for name in cuts:
                outcome.cut_at[name] = round(time.monotonic() - start, 1)
                proxies[name].cut()
                back = threading.Timer(cut_seconds, proxies[name].restore)  # the outage's length
                back.start()
                back.join()
                if name == "database":
                    outcome.ui_after_database = ui_runs(port)

            def ended():
                found = _statuses(db, run_ids)
                return found if len(found) == runs and set(found.values()) <= set(ENDED) else None

            outcome.statuses = wait_for(f"{runs} runs to end", ended, deadline, interval=0.5)
            outcome.seconds = round(time.monotonic() - start, 1)
            outcome.failures = {r: _failure_messages(db, r) for r, s in outcome.statuses.items() if s != "SUCCESS"}
            return outcome
        finally:
            runner.stop()
            for proxy in proxies.values():
                proxy.close()
