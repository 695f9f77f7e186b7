"""The IAM permissions of the deployer (whoever runs ``pulumi up``, ``refresh`` and ``destroy``), generated
from the program: the stack is run under the recording mocks of ``infra.tools.testing`` and every recorded
resource type and invoke maps to the AWS actions that create, read (refresh), update, tag and delete it.
A type or invoke without an entry here is an error naming it, so a new one in the program cannot be
forgotten.

    python -m infra.tools.deployer_policy --stack-file Pulumi.prod.yaml --stack prod --account 123456789012

Scope. Logical names start with ``dagster-<stack>``; Pulumi appends ``-<7 random chars>`` (S3 and RDS
names are lower case), and ``infra/aws/naming.py`` shortens a name that would not fit its type. Each group of
names is scoped by the common prefix of ``dagster-<stack>-`` and the names recorded for it: the stack
prefix itself unless a name had to be shortened (a long stack name), then the part all names keep. Where
AWS assigns the identifier (EC2 ``vpc-…``, Amazon MQ configurations, Application Auto Scaling targets) the
scope is the type in the account and Region. ``Resource: "*"`` holds only actions with no resource-level
permission in the Service Authorization Reference; ``tests/test_deployer_policy.py`` checks that against
parliament's copy of it, and that every action exists there (one action newer than that copy excepted).
IAM counts at most 6,144 characters (whitespace excluded) per managed policy: the statements are split over
as few documents as fit -- two for the dev example stack, three for prod.

The deployer creates the stack's roles, writes their policies and passes them to ECS: whoever holds this
policy can give code running in the stack any permission. Treat it as administrator of what the stack's
roles could do, or add a permissions boundary to those roles in the program.

Sources: the Service Authorization Reference (resource types and condition keys per action); the Terraform
AWS provider under pulumi-aws for which calls each resource makes; Amazon MQ Developer Guide, "IAM
permissions required to create an Amazon MQ broker" (the ENI actions); Amazon ECS Developer Guide, "IAM
permissions required for Amazon ECS service auto scaling"; Elastic Load Balancing, "Authenticate users
using an Application Load Balancer" (``cognito-idp:DescribeUserPoolClient``); pulumi-docker-build
``Image`` (pushes, checks tags on refresh, deletes pushed tags on delete). What a provider calls changes
between versions: before trusting it in production, deploy and destroy once in a sandbox account with
this policy and watch CloudTrail for ``AccessDenied``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from infra.aws import naming
from infra.tools import testing
from infra.aws.components import service_logs
from infra.tools.testing import StackResult, run_stack

VERSION = "2012-10-17"
MANAGED_POLICY_MAX = 6144  # IAM quota: characters of a managed policy, whitespace excluded


def _actions(service: str, names: str) -> tuple[str, ...]:
    return tuple(f"{service}:{n}" for n in names.split())


# Statements: Sid -> (resource ARN templates, condition). {region}, {account} and one name prefix per group
# (NAME_GROUPS) fill the templates.
STATEMENTS: dict[str, tuple[tuple[str, ...], dict | None]] = {
    # Actions with no resource-level permission (Service Authorization Reference): Describe*/List* of
    # EC2, ELB, Application Auto Scaling, CloudWatch Logs; ecs:DescribeTaskDefinition/DeregisterTaskDefinition;
    # mq:CreateBroker/CreateConfiguration; sns:*Subscription*; the invokes.
    "NoResourceLevelPermissions": (("*",), None),
    # EC2 IDs are assigned by AWS (vpc-…, subnet-…, sg-…): no name to scope by, so the account and Region.
    "Ec2": (("arn:aws:ec2:{region}:{account}:*",), None),
    # Amazon MQ attaches its broker ENIs in our subnets (Amazon MQ guide: only for Amazon MQ).
    "Ec2EniForAmazonMq": (("arn:aws:ec2:{region}:{account}:network-interface/*",),
                          {"StringEquals": {"ec2:AuthorizedService": "mq.amazonaws.com"}}),
    # Configuration IDs are assigned by Amazon MQ (c-…).
    "AmazonMq": (("arn:aws:mq:{region}:{account}:broker:{mq}*", "arn:aws:mq:{region}:{account}:configuration:*"), None),
    # snapshot: the final snapshot a deletion takes (its identifier starts with the instance's name group).
    "Rds": (("arn:aws:rds:{region}:{account}:db:{rds}*", "arn:aws:rds:{region}:{account}:pg:{rds}*",
             "arn:aws:rds:{region}:{account}:subgrp:{rds}*", "arn:aws:rds:{region}:{account}:snapshot:{rds}*",
             # a new instance uses the engine's default option group
             "arn:aws:rds:{region}:{account}:og:default:postgres-*"), None),
    # The provider reads an instance by its resource ID (a dbi-resource-id filter), authorised on db:*.
    "RdsDescribeInstances": (("arn:aws:rds:{region}:{account}:db:*",), None),
    "SecretsManager": (("arn:aws:secretsmanager:{region}:{account}:secret:{secret}*",), None),
    "S3Bucket": (("arn:aws:s3:::{s3}*",), None),
    "S3EmptyOnDestroy": (("arn:aws:s3:::{s3}*/*",), None),
    "Ecr": (("arn:aws:ecr:{region}:{account}:repository/{ecr}*",), None),
    # Services are named inside the cluster: service/<cluster>/<name>.
    "Ecs": (("arn:aws:ecs:{region}:{account}:cluster/{ecs}*", "arn:aws:ecs:{region}:{account}:service/{ecs}*",
             "arn:aws:ecs:{region}:{account}:task-definition/{ecs}*"), None),
    # Scalable target IDs are assigned by Application Auto Scaling.
    "ApplicationAutoScaling": (("arn:aws:application-autoscaling:{region}:{account}:scalable-target/*",), None),
    # Target tracking creates and deletes its own alarms, TargetTracking-service/<cluster>/<service>-….
    "CloudWatch": (("arn:aws:cloudwatch:{region}:{account}:alarm:{cw}*",
                    "arn:aws:cloudwatch:{region}:{account}:alarm:TargetTracking-service/{ecs}*",
                    "arn:aws:cloudwatch::{account}:dashboard/{cw}*"), None),
    "EventBridge": (("arn:aws:events:{region}:{account}:rule/{events}*",), None),
    "Sns": (("arn:aws:sns:{region}:{account}:{sns}*",), None),
    # WAF requires its log group's name to start with aws-waf-logs- (components/firewall.py).
    "Logs": (("arn:aws:logs:{region}:{account}:log-group:{logs}*",
              "arn:aws:logs:{region}:{account}:log-group:aws-waf-logs-{logs}*"), None),
    # The groups RDS, Amazon MQ (broker IDs are AWS-assigned) and Container Insights name themselves, given the
    # stack's key and retention (components/service_logs.py).
    "ServiceLogGroups": (("arn:aws:logs:{region}:{account}:log-group:/aws/rds/instance/{rds}*",
                          "arn:aws:logs:{region}:{account}:log-group:/aws/amazonmq/broker/*",
                          "arn:aws:logs:{region}:{account}:log-group:/aws/ecs/containerinsights/{ecs}*"), None),
    # Key IDs are assigned by KMS; aliases are the stack's names.
    "Kms": (("arn:aws:kms:{region}:{account}:key/*", "arn:aws:kms:{region}:{account}:alias/{kms}*"), None),
    # Web ACLs are named <name>/<ID>; associating one acts on the load balancer too.
    "Wafv2": (("arn:aws:wafv2:{region}:{account}:regional/webacl/{waf}*/*",
               "arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{elb}*"), None),
    "Iam": (("arn:aws:iam::{account}:role/{iam}*",), None),
    "ElasticLoadBalancing": (("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{elb}*",
                              "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{elb}*",
                              "arn:aws:elasticloadbalancing:{region}:{account}:listener/app/{elb}*",
                              "arn:aws:elasticloadbalancing:{region}:{account}:listener-rule/app/{elb}*"), None),
}  # fmt: skip

# Name groups: the types whose names scope a statement's ARNs, and whether the name is stored lower case.
NAME_GROUPS: dict[str, tuple[tuple[str, ...], bool]] = {
    "mq": (("aws:mq/broker:Broker",), False),
    "rds": (("aws:rds/instance:Instance", "aws:rds/parameterGroup:ParameterGroup", "aws:rds/subnetGroup:SubnetGroup"), True),
    "secret": (("aws:secretsmanager/secret:Secret",), False),
    "s3": (("aws:s3/bucket:Bucket",), True),
    "ecr": (("aws:ecr/repository:Repository",), True),
    "ecs": (("aws:ecs/cluster:Cluster", "aws:ecs/taskDefinition:TaskDefinition"), False),
    "cw": (("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/dashboard:Dashboard"), False),
    "events": (("aws:cloudwatch/eventRule:EventRule",), False),
    "sns": (("aws:sns/topic:Topic",), False),
    "logs": (("aws:cloudwatch/logGroup:LogGroup",), False),
    "iam": (("aws:iam/role:Role",), False),
    "elb": (("aws:lb/loadBalancer:LoadBalancer", "aws:lb/targetGroup:TargetGroup"), False),
    "kms": (("aws:kms/alias:Alias",), False),
    "waf": (("aws:wafv2/webAcl:WebAcl",), False),
}  # fmt: skip
# Names a resource gives to what it makes (the final snapshot of a deleted instance): scoped with its group.
OTHER_NAMES: dict[str, tuple[str, ...]] = {"aws:rds/instance:Instance": ("finalSnapshotIdentifier",)}
# Fixed prefixes AWS requires before the stack's part of a name; the statements' ARN templates carry them.
FIXED_NAME_PREFIXES = {"aws:kms/alias:Alias": "alias/", "aws:cloudwatch/logGroup:LogGroup": "aws-waf-logs-"}

_EC2_TAGS = _actions("ec2", "CreateTags DeleteTags")
# Services that encrypt with the stack's key on the deployer's behalf create grants on it.
_KMS_GRANTS = _actions("kms", "CreateGrant RetireGrant DescribeKey")
_SG_RULE_READ = _actions("ec2", "DescribeSecurityGroupRules")
_RDS_TAGS = _actions("rds", "AddTagsToResource RemoveTagsFromResource ListTagsForResource")
_ECS_TAGS = _actions("ecs", "TagResource UntagResource ListTagsForResource")
_ELB_TAGS = _actions("elasticloadbalancing", "AddTags RemoveTags")
_ELB_READ = _actions("elasticloadbalancing", "DescribeTags")
# Registering an ECS service with Application Auto Scaling (ECS guide, "IAM permissions required for
# Amazon ECS service auto scaling").
_SCALING_ALARMS = _actions("cloudwatch", "DescribeAlarms PutMetricAlarm DeleteAlarms")

# Pulumi type -> {statement Sid: actions}. Components and random passwords call no AWS API.
PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "aws:ec2/vpc:Vpc": {
        "Ec2": (*_actions("ec2", "CreateVpc ModifyVpcAttribute DescribeVpcAttribute DeleteVpc"), *_EC2_TAGS),
        # the provider also reads the VPC's default network ACL, route table and security group
        "NoResourceLevelPermissions": _actions("ec2", "DescribeVpcs DescribeNetworkAcls DescribeRouteTables DescribeSecurityGroups"),
    },
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": {
        "Ec2": (*_actions("ec2", "RevokeSecurityGroupIngress RevokeSecurityGroupEgress AuthorizeSecurityGroupIngress "
                                 "AuthorizeSecurityGroupEgress"), *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeSecurityGroups"),
    },
    "aws:ec2/internetGateway:InternetGateway": {
        "Ec2": (*_actions("ec2", "CreateInternetGateway AttachInternetGateway DetachInternetGateway DeleteInternetGateway"),
                *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeInternetGateways"),
    },
    "aws:ec2/routeTable:RouteTable": {
        "Ec2": (*_actions("ec2", "CreateRouteTable DeleteRouteTable CreateRoute ReplaceRoute DeleteRoute"), *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeRouteTables"),
    },
    "aws:ec2/routeTableAssociation:RouteTableAssociation": {
        "Ec2": _actions("ec2", "AssociateRouteTable DisassociateRouteTable ReplaceRouteTableAssociation"),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeRouteTables"),
    },
    "aws:ec2/subnet:Subnet": {
        "Ec2": (*_actions("ec2", "CreateSubnet ModifySubnetAttribute DeleteSubnet"), *_EC2_TAGS),
        # on delete the provider looks for network interfaces left in the subnet
        "NoResourceLevelPermissions": _actions("ec2", "DescribeSubnets DescribeNetworkInterfaces"),
    },
    "aws:ec2/eip:Eip": {
        "Ec2": (*_actions("ec2", "AllocateAddress ReleaseAddress DisassociateAddress"), *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeAddresses DescribeAddressesAttribute"),
    },
    "aws:ec2/natGateway:NatGateway": {
        "Ec2": (*_actions("ec2", "CreateNatGateway DeleteNatGateway"), *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeNatGateways"),
    },
    "aws:ec2/flowLog:FlowLog": {  # and iam:PassRole of its role (PASSED_ROLES)
        "Ec2": (*_actions("ec2", "CreateFlowLogs DeleteFlowLogs"), *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeFlowLogs"),
    },
    "aws:ec2/securityGroup:SecurityGroup": {
        # the provider revokes the default allow-all egress rule of a new group
        "Ec2": (*_actions("ec2", "CreateSecurityGroup DeleteSecurityGroup RevokeSecurityGroupEgress "
                                 "RevokeSecurityGroupIngress"), *_EC2_TAGS),
        "NoResourceLevelPermissions": _actions("ec2", "DescribeSecurityGroups"),
    },
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {
        "Ec2": (*_actions("ec2", "AuthorizeSecurityGroupIngress RevokeSecurityGroupIngress ModifySecurityGroupRules"),
                *_EC2_TAGS),
        "NoResourceLevelPermissions": _SG_RULE_READ,
    },
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {
        "Ec2": (*_actions("ec2", "AuthorizeSecurityGroupEgress RevokeSecurityGroupEgress ModifySecurityGroupRules"),
                *_EC2_TAGS),
        "NoResourceLevelPermissions": _SG_RULE_READ,
    },
    "aws:mq/configuration:Configuration": {
        # DeleteConfiguration: pulumi-aws deletes configurations on destroy (skipDestroy defaults to false)
        "AmazonMq": _actions("mq", "UpdateConfiguration DescribeConfiguration DescribeConfigurationRevision "
                                   "DeleteConfiguration CreateTags DeleteTags ListTags"),
        "NoResourceLevelPermissions": _actions("mq", "CreateConfiguration"),
    },
    "aws:mq/broker:Broker": {
        "AmazonMq": _actions("mq", "DescribeBroker UpdateBroker RebootBroker DeleteBroker CreateTags DeleteTags ListTags"),
        "Ec2": _actions("ec2", "CreateNetworkInterface DeleteNetworkInterface DetachNetworkInterface "
                               "DeleteNetworkInterfacePermission"),
        "Ec2EniForAmazonMq": _actions("ec2", "CreateNetworkInterfacePermission"),
        "NoResourceLevelPermissions": (
            *_actions("mq", "CreateBroker"),
            *_actions("ec2", "DescribeInternetGateways DescribeNetworkInterfaces DescribeNetworkInterfacePermissions "
                             "DescribeRouteTables DescribeSecurityGroups DescribeSubnets DescribeVpcs"),
        ),
    },
    "aws:rds/subnetGroup:SubnetGroup": {
        "Rds": (*_actions("rds", "CreateDBSubnetGroup ModifyDBSubnetGroup DeleteDBSubnetGroup DescribeDBSubnetGroups"),
                *_RDS_TAGS),
    },
    "aws:rds/parameterGroup:ParameterGroup": {
        "Rds": (*_actions("rds", "CreateDBParameterGroup ModifyDBParameterGroup ResetDBParameterGroup "
                                 "DeleteDBParameterGroup DescribeDBParameterGroups DescribeDBParameters"), *_RDS_TAGS),
    },
    "aws:rds/instance:Instance": {  # and iam:PassRole of its monitoring role (PASSED_ROLES)
        # DeleteDBInstance with a final snapshot is authorised as rds:CreateDBSnapshot too (on the instance and
        # the snapshot), and, with copy_tags_to_snapshot, rds:AddTagsToResource on the snapshot (RDS, "changes to
        # IAM policies for DeleteDBInstance", August 2024: the final snapshot is no longer implicit).
        "Rds": (*_actions("rds", "CreateDBInstance ModifyDBInstance RebootDBInstance DeleteDBInstance CreateDBSnapshot"),
                *_RDS_TAGS),
        "RdsDescribeInstances": _actions("rds", "DescribeDBInstances"),
        "Kms": _KMS_GRANTS,  # Performance Insights, encrypted with the stack's key
    },
    "aws:secretsmanager/secret:Secret": {
        "SecretsManager": _actions("secretsmanager", "CreateSecret DescribeSecret GetResourcePolicy UpdateSecret "
                                                     "DeleteSecret TagResource UntagResource"),
    },
    "aws:secretsmanager/secretVersion:SecretVersion": {
        "SecretsManager": _actions("secretsmanager", "PutSecretValue GetSecretValue UpdateSecretVersionStage "
                                                     "DescribeSecret ListSecretVersionIds"),
        # Secrets Manager encrypts and decrypts with the caller's permissions on the key (Secrets Manager User
        # Guide, "Secret encryption and decryption in AWS Secrets Manager").
        "Kms": _actions("kms", "GenerateDataKey Decrypt"),
    },
    "aws:s3/bucket:Bucket": {  # objects only where forceDestroy empties it (BUCKET_OBJECTS)
        # the provider's read covers every bucket sub-configuration, whether set or not
        "S3Bucket": _actions("s3", "CreateBucket DeleteBucket ListBucket GetBucketAcl GetBucketCORS GetBucketWebsite "
                                   "GetBucketVersioning GetAccelerateConfiguration GetBucketRequestPayment "
                                   "GetBucketLogging GetLifecycleConfiguration GetReplicationConfiguration "
                                   "GetEncryptionConfiguration GetBucketObjectLockConfiguration GetBucketPolicy "
                                   "GetBucketTagging PutBucketTagging"),
    },
    # Deleting these sub-configurations is authorised by their Put* action (Service Authorization Reference).
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": {
        "S3Bucket": _actions("s3", "PutBucketOwnershipControls GetBucketOwnershipControls"),
    },
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "S3Bucket": _actions("s3", "PutBucketPublicAccessBlock GetBucketPublicAccessBlock"),
    },
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
        "S3Bucket": _actions("s3", "PutEncryptionConfiguration GetEncryptionConfiguration"),
    },
    "aws:s3/bucketVersioning:BucketVersioning": {
        "S3Bucket": _actions("s3", "PutBucketVersioning GetBucketVersioning"),
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "S3Bucket": _actions("s3", "PutLifecycleConfiguration GetLifecycleConfiguration"),
    },
    "aws:s3/bucketPolicy:BucketPolicy": {
        "S3Bucket": _actions("s3", "PutBucketPolicy GetBucketPolicy DeleteBucketPolicy"),
    },
    "aws:s3/bucketLogging:BucketLogging": {
        "S3Bucket": _actions("s3", "PutBucketLogging GetBucketLogging"),
    },
    "aws:kms/key:Key": {
        "Kms": _actions("kms", "DescribeKey GetKeyPolicy PutKeyPolicy GetKeyRotationStatus EnableKeyRotation "
                               "DisableKeyRotation UpdateKeyDescription ScheduleKeyDeletion ListResourceTags "
                               "TagResource UntagResource"),
        "NoResourceLevelPermissions": _actions("kms", "CreateKey"),
    },
    "aws:kms/alias:Alias": {
        "Kms": _actions("kms", "CreateAlias UpdateAlias DeleteAlias"),
        "NoResourceLevelPermissions": _actions("kms", "ListAliases"),
    },
    "aws:wafv2/webAcl:WebAcl": {
        "Wafv2": _actions("wafv2", "CreateWebACL GetWebACL UpdateWebACL DeleteWebACL ListTagsForResource TagResource "
                                   "UntagResource"),
    },
    "aws:wafv2/webAclAssociation:WebAclAssociation": {
        # An Application Load Balancer's association also needs SetWebACL on it (AWS WAF Developer Guide,
        # "Associating or disassociating a web ACL with an AWS resource").
        "Wafv2": _actions("wafv2", "AssociateWebACL DisassociateWebACL GetWebACLForResource"),
        "NoResourceLevelPermissions": _actions("elasticloadbalancing", "SetWebAcl"),
    },
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": {
        "Wafv2": _actions("wafv2", "PutLoggingConfiguration GetLoggingConfiguration DeleteLoggingConfiguration"),
        # WAF delivers to CloudWatch Logs as a log delivery and adds the log group's resource policy (AWS WAF
        # Developer Guide, "Permissions required to publish logs to Amazon CloudWatch Logs").
        "NoResourceLevelPermissions": _actions("logs", "CreateLogDelivery DeleteLogDelivery PutResourcePolicy "
                                                       "DescribeResourcePolicies DescribeLogGroups"),
    },
    "aws:ecr/repository:Repository": {
        "Ecr": _actions("ecr", "CreateRepository DescribeRepositories DeleteRepository PutImageScanningConfiguration "
                               "PutImageTagMutability TagResource UntagResource ListTagsForResource"),
        # ECR encrypts with the stack's key through grants it creates and retires (ECR User Guide, "Encryption at rest").
        "Kms": _KMS_GRANTS,
    },
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": {
        "Ecr": _actions("ecr", "PutLifecyclePolicy GetLifecyclePolicy DeleteLifecyclePolicy"),
    },
    # Build and push (the registry token is the getAuthorizationToken invoke); refresh checks the pushed
    # image, delete removes it.
    "docker-build:index:Image": {
        "Ecr": _actions("ecr", "BatchCheckLayerAvailability InitiateLayerUpload UploadLayerPart CompleteLayerUpload "
                               "PutImage BatchGetImage GetDownloadUrlForLayer BatchDeleteImage"),
    },
    "aws:ecs/cluster:Cluster": {
        "Ecs": (*_actions("ecs", "CreateCluster DescribeClusters UpdateCluster UpdateClusterSettings DeleteCluster"), *_ECS_TAGS),
    },
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders": {
        "Ecs": _actions("ecs", "PutClusterCapacityProviders DescribeClusters"),
    },
    "aws:ecs/taskDefinition:TaskDefinition": {  # and iam:PassRole of its roles (PASSED_ROLES)
        "Ecs": (*_actions("ecs", "RegisterTaskDefinition"), *_ECS_TAGS),
        "NoResourceLevelPermissions": _actions("ecs", "DescribeTaskDefinition DeregisterTaskDefinition"),
    },
    "aws:ecs/service:Service": {
        "Ecs": (*_actions("ecs", "CreateService DescribeServices UpdateService DeleteService"), *_ECS_TAGS),
    },
    "aws:appautoscaling/target:Target": {
        "ApplicationAutoScaling": _actions("application-autoscaling", "RegisterScalableTarget DeregisterScalableTarget "
                                                                      "TagResource UntagResource ListTagsForResource"),
        "Ecs": _actions("ecs", "DescribeServices UpdateService"),
        "CloudWatch": _SCALING_ALARMS,
        "NoResourceLevelPermissions": _actions("application-autoscaling", "DescribeScalableTargets"),
    },
    "aws:appautoscaling/policy:Policy": {
        "ApplicationAutoScaling": _actions("application-autoscaling", "PutScalingPolicy DeleteScalingPolicy"),
        "CloudWatch": _SCALING_ALARMS,
        "NoResourceLevelPermissions": _actions("application-autoscaling", "DescribeScalingPolicies"),
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "CloudWatch": _actions("cloudwatch", "PutMetricAlarm DescribeAlarms DeleteAlarms TagResource UntagResource "
                                             "ListTagsForResource"),
    },
    "aws:cloudwatch/dashboard:Dashboard": {
        "CloudWatch": _actions("cloudwatch", "PutDashboard GetDashboard DeleteDashboards"),
    },
    "aws:cloudwatch/eventRule:EventRule": {
        "EventBridge": _actions("events", "PutRule DescribeRule DeleteRule EnableRule DisableRule TagResource "
                                          "UntagResource ListTagsForResource"),
    },
    "aws:cloudwatch/eventTarget:EventTarget": {
        "EventBridge": _actions("events", "PutTargets RemoveTargets ListTargetsByRule"),
    },
    "aws:sns/topic:Topic": {
        "Sns": _actions("sns", "CreateTopic GetTopicAttributes SetTopicAttributes DeleteTopic TagResource UntagResource "
                               "ListTagsForResource"),
    },
    "aws:sns/topicPolicy:TopicPolicy": {
        "Sns": _actions("sns", "SetTopicAttributes GetTopicAttributes"),
    },
    "aws:sns/topicSubscription:TopicSubscription": {
        "Sns": _actions("sns", "Subscribe"),
        "NoResourceLevelPermissions": _actions("sns", "Unsubscribe GetSubscriptionAttributes SetSubscriptionAttributes"),
    },
    "aws:cloudwatch/logGroup:LogGroup": {
        "Logs": _actions("logs", "CreateLogGroup PutRetentionPolicy DeleteRetentionPolicy DeleteLogGroup TagResource "
                                 "UntagResource ListTagsForResource AssociateKmsKey DisassociateKmsKey"),
        "NoResourceLevelPermissions": _actions("logs", "DescribeLogGroups"),
    },
    "aws:iam/role:Role": {
        "Iam": _actions("iam", "CreateRole GetRole UpdateRole UpdateAssumeRolePolicy DeleteRole TagRole UntagRole "
                               "ListRolePolicies ListAttachedRolePolicies ListInstanceProfilesForRole"),
    },
    "aws:iam/rolePolicy:RolePolicy": {
        "Iam": _actions("iam", "PutRolePolicy GetRolePolicy DeleteRolePolicy"),
    },
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": {  # Attach/Detach: only the policies recorded (_attach)
        "Iam": _actions("iam", "ListAttachedRolePolicies"),
    },
    "aws:lb/loadBalancer:LoadBalancer": {
        "ElasticLoadBalancing": (*_actions("elasticloadbalancing", "CreateLoadBalancer DeleteLoadBalancer "
                                                                   "ModifyLoadBalancerAttributes SetSecurityGroups SetSubnets"),
                                 *_ELB_TAGS),
        # on delete the provider waits for the load balancer's network interfaces to go
        "NoResourceLevelPermissions": (
            *_actions("elasticloadbalancing", "DescribeLoadBalancers DescribeLoadBalancerAttributes "
                                              "DescribeCapacityReservation"), *_ELB_READ,
            *_actions("ec2", "DescribeNetworkInterfaces"),
        ),
    },
    "aws:lb/targetGroup:TargetGroup": {
        "ElasticLoadBalancing": (*_actions("elasticloadbalancing", "CreateTargetGroup ModifyTargetGroup "
                                                                   "ModifyTargetGroupAttributes DeleteTargetGroup"),
                                 *_ELB_TAGS),
        "NoResourceLevelPermissions": (
            *_actions("elasticloadbalancing", "DescribeTargetGroups DescribeTargetGroupAttributes"), *_ELB_READ,
        ),
    },
    "aws:lb/listener:Listener": {  # and cognito-idp:DescribeUserPoolClient with a Cognito sign-in (_cognito)
        "ElasticLoadBalancing": (*_actions("elasticloadbalancing", "CreateListener ModifyListener DeleteListener "
                                                                   "ModifyListenerAttributes"), *_ELB_TAGS),
        "NoResourceLevelPermissions": (
            *_actions("elasticloadbalancing", "DescribeListeners DescribeListenerAttributes"), *_ELB_READ,
        ),
    },
    "aws:lb/listenerRule:ListenerRule": {
        "ElasticLoadBalancing": (*_actions("elasticloadbalancing", "CreateRule ModifyRule DeleteRule SetRulePriorities"),
                                 *_ELB_TAGS),
        "NoResourceLevelPermissions": (*_actions("elasticloadbalancing", "DescribeRules"), *_ELB_READ),
    },
    "random:index/randomPassword:RandomPassword": {},
    "random:index/randomString:RandomString": {},
    # Python dynamic resources run inside the program; the config-transition guard calls no AWS API, the others
    # are told apart by their inputs (DYNAMIC).
    "pulumi-python:dynamic:Resource": {},
}  # fmt: skip
COMPONENT_PREFIX = "dagster-celery-aws:"  # the program's own ComponentResources: no AWS calls
# Our dynamic resources that call AWS, by the input only each has: a service log group calls CloudWatch Logs on
# the services' own group names (components/service_logs.py, CALLS); the deployed tag retags the pushed image
# (components/image.py, tag_image).
DYNAMIC: dict[str, dict[str, tuple[str, ...]]] = {
    "logGroupName": {"ServiceLogGroups": service_logs.CALLS},
    "repositoryName": {"Ecr": _actions("ecr", "BatchGetImage PutImage")},
}

# Invokes (data sources) -> actions; getRegion reads the provider's configuration, no API call.
INVOKES: dict[str, tuple[str, ...]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _actions("sts", "GetCallerIdentity"),
    "aws:index/getRegion:getRegion": (),
    "aws:index/getAvailabilityZones:getAvailabilityZones": _actions("ec2", "DescribeAvailabilityZones"),
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": _actions("ecr", "GetAuthorizationToken"),
    "aws:ec2/getVpc:getVpc": _actions("ec2", "DescribeVpcs"),
}
# The AWS provider checks its credentials with sts:GetCallerIdentity whatever the program declares.
PROVIDER_ACTIONS = _actions("sts", "GetCallerIdentity")

# Inputs that pass a role to a service: iam:PassRole, conditioned on the role's trusted service.
PASSED_ROLES: dict[str, tuple[str, ...]] = {
    "aws:ecs/taskDefinition:TaskDefinition": ("executionRoleArn", "taskRoleArn"),
    "aws:ec2/flowLog:FlowLog": ("iamRoleArn",),
    "aws:rds/instance:Instance": ("monitoringRoleArn",),
}
# Service-linked roles AWS creates on first use of these types (each service's "Using service-linked
# roles" page): the deployer needs iam:CreateServiceLinkedRole for them in a fresh account.
SERVICE_LINKED_ROLES: dict[str, str] = {
    "aws:ecs/cluster:Cluster": "ecs.amazonaws.com",
    "aws:rds/instance:Instance": "rds.amazonaws.com",
    "aws:mq/broker:Broker": "mq.amazonaws.com",
    "aws:lb/loadBalancer:LoadBalancer": "elasticloadbalancing.amazonaws.com",
    "aws:appautoscaling/target:Target": "ecs.application-autoscaling.amazonaws.com",
}


class UnknownResourceType(KeyError):
    """The program declares a type (or calls an invoke) the deployer policy has no permissions for."""

    def __str__(self) -> str:
        return f"no deployer permissions for {self.args[0]!r}: add it to infra/tools/deployer_policy.py"


def _physical_name(resource: testing.Resource) -> str:
    """The resource's name, without a fixed prefix AWS requires (FIXED_NAME_PREFIXES)."""
    rule = naming.RULES.get(resource.typ)
    name = str(resource.inputs.get(rule.prop) or resource.name) if rule else resource.name
    return name.removeprefix(FIXED_NAME_PREFIXES.get(resource.typ, ""))


