"""``infra.tools.verify`` against an AWS API server on 127.0.0.1 (moto): a healthy stack's resources pass every
check; then one thing is broken at a time and verify names it in a FAIL line and exits 1.

moto does not keep ``enableExecuteCommand`` on a service, nor start a task of an ``awsvpc`` service (its RunTask
fails on the network interface): the ECS Exec check and the stopped-task check run on botocore's Stubber."""

from __future__ import annotations

import io
import json
import os

import boto3
import pytest
from botocore.stub import Stubber

from infra.aws.stack import SSM_UI_URL
from infra.tools import verify

CLUSTER = "dca-prod-cluster"
QUEUES = {"dagster": "dca-prod-worker-dagster", "heavy": "dca-prod-worker-heavy"}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dca@sha256:" + "a" * 64


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """{name: client} on a fresh moto backend, and the healthy stack's outputs."""
    endpoint = moto_endpoint

    def client(name):
        return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip

    ec2, ecs, elb = client("ec2"), client("ecs"), client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    ecs.create_cluster(clusterName=CLUSTER)

    def task_definition(family, image=IMAGE):
        return ecs.register_task_definition(
            family=family, containerDefinitions=[{"name": family, "image": image, "essential": True}],
            requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        )["taskDefinition"]["taskDefinitionArn"]  # fmt: skip

    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")  # moto's services report this many running tasks
    services = {"daemon": "dca-prod-daemon", "webserver": "dca-prod-webserver", **QUEUES}
    for role, name in services.items():
        ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=task_definition(name), desiredCount=1,
                           launchType="FARGATE", networkConfiguration=network)  # fmt: skip
    scaling = client("application-autoscaling")
    for name in QUEUES.values():
        scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/{name}",
                                         ScalableDimension=verify.SCALABLE_DIMENSION, MinCapacity=0, MaxCapacity=3)  # fmt: skip
    target_group = elb.create_target_group(Name="dca-prod-ui", Protocol="HTTP", Port=3000, VpcId=vpc,
                                           TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
    elb.register_targets(TargetGroupArn=target_group, Targets=[{"Id": "10.0.0.5", "Port": 3000}])
    topic = client("sns").create_topic(Name="dca-prod-alarms")["TopicArn"]
    cloudwatch = client("cloudwatch")
    for name in ("dca-prod-db-cpu", "dca-prod-queue-dagster-backlog"):
        cloudwatch.put_metric_alarm(AlarmName=name, AlarmActions=[topic], MetricName="m", Namespace="n", Statistic="Sum",
                                    Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")  # fmt: skip
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="fine")
    outputs = {
        "ui_url": "https://dca-prod-ui.example", "alarm_topic": topic, "cluster_name": CLUSTER,
        "daemon_service": services["daemon"], "webserver_service": services["webserver"],
        "worker_services": QUEUES, "target_group": target_group, "run_task_definition": task_definition("dca-prod-run"),
    }  # fmt: skip
    return client, outputs, task_definition


def run_verify(client, outputs) -> tuple[int, list[str]]:
    checks = verify.verify(outputs, client)
    lines = [c.line() for c in checks]
    assert checks, "no check ran"
    return (1 if any(not c.ok for c in checks) else 0), lines


def failures(lines):
    return [line for line in lines if line.startswith("FAIL")]


def test_a_healthy_stack_passes_every_check(aws):
    client, outputs, _ = aws
    status, lines = run_verify(client, outputs)
    assert status == 0, "\n".join(lines)
    kinds = {line.split()[1] for line in lines}
    assert kinds == {"service", "targets", "alarm", "queue", "run", "image", "ui"}, lines
    assert (
        sum(line.split()[1] == "service" for line in lines) == 4
        and sum("queue" == line.split()[1] for line in lines) == 2
    )


def _stuck_deployment(client, outputs, task_definition):
    # The daemon's new tasks never start (e.g. crash-looping): its rollout stays IN_PROGRESS. moto updates a
    # service's running count to its desired count on UpdateService, so the service is created anew.
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "0"  # the fixture's monkeypatch restores it
    ecs = client("ecs")
    ecs.delete_service(cluster=CLUSTER, service=outputs["daemon_service"], force=True)
    name = "dca-prod-daemon-2"
    services = ecs.describe_services(cluster=CLUSTER, services=[outputs["webserver_service"]])["services"][0]
    ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=task_definition(name), desiredCount=1,
                       launchType="FARGATE", networkConfiguration=services["deployments"][0]["networkConfiguration"])  # fmt: skip
    outputs["daemon_service"] = name
    return ["service", name, "running 0 of desired 1; deployment IN_PROGRESS"]


