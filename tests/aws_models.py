"""Every resource the program declares, as the AWS API requests that create it, checked against AWS's own models.

``requests(stack, resource)`` turns a resource's recorded Pulumi inputs into the request(s) the Terraform AWS
provider (what pulumi-aws runs) sends on create; ``problems(stack)`` validates each against botocore's input
shape -- types, required members, enums, min/max lengths and ranges, patterns (botocore's own validator checks
only types, required members and minimums) -- and against NAMES and RULES: what AWS documents but botocore's
models lack, each with its public source. Converters that pass the inputs through (``direct``) leave an input they
do not know to botocore, which rejects it as an unknown member: a new input cannot slip through unchecked there.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import botocore.session
from botocore.validate import ParamValidator, ValidationErrors

from infra.aws import naming
from infra.tools.testing import PROJECT, REGION, Resource, StackResult, reveal



def autoname(typ: str, logical: str) -> str:
    """The name Pulumi sends for a resource without one: ``<logical>-<7 random chars>`` (a sample suffix),
    lower-cased where pulumi-aws or AWS lower-cases it (infra/aws/naming.py)."""
    rule = naming.RULES.get(typ)
    name = f"{logical}{naming.SAMPLE_SUFFIX}"
    return name.lower() if rule and rule.folded else name


# providers whose resources no botocore create request describes (pulumi-python: the config guard, and the service
# log groups, whose calls tests/test_service_logs.py checks against botocore's model)
NO_AWS_CALL = {"random", "docker-build", "pulumi-python"}
TF_UNIQUE_ID = "terraform-20250101000000000000000001"  # the shape of Terraform's generated IDs (id.UniqueId)
# The input Pulumi autonames when it is absent, where that is not "name".
NAME_INPUT = {"aws:mq/broker:Broker": "brokerName", "aws:rds/instance:Instance": "identifier",
              "aws:s3/bucket:Bucket": "bucket", "aws:cloudwatch/dashboard:Dashboard": "dashboardName"}  # fmt: skip


def key(name: str, renames: dict[str, str] | None = None) -> str:
    """A camelCase input name as the PascalCase member name most AWS APIs use (``renames``: the exceptions)."""
    return (renames or {}).get(name, name[:1].upper() + name[1:])


def pascal(value, renames: dict[str, str] | None = None):
    """``key`` applied to every key, at every depth."""
    if isinstance(value, dict):
        return {key(k, renames): pascal(v, renames) for k, v in value.items()}
    return [pascal(v, renames) for v in value] if isinstance(value, list) else value


def plain(value):
    """A request as an SDK sends it: absent (None) members left out, whole floats (Pulumi's numbers) as ints."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


@dataclass
class Ctx:
    """What a converter knows besides the inputs: the physical name, the mock ID and ARN, sibling resources."""

    stack: StackResult
    resource: Resource

    @property
    def name(self) -> str:
        r = self.resource
        return r.inputs.get(NAME_INPUT.get(r.typ, "name")) or autoname(r.typ, r.name)

    @property
    def id(self) -> str:
        return self.resource.state.get("id", f"{self.resource.name}-id")

    @property
    def arn(self) -> str:
        return self.resource.state["arn"]

    def ref(self, typ: str) -> str:
        """Physical name of the ``typ`` resource a name input refers to where the mocks leave it unresolved (and
        unrecorded as a dependency): the component's only one of that type, or the one of the same logical name."""
        parent = self.resource.urn.rsplit("$", 1)[0]
        siblings = [r for r in self.stack.of_type(typ) if r.urn.rsplit("$", 1)[0] == parent]
        (dep,) = siblings if len(siblings) == 1 else [r for r in siblings if r.name == self.resource.name]
        return Ctx(self.stack, dep).name


# ---- converters: (inputs, ctx) -> [(operation, request)], in the order Terraform calls them ----


def members(i: dict, c: Ctx, name: str | None = None, drop=(), renames=None, ec2_tags: str | None = None, **defaults):
    """The inputs as request members: Terraform-only inputs dropped, keys PascalCased, Terraform's defaults where
    an input is absent, the physical name as member ``name``, EC2 ``tags`` as TagSpecifications of ``ec2_tags``."""
    tags = i.pop("tags", None) if ec2_tags else None
    kept = {k: v for k, v in i.items() if k not in (*drop, NAME_INPUT.get(c.resource.typ, "name"))}
    request = {**defaults, **pascal(kept, renames), **({name: c.name} if name else {})}
    if tags:
        request["TagSpecifications"] = [{"ResourceType": ec2_tags, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    return request


def direct(op: str, name: str | None = None, **options):
    """The converter of an operation that takes the inputs as its members (see ``members``)."""
    return lambda i, c: [(op, members(i, c, name, **options))]


def _vpc(i, c):
    # One attribute per ModifyVpcAttribute call (EC2 API Reference, ModifyVpcAttribute).
    dns = [("ModifyVpcAttribute", {"VpcId": c.id, key(k): {"Value": i.pop(k)}})
           for k in ("enableDnsSupport", "enableDnsHostnames") if k in i]  # fmt: skip
    return [("CreateVpc", members(i, c, ec2_tags="vpc")), *dns]


def _internet_gateway(i, c):
    return [("CreateInternetGateway", {}), ("AttachInternetGateway", {"InternetGatewayId": c.id, "VpcId": i["vpcId"]})]


def _route_table(i, c):
    routes = [{"RouteTableId": c.id, **pascal(r, {"cidrBlock": "DestinationCidrBlock"})} for r in i.pop("routes", [])]
    return [("CreateRouteTable", members(i, c)), *(("CreateRoute", r) for r in routes)]


def _default_sg(i, c):
    # Terraform adopts the VPC's default group (found by these filters), revokes its rules, authorizes the given ones.
    if i.get("ingress") or i.get("egress"):
        raise ValueError("the DefaultSecurityGroup converter covers only an emptied group")
    filters = [{"Name": "vpc-id", "Values": [i["vpcId"]]}, {"Name": "group-name", "Values": ["default"]}]
    return [("DescribeSecurityGroups", {"Filters": filters})]


def _sg_rule(op: str):
    def convert(i, c):
        description = i.pop("description", None)
        if "cidrIpv4" in i:
            peer = {"IpRanges": [{"CidrIp": i.pop("cidrIpv4"), "Description": description}]}
        else:
            peer = {"UserIdGroupPairs": [{"GroupId": i.pop("referencedSecurityGroupId"), "Description": description}]}
        return [(op, {"GroupId": i.pop("securityGroupId"), "IpPermissions": [{**pascal(i), **peer}]})]

    return convert


def _flow_log(i, c):
    resource = {"ResourceIds": [i.pop("vpcId")], "ResourceType": "VPC"}
    options = members(i, c, renames={"iamRoleArn": "DeliverLogsPermissionArn"}, MaxAggregationInterval=600)
    return [("CreateFlowLogs", {**resource, **options})]


# Terraform accepts engine_type in any case and sends it as written; the MQ model's enum is upper case.
def _mq_configuration(i, c):
    create = {"Name": c.name, "EngineType": i["engineType"].upper(), "EngineVersion": i.get("engineVersion")}
    data = base64.b64encode(i["data"].encode()).decode()  # UpdateConfiguration takes the file base64-encoded
    return [("CreateConfiguration", create),
            ("UpdateConfiguration", {"ConfigurationId": c.id, "Data": data, "Description": i.get("description")})]  # fmt: skip


def _mq_broker(i, c):
    request = members(i, c, "BrokerName", drop=("applyImmediately",), DeploymentMode="SINGLE_INSTANCE",
                      PubliclyAccessible=False, CreatorRequestId=f"tf-{c.name}")  # fmt: skip
    return [("CreateBroker", {**request, "EngineType": i["engineType"].upper()})]


def _rds_parameter_group(i, c):
    # Terraform's default apply_method is "immediate".
    parameters = [{"ParameterName": p["name"], "ParameterValue": p["value"], "ApplyMethod": p.get("applyMethod", "immediate")}
                  for p in i.pop("parameters", [])]  # fmt: skip
    create = members(i, c, "DBParameterGroupName", renames={"family": "DBParameterGroupFamily"}, Description="Managed by Pulumi")
    return [("CreateDBParameterGroup", create), ("ModifyDBParameterGroup", {"DBParameterGroupName": c.name, "Parameters": parameters})]


RDS_INSTANCE = {"dbName": "DBName", "instanceClass": "DBInstanceClass", "multiAz": "MultiAZ", "password": "MasterUserPassword",
                "username": "MasterUsername", "dbSubnetGroupName": "DBSubnetGroupName", "parameterGroupName": "DBParameterGroupName",
                "enabledCloudwatchLogsExports": "EnableCloudwatchLogsExports",
                "performanceInsightsEnabled": "EnablePerformanceInsights",
                "performanceInsightsKmsKeyId": "PerformanceInsightsKMSKeyId",
                "iamDatabaseAuthenticationEnabled": "EnableIAMDatabaseAuthentication"}  # fmt: skip


def _bucket_config(op: str, member: str, build: Callable[[dict], dict]):
    return lambda i, c: [(op, {"Bucket": i.pop("bucket"), member: build(i)})]


def _ecr_repository(i, c):
    # ECR API Reference, CreateRepository: one encryptionConfiguration (Pulumi: a list of at most one).
    (encryption,) = i.pop("encryptionConfigurations", [None])
    request = {"repositoryName": c.name, **{k: v for k, v in i.items() if k != "forceDelete"}}
    return [("CreateRepository", {**request, **({"encryptionConfiguration": encryption} if encryption else {})})]


def _kms_key(i, c):
    # Terraform creates the key (a symmetric encryption key unless told otherwise), then turns on rotation.
    rotation = i.pop("enableKeyRotation", False)
    i.pop("deletionWindowInDays", None)  # used when the key is deleted (ScheduleKeyDeletion)
    create = members(i, c, KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT", BypassPolicyLockoutSafetyCheck=False)
    return [("CreateKey", create), *([("EnableKeyRotation", {"KeyId": c.resource.state["keyId"]})] if rotation else [])]


# camelCase -> the WAFV2 API's member names where they are not the PascalCase (WAFV2 API Reference, VisibilityConfig).
WAF_NAMES = {"cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled"}


def _ecr_lifecycle_policy(i, c):
    repository = i.get("repository") or c.ref("aws:ecr/repository:Repository")
    return [("PutLifecyclePolicy", {"repositoryName": repository, "lifecyclePolicyText": i["policy"]})]


def _task_definition(i, c):
    request = {k: v for k, v in i.items() if k not in ("skipDestroy", "trackLatest")}  # ECS takes camelCase
    return [("RegisterTaskDefinition", {**request, "containerDefinitions": json.loads(i["containerDefinitions"])})]


def _ecs_service(i, c):
    net = i.pop("networkConfiguration", None)
    awsvpc = net and {"awsvpcConfiguration": {**net, "assignPublicIp": "ENABLED" if net.get("assignPublicIp") else "DISABLED"}}
    deployment = {"deploymentCircuitBreaker": i.pop("deploymentCircuitBreaker", None),
                  "maximumPercent": i.pop("deploymentMaximumPercent", 200),
                  "minimumHealthyPercent": i.pop("deploymentMinimumHealthyPercent", 100)}  # fmt: skip
    managed_tags = i.pop("enableEcsManagedTags", None)
    strategy = i.pop("capacityProviderStrategies", None)  # CreateService's capacityProviderStrategy
    if strategy:
        i["capacityProviderStrategy"] = strategy
    request = {k: v for k, v in i.items() if k not in ("name", "waitForSteadyState", "forceNewDeployment")}
    return [("CreateService", {"schedulingStrategy": "REPLICA", **request, "serviceName": c.name, "networkConfiguration": awsvpc,
                               "deploymentConfiguration": deployment, "enableECSManagedTags": managed_tags})]  # fmt: skip


def _log_group(i, c):
    retention = [("PutRetentionPolicy", {"logGroupName": c.name, "retentionInDays": i["retentionInDays"]})] if "retentionInDays" in i else []
    return [("CreateLogGroup", {"logGroupName": c.name, "kmsKeyId": i.get("kmsKeyId")}), *retention]


LB_ATTRIBUTES = {"dropInvalidHeaderFields": "routing.http.drop_invalid_header_fields.enabled",
                 "enableDeletionProtection": "deletion_protection.enabled"}  # fmt: skip


def _lb(i, c):
    attributes = [{"Key": LB_ATTRIBUTES[k], "Value": str(i.pop(k)).lower()} for k in list(i) if k in LB_ATTRIBUTES]
    logs = i.pop("accessLogs", None)  # ELB API Reference, LoadBalancerAttribute: access_logs.s3.*
    if logs:
        attributes += [{"Key": f"access_logs.s3.{k}", "Value": str(v).lower() if isinstance(v, bool) else v} for k, v in logs.items()]
    scheme = "internal" if i.pop("internal", False) else "internet-facing"
    request = members(i, c, "Name", renames={"loadBalancerType": "Type"}, Type="application", IpAddressType="ipv4")
    return [("CreateLoadBalancer", {**request, "Scheme": scheme}),
            ("ModifyLoadBalancerAttributes", {"LoadBalancerArn": c.arn, "Attributes": attributes})]  # fmt: skip


HEALTH_CHECK = {"enabled": "HealthCheckEnabled", "path": "HealthCheckPath", "port": "HealthCheckPort",
                "protocol": "HealthCheckProtocol", "interval": "HealthCheckIntervalSeconds", "timeout": "HealthCheckTimeoutSeconds",
                "healthyThreshold": "HealthyThresholdCount", "unhealthyThreshold": "UnhealthyThresholdCount"}  # fmt: skip


def _target_group(i, c):
    hc, delay = i.pop("healthCheck", {}), i.pop("deregistrationDelay", None)
    health = {"HealthCheckEnabled": True, **{HEALTH_CHECK[k]: v for k, v in hc.items() if k != "matcher"}}
    if "matcher" in hc:
        health["Matcher"] = {"HttpCode": hc["matcher"]}
    version = "HTTP1" if i.get("protocol") in ("HTTP", "HTTPS") else None
    calls = [("CreateTargetGroup", {**members(i, c, "Name", ProtocolVersion=version), **health})]
    if delay is not None:
        attributes = [{"Key": "deregistration_delay.timeout_seconds", "Value": str(int(delay))}]
        calls.append(("ModifyTargetGroupAttributes", {"TargetGroupArn": c.arn, "Attributes": attributes}))
    return calls


ACTION_BLOCKS = {"redirect": "RedirectConfig", "authenticateOidc": "AuthenticateOidcConfig", "forward": "ForwardConfig",
                 "authenticateCognito": "AuthenticateCognitoConfig", "fixedResponse": "FixedResponseConfig"}  # fmt: skip


def _actions(actions: list[dict]) -> list[dict]:
    # Terraform's redirect keeps the host, path and query unless told otherwise.
    keep = {"Host": "#{host}", "Path": "/#{path}", "Query": "#{query}"}
    return [{**a, "RedirectConfig": {**keep, **a["RedirectConfig"]}} if "RedirectConfig" in a else a
            for a in pascal(actions, ACTION_BLOCKS)]  # fmt: skip


def _listener(i, c):
    actions = _actions(i.pop("defaultActions"))
    certificates = [{"CertificateArn": i.pop("certificateArn")}] if "certificateArn" in i else None
    return [("CreateListener", {**members(i, c), "Certificates": certificates, "DefaultActions": actions})]


def _listener_rule(i, c):
    conditions = [{"Field": "path-pattern", "PathPatternConfig": pascal(cond.pop("pathPattern")), **pascal(cond)}
                  for cond in i.pop("conditions")]  # fmt: skip
    return [("CreateRule", {**members(i, c), "Conditions": conditions, "Actions": _actions(i.pop("actions"))})]


def _scaling_policy(i, c):
    step = i.get("stepScalingPolicyConfiguration")
    if step:  # Pulumi takes the interval bounds as strings (to tell 0 from unset); Terraform parses them
        step["stepAdjustments"] = [{k: float(v) if "Bound" in k else v for k, v in a.items()} for a in step["stepAdjustments"]]
    return [("PutScalingPolicy", members(i, c, "PolicyName"))]


def _dimensions(d: dict | None) -> list[dict] | None:
    return [{"Name": k, "Value": v} for k, v in d.items()] if d else None


def _alarm(i, c):
    def query(q):  # Terraform always sends return_data (false unless set)
        m = q.pop("metric", None)
        if m:
            metric = {"Namespace": m.pop("namespace", None), "MetricName": m.pop("metricName"),
                      "Dimensions": _dimensions(m.pop("dimensions", None))}  # fmt: skip
            q["metricStat"] = {"Metric": metric, **pascal(m)}
        return {"ReturnData": False, **pascal(q)}

    queries, dimensions = [query(q) for q in i.pop("metricQueries", [])] or None, _dimensions(i.pop("dimensions", None))
    request = members(i, c, "AlarmName", renames={"okActions": "OKActions"}, ActionsEnabled=True, TreatMissingData="missing")
    return [("PutMetricAlarm", {**request, "Metrics": queries, "Dimensions": dimensions})]


def _event_target(i, c):
    target = {"Id": i.get("targetId", TF_UNIQUE_ID), "Arn": i["arn"], "RoleArn": i.get("roleArn"), "Input": i.get("input")}
    return [("PutTargets", {"Rule": i.get("rule") or c.ref("aws:cloudwatch/eventRule:EventRule"), "Targets": [target]})]


Convert = Callable[[dict, Ctx], list[tuple[str, dict]]]
# Pulumi type -> (botocore service, the operations Terraform calls to create it, converter).
CONVERTERS: dict[str, tuple[str, tuple[str, ...], Convert]] = {
    "aws:ec2/vpc:Vpc": ("ec2", ("CreateVpc", "ModifyVpcAttribute"), _vpc),
    # mapPublicIpOnLaunch false: Terraform makes no ModifySubnetAttribute call.
    "aws:ec2/subnet:Subnet": ("ec2", ("CreateSubnet",), direct("CreateSubnet", drop=("mapPublicIpOnLaunch",), ec2_tags="subnet")),
    "aws:ec2/internetGateway:InternetGateway": ("ec2", ("CreateInternetGateway", "AttachInternetGateway"), _internet_gateway),
    "aws:ec2/routeTable:RouteTable": ("ec2", ("CreateRouteTable", "CreateRoute"), _route_table),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("ec2", ("AssociateRouteTable",), direct("AssociateRouteTable")),
    "aws:ec2/eip:Eip": ("ec2", ("AllocateAddress",), direct("AllocateAddress")),
    "aws:ec2/natGateway:NatGateway": ("ec2", ("CreateNatGateway",), direct("CreateNatGateway", ConnectivityType="public")),
    "aws:ec2/securityGroup:SecurityGroup": ("ec2", ("CreateSecurityGroup",), direct(
        "CreateSecurityGroup", "GroupName", ec2_tags="security-group", Description="Managed by Pulumi")),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("ec2", ("DescribeSecurityGroups",), _default_sg),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "ec2", ("AuthorizeSecurityGroupIngress",), _sg_rule("AuthorizeSecurityGroupIngress")),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": (
        "ec2", ("AuthorizeSecurityGroupEgress",), _sg_rule("AuthorizeSecurityGroupEgress")),
    "aws:ec2/flowLog:FlowLog": ("ec2", ("CreateFlowLogs",), _flow_log),
    "aws:mq/configuration:Configuration": ("mq", ("CreateConfiguration", "UpdateConfiguration"), _mq_configuration),
    "aws:mq/broker:Broker": ("mq", ("CreateBroker",), _mq_broker),
    "aws:rds/subnetGroup:SubnetGroup": ("rds", ("CreateDBSubnetGroup",), direct(
        "CreateDBSubnetGroup", "DBSubnetGroupName", renames={"description": "DBSubnetGroupDescription"},
        DBSubnetGroupDescription="Managed by Pulumi")),
    "aws:rds/parameterGroup:ParameterGroup": ("rds", ("CreateDBParameterGroup", "ModifyDBParameterGroup"), _rds_parameter_group),
    "aws:rds/instance:Instance": ("rds", ("CreateDBInstance",), direct(
        "CreateDBInstance", "DBInstanceIdentifier", drop=("skipFinalSnapshot", "finalSnapshotIdentifier", "applyImmediately", "allowMajorVersionUpgrade"),
        renames=RDS_INSTANCE)),
    "aws:secretsmanager/secret:Secret": ("secretsmanager", ("CreateSecret",), direct("CreateSecret", "Name", drop=("recoveryWindowInDays",))),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secretsmanager", ("PutSecretValue",), direct("PutSecretValue")),
    # Outside us-east-1, Terraform names the region as the LocationConstraint.
    "aws:s3/bucket:Bucket": ("s3", ("CreateBucket",), direct(
        "CreateBucket", "Bucket", drop=("forceDestroy",), CreateBucketConfiguration={"LocationConstraint": REGION})),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ("s3", ("PutBucketOwnershipControls",), _bucket_config(
        "PutBucketOwnershipControls", "OwnershipControls", lambda i: {"Rules": [pascal(i["rule"])]})),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ("s3", ("PutPublicAccessBlock",), _bucket_config(
        "PutPublicAccessBlock", "PublicAccessBlockConfiguration", pascal)),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "s3", ("PutBucketEncryption",), _bucket_config("PutBucketEncryption", "ServerSideEncryptionConfiguration", lambda i: {
            "Rules": pascal(i["rules"], {"sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID"})})),
    "aws:s3/bucketVersioning:BucketVersioning": ("s3", ("PutBucketVersioning",), _bucket_config(
        "PutBucketVersioning", "VersioningConfiguration", lambda i: pascal(i["versioningConfiguration"], {"mfaDelete": "MFADelete"}))),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ("s3", ("PutBucketLifecycleConfiguration",), _bucket_config(
        "PutBucketLifecycleConfiguration", "LifecycleConfiguration", lambda i: {"Rules": pascal(i["rules"], {"id": "ID"})})),
    "aws:s3/bucketPolicy:BucketPolicy": ("s3", ("PutBucketPolicy",), direct("PutBucketPolicy")),
    "aws:ecr/repository:Repository": ("ecr", ("CreateRepository",), _ecr_repository),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ("ecr", ("PutLifecyclePolicy",), _ecr_lifecycle_policy),
    "aws:ecs/cluster:Cluster": ("ecs", ("CreateCluster",), lambda i, c: [
        ("CreateCluster", {"clusterName": c.name, "settings": i.get("settings")})]),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": ("ecs", ("PutClusterCapacityProviders",), lambda i, c: [
        ("PutClusterCapacityProviders", {"cluster": i["clusterName"], "capacityProviders": i["capacityProviders"],
                                         "defaultCapacityProviderStrategy": i.get("defaultCapacityProviderStrategies", [])})]),
    "aws:ecs/taskDefinition:TaskDefinition": ("ecs", ("RegisterTaskDefinition",), _task_definition),
    "aws:ecs/service:Service": ("ecs", ("CreateService",), _ecs_service),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", ("CreateLogGroup", "PutRetentionPolicy"), _log_group),
    "aws:iam/role:Role": ("iam", ("CreateRole",), direct(
        "CreateRole", "RoleName", renames={"assumeRolePolicy": "AssumeRolePolicyDocument"}, Path="/", MaxSessionDuration=3600)),
    "aws:iam/rolePolicy:RolePolicy": ("iam", ("PutRolePolicy",), direct(
        "PutRolePolicy", "PolicyName", renames={"role": "RoleName", "policy": "PolicyDocument"})),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("iam", ("AttachRolePolicy",), direct(
        "AttachRolePolicy", renames={"role": "RoleName"})),
    "aws:lb/loadBalancer:LoadBalancer": ("elbv2", ("CreateLoadBalancer", "ModifyLoadBalancerAttributes"), _lb),
    "aws:lb/targetGroup:TargetGroup": ("elbv2", ("CreateTargetGroup", "ModifyTargetGroupAttributes"), _target_group),
    "aws:lb/listener:Listener": ("elbv2", ("CreateListener",), _listener),
    "aws:lb/listenerRule:ListenerRule": ("elbv2", ("CreateRule",), _listener_rule),
    "aws:appautoscaling/target:Target": ("application-autoscaling", ("RegisterScalableTarget",), direct("RegisterScalableTarget")),
    "aws:appautoscaling/policy:Policy": ("application-autoscaling", ("PutScalingPolicy",), _scaling_policy),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", ("PutMetricAlarm",), _alarm),
    "aws:cloudwatch/dashboard:Dashboard": ("cloudwatch", ("PutDashboard",), direct("PutDashboard", "DashboardName")),
    "aws:cloudwatch/eventRule:EventRule": ("events", ("PutRule",), direct("PutRule", "Name", State="ENABLED")),
    "aws:cloudwatch/eventTarget:EventTarget": ("events", ("PutTargets",), _event_target),
    # SNS API Reference, CreateTopic: topic settings are Attributes (KmsMasterKeyId, ...).
    "aws:sns/topic:Topic": ("sns", ("CreateTopic",), lambda i, c: [
        ("CreateTopic", {"Name": c.name, "Attributes": {key(k): v for k, v in i.items() if k != "name"} or None})]),
    "aws:kms/key:Key": ("kms", ("CreateKey", "EnableKeyRotation"), _kms_key),
    "aws:kms/alias:Alias": ("kms", ("CreateAlias",), lambda i, c: [
        ("CreateAlias", {"AliasName": i["name"], "TargetKeyId": i["targetKeyId"]})]),
    "aws:s3/bucketLogging:BucketLogging": ("s3", ("PutBucketLogging",), _bucket_config(
        "PutBucketLogging", "BucketLoggingStatus", lambda i: {"LoggingEnabled": pascal(i)})),
    "aws:wafv2/webAcl:WebAcl": ("wafv2", ("CreateWebACL",), lambda i, c: [
        ("CreateWebACL", members(i, c, "Name", renames=WAF_NAMES))]),
    "aws:wafv2/webAclAssociation:WebAclAssociation": ("wafv2", ("AssociateWebACL",), direct(
        "AssociateWebACL", renames={"webAclArn": "WebACLArn"})),
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": ("wafv2", ("PutLoggingConfiguration",), lambda i, c: [
        ("PutLoggingConfiguration", {"LoggingConfiguration": pascal(i)})]),
    "aws:sns/topicPolicy:TopicPolicy": ("sns", ("SetTopicAttributes",), direct(
        "SetTopicAttributes", renames={"arn": "TopicArn", "policy": "AttributeValue"}, AttributeName="Policy")),
    "aws:sns/topicSubscription:TopicSubscription": ("sns", ("Subscribe",), direct(
        "Subscribe", renames={"topic": "TopicArn"}, ReturnSubscriptionArn=True)),
}  # fmt: skip


