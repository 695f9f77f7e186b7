"""The day-2 change table: for each routine config change, exactly which resources `pulumi up` replaces and
which ECS services roll out, that stateful resources survive, and that runs launched during and after the
deploy find their task definition (the engine and the changes are in tests/day2.py)."""

from __future__ import annotations

import json
from functools import cache

import pytest

from infra.aws.components.cluster import Cluster
from infra.specs import contract
from infra.tools.testing import reveal, run_stack
from tests.day2 import CHANGES, FORCE_NEW, ROOT, Diff, describe, diff, run

TASKDEF = "aws:ecs/taskDefinition:TaskDefinition"
WORKERS = {"worker-dagster", "worker-heavy"}
ALL_TASKS = {"daemon-task", "run-task", "webserver-task", "worker-dagster-task", "worker-heavy-task"}

# change -> (replaced resources, services that roll out a new deployment)
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    # Every task runs the image: every task definition gets a revision and every service rolls.
    "image": (ALL_TASKS, {"daemon", "webserver", *WORKERS}),
    # The new queue's service is created, not restarted; the daemon's queue-metrics sidecar must publish the
    # new queue's depth (DCA_QUEUES) or it would never scale, and the run workers (in the daemon's task or the run
    # task) must know it to send steps there (dagster_celery_aws.queues): a new run revision, nothing else rolls.
    "add-queue": ({"daemon-task", "run-task"}, {"daemon"}),
    # Counts are the scaling target's; the service's desiredCount belongs to autoscaling (ignore_changes).
    "queue-counts": (set(), set()),
    "queue-size": ({"worker-heavy-task"}, {"worker-heavy"}),
    # The workers' scale-in protection must follow the new timeout (DCA_PROTECTION_MINUTES): the workers
    # roll, never the webserver, the daemon or the run task; the broker takes a new configuration revision.
    "consumer-timeout": ({"worker-dagster-task", "worker-heavy-task"}, WORKERS),
    "db-class": (set(), set()),
    "db-storage": (set(), set()),
    # A major version needs a parameter group of the new family; the instance is upgraded in place.
    "db-major": ({"db-params"}, set()),
    # Both internet-facing: only the listener's security group rules change.
    "ui-public": (set(), set()),
    "ui-cidr": (set(), set()),
    # `internal` is ForceNew: the ALB and its listener are replaced. Acceptable for dev only (not protected,
    # a minute without UI); the target group stays, so the webserver does not roll. A per-scheme load
    # balancer would show as delete + create instead of replace: equally fine here, adjust these lines then.
    # The daemon rolls: the links in its pipeline alerts name the UI's new address (DCA_UI_URL).
    "ui-private-to-cidr": ({"ui-alb", "ui-http", "daemon-task"}, {"daemon"}),
    "ui-cidr-to-private": ({"ui-alb", "ui-http", "daemon-task"}, {"daemon"}),
    # The webserver leaves the daemon's task for a service of its own behind the new load balancer: the
    # daemon's task definition is replaced (one container fewer) and the daemon rolls; everything else is new.
    "ui-ssm-to-private": ({"daemon-task"}, {"daemon"}),
    # Off Spot: the launch type (ForceNew; the service has none since it runs on a strategy) replaces the worker
    # service; only that queue's workers restart, their steps redelivered. The provider lets the strategy go
    # because forceNewDeployment stays set (tests/provider_checks.py).
    "queue-on-demand": ({"worker-heavy-service"}, {"worker-heavy"}),
    # Onto Spot: the launch type (Optional+Computed) leaves the config with no diff, the strategy is added in
    # place, and the workers roll onto it.
    "queue-onto-spot": (set(), {"worker-heavy"}),
    # A new mix on Spot: the service is updated in place and rolls onto it (forceNewDeployment).
    "queue-spot-mix": (set(), {"worker-heavy"}),
    "flower": (set(), set()),
    # ECS Exec reaches new tasks only: every service rolls (the containers an operator execs into get a writable
    # root and an init process, so their task definitions change; forceNewDeployment would roll them anyway).
    "ecs-exec": ({"daemon-task", "webserver-task", "worker-dagster-task", "worker-heavy-task"},
                 {"daemon", "webserver", *WORKERS}),
    "broker-resize": (set(), set()),
    # A new run revision; the daemon holds its ARN (DAGSTER_RUN_TASK_DEFINITION), so the daemon rolls to launch
    # it, and nothing else does.
    "run-size": ({"run-task", "daemon-task"}, {"daemon"}),
    # Only the daemon evaluates the alert sensors (DCA_ALERT_LONG_RUN_SECONDS): only the daemon rolls.
    "alerts-limit": ({"daemon-task"}, {"daemon"}),
    # A listener, target group, ingress rule and service of their own: nothing else changes (test below).
    "viewers": (set(), set()),
}
# What a replacement would lose: queued steps, run history, step outputs, secrets and the passwords they
# hold, the key that decrypts them all (a replaced key cannot read what the old one encrypted), the images
# runs use, the logs, the alarm topic's e-mail subscriptions, the NAT's public address (allow-listed by
# others), and the final-snapshot suffix (a new one names another snapshot). Every other declared type is
# listed in REPLACEABLE: a new type must be sorted into one of the two (test below).
STATEFUL = {
    "aws:mq/broker:Broker", "aws:rds/instance:Instance", "aws:s3/bucket:Bucket",
    "aws:secretsmanager/secret:Secret", "random:index/randomPassword:RandomPassword",
    "aws:kms/key:Key", "aws:ecr/repository:Repository", "aws:cloudwatch/logGroup:LogGroup", "aws:sns/topic:Topic",
    "aws:ec2/eip:Eip", "random:index/randomString:RandomString",
}  # fmt: skip
# Configuration that a replacement recreates as it was (the VPC and subnets only with the database, which
# STATEFUL already refuses to replace).
REPLACEABLE = {
    "aws:appautoscaling/policy:Policy", "aws:appautoscaling/target:Target", "aws:cloudwatch/dashboard:Dashboard",
    "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget",
    "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/flowLog:FlowLog", "aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway",
    "aws:ec2/routeTable:RouteTable", "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy", "aws:ecs/cluster:Cluster",
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "aws:ecs/service:Service",
    "aws:ecs/taskDefinition:TaskDefinition", "aws:kms/alias:Alias", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule",
    "aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup", "aws:mq/configuration:Configuration",
    "aws:rds/parameterGroup:ParameterGroup", "aws:rds/subnetGroup:SubnetGroup",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "aws:s3/bucketLogging:BucketLogging",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning", "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:sns/topicPolicy:TopicPolicy", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:wafv2/webAcl:WebAcl",
    "aws:wafv2/webAclAssociation:WebAclAssociation", "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
    "docker-build:index:Image", "pulumi-python:dynamic:Resource",
}  # fmt: skip
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@cache
def diff_of(name: str) -> Diff:
    return run(CHANGES[name])


