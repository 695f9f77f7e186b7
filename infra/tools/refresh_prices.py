"""Refresh infra/tools/prices.json from the AWS Price List API (needs AWS credentials; the API answers in us-east-1).

``python -m infra.tools.refresh_prices [--region eu-west-1] [--out infra/tools/prices.json]``: asks ``pricing.get_products``
for each service code, filtered by region and product family, and rewrites every price it finds (on-demand,
USD, first tier). A price it does not find keeps its old value and its family stays in ``unverified``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.stackfile.config import BROKER_INSTANCE_TYPES
from infra.stackfile.limits import RDS_MEMORY_GIB

PRICES_FILE = Path(__file__).with_name("prices.json")
Path_ = tuple[str, ...]  # where a price goes in doc["prices"], e.g. ("fargate", "ARM64", "vcpu_hour")


def _fargate(a: dict) -> tuple[Path_, float] | None:
    """On-demand Linux Fargate to "fargate", Fargate Spot (usage types "<region>-SpotUsage-Fargate-...") to
    "fargate_spot". AWS publishes Spot prices in the feed behind aws.amazon.com/fargate/pricing, which changes
    over time; when the Price List has no Spot rows, "fargate_spot" keeps its old values and stays unverified."""
    usage = a.get("usagetype", "")
    if "Windows" in usage:
        return None
    key = "fargate_spot" if "SpotUsage-Fargate-" in usage else "fargate"
    for suffix, path in (("Fargate-vCPU-Hours:perCPU", ("X86_64", "vcpu_hour")), ("Fargate-GB-Hours", ("X86_64", "gb_hour")),
                         ("Fargate-ARM-vCPU-Hours:perCPU", ("ARM64", "vcpu_hour")), ("Fargate-ARM-GB-Hours", ("ARM64", "gb_hour"))):  # fmt: skip
        if usage.endswith(suffix):
            return (key, *path), 1.0
    return None


def _suffix(table: dict[str, tuple[Path_, float]]) -> Callable[[dict], tuple[Path_, float] | None]:
    def classify(a: dict) -> tuple[Path_, float] | None:
        return next((v for k, v in table.items() if a.get("usagetype", "").endswith(k)), None)

    return classify


def _mq(a: dict) -> tuple[Path_, float] | None:
    if a.get("brokerEngine") != "RabbitMQ":
        return None
    if a.get("productFamily") == "Broker Storage":
        return ("mq_storage_gb_month",), 1.0
    if a.get("instanceType") in BROKER_INSTANCE_TYPES and a.get("deploymentOption", "Single-AZ") == "Single-AZ":
        return ("mq_instance_hour", a["instanceType"]), 1.0
    return None


def _rds(a: dict) -> tuple[Path_, float] | None:
    if a.get("deploymentOption") != "Single-AZ":
        return None
    if a.get("productFamily") == "Database Storage" and a.get("volumeApiName") == "gp3":
        return ("rds_gp3_gb_month",), 1.0
    if (a.get("productFamily") == "Database Instance" and a.get("databaseEngine") == "PostgreSQL"
            and a.get("instanceType") in RDS_MEMORY_GIB):
        return ("rds_postgres_instance_hour", a["instanceType"]), 1.0
    return None


# (service code, extra TERM_MATCH filters, classifier)
QUERIES: list[tuple[str, dict[str, str], Callable[[dict], tuple[Path_, float] | None]]] = [
    ("AmazonECS", {}, _fargate),
    ("AmazonMQ", {}, _mq),
    ("AmazonRDS", {"databaseEngine": "PostgreSQL", "deploymentOption": "Single-AZ"}, _rds),
    ("AmazonRDS", {"productFamily": "Database Storage", "volumeApiName": "gp3"}, _rds),
    ("AmazonEC2", {"productFamily": "NAT Gateway"}, _suffix({"NatGateway-Hours": (("nat_gateway_hour",), 1.0)})),
    ("AmazonVPC", {}, _suffix({"PublicIPv4:InUseAddress": (("public_ipv4_hour",), 1.0)})),
    ("AWSELB", {"productFamily": "Load Balancer-Application"},
     _suffix({"LoadBalancerUsage": (("alb_hour",), 1.0), "LCUUsage": (("alb_lcu_hour",), 1.0)})),
    ("AWSSecretsManager", {}, _suffix({"AWSSecretsManager-Secrets": (("secret_month",), 1.0)})),
    ("AmazonCloudWatch", {}, _suffix({
        "CW:AlarmMonitorUsage": (("cw_alarm_metric_month",), 1.0), "CW:MetricMonitorUsage": (("cw_metric_month",), 1.0),
        "DashboardsUsageHour": (("cw_dashboard_month",), 1.0), "CW:Requests": (("cw_requests_per_1000",), 1000.0)})),
]  # fmt: skip


def on_demand_usd(item: dict) -> float | None:
    """The first-tier on-demand USD price of one PriceList entry (the lowest beginRange with a price above 0)."""
    dims = [d for term in item.get("terms", {}).get("OnDemand", {}).values() for d in term["priceDimensions"].values()]
    priced = sorted((float(d.get("beginRange", "0")), float(d["pricePerUnit"]["USD"])) for d in dims if "USD" in d["pricePerUnit"])
    nonzero = [usd for _, usd in priced if usd > 0]
    return nonzero[0] if nonzero else None


def products(client, service: str, filters: dict[str, str]):
    request = {"ServiceCode": service, "FormatVersion": "aws_v1",
               "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()]}  # fmt: skip
    while True:
        page = client.get_products(**request)
        yield from (json.loads(text) for text in page["PriceList"])
        if not page.get("NextToken"):
            return
        request["NextToken"] = page["NextToken"]


def refresh(client, region: str, doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of the price document with every price the API gave; also the price paths it did not find."""
    found: dict[Path_, float] = {}
    for service, filters, classify in QUERIES:
        for item in products(client, service, {"regionCode": region, **filters}):
            hit = classify({**item["product"]["attributes"], "productFamily": item["product"].get("productFamily")})
            usd = on_demand_usd(item) if hit else None
            if hit and usd is not None:
                found.setdefault(hit[0], usd * hit[1])
    new = json.loads(json.dumps(doc))
    prices = new["prices"]
    for path, usd in found.items():
        node = prices
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = round(usd, 8)
    wanted = [("mq_instance_hour", t) for t in BROKER_INSTANCE_TYPES] + [("rds_postgres_instance_hour", c) for c in RDS_MEMORY_GIB]
    wanted += [(k, *sub) for k, v in prices.items() if k not in ("mq_instance_hour", "rds_postgres_instance_hour")
               for sub in ([()] if not isinstance(v, dict) else [(a, b) for a in v for b in v[a]])]  # fmt: skip
    missing = [".".join(p) for p in wanted if tuple(p) not in found]
    new["unverified"] = sorted({m.split(".")[0] for m in missing})
    new.update(region=region, date=datetime.date.today().isoformat(), checked={},
               source=f"AWS Price List API (pricing.get_products, us-east-1 endpoint), on-demand USD, service codes "
                      f"{', '.join(sorted({q[0] for q in QUERIES}))}")  # fmt: skip
    return new, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.tools.refresh_prices", description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--out", default=str(PRICES_FILE))
    args = parser.parse_args(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session()
    if session.get_credentials() is None:
        print("no AWS credentials: the Price List API needs them (set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
              "AWS_SECRET_ACCESS_KEY, or run `aws sso login`); infra/tools/prices.json was not changed", file=sys.stderr)
        return 2
    try:
        doc, missing = refresh(session.client("pricing", region_name="us-east-1"), args.region,
                               json.loads(PRICES_FILE.read_text()))
    except (BotoCoreError, ClientError) as err:
        print(f"the Price List API failed: {err}", file=sys.stderr)
        return 1
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}; not found (old value kept): {', '.join(missing) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
