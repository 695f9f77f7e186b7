"""Security of both example stacks: checkov's own engine, and the rules checkov has no check for.

checkov (its built-in checks; the PyPI package, in a virtualenv of its own: tests/checkov-requirements.txt) reads
each example stack recorded under mocks and converted into the Terraform plan JSON it reads (infra/tools/tfplan.py),
and worker_image/Dockerfile. Any failed check that EXCEPTIONS does not name, with its reason, fails the suite;
an exception that no longer excuses anything fails it too. The conversion is shown to be faithful: the same stack
with one input broken (no public access block, rds.force_ssl off) fails the matching check.

Below them, our own rules for what checkov does not check (a database port open to the world: checkov reads
``protocol``, not ``ip_protocol``, on security group rules; secrets in a task's environment; IAM scoped to the
stack's own resources; ...), each named after what it guards and the Security Hub / AWSGuard control where there
is one. IAM documents are linted with parliament, the Dockerfile with hadolint.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import parliament
import pytest

from infra.specs import contract
from infra.aws import taskdef
from infra.tools import tfplan
from infra.aws.components import bucket as buckets
from infra.stackfile.config import load_stack_file
from infra.specs.topology import process_specs
from infra.tools.testing import MOCK_ECR_TOKEN, MOCK_PASSWORD, StackResult, is_secret, reveal, run_stack, stack_file_config
from tests.conftest import REPO_ROOT

STACKS = ("dev", "prod")
# The prod stack with an option its file leaves off, scanned with prod's exceptions: ui.viewers (the read-only UI's
# listener, target group, ingress and service).
VARIANTS = {"prod-viewers": ("ui.viewers", {"ui": {**stack_file_config(REPO_ROOT / "Pulumi.prod.yaml")["dagster-celery-aws:ui"],
                                                   "viewers": {"allowedCidrs": ["198.51.100.0/24"]}}})}
SCANNED = (*STACKS, *VARIANTS)
DOCKERFILE = REPO_ROOT / "worker_image" / "Dockerfile"
DRIVER = Path(__file__).with_name("checkov_driver.py")


@dataclasses.dataclass(frozen=True)
class Excused:
    """A failed checkov check that does not apply, why (one line), and where: checkov's resource addresses."""

    reason: str
    resources: str = "*"  # fnmatch pattern, e.g. "aws_s3_bucket.*-access-logs"


# Production: at most five, each with its reason.
PRODUCTION = {
    "CKV_AWS_209": Excused("Amazon MQ for RabbitMQ takes no customer-managed key (its encryption options are "
                           "ActiveMQ's); AWS encrypts the broker at rest", "aws_mq_broker.*"),
    "CKV2_AWS_57": Excused("the broker URL cannot rotate alone (a new RabbitMQ user recreates the broker) and the "
                           "database secret also holds the Celery backend URL: rotate by replacing the generated "
                           "password (docs/security.md)", "aws_secretsmanager_secret.*"),
    "CKV_AWS_144": Excused("a replica in another Region is disaster recovery beyond this stack: step outputs are "
                           "made again by re-running, access logs expire", "aws_s3_bucket.*"),
    "CKV_AWS_145": Excused("load balancer access logs can be delivered only to an SSE-S3 bucket (docs/facts.md); "
                           "the data bucket uses the stack's key", "aws_s3_bucket.*-access-logs"),
    "CKV2_AWS_62": Excused("nothing consumes object events: Dagster reads step outputs and compute logs by key",
                           "aws_s3_bucket.*"),
}  # fmt: skip
EXCEPTIONS: dict[str, dict[str, Excused]] = {
    "prod": PRODUCTION,
    "prod-viewers": PRODUCTION,
    # Development keeps cheaper choices (Pulumi.dev.yaml), each named here.
    "dev": {
        **PRODUCTION,
        "CKV2_AWS_11": Excused("no VPC flow logs in dev (network.flowLogs: paid per GB ingested)", "aws_vpc.*"),
        "CKV_AWS_333": Excused("no NAT gateway in dev: tasks reach ECR and AWS APIs with public IPs; no security "
                               "group admits inbound internet traffic", "aws_ecs_service.*"),
        "CKV_AWS_157": Excused("a single-AZ database in dev: a standby doubles its price", "aws_db_instance.*"),
        "CKV_AWS_293": Excused("dev data is disposable: no deletion protection on the database "
                               "(protection.deletionProtection)", "aws_db_instance.*"),
        "CKV_AWS_338": Excused("dev keeps its logs 14 days (logs.retentionDays)", "aws_cloudwatch_log_group.*"),
        "CKV_AWS_336": Excused("ECS Exec (operations.ecsExec, the way to the UI with ui.access ssm) needs a writable "
                               "root in the containers it reaches: its SSM agent writes there (ECS Exec considerations)",
                               "aws_ecs_task_definition.*"),
    },
}  # fmt: skip
DOCKERFILE_EXCEPTIONS = {
    "CKV_DOCKER_2": Excused("one image runs every process (webserver, daemon, workers, runs): ECS and the load "
                            "balancer check each process's health, no single HEALTHCHECK fits them all"),
}  # fmt: skip


