"""What the deployer calls over a resource's whole life, per Pulumi type and operation -- written from the Terraform
AWS provider that pulumi-aws bridges (hashicorp/terraform-provider-aws, the file named in each row: its Create,
Read, Update and Delete functions and the waiters they call), and from what AWS authorises on the caller besides
the call itself. It is kept apart from infra/tools/deployer_policy.py on purpose: the policy is generated from a table
of its own, and this one checks it (tests/test_deployer_lifecycle.py).

Each operation is a space-separated list of IAM actions (the action that authorises each API call; S3's
configuration calls are authorised by differently named actions, Service Authorization Reference). A replacement
is a create and a delete. ``behalf`` lists what AWS checks on the caller's identity during an operation on a
resource other than the one being called -- each with the ARN it is checked on:
- RDS: ``DeleteDBInstance`` with a final snapshot is authorised as ``rds:CreateDBSnapshot`` on the instance and on
  the snapshot, and with ``CopyTagsToSnapshot`` as ``rds:AddTagsToResource`` on the snapshot (AWS notice to RDS
  customers of August 2024, effective for every account from 2025-02-28; aws-solutions/instance-scheduler-on-aws
  issue 572 quotes it; the provider's ``resourceInstanceDelete`` sends ``FinalDBSnapshotIdentifier``).
- ECR and RDS Performance Insights create grants on a customer key with the caller's permission and ECR retires
  them when the repository goes (ECR User Guide, "Encryption at rest"; RDS User Guide, "Changing an AWS KMS policy
  for Performance Insights").
- Roles passed to a service: ``iam:PassRole`` on the role (IAM User Guide, "Granting a user permissions to pass a
  role to an AWS service").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.tools.testing import ACCOUNT, REGION, Resource

TF = "hashicorp/terraform-provider-aws internal/service/"
Arn = Callable[[Resource], list[str]]


@dataclass(frozen=True)
class Calls:
    source: str
    create: str = ""
    read: str = ""
    update: str = ""
    delete: str = ""
    behalf: tuple[tuple[str, str, Arn], ...] = ()  # (operation, action, ARNs it is checked on)

    def actions(self, operation: str) -> set[str]:
        if operation == "replace":
            return self.actions("create") | self.actions("delete")
        return set(getattr(self, operation).split())


OPERATIONS = ("create", "read", "update", "delete", "replace")


def physical(resource: Resource, lower: bool = False) -> str:
    """The name AWS would see: Pulumi's autoname, the logical name and 7 random characters."""
    name = f"{resource.name}-a1b2c3d"
    return name.lower() if lower else name


def _rds(kind: str, name: Callable[[Resource], str]) -> Arn:
    return lambda r: [f"arn:aws:rds:{REGION}:{ACCOUNT}:{kind}:{name(r)}"]


def _role(key: str) -> Arn:
    return lambda r: [f"arn:aws:iam::{ACCOUNT}:role/{r.inputs[key].rsplit('/', 1)[-1]}-a1b2c3d"] if r.inputs.get(key) else []