def test_every_change_has_an_expectation():
    assert EXPECTED.keys() == CHANGES.keys()


@pytest.mark.parametrize("name", CHANGES)
def test_replaces_and_restarts_exactly_what_the_change_needs(name):
    d = diff_of(name)
    replaced, restarts = EXPECTED[name]
    assert (d.named("replace"), d.restarts) == (replaced, restarts), describe(d)


@pytest.mark.parametrize("name", CHANGES)
def test_the_providers_plan_refuses_no_change(name):
    # A CustomizeDiff error is a failed `pulumi preview` (tests/provider_checks.py).
    d = diff_of(name)
    assert not d.refused, describe(d)


@pytest.mark.parametrize("name", CHANGES)
def test_a_service_whose_ecs_exec_changes_rolls_its_tasks(name):
    # ECS Exec cannot be turned on for running tasks, and UpdateService's enableExecuteCommand starts no
    # deployment (ECS guide, ECS Exec considerations; ECS API reference, UpdateService).
    d = diff_of(name)
    toggled = {r.inputs["name"] for u, r in d.after.items() if "enableExecuteCommand" in d.changed.get(u, ())}
    assert toggled <= d.restarts, describe(d)


@pytest.mark.parametrize("name", CHANGES)
def test_stateful_resources_are_never_replaced_nor_deleted(name):
    d = diff_of(name)
    # The prod load balancer is the UI's address; dev's may move (see ui-private-to-cidr).
    kept = STATEFUL | ({LOAD_BALANCER} if CHANGES[name].stack == "prod" else set())
    # A log group goes with the feature that writes it (the WAF's, when the UI stops being internet-facing).
    lost = {f"{r.typ} {r.name}": d.actions[u] for u, r in d.before.items()
            if r.typ in kept and (d.actions[u] == "replace" or d.actions[u] == "delete" and r.typ != LOG_GROUP)}
    assert not lost, describe(d)


