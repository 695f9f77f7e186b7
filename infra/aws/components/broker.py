"""Broker: Amazon MQ for RabbitMQ, the Celery broker.

Creates: a generated admin password (no commas: Amazon MQ refuses them), an ``aws.mq.Configuration`` that
sets ``consumer_timeout``, a private broker in the private subnets (single instance, or a three-node
cluster in production) whose general log's group gets the stack's key and retention (components/service_logs.py),
and a Secrets Manager secret holding the full ``amqps://`` broker URL -- the only way containers receive the
credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws

from infra.aws import naming
from infra.aws.components.credentials import StoredSecret, generated_password
from infra.aws.components.service_logs import ServiceLogGroup, mq_log_group
from infra.stackfile.config import Broker as BrokerConfig
from infra.stackfile.config import DeploymentMode

ADMIN_USER = "dagster"
# URL-safe specials only: the password also travels inside the broker URL (docs/facts.md: no commas).
PASSWORD_SPECIALS = "-_.~"


def broker_url(endpoint: str, username: str, password: str) -> str:
    """Kombu URL for the broker's ``amqps://host:5671`` endpoint, default vhost ``/`` (written ``//``)."""
    host = endpoint.removeprefix("amqps://")
    return f"amqps://{quote(username, safe='')}:{quote(password, safe='')}@{host}//"


def rabbitmq_conf(cfg: BrokerConfig) -> str:
    # consumer_timeout is in milliseconds; it must exceed the longest step, or a late-acked step's channel is
    # closed and the step redelivered (docs/facts.md; Amazon MQ configurable rabbitmq.conf keys).
    return f"consumer_timeout = {cfg.consumer_timeout_minutes * 60 * 1000}\n"


@dataclass
class BrokerArgs:
    config: BrokerConfig
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]  # the URL secret's and the broker log's
    log_retention_days: int = 14  # the broker log's (logs.retentionDays)


class Broker(pulumi.ComponentResource):
    def __init__(self, name: str, args: BrokerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:broker:Broker", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        password = generated_password(f"{name}-password", self, PASSWORD_SPECIALS)
        configuration = aws.mq.Configuration(
            naming.fit(aws.mq.Configuration, f"{name}-config"), engine_type="RabbitMQ", engine_version=cfg.engine_version.value,
            data=rabbitmq_conf(cfg), description="dagster-celery-aws broker settings", opts=child,
        )  # fmt: skip
        single = cfg.deployment_mode == DeploymentMode.SINGLE_INSTANCE
        self.nodes = 1 if single else 3  # a RabbitMQ cluster broker is three nodes (Amazon MQ guide)
        self.broker = aws.mq.Broker(
            naming.fit(aws.mq.Broker, f"{name}-broker"),
            engine_type="RabbitMQ",
            engine_version=cfg.engine_version.value,
            host_instance_type=cfg.instance_type,
            deployment_mode=cfg.deployment_mode.value,
            subnet_ids=args.subnet_ids[:1] if single else args.subnet_ids,  # SINGLE_INSTANCE takes one subnet
            security_groups=[args.security_group_id],
            publicly_accessible=False,
            auto_minor_version_upgrade=True,  # required for RabbitMQ 3.13 and later (CreateBroker API)
            # A new configuration revision (a broker setting such as the consumer timeout) or host type takes
            # effect only after a reboot: apply it now, with a reboot, instead of leaving it pending unseen.
            apply_immediately=True,
            configuration={"id": configuration.id, "revision": configuration.latest_revision},
            users=[{"username": ADMIN_USER, "password": password.result}],
            logs={"general": True},
            opts=child,
        )
        # The group Amazon MQ makes for the general log gets the stack's key and retention.
        ServiceLogGroup(f"{name}-logs", self.broker.id.apply(mq_log_group), args.kms_key_arn, args.log_retention_days, opts=child)
        self.endpoint = self.broker.instances[0].endpoints[0]
        # The RabbitMQ management API (HTTPS) that the queue-metrics publisher reads.
        self.console_url = self.broker.instances[0].console_url
        self.url_secret = StoredSecret(
            f"{name}-url", self, "Celery broker URL (amqps://user:password@host:5671//)",
            pulumi.Output.all(self.endpoint, password.result).apply(lambda a: broker_url(a[0], ADMIN_USER, a[1])),
            args.kms_key_arn,
        )  # fmt: skip
        self.register_outputs({"endpoint": self.endpoint, "url_secret_arn": self.url_secret.arn})