# ---- botocore's model, with the constraints its own validator leaves to the service ----


@cache
def _java_regex(pattern: str) -> re.Pattern:
    """A botocore (Java) pattern in Python syntax: the Java-only constructs of the operations we call."""
    return re.compile(pattern.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")  # surrogate pairs
                      .replace(r"\p{Print}", r"[\x20-\x7E]").replace(r"[\p{L}\p{Z}\p{N}", r"[\w\s"))  # fmt: skip


class _Errors(ValidationErrors):
    def _format_error(self, error):
        reason, name, extra = error
        found = super()._format_error(error)
        return found or f"Invalid value for parameter {self._get_name(name)}, value: {extra['param']!r}: {reason}"


class StrictValidator(ParamValidator):
    """botocore's validator (types, required members, minimums) plus the model's max, enum and pattern."""

    VALIDATED_METADATA_ATTRS = ParamValidator.VALIDATED_METADATA_ATTRS | {"max", "enum", "pattern"}

    def validate(self, params, shape):
        errors = _Errors()
        self._validate(params, shape, errors, name="")
        return errors

    def _validate(self, params, shape, errors, name):
        super()._validate(params, shape, errors, name)
        meta, kind = shape.metadata, shape.type_name
        if kind in ("string", "list", "map") and isinstance(params, (str, list, dict)):
            size = len(params)
        elif kind in ("integer", "long", "float", "double") and isinstance(params, (int, float)) and not isinstance(params, bool):
            size = params
        else:
            return
        if "max" in meta and size > meta["max"]:
            errors.report(name, f"above the model's max {meta['max']}", param=params)
        if kind == "string" and shape.enum and params not in shape.enum:
            errors.report(name, f"not in the model's enum {shape.enum}", param=params)
        if kind == "string" and "pattern" in meta and not _java_regex(meta["pattern"]).fullmatch(params):
            errors.report(name, f"does not match the model's pattern {meta['pattern']}", param=params)


