"""Stack config: the user interface of the product, validated once, before any resource is declared.

The same models serve ``pulumi up`` (values from ``pulumi.Config``) and the local runner (values from a
``Pulumi.<stack>.yaml`` file), so both refuse the same mistakes with the same words. Every error names the
key path (``queues[1].maxWorkers``), the value received and what would be valid.
"""

from __future__ import annotations

import ipaddress
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from dagster_celery_aws import fargate

from infra.stackfile import limits

NAMESPACE = "dagster-celery-aws"
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue: every untagged step goes there (docs/facts.md)


class ConfigError(ValueError):
    """Invalid stack config; ``str()`` is a message meant for the user, one line per problem."""

    def __init__(self, problems: list[str], source: str = "stack config"):
        self.problems = problems
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


def worker_name(queue: str) -> str:
    """The ECS service (and container) of a queue's workers: letters, digits, '-' and '_' only; unique per queue."""
    return f"worker-{queue.replace('.', '-')}"


def _whole_number(value: Any) -> Any:
    # YAML gives ints; `pulumi config set --path` may give "8". A bool or 2.5 is a mistake, not a count.
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be a whole number")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_whole_number)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, strict=False,
        use_attribute_docstrings=True,  # a field's docstring is its description: docs/config.md is made of them
    )


def _check_size(model: BaseModel) -> BaseModel:
    problem = fargate.size_error(model.cpu, model.memory)
    if problem:
        raise ValueError(problem)
    return model


class _Sized(_Model):
    cpu: Int = 512
    """a valid Fargate pair (e.g. 256/512–2048, 1024/2048–8192, 4096/8192–30720)"""
    memory: Int = 1024
    """a valid Fargate pair (e.g. 256/512–2048, 1024/2048–8192, 4096/8192–30720)"""

    _size = model_validator(mode="after")(_check_size)


