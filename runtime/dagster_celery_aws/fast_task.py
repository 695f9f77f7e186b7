"""The workers' ``execute_plan`` task: dagster-celery's own, minus the per-task set-up a worker can keep.

dagster-celery's task (dagster_celery/tasks.py ``create_task``) builds a new ``DagsterInstance`` from the
message's ``InstanceRef`` for every step: the storage classes re-inspect the database schema, the S3 compute
log manager builds a new boto3 client (botocore re-parses its endpoint and service JSON files: ~0.1-0.5 s),
and every event of the step opens a new PostgreSQL connection (dagster-postgres uses ``NullPool`` outside the
webserver). Profiled on a trivial step (benchmarks/profile_step.py) that set-up was most of the step.

This task is the same function with the same name (``execute_plan``), arguments and return value: the stock
executor's messages are unchanged and a run worker cannot tell the two apart. It differs in these things:
- the instance is kept for the life of the pool process, per ``InstanceRef``, with its PostgreSQL storages on
  a small connection pool (``DagsterInstance.optimize_for_webserver``, what dagster-webserver does, without a
  statement timeout) whose connections are checked when taken from the pool (``storage.check_on_checkout``), so a
  connection that PostgreSQL dropped is replaced instead of failing a step;
- the run's record is read once per pool process and run (``run_for``; ~12 ms per step in the profile), not
  once per step;
- the job's whole execution plan is built once per pool process and run, and each step runs its subset of it
  (``plan_for_steps``), not a whole plan per step (47 ms per step in a fan-out of 500); the run config that
  plan was built with, validated and resolved, is the one the step's context uses (``_KnownRunConfig``), not
  one Dagster builds again for every step (~7 ms per step);
- the step's events are written in fewer statements: some wait for the next one (below, "Event writes").

It adds three checks before it runs a step (docs/reliability.md; the third in ``scoped_env``):
- a step whose run has ended (failed, canceled, being canceled) is not run: a message can outlive its run
  (it waited in a queue without a worker, and Celery's revoke lives only in the memory of the workers alive
  when it was sent). The task logs one line and returns no events, so the message is acknowledged;
- a step is started at most ``max_deliveries()`` times (``DCA_MAX_DELIVERIES``, the stack's
  ``broker.maxDeliveries``). A worker that dies mid-step (an out-of-memory kill, a crash in native code)
  has the message requeued (late acks), and a step that kills its worker every time would be redelivered
  without end. RabbitMQ keeps no delivery count on the classic priority queues dagster-celery declares (only
  quorum queues have one), so the count is kept where it survives the worker: the "Executing steps ... in
  celery worker" engine event that this task writes before it starts the step names the Celery task id,
  and a redelivered message (only then: the first delivery costs no query) counts those of its task id.
  Past the bound the step fails with a STEP_FAILURE event naming the step, the queue and the likely cause,
  written here and returned to the run worker, which fails the step as any other step failure.
- a step whose resources read a queue-scoped variable this worker's queue was not granted (it holds the
  placeholder of ``scoped_env``) fails at once with a STEP_FAILURE naming the variable, the resource and the
  queues granted it.

Event writes. Each event is a statement, one round trip to PostgreSQL (``storage.EventLogStorage``). A step of
benchmarks/jobs.py writes, in this order (Dagster 1.13, dagster/_core/execution/plan/execute_plan.py and
execute_step.py, context_creation_job.py), with user code where the brackets are:
  "Executing steps" (this task) [the job's code loaded] RESOURCE_INIT_STARTED [resources built]
  RESOURCE_INIT_SUCCESS LOGS_CAPTURED STEP_START [inputs loaded, the op's body] STEP_OUTPUT [the I/O manager's
  handle_output, whose log lines are events too] HANDLED_OUTPUT STEP_SUCCESS [hooks, resource teardown]
and the task returns the events to Celery, which stores the result. During ``execute_plan_iterator`` this
task holds some events back (``EventLogStorage.holding``, per thread and pool process) and writes them in one
statement with the next event written, in the same order, with the same content (``HoldRule``):
- RESOURCE_INIT_SUCCESS and LOGS_CAPTURED wait for STEP_START: in between Dagster only starts the log capture
  and builds the step's context. The set-up is 3 statements instead of 5 (2 where the code is loaded already).
- HANDLED_OUTPUT waits for the next event (STEP_SUCCESS, the next output's STEP_OUTPUT) when the op is a plain
  function: its body returned before its first output was handled, and what runs meanwhile is Dagster's,
  except the type check of a next output (a ``DagsterType``'s function). A generator op's body goes on after
  each output, so there HANDLED_OUTPUT is written at once.
- the step's outcome (STEP_SUCCESS, STEP_FAILURE, STEP_UP_FOR_RETRY) and whatever follows wait until
  ``execute_plan_iterator`` ends or raises, before the task returns: the result the run worker waits for is
  stored after them. Hooks and resource teardown run meanwhile: a worker lost there loses these events, and its
  message is redelivered and the step run again (its result never reached the run worker), as before.
- "Executing steps" (the delivery count) waits for RESOURCE_INIT_STARTED where this pool process has loaded
  the job's code for the run already (a step of the run ran here before): in between Dagster only builds the
  step's plan and context. Where the code is still to be loaded (user code: a module that OOMs on import), it
  is written at once.
- every other event is written at once, with what waits before it: RESOURCE_INIT_STARTED (before resources
  are built), STEP_START, STEP_OUTPUT (before handle_output), log lines, failures, asset events (then their asset tables). So no event waits while
  user code builds resources, loads inputs, runs the op's body or handles an output, and what a worker killed
  there had written is in the log as before. The end is 2 statements instead of 3 (tests/test_fast_task.py).

What is NOT changed: how the message is acknowledged or redelivered. ``task_acks_late``,
``task_reject_on_worker_lost`` and the prefetch limit are app-wide settings (celery_config.yaml) that this
task picks up like the stock one did (tests/test_fast_task.py checks it); if the pool process dies
mid-step, the message is requeued exactly as before. A task that raises is still a failed task.

Used by the workers only: the settings module ``dagster_celery_config`` connects ``install`` to Celery's
``import_modules`` signal, which a worker sends at start-up (``loader.import_default_modules``): after
``dagster_celery.app`` registered its own task, before the consumer maps task names to tasks and before the
pool processes fork. ``install`` puts this task in the stock one's place. Importing this module changes nothing.
``pool_connections`` also serves the run worker: the code location's executor pools the run's instance with it
(``dagster_celery_aws.executor``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import logging
import os
import threading
from collections import OrderedDict

from celery import Celery
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster import _check as check
from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.api import create_execution_plan, execute_plan_iterator
from dagster._core.execution.plan.handle import StepHandle
from dagster._core.execution.plan.objects import ErrorSource, StepFailureData
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.execution.plan.step import ExecutionStep, StepKind
from dagster._core.system_config.objects import ResolvedRunConfig
from dagster._core.storage.dagster_run import FINISHED_STATUSES
from dagster._core.storage.runs.schema import RunsTable
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import serialize_value, unpack_value
from dagster._utils.error import SerializableErrorInfo
from dagster_celery.config import TASK_EXECUTE_PLAN_NAME
from dagster_celery.core_execution_loop import DELEGATE_MARKER
from dagster_celery.executor import CeleryExecutor

from dagster_celery_aws import scoped_env
from dagster_celery_aws.compute_logs import deferring_uploads
from dagster_celery_aws.storage import EventLogStorage
from dagster_celery_aws.storage import check_on_checkout as _check_on_checkout

log = logging.getLogger(__name__)

# Connection pool of each PostgreSQL storage in a pool process: one connection kept; more opened while
# needed and closed after (dagster-postgres nests connections in a few places): at most 2 per storage,
# within the connection budget of infra/stackfile/limits.py. Recycled hourly.
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 1
NO_STATEMENT_TIMEOUT = 0  # as with dagster-postgres' own NullPool engines
RUNS_KEPT = 16  # run records kept per pool process (run_for)
MAX_DELIVERIES = 3  # broker.maxDeliveries' default (infra/stackfile/config.py)
# A step of a run in one of these is not run: the run is over, or its termination was asked for.
RUN_ENDED = (*FINISHED_STATUSES, DagsterRunStatus.CANCELING)
TASK_ID = "Celery task id"  # metadata key of the "Executing steps" engine event
# Events that wait for the next one written (module docstring, "Event writes")
SET_UP_HELD = frozenset({DagsterEventType.RESOURCE_INIT_SUCCESS, DagsterEventType.LOGS_CAPTURED})
OUTCOMES = frozenset({DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
                      DagsterEventType.STEP_UP_FOR_RETRY})  # fmt: skip

_lock = threading.Lock()
_instances: dict[str, DagsterInstance] = {}
_pid = os.getpid()


def _postgres_engines(instance: DagsterInstance) -> list | None:
    """The SQLAlchemy engines of the instance's storages when they are all dagster-postgres, else None."""
    from sqlalchemy.engine import Engine

    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage import PostgresScheduleStorage

    storages = [instance.run_storage, instance.event_log_storage, instance.schedule_storage]
    if not all(isinstance(s, c) for s, c in zip(storages, (PostgresRunStorage, PostgresEventLogStorage,
                                                            PostgresScheduleStorage))):  # fmt: skip
        return None
    engines = [getattr(s, "_engine", None) for s in storages]
    return engines if all(isinstance(e, Engine) for e in engines) else None