@cache
def operation(service: str, op: str):
    return botocore.session.get_session().get_service_model(service).operation_model(op)


# ---- names: what AWS documents where botocore's model has no pattern ----

SG_TEXT = r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}"  # EC2 API Reference: CreateSecurityGroup, IpRange.Description
ECS_NAME = r"[A-Za-z0-9_-]{1,255}"  # ECS API Reference: CreateCluster clusterName, CreateService serviceName, family
ELB_NAME = r"(?=.{1,32}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"  # 32, alphanumerics and hyphens, none at either end
RDS_NAME = r"(?!.*--)[A-Za-z][A-Za-z0-9-]{{0,{}}}(?<!-)"  # a letter first; letters, digits, hyphens; no "--", no "-" last
# (operation, member) -> (pattern the whole value must match, the public source of the rule)
NAMES = {
    ("CreateLoadBalancer", "Name"): ("(?!internal-)" + ELB_NAME, "ELB API Reference, CreateLoadBalancer: Name (1-32 characters)"),
    ("CreateTargetGroup", "Name"): (ELB_NAME, "ELB API Reference, CreateTargetGroup: Name (1-32 characters)"),
    ("CreateBroker", "BrokerName"): (r"[A-Za-z0-9_-]{1,50}", "Amazon MQ API Reference, CreateBroker: brokerName (1-50 characters)"),
    ("CreateConfiguration", "Name"): (r"[A-Za-z0-9._~-]{1,150}", "Quotas in Amazon MQ: Configuration name (stated for ActiveMQ)"),
    ("CreateDBInstance", "DBInstanceIdentifier"): (RDS_NAME.format(62), "RDS API Reference, CreateDBInstance"),
    ("CreateDBInstance", "DBName"): (r"[A-Za-z][A-Za-z0-9_]{0,62}", "RDS API Reference, CreateDBInstance (PostgreSQL)"),
    ("CreateDBInstance", "MasterUsername"): (r"[A-Za-z][A-Za-z0-9]{0,62}", "RDS API Reference, CreateDBInstance (PostgreSQL)"),
    ("CreateDBParameterGroup", "DBParameterGroupName"): (RDS_NAME.format(254), "RDS API Reference, CreateDBParameterGroup"),
    ("CreateDBSubnetGroup", "DBSubnetGroupName"): (r"(?!default$)[A-Za-z0-9._ -]{1,255}", "RDS API Reference, CreateDBSubnetGroup"),
    ("CreateBucket", "Bucket"): (r"(?!xn--|sthree-|amzn-s3-demo-|\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
                                 r"(?<!-s3alias)(?<!--ol-s3)(?<!\.mrap)(?<!--x-s3)(?<!--table-s3)",
                                 "S3 User Guide, General purpose bucket naming rules"),
    # "Do not end your secret name with a hyphen followed by six characters" (the ARN's own suffix looks like that).
    ("CreateSecret", "Name"): (r"(?!.*-.{6}$)[A-Za-z0-9/_+=.@-]{1,512}", "Secrets Manager API Reference, CreateSecret: Name"),
    ("CreateSecurityGroup", "GroupName"): ("(?!sg-)" + SG_TEXT, "EC2 API Reference, CreateSecurityGroup: GroupName"),
    ("CreateSecurityGroup", "Description"): (SG_TEXT, "EC2 API Reference, CreateSecurityGroup: Description"),
    ("CreateCluster", "clusterName"): (ECS_NAME, "ECS API Reference, CreateCluster: clusterName"),
    ("CreateService", "serviceName"): (ECS_NAME, "ECS API Reference, CreateService: serviceName"),
    ("RegisterTaskDefinition", "family"): (ECS_NAME, "ECS API Reference, RegisterTaskDefinition: family"),
    ("PutDashboard", "DashboardName"): (r"[A-Za-z0-9_-]{1,255}", "CloudWatch API Reference, PutDashboard: DashboardName"),
    ("CreateTopic", "Name"): (r"[A-Za-z0-9_-]{1,256}", "SNS API Reference, CreateTopic: Name"),
}  # fmt: skip


