"""Know the bill: what ``pulumi up`` would create from a stack file, and an estimated monthly cost.

Offline: ``python -m infra.tools.plan --stack-file Pulumi.dev.yaml [--json] [--prices infra/tools/prices.json]``. Every line
has a cost at minimum scale (idle: ``minWorkers``, no runs) and at maximum scale (every queue at ``maxWorkers``,
``runs.maxConcurrentRuns`` runs), for ``hours_per_month`` (730) hours, at the on-demand prices of the price file
(``infra/tools/refresh_prices.py`` refreshes it from the AWS Price List API). What is not priced is listed in EXCLUDED.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from infra.specs import code_locations
from infra.aws import monitoring, scaling
from infra.aws.components.firewall import MANAGED_RULE_GROUPS
from infra.stackfile.config import Capacity, ConfigError, DeploymentMode, StackConfig, load_stack_file, worker_name
from infra.specs.topology import process_specs

PRICES_FILE = Path(__file__).with_name("prices.json")
AZ_COUNT = 2  # components/network.py: the load balancer spans two subnets (one per AZ)
METRICS_PER_QUEUE = 4  # dagster_celery_aws.queue_metrics: QueueDepth, QueueReady, QueueUnacked, QueueConsumers
METRICS_PER_CALL = 20  # the publisher's put_metric_data batch size

EXCLUDED = (
    "data transfer (internet egress, cross-AZ, NAT gateway per-GB processing)",
    "S3 storage and requests of the data bucket",
    "CloudWatch Logs ingestion and storage (task logs, broker and RDS log exports, RDS Enhanced Monitoring, VPC "
    "flow logs, WAF logs)",
    "Container Insights (billed as log ingestion and metrics)",
    "SNS notifications, ECR image storage, RDS backup storage beyond the free allowance, Secrets Manager and KMS API calls",
    "taxes, free tier, Savings Plans and reserved pricing",
)


class PriceError(ValueError):
    """A resource the stack would create has no price in the price file."""


@dataclass(frozen=True)
class Line:
    component: str
    detail: str
    min_monthly: float
    max_monthly: float


def load_prices(path: str | Path = PRICES_FILE) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _price(table: dict[str, float], key: str, what: str, prices: dict[str, Any]) -> float:
    if key not in table:
        raise PriceError(
            f"no price for {what} {key!r} in the price file ({prices.get('region')}); "
            f"priced: {', '.join(table)}. Add it (python -m infra.tools.refresh_prices) or choose a priced one."
        )
    return table[key]


def _size(cpu: int, memory: int) -> str:
    return f"{cpu / 1024:g} vCPU / {memory / 1024:g} GB"


def plan(cfg: StackConfig, prices: dict[str, Any]) -> list[Line]:
    """One line per billed component of the stack, with its monthly cost at minimum and at maximum scale."""
    p, hours = prices["prices"], prices["hours_per_month"]
    arch = cfg.image.cpu_architecture
    fargate = _price(p["fargate"], arch, "Fargate architecture", prices)
    spot_rates = p["fargate_spot"][arch] if "fargate_spot" in p else None
    new_vpc = cfg.network.vpc_id is None
    # components/network.py: without NAT (new VPC) tasks run in public subnets with a public IPv4 address each.
    task_ip = new_vpc and cfg.network.nat_gateways == 0
    ip_month = p["public_ipv4_hour"] * hours if task_ip else 0.0
    ip_note = " + a public IPv4 address each" if task_ip else ""

    def task_month(cpu: int, memory: int, rates: dict[str, float] = fargate) -> float:
        return (cpu / 1024 * rates["vcpu_hour"] + memory / 1024 * rates["gb_hour"]) * hours + ip_month

    def tasks_month(cpu: int, memory: int, count: int, capacity: Capacity) -> float:
        """``count`` tasks placed by ``capacity``: the on-demand share at Fargate prices, the rest at Spot's."""
        if count and capacity.spot and spot_rates is None:
            raise PriceError(f"no Fargate Spot prices (fargate_spot) in the price file ({prices.get('region')})")
        on_demand = capacity.on_demand_tasks(count)
        spot = task_month(cpu, memory, spot_rates) if capacity.spot else 0.0
        return on_demand * task_month(cpu, memory) + (count - on_demand) * spot

    def placed(capacity: Capacity, count: int) -> str:
        if not capacity.spot:
            return f"Fargate {arch}"
        on_demand = capacity.on_demand_tasks(count)
        return f"Fargate {arch}; at {count}: {on_demand:g} on-demand, {count - on_demand:g} Spot"

    specs = {s.name: s for s in process_specs(cfg)}
    lines = []
    for q in cfg.queues:
        s = specs[worker_name(q.name)]
        at_max = tasks_month(s.cpu, s.memory, s.max_count, s.capacity)
        saving = s.max_count * task_month(s.cpu, s.memory) - at_max
        lines.append(Line(
            s.name, f"queue {q.name}: {_size(s.cpu, s.memory)}, concurrency {q.concurrency}, "
            f"{s.min_count}-{s.max_count} workers ({placed(s.capacity, s.max_count)}{ip_note})"
            + (f"; Spot saves {saving:,.2f} at max" if s.capacity.spot else ""),
            tasks_month(s.cpu, s.memory, s.min_count, s.capacity), at_max))  # fmt: skip
    web, daemon = specs["webserver"], specs["daemon"]
    if cfg.ui.access.load_balanced:
        cost = tasks_month(web.cpu, web.memory, web.min_count, web.capacity)
        count = str(web.min_count) if web.max_count == web.min_count else f"{web.min_count}-{web.max_count}"  # webserver.maxCount
        lines.append(Line("webserver", f"{_size(web.cpu, web.memory)} x {count} task(s) "
                          f"({placed(web.capacity, web.min_count)}{ip_note})", cost,
                          tasks_month(web.cpu, web.memory, web.max_count, web.capacity)))  # fmt: skip
    cost = tasks_month(daemon.cpu, daemon.memory, 1, daemon.capacity)
    with_web = "" if cfg.ui.access.load_balanced else " with the webserver in it (ui.access 'ssm')"
    if "run" not in specs:
        with_web += f"{' and' if with_web else ''} sized for up to {cfg.runs.max_concurrent_runs} run worker(s) (runs.mode daemon)"
    lines.append(Line("daemon", f"{_size(daemon.cpu, daemon.memory)} x 1 task{with_web} "
                      f"({placed(daemon.capacity, 1)}{ip_note})", cost, cost))
    lines.append(Line("queue-metrics", "publisher: a sidecar in the daemon task, no task of its own", 0.0, 0.0))
    if "flower" in specs:
        f = specs["flower"]
        lines.append(Line("flower", f"Celery Flower: {_size(f.cpu, f.memory)} x 1 task{ip_note}",
                          task_month(f.cpu, f.memory), task_month(f.cpu, f.memory)))
    if "run" in specs:
        run = specs["run"]
        lines.append(Line("run tasks", f"{_size(run.cpu, run.memory)}, {run.min_count}-{run.max_count} concurrent runs "
                          f"(one task per run, Fargate {arch} on-demand){ip_note}", 0.0,
                          run.max_count * task_month(run.cpu, run.memory)))
    else:
        lines.append(Line("run tasks", f"none: runs.mode daemon, up to {cfg.runs.max_concurrent_runs} run worker(s) "
                          "in the daemon task (no per-run task cost)", 0.0, 0.0))

    b = cfg.broker
    nodes = 3 if b.deployment_mode == DeploymentMode.CLUSTER_MULTI_AZ else 1
    mq_gb = prices["assumptions"]["mq_storage_gb_per_instance"]
    broker = nodes * (_price(p["mq_instance_hour"], b.instance_type, "broker.instanceType", prices) * hours
                      + mq_gb * p["mq_storage_gb_month"])
    lines.append(Line("broker", f"Amazon MQ RabbitMQ {b.engine_version.value} {b.instance_type}, "
                      f"{b.deployment_mode.value}: {nodes} instance(s), {mq_gb} GB stored each (assumed)", broker, broker))

    d = cfg.database
    copies = 2 if d.multi_az else 1
    db = copies * (_price(p["rds_postgres_instance_hour"], d.instance_class, "database.instanceClass", prices) * hours
                   + d.allocated_storage_gb * p["rds_gp3_gb_month"])
    lines.append(Line("database", f"RDS PostgreSQL {d.engine_version} {d.instance_class}, "
                      f"{'multi-AZ (x2: standby)' if d.multi_az else 'single-AZ'}, {d.allocated_storage_gb} GB gp3 "
                      f"(may grow to {d.max_allocated_storage_gb} GB)", db, db))

    nats = cfg.network.nat_gateways if new_vpc else 0
    nat = nats * p["nat_gateway_hour"] * hours
    lines.append(Line("NAT gateways", f"{nats} NAT gateway(s)" if new_vpc else "existing VPC: none created", nat, nat))
    alb_ips = AZ_COUNT if cfg.ui.access.internet_facing else 0
    ips = nats + alb_ips
    ip_cost = ips * p["public_ipv4_hour"] * hours
    lines.append(Line("public IPv4", f"{nats} NAT EIP(s) + {alb_ips} internet-facing ALB address(es)"
                      + ("; tasks' addresses are on their own lines" if task_ip else "; tasks have none"), ip_cost, ip_cost))

    if cfg.ui.access.load_balanced:
        lcu = prices["assumptions"]["alb_lcu"]
        alb = (p["alb_hour"] + lcu * p["alb_lcu_hour"]) * hours
        facing = "internet-facing" if cfg.ui.access.internet_facing else "internal"
        lines.append(Line("load balancer", f"{facing} ALB, {hours} h + {lcu} LCU on average (assumed)", alb, alb))
    else:
        lines.append(Line("load balancer", "none: ui.access 'ssm' reaches the webserver's task directly", 0.0, 0.0))

    if cfg.security.kms_key_arn is None:
        lines.append(Line("encryption key", "1 customer-managed KMS key (secrets, logs, alarm topic, image repository, "
                          "bucket)", p["kms_key_month"], p["kms_key_month"]))
    else:
        lines.append(Line("encryption key", "security.kmsKeyArn: an existing key, billed where it is", 0.0, 0.0))
    if cfg.waf:
        requests = prices["assumptions"]["waf_requests_million"]
        rules = len(MANAGED_RULE_GROUPS)
        waf = p["waf_web_acl_month"] + rules * p["waf_rule_month"] + requests * p["waf_requests_per_million"]
        lines.append(Line("WAF", f"1 web ACL with {rules} AWS managed rule groups + {requests:g} million requests "
                          "(assumed)", waf, waf))
    if cfg.security.access_logs:
        gb = prices["assumptions"]["access_log_gb"]
        logs = gb * p["s3_standard_gb_month"]
        kinds = "load balancer and bucket" if cfg.ui.access.load_balanced else "bucket"
        lines.append(Line("access logs", f"log bucket: {kinds} access logs, {gb:g} GB kept (assumed)",
                          logs, logs))
    count = 3 if cfg.operations.flower else 2
    secrets = count * p["secret_month"]
    lines.append(Line("secrets", f"Secrets Manager: broker URL, database credentials"
                      f"{', Flower basic auth' if cfg.operations.flower else ''} ({count})", secrets, secrets))

    n_queues = len(cfg.queues)
    ours, managed, alarm_metrics = alarm_counts(cfg)
    alarm_cost = alarm_metrics * p["cw_alarm_metric_month"]
    lines.append(Line("alarms", f"{ours + managed} CloudWatch alarms ({ours} of the stack + {managed} created by "
                      f"target tracking) = {alarm_metrics} alarm metrics", alarm_cost, alarm_cost))
    dashboard = p["cw_dashboard_month"]
    lines.append(Line("dashboard", "1 CloudWatch dashboard", dashboard, dashboard))

    metrics = METRICS_PER_QUEUE * n_queues
    interval = prices["assumptions"]["metrics_interval_seconds"]
    calls = math.ceil(metrics / METRICS_PER_CALL) * hours * 3600 / interval
    metric_cost = metrics * p["cw_metric_month"] + calls / 1000 * p["cw_requests_per_1000"]
    lines.append(Line("metrics", f"{metrics} custom metrics ({METRICS_PER_QUEUE} x {n_queues} queues) + "
                      f"{calls:,.0f} PutMetricData calls", metric_cost, metric_cost))
    return lines