class Scaling(_Model):
    """How a queue's worker service follows its backlog (docs/autoscaling.md)."""

    # Messages (waiting + running) per worker slot to hold: 1.0 = every slot busy and nothing waiting.
    target_messages_per_slot: float = Field(1.0, gt=0, le=100)
    """> 0, ≤ 100 ([autoscaling](autoscaling.md))"""
    # Fargate tasks take 1-2 minutes to start: scaling out again sooner would count tasks still booting.
    scale_out_cooldown_seconds: Int = Field(120, ge=0, le=3600)
    """0–3600"""
    # The queue must be empty (nothing waiting, nothing running) this long before workers drop to minWorkers.
    idle_minutes: Int = Field(15, ge=1, le=24 * 60)
    """1–1440"""


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names the stack sets itself (infra/specs/contract.py and AWS's own): a user variable must not shadow them.
RESERVED_ENV_PREFIXES = ("DAGSTER_", "DCA_", "AWS_", "ECS_")
# A Secrets Manager ARN is the full one: NAME, '-' and the 6 characters AWS appends. Secrets Manager itself takes
# an ARN whose name ends in '-' + 6 characters for a full one, so a partial ARN of a secret named e.g.
# "team/registry-secret" names another secret ("team/registry") to ECS and IAM alike: partial ARNs cannot be told
# apart and are not accepted (Secrets Manager API Reference, GetSecretValue, SecretId; User Guide, "Secrets
# Manager ARNs"). The grant is then exactly the ARN ECS asks for (iam.secret_resources).
SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?"
    r"|ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]+)"
)
KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+$"
MANAGED_POLICY_ARN = re.compile(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+")
# Too broad for a task role: they would void the stack's least privilege.
REFUSED_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


def _env_name(name: str) -> str:
    if not ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an environment variable name (letters, digits, '_'; not starting with a digit)")
    if name.startswith(RESERVED_ENV_PREFIXES):
        raise ValueError(f"{name!r} starts with one of {', '.join(RESERVED_ENV_PREFIXES)}, names the stack sets itself")
    return name


def _statement(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("an IAM policy statement is a mapping with Effect, Action and Resource")
    unknown = set(value) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if unknown or not {"Effect", "Action", "Resource"} <= set(value):
        raise ValueError(f"an IAM statement needs Effect, Action and Resource (and may have Sid, Condition); got {sorted(value)}")
    if value["Effect"] not in ("Allow", "Deny"):
        raise ValueError(f"Effect {value['Effect']!r} must be Allow or Deny")
    actions = [value["Action"]] if isinstance(value["Action"], str) else list(value["Action"])
    resources = [value["Resource"]] if isinstance(value["Resource"], str) else list(value["Resource"])
    if not actions or not resources or not all(isinstance(x, str) and x for x in actions + resources):
        raise ValueError("Action and Resource are a string or a non-empty list of strings")
    if any(a in ("*", "*:*") for a in actions):
        raise ValueError("Action '*' grants every AWS action: name the actions the code needs, e.g. s3:GetObject")
    if value["Effect"] == "Allow" and "*" in resources and any(a.endswith(":*") for a in actions):
        raise ValueError(f"{actions} on Resource '*' grants a whole service on every resource: name the resources")
    return value


Statement = Annotated[dict, BeforeValidator(_statement)]
EnvName = Annotated[str, BeforeValidator(lambda v: _env_name(v) if isinstance(v, str) else v)]


def _secret_arn(value: Any) -> Any:
    if isinstance(value, str) and not SECRET_ARN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a full Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-"
            f"XXXXXX, with the 6 characters AWS appends to the name, optionally :json-key:stage:version; `aws "
            f"secretsmanager describe-secret --secret-id NAME --query ARN` prints it) or an SSM parameter ARN "
            f"(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
        )
    return value


def _kms_key(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(KMS_KEY_ARN, value):
        raise ValueError(f"{value!r} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID; an alias does not "
                         "authorise decryption)")
    return value


def _managed_policy(value: Any) -> Any:
    if isinstance(value, str):
        if not MANAGED_POLICY_ARN.fullmatch(value):
            raise ValueError(f"{value!r} is not an IAM managed policy ARN (arn:aws:iam::ACCOUNT|aws:policy/NAME)")
        if value.rsplit("/", 1)[-1] in REFUSED_MANAGED_POLICIES:
            raise ValueError(f"{value!r} grants far more than code needs; attach a policy scoped to what it uses")
    return value


class Access(_Model):
    """What user code needs on AWS, for every task or for one queue's workers (README, "Bring your own code").

    ``environment``: plain variables (never secret); ``secrets``: variable -> Secrets Manager secret or SSM
    parameter ARN, given to containers as ECS secrets; ``iamStatements`` / ``managedPolicyArns``: added to
    the task role of the code's tasks."""

    environment: dict[EnvName, str] = {}
    """variables for every task that runs your code (webserver, daemon, runs, workers); names starting `DAGSTER_`,
    `DCA_`, `AWS_`, `ECS_` are the stack's. Under `queues[]`: for that queue's workers only"""
    secrets: dict[EnvName, Annotated[str, BeforeValidator(_secret_arn)]] = {}
    """variable → the full ARN of a Secrets Manager secret (`arn:aws:secretsmanager:…:secret:NAME-AbCdEf`, with the 6
    characters AWS appends; optionally `:json-key::`) or an SSM parameter ARN, as ECS secrets in every such task. A
    partial ARN is refused: Secrets Manager reads one whose name ends in `-` and 6 characters
    (`…:secret:team/registry-secret`) as the full ARN of another secret. Under `queues[]`: for that queue's workers
    only"""
    iam_statements: tuple[Statement, ...] = ()
    """IAM statements added to the task roles of every such task; no `*` action, no whole service on `*`. Under
    `queues[]`: for that queue's workers only, on a task role of their own"""
    managed_policy_arns: tuple[Annotated[str, BeforeValidator(_managed_policy)], ...] = ()
    """managed policies attached to those task roles (not `AdministratorAccess`, `PowerUserAccess`, `IAMFullAccess`).
    Under `queues[]`: for that queue's workers only"""
    # Customer-managed KMS keys (key ARNs) other than the stack's that encrypt Secrets Manager secrets in
    # ``secrets``: the execution role may decrypt with them, only through Secrets Manager (kms:ViaService).
    secret_kms_keys: tuple[Annotated[str, BeforeValidator(_kms_key)], ...] = ()
    """KMS key ARNs (not aliases) other than the stack's that encrypt secrets in `access.secrets`, in their Region: the
    execution role may decrypt with them, only through Secrets Manager (`kms:ViaService`); without them such a secret
    fails the task's start. Under `queues[]`: for that queue's workers only"""

    @model_validator(mode="after")
    def _no_overlap(self) -> Access:
        both = sorted(set(self.environment) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)} is both in environment and in secrets; keep one")
        return self

    @model_validator(mode="after")
    def _keys_of_secrets(self) -> Access:
        # Secrets Manager uses a key of the secret's own Region (Secrets Manager User Guide, "Secret encryption
        # and decryption"): a key in no Region of these secrets decrypts none of them.
        regions = {v.split(":")[3] for v in self.secrets.values() if ":secretsmanager:" in v}
        for i, key in enumerate(self.secret_kms_keys):
            if key.split(":")[3] not in regions:
                raise ValueError(
                    f"secretKmsKeys[{i}] {key!r} is in no Region of the Secrets Manager secrets in secrets "
                    f"({', '.join(sorted(regions)) or 'none'}): list keys that encrypt those secrets, or leave it out"
                )
        if len(set(self.secret_kms_keys)) != len(self.secret_kms_keys):
            raise ValueError(f"secretKmsKeys lists a key twice: {list(self.secret_kms_keys)}")
        return self

    @property
    def grants(self) -> bool:
        return bool(self.iam_statements or self.managed_policy_arns)


class CodeLocation(_Model):
    """A Dagster code location built into the image: ``path`` (a directory, relative to the project directory
    or absolute) is copied to /opt/dagster/code/<name> and is the working directory ``module`` loads from;
    ``requirements`` (relative to ``path``; default requirements.txt when it exists) is pip-installed."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    """the location name in Dagster; letters, digits, `-`, `_`; unique"""
    path: str = Field(min_length=1)
    """the location's directory, relative to the project directory (where `Pulumi.yaml` is) or absolute"""
    module: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
    """Unset: `name` with `-` as `_`. The Python module Dagster loads, importable from `path`"""
    requirements: str | None = None
    """Unset: `requirements.txt` if present. A requirements file in `path`, pip-installed from `path` (so
    `./wheels/x.whl` or `.` work)"""

    @property
    def module_name(self) -> str:
        return self.module or self.name.replace("-", "_")


class Capacity(_Model):
    """Where a service's Fargate tasks run (docs/deployment.md, "Fargate Spot"). Spot costs less and may be taken
    back with two minutes' notice (SIGTERM, then SIGKILL after the stop timeout); it never falls back to on-demand."""

    # The first tasks of the service, always on on-demand Fargate (only with spotPercent above 0).
    on_demand_base: Int = Field(0, ge=0, le=100_000)
    """the first tasks of the service, always on on-demand Fargate; only with `spotPercent` above 0"""
    # Of the tasks above onDemandBase, the percentage on Fargate Spot; 0: every task on on-demand Fargate.
    spot_percent: Int = Field(0, ge=0, le=100)
    """0–100: of the tasks above `onDemandBase`, the share on Fargate Spot ([Fargate Spot](deployment.md#fargate-spot))
    """

    @model_validator(mode="after")
    def _base(self) -> Capacity:
        if self.on_demand_base and not self.spot_percent:
            raise ValueError(
                f"onDemandBase {self.on_demand_base} is only used with spotPercent above 0 (every task is on "
                f"on-demand Fargate without Spot): set spotPercent, or leave onDemandBase out"
            )
        return self

    @property
    def spot(self) -> bool:
        return self.spot_percent > 0

    def on_demand_tasks(self, count: int) -> float:
        """How many of ``count`` running tasks are on on-demand Fargate (the rest on Spot), by the strategy's
        rule: the base first, then the rest split by weight (ECS API reference, CapacityProviderStrategyItem)."""
        base = min(count, self.on_demand_base)
        return base + (count - base) * (100 - self.spot_percent) / 100


class Queue(_Sized):
    name: str
    """unique; 1–64 letters, digits, `-`, `_`, `.` (`.` becomes `-` in ECS names, so `a.b` and `a-b` clash)"""
    min_workers: Int = Field(1, ge=0)
    """integer ≥ 0 (0: the queue scales from zero)"""
    max_workers: Int = Field(2, ge=1)
    """integer ≥ max(1, minWorkers)"""
    concurrency: Int = Field(1, ge=1)
    """Celery worker slots per task, ≥ 1"""
    scaling: Scaling = Scaling()
    # This queue's workers only; with IAM grants, the queue's workers get a task role of their own.
    access: Access = Access()
    capacity: Capacity = Capacity()

    @model_validator(mode="after")
    def _bounds(self) -> Queue:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.name):
            raise ValueError(f"name {self.name!r} is not a queue name: use 1-64 letters, digits, '-', '_', '.'")
        if self.max_workers < max(1, self.min_workers):
            raise ValueError(
                f"maxWorkers {self.max_workers} is below minWorkers {self.min_workers}: "
                f"maxWorkers must be >= max(1, minWorkers)"
            )
        return self


