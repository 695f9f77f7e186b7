"""Service: one process of the topology on Fargate -- the webserver, the daemon, the run task or a worker.

Creates: a task definition from the process spec, and (for every role but ``run``, whose tasks
EcsRunLauncher starts one per run) an ECS service; for workers, an Application Auto Scaling target with
the queue's ``minWorkers``..``maxWorkers``. A queue is data: every worker comes from this one component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.aws import naming, taskdef
from infra.aws.components.cluster import FARGATE, FARGATE_SPOT
from infra.stackfile.config import Capacity
from infra.specs.topology import ProcessSpec


@dataclass
class ServiceArgs:
    spec: ProcessSpec
    family: str
    image: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    secrets: Mapping[str, pulumi.Input[str]]
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    log_group: pulumi.Input[str]
    region: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    task_role_arn: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    security_group_ids: list[pulumi.Input[str]]
    assign_public_ip: bool
    cpu_architecture: str = "X86_64"
    ecs_exec: bool = False
    target_group_arn: pulumi.Input[str] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    own_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # this process's only (Flower)
    # Processes in the same task: the daemon's queue-metrics publisher and run purge, and with ui.access 'ssm' the
    # webserver.
    sidecars: tuple[ProcessSpec, ...] = ()
    sidecar_environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class Service(pulumi.ComponentResource):
    service: aws.ecs.Service | None = None
    scaling_target: aws.appautoscaling.Target | None = None

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:service:Service", name, None, opts)
        spec = args.spec
        containers = pulumi.Output.all(
            image=args.image, log_group=args.log_group, region=args.region,
            environment=pulumi.Output.all(**args.environment),
            secrets=pulumi.Output.all(**args.secrets, **args.own_secrets),
            sidecar_environment=pulumi.Output.all(**args.sidecar_environment),
        ).apply(lambda v: taskdef.container_definitions(spec, sidecars=args.sidecars, ecs_exec=args.ecs_exec, **v))  # fmt: skip
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=naming.fit(aws.ecs.TaskDefinition, args.family),
            cpu=str(spec.cpu),
            memory=str(spec.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": args.cpu_architecture},
            execution_role_arn=args.execution_role_arn,
            task_role_arn=args.task_role_arn,
            container_definitions=pulumi.Output.json_dumps(containers),
            volumes=containers.apply(taskdef.task_volumes),  # the containers' writable volumes
            # A replaced run task definition keeps its old revision ACTIVE: ECS refuses RunTask on an INACTIVE
            # revision, and a daemon still running (or rolled back) launches the revision it was given.
            skip_destroy=spec.role == "run",
            opts=pulumi.ResourceOptions(parent=self),
        )
        if spec.role == "run":
            self.register_outputs({"task_definition_arn": self.task_definition.arn})
            return
        self._service(name, args)
        self.register_outputs({"service_name": self.service.name, "task_definition_arn": self.task_definition.arn})

    def _service(self, name: str, args: ServiceArgs) -> None:
        spec = args.spec
        extra = {}
        capacity = args.spec.capacity
        if capacity is not None and capacity.spot:
            extra["capacity_provider_strategies"] = capacity_strategy(capacity)
        else:
            extra["launch_type"] = "FARGATE"
        if args.target_group_arn is not None:
            extra["load_balancers"] = [
                {"target_group_arn": args.target_group_arn, "container_name": spec.name, "container_port": spec.port}
            ]
            extra["health_check_grace_period_seconds"] = 120  # code location load before /server_info answers
        if spec.role == "daemon":
            # Never two daemons at once (both would dequeue runs); pulumi waits until the new one -- started
            # after its task's migration succeeded -- is steady, before the other services roll.
            extra.update(deployment_maximum_percent=100, deployment_minimum_healthy_percent=0)
        # Autoscaled: every worker service; the webserver when it may run more tasks than it starts with.
        scaled = spec.role == "worker" or (spec.role == "webserver" and spec.max_count > spec.min_count)
        self.service = aws.ecs.Service(
            f"{name}-service",
            name=spec.name,
            cluster=args.cluster_arn,
            task_definition=self.task_definition.arn,
            desired_count=spec.min_count,
            network_configuration={
                "subnets": args.subnet_ids,
                "security_groups": args.security_group_ids,
                "assign_public_ip": args.assign_public_ip,
            },
            deployment_circuit_breaker={"enable": True, "rollback": True},
            propagate_tags="SERVICE",
            enable_execute_command=args.ecs_exec,
            # On every service, whatever its capacity: the provider refuses any plan that changes the capacity
            # provider strategy -- a new mix, onto Spot or off it -- unless the new config forces a deployment
            # (terraform-provider-aws ecs/service.go, capacityProviderStrategyCustomizeDiff), and a service
            # leaving Spot has no strategy left to say so. UpdateService starts no deployment for a new strategy
            # nor for enableExecuteCommand (ECS API reference, UpdateService), so every update of the service
            # rolls its tasks: onto the new mix, and into tasks where ECS Exec is on (it reaches new tasks only).
            # Off Spot, the launch type (ForceNew) replaces the service; onto Spot, the launch type (Optional
            # and Computed) may go from the config with no diff and the service is updated in place.
            force_new_deployment=True,
            enable_ecs_managed_tags=True,
            wait_for_steady_state=spec.role == "daemon",
            **extra,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=args.depends_on,
                # The service's name is fixed: a replacement must delete the old service before it creates the new.
                delete_before_replace=True,
                # Autoscaling owns the count; `pulumi up` must not reset it (docs/facts.md).
                ignore_changes=["desiredCount"] if scaled else None,
            ),
        )
        if scaled:
            self.scaling_target = aws.appautoscaling.Target(
                f"{name}-scaling",
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", self.service.name),
                min_capacity=spec.min_count,
                max_capacity=spec.max_count,
                opts=pulumi.ResourceOptions(parent=self),
            )


def capacity_strategy(capacity: Capacity) -> list[dict]:
    """The service's capacity provider strategy: the on-demand base first, then the tasks above it split by weight
    between FARGATE and FARGATE_SPOT (ECS API reference, CapacityProviderStrategyItem; docs/facts.md)."""
    spot = {"capacity_provider": FARGATE_SPOT, "weight": capacity.spot_percent}
    if capacity.spot_percent == 100 and not capacity.on_demand_base:
        return [spot]
    on_demand = {"capacity_provider": FARGATE, "weight": 100 - capacity.spot_percent}
    if capacity.on_demand_base:
        on_demand["base"] = capacity.on_demand_base
    return [on_demand, spot]
