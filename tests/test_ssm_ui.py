"""ui.access 'ssm': no load balancer; the webserver is a container of the daemon's task, reached by an SSM
port-forwarding session. What the config refuses with it, and what the program declares."""

import re

import pytest

from infra.stackfile.config import ConfigError, parse
from infra.aws.stack import SSM_UI_URL
from infra.tools.testing import run_stack

SSM = {"queues": [{"name": "dagster"}], "ui": {"access": "ssm"}, "operations": {"ecsExec": True}}


@pytest.mark.parametrize(("change", "message"), [
    ({"operations": {"ecsExec": False}}, "ui.access 'ssm' is reached through an SSM session to the task, which needs operations.ecsExec: true"),
    ({"operations": {"ecsExec": True, "flower": True}}, "operations.flower is served through the UI's load balancer; ui.access 'ssm' has none"),
    ({"webserver": {"cpu": 1024, "memory": 2048}}, "webserver.cpu is not used with ui.access 'ssm'"),
    ({"ui": {"access": "ssm", "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"}}, "certificateArn is for the UI's load balancer; access 'ssm' has none"),
    ({"security": {"waf": True}}, "security.waf guards an internet-facing load balancer; ui.access 'ssm' has none"),
])  # fmt: skip
def test_what_needs_a_load_balancer_is_refused_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse({**SSM, **change})


def test_no_load_balancer_and_the_webserver_serves_from_the_daemons_task():
    stack = run_stack(config=SSM)
    for typ in ("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener"):
        assert not stack.of_type(typ), typ
    services = {s.inputs["name"] for s in stack.of_type("aws:ecs/service:Service")}
    assert services == {"daemon", "worker-dagster"}
    assert stack.outputs["webserver_service"] == "daemon" and stack.outputs["ui_url"] == SSM_UI_URL
    assert "target_group" not in stack.outputs
    assert stack.one("aws:ecs/service:Service", "-daemon-service").inputs["enableExecuteCommand"] is True
    # Nothing may reach the tasks: the session runs from the task out to Systems Manager.
    tasks_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-tasks").state["id"]
    ingress = stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert not [r for r in ingress if r.inputs["securityGroupId"] == tasks_sg]