class Webserver(_Sized):
    desired_count: Int = Field(1, ge=1, le=10)
    """1–10 tasks (with `maxCount`, the fewest)"""
    max_count: Int | None = Field(None, ge=1, le=10)
    """unset: `desiredCount` tasks, always; `desiredCount`–10: the UI scales out on CPU up to this many tasks and back
    ([UI autoscaling](autoscaling.md#the-ui))"""
    # The UI's work is GraphQL in the webserver process: CPU is what a busy UI runs out of first.
    target_cpu_percent: Int = Field(60, ge=10, le=90)
    """10–90: the average CPU of the UI's tasks that autoscaling holds (with `maxCount`)"""
    capacity: Capacity = Capacity()

    @model_validator(mode="after")
    def _scaling(self) -> Webserver:
        if self.max_count is not None and self.max_count < self.desired_count:
            raise ValueError(
                f"maxCount {self.max_count} is below desiredCount {self.desired_count}: maxCount is the most tasks "
                f"autoscaling may run, desiredCount the fewest"
            )
        return self

    @property
    def most(self) -> int:
        """The most webserver tasks that may run."""
        return self.max_count or self.desired_count


class Daemon(_Sized):
    memory: Int = 2048
    """a valid Fargate pair with `cpu` (default 512/2048: the daemon's task holds the daemon, a code server per
    location, the alerts location's, the run purge and, with `runs.mode: daemon`, every run worker)"""
    capacity: Capacity = Capacity()


class Retries(_Model):
    """Dagster's run retries (instance ``run_retries``): a failed run is re-executed from its failure by the daemon."""

    # One retry by default: a run task that never starts (no capacity, an image pull that fails) is failed by run
    # monitoring after run_monitoring.start_timeout_seconds, and relaunched once.
    max_retries: Int = Field(1, ge=0, le=10)
    """0–10: how many times a failed run is retried (0: never); a run's `dagster/max_retries` tag overrides it
    ([Run retries](operations.md#run-retries))"""
    # Off by default: a step that fails would run again with all the steps after it, which is not safe for every
    # step; ops and assets have retry policies of their own.
    retry_on_step_failure: bool = False
    """false: only runs whose run worker failed (a task that never started, a crash) are retried; true: runs
    whose steps failed too (a run's `dagster/retry_on_asset_or_op_failure` tag overrides it)"""


class TagLimit(_Model):
    """One tag concurrency limit of the run queue (Dagster's ``tag_concurrency_limits``)."""

    key: str = Field(min_length=1, max_length=255)
    """the run tag's key"""
    value: str | None = Field(None, min_length=1, max_length=255)
    """only runs whose tag has this value count (unset: every value, together)"""
    per_value: bool = False
    """true: the limit applies to each value of the tag on its own (not with `value`)"""
    limit: Int = Field(ge=0, le=1000)
    """0–1000 runs with the tag in progress at once (0: none starts)"""

    @model_validator(mode="after")
    def _one_scope(self) -> TagLimit:
        if self.per_value and self.value is not None:
            raise ValueError(
                f"tag limit {self.key!r} has value {self.value!r} and perValue true: give a value to limit runs with that "
                f"value, or perValue true to limit each value on its own, not both"
            )
        return self


class Pools(_Model):
    """Dagster's concurrency pools: how many ops (or runs) of a pool run at once across all runs."""

    default_limit: Int | None = Field(None, ge=0, le=1000)
    """0–1000: the limit a pool gets when first used without one (unset: such pools are unlimited)
    ([Concurrency](operations.md#concurrency))"""
    limits: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_./:-]{1,255}$")], Annotated[int, Field(ge=0, le=1000)]] = {}
    """pool name → 0–1000, set on the instance at each deployment before the daemon starts; pools not named here keep
    the limit set in the UI or with `dagster instance concurrency set`"""
    granularity: str = Field("op", pattern=r"^(op|run)$")
    """`op`: each op of the pool takes a slot while it runs; `run`: a run takes the slots its pool ops need before
    it is dequeued"""


class RunsMode(StrEnum):
    # One Fargate task per run, started by EcsRunLauncher: isolated, about a minute to start (docs/deployment.md,
    # "Runs").
    TASK = "task"
    # The run worker starts in the daemon's task, from its code server (Dagster's DefaultRunLauncher): no task
    # to start, but the runs share the daemon task's memory, CPU and task role.
    DAEMON = "daemon"