def name_prefixes(result: StackResult, stack: str) -> dict[str, str]:
    """Per name group, the prefix every name of the group starts with (module docstring, Scope)."""
    base = f"dagster-{stack}-"
    prefixes = {}
    for group, (types, lower) in NAME_GROUPS.items():
        names = [base] + [_physical_name(r) for r in result.resources if r.typ in types]
        names += [str(r.inputs[k]) for r in result.resources if r.typ in types for k in OTHER_NAMES.get(r.typ, ()) if r.inputs.get(k)]
        prefix = os.path.commonprefix([n.lower() for n in names] if lower else names)
        if len(prefix) < len("dagster-"):
            raise ValueError(f"{group} names share no 'dagster-' prefix: {names}")
        prefixes[group] = prefix
    return prefixes


def _role_name(arn: str) -> str:
    return arn.rsplit(":role/", 1)[-1]


def _trusted_service(role: testing.Resource) -> str:
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    return statement["Principal"]["Service"]


def _pass_role(result: StackResult, account: str) -> list[dict]:
    roles = {r.name: r for r in result.of_type("aws:iam/role:Role")}
    by_service: dict[str, set[str]] = {}
    for r in result.resources:
        for key in PASSED_ROLES.get(r.typ, ()):
            if r.inputs.get(key):
                role = roles[_role_name(r.inputs[key])]
                by_service.setdefault(_trusted_service(role), set()).add(f"arn:aws:iam::{account}:role/{role.name}-*")
    return [
        {"Sid": "PassRoleTo" + "".join(p.title() for p in service.split(".")[0].split("-")), "Effect": "Allow",
         "Action": "iam:PassRole", "Resource": sorted(arns),
         "Condition": {"StringEquals": {"iam:PassedToService": service}}}
        for service, arns in sorted(by_service.items())
    ]  # fmt: skip


