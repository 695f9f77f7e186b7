"""Service log groups: the log groups AWS services create for themselves get the stack's key and retention.

RDS writes the exported PostgreSQL logs to ``/aws/rds/instance/<identifier>/<log type>`` (RDS User Guide, "Publishing
PostgreSQL logs to Amazon CloudWatch Logs"), Amazon MQ its broker log to ``/aws/amazonmq/broker/<broker ID>/general``
(Amazon MQ API Reference, DescribeBroker ``Logs.GeneralLogGroup``), Container Insights its task and service metrics
to ``/aws/ecs/containerinsights/<cluster>/performance`` (CloudWatch User Guide, "Container Insights performance log
events for Amazon ECS"). Each service creates the group on its first event, unencrypted by the stack's key and kept
forever, and each name holds an identifier known only once its owner exists. A declared ``aws.cloudwatch.LogGroup``
would therefore race the service, and fail on every stack deployed before (``ResourceAlreadyExistsException``).

Creates one dynamic resource per such group, after its owner: it creates the group with the stack's key if the
service has not yet (so the first event is already encrypted), else associates the key with it, and sets the
retention -- again whenever either changes -- and deletes the group with it. It calls CloudWatch Logs from the
program, with the deployer's credentials (components/sdk.py).
"""

from __future__ import annotations

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.aws.components import sdk

# What the provider calls (the deployer's policy grants them on these names: infra/tools/deployer_policy.py).
CALLS = ("logs:CreateLogGroup", "logs:AssociateKmsKey", "logs:PutRetentionPolicy", "logs:DeleteLogGroup")


def rds_log_group(identifier: str, log_type: str) -> str:
    return f"/aws/rds/instance/{identifier}/{log_type}"


def mq_log_group(broker_id: str) -> str:
    return f"/aws/amazonmq/broker/{broker_id}/general"


def container_insights_log_group(cluster_name: str) -> str:
    return f"/aws/ecs/containerinsights/{cluster_name}/performance"


def _provider_class() -> type[ResourceProvider]:
    # Defined in a function, as the guard's (components/guard.py): dill stores the class, its calls and the SDK
    # client in the state by value, so `pulumi refresh` and `pulumi destroy` need none of this project's modules.
    client_for = sdk.client

    class ServiceLogsProvider(ResourceProvider):
        serialize_as_secret_always = False  # names, a key ARN and a number: nothing secret

        @staticmethod
        def settle(props: dict, client=None) -> None:
            """The group exists, encrypted with the key and kept ``retentionDays``, whoever created it."""
            logs = client or client_for("logs", props)
            name, key = props["logGroupName"], props["kmsKeyId"]
            try:
                logs.create_log_group(logGroupName=name, kmsKeyId=key)
            except logs.exceptions.ResourceAlreadyExistsException:
                # The service was first: what it wrote stays under its own encryption, what follows uses the key.
                logs.associate_kms_key(logGroupName=name, kmsKeyId=key)
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["retentionDays"]))

        @staticmethod
        def remove(props: dict, client=None) -> None:
            logs = client or client_for("logs", props)
            try:
                logs.delete_log_group(logGroupName=props["logGroupName"])
            except logs.exceptions.ResourceNotFoundException:
                pass

        def create(self, props):
            self.settle(props)
            return CreateResult(props["logGroupName"], props)

        def diff(self, _id, olds, news):
            # "__provider": a new provider is stored by an update (a state from before the by-value one has a
            # reference to a module path that is gone, which refresh and destroy would need).
            keys = ("logGroupName", "kmsKeyId", "retentionDays", "region", "profile", "__provider")
            changes = [k for k in keys if olds.get(k) != news.get(k)]
            # A new name is another group (its owner was replaced): the old one goes once the new one is settled.
            return DiffResult(changes=bool(changes), replaces=[k for k in changes if k in ("logGroupName", "region")])

        def update(self, _id, _olds, news):
            self.settle(news)
            return UpdateResult(news)

        def delete(self, _id, props):
            self.remove(props)

    return ServiceLogsProvider


_Provider = _provider_class()
settle, remove = _Provider.settle, _Provider.remove


class ServiceLogGroup(pulumi.dynamic.Resource):
    """The group ``log_group_name`` (an Output of its owner) with ``kms_key_arn`` and ``retention_days``."""

    def __init__(self, name: str, log_group_name: pulumi.Input[str], kms_key_arn: pulumi.Input[str], retention_days: int,
                 opts: pulumi.ResourceOptions | None = None):  # fmt: skip
        props = {"logGroupName": log_group_name, "kmsKeyId": kms_key_arn, "retentionDays": retention_days, **sdk.where()}
        super().__init__(_Provider(), name, props, opts)