# ---- rules: what AWS documents and botocore's models lack; (request, inputs) -> problems ----


def _iam_policy(kind: str, limit: int | None = None) -> Callable[[str], list[str]]:
    """IAM User Guide, "IAM JSON policy element reference": Version 2012-10-17, Effect Allow|Deny, Action, an
    alphanumeric Sid; identity policies name a Resource, trust and resource policies a Principal. "IAM and AWS STS
    quotas": a role trust policy 2,048 and a role's inline policies 10,240 characters (whitespace not counted)."""

    def check_policy(text: str) -> list[str]:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            return [f"policy is not JSON: {err}"]
        found = [] if doc.get("Version") == "2012-10-17" else [f"policy Version {doc.get('Version')!r}, not '2012-10-17'"]
        need = [("Action", "NotAction")] + [("Resource", "NotResource")] * (kind != "trust")
        need += [("Principal", "NotPrincipal")] * (kind != "identity")
        statements = doc.get("Statement")
        for s in statements if isinstance(statements, list) else [statements]:
            found += [f"statement {s.get('Sid', '')!r} has no {n[0]}" for n in need if not any(k in s for k in n)]
            found += [] if s.get("Effect") in ("Allow", "Deny") else [f"statement Effect {s.get('Effect')!r}"]
            found += [] if re.fullmatch(r"[A-Za-z0-9]*", s.get("Sid", "")) else [f"Sid {s['Sid']!r} is not alphanumeric"]
        size = len(re.sub(r"\s", "", text))
        return found + ([f"policy of {size} characters (without whitespace) > the {limit} quota"] if limit and size > limit else [])

    return check_policy


