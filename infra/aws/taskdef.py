"""Pure builders for ECS container definitions (no Pulumi): tested directly and validated against
botocore's ``ecs`` service model (``RegisterTaskDefinition``).
"""

from __future__ import annotations

from collections.abc import Mapping

from infra.specs import contract
from infra.specs.topology import BEFORE_SERVING, ENTRY_POINT, ProcessSpec

# Fargate's maximum stopTimeout (ECS task definition parameters; docs/facts.md): a worker gets this long to
# finish its step after SIGTERM (Celery's warm shutdown) before it is killed.
FARGATE_MAX_STOP_TIMEOUT = 120
NON_ROOT_USER = "10001"  # the user worker_image/Dockerfile creates
# A webserver in the daemon's task (ui.access 'ssm') answers Dagster's /server_info, as the load balancer's
# health check asks elsewhere; an essential container that turns UNHEALTHY gets its task replaced (ECS guide,
# "Determine Amazon ECS task health using container health checks"). The slim image has no curl: Python asks.
# startPeriod: the code locations load before the first answer (ECS allows 0-300 s).
WEBSERVER_HEALTH_CHECK = {
    "command": ["CMD", "python", "-c", "import urllib.request; "
                f"urllib.request.urlopen('http://127.0.0.1:{contract.WEBSERVER_PORT}{contract.WEBSERVER_HEALTH_PATH}', timeout=4)"],
    "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 180,
}  # fmt: skip
# The containers an operator reaches with ECS Exec (operations.ecsExec): the main process of every service (docs/operations.md:
# `dagster-celery-aws worker list` in a worker) and the webserver (the UI's port forwarding, also beside
# the daemon). AWS's ECS Exec considerations: the SSM agent ECS starts in each container must write to its root
# filesystem, so a read-only root "isn't supported" there; and they recommend initProcessEnabled, an init process
# that reaps the zombie processes a session leaves. The one-shot steps before serving and the queue-metrics
# sidecar keep a read-only root: nobody execs into them. (ECS guide, "Monitor Amazon ECS containers with ECS Exec",
# Considerations; docs/aws-considerations.md.)
EXEC_ROLES = frozenset({"webserver", "daemon", "worker", "flower"})


def volume_name(container: str, label: str) -> str:
    return f"{container}-{label}"


def task_volumes(containers: list[dict]) -> list[dict]:
    """The task's volumes: every container's writable mount points. On Fargate a volume without a host is a
    bind mount on the task's ephemeral storage, removed with the task (ECS guide, "Use bind mounts")."""
    return [{"name": m["sourceVolume"]} for c in containers for m in c["mountPoints"]]


def container_definitions(
    spec: ProcessSpec,
    *,
    image: str,
    environment: Mapping[str, str],
    secrets: Mapping[str, str],
    log_group: str,
    region: str,
    sidecars: tuple[ProcessSpec, ...] = (),
    sidecar_environment: Mapping[str, str] | None = None,
    ecs_exec: bool = False,
) -> list[dict]:
    """The containers of one process's task. The daemon task first runs the schema migration. Sidecars run
    beside the main container: the queue-metrics publisher (not essential, with its own extra variables) and,
    with ui.access 'ssm', the webserver (essential, checked by a container health check, since no load
    balancer watches it). With ``ecs_exec``, the containers an operator execs into (EXEC_ROLES) get what ECS
    Exec needs."""

    def container(name: str, command: tuple[str, ...], essential: bool = True, extra_env=None) -> dict:
        env = {**environment, **(extra_env or {})}
        definition = {
            "name": name,
            "image": image,
            "essential": essential,
            "user": NON_ROOT_USER,
            "workingDirectory": contract.APP_DIR,
            "entryPoint": list(ENTRY_POINT),
            # Nothing writes the image: only DAGSTER_HOME and the temp dir, each a volume of this container.
            "readonlyRootFilesystem": True,
            "mountPoints": [{"sourceVolume": volume_name(name, label), "containerPath": path, "readOnly": False}
                            for label, path in contract.WRITABLE_DIRS.items()],
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "secrets": [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": name},
            },
        }
        if command:
            definition["command"] = list(command)
        return definition

    def process(p: ProcessSpec, essential: bool = True, extra_env=None) -> dict:
        definition = container(contract.RUN_CONTAINER if p.role == "run" else p.name, p.command, essential, extra_env)
        if p.port:
            definition["portMappings"] = [{"containerPort": p.port, "protocol": "tcp"}]
        if p.role == "worker":
            definition["stopTimeout"] = FARGATE_MAX_STOP_TIMEOUT
        if ecs_exec and p.role in EXEC_ROLES:
            definition["readonlyRootFilesystem"] = False  # the SSM agent writes there (EXEC_ROLES)
            definition["linuxParameters"] = {"initProcessEnabled": True}
        return definition

    main = process(spec)
    beside = []
    for p in sidecars:
        metrics = p.role == "metrics"
        # The housekeeping sidecars (queue metrics, the run purge) may stop without taking the daemon's task down.
        definition = process(p, essential=p.role not in ("metrics", "retention"), extra_env=sidecar_environment if metrics else None)
        if p.role == "webserver":
            definition["healthCheck"] = WEBSERVER_HEALTH_CHECK
        beside.append(definition)
    if spec.role != "daemon":
        return [main, *beside]
    # The daemon deploys first (see components/services.py); its task checks the image's contract, then
    # migrates Dagster's schema, each only if the one before succeeded, and the daemon starts last: no new
    # image serves an unmigrated schema, and an image without a part fails here, naming it.
    before, previous = [], None
    for name, command in BEFORE_SERVING:
        step = container(name, command, essential=False)
        if previous:
            step["dependsOn"] = [{"containerName": previous, "condition": "SUCCESS"}]
        before.append(step)
        previous = name
    for serving in (main, *(c for c in beside if c["essential"])):
        serving["dependsOn"] = [{"containerName": previous, "condition": "SUCCESS"}]
    return [*before, main, *beside]
