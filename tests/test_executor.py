"""The code location's executor (dagster_celery_aws.executor) where it departs from stock dagster-celery's code
and must still behave as stock does (dagster-celery's own suite checks the same on real services:
tests/test_peer_suite.py):

- eager mode (Celery's ``task_always_eager``, how dagster-celery users test a Celery job without a broker): a
  step's handle is Celery's in-memory result, so the run completes;
- termination: a revoked step's handle is ready at once and reads as revoked -- not as the interruption a
  worker stores for it afterwards (results in a database), and without writing to the results' backend,
  which with ``rpc://`` only the worker that holds the task can do -- so dagster-celery's loop ends with a
  "was revoked." event for every step it was waiting for, and the run ends as Dagster ends a terminated run;
- a run's own ``execution: config:`` goes over the deployment's settings as stock honours it over its
  defaults; a key stock does not know is refused, naming it.
"""

from __future__ import annotations

import threading

import pytest
from celery import states
from celery.exceptions import TaskRevokedError
from celery.result import EagerResult
from dagster import DagsterEventType, DagsterRunStatus, job, op, reconstructable
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterInvalidConfigError
from dagster._core.execution.api import execute_job, execute_run_iterator
from dagster._core.execution.retries import RetryMode
from dagster._core.test_utils import instance_for_test
from dagster._utils import send_interrupt
from dagster_celery.make_app import make_app

from dagster_celery_aws import executor
from tests.conftest import postgres_database, rabbit_vhost

# A broker nothing listens on: a step that is sent instead of run eagerly fails the run at once, and nothing
# reaches the machine's RabbitMQ.
UNREACHABLE = "pyamqp://guest@127.0.0.1:1//"
EAGER = {"execution": {"config": {"config_source": {"task_always_eager": True}}}}


@op
def one():
    return 1


@op
def plus_one(number):
    return number + 1


@job(executor_def=executor.celery_executor)
def celery_job():
    plus_one(one())


@job(executor_def=executor.celery_executor)
def parallel_job():
    for i in range(3):
        one.alias(f"one_{i}")()


@pytest.fixture
def deployment(monkeypatch, tmp_path):
    """The packaged celery_config.yaml's variables: no broker, results in a SQLite file."""
    monkeypatch.delenv("DAGSTER_CELERY_CONFIG", raising=False)
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", UNREACHABLE)
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", f"db+sqlite:///{tmp_path / 'results.sqlite'}")
    return tmp_path


def _app(backend: str):
    tuned = executor.TunedCeleryExecutor(retries=RetryMode.DISABLED, broker="memory://", backend=backend)
    return make_app(tuned.app_args())


# ------------------------------------------------------------------------------------------------ eager mode
def test_an_eager_step_is_its_in_memory_result(monkeypatch, tmp_path):
    """With task_always_eager, dagster-celery's ``_submit_task`` has run the step already: its result is in
    memory only, and the handle the loop waits on must be that one (the backend never hears of the step)."""
    app = _app(f"db+sqlite:///{tmp_path / 'results.sqlite'}")
    eager = EagerResult("step-task", ["the step's events"], states.SUCCESS)
    monkeypatch.setattr(executor, "_submit_task", lambda *args: eager)
    handle = executor.submit_step(app, "context", "step", "dagster", 5, None)
    assert handle.ready() and handle.get() == ["the step's events"]


def test_a_job_runs_eagerly_with_the_shipped_executor(deployment):
    """What dagster-celery's own tests do: the run config's ``task_always_eager`` runs the steps in process,
    with no broker, and the run succeeds."""
    with instance_for_test(temp_dir=str(deployment)) as instance:
        with execute_job(reconstructable(celery_job), instance=instance, run_config=EAGER) as result:
            assert result.success
            assert result.output_for_node("plus_one") == 2
            assert [e.step_key for e in result.get_step_success_events()] == ["one", "plus_one"]


# ------------------------------------------------------------------------------------- per-run executor config
def _resolved(run_config: dict) -> dict:
    from dagster._core.system_config.objects import ResolvedRunConfig

    return ResolvedRunConfig.build(celery_job, run_config).execution.execution_engine_config


def test_a_runs_executor_config_goes_over_the_deployments(deployment):
    """Stock dagster-celery takes a run's ``execution: config:`` over its defaults; the shipped executor takes
    it over the deployment's celery_config.yaml: a key replaces the setting, ``config_source`` is merged."""
    from dagster_celery_aws.celery_config import executor_config

    packaged = executor_config()["config_source"]
    assert _resolved({}) == {
        "broker": UNREACHABLE, "backend": f"db+sqlite:///{deployment / 'results.sqlite'}",
        "config_source": packaged, "retries": {"enabled": {}},
    }  # fmt: skip
    run = {"backend": "rpc://", "include": ["a.b"], "retries": {"disabled": {}},
           "config_source": {"task_always_eager": True, "worker_prefetch_multiplier": 4}}  # fmt: skip
    assert _resolved({"execution": {"config": run}}) == {
        "broker": UNREACHABLE, "backend": "rpc://", "include": ["a.b"],
        "retries": {"disabled": {}},
        "config_source": {**packaged, "task_always_eager": True, "worker_prefetch_multiplier": 4},
    }  # fmt: skip


