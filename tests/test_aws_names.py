"""Every name the stack gives AWS, as Pulumi would send it, against each type's AWS rules -- for the example
stacks and for stack names that are long or use every character a Pulumi stack name may have."""

from __future__ import annotations

import pulumi_aws as aws
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.aws import naming
from infra.tools.testing import run_stack, stack_file_config
from tests.conftest import REPO_ROOT

PROD_UI = stack_file_config(REPO_ROOT / "Pulumi.prod.yaml")["dagster-celery-aws:ui"]
VIEWERS = {"allowedCidrs": ["198.51.100.0/24"]}  # the read-only UI's target group and service (ui.viewers)
FLOWER_AND_FLOW_LOGS = {"operations": {"flower": True}, "network": {"natGateways": 1, "flowLogs": True}}
CASES = {
    "dev": ("dev", "Pulumi.dev.yaml", None),
    "prod": ("prod", "Pulumi.prod.yaml", None),
    "long": ("customer-analytics-production1", "Pulumi.prod.yaml", FLOWER_AND_FLOW_LOGS),
    "odd": ("Team_A.data-platform", "Pulumi.dev.yaml", {**FLOWER_AND_FLOW_LOGS, "ui": {"access": "private"}}),
    "longest": ("s" * 100, "Pulumi.prod.yaml", {**FLOWER_AND_FLOW_LOGS, "ui": {**PROD_UI, "viewers": VIEWERS}}),
}
# Types that have no name AWS checks (tags only, or a name AWS generates).
NAMELESS = {
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable", "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/eip:Eip",
    "aws:ec2/natGateway:NatGateway", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/flowLog:FlowLog", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy", "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",  # a setting of the cluster it names
    "aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule", "aws:appautoscaling/target:Target",
    "aws:sns/topicPolicy:TopicPolicy", "aws:sns/topicSubscription:TopicSubscription",
    "aws:cloudwatch/eventTarget:EventTarget", "random:index/randomPassword:RandomPassword",
    "random:index/randomString:RandomString",
    "docker-build:index:Image", "pulumi-python:dynamic:Resource",
    # A KMS key has an ID AWS assigns (its alias is named); a bucket's logging and WAF's association and logging
    # settings are settings of what they attach to.
    "aws:kms/key:Key", "aws:s3/bucketLogging:BucketLogging", "aws:wafv2/webAclAssociation:WebAclAssociation",
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
}  # fmt: skip


@pytest.fixture(scope="module", params=list(CASES))
def stack(request):
    name, stack_file, extra = CASES[request.param]
    return run_stack(REPO_ROOT / stack_file, config=extra, stack=name)


def test_every_name_fits_its_types_aws_rules(stack):
    problems = []
    for r in stack.resources:
        if r.typ.startswith("dagster-celery-aws:") or r.typ in NAMELESS:
            continue
        rules = [naming.RULES[r.typ], *(rule for (typ, _), rule in naming.EXTRA.items() if typ == r.typ)]
        for rule in rules:
            given_name = r.inputs.get(rule.prop)
            if given_name is None and rule.prop != naming.RULES[r.typ].prop:
                continue  # an optional extra name that is not set
            physical = given_name if given_name is not None else rule.physical(r.name)
            problem = rule.problem(physical)
            if problem:
                problems.append(f"{r.urn} {rule.prop}={physical!r}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_prod_target_group_would_not_have_fit_without_fitting():
    # The finding: `dagster-prod-ui-webserver` + 8 random characters is 33, over the ELBv2 limit of 32.
    rule = naming.RULES[aws.lb.TargetGroup.pulumi_type]
    assert "over the limit of 32" in rule.problem(rule.physical("dagster-prod-ui-webserver"))
    assert naming.fit(aws.lb.TargetGroup, "dagster-prod-ui-webserver") != "dagster-prod-ui-webserver"


def test_names_that_already_fit_are_kept_so_nothing_deployed_is_renamed():
    for logical in ("dagster-dev-ui-webserver", "dagster-dev-ui-alb", "dagster-prod-db-postgres"):
        for cls in (aws.lb.TargetGroup, aws.lb.LoadBalancer, aws.rds.Instance, aws.s3.Bucket, aws.sns.Topic):
            assert naming.fit(cls, logical) == logical


@settings(max_examples=300, deadline=None)
@given(stack_name=st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=100), suffix=st.sampled_from(
    ["-ui-alb", "-ui-webserver", "-mq-broker", "-db-postgres", "-bucket-data", "-ecs-execution", "-ops-alarms"]))
def test_fit_gives_a_valid_stable_name_for_any_stack_name(stack_name, suffix):
    logical = f"dagster-{stack_name}{suffix}"
    for typ, rule in naming.RULES.items():
        fitted = rule.fit(logical)
        assert rule.problem(rule.physical(fitted)) is None, (typ, logical, fitted)
        assert rule.fit(logical) == fitted  # the same name on every `pulumi up`


def test_every_recorded_type_is_either_named_by_a_rule_or_has_no_name(stack):
    recorded = {r.typ for r in stack.resources if not r.typ.startswith("dagster-celery-aws:")}
    assert recorded - NAMELESS - set(naming.RULES) == set()
