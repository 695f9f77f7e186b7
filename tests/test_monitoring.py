"""Operability under mocks: the dashboard, the alarms (metrics, dimensions, thresholds, actions), task
failure events and the ECS Exec switch."""

from __future__ import annotations

import json

from infra.tools.testing import run_stack

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUES = [{"name": "dagster"}, {"name": "etl", "minWorkers": 0, "maxWorkers": 4, "concurrency": 2}]


def alarms(stack) -> dict[str, dict]:
    return {a.name.removeprefix("dagster-test-ops-"): a.inputs for a in stack.of_type(ALARM) if "-ops-" in a.name}


def test_dashboard_shows_every_queue_and_the_shared_parts():
    stack = run_stack(config={"queues": QUEUES})
    body = json.loads(stack.one("aws:cloudwatch/dashboard:Dashboard", "-dashboard").inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    for q in ("dagster", "etl"):
        assert f"queue {q}: backlog and consumers" in titles and f"queue {q}: worker tasks" in titles
    assert any(t.startswith("webserver") for t in titles) and any(t.startswith("database") for t in titles)
    assert any(t.startswith("broker") for t in titles)
    etl_tasks = next(w for w in body["widgets"] if w["properties"]["title"] == "queue etl: worker tasks")
    assert etl_tasks["properties"]["metrics"][0][:6] == [
        "ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "dagster-test-ecs-cluster", "ServiceName", "worker-etl"]
    broker = next(w for w in body["widgets"] if w["properties"]["title"].startswith("broker"))
    cpu = next(m for m in broker["properties"]["metrics"] if "SystemCpuUtilization" in m)
    assert cpu[3] == stack.of_type("aws:mq/broker:Broker")[0].state["brokerName"]


def test_alarms_watch_the_right_metrics_and_notify_the_topic():
    stack = run_stack(config={"queues": QUEUES, "operations": {"noConsumerMinutes": 7}})
    topic = stack.one("aws:sns/topic:Topic", "-alarms").state["arn"]
    found = alarms(stack)
    assert set(found) == {"dagster-stuck", "dagster-saturated", "etl-stuck", "etl-saturated",
                          "broker-memory", "webserver-unhealthy", "queue-metrics-missing"}  # fmt: skip
    for name, a in found.items():
        assert a["alarmActions"] == [topic] and a["okActions"] == [topic], name
    stuck = found["etl-stuck"]
    assert stuck["evaluationPeriods"] == 7
    queries = {q["id"]: q for q in stuck["metricQueries"]}
    assert queries["depth"]["metric"]["dimensions"] == {"Stack": "dagster-test", "Queue": "etl"}
    assert "consumers == 0" in queries["stuck"]["expression"]
    saturated = {q["id"]: q for q in found["etl-saturated"]["metricQueries"]}["saturated"]["expression"]
    assert "consumers >= 4" in saturated and "depth > 8" in saturated  # maxWorkers 4 x concurrency 2
    assert found["queue-metrics-missing"]["treatMissingData"] == "breaching"


def test_failed_tasks_are_reported_and_email_is_optional():
    quiet = run_stack(config={"queues": QUEUES})
    assert not quiet.of_type("aws:sns/topicSubscription:TopicSubscription")
    rule = json.loads(quiet.one("aws:cloudwatch/eventRule:EventRule", "-task-failed").inputs["eventPattern"])
    assert rule["detail"]["lastStatus"] == ["STOPPED"] and rule["detail"]["containers"]["exitCode"] == [{"anything-but": 0}]
    assert rule["detail"]["clusterArn"] == [quiet.one("aws:ecs/cluster:Cluster", "-cluster").state["arn"]]
    loud = run_stack(config={"queues": QUEUES, "operations": {"alarmEmail": "oncall@example.com"}})
    (sub,) = loud.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sub.inputs["endpoint"] == "oncall@example.com" and sub.inputs["protocol"] == "email"


def test_ecs_exec_is_off_unless_switched_on():
    for enabled in (False, True):
        stack = run_stack(config={"queues": QUEUES, "operations": {"ecsExec": enabled}})
        for service in stack.of_type("aws:ecs/service:Service"):
            assert service.inputs["enableExecuteCommand"] is enabled, service.urn
        for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
            if policy.name.endswith(("-worker", "-control")):
                assert ("ssmmessages:OpenDataChannel" in policy.inputs["policy"]) is enabled, policy.urn
            if policy.name.endswith("-ecs-run"):  # no ECS Exec into run tasks (taskdef.EXEC_ROLES)
                assert "ssmmessages" not in policy.inputs["policy"], policy.urn


def test_flower_is_optional_and_behind_the_same_access_control_as_the_ui():
    assert not run_stack(config={"queues": QUEUES}).of_type("aws:lb/listenerRule:ListenerRule")
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    cognito = {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc",
               "userPoolClientId": "client", "userPoolDomain": "login"}  # fmt: skip
    stack = run_stack(config={"queues": QUEUES, "operations": {"flower": True},
                              "ui": {"access": "cognito", "certificateArn": cert, "cognito": cognito}})  # fmt: skip
    (rule,) = stack.of_type("aws:lb/listenerRule:ListenerRule")
    https = next(l for l in stack.of_type("aws:lb/listener:Listener") if l.inputs["port"] == 443)
    assert rule.inputs["listenerArn"] == https.state["arn"]
    assert [a["type"] for a in rule.inputs["actions"]] == ["authenticate-cognito", "forward"]
    assert rule.inputs["conditions"] == [{"pathPattern": {"values": ["/flower", "/flower/*"]}}]
    flower = json.loads(stack.one("aws:ecs/taskDefinition:TaskDefinition", "-flower-task").inputs["containerDefinitions"])[0]
    assert flower["command"][:4] == ["celery", "-A", "dagster_celery.app", "flower"]
    assert "FLOWER_BASIC_AUTH" in {s["name"] for s in flower["secrets"]}
    for taskdef in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        if not taskdef.name.endswith("-flower-task"):
            assert "FLOWER_BASIC_AUTH" not in taskdef.inputs["containerDefinitions"], taskdef.urn
    lb_sg = stack.one("aws:ec2/securityGroup:SecurityGroup", "-lb").state["id"]
    (to_flower,) = [r for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.inputs["fromPort"] == 5555]
    assert to_flower.inputs["referencedSecurityGroupId"] == lb_sg
