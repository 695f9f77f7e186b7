"""The run launcher of the stack's runs mode (stack config ``runs.mode``), chosen per task by ``DCA_RUNS_MODE``.

One image and one ``dagster.yaml`` serve every task, so the instance config names one launcher class,
``RunLauncher`` here. It is not a launcher itself: when Dagster loads the instance's launcher it returns one of
Dagster's own, picked by ``DCA_RUNS_MODE`` (the stack gives every task the same value):

- ``task`` (also when unset): ``EcsRunLauncher`` below, one Fargate task per run, from the run task definition;
- ``daemon``: Dagster's ``DefaultRunLauncher``: the daemon asks its code location's gRPC server, which runs in
  the daemon's task, to start the run worker there. No task to start; the run shares the daemon task.
  ``DaemonRunLauncher`` below adds what the stock one lacks: run monitoring asks the code server that started
  a run whether it still runs it, so a run whose daemon task stopped (a deploy, a crash, Spot) is failed
  instead of staying STARTED for ever.

``EcsRunLauncher`` is dagster-aws's, with each run free to start in any of the stack's task subnets. The stock
launcher copies the network settings of the task that launches the run: the daemon's, which sits in one subnet,
so every run would start in the daemon's Availability Zone. With ``DCA_RUN_SUBNETS`` (comma-separated subnet
ids, set on the daemon by the stack) a run may start in any of them: ECS places each task in one of the subnets
it is given (RunTask, ``awsvpcConfiguration.subnets``). Everything else -- cluster, security groups, public IP,
the task definition -- is the stock launcher's.

Per-run size: the stock launcher gives a run task the size in its run tags ``ecs/cpu`` and ``ecs/memory``
(and ``ecs/ephemeral_storage``, GiB) as RunTask overrides. ECS refuses a size Fargate does not offer only when the
task is started, with a message that names no tag; here the size is checked first -- a tag left out takes the run
task definition's value -- and a run with a size Fargate would refuse fails naming the tag, its value and what
would be valid (``run_size_problem``).
"""

from __future__ import annotations

import json
import os

import grpc
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.launcher import RunLauncher as DagsterRunLauncher
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import CanCancelExecutionRequest, CanCancelExecutionResult
from dagster._serdes import ConfigurableClass, deserialize_value
from dagster_aws.ecs import EcsRunLauncher as StockEcsRunLauncher

from dagster_celery_aws import fargate

RUN_SUBNETS = "DCA_RUN_SUBNETS"  # infra/specs/contract.py RUN_SUBNETS (the image ships without infra/)
RUNS_MODE = "DCA_RUNS_MODE"  # infra/specs/contract.py RUNS_MODE
MODES = ("task", "daemon")  # infra/stackfile/config.py RunsMode


CPU_TAG, MEMORY_TAG, STORAGE_TAG = "ecs/cpu", "ecs/memory", "ecs/ephemeral_storage"  # dagster-aws's run tags
EPHEMERAL_GIB = (21, 200)  # Fargate's ephemeral storage override, GiB (ECS API reference, EphemeralStorage)


def run_size_problem(tags, task_cpu: int, task_memory: int) -> str | None:
    """Why a run's sizing tags would be refused by Fargate (None: they would not); ``task_cpu``/``task_memory`` are
    the run task definition's, which a tag left out keeps."""
    size = {}
    for tag, default in ((CPU_TAG, task_cpu), (MEMORY_TAG, task_memory), (STORAGE_TAG, None)):
        value = tags.get(tag)
        if value is None:
            size[tag] = default
        elif not str(value).strip().isdigit():
            return f"run tag {tag}={value!r} is not a whole number"
        else:
            size[tag] = int(value)
    if CPU_TAG in tags or MEMORY_TAG in tags:
        problem = fargate.size_error(size[CPU_TAG], size[MEMORY_TAG])
        if problem:
            given = ", ".join(f"{t}={tags[t]!r}" for t in (CPU_TAG, MEMORY_TAG) if t in tags)
            kept = [f"the run task definition's {n} {v}" for t, n, v in ((CPU_TAG, "cpu", task_cpu), (MEMORY_TAG, "memory", task_memory)) if t not in tags]
            return f"run tag {given}{' with ' + kept[0] if kept else ''} is not a Fargate size: {problem}"
    storage = size[STORAGE_TAG]
    if storage is not None and not EPHEMERAL_GIB[0] <= storage <= EPHEMERAL_GIB[1]:
        return f"run tag {STORAGE_TAG}={tags[STORAGE_TAG]!r} is outside Fargate's {EPHEMERAL_GIB[0]}-{EPHEMERAL_GIB[1]} GiB"
    return None