def test_every_declared_type_is_either_stateful_or_replaceable():
    assert not STATEFUL & REPLACEABLE and STATEFUL | REPLACEABLE == set(FORCE_NEW), (STATEFUL | REPLACEABLE) ^ set(FORCE_NEW)


def _task(d: Diff, process: str):
    return next(r for r in d.after.values() if r.typ == TASKDEF and d.short(r) == f"{process}-task")


def _container(task, name: str) -> dict:
    return next(c for c in json.loads(reveal(task.inputs["containerDefinitions"])) if c["name"] == name)


@pytest.mark.parametrize("name", CHANGES)
def test_runs_during_and_after_the_deploy_find_their_task_definition_and_the_new_image(name):
    d = diff_of(name)
    run_task, daemon = _task(d, "run"), _container(_task(d, "daemon"), "daemon")
    # The revision a running daemon launches stays ACTIVE when the run task definition is replaced...
    assert run_task.inputs.get("skipDestroy") is True, f"{run_task.name}: skipDestroy is {run_task.inputs.get('skipDestroy')}"
    # ...and a new daemon launches exactly the new revision (an ARN with its revision, not the family).
    env = {e["name"]: e["value"] for e in daemon["environment"]}
    assert env.get(contract.RUN_TASK_DEFINITION) == run_task.state["arn"]
    # Runs use the image the services run.
    image = _container(run_task, contract.RUN_CONTAINER)["image"]
    assert image == daemon["image"] == CHANGES[name].after.get("image", {}).get("uri", image)


def test_a_major_version_upgrade_is_allowed():
    # RDS refuses ModifyDBInstance to a new major version without AllowMajorVersionUpgrade.
    d = diff_of("db-major")
    instance = next(r for r in d.after.values() if r.typ == "aws:rds/instance:Instance")
    assert instance.inputs.get("allowMajorVersionUpgrade") is True, instance.name


def test_force_new_lists_exactly_the_declared_types():
    declared = {r.typ for name in CHANGES for side in (diff_of(name).before, diff_of(name).after) for r in side.values()}
    assert declared == set(FORCE_NEW), declared ^ set(FORCE_NEW)


def test_adding_viewers_creates_only_their_resources():
    # ui.viewers beside a running UI: the operators' UI, its listeners and the webserver are left as they are.
    d = diff_of("viewers")
    created = {(r.typ, d.short(r)) for r in d.resources("create") if not r.typ.startswith("dagster-celery-aws:")}
    assert created == {
        ("aws:lb/targetGroup:TargetGroup", "ui-viewers"), ("aws:lb/listener:Listener", "ui-viewers"),
        ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "lb-viewers-cidr-0"),
        ("aws:ecs/taskDefinition:TaskDefinition", "viewers-task"), ("aws:ecs/service:Service", "viewers-service"),
    }, describe(d)
    assert not d.resources("update") and not d.resources("delete"), describe(d)


def test_giving_the_run_tasks_a_role_of_their_own_rolls_only_the_daemon(monkeypatch):
    # The upgrade from a stack whose run tasks ran under the workers' role, which held the pre-warming grant:
    # a new run task definition under the run role, which the daemon launches; no worker rolls.
    after = run_stack(ROOT / "Pulumi.prod.yaml", {}, stack="prod")
    init = Cluster.__init__

    def runs_under_the_workers_role(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.run_role = self.worker_role

    monkeypatch.setattr(Cluster, "__init__", runs_under_the_workers_role)
    d = diff(run_stack(ROOT / "Pulumi.prod.yaml", {}, stack="prod"), after, prefix="dagster-prod-")
    assert (d.named("replace"), d.restarts) == ({"run-task", "daemon-task", "prewarm"}, {"daemon"}), describe(d)
