"""AWS name rules for what the stack names, and names that fit them for any stack name.

Pulumi names a resource without an explicit name ``<logical name>-<7 random hex chars>`` (pulumi-aws
``autonaming.go``; the provider refuses a name over the type's limit, pulumi-aws issue 1317). Logical names
here start with ``dagster-<stack>``, and a stack name may be up to 100 characters of letters, digits,
``-``, ``_`` and ``.`` -- so a long or unusual stack name overflows the tighter limits (32 for load balancers
and target groups) or uses a character a type refuses (``.`` in an SNS topic, ``_`` in an S3 bucket).

``fit(type, logical)`` keeps a logical name that already yields a valid name (so no deployed resource is
renamed) and otherwise returns a shortened, sanitised one with a hash of the original, stable across runs.
The limits and character sets are those of each AWS API reference (cited per rule below; docs/facts.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SUFFIX_LEN = 8  # "-" + 7 random hex characters (Pulumi autonaming)
SAMPLE_SUFFIX = "-0a1b2c3"


@dataclass(frozen=True)
class Rule:
    prop: str  # the input that holds the name (camelCase)
    max_len: int
    allowed: str  # regex character class of the characters AWS accepts
    lower: bool = False  # only lower case accepted; stored lower-cased by AWS or Pulumi where `folded`
    folded: bool = False  # AWS or Pulumi lower-cases the name itself, so upper case is fine in the logical name
    letter_first: bool = False
    no_double_hyphen: bool = False  # and no trailing hyphen
    no_edge_hyphen: bool = False  # neither starts nor ends with a hyphen
    autonamed: bool = True  # False: the program sets the name itself (no random suffix)

    def problem(self, physical: str) -> str | None:
        """Why AWS would refuse ``physical`` as this type's name, or None."""
        name = physical.lower() if self.folded else physical
        if len(name) > self.max_len:
            return f"{len(name)} characters, over the limit of {self.max_len}"
        bad = sorted(set(re.sub(f"[{self.allowed}]", "", name)))
        if bad or (self.lower and name != name.lower()):
            return f"characters {''.join(bad) or 'in upper case'} not allowed (allowed: {self.allowed})"
        if self.letter_first and not name[:1].isalpha():
            return "must start with a letter"
        if self.no_double_hyphen and ("--" in name or name.endswith("-")):
            return "must not contain '--' or end with '-'"
        if self.no_edge_hyphen and (name.startswith("-") or name.endswith("-")):
            return "must not start or end with '-'"
        return None

    def physical(self, logical: str) -> str:
        """The name AWS would receive for this logical name (a sample random suffix where Pulumi adds one)."""
        return logical + SAMPLE_SUFFIX if self.autonamed else logical

    def fit(self, logical: str) -> str:
        if self.problem(self.physical(logical)) is None:
            return logical
        name = logical.lower() if self.lower or self.folded else logical
        name = re.sub(f"[^{self.allowed}]", "-", name)
        if self.no_double_hyphen:
            name = re.sub("-{2,}", "-", name)
        budget = self.max_len - (SUFFIX_LEN if self.autonamed else 0)
        if len(name) > budget or name != logical:
            digest = hashlib.sha256(logical.encode()).hexdigest()[:6]
            name = name[: budget - len(digest) - 1].rstrip("-_.") + "-" + digest
        return name


_ALNUM_HYPHEN = "A-Za-z0-9-"
_RDS = dict(allowed="a-z0-9-", folded=True, letter_first=True, no_double_hyphen=True)