class EcsRunLauncher(StockEcsRunLauncher):
    def get_cpu_and_memory_overrides(self, container_context, run):
        if any(tag in run.tags for tag in (CPU_TAG, MEMORY_TAG, STORAGE_TAG)):
            definition = self.ecs.describe_task_definition(taskDefinition=self.task_definition)["taskDefinition"]
            problem = run_size_problem(run.tags, int(definition["cpu"]), int(definition["memory"]))
            if problem:
                raise ValueError(problem)
        return super().get_cpu_and_memory_overrides(container_context, run)

    def _run_task_kwargs(self, run, image, container_context):
        kwargs = super()._run_task_kwargs(run, image, container_context)
        subnets = [s for s in os.environ.get(RUN_SUBNETS, "").split(",") if s]
        network = kwargs.get("networkConfiguration")
        if subnets and network:
            network["awsvpcConfiguration"]["subnets"] = subnets
        return kwargs


HEALTH_TIMEOUT = 30  # seconds: a code server busy starting runs answers late, but answers


class DaemonRunLauncher(DefaultRunLauncher):
    """Dagster's DefaultRunLauncher, with the run worker health check run monitoring uses (dagster.yaml
    run_monitoring): the code server recorded on the run (``dagster/grpc_info``) is asked whether it still runs it."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        info = run.tags.get(GRPC_INFO_TAG)
        if not info:
            # Not started by this launcher (e.g. a run task launched before runs.mode changed): nothing to ask;
            # its own run worker or run monitoring's max runtime ends it.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no code server recorded on the run")
        server = json.loads(info)
        client = DagsterGrpcClient(
            port=server.get("port"), socket=server.get("socket"), host=server.get("host"),
            use_ssl=bool(server.get("use_ssl", False)),
        )  # fmt: skip
        try:
            reply = client.can_cancel_execution(CanCancelExecutionRequest(run_id=run.run_id), timeout=HEALTH_TIMEOUT)
        except DagsterUserCodeUnreachableError as error:
            cause = error.__cause__
            if isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return CheckRunHealthResult(WorkerStatus.RUNNING, "its code server is busy", transient=True)
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"the code server that started its run worker ({info}) is gone: the daemon's task that ran it "
                f"stopped (a deploy, a crash or a Fargate Spot interruption), and the run worker with it",
            )
        if deserialize_value(reply, CanCancelExecutionResult).can_cancel:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"its code server ({info}) no longer runs its run worker")


def runs_mode() -> str:
    mode = os.environ.get(RUNS_MODE) or "task"
    if mode not in MODES:
        raise ValueError(f"{RUNS_MODE}={mode!r} is not a runs mode; valid: {', '.join(MODES)}")
    return mode


class RunLauncher(DagsterRunLauncher, ConfigurableClass):
    """Takes EcsRunLauncher's config (dagster.yaml) and returns the launcher of ``DCA_RUNS_MODE``. Never
    instantiated itself: a RunLauncher subclass only because Dagster checks the configured class is one."""

    @property
    def inst_data(self):
        return None

    def launch_run(self, context):
        raise NotImplementedError("RunLauncher.from_config_value returns the launcher of the runs mode")

    def terminate(self, run_id):
        raise NotImplementedError("RunLauncher.from_config_value returns the launcher of the runs mode")

    @classmethod
    def config_type(cls):
        return EcsRunLauncher.config_type()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        if runs_mode() == "daemon":
            # The ECS settings are not read: in mode daemon no task has DAGSTER_RUN_TASK_DEFINITION.
            return DaemonRunLauncher(inst_data=inst_data)
        return EcsRunLauncher.from_config_value(inst_data, config_value)
