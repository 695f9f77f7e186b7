"""The workers' ``execute_plan`` task (dagster_celery_aws.fast_task) and the code location's executor and S3
resources (dagster_celery_aws.executor, dagster_celery_aws.s3).

- the worker app (``celery -A dagster_celery.app worker`` with the runtime's dagster_celery_config) runs
  our task under the stock name, with late acks and reject-on-worker-lost unchanged;
- the task takes the stock executor's message (dagster_celery.executor._submit_task's arguments), returns
  the same events as the stock task, keeps one instance per process on pooled connections, and survives
  PostgreSQL dropping those connections (real PostgreSQL on 127.0.0.1:5432, a private database; moto S3);
  a pooled connection is pinged only when PostgreSQL has sent something on it;
- a redelivered step that its task already started ``DCA_MAX_DELIVERIES`` times fails without running,
  naming the step, the queue and the likely cause; a step of a run that has ended is not run;
- the S3 client is reused; the code location's executor is dagster-celery's, and tunes the run worker
  (pooled connections, the poll interval, one result query per poll); it is interrupted when its run is
  ended elsewhere (its revoke: tests/test_executor.py);
- a stored result is noticed by its run's run worker (PostgreSQL NOTIFY after the result is stored), which
  wakes its loop and reads the task without the batch query, and waits only briefly with nothing in flight;
- the workers store a finished step's result and its notice in one statement: the row Celery stores, never
  over a SUCCESS, notified only once stored, retried as Celery retries; the store and the run worker's reads
  are one round trip each (counted on the wire), and a connection the database closed is still replaced;
- a step's plan is the stock plan for that step and its known state, built from the run's whole plan made
  once per process and run (jobs with dynamic outputs keep the stock path);
- a step stores the same events in the same order in fewer statements (set-up and end held back), while
  user code (tests/jobs/events.py) always finds the events before it stored; failing steps store all theirs;
  any event is one statement (insert and notify), an asset event then writes its asset tables; held events
  stay in their thread and process and are written when the block ends, also when it raises.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

from tests.conftest import postgres_database, s3_server, wait_for

# A step as the Celery loop hands it to the executor's send: an op of no mapping (its queue is the one given).
STEP = types.SimpleNamespace(key="step", tags={}, get_mapping_key=lambda: None)

REPO_ROOT = Path(__file__).resolve().parents[1]






# ------------------------------------------------------------------------------ registration on the worker app
def test_worker_app_runs_the_fast_task_with_the_same_delivery_settings(tmp_path):
    """In a fresh process, as a worker starts: import the app, then Celery's `imports` (worker start-up); in any
    directory, with nothing on the import path but the installed runtime."""
    code = (
        "from dagster_celery.app import app\n"
        "stock = app.tasks['execute_plan']\n"
        "print('before', stock.run.__module__)\n"
        "app.loader.import_default_modules()\n"
        "import threading, celery.signals\n"
        "from dagster_celery_aws import compute_logs\n"
        "release, uploaded = threading.Event(), []\n"
        "threading.Timer(0.3, release.set).start()\n"
        "compute_logs._defer(lambda: release.wait(60) and uploaded.append('log'))\n"
        "celery.signals.worker_process_shutdown.send(sender=None, pid=0, exitcode=0)\n"  # a pool process exits
        "print('exit', uploaded)\n"
        "t = app.tasks['execute_plan']\n"
        "print('after', t.run.__module__, t.name, t.acks_late, t.reject_on_worker_lost, "
        "app.conf.worker_prefetch_multiplier, sorted(n for n in app.tasks if not n.startswith('celery.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_CELERY_CONFIG")}
    from infra.specs import contract

    env.update({
        contract.BROKER_URL: "amqp://guest:guest@127.0.0.1:5672//",
        contract.BACKEND_URL: "db+sqlite:///:memory:",
    })
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("before", "after", "exit")))
    assert lines["before"] == "dagster_celery.tasks"
    assert lines["exit"] == "['log']"  # the exiting pool process waited for the compute-log upload still going
    module, name, acks_late, reject, prefetch, names = lines["after"].split(" ", 5)
    assert (module, name) == ("dagster_celery_aws.fast_task", "execute_plan")
    assert (acks_late, reject, prefetch) == ("True", "True", "1")
    assert names == "['execute_job', 'execute_plan', 'resume_job']"


def test_install_replaces_the_task_on_any_app():
    from celery import Celery

    from dagster_celery_aws import fast_task

    app = Celery("t", set_as_current=False)
    app.conf.task_acks_late = True
    app.conf.task_reject_on_worker_lost = True

    @app.task(name="execute_plan", bind=True, shared=False)
    def stock(self, execute_step_args_packed, executable_dict):  # pragma: no cover - replaced
        return []

    task = fast_task.install(app)
    assert app.tasks["execute_plan"] is task and task.run.__module__ == "dagster_celery_aws.fast_task"
    assert task.acks_late and task.reject_on_worker_lost
    params = list(inspect.signature(task.run).parameters)
    assert params == list(inspect.signature(stock.run).parameters)[-2:] or params[-2:] == [
        "execute_step_args_packed", "executable_dict"
    ]  # fmt: skip


# ------------------------------------------------------------------------------ the task on real PostgreSQL
@pytest.fixture
def pg_url():
    with postgres_database("dca_fast") as name:
        yield name


@pytest.fixture
def step_env(pg_url, tmp_path, monkeypatch):
    """DAGSTER_HOME with the image's dagster.yaml (Postgres, S3 compute logs), a moto S3 server, the contract
    environment; yields (instance, a function that builds the executor's message for a step)."""
    from infra.specs import contract
    from infra.local import runtime_files

    stack = contextlib.ExitStack()
    endpoint, s3 = stack.enter_context(s3_server())
    s3.create_bucket(Bucket="fast")
    env = {
        "DAGSTER_HOME": str(tmp_path), contract.PG_HOST: "127.0.0.1", contract.PG_PORT: "5432",
        contract.PG_DB: pg_url, contract.PG_USERNAME: "postgres", contract.PG_PASSWORD: "",
        contract.S3_BUCKET: "fast",
        contract.BROKER_URL: "amqp://guest:guest@127.0.0.1:5672//",
        contract.BACKEND_URL: f"db+sqlite:///{tmp_path / 'results.sqlite'}",
        "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local", contract.REGION: "us-east-1",
    }  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DAGSTER_CELERY_CONFIG", raising=False)
    import yaml

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(runtime_files.instance_config(None)))

    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        yield instance, messages_of_a_run(instance, "benchmarks.jobs", "bench_fan40_celery")
    finally:
        from dagster_celery_aws import fast_task

        for inst in fast_task._instances.values():
            inst.dispose()
        fast_task._instances.clear()
        fast_task.run_for.cache_clear()
        instance.dispose()
        stack.close()


