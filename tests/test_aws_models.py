"""Every resource every stack declares, as the AWS API requests that create it, valid against AWS's API models
(botocore's, plus the documented rules botocore lacks): tests/aws_models.py has the converters and the checks.

Stacks: both example stack files, the production one under a 30-character stack name, and two "maximal" configs
that turn every optional path on (OIDC and Cognito sign-in, Flower, ECS Exec, alarm e-mail, flow logs with a NAT
gateway, scale-from-zero, a prebuilt image; the Cognito one in an existing VPC).
"""

from __future__ import annotations

import base64
import json
from functools import cache

import pytest

from infra.tools.testing import reveal, run_stack
from tests import aws_models
from tests.aws_models import CONVERTERS, check, is_component, is_skipped, requests, validated_counts
from tests.conftest import REPO_ROOT

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
EVERY_OPTION = {
    "queues": [{"name": "dagster", "minWorkers": 0, "maxWorkers": 3},
               {"name": "etl.daily", "minWorkers": 1, "maxWorkers": 2, "concurrency": 2,
                "capacity": {"onDemandBase": 1, "spotPercent": 75}}],
    "operations": {"flower": True, "ecsExec": True, "alarmEmail": "a@b.co"},
    "image": {"uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dagster:2024-06-01", "platform": "linux/arm64"},
}  # fmt: skip
MAXIMAL_OIDC = {
    **EVERY_OPTION,
    "network": {"natGateways": 1, "flowLogs": True},
    "ui": {"access": "oidc", "certificateArn": CERTIFICATE, "oidc": {
        "issuer": "https://idp.example.com", "authorizationEndpoint": "https://idp.example.com/authorize",
        "tokenEndpoint": "https://idp.example.com/token", "userInfoEndpoint": "https://idp.example.com/userinfo",
        "clientId": "dagster-ui"}, "viewers": {"allowedCidrs": ["198.51.100.0/24"], "port": 8443}},
    "oidcClientSecret": "oidc-client-secret",
}  # fmt: skip
MAXIMAL_COGNITO = {
    **EVERY_OPTION,
    "network": {"vpcId": "vpc-0123456789abcdef0", "publicSubnetIds": ["subnet-0a", "subnet-0b"],
                "privateSubnetIds": ["subnet-1a", "subnet-1b"]},
    "ui": {"access": "cognito", "certificateArn": CERTIFICATE, "cognito": {
        "userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEfGhI",
        "userPoolClientId": "1example23456789", "userPoolDomain": "dagster-auth"},
           "viewers": {"allowedCidrs": ["198.51.100.0/24", "192.0.2.0/24"], "port": 9443, "desiredCount": 2}},
}  # fmt: skip
# name -> (stack file, stack name, config). The maximal configs run as "dev" so that their findings are about the
# optional paths; names under a long stack name are the 30-character run's.
STACKS = {
    "dev": ("Pulumi.dev.yaml", "dev", None),
    # dev with the internal load balancer instead of ui.access 'ssm' (the broken-request cases break its parts)
    "dev-private-ui": ("Pulumi.dev.yaml", "dev", {"ui": {"access": "private"}}),
    "prod": ("Pulumi.prod.yaml", "prod", None),
    "prod-30-char-stack-name": ("Pulumi.prod.yaml", "customer-analytics-production1", None),
    "maximal-oidc": (None, "dev", MAXIMAL_OIDC),
    "maximal-cognito-existing-vpc": (None, "dev", MAXIMAL_COGNITO),
}


@cache
def declared(name: str):
    stack_file, stack_name, config = STACKS[name]
    return run_stack(stack_file and REPO_ROOT / stack_file, config=config, stack=stack_name)


@pytest.fixture(scope="module", params=list(STACKS))
def stack(request):
    return declared(request.param)


def test_every_resource_type_has_a_converter(stack):
    missing = {r.typ for r in stack.resources if not (is_component(r) or is_skipped(r)) and r.typ not in CONVERTERS}
    assert not missing, f"no AWS API converter in tests/aws_models.py CONVERTERS for: {sorted(missing)}"


def test_every_create_request_is_valid_for_the_aws_api(stack):
    problems = aws_models.problems(stack)
    assert not problems, f"requests AWS would refuse: {len(problems)}\n" + "\n".join(problems)


def test_every_resource_but_the_named_skips_is_validated(stack, request):
    counts = validated_counts(stack)
    print(f"{request.node.callspec.id}: {counts['validated']} resources validated against AWS API models, "
          f"{counts['skipped']} skipped (no AWS call: {sorted(aws_models.NO_AWS_CALL)})")  # fmt: skip
    assert counts["validated"] + counts["skipped"] == counts["total"]
    assert counts["validated"] > 80


def test_every_converter_is_exercised_by_some_stack():
    declared_types = {r.typ for name in STACKS for r in declared(name).resources}
    assert set(CONVERTERS) <= declared_types, f"converters no stack exercises: {sorted(set(CONVERTERS) - declared_types)}"


