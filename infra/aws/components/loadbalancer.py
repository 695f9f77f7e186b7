"""Load balancer: the way to the Dagster UI.

Creates: an Application Load Balancer (internal when ``ui.access`` is ``private``; access logs to the stack's
log bucket with ``security.accessLogs``), a target group for the
webserver tasks with a health check on Dagster's ``/server_info``, an HTTP listener (a redirect to HTTPS
when ``ui.certificateArn`` is set) and, with a certificate, an HTTPS listener with a TLS 1.2+ policy that
first signs the user in through Cognito or OIDC when ``ui.access`` asks for it (Dagster's webserver has no
authentication of its own). With ``ui.viewers``: a target group for the read-only webserver tasks and a listener
of their own on ``ui.viewers.port``, with the same certificate and sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.specs import contract
from infra.aws import naming
from infra.aws.components.bucket import ALB_LOG_PREFIX, LogBucket
from infra.stackfile.config import Ui, UiAccess

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass
class LoadBalancerArgs:
    ui: Ui
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    deletion_protection: bool
    oidc_client_secret: pulumi.Input[str] | None = None
    access_logs: LogBucket | None = None  # where the load balancer's access logs go (security.accessLogs)


def authenticate_action(ui: Ui, oidc_client_secret: pulumi.Input[str] | None) -> dict | None:
    """The listener action that signs users in before anything reaches the webserver (ALB listener actions
    ``authenticate-cognito`` / ``authenticate-oidc``; docs/facts.md)."""
    if ui.access == UiAccess.COGNITO:
        c = ui.cognito
        return {"type": "authenticate-cognito", "order": 1, "authenticate_cognito": {
            "user_pool_arn": c.user_pool_arn, "user_pool_client_id": c.user_pool_client_id,
            "user_pool_domain": c.user_pool_domain, "on_unauthenticated_request": "authenticate"}}  # fmt: skip
    if ui.access == UiAccess.OIDC:
        o = ui.oidc
        return {"type": "authenticate-oidc", "order": 1, "authenticate_oidc": {
            "issuer": o.issuer, "authorization_endpoint": o.authorization_endpoint,
            "token_endpoint": o.token_endpoint, "user_info_endpoint": o.user_info_endpoint,
            "client_id": o.client_id, "client_secret": pulumi.Output.secret(oidc_client_secret),
            "on_unauthenticated_request": "authenticate"}}  # fmt: skip
    return None


class LoadBalancer(pulumi.ComponentResource):
    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:loadbalancer:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ui = args.ui
        logs = args.access_logs
        access_logs = {"access_logs": {"bucket": logs.name, "prefix": ALB_LOG_PREFIX, "enabled": True}} if logs else {}
        self.lb = aws.lb.LoadBalancer(
            naming.fit(aws.lb.LoadBalancer, f"{name}-alb"),
            load_balancer_type="application",
            internal=ui.access == UiAccess.PRIVATE,
            subnets=args.subnet_ids,
            security_groups=[args.security_group_id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.deletion_protection,
            **access_logs,
            # ELB checks that it may write to the bucket when access logs are turned on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs.policy] if logs else None),
        )
        self.target_group = aws.lb.TargetGroup(
            naming.fit(aws.lb.TargetGroup, f"{name}-webserver"),
            port=contract.WEBSERVER_PORT,
            protocol="HTTP",
            target_type="ip",  # Fargate tasks register by IP
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check={"path": contract.WEBSERVER_HEALTH_PATH, "matcher": "200", "interval": 30, "healthy_threshold": 2},
            opts=child,
        )
        forward = [{"type": "forward", "target_group_arn": self.target_group.arn}]
        # A target group serves one load balancer at a time (ELBv2 quotas: load balancers per target group, 1).
        # When the load balancer is replaced (ui.access between private and internet-facing changes its scheme),
        # the old listener must go before the new one forwards to the same group.
        listener = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        if ui.certificate_arn:
            authenticate = authenticate_action(ui, args.oidc_client_secret)
            https_actions = [authenticate, {**forward[0], "order": 2}] if authenticate else forward
            https = aws.lb.Listener(
                f"{name}-https", load_balancer_arn=self.lb.arn, port=443, protocol="HTTPS", ssl_policy=TLS_POLICY,
                certificate_arn=ui.certificate_arn, default_actions=https_actions, opts=listener,
            )  # fmt: skip
            http_actions = [{"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"}}]
            scheme = "https"
        else:
            http_actions, scheme, authenticate = forward, "http", None
        http = aws.lb.Listener(
            f"{name}-http", load_balancer_arn=self.lb.arn, port=80, protocol="HTTP", default_actions=http_actions,
            opts=listener,
        )  # fmt: skip
        # The listener that serves (HTTPS with a certificate; HTTP redirects) and its sign-in action, so other
        # routes get the same access control as the UI.
        self._serving = https if ui.certificate_arn else http
        # A target group must be behind a listener before an ECS service can register tasks in it.
        self.listeners = [http, https] if ui.certificate_arn else [http]
        self._authenticate = authenticate
        self._name, self._vpc_id = name, args.vpc_id
        self.rules: dict[str, aws.lb.ListenerRule] = {}
        self.url = pulumi.Output.concat(scheme, "://", self.lb.dns_name)
        self.viewers_target_group = self.viewers_listener = self.viewers_url = None
        if ui.viewers:
            self._viewers(name, ui, authenticate, scheme)
        self.register_outputs({"url": self.url, "viewers_url": self.viewers_url})

    def _viewers(self, name: str, ui: Ui, authenticate: dict | None, scheme: str) -> None:
        # ui.viewers: the read-only webserver on a port of its own, with the UI's TLS and sign-in; who reaches the
        # port is the network's choice (components/network.py).
        self.viewers_target_group = aws.lb.TargetGroup(
            naming.fit(aws.lb.TargetGroup, f"{name}-viewers"), port=contract.WEBSERVER_PORT, protocol="HTTP",
            target_type="ip", vpc_id=self._vpc_id, deregistration_delay=30,
            health_check={"path": contract.WEBSERVER_HEALTH_PATH, "matcher": "200", "interval": 30, "healthy_threshold": 2},
            opts=pulumi.ResourceOptions(parent=self),
        )  # fmt: skip
        forward = {"type": "forward", "target_group_arn": self.viewers_target_group.arn}
        tls = {"ssl_policy": TLS_POLICY, "certificate_arn": ui.certificate_arn} if ui.certificate_arn else {}
        self.viewers_listener = aws.lb.Listener(
            f"{name}-viewers", load_balancer_arn=self.lb.arn, port=ui.viewers.port, protocol=scheme.upper(), **tls,
            default_actions=[authenticate, {**forward, "order": 2}] if authenticate else [forward],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),  # as the UI's listeners
        )  # fmt: skip
        self.viewers_url = pulumi.Output.concat(scheme, "://", self.lb.dns_name, f":{ui.viewers.port}")

    def route(self, suffix: str, path: str, port: int, health_path: str, priority: int) -> aws.lb.TargetGroup:
        """Serve ``path`` from tasks on ``port`` through the UI's listener, behind the same sign-in."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.lb.TargetGroup(
            naming.fit(aws.lb.TargetGroup, f"{self._name}-{suffix}"), port=port, protocol="HTTP", target_type="ip", vpc_id=self._vpc_id,
            deregistration_delay=30, health_check={"path": health_path, "matcher": "200"}, opts=child,
        )  # fmt: skip
        forward = {"type": "forward", "target_group_arn": group.arn}
        actions = [self._authenticate, {**forward, "order": 2}] if self._authenticate else [forward]
        self.rules[suffix] = aws.lb.ListenerRule(
            f"{self._name}-{suffix}", listener_arn=self._serving.arn, priority=priority, actions=actions,
            conditions=[{"path_pattern": {"values": [path, f"{path}/*"]}}],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),  # as the listeners
        )  # fmt: skip
        return group