def messages_of_a_run(instance, module: str, job_name: str):
    """A new run of the job (``module``'s ``defs``); returns a function that builds the executor's message for
    one of its steps."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.retries import RetryMode
    from dagster._grpc.types import ExecuteStepArgs
    from dagster._serdes import pack_value

    recon = ReconstructableRepository.for_module(module, "defs", working_directory=str(REPO_ROOT))
    job = recon.get_reconstructable_job(job_name)
    run = instance.create_run_for_job(job_def=job.get_definition(), execution_plan=create_execution_plan(job), run_config={})

    def message(step_key: str) -> dict:
        args = ExecuteStepArgs(
            job_origin=job.get_python_origin(), run_id=run.run_id, step_keys_to_execute=[step_key],
            instance_ref=instance.get_ref(), retry_mode=RetryMode.DISABLED, known_state=None,
            print_serialized_events=True,
        )  # fmt: skip
        return {"execute_step_args_packed": pack_value(args), "executable_dict": job.to_dict()}

    message.run_id = run.run_id
    return message


def _event_types(result) -> list[str]:
    from dagster import DagsterEvent
    from dagster._serdes import deserialize_value

    assert result.successful(), result.traceback
    return [deserialize_value(e, DagsterEvent).event_type_value for e in result.result]


def test_fast_task_returns_the_stock_events_and_keeps_one_pooled_instance(step_env):
    from celery import Celery
    from dagster_celery.tasks import create_task
    from sqlalchemy.pool import QueuePool

    from dagster_celery_aws import fast_task

    instance, message = step_env
    app = Celery("t", set_as_current=False)
    stock = create_task(app)
    stock_types = _event_types(stock.apply(kwargs=message("step_0"), throw=True))

    ours = fast_task.install(Celery("u", set_as_current=False))
    first = _event_types(ours.apply(kwargs=message("step_1"), throw=True))
    second = _event_types(ours.apply(kwargs=message("step_2"), throw=True))
    assert first == second == stock_types
    assert stock_types[0] == "ENGINE_EVENT" and "STEP_START" in stock_types and stock_types[-1] == "STEP_SUCCESS"

    assert len(fast_task._instances) == 1
    (cached,) = fast_task._instances.values()
    engines = fast_task._postgres_engines(cached)
    assert engines and all(isinstance(e.pool, QueuePool) for e in engines)
    # The steps' outputs and their worker engine events are where the stock task puts them.
    run_id = instance.get_runs()[0].run_id
    keys = {e.step_key for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"}
    assert keys == {"step_0", "step_1", "step_2"}


def _delivery(task_id: str, redelivered: bool, queue: str = "dagster"):
    """What ``execute_plan`` reads of its bound task: the request of one delivery of a Celery message."""
    from types import SimpleNamespace

    info = {"exchange": "", "routing_key": queue, "priority": 5, "redelivered": redelivered}
    return SimpleNamespace(request=SimpleNamespace(id=task_id, hostname=f"{queue}@test", delivery_info=info))


def _step_events(instance, run_id: str, step_key: str) -> list[str]:
    return [e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.step_key == step_key and e.dagster_event]


def test_a_step_is_started_at_most_max_deliveries_times(step_env, monkeypatch):
    """Deliveries of one message (one task id) that started the step are counted in the run's event log, so
    the count survives the worker; past the bound the step fails without running. The first delivery of a
    message is never counted (no query), and another message (a Dagster retry) has a count of its own."""
    from dagster import DagsterEvent
    from dagster._serdes import deserialize_value

    from dagster_celery_aws import fast_task

    instance, message = step_env
    monkeypatch.setenv("DCA_MAX_DELIVERIES", "2")
    run_id = instance.get_runs()[0].run_id
    counted = []
    starts_of = fast_task.starts_of
    monkeypatch.setattr(fast_task, "starts_of", lambda *a: counted.append(a[2]) or starts_of(*a))

    def deliver(task_id: str, redelivered: bool) -> list:
        events = fast_task.execute_plan(_delivery(task_id, redelivered, "heavy"), **message("step_5"))
        return [deserialize_value(e, DagsterEvent) for e in events]

    assert deliver("t1", False)[-1].event_type_value == "STEP_SUCCESS" and counted == []
    assert deliver("t1", True)[-1].event_type_value == "STEP_SUCCESS" and counted == ["t1"]  # 1 start < 2
    (failure,) = deliver("t1", True)  # 2 starts: not a third
    assert failure.event_type_value == "STEP_FAILURE" and failure.step_key == "step_5"
    text = failure.step_failure_data.error.message
    for part in ('step "step_5"', "started 2 times", 'queue "heavy"', "broker.maxDeliveries = 2", "out of memory"):
        assert part in text, text
    stored = _step_events(instance, run_id, "step_5")
    assert stored.count("STEP_START") == 2 and stored[-1] == "STEP_FAILURE"  # in the run's log, as returned
    assert deliver("t2", True)[-1].event_type_value == "STEP_SUCCESS"  # another task id: counted alone


def test_a_step_of_an_ended_run_is_not_run(step_env):
    """A message that outlived its run (failed, canceled, being canceled) is acknowledged without running the
    step: no events. The run record cached by ``run_for`` does not hide the new status."""
    from dagster import DagsterRunStatus

    from dagster_celery_aws import fast_task

    instance, message = step_env
    run = instance.get_runs()[0]
    assert fast_task.execute_plan(_delivery("a", False), **message("step_6"))  # caches the run record
    instance.report_run_canceling(run)
    assert fast_task.execute_plan(_delivery("b", False), **message("step_7")) == []
    instance.report_run_failed(instance.get_run_by_id(run.run_id))
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert fast_task.execute_plan(_delivery("c", True), **message("step_8")) == []
    assert _step_events(instance, run.run_id, "step_7") == _step_events(instance, run.run_id, "step_8") == []


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_the_run_ended_check_agrees_with_dagsters_query_for_every_status(storage, tmp_path):
    """``run_has_ended``'s own statement answers as ``get_run_ids`` with the same filter would, on both SQL run
    storages (the local runner's SQLite, the stack's PostgreSQL): for a run in each status, and a run that
    does not exist."""
    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
    from dagster._core.storage.runs.schema import RunsTable

    from dagster_celery_aws import fast_task

    with contextlib.ExitStack() as stack:
        if storage == "sqlite":
            (tmp_path / "dagster.yaml").write_text("")
        else:
            db = stack.enter_context(postgres_database("dca_ended"))
            (tmp_path / "dagster.yaml").write_text(
                f"storage:\n  postgres:\n    postgres_url: postgresql+psycopg2://postgres@127.0.0.1:5432/{db}\n"
            )
        instance = stack.enter_context(DagsterInstance.from_config(str(tmp_path)))
        assert type(instance.run_storage).__name__ == ("SqliteRunStorage" if storage == "sqlite" else "PostgresRunStorage")
        statuses = list(DagsterRunStatus)
        assert len(statuses) > 5
        for status in statuses:
            run = instance.add_run(DagsterRun(job_name="j", run_id=f"run-{status.value.lower()}"))
            with instance.run_storage.connect() as conn:  # the status column, as the run's events set it
                conn.execute(RunsTable.update().where(RunsTable.c.run_id == run.run_id).values(status=status.value))
                conn.commit()
            for asked in (fast_task.RUN_ENDED, fast_task.FINISHED_STATUSES):
                stock = bool(instance.get_run_ids(RunsFilter(run_ids=[run.run_id], statuses=list(asked)), limit=1))
                assert fast_task.run_has_ended(instance, run.run_id, asked) is stock == (status in asked), status
        assert fast_task.run_has_ended(instance, "no-such-run") is False


def test_max_deliveries_setting():
    from dagster_celery_aws.fast_task import MAX_DELIVERIES, max_deliveries

    assert max_deliveries({}) == MAX_DELIVERIES == 3  # broker.maxDeliveries' default
    assert max_deliveries({"DCA_MAX_DELIVERIES": "5"}) == 5
    assert max_deliveries({"DCA_MAX_DELIVERIES": "0"}) == 1
    assert max_deliveries({"DCA_MAX_DELIVERIES": "many"}) == MAX_DELIVERIES


def test_dropped_database_connections_are_replaced(step_env, pg_url):
    import psycopg2
    from celery import Celery

    from dagster_celery_aws import fast_task

    _, message = step_env
    task = fast_task.install(Celery("v", set_as_current=False))
    _event_types(task.apply(kwargs=message("step_3"), throw=True))
    with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres") as admin:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (pg_url,),
            )
            assert cur.rowcount >= 1  # the pool held at least one connection
            terminated = [pid for pid, _ in cur.fetchall()]

    # pg_terminate_backend only signals the backends: wait until they are gone (a backend still exiting has not
    # yet sent the FATAL message that the checkout check looks for). A new connection per look: a session's
    # view of pg_stat_activity can be a snapshot.
    def gone() -> bool:
        with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres") as look:
            with look.cursor() as c:
                c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (terminated,))
                return c.fetchone()[0] == 0

    wait_for("the terminated backends to exit", gone)
    assert "STEP_SUCCESS" in _event_types(task.apply(kwargs=message("step_4"), throw=True))


def test_pooled_connections_are_pinged_only_when_postgresql_has_spoken(pg_url):
    """The checkout check: an idle live connection is used without a round trip; one with something to read
    is pinged, and used if it answers (a notification) or replaced if PostgreSQL closed it."""
    import select

    import psycopg2
    from sqlalchemy import exc

    from dagster_celery_aws import fast_task

    class Recording:  # a DB-API connection that counts the pings
        def __init__(self, conn):
            self.conn, self.pings = conn, 0

        def fileno(self):
            return self.conn.fileno()

        def cursor(self):
            self.pings += 1
            return self.conn.cursor()

    def readable(conn) -> bool:  # waits (up to 10 s) for PostgreSQL's message to arrive
        return bool(select.select([conn.fileno()], [], [], 10)[0])

    connect = dict(host="127.0.0.1", port=5432, user="postgres", dbname=pg_url)
    with contextlib.closing(psycopg2.connect(**connect)) as admin, contextlib.closing(psycopg2.connect(**connect)) as raw:
        admin.autocommit = raw.autocommit = True
        conn = Recording(raw)
        fast_task._check_on_checkout(conn, None, None)
        assert conn.pings == 0  # live and idle: no round trip

        raw.cursor().execute("LISTEN dca")
        admin.cursor().execute("NOTIFY dca")
        assert readable(raw)
        fast_task._check_on_checkout(conn, None, None)
        assert conn.pings == 1  # something to read, but it answers: kept

        admin.cursor().execute("SELECT pg_terminate_backend(%s)", (raw.get_backend_pid(),))
        assert readable(raw)
        with pytest.raises(exc.DisconnectionError):
            fast_task._check_on_checkout(conn, None, None)
        assert conn.pings == 2


def test_instances_are_not_shared_across_a_fork(monkeypatch):
    from dagster_celery_aws import fast_task

    made = []
    monkeypatch.setattr(fast_task.DagsterInstance, "from_ref", staticmethod(lambda ref: made.append(ref) or object()))
    monkeypatch.setattr(fast_task, "pool_connections", lambda instance: False)
    monkeypatch.setattr(fast_task, "serialize_value", lambda ref: str(ref))
    monkeypatch.setattr(fast_task, "_instances", {})
    a = fast_task.instance_for("ref")
    assert fast_task.instance_for("ref") is a and len(made) == 1
    monkeypatch.setattr(fast_task, "_pid", -1)  # as if this process were a fork of the one that made it
    assert fast_task.instance_for("ref") is not a and len(made) == 2


def test_a_run_record_is_read_once_per_process_and_run():
    from dagster_celery_aws import fast_task

    class Instance:
        reads: list[str] = []

        def get_run_by_id(self, run_id):
            self.reads.append(run_id)
            return None if run_id == "gone" else f"run {run_id}"

    fast_task.run_for.cache_clear()
    a, b = Instance(), Instance()
    assert fast_task.run_for(a, "r1") == fast_task.run_for(a, "r1") == "run r1"
    assert fast_task.run_for(b, "r1") == "run r1"  # another instance (another database): read again
    assert Instance.reads == ["r1", "r1"]
    for _ in range(2):  # a run that cannot be read fails the step, and is not remembered as missing
        with pytest.raises(Exception, match="Could not load run gone"):
            fast_task.run_for(a, "gone")
    assert Instance.reads == ["r1", "r1", "gone", "gone"]
    fast_task.run_for.cache_clear()


# ------------------------------------------------------------------------------ the code location's side
def test_io_manager_is_made_once_per_process_and_configuration(monkeypatch):
    from dagster import build_resources
    from moto import mock_aws

    from dagster_celery_aws import s3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(s3, "_kept", {})
    with mock_aws():
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="io-bucket")
        listed = []
        monkeypatch.setattr(
            "dagster_aws.s3.io_manager.PickledObjectS3IOManager.__init__",
            _recording_init(listed),
        )

        def build(prefix: str):
            io = s3.s3_pickle_io_manager.configured({"s3_bucket": "io-bucket", "s3_prefix": prefix})
            with build_resources({"io_manager": io}) as resources:
                return resources.io_manager

        first, second, other = build("io"), build("io"), build("elsewhere")
    assert first is second and other is not first
    assert listed == [("io-bucket", "io"), ("io-bucket", "elsewhere")]  # the bucket check: once per configuration


def _recording_init(calls: list):
    from dagster_aws.s3.io_manager import PickledObjectS3IOManager

    original = PickledObjectS3IOManager.__init__

    def init(self, s3_bucket, s3_session, s3_prefix=None):
        calls.append((s3_bucket, s3_prefix))
        original(self, s3_bucket, s3_session, s3_prefix)

    return init


def test_s3_client_is_made_once_per_process_and_configuration(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from dagster_celery_aws import CachedS3Resource

    a, b = CachedS3Resource(), CachedS3Resource()
    assert a.get_client() is b.get_client()
    other = CachedS3Resource(endpoint_url="http://127.0.0.1:1")
    assert other.get_client() is not a.get_client()
    assert other.get_client().meta.endpoint_url == "http://127.0.0.1:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2")  # boto3 reads it when making a client
    assert a.get_client().meta.endpoint_url == "http://127.0.0.1:2"


def test_run_worker_executor_is_the_stock_one_that_first_tunes_the_run_worker(step_env, monkeypatch):
    """The code location's executor reads its config as dagster-celery's does, and before the stock execution
    loop runs it pools the run's instance and sets the poll interval and the batched result reads."""
    from types import SimpleNamespace

    import dagster_celery.core_execution_loop as loop
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.executor.init import InitExecutorContext
    from dagster_celery import celery_executor as stock_def
    from dagster_celery.executor import CeleryExecutor
    from sqlalchemy.pool import NullPool, QueuePool

    import dagster_project
    from dagster_celery_aws import executor, fast_task

    instance, _ = step_env
    monkeypatch.setattr(loop, "TICK_SECONDS", 1)
    job = InMemoryJob(dagster_project.defs.resolve_job_def("example_job"))
    config = {
        "broker": "amqp://u@broker:5671//", "backend": "db+postgresql+psycopg2://u@db/d", "include": ["a.b"],
        "config_source": {"worker_prefetch_multiplier": 1}, "retries": {"disabled": {}},
    }  # fmt: skip

    def made(definition):
        context = InitExecutorContext(job=job, executor_def=definition, executor_config=config, instance=instance)
        return definition.executor_creation_fn(context)

    ours, stock = made(executor.tuned_celery_executor), made(stock_def)
    assert type(ours) is executor.TunedCeleryExecutor and isinstance(ours, CeleryExecutor)
    assert (ours.broker, ours.backend, ours.include, vars(ours.config_source), ours.retries) == (
        stock.broker, stock.backend, stock.include, vars(stock.config_source), stock.retries
    )  # fmt: skip
    # the app's arguments: the stock ones, the result backend read by the batched backend class
    ours_args, stock_args = ours.app_args(), stock.app_args()
    assert ours_args.pop("backend") == "dagster_celery_aws.executor:BatchPolledDatabaseBackend+postgresql+psycopg2://u@db/d"
    assert stock_args.pop("backend") == config["backend"]
    # and its result tables checked at the first read, not as the first step is sent
    assert vars(ours_args.pop("config_source")) == {**vars(stock_args.pop("config_source")), "database_create_tables_at_setup": False}
    assert ours_args == stock_args
    assert executor.tuned_celery_executor.config_schema is stock_def.config_schema

    ran = []
    loop_ran = lambda ctx, plan, step_execution_fn: ran.append((ctx, plan, step_execution_fn)) or iter(())  # noqa: E731
    monkeypatch.setattr(executor, "core_celery_execution_loop", loop_ran)
    assert all(isinstance(e.pool, NullPool) for e in fast_task._postgres_engines(instance))  # dagster-postgres'
    checked = []
    monkeypatch.setattr(executor, "check_routing", lambda *args: checked.append(args))
    monkeypatch.setenv("DCA_QUEUES", "dagster,heavy")
    context = SimpleNamespace(instance=instance, run_id=instance.get_runs()[0].run_id, log=logging.getLogger("run"))
    list(ours.execute(context, "plan"))
    assert [r[:2] for r in ran] == [(context, "plan")]  # the stock loop
    # after the run's steps were checked against the deployment's queues
    assert checked == [(context, "plan", "dagster", frozenset({"dagster", "heavy"}))]
    sent, handle = [], SimpleNamespace(id="task", backend="the loop's backend")
    monkeypatch.setattr(executor, "submit_step", lambda *args: sent.append(args) or handle)
    assert ran[0][2]("app", context, STEP, "q", 0, None) is handle  # sending with submit_step
    assert sent == [("app", context, STEP, "q", 0, None)]
    pooled = fast_task._postgres_engines(instance)
    assert all(isinstance(e.pool, QueuePool) for e in pooled)
    list(ours.execute(context, "plan"))  # a second run on the same instance keeps its pools
    assert fast_task._postgres_engines(instance) == pooled and len(ran) == 2
    assert loop.TICK_SECONDS == executor.EXECUTOR_POLL_SECONDS