def _service_linked_roles(types: set[str], account: str) -> list[dict]:
    services = sorted({SERVICE_LINKED_ROLES[t] for t in types if t in SERVICE_LINKED_ROLES})
    if not services:
        return []
    return [{"Sid": "CreateServiceLinkedRoles", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
             "Resource": [f"arn:aws:iam::{account}:role/aws-service-role/{s}/*" for s in services],
             "Condition": {"StringEquals": {"iam:AWSServiceName": services}}}]  # fmt: skip


def _attach(result: StackResult, prefix: str, account: str) -> list[dict]:
    policies = sorted(
        {r.inputs["policyArn"] for r in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    )
    if not policies:
        return []
    return [{"Sid": "AttachManagedPolicies", "Effect": "Allow", "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
             "Resource": f"arn:aws:iam::{account}:role/{prefix}*", "Condition": {"ArnEquals": {"iam:PolicyARN": policies}}}]  # fmt: skip


def _cognito(result: StackResult) -> list[dict]:
    """A listener that signs users in through Cognito: the caller must be allowed to read the pool client."""
    pools = sorted(
        action["authenticateCognito"]["userPoolArn"]
        for r in result.of_type("aws:lb/listener:Listener") + result.of_type("aws:lb/listenerRule:ListenerRule")
        # an OIDC listener's actions are secret (its client secret): revealed to be read
        for action in testing.reveal(r.inputs.get("defaultActions", [])) + testing.reveal(r.inputs.get("actions", []))
        if action.get("type") == "authenticate-cognito"
    )
    return [{"Sid": "CognitoSignIn", "Effect": "Allow", "Action": "cognito-idp:DescribeUserPoolClient",
             "Resource": sorted(set(pools))}] if pools else []  # fmt: skip


def statements(result: StackResult, invokes: set[str], stack: str, account: str = "*", region: str = "*") -> list[dict]:
    """Every statement the deployer of this recorded stack needs; raises UnknownResourceType."""
    types = {r.typ for r in result.resources if not r.typ.startswith(COMPONENT_PREFIX)}
    actions: dict[str, set[str]] = {"NoResourceLevelPermissions": set(PROVIDER_ACTIONS)}
    for typ in sorted(types):
        if typ not in PERMISSIONS:
            raise UnknownResourceType(typ)
        for sid, names in PERMISSIONS[typ].items():
            actions.setdefault(sid, set()).update(names)
    for r in result.of_type("pulumi-python:dynamic:Resource"):
        for key, permissions in DYNAMIC.items():
            for sid, names in permissions.items() if key in r.inputs else ():
                actions.setdefault(sid, set()).update(names)
    for token in sorted(invokes):
        if token not in INVOKES:
            raise UnknownResourceType(token)
        actions["NoResourceLevelPermissions"].update(INVOKES[token])
    if any(r.inputs.get("forceDestroy") for r in result.of_type("aws:s3/bucket:Bucket")):
        actions["S3Bucket"].add("s3:ListBucketVersions")
        actions["S3EmptyOnDestroy"] = set(_actions("s3", "DeleteObject DeleteObjectVersion"))
    prefixes = name_prefixes(result, stack)
    out = []
    for sid, (resources, condition) in STATEMENTS.items():
        if not actions.get(sid):
            continue
        arns = sorted({t.format(region=region, account=account, **prefixes) for t in resources})
        statement = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(actions[sid]),
            "Resource": arns[0] if len(arns) == 1 else arns,
        }
        if condition:
            statement["Condition"] = condition
        out.append(statement)
    return [*out, *_pass_role(result, account), *_service_linked_roles(types, account),
            *_attach(result, prefixes["iam"], account), *_cognito(result)]  # fmt: skip


