"""Cluster: where the tasks run and what they may do.

Creates: an ECS cluster with Container Insights (its performance log group with the stack's key and retention,
components/service_logs.py), one log group (retention from config, encrypted with the stack's key), an execution
role (pull the image, read and decrypt the stack's secrets, write logs), and task roles: ``control`` for the
webserver and daemon (bucket + launching run tasks; in runs mode "daemon" no launching, and the run workers in the
daemon's task run under it; with pipeline alerts on, publishing to the alarm topic), ``worker`` for workers
(bucket only) and, in runs mode "task", ``run`` for the run tasks (the workers' grants, and waking a cold queue's
workers: stack.py); all may use the stack's key for the bucket's objects. User secrets encrypted with keys of their
own (``access.secretKmsKeys``): the execution role may decrypt with those keys, through Secrets Manager only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws import iam, naming, scaling
from infra.aws.components.service_logs import ServiceLogGroup, container_insights_log_group
from infra.stackfile.config import Access

FARGATE, FARGATE_SPOT = "FARGATE", "FARGATE_SPOT"
FARGATE_PROVIDERS = (FARGATE, FARGATE_SPOT)  # the capacity providers services may name

EXECUTION_MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


@dataclass
class ClusterArgs:
    log_retention_days: int
    secret_arns: list[pulumi.Input[str]]
    bucket_arn: pulumi.Input[str]
    run_family: str | None  # None: runs mode "daemon", no run task to launch
    ecs_exec: bool = False
    access: Access = Access()  # what user code needs in every task (stack config `access`)
    user_secrets: tuple[str, ...] = ()  # the valueFroms of every user secret, the queues' included
    user_secret_keys: tuple[str, ...] = ()  # KMS keys of their own that encrypt some of them (secretKmsKeys)
    kms_key_arn: pulumi.Input[str] | None = None  # the stack's key: log group, secrets, bucket
    alert_topic_arn: pulumi.Input[str] | None = None  # pipeline alerts on (stack config `alerts`): the control role publishes


class Cluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = aws.ecs.Cluster(
            naming.fit(aws.ecs.Cluster, f"{name}-cluster"), settings=[{"name": "containerInsights", "value": "enabled"}], opts=child
        )
        # Fargate and Fargate Spot for the services whose capacity says so (queues[].capacity, daemon.capacity,
        # webserver.capacity); the Fargate providers exist in every account and need only this association
        # (ECS guide, "AWS Fargate capacity providers").
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity", cluster_name=self.cluster.name, capacity_providers=list(FARGATE_PROVIDERS), opts=child
        )
        self.log_group = aws.cloudwatch.LogGroup(
            naming.fit(aws.cloudwatch.LogGroup, f"{name}-logs"), retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn, opts=child,
        )  # fmt: skip
        key = pulumi.Output.from_input(args.kms_key_arn)
        # Container Insights' own group, settled before any task runs (services wait for grants).
        insights = ServiceLogGroup(
            f"{name}-insights-logs", self.cluster.name.apply(container_insights_log_group), key, args.log_retention_days,
            opts=child,
        )  # fmt: skip
        trust = json.dumps(iam.ECS_TASKS_TRUST)
        user_secrets, user_parameters = iam.secret_resources(list(args.user_secrets))
        self._name, self._trust, self._args = name, trust, args
        self.execution_role = aws.iam.Role(naming.fit(aws.iam.Role, f"{name}-execution"), assume_role_policy=trust, opts=child)
        managed = aws.iam.RolePolicyAttachment(
            f"{name}-execution-managed", role=self.execution_role.name, policy_arn=EXECUTION_MANAGED_POLICY, opts=child
        )
        region = aws.get_region_output().region
        user_keys = tuple(sorted(set(args.user_secret_keys)))
        execution = aws.iam.RolePolicy(
            naming.fit(aws.iam.RolePolicy, f"{name}-execution"),
            role=self.execution_role.id,
            policy=pulumi.Output.all(self.log_group.arn, key, region, *args.secret_arns).apply(
                lambda a: json.dumps(
                    iam.execution_policy([*a[3:], *user_secrets], a[0], user_parameters, a[1], user_keys, a[2])
                )
            ),
            opts=child,
        )
        self.worker_role = aws.iam.Role(naming.fit(aws.iam.Role, f"{name}-worker"), assume_role_policy=trust, opts=child)
        worker = self._worker_policy(self.worker_role, f"{name}-worker", args.ecs_exec)
        # Runs mode "task": the run tasks' own role -- the workers' grants plus waking cold queues (stack.py), so no
        # worker step may change the worker services.
        self.run_role = None
        if args.run_family:
            self.run_role = aws.iam.Role(naming.fit(aws.iam.Role, f"{name}-run"), assume_role_policy=trust, opts=child)
            run = self._worker_policy(self.run_role, f"{name}-run", ecs_exec=False)  # run tasks take no ECS Exec
        self.control_role = aws.iam.Role(naming.fit(aws.iam.Role, f"{name}-control"), assume_role_policy=trust, opts=child)
        account = aws.get_caller_identity_output().account_id
        control = aws.iam.RolePolicy(
            naming.fit(aws.iam.RolePolicy, f"{name}-control"),
            role=self.control_role.id,
            policy=pulumi.Output.all(
                args.bucket_arn, self.cluster.arn, region, account, self.execution_role.arn,
                (self.run_role or self.worker_role).arn,  # the run task definition's roles, which the daemon passes
                self.log_group.arn, key,
            ).apply(
                lambda a: json.dumps(
                    iam.control_policy(
                        a[0], a[1], f"arn:aws:ecs:{a[2]}:{a[3]}:task-definition/{args.run_family}" if args.run_family else None,
                        [a[4], a[5]],
                        a[6], scaling.NAMESPACE, args.ecs_exec, a[7],
                    )
                )
            ),
            opts=child,
        )
        # What a task needs granted before it starts: services depend on these.
        self.grants = [managed, execution, worker, control, self.capacity_providers, insights, *([run] if self.run_role else [])]
        if args.alert_topic_arn is not None:  # the daemon's alert sensors publish to the alarm topic
            self.grants.append(aws.iam.RolePolicy(
                naming.fit(aws.iam.RolePolicy, f"{name}-control-alerts"), role=self.control_role.id,
                policy=pulumi.Output.from_input(args.alert_topic_arn).apply(lambda arn: json.dumps(iam.alerts_policy(arn))),
                opts=child,
            ))  # fmt: skip
        for role, suffix in ((self.worker_role, "worker"), (self.control_role, "control"), (self.run_role, "run")):
            if role is None:  # no run role in runs mode "daemon"
                continue
            self.grants += self._grant_user_access(role, f"{name}-{suffix}", args.access)
        self.register_outputs({"cluster_name": self.cluster.name, "log_group": self.log_group.name})

    def _worker_policy(self, role: aws.iam.Role, name: str, ecs_exec: bool) -> aws.iam.RolePolicy:
        """What every task running user steps needs (iam.worker_policy) on ``role``."""
        args = self._args
        return aws.iam.RolePolicy(
            naming.fit(aws.iam.RolePolicy, name), role=role.id,
            policy=pulumi.Output.all(args.bucket_arn, self.cluster.arn, args.kms_key_arn).apply(
                lambda a: json.dumps(iam.worker_policy(a[0], a[1], ecs_exec, a[2]))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )  # fmt: skip

    def _grant_user_access(self, role: aws.iam.Role, name: str, access: Access) -> list[pulumi.Resource]:
        """The user code's own statements and managed policies on ``role``."""
        child = pulumi.ResourceOptions(parent=self)
        grants = []
        if access.iam_statements:
            grants.append(aws.iam.RolePolicy(
                naming.fit(aws.iam.RolePolicy, f"{name}-user-code"), role=role.id,
                policy=json.dumps(iam.user_policy(access.iam_statements)), opts=child,
            ))  # fmt: skip
        for i, arn in enumerate(access.managed_policy_arns):
            grants.append(aws.iam.RolePolicyAttachment(f"{name}-user-managed-{i}", role=role.name, policy_arn=arn, opts=child))
        return grants

    def queue_role(self, queue: str, access: Access) -> aws.iam.Role:
        """A task role for one queue's workers: the workers' own permissions plus the queue's grants, so only
        that queue's code gets them (stack config `queues[].access`)."""
        child = pulumi.ResourceOptions(parent=self)
        name = f"{self._name}-queue-{queue.replace('.', '-')}"
        role = aws.iam.Role(naming.fit(aws.iam.Role, name), assume_role_policy=self._trust, opts=child)
        base = self._worker_policy(role, name, self._args.ecs_exec)
        stack_wide = self._grant_user_access(role, f"{name}-stack", self._args.access)
        self.grants += [base, *stack_wide, *self._grant_user_access(role, name, access)]
        return role