def pool_connections(instance: DagsterInstance) -> bool:
    """Put the instance's PostgreSQL storages on a checked connection pool; False (nothing changed) if its
    storages are not all dagster-postgres ones. An instance already pooled here keeps its pools (a process
    that runs several Celery runs on one instance would otherwise leave a pool behind each time)."""
    from sqlalchemy import event

    engines = _postgres_engines(instance)
    if engines is None:
        return False
    if all(event.contains(e, "checkout", _check_on_checkout) for e in engines):
        return True
    instance.optimize_for_webserver(
        statement_timeout=NO_STATEMENT_TIMEOUT, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=POOL_MAX_OVERFLOW
    )
    engines = _postgres_engines(instance)
    if engines is None:  # pragma: no cover - a dagster-postgres release that changed its internals
        return False
    for engine in engines:  # dagster_celery_aws.storage's engines have it already
        if not event.contains(engine, "checkout", _check_on_checkout):
            event.listen(engine, "checkout", _check_on_checkout)
    return True


def instance_for(instance_ref) -> DagsterInstance:
    """The pool process's instance for this ref, made on first use (never in the parent before the fork)."""
    global _pid
    key = serialize_value(instance_ref)
    with _lock:
        if os.getpid() != _pid:  # forked after instances were made: do not share their connections
            _instances.clear()
            _pid = os.getpid()
        instance = _instances.get(key)
        if instance is None:
            instance = DagsterInstance.from_ref(instance_ref)
            pooled = pool_connections(instance)
            log.info("execute_plan: new Dagster instance for this process (pooled connections: %s)", pooled)
            _instances[key] = instance
        return instance