def size(document: dict) -> int:
    """Characters IAM counts against the managed-policy quota (whitespace excluded)."""
    return len(json.dumps(document, separators=(",", ":")))


def documents(statement_list: list[dict], limit: int = MANAGED_POLICY_MAX) -> list[dict]:
    """The statements as few policy documents as fit IAM's managed-policy quota, in order."""
    docs: list[dict] = []
    for statement in statement_list:
        if docs and size({**docs[-1], "Statement": [*docs[-1]["Statement"], statement]}) <= limit:
            docs[-1]["Statement"].append(statement)
        else:
            docs.append({"Version": VERSION, "Statement": [statement]})
    for doc in docs:
        if size(doc) > limit:
            raise ValueError(f"statement {doc['Statement'][0]['Sid']} alone exceeds {limit} characters")
    return docs


def record(
    stack_file: str | Path | None, stack: str, config: dict[str, Any] | None = None
) -> tuple[StackResult, set[str]]:
    """Run the program under the recording mocks; returns its resources and the invoke tokens it called."""
    invokes: set[str] = set()
    answer = testing.RecordingMocks.call

    def call(self, args):
        invokes.add(args.token)
        return answer(self, args)

    testing.RecordingMocks.call = call
    try:
        return run_stack(stack_file, config=config, stack=stack), invokes
    finally:
        testing.RecordingMocks.call = answer


def policy_documents(stack_file: str | Path, stack: str, account: str = "*", region: str | None = None) -> list[dict]:
    """The deployer's policy documents for a stack file (several only if one would exceed IAM's quota)."""
    if region is None:
        region = str(testing.stack_file_config(stack_file).get("aws:region", "*"))
    result, invokes = record(stack_file, stack)
    return documents(statements(result, invokes, stack, account, region))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the IAM policy documents the deployer of a stack needs: a JSON list, one managed policy each."
    )
    parser.add_argument("--stack-file", required=True, help="e.g. Pulumi.prod.yaml")
    parser.add_argument("--stack", required=True, help="the Pulumi stack name (names start with dagster-<stack>)")
    parser.add_argument("--account", default="*", help="AWS account ID for the ARNs (default: *)")
    parser.add_argument("--region", help="AWS Region for the ARNs (default: aws:region of the stack file, else *)")
    args = parser.parse_args(argv)
    docs = policy_documents(args.stack_file, args.stack, args.account, args.region)
    # Always a list: one managed policy per document (several when one would exceed IAM's quota).
    print(json.dumps(docs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