# ------------------------------------------------------------------------------ result notices (LISTEN/NOTIFY)
@pytest.fixture
def results_db():
    with postgres_database("dca_notice") as db:
        yield f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"  # the form the stack writes


def _request(run_id: str | None):
    from celery.app.task import Context

    request = Context()
    if run_id is not None:
        request.dca_run_id = run_id  # what the workers' execute_plan sets
    return request


def test_a_stored_result_is_noticed_by_its_runs_listener_only(results_db):
    """The workers' result backend sends its notice on the run's channel, naming the task, in the transaction
    that stores a finished step's result: it reaches the run worker listening on that run's channel once the
    result is committed; another run's notices, and results of unfinished or unnamed tasks, do not."""
    from celery import Celery

    from dagster_celery_aws.result_notices import NotifyingDatabaseBackend, ResultNotices, channel, with_backend_class

    app = Celery("n", set_as_current=False, backend=with_backend_class(results_db, NotifyingDatabaseBackend))
    assert isinstance(app.backend, NotifyingDatabaseBackend)
    mine, other = "3f0c5e1a-0000-4000-8000-000000000001", "3f0c5e1a-0000-4000-8000-000000000002"
    assert channel(mine) != channel(other) and len(channel(mine)) <= 63
    notices = ResultNotices(results_db, mine)
    try:
        assert notices.listen()
        app.backend.store_result("task-of-another-run", [], "SUCCESS", request=_request(other))
        app.backend.store_result("task-started", None, "STARTED", request=_request(mine))  # not finished
        app.backend.store_result("task-of-no-run", [], "SUCCESS", request=_request(None))
        app.backend.store_result("task-a", ["event"], "SUCCESS", request=_request(mine))
        assert app.backend.get_task_meta("task-a")["status"] == "SUCCESS"
        app.backend.mark_as_failure("task-b", ValueError("step failed"), request=_request(mine))
        got = set()
        wait_for("both notices", lambda: got.update(notices.wait(0.5)) or {"task-a", "task-b"} <= got)
        # notices arrive in commit order: the others', sent first, would have come before ours
        assert got == {"task-a", "task-b"}
    finally:
        notices.close()
        app.backend.ResultSession().get_bind().dispose()


