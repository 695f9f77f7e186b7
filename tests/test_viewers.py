"""ui.viewers: a read-only UI beside the editing one -- a second webserver (`--read-only`) behind the same load
balancer, on a listener of its own that only the viewers' CIDRs reach, with the UI's TLS and sign-in."""

from __future__ import annotations

import json

from infra.tools.testing import reveal, run_stack

Q = [{"name": "dagster"}]
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
COGNITO = {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_x",
           "userPoolClientId": "c", "userPoolDomain": "d"}
VIEWERS = {"allowedCidrs": ["198.51.100.0/24", "192.0.2.0/24"], "port": 8443, "desiredCount": 2}
LISTENER, GROUP, SERVICE = "aws:lb/listener:Listener", "aws:lb/targetGroup:TargetGroup", "aws:ecs/service:Service"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def containers(stack, family_suffix: str) -> list[dict]:
    task = stack.one("aws:ecs/taskDefinition:TaskDefinition", family_suffix)
    return json.loads(task.inputs["containerDefinitions"])


def test_viewers_get_a_read_only_webserver_behind_their_own_signed_in_listener():
    ui = {"access": "cognito", "certificateArn": CERT, "cognito": COGNITO, "viewers": VIEWERS}
    stack = run_stack(config={"queues": Q, "ui": ui})
    # The viewers' webserver runs --read-only; the operators' does not.
    [viewer] = containers(stack, "-viewers-task")
    [web] = containers(stack, "-webserver-task")
    assert viewer["command"] == [*web["command"], "--read-only"] and "--read-only" not in web["command"]
    assert viewer["environment"] == web["environment"] and viewer["secrets"] == web["secrets"]
    service = stack.one(SERVICE, "-viewers-service")
    assert service.inputs["desiredCount"] == 2
    group = stack.one(GROUP, "-viewers")
    assert [lb["targetGroupArn"] for lb in service.inputs["loadBalancers"]] == [group.state["arn"]]
    # Its own listener on the same load balancer, HTTPS with the UI's certificate, signing in first.
    listener = stack.one(LISTENER, "-viewers")
    https = stack.one(LISTENER, "-https")
    assert listener.inputs["loadBalancerArn"] == https.inputs["loadBalancerArn"]
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (8443, "HTTPS")
    assert listener.inputs["certificateArn"] == CERT and listener.inputs["sslPolicy"] == https.inputs["sslPolicy"]
    actions = reveal(listener.inputs["defaultActions"])
    assert [a["type"] for a in actions] == ["authenticate-cognito", "forward"]
    assert actions[0] == reveal(https.inputs["defaultActions"])[0]
    assert actions[1]["targetGroupArn"] == group.state["arn"]
    # Only the viewers' CIDRs reach the viewers' port; the UI's listeners keep their own sources.
    lb_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-lb").state["id"]
    by_port: dict[int, set[str]] = {}
    for rule in (r for r in stack.of_type(INGRESS) if r.inputs["securityGroupId"] == lb_sg):
        by_port.setdefault(rule.inputs["fromPort"], set()).add(rule.inputs.get("cidrIpv4"))
    assert by_port[8443] == {"198.51.100.0/24", "192.0.2.0/24"}
    assert by_port[443] == {"0.0.0.0/0"}
    assert stack.outputs["viewers_url"].startswith("https://") and stack.outputs["viewers_url"].endswith(":8443")
    assert stack.outputs["viewers_service"] == "viewers"


def test_without_a_certificate_the_viewers_listener_forwards_plain_http():
    stack = run_stack(config={"queues": Q, "ui": {"access": "private", "viewers": {"allowedCidrs": ["10.1.0.0/16"]}}})
    listener = stack.one(LISTENER, "-viewers")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (8443, "HTTP")
    assert "certificateArn" not in listener.inputs
    assert [a["type"] for a in reveal(listener.inputs["defaultActions"])] == ["forward"]
    assert stack.outputs["viewers_url"].startswith("http://")
    assert stack.one(SERVICE, "-viewers-service").inputs["desiredCount"] == 1


def test_no_viewers_no_viewer_resources():
    stack = run_stack(config={"queues": Q})
    assert not [r for r in stack.resources if "viewers" in r.name]
    lb_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-lb").state["id"]
    assert {r.inputs["fromPort"] for r in stack.of_type(INGRESS) if r.inputs["securityGroupId"] == lb_sg} == {80}
    assert "viewers_url" not in stack.outputs