def _conf(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _body(params: dict, member: str, edit) -> None:
    document = json.loads(params[member])
    edit(document)
    params[member] = json.dumps(document)


# A real request of the dev stack, broken the way a product change could break it: each check must notice.
# (type, logical name suffix, operation, breakage, what the report must say)
BREAKAGES = [
    ("aws:iam/role:Role", "ecs-execution", "CreateRole", lambda p: p.update(RoleName="r" * 65), "above the model's max 64"),
    ("aws:appautoscaling/target:Target", "worker-heavy-scaling", "RegisterScalableTarget",
     lambda p: p.update(ServiceNamespace="ECS"), "not in the model's enum"),
    ("aws:ecr/repository:Repository", "code-repo", "CreateRepository", lambda p: p.update(repositoryName="Dagster"), "pattern"),
    ("aws:ec2/subnet:Subnet", "public-0", "CreateSubnet", lambda p: p.pop("VpcId"), 'Missing required parameter in input: "VpcId"'),
    ("aws:lb/loadBalancer:LoadBalancer", "ui-alb", "CreateLoadBalancer", lambda p: p.update(Name="a" * 33), "CreateLoadBalancer: Name"),
    ("aws:rds/instance:Instance", "db-postgres", "CreateDBInstance", lambda p: p.update(DBInstanceIdentifier="db--1"), "DBInstanceIdentifier"),
    ("aws:rds/instance:Instance", "db-postgres", "CreateDBInstance", lambda p: p.update(MaxAllocatedStorage=21), "10 % above"),
    ("aws:mq/broker:Broker", "mq-broker", "CreateBroker", lambda p: p.update(BrokerName="dagster.dev.mq"), "brokerName"),
    ("aws:secretsmanager/secret:Secret", "mq-url", "CreateSecret", lambda p: p.update(Name="broker-url-abcdef"), "CreateSecret: Name"),
    ("aws:rds/parameterGroup:ParameterGroup", "db-params", "ModifyDBParameterGroup",
     lambda p: p["Parameters"][0].update(ParameterName="rds.force_tls"), "not a parameter"),
    ("aws:mq/configuration:Configuration", "mq-config", "UpdateConfiguration",
     lambda p: p.update(Data=_conf("consumer_timeout = 3000000000\nvm_memory_high_watermark.relative = 0.6\n")), "out of range"),
    ("aws:iam/rolePolicy:RolePolicy", "ecs-worker", "PutRolePolicy",
     lambda p: _body(p, "PolicyDocument", lambda d: d.update(Version="2008-10-17")), "not '2012-10-17'"),
    ("aws:s3/bucketPolicy:BucketPolicy", "bucket-tls-only", "PutBucketPolicy",
     lambda p: _body(p, "Policy", lambda d: d["Statement"][0].pop("Principal")), "has no Principal"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "bucket-lifecycle", "PutBucketLifecycleConfiguration",
     lambda p: p["LifecycleConfiguration"]["Rules"][1].pop("Expiration"), "has no action"),
    ("aws:ecr/lifecyclePolicy:LifecyclePolicy", "code-lifecycle", "PutLifecyclePolicy",
     lambda p: _body(p, "lifecyclePolicyText", lambda d: d["rules"][0]["selection"].update(tagStatus="tagged")), "tagPrefixList"),
    ("aws:cloudwatch/dashboard:Dashboard", "ops-dashboard", "PutDashboard",
     lambda p: _body(p, "DashboardBody", lambda d: d["widgets"][1].update(width=24)), "placement"),
    ("aws:cloudwatch/dashboard:Dashboard", "ops-dashboard", "PutDashboard",
     lambda p: _body(p, "DashboardBody", lambda d: d["widgets"][0]["properties"]["metrics"][0].append("Queue")), "metric"),
    ("aws:appautoscaling/target:Target", "worker-heavy-scaling", "RegisterScalableTarget",
     lambda p: p.update(ResourceId="dagster-dev-ecs-cluster/worker-heavy"), "service/<cluster>/<service>"),
    ("aws:appautoscaling/policy:Policy", "worker-heavy-autoscaling-backlog", "PutScalingPolicy",
     lambda p: p["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"][0].update(ReturnData=True),
     "return data"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "ops-heavy-stuck", "PutMetricAlarm", lambda p: p.update(EvaluationPeriods=1441), "86400"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "ops-webserver-unhealthy", "PutMetricAlarm", lambda p: p.pop("Namespace"), "single-metric"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "ops-heavy-stuck", "PutMetricAlarm",
     lambda p: p["Metrics"][2].update(Expression="IF(depth > 0 AND workers == 0, 1, 0)"), "unknown ids ['workers']"),
    ("aws:cloudwatch/eventRule:EventRule", "ops-task-failed", "PutRule",
     lambda p: _body(p, "EventPattern", lambda d: d.update(source="aws.ecs")), "is not an array"),
    ("aws:lb/listener:Listener", "ui-http", "CreateListener", lambda p: p["DefaultActions"].insert(0, {
        "Type": "authenticate-cognito", "Order": 1, "AuthenticateCognitoConfig": {
            "UserPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/x", "UserPoolClientId": "c", "UserPoolDomain": "d"}}),
     "not HTTPS"),
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "broker-from-tasks", "AuthorizeSecurityGroupIngress",
     lambda p: p["IpPermissions"][0]["UserIdGroupPairs"][0].update(Description="AMQPS <from> tasks"), "description"),
    ("aws:cloudwatch/logGroup:LogGroup", "ecs-logs", "PutRetentionPolicy", lambda p: p.update(retentionInDays=10), "retentionInDays 10"),
]  # fmt: skip


@pytest.mark.parametrize(("typ", "suffix", "op", "breaks", "expected"), BREAKAGES, ids=[f"{b[2]}-{b[4]}" for b in BREAKAGES])
def test_the_checks_catch_a_broken_request(typ, suffix, op, breaks, expected):
    stack = declared("dev-private-ui")
    resource = stack.one(typ, suffix)
    inputs = aws_models.plain(reveal(resource.inputs))
    service, _, params = next(call for call in requests(stack, resource) if call[1] == op)
    assert check(service, op, params, inputs) == [], "the unbroken request must pass"
    breaks(params)
    report = "\n".join(check(service, op, params, inputs))
    assert expected in report, f"{op} broken, but the report says:\n{report or '(nothing)'}"