class Runs(_Sized):
    mode: RunsMode = RunsMode.TASK
    """`task`: each run is its own Fargate task (about a minute to start); `daemon`: each run worker starts in the
    daemon's task, in seconds, sharing its size and role
    ([Runs](deployment.md#runs-a-task-each-or-in-the-daemons-task))"""
    max_concurrent_runs: Int = Field(5, ge=1, le=1000)
    """1–1000; runs in progress at once (the queued run coordinator holds the rest); with `runs.mode: daemon` also how
    many run workers the daemon's task must hold"""
    retries: Retries = Retries()
    tag_limits: tuple[TagLimit, ...] = ()
    """run-queue limits by run tag, each `{key, value?, perValue?, limit}`: a run whose tags would exceed one stays
    queued ([Concurrency](operations.md#concurrency))"""
    pools: Pools = Pools()

    @model_validator(mode="after")
    def _mode(self) -> Runs:
        sized = sorted({"cpu", "memory"} & self.model_fields_set)
        if self.mode == RunsMode.DAEMON and sized:
            raise ValueError(
                f"runs.{sized[0]} sizes the run task of mode 'task'; with mode 'daemon' every run worker runs in the "
                f"daemon's task and shares its size: leave runs.{sized[0]} out and size daemon.cpu and daemon.memory "
                f"for runs.maxConcurrentRuns run workers"
            )
        return self


class Retention(_Model):
    """How long Dagster's history is kept ([Retention](operations.md#retention)); older is purged."""

    run_days: Int = Field(90, ge=1, le=3650)
    """1–3650: finished runs older than this (by their last update) are deleted with their event logs, in batches,
    every hour; their compute logs expire in the bucket after as many days"""
    tick_days: Int = Field(30, ge=1, le=3650)
    """1–3650: schedule and sensor ticks older than this are purged by the daemon (skipped sensor ticks after at
    most 7 days, Dagster's default)"""


class DeploymentMode(StrEnum):
    SINGLE_INSTANCE = "SINGLE_INSTANCE"
    CLUSTER_MULTI_AZ = "CLUSTER_MULTI_AZ"


class BrokerEngine(StrEnum):
    V3_13 = "3.13"
    V4_2 = "4.2"


# Amazon MQ for RabbitMQ host types (AWS Amazon MQ guide, "rabbitmq-sizing-guidelines"; docs/facts.md).
BROKER_INSTANCE_TYPES = (
    "mq.t3.micro",
    *(f"mq.m5.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge")),
    *(f"mq.m7g.{s}" for s in ("medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")),
)


class Broker(_Model):
    engine_version: BrokerEngine = BrokerEngine.V3_13
    """`3.13` or `4.2` (4.2 needs an `mq.m7g.*` host)"""
    instance_type: str = "mq.t3.micro"
    """an Amazon MQ for RabbitMQ host type (`mq.t3.micro`, `mq.m5.*`, `mq.m7g.*`)"""
    deployment_mode: DeploymentMode = DeploymentMode.SINGLE_INSTANCE
    """or `CLUSTER_MULTI_AZ` (three nodes; not on `mq.t3.micro`)"""
    # Must exceed the longest step: a late-acked step past it is redelivered (docs/facts.md, consumer_timeout).
    consumer_timeout_minutes: Int = Field(120, ge=1, le=7 * 24 * 60)
    """1–10080; must exceed your longest step"""
    # How many times a step's message may start a step: a step whose worker dies on every delivery (an OOM
    # kill, a crash in native code) is failed at the next one instead of being redelivered without end
    # (dagster_celery_aws.fast_task; docs/reliability.md).
    max_deliveries: Int = Field(3, ge=1, le=100)
    """1–100: how many deliveries of a step's message may start the step; a step whose worker dies each time (out of
    memory, a crash in native code) fails at the next delivery, naming the step and queue
    ([reliability](reliability.md))"""

    @model_validator(mode="after")
    def _engine_fits_host(self) -> Broker:
        if self.instance_type not in BROKER_INSTANCE_TYPES:
            raise ValueError(
                f"instanceType {self.instance_type!r} is not an Amazon MQ RabbitMQ host type; "
                f"valid: {', '.join(BROKER_INSTANCE_TYPES)}"
            )
        if self.engine_version == BrokerEngine.V4_2 and not self.instance_type.startswith("mq.m7g."):
            raise ValueError(
                f"engineVersion 4.2 runs only on mq.m7g.* hosts, not {self.instance_type!r}; "
                f"use instanceType mq.m7g.large (or larger) or engineVersion 3.13"
            )
        if self.instance_type == "mq.t3.micro" and self.deployment_mode != DeploymentMode.SINGLE_INSTANCE:
            raise ValueError(
                "mq.t3.micro supports only deploymentMode SINGLE_INSTANCE; use mq.m5.large or mq.m7g.large for a cluster"
            )
        return self


# RDS API Reference, CreateDBInstance: MonitoringInterval.
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)