@functools.lru_cache(maxsize=RUNS_KEPT)
def run_for(instance: DagsterInstance, run_id: str) -> DagsterRun:
    """The run's record, read once per pool process: the steps of a run arrive one after another, and what a
    step reads of it (job, run config, tags, snapshot ids) does not change while the run goes on."""
    dagster_run = instance.get_run_by_id(run_id)
    check.invariant(dagster_run, f"Could not load run {run_id}")  # raises: a missing run is not kept
    return dagster_run


_plans: OrderedDict = OrderedDict()  # (run id, job) -> (job_def, resolved run config, whole plan) or None
_plans_lock = threading.Lock()


def _plan_key(recon_job: ReconstructableJob, dagster_run: DagsterRun) -> tuple[str, str]:
    return dagster_run.run_id, serialize_value(recon_job.get_python_origin())


def _whole_plan(recon_job: ReconstructableJob, dagster_run: DagsterRun):
    """The run's whole execution plan with its job and resolved config, made once per pool process and run;
    None for a job with dynamic outputs (its steps exist only once resolved from the known state)."""
    key = _plan_key(recon_job, dagster_run)
    with _plans_lock:
        if key in _plans:
            _plans.move_to_end(key)
            return _plans[key]
    job_def = recon_job.get_definition()
    resolved = ResolvedRunConfig.build(job_def, dagster_run.run_config)
    plan = create_execution_plan(recon_job, dagster_run.run_config)
    static = all(type(step) is ExecutionStep for step in plan.step_dict.values()) and not plan.resolvable_map
    entry = (job_def, resolved, plan) if static else None
    with _plans_lock:
        _plans[key] = entry
        while len(_plans) > RUNS_KEPT:
            _plans.popitem(last=False)
    return entry


