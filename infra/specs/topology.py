"""The topology, described once: which processes run, with which command, size and scale.

Consumed twice: by the ECS components (one task definition per spec; a service for each but the run task, and
with ui.access 'ssm' the webserver, a container of the daemon's task) and by the local runner (one process per
spec). A command is written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from infra.specs import contract
from infra.stackfile.config import Capacity, StackConfig, worker_name

WORKSPACE = "workspace.yaml"  # relative to contract.APP_DIR, the working directory of every process


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # "webserver", "daemon", "run", "worker-<queue>"; also the ECS container/service suffix
    role: str  # "webserver" | "daemon" | "run" | "worker" | "metrics"
    command: tuple[str, ...]  # argv in APP_DIR; empty for "run" (EcsRunLauncher supplies the command)
    cpu: int
    memory: int
    min_count: int
    max_count: int
    queue: str | None = None
    concurrency: int | None = None
    port: int | None = None
    capacity: Capacity | None = None  # Fargate Spot mix of a service (ECS); None: on-demand only


def worker_command(queue: str, concurrency: int) -> tuple[str, ...]:
    # Celery itself, on dagster-celery's app: the app loads the runtime's dagster_celery_config module, which
    # reads the packaged celery_config.yaml and the environment in memory. (`dagster-celery worker start` would write the
    # broker password to disk and stay PID 1 without passing SIGTERM on: no warm shutdown on ECS.)
    # `-n` names the worker after its queue so engine events say where a step ran.
    return (
        "celery", "-A", "dagster_celery.app", "worker",
        "-Q", queue,
        "-n", f"{queue}@%h",
        "-c", str(concurrency),
        "--loglevel", "INFO",
    )  # fmt: skip


def worker_environment(cfg: StackConfig) -> dict[str, str]:
    """What only the workers get, on ECS and in the local runner alike: how long a step keeps its task protected
    from scale-in (the broker's consumer timeout) and how often a step may be started (broker.maxDeliveries)."""
    return {
        contract.PROTECTION_MINUTES: str(cfg.broker.consumer_timeout_minutes),
        contract.MAX_DELIVERIES: str(cfg.broker.max_deliveries),
    }


def alert_environment(cfg: StackConfig, workspace: str) -> dict[str, str]:
    """What the daemon's alert sensors read (dagster_celery_aws.alerts), but the sink and the UI's address, which
    the stack and the local runner give: the long-run limit and the workspace whose locations they load."""
    return {
        contract.ALERT_LONG_RUN_SECONDS: str(cfg.alerts.long_run_minutes * 60),
        contract.WORKSPACE_FILE: workspace,
    }


def queues_value(cfg: StackConfig) -> str:
    """contract.QUEUES: the stack's queue names."""
    return ",".join(q.name for q in cfg.queues)


def scoped_placeholders(cfg: StackConfig, queue: str | None = None) -> dict[str, str]:
    """What a process of ``queue`` (None: not a worker) gets for each queue-scoped variable (``queues[].access``)
    it is not granted: a placeholder that Dagster's config resolution accepts and that says where the value is
    (dagster_celery_aws.scoped_env). The granted queue's workers get the value instead."""
    from dagster_celery_aws.scoped_env import placeholders

    granted: dict[str, list[str]] = {}
    for q in cfg.queues:
        for name in (*q.access.environment, *q.access.secrets):
            granted.setdefault(name, []).append(q.name)
    return placeholders(granted, queue)


# The entry point of every container on ECS: writes the stack's instance settings (contract.INSTANCE_SETTINGS) into
# dagster.yaml, then execs the container's command -- the topology's, or the one EcsRunLauncher gives a run task.
ENTRY_POINT = ("python", "-m", "dagster_celery_aws.instance_settings")
MIGRATE_COMMAND = ("dagster", "instance", "migrate")
# The image keeps its contract (runtime, instance config, the stack's code locations): checked before the
# migration, so a prebuilt image that lacks a part fails the deployment naming it (dagster_celery_aws.image_check).
CHECK_IMAGE_COMMAND = ("python", "-m", "dagster_celery_aws.image_check")
# What runs, in order, before anything serves: in the daemon's task on ECS, and by the local runner.
# The stack's pool limits (runs.pools.limits) are set on the migrated instance.
POOL_LIMITS_COMMAND = ("python", "-m", "dagster_celery_aws.pool_limits")
BEFORE_SERVING = (("check-image", CHECK_IMAGE_COMMAND), ("migrate", MIGRATE_COMMAND), ("pools", POOL_LIMITS_COMMAND))
METRICS_COMMAND = ("python", "-m", "dagster_celery_aws.queue_metrics")
RETENTION_COMMAND = ("python", "-m", "dagster_celery_aws.retention")


def viewers_spec(cfg: StackConfig) -> ProcessSpec | None:
    """The read-only webserver beside the UI (``ui.viewers``; on ECS only): the webserver's command with
    ``--read-only``, its size, its own fixed count."""
    viewers = cfg.ui.viewers
    if viewers is None:
        return None
    web = next(s for s in process_specs(cfg) if s.role == "webserver")
    return replace(web, name="viewers", command=(*web.command, "--read-only"),
                   min_count=viewers.desired_count, max_count=viewers.desired_count)  # fmt: skip


def process_specs(cfg: StackConfig) -> tuple[ProcessSpec, ...]:
    web, daemon, runs = cfg.webserver, cfg.daemon, cfg.runs
    specs = [
        ProcessSpec(
            name="webserver",
            role="webserver",
            command=("dagster-webserver", "-h", "0.0.0.0", "-p", str(contract.WEBSERVER_PORT), "-w", WORKSPACE,
                     *(("--read-only",) if cfg.ui.read_only else ())),
            cpu=web.cpu, memory=web.memory, min_count=web.desired_count, max_count=web.most,
            port=contract.WEBSERVER_PORT, capacity=web.capacity,
        ),
        # Exactly one daemon: two would both dequeue runs and fire schedules twice.
        ProcessSpec(
            name="daemon", role="daemon", command=("dagster-daemon", "run", "-w", WORKSPACE),
            cpu=daemon.cpu, memory=daemon.memory, min_count=1, max_count=1, capacity=daemon.capacity,
        ),
    ]
    if runs.mode == "task":  # RunsMode.TASK (infra.stackfile.config imports this module)
        # One Fargate task per run (EcsRunLauncher). In mode "daemon" the run workers are processes of the daemon's
        # task (DefaultRunLauncher: its code server starts them) and there is no run task to define.
        specs.append(ProcessSpec(
            name="run", role="run", command=(), cpu=runs.cpu, memory=runs.memory,
            min_count=0, max_count=runs.max_concurrent_runs,
        ))  # fmt: skip
    # Publishes each queue's depth and consumers to CloudWatch for autoscaling (a sidecar of the daemon
    # task on ECS: no task of its own to pay for; it shares the daemon's size).
    specs.append(
        ProcessSpec(
            name="queue-metrics", role="metrics", command=METRICS_COMMAND,
            cpu=daemon.cpu, memory=daemon.memory, min_count=1, max_count=1,
        )
    )
    # Deletes finished runs older than retention.runDays every hour (a sidecar of the daemon task, like the publisher).
    specs.append(
        ProcessSpec(
            name="retention", role="retention", command=RETENTION_COMMAND,
            cpu=daemon.cpu, memory=daemon.memory, min_count=1, max_count=1,
        )
    )
    if cfg.operations.flower:
        specs.append(
            ProcessSpec(
                name="flower", role="flower",
                # The workers' app and settings module, so Flower reads the same broker.
                command=("celery", "-A", "dagster_celery.app", "flower", f"--port={contract.FLOWER_PORT}",
                         f"--url_prefix={contract.FLOWER_PATH.strip('/')}"),
                cpu=256, memory=512, min_count=1, max_count=1, port=contract.FLOWER_PORT,
            )
        )  # fmt: skip
    specs += [
        ProcessSpec(
            name=worker_name(q.name),
            role="worker",
            command=worker_command(q.name, q.concurrency),
            cpu=q.cpu, memory=q.memory, min_count=q.min_workers, max_count=q.max_workers,
            queue=q.name, concurrency=q.concurrency, capacity=q.capacity,
        )
        for q in cfg.queues
    ]
    return tuple(specs)
