"""Plan-aware pre-warming (dagster_celery_aws.prewarm) against an ECS / Application Auto Scaling API server on
127.0.0.1 (moto): the worker services of the queues a run's plan uses that have no task are asked one, the others
are left alone, the queues' scaling targets (and so their scale-in) are untouched; and what the program grants
for it: DescribeServices and UpdateService (naming no task definition) on exactly the stack's worker services, for
the role of the run workers (the run tasks' own, or the daemon's) and never the workers'."""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from dagster import job, op

from dagster_celery_aws import prewarm
from infra.tools.testing import run_stack

CLUSTER = "dca-test-cluster"
SERVICES = {"dagster": "worker-dagster", "heavy": "worker-heavy", "gpu.small": "worker-gpu-small"}
ENV = {prewarm.CLUSTER_VAR: CLUSTER, prewarm.SERVICES_VAR: json.dumps(SERVICES)}
DIMENSION = "ecs:service:DesiredCount"


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """ECS and Application Auto Scaling clients on a fresh backend with the stack's worker services: dagster and
    heavy at zero, gpu.small with two tasks asked."""
    endpoint = moto_endpoint
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    ec2, ecs, scaling = boto3.client("ec2"), boto3.client("ecs"), boto3.client("application-autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=CLUSTER)
    for queue, name in SERVICES.items():
        arn = ecs.register_task_definition(family=name, containerDefinitions=[{"name": "worker", "image": "dca"}],
                                           requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                                           memory="512")["taskDefinition"]["taskDefinitionArn"]  # fmt: skip
        ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=arn, launchType="FARGATE",
                           desiredCount=2 if queue == "gpu.small" else 0,
                           networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})  # fmt: skip
        scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/{name}",
                                         ScalableDimension=DIMENSION, MinCapacity=0, MaxCapacity=4)  # fmt: skip
    return ecs, scaling


def desired(ecs) -> dict[str, int]:
    services = ecs.describe_services(cluster=CLUSTER, services=list(SERVICES.values()))["services"]
    return {s["serviceName"]: s["desiredCount"] for s in services}


def test_the_plans_cold_queues_are_asked_one_task_and_nothing_else_moves(aws):
    ecs, scaling = aws
    woken = prewarm.cold_start({"dagster", "gpu.small", "not-a-stack-queue"}, ENV)
    assert woken == ["dagster"]
    assert desired(ecs) == {"worker-dagster": 1, "worker-heavy": 0, "worker-gpu-small": 2}
    targets = scaling.describe_scalable_targets(ServiceNamespace="ecs", ScalableDimension=DIMENSION)["ScalableTargets"]
    assert len(targets) == 3 and {(t["MinCapacity"], t["MaxCapacity"]) for t in targets} == {(0, 4)}  # scale-in: the policy's
    assert prewarm.cold_start({"dagster"}, ENV) == []  # asked already: not again


def test_without_the_stacks_services_nothing_is_called():
    assert prewarm.cold_start({"dagster"}, {}, ecs=object()) == []  # object(): any call would raise


@op(tags={"dagster-celery/queue": "heavy"})
def big():
    return 1


@op
def small(value):
    return value


@job
def two_queues():
    small(big())


def test_the_plan_names_its_queues_before_any_step_is_sent():
    from dagster._core.definitions.reconstruct import reconstructable
    from dagster._core.execution.api import create_execution_plan

    assert prewarm.plan_queues(create_execution_plan(reconstructable(two_queues)), "dagster") == {"dagster", "heavy"}
    only = create_execution_plan(reconstructable(two_queues), step_keys_to_execute=["small"])
    assert prewarm.plan_queues(only, "dagster") == {"dagster"}


def test_wake_runs_beside_the_run_and_a_failure_is_only_a_warning(aws, monkeypatch, caplog):
    from dagster._core.definitions.reconstruct import reconstructable
    from dagster._core.execution.api import create_execution_plan

    ecs, _ = aws
    plan = create_execution_plan(reconstructable(two_queues))
    log = logging.getLogger("run")
    assert prewarm.wake(plan, "dagster", log) is None  # no DCA_CLUSTER: nothing to do
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with caplog.at_level(logging.INFO, logger="run"):
        prewarm.wake(plan, "dagster", log).join(timeout=60)
        assert desired(ecs) == {"worker-dagster": 1, "worker-heavy": 1, "worker-gpu-small": 2}
        assert "asked one worker of queue(s) dagster, heavy, which had none" in caplog.text
        monkeypatch.setenv(prewarm.CLUSTER_VAR, "no-such-cluster")
        prewarm.wake(plan, "dagster", log).join(timeout=60)
    assert "pre-warming the queues dagster, heavy failed" in caplog.text and "their scaling wakes them" in caplog.text


@pytest.mark.parametrize("mode", ["task", "daemon"])
def test_the_run_workers_role_may_wake_exactly_the_worker_services(mode):
    stack = run_stack(config={"queues": [{"name": "dagster"}, {"name": "heavy"}], "runs": {"mode": mode}})
    policy = stack.one("aws:iam/rolePolicy:RolePolicy", "-prewarm")
    role = stack.one("aws:iam/role:Role", "-ecs-run" if mode == "task" else "-ecs-control")
    assert policy.inputs["role"] == f"{role.name}-id", policy.urn  # the mocks' id of that role
    describe, update = json.loads(policy.inputs["policy"])["Statement"]
    cluster = stack.one("aws:ecs/cluster:Cluster", "").state["arn"]
    service = cluster.replace(":cluster/", ":service/")
    assert (describe["Action"], update["Action"]) == ("ecs:DescribeServices", "ecs:UpdateService")
    for statement in (describe, update):
        assert statement["Resource"] == [f"{service}/worker-dagster", f"{service}/worker-heavy"], statement
    # No other task definition on a service: where the request carries one, a revision of a worker's family.
    families = sorted(td.inputs["family"] for td in stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
                      if "-worker-" in td.name)  # fmt: skip
    assert len(families) == 2, families
    region_account = cluster.split(":cluster/")[0]
    assert update["Condition"] == {"ArnLikeIfExists": {"ecs:task-definition": [
        f"{region_account}:task-definition/{family}:*" for family in families]}}, update
    # Only the run workers' role: no worker task (any queue's step) may change a service.
    worker = stack.one("aws:iam/role:Role", "-ecs-worker")
    on_worker = [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == f"{worker.name}-id"]
    assert on_worker and not any("ecs:UpdateService" in p.inputs["policy"] for p in on_worker), on_worker
    if mode == "task":  # the daemon passes the run task definition's roles: the run role, not the workers'
        control = json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", "-ecs-control").inputs["policy"])
        (passing,) = [s for s in control["Statement"] if s["Action"] == "iam:PassRole"]
        assert passing["Resource"] == [stack.one("aws:iam/role:Role", "-ecs-execution").state["arn"], role.state["arn"]]
        run_task = stack.one("aws:ecs/taskDefinition:TaskDefinition", "-run-task")
        assert run_task.inputs["taskRoleArn"] == role.state["arn"], run_task.inputs
    run_task = "run" if mode == "task" else "daemon"
    env = {e["name"]: e["value"] for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
           if t.name.endswith(f"-{run_task}-task") for c in json.loads(t.inputs["containerDefinitions"])
           for e in c["environment"]}  # fmt: skip
    assert json.loads(env[prewarm.SERVICES_VAR]) == {"dagster": "worker-dagster", "heavy": "worker-heavy"}