def _unhealthy_target(client, outputs, _):
    elb, ec2 = client("elbv2"), client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}])["Vpcs"][0]["VpcId"]
    group = elb.create_target_group(Name="dca-prod-ui-2", Protocol="HTTP", Port=3000, VpcId=vpc, TargetType="instance")
    arn = group["TargetGroups"][0]["TargetGroupArn"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": 3000}])
    ec2.stop_instances(InstanceIds=[instance])  # moto's one way to a target that is not healthy
    outputs["target_group"] = arn
    return ["targets", "dca-prod-ui-2", f"{instance} unused"]


def _alarm_firing(client, outputs, _):
    client("cloudwatch").set_alarm_state(AlarmName="dca-prod-db-cpu", StateValue="ALARM", StateReason="CPU at 97%")
    return ["alarm", "dca-prod-db-cpu", "CPU at 97%"]


def _queue_without_scaling(client, outputs, _):
    client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{CLUSTER}/{QUEUES['heavy']}",
        ScalableDimension=verify.SCALABLE_DIMENSION,
    )
    return ["queue", "heavy", "no scaling target"]


def _queue_capped_at_zero(client, outputs, _):
    client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{CLUSTER}/{QUEUES['dagster']}",
        ScalableDimension=verify.SCALABLE_DIMENSION, MinCapacity=0, MaxCapacity=0,
    )  # fmt: skip
    return ["queue", "dagster", "at most 0 tasks"]


def _run_task_definition_gone(client, outputs, _):
    client("ecs").deregister_task_definition(taskDefinition=outputs["run_task_definition"])
    return ["run task", "dca-prod-run:1", "INACTIVE"]


def _second_image(client, outputs, task_definition):
    ecs = client("ecs")
    ecs.update_service(cluster=CLUSTER, service=QUEUES["heavy"],
                       taskDefinition=task_definition(QUEUES["heavy"], image="dca:latest"))  # fmt: skip
    return ["image", "task definitions", "dca:latest in dca-prod-worker-heavy:2"]


BREAKS = [_stuck_deployment, _unhealthy_target, _alarm_firing, _queue_without_scaling,
          _queue_capped_at_zero, _run_task_definition_gone, _second_image]  # fmt: skip


@pytest.mark.parametrize("breaks", BREAKS, ids=lambda f: f.__name__.strip("_"))
def test_each_broken_thing_is_named_in_a_line(aws, breaks):
    client, outputs, task_definition = aws
    outputs = dict(outputs)
    check, subject, detail = breaks(client, outputs, task_definition)
    status, lines = run_verify(client, outputs)
    assert status == 1, "\n".join(lines)
    failed = failures(lines)
    assert len(failed) == 1 and check in failed[0] and subject in failed[0] and detail in failed[0], "\n".join(lines)


def test_main_reads_the_outputs_prints_the_table_and_exits_1(aws, capsys, monkeypatch):
    client, outputs, _ = aws
    client("cloudwatch").set_alarm_state(
        AlarmName="dca-prod-queue-dagster-backlog", StateValue="ALARM", StateReason="x"
    )
    endpoint = client("ecs").meta.endpoint_url
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # boto3 reads it for every service
    for key, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(outputs)))
    assert verify.main(["--region", "us-east-1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  alarm" in out and "dca-prod-queue-dagster-backlog" in out and out.rstrip().endswith("1 failed"), out


def test_outputs_of_another_project_are_refused_by_name(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"cluster_name": "c"})))
    with pytest.raises(SystemExit):
        verify.main([])
    assert "lack daemon_service, webserver_service, alarm_topic, ui_url" in capsys.readouterr().err


