"""Buckets: the data bucket for step outputs (S3 pickle I/O manager, prefix ``io/``) and compute logs
(``compute-logs/``), and the log bucket for the access logs of the load balancer and of the data bucket.

Both: owner-enforced object ownership (no ACLs), a public access block (all four), versioning, a lifecycle
that expires old versions and aborts stale uploads, and a policy that refuses plain HTTP.

- data bucket: default encryption SSE-KMS with the stack's key and a bucket key; compute logs expire.
- log bucket (``security.accessLogs``): default encryption SSE-S3, the only one load balancer access logs
  may be delivered to (docs/facts.md); the bucket policy admits exactly the two log deliveries -- Elastic Load
  Balancing (the Region's ELB account, or its log-delivery service in newer Regions) under
  ``alb/AWSLogs/<account>/`` and S3 server access logging of the data bucket under ``s3/`` --
  and the logs expire after ``logs.retentionDays``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.specs import contract
from infra.aws import naming

# The whole bucket, said explicitly: an empty lifecycle filter is deprecated by the provider (a warning that
# is to become an error); an empty prefix matches every key (S3 API, LifecycleRuleFilter).
EVERY_OBJECT = {"prefix": ""}
NONCURRENT_VERSION_DAYS = 30
ABORT_UPLOADS = {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": EVERY_OBJECT,
                 "abort_incomplete_multipart_upload": {"days_after_initiation": 7}}  # fmt: skip
OLD_VERSIONS = {"id": "expire-old-versions", "status": "Enabled", "filter": EVERY_OBJECT,
                "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_DAYS}}  # fmt: skip
# Where each delivery writes in the log bucket.
ALB_LOG_PREFIX = "alb"
S3_LOG_PREFIX = "s3/"
# The services that deliver access logs (ALB User Guide, "Enable access logs for your Application Load
# Balancer"; S3 User Guide, "Enabling Amazon S3 server access logging"; docs/facts.md).
ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
S3_LOG_DELIVERY = "logging.s3.amazonaws.com"
# In the Regions Elastic Load Balancing served before August 2022 the load balancer's logs are written by an AWS
# account of ELB's own in that Region, which the bucket policy must name; only later Regions take the log-delivery
# service principal (ALB User Guide, "Enable access logs for your Application Load Balancer", step 2; docs/facts.md).
ELB_REGION_ACCOUNTS = {
    "us-east-1": "127311923021", "us-east-2": "033677994240", "us-west-1": "027434742980", "us-west-2": "797873946194",
    "af-south-1": "098369216593", "ca-central-1": "985666609251", "eu-central-1": "054676820928",
    "eu-west-1": "156460612806", "eu-west-2": "652711504416", "eu-south-1": "635631232127", "eu-west-3": "009996457667",
    "eu-north-1": "897822967062", "ap-east-1": "754344448648", "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887", "ap-northeast-3": "383597477331", "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266", "ap-south-1": "718504428378", "me-south-1": "076674570225",
    "sa-east-1": "507241528517", "us-gov-west-1": "048591011584", "us-gov-east-1": "190560391635",
}  # fmt: skip


def elb_log_writer(region: str) -> dict:
    """The principal that writes a load balancer's access logs in ``region``."""
    if region in ELB_REGION_ACCOUNTS:
        return {"AWS": f"arn:aws:iam::{ELB_REGION_ACCOUNTS[region]}:root"}
    return {"Service": ELB_LOG_DELIVERY}


def _deny_plain_http(bucket_arn: str) -> dict:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}  # fmt: skip


def tls_only_policy(bucket_arn: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [_deny_plain_http(bucket_arn)]}


