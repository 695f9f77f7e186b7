"""The code location's Celery executor: dagster-celery's, tuning the run worker.

A Celery step pays per step for set-up that in-process execution does once per run, and the run worker (the
process that runs a job's Celery executor) pays per step too (benchmarks/profile_step.py, benchmarks/README.md).
``tuned_celery_executor`` is dagster-celery's executor, with the same config and the same messages, which in
the run worker first:
1. puts the run's Dagster instance on pooled connections (``fast_task.pool_connections``, as the workers
   do): dagster-postgres opens a new PostgreSQL connection for every event outside the webserver, and the
   run worker writes one ("Submitting celery task") just before sending each step;
2. lowers ``TICK_SECONDS`` (``set_executor_poll_interval``): the executor sleeps 1 s between polls of its
   steps' results (dagster_celery.core_execution_loop), so each step that waits for another one starts up
   to 1 s late and the run ends up to 1 s after its last step (the module reads the value on every loop);
3. has the executor's Celery app read database results with ``BatchPolledDatabaseBackend``
   (``TunedCeleryExecutor.app_args``): each poll asks about every step still running, one
   ``AsyncResult.ready()`` each, i.e. with results in PostgreSQL (celery_config.yaml) 400 queries a second
   for 40 steps in flight at a 0.1 s poll; the batched backend asks one query per poll for all of them;
   it checks Celery's result tables at its first read, not as the first step is sent;
4. ends the loop's sleep between polls as soon as a worker's notice says a step's result is stored
   (dagster_celery_aws.result_notices: PostgreSQL LISTEN/NOTIFY on the result backend's database), so the
   next step is sent at once instead of up to a poll interval later; the poll stays as it was. With no step
   in flight (the loop's last sleep before it sees the run complete), that sleep is ``IDLE_WAIT_SECONDS``;
4b. writes its "Submitting celery task" events after the steps are sent, all those of one pass of the loop in
   one statement as the loop goes to sleep (``is_submission``, ``EventLogStorage.holding``), instead of one write before each step is
   sent: a step's message leaves without waiting for a database round trip. Each event keeps its time (taken
   before the send) and its content; it may be stored after the worker's first event of the step.
4c. freezes the objects it holds as it starts sending steps (``fast_task.freeze_once``): a full garbage
   collection of a run worker walked all of the code location's objects, 75-160 ms with the loop stopped.

It also ends the run's Celery work when the run ends (docs/reliability.md):
5. a run ended by someone else -- failed by the local watchdog or by run monitoring, marked canceled -- is
   noticed by a thread that reads the run's status every ``RUN_WATCH_SECONDS`` and interrupts this process
   as Dagster's own termination does (``send_interrupt``: SIGINT, which the run worker captures);
6. on an interrupt, dagster-celery's loop revokes its steps' tasks and waits until each is ready. Celery's
   revoke reaches only the workers alive at that moment, so a step waiting in a queue without a worker was
   revoked by nobody and the run worker waited forever. Each step's handle (``StepResult``) is therefore
   ready once revoked, and reads as revoked (the loop's "was revoked." event for the step) unless its step had
   already succeeded; it also has the workers interrupt a running step (dagster issue 23222: terminating a
   run did not stop its Celery steps), whose interruption the worker may then store: the run worker does not
   read it. A message still in a queue is not run when a worker takes it later: its run has ended
   (``fast_task``).

It refuses, before it sends any step (``dagster_celery_aws.queues``):
7. a run with a step for a queue the deployment does not have (``DCA_QUEUES``): the step would wait forever;
   the run fails at once naming the job, the step and the queue;
8. an asset whose ``tags`` name a queue its op does not go to (asset tags route nothing; ``op_tags`` do).

``celery_executor`` is that executor configured from the deployment's Celery settings (``celery_config``),
under the stock name ``celery``: what a code location uses. A run's own ``execution: config:`` (stock's
schema) goes over those settings, key by key within ``config_source``, as stock dagster-celery honours it
over its defaults: e.g. ``config_source: {task_always_eager: true}`` runs a job's steps in process, as
dagster-celery's own tests do (the handle of such a step is Celery's in-memory result, as stock's is).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from celery import states
from celery.backends.database import session_cleanup
from celery.exceptions import TaskRevokedError
from celery.result import AsyncResult, EagerResult
from dagster import ExecutorDefinition, Field, multiple_process_executor_requirements
from dagster._core.storage.dagster_run import FINISHED_STATUSES
from dagster._utils import send_interrupt
from dagster_celery import celery_executor as stock_celery_executor
from dagster_celery.config import dict_wrapper
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CeleryExecutor, _submit_task

from dagster_celery_aws import prewarm
from dagster_celery_aws.canary import step_queue
from dagster_celery_aws.celery_config import executor_config
from dagster_celery_aws.fast_task import freeze_once, holding, pool_connections, run_has_ended
from dagster_celery_aws.storage import EventLogStorage
from dagster_celery_aws.queues import DEFAULT_QUEUE, QUEUE_TAG, deployment_queues, routing_problems
from dagster_celery_aws.result_notices import (
    CheckedPoolDatabaseBackend,
    ResultNotices,
    waiting_for_notices,
    with_backend_class,
)

log = logging.getLogger(__name__)

EXECUTOR_POLL_SECONDS = 0.1
RUN_WATCH_SECONDS = 1.0  # how often the run worker reads its run's status (one indexed query)
IDLE_WAIT_SECONDS = 0.005  # the loop's wait when none of its steps is in flight (TunedCeleryExecutor.execute)


def set_executor_poll_interval(seconds: float = EXECUTOR_POLL_SECONDS) -> None:
    import dagster_celery.core_execution_loop as loop

    loop.TICK_SECONDS = seconds


class BatchPolledDatabaseBackend(CheckedPoolDatabaseBackend):
    """Celery's database result backend, whose reads of unfinished tasks are answered from one query per
    poll: the first read after ``BATCH_SECONDS`` asks which of the tasks read so far have finished; the
    others read in the same poll use that answer. A finished task is then read exactly as the stock backend
    reads it (result, traceback, retries on database errors); an unfinished one reads as PENDING, as the stock
    backend reads a task without a row. Writes (the workers' results) are the stock backend's.

    It also keeps its SQLAlchemy engine. Celery keeps one engine per database (a connection pool, pinged and
    recycled: its ``database_engine_options`` defaults) only in the processes its worker forks, and makes a
    new engine and a new connection for every read anywhere else (celery/backends/database/session.py), i.e.
    a PostgreSQL connection and SQLAlchemy's dialect set-up per poll in a run worker. A retryable database
    error drops the kept engine (Celery's ``on_backend_retryable_error``), so a restarted database is
    reconnected to. Its connections are checked as the workers' are (``CheckedPoolDatabaseBackend``), and are in
    autocommit: a read is one statement, one round trip, not BEGIN, SELECT and ROLLBACK. The run worker only
    reads results (the workers store them). The tasks known finished since the last read (a notice names
    several when steps end together) are read in one query, at the first read of one of them (``_query_task``)."""

    BATCH_SECONDS = EXECUTOR_POLL_SECONDS / 2  # one executor poll reads all its steps well within this

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session_manager.forked = True  # the session manager's switch for "keep the engine"
        self.engine_options["isolation_level"] = "AUTOCOMMIT"
        self._batch_lock = threading.Lock()
        self._waiting: set[str] = set()
        self._finished: set[str] = set()
        self._unread: set[str] = set()  # finished, their rows not read yet
        self._rows: dict = {}  # rows read with another task's, not yet asked for
        self._polled_at = float("-inf")

    def finished_ids(self) -> set[str]:
        """The tasks known finished: from the workers' notices and from the batch queries."""
        with self._batch_lock:
            return set(self._finished)

    def _get_task_meta_for(self, task_id):
        with self._batch_lock:
            if task_id not in self._finished:
                self._waiting.add(task_id)
                if time.monotonic() - self._polled_at >= self.BATCH_SECONDS:
                    self._add_finished(self._finished_among(self._waiting))
                    self._polled_at = time.monotonic()
            finished = task_id in self._finished
        if finished:
            return super()._get_task_meta_for(task_id)
        task = self.task_cls(task_id)
        task.status, task.result = states.PENDING, None
        return task.to_dict()

    def note_finished(self, task_ids) -> None:
        """These tasks' results are stored (the workers' result notices): read them without asking first."""
        with self._batch_lock:
            self._add_finished(task_ids)

    def _add_finished(self, task_ids) -> None:
        new = set(task_ids) - self._finished
        self._finished |= new
        self._unread |= new
        self._waiting -= new

    def _query_task(self, session, task_id, for_update=False):
        """The stock backend's read of a task's row (in its ``_get_task_meta_for``); the row of a task known
        finished comes with those of the others not read yet, in one query."""
        with self._batch_lock:
            if not for_update and task_id in self._unread:
                column = self.task_cls.task_id
                self._rows |= {t.task_id: t for t in session.query(self.task_cls).filter(column.in_(self._unread))}
                self._unread.clear()
            row = self._rows.pop(task_id, None)
        return row if row is not None else super()._query_task(session, task_id, for_update=for_update)

    def _finished_among(self, task_ids: set[str]) -> set[str]:
        session = self.ResultSession()
        with session_cleanup(session):
            column = self.task_cls.task_id
            rows = session.query(column).filter(column.in_(task_ids), self.task_cls.status.in_(states.READY_STATES))
            return {task_id for (task_id,) in rows}


class StepResult(AsyncResult):
    """The run worker's handle on a step's task, whose revoke (dagster-celery's loop revokes every step it
    waits for when the run is interrupted) stops the step everywhere and ends the wait for it (5-6 above)."""

    revoked = False

    def revoke(self, connection=None, terminate=False, signal=None, wait=False, timeout=None):
        # terminate: a worker running the step sends SIGTERM to its pool process, which Dagster's step
        # execution turns into an interrupt of the step (a STEP_FAILURE), as a terminated run's steps are
        # interrupted in the other executors; a worker holding the message drops it.
        super().revoke(connection, terminate=True, signal=signal, wait=wait, timeout=timeout)
        # No worker may ever hear of it (none serves the queue now): the loop must not wait for one. Kept here,
        # not in the result backend: a worker's result (the interruption it stores) would overwrite it there,
        # and the rpc:// backend can record a result only for the worker that has the task's request.
        self.revoked = True

    def ready(self):
        return self.revoked or super().ready()

    def get(self, *args, **kwargs):
        """The step's events; for a revoked step, unless it had succeeded, Celery's ``TaskRevokedError``, which
        the loop turns into the step's "was revoked." event (the interruption of a step it stopped is the
        worker's to report: an exception here would end the loop before it read its other steps)."""
        if self.revoked and self.state != states.SUCCESS:
            raise TaskRevokedError(f"step task {self.id} was revoked: its run was interrupted")
        return super().get(*args, **kwargs)


def submit_step(app, plan_context, step, queue, priority, known_state) -> StepResult | EagerResult:
    """dagster-celery's ``_submit_task`` (the same message), returning a ``StepResult``; with Celery's
    ``task_always_eager`` the step has already run in this process, and its in-memory result is the handle
    (the result backend holds nothing of it)."""
    sent = _submit_task(app, plan_context, step, queue, priority, known_state)
    if isinstance(sent, EagerResult):
        return sent
    return StepResult(sent.id, backend=sent.backend, app=app)


@contextlib.contextmanager
def interrupt_when_ended_elsewhere(instance, run_id: str, seconds: float = RUN_WATCH_SECONDS):
    """While in this block, a thread interrupts this process once the run is finished (SUCCESS, FAILURE,
    CANCELED). The run worker writes its run's final status only after the executor returns, so a finished
    run here was ended by someone else; a run being canceled is interrupted by its run launcher already."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(seconds):
            try:
                ended = run_has_ended(instance, run_id, FINISHED_STATUSES)
            except Exception:  # noqa: BLE001 - the database is briefly unreachable: look again next time
                continue
            if ended:
                log.warning("run %s was ended outside this run worker: interrupting its Celery execution", run_id)
                send_interrupt()
                return

    thread = threading.Thread(target=watch, name="run-end-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


SUBMITTING = "Submitting celery task for step "  # dagster_celery/core_execution_loop.py, before each send


def is_submission(event) -> bool:
    """Whether a stored event is dagster-celery's "Submitting celery task for step ..." engine event."""
    dagster_event = event.dagster_event
    return dagster_event is not None and dagster_event.is_engine_event and (dagster_event.message or "").startswith(SUBMITTING)


class QueueRoutingError(Exception):
    """A run's steps would not reach the deployment's workers (``check_routing``)."""


def check_routing(plan_context, execution_plan, default_queue: str, served) -> None:
    """Raise ``QueueRoutingError`` naming every step of the plan that would not reach a worker (7-8 above)."""
    job_def = plan_context.job.get_definition()
    queues = {}
    for key in execution_plan.step_keys_to_execute:
        queues[key] = execution_plan.get_step_by_key(key).tags.get(QUEUE_TAG, default_queue)
    problems = routing_problems(job_def, queues, default_queue, served)
    if problems:
        raise QueueRoutingError("; ".join(problems))


class TunedCeleryExecutor(CeleryExecutor):
    """dagster-celery's ``CeleryExecutor``; before it sends the run's steps, it tunes the run worker, and
    it ends the run's Celery work when the run ends (this module's docstring, 1-6)."""

    def app_args(self):
        """The stock arguments of the executor's Celery app, with a ``db+...`` result backend read by
        ``BatchPolledDatabaseBackend`` (``with_backend_class``). Only this executor's app is affected; the
        workers store results with ``NotifyingDatabaseBackend`` (their settings, ``celery_config``)."""
        args = super().app_args()
        backend = args["backend"]
        if backend and backend.startswith("db+"):
            args["backend"] = with_backend_class(backend, BatchPolledDatabaseBackend)
            # Celery checks (creates) its result tables when the backend is made, i.e. as the run's first step
            # is sent: ~0.1 s (a connection and the table look-ups) before that step leaves. Made lazily, the
            # check happens at the first result read, while the first steps run. (The workers make the tables
            # at their start; this app only reads.)
            args["config_source"] = dict_wrapper({**vars(args["config_source"]), "database_create_tables_at_setup": False})
        return args

    def execute(self, plan_context, execution_plan):
        """``CeleryExecutor.execute``: dagster-celery's loop, sending each step with ``submit_step``, and
        waking between polls as soon as a worker notices that a step's result is stored (4 above)."""
        default_queue = getattr(getattr(self, "config_source", None), "task_default_queue", DEFAULT_QUEUE)
        served = deployment_queues()
        check_routing(plan_context, execution_plan, default_queue, served)
        prewarm.wake(execution_plan, default_queue, plan_context.log)  # cold queues start a worker now
        pool_connections(plan_context.instance)
        freeze_once()  # the code location, the instance and the plan: not walked by each full collection (4c)
        set_executor_poll_interval()
        notices = ResultNotices(self.backend, plan_context.run_id)
        notices.listen()  # before any step is sent: no notice can come before it
        backends = []  # the loop's result backend, known from the first step sent
        sent: set[str] = set()
        idle = [0]  # consecutive waits with no step in flight

        def submit(app, plan_context, step, queue, *args):
            result = submit_step(app, plan_context, step, step_queue(plan_context, step, queue, served), *args)
            if not backends:
                backends.append(result.backend)
            sent.add(result.id)
            return result

        storage = plan_context.instance.event_log_storage

        def wait(seconds: float) -> None:
            if isinstance(storage, EventLogStorage):
                storage.write_held()  # this pass's "Submitting" events: its steps are sent (4b)
            backend = backends[0] if backends else None
            batched = hasattr(backend, "note_finished")
            # The loop sleeps once more after it has read its last step's result, before it sees that the run
            # is complete: with no step in flight no notice can come, so that wait is short. Once only in a
            # row: with nothing in flight and the run not complete (steps held by a concurrency limit or a
            # retry delay), the loop polls at its interval.
            if batched and sent and sent <= backend.finished_ids():
                idle[0] += 1
                if idle[0] == 1:
                    seconds = min(seconds, IDLE_WAIT_SECONDS)
            else:
                idle[0] = 0
            finished = notices.wait(seconds)
            if finished and batched:
                backend.note_finished(finished)

        try:
            with (
                interrupt_when_ended_elsewhere(plan_context.instance, plan_context.run_id),
                waiting_for_notices(wait),
                holding(plan_context.instance, is_submission),
            ):
                yield from core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)
        finally:
            notices.close()


def _tuned_celery_executor(init_context) -> TunedCeleryExecutor:
    """dagster-celery's executor, as the stock definition makes it from the config, in the tuned class."""
    tuned = TunedCeleryExecutor.__new__(TunedCeleryExecutor)
    tuned.__dict__.update(vars(stock_celery_executor.executor_creation_fn(init_context)))
    return tuned


tuned_celery_executor = ExecutorDefinition(
    name=stock_celery_executor.name,
    config_schema=stock_celery_executor.config_schema,
    requirements=multiple_process_executor_requirements(),
    executor_creation_fn=_tuned_celery_executor,
    description="dagster-celery's celery_executor, tuning the run worker (dagster_celery_aws.executor)",
)


def configured_executor(settings: dict) -> ExecutorDefinition:
    """``tuned_celery_executor`` with ``settings`` (an ``execution: config:`` block) under a run's own
    ``execution: config:``: stock's keys, none of them defaulted here (a default would override the settings);
    what a run gives replaces the setting, but ``config_source``, which is merged key by key."""
    fields = stock_celery_executor.config_schema.config_type.fields
    schema = {key: Field(f.config_type, is_required=False, description=f.description) for key, f in fields.items()}

    def over_settings(run_config: dict) -> dict:
        merged = {**settings, **run_config}
        sources = {**(settings.get("config_source") or {}), **(run_config.get("config_source") or {})}
        return {**merged, "config_source": sources} if sources else merged

    return tuned_celery_executor.configured(over_settings, name=stock_celery_executor.name, config_schema=schema)


celery_executor = configured_executor(executor_config())