def test_an_unknown_executor_key_in_a_runs_config_is_refused_by_name(deployment):
    with pytest.raises(DagsterInvalidConfigError, match='unexpected config entry "brokr" at path root:execution:config'):
        _resolved({"execution": {"config": {"brokr": "pyamqp://elsewhere//"}}})


# ----------------------------------------------------------------------------------------------- termination
@pytest.fixture(params=["rpc", "database"])
def results(request, tmp_path):
    """The app of the run worker's executor, results on the broker (rpc://) or in a database."""
    backend = "rpc://" if request.param == "rpc" else f"db+sqlite:///{tmp_path / 'results.sqlite'}"
    app = _app(backend)
    yield app
    if request.param == "database":
        app.backend.ResultSession().get_bind().dispose()


def _revoked(app, monkeypatch, task_id: str):
    sent = []
    monkeypatch.setattr(app.control, "revoke", lambda task_id, **kw: sent.append((task_id, kw["terminate"])))
    handle = executor.StepResult(task_id, backend=app.backend, app=app)
    handle.revoke()
    assert sent == [(task_id, True)]  # a worker running the step interrupts it
    return handle


def test_a_revoked_step_reads_as_revoked_at_once(results, monkeypatch):
    """No worker may ever hear of the revoke (none serves the queue): the loop must not wait for one. The
    revoke writes nothing to the results' backend (rpc:// can store a result only with the task's request)."""
    handle = _revoked(results, monkeypatch, "waiting-step")
    assert handle.ready()
    with pytest.raises(TaskRevokedError):
        handle.get()


def test_a_stopped_steps_interruption_stored_by_its_worker_still_reads_as_revoked(tmp_path, monkeypatch):
    """The worker that ran the step stores its interruption (a BaseException, which dagster-celery's loop does
    not catch) after the revoke: the handle still reads as revoked, so the loop goes on to its other steps."""
    app = _app(f"db+sqlite:///{tmp_path / 'results.sqlite'}")
    handle = _revoked(app, monkeypatch, "running-step")
    app.backend.store_result("running-step", DagsterExecutionInterruptedError(), states.FAILURE)
    assert handle.ready()
    with pytest.raises(TaskRevokedError):
        handle.get()
    app.backend.ResultSession().get_bind().dispose()


def test_a_step_that_succeeded_before_the_revoke_keeps_its_events(tmp_path, monkeypatch):
    app = _app(f"db+sqlite:///{tmp_path / 'results.sqlite'}")
    app.backend.store_result("done-step", ["its events"], states.SUCCESS)
    handle = _revoked(app, monkeypatch, "done-step")
    assert handle.get() == ["its events"]
    app.backend.ResultSession().get_bind().dispose()


@pytest.fixture(params=["rpc", "postgresql"])
def broker_without_workers(request, monkeypatch):
    """The packaged settings on a vhost of its own that no worker serves; results on it or in PostgreSQL."""
    monkeypatch.delenv("DAGSTER_CELERY_CONFIG", raising=False)
    with rabbit_vhost("dca-exec") as vhost:
        monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", f"pyamqp://guest@127.0.0.1:5672/{vhost}")
        if request.param == "rpc":
            monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "rpc://")
            yield
        else:
            with postgres_database("dca_exec") as db:
                monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{db}")
                yield


def test_terminating_a_run_revokes_every_waiting_step_and_cancels_the_run(broker_without_workers, tmp_path):
    """Dagster's termination of a run (the run marked canceling, its run worker interrupted) while its steps
    wait in a queue no worker serves: every step gets its "was revoked." event and the run ends CANCELED."""
    recon = reconstructable(parallel_job)
    run_config = {"resources": {"io_manager": {"config": {"base_dir": str(tmp_path)}}}}
    with instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = instance.create_run_for_job(job_def=parallel_job, run_config=run_config)
        events, interrupt = [], None
        for event in execute_run_iterator(recon, run, instance=instance):
            events.append(event)
            submitted = [e for e in events if e.message and e.message.startswith("Submitting celery task")]
            if len(submitted) == 3 and interrupt is None:  # the last one is sent right after this event
                instance.report_run_canceling(instance.get_run_by_id(run.run_id))
                interrupt = threading.Thread(target=send_interrupt)
                interrupt.start()
        assert interrupt is not None, "the run ended before its steps were sent"
        interrupt.join()
        revoked = sorted(e.step_key for e in events if e.message and e.message.endswith("was revoked."))
        assert revoked == ["one_0", "one_1", "one_2"]
        assert DagsterEventType.RUN_CANCELED in [e.event_type for e in events]
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