class Database(_Model):
    instance_class: str = "db.t4g.micro"
    """an RDS class this tool knows the memory of, or set `database.maxConnections`"""
    engine_version: str = Field("16", pattern=r"^\d+(\.\d+)?$")
    """PostgreSQL major version (`16`) or major.minor (`16.4`)"""
    allocated_storage_gb: Int = Field(20, ge=20, le=65536)
    """20–65536"""
    max_allocated_storage_gb: Int = Field(100, ge=20, le=65536)
    """storage autoscaling ceiling, at least 10 % above `allocatedStorageGb`"""
    multi_az: bool = False
    """a standby in a second AZ"""
    backup_retention_days: Int = Field(7, ge=1, le=35)
    """1–35"""
    # The server's max_connections when it is not the RDS default for the class (custom parameter group).
    max_connections: Int | None = Field(None, ge=10)
    """Unset: the RDS default for the class. ≥ 10: the server's `max_connections`, for the connection check, when it is
    not the RDS default"""
    # Class, storage, Multi-AZ and version changes take effect during `pulumi up` (a short outage for a
    # class or version change); false leaves them pending until the weekly maintenance window.
    apply_immediately: bool = True
    """false: class, storage, Multi-AZ and version changes wait for the maintenance window ([Day
    2](deployment.md#apply-database-changes-now-or-in-the-maintenance-window))"""
    # Enhanced Monitoring: OS metrics every N seconds (0: off); billed as CloudWatch Logs ingestion.
    monitoring_interval_seconds: Int = 60
    """Enhanced Monitoring every 1, 5, 10, 15, 30 or 60 s; 0: off"""
    # Performance Insights (Database Insights standard mode), 7 days of history, free of charge.
    performance_insights: bool = True
    """Performance Insights, 7 days (free), encrypted with the stack's key"""

    @model_validator(mode="after")
    def _storage(self) -> Database:
        # RDS refuses a storage ceiling less than 10 % above the allocated storage ("Managing capacity
        # automatically with Amazon RDS storage autoscaling": "Invalid max storage size").
        least = -(-self.allocated_storage_gb * 11 // 10)  # 110 %, rounded up
        if self.max_allocated_storage_gb < least:
            raise ValueError(
                f"maxAllocatedStorageGb {self.max_allocated_storage_gb} is less than 10 % above allocatedStorageGb "
                f"{self.allocated_storage_gb}, which RDS refuses; use at least {least}"
            )
        if self.monitoring_interval_seconds not in MONITORING_INTERVALS:
            raise ValueError(
                f"monitoringIntervalSeconds {self.monitoring_interval_seconds} is not an Enhanced Monitoring "
                f"interval; valid: {', '.join(map(str, MONITORING_INTERVALS))} (0: off)"
            )
        if self.max_connections is None and self.instance_class not in limits.RDS_MEMORY_GIB:
            raise ValueError(
                f"instanceClass {self.instance_class!r} is not one this tool knows the connection limit of; "
                f"known: {', '.join(limits.RDS_MEMORY_GIB)}; or set database.maxConnections"
            )
        return self


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a CIDR block like 10.0.0.0/16 ({err})") from None
    if network.version != 4:
        # The stack's VPC, load balancer and security group rules are IPv4 only: an IPv6 block would admit nobody.
        raise ValueError(f"{value!r} is an IPv6 block; the stack is IPv4 only: give an IPv4 block like 203.0.113.0/24")
    return str(network)


Cidr = Annotated[str, BeforeValidator(lambda v: _cidr(v) if isinstance(v, str) else v)]


class Network(_Model):
    vpc_id: str | None = None
    """an existing VPC instead of a new one, with two subnets of each kind in different AZs"""
    public_subnet_ids: tuple[str, ...] = ()
    """an existing VPC instead of a new one, with two subnets of each kind in different AZs"""
    private_subnet_ids: tuple[str, ...] = ()
    """an existing VPC instead of a new one, with two subnets of each kind in different AZs"""
    vpc_cidr: Cidr = "10.0.0.0/16"
    """the new VPC's CIDR block"""
    # 0: tasks run in public subnets with a public IP (no inbound rule admits the internet; cheapest);
    # 1: one NAT gateway; 2: one per AZ (production: an AZ outage does not cut the other AZ off).
    nat_gateways: Int = Field(0, ge=0, le=2)
    """0: tasks in public subnets with public IPs and no inbound rule from the internet; 1; 2 = one per AZ"""
    # VPC flow logs to CloudWatch Logs (who talked to whom; paid per GB ingested).
    flow_logs: bool = False
    """VPC flow logs to CloudWatch Logs, kept `logs.retentionDays` (new VPC only)"""

    @model_validator(mode="after")
    def _existing_vpc(self) -> Network:
        given = bool(self.public_subnet_ids or self.private_subnet_ids)
        if self.vpc_id is None and given:
            raise ValueError("publicSubnetIds/privateSubnetIds are only used with an existing vpcId; set vpcId too")
        if self.vpc_id is not None and (len(self.public_subnet_ids) < 2 or len(self.private_subnet_ids) < 2):
            raise ValueError(
                "an existing vpcId needs publicSubnetIds and privateSubnetIds, at least two each in different AZs "
                "(the load balancer and the database subnet group require two AZs)"
            )
        return self


class UiAccess(StrEnum):
    PRIVATE = "private"  # internal load balancer: reach it from inside the VPC (a VPN, SSM port forwarding)
    SSM = "ssm"  # no load balancer: the webserver runs in the daemon's task, reached by SSM port forwarding
    CIDR = "cidr"  # internet-facing, admitted only from allowedCidrs
    PUBLIC = "public"  # internet-facing, open to the world, no login: only when the config says so
    COGNITO = "cognito"  # internet-facing, every request signed in through a Cognito user pool (HTTPS)
    OIDC = "oidc"  # internet-facing, every request signed in through an OpenID Connect provider (HTTPS)

    @property
    def internet_facing(self) -> bool:
        return self not in (UiAccess.PRIVATE, UiAccess.SSM)

    @property
    def load_balanced(self) -> bool:
        return self != UiAccess.SSM

    @property
    def authenticated(self) -> bool:
        return self in (UiAccess.COGNITO, UiAccess.OIDC)


Url = Annotated[str, Field(pattern=r"^https://[^\s]+$")]


class Cognito(_Model):
    user_pool_arn: str = Field(pattern=r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/.+$")
    """with `cognito` only, all three"""
    user_pool_client_id: str = Field(min_length=1)
    """with `cognito` only, all three"""
    user_pool_domain: str = Field(min_length=1)
    """with `cognito` only, all three"""


class Oidc(_Model):
    # The client secret is the separate secret config key `oidcClientSecret` (`pulumi config set --secret`).
    issuer: Url
    """with `oidc` only, all four; `https://` URLs"""
    authorization_endpoint: Url
    """with `oidc` only, all four; `https://` URLs"""
    token_endpoint: Url
    """with `oidc` only, all four; `https://` URLs"""
    user_info_endpoint: Url
    """with `oidc` only, all four; `https://` URLs"""
    client_id: str = Field(min_length=1)
    """with `oidc` only"""


class Viewers(_Model):
    # A second webserver, `dagster-webserver --read-only`, on a listener of its own of the UI's load balancer: who
    # may only look reaches this port; who may act reaches the UI's (Dagster OSS has no per-user permissions).
    allowed_cidrs: tuple[Cidr, ...] = Field(min_length=1)
    """a read-only UI beside the UI ([Operators edit, viewers look](operations.md#operators-edit-viewers-look-uiviewers));
    who reaches its listener, at least one CIDR; not with `ssm` nor `readOnly`"""
    port: int = Field(8443, ge=1, le=65535)
    """the viewers' listener port on the UI's load balancer (not 80 or 443, the UI's); HTTPS with `certificateArn`
    and signed in as the UI is with `cognito`/`oidc`"""
    desired_count: int = Field(1, ge=1, le=10)
    """read-only webserver tasks"""

    @model_validator(mode="after")
    def _port(self) -> Viewers:
        if self.port in (80, 443):
            raise ValueError(f"port {self.port} is the UI's own listener: choose another, e.g. 8443")
        return self


class Ui(_Model):
    access: UiAccess = UiAccess.PRIVATE
    """`private`, `ssm`, `cidr`, `public`, `cognito` or `oidc` ([Reach the UI](deployment.md#reach-the-ui)); `ssm` needs
    `operations.ecsExec: true` and excludes `operations.flower`"""
    allowed_cidrs: tuple[Cidr, ...] = ()
    """with `cidr` only, at least one"""
    certificate_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$")
    """an ACM certificate ARN: HTTPS listener, HTTP redirects; required by every mode but `private` and `ssm` unless
    `allowPlainHttp`; not with `ssm`"""
    # An internet-facing UI is HTTPS only; plain HTTP on the internet only when the config says so.
    allow_plain_http: bool = False
    """true: an internet-facing UI without `certificateArn`, over plain HTTP (not with `cognito`, `oidc`)"""
    cognito: Cognito | None = None
    oidc: Oidc | None = None
    # dagster-webserver --read-only: whoever reaches the UI may look, not act.
    read_only: bool = False
    """true: the UI shows everything and changes nothing (no launches, re-executions, terminations, schedule or sensor
    switches, wipes); runs start from schedules, sensors and `dagster job launch` ([Read-only
    UI](operations.md#a-read-only-ui))"""
    # A read-only UI beside this one, on its own listener of the same load balancer; not with `ssm` nor `readOnly`.
    viewers: Viewers | None = None

    @model_validator(mode="after")
    def _access(self) -> Ui:
        if self.access == UiAccess.CIDR and not self.allowed_cidrs:
            raise ValueError("access 'cidr' needs at least one allowedCidrs entry, e.g. 203.0.113.0/24")
        if self.access != UiAccess.CIDR and self.allowed_cidrs:
            raise ValueError(f"allowedCidrs is only used with access 'cidr', not {self.access.value!r}")
        for mode in (UiAccess.COGNITO, UiAccess.OIDC):
            block = getattr(self, mode.value)
            if self.access == mode and block is None:
                raise ValueError(
                    f"access {mode.value!r} needs a ui.{mode.value} block (see docs/deployment.md, 'Reach the UI')"
                )
            if self.access != mode and block is not None:
                raise ValueError(f"ui.{mode.value} is only used with access {mode.value!r}, not {self.access.value!r}")
        if self.access.authenticated and not self.certificate_arn:
            raise ValueError(
                f"access {self.access.value!r} signs users in, which needs HTTPS: set ui.certificateArn "
                f"(an ACM certificate for the UI's domain)"
            )
        if self.access.internet_facing and not self.certificate_arn and not self.allow_plain_http:
            raise ValueError(
                f"access {self.access.value!r} puts the UI on the internet, which needs HTTPS: set ui.certificateArn "
                f"(an ACM certificate for the UI's domain), or ui.allowPlainHttp true to serve it over plain HTTP"
            )
        if self.allow_plain_http and (self.certificate_arn or not self.access.internet_facing):
            raise ValueError(
                "allowPlainHttp is only used by an internet-facing UI without certificateArn "
                "(with a certificate, HTTP redirects to HTTPS; a private UI is never on the internet)"
            )
        if self.viewers and not self.access.load_balanced:
            raise ValueError(
                "ui.viewers is a listener of the UI's load balancer; access 'ssm' has none: leave ui.viewers out, "
                "or choose an access with a load balancer"
            )
        if self.viewers and self.read_only:
            raise ValueError("ui.viewers is a read-only UI beside an editing one; with ui.readOnly true the UI is "
                             "already read-only: leave one of them out")
        if self.certificate_arn and not self.access.load_balanced:
            raise ValueError(
                "certificateArn is for the UI's load balancer; access 'ssm' has none (the SSM session is encrypted): "
                "leave certificateArn out, or choose an access with a load balancer"
            )
        return self


class Image(_Model):
    # A prebuilt image instead of building worker_image/ on `pulumi up`.
    uri: str | None = None
    """Unset: build `worker_image/`. A prebuilt image pinned by `:tag` or `@sha256:`"""
    platform: str = Field("linux/amd64", pattern=r"^linux/(amd64|arm64)$")
    """or `linux/arm64`: every task on Graviton ([Graviton](deployment.md#graviton-arm64))"""

    @property
    def cpu_architecture(self) -> str:
        """The ECS task definitions' (and Fargate's prices') name of the platform's CPU."""
        return "ARM64" if self.platform == "linux/arm64" else "X86_64"

    @model_validator(mode="after")
    def _pinned(self) -> Image:
        # A tag after the last '/' (a registry port has none after it), or a digest.
        if self.uri is not None and not re.fullmatch(
            r"[^\s@]+/[^\s@/:]+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})|[^\s@/:]+(:[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})",
            self.uri,
        ):
            raise ValueError(
                f"uri {self.uri!r} is not pinned: end it with :TAG or @sha256:DIGEST, "
                f"e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/dagster:2024-06-01"
            )
        return self


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


class Logs(_Model):
    retention_days: Int = 14
    """a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, …, 3653); for container, flow
    and WAF logs and the access logs"""

    @model_validator(mode="after")
    def _retention(self) -> Logs:
        if self.retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"retentionDays {self.retention_days} is not a CloudWatch Logs retention; "
                f"valid: {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return self


class Operations(_Model):
    # Alarms go to an SNS topic; with an address, also by e-mail (confirm the subscription mail once).
    alarm_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    """an address subscribed to the alarm topic (confirm the mail once)"""
    # How long messages may wait on a queue with no worker before the "stuck" alarm (dagster #2336).
    no_consumer_minutes: Int = Field(5, ge=1, le=60)
    """1–60"""
    # `aws ecs execute-command` into tasks (and SSM port forwarding to the webserver); off by default.
    ecs_exec: bool = False
    """`aws ecs execute-command` into tasks and SSM port forwarding to the webserver ([Reach the
    UI](deployment.md#reach-the-ui): the operator's prerequisites); turning it on or off rolls every service (ECS
    Exec reaches new tasks only), and the containers it reaches lose their read-only root ([security](security.md))"""
    # Celery's Flower at <ui>/flower, behind the same access control as the UI plus its own basic auth.
    flower: bool = False
    """Celery's Flower at `<ui_url>/flower` ([operations](operations.md))"""


class Alerts(_Model):
    """Pipeline alerts to the alarm topic ([operations](operations.md#pipeline-alerts)): built-in sensors the daemon
    evaluates for every code location, each event reported once."""

    run_failure: bool = True
    """a failed run: its job, run id, each failed step with the first line of its error, a link to the run"""
    long_run: bool = True
    """a run still running `longRunMinutes` after it started (once per run)"""
    long_run_minutes: Int = Field(120, ge=1, le=30 * 24 * 60)
    """1–43200: how long a run may run before `longRun` reports it"""
    tick_failure: bool = True
    """a schedule or sensor whose ticks fail (once until a tick succeeds again)"""
    location_error: bool = True
    """a code location that does not load (once per distinct error, checked every 5 min)"""

    def kinds(self) -> tuple[str, ...]:
        """The kinds on, by the runtime's names (dagster_celery_aws.alerts.KINDS)."""
        on = {"run_failure": self.run_failure, "long_run": self.long_run, "tick_failure": self.tick_failure,
              "location_error": self.location_error}  # fmt: skip
        return tuple(kind for kind, enabled in on.items() if enabled)


class Security(_Model):
    """Encryption, the web application firewall and access logs (docs/security.md)."""

    # An existing customer-managed KMS key for secrets, logs, the alarm topic, the image repository and the
    # bucket; its key policy must admit them (docs/security.md). None: the stack creates one, with rotation.
    kms_key_arn: str | None = Field(None, pattern=KMS_KEY_ARN)
    """Unset: the stack creates a key. An existing customer-managed KMS key (`arn:aws:kms:REGION:ACCOUNT:key/ID`) for
    secrets, logs, alarm topic, image repository, bucket; fixed once deployed ([security](security.md))"""
    # AWS WAF with AWS managed rule groups in front of the load balancer. None: on for an internet-facing UI.
    waf: bool | None = None
    """Unset: on when the UI is internet-facing. AWS WAF with AWS managed rule groups in front of the load balancer; not
    with `ui.access: private` or `ssm`"""
    # Load balancer and bucket access logs, to a log bucket of the stack (kept logs.retentionDays).
    access_logs: bool = True
    """load balancer and bucket access logs to a log bucket of the stack"""


class Protection(_Model):
    # Production: the database cannot be deleted by accident and leaves a final snapshot; the bucket is
    # not emptied on destroy; Pulumi refuses to delete either.
    deletion_protection: bool = False
    """RDS deletion protection and final snapshot, load balancer deletion protection, buckets kept, key and Pulumi
    `protect`"""


class StackConfig(_Model):
    queues: tuple[Queue, ...]
    """a list; the queue `dagster` must be present — untagged steps go there"""
    # None: the example code location of this repository (dagster_project), already in the image.
    code_locations: tuple[CodeLocation, ...] | None = None
    """Unset: the example (`dagster_project`). A list of your code locations, built into the image and loaded by every
    process ([Bring your own code](../README.md#bring-your-own-code))"""
    # Every task that runs user code (webserver, daemon, runs, workers).
    access: Access = Access()
    webserver: Webserver = Webserver()
    daemon: Daemon = Daemon()
    runs: Runs = Runs()
    retention: Retention = Retention()
    broker: Broker = Broker()
    database: Database = Database()
    network: Network = Network()
    ui: Ui = Ui()
    image: Image = Image()
    logs: Logs = Logs()
    operations: Operations = Operations()
    alerts: Alerts = Alerts()
    security: Security = Security()
    protection: Protection = Protection()
    # Set with `pulumi config set --secret oidcClientSecret ...`; a stack file holds it encrypted.
    oidc_client_secret: str | dict | None = Field(None, repr=False)
    """with `oidc` only, and then required: `pulumi config set --secret oidcClientSecret …`"""

    @property
    def waf(self) -> bool:
        """Whether AWS WAF guards the UI's load balancer (security.waf; default: when it is internet-facing)."""
        return self.ui.access.internet_facing if self.security.waf is None else self.security.waf

    @model_validator(mode="after")
    def _waf(self) -> StackConfig:
        if self.security.waf and not self.ui.access.internet_facing:
            raise ValueError(
                f"security.waf guards an internet-facing load balancer; ui.access {self.ui.access.value!r} has none "
                "(leave security.waf out, or set it false)"
            )
        return self

    @model_validator(mode="after")
    def _ssm_ui(self) -> StackConfig:
        if self.ui.access.load_balanced:
            return self
        if not self.operations.ecs_exec:
            raise ValueError(
                "ui.access 'ssm' is reached through an SSM session to the task, which needs operations.ecsExec: true"
            )
        if self.operations.flower:
            raise ValueError(
                "operations.flower is served through the UI's load balancer; ui.access 'ssm' has none "
                "(choose ui.access 'private', or leave Flower off)"
            )
        unused = sorted(self.webserver.model_fields_set)
        if unused:
            raise ValueError(
                f"webserver.{to_camel(unused[0])} is not used with ui.access 'ssm': the webserver runs in the daemon's task, "
                f"sized by daemon.cpu and daemon.memory and placed by daemon.capacity (leave the webserver block out)"
            )
        return self

    @model_validator(mode="after")
    def _runs_in_daemon(self) -> StackConfig:
        if self.runs.mode != RunsMode.DAEMON:
            return self
        floor = limits.daemon_memory_floor(self.runs.max_concurrent_runs, not self.ui.access.load_balanced)
        if self.daemon.memory < floor:
            web = "" if self.ui.access.load_balanced else f" + the webserver and its code server {limits.WEBSERVER_PROCESSES_MIB}"
            raise ValueError(
                f"daemon.memory {self.daemon.memory} is too small for runs.mode 'daemon' with runs.maxConcurrentRuns "
                f"{self.runs.max_concurrent_runs}: the run workers share the daemon's task, which needs at least {floor} MiB "
                f"(the daemon, its code server and the run purge {limits.DAEMON_PROCESSES_MIB}{web} + {limits.RUN_WORKER_MIB} per run "
                f"worker, measured with the example code; yours may need more): raise daemon.memory (and daemon.cpu "
                f"to a valid pair) or lower runs.maxConcurrentRuns"
            )
        return self

    @model_validator(mode="after")
    def _oidc_secret(self) -> StackConfig:
        if (self.ui.access == UiAccess.OIDC) != (self.oidc_client_secret is not None):
            raise ValueError(
                "oidcClientSecret is required with ui.access 'oidc' and only then: "
                "pulumi config set --secret oidcClientSecret <client secret>"
            )
        return self

    @model_validator(mode="after")
    def _queues(self) -> StackConfig:
        names = [q.name for q in self.queues]
        service_names = [worker_name(n) for n in names]
        for i, name in enumerate(names):
            if service_names[i] in service_names[:i]:
                raise ValueError(
                    f"queues[{i}].name {name!r} is a duplicate (queue names must be unique, and "
                    f"'.' and '-' count as the same in ECS service names)"
                )
        if DEFAULT_QUEUE not in names:
            raise ValueError(
                f"queues has no queue named {DEFAULT_QUEUE!r} ({', '.join(names)}); every step without a "
                f"dagster-celery/queue tag goes there and would wait forever: add {{name: {DEFAULT_QUEUE}}}"
            )
        slots = sum(q.max_workers * q.concurrency for q in self.queues)
        peaks = limits.peak_connections(slots, self.runs.max_concurrent_runs, self.webserver.most)
        problem = limits.connection_problem(peaks, self.database.instance_class, self.database.max_connections)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _code_locations(self) -> StackConfig:
        if self.code_locations is not None:
            if not self.code_locations:
                raise ValueError("codeLocations is empty: name at least one, or leave it out for the example")
            names = [c.name for c in self.code_locations]
            for i, name in enumerate(names):
                if name in names[:i]:
                    raise ValueError(f"codeLocations[{i}].name {name!r} is a duplicate (location names must be unique)")
        for q in self.queues:
            clash = sorted((set(q.access.environment) | set(q.access.secrets)) & (set(self.access.environment) | set(self.access.secrets)))
            if clash:
                raise ValueError(f"queue {q.name!r} sets {', '.join(clash)}, which access already sets for every task")
        return self

    def queue(self, name: str) -> Queue:
        return next(q for q in self.queues if q.name == name)


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a mapping's key rather than its value
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(values: dict[str, Any], source: str = "stack config") -> StackConfig:
    """Validate raw config values (keys without the namespace) or raise ConfigError naming every problem."""
    try:
        return StackConfig.model_validate(values)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            where = _path(e["loc"])
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                message = "unknown key (a typo would otherwise fall back to a default)"
            elif e["type"] == "missing":
                message = "required key is missing"
            shown = "" if e["type"] in ("missing",) or isinstance(e["input"], dict) else f" = {e['input']!r}"
            problems.append(f"{where}{shown}: {message}" if where else message)
        raise ConfigError(problems, source) from None


def _namespaced(raw: dict[str, Any]) -> dict[str, Any]:
    prefix = f"{NAMESPACE}:"
    return {key.removeprefix(prefix): value for key, value in raw.items() if key.startswith(prefix)}


def load_stack_file(path: str | Path) -> StackConfig:
    """Read and validate ``Pulumi.<stack>.yaml`` the way ``pulumi up`` would see it."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError([f"cannot read the stack file: {err.strerror}"], str(path)) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"not valid YAML: {err}"], str(path)) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(["a stack file needs a top-level 'config:' mapping"], str(path))
    return parse(_namespaced(document["config"]), str(path))


def from_pulumi() -> StackConfig:
    """Validate the running stack's config (all ``dagster-celery-aws:*`` keys, unknown ones included)."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    values = {}
    for key, value in _namespaced(raw).items():
        # Structured values arrive as JSON text; plain strings stay strings.
        try:
            values[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            values[key] = value
    return parse(values, f"stack config ({NAMESPACE}:*)")