def code_loaded(recon_job: ReconstructableJob, dagster_run: DagsterRun) -> bool:
    """Whether this process has loaded the job's code for this run already (``_whole_plan`` has its entry)."""
    with _plans_lock:
        return _plan_key(recon_job, dagster_run) in _plans


def plan_for_steps(recon_job: ReconstructableJob, dagster_run: DagsterRun, step_keys, known_state) -> ExecutionPlan:
    """What ``create_execution_plan(recon_job, run_config, step_keys_to_execute=step_keys,
    known_state=known_state)`` returns, without building the whole job's plan for every step.

    ``create_execution_plan`` resolves the run config and builds a step for every node of the job, then keeps
    the requested ones (``ExecutionPlan.build_subset_plan``): 2.5 ms per step for a fan-out of 20, 47 ms
    for one of 500 (whose 500 steps each built 500 steps). Here the whole plan is built once per pool process
    and run, and each step's plan is its subset, carrying the step's known state (retry counts, outputs
    ready), as the stock plan does. A job with dynamic outputs, or a known state that maps dynamic outputs,
    takes the stock path: there the known state decides which steps exist."""
    entry = None if known_state is not None and known_state.dynamic_mappings else _whole_plan(recon_job, dagster_run)
    if entry is None:
        return create_execution_plan(
            recon_job, dagster_run.run_config, step_keys_to_execute=step_keys, known_state=known_state
        )
    job_def, resolved, whole = entry
    subset = whole.build_subset_plan(step_keys, job_def, resolved)
    return subset._replace(known_state=known_state or KnownExecutionState())


_frozen_in: set[int] = set()  # pids of the processes that froze their objects


def freeze_once() -> None:
    """Move every object this process holds now into the garbage collector's permanent generation, once per
    process (``gc.freeze``): after the code location, the Dagster instance and the run's plan are loaded.

    A process that has loaded a code location holds hundreds of thousands of objects, and each full (generation
    2) collection walks all of them: 75-160 ms in a run worker of the benchmark's code location, 4 times per run,
    with the loop stopped meanwhile (a fan-out's join was sent up to 150 ms late). Frozen, they are not walked
    again; objects made later are collected as before. What is garbage at that moment stays (it is no more than a
    moment's), so it is done once per process: a run worker runs one run, a pool process many steps."""
    if os.getpid() not in _frozen_in:
        _frozen_in.add(os.getpid())
        gc.freeze()


def max_deliveries(env=os.environ) -> int:
    """How many deliveries of a step's message may start the step: DCA_MAX_DELIVERIES, at least 1."""
    try:
        return max(1, int(env.get("DCA_MAX_DELIVERIES", MAX_DELIVERIES)))
    except ValueError:
        return MAX_DELIVERIES


