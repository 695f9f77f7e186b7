"""`python -m infra.tools.plan`: the bill of a stack file, offline; and the price refresher's parsing."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.tools import plan as planmod
from infra.tools import refresh_prices
from infra.stackfile.config import BROKER_INSTANCE_TYPES, load_stack_file, parse
from infra.tools.plan import Line, PriceError, alarm_counts, load_prices, main, plan, render_json, totals
from infra.tools.testing import run_stack

STACKS = ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
PRICES = load_prices()


@pytest.fixture(params=STACKS)
def stack(request, repo_root):
    return load_stack_file(repo_root / request.param)


def by_component(lines: list[Line]) -> dict[str, Line]:
    return {x.component: x for x in lines}


def test_totals_are_the_sum_of_the_lines_and_min_is_at_most_max(stack):
    lines = plan(stack, PRICES)
    lo, hi = totals(lines)
    assert lo == pytest.approx(sum(x.min_monthly for x in lines))
    assert hi == pytest.approx(sum(x.max_monthly for x in lines))
    assert 0 < lo <= hi
    assert all(0 <= x.min_monthly <= x.max_monthly for x in lines)


def test_lines_follow_the_stack(repo_root):
    dev = by_component(plan(load_stack_file(repo_root / "Pulumi.dev.yaml"), PRICES))
    prod = by_component(plan(load_stack_file(repo_root / "Pulumi.prod.yaml"), PRICES))
    hours, p = PRICES["hours_per_month"], PRICES["prices"]
    assert "3 instance(s)" in prod["broker"].detail  # CLUSTER_MULTI_AZ
    assert prod["broker"].min_monthly > 3 * p["mq_instance_hour"]["mq.m5.large"] * hours - 1e-9
    assert prod["NAT gateways"].min_monthly == pytest.approx(2 * p["nat_gateway_hour"] * hours)
    assert prod["public IPv4"].min_monthly == pytest.approx(4 * p["public_ipv4_hour"] * hours)  # 2 EIPs + 2 ALB
    assert dev["NAT gateways"].max_monthly == 0 and dev["public IPv4"].max_monthly == 0
    assert "public IPv4" in dev["worker-dagster"].detail and "public IPv4" not in prod["worker-dagster"].detail
    assert dev["run tasks"].min_monthly == 0 and dev["queue-metrics"].max_monthly == 0
    # dev: 4 per queue (stuck, saturated, idle, wake from zero) + broker memory + metrics missing; no load balancer alarm
    assert dev["alarms"].detail.startswith("14 CloudWatch alarms (10 of the stack + 4 created by target tracking)")
    assert dev["secrets"].min_monthly == pytest.approx(2 * p["secret_month"])


@pytest.mark.parametrize("name", [*STACKS, None])
def test_counts_match_the_program_under_mocks(repo_root, name):
    """The plan counts what `pulumi up` declares: alarms, dashboards, NAT gateways, EIPs, secrets, services."""
    zero = {"queues": [{"name": "dagster", "minWorkers": 0}, {"name": "etl"}], "network": {"natGateways": 1}}
    result = run_stack(repo_root / name) if name else run_stack(config=zero)
    cfg = load_stack_file(repo_root / name) if name else parse(zero)

    def count(typ: str) -> int:
        return sum(r.typ == typ for r in result.resources)

    ours, managed, _ = alarm_counts(cfg)
    assert count("aws:cloudwatch/metricAlarm:MetricAlarm") == ours
    assert sum(r.typ == "aws:appautoscaling/policy:Policy" and r.inputs.get("policyType") == "TargetTrackingScaling"
               for r in result.resources) * 2 == managed
    assert count("aws:cloudwatch/dashboard:Dashboard") == 1
    assert count("aws:ec2/natGateway:NatGateway") == count("aws:ec2/eip:Eip") == cfg.network.nat_gateways
    assert count("aws:secretsmanager/secret:Secret") == 2  # broker URL, database credentials
    # A webserver service of its own only behind a load balancer (ui.access 'ssm': it is in the daemon's task).
    balanced = cfg.ui.access.load_balanced
    assert count("aws:ecs/service:Service") == len(cfg.queues) + 1 + balanced
    lines = by_component(plan(cfg, PRICES))
    assert ("webserver" in lines) == balanced
    assert count("aws:lb/loadBalancer:LoadBalancer") == balanced == (lines["load balancer"].min_monthly > 0)
    assert set(lines) >= {f"worker-{q.name}" for q in cfg.queues}
    # The key, the firewall (its rule groups are billed per rule) and the log bucket, when the program makes them.
    assert count("aws:kms/key:Key") == 1 and lines["encryption key"].min_monthly == PRICES["prices"]["kms_key_month"]
    acls = [r for r in result.resources if r.typ == "aws:wafv2/webAcl:WebAcl"]
    assert len(acls) == ("WAF" in lines) == cfg.waf
    assert all(f"{len(acl.inputs['rules'])} AWS managed rule groups" in lines["WAF"].detail for acl in acls)
    assert count("aws:s3/bucket:Bucket") == 1 + ("access logs" in lines) == 1 + cfg.security.access_logs


def test_multi_az_doubles_the_database(repo_root):
    prod = load_stack_file(repo_root / "Pulumi.prod.yaml")
    single = prod.model_copy(update={"database": prod.database.model_copy(update={"multi_az": False})})
    assert by_component(plan(prod, PRICES))["database"].min_monthly == pytest.approx(
        2 * by_component(plan(single, PRICES))["database"].min_monthly)


def test_scale_from_zero_adds_a_wake_alarm():
    zero = parse({"queues": [{"name": "dagster", "minWorkers": 0}]})
    one = parse({"queues": [{"name": "dagster", "minWorkers": 1}]})
    assert alarm_counts(zero)[0] == alarm_counts(one)[0] + 1
    assert alarm_counts(zero)[2] == alarm_counts(one)[2] + 2  # metric math over depth and consumers
    assert by_component(plan(zero, PRICES))["worker-dagster"].min_monthly == 0


SIZES = [(256, 512), (512, 1024), (1024, 2048), (2048, 8192), (4096, 16384)]
queue = st.builds(
    lambda name, size, lo, extra, conc: {"name": name, "cpu": size[0], "memory": size[1], "minWorkers": lo,
                                         "maxWorkers": max(1, lo) + extra, "concurrency": conc},
    st.sampled_from(["etl", "heavy", "io.bound", "ml"]), st.sampled_from(SIZES), st.integers(0, 3), st.integers(0, 4),
    st.integers(1, 3),
)  # fmt: skip
configs = st.builds(
    lambda first, rest, nat, access, arm: {
        "queues": [{**first, "name": "dagster"}, *{q["name"]: q for q in rest}.values()],
        "network": {"natGateways": nat}, "database": {"instanceClass": "db.r6g.2xlarge"},
        "ui": {"access": access, **({"allowedCidrs": ["203.0.113.0/24"]} if access == "cidr" else {}),
               **({"certificateArn": CERTIFICATE} if access != "private" else {})},
        "image": {"platform": "linux/arm64" if arm else "linux/amd64"},
    },
    queue, st.lists(queue, max_size=3), st.integers(0, 2), st.sampled_from(["private", "cidr", "public"]), st.booleans(),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=configs, which=st.integers(0, 3), more=st.integers(1, 5))
def test_generated_raising_max_workers_changes_only_that_queue_and_the_max_total(values, which, more):
    cfg = parse(values)
    before = plan(cfg, PRICES)
    lo, hi = totals(before)
    assert lo == pytest.approx(sum(x.min_monthly for x in before)) and lo <= hi
    i = which % len(values["queues"])
    raised = copy.deepcopy(values)
    raised["queues"][i]["maxWorkers"] += more
    after = plan(parse(raised), PRICES)
    lo2, hi2 = totals(after)
    assert lo2 == pytest.approx(lo) and hi2 > hi
    changed = [a.component for a, b in zip(after, before, strict=True) if a != b]
    assert changed == [f"worker-{values['queues'][i]['name'].replace('.', '-')}"]


@pytest.mark.parametrize(
    "family,key,value,words",
    [
        ("mq_instance_hour", "mq.m5.large", {"instanceType": "mq.m5.large"}, ["broker.instanceType", "'mq.m5.large'", "mq.t3.micro"]),
        ("rds_postgres_instance_hour", "db.m7g.large", {"instanceClass": "db.m7g.large"},
         ["database.instanceClass", "'db.m7g.large'", "db.t4g.micro"]),
    ],
)  # fmt: skip
def test_an_unpriced_broker_or_database_is_refused_by_name(monkeypatch, family, key, value, words):
    prices = copy.deepcopy(PRICES)
    del prices["prices"][family][key]
    monkeypatch.setattr(planmod, "load_prices", lambda *_: prices)
    group = "broker" if family.startswith("mq") else "database"
    extra = {"deploymentMode": "CLUSTER_MULTI_AZ"} if group == "broker" else {}
    cfg = parse({"queues": [{"name": "dagster"}], group: {**value, **extra}})
    with pytest.raises(PriceError) as err:
        plan(cfg, planmod.load_prices())
    assert all(w in str(err.value) for w in words)


def test_an_unpriced_class_on_the_cli_exits_2_naming_it(tmp_path, capsys):
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text(yaml.safe_dump({"config": {"aws:region": "eu-west-1", "dagster-celery-aws:queues": [{"name": "dagster"}],
                                                "dagster-celery-aws:database": {"instanceClass": "db.m7i.large"}}}))
    assert main(["--stack-file", str(stack)]) == 2
    err = capsys.readouterr().err
    assert "'db.m7i.large'" in err and "db.t4g.micro" in err and "Traceback" not in err


def test_every_allowed_broker_type_is_priced():
    assert set(BROKER_INSTANCE_TYPES) <= set(PRICES["prices"]["mq_instance_hour"])


def test_json_round_trips(stack):
    lines = plan(stack, PRICES)
    data = json.loads(render_json(lines, PRICES))
    assert [Line(**x) for x in data["lines"]] == lines
    assert (data["total"]["min_monthly"], data["total"]["max_monthly"]) == pytest.approx(totals(lines))
    assert data["unverified"] == PRICES["unverified"] and data["excluded"]


@pytest.mark.parametrize("name", STACKS)
def test_cli_prints_the_table(repo_root, capsys, name):
    assert main(["--stack-file", str(repo_root / name)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| component | detail | min $/month | max $/month |")
    assert "| **total** |" in out and "worker-heavy" in out and "Not included: data transfer" in out
    assert main([f"--stack-file={repo_root / name}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["region"] == "eu-west-1"


def test_invalid_stack_file_exits_2_naming_the_key(tmp_path, capsys):
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text("config:\n  dagster-celery-aws:queues:\n    - name: dagster\n      maxWorkrs: 3\n")
    assert main(["--stack-file", str(stack)]) == 2
    err = capsys.readouterr().err
    assert "queues[0].maxWorkrs" in err and "unknown key" in err and "Traceback" not in err


def test_a_stack_in_another_region_is_refused(tmp_path, capsys):
    stack = tmp_path / "Pulumi.us.yaml"
    stack.write_text("config:\n  aws:region: us-east-1\n  dagster-celery-aws:queues:\n    - name: dagster\n")
    assert main(["--stack-file", str(stack)]) == 2
    assert "us-east-1" in capsys.readouterr().err


# --- infra/tools/refresh_prices.py on a canned get_products answer (the shape of the real Price List API) ---


def _item(attributes: dict, usd: str, family: str = "Compute", tiers: tuple = ()) -> str:
    dims = {"D.0": {"unit": "Hrs", "beginRange": "0", "endRange": "Inf", "pricePerUnit": {"USD": usd}}}
    for i, (begin, price) in enumerate(tiers, 1):
        dims[f"D.{i}"] = {"unit": "Hrs", "beginRange": begin, "pricePerUnit": {"USD": price}}
    return json.dumps({"product": {"productFamily": family, "sku": "SKU", "attributes": {"regionCode": "eu-west-1", **attributes}},
                       "serviceCode": "X", "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": dims}}}})


CANNED = {
    "AmazonECS": [_item({"usagetype": "EU-Fargate-vCPU-Hours:perCPU"}, "0.0404800000"),
                  _item({"usagetype": "EU-Fargate-ARM-GB-Hours"}, "0.0035600000"),
                  _item({"usagetype": "EU-SpotUsage-Fargate-vCPU-Hours:perCPU"}, "0.0120000000"),
                  _item({"usagetype": "EU-SpotUsage-Fargate-ARM-GB-Hours"}, "0.0010000000")],
    "AmazonMQ": [_item({"brokerEngine": "RabbitMQ", "instanceType": "mq.m5.large", "deploymentOption": "Single-AZ"}, "0.3170000000",
                       "Broker Instances"),
                 _item({"brokerEngine": "ActiveMQ", "instanceType": "mq.m5.large"}, "9.9", "Broker Instances")],
    "AmazonRDS": [_item({"databaseEngine": "PostgreSQL", "deploymentOption": "Single-AZ", "instanceType": "db.m7i.large"},
                        "0.2100000000", "Database Instance")],
    "AmazonCloudWatch": [_item({"usagetype": "EU-CW:MetricMonitorUsage"}, "0.3000000000", tiers=(("10000", "0.1"),)),
                         _item({"usagetype": "EU-CW:Requests"}, "0.0000100000")],
}  # fmt: skip


def test_refresh_parses_a_canned_price_list():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        for service, filters, _ in refresh_prices.QUERIES:
            items = [] if filters.get("productFamily") == "Database Storage" else CANNED.get(service, [])
            expected = {"ServiceCode": service, "FormatVersion": "aws_v1", "Filters": ANY}
            if service == "AmazonECS":  # two pages: the NextToken is followed
                stub.add_response("get_products", {"PriceList": items[:1], "NextToken": "t"}, expected)
                items, expected = items[1:], {**expected, "NextToken": "t"}
            stub.add_response("get_products", {"PriceList": items}, expected)
        doc, missing = refresh_prices.refresh(client, "eu-west-1", PRICES)
        stub.assert_no_pending_responses()
    p = doc["prices"]
    assert p["fargate"]["X86_64"]["vcpu_hour"] == 0.04048 and p["fargate"]["ARM64"]["gb_hour"] == 0.00356
    # Spot rows go to their own key, never over the on-demand price; a Spot price the list lacks keeps its old value
    assert p["fargate_spot"]["X86_64"]["vcpu_hour"] == 0.012 and p["fargate_spot"]["ARM64"]["gb_hour"] == 0.001
    assert p["fargate_spot"]["ARM64"]["vcpu_hour"] == PRICES["prices"]["fargate_spot"]["ARM64"]["vcpu_hour"]
    assert "fargate_spot.ARM64.vcpu_hour" in missing and "fargate_spot" in doc["unverified"]
    assert p["mq_instance_hour"]["mq.m5.large"] == 0.317  # the ActiveMQ price is not taken
    assert p["rds_postgres_instance_hour"]["db.m7i.large"] == 0.21  # a class the file lacked is added
    assert p["cw_metric_month"] == 0.3 and p["cw_requests_per_1000"] == pytest.approx(0.01)
    assert "fargate.X86_64.gb_hour" in missing and "nat_gateway_hour" in missing
    assert "nat_gateway_hour" in doc["unverified"] and "cw_metric_month" not in doc["unverified"]
    assert doc["date"] and "Price List API" in doc["source"] and PRICES["prices"]["cw_metric_month"] == 0.30


def test_refresh_without_credentials_is_a_clear_error(monkeypatch, capsys):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3.Session, "get_credentials", lambda self: None)
    assert refresh_prices.main(["--out", "/nonexistent/never-written.json"]) == 2
    assert "no AWS credentials" in capsys.readouterr().err


def test_flower_is_billed_only_when_enabled():
    def names(cfg):
        return [line.component for line in plan(cfg, PRICES)]

    assert "flower" not in names(parse({"queues": [{"name": "dagster"}]}))
    assert "flower" in names(parse({"queues": [{"name": "dagster"}], "operations": {"flower": True}}))


def test_runs_mode_daemon_has_no_per_run_task_cost_and_the_daemon_is_sized_for_its_runs():
    task = parse({"queues": [{"name": "dagster"}], "runs": {"maxConcurrentRuns": 5}})
    daemon = parse({"queues": [{"name": "dagster"}], "runs": {"mode": "daemon", "maxConcurrentRuns": 5},
                    "daemon": {"cpu": 1024, "memory": 2048}})  # fmt: skip
    t, d = by_component(plan(task, PRICES)), by_component(plan(daemon, PRICES))
    assert t["run tasks"].max_monthly > 0 and "one task per run" in t["run tasks"].detail
    assert (d["run tasks"].min_monthly, d["run tasks"].max_monthly) == (0.0, 0.0)
    assert "no per-run task cost" in d["run tasks"].detail and "runs.mode daemon" in d["run tasks"].detail
    assert "sized for up to 5 run worker(s)" in d["daemon"].detail and "1 vCPU / 2 GB" in d["daemon"].detail
    assert d["daemon"].min_monthly == d["daemon"].max_monthly > t["daemon"].min_monthly  # paid all month
