"""Database: RDS PostgreSQL for Dagster's run, event-log and schedule storage.

Creates: a subnet group in the private subnets, a parameter group that forces TLS and logs schema changes and
slow statements, an encrypted, private instance with backups, Enhanced Monitoring (with its role) and
Performance Insights (encrypted with the stack's key), its exported logs' groups with the stack's key and
retention (components/service_logs.py), a generated master password, and a Secrets Manager
secret holding JSON ``{"username", "password", "celery_backend_url"}`` -- containers read each key only
through ECS secrets.
(RDS can keep the password itself, ``manage_master_user_password``, but then no secret could hold the
Celery result backend URL that embeds it.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.specs import contract
from infra.aws import iam, naming
from infra.aws.components.credentials import StoredSecret, generated_password
from infra.aws.components.service_logs import ServiceLogGroup, rds_log_group
from infra.stackfile.config import Database as DatabaseConfig

DB_NAME = "dagster"
MASTER_USER = "dagster"
# RDS refuses '/', '@', '"' and spaces in a master password; these also need no quoting in a URL.
PASSWORD_SPECIALS = "-_.~!#$%^*"
# Exported to CloudWatch Logs with the postgresql log: schema changes, and statements slower than a second
# (RDS User Guide, "Turning on query logging for your RDS for PostgreSQL DB instance"; both dynamic).
PARAMETERS = (
    {"name": "rds.force_ssl", "value": "1"},  # TLS only
    {"name": "log_statement", "value": "ddl"},
    {"name": "log_min_duration_statement", "value": "1000"},  # milliseconds
)
MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
PERFORMANCE_INSIGHTS_DAYS = 7  # the free retention
LOG_EXPORTS = ("postgresql", "upgrade")  # to CloudWatch Logs, in groups RDS names after the instance


def credentials_json(address: str, port: int, password: str) -> str:
    """The database secret: what containers read through ECS secrets (one JSON key each)."""
    backend = contract.backend_url(MASTER_USER, password, address, port, DB_NAME, sslmode="require")  # TLS forced
    return json.dumps({"username": MASTER_USER, "password": password, "celery_backend_url": backend})


@dataclass
class DatabaseArgs:
    config: DatabaseConfig
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    deletion_protection: bool
    kms_key_arn: pulumi.Input[str]  # Performance Insights, the credentials secret and the exported logs
    log_retention_days: int = 14  # the exported logs' (logs.retentionDays)


class Database(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:database:Database", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(naming.fit(aws.rds.SubnetGroup, f"{name}-subnets"), subnet_ids=args.subnet_ids, opts=child)
        major = cfg.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            naming.fit(aws.rds.ParameterGroup, f"{name}-params"), family=f"postgres{major}", description="dagster-celery-aws: TLS only",
            parameters=list(PARAMETERS), opts=child,
        )  # fmt: skip
        protect = args.deletion_protection
        password = generated_password(f"{name}-password", self, PASSWORD_SPECIALS)
        monitoring, after = {}, []
        if cfg.monitoring_interval_seconds:
            # Enhanced Monitoring publishes OS metrics through a role RDS assumes (RDS User Guide, "Setting up
            # and enabling Enhanced Monitoring").
            role = aws.iam.Role(
                naming.fit(aws.iam.Role, f"{name}-monitoring"),
                assume_role_policy=json.dumps(iam.trust("monitoring.rds.amazonaws.com")), opts=child,
            )  # fmt: skip
            after.append(aws.iam.RolePolicyAttachment(f"{name}-monitoring", role=role.name, policy_arn=MONITORING_POLICY, opts=child))
            monitoring = {"monitoring_interval": cfg.monitoring_interval_seconds, "monitoring_role_arn": role.arn}
        if cfg.performance_insights:
            monitoring |= {"performance_insights_enabled": True, "performance_insights_kms_key_id": args.kms_key_arn,
                           "performance_insights_retention_period": PERFORMANCE_INSIGHTS_DAYS}  # fmt: skip
        # The inputs we set whose change replaces the instance (ForceNew in the schema of aws_db_instance,
        # hashicorp/terraform-provider-aws internal/service/rds/instance.go, which pulumi-aws's rds.Instance
        # bridges); storage_encrypted because pulumi-aws defaults it to False. The final snapshot's suffix is kept
        # by the same values and the logical name: what replaces the instance makes a new suffix, so the old
        # instance's final snapshot and its successor's differ (RDS refuses a second one of a name:
        # DBSnapshotAlreadyExists).
        identity = {"engine": "postgres", "db_name": DB_NAME, "username": MASTER_USER, "storage_encrypted": True}
        instance_name = naming.fit(aws.rds.Instance, f"{name}-postgres")
        snapshot_suffix = random.RandomString(
            f"{name}-snapshot-suffix", length=8, special=False, upper=False,
            keepers={"instance": instance_name, **{k: str(v) for k, v in identity.items()}}, opts=child,
        )  # fmt: skip
        self.instance = aws.rds.Instance(
            instance_name,
            **identity,
            engine_version=cfg.engine_version,  # a major version follows minor upgrades
            auto_minor_version_upgrade=True,
            # A new major version in config is an upgrade RDS performs only with this flag; the parameter
            # group of the new family (a new resource, since the family cannot change) is swapped in the
            # same modification, and the old one deleted once the instance has left it.
            allow_major_version_upgrade=True,
            apply_immediately=cfg.apply_immediately,
            instance_class=cfg.instance_class,
            allocated_storage=cfg.allocated_storage_gb,
            max_allocated_storage=cfg.max_allocated_storage_gb,
            storage_type="gp3",
            password=password.result,
            db_subnet_group_name=subnets.name,
            parameter_group_name=parameters.name,
            vpc_security_group_ids=[args.security_group_id],
            publicly_accessible=False,
            # Dagster and Celery sign in with the generated password; IAM authentication lets an operator given
            # rds-db:connect and a database user granted rds_iam sign in with a 15-minute token instead of the
            # master password (RDS User Guide, "IAM database authentication for MariaDB, MySQL, and PostgreSQL").
            iam_database_authentication_enabled=True,
            multi_az=cfg.multi_az,
            backup_retention_period=cfg.backup_retention_days,  # pulumi-aws defaults to 0: no backups
            copy_tags_to_snapshot=True,
            deletion_protection=protect,
            # Deleting the database always leaves a final snapshot, protected stack or not: tearing down prod
            # starts by turning protection off, and that must not also throw the data away. Its name is unique
            # to this instance (identity above), so neither a re-created stack nor a replaced instance collides
            # with an old snapshot.
            skip_final_snapshot=False,
            final_snapshot_identifier=pulumi.Output.concat(
                naming.fit(aws.rds.Instance, f"{name}-final", "finalSnapshotIdentifier"), "-", snapshot_suffix.result
            ),
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            **monitoring,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, depends_on=after),
        )
        for log_type in LOG_EXPORTS:  # the groups RDS makes for the exports get the stack's key and retention
            ServiceLogGroup(
                f"{name}-logs-{log_type}", self.instance.identifier.apply(lambda i, t=log_type: rds_log_group(i, t)),
                args.kms_key_arn, args.log_retention_days, opts=child,
            )  # fmt: skip
        self.address = self.instance.address
        self.secret = StoredSecret(
            f"{name}-credentials", self, "Dagster database: username, password, Celery result backend URL",
            pulumi.Output.all(self.instance.address, self.instance.port, password.result).apply(
                lambda a: credentials_json(*a)
            ),
            args.kms_key_arn,
        )  # fmt: skip
        self.register_outputs({"endpoint": self.instance.endpoint, "secret_arn": self.secret.arn})