def test_the_listener_listens_again_after_its_connection_is_cut(results_db):
    """The run worker's listening connection is cut (a database restart or failover) and new ones are refused
    for a while: its waits return nothing meanwhile (the loop polls anyway), and once the database is back it
    connects and LISTENs again by itself, so later notices reach it."""
    import psycopg2

    from dagster_celery_aws.result_notices import ResultNotices, channel
    from tests.fault_proxy import FaultProxy

    run_id = "3f0c5e1a-0000-4000-8000-000000000003"
    db = results_db.rsplit("/", 1)[1]
    proxy = FaultProxy(5432)
    notices = ResultNotices(f"db+postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/{db}", run_id)
    direct = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db)
    direct.autocommit = True

    def notify(task_id: str) -> None:
        with direct.cursor() as cur:
            cur.execute("SELECT pg_notify(%s, %s)", (channel(run_id), task_id))

    try:
        assert notices.listen() and proxy.accepted == 1
        proxy.cut()
        notify("lost")  # sent while the listener's connection is gone: nobody receives it
        assert notices.wait(0.2) == set()  # the cut is noticed, no error reaches the caller
        assert notices.wait(0.2) == set() and proxy.accepted == 1  # refused meanwhile
        proxy.restore()
        wait_for("the listener to connect again", lambda: notices.wait(0.2) == set() and proxy.accepted == 2)
        notify("after")
        got = set()
        wait_for("the notice after the cut", lambda: got.update(notices.wait(0.5)) or "after" in got)
        assert got == {"after"}
    finally:
        notices.close()
        direct.close()
        proxy.close()


def test_notices_are_sent_only_on_a_postgresql_backend(tmp_path):
    from celery import Celery

    from dagster_celery_aws.result_notices import NotifyingDatabaseBackend, ResultNotices, with_backend_class

    assert with_backend_class("db+postgresql+psycopg2://u@h/d", NotifyingDatabaseBackend) == (
        "dagster_celery_aws.result_notices:NotifyingDatabaseBackend+postgresql+psycopg2://u@h/d"
    )
    for url in ("rpc://", "redis://h:6379/0", None):
        assert with_backend_class(url, NotifyingDatabaseBackend) == url  # not Celery's database backend
    # On another database the class stores results and sends nothing (SQLite has no NOTIFY).
    url = with_backend_class(f"db+sqlite:///{tmp_path / 'r.sqlite'}", NotifyingDatabaseBackend)
    backend = Celery("s", set_as_current=False, backend=url).backend
    assert isinstance(backend, NotifyingDatabaseBackend)
    backend.store_result("task", ["event"], "SUCCESS", request=_request("run"))
    assert backend.get_task_meta("task")["result"] == ["event"]
    assert not ResultNotices(f"db+sqlite:///{tmp_path / 'r.sqlite'}", "run").enabled
    assert not ResultNotices("rpc://", "run").enabled
    notices = ResultNotices("db+postgresql+psycopg2://postgres@127.0.0.1:1/x", "run")
    assert notices.enabled and not notices.listen()
    assert notices.wait(0.01) == set()  # no connection: the loop's plain sleep


# ------------------------------------------------------------------------------ the workers' one-statement store
def _result_backends(url: str, **settings):
    """The workers' result backend (``NotifyingDatabaseBackend``, its engine kept as in a forked pool process)
    and Celery's stock one, on the same database and settings."""
    from celery import Celery
    from celery.backends.database import DatabaseBackend

    from dagster_celery_aws.result_notices import NotifyingDatabaseBackend, with_backend_class

    app = Celery("w", set_as_current=False, backend=with_backend_class(url, NotifyingDatabaseBackend))
    app.conf.update(result_backend_base_sleep_between_retries_ms=1, **settings)
    ours = app.backend
    ours.session_manager.forked = True  # as Celery's after-fork hook sets it in a worker's pool process
    return ours, DatabaseBackend(app=app, url=url[3:])


class _Listener:
    """A plain LISTEN on a run's channel, keeping every notice's task id in the order they came."""

    def __init__(self, url: str, run_id: str):
        import psycopg2

        from dagster_celery_aws.result_notices import channel

        self.conn = psycopg2.connect(url.replace("db+postgresql+psycopg2", "postgresql"))
        self.conn.autocommit = True
        self.conn.cursor().execute(f"LISTEN {channel(run_id)}")
        self.got: list[str] = []

    def until(self, last: str) -> list[str]:
        """The notices so far, once ``last`` has come: PostgreSQL delivers them in commit order, so every
        notice of a store committed before the store that sent ``last`` is in the list."""

        def arrived() -> bool:
            self.conn.poll()
            self.got += [n.payload for n in self.conn.notifies]
            self.conn.notifies.clear()
            return last in self.got

        wait_for(f"the notice of {last}", arrived)
        return self.got


def _rows(backend, *task_ids) -> list[dict]:
    """The stored rows, but for the id and the time."""
    from sqlalchemy import select

    table = backend.task_cls.__table__
    with backend.ResultSession().get_bind().connect() as conn:
        rows = [conn.execute(select(table).where(table.c.task_id == i)).mappings().one() for i in task_ids]
    return [{k: v for k, v in row.items() if k not in ("id", "task_id", "date_done")} for row in rows]


@pytest.mark.parametrize("extended", [False, True])
def test_a_result_stored_in_one_statement_is_the_row_celery_stores(results_db, extended):
    """The workers' one-statement store writes the row Celery's own store writes (every column but the id and
    the time), with ``result_extended`` off and on, and Celery's stock backend reads it back identically."""
    from celery import states

    ours, stock = _result_backends(results_db, result_extended=extended)
    request = _request("run")
    request.update(task="execute_plan", args=[1, "a"], kwargs={"k": "v"}, hostname="w@h", retries=2,
                   delivery_info={"routing_key": "dagster"})  # fmt: skip
    for backend, prefix in ((ours, "ours"), (stock, "stock")):
        backend.store_result(f"{prefix}-ok", ["event", {"n": 1}], states.SUCCESS, request=request)
        backend.mark_as_failure(f"{prefix}-failed", ValueError("step failed"), traceback="Traceback ...", request=request)
    mine = _rows(ours, "ours-ok", "ours-failed")
    assert mine == _rows(ours, "stock-ok", "stock-failed")
    assert [r["status"] for r in mine] == [states.SUCCESS, states.FAILURE]
    assert (mine[0].get("name") == "execute_plan") == extended  # the extended columns are written when on
    for name in ("ok", "failed"):
        read = [stock.get_task_meta(f"{p}-{name}", cache=False) for p in ("ours", "stock")]
        assert [m.pop("task_id") for m in read] == [f"ours-{name}", f"stock-{name}"]
        assert all(m.pop("date_done") is not None for m in read)
        assert repr(read[0]) == repr(read[1])  # repr: a failure's exceptions compare by identity
    ours.ResultSession().get_bind().dispose()


def test_a_redelivered_step_stores_again_but_never_over_a_success(results_db):
    """A step's task stored again (its message redelivered) overwrites the row, as Celery's store does, unless
    the row is a SUCCESS, which stays, as Celery keeps it. Each store that writes the row notifies, after it."""
    from celery import states

    ours, stock = _result_backends(results_db)
    listener = _Listener(results_db, "run")
    try:
        stock.store_result("t", None, states.STARTED)  # a row already there, written by Celery's own store
        ours.mark_as_failure("t", ValueError("first try"), request=_request("run"))
        assert stock.get_task_meta("t", cache=False)["status"] == states.FAILURE
        assert listener.until("t") == ["t"]
        ours.store_result("t", ["second try"], states.SUCCESS, request=_request("run"))
        ours.store_result("t", ["third try"], states.SUCCESS, request=_request("run"))
        ours.mark_as_failure("t", ValueError("fourth try"), request=_request("run"))
        meta = stock.get_task_meta("t", cache=False)
        assert (meta["status"], meta["result"]) == (states.SUCCESS, ["second try"])
        ours.store_result("last", [], states.SUCCESS, request=_request("run"))
        assert listener.until("last") == ["t", "t", "last"]  # the stores over the SUCCESS wrote nothing
    finally:
        listener.conn.close()
        ours.ResultSession().get_bind().dispose()


def test_a_failed_store_is_retried_and_notifies_only_once_stored(results_db):
    """The one statement fails after its ``pg_notify`` ran (a trigger at the end of the statement refuses the
    row, or has the server end the connection): no notice goes out, and Celery's retry
    (``result_backend_always_retry``) stores it, which notifies. A store that fails for good notifies nothing
    and raises Celery's BackendStoreError."""
    import psycopg2
    from celery.exceptions import BackendStoreError

    ours, stock = _result_backends(results_db, result_backend_always_retry=True, result_backend_max_retries=1)
    stock.store_result("tables-made", None, "STARTED")
    admin = psycopg2.connect(results_db.replace("db+postgresql+psycopg2", "postgresql"))
    admin.autocommit = True
    admin.cursor().execute("""
        CREATE SEQUENCE attempts;
        CREATE SEQUENCE cuts;
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.task_id = 'refused' OR (NEW.task_id = 'retried' AND nextval('attempts') = 1) THEN
              RAISE EXCEPTION 'refused';
            END IF;
            IF NEW.task_id = 'cut' AND nextval('cuts') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
            RETURN NEW;
          END $$;
        CREATE TRIGGER refuse AFTER INSERT OR UPDATE ON celery_taskmeta FOR EACH ROW EXECUTE FUNCTION refuse();
    """)
    listener = _Listener(results_db, "run")
    try:
        ours.store_result("retried", ["event"], "SUCCESS", request=_request("run"))  # refused once, then stored
        ours.store_result("cut", ["event"], "SUCCESS", request=_request("run"))  # its connection lost once
        with pytest.raises(BackendStoreError):
            ours.store_result("refused", ["event"], "SUCCESS", request=_request("run"))  # refused twice
        ours.store_result("last", [], "SUCCESS", request=_request("run"))
        assert listener.until("last") == ["retried", "cut", "last"]
        assert [stock.get_task_meta(i, cache=False)["status"] for i in ("retried", "cut")] == ["SUCCESS"] * 2
        assert stock.get_task_meta("refused", cache=False)["status"] == "PENDING"  # no row
    finally:
        listener.conn.close()
        admin.close()
        ours.ResultSession().get_bind().dispose()