def _rule_rds_parameters(p, i):
    # RDS User Guide, "Using SSL with a PostgreSQL DB instance": rds.force_ssl, 0 or 1, dynamic, in the postgres
    # families; "Turning on query logging for your RDS for PostgreSQL DB instance": log_statement (none, ddl, mod,
    # all) and log_min_duration_statement (-1 or milliseconds), both dynamic; RDS API Reference,
    # ModifyDBParameterGroup: "immediate" applies to dynamic parameters only.
    class Milliseconds:  # -1 (off) or 0..2147483647
        def __contains__(self, value: str) -> bool:
            return bool(re.fullmatch(r"-1|\d{1,10}", value)) and int(value) <= 2_147_483_647

    milliseconds = Milliseconds()
    known = {"rds.force_ssl": (r"postgres\d+", {"0", "1"}, "dynamic"),
             "log_statement": (r"postgres\d+", {"none", "ddl", "mod", "all"}, "dynamic"),
             "log_min_duration_statement": (r"postgres\d+", milliseconds, "dynamic")}  # fmt: skip
    found = []
    for q in p["Parameters"]:
        family, values, kind = known.get(q["ParameterName"], (r"(?!)", None, None))
        if not re.fullmatch(family, i["family"]):
            found.append(f"{q['ParameterName']} is not a parameter this check knows for family {i['family']}")
        elif q["ParameterValue"] not in values or (q["ApplyMethod"] == "immediate" and kind != "dynamic"):
            found.append(f"{q['ParameterName']}={q['ParameterValue']!r} ({q['ApplyMethod']})")
    return found


