"""Done when (issue 24): an ordinary asset project, from a directory outside the repository, runs through the
local runner on RabbitMQ + PostgreSQL + an S3 API server, launched through the webserver's GraphQL exactly as
the UI launches it: Materialize of a selection, one partition, a two-partition backfill and the asset job.

The project has assets with dependencies in groups, a daily-partitioned pair, an asset check, a schedule, a
sensor, and resources configured with ``EnvVar`` from a variable and a secret granted to the ``ml`` queue only.
Every run must succeed with every step on its queue (read from the event records in PostgreSQL), the secret's
value must reach the ``ml`` workers only (their step proves it had it; every other process's environment holds
a placeholder), and a step of another queue that uses the ``ml`` resource fails naming the variable and queue.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import yaml

from infra.local import graphql
from tests.conftest import REPO_ROOT, postgres_database, rabbit_vhost, s3_server, wait_for
from tests.faults_support import Runner
from tests.test_local_e2e import events, placement

DEADLINE = 900  # seconds for the runner's start and first run, and for each launch, on a loaded 2-core machine
SECRET = "s3cr3t-only-for-ml"
MODEL_URI = "s3://models/churn"
LOCATION = "shop"

PROJECT = '''
import hashlib
import os

from celery import current_task
from dagster import (AssetCheckResult, AssetExecutionContext, AssetSelection, ConfigurableResource,
                     DailyPartitionsDefinition, Definitions, EnvVar, ScheduleDefinition, SkipReason, asset,
                     asset_check, define_asset_job, sensor)
from dagster_celery_aws import celery_executor, deployment_resources

Q = "dagster-celery/queue"
daily = DailyPartitionsDefinition(start_date="2026-01-01")


class ModelStore(ConfigurableResource):
    uri: str
    api_key: str


def where():
    return current_task.request.hostname


@asset(group_name="ingest")
def raw_orders(context: AssetExecutionContext) -> list[int]:
    context.add_output_metadata({"worker": where()})
    return [3, 5, 8]


@asset(group_name="ingest", op_tags={Q: "dagster"})
def clean_orders(raw_orders: list[int]) -> list[int]:
    return [x for x in raw_orders if x > 0]


@asset_check(asset=clean_orders)
def no_negative_orders(clean_orders: list[int]) -> AssetCheckResult:
    return AssetCheckResult(passed=all(x > 0 for x in clean_orders))


@asset(group_name="ml", op_tags={Q: "ml"})
def churn_model(context: AssetExecutionContext, model_store: ModelStore, clean_orders: list[int]) -> dict:
    context.add_output_metadata({"worker": where(), "model_uri": model_store.uri,
                                 "api_key_sha256": hashlib.sha256(model_store.api_key.encode()).hexdigest()})
    return {"weights": sum(clean_orders)}


@asset(group_name="daily", partitions_def=daily)
def daily_orders(context: AssetExecutionContext) -> list[int]:
    return [len(context.partition_key)]


@asset(group_name="daily", partitions_def=daily, op_tags={Q: "ml"})
def daily_scores(context: AssetExecutionContext, model_store: ModelStore, daily_orders: list[int]) -> int:
    assert model_store.api_key and not model_store.api_key.startswith("[not granted")
    context.add_output_metadata({"worker": where()})
    return sum(daily_orders)


@asset(group_name="leaky", op_tags={Q: "dagster"})
def leaky_report(model_store: ModelStore) -> str:
    return model_store.api_key  # must never run: the dagster queue is not granted the key


shop_job = define_asset_job("shop_job", selection=AssetSelection.groups("ingest", "ml"))
nightly = ScheduleDefinition(job=shop_job, cron_schedule="0 3 * * *")


@sensor(job=shop_job, minimum_interval_seconds=3600)
def new_orders():
    return SkipReason("no new orders")


defs = Definitions(
    assets=[raw_orders, clean_orders, churn_model, daily_orders, daily_scores, leaky_report],
    asset_checks=[no_negative_orders],
    jobs=[shop_job],
    schedules=[nightly],
    sensors=[new_orders],
    resources={**deployment_resources(),
               "model_store": ModelStore(uri=EnvVar("ML_MODEL_URI"), api_key=EnvVar("ML_API_KEY"))},
    executor=celery_executor,
)
'''
QUEUES = {"raw_orders": "dagster", "clean_orders": "dagster", "clean_orders_no_negative_orders": "dagster",
          "churn_model": "ml", "daily_orders": "dagster", "daily_scores": "ml"}  # fmt: skip


@pytest.fixture
def services():
    with rabbit_vhost("dca-assets") as vhost, postgres_database("dca_assets") as db, s3_server() as (endpoint, _):
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}", f"postgresql://postgres@127.0.0.1:5432/{db}", endpoint


def _tree(root: int) -> set[int]:
    """``root`` and its descendants, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in found]
        found.update(children)
        todo.extend(children)
    return found


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _wait_run(db_url: str, run_id: str) -> str:
    import psycopg2

    def ended():
        with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            row = cur.fetchone()
        return row[0] if row and row[0] in ("SUCCESS", "FAILURE", "CANCELED") else None

    return wait_for(f"run {run_id} to end", ended, DEADLINE, interval=1)


