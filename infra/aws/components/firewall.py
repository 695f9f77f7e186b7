"""Firewall: AWS WAF in front of an internet-facing UI (``security.waf``; on by default when the UI is
internet-facing).

Creates: a regional web ACL that allows what no rule blocks, with four AWS managed rule groups -- the core
rule set, known bad inputs (Log4j and other exploit patterns), Amazon's IP reputation list and the anonymous IP
list (Tor, anonymizing proxies) -- its association with the load balancer, and its logs: a log group
``aws-waf-logs-…`` (the name WAF requires) encrypted with the stack's key and kept ``logs.retentionDays``.

Two rules only count, so that they cannot lock legitimate users out: the core rule set's
``SizeRestrictions_BODY`` (request bodies over 8 KB: the UI's GraphQL requests carry whole run configs) and the
anonymous IP list's ``HostingProviderIPList`` (a VPN or a desktop hosted in a cloud). Every other rule blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws import naming

# (AWS managed rule group, rules of it that only count). AWS WAF Developer Guide, "AWS Managed Rules rule groups
# list": baseline rule groups, no charge beyond the web ACL's rules.
MANAGED_RULE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY",)),
    ("AWSManagedRulesKnownBadInputsRuleSet", ()),
    ("AWSManagedRulesAmazonIpReputationList", ()),
    ("AWSManagedRulesAnonymousIpList", ("HostingProviderIPList",)),
)
LOG_GROUP_PREFIX = "aws-waf-logs-"  # AWS WAF Developer Guide, "Sending web ACL traffic logs to CloudWatch Logs"


def visibility(metric: str) -> dict:
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric, "sampled_requests_enabled": True}


def rules() -> list[dict]:
    return [
        {
            "name": group,
            "priority": i,
            "override_action": {"none": {}},  # the group's own actions
            "statement": {"managed_rule_group_statement": {
                "vendor_name": "AWS", "name": group,
                **({"rule_action_overrides": [{"name": r, "action_to_use": {"count": {}}} for r in counted]}
                   if counted else {}),
            }},
            "visibility_config": visibility(group),
        }
        for i, (group, counted) in enumerate(MANAGED_RULE_GROUPS)
    ]  # fmt: skip


@dataclass
class FirewallArgs:
    load_balancer_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int


class Firewall(pulumi.ComponentResource):
    def __init__(self, name: str, args: FirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:firewall:Firewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.web_acl = aws.wafv2.WebAcl(
            naming.fit(aws.wafv2.WebAcl, f"{name}-acl"), scope="REGIONAL", default_action={"allow": {}},
            description="Dagster UI: AWS managed rule groups", rules=rules(),
            visibility_config=visibility(naming.fit(aws.wafv2.WebAcl, f"{name}-acl")), opts=child,
        )  # fmt: skip
        aws.wafv2.WebAclAssociation(
            f"{name}-association", resource_arn=args.load_balancer_arn, web_acl_arn=self.web_acl.arn, opts=child
        )
        logs = aws.cloudwatch.LogGroup(
            naming.fit(aws.cloudwatch.LogGroup, f"{LOG_GROUP_PREFIX}{name}"), retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn, opts=child,
        )  # fmt: skip
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging", resource_arn=self.web_acl.arn, log_destination_configs=[logs.arn], opts=child
        )
        self.register_outputs({"web_acl_arn": self.web_acl.arn})