# --- checkov over the example stacks --------------------------------------------------------------------------
@cache
def recorded(name: str) -> StackResult:
    if name in VARIANTS:
        return run_stack(REPO_ROOT / "Pulumi.prod.yaml", config=VARIANTS[name][1], stack="prod")
    return run_stack(REPO_ROOT / f"Pulumi.{name}.yaml", stack=name)


def _without(stack: StackResult, typ: str) -> StackResult:
    return StackResult([r for r in stack.resources if r.typ != typ], stack.outputs)


def _force_ssl_off(stack: StackResult) -> StackResult:
    def off(r):
        if r.typ != "aws:rds/parameterGroup:ParameterGroup":
            return r
        params = [{**p, "value": "0"} if p["name"] == "rds.force_ssl" else p for p in r.inputs["parameters"]]
        return dataclasses.replace(r, inputs={**r.inputs, "parameters": params})

    return StackResult([off(r) for r in stack.resources], stack.outputs)


# One input broken in the prod stack -> (the check that must then fail, on which resource).
BROKEN: dict[str, tuple[Callable[[StackResult], StackResult], str, str]] = {
    "prod-without-public-access-block": (
        lambda s: _without(s, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"), "CKV2_AWS_6",
        "aws_s3_bucket.dagster-prod-bucket-data"),
    "prod-force-ssl-off": (_force_ssl_off, "CKV2_AWS_69", "aws_db_instance.dagster-prod-db-postgres"),
}  # fmt: skip


def checkov_python() -> str:
    python = os.environ.get("DCA_CHECKOV_PYTHON") or str(REPO_ROOT / ".venv-checkov" / "bin" / "python")
    if not Path(python).exists():
        pytest.fail(f"checkov is not installed at {python}: `make checkov-venv` (or run the suite with `make test`)")
    return python


@pytest.fixture(scope="module")
def checkov(tmp_path_factory) -> dict[str, dict]:
    """checkov's results per plan (and for the Dockerfile), from one run of its engine."""
    python = checkov_python()
    folder = tmp_path_factory.mktemp("checkov")
    stacks = {name: recorded(name) for name in SCANNED} | {label: b[0](recorded("prod")) for label, b in BROKEN.items()}
    paths = {}
    for label, stack in stacks.items():
        paths[label] = folder / f"{label}.tfplan.json"
        paths[label].write_text(json.dumps(tfplan.plan(stack)))
    paths["Dockerfile"] = DOCKERFILE
    run = subprocess.run([python, str(DRIVER), *map(str, paths.values())], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    return {label: results[str(path)] for label, path in paths.items()}


def _unexcused(failed: list[list[str]], excused: dict[str, Excused]) -> list[tuple[str, str]]:
    return sorted((check, resource) for check, resource in failed
                  if not (check in excused and fnmatch.fnmatch(resource, excused[check].resources)))  # fmt: skip


@pytest.mark.parametrize("name", SCANNED)
def test_checkov_fails_no_check_but_the_named_exceptions(checkov, name):
    result = checkov[name]
    assert not result["parsing_errors"] and len(result["passed"]) > 190, result["parsing_errors"]
    unexcused = _unexcused(result["failed"], EXCEPTIONS[name])
    assert not unexcused, f"{name} fails checkov checks: " + "\n".join(f"{c} {r}" for c, r in unexcused)


@pytest.mark.parametrize("name", SCANNED)
def test_every_exception_still_excuses_a_failed_check(checkov, name):
    failed = {check for check, _ in checkov[name]["failed"]}
    assert set(EXCEPTIONS[name]) <= failed, f"no longer failing, drop them: {sorted(set(EXCEPTIONS[name]) - failed)}"


def test_production_has_at_most_five_exceptions_each_with_its_reason_in_one_line():
    assert len(EXCEPTIONS["prod"]) <= 5
    for exceptions in (*EXCEPTIONS.values(), DOCKERFILE_EXCEPTIONS):
        for check, excused in exceptions.items():
            assert re.fullmatch(r"CKV2?_(AWS|DOCKER)_\d+", check) and 40 < len(excused.reason) and "\n" not in excused.reason


@pytest.mark.parametrize("label", BROKEN)
def test_the_plan_is_faithful_a_broken_input_fails_the_matching_check(checkov, label):
    _, check, resource = BROKEN[label]
    assert [check, resource] in checkov["prod"]["passed"]
    assert [check, resource] in checkov[label]["failed"], f"{label}: {check} did not fail on {resource}"


def test_the_dockerfile_passes_checkov(checkov):
    result = checkov["Dockerfile"]
    assert not result["parsing_errors"] and result["passed"]
    assert not _unexcused(result["failed"], DOCKERFILE_EXCEPTIONS)
    assert set(DOCKERFILE_EXCEPTIONS) <= {check for check, _ in result["failed"]}


@pytest.mark.parametrize("pulumi_type, terraform_type", [
    ("aws:ecs/taskDefinition:TaskDefinition", "aws_ecs_task_definition"), ("aws:rds/instance:Instance", "aws_db_instance"),
    ("aws:rds/parameterGroup:ParameterGroup", "aws_db_parameter_group"), ("aws:lb/loadBalancer:LoadBalancer", "aws_lb"),
    ("aws:lb/listener:Listener", "aws_lb_listener"), ("aws:ec2/securityGroup:SecurityGroup", "aws_security_group"),
    ("aws:ec2/flowLog:FlowLog", "aws_flow_log"), ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws_s3_bucket_public_access_block"), ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws_vpc_security_group_ingress_rule"), ("aws:wafv2/webAclAssociation:WebAclAssociation", "aws_wafv2_web_acl_association"),
    ("random:index/randomPassword:RandomPassword", None),
])  # fmt: skip
def test_pulumi_types_are_the_terraform_types_they_bridge(pulumi_type, terraform_type):
    assert tfplan.tf_type(pulumi_type) == terraform_type


def test_an_input_that_is_another_resources_output_is_a_reference():
    plan = tfplan.plan(recorded("prod"))
    configured = {r["address"]: r["expressions"] for r in plan["configuration"]["root_module"]["resources"]}
    values = {r["address"]: r["values"] for r in plan["planned_values"]["root_module"]["resources"]}
    association = next(a for a in configured if a.startswith("aws_wafv2_web_acl_association."))
    assert configured[association]["resource_arn"]["references"] == ["aws_lb.dagster-prod-ui-alb.arn", "aws_lb.dagster-prod-ui-alb"]
    assert "resource_arn" not in values[association]  # unknown before the apply, as in a first plan
    https = configured["aws_lb_listener.dagster-prod-ui-https"]["default_action"][0]["target_group_arn"]["references"]
    assert https[1].startswith("aws_lb_target_group.")
    # A value that only embeds an output (a policy naming the bucket's ARN) stays known and checkable.
    policy = values["aws_s3_bucket_policy.dagster-prod-bucket-tls-only"]["policy"]
    assert json.loads(policy)["Statement"][0]["Effect"] == "Deny"


@pytest.mark.parametrize("name", SCANNED)
def test_the_plan_holds_every_aws_resource_of_the_stack(name):
    plan = tfplan.plan(recorded(name))
    addresses = [r["address"] for r in plan["planned_values"]["root_module"]["resources"]]
    assert len(addresses) == len(set(addresses)) == sum(tfplan.tf_type(r.typ) is not None for r in recorded(name).resources)
    assert {r.typ.split(":")[0] for r in tfplan.unmapped(recorded(name))} <= {"random", "docker-build", "pulumi-python"}


def test_the_security_page_gives_the_checkov_result_of_each_stack(checkov):
    section = (REPO_ROOT / "docs" / "security.md").read_text()
    for name in SCANNED:
        result = checkov[name]
        stack = f"`Pulumi.{name}.yaml`" if name in STACKS else f"`Pulumi.prod.yaml` + `{VARIANTS[name][0]}`"
        row = f"| {stack} | {len(result['passed'])} | {len(result['failed'])} | {len(EXCEPTIONS[name])} |"
        assert row in section, f"docs/security.md: expected the row {row}"
    for check in {*EXCEPTIONS["dev"], *DOCKERFILE_EXCEPTIONS}:
        assert check in section, f"docs/security.md: {check} is excepted but not listed"


# --- our own rules: what checkov does not check ---------------------------------------------------------------
RULES: dict[str, Callable] = {}


def rule(rule_id: str):
    def register(fn):
        RULES[rule_id] = fn
        return fn

    return register


@pytest.fixture(scope="module", params=STACKS)
def profile(request):
    return request.param, load_stack_file(REPO_ROOT / f"Pulumi.{request.param}.yaml"), recorded(request.param)


def one(stack: StackResult, typ: str):
    found = stack.of_type(typ)
    assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
    return found[0]


def containers(stack: StackResult):
    for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        for c in json.loads(t.inputs["containerDefinitions"]):
            yield t, c


def policies(stack: StackResult):
    for p in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        yield p, json.loads(p.inputs["policy"])


def statements(document: dict):
    for s in document["Statement"]:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        yield s, actions, resources


def stack_key(stack: StackResult) -> str:
    return one(stack, "aws:kms/key:Key").state["arn"]


# --- S3 ---------------------------------------------------------------------------------------------------
@rule("FSBP-S3.5-tls-only-bucket-policies")
def _(name, cfg, stack):
    for p in stack.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        deny = json.loads(p.inputs["policy"])["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, p.urn
        assert deny["Action"] == "s3:*" and deny["Principal"] == "*" and len(deny["Resource"]) == 2, p.urn


# eu-west-1 served load balancers before August 2022: its access logs are written by Elastic Load Balancing's
# account for the Region, not the log-delivery service principal (ALB User Guide, "Enable access logs for your
# Application Load Balancer", step 2, "Europe (Ireland) - 156460612806"; docs/facts.md).
EU_WEST_1_ELB_ACCOUNT = {"AWS": "arn:aws:iam::156460612806:root"}


@rule("S3-log-bucket-admits-only-the-two-log-deliveries")
def _(name, cfg, stack):
    policy = json.loads(stack.one("aws:s3/bucketPolicy:BucketPolicy", "-access-logs-policy").inputs["policy"])
    allowed = {json.dumps(s["Principal"], sort_keys=True): s for s in policy["Statement"] if s["Effect"] == "Allow"}
    elb, s3 = json.dumps(EU_WEST_1_ELB_ACCOUNT, sort_keys=True), json.dumps({"Service": buckets.S3_LOG_DELIVERY})
    # The load balancer's delivery only where there is a load balancer (not with ui.access ssm).
    balanced = cfg.ui.access.load_balanced
    assert set(allowed) == {*([elb] if balanced else []), s3}
    assert all(s["Action"] == "s3:PutObject" for s in allowed.values())
    data = stack.one("aws:s3/bucket:Bucket", "-bucket-data").state["arn"]
    assert allowed[s3]["Condition"]["ArnLike"] == {"aws:SourceArn": data}
    if balanced:
        assert allowed[elb]["Resource"].endswith("/alb/AWSLogs/123456789012/*")


def test_a_region_opened_after_august_2022_takes_the_log_delivery_service():
    policy = buckets.log_bucket_policy("arn:aws:s3:::logs", "arn:aws:s3:::data", "123456789012", "eu-central-2")
    (elb,) = [s for s in policy["Statement"] if s.get("Sid") == "LoadBalancerAccessLogs"]
    assert elb["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}


@rule("AWSGuard-s3-buckets-kept-in-production")
def _(name, cfg, stack):
    for b in stack.of_type("aws:s3/bucket:Bucket"):
        assert b.inputs["forceDestroy"] is (name == "dev") and b.options.protect is (name == "prod"), b.urn


@rule("AWSGuard-prod-database-key-and-load-balancer-cannot-be-deleted")
def _(name, cfg, stack):
    # prod: RDS deletion protection and Pulumi's protect on the database; protect on the stack's key (a deleted
    # key makes every secret, log and step output it encrypted unreadable); ELB deletion protection on the UI's
    # load balancer (its DNS name is the UI's address). dev: none of them, so it can be torn down.
    prod = name == "prod"
    database = one(stack, "aws:rds/instance:Instance")
    assert database.inputs["deletionProtection"] is prod and database.options.protect is prod
    assert one(stack, "aws:kms/key:Key").options.protect is prod
    balancers = stack.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert [b.inputs["enableDeletionProtection"] for b in balancers] == ([True] if prod else [])


# --- RDS --------------------------------------------------------------------------------------------------
def db(stack):
    return one(stack, "aws:rds/instance:Instance").inputs


@rule("FSBP-RDS.11-backups-at-least-7-days")  # CKV_AWS_133 asks for any retention
def _(name, cfg, stack):
    assert db(stack)["backupRetentionPeriod"] >= 7


@rule("AWSGuard-rds-final-snapshot")
def _(name, cfg, stack):
    d = db(stack)  # every stack: a teardown of prod begins by turning protection off
    assert d["skipFinalSnapshot"] is False and d["finalSnapshotIdentifier"]


# aws_db_instance's ForceNew arguments (hashicorp/terraform-provider-aws internal/service/rds/instance.go, the
# schema pulumi-aws's rds.Instance bridges): a change to any of them replaces the instance.
RDS_INSTANCE_FORCE_NEW = ("availabilityZone", "characterSetName", "customIamInstanceProfile", "dbName", "engine",
                          "identifier", "identifierPrefix", "kmsKeyId", "ncharCharacterSetName", "restoreToPointInTime",
                          "snapshotIdentifier", "storageEncrypted", "timezone", "username")  # fmt: skip


@rule("RDS-final-snapshot-name-unique-per-instance")
def _(name, cfg, stack):
    # A replaced instance is deleted with a final snapshot, and so is its successor later: a suffix fixed for the
    # stack's life would name both the same (DBSnapshotAlreadyExists). The suffix is renewed by whatever replaces
    # the instance: every ForceNew argument it sets, and its logical name.
    instance = one(stack, "aws:rds/instance:Instance")
    suffix = stack.one("random:index/randomString:RandomString", "-db-snapshot-suffix")
    assert instance.inputs["finalSnapshotIdentifier"].endswith("-" + suffix.state["result"])
    keepers = suffix.inputs.get("keepers") or {}
    replacing = {re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), k): instance.inputs[k]
                 for k in RDS_INSTANCE_FORCE_NEW if k in instance.inputs}  # fmt: skip
    assert replacing and {k: keepers.get(k) for k in replacing} == {k: str(v) for k, v in replacing.items()}, keepers
    assert keepers["instance"] == instance.name


@rule("AWSGuard-rds-password-in-secrets-manager")
def _(name, cfg, stack):
    assert is_secret(db(stack)["password"])  # generated, encrypted in Pulumi's state
    version = stack.one("aws:secretsmanager/secretVersion:SecretVersion", "-db-credentials").inputs["secretString"]
    assert is_secret(version) and set(json.loads(reveal(version))) == {"username", "password", "celery_backend_url"}


# --- Amazon MQ --------------------------------------------------------------------------------------------
def mq(stack):
    return one(stack, "aws:mq/broker:Broker").inputs


@rule("FSBP-MQ.6-cluster-mode-prod")
def _(name, cfg, stack):
    assert (mq(stack)["deploymentMode"] == "CLUSTER_MULTI_AZ") is (name == "prod")


@rule("MQ-private-subnets-and-own-sg")
def _(name, cfg, stack):
    broker = mq(stack)
    private = {s.state["id"] if "id" in s.state else f"{s.name}-id" for s in stack.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}
    assert set(broker["subnetIds"]) <= private
    assert broker["securityGroups"] == [next(g.state["id"] for g in stack.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-broker"))]


# --- ECS --------------------------------------------------------------------------------------------------
@rule("FSBP-ECS.8-secrets-not-in-environment")
def _(name, cfg, stack):
    for t, c in containers(stack):
        for e in c["environment"]:
            assert not any(w in e["name"] for w in ("PASSWORD", "SECRET", "BROKER_URL", "TOKEN")), (t.urn, e)
        assert {s["name"] for s in c["secrets"]} >= {"DAGSTER_PG_PASSWORD", "DAGSTER_CELERY_BROKER_URL"}


@rule("FSBP-ECS.9-awslogs-for-every-container")
def _(name, cfg, stack):
    for t, c in containers(stack):
        assert c["logConfiguration"]["logDriver"] == "awslogs", t.urn


@rule("FSBP-ECS.5-read-only-root-writable-volumes-only-where-processes-write")
def _(name, cfg, stack):
    # A writable root only where ECS Exec reaches, and only with it on (taskdef.EXEC_ROLES: its SSM agent writes
    # there); every other container keeps a read-only root.
    exec_targets = {s.name for s in process_specs(cfg) if s.role in taskdef.EXEC_ROLES} if cfg.operations.ecs_exec else set()
    for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        mounts = []
        for c in json.loads(t.inputs["containerDefinitions"]):
            assert c["readonlyRootFilesystem"] is (c["name"] not in exec_targets) and not c.get("volumesFrom"), t.urn
            assert sorted(m["containerPath"] for m in c["mountPoints"]) == sorted(contract.WRITABLE_DIRS.values()), t.urn
            mounts += [m["sourceVolume"] for m in c["mountPoints"]]
        # Each container's own volumes, on the task's ephemeral storage (no host path, no EFS, no Docker volume).
        assert [v for v in t.inputs["volumes"]] == [{"name": m} for m in mounts] and len(set(mounts)) == len(mounts), t.urn


@rule("ECS-non-root-user")
def _(name, cfg, stack):
    for t, c in containers(stack):
        assert c["user"] not in ("root", "0") and c["user"].split(":")[0] != "0", t.urn


@rule("FSBP-ECS.3-awsvpc-no-host-namespaces")
def _(name, cfg, stack):
    for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        assert t.inputs["networkMode"] == "awsvpc" and "pidMode" not in t.inputs and "ipcMode" not in t.inputs, t.urn


@rule("ECS-workers-cannot-launch-runs")
def _(name, cfg, stack):
    roles = {t.inputs["family"]: t.inputs["taskRoleArn"] for t in stack.of_type("aws:ecs/taskDefinition:TaskDefinition")}
    workers = {arn for fam, arn in roles.items() if "-worker-" in fam}
    runs = {arn for fam, arn in roles.items() if fam.endswith("-run")}  # their own role: they may wake workers
    control = {arn for fam, arn in roles.items() if fam.endswith(("-webserver", "-daemon"))}
    assert (len(workers), len(runs), len(control)) == (1, 1 if cfg.runs.mode == "task" else 0, 1), roles
    assert len(workers | runs | control) == len(workers) + len(runs) + len(control), roles


@rule("ECS-circuit-breaker-rollback")
def _(name, cfg, stack):
    for s in stack.of_type("aws:ecs/service:Service"):
        assert s.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}, s.urn


# --- Load balancer and network ----------------------------------------------------------------------------
@rule("UI-internet-facing-only-when-chosen-never-open-to-the-world")
def _(name, cfg, stack):
    # dev: no load balancer (ui.access ssm); prod: an allow-list. Neither opens anything to 0.0.0.0/0.
    balancers = stack.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert [b.inputs["internal"] for b in balancers] == ([] if cfg.ui.access == "ssm" else [cfg.ui.access == "private"])
    for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert r.inputs.get("cidrIpv4") != "0.0.0.0/0", r.urn


@rule("UI-https-only-on-the-internet")
def _(name, cfg, stack):
    listeners = {r.inputs["port"]: r.inputs for r in stack.of_type("aws:lb/listener:Listener")}
    if cfg.ui.access.internet_facing:
        assert listeners[443]["protocol"] == "HTTPS" and listeners[80]["defaultActions"][0]["type"] == "redirect"
    elif cfg.ui.access == "private":
        assert set(listeners) == {80}  # internal: reached inside the VPC (VPN, SSM port forwarding)
    else:
        assert not listeners  # ssm: no load balancer; the SSM session is encrypted end to end


def open_ingress_but_the_ui_listeners(stack: StackResult) -> int:
    """Assert that every ingress rule open to the world is a UI listener's port on the load balancer's group;
    return how many there are (the example stacks have none: test_world_open_ingress_* gives it some)."""
    opened = 0
    lb_groups = {g.state["id"] for g in stack.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name.endswith("-lb")}
    listeners = {r.inputs["port"] for r in stack.of_type("aws:lb/listener:Listener")}  # the UI's, the viewers'
    for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        if r.inputs.get("cidrIpv4") == "0.0.0.0/0" or r.inputs.get("cidrIpv6") == "::/0":
            opened += 1
            ports = (r.inputs["fromPort"], r.inputs["toPort"])
            assert ports[0] == ports[1] in listeners and r.inputs["securityGroupId"] in lb_groups, r.urn
    return opened


@rule("FSBP-EC2.19_EC2.18-no-open-ingress-but-the-ui-listeners")  # checkov reads `protocol`, not `ip_protocol`
def _(name, cfg, stack):
    open_ingress_but_the_ui_listeners(stack)


# --- IAM --------------------------------------------------------------------------------------------------
@rule("FSBP-IAM.1-no-wildcard-in-actions")  # stricter than CKV_AWS_63 ('*' alone): no 's3:*' either
def _(name, cfg, stack):
    for p, doc in policies(stack):
        for _s, actions, _r in statements(doc):
            assert all("*" not in a for a in actions), p.urn


@rule("IAM-passrole-scoped-to-stack-roles-and-ecs")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        for s, actions, resources in statements(doc):
            if "iam:PassRole" in actions:
                assert all(r.startswith("arn:aws:iam::") and ":role/" in r for r in resources), p.urn
                assert s["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


@rule("IAM-s3-scoped-to-the-stack-bucket")
def _(name, cfg, stack):
    bucket_arn = stack.one("aws:s3/bucket:Bucket", "-bucket-data").state["arn"]
    for p, doc in policies(stack):
        for _s, actions, resources in statements(doc):
            if any(a.startswith("s3:") for a in actions):
                assert all(r in (bucket_arn, f"{bucket_arn}/*") for r in resources), p.urn


@rule("IAM-secrets-scoped-to-the-stack-secrets")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        for _s, actions, resources in statements(doc):
            if "secretsmanager:GetSecretValue" in actions:
                secrets = {r.state["arn"] for r in stack.of_type("aws:secretsmanager/secret:Secret")}
                assert set(resources) == secrets, p.urn


@rule("IAM-kms-only-the-stack-key-to-decrypt-and-make-data-keys")
def _(name, cfg, stack):
    used = set()
    for p, doc in policies(stack):
        for _s, actions, resources in statements(doc):
            if any(a.startswith("kms:") for a in actions):
                assert resources == [stack_key(stack)] and set(actions) <= {"kms:Decrypt", "kms:GenerateDataKey"}, p.urn
                used.add(p.name.rsplit("-", 1)[-1])
    assert used == {"execution", "worker", "control", *(("run",) if cfg.runs.mode == "task" else ())}


@rule("IAM-task-protection-only-for-own-cluster-tasks")
def _(name, cfg, stack):
    cluster = one(stack, "aws:ecs/cluster:Cluster").state["arn"]
    worker = next(doc for p, doc in policies(stack) if p.name.endswith("-worker"))
    (s,) = [s for s in worker["Statement"] if "ecs:UpdateTaskProtection" in s["Action"]]
    assert set(s["Action"]) == {"ecs:UpdateTaskProtection", "ecs:GetTaskProtection"}
    assert s["Resource"] == cluster.replace(":cluster/", ":task/") + "/*"


@rule("IAM-parliament-no-findings")
def _(name, cfg, stack):
    for p, doc in policies(stack):
        findings = parliament.analyze_policy_string(json.dumps(doc)).findings
        assert not findings, (p.urn, [(f.issue, f.detail) for f in findings])


# --- The stack's key, ECR, secrets -------------------------------------------------------------------------
@rule("KMS-one-customer-key-for-secrets-logs-topic-repository-bucket-insights")
def _(name, cfg, stack):
    key = stack_key(stack)  # checkov asks for a customer key on each; this is the stack's own, on every one
    assert one(stack, "aws:kms/key:Key").inputs["enableKeyRotation"] is True
    uses = [r.inputs.get("kmsKeyId") for r in stack.of_type("aws:secretsmanager/secret:Secret")]
    uses += [r.inputs.get("kmsKeyId") for r in stack.of_type("aws:cloudwatch/logGroup:LogGroup")]
    uses += [one(stack, "aws:sns/topic:Topic").inputs["kmsMasterKeyId"], db(stack)["performanceInsightsKmsKeyId"]]
    uses += [one(stack, "aws:ecr/repository:Repository").inputs["encryptionConfigurations"][0]["kmsKey"]]
    sse = stack.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "-bucket-encryption")
    (default,) = sse.inputs["rules"]
    uses.append(default["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"])
    assert uses and set(uses) == {key} and default["bucketKeyEnabled"] is True


# What the key policy must say, written out here (not taken from infra/aws/iam.py): each service that uses the key as
# itself, pinned to this account's own resources. CloudWatch Logs: its encryption context (CloudWatch Logs User
# Guide, "Encrypt log data in CloudWatch Logs using AWS KMS"); alarms and event rules: aws:SourceAccount and
# aws:SourceArn (CloudWatch User Guide, "Confused deputy prevention"; EventBridge User Guide, "Using IAM policy
# conditions in Amazon EventBridge").
KEY_POLICY_SERVICES = {
    "logs.eu-west-1.amazonaws.com": {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:*"}},
    "cloudwatch.amazonaws.com": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                 "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*"}},
    "events.amazonaws.com": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                             "ArnLike": {"aws:SourceArn": "arn:aws:events:eu-west-1:123456789012:rule/*"}},
}  # fmt: skip


