"""The deployer's IAM policy (infra/tools/deployer_policy.py) for both example stacks and the config variants that
add resource types: it covers every type and invoke the program records, passes parliament, names only
actions AWS defines, uses Resource "*" only where AWS allows nothing narrower, and fits IAM's quota."""

from __future__ import annotations

import json
from pathlib import Path

import parliament
import pytest

from infra.tools import deployer_policy as dp
from infra.tools.testing import Resource, StackResult, stack_file_config
from tests.conftest import REPO_ROOT

ACCOUNT, REGION = "123456789012", "eu-west-1"
SEVERITY = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]

# parliament's copy of the Service Authorization Reference: action -> resource types.
RESOURCE_TYPES: dict[str, set[str]] = {}
for _service in json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text()):
    for _p in _service["privileges"]:
        _key = f"{_service['prefix']}:{_p['privilege']}".lower()
        RESOURCE_TYPES.setdefault(_key, set()).update(r["resource_type"] for r in _p["resource_types"])

# Actions newer than parliament's data (its UNKNOWN_ACTION finding is LOW).
NEWER_THAN_PARLIAMENT = {
    # Amazon MQ API reference, DeleteConfiguration; pulumi-aws deletes a configuration on destroy unless
    # skipDestroy (terraform-provider-aws pull request 47273).
    "mq:DeleteConfiguration",
}

COGNITO_POOL = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_example"
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/example"


def _prod(**overrides) -> dict:
    base = {k.split(":", 1)[1]: v for k, v in stack_file_config(REPO_ROOT / "Pulumi.prod.yaml").items()
            if k.startswith("dagster-celery-aws:")}  # fmt: skip
    return base | overrides


# Config variants that record types (or invokes) the example stacks do not.
VARIANTS = {
    "flower-email-cognito-scale-from-zero": _prod(
        operations={"flower": True, "alarmEmail": "ops@example.com", "ecsExec": True},
        ui={
            "access": "cognito",
            "certificateArn": CERTIFICATE,
            "cognito": {"userPoolArn": COGNITO_POOL, "userPoolClientId": "client", "userPoolDomain": "auth"},
            "viewers": {"allowedCidrs": ["198.51.100.0/24"]},  # a second signed-in listener, its own service
        },
        queues=[{"name": "dagster", "minWorkers": 0, "maxWorkers": 2}],
    ),  # fmt: skip
    "existing-vpc-prebuilt-image": _prod(
        network={
            "vpcId": "vpc-0123",
            "publicSubnetIds": ["subnet-1", "subnet-2"],
            "privateSubnetIds": ["subnet-3", "subnet-4"],
        },
        image={"uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dagster:2024-06-01"},
    ),  # fmt: skip
}