def run_has_ended(instance: DagsterInstance, run_id: str, statuses=RUN_ENDED) -> bool:
    """Whether the run is in one of ``statuses``: one indexed query that reads no run record (reading the record
    costs more, and ``run_for`` caches it, so it would not show a status that changed since).

    On a SQL run storage (PostgreSQL, SQLite) the query is a statement made once per process, run on the
    storage's own connection: ``get_run_ids`` builds and compiles its query anew each time, 2-3 ms of CPU
    per step before it starts (benchmarks/profile_step.py), for the same one round trip."""
    storage = instance.run_storage
    if not isinstance(storage, SqlRunStorage):
        return bool(instance.get_run_ids(RunsFilter(run_ids=[run_id], statuses=list(statuses)), limit=1))
    with storage.connect() as conn:
        return conn.execute(_ended_query(tuple(statuses)), {"run_id": run_id}).first() is not None


@functools.lru_cache(maxsize=4)
def _ended_query(statuses: tuple[DagsterRunStatus, ...]):
    from sqlalchemy import text

    names = [f"s{i}" for i in range(len(statuses))]
    return text(
        f"SELECT run_id FROM {RunsTable.name} WHERE run_id = :run_id "
        f"AND status IN ({', '.join(':' + n for n in names)}) LIMIT 1"
    ).bindparams(**{n: s.value for n, s in zip(names, statuses)})


def starts_of(instance: DagsterInstance, run_id: str, task_id: str) -> int:
    """How many times a delivery of Celery task ``task_id`` started its step: its "Executing steps" events."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    ids = [r.event_log_entry.get_dagster_event().engine_event_data.metadata.get(TASK_ID) for r in records]
    return sum(1 for m in ids if m is not None and m.value == task_id)


def step_failure(instance: DagsterInstance, dagster_run: DagsterRun, step_key: str, text: str, kind: str):
    """A STEP_FAILURE of ``step_key`` saying ``text``, written to the run's event log here and returned to the
    run worker like a step's own failure. Built without the job's code: loading it may be what kills the worker."""
    handle = StepHandle.parse_from_key(step_key)
    event = DagsterEvent(
        event_type_value=DagsterEventType.STEP_FAILURE.value,
        job_name=dagster_run.job_name,
        step_handle=handle,
        node_handle=handle.node_handle,
        step_kind_value=StepKind.COMPUTE.value,
        logging_tags={},
        event_specific_data=StepFailureData(
            error=SerializableErrorInfo(text, [], kind),
            user_failure_data=None,
            error_source=ErrorSource.FRAMEWORK_ERROR,
        ),
        message=f'Execution of step "{step_key}" failed.',
        pid=os.getpid(),
    )
    instance.report_dagster_event(event, dagster_run.run_id, log_level=logging.ERROR)
    return event


def step_lost(instance: DagsterInstance, dagster_run: DagsterRun, step_key: str, queue: str, started: int):
    """The step's failure after ``started`` deliveries that each lost their worker."""
    text = (
        f'step "{step_key}" was started {started} times by deliveries of its Celery message on queue "{queue}", '
        f"and each time its worker was lost before the step ended; it is not started again (broker.maxDeliveries "
        f"= {max_deliveries()}). Likely cause: the step kills its worker -- out of memory (on ECS the stopped "
        f'task\'s reason is OutOfMemoryError: raise queues[].memory of queue "{queue}") or a crash in native '
        f"code -- or it runs longer than the broker's consumer_timeout (broker.consumerTimeoutMinutes), or its "
        f"worker was on Fargate Spot and interrupted each time (the stopped task's reason says so: raise "
        f'queues[].capacity.onDemandBase of queue "{queue}" or broker.maxDeliveries). The worker\'s log shows how '
        f"it ended."
    )
    return step_failure(instance, dagster_run, step_key, text, "StepDeliveriesExceeded")