# --- on botocore's Stubber: what moto does not model -------------------------------------------------------------
def _service(name, **extra):
    return {"serviceName": name, "status": "ACTIVE", "runningCount": 1, "desiredCount": 1,
            "deployments": [{"status": "PRIMARY", "rolloutState": "COMPLETED"}], **extra}  # fmt: skip


def test_a_task_stopped_with_an_error_is_named_with_its_reason():
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0123abcd"
    scaled_in = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/4567ef"
    with Stubber(ecs) as stub:
        stub.add_response("list_tasks", {"taskArns": [scaled_in, arn]},
                          {"cluster": CLUSTER, "serviceName": "w", "desiredStatus": "STOPPED"})  # fmt: skip
        stub.add_response("describe_tasks", {"tasks": [
            {"taskArn": scaled_in, "stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Scaling activity initiated by (deployment ecs-svc/1)"},
            {"taskArn": arn, "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
             "containers": [{"name": "worker", "exitCode": 1}]},
        ]}, {"cluster": CLUSTER, "tasks": [scaled_in, arn]})  # fmt: skip
        stub.add_response("list_tasks", {"taskArns": [scaled_in]},
                          {"cluster": CLUSTER, "serviceName": "d", "desiredStatus": "STOPPED"})  # fmt: skip
        stub.add_response("describe_tasks", {"tasks": [
            {"taskArn": scaled_in, "stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Scaling activity initiated by (deployment ecs-svc/1)"},
        ]}, {"cluster": CLUSTER, "tasks": [scaled_in]})  # fmt: skip
        checks = list(verify.check_services(ecs, CLUSTER, {"w": "queue dagster", "d": "daemon"},
                                            {"w": _service("w"), "d": _service("d")}))  # fmt: skip
        stub.assert_no_pending_responses()
    assert [c.ok for c in checks] == [False, True], checks
    assert "task 0123abcd stopped: Essential container in task exited; worker exited 1" in checks[0].detail


def test_the_ssm_route_needs_ecs_exec_on_the_webserver_service():
    outputs = {"ui_url": SSM_UI_URL, "webserver_service": "dca-prod-daemon"}
    (off,) = verify.check_ui_route({"dca-prod-daemon": _service("dca-prod-daemon")}, outputs)
    (on,) = verify.check_ui_route({"dca-prod-daemon": _service("dca-prod-daemon", enableExecuteCommand=True)}, outputs)
    assert not off.ok and "ECS Exec is off" in off.line() and on.ok


def test_running_tasks_on_two_digests_are_named():
    ecs = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    found = {name: _service(name, taskDefinition=f"arn:aws:ecs:us-east-1:123456789012:task-definition/{name}:1")
             for name in ("a", "b")}  # fmt: skip
    with Stubber(ecs) as stub:
        for name in found:
            stub.add_response("describe_task_definition", {"taskDefinition": {"containerDefinitions": [
                {"name": name, "image": "dca:prod"}]}}, {"taskDefinition": found[name]["taskDefinition"]})  # fmt: skip
        for name, digest in (("a", "sha256:" + "1" * 64), ("b", "sha256:" + "2" * 64)):
            task = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/{name}"
            stub.add_response("list_tasks", {"taskArns": [task]},
                              {"cluster": CLUSTER, "serviceName": name, "desiredStatus": "RUNNING"})  # fmt: skip
            stub.add_response("describe_tasks", {"tasks": [{"taskArn": task, "containers": [
                {"name": name, "imageDigest": digest}]}]}, {"cluster": CLUSTER, "tasks": [task]})  # fmt: skip
        (check,) = verify.check_image(ecs, CLUSTER, found, None)
    assert not check.ok and "1111" in check.detail and "2222" in check.detail and "running tasks" in check.line()
