"""Per-run size in runs mode "task": a run's ``ecs/cpu``, ``ecs/memory`` and ``ecs/ephemeral_storage`` tags become
the RunTask overrides of its ECS task (dagster-aws's EcsRunLauncher, configured by the image's dagster.yaml), against
moto's ECS API server on 127.0.0.1; a size Fargate would refuse fails the launch naming the tag."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
import yaml
from dagster import job, op, reconstructable
from dagster._core.launcher import LaunchRunContext
from dagster._core.test_utils import create_run_for_test, instance_for_test
from moto.server import ThreadedMotoServer

from conftest import REPO_ROOT
from dagster_celery_aws.run_launcher import run_size_problem
from infra.specs import contract

REGION = "us-east-1"


@op
def noop():
    pass


@job
def sized():
    noop()


class _Metadata(BaseHTTPRequestHandler):
    """ECS's task metadata endpoint (v4) of the daemon's task: the launcher copies its cluster and network."""

    task: dict = {}

    def do_GET(self):  # noqa: N802
        body = json.dumps(self.task).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def ecs_stack():
    """moto's server with a cluster, a subnet, the run task definition (512/1024) and a running daemon task, whose
    metadata endpoint a local HTTP server answers; yields (ecs client, the environment of the daemon)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    metadata = HTTPServer(("127.0.0.1", 0), _Metadata)
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {"region_name": REGION, "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        ecs, ec2 = boto3.client("ecs", endpoint_url=endpoint, **creds), boto3.client("ec2", endpoint_url=endpoint, **creds)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the stack's VPC
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
        cluster = ecs.create_cluster(clusterName="stack")["cluster"]["clusterArn"]
        # Container memory: moto sums the containers' (ECS itself takes the task's size alone).
        container = {"name": contract.RUN_CONTAINER, "image": "img:1", "essential": True, "memory": 1024}
        common = {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc"}
        run_td = ecs.register_task_definition(family="stack-run", cpu="512", memory="1024",
                                              containerDefinitions=[container], **common)  # fmt: skip
        daemon_td = ecs.register_task_definition(family="stack-daemon", cpu="512", memory="1024",
                                                 containerDefinitions=[{**container, "name": "daemon"}], **common)  # fmt: skip
        network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}}
        daemon_task = ecs.run_task(cluster=cluster, taskDefinition=daemon_td["taskDefinition"]["taskDefinitionArn"],
                                   launchType="FARGATE", networkConfiguration=network)["tasks"][0]  # fmt: skip
        _Metadata.task = {"Cluster": cluster, "TaskARN": daemon_task["taskArn"]}
        env = {
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            contract.REGION: REGION, contract.RUNS_MODE: "task", "DAGSTER_RUN_TASK_DEFINITION":
            run_td["taskDefinition"]["taskDefinitionArn"], contract.RUN_SUBNETS: subnet,
            "ECS_CONTAINER_METADATA_URI_V4": f"http://127.0.0.1:{metadata.server_address[1]}",
        }  # fmt: skip
        yield ecs, cluster, env
    finally:
        metadata.shutdown()
        server.stop()


def launch(ecs_stack, monkeypatch, tags: dict) -> dict:
    """Launch a run with ``tags`` through the instance's launcher (the image's dagster.yaml); its ECS task."""
    ecs, cluster, env = ecs_stack
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    section = yaml.safe_load((REPO_ROOT / "worker_image" / "dagster.yaml").read_text())["run_launcher"]
    with instance_for_test(overrides={"run_launcher": section}) as instance:
        run = create_run_for_test(instance, job_name="sized", tags=tags,
                                  job_code_origin=reconstructable(sized).get_python_origin())  # fmt: skip
        instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
        arn = instance.get_run_by_id(run.run_id).tags["ecs/task_arn"]
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def test_a_run_with_sizing_tags_launches_a_task_with_those_overrides(ecs_stack, monkeypatch):
    task = launch(ecs_stack, monkeypatch, {"ecs/cpu": "2048", "ecs/memory": "8192", "ecs/ephemeral_storage": "50"})
    overrides = task["overrides"]
    assert overrides["cpu"] == "2048" and overrides["memory"] == "8192"
    assert overrides["ephemeralStorage"] == {"sizeInGiB": 50}
    (container,) = overrides["containerOverrides"]
    assert container["name"] == contract.RUN_CONTAINER and container["cpu"] == 2048 and container["memory"] == 8192
    assert container["command"][:3] == ["dagster", "api", "execute_run"]


def test_a_run_without_sizing_tags_keeps_the_run_task_definitions_size(ecs_stack, monkeypatch):
    overrides = launch(ecs_stack, monkeypatch, {})["overrides"]
    assert "cpu" not in overrides and "memory" not in overrides


def test_a_size_fargate_would_refuse_fails_the_launch_naming_the_tag(ecs_stack, monkeypatch):
    ecs, cluster, _ = ecs_stack
    before = len(ecs.list_tasks(cluster=cluster)["taskArns"])
    with pytest.raises(ValueError, match=r"run tag ecs/memory='3000' with the run task definition's cpu 512 is not a "
                                         r"Fargate size: memory 3000 MiB does not go with cpu 512"):  # fmt: skip
        launch(ecs_stack, monkeypatch, {"ecs/memory": "3000"})
    assert len(ecs.list_tasks(cluster=cluster)["taskArns"]) == before  # no task started


@pytest.mark.parametrize("tags, words", [
    ({"ecs/cpu": "1024", "ecs/memory": "1024"}, ["ecs/cpu='1024', ecs/memory='1024'", "valid memory for cpu 1024: 2048-8192"]),
    ({"ecs/cpu": "768"}, ["ecs/cpu='768'", "with the run task definition's memory 1024", "valid: 256, 512"]),
    ({"ecs/cpu": "1 vCPU"}, ["ecs/cpu='1 vCPU' is not a whole number"]),
    ({"ecs/ephemeral_storage": "10"}, ["ecs/ephemeral_storage='10'", "21-200 GiB"]),
])  # fmt: skip
def test_each_refused_size_names_the_tag_and_what_is_valid(tags, words):
    problem = run_size_problem(tags, 512, 1024)
    for word in words:
        assert word in problem, problem


def test_fargate_sizes_pass():
    assert run_size_problem({"ecs/cpu": "1024", "ecs/memory": "2048"}, 512, 1024) is None
    assert run_size_problem({"ecs/memory": "4096"}, 512, 1024) is None  # with the task definition's cpu 512
    assert run_size_problem({}, 512, 1024) is None
