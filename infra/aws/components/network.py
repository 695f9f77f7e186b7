"""Network: where everything runs, and who may talk to whom.

Creates (new VPC): a VPC, an internet gateway, two public and two private subnets in two AZs, route tables,
0-2 NAT gateways with Elastic IPs. With ``network.vpcId`` it uses the given VPC and subnets instead.
The new VPC's default security group is emptied; optional VPC flow logs go to CloudWatch Logs (the stack's
key and log retention).
Always creates four security groups -- load balancer, tasks, broker, database -- with rules that let only
the load balancer reach the webserver and only the tasks reach the broker (5671) and the database (5432).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.specs import contract
from infra.aws import iam, naming
from infra.stackfile.config import Network as NetworkConfig
from infra.stackfile.config import Ui, UiAccess

AMQPS_PORT = 5671  # Amazon MQ for RabbitMQ accepts AMQP over TLS only (docs/facts.md)
POSTGRES_PORT = 5432
AZ_COUNT = 2


@dataclass
class NetworkArgs:
    config: NetworkConfig
    ui: Ui
    # Task ports the load balancer forwards to: the webserver's, and Flower's when it runs.
    served_ports: tuple[int, ...] = (contract.WEBSERVER_PORT,)
    # The flow logs' group: encrypted with the stack's key, kept as long as the stack's other logs.
    kms_key_arn: pulumi.Input[str] | None = None
    log_retention_days: int = 90


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    # Subnets and public IP for ECS tasks: private behind NAT, or public when there is no NAT gateway.
    task_subnet_ids: list[pulumi.Output[str]]
    assign_public_ip: bool

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:network:Network", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        if cfg.vpc_id:
            self.vpc_id = pulumi.Output.from_input(cfg.vpc_id)
            self.public_subnet_ids = [pulumi.Output.from_input(s) for s in cfg.public_subnet_ids]
            self.private_subnet_ids = [pulumi.Output.from_input(s) for s in cfg.private_subnet_ids]
            vpc_cidr = aws.ec2.get_vpc_output(id=cfg.vpc_id).cidr_block
            # An existing VPC is expected to route its private subnets out (NAT or endpoints).
            private_routed = True
        else:
            vpc_cidr = pulumi.Output.from_input(cfg.vpc_cidr)
            self._new_vpc(name, args, child)
            private_routed = cfg.nat_gateways > 0
        self.task_subnet_ids = self.private_subnet_ids if private_routed else self.public_subnet_ids
        self.assign_public_ip = not private_routed
        self._security_groups(name, args.ui, vpc_cidr, args.served_ports, child)
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids})

    def _new_vpc(self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        cfg = args.config
        vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block=cfg.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
            tags={"Name": f"{name}-vpc"}, opts=child,
        )  # fmt: skip
        self.vpc_id = vpc.id
        # The VPC's default security group admits nothing (FSBP EC2.2); nothing of ours uses it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child)
        if cfg.flow_logs:
            self._flow_logs(name, vpc.id, args, child)
        azs = aws.get_availability_zones_output(state="available").names
        # Four /20s (or the block's next-smaller prefix): public in the first two, private in the next two.
        network = ipaddress.ip_network(cfg.vpc_cidr)
        blocks = list(network.subnets(new_prefix=min(network.prefixlen + 4, 28)))[: 2 * AZ_COUNT]
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            opts=child,
        )  # fmt: skip
        self.public_subnet_ids, self.private_subnet_ids, nats = [], [], []
        for i in range(AZ_COUNT):
            public = aws.ec2.Subnet(
                f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=str(blocks[i]), availability_zone=azs[i],
                map_public_ip_on_launch=False, tags={"Name": f"{name}-public-{i}"}, opts=child,
            )  # fmt: skip
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=public.id, route_table_id=public_rt.id, opts=child)
            self.public_subnet_ids.append(public.id)
            if i < cfg.nat_gateways:
                # Both need the internet gateway attached first, or EC2 answers Gateway.NotAttached (the
                # Terraform AWS provider's aws_eip and aws_nat_gateway docs ask for this dependency).
                after_igw = pulumi.ResourceOptions(parent=self, depends_on=[igw])
                eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", opts=after_igw)
                nats.append(aws.ec2.NatGateway(f"{name}-nat-{i}", subnet_id=public.id, allocation_id=eip.id, opts=after_igw))
        for i in range(AZ_COUNT):
            private = aws.ec2.Subnet(
                f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=str(blocks[AZ_COUNT + i]), availability_zone=azs[i],
                tags={"Name": f"{name}-private-{i}"}, opts=child,
            )  # fmt: skip
            routes = [{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[i % len(nats)].id}] if nats else []
            rt = aws.ec2.RouteTable(f"{name}-private-rt-{i}", vpc_id=vpc.id, routes=routes, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=private.id, route_table_id=rt.id, opts=child)
            self.private_subnet_ids.append(private.id)

    def _flow_logs(self, name: str, vpc_id: pulumi.Output[str], args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        group = aws.cloudwatch.LogGroup(
            naming.fit(aws.cloudwatch.LogGroup, f"{name}-flow-logs"), retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn, opts=child,
        )  # fmt: skip
        role = aws.iam.Role(
            naming.fit(aws.iam.Role, f"{name}-flow-logs"),
            assume_role_policy=json.dumps(iam.trust("vpc-flow-logs.amazonaws.com")),
            opts=child,
        )
        aws.iam.RolePolicy(
            naming.fit(aws.iam.RolePolicy, f"{name}-flow-logs"), role=role.id,
            policy=group.arn.apply(lambda arn: json.dumps(iam.flow_logs_policy(arn))), opts=child,
        )  # fmt: skip
        aws.ec2.FlowLog(
            f"{name}-flow-logs", vpc_id=vpc_id, traffic_type="ALL", log_destination=group.arn,
            log_destination_type="cloud-watch-logs", iam_role_arn=role.arn, opts=child,
        )  # fmt: skip

    def _security_groups(
        self, name: str, ui: Ui, vpc_cidr: pulumi.Input[str], served_ports: tuple[int, ...], child: pulumi.ResourceOptions
    ) -> None:
        def group(suffix: str, description: str) -> aws.ec2.SecurityGroup:
            return aws.ec2.SecurityGroup(
                f"{name}-{suffix}", vpc_id=self.vpc_id, description=description, tags={"Name": f"{name}-{suffix}"},
                opts=child,
            )  # fmt: skip

        self.tasks_sg = group("tasks", "Dagster ECS tasks: webserver, daemon, runs, workers")
        self.broker_sg = group("broker", "Amazon MQ broker: AMQPS from the tasks only")
        self.database_sg = group("database", "RDS PostgreSQL: from the tasks only")

        def ingress(rule: str, sg, port: int, description: str, **source) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule}", security_group_id=sg.id, ip_protocol="tcp", from_port=port, to_port=port,
                description=description, opts=child, **source,
            )  # fmt: skip

        ingress("broker-from-tasks", self.broker_sg, AMQPS_PORT, "AMQPS from Dagster tasks",
                referenced_security_group_id=self.tasks_sg.id)  # fmt: skip
        # The queue-metrics publisher (daemon task) reads the RabbitMQ management API over HTTPS.
        ingress("broker-api-from-tasks", self.broker_sg, 443, "RabbitMQ management API from Dagster tasks",
                referenced_security_group_id=self.tasks_sg.id)  # fmt: skip
        ingress("database-from-tasks", self.database_sg, POSTGRES_PORT, "PostgreSQL from Dagster tasks",
                referenced_security_group_id=self.tasks_sg.id)  # fmt: skip
        # ui.access 'ssm' has no load balancer: nothing reaches the tasks (the SSM session is outbound from them).
        self.lb_sg = group("lb", "Dagster UI load balancer") if ui.access.load_balanced else None
        if self.lb_sg is not None:
            self._load_balancer_rules(name, ui, vpc_cidr, served_ports, ingress, child)
        # Tasks pull the image, read secrets and call AWS APIs over HTTPS, and reach the broker and database.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-https", security_group_id=self.tasks_sg.id, ip_protocol="tcp", from_port=443, to_port=443,
            cidr_ipv4="0.0.0.0/0", description="HTTPS to AWS APIs, ECR and S3", opts=child,
        )  # fmt: skip
        for rule, port, target in (("tasks-to-broker", AMQPS_PORT, self.broker_sg),
                                   ("tasks-to-database", POSTGRES_PORT, self.database_sg)):  # fmt: skip
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{rule}", security_group_id=self.tasks_sg.id, ip_protocol="tcp", from_port=port, to_port=port,
                referenced_security_group_id=target.id, description=rule.replace("-", " "), opts=child,
            )  # fmt: skip

    def _load_balancer_rules(self, name, ui: Ui, vpc_cidr, served_ports, ingress, child) -> None:
        for port in served_ports:
            ingress(f"tasks-{port}-from-lb", self.tasks_sg, port, f"port {port} from the load balancer",
                    referenced_security_group_id=self.lb_sg.id)  # fmt: skip
        listener_ports = (80, 443) if ui.certificate_arn else (80,)
        if ui.access == UiAccess.PRIVATE:
            sources = {"vpc": vpc_cidr}  # internal load balancer: reachable from inside the VPC only
        elif ui.access == UiAccess.CIDR:
            sources = {f"cidr-{i}": c for i, c in enumerate(ui.allowed_cidrs)}
        else:
            # Chosen explicitly in config: `public` (no login) or `cognito`/`oidc` (the listener signs users in).
            sources = {"world": "0.0.0.0/0"}
        for port in listener_ports:
            for label, cidr in sources.items():
                ingress(f"lb-{port}-{label}", self.lb_sg, port, f"Dagster UI listener {port} from {label}",
                        cidr_ipv4=cidr)  # fmt: skip
        if ui.viewers:  # the read-only UI's listener: its own sources
            for i, cidr in enumerate(ui.viewers.allowed_cidrs):
                ingress(f"lb-viewers-cidr-{i}", self.lb_sg, ui.viewers.port,
                        f"Dagster read-only UI listener {ui.viewers.port} from cidr-{i}", cidr_ipv4=cidr)  # fmt: skip
        for port in served_ports:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-lb-to-tasks-{port}", security_group_id=self.lb_sg.id, ip_protocol="tcp", from_port=port,
                to_port=port, referenced_security_group_id=self.tasks_sg.id, description=f"Load balancer to tasks on {port}",
                opts=child,
            )  # fmt: skip
        if ui.access.authenticated:
            # The load balancer itself calls the identity provider's token and user-info endpoints on 443
            # (ALB guide, "Authenticate users using an Application Load Balancer": the security group must
            # allow outbound HTTPS to the IdP); without it every sign-in ends in a 500.
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-lb-to-idp-https", security_group_id=self.lb_sg.id, ip_protocol="tcp", from_port=443,
                to_port=443, cidr_ipv4="0.0.0.0/0", description="Load balancer to the identity provider (sign-in)",
                opts=child,
            )  # fmt: skip