def test_a_result_is_stored_and_read_in_one_round_trip_each(results_db):
    """On a healthy pool, the workers' store of a finished step's result and the run worker's reads (a finished
    task, the batched poll) are one round trip each: no BEGIN/COMMIT/ROLLBACK, no ping per checkout (counted
    on the wire: ``FaultProxy.round_trips``). A connection the database closed meanwhile is still replaced
    before use, without the store's retry (none here)."""
    from celery import Celery

    from dagster_celery_aws.executor import BatchPolledDatabaseBackend
    from dagster_celery_aws.result_notices import with_backend_class
    from tests.fault_proxy import FaultProxy

    proxy = FaultProxy(5432)
    url = results_db.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    ours, _ = _result_backends(url, result_backend_always_retry=False)
    run_worker = Celery("r", set_as_current=False, backend=with_backend_class(url, BatchPolledDatabaseBackend)).backend
    try:
        ours.store_result("warm", [], "SUCCESS", request=_request("run"))  # the engine's first connection
        assert run_worker.get_task_meta("warm")["status"] == "SUCCESS"
        stores, reads, polls = [], [], []
        for i in range(3):
            before = proxy.round_trips
            if i:
                ours.store_result(f"t{i}", ["event", i], "SUCCESS", request=_request("run"))
            else:
                ours.mark_as_failure(f"t{i}", ValueError("step failed"), request=_request("run"))
            stores.append(proxy.round_trips - before)
            run_worker.note_finished({f"t{i}"})  # its notice
            before = proxy.round_trips
            assert run_worker.get_task_meta(f"t{i}")["status"] == ("SUCCESS" if i else "FAILURE")
            reads.append(proxy.round_trips - before)
            before = proxy.round_trips
            assert run_worker._finished_among({f"t{i}", "unknown"}) == {f"t{i}"}
            polls.append(proxy.round_trips - before)
        assert (stores, reads, polls) == ([1, 1, 1], [1, 1, 1], [1, 1, 1])
        for i in range(3, 6):  # steps that end together: their notices come to one wait of the loop
            ours.store_result(f"t{i}", ["event", i], "SUCCESS", request=_request("run"))
        run_worker.note_finished({"t3", "t4", "t5"})
        before = proxy.round_trips
        assert [run_worker.get_task_meta(f"t{i}")["result"] for i in range(3, 6)] == [["event", i] for i in range(3, 6)]
        assert proxy.round_trips - before == 1  # one query for the three
        assert run_worker.get_task_meta("t4", cache=False)["result"] == ["event", 4]  # read again: read anew

        connections = proxy.accepted
        proxy.cut()  # the database restarts: every connection reset
        proxy.restore()
        ours.store_result("after", [], "SUCCESS", request=_request("run"))  # no retry: the checkout replaced it
        run_worker.note_finished({"after"})
        assert run_worker.get_task_meta("after")["status"] == "SUCCESS"
        assert proxy.accepted == connections + 2  # one new connection for each pool
    finally:
        ours.ResultSession().get_bind().dispose()
        run_worker.ResultSession().get_bind().dispose()
        proxy.close()


def test_the_task_notices_its_result_after_storing_it(step_env, results_db):
    """``execute_plan`` (as installed on the worker app, with the workers' result backend) has its notice sent
    with its stored result: when the notice arrives, the result reads as SUCCESS from the backend."""
    from celery import Celery

    from dagster_celery_aws import compute_logs, fast_task
    from dagster_celery_aws.result_notices import NotifyingDatabaseBackend, ResultNotices, with_backend_class

    instance, message = step_env
    app = Celery("w", set_as_current=False, backend=with_backend_class(results_db, NotifyingDatabaseBackend))
    app.conf.task_store_eager_result = True  # apply() stores the result as a worker does
    task = fast_task.install(app)
    run_id = instance.get_runs()[0].run_id
    notices = ResultNotices(results_db, run_id)
    try:
        assert notices.listen()
        result = task.apply(kwargs=message("step_6"), throw=True)
        got = set()
        wait_for("the task's notice", lambda: got.update(notices.wait(0.5)) or result.id in got)
        assert app.backend.get_task_meta(result.id)["status"] == "SUCCESS"
    finally:
        compute_logs.wait_for_uploads()
        notices.close()
        app.backend.ResultSession().get_bind().dispose()


def test_the_run_worker_loop_wakes_on_a_notice_and_reads_the_task_without_asking(monkeypatch, results_db):
    """In ``waiting_for_notices`` the stock loop's ``time.sleep`` is the executor's wait: a notice ends it, and
    the task it names reads as finished without the batch query; elsewhere the loop's sleep is time.sleep."""
    from celery.backends.database import DatabaseBackend
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.make_app import make_app

    import dagster_celery.core_execution_loop as loop
    from dagster_celery_aws import executor as tuned
    from dagster_celery_aws import result_notices

    result_notices.install_loop_clock()
    waited = []
    with result_notices.waiting_for_notices(waited.append):
        loop.time.sleep(0.25)
    assert waited == [0.25]
    slept = []
    monkeypatch.setattr(result_notices.time, "sleep", slept.append)
    loop.time.sleep(0.5)  # outside the block (or in another thread): the plain sleep
    assert slept == [0.5] and waited == [0.25]
    monkeypatch.undo()

    executor = tuned.TunedCeleryExecutor(retries=RetryMode.DISABLED, broker="memory://", backend=results_db)
    backend = make_app(executor.app_args()).backend
    worker_side = DatabaseBackend(app=backend.app, url=results_db[3:])
    batches = []
    monkeypatch.setattr(backend, "_finished_among", lambda ids: batches.append(set(ids)) or set())
    assert backend.get_task_meta("t1")["status"] == "PENDING" and batches == [{"t1"}]
    worker_side.store_result("t1", ["event"], "SUCCESS")
    backend.note_finished({"t1"})  # what the executor's wait does with a notice's task ids
    assert backend.get_task_meta("t1")["status"] == "SUCCESS" and batches == [{"t1"}]  # no batch query
    backend.ResultSession().get_bind().dispose()


def test_run_worker_poll_interval(monkeypatch):
    import dagster_celery.core_execution_loop as loop

    from dagster_celery_aws import executor

    monkeypatch.setattr(loop, "TICK_SECONDS", loop.TICK_SECONDS)
    executor.set_executor_poll_interval()
    assert loop.TICK_SECONDS == executor.EXECUTOR_POLL_SECONDS == 0.1
    # The loop reads the module global on every iteration; a dagster-celery release that stops doing so
    # would silently bring back the 1 s poll.
    assert "time.sleep(TICK_SECONDS)" in inspect.getsource(loop.core_celery_execution_loop)


