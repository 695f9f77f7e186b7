"""Day-2 changes: what `pulumi up` would create, update, replace or delete, and which ECS services would roll
out a new deployment, when a stack's config changes. ``python -m tests.day2`` prints the table.

The program runs under the recording mocks (infra/tools/testing.py) before and after the change, and resources are
matched by URN. A changed input replaces its resource when the Terraform provider that Pulumi bridges marks
it ForceNew (FORCE_NEW). A replaced resource comes back with new outputs (id, ARN, address; a task
definition with a new revision), so the inputs that carry them change too, in every resource that depends on
it; that is followed until nothing more changes. The mocks give a task definition the same ARN
(``task-definition/<family>:1``) in both runs, so this is how a replaced task definition rolls its service.

The provider's plan-time checks (tests/provider_checks.py) run on every resource that exists before and after:
one that refuses the plan is recorded in ``Diff.refused`` (a failing test: `pulumi preview` would stop there),
one that forces a new resource replaces it; an Optional+Computed input the config drops is no change.

Not seen: inputs the mocks leave unknown (outputs they do not compute, e.g. a parameter group's name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from infra.tools.testing import PROJECT, Resource, StackResult, reveal, run_stack, stack_file_config
from tests.provider_checks import OPTIONAL_COMPUTED, verdicts

ROOT = Path(__file__).resolve().parents[1]

# Pulumi type -> the inputs whose change forces a new resource, for every type the program declares. Listed:
# the inputs the program sets, plus each type's name inputs (ForceNew wherever they exist), which the program
# may set to fit AWS name limits. Sources: hashicorp/terraform-provider-aws, internal/service/<file>
# (`ForceNew: true`, or the `RequiresReplace()` plan modifier in framework resources), unless noted.
FORCE_NEW: dict[str, frozenset[str]] = {
    # appautoscaling/policy.go: the policy configurations are updated in place (PutScalingPolicy).
    "aws:appautoscaling/policy:Policy": frozenset({"name", "resourceId", "scalableDimension", "serviceNamespace"}),
    # appautoscaling/target.go: min/max capacity are updated in place (RegisterScalableTarget).
    "aws:appautoscaling/target:Target": frozenset({"resourceId", "scalableDimension", "serviceNamespace"}),
    # cloudwatch/dashboard.go
    "aws:cloudwatch/dashboard:Dashboard": frozenset({"dashboardName"}),
    # events/rule.go
    "aws:cloudwatch/eventRule:EventRule": frozenset({"name", "namePrefix"}),
    # events/target.go: `arn` (the target) is updated in place.
    "aws:cloudwatch/eventTarget:EventTarget": frozenset({"rule", "targetId"}),
    # logs/group.go: retention is updated in place.
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix"}),
    # cloudwatch/metric_alarm.go: only alarm_name (Pulumi `name`); every other argument is updated in place.
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    # ec2/vpc_default_security_group.go
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": frozenset({"vpcId"}),
    # ec2/ec2_eip.go
    "aws:ec2/eip:Eip": frozenset({"domain"}),
    # ec2/vpc_flow_log.go: all but tags.
    "aws:ec2/flowLog:FlowLog": frozenset({"iamRoleArn", "logDestination", "logDestinationType", "trafficType", "vpcId"}),
    # ec2/vpc_internet_gateway.go: vpc_id detaches and attaches in place.
    "aws:ec2/internetGateway:InternetGateway": frozenset(),
    # ec2/vpc_nat_gateway.go
    "aws:ec2/natGateway:NatGateway": frozenset({"allocationId", "subnetId"}),
    # ec2/vpc_route_table.go: routes are updated in place.
    "aws:ec2/routeTable:RouteTable": frozenset({"vpcId"}),
    # ec2/vpc_route_table_association.go: route_table_id is swapped in place (ReplaceRouteTableAssociation).
    "aws:ec2/routeTableAssociation:RouteTableAssociation": frozenset({"subnetId"}),
    # ec2/vpc_security_group.go
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "description", "vpcId"}),
    # ec2/vpc_subnet.go: map_public_ip_on_launch is updated in place.
    "aws:ec2/subnet:Subnet": frozenset({"availabilityZone", "cidrBlock", "vpcId"}),
    # ec2/vpc_.go: the DNS flags are updated in place.
    "aws:ec2/vpc:Vpc": frozenset({"cidrBlock"}),
    # ecr/lifecycle_policy.go: no Update at all, the policy too is ForceNew.
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": frozenset({"policy", "repository"}),
    # ecr/repository.go: scanning, tag mutability and force_delete are updated in place; the encryption
    # configuration is set at creation.
    "aws:ecr/repository:Repository": frozenset({"name", "encryptionConfigurations"}),
    # ecs/cluster.go: settings are updated in place.
    "aws:ecs/cluster:Cluster": frozenset({"name"}),
    # ecs/cluster_capacity_providers.go: the providers and default strategy are updated in place.
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": frozenset({"clusterName"}),
    # ecs/service.go: task_definition, network_configuration, load_balancer (no longer ForceNew),
    # desired_count, the deployment settings and capacity_provider_strategy (with force_new_deployment:
    # tests/provider_checks.py) are updated in place (UpdateService). launch_type is ForceNew, and Optional and
    # Computed: dropping it is no diff, setting it on a service that has none (one created with a strategy) is.
    "aws:ecs/service:Service": frozenset({"name", "cluster", "launchType"}),
    # ecs/task_definition.go: every argument but tags, skip_destroy and track_latest: any change registers a
    # new revision, and the old one is deregistered unless skip_destroy keeps it ACTIVE.
    "aws:ecs/taskDefinition:TaskDefinition": frozenset({
        "containerDefinitions", "cpu", "memory", "family", "executionRoleArn", "taskRoleArn", "networkMode",
        "requiresCompatibilities", "runtimePlatform",
    }),  # fmt: skip
    # kms/key.go: description, policy, rotation and the deletion window are updated in place.
    "aws:kms/key:Key": frozenset({"customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId"}),
    # kms/alias.go: target_key_id is updated in place (UpdateAlias).
    "aws:kms/alias:Alias": frozenset({"name", "namePrefix"}),
    # iam/role.go: assume_role_policy is updated in place.
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    # iam/role_policy.go: the policy document is updated in place (PutRolePolicy).
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    # iam/role_policy_attachment.go
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": frozenset({"role", "policyArn"}),
    # elbv2/listener.go: port, protocol and actions are updated in place.
    "aws:lb/listener:Listener": frozenset({"loadBalancerArn"}),
    # elbv2/listener_rule.go: priority is explicitly `ForceNew: false`.
    "aws:lb/listenerRule:ListenerRule": frozenset({"listenerArn"}),
    # elbv2/load_balancer.go: subnets and security groups of an ALB are updated in place.
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"internal", "loadBalancerType", "name", "namePrefix"}),
    # elbv2/target_group.go: health check and deregistration delay are updated in place.
    "aws:lb/targetGroup:TargetGroup": frozenset({"name", "namePrefix", "port", "protocol", "targetType", "vpcId"}),
    # mq/broker.go: host_instance_type, engine_version, configuration, security_groups, logs are updated in
    # place (a reboot); RabbitMQ users are diff-suppressed once the broker exists.
    "aws:mq/broker:Broker": frozenset({"brokerName", "deploymentMode", "engineType", "publiclyAccessible", "subnetIds"}),
    # mq/configuration.go: data and description make a new revision in place.
    "aws:mq/configuration:Configuration": frozenset({"name", "engineType", "engineVersion"}),
    # rds/instance.go: engine_version, instance_class, storage, multi_az, parameter and subnet group are
    # updated in place (ModifyDBInstance).
    "aws:rds/instance:Instance": frozenset({
        "identifier", "identifierPrefix", "engine", "dbName", "username", "storageEncrypted",
    }),  # fmt: skip
    # rds/parameter_group.go: parameters are updated in place.
    "aws:rds/parameterGroup:ParameterGroup": frozenset({"name", "namePrefix", "family", "description"}),
    # rds/subnet_group.go: description and subnets are updated in place.
    "aws:rds/subnetGroup:SubnetGroup": frozenset({"name", "namePrefix"}),
    # s3/bucket.go: force_destroy is updated in place.
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix"}),
    # s3/bucket_lifecycle_configuration.go, s3/bucket_ownership_controls.go, s3/bucket_policy.go,
    # s3/bucket_public_access_block.go, s3/bucket_server_side_encryption_configuration.go,
    # s3/bucket_versioning.go: the bucket; the settings themselves are updated in place.
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": frozenset({"bucket"}),
    # s3/bucket_logging.go: the target is updated in place.
    "aws:s3/bucketLogging:BucketLogging": frozenset({"bucket", "expectedBucketOwner"}),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": frozenset({"bucket"}),
    "aws:s3/bucketPolicy:BucketPolicy": frozenset({"bucket"}),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": frozenset({"bucket"}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": frozenset({"bucket"}),
    "aws:s3/bucketVersioning:BucketVersioning": frozenset({"bucket"}),
    # secretsmanager/secret.go: description is updated in place.
    "aws:secretsmanager/secret:Secret": frozenset({"name", "namePrefix"}),
    # secretsmanager/secret_version.go: secret_string IS ForceNew (a new version is put; the replaced one
    # loses its labels). The secret itself stays.
    "aws:secretsmanager/secretVersion:SecretVersion": frozenset({"secretId", "secretString"}),
    # sns/topic.go
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix"}),
    # sns/topic_policy.go: the policy is updated in place.
    "aws:sns/topicPolicy:TopicPolicy": frozenset({"arn"}),
    # ec2/vpc_security_group_egress_rule.go, ec2/vpc_security_group_ingress_rule.go (framework): only
    # security_group_id RequiresReplace; ports, protocol, source and description are modified in place.
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": frozenset({"securityGroupId"}),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": frozenset({"securityGroupId"}),
    # wafv2/web_acl.go: rules, actions and visibility are updated in place (UpdateWebACL).
    "aws:wafv2/webAcl:WebAcl": frozenset({"name", "namePrefix", "scope"}),
    # wafv2/web_acl_association.go: both arguments.
    "aws:wafv2/webAclAssociation:WebAclAssociation": frozenset({"resourceArn", "webAclArn"}),
    # wafv2/web_acl_logging_configuration.go: destinations and filters are put again in place.
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": frozenset({"resourceArn"}),
    # pulumi/pulumi-docker-build provider/internal/image.go, Image.Diff: every change is an update (a rebuild).
    "docker-build:index:Image": frozenset(),
    # hashicorp/terraform-provider-random internal/provider/resource_password.go: every argument
    # RequiresReplace (override_special unless "" -> null): any change is a new password.
    "random:index/randomPassword:RandomPassword": frozenset({"length", "special", "minSpecial", "overrideSpecial"}),
    # terraform-provider-random internal/provider/resource_string.go: likewise, every argument RequiresReplace.
    "random:index/randomString:RandomString": frozenset({"length", "special", "upper"}),
    # Our own dynamic resources: the guard (infra/aws/components/guard.py) updates in place; a service log group
    # (infra/aws/components/service_logs.py, _Provider.diff) is another group under a new name or Region.
    "pulumi-python:dynamic:Resource": frozenset({"logGroupName", "region"}),
}

# Types whose outputs change on an in-place update too: a changed mq configuration gets a new revision
# (mq/configuration.go, CustomizeDiff sets latest_revision new-computed), which the broker then takes.
NEW_OUTPUTS_ON_UPDATE = frozenset({"aws:mq/configuration:Configuration"})
# ECS service inputs whose change starts a new deployment (UpdateService rolls the tasks).
ROLLOUT = frozenset({"taskDefinition", "networkConfiguration", "loadBalancers", "forceNewDeployment"})
SERVICE = "aws:ecs/service:Service"


@dataclass
class Diff:
    prefix: str  # "dagster-<stack>-": stripped from names in reports
    before: dict[str, Resource]  # by URN
    after: dict[str, Resource]
    actions: dict[str, str]  # URN -> create | delete | update | replace | same
    changed: dict[str, set[str]]  # URN -> changed inputs, for resources in both runs
    title: str = ""
    refused: dict[str, list[str]] = field(default_factory=dict)  # URN -> the provider's plan-time errors

    def resources(self, action: str) -> list[Resource]:
        side = self.before if action == "delete" else self.after
        return sorted((side[u] for u, a in self.actions.items() if a == action), key=lambda r: (r.name, r.typ))

    def named(self, action: str) -> set[str]:
        return {self.short(r) for r in self.resources(action)}

    def short(self, r: Resource) -> str:
        return r.name.removeprefix(self.prefix)

    @property
    def restarts(self) -> set[str]:
        """ECS services (by service name) that roll out a new deployment. With forceNewDeployment set, the
        provider forces one on every update of the service (ecs/service.go: UpdateService carries it)."""
        return {
            r.inputs["name"] for u, r in self.after.items()
            if r.typ == SERVICE and (self.actions[u] == "replace" or self.changed.get(u, set()) & ROLLOUT
                                     or (self.changed.get(u) and r.inputs.get("forceNewDeployment")))
        }  # fmt: skip


def _by_urn(stack: StackResult) -> dict[str, Resource]:
    # Components have no inputs of their own: their children carry every change.
    return {r.urn: r for r in stack.resources if not r.typ.startswith(f"{PROJECT}:")}


def _text(value: Any) -> str:
    return json.dumps(reveal(value), default=str)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _identity(r: Resource) -> set[str]:
    """What a replacement changes: the id, the ARN and the computed outputs that carry the resource's name
    (address, DNS name, endpoints...). The mocks' id is ``<name>-id`` unless the state has one."""
    computed = reveal({k: v for k, v in r.state.items() if k not in r.inputs})
    return {r.state.get("id", f"{r.name}-id"), r.state["arn"], *(s for s in _strings(computed) if r.name in s)}