def _rule_rabbitmq_conf(p, i):
    # Amazon MQ Developer Guide, "Configurable values for RabbitMQ on Amazon MQ": keys and ranges (ms, s).
    ranges = {"consumer_timeout": (0, 2_147_483_647), "heartbeat": (60, 3600)}
    found = []
    for line in base64.b64decode(p["Data"]).decode().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = (part.strip() for part in line.partition("="))
            low, high = ranges.get(name, (1, 0))
            found += [] if value.isdigit() and low <= int(value) <= high else [f"rabbitmq.conf {name} = {value}: unknown key or out of range"]
    return found


def _rule_broker(p, i):
    # Amazon MQ API Reference, CreateBroker: SubnetIds (SINGLE_INSTANCE: one), AutoMinorVersionUpgrade (true for
    # RabbitMQ 3.13 and later); User: RabbitMQ usernames are 2-100 letters, digits, "-", ".", "_", and never "guest".
    single = p["DeploymentMode"] == "SINGLE_INSTANCE" and len(p.get("SubnetIds", [])) != 1
    found = ["SINGLE_INSTANCE takes exactly one subnet"] if single else []
    if p["EngineType"] == "RABBITMQ":
        version = tuple(int(x) for x in p["EngineVersion"].split(".")[:2])
        found += ["AutoMinorVersionUpgrade must be true"] if version >= (3, 13) and not p.get("AutoMinorVersionUpgrade") else []
        found += ["Logs.Audit is not supported for RabbitMQ"] if p.get("Logs", {}).get("Audit") else []
        found += [f"username {u['Username']!r}" for u in p["Users"]
                  if u["Username"] == "guest" or not re.fullmatch(r"[A-Za-z0-9._-]{2,100}", u["Username"])]  # fmt: skip
    return found


def _rule_db_instance(p, i):
    # RDS User Guide, "Managing capacity automatically with Amazon RDS storage autoscaling": the maximum storage
    # threshold is at least 10 % above the allocated storage; "Publishing PostgreSQL logs to CloudWatch Logs": log types.
    exports = p.get("EnableCloudwatchLogsExports", [])
    found = [f"log export {x!r}" for x in exports if x not in ("postgresql", "upgrade", "iam-db-auth-error")]
    if p.get("MaxAllocatedStorage", 1e9) < 1.1 * p["AllocatedStorage"]:
        found.append(f"MaxAllocatedStorage {p['MaxAllocatedStorage']} is not 10 % above AllocatedStorage {p['AllocatedStorage']}")
    return found


def _rule_s3_lifecycle(p, i):
    # S3 User Guide, "Lifecycle configuration elements": unique IDs of up to 255 characters, an action in each rule, a
    # Filter of at most one of Prefix/Tag/ObjectSize*/And, no AbortIncompleteMultipartUpload with a tag filter.
    rules = p["LifecycleConfiguration"]["Rules"]
    actions = {"Expiration", "Transitions", "NoncurrentVersionExpiration", "NoncurrentVersionTransitions",
               "AbortIncompleteMultipartUpload"}  # fmt: skip
    ids = [r.get("ID", "") for r in rules]
    found = [f"rule IDs {ids}: not unique, or longer than 255"] if len(set(ids)) != len(ids) or max(map(len, ids)) > 255 else []
    for r in rules:
        f, name = r.get("Filter", {}), r.get("ID")
        found += [f"rule {name!r} has no action"] if not actions & set(r) else []
        found += [f"rule {name!r}: Filter sets {sorted(f)}"] if len(f) > 1 else []
        found += [f"rule {name!r}: abort-multipart with a tag filter"] if "AbortIncompleteMultipartUpload" in r and {"Tag", "And"} & set(f) else []
    return found


def _rule_ecr_lifecycle(p, i):
    # ECR User Guide, "Lifecycle policy properties in Amazon ECR".
    rules = json.loads(p["lifecyclePolicyText"]).get("rules", [])
    priorities = [r.get("rulePriority") for r in rules]
    found = [] if len(set(priorities)) == len(priorities) else [f"rulePriority values {priorities} are not unique"]
    for r in rules:
        s, n = r.get("selection", {}), r.get("rulePriority")
        status, count = s.get("tagStatus"), s.get("countType")
        found += [f"rule {n}: {problem}" for problem, bad in (
            ("rulePriority must be a positive integer", not isinstance(n, int) or n < 1),
            ("tagStatus must be tagged, untagged or any", status not in ("tagged", "untagged", "any")),
            ("tagged needs tagPrefixList or tagPatternList", status == "tagged" and not (s.get("tagPrefixList") or s.get("tagPatternList"))),
            ("countType must be imageCountMoreThan or sinceImagePushed", count not in ("imageCountMoreThan", "sinceImagePushed")),
            ("countUnit 'days' goes with sinceImagePushed, and only there", (count == "sinceImagePushed") != (s.get("countUnit") == "days")),
            ("countNumber must be a positive integer", not isinstance(s.get("countNumber"), int) or s["countNumber"] < 1),
            ("a tagStatus 'any' rule must have the highest rulePriority", status == "any" and n != max(priorities)),
            ("action type must be expire", r.get("action", {}).get("type") != "expire"),
        ) if bad]  # fmt: skip
    return found


def _listener_actions(actions: list[dict], https: bool | None) -> list[str]:
    # ELB User Guide, "Listener rules for your Application Load Balancer": one terminal action (forward, redirect,
    # fixed-response), performed last, orders unique; "Authenticate users using an Application Load Balancer": HTTPS only.
    ordered = [a["Type"] for a in sorted(actions, key=lambda a: a.get("Order", 0))]
    terminal = [t for t in ordered if t in ("forward", "redirect", "fixed-response")]
    found = [] if terminal == ordered[-1:] else [f"actions {ordered}: not exactly one terminal action, last"]
    found += ["duplicate action Order"] if len({a.get("Order") for a in actions}) != len(actions) else []
    authenticates = any(t.startswith("authenticate-") for t in ordered)
    return found + (["an authenticate action on a listener that is not HTTPS"] if authenticates and https is False else [])


