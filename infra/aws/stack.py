"""The whole stack from a validated config: components wired together, the outputs users rely on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.specs import code_locations, contract, instance, topology
from infra.aws import iam, monitoring, naming
from infra.stackfile import transitions
from infra.aws.components.autoscaling import QueueScaling, QueueScalingArgs, UiScaling
from infra.aws.components.broker import Broker, BrokerArgs
from infra.aws.components.bucket import Bucket, BucketArgs, LogBucket, LogBucketArgs
from infra.aws.components.cluster import Cluster, ClusterArgs
from infra.aws.components.database import DB_NAME, Database, DatabaseArgs
from infra.aws.components.encryption import EncryptionKey
from infra.aws.components.firewall import Firewall, FirewallArgs
from infra.aws.components.flower import Flower
from infra.aws.components.guard import Guard
from infra.aws.components.image import Image, ImageArgs
from infra.aws.components.loadbalancer import LoadBalancer, LoadBalancerArgs
from infra.aws.components.monitoring import Monitoring, MonitoringArgs
from infra.aws.components.network import POSTGRES_PORT, Network, NetworkArgs
from infra.aws.components.service import Service, ServiceArgs
from infra.stackfile.config import RunsMode, StackConfig
from infra.specs.topology import ProcessSpec, process_specs


# ui.access 'ssm': where the UI is once an SSM port-forwarding session to the webserver's task runs (docs/deployment.md, "Reach the UI").
SSM_UI_URL = f"http://127.0.0.1:{contract.WEBSERVER_PORT} (through an SSM port-forwarding session to the webserver_service task)"
PROJECT_DIR = Path(__file__).resolve().parents[2]  # where Pulumi.yaml is: codeLocations paths start here


def build(cfg: StackConfig) -> dict[str, pulumi.Output]:
    """Declare every resource of the stack; returns the stack outputs."""
    # Before any resource: a code location that is not where the config says is a config error.
    locations = code_locations.resolve(cfg, PROJECT_DIR)
    specs = {s.name: s for s in process_specs(cfg)}
    prefix = f"dagster-{pulumi.get_stack()}"
    # One customer-managed key for secrets, logs, the alarm topic, the image repository and the bucket.
    encryption = EncryptionKey(f"{prefix}-kms", cfg.security.kms_key_arn, cfg.protection.deletion_protection)
    at = _Common(cfg, prefix, encryption.arn, aws.get_region_output().region)

    network = _network(at, specs)
    broker = _broker(at, network)
    database = _database(at, network)
    bucket = Bucket(f"{prefix}-bucket", BucketArgs(deletion_protection=at.protect, kms_key_arn=at.key,
                                                   compute_log_days=cfg.retention.run_days))  # fmt: skip
    access_logs = _access_logs(at, bucket)
    image = _image(at, locations)
    lb = _load_balancer(at, network, access_logs)
    firewall = _firewall(at, lb)
    # Flower: its own basic-auth secret and a route on the UI's load balancer (operations.flower).
    flower = Flower(f"{prefix}-flower", lb, at.key) if "flower" in specs else None
    # The alarm topic first: the daemon's task publishes pipeline alerts to it (stack config `alerts`).
    watch = Monitoring(f"{prefix}-ops", MonitoringArgs(config=cfg, kms_key_arn=at.key))
    cluster = _cluster(at, broker, database, bucket, flower, watch.topic.arn if cfg.alerts.kinds() else None)
    services = _services(at, specs, locations, network, broker, database, bucket, image, lb, flower, cluster, watch)
    scalings = [
        QueueScaling(f"{prefix}-{spec.name}-autoscaling",
                     QueueScalingArgs(queue=cfg.queue(q), stack_id=prefix, target=services.workers[q].scaling_target))
        for q, spec in services.worker_specs.items()
    ]  # fmt: skip
    if services.webserver.scaling_target:  # webserver.maxCount above desiredCount
        scalings.append(UiScaling(f"{prefix}-webserver-autoscaling", cfg.webserver, services.webserver.scaling_target))
    _monitoring(at, services, cluster, lb, database, broker, watch)

    # Changes AWS would refuse midway (a broker moved down to mq.t3.micro, a downgrade, a protected load balancer
    # replaced) fail the preview. The values it compares against are recorded only once every other resource is
    # deployed (components/guard.py): it depends on all of them.
    everything = [encryption, network, broker, database, bucket, access_logs, image, lb, firewall, flower, cluster,
                  services.run, services.daemon, services.webserver, services.viewers, services.flower,
                  *services.workers.values(), *scalings, watch]  # fmt: skip
    Guard(f"{prefix}-transitions", transitions.deployed_values(cfg),
          pulumi.ResourceOptions(depends_on=[r for r in everything if r is not None]))
    return _outputs(lb, watch, broker, bucket, database, cluster, services)


@dataclass(frozen=True)
class _Common:
    """What every component of the stack shares."""

    cfg: StackConfig
    prefix: str
    key: pulumi.Output[str]  # the stack's key (EncryptionKey)
    region: pulumi.Output[str]

    @property
    def protect(self) -> bool:
        return self.cfg.protection.deletion_protection

    @property
    def retention(self) -> int:
        return self.cfg.logs.retention_days

    @property
    def task_runs(self) -> bool:
        # Runs mode "task": one Fargate task per run, from the run task definition family. Mode "daemon": none.
        return self.cfg.runs.mode == RunsMode.TASK

    @property
    def run_family(self) -> str | None:
        return naming.fit(aws.ecs.TaskDefinition, f"{self.prefix}-run") if self.task_runs else None


def _network(at: _Common, specs: dict) -> Network:
    served = tuple(spec.port for name, spec in specs.items() if name in ("webserver", "flower"))
    return Network(at.prefix, NetworkArgs(config=at.cfg.network, ui=at.cfg.ui, served_ports=served, kms_key_arn=at.key,
                                          log_retention_days=at.retention))  # fmt: skip


def _broker(at: _Common, network: Network) -> Broker:
    return Broker(
        f"{at.prefix}-mq",
        BrokerArgs(config=at.cfg.broker, subnet_ids=network.private_subnet_ids, security_group_id=network.broker_sg.id,
                   kms_key_arn=at.key, log_retention_days=at.retention),
    )  # fmt: skip


def _database(at: _Common, network: Network) -> Database:
    return Database(
        f"{at.prefix}-db",
        DatabaseArgs(
            config=at.cfg.database, subnet_ids=network.private_subnet_ids,
            security_group_id=network.database_sg.id, deletion_protection=at.protect, kms_key_arn=at.key,
            log_retention_days=at.retention,
        ),
    )  # fmt: skip


def _access_logs(at: _Common, bucket: Bucket) -> LogBucket | None:
    # Access logs of the load balancer and of the bucket (security.accessLogs).
    if not at.cfg.security.access_logs:
        return None
    return LogBucket(f"{at.prefix}-access", LogBucketArgs(deletion_protection=at.protect, retention_days=at.retention,
                                                          source=bucket, load_balancer=at.cfg.ui.access.load_balanced))  # fmt: skip


def _image(at: _Common, locations) -> Image:
    return Image(
        f"{at.prefix}-code",
        ImageArgs(config=at.cfg.image, locations=locations if at.cfg.code_locations is not None else None,
                  build_dir=PROJECT_DIR / ".build" / at.prefix, kms_key_arn=at.key),
    )  # fmt: skip


def _load_balancer(at: _Common, network: Network, access_logs: LogBucket | None) -> LoadBalancer | None:
    # ui.access 'ssm': no load balancer; the webserver runs in the daemon's task, reached by SSM port forwarding.
    ui = at.cfg.ui
    if not ui.access.load_balanced:
        return None
    return LoadBalancer(
        f"{at.prefix}-ui",
        LoadBalancerArgs(
            ui=ui, vpc_id=network.vpc_id, security_group_id=network.lb_sg.id, deletion_protection=at.protect,
            subnet_ids=network.public_subnet_ids if ui.access.internet_facing else network.private_subnet_ids,
            oidc_client_secret=at.cfg.oidc_client_secret, access_logs=access_logs,
        ),
    )  # fmt: skip


def _firewall(at: _Common, lb: LoadBalancer | None) -> Firewall | None:
    # AWS managed rule groups in front of an internet-facing UI (security.waf).
    if not at.cfg.waf:
        return None
    return Firewall(f"{at.prefix}-waf", FirewallArgs(load_balancer_arn=lb.lb.arn, kms_key_arn=at.key, log_retention_days=at.retention))


def _cluster(at: _Common, broker: Broker, database: Database, bucket: Bucket, flower: Flower | None,
             alert_topic_arn: pulumi.Output[str] | None) -> Cluster:  # fmt: skip
    cfg = at.cfg
    return Cluster(
        f"{at.prefix}-ecs",
        ClusterArgs(
            log_retention_days=at.retention, secret_arns=[broker.url_secret.arn, database.secret.arn, *([flower.secret.arn] if flower else [])],
            bucket_arn=bucket.arn, run_family=at.run_family, ecs_exec=cfg.operations.ecs_exec, access=cfg.access,
            user_secrets=tuple(v for a in (cfg.access, *(q.access for q in cfg.queues)) for v in a.secrets.values()),
            user_secret_keys=tuple(k for a in (cfg.access, *(q.access for q in cfg.queues)) for k in a.secret_kms_keys),
            kms_key_arn=at.key, alert_topic_arn=alert_topic_arn,
        ),
    )  # fmt: skip


@dataclass
class _Services:
    run: Service | None  # runs mode "task" only
    daemon: Service
    webserver: Service  # the daemon's with ui.access 'ssm'
    viewers: Service | None  # ui.viewers: the read-only webserver
    flower: Service | None
    workers: dict[str, Service]  # by queue
    worker_specs: dict[str, ProcessSpec]  # by queue
    worker_names: pulumi.Output  # queue -> ECS service name


def _services(at: _Common, specs: dict[str, ProcessSpec], locations, network: Network, broker: Broker,
              database: Database, bucket: Bucket, image: Image, lb: LoadBalancer | None, flower: Flower | None,
              cluster: Cluster, watch: Monitoring) -> _Services:  # fmt: skip
    cfg, prefix, region, specs = at.cfg, at.prefix, at.region, dict(specs)
    # The environment contract: the same names and values in every task (dagster issue #2163).
    environment = {
        contract.PG_HOST: database.address,
        contract.PG_PORT: str(POSTGRES_PORT),
        contract.PG_DB: DB_NAME,
        contract.S3_BUCKET: bucket.name,
        contract.INSTANCE_SETTINGS: instance.settings_value(cfg),
        # Every task: the run launcher of the runs mode (dagster_celery_aws.run_launcher).
        contract.RUNS_MODE: cfg.runs.mode.value,
        # The family here (the run task definition cannot hold its own ARN); the daemon, which launches the
        # runs, gets the exact revision below.
        **({contract.RUN_TASK_DEFINITION: at.run_family} if at.task_runs else {}),
        contract.REGION: region,
        contract.ALERTS: ",".join(cfg.alerts.kinds()),  # the alerts location's sensors, wherever it loads
        **cfg.access.environment,  # what user code needs in every task
    }
    secrets = {
        **cfg.access.secrets,
        contract.BROKER_URL: broker.url_secret.ref(),
        contract.PG_USERNAME: database.secret.ref("username"),
        contract.PG_PASSWORD: database.secret.ref("password"),
        contract.BACKEND_URL: database.secret.ref("celery_backend_url"),
    }

    def service(spec, task_role, depends_on=(), target_group_arn=None, env=None, **extra) -> Service:
        return Service(
            f"{prefix}-{spec.name}",
            ServiceArgs(
                spec=spec, family=f"{prefix}-{spec.name}", image=image.ref,
                environment={**environment, **topology.scoped_placeholders(cfg, spec.queue), **(env or {})},
                secrets=secrets, cluster_arn=cluster.cluster.arn, cluster_name=cluster.cluster.name,
                log_group=cluster.log_group.name, region=region, execution_role_arn=cluster.execution_role.arn,
                task_role_arn=task_role.arn, subnet_ids=network.task_subnet_ids,
                security_group_ids=[network.tasks_sg.id], assign_public_ip=network.assign_public_ip,
                cpu_architecture=cfg.image.cpu_architecture,
                target_group_arn=target_group_arn, ecs_exec=cfg.operations.ecs_exec,
                # Tasks start only once their roles may do what they need (IAM is eventually consistent).
                depends_on=[*depends_on, *cluster.grants],
                **extra,
            ),
        )  # fmt: skip

    metrics_environment = {
        contract.METRICS_STACK: prefix,
        contract.BROKER_MANAGEMENT_URL: broker.console_url,
    }
    # The run task definition registers first and keeps its old revisions (skip_destroy, components/service.py);
    # the daemon launches exactly the revision deployed with it. Until the new daemon is up -- after the
    # schema migration in its task -- nothing launches the new revision, and a daemon rolled back by the
    # circuit breaker still launches the revision it was deployed with.
    # Runs mode "daemon": no run task definition; the run workers start in the daemon's task, under its role.
    queues = {contract.QUEUES: topology.queues_value(cfg)}  # the processes that send steps (contract.QUEUES)
    # ... and wake a cold queue's workers as a run starts (dagster_celery_aws.prewarm)
    worker_service_names = {s.queue: s.name for s in specs.values() if s.role == "worker"}
    queues |= {contract.CLUSTER: cluster.cluster.name, contract.WORKER_SERVICES: json.dumps(worker_service_names)}
    aws.iam.RolePolicy(
        naming.fit(aws.iam.RolePolicy, f"{prefix}-prewarm"),
        role=(cluster.run_role if at.task_runs else cluster.control_role).id,  # the role of the run workers
        policy=cluster.cluster.arn.apply(lambda arn: json.dumps(iam.prewarm_policy(arn, {
            name: naming.fit(aws.ecs.TaskDefinition, f"{prefix}-{name}") for name in worker_service_names.values()}))),
        opts=pulumi.ResourceOptions(parent=cluster),  # with the cluster's other grants
    )
    run = service(specs.pop("run"), cluster.run_role, env=queues) if at.task_runs else None
    launch_env = {
        contract.RUN_TASK_DEFINITION: run.task_definition.arn,
        contract.RUN_SUBNETS: pulumi.Output.all(*network.task_subnet_ids).apply(",".join),
    } if run else {}  # fmt: skip
    web_spec = specs.pop("webserver")
    # The daemon evaluates the alert sensors: where to publish, the UI for links, the long-run limit.
    alert_env = {
        **topology.alert_environment(cfg, f"{contract.APP_DIR}/{topology.WORKSPACE}"),
        contract.ALERT_TOPIC: watch.topic.arn, contract.UI_URL: lb.url if lb else f"http://127.0.0.1:{contract.WEBSERVER_PORT}",
    } if cfg.alerts.kinds() else {}  # fmt: skip
    daemon = service(
        specs.pop("daemon"), cluster.control_role,
        env={**launch_env, **queues, contract.CODE_LOCATIONS: code_locations.names(locations), **alert_env},
        sidecars=(specs.pop("queue-metrics"), specs.pop("retention"), *(() if lb else (web_spec,))),
        sidecar_environment=metrics_environment,
    )  # fmt: skip
    after_daemon = [daemon.service]
    webserver = service(
        web_spec, cluster.control_role, [*after_daemon, *lb.listeners],
        target_group_arn=lb.target_group.arn,
    ) if lb else daemon  # fmt: skip
    viewers_spec = topology.viewers_spec(cfg)
    viewers = service(
        viewers_spec, cluster.control_role, [*after_daemon, lb.viewers_listener],
        target_group_arn=lb.viewers_target_group.arn,
    ) if viewers_spec else None  # fmt: skip
    flower_service = None
    if flower:
        flower_service = service(
            specs.pop("flower"), cluster.worker_role, [*after_daemon, flower.rule],
            target_group_arn=flower.target_group.arn, own_secrets={contract.FLOWER_BASIC_AUTH: flower.secret.ref()},
        )  # fmt: skip
    worker_env = topology.worker_environment(cfg)
    workers = {}
    for spec in specs.values():
        access = cfg.queue(spec.queue).access
        # A queue with grants of its own runs under a role of its own: only its code gets them.
        role = cluster.queue_role(spec.queue, access) if access.grants else cluster.worker_role
        workers[spec.queue] = service(
            spec, role, after_daemon, env={**worker_env, **access.environment}, own_secrets=dict(access.secrets),
        )
    worker_specs = {spec.queue: spec for spec in specs.values()}
    worker_names = pulumi.Output.all(**{q: w.service.name for q, w in workers.items()})
    return _Services(run, daemon, webserver, viewers, flower_service, workers, worker_specs, worker_names)


def _monitoring(at: _Common, services: _Services, cluster: Cluster, lb: LoadBalancer | None, database: Database,
                broker: Broker, watch: Monitoring) -> None:  # fmt: skip
    targets = pulumi.Output.all(
        region=at.region, cluster=cluster.cluster.name, worker_services=services.worker_names,
        webserver_service=services.webserver.service.name, load_balancer=lb.lb.arn_suffix if lb else None,
        target_group=lb.target_group.arn_suffix if lb else None, database=database.instance.identifier,
        broker=broker.broker.broker_name,
    ).apply(lambda v: monitoring.Targets(stack_id=at.prefix, broker_nodes=broker.nodes, **v))  # fmt: skip
    watch.watch(targets, cluster.cluster.arn)


def _outputs(lb, watch, broker, bucket, database, cluster, services: _Services) -> dict[str, pulumi.Output]:
    outputs = {
        "ui_url": lb.url if lb else SSM_UI_URL,
        "alarm_topic": watch.topic.arn,
        "dashboard": watch.dashboard.dashboard_name,
        "broker_endpoint": broker.endpoint,
        "bucket_name": bucket.name,
        "database_endpoint": database.instance.endpoint,
        "cluster_name": cluster.cluster.name,
        "log_group": cluster.log_group.name,
        "webserver_service": services.webserver.service.name,
        "daemon_service": services.daemon.service.name,
        "worker_services": services.worker_names,
    }
    if lb:  # infra/tools/verify.py asks for its targets' health
        outputs["target_group"] = lb.target_group.arn
    if services.viewers:  # ui.viewers: the read-only UI
        outputs["viewers_url"] = lb.viewers_url
        outputs["viewers_service"] = services.viewers.service.name
    if services.run:  # runs mode "task" only: mode "daemon" has no run task definition
        outputs["run_task_definition"] = services.run.task_definition.arn
    return outputs