def test_run_worker_reads_database_results_with_one_query_per_poll(monkeypatch):
    """The executor's app (dagster-celery's make_app on the executor's app_args, as its execution loop builds
    it) on a real PostgreSQL result table: the steps read in one poll share one query; finished ones read as
    the stock backend reads them."""
    from types import SimpleNamespace

    from celery.backends.database import DatabaseBackend
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.make_app import make_app

    from dagster_celery_aws import executor as tuned

    import dagster_celery.core_execution_loop as loop

    # the execution loop builds its app from the executor's app_args; a release that stops doing so would
    # silently bring back one query per running step
    assert "make_app(executor.app_args())" in inspect.getsource(loop.core_celery_execution_loop)
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(tuned, "time", SimpleNamespace(monotonic=lambda: clock.now))
    with postgres_database("dca_results") as db:
        url = f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"  # the form the stack writes
        executor = tuned.TunedCeleryExecutor(retries=RetryMode.DISABLED, broker="memory://", backend=url)
        app = make_app(executor.app_args())
        backend = app.backend
        assert type(backend) is tuned.BatchPolledDatabaseBackend and backend.url == url[3:]
        worker_side = DatabaseBackend(app=app, url=url[3:])  # how a worker stores results: the stock backend
        # one engine (connection pool) for every read here; the stock backend outside a forked worker makes
        # a new engine, i.e. a new PostgreSQL connection, per read
        assert backend.ResultSession().get_bind() is backend.ResultSession().get_bind()
        assert worker_side.ResultSession().get_bind() is not worker_side.ResultSession().get_bind()
        batches, full_reads = [], []
        finished_among = backend._finished_among
        monkeypatch.setattr(backend, "_finished_among", lambda ids: batches.append(set(ids)) or finished_among(ids))
        stock_read = DatabaseBackend._get_task_meta_for
        monkeypatch.setattr(DatabaseBackend, "_get_task_meta_for", lambda self, i: full_reads.append(i) or stock_read(self, i))

        ids = [f"task-{i}" for i in range(5)]
        worker_side.store_result(ids[1], ["event"], "SUCCESS")
        worker_side.store_result(ids[2], ValueError("step failed"), "FAILURE")
        results = [app.AsyncResult(i) for i in ids]

        assert [r.ready() for r in results] == [False] * 5  # first poll: only the first read asks
        assert batches == [{ids[0]}] and full_reads == []
        clock.now += tuned.BatchPolledDatabaseBackend.BATCH_SECONDS
        assert [r.ready() for r in results] == [False, True, True, False, False]
        assert batches[1:] == [set(ids)]  # one query for the five
        assert results[1].get() == ["event"]
        with pytest.raises(ValueError, match="step failed"):
            results[2].get(propagate=True)
        worker_side.store_result(ids[0], ["late"], "SUCCESS")
        clock.now += tuned.BatchPolledDatabaseBackend.BATCH_SECONDS
        assert [r.ready() for r in results] == [True, True, True, False, False]
        assert batches[2:] == [{ids[0], ids[3], ids[4]}]  # finished tasks are not asked about again
        assert sorted(full_reads) == sorted(ids[:3])  # each finished task read once, in full
        backend.ResultSession().get_bind().dispose()


def test_run_worker_is_interrupted_when_its_run_is_ended_elsewhere(step_env, monkeypatch):
    """As Dagster's termination interrupts a run worker (SIGINT, captured): once the run is finished by
    someone else (the watchdog, run monitoring), not while it is only being canceled (its launcher
    interrupts it then)."""
    from dagster._utils.interrupts import capture_interrupts, check_captured_interrupt

    from dagster_celery_aws import executor

    instance, _ = step_env
    run = instance.get_runs()[0]
    polls = []
    ended = executor.run_has_ended
    monkeypatch.setattr(executor, "run_has_ended", lambda *a: polls.append(a) or ended(*a))
    with capture_interrupts(), executor.interrupt_when_ended_elsewhere(instance, run.run_id, seconds=0.05):
        instance.report_run_canceling(run)
        wait_for("three polls of the run's status", lambda: len(polls) >= 3)
        assert not check_captured_interrupt()
        instance.report_run_failed(instance.get_run_by_id(run.run_id))
        wait_for("the interrupt", check_captured_interrupt, timeout=10)


# ------------------------------------------------------------------------------ a step's plan from the run's whole plan
def _plan_snapshot(plan) -> str:
    from dagster._core.snap import snapshot_from_execution_plan
    from dagster._serdes import serialize_value

    return serialize_value(snapshot_from_execution_plan(plan, "job-snapshot"))


def _known_state(**kwargs):
    from dagster._core.execution.plan.state import KnownExecutionState

    return KnownExecutionState(**kwargs)


def test_a_steps_plan_is_the_stock_plan_built_once_per_run(monkeypatch):
    """``plan_for_steps`` returns what ``create_execution_plan`` returns for the step and its known state
    (retry counts, ready outputs), and builds the whole job's plan once per run, not once per step."""
    from dagster import DagsterRun
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.plan.outputs import StepOutputHandle

    from dagster_celery_aws import fast_task

    monkeypatch.setenv("DAGSTER_S3_BUCKET", "b")  # the jobs' I/O manager config; nothing is stored here
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "memory://")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "db+sqlite://")
    monkeypatch.setattr(fast_task, "_plans", type(fast_task._plans)())
    repo = ReconstructableRepository.for_module("benchmarks.jobs", "defs", working_directory=str(REPO_ROOT))
    recon = repo.get_reconstructable_job("bench_diamond_celery")
    run = DagsterRun(job_name="bench_diamond_celery", run_id="9d1c2f3e-0000-4000-8000-000000000001", run_config={})
    built = []
    real = fast_task.create_execution_plan
    monkeypatch.setattr(fast_task, "create_execution_plan", lambda *a, **k: built.append(k) or real(*a, **k))
    states = {
        "top": None,
        "left": _known_state(ready_outputs={StepOutputHandle("top", "result")}),
        "bottom": _known_state(
            ready_outputs={StepOutputHandle(k, "result") for k in ("top", "left", "right")},
            previous_retry_attempts={"bottom": 2},
        ),
    }
    for key, state in states.items():
        ours = fast_task.plan_for_steps(recon, run, [key], state)
        stock = create_execution_plan(recon, {}, step_keys_to_execute=[key], known_state=state)
        assert ours.step_keys_to_execute == stock.step_keys_to_execute == [key]
        assert ours.known_state == stock.known_state and ours.artifacts_persisted == stock.artifacts_persisted
        assert _plan_snapshot(ours) == _plan_snapshot(stock)
    assert built == [{}]  # one whole plan for the run's three steps
    other = DagsterRun(job_name="bench_diamond_celery", run_id="9d1c2f3e-0000-4000-8000-000000000002", run_config={})
    fast_task.plan_for_steps(recon, other, ["top"], None)
    assert len(built) == 2  # another run: its own plan


def test_a_job_with_dynamic_outputs_takes_the_stock_plan(monkeypatch):
    from dagster import DagsterRun, reconstructable
    from dagster._core.execution.api import create_execution_plan

    from dagster_celery_aws import fast_task

    monkeypatch.setattr(fast_task, "_plans", type(fast_task._plans)())
    recon = reconstructable(dynamic_job)
    run = DagsterRun(job_name="dynamic_job", run_id="9d1c2f3e-0000-4000-8000-000000000003", run_config={})
    assert fast_task._whole_plan(recon, run) is None
    state = _known_state(dynamic_mappings={"fan_out": {"result": ["a", "b"]}})
    ours = fast_task.plan_for_steps(recon, run, ["double[b]"], state)
    stock = create_execution_plan(recon, {}, step_keys_to_execute=["double[b]"], known_state=state)
    assert ours.step_keys_to_execute == ["double[b]"] and _plan_snapshot(ours) == _plan_snapshot(stock)


from dagster import DynamicOut, DynamicOutput, job, op  # noqa: E402 - module scope: reconstructable()


@op(out=DynamicOut())
def fan_out():
    for key in ("a", "b"):
        yield DynamicOutput(key, mapping_key=key)


@op
def double(value: str) -> str:
    return value * 2


@job
def dynamic_job():
    fan_out().map(double)


def test_the_run_worker_waits_briefly_only_when_none_of_its_steps_is_in_flight(monkeypatch):
    """The loop's wait between polls: the full interval while a step is in flight (a notice ends it), a short
    one the first time nothing is in flight (the loop's last wait before it sees the run complete), and the
    full interval again if nothing is in flight twice in a row (steps held back: the loop keeps polling)."""
    from types import SimpleNamespace

    import dagster_celery.core_execution_loop as loop

    from dagster_celery_aws import executor

    waits, finished = [], set()

    class Notices:
        def __init__(self, backend_url, run_id):
            pass

        def listen(self):
            return True

        def wait(self, seconds):
            waits.append(seconds)
            return set()

        def close(self):
            pass

    backend = SimpleNamespace(note_finished=finished.update, finished_ids=lambda: set(finished))
    monkeypatch.setattr(executor, "ResultNotices", Notices)
    monkeypatch.setattr(executor, "pool_connections", lambda instance: False)
    monkeypatch.setattr(executor, "check_routing", lambda *args: None)  # tested on its own
    monkeypatch.setattr(executor, "submit_step", lambda app, *a: SimpleNamespace(id=f"t{len(waits)}", backend=backend))

    def fake_loop(context, plan, step_execution_fn):
        step_execution_fn("app", context, STEP, "q", 0, None)
        loop.time.sleep(1.0)  # a step in flight
        finished.add("t0")
        loop.time.sleep(1.0)  # nothing in flight: short
        loop.time.sleep(1.0)  # still nothing: the interval
        step_execution_fn("app", context, STEP, "q", 0, None)
        loop.time.sleep(1.0)  # in flight again
        yield from ()

    monkeypatch.setattr(executor, "core_celery_execution_loop", fake_loop)
    ours = executor.TunedCeleryExecutor.__new__(executor.TunedCeleryExecutor)
    ours.backend = "db+postgresql://u@db/d"
    context = SimpleNamespace(instance=SimpleNamespace(event_log_storage=None), run_id="r", log=logging.getLogger("run"))
    monkeypatch.setattr(executor, "interrupt_when_ended_elsewhere", lambda *a: contextlib.nullcontext())
    list(ours.execute(context, "plan"))
    assert waits == [1.0, executor.IDLE_WAIT_SECONDS, 1.0, 1.0]


