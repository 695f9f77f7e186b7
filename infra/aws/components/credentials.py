"""Credentials: generated passwords, and the secrets that hand them to containers.

``generated_password`` creates one ``random.RandomPassword`` of 32 characters, made once for the life of
what it protects. Its generation settings are ignored after creation:
changing how passwords are generated must never produce a new one silently -- Amazon MQ keeps a RabbitMQ
broker's first admin password (the provider ignores later ``users`` changes), so a new value would reach
the URL secret but not the broker.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.aws import naming

GENERATION = ["length", "special", "overrideSpecial", "minSpecial"]


def generated_password(name: str, parent: pulumi.Resource, specials: str | None = None) -> random.RandomPassword:
    """``specials``: the special characters allowed (at least two used), or None for letters and digits only."""
    return random.RandomPassword(
        name, length=32, special=specials is not None, override_special=specials,
        min_special=2 if specials else None, opts=pulumi.ResourceOptions(parent=parent, ignore_changes=GENERATION),
    )  # fmt: skip


class StoredSecret:
    """A Secrets Manager secret holding ``value`` (kept secret in state), and how a container reads it.

    Creates the secret, encrypted with the stack's KMS key, and its version. ``ref(key)`` is the ECS ``valueFrom`` of the secret, or of one key of a
    JSON secret, pinned to the current version id (ECS guide, "Pass Secrets Manager secrets through
    environment variables": ``<arn>:<json-key>:<version-stage>:<version-id>``). Containers read secrets only
    when they start; pinned, a new value (a replaced broker's URL, a new password) changes the task
    definitions that read it, so ECS starts tasks that see it instead of keeping tasks with the old one.
    """

    def __init__(
        self, name: str, parent: pulumi.Resource, description: str, value: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
    ):  # fmt: skip
        child = pulumi.ResourceOptions(parent=parent)
        self.secret = aws.secretsmanager.Secret(
            naming.fit(aws.secretsmanager.Secret, name), description=description, kms_key_id=kms_key_arn, opts=child
        )
        self.version = aws.secretsmanager.SecretVersion(
            name, secret_id=self.secret.id, secret_string=pulumi.Output.secret(value), opts=child
        )
        self.arn = self.secret.arn

    def ref(self, key: str = "") -> pulumi.Output[str]:
        return pulumi.Output.concat(self.secret.arn, ":", key, "::", self.version.version_id)
