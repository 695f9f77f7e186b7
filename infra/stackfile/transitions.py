"""Config changes that validation cannot see: a value is fine on its own, but AWS refuses to move to it from
what is deployed. Checked against the previous deployment's values (components/guard.py) before anything
is changed, each with a message that says what to do instead.
"""

from __future__ import annotations

from infra.stackfile.config import StackConfig

MICRO_BROKER = "mq.t3.micro"


def deployed_values(cfg: StackConfig) -> dict[str, str | bool]:
    """What the next `pulumi up` compares against: the values whose changes AWS may refuse."""
    return {
        "brokerInstanceType": cfg.broker.instance_type,
        "brokerEngineVersion": cfg.broker.engine_version.value,
        "databaseEngineVersion": cfg.database.engine_version,
        "internetFacingUi": cfg.ui.access.internet_facing,
        "loadBalancedUi": cfg.ui.access.load_balanced,
        "deletionProtection": cfg.protection.deletion_protection,
        "kmsKeyArn": cfg.security.kms_key_arn or "",  # "": the key the stack made itself
    }


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).split("."))


def problems(old: dict, new: dict) -> list[tuple[str, str]]:
    """(key path, message) for each change from ``old`` (deployed) to ``new`` that AWS would refuse."""
    if not old:
        return []  # the first deployment: nothing to move from
    found = []
    if new["brokerInstanceType"] == MICRO_BROKER and old["brokerInstanceType"] != MICRO_BROKER:
        # Amazon MQ guide, "Amazon MQ for RabbitMQ sizing guidelines": mq.t3.micro is for evaluation, and a
        # broker on a larger host cannot be moved to it.
        found.append(("broker.instanceType", f"Amazon MQ cannot move a broker from {old['brokerInstanceType']} "
                      f"down to {MICRO_BROKER}; keep {old['brokerInstanceType']} (or mq.m7g.medium), or replace the "
                      "broker deliberately with `pulumi up --replace <broker URN>` (queued messages are lost)"))
    if _version(new["brokerEngineVersion"]) < _version(old["brokerEngineVersion"]):
        found.append(("broker.engineVersion", f"RabbitMQ cannot be downgraded from {old['brokerEngineVersion']} "
                      f"to {new['brokerEngineVersion']}; keep {old['brokerEngineVersion']}"))
    if _version(new["databaseEngineVersion"])[0] < _version(old["databaseEngineVersion"])[0]:
        found.append(("database.engineVersion", f"RDS cannot downgrade PostgreSQL {old['databaseEngineVersion']} to "
                      f"{new['databaseEngineVersion']}; restore a snapshot into a new stack instead"))
    # Deployed before ui.access 'ssm' existed: every UI had a load balancer.
    had_lb = old.get("loadBalancedUi", True)
    if new["internetFacingUi"] != old["internetFacingUi"] and old["deletionProtection"] and had_lb and new["loadBalancedUi"]:
        # An internal load balancer cannot become internet-facing or back (ELBv2: Scheme is set at creation),
        # so the change replaces it, and AWS refuses to delete one with deletion protection on. (From 'ssm'
        # there is no load balancer to replace.)
        found.append(("ui.access", "switching between a private and an internet-facing UI replaces the load "
                      "balancer, whose deletion protection forbids removing the old one: first `pulumi up` with "
                      "protection.deletionProtection false, then change ui.access and `pulumi up`, then turn "
                      "protection back on (docs/deployment.md, 'Day 2')"))
    if had_lb and not new["loadBalancedUi"] and old["deletionProtection"]:
        found.append(("ui.access", "ui.access 'ssm' deletes the UI's load balancer, whose deletion protection forbids "
                      "it: first `pulumi up` with protection.deletionProtection false, then change ui.access and "
                      "`pulumi up`, then turn protection back on (docs/deployment.md, 'Day 2')"))
    # Absent from a deployment made before the guard held it: unknown, so not refused (a key kept would be).
    if "kmsKeyArn" in old and new["kmsKeyArn"] != old["kmsKeyArn"]:
        # RDS refuses a new Performance Insights key ("You can't change your Performance Insights KMS key"; RDS API,
        # ModifyDBInstance PerformanceInsightsKMSKeyId), after the image repository, whose encryption is fixed at
        # creation, was already replaced; and what the old key encrypted (log events, bucket objects, secret
        # versions) stays under it, so a key the stack made must not be scheduled for deletion.
        before, after = old["kmsKeyArn"] or "the stack's own key", new["kmsKeyArn"] or "the stack's own key"
        found.append(("security.kmsKeyArn", f"the stack's key cannot change once deployed ({before} -> {after}): RDS "
                      "cannot change the Performance Insights key, and logs, bucket objects and secrets stay encrypted "
                      f"under the old key. Keep {before}. To move to another key: `pulumi up` a new stack with "
                      "security.kmsKeyArn set, restore the database there from a snapshot and copy the bucket, then "
                      "destroy this stack (docs/security.md)"))
    return found
