"""Flower: Celery's monitoring UI, optional (``operations.flower``).

Creates: a generated basic-auth password kept in Secrets Manager as ``user:password`` (handed to the
flower container only, as the ECS secret FLOWER_BASIC_AUTH), and a route ``/flower`` on the UI's load
balancer, behind the same access control (allow-list or sign-in) as the Dagster UI. The service itself
is the shared Service component, from the ``flower`` process spec.
"""

from __future__ import annotations

import pulumi

from infra.specs import contract
from infra.aws.components.credentials import StoredSecret, generated_password
from infra.aws.components.loadbalancer import LoadBalancer

USER = "dagster"
LISTENER_RULE_PRIORITY = 10


class Flower(pulumi.ComponentResource):
    def __init__(self, name: str, lb: LoadBalancer, kms_key_arn: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:flower:Flower", name, None, opts)
        password = generated_password(f"{name}-password", self)
        self.secret = StoredSecret(
            f"{name}-basic-auth", self, "Flower basic auth (user:password)",
            pulumi.Output.concat(USER, ":", password.result), kms_key_arn,
        )  # fmt: skip
        self.target_group = lb.route(
            "flower", contract.FLOWER_PATH, contract.FLOWER_PORT, f"{contract.FLOWER_PATH}/healthcheck",
            LISTENER_RULE_PRIORITY,
        )  # fmt: skip
        self.rule = lb.rules["flower"]
        self.register_outputs({"secret_arn": self.secret.arn})