def _execute_with_loop(monkeypatch, instance, run_id: str, loop) -> None:
    """``TunedCeleryExecutor.execute`` with ``loop`` in place of dagster-celery's, no routing check, no run-end
    watch."""
    from types import SimpleNamespace

    from dagster_celery_aws import executor

    monkeypatch.setattr(executor, "core_celery_execution_loop", loop)
    monkeypatch.setattr(executor, "check_routing", lambda *args: None)
    monkeypatch.setattr(executor, "interrupt_when_ended_elsewhere", lambda *a: contextlib.nullcontext())
    ours = executor.TunedCeleryExecutor.__new__(executor.TunedCeleryExecutor)
    ours.backend = None
    list(ours.execute(SimpleNamespace(instance=instance, run_id=run_id, log=logging.getLogger("run")), "plan"))


def test_the_run_worker_writes_its_submitting_events_after_it_sends_the_steps(step_env, monkeypatch):
    """The loop's "Submitting celery task" events are not yet stored when their steps are sent; all those of one
    pass are stored in one statement as the loop goes to sleep, with the time they were made; another event
    written meanwhile is stored after them, in order."""
    from types import SimpleNamespace

    import dagster_celery.core_execution_loop as loop
    from dagster._core.events import EngineEventData

    from dagster_celery_aws import executor

    instance, message = step_env
    run = instance.get_run_by_id(message.run_id)
    stored_at_send, made = [], []

    def submitting():
        return [e for e in instance.all_logs(run.run_id) if executor.is_submission(e)]

    def send(app, context, step, queue, *args):
        stored_at_send.append(len(submitting()))
        return SimpleNamespace(id=f"t{len(stored_at_send)}", backend=None)

    class Notices:
        def __init__(self, backend_url, run_id):
            pass

        listen = close = lambda self: True

        def wait(self, seconds):
            return set()

    monkeypatch.setattr(executor, "ResultNotices", Notices)
    monkeypatch.setattr(executor, "submit_step", send)

    def fake_loop(context, plan, step_execution_fn):
        for key in ("step_1", "step_2"):  # as dagster-celery's loop: the event, then the send
            made.append(instance.report_engine_event(f'{executor.SUBMITTING}"{key}" to queue "q".', run, EngineEventData()))
            step_execution_fn("app", context, STEP, "q", 0, None)
        with statements_sent() as sent:
            loop.time.sleep(0.01)
        made.append(instance.report_engine_event(f'{executor.SUBMITTING}"step_3" to queue "q".', run, EngineEventData()))
        step_execution_fn("app", context, STEP, "q", 0, None)
        instance.report_engine_event("something else", run, EngineEventData())  # written after step_3's
        made.append(sent)
        yield from ()

    _execute_with_loop(monkeypatch, instance, run.run_id, fake_loop)
    assert stored_at_send == [0, 0, 2]
    assert _event_writes(made[-1], run.run_id) == [2]  # the two of the first pass, in one statement
    messages = [e.dagster_event.message for e in instance.all_logs(run.run_id)][-4:]
    assert messages == [e.message for e in made[:2]] + [made[2].message, "something else"]
    assert [e.timestamp for e in submitting()] == [e.timestamp for e in instance.all_logs(run.run_id) if e.dagster_event.message in {m.message for m in made[:3]}]


# ------------------------------------------------------------------------------ event writes (fast_task "Event writes")
@contextlib.contextmanager
def statements_sent():
    """Every statement that any SQLAlchemy engine of this process sends meanwhile, as (SQL, parameters): a round
    trip each (dagster-postgres's engines are AUTOCOMMIT: no BEGIN or COMMIT of their own)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sent = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _event_writes(sent, run_id: str) -> list[int]:
    """How many of the run's events each statement that wrote events wrote (a row's run id is a parameter)."""
    return [sum(v == run_id for v in params.values()) for sql, params in sent if "INSERT INTO event_logs" in sql]


def _stored_since(instance, run_id: str, count: int) -> list:
    return instance.all_logs(run_id)[count:]


def _kinds(entries) -> list[str]:
    return [e.dagster_event.event_type_value if e.dagster_event else "LOG" for e in entries]


def _run_step(instance, message, step_key: str, task_id: str):
    """(events the task returned, the events it stored, the statements it sent) for one delivery of the step."""
    from dagster import DagsterEvent
    from dagster._serdes import deserialize_value

    from dagster_celery_aws import fast_task

    before = len(instance.all_logs(message.run_id))
    with statements_sent() as sent:
        returned = fast_task.execute_plan(_delivery(task_id, False), **message(step_key))
    stored = _stored_since(instance, message.run_id, before)
    return [deserialize_value(e, DagsterEvent) for e in returned], stored, sent


STEP_KINDS = ["ENGINE_EVENT", "RESOURCE_INIT_STARTED", "RESOURCE_INIT_SUCCESS", "LOGS_CAPTURED", "STEP_START",
              "STEP_OUTPUT", "LOG", "HANDLED_OUTPUT", "STEP_SUCCESS"]  # fmt: skip


def test_a_steps_events_are_stored_as_before_in_fewer_statements(step_env, monkeypatch):
    """Unheld, each of a step's events is one statement (dagster-postgres: an INSERT and a NOTIFY); held, the
    set-up's are 3 statements instead of 5 and the end's 2 instead of 3: the same events, same order, same
    content as the task returns; the run check and 6 event writes in all."""
    from dagster._serdes import serialize_value

    from dagster_celery_aws import fast_task

    instance, message = step_env
    _run_step(instance, message, "step_1", "warm")  # the pool process's instance and the run's plan
    with monkeypatch.context() as unheld:
        unheld.setattr(fast_task, "holding", lambda instance, rule: contextlib.nullcontext())
        _, stored_unheld, sent_unheld = _run_step(instance, message, "step_2", "unheld")
    returned, stored, sent = _run_step(instance, message, "step_3", "held")

    assert _kinds(stored_unheld) == _kinds(stored) == STEP_KINDS
    assert _event_writes(sent_unheld, message.run_id) == [1] * len(STEP_KINDS) and len(sent_unheld) == 1 + 9
    # step_3's run has run a step in this process: its code is loaded, "Executing steps" waits for RESOURCE_INIT_STARTED
    assert _event_writes(sent, message.run_id) == [2, 3, 1, 1, 2] and len(sent) == 1 + 5
    assert [serialize_value(e) for e in returned] == [serialize_value(e.dagster_event) for e in stored if e.dagster_event]
    assert [e.step_key for e in stored if e.dagster_event_type != "LOGS_CAPTURED"] == ["step_3"] * 8


def test_user_code_runs_with_the_events_before_it_stored(step_env):
    """What a worker killed in user code leaves in the log: the resource as it is built sees RESOURCE_INIT_STARTED
    (after "Executing steps", the delivery count), the body STEP_START, handle_output STEP_OUTPUT, a generator's
    body after its first output that output's HANDLED_OUTPUT."""
    from tests.jobs import events

    instance, _ = step_env
    message = messages_of_a_run(instance, "tests.jobs.events", "witnessed")
    events.SEEN.clear()
    writes = {}
    for step_key in ("plain", "generator"):
        returned, stored, sent = _run_step(instance, message, step_key, step_key)
        assert _kinds(stored) == [e.event_type_value for e in returned] and _kinds(stored)[-1] == "STEP_SUCCESS"
        writes[step_key] = _event_writes(sent, message.run_id)
    assert events.SEEN == [
        ("resource init", "RESOURCE_INIT_STARTED"),
        ("plain body", "STEP_START"),
        ("handle_output plain", "STEP_OUTPUT"),
        ("resource init", "RESOURCE_INIT_STARTED"),
        ("handle_output generator", "STEP_OUTPUT"),
        ("generator body after an output", "HANDLED_OUTPUT"),
        ("handle_output generator", "STEP_OUTPUT"),
    ]
    kinds = _kinds(instance.all_logs(message.run_id))
    assert kinds[kinds.index("RESOURCE_INIT_STARTED") - 1] == "ENGINE_EVENT"  # "Executing steps" came first
    assert writes["plain"] == [1, 1, 3, 1, 2]  # the run's first step here: "Executing steps" before the code loads
    assert writes["generator"] == [2, 3, 1, 1, 1, 1, 1]  # code loaded; its body goes on: each HANDLED_OUTPUT at once


def test_a_failing_step_stores_all_its_events(step_env, monkeypatch):
    """A resource that fails to build: the task raises as before, after RESOURCE_INIT_FAILURE is stored; an op
    that raises: STEP_FAILURE is stored before the task returns. Same events with and without holding."""
    from dagster._core.errors import DagsterResourceFunctionError

    from dagster_celery_aws import fast_task

    instance, _ = step_env
    message = messages_of_a_run(instance, "tests.jobs.events", "broken_job")
    stored_by = {}
    for held in (False, True):
        with monkeypatch.context() as m:
            if not held:
                m.setattr(fast_task, "holding", lambda instance, rule: contextlib.nullcontext())
            before = len(instance.all_logs(message.run_id))
            with pytest.raises(DagsterResourceFunctionError, match="broken"):
                fast_task.execute_plan(_delivery(f"broken-{held}", False), **message("needs_broken"))
            broken = _kinds(_stored_since(instance, message.run_id, before))
            returned, stored, sent = _run_step(instance, message, "fails", f"fails-{held}")
            stored_by[held] = (broken, _kinds(stored), [e.event_type_value for e in returned])
    assert stored_by[True] == stored_by[False]
    broken, fails, returned = stored_by[True]
    assert broken == ["ENGINE_EVENT", "RESOURCE_INIT_STARTED", "RESOURCE_INIT_FAILURE"]
    assert fails == returned == [*STEP_KINDS[:5], "STEP_FAILURE"]
    assert _event_writes(sent, message.run_id) == [2, 3, 1]  # the failure on its own, as the task ends