def force_new(r: Resource) -> frozenset[str]:
    if r.typ not in FORCE_NEW:
        raise KeyError(f"{r.typ} ({r.name}) has a changed input and no FORCE_NEW entry: classify its inputs")
    return FORCE_NEW[r.typ] | set(r.options.replace_on_changes)


def diff(before: StackResult, after: StackResult, prefix: str = "", title: str = "") -> Diff:
    old, new = _by_urn(before), _by_urn(after)
    common = old.keys() & new.keys()

    def differs(u: str, k: str) -> bool:
        before, after = old[u].inputs, new[u].inputs
        if k not in after and k in OPTIONAL_COMPUTED.get(new[u].typ, ()):
            return False  # Optional+Computed: the state keeps its value
        return reveal(before.get(k)) != reveal(after.get(k))

    found = {u: {k for k in old[u].inputs.keys() | new[u].inputs.keys() if differs(u, k)} for u in common}
    checked = {u: verdicts(new[u].typ, reveal(old[u].inputs) if u in old else None, reveal(new[u].inputs))
               for u in new if u not in common or found[u]}  # fmt: skip
    refused = {u: [f"{c.source}: {v.refusal}" for c, v in found_verdicts if v.refusal]
               for u, found_verdicts in checked.items()}  # fmt: skip
    forced = {u: {k for _, v in found_verdicts for k in v.force_new} for u, found_verdicts in checked.items()}

    def changed(u: str) -> set[str]:
        return found[u] - set(new[u].options.ignore_changes)

    def replaced(u: str) -> bool:
        return bool(changed(u)) and bool(changed(u) & (force_new(new[u]) | forced.get(u, set())))

    # New outputs flow into the inputs of dependents, which may replace them in turn.
    propagated: set[str] = set()
    while moving := [u for u in common - propagated
                     if replaced(u) or (changed(u) and new[u].typ in NEW_OUTPUTS_ON_UPDATE)]:  # fmt: skip
        for u in moving:
            propagated.add(u)
            marks = _identity(old[u])
            for d in common:
                if u in new[d].options.dependencies:
                    texts = {k: _text(v) for k, v in new[d].inputs.items()}
                    found[d] |= {k for k, text in texts.items() if any(m in text for m in marks)}

    actions = {u: "create" for u in new.keys() - old.keys()} | {u: "delete" for u in old.keys() - new.keys()}
    actions |= {u: "replace" if replaced(u) else "update" if changed(u) else "same" for u in common}
    return Diff(prefix, old, new, actions, {u: changed(u) for u in common}, title, {u: r for u, r in refused.items() if r})