_KEY: Arn = lambda r: [f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"]  # noqa: E731
_FINAL_SNAPSHOT = _rds("snapshot", lambda r: str(r.inputs["finalSnapshotIdentifier"]).lower())
_DB = _rds("db", lambda r: physical(r, lower=True))
_EC2_TAGS = "ec2:CreateTags ec2:DeleteTags"
_RDS_TAGS = "rds:AddTagsToResource rds:RemoveTagsFromResource rds:ListTagsForResource"
_ELB_TAGS = "elasticloadbalancing:AddTags elasticloadbalancing:RemoveTags elasticloadbalancing:DescribeTags"

LIFECYCLE: dict[str, Calls] = {
    "aws:ec2/vpc:Vpc": Calls(
        TF + "ec2/vpc_.go", f"ec2:CreateVpc ec2:ModifyVpcAttribute {_EC2_TAGS}",
        "ec2:DescribeVpcs ec2:DescribeVpcAttribute ec2:DescribeNetworkAcls ec2:DescribeRouteTables ec2:DescribeSecurityGroups",
        f"ec2:ModifyVpcAttribute {_EC2_TAGS}", "ec2:DeleteVpc ec2:DescribeVpcs"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": Calls(
        TF + "ec2/vpc_default_security_group.go",
        "ec2:DescribeSecurityGroups ec2:RevokeSecurityGroupIngress ec2:RevokeSecurityGroupEgress "
        "ec2:AuthorizeSecurityGroupIngress ec2:AuthorizeSecurityGroupEgress", "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupIngress ec2:RevokeSecurityGroupEgress ec2:AuthorizeSecurityGroupIngress "
        f"ec2:AuthorizeSecurityGroupEgress {_EC2_TAGS}", ""),
    "aws:ec2/internetGateway:InternetGateway": Calls(
        TF + "ec2/vpc_internet_gateway.go", f"ec2:CreateInternetGateway ec2:AttachInternetGateway {_EC2_TAGS}",
        "ec2:DescribeInternetGateways", "ec2:AttachInternetGateway ec2:DetachInternetGateway",
        "ec2:DetachInternetGateway ec2:DeleteInternetGateway ec2:DescribeInternetGateways"),
    "aws:ec2/routeTable:RouteTable": Calls(
        TF + "ec2/vpc_route_table.go", f"ec2:CreateRouteTable ec2:CreateRoute {_EC2_TAGS}", "ec2:DescribeRouteTables",
        "ec2:CreateRoute ec2:ReplaceRoute ec2:DeleteRoute", "ec2:DeleteRouteTable ec2:DescribeRouteTables"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": Calls(
        TF + "ec2/vpc_route_table_association.go", "ec2:AssociateRouteTable", "ec2:DescribeRouteTables",
        "ec2:ReplaceRouteTableAssociation", "ec2:DisassociateRouteTable"),
    "aws:ec2/subnet:Subnet": Calls(
        TF + "ec2/vpc_subnet.go", f"ec2:CreateSubnet ec2:ModifySubnetAttribute {_EC2_TAGS}", "ec2:DescribeSubnets",
        "ec2:ModifySubnetAttribute", "ec2:DescribeNetworkInterfaces ec2:DeleteSubnet"),  # lingering ENIs first
    "aws:ec2/eip:Eip": Calls(
        TF + "ec2/ec2_eip.go", f"ec2:AllocateAddress {_EC2_TAGS}", "ec2:DescribeAddresses ec2:DescribeAddressesAttribute",
        _EC2_TAGS, "ec2:DisassociateAddress ec2:ReleaseAddress"),
    "aws:ec2/natGateway:NatGateway": Calls(
        TF + "ec2/vpc_nat_gateway.go", f"ec2:CreateNatGateway {_EC2_TAGS}", "ec2:DescribeNatGateways", _EC2_TAGS,
        "ec2:DeleteNatGateway ec2:DescribeNatGateways"),
    "aws:ec2/flowLog:FlowLog": Calls(
        TF + "ec2/vpc_flow_log.go", f"ec2:CreateFlowLogs {_EC2_TAGS}", "ec2:DescribeFlowLogs", _EC2_TAGS,
        "ec2:DeleteFlowLogs", (("create", "iam:PassRole", _role("iamRoleArn")),)),
    "aws:ec2/securityGroup:SecurityGroup": Calls(
        TF + "ec2/vpc_security_group.go",
        f"ec2:CreateSecurityGroup ec2:RevokeSecurityGroupEgress ec2:DescribeSecurityGroups {_EC2_TAGS}",
        "ec2:DescribeSecurityGroups", _EC2_TAGS,
        "ec2:DescribeNetworkInterfaces ec2:RevokeSecurityGroupIngress ec2:RevokeSecurityGroupEgress ec2:DeleteSecurityGroup"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": Calls(
        TF + "vpc/security_group_ingress_rule.go", f"ec2:AuthorizeSecurityGroupIngress {_EC2_TAGS}",
        "ec2:DescribeSecurityGroupRules", f"ec2:ModifySecurityGroupRules {_EC2_TAGS}", "ec2:RevokeSecurityGroupIngress"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": Calls(
        TF + "vpc/security_group_egress_rule.go", f"ec2:AuthorizeSecurityGroupEgress {_EC2_TAGS}",
        "ec2:DescribeSecurityGroupRules", f"ec2:ModifySecurityGroupRules {_EC2_TAGS}", "ec2:RevokeSecurityGroupEgress"),
    "aws:mq/configuration:Configuration": Calls(
        TF + "mq/configuration.go", "mq:CreateConfiguration mq:UpdateConfiguration mq:CreateTags",
        "mq:DescribeConfiguration mq:DescribeConfigurationRevision mq:ListTags",
        "mq:UpdateConfiguration mq:CreateTags mq:DeleteTags", "mq:DeleteConfiguration"),
    "aws:mq/broker:Broker": Calls(
        # Amazon MQ guide, "IAM permissions required to create an Amazon MQ broker": the ENI calls in our subnets.
        TF + "mq/broker.go", "mq:CreateBroker mq:DescribeBroker ec2:CreateNetworkInterface "
        "ec2:CreateNetworkInterfacePermission ec2:DescribeNetworkInterfaces ec2:DescribeSubnets ec2:DescribeVpcs "
        "ec2:DescribeSecurityGroups", "mq:DescribeBroker mq:ListTags",
        "mq:UpdateBroker mq:RebootBroker mq:DescribeBroker mq:CreateTags mq:DeleteTags",
        "mq:DeleteBroker mq:DescribeBroker ec2:DeleteNetworkInterface ec2:DetachNetworkInterface"),
    "aws:rds/subnetGroup:SubnetGroup": Calls(
        TF + "rds/subnet_group.go", f"rds:CreateDBSubnetGroup {_RDS_TAGS}", "rds:DescribeDBSubnetGroups rds:ListTagsForResource",
        f"rds:ModifyDBSubnetGroup {_RDS_TAGS}", "rds:DeleteDBSubnetGroup rds:DescribeDBSubnetGroups"),
    "aws:rds/parameterGroup:ParameterGroup": Calls(
        TF + "rds/parameter_group.go", f"rds:CreateDBParameterGroup rds:ModifyDBParameterGroup {_RDS_TAGS}",
        "rds:DescribeDBParameterGroups rds:DescribeDBParameters rds:ListTagsForResource",
        f"rds:ModifyDBParameterGroup rds:ResetDBParameterGroup {_RDS_TAGS}", "rds:DeleteDBParameterGroup"),
    "aws:rds/instance:Instance": Calls(
        TF + "rds/instance.go", "rds:CreateDBInstance rds:DescribeDBInstances rds:ModifyDBInstance rds:RebootDBInstance "
        "rds:AddTagsToResource", "rds:DescribeDBInstances rds:ListTagsForResource",
        f"rds:ModifyDBInstance rds:RebootDBInstance rds:DescribeDBInstances {_RDS_TAGS}",
        # a protected instance is first modified to turn protection off, then deleted with its final snapshot
        "rds:ModifyDBInstance rds:DeleteDBInstance rds:DescribeDBInstances",
        (("delete", "rds:DeleteDBInstance", _DB), ("delete", "rds:CreateDBSnapshot", _DB),
         ("delete", "rds:CreateDBSnapshot", _FINAL_SNAPSHOT), ("delete", "rds:AddTagsToResource", _FINAL_SNAPSHOT),
         ("create", "kms:CreateGrant", _KEY), ("create", "kms:DescribeKey", _KEY),
         ("create", "iam:PassRole", _role("monitoringRoleArn")))),
    "aws:secretsmanager/secret:Secret": Calls(
        TF + "secretsmanager/secret.go", "secretsmanager:CreateSecret secretsmanager:DescribeSecret secretsmanager:TagResource",
        "secretsmanager:DescribeSecret secretsmanager:GetResourcePolicy",
        "secretsmanager:UpdateSecret secretsmanager:TagResource secretsmanager:UntagResource",
        "secretsmanager:DeleteSecret secretsmanager:DescribeSecret"),
    "aws:secretsmanager/secretVersion:SecretVersion": Calls(
        # Secrets Manager encrypts with the caller's permission on the key (User Guide, "Secret encryption and
        # decryption"), and reading the version back decrypts it.
        TF + "secretsmanager/secret_version.go", "secretsmanager:PutSecretValue kms:GenerateDataKey",
        "secretsmanager:GetSecretValue secretsmanager:ListSecretVersionIds kms:Decrypt",
        "secretsmanager:PutSecretValue kms:GenerateDataKey secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:UpdateSecretVersionStage secretsmanager:DescribeSecret"),
    "aws:s3/bucket:Bucket": Calls(
        # Read covers every bucket sub-configuration, set or not; force_destroy empties it first (its
        # objects: test_deployer_lifecycle's FORCE_DESTROY).
        TF + "s3/bucket.go", "s3:CreateBucket s3:ListBucket s3:PutBucketTagging",
        "s3:ListBucket s3:GetBucketAcl s3:GetBucketCORS s3:GetBucketWebsite s3:GetBucketVersioning "
        "s3:GetAccelerateConfiguration s3:GetBucketRequestPayment s3:GetBucketLogging s3:GetLifecycleConfiguration "
        "s3:GetReplicationConfiguration s3:GetEncryptionConfiguration s3:GetBucketObjectLockConfiguration "
        "s3:GetBucketPolicy s3:GetBucketTagging", "s3:PutBucketTagging", "s3:DeleteBucket"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": Calls(
        TF + "s3/bucket_ownership_controls.go", "s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls", "s3:PutBucketOwnershipControls"),  # DeleteBucketOwnershipControls
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Calls(
        TF + "s3/bucket_public_access_block.go", "s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),  # DeletePublicAccessBlock
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": Calls(
        TF + "s3/bucket_server_side_encryption_configuration.go", "s3:PutEncryptionConfiguration",
        "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration", "s3:PutEncryptionConfiguration"),
    "aws:s3/bucketVersioning:BucketVersioning": Calls(
        TF + "s3/bucket_versioning.go", "s3:PutBucketVersioning", "s3:GetBucketVersioning", "s3:PutBucketVersioning",
        "s3:PutBucketVersioning"),  # delete suspends versioning
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": Calls(
        TF + "s3/bucket_lifecycle_configuration.go", "s3:PutLifecycleConfiguration s3:GetLifecycleConfiguration",
        "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    "aws:s3/bucketPolicy:BucketPolicy": Calls(
        TF + "s3/bucket_policy.go", "s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy"),
    "aws:s3/bucketLogging:BucketLogging": Calls(
        TF + "s3/bucket_logging.go", "s3:PutBucketLogging", "s3:GetBucketLogging", "s3:PutBucketLogging",
        "s3:PutBucketLogging"),
    "aws:kms/key:Key": Calls(
        TF + "kms/key.go", "kms:CreateKey kms:DescribeKey kms:GetKeyPolicy kms:EnableKeyRotation kms:GetKeyRotationStatus "
        "kms:ListResourceTags kms:TagResource", "kms:DescribeKey kms:GetKeyPolicy kms:GetKeyRotationStatus kms:ListResourceTags",
        "kms:PutKeyPolicy kms:UpdateKeyDescription kms:EnableKeyRotation kms:DisableKeyRotation kms:TagResource "
        "kms:UntagResource", "kms:ScheduleKeyDeletion kms:DescribeKey"),
    "aws:kms/alias:Alias": Calls(
        TF + "kms/alias.go", "kms:CreateAlias", "kms:ListAliases", "kms:UpdateAlias", "kms:DeleteAlias"),
    "aws:wafv2/webAcl:WebAcl": Calls(
        TF + "wafv2/web_acl.go", "wafv2:CreateWebACL wafv2:TagResource", "wafv2:GetWebACL wafv2:ListTagsForResource",
        "wafv2:UpdateWebACL wafv2:TagResource wafv2:UntagResource", "wafv2:GetWebACL wafv2:DeleteWebACL"),
    "aws:wafv2/webAclAssociation:WebAclAssociation": Calls(
        # WAF Developer Guide, "Associating or disassociating a web ACL": an ALB also needs SetWebAcl.
        TF + "wafv2/web_acl_association.go", "wafv2:AssociateWebACL elasticloadbalancing:SetWebAcl",
        "wafv2:GetWebACLForResource", "", "wafv2:DisassociateWebACL elasticloadbalancing:SetWebAcl"),
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": Calls(
        # WAF Developer Guide, "Permissions required to publish logs to Amazon CloudWatch Logs".
        TF + "wafv2/web_acl_logging_configuration.go", "wafv2:PutLoggingConfiguration logs:CreateLogDelivery "
        "logs:PutResourcePolicy logs:DescribeResourcePolicies logs:DescribeLogGroups", "wafv2:GetLoggingConfiguration",
        "wafv2:PutLoggingConfiguration", "wafv2:DeleteLoggingConfiguration logs:DeleteLogDelivery"),
    "aws:ecr/repository:Repository": Calls(
        TF + "ecr/repository.go", "ecr:CreateRepository ecr:DescribeRepositories ecr:TagResource",
        "ecr:DescribeRepositories ecr:ListTagsForResource",
        "ecr:PutImageScanningConfiguration ecr:PutImageTagMutability ecr:TagResource ecr:UntagResource",
        "ecr:DeleteRepository ecr:DescribeRepositories",
        (("create", "kms:CreateGrant", _KEY), ("create", "kms:DescribeKey", _KEY), ("delete", "kms:RetireGrant", _KEY))),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": Calls(
        TF + "ecr/lifecycle_policy.go", "ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy", "ecr:PutLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy"),
    "docker-build:index:Image": Calls(
        # pulumi/pulumi-docker-build provider/internal/image.go: push on create/update, check on read, delete tags.
        "pulumi/pulumi-docker-build provider/internal/image.go", "ecr:BatchCheckLayerAvailability ecr:InitiateLayerUpload "
        "ecr:UploadLayerPart ecr:CompleteLayerUpload ecr:PutImage ecr:BatchGetImage ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability ecr:InitiateLayerUpload ecr:UploadLayerPart "
        "ecr:CompleteLayerUpload ecr:PutImage", "ecr:BatchDeleteImage"),
    "aws:ecs/cluster:Cluster": Calls(
        TF + "ecs/cluster.go", "ecs:CreateCluster ecs:DescribeClusters ecs:TagResource", "ecs:DescribeClusters ecs:ListTagsForResource",
        "ecs:UpdateCluster ecs:UpdateClusterSettings ecs:TagResource ecs:UntagResource",
        "ecs:DeleteCluster ecs:DescribeClusters"),
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": Calls(
        TF + "ecs/cluster_capacity_providers.go", "ecs:PutClusterCapacityProviders ecs:DescribeClusters",
        "ecs:DescribeClusters", "ecs:PutClusterCapacityProviders", "ecs:PutClusterCapacityProviders"),
    "aws:ecs/taskDefinition:TaskDefinition": Calls(
        TF + "ecs/task_definition.go", "ecs:RegisterTaskDefinition ecs:TagResource",
        "ecs:DescribeTaskDefinition ecs:ListTagsForResource", "ecs:TagResource ecs:UntagResource",
        "ecs:DeregisterTaskDefinition",
        (("create", "iam:PassRole", _role("executionRoleArn")), ("create", "iam:PassRole", _role("taskRoleArn")))),
    "aws:ecs/service:Service": Calls(
        # delete: desired count 0, then DeleteService, waiting on DescribeServices
        TF + "ecs/service.go", "ecs:CreateService ecs:DescribeServices ecs:TagResource", "ecs:DescribeServices",
        "ecs:UpdateService ecs:DescribeServices ecs:TagResource ecs:UntagResource",
        "ecs:UpdateService ecs:DeleteService ecs:DescribeServices"),
    "aws:appautoscaling/target:Target": Calls(
        # ECS guide, "IAM permissions required for Amazon ECS service auto scaling".
        TF + "appautoscaling/target.go", "application-autoscaling:RegisterScalableTarget "
        "application-autoscaling:DescribeScalableTargets application-autoscaling:TagResource ecs:DescribeServices "
        "ecs:UpdateService cloudwatch:DescribeAlarms cloudwatch:PutMetricAlarm",
        "application-autoscaling:DescribeScalableTargets application-autoscaling:ListTagsForResource",
        "application-autoscaling:RegisterScalableTarget application-autoscaling:TagResource "
        "application-autoscaling:UntagResource", "application-autoscaling:DeregisterScalableTarget cloudwatch:DeleteAlarms"),
    "aws:appautoscaling/policy:Policy": Calls(
        TF + "appautoscaling/policy.go", "application-autoscaling:PutScalingPolicy cloudwatch:PutMetricAlarm "
        "cloudwatch:DescribeAlarms", "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy cloudwatch:DeleteAlarms"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Calls(
        TF + "cloudwatch/metric_alarm.go", "cloudwatch:PutMetricAlarm cloudwatch:TagResource",
        "cloudwatch:DescribeAlarms cloudwatch:ListTagsForResource", "cloudwatch:PutMetricAlarm cloudwatch:TagResource "
        "cloudwatch:UntagResource", "cloudwatch:DeleteAlarms"),
    "aws:cloudwatch/dashboard:Dashboard": Calls(
        TF + "cloudwatch/dashboard.go", "cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:PutDashboard",
        "cloudwatch:DeleteDashboards"),
    "aws:cloudwatch/eventRule:EventRule": Calls(
        TF + "events/rule.go", "events:PutRule events:TagResource", "events:DescribeRule events:ListTagsForResource",
        "events:PutRule events:EnableRule events:DisableRule events:TagResource events:UntagResource", "events:DeleteRule"),
    "aws:cloudwatch/eventTarget:EventTarget": Calls(
        TF + "events/target.go", "events:PutTargets", "events:ListTargetsByRule", "events:PutTargets", "events:RemoveTargets"),
    "aws:sns/topic:Topic": Calls(
        TF + "sns/topic.go", "sns:CreateTopic sns:SetTopicAttributes sns:TagResource",
        "sns:GetTopicAttributes sns:ListTagsForResource", "sns:SetTopicAttributes sns:TagResource sns:UntagResource",
        "sns:DeleteTopic"),
    "aws:sns/topicPolicy:TopicPolicy": Calls(
        TF + "sns/topic_policy.go", "sns:SetTopicAttributes", "sns:GetTopicAttributes", "sns:SetTopicAttributes",
        "sns:SetTopicAttributes"),
    "aws:sns/topicSubscription:TopicSubscription": Calls(
        TF + "sns/topic_subscription.go", "sns:Subscribe sns:GetSubscriptionAttributes", "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes", "sns:Unsubscribe"),
    "aws:cloudwatch/logGroup:LogGroup": Calls(
        TF + "logs/group.go", "logs:CreateLogGroup logs:PutRetentionPolicy logs:TagResource",
        "logs:DescribeLogGroups logs:ListTagsForResource", "logs:PutRetentionPolicy logs:DeleteRetentionPolicy "
        "logs:AssociateKmsKey logs:DisassociateKmsKey logs:TagResource logs:UntagResource", "logs:DeleteLogGroup"),
    "aws:iam/role:Role": Calls(
        TF + "iam/role.go", "iam:CreateRole iam:GetRole iam:TagRole",
        "iam:GetRole iam:ListRolePolicies iam:ListAttachedRolePolicies",
        "iam:UpdateRole iam:UpdateAssumeRolePolicy iam:TagRole iam:UntagRole",
        "iam:ListInstanceProfilesForRole iam:ListRolePolicies iam:ListAttachedRolePolicies iam:DeleteRole"),
    "aws:iam/rolePolicy:RolePolicy": Calls(
        TF + "iam/role_policy.go", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Calls(
        TF + "iam/role_policy_attachment.go", "iam:AttachRolePolicy", "iam:ListAttachedRolePolicies", "",
        "iam:DetachRolePolicy"),
    "aws:lb/loadBalancer:LoadBalancer": Calls(
        TF + "elbv2/load_balancer.go", f"elasticloadbalancing:CreateLoadBalancer "
        f"elasticloadbalancing:ModifyLoadBalancerAttributes elasticloadbalancing:DescribeLoadBalancers {_ELB_TAGS}",
        "elasticloadbalancing:DescribeLoadBalancers elasticloadbalancing:DescribeLoadBalancerAttributes "
        "elasticloadbalancing:DescribeTags", "elasticloadbalancing:ModifyLoadBalancerAttributes "
        f"elasticloadbalancing:SetSecurityGroups elasticloadbalancing:SetSubnets {_ELB_TAGS}",
        # waits for the load balancer's network interfaces to go
        "elasticloadbalancing:DeleteLoadBalancer ec2:DescribeNetworkInterfaces"),
    "aws:lb/targetGroup:TargetGroup": Calls(
        TF + "elbv2/target_group.go", "elasticloadbalancing:CreateTargetGroup "
        f"elasticloadbalancing:ModifyTargetGroupAttributes {_ELB_TAGS}", "elasticloadbalancing:DescribeTargetGroups "
        "elasticloadbalancing:DescribeTargetGroupAttributes elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:ModifyTargetGroup elasticloadbalancing:ModifyTargetGroupAttributes " + _ELB_TAGS,
        "elasticloadbalancing:DeleteTargetGroup"),
    "aws:lb/listener:Listener": Calls(
        TF + "elbv2/listener.go", f"elasticloadbalancing:CreateListener {_ELB_TAGS}",
        "elasticloadbalancing:DescribeListeners elasticloadbalancing:DescribeListenerAttributes "
        "elasticloadbalancing:DescribeTags", "elasticloadbalancing:ModifyListener "
        f"elasticloadbalancing:ModifyListenerAttributes {_ELB_TAGS}", "elasticloadbalancing:DeleteListener"),
    "aws:lb/listenerRule:ListenerRule": Calls(
        TF + "elbv2/listener_rule.go", f"elasticloadbalancing:CreateRule {_ELB_TAGS}",
        "elasticloadbalancing:DescribeRules elasticloadbalancing:DescribeTags",
        f"elasticloadbalancing:ModifyRule elasticloadbalancing:SetRulePriorities {_ELB_TAGS}",
        "elasticloadbalancing:DeleteRule"),
    # No AWS call: generated values run in the program.
    "random:index/randomPassword:RandomPassword": Calls("pulumi/pulumi-random (local)"),
    "random:index/randomString:RandomString": Calls("pulumi/pulumi-random (local)"),
    # The config-transition guard calls nothing (infra/aws/components/guard.py): the row of every dynamic resource
    # is the guard's; those that call AWS have rows of their own in DYNAMIC.
    "pulumi-python:dynamic:Resource": Calls("infra/aws/components/guard.py (local)"),
}  # fmt: skip
# Our dynamic resources that call AWS (boto3), by the input only each has.
DYNAMIC: dict[str, Calls] = {
    # infra/aws/components/service_logs.py: settle (create the group with the key, or associate the key with the
    # service's; set the retention), remove.
    "logGroupName": Calls(
        "infra/aws/components/service_logs.py", "logs:CreateLogGroup logs:AssociateKmsKey logs:PutRetentionPolicy", "",
        "logs:CreateLogGroup logs:AssociateKmsKey logs:PutRetentionPolicy", "logs:DeleteLogGroup",
        (("create", "logs:CreateLogGroup", lambda r: [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{r.inputs['logGroupName']}"]),
         ("create", "logs:AssociateKmsKey", lambda r: [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{r.inputs['logGroupName']}"]))),
    # infra/aws/components/image.py: tag_image (ECR's retag: BatchGetImage, PutImage); delete leaves the tag.
    "repositoryName": Calls(
        "infra/aws/components/image.py", "ecr:BatchGetImage ecr:PutImage", "", "ecr:BatchGetImage ecr:PutImage", "",
        (("create", "ecr:PutImage", lambda r: [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{r.inputs['repositoryName']}-a1b2c3d"]),)),
}
# force_destroy empties the bucket before deleting it (provider's resourceBucketDelete: emptyBucket).
FORCE_DESTROY = "s3:ListBucketVersions s3:DeleteObject s3:DeleteObjectVersion"
