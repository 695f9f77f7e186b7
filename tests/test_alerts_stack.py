"""Pipeline alerts in the Pulumi program (under mocks): stack config ``alerts`` reaches the daemon's task as the
runtime reads it (dagster_celery_aws.alerts), and the control role may publish to exactly the alarm topic."""

from __future__ import annotations

import json

import pytest

from dagster_celery_aws import alerts
from infra.specs import contract
from infra.tools.testing import run_stack

TASKDEF = "aws:ecs/taskDefinition:TaskDefinition"
TOPIC = "aws:sns/topic:Topic"
POLICY = "aws:iam/rolePolicy:RolePolicy"
SERVICE = "aws:ecs/service:Service"


def env_of(stack, family_suffix: str, container: str) -> dict[str, str]:
    taskdef = stack.one(TASKDEF, f"{family_suffix}-task")
    (c,) = [c for c in json.loads(taskdef.inputs["containerDefinitions"]) if c["name"] == container]
    return {e["name"]: e["value"] for e in c["environment"]}


def test_the_runtime_reads_the_names_the_stack_writes():
    assert (alerts.KINDS_VAR, alerts.TOPIC_VAR, alerts.FILE_VAR, alerts.LONG_RUN_VAR, alerts.UI_URL_VAR,
            alerts.WORKSPACE_VAR) == (contract.ALERTS, contract.ALERT_TOPIC, contract.ALERT_FILE,
                                      contract.ALERT_LONG_RUN_SECONDS, contract.UI_URL, contract.WORKSPACE_FILE)  # fmt: skip
    assert set(alerts.SECRET_VARS) == set(contract.SECRET_VARS)  # masked in every message


@pytest.fixture(scope="module")
def default():
    return run_stack(config={"queues": [{"name": "dagster"}]})


def test_alerts_are_on_by_default_and_go_to_the_alarm_topic_from_the_daemon(default):
    topic = default.one(TOPIC, "-alarms")
    env = env_of(default, "daemon", "daemon")
    assert env[contract.ALERT_TOPIC] == topic.state["arn"]
    assert env[contract.ALERTS] == ",".join(alerts.KINDS)
    assert env[contract.ALERT_LONG_RUN_SECONDS] == "7200"  # 120 min
    assert env[contract.UI_URL] == default.outputs["ui_url"]
    assert env[contract.WORKSPACE_FILE] == f"{contract.APP_DIR}/workspace.yaml"
    # Every task defines the same sensors where the alerts location loads (the webserver's UI lists them).
    assert env_of(default, "webserver", "webserver")[contract.ALERTS] == ",".join(alerts.KINDS)
    assert contract.ALERT_TOPIC not in env_of(default, "worker-dagster", "worker-dagster")


def test_only_the_control_role_may_publish_and_only_to_the_alarm_topic(default):
    topic = default.one(TOPIC, "-alarms")
    grant = default.one(POLICY, "-control-alerts")
    assert json.loads(grant.inputs["policy"])["Statement"] == [
        {"Sid": "PublishPipelineAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic.state["arn"]}
    ]
    assert grant.inputs["role"] == default.one(POLICY, "-ecs-control").inputs["role"]  # the control role
    publishers = [r for r in default.of_type(POLICY) if "sns:Publish" in json.dumps(r.inputs.get("policy", ""))]
    assert publishers == [grant]
    # The topic is encrypted with the stack's key; the control role's own policy may use that key to publish.
    key = topic.inputs["kmsMasterKeyId"]
    statements = json.loads(default.one(POLICY, "-ecs-control").inputs["policy"])["Statement"]
    uses_key = [s for s in statements if s.get("Resource") == key]
    assert uses_key and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(uses_key[0]["Action"])
    # The daemon starts only once it may publish (IAM propagation), as with its other grants.
    daemon = default.one(SERVICE, "-daemon-service")
    assert grant.urn in daemon.options.dependencies


def test_alerts_off_grant_nothing_and_tell_the_daemon_nothing():
    off = {"runFailure": False, "longRun": False, "tickFailure": False, "locationError": False}
    stack = run_stack(config={"queues": [{"name": "dagster"}], "alerts": off})
    assert not [r for r in stack.of_type(POLICY) if r.name.endswith("-control-alerts")]
    env = env_of(stack, "daemon", "daemon")
    assert env[contract.ALERTS] == ""
    assert contract.ALERT_TOPIC not in env and contract.ALERT_LONG_RUN_SECONDS not in env


def test_kinds_and_the_limit_follow_stack_config_and_links_point_at_the_ssm_ui():
    stack = run_stack(config={
        "queues": [{"name": "dagster"}], "alerts": {"tickFailure": False, "longRunMinutes": 30},
        "ui": {"access": "ssm"}, "operations": {"ecsExec": True},
    })  # fmt: skip
    env = env_of(stack, "daemon", "daemon")
    assert env[contract.ALERTS] == "run_failure,long_run,location_error"
    assert env[contract.ALERT_LONG_RUN_SECONDS] == "1800"
    assert env[contract.UI_URL] == f"http://127.0.0.1:{contract.WEBSERVER_PORT}"