def _metrics_in(alarm: dict) -> int:
    queries = alarm.get("metric_queries") or alarm.get("metrics")
    return sum("expression" not in q for q in queries) if queries else 1


def alarm_counts(cfg: StackConfig) -> tuple[int, int, int]:
    """(alarms the stack declares, alarms target tracking creates, alarm metrics billed), from the same builders
    as components/autoscaling.py and components/monitoring.py."""
    t = monitoring.Targets.placeholder(cfg.ui.access.load_balanced)
    alarms = list(monitoring.stack_alarms(t, cfg.queues[0].name).values())
    managed = []
    for q in cfg.queues:
        alarms += [scaling.idle_alarm(q, "stack"), *([scaling.wake_alarm(q, "stack")] if q.min_workers == 0 else [])]
        alarms += monitoring.queue_alarms(q, t, cfg.operations.no_consumer_minutes).values()
        # Target tracking: an AWS-managed high and low alarm per policy, on the policy's metrics.
        managed += 2 * [scaling.target_tracking(q, "stack")["customized_metric_specification"]]
    if cfg.ui.access.load_balanced and cfg.webserver.most > cfg.webserver.desired_count:  # the UI's CPU policy
        managed += 2 * [scaling.ui_cpu_tracking(cfg.webserver.target_cpu_percent)["predefined_metric_specification"]]
    return len(alarms), len(managed), sum(map(_metrics_in, alarms + managed))