def _on_their_queues(db_url: str, run_id: str) -> dict[str, str]:
    """{step: queue} of the run, after checking each step ran on a worker of the queue it was sent to."""
    where = placement(events(db_url, run_id))
    assert where, run_id
    for step, (queue_name, node) in where.items():
        assert queue_name == QUEUES[step], (run_id, step, queue_name)
        assert node is not None and node.split("@", 1)[0] == queue_name, (run_id, step, node)
    return {step: q for step, (q, _) in where.items()}


def _materializations(db_url: str, run_id: str) -> dict[str, dict]:
    out = {}
    for entry in events(db_url, run_id):
        ev = entry.dagster_event
        if ev is not None and ev.event_type_value == "ASSET_MATERIALIZATION":
            m = ev.event_specific_data.materialization
            out[m.asset_key.to_user_string() + (f"[{m.partition}]" if m.partition else "")] = {
                k: v.value for k, v in m.metadata.items()}  # fmt: skip
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process environments from /proc")
def test_an_asset_project_runs_from_the_ui_on_its_queues(tmp_path_factory, services):
    broker, db_url, endpoint = services
    project = tmp_path_factory.mktemp("elsewhere") / "shop"  # outside the repository
    project.mkdir()
    (project / "shop.py").write_text(PROJECT)
    assert not project.resolve().is_relative_to(REPO_ROOT)
    work = tmp_path_factory.mktemp("runner")
    stack = work / "Pulumi.assets.yaml"
    stack.write_text(yaml.safe_dump({"config": {
        "dagster-celery-aws:codeLocations": [{"name": LOCATION, "path": str(project), "module": "shop"}],
        "dagster-celery-aws:queues": [
            {"name": "dagster", "concurrency": 2},
            {"name": "ml", "access": {
                "environment": {"ML_MODEL_URI": MODEL_URI},
                "secrets": {"ML_API_KEY": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ml-api-key-AbCdEf"}}},
        ],
    }}))  # fmt: skip
    # The secret's value: on AWS an ECS secret; locally the runner passes it on from its shell.
    runner = Runner(work / "state", ["--stack-file", str(stack), "--job", "shop_job", "--broker-url", broker,
                                     "--database-url", db_url, "--s3-endpoint", endpoint, "--bucket", "shop"],
                    env={"ML_API_KEY": SECRET})  # fmt: skip
    try:
        runner.wait_running(DEADLINE)
        out = runner.output()
        print(out)
        port = runner.port
        pids = {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\S+)\s+pid (\d+)\s+running", out, re.M)}
        assert set(pids) == {"webserver", "daemon", "worker-dagster", "worker-ml"}, out
        # 1. The asset job, launched by the runner through GraphQL (launchPipelineExecution), as the Launchpad does.
        job_run = re.search(r"^run (\S+) \(shop_job\): SUCCESS", out, re.M)
        assert job_run, out
        runs = {"asset job": job_run[1]}

        # 2. Materialize of a selection (with the selected asset's check), 3. one partition: the UI's mutations.
        runs["materialize"] = graphql.launch_run(port, LOCATION, assets=["raw_orders", "clean_orders", "churn_model"],
                                                 checks=["clean_orders:no_negative_orders"])  # fmt: skip
        runs["partition"] = graphql.launch_run(port, LOCATION, assets=["daily_orders", "daily_scores"],
                                               partition="2026-01-02")  # fmt: skip
        # 4. A two-partition backfill (launchPartitionBackfill), run by the daemon's backfill loop.
        backfill = graphql.launch_backfill(port, ["daily_orders", "daily_scores"], ["2026-01-03", "2026-01-04"])
        # And a step of the dagster queue that uses the ml-only resource.
        leaky = graphql.launch_run(port, LOCATION, assets=["leaky_report"])

        statuses = {name: _wait_run(db_url, run_id) for name, run_id in runs.items()}

        def backfill_done():
            status, backfill_runs = graphql.backfill_status(port, backfill)
            ended = backfill_runs and all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in backfill_runs.values())
            return (status, backfill_runs) if status != "REQUESTED" and ended else None

        status, backfill_runs = wait_for(f"backfill {backfill} to end", backfill_done, DEADLINE, interval=2)
        print("runs:", statuses, "backfill:", backfill, status, backfill_runs)
        assert statuses == dict.fromkeys(runs, "SUCCESS")
        assert status.startswith("COMPLETED") and len(backfill_runs) == 2
        assert set(backfill_runs.values()) == {"SUCCESS"}

        # Every step on its queue, in every run.
        unpartitioned = {"raw_orders", "clean_orders", "clean_orders_no_negative_orders", "churn_model"}
        assert set(_on_their_queues(db_url, runs["asset job"])) == unpartitioned  # the job has its assets' checks
        assert set(_on_their_queues(db_url, runs["materialize"])) == unpartitioned
        assert set(_on_their_queues(db_url, runs["partition"])) == {"daily_orders", "daily_scores"}
        done = {}
        for run_id in backfill_runs:
            assert set(_on_their_queues(db_url, run_id)) == {"daily_orders", "daily_scores"}
            done |= _materializations(db_url, run_id)
        assert set(done) == {f"{a}[2026-01-0{d}]" for a in ("daily_orders", "daily_scores") for d in (3, 4)}
        assert {"daily_orders[2026-01-02]", "daily_scores[2026-01-02]"} <= set(_materializations(db_url, runs["partition"]))

        # The ml workers had the variable and the secret (their step hashed the key it was given) ...
        model = _materializations(db_url, runs["materialize"])["churn_model"]
        assert model["model_uri"] == MODEL_URI and model["worker"].startswith("ml@")
        assert model["api_key_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()
        # ... and no other process had them: each holds a placeholder that names the queue.
        for name, pid in pids.items():
            tree = _tree(pid)
            assert len(tree) > (1 if name.startswith("worker") else 0), name
            for p in tree:
                environ = _environ(p)
                if not environ:
                    continue
                if name == "worker-ml":
                    assert environ.get("ML_API_KEY") == SECRET and environ.get("ML_MODEL_URI") == MODEL_URI, p
                else:
                    assert SECRET not in "\0".join(f"{k}={v}" for k, v in environ.items()), (name, p)
                    assert environ["ML_API_KEY"] == "[not granted here: ML_API_KEY is for queue(s) ml only]", (name, p)

        # The dagster queue's step that uses the ml resource failed before it ran, saying why.
        assert _wait_run(db_url, leaky) == "FAILURE"
        failures = [e.dagster_event.step_failure_data.error.message for e in events(db_url, leaky)
                    if e.dagster_event and e.dagster_event.event_type_value == "STEP_FAILURE"]  # fmt: skip
        assert len(failures) == 1 and "'leaky_report' runs on queue 'dagster'" in failures[0], failures
        assert "reads ML_API_KEY: the stack grants ML_API_KEY only to queue(s) ml" in failures[0]
        assert not any(e.dagster_event and e.dagster_event.event_type_value == "STEP_START" for e in events(db_url, leaky))
    finally:
        runner.stop()


def test_the_ui_mutations_are_valid_against_the_webservers_schema():
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema().graphql_schema
    for text in (graphql.LAUNCH_RUN, graphql.LAUNCH_BACKFILL, graphql.BACKFILL):
        assert [e.message for e in validate(schema, parse(text))] == [], text