# --- The routine changes: config groups over a stack file (a group replaces the file's whole group) ------


@dataclass
class Change:
    title: str
    after: dict[str, Any]
    before: dict[str, Any] = field(default_factory=dict)
    stack: str = "prod"


def _group(stack: str, key: str) -> Any:
    return stack_file_config(ROOT / f"Pulumi.{stack}.yaml")[f"{PROJECT}:{key}"]


def _set(key: str, **values: Any) -> dict[str, Any]:
    """The prod file's config group ``key`` with ``values`` changed."""
    return {key: {**_group("prod", key), **values}}


def _queue(name: str, **values: Any) -> dict[str, Any]:
    return {"queues": [{**q, **values} if q["name"] == name else q for q in _group("prod", "queues")]}


IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dagster"
CERTIFICATE = _group("prod", "ui")["certificateArn"]  # an internet-facing UI is HTTPS
DEV_PRIVATE = {"access": "private"}
DEV_CIDR = {"access": "cidr", "allowedCidrs": ["203.0.113.0/24"], "certificateArn": CERTIFICATE}
PROD_PUBLIC = {"access": "public", "certificateArn": CERTIFICATE}
CHANGES: dict[str, Change] = {
    "image": Change("new image: image.uri dagster:v1 -> dagster:v2",
                    before={"image": {"uri": f"{IMAGE}:v1"}}, after={"image": {"uri": f"{IMAGE}:v2"}}),
    "add-queue": Change("add queue etl (0-4 workers, concurrency 2, 1024/2048)", after={"queues": [
        *_group("prod", "queues"),
        {"name": "etl", "minWorkers": 0, "maxWorkers": 4, "concurrency": 2, "cpu": 1024, "memory": 2048}]}),
    "queue-counts": Change("queue dagster: minWorkers 2 -> 3, maxWorkers 10 -> 12",
                           after=_queue("dagster", minWorkers=3, maxWorkers=12)),
    "queue-size": Change("queue heavy: cpu 4096 -> 8192, memory 16384 -> 32768, concurrency 1 -> 2",
                         after=_queue("heavy", cpu=8192, memory=32768, concurrency=2)),
    "consumer-timeout": Change("broker.consumerTimeoutMinutes 240 -> 300", after=_set("broker", consumerTimeoutMinutes=300)),
    "db-class": Change("database.instanceClass db.m7g.large -> db.m7g.xlarge",
                       after=_set("database", instanceClass="db.m7g.xlarge")),
    "db-storage": Change("database.allocatedStorageGb 50 -> 100", after=_set("database", allocatedStorageGb=100)),
    "db-major": Change("database.engineVersion 16 -> 17", after=_set("database", engineVersion="17")),
    "ui-public": Change("ui.access cidr -> public", after={"ui": PROD_PUBLIC}),
    "ui-cidr": Change("ui.access public -> cidr", before={"ui": PROD_PUBLIC}, after={}),
    "ui-private-to-cidr": Change("ui.access private -> cidr", stack="dev", before={"ui": DEV_PRIVATE}, after={"ui": DEV_CIDR}),
    "ui-cidr-to-private": Change("ui.access cidr -> private", stack="dev", before={"ui": DEV_CIDR}, after={"ui": DEV_PRIVATE}),
    "ui-ssm-to-private": Change("ui.access ssm -> private", stack="dev", after={"ui": DEV_PRIVATE}),
    "queue-on-demand": Change("queue heavy: capacity spotPercent 50 -> 0 (on-demand only)",
                              after=_queue("heavy", capacity={})),
    "queue-onto-spot": Change("queue heavy: capacity on-demand only -> spotPercent 50", before=_queue("heavy", capacity={}),
                              after={}),
    "queue-spot-mix": Change("queue heavy: capacity spotPercent 50 -> 80", after=_queue("heavy", capacity={"onDemandBase": 1, "spotPercent": 80})),
    "flower": Change("operations.flower: true", after={"operations": {"flower": True}}),
    "ecs-exec": Change("operations.ecsExec: true", after={"operations": {"ecsExec": True}}),
    "broker-resize": Change("broker.instanceType mq.m5.large -> mq.m5.xlarge", after=_set("broker", instanceType="mq.m5.xlarge")),
    "run-size": Change("runs: cpu 1024 -> 2048, memory 2048 -> 4096", after=_set("runs", cpu=2048, memory=4096)),
    "alerts-limit": Change("alerts.longRunMinutes 120 -> 240", after={"alerts": {"longRunMinutes": 240}}),
    "viewers": Change("ui.viewers: a read-only UI from 198.51.100.0/24",
                      after=_set("ui", viewers={"allowedCidrs": ["198.51.100.0/24"]})),
}  # fmt: skip