def totals(lines: list[Line]) -> tuple[float, float]:
    return sum(x.min_monthly for x in lines), sum(x.max_monthly for x in lines)


def _notes(prices: dict[str, Any]) -> list[str]:
    return [
        f"Prices: {prices['region']}, {prices['currency']}, on-demand (Fargate Spot where a service's capacity "
        f"says so; Spot prices change over time), {prices['hours_per_month']} h/month, price file dated {prices['date']}.",
        "Minimum: every queue at minWorkers, no run in progress. Maximum: every queue at maxWorkers, "
        "runs.maxConcurrentRuns runs at once.",
        "Alarms are billed per metric they evaluate (metric-math alarms count each metric); target tracking "
        "counted as 2 AWS-managed alarms per policy.",
        f"Not included: {'; '.join(EXCLUDED)}.",
        f"Unverified prices (estimates): {', '.join(prices.get('unverified', [])) or 'none'}.",
    ]


def render_markdown(lines: list[Line], prices: dict[str, Any]) -> str:
    lo, hi = totals(lines)
    out = ["| component | detail | min $/month | max $/month |", "|---|---|---:|---:|"]
    out += [f"| {x.component} | {x.detail} | {x.min_monthly:,.2f} | {x.max_monthly:,.2f} |" for x in lines]
    out.append(f"| **total** | | **{lo:,.2f}** | **{hi:,.2f}** |")
    return "\n".join(out + [""] + [f"- {n}" for n in _notes(prices)]) + "\n"


