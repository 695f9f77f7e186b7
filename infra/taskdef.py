"""Pure builders for ECS container definitions (no Pulumi): tested directly and validated against
botocore's ``ecs`` service model (``RegisterTaskDefinition``).
"""

from __future__ import annotations

from collections.abc import Mapping

from infra import contract
from infra.topology import BEFORE_SERVING, ProcessSpec

# Fargate's maximum stopTimeout (ECS task definition parameters; docs/facts.md): a worker gets this long to
# finish its step after SIGTERM (Celery's warm shutdown) before it is killed.
FARGATE_MAX_STOP_TIMEOUT = 120
NON_ROOT_USER = "10001"  # the user worker_image/Dockerfile creates


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
    sidecar: ProcessSpec | None = None,
    sidecar_environment: Mapping[str, str] | None = None,
) -> list[dict]:
    """The containers of one process's task. The daemon task first runs the schema migration; a sidecar
    (the queue-metrics publisher) runs beside the main container with its own extra variables."""

    def container(name: str, command: tuple[str, ...], essential: bool = True, extra_env=None) -> dict:
        env = {**environment, **(extra_env or {})}
        definition = {
            "name": name,
            "image": image,
            "essential": essential,
            "user": NON_ROOT_USER,
            "workingDirectory": contract.APP_DIR,
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

    main = container(contract.RUN_CONTAINER if spec.role == "run" else spec.name, spec.command)
    if spec.port:
        main["portMappings"] = [{"containerPort": spec.port, "protocol": "tcp"}]
    if spec.role == "worker":
        main["stopTimeout"] = FARGATE_MAX_STOP_TIMEOUT
    sidecars = [container(sidecar.name, sidecar.command, essential=False, extra_env=sidecar_environment)] if sidecar else []
    if spec.role != "daemon":
        return [main, *sidecars]
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
    main["dependsOn"] = [{"containerName": previous, "condition": "SUCCESS"}]
    return [*before, main, *sidecars]
