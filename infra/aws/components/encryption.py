"""Encryption key: the one customer-managed KMS key of the stack.

Creates, unless ``security.kmsKeyArn`` names an existing key: a symmetric KMS key with automatic yearly
rotation, a 30-day deletion window and the key policy of ``iam.key_policy`` (the account administers it, IAM
grants its use; CloudWatch Logs, CloudWatch alarms and EventBridge use it as themselves), and an alias
``alias/dagster-<stack>``. The stack's secrets, log groups, alarm topic, image repository, bucket and the
database's Performance Insights are encrypted with it; the roles of the stack may decrypt (and generate data
keys) with it and with no other key.

An existing key is used as it is: its key policy must admit the same services (docs/security.md).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from infra.aws import iam, naming

# The longest window AWS allows (KMS API Reference, ScheduleKeyDeletion: 7-30 days): a key deleted by
# `pulumi destroy` can still be recovered for a month, and with it everything it encrypted.
DELETION_WINDOW_DAYS = 30


class EncryptionKey(pulumi.ComponentResource):
    arn: pulumi.Output[str]

    def __init__(self, name: str, kms_key_arn: str | None, protect: bool, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:encryption:EncryptionKey", name, None, opts)
        if kms_key_arn:
            self.arn = pulumi.Output.from_input(kms_key_arn)
            self.register_outputs({"arn": self.arn})
            return
        account = aws.get_caller_identity_output().account_id
        region = aws.get_region_output().region
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: secrets, logs, alarm topic, image repository, bucket",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=pulumi.Output.all(account, region).apply(lambda a: json.dumps(iam.key_policy(a[0], a[1]))),
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        aws.kms.Alias(
            f"{name}-alias", name=naming.fit(aws.kms.Alias, f"alias/{name}"), target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )  # fmt: skip
        self.arn = key.arn
        self.register_outputs({"arn": self.arn})