def log_bucket_policy(
    log_bucket_arn: str, source_bucket_arn: str, account: str, region: str, load_balancer: bool = True
) -> dict:
    """TLS only; the load balancer's (when the stack has one) and the data bucket's log deliveries may write
    their own prefixes."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            _deny_plain_http(log_bucket_arn),
            *([{"Sid": "LoadBalancerAccessLogs", "Effect": "Allow", "Principal": elb_log_writer(region),
                "Action": "s3:PutObject", "Resource": f"{log_bucket_arn}/{ALB_LOG_PREFIX}/AWSLogs/{account}/*"}]
              if load_balancer else []),
            {"Sid": "BucketAccessLogs", "Effect": "Allow", "Principal": {"Service": S3_LOG_DELIVERY},
             "Action": "s3:PutObject", "Resource": f"{log_bucket_arn}/{S3_LOG_PREFIX}*",
             "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn}, "StringEquals": {"aws:SourceAccount": account}}},
        ],
    }  # fmt: skip


def _private_bucket(
    prefix: str, bucket_name: str, parent: pulumi.Resource, protect: bool, encryption: dict, expiry: dict
) -> aws.s3.Bucket:
    """What both buckets share: kept when protected (else emptied on destroy), no ACLs, no public access,
    versioning, the server-side ``encryption`` rule, and a lifecycle of incomplete uploads, the ``expiry`` rule and
    old versions."""
    child = pulumi.ResourceOptions(parent=parent)
    bucket = aws.s3.Bucket(
        naming.fit(aws.s3.Bucket, bucket_name), force_destroy=not protect,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )  # fmt: skip
    aws.s3.BucketOwnershipControls(
        f"{prefix}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
    )
    aws.s3.BucketPublicAccessBlock(
        f"{prefix}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True, opts=child,
    )  # fmt: skip
    versioning = aws.s3.BucketVersioning(
        f"{prefix}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child
    )
    aws.s3.BucketServerSideEncryptionConfiguration(f"{prefix}-encryption", bucket=bucket.id, rules=[encryption], opts=child)
    aws.s3.BucketLifecycleConfiguration(
        f"{prefix}-lifecycle", bucket=bucket.id, rules=[ABORT_UPLOADS, expiry, OLD_VERSIONS],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[versioning]),
    )  # fmt: skip
    return bucket


@dataclass
class BucketArgs:
    deletion_protection: bool
    kms_key_arn: pulumi.Input[str]
    compute_log_days: int  # stack config retention.runDays: a run's compute logs go with the run


class Bucket(pulumi.ComponentResource):
    def __init__(self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:bucket:Bucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = _private_bucket(
            name, f"{name}-data", self, args.deletion_protection,
            encryption={"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn},
                        "bucket_key_enabled": True},
            expiry={"id": "expire-compute-logs", "status": "Enabled",
                    "filter": {"prefix": f"{contract.COMPUTE_LOGS_PREFIX}/"}, "expiration": {"days": args.compute_log_days}},
        )  # fmt: skip
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=self.bucket.id, policy=self.bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=child,
        )  # fmt: skip
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name})


@dataclass
class LogBucketArgs:
    deletion_protection: bool
    retention_days: int
    source: Bucket  # the data bucket, whose server access logs it keeps
    load_balancer: bool = True  # whether the UI's load balancer delivers its access logs here


class LogBucket(pulumi.ComponentResource):
    """The stack's access logs; also turns on the data bucket's server access logging into it."""

    def __init__(self, name: str, args: LogBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:bucket:LogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = _private_bucket(
            f"{name}-logs", f"{name}-logs", self, args.deletion_protection,
            encryption={"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}},
            expiry={"id": "expire-access-logs", "status": "Enabled", "filter": EVERY_OBJECT,
                    "expiration": {"days": args.retention_days}},
        )  # fmt: skip
        account = aws.get_caller_identity_output().account_id
        region = aws.get_region_output().region
        # Deliveries are checked when they are turned on: the load balancer and the data bucket wait for it.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-logs-policy", bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, args.source.arn, account, region).apply(
                lambda a: json.dumps(log_bucket_policy(*a, load_balancer=args.load_balancer))
            ),
            opts=child,
        )  # fmt: skip
        aws.s3.BucketLogging(
            f"{name}-data-access-logs", bucket=args.source.bucket.id, target_bucket=self.bucket.id,
            target_prefix=S3_LOG_PREFIX, opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )  # fmt: skip
        self.name = self.bucket.bucket
        self.register_outputs({"name": self.name})
