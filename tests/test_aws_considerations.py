"""What AWS documents about using its features together -- each feature's "Considerations" and "Limitations" --
checked over what every stack declares: the example stacks and the maximal ones (tests/test_aws_models.py).

Each feature is checked alone elsewhere (botocore's models, checkov, our own rules); these rows are the
constraints between features: ECS Exec and a read-only root, Fargate Spot and the platform, a capacity provider
strategy and the cluster's providers, Performance Insights and its key, ALB access logs and the bucket's
encryption, WAF logging and the log group's name, an Amazon MQ deployment mode and its subnets. A row is data
(the feature, what AWS says, where) plus the subjects it applies to and a check of one subject. Add a row per
documented constraint; docs/aws-considerations.md lists them (a test keeps the two in step).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from infra.specs import contract
from infra.aws.components.cluster import FARGATE_SPOT
from infra.tools.testing import REGION, Resource, StackResult, reveal, run_stack
from tests.conftest import REPO_ROOT
from tests.test_aws_models import STACKS as MODEL_STACKS
from tests.test_aws_models import declared

SERVICE, TASKDEF = "aws:ecs/service:Service", "aws:ecs/taskDefinition:TaskDefinition"
ECS_EXEC = "ECS guide, Monitor Amazon ECS containers with ECS Exec, Considerations: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec.html"  # fmt: skip
FARGATE_PROVIDERS = "ECS guide, Amazon ECS clusters for Fargate (AWS Fargate capacity providers): https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html"  # fmt: skip
# The containers the README sends operators into with ECS Exec: the webserver (the UI's port forwarding, the
# broker console) and a queue's worker (`dagster-celery-aws worker list`). docs/deployment.md, "Reach the UI"; docs/operations.md.
DOCUMENTED_EXEC_TARGETS = re.compile(r"webserver|worker-.+")


@dataclass(frozen=True)
class Consideration:
    feature: str
    says: str  # what AWS documents, in one line
    source: str  # the page (title: URL) or API reference member
    subjects: Callable[[StackResult], Iterable[Any]]  # what in a stack the row applies to
    check: Callable[[StackResult, Any], str | None]  # a problem with one subject, or None


# --- what a stack declares, by relation ---------------------------------------------------------------------
def containers(task: Resource) -> list[dict]:
    return json.loads(reveal(task.inputs["containerDefinitions"]))


def task_of(stack: StackResult, service: Resource) -> Resource:
    return next(t for t in stack.of_type(TASKDEF) if t.state["arn"] == service.inputs["taskDefinition"])


def exec_services(stack: StackResult) -> list[Resource]:
    return [s for s in stack.of_type(SERVICE) if s.inputs.get("enableExecuteCommand")]


def exec_targets(stack: StackResult) -> list[tuple[Resource, dict]]:
    return [(s, c) for s in exec_services(stack) for c in containers(task_of(stack, s))
            if DOCUMENTED_EXEC_TARGETS.fullmatch(c["name"])]  # fmt: skip


def role_actions(stack: StackResult, role_arn: str) -> set[str]:
    role = next(r for r in stack.of_type("aws:iam/role:Role") if r.state["arn"] == role_arn)
    policies = [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == f"{role.name}-id"]
    statements = [s for p in policies for s in json.loads(reveal(p.inputs["policy"]))["Statement"] if s["Effect"] == "Allow"]
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def strategies(stack: StackResult) -> list[tuple[Resource, list[dict]]]:
    return [(s, s.inputs["capacityProviderStrategies"]) for s in stack.of_type(SERVICE) if s.inputs.get("capacityProviderStrategies")]


def own_key_policy(stack: StackResult) -> dict | None:
    keys = stack.of_type("aws:kms/key:Key")
    return json.loads(reveal(keys[0].inputs["policy"])) if keys else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


# --- the checks -----------------------------------------------------------------------------------------------
def writable_root(stack, target) -> str | None:
    service, c = target
    return f"{service.inputs['name']}/{c['name']}: read-only root" if c.get("readonlyRootFilesystem") else None


def init_process(stack, target) -> str | None:
    service, c = target
    ok = c.get("linuxParameters", {}).get("initProcessEnabled") is True
    return None if ok else f"{service.inputs['name']}/{c['name']}: no initProcessEnabled"


def exec_channels(stack, service) -> str | None:
    needed = {"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
              "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}  # fmt: skip
    missing = needed - role_actions(stack, task_of(stack, service).inputs["taskRoleArn"])
    return f"{service.inputs['name']}: task role lacks {sorted(missing)}" if missing else None


def exec_platform(stack, service) -> str | None:
    version = service.inputs.get("platformVersion", "LATEST")
    ok = version == "LATEST" or _version(version) >= (1, 4, 0)
    return None if ok else f"{service.inputs['name']}: platform version {version} below 1.4.0"


def spot_on_linux(stack, pair) -> str | None:
    service, strategy = pair
    if FARGATE_SPOT not in {i["capacityProvider"] for i in strategy}:
        return None
    family = task_of(stack, service).inputs["runtimePlatform"]["operatingSystemFamily"]
    return None if family == "LINUX" else f"{service.inputs['name']}: Fargate Spot with {family}"


def spot_stop_timeout(stack, container) -> str | None:
    timeout = container.get("stopTimeout", 30)
    return None if timeout <= 120 else f"{container['name']}: stopTimeout {timeout} above Fargate's 120"


def providers_on_the_cluster(stack, pair) -> str | None:
    service, strategy = pair
    (association,) = stack.of_type("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    missing = {i["capacityProvider"] for i in strategy} - set(association.inputs["capacityProviders"])
    if missing:
        return f"{service.inputs['name']}: {sorted(missing)} not associated with the cluster"
    if association.urn not in service.options.dependencies:
        return f"{service.inputs['name']}: may be created before its providers are associated"
    return None


def strategy_shape(stack, pair) -> str | None:
    service, strategy = pair
    if "launchType" in service.inputs:
        return f"{service.inputs['name']}: a launch type and a capacity provider strategy"
    if sum(1 for i in strategy if i.get("base")) > 1 or not any(i.get("weight", 0) > 0 for i in strategy):
        return f"{service.inputs['name']}: base on more than one provider, or no weight above 0: {strategy}"
    return None


def mounts_declared(stack, task) -> str | None:
    volumes = {v["name"] for v in task.inputs.get("volumes", [])}
    undeclared = {m["sourceVolume"] for c in containers(task) for m in c.get("mountPoints", [])} - volumes
    return f"{task.name}: mount points of undeclared volumes {sorted(undeclared)}" if undeclared else None


def read_only_root_writes_to_volumes(stack, pair) -> str | None:
    task, c = pair
    paths = {m["containerPath"] for m in c.get("mountPoints", []) if not m.get("readOnly")}
    missing = set(contract.WRITABLE_DIRS.values()) - paths
    return f"{task.name}/{c['name']}: read-only root and no writable {sorted(missing)}" if missing else None


def performance_insights(stack, db) -> str | None:
    i = db.inputs
    days = i.get("performanceInsightsRetentionPeriod", 7)
    if days not in {7, 731, *(31 * m for m in range(1, 24))}:
        return f"{db.name}: Performance Insights retention {days} days is not 7, a multiple of 31 up to 713, or 731"
    return None if i.get("performanceInsightsKmsKeyId") else f"{db.name}: Performance Insights on the AWS managed key"


def enhanced_monitoring(stack, db) -> str | None:
    interval = db.inputs.get("monitoringInterval", 0)
    if interval not in (0, 1, 5, 10, 15, 30, 60):
        return f"{db.name}: monitoring interval {interval}"
    if interval and not db.inputs.get("monitoringRoleArn"):
        return f"{db.name}: Enhanced Monitoring every {interval} s without a monitoring role"
    if interval:
        role = next(r for r in stack.of_type("aws:iam/role:Role") if r.state["arn"] == db.inputs["monitoringRoleArn"])
        trusted = {s["Principal"].get("Service") for s in json.loads(reveal(role.inputs["assumeRolePolicy"]))["Statement"]}
        if "monitoring.rds.amazonaws.com" not in trusted:
            return f"{db.name}: the monitoring role does not trust monitoring.rds.amazonaws.com"
    return None


def logs_may_use_the_key(stack, group) -> str | None:
    policy = own_key_policy(stack)
    logs = [s for s in policy["Statement"] if s.get("Principal", {}).get("Service") == f"logs.{REGION}.amazonaws.com"]
    actions = {a for s in logs for a in s["Action"]}
    needed = {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*", "kms:Describe*"}
    return None if needed <= actions else f"{group.name}: the key policy lets CloudWatch Logs do only {sorted(actions)}"


def alb_logs_on_sse_s3(stack, lb) -> str | None:
    bucket = next(b for b in stack.of_type("aws:s3/bucket:Bucket") if b.state["bucket"] == lb.inputs["accessLogs"]["bucket"])
    sse = [r for r in stack.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
           if r.inputs["bucket"] == bucket.state.get("id", f"{bucket.name}-id")]  # fmt: skip
    algorithms = {rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] for r in sse for rule in r.inputs["rules"]}
    return None if algorithms == {"AES256"} else f"{lb.name}: access logs to a bucket encrypted with {sorted(algorithms)}"


def waf_log_group_name(stack, logging) -> str | None:
    bad = [d for d in logging.inputs["logDestinationConfigs"] if ":log-group:aws-waf-logs-" not in d]
    return f"{logging.name}: log destinations {bad} not named aws-waf-logs-*" if bad else None


def waf_scope(stack, acl) -> str | None:
    return None if acl.inputs["scope"] == "REGIONAL" else f"{acl.name}: scope {acl.inputs['scope']} in front of an ALB"


def mq_subnets(stack, broker) -> str | None:
    mode, subnets = broker.inputs["deploymentMode"], broker.inputs["subnetIds"]
    if mode == "SINGLE_INSTANCE" and len(subnets) != 1:
        return f"{broker.name}: a single-instance broker in {len(subnets)} subnets"
    if mode == "CLUSTER_MULTI_AZ" and not broker.inputs.get("publiclyAccessible") and not subnets:
        return f"{broker.name}: a private cluster without a subnet"
    return None


def mq_host_for_engine(stack, broker) -> str | None:
    version, host = broker.inputs["engineVersion"], broker.inputs["hostInstanceType"]
    if _version(version)[0] >= 4 and not host.startswith("mq.m7g."):
        return f"{broker.name}: RabbitMQ {version} on {host}"
    if host == "mq.t3.micro" and broker.inputs["deploymentMode"] != "SINGLE_INSTANCE":
        return f"{broker.name}: mq.t3.micro in a {broker.inputs['deploymentMode']} deployment"
    return None


LISTENER, LISTENER_RULE = "aws:lb/listener:Listener", "aws:lb/listenerRule:ListenerRule"


def listener_by_arn(stack: StackResult, arn: str) -> Resource:
    return next(r for r in stack.of_type(LISTENER) if r.state["arn"] == arn)


def authenticating(stack: StackResult) -> list[tuple[Resource, Resource]]:
    """(listener or rule, the listener it is on) for each one that signs users in."""
    found = [(r, r) for r in stack.of_type(LISTENER) if any(a["type"].startswith("authenticate-") for a in reveal(r.inputs["defaultActions"]))]
    found += [(r, listener_by_arn(stack, r.inputs["listenerArn"])) for r in stack.of_type(LISTENER_RULE)
              if any(a["type"].startswith("authenticate-") for a in reveal(r.inputs["actions"]))]
    return found


def authenticate_on_https(stack, pair) -> str | None:
    subject, listener = pair
    protocol = listener.inputs["protocol"]
    return None if protocol == "HTTPS" else f"{subject.name}: signs users in on a {protocol} listener"


def https_has_certificate(stack, listener) -> str | None:
    missing = [k for k in ("certificateArn", "sslPolicy") if not listener.inputs.get(k)]
    return f"{listener.name}: an HTTPS listener without {missing}" if missing else None


def one_listener_per_port(stack, lb) -> str | None:
    ports = [r.inputs["port"] for r in stack.of_type(LISTENER) if r.inputs["loadBalancerArn"] == lb.state["arn"]]
    twice = sorted({p for p in ports if ports.count(p) > 1})
    return f"{lb.name}: two listeners on port {twice}" if twice else None


def listener_port_admitted(stack, listener) -> str | None:
    lb = next(b for b in stack.of_type("aws:lb/loadBalancer:LoadBalancer") if b.state["arn"] == listener.inputs["loadBalancerArn"])
    port = listener.inputs["port"]
    admitted = [r for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                if r.inputs["securityGroupId"] in lb.inputs["securityGroups"] and r.inputs["fromPort"] <= port <= r.inputs["toPort"]]
    return None if admitted else f"{listener.name}: no ingress to port {port} in the load balancer's security groups"


ALB_LISTENERS = "ELB API reference, CreateListener (Port, Certificates, SslPolicy) and Action (authenticate-*: [HTTPS listeners])"
CONSIDERATIONS: tuple[Consideration, ...] = (
    Consideration("ECS Exec", "the SSM agent writes to the container's filesystem: a read-only root isn't supported",
                  ECS_EXEC, exec_targets, writable_root),
    Consideration("ECS Exec", "initProcessEnabled is recommended, to reap the processes a session leaves",
                  ECS_EXEC, exec_targets, init_process),
    Consideration("ECS Exec", "the task role needs the ssmmessages Create/Open Control/Data Channel actions",
                  ECS_EXEC + " (IAM permissions required for ECS Exec)", exec_services, exec_channels),
    Consideration("ECS Exec", "on Fargate, platform version 1.4.0 or later (Linux)",
                  ECS_EXEC + " (Prerequisites)", exec_services, exec_platform),
    Consideration("Fargate Spot", "Fargate Spot runs Linux tasks only", FARGATE_PROVIDERS, strategies, spot_on_linux),
    Consideration("Fargate Spot", "an interrupted task gets SIGTERM, then SIGKILL after stopTimeout, at most 120 s on Fargate",
                  FARGATE_PROVIDERS + "; ECS API reference, ContainerDefinition stopTimeout",
                  lambda s: [c for t in s.of_type(TASKDEF) for c in containers(t)], spot_stop_timeout),
    Consideration("Capacity providers", "a provider must be associated with the cluster to be used in a strategy",
                  "ECS API reference, CapacityProviderStrategyItem and PutClusterCapacityProviders",
                  strategies, providers_on_the_cluster),
    Consideration("Capacity providers", "a strategy excludes the launch type; base on one provider only; a weight above 0",
                  "ECS API reference, CreateService (launchType, capacityProviderStrategy), CapacityProviderStrategyItem",
                  strategies, strategy_shape),
    Consideration("Read-only root", "a container's mount points name volumes the task definition declares",
                  "ECS guide, Amazon ECS task definition parameters (mountPoints, volumes)",
                  lambda s: s.of_type(TASKDEF), mounts_declared),
    Consideration("Read-only root", "with readonlyRootFilesystem the process writes only to mounted volumes",
                  "ECS API reference, ContainerDefinition readonlyRootFilesystem; Security Hub ECS.5",
                  lambda s: [(t, c) for t in s.of_type(TASKDEF) for c in containers(t) if c.get("readonlyRootFilesystem")],
                  read_only_root_writes_to_volumes),
    Consideration("RDS Performance Insights", "retention 7 days, a month multiple of 31 days, or 731; a KMS key of ours",
                  "RDS API reference, CreateDBInstance PerformanceInsightsRetentionPeriod, PerformanceInsightsKMSKeyId",
                  lambda s: [d for d in s.of_type("aws:rds/instance:Instance") if d.inputs.get("performanceInsightsEnabled")],
                  performance_insights),
    Consideration("RDS Enhanced Monitoring", "an interval other than 0 needs a monitoring role RDS may assume",
                  "RDS API reference, CreateDBInstance MonitoringInterval, MonitoringRoleArn; RDS guide, Setting up "
                  "and enabling Enhanced Monitoring", lambda s: s.of_type("aws:rds/instance:Instance"), enhanced_monitoring),
    Consideration("KMS key policies", "CloudWatch Logs encrypts a log group only if the key policy allows logs.<region>",
                  "CloudWatch Logs guide, Encrypt log data in CloudWatch Logs using AWS KMS",
                  lambda s: [g for g in s.of_type("aws:cloudwatch/logGroup:LogGroup") if g.inputs.get("kmsKeyId")]
                  if own_key_policy(s) else [], logs_may_use_the_key),
    Consideration("ALB access logs", "the log bucket must use SSE-S3 (Amazon S3-managed keys), not SSE-KMS",
                  "ELB guide, Access logs for your Application Load Balancer (bucket requirements)",
                  lambda s: [lb for lb in s.of_type("aws:lb/loadBalancer:LoadBalancer")
                             if (lb.inputs.get("accessLogs") or {}).get("enabled")], alb_logs_on_sse_s3),
    Consideration("AWS WAF", "a CloudWatch Logs destination's name must start with aws-waf-logs-",
                  "WAF guide, Sending web ACL traffic logs to an Amazon CloudWatch Logs log group",
                  lambda s: s.of_type("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"), waf_log_group_name),
    Consideration("AWS WAF", "a web ACL for an Application Load Balancer has the REGIONAL scope",
                  "WAF API reference, CreateWebACL Scope", lambda s: s.of_type("aws:wafv2/webAcl:WebAcl"), waf_scope),
    Consideration("ALB listeners", "a sign-in action (authenticate-cognito, authenticate-oidc) only on an HTTPS listener",
                  ALB_LISTENERS, authenticating, authenticate_on_https),
    Consideration("ALB listeners", "an HTTPS listener names its certificate and security policy", ALB_LISTENERS,
                  lambda s: [r for r in s.of_type(LISTENER) if r.inputs["protocol"] == "HTTPS"], https_has_certificate),
    Consideration("ALB listeners", "one listener per port of a load balancer", ALB_LISTENERS,
                  lambda s: s.of_type("aws:lb/loadBalancer:LoadBalancer"), one_listener_per_port),
    Consideration("ALB security groups", "the load balancer's security group admits every listener port",
                  "ELB guide, Security groups for your Application Load Balancer",
                  lambda s: s.of_type(LISTENER), listener_port_admitted),
    Consideration("Amazon MQ", "a single-instance broker takes one subnet; a private cluster at least one",
                  "Amazon MQ API reference, CreateBroker SubnetIds", lambda s: s.of_type("aws:mq/broker:Broker"), mq_subnets),
    Consideration("Amazon MQ", "RabbitMQ 4 runs on mq.m7g hosts; mq.t3.micro is single-instance only",
                  "Amazon MQ guide, Amazon MQ for RabbitMQ sizing guidelines; In-place upgrade from RabbitMQ 3 to 4",
                  lambda s: s.of_type("aws:mq/broker:Broker"), mq_host_for_engine),
)  # fmt: skip

# The example stacks, prod with ECS Exec on (the README's `worker list`), and the maximal stacks.
STACKS = ["dev", "prod", "prod-ecs-exec", "maximal-oidc", "maximal-cognito-existing-vpc"]


@cache
def stack_named(name: str) -> StackResult:
    if name == "prod-ecs-exec":
        return run_stack(REPO_ROOT / "Pulumi.prod.yaml", config={"operations": {"ecsExec": True}}, stack="prod")
    return declared(name)


def row_id(row: Consideration) -> str:
    return f"{row.feature}: {row.says}"


@pytest.mark.parametrize("stack_name", STACKS)
@pytest.mark.parametrize("row", CONSIDERATIONS, ids=row_id)
def test_what_aws_documents_holds(row, stack_name):
    stack = stack_named(stack_name)
    problems = [p for subject in row.subjects(stack) if (p := row.check(stack, subject))]
    assert not problems, f"{row_id(row)} ({row.source}):\n" + "\n".join(problems)


@pytest.mark.parametrize("row", CONSIDERATIONS, ids=row_id)
def test_every_row_applies_to_some_stack(row):
    assert any(list(row.subjects(stack_named(name))) for name in STACKS), f"{row_id(row)}: nothing to check"


def test_the_stacks_are_the_example_and_maximal_ones():
    assert {"dev", "prod", "maximal-oidc", "maximal-cognito-existing-vpc"} <= set(MODEL_STACKS) & set(STACKS)


def test_the_docs_send_operators_only_into_documented_exec_targets():
    # The containers the README's and docs' commands name (`--container X`, the port forwarding's `name==`X``).
    readme = "".join(p.read_text() for p in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))])
    named = set(re.findall(r"--container (\S+)", readme)) | set(re.findall(r"name==`([^`]+)`", readme))
    assert named and all(DOCUMENTED_EXEC_TARGETS.fullmatch(n) for n in named), named


def test_the_docs_list_every_row():
    page = (REPO_ROOT / "docs" / "aws-considerations.md").read_text()
    missing = [row_id(r) for r in CONSIDERATIONS if f"| {r.feature} | {r.says} |" not in page]
    assert not missing, "docs/aws-considerations.md lacks rows:\n" + "\n".join(missing)