def render_json(lines: list[Line], prices: dict[str, Any]) -> str:
    lo, hi = totals(lines)
    return json.dumps({
        "region": prices["region"], "currency": prices["currency"], "date": prices["date"],
        "hours_per_month": prices["hours_per_month"], "lines": [asdict(x) for x in lines],
        "total": {"min_monthly": lo, "max_monthly": hi}, "assumptions": prices["assumptions"],
        "excluded": list(EXCLUDED), "unverified": prices.get("unverified", []),
    }, indent=2)  # fmt: skip


def _stack_region(path: str) -> str | None:
    document = yaml.safe_load(Path(path).read_text())
    return document["config"].get("aws:region")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.tools.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack-file", required=True, help="Pulumi.<stack>.yaml")
    parser.add_argument("--prices", default=str(PRICES_FILE), help="price file (default: infra/tools/prices.json)")
    parser.add_argument("--json", action="store_true", help="JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    try:
        cfg = load_stack_file(args.stack_file)
        # A code location that is not where the file says is refused, as pulumi up refuses it (stack.build).
        code_locations.resolve(cfg, Path(args.stack_file).resolve().parent)
        try:
            prices = load_prices(args.prices)
        except (OSError, ValueError) as err:
            raise PriceError(f"cannot read the price file {args.prices}: {err}") from None
        region = _stack_region(args.stack_file)
        if region and region != prices["region"]:
            raise PriceError(f"the stack is in {region} but {args.prices} has {prices['region']} prices; "
                             f"refresh them: python -m infra.tools.refresh_prices --region {region} --out PATH")
        lines = plan(cfg, prices)
    except (ConfigError, PriceError) as err:
        print(err, file=sys.stderr)
        return 2
    print(render_json(lines, prices) if args.json else render_markdown(lines, prices), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