def ungranted(recon_job, dagster_run, execution_plan, step_key: str, queue: str | None) -> list[str]:
    """Queue-scoped variables the step's resources would read as placeholders here (``scoped_env``)."""
    entry = _whole_plan(recon_job, dagster_run)
    if entry is None:  # dynamic outputs: not cached
        job_def = recon_job.get_definition()
        resolved = ResolvedRunConfig.build(job_def, dagster_run.run_config)
    else:
        job_def, resolved, _ = entry
    step = execution_plan.get_step_by_key(step_key)
    return scoped_env.step_problems(job_def, step, resolved, execution_plan, queue)


class HoldRule:
    """Which of a Celery step's events wait for the next one written (module docstring, "Event writes"):
    the first event ("Executing steps") if ``hold_first``; the set-up's; HANDLED_OUTPUT unless the op's body
    resumes after an output (``body_resumes``, known once the step's plan is); the outcome and what follows."""

    def __init__(self, hold_first: bool = False):
        self.first = hold_first
        self.held = SET_UP_HELD
        self.ended = False  # once the step's outcome came, all that follows waits for the task's end

    def body_resumes(self, resumes: bool) -> None:
        self.held = SET_UP_HELD if resumes else SET_UP_HELD | {DagsterEventType.HANDLED_OUTPUT}

    def __call__(self, event: EventLogEntry) -> bool:
        first, self.first = self.first, False
        self.ended = self.ended or event.dagster_event_type in OUTCOMES
        return first or self.ended or event.dagster_event_type in self.held


def body_resumes(recon_job: ReconstructableJob, execution_plan: ExecutionPlan, step_key: str) -> bool:
    """Whether the step's op runs code of its own after it yields an output: a generator op, or an op whose
    compute function is not an ``@op``'s (``@asset`` makes an ``@op``) and so cannot be told apart."""
    handle = execution_plan.get_step_by_key(step_key).node_handle
    compute = getattr(recon_job.get_definition().get_node(handle).definition, "compute_fn", None)
    if not isinstance(compute, DecoratedOpFunction):
        return True
    return inspect.isgeneratorfunction(compute.decorated_fn) or inspect.isasyncgenfunction(compute.decorated_fn)


def holding(instance: DagsterInstance, rule):
    """The instance's event log storage holding this thread's events by ``rule`` (``EventLogStorage.holding``);
    nothing held if it is not ours. Here a ``HoldRule``; in the run worker, its "Submitting" events (executor)."""
    storage = instance.event_log_storage
    return storage.holding(rule) if isinstance(storage, EventLogStorage) else contextlib.nullcontext()