def _rule_listener(p, i):
    https = p.get("Protocol") == "HTTPS"
    unready = https and (len(p.get("Certificates", [])) != 1 or "SslPolicy" not in p)
    return (["HTTPS listener without one certificate and an SslPolicy"] if unready else []) + _listener_actions(p["DefaultActions"], https)


def _rule_listener_rule(p, i):
    # ELB User Guide, "Listener rules" and "Quotas for your Application Load Balancers": path patterns up to 128
    # characters, 5 condition values per rule.
    values = [v for c in p["Conditions"] for v in c.get("PathPatternConfig", {}).get("Values", [])]
    found = [f"path pattern {v!r} longer than 128" for v in values if len(v) > 128]
    return found + (["more than 5 condition values"] if len(values) > 5 else []) + _listener_actions(p["Actions"], None)


def _rule_scalable(p, i):
    # Application Auto Scaling API Reference, RegisterScalableTarget/PutScalingPolicy: an ECS service's ResourceId
    # is "service/<cluster-name>/<service-name>".
    if p["ServiceNamespace"] == "ecs" and not re.fullmatch(r"service/[A-Za-z0-9_-]{1,255}/[A-Za-z0-9_-]{1,255}", p["ResourceId"]):
        return [f"ResourceId {p['ResourceId']!r} is not service/<cluster>/<service>"]
    inverted = p.get("MinCapacity", 0) > p.get("MaxCapacity", 1e9)
    return [f"MinCapacity {p['MinCapacity']} > MaxCapacity {p['MaxCapacity']}"] if inverted else []


def _metric_math(queries: list[dict]) -> list[str]:
    # CloudWatch API Reference, MetricDataQuery (App Auto Scaling: TargetTrackingMetricDataQuery): an Id starts with
    # a lowercase letter, then letters, digits, "_"; ids unique; exactly one query returns data; expressions use ids.
    ids = [q["Id"] for q in queries]
    found = [f"metric query Id {x!r}" for x in ids if not re.fullmatch(r"[a-z][A-Za-z0-9_]*", x)]
    found += [f"metric query ids {ids} are not unique"] if len(set(ids)) != len(ids) else []
    returning = sum(bool(q.get("ReturnData")) for q in queries)
    found += [] if returning == 1 else [f"{returning} metric queries return data, not exactly one"]
    for q in queries:  # lowercase words not followed by "(" (functions are upper case), other than operators
        unknown = set(re.findall(r"\b[a-z][A-Za-z0-9_]*\b(?!\s*\()", q.get("Expression", ""))) - set(ids) - {"and", "or", "not"}
        found += [f"metric query {q['Id']}: expression uses unknown ids {sorted(unknown)}"] if unknown else []
    return found


def _rule_scaling_policy(p, i):
    spec = p.get("TargetTrackingScalingPolicyConfiguration", {}).get("CustomizedMetricSpecification", {})
    return _rule_scalable(p, i) + (_metric_math(spec["Metrics"]) if "Metrics" in spec else [])


def _rule_alarm(p, i):
    # CloudWatch API Reference, PutMetricAlarm: Metrics, or MetricName with Namespace, Period and a statistic, not
    # both; EvaluationPeriods x Period at most one day (86,400 s); DatapointsToAlarm <= EvaluationPeriods;
    # TreatMissingData breaching|notBreaching|ignore|missing.
    single = [m for m in ("MetricName", "Namespace", "Period", "Statistic") if m in p or (m == "Statistic" and "ExtendedStatistic" in p)]
    found = [] if single in ([], ["MetricName", "Namespace", "Period", "Statistic"]) else [f"a single-metric alarm with only {single}"]
    found += (["both MetricName and Metrics"] if single else _metric_math(p["Metrics"])) if "Metrics" in p else []
    found += [] if single or "Metrics" in p else ["neither MetricName nor Metrics"]
    period = max([p.get("Period", 0)] + [q["MetricStat"]["Period"] for q in p.get("Metrics", []) if "MetricStat" in q])
    window = p["EvaluationPeriods"] * period
    found += [f"EvaluationPeriods x Period = {window} s > 86400"] if window > 86400 else []
    found += ["DatapointsToAlarm > EvaluationPeriods"] if p.get("DatapointsToAlarm", 0) > p["EvaluationPeriods"] else []
    missing = p["TreatMissingData"] in ("breaching", "notBreaching", "ignore", "missing")
    return found + ([] if missing else [f"TreatMissingData {p['TreatMissingData']!r}"])


def _rule_dashboard(p, i):
    # CloudWatch User Guide, "Dashboard Body Structure and Syntax": a widgets array (0-500); x 0-23, width 1-24,
    # height 1-1000; a metric widget's properties hold its region and 1-100 metrics, each [Namespace, MetricName,
    # (DimensionName, DimensionValue)*, {rendering properties}].
    rendering = {"accountId", "color", "expression", "id", "label", "period", "region", "stat", "visible", "yAxis"}
    widgets = json.loads(p["DashboardBody"]).get("widgets")
    if not isinstance(widgets, list) or len(widgets) > 500:
        return ["DashboardBody has no widgets array of at most 500"]
    found = []
    for n, w in enumerate(widgets):
        x, width, height, props = w.get("x", 0), w.get("width", 6), w.get("height", 6), w.get("properties", {})
        if not (0 <= x <= 23 and 1 <= width <= 24 and x + width <= 24 and 1 <= height <= 1000 and w.get("y", 0) >= 0):
            found.append(f"widget {n}: placement x={x} width={width} height={height}")
        if w.get("type") != "metric":
            found += [] if w.get("type") in ("text", "log", "alarm", "explorer", "custom") else [f"widget {n}: type {w.get('type')!r}"]
            continue
        found += [] if "region" in props else [f"widget {n}: no region"]
        found += [] if 1 <= len(props.get("metrics", [])) <= 100 else [f"widget {n}: not 1-100 metrics"]
        for m in props.get("metrics", []):
            if len(m) == 1 and isinstance(m[0], dict) and "expression" in m[0]:
                # A math expression over the widget's other metrics, by their ids (same guide, "Metric math").
                ids = {o.get("id") for other in props["metrics"] for o in other if isinstance(o, dict)}
                used = set(re.findall(r"[a-z][A-Za-z0-9_]*", m[0]["expression"])) - {"e"}
                found += [] if used <= ids else [f"widget {n}: expression {m[0]['expression']!r} uses unknown ids {sorted(used - ids)}"]
                continue
            names, options = [v for v in m if isinstance(v, str)], [v for v in m if isinstance(v, dict)]
            if len(names) < 2 or len(names) % 2 or options not in ([], m[-1:]) or (options and set(options[0]) - rendering):
                found.append(f"widget {n}: metric {m}")
    return found


