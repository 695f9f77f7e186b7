"""The log groups AWS services create for themselves get the stack's key and retention (infra/aws/components/
service_logs.py): every such group of both example stacks is declared under the name the service uses, and the
calls that settle one are valid requests of CloudWatch Logs' API (botocore's Stubber checks each against the
service model) in both orders -- the group made first by us, or by the service."""

from __future__ import annotations

from functools import cache

import boto3
import pytest
from botocore.stub import Stubber
from pulumi.dynamic.dynamic import serialize_provider

from infra.aws.components import service_logs
from infra.tools.testing import run_stack
from tests.conftest import REPO_ROOT
from tests.test_guard import _in_a_process_without_this_project

KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
NAME = "/aws/rds/instance/dagster-dev-db-postgres-a1b2c3d/postgresql"
PROPS = {"logGroupName": NAME, "kmsKeyId": KEY, "retentionDays": 14.0, "region": "eu-west-1", "profile": ""}


@cache
def recorded(stack: str):
    return run_stack(REPO_ROOT / f"Pulumi.{stack}.yaml", stack=stack)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_group_a_service_makes_is_declared_with_the_stacks_key_and_retention(stack):
    """The names, written out from each service's documentation (not from the module that makes them): RDS's
    exported logs, Amazon MQ's general log, Container Insights' performance events."""
    result = recorded(stack)
    instance = result.one("aws:rds/instance:Instance", "-db-postgres")
    broker = result.one("aws:mq/broker:Broker", "-mq-broker")
    cluster = result.one("aws:ecs/cluster:Cluster", "-ecs-cluster")
    expected = {
        *(f"/aws/rds/instance/{instance.state['identifier']}/{t}" for t in instance.inputs["enabledCloudwatchLogsExports"]),
        f"/aws/amazonmq/broker/{broker.state.get('id', broker.name + '-id')}/general",
        f"/aws/ecs/containerinsights/{cluster.state['name']}/performance",
    }
    groups = {r.inputs["logGroupName"]: r for r in result.of_type("pulumi-python:dynamic:Resource") if "logGroupName" in r.inputs}
    assert set(groups) == expected and len(expected) == 4
    key = result.one("aws:kms/key:Key", "-kms-key").state["arn"]
    retention = (result.one("aws:cloudwatch/logGroup:LogGroup", "-ecs-logs").inputs["retentionInDays"])
    for name, r in groups.items():
        assert r.inputs["kmsKeyId"] == key and r.inputs["retentionDays"] == retention, name
        assert r.inputs["region"] == "eu-west-1", name


def test_container_insights_group_is_settled_before_any_task_runs():
    result = recorded("prod")
    insights = next(r for r in result.of_type("pulumi-python:dynamic:Resource") if "containerinsights" in str(r.inputs.get("logGroupName")))
    services = result.of_type("aws:ecs/service:Service")
    assert services and all(insights.urn in s.options.dependencies for s in services)


def _stubbed():
    client = boto3.client("logs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_a_group_made_first_is_made_encrypted_and_given_the_retention():
    client, stub = _stubbed()
    stub.add_response("create_log_group", {}, {"logGroupName": NAME, "kmsKeyId": KEY})
    stub.add_response("put_retention_policy", {}, {"logGroupName": NAME, "retentionInDays": 14})
    with stub:
        service_logs.settle(PROPS, client)
    stub.assert_no_pending_responses()


def test_a_group_the_service_made_first_gets_the_key_and_the_retention():
    client, stub = _stubbed()
    stub.add_client_error("create_log_group", "ResourceAlreadyExistsException", expected_params={"logGroupName": NAME, "kmsKeyId": KEY})
    stub.add_response("associate_kms_key", {}, {"logGroupName": NAME, "kmsKeyId": KEY})
    stub.add_response("put_retention_policy", {}, {"logGroupName": NAME, "retentionInDays": 14})
    with stub:
        service_logs.settle(PROPS, client)
    stub.assert_no_pending_responses()


def test_deleting_a_group_already_gone_is_not_an_error():
    client, stub = _stubbed()
    stub.add_client_error("delete_log_group", "ResourceNotFoundException", expected_params={"logGroupName": NAME})
    with stub:
        service_logs.remove(PROPS, client)
    stub.assert_no_pending_responses()


def test_a_new_name_is_another_group_a_new_retention_an_update():
    provider = service_logs._Provider()
    renamed = provider.diff("id", PROPS, {**PROPS, "logGroupName": NAME.replace("a1b2c3d", "e5f6a7b")})
    assert renamed.changes and renamed.replaces == ["logGroupName"]
    kept = provider.diff("id", PROPS, {**PROPS, "retentionDays": 30.0})
    assert kept.changes and not kept.replaces
    assert not provider.diff("id", PROPS, dict(PROPS)).changes


def test_the_stored_provider_settles_and_deletes_without_this_projects_modules():
    # What `pulumi refresh` and `pulumi destroy` run: the state's copy of the provider, with this project's modules
    # renamed or moved away. Its calls reach CloudWatch Logs through the stored SDK client (here a dead endpoint).
    done = _in_a_process_without_this_project(serialize_provider(service_logs._Provider()), (
        f"props = {PROPS!r}\n"
        "assert p.read('g', props).outs == props\n"  # pulumi refresh
        "import boto3, botocore.exceptions\n"
        "from botocore.stub import Stubber\n"
        "c = boto3.client('logs', region_name='eu-west-1', aws_access_key_id='x', aws_secret_access_key='x')\n"
        "with Stubber(c) as s:\n"
        "    s.add_response('delete_log_group', {}, {'logGroupName': props['logGroupName']})\n"
        "    p.remove(props, c)\n"
        "try:\n"
        "    p.delete('g', props)\n"  # pulumi destroy
        "except botocore.exceptions.EndpointConnectionError:\n"
        "    print('ok')\n"))  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]