@rule("KMS-key-policy-admits-the-account-and-each-service-only-for-this-accounts-resources")
def _(name, cfg, stack):
    policy = json.loads(one(stack, "aws:kms/key:Key").inputs["policy"])
    services = {}
    for s in policy["Statement"]:
        assert s["Effect"] == "Allow" and s["Resource"] == "*", s
        if "AWS" in s["Principal"]:  # the account administers the key; IAM grants its use
            assert s["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"} and "Condition" not in s, s
            continue
        principals = s["Principal"]["Service"]
        services |= {p: s for p in (principals if isinstance(principals, list) else [principals])}
    assert {k: s.get("Condition") for k, s in services.items()} == KEY_POLICY_SERVICES
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):  # publish to the topic, nothing more
        assert set(services[service]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


@rule("FSBP-ECR.3-lifecycle-policy")
def _(name, cfg, stack):
    (r,) = json.loads(one(stack, "aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])["rules"]
    assert r["action"]["type"] == "expire" and r["selection"]["countNumber"] > 0


@rule("SECRETS-no-value-outside-secret-resources")
def _(name, cfg, stack):
    holders = {"aws:secretsmanager/secretVersion:SecretVersion", "aws:mq/broker:Broker", "aws:rds/instance:Instance",
               "docker-build:index:Image"}  # fmt: skip
    for r in stack.resources:
        if r.typ not in holders:
            text = json.dumps(r.inputs, default=str)
            assert MOCK_PASSWORD not in text and MOCK_ECR_TOKEN not in text, r.urn
    assert MOCK_PASSWORD not in json.dumps(stack.outputs)


@rule("SECRETS-generated-password-rules")
def _(name, cfg, stack):
    passwords = stack.of_type("random:index/randomPassword:RandomPassword")
    assert len(passwords) == 2  # broker, database
    for p in passwords:
        # Amazon MQ refuses commas; RDS refuses '/', '@', '"' and spaces (docs/facts.md; RDS CreateDBInstance).
        assert p.inputs["length"] >= 32 and not set(p.inputs["overrideSpecial"]) & set(',/@" '), p.urn


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule(rule_id, profile):
    name, cfg, stack = profile
    RULES[rule_id](name, cfg, stack)


def test_authenticated_ui_signs_users_in_before_forwarding():
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    oidc = {"issuer": "https://idp.example.com", "authorizationEndpoint": "https://idp.example.com/auth",
            "tokenEndpoint": "https://idp.example.com/token", "userInfoEndpoint": "https://idp.example.com/userinfo",
            "clientId": "dagster"}  # fmt: skip
    stack = run_stack(config={"queues": [{"name": "dagster"}], "oidcClientSecret": "idp-secret-never-leak",
                              "ui": {"access": "oidc", "certificateArn": cert, "oidc": oidc}})  # fmt: skip
    https = next(l for l in stack.of_type("aws:lb/listener:Listener") if l.inputs["port"] == 443).inputs
    assert is_secret(https["defaultActions"])  # the client secret is encrypted in Pulumi's state
    assert [a["type"] for a in reveal(https["defaultActions"])] == ["authenticate-oidc", "forward"]
    for r in stack.resources:
        if r.typ != "aws:lb/listener:Listener":
            assert "idp-secret-never-leak" not in json.dumps(r.inputs, default=str), r.urn
    cognito = {"userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc",
               "userPoolClientId": "client", "userPoolDomain": "dagster-login"}  # fmt: skip
    stack = run_stack(config={"queues": [{"name": "dagster"}], "ui": {"access": "cognito", "certificateArn": cert, "cognito": cognito}})
    https = next(l for l in stack.of_type("aws:lb/listener:Listener") if l.inputs["port"] == 443).inputs
    assert [a["type"] for a in https["defaultActions"]] == ["authenticate-cognito", "forward"]


def test_an_existing_key_replaces_the_stacks_own():
    arn = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    stack = run_stack(config={"queues": [{"name": "dagster"}], "security": {"kmsKeyArn": arn}})
    assert not stack.of_type("aws:kms/key:Key") and not stack.of_type("aws:kms/alias:Alias")
    assert one(stack, "aws:sns/topic:Topic").inputs["kmsMasterKeyId"] == arn
    assert {r.inputs["kmsKeyId"] for r in stack.of_type("aws:secretsmanager/secret:Secret")} == {arn}


def test_plain_http_on_the_internet_and_no_firewall_only_when_the_config_says_so():
    stack = run_stack(config={"queues": [{"name": "dagster"}], "ui": {"access": "public", "allowPlainHttp": True},
                              "security": {"waf": False, "accessLogs": False}})  # fmt: skip
    assert [r.inputs["protocol"] for r in stack.of_type("aws:lb/listener:Listener")] == ["HTTP"]
    assert not [r for r in stack.resources if r.typ.startswith("aws:wafv2/")]
    assert len(stack.of_type("aws:s3/bucket:Bucket")) == 1 and not stack.of_type("aws:s3/bucketLogging:BucketLogging")
    assert "accessLogs" not in one(stack, "aws:lb/loadBalancer:LoadBalancer").inputs


def test_world_open_ingress_only_on_the_ui_listeners_of_a_public_ui():
    # A public UI opens 80 and 443 to the world, its viewers' listener 8443: the rule's loop runs, and a world-open
    # database port fails it.
    stack = run_stack(config={"queues": [{"name": "dagster"}], "ui": {"access": "public", "certificateArn":
                              "arn:aws:acm:eu-west-1:123456789012:certificate/abc", "viewers": {"allowedCidrs": ["0.0.0.0/0"]}}})  # fmt: skip
    assert open_ingress_but_the_ui_listeners(stack) == 3
    rules = stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    database = next(r for r in rules if r.name.endswith("-database-from-tasks"))
    opened = dataclasses.replace(database, inputs={**database.inputs, "cidrIpv4": "0.0.0.0/0"})
    broken = StackResult([opened if r is database else r for r in stack.resources], stack.outputs)
    with pytest.raises(AssertionError, match="database-from-tasks"):
        open_ingress_but_the_ui_listeners(broken)
    listener = next(r for r in rules if "-lb-443-" in r.name)
    on_tasks = dataclasses.replace(listener, inputs={**listener.inputs, "securityGroupId": database.inputs["securityGroupId"]})
    broken = StackResult([on_tasks if r is listener else r for r in stack.resources], stack.outputs)
    with pytest.raises(AssertionError, match="lb-443"):
        open_ingress_but_the_ui_listeners(broken)


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_user_is_the_image_user():
    assert "USER 10001:10001" in DOCKERFILE.read_text()


def test_the_image_declares_the_writable_dirs_as_volumes_owned_by_its_user():
    # ECS copies a VOLUME's content and ownership into the bind mount of the same path (ECS guide, "Use bind
    # mounts"): dagster.yaml reaches the writable DAGSTER_HOME, and user 10001 may write both.
    text = DOCKERFILE.read_text()
    (volumes,) = re.findall(r"^VOLUME (\[.*\])$", text, re.M)
    assert json.loads(volumes) == list(contract.WRITABLE_DIRS.values())
    assert re.search(r'chown 10001:10001 "\$\{DAGSTER_HOME\}" /tmp', text)


def test_secrets_under_a_key_of_their_own_are_decrypted_by_the_execution_role_through_secrets_manager_only():
    """A user secret encrypted with a customer key other than the stack's: ECS's agent reads it with the execution
    role, which needs kms:Decrypt on that key (ECS guide, "Amazon ECS task execution IAM role"); given only when
    Secrets Manager of the stack's Region asks, and to no task role."""
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:partner-api-AbCdEf"
    own_key = "arn:aws:kms:eu-west-1:123456789012:key/9f8e7d6c-4e5f-6789-abcd-ef0123456789"
    stack = run_stack(config={"queues": [{"name": "dagster"}, {"name": "etl", "access": {
        "secrets": {"PARTNER_TOKEN": secret}, "secretKmsKeys": [own_key]}}]})  # fmt: skip
    grants = [(p.name, s) for p, doc in policies(stack) for s, _, resources in statements(doc) if own_key in resources]
    ((role, statement),) = grants
    assert role.endswith("-execution") and statement["Action"] == "kms:Decrypt" and statement["Resource"] == [own_key]
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    findings = parliament.analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": [statement]})).findings
    assert not findings, [(f.issue, f.detail) for f in findings]