def execute_plan(self, execute_step_args_packed, executable_dict):
    """dagster_celery.tasks ``_execute_plan``, with the instance from ``instance_for``, after the checks in
    this module's docstring."""
    execute_step_args = unpack_value(
        check.dict_param(execute_step_args_packed, "execute_step_args_packed"), as_type=ExecuteStepArgs
    )
    check.dict_param(executable_dict, "executable_dict")
    (step_key,) = execute_step_args.step_keys_to_execute  # dagster-celery sends one step per message
    run_id = execute_step_args.run_id
    self.request.dca_run_id = run_id  # the channel of the result's notice (result_notices.NotifyingDatabaseBackend)
    delivery = self.request.delivery_info or {}

    instance = instance_for(execute_step_args.instance_ref)
    if run_has_ended(instance, run_id):
        log.warning("execute_plan: not running step %s of run %s: the run has ended", step_key, run_id)
        return []
    dagster_run = run_for(instance, run_id)
    if delivery.get("redelivered"):
        started = starts_of(instance, run_id, self.request.id)
        if started >= max_deliveries():
            event = step_lost(instance, dagster_run, step_key, delivery.get("routing_key"), started)
            log.error("execute_plan: run %s: %s", run_id, event.step_failure_data.error.message)
            return [serialize_value(event)]

    recon_job = ReconstructableJob.from_dict(executable_dict)
    # "Executing steps" is in the log before any user code of the step runs, so that a worker that dies there is
    # counted: written at once if the job's code is still to be loaded in this process; else held, and written
    # with RESOURCE_INIT_STARTED, before the resources are built.
    rule = HoldRule(hold_first=code_loaded(recon_job, dagster_run))
    # The compute-log upload at the step's end runs while the result is stored and the next step starts.
    with deferring_uploads(), holding(instance, rule):
        engine_event = instance.report_engine_event(
            f"Executing steps {step_key} in celery worker",
            dagster_run,
            EngineEventData(
                {"step_keys": step_key, "Celery worker": self.request.hostname, TASK_ID: self.request.id},
                marker_end=DELEGATE_MARKER,
            ),
            CeleryExecutor,
            step_key=step_key,
        )
        execution_plan = plan_for_steps(
            recon_job, dagster_run, execute_step_args.step_keys_to_execute, execute_step_args.known_state
        )
        if scoped_env.any_placeholder():
            problems = ungranted(recon_job, dagster_run, execution_plan, step_key, delivery.get("routing_key"))
            if problems:
                event = step_failure(instance, dagster_run, step_key, "; ".join(problems), "QueueScopedVariableNotGranted")
                log.error("execute_plan: run %s: %s", run_id, "; ".join(problems))
                return [serialize_value(engine_event), serialize_value(event)]
        rule.body_resumes(body_resumes(recon_job, execution_plan, step_key))
        events = [engine_event]
        entry = _whole_plan(recon_job, dagster_run)
        known = contextlib.nullcontext() if entry is None else _known_run_config.known_run_config(entry[0], dagster_run.run_config, entry[1])
        with known:
            events.extend(
                execute_plan_iterator(
                    execution_plan=execution_plan,
                    job=recon_job,
                    dagster_run=dagster_run,
                    instance=instance,
                    retry_mode=execute_step_args.retry_mode,
                    run_config=dagster_run.run_config,
                )
            )
    freeze_once()  # the first step of a pool process has loaded what the next ones use
    return [serialize_value(event) for event in events]


class _KnownRunConfig:
    """Stands in for ``ResolvedRunConfig`` in dagster/_core/execution/context_creation_job.py, whose one use of
    it at run time is ``ResolvedRunConfig.build(job_def, run_config)`` as a step's context is made: the run
    config validated against the job's schema and resolved, ~7 ms of CPU per step (benchmarks/profile_step.py).
    In a thread inside ``known_run_config`` it returns the one ``_whole_plan`` built for that job definition
    (the same object) and run config, once per pool process and run; anywhere else, Dagster's ``build``."""

    def __init__(self):
        self._local = threading.local()

    def build(self, job_def, run_config=None) -> ResolvedRunConfig:
        known = getattr(self._local, "known", None)
        if known is not None and known[0] is job_def and known[1] == (run_config or {}):
            return known[2]
        return ResolvedRunConfig.build(job_def, run_config)

    @contextlib.contextmanager
    def known_run_config(self, job_def, run_config, resolved: ResolvedRunConfig):
        self._local.known = (job_def, run_config or {}, resolved)
        try:
            yield
        finally:
            self._local.known = None


_known_run_config = _KnownRunConfig()


def install_known_run_config() -> None:
    import dagster._core.execution.context_creation_job as context_creation

    context_creation.ResolvedRunConfig = _known_run_config


def install(app: Celery):
    """Register ``execute_plan`` on the app in place of dagster-celery's task; returns the task."""
    install_known_run_config()
    if TASK_EXECUTE_PLAN_NAME in app.tasks:
        app.tasks.unregister(TASK_EXECUTE_PLAN_NAME)
    return app.task(bind=True, name=TASK_EXECUTE_PLAN_NAME, shared=False)(execute_plan)


def install_on_import_modules(sender: Celery, **kwargs):
    """Receiver of Celery's ``import_modules`` signal (sent by the worker app's loader at worker start-up)."""
    task = install(sender)
    log.info("execute_plan: %s.%s replaces dagster-celery's task", __name__, task.run.__name__)