def _entry(run_id: str, message: str, kind: str = "ENGINE_EVENT", **event):
    from dagster._core.events import DagsterEvent, EngineEventData
    from dagster._core.events.log import EventLogEntry

    data = event.pop("event_specific_data", EngineEventData())
    dagster_event = DagsterEvent(kind, "job", message=message, event_specific_data=data, **event)
    return EventLogEntry(error_info=None, level="INFO", user_message=message, run_id=run_id, timestamp=1.0,
                         dagster_event=dagster_event)  # fmt: skip


def test_a_step_uses_the_runs_resolved_config_instead_of_building_it_again(step_env, monkeypatch):
    """Dagster validates and resolves the run config as each step's context is made; in a worker's task the one
    resolved for the run (``_whole_plan``) is used, so it is built once per pool process and run, not per step.
    The steps' events are the same; outside a task, and for another run config, Dagster builds it."""
    from dagster._core.system_config.objects import ResolvedRunConfig

    from dagster_celery_aws import fast_task

    instance, message = step_env
    fast_task.install_known_run_config()
    builds = []
    real = ResolvedRunConfig.build
    monkeypatch.setattr(ResolvedRunConfig, "build", staticmethod(lambda *a, **k: builds.append(a) or real(*a, **k)))
    first, _, _ = _run_step(instance, message, "step_1", "t1")  # the run's plan and its config, once
    built_first = len(builds)
    assert built_first >= 1
    second, stored, _ = _run_step(instance, message, "step_2", "t2")
    assert len(builds) == built_first
    assert [e.event_type_value for e in second] == [e.event_type_value for e in first]
    assert _kinds(stored) == STEP_KINDS
    import dagster._core.execution.context_creation_job as context_creation

    job_def = builds[0][0]
    context_creation.ResolvedRunConfig.build(job_def, {})  # no task: Dagster's build
    assert len(builds) == built_first + 1


def test_a_process_freezes_its_objects_once_after_its_first_step_or_as_its_run_starts_sending(step_env, monkeypatch):
    """A pool process freezes what it holds (``gc.freeze``: not walked by each full collection again) after its
    first step, not after every step; a run worker as its executor starts sending steps."""

    from dagster_celery_aws import fast_task

    instance, message = step_env
    frozen = []
    monkeypatch.setattr(fast_task, "_frozen_in", set())
    monkeypatch.setattr(fast_task.gc, "freeze", lambda: frozen.append(("freeze", os.getpid())))
    _run_step(instance, message, "step_1", "f1")
    _run_step(instance, message, "step_2", "f2")
    assert frozen == [("freeze", os.getpid())]

    monkeypatch.setattr(fast_task, "_frozen_in", set())
    order = []
    monkeypatch.setattr(fast_task.gc, "freeze", lambda: order.append("freeze"))

    def fake_loop(context, plan, step_execution_fn):
        order.append("loop")
        yield from ()

    _execute_with_loop(monkeypatch, instance, message.run_id, fake_loop)
    assert order == ["freeze", "loop"]


def test_event_writes_of_one_shape_compile_their_statement_once(step_env):
    """Storing events is not compiling SQL: the statement of a row count comes from SQLAlchemy's compiled cache
    after its first use (the same statement as an expression had no cache key and cost ~3 ms of CPU per event,
    more than its round trip on AWS). The events read back as they were stored."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    instance, message = step_env
    storage, run_id = instance.event_log_storage, message.run_id
    hits = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO event_logs" in statement:
            hits.append(context.cache_hit)

    def store_some(n: int) -> None:
        storage.store_event(_entry(run_id, f"more {n}"))
        with storage.holding(lambda e: e.user_message.startswith("held")):
            storage.store_event(_entry(run_id, f"held {n}"))
            storage.store_event(_entry(run_id, f"after {n}"))  # 2 rows in one statement

    store_some(0)  # the first of each row count may compile
    event.listen(Engine, "before_cursor_execute", record)
    try:
        for n in range(1, 4):
            store_some(n)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert len(hits) == 6 and set(hits) == {hits[0].CACHE_HIT}, hits
    messages = [e.user_message for e in instance.all_logs(run_id)]
    assert messages[-9:] == [m for n in range(1, 4) for m in (f"more {n}", f"held {n}", f"after {n}")]


def test_an_event_is_one_statement_and_an_asset_event_writes_its_asset_tables(step_env, pg_url):
    """In any process (here: no holding, NullPool engines) an event is one statement that inserts and notifies;
    an asset materialization then writes the asset tables with its id, as dagster-postgres does."""
    import select

    import psycopg2
    from dagster import AssetKey, AssetMaterialization
    from dagster._core.definitions.data_version import DATA_VERSION_TAG
    from dagster._core.events import StepMaterializationData
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    instance, message = step_env
    storage, run_id = instance.event_log_storage, message.run_id
    with statements_sent() as sent:
        storage.store_event(_entry(run_id, "plain"))
    assert _event_writes(sent, run_id) == [1] and len(sent) == 1 and "pg_notify" in sent[0][0]

    with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=pg_url)) as listener:
        listener.autocommit = True
        listener.cursor().execute("LISTEN run_events")
        key = AssetKey("table")
        materialization = _entry(run_id, "m", "ASSET_MATERIALIZATION",
                                 event_specific_data=StepMaterializationData(AssetMaterialization(key, tags={DATA_VERSION_TAG: "v1"})))  # fmt: skip
        storage.store_event(materialization)  # the first also reads whether the tables exist
        transactions = []

        def commit(conn):
            transactions.append(conn)

        event.listen(Engine, "commit", commit)
        try:
            with statements_sent() as sent:
                storage.store_event(materialization)
        finally:
            event.remove(Engine, "commit", commit)
        assert select.select([listener], [], [], 30)[0], "no notification"
        listener.poll()
        notified = [n.payload for n in listener.notifies]
    stored_id = instance.get_asset_records([key])[0].asset_entry.last_materialization_record.storage_id
    assert notified == [f"{run_id}_{stored_id - 1}", f"{run_id}_{stored_id}"]
    tagged = instance.event_log_storage.get_event_tags_for_asset(key, filter_event_id=stored_id)
    assert tagged == [{DATA_VERSION_TAG: "v1"}]
    # the event, then in one transaction (BEGIN, COMMIT: psycopg2's own round trips) its tag and the asset's row
    assert _event_writes(sent, run_id) == [1] and len(transactions) == 1
    assert [sql.split()[:3] for sql, _ in sent[1:]] == [["INSERT", "INTO", "asset_event_tags"], ["INSERT", "INTO", "asset_keys"]]


def test_held_events_stay_in_their_thread_and_process_and_are_written_at_the_end(step_env):
    """Held events are written after the block, also when it raises, or before the next event not held (in one
    statement); another thread or a forked process writes its own events at once and never the held ones; an
    asset event is never held."""
    from dagster import AssetKey, AssetMaterialization
    from dagster._core.events import StepMaterializationData

    instance, message = step_env
    storage, run_id = instance.event_log_storage, message.run_id
    before = len(instance.all_logs(run_id))

    def stored():
        return [e.user_message for e in _stored_since(instance, run_id, before)]

    with pytest.raises(RuntimeError, match="in the block"), storage.holding(lambda e: e.user_message.startswith("held")):
        storage.store_event(_entry(run_id, "held 1"))
        thread = threading.Thread(target=storage.store_event, args=(_entry(run_id, "held by another thread"),))
        thread.start()
        thread.join()
        pid = os.fork()
        if pid == 0:  # the child: writes its own event, never the parent's held one
            try:
                storage.store_event(_entry(run_id, "held in a forked process"))
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        assert stored() == ["held by another thread", "held in a forked process"]
        with statements_sent() as sent:
            storage.store_event(_entry(run_id, "next"))
        assert _event_writes(sent, run_id) == [2]
        storage.store_event(_entry(run_id, "held 2"))
        key = AssetKey("held")
        storage.store_event(_entry(run_id, "asset", "ASSET_MATERIALIZATION",
                                   event_specific_data=StepMaterializationData(AssetMaterialization(key))))  # fmt: skip
        assert stored()[-2:] == ["held 2", "asset"]
        storage.store_event(_entry(run_id, "held 3"))
        raise RuntimeError("in the block")
    assert stored() == ["held by another thread", "held in a forked process", "held 1", "next", "held 2", "asset", "held 3"]
    with statements_sent() as sent, storage.holding(lambda e: True):
        pass
    assert sent == []  # a new block holds nothing of the last one's