@cache
def _run(stack: str, config: str) -> StackResult:
    return run_stack(ROOT / f"Pulumi.{stack}.yaml", json.loads(config), stack=stack)


def run(change: Change) -> Diff:
    """Run the program before and after ``change`` (each distinct config once per process) and diff them."""
    before, after = (_run(change.stack, json.dumps(c, sort_keys=True)) for c in (change.before, change.after))
    return diff(before, after, prefix=f"dagster-{change.stack}-", title=f"{change.title} ({change.stack})")


def describe(d: Diff) -> str:
    """A Markdown table of what `pulumi up` would do; changed inputs that force the replacement are starred."""
    lines = [f"### {d.title}", "", "| action | resource | type | changed inputs |", "|---|---|---|---|"]
    for action in ("create", "replace", "update", "delete"):
        for r in d.resources(action):
            inputs = sorted(d.changed.get(r.urn, ()))
            shown = ", ".join(f"{k}*" if action == "replace" and k in force_new(r) else k for k in inputs)
            refused = " (protected: refused)" if r.options.protect and action in ("replace", "delete") else ""
            lines.append(f"| {action} | {d.short(r)}{refused} | {r.typ.split(':')[1]} | {shown} |")
    lines += ["", f"Services that restart: {', '.join(sorted(d.restarts)) or 'none'}", ""]
    lines += [f"**Refused by the provider's plan**: {d.short(d.after[u])}: {m}" for u, ms in d.refused.items() for m in ms]
    return "\n".join(lines)


if __name__ == "__main__":
    for change in CHANGES.values():
        print(describe(run(change)))