# Pulumi type token -> the rule of its name. ELBv2 API reference, CreateLoadBalancer / CreateTargetGroup
# ("Name": 32 characters, alphanumerics and hyphens, not beginning or ending with a hyphen); Amazon MQ API
# reference, CreateBroker ("BrokerName": 1-50, alphanumerics, dashes, periods, underscores, tildes) and
# CreateConfiguration (1-150, same characters); RDS API reference, CreateDBInstance (identifier: 1-63 letters,
# digits or hyphens, first a letter, no two consecutive hyphens, not ending with one; stored lower case),
# CreateDBParameterGroup, CreateDBSubnetGroup (255) and DeleteDBInstance (FinalDBSnapshotIdentifier, 255);
# S3 "Bucket naming rules" (3-63, lower-case letters, digits, '.', '-'; pulumi-aws lower-cases the autoname);
# IAM "IAM object quotas" (role 64, inline policy 128; [\w+=,.@-]); EventBridge PutRule (64, [.\-_A-Za-z0-9]);
# CloudWatch Logs CreateLogGroup (512, [.\-_/#A-Za-z0-9]); Secrets Manager CreateSecret (512,
# [A-Za-z0-9/_+=.@-]); SNS CreateTopic (256, alphanumerics, '-', '_'); ECR CreateRepository (256, lower case,
# [a-z0-9._/-]); ECS CreateCluster / CreateService / RegisterTaskDefinition family (255, letters, digits,
# '-', '_'); CloudWatch PutDashboard (255, alphanumerics, '-', '_').
RULES: dict[str, Rule] = {
    "aws:lb/loadBalancer:LoadBalancer": Rule("name", 32, _ALNUM_HYPHEN, no_edge_hyphen=True),
    "aws:lb/targetGroup:TargetGroup": Rule("name", 32, _ALNUM_HYPHEN, no_edge_hyphen=True),
    "aws:mq/broker:Broker": Rule("brokerName", 50, "A-Za-z0-9._~-"),
    "aws:mq/configuration:Configuration": Rule("name", 150, "A-Za-z0-9._~-"),
    "aws:rds/instance:Instance": Rule("identifier", 63, **_RDS),
    "aws:rds/parameterGroup:ParameterGroup": Rule("name", 255, **_RDS),
    "aws:rds/subnetGroup:SubnetGroup": Rule("name", 255, "a-z0-9._ -", folded=True),
    "aws:s3/bucket:Bucket": Rule("bucket", 63, "a-z0-9.-", folded=True, no_edge_hyphen=True),
    "aws:iam/role:Role": Rule("name", 64, r"\w+=,.@-"),
    "aws:iam/rolePolicy:RolePolicy": Rule("name", 128, r"\w+=,.@-"),
    "aws:cloudwatch/eventRule:EventRule": Rule("name", 64, r"._A-Za-z0-9-"),
    "aws:cloudwatch/logGroup:LogGroup": Rule("name", 512, r"._/#A-Za-z0-9-"),
    "aws:secretsmanager/secret:Secret": Rule("name", 512, r"A-Za-z0-9/_+=.@-"),
    "aws:sns/topic:Topic": Rule("name", 256, "A-Za-z0-9_-"),
    "aws:ecr/repository:Repository": Rule("name", 256, "a-z0-9._/-", lower=True, no_double_hyphen=True),
    "aws:ecs/cluster:Cluster": Rule("name", 255, "A-Za-z0-9_-"),
    "aws:ecs/service:Service": Rule("name", 255, "A-Za-z0-9_-", autonamed=False),
    "aws:ecs/taskDefinition:TaskDefinition": Rule("family", 255, "A-Za-z0-9_-", autonamed=False),
    "aws:cloudwatch/dashboard:Dashboard": Rule("dashboardName", 255, "A-Za-z0-9_-", autonamed=False),
    # EC2 CreateSecurityGroup (255; VPC groups: letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*);
    # CloudWatch PutMetricAlarm (255) and Application Auto Scaling PutScalingPolicy (256): printable ASCII.
    "aws:ec2/securityGroup:SecurityGroup": Rule("name", 255, r"A-Za-z0-9 ._:/()#,@\[\]+=&;{}!$*-"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Rule("name", 255, r"\x20-\x7e"),
    "aws:appautoscaling/policy:Policy": Rule("name", 256, r"\x20-\x7e"),
    # KMS CreateAlias (AliasName: "alias/" then the name, 256 characters in all: letters, digits, '/', '_', '-';
    # set by the program);
    # WAFV2 CreateWebACL (Name: 1-128, letters, digits, '_', '-').
    "aws:kms/alias:Alias": Rule("name", 256, "A-Za-z0-9/_-", autonamed=False),
    "aws:wafv2/webAcl:WebAcl": Rule("name", 128, "A-Za-z0-9_-"),
}
# Names the program sets on a resource besides its own name.
EXTRA: dict[tuple[str, str], Rule] = {
    ("aws:rds/instance:Instance", "finalSnapshotIdentifier"): Rule(
        "finalSnapshotIdentifier", 255, **_RDS, autonamed=False
    ),
}


def fit(resource_class: type, logical: str, prop: str | None = None) -> str:
    """``logical`` if it yields a valid name for the class's type (or for its name property ``prop``),
    else a valid name derived from it."""
    typ = resource_class.pulumi_type
    return (EXTRA[(typ, prop)] if prop else RULES[typ]).fit(logical)