def _rule_event_pattern(p, i):
    # EventBridge User Guide, "Amazon EventBridge event patterns": every value to match is in an array.
    def arrays(node, path):
        if isinstance(node, dict):
            return [x for k, v in node.items() for x in arrays(v, f"{path}.{k}")]
        return [] if isinstance(node, list) else [f"EventPattern {path} = {node!r} is not an array"]

    return arrays(json.loads(p["EventPattern"]), "") if "EventPattern" in p else []


def _rule_sg_permissions(p, i):
    # EC2 API Reference, IpPermission: tcp/udp ports FromPort <= ToPort within 0-65535; descriptions as SG_TEXT.
    found = []
    for perm in p["IpPermissions"]:
        if perm["IpProtocol"] in ("tcp", "udp") and not 0 <= perm.get("FromPort", -1) <= perm.get("ToPort", -1) <= 65535:
            found.append(f"ports {perm.get('FromPort')}-{perm.get('ToPort')}")
        peers = perm.get("IpRanges", []) + perm.get("UserIdGroupPairs", [])
        found += [f"description {d['Description']!r}" for d in peers if not re.fullmatch(SG_TEXT, d.get("Description", ""))]
    return found


def _rule_subscribe(p, i):
    # SNS API Reference, Subscribe: the protocols; an email endpoint is an address.
    protocols = ("http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose")
    bad_email = p["Protocol"] == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+", p.get("Endpoint", ""))
    return [] if p["Protocol"] in protocols and not bad_email else [f"Protocol {p['Protocol']!r}, Endpoint {p.get('Endpoint')!r}"]


RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
ROUTE_TARGETS = ("GatewayId", "InterfaceId", "InstanceId", "ConnectionId", "EndpointId")
RULES: dict[str, Callable[[dict, dict], list[str]]] = {
    "CreateRole": lambda p, i: _iam_policy("trust", 2048)(p["AssumeRolePolicyDocument"]),
    "PutRolePolicy": lambda p, i: _iam_policy("identity", 10240)(p["PolicyDocument"]),
    "PutBucketPolicy": lambda p, i: _iam_policy("resource")(p["Policy"]),
    # KMS API Reference, CreateKey: a key policy of at most 32 KB.
    "CreateKey": lambda p, i: _iam_policy("resource", 32768)(p["Policy"]),
    "SetTopicAttributes": lambda p, i: _iam_policy("resource")(p["AttributeValue"]),
    # EC2 API Reference, CreateRoute: exactly one target.
    "CreateRoute": lambda p, i: [] if sum(k.endswith(ROUTE_TARGETS) for k in p) == 1 else ["not exactly one route target"],
    "AuthorizeSecurityGroupIngress": _rule_sg_permissions,
    "AuthorizeSecurityGroupEgress": _rule_sg_permissions,
    "UpdateConfiguration": _rule_rabbitmq_conf,
    "CreateBroker": _rule_broker,
    "ModifyDBParameterGroup": _rule_rds_parameters,
    "CreateDBInstance": _rule_db_instance,
    "PutBucketLifecycleConfiguration": _rule_s3_lifecycle,
    "PutLifecyclePolicy": _rule_ecr_lifecycle,
    # CloudWatch Logs API Reference, PutRetentionPolicy: the possible values of retentionInDays.
    "PutRetentionPolicy": lambda p, i: [] if p["retentionInDays"] in RETENTION_DAYS else [f"retentionInDays {p['retentionInDays']}"],
    # ELB API Reference, CreateLoadBalancer: an Application Load Balancer takes subnets from at least two AZs.
    "CreateLoadBalancer": lambda p, i: ["fewer than two subnets"] if p["Type"] == "application" and len(p.get("Subnets", [])) < 2 else [],
    "CreateListener": _rule_listener,
    "CreateRule": _rule_listener_rule,
    "RegisterScalableTarget": _rule_scalable,
    "PutScalingPolicy": _rule_scaling_policy,
    "PutMetricAlarm": _rule_alarm,
    "PutDashboard": _rule_dashboard,
    "PutRule": _rule_event_pattern,
    "Subscribe": _rule_subscribe,
    # ECS API Reference, ClusterSetting: containerInsights is enhanced, enabled or disabled; ContainerDefinition: name.
    "CreateCluster": lambda p, i: [f"setting {s}" for s in p.get("settings", []) if s["value"] not in ("enhanced", "enabled", "disabled")],
    "RegisterTaskDefinition": lambda p, i: [f"container name {c['name']!r}" for c in p["containerDefinitions"]
                                            if not re.fullmatch(ECS_NAME, c["name"])],
}  # fmt: skip


# ---- per stack ----


def is_component(r: Resource) -> bool:
    return r.typ.split(":")[0] == PROJECT  # our ComponentResources: groupings, nothing in AWS


def is_skipped(r: Resource) -> bool:
    return r.typ.split(":")[0] in NO_AWS_CALL


def requests(stack: StackResult, r: Resource) -> list[tuple[str, str, dict]]:
    """(service, operation, request) for each call Terraform makes to create ``r``."""
    service, operations, convert = CONVERTERS[r.typ]
    calls = [(service, op, plain(params)) for op, params in convert(plain(reveal(r.inputs)), Ctx(stack, r))]
    assert {op for _, op, _ in calls} <= set(operations), f"{r.typ}: the converter calls operations its CONVERTERS entry lacks"
    return calls


def check(service: str, op: str, params: dict, inputs: dict) -> list[str]:
    """What is wrong with one request: botocore's report, then NAMES and RULES."""
    found = StrictValidator().validate(params, operation(service, op).input_shape).generate_report().splitlines()
    for (name_op, member), (pattern, source) in NAMES.items():
        if name_op == op and member in params and not re.fullmatch(pattern, params[member]):
            found.append(f"{member}={params[member]!r} ({len(params[member])} characters) breaks the rule in {source}")
    return found + RULES.get(op, lambda p, i: [])(params, inputs)


def problems(stack: StackResult) -> list[str]:
    """One line per problem: the resource's URN, the operation, what is wrong (botocore's text, or rule and source)."""
    found = []
    for r in stack.resources:
        if is_component(r) or is_skipped(r):
            continue
        if r.typ not in CONVERTERS:
            found.append(f"{r.urn}: no converter for {r.typ}: add it to CONVERTERS in tests/aws_models.py")
            continue
        try:
            calls = requests(stack, r)
        except (KeyError, ValueError, TypeError) as err:
            found.append(f"{r.urn}: the converter cannot map these inputs: {err!r}")
            continue
        inputs = plain(reveal(r.inputs))
        found += [f"{r.urn}: {op}: {line}" for service, op, params in calls for line in check(service, op, params, inputs)]
    return found


def validated_counts(stack: StackResult) -> dict[str, int]:
    """Resources validated against an AWS API model (those with a converter) and skipped (NO_AWS_CALL), out of all
    resources but the component resources (which create nothing)."""
    resources = [r for r in stack.resources if not is_component(r)]
    validated = sum(r.typ in CONVERTERS for r in resources)
    return {"validated": validated, "skipped": sum(map(is_skipped, resources)), "total": len(resources)}