def _statements(docs: list[dict]):
    for doc in docs:
        for s in doc["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            yield s, actions, resources


def _all_actions(docs: list[dict]) -> set[str]:
    return {a for _, actions, _ in _statements(docs) for a in actions}


@pytest.fixture(scope="module", params=["dev", "prod"])
def example(request):
    stack = request.param
    result, invokes = dp.record(REPO_ROOT / f"Pulumi.{stack}.yaml", stack)
    docs = dp.documents(dp.statements(result, invokes, stack, ACCOUNT, REGION))
    return stack, result, invokes, docs


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    result, invokes = dp.record(None, "prod", config=VARIANTS[request.param])
    return request.param, result, invokes, dp.documents(dp.statements(result, invokes, "prod", ACCOUNT, REGION))


def test_covers_every_recorded_type_and_invoke(example):
    stack, result, invokes, docs = example
    granted = _all_actions(docs)
    for typ in {r.typ for r in result.resources} - {t for t in result.counts() if t.startswith(dp.COMPONENT_PREFIX)}:
        for sid, actions in dp.PERMISSIONS[typ].items():
            assert set(actions) <= granted, (typ, sid, set(actions) - granted)
    assert invokes and all(set(dp.INVOKES[t]) <= granted for t in invokes)


def test_variants_add_their_permissions(variant):
    name, result, invokes, docs = variant
    granted = _all_actions(docs)
    if name.startswith("flower"):
        assert {
            "elasticloadbalancing:CreateRule",
            "sns:Subscribe",
            "application-autoscaling:PutScalingPolicy",
        } <= granted
        (cognito,) = [s for s, _, _ in _statements(docs) if s["Sid"] == "CognitoSignIn"]
        assert cognito["Resource"] == [COGNITO_POOL]
    else:  # no VPC, no image build: the program only reads the given VPC
        assert "ec2:CreateVpc" not in granted and "ecr:PutImage" not in granted
        assert "aws:ec2/getVpc:getVpc" in invokes and "ec2:DescribeVpcs" in granted


def test_unknown_type_or_invoke_is_an_error_naming_it(example):
    stack, result, invokes, _ = example
    extra = StackResult([*result.resources, Resource("aws:sqs/queue:Queue", "dagster-x-q", {}, {})], result.outputs)
    with pytest.raises(dp.UnknownResourceType, match="aws:sqs/queue:Queue"):
        dp.statements(extra, invokes, stack)
    with pytest.raises(dp.UnknownResourceType, match="aws:index/getPartition:getPartition"):
        dp.statements(result, invokes | {"aws:index/getPartition:getPartition"}, stack)


def _significant(finding) -> bool:
    """Findings above LOW, less one of parliament's modelling: it demands that ELB listener and rule actions
    match both the ``app`` and the ``net`` ARN form, which the Service Authorization Reference lists as
    alternatives (an action acts on one listener, of one load balancer type). This stack has only an
    Application Load Balancer, so the policy names only ``listener/app`` and ``listener-rule/app``."""
    parliament.enhance_finding(finding)
    if SEVERITY.index(finding.severity) <= SEVERITY.index("LOW"):
        return False
    if finding.issue == "RESOURCE_MISMATCH":
        rest = [d for d in finding.detail if "elasticloadbalancing:*:*:listener/net/" not in d["required_format"]
                and "elasticloadbalancing:*:*:listener-rule/net/" not in d["required_format"]]  # fmt: skip
        return bool(rest)
    return True


def test_parliament_finds_nothing_above_low(example, variant):
    for *_, docs in (example, variant):
        for doc in docs:
            findings = parliament.analyze_policy_string(json.dumps(doc)).findings
            assert not [f for f in findings if _significant(f)], [(f.issue, f.detail) for f in findings]


def test_every_action_is_defined_by_aws_and_none_is_a_wildcard(example, variant):
    for *_, docs in (example, variant):
        for action in _all_actions(docs):
            assert "*" not in action
            assert action.lower() in RESOURCE_TYPES or action in NEWER_THAN_PARLIAMENT, action


def test_resource_star_only_for_actions_without_resource_level_permissions(example):
    *_, docs = example
    for statement, actions, resources in _statements(docs):
        if "*" in resources:
            assert resources == ["*"] and "Condition" not in statement
            scoped = [a for a in actions if RESOURCE_TYPES[a.lower()] - {""}]
            assert not scoped, f"{statement['Sid']}: {scoped} support resource-level permissions"


# Scopes that are not the stack's names, each for a reason given in infra/tools/deployer_policy.py.
NOT_BY_NAME = (
    f"arn:aws:ec2:{REGION}:{ACCOUNT}:*",  # EC2 IDs are AWS-assigned
    f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*",  # Amazon MQ's ENIs, conditioned on the service
    f"arn:aws:mq:{REGION}:{ACCOUNT}:configuration:*",  # configuration IDs are AWS-assigned
    f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/*",  # target IDs are AWS-assigned
    f"arn:aws:rds:{REGION}:{ACCOUNT}:db:*",  # DescribeDBInstances by resource ID
    f"arn:aws:rds:{REGION}:{ACCOUNT}:og:default:postgres-*",  # the engine's default option group
    f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*",  # key IDs are AWS-assigned
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/amazonmq/broker/*",  # named after the AWS-assigned broker ID
)


def test_resources_are_the_stacks_names(example):
    stack, _, _, docs = example
    for statement, _, resources in _statements(docs):
        for arn in resources:
            if statement["Sid"] in ("NoResourceLevelPermissions", "CreateServiceLinkedRoles", "CognitoSignIn"):
                continue
            assert f"dagster-{stack}-" in arn or arn in NOT_BY_NAME, (statement["Sid"], arn)
            if not arn.startswith("arn:aws:s3:::"):  # bucket ARNs name neither account nor Region
                assert ACCOUNT in arn and (REGION in arn or arn.startswith(("arn:aws:iam:", "arn:aws:cloudwatch::")))


def test_passed_roles_only_to_their_service(example):
    stack, _, _, docs = example
    passing = [s for s, actions, _ in _statements(docs) if "iam:PassRole" in actions]
    assert {s["Condition"]["StringEquals"]["iam:PassedToService"] for s in passing} >= {"ecs-tasks.amazonaws.com"}
    for s in passing:
        assert s["Action"] == "iam:PassRole" and all(
            r.startswith(f"arn:aws:iam::{ACCOUNT}:role/dagster-{stack}-") for r in s["Resource"]
        )


@pytest.mark.parametrize("stack", ["p", "production-eu-west-1-analytics-team"])
def test_name_prefixes_hold_every_recorded_name(stack):
    """A long stack name shortens some names (infra/aws/naming.py); each group's prefix still starts them all."""
    result, _ = dp.record(REPO_ROOT / "Pulumi.prod.yaml", stack)
    prefixes = dp.name_prefixes(result, stack)
    for group, (types, lower) in dp.NAME_GROUPS.items():
        for r in result.resources:
            if r.typ in types:
                name = dp._physical_name(r)
                assert (name.lower() if lower else name).startswith(prefixes[group]), (group, name, prefixes[group])


def test_fits_iam_managed_policy_quota(example):
    """IAM allows 6,144 characters per managed policy, whitespace excluded: the statements are split over as
    few documents as fit (two for dev, three for prod; an identity may have 10 managed policies by default)."""
    *_, docs = example
    assert all(dp.size(d) <= dp.MANAGED_POLICY_MAX for d in docs)
    assert len(docs) <= 3
    sids = [s["Sid"] for s, _, _ in _statements(docs)]
    assert len(sids) == len(set(sids))


def test_cli_prints_the_documents(capsys):
    assert dp.main(["--stack-file", str(REPO_ROOT / "Pulumi.dev.yaml"), "--stack", "dev", "--account", ACCOUNT]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert isinstance(docs, list) and all(d["Version"] == "2012-10-17" for d in docs)
    assert f"arn:aws:iam::{ACCOUNT}:role/dagster-dev-*" in json.dumps(docs)
    assert f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/dagster-dev-*" in json.dumps(docs)  # region from the stack file
