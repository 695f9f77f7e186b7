"""Bucket: step outputs (S3 pickle I/O manager, prefix ``io/``) and compute logs (``compute-logs/``).

Creates: the bucket, owner-enforced object ownership, a public access block (all four), default
encryption (SSE-KMS with the AWS-managed key and a bucket key), versioning, a lifecycle that expires old
compute logs and old versions and aborts stale uploads, and a policy that refuses plain HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import contract, naming

COMPUTE_LOG_DAYS = 30
# The whole bucket, said explicitly: an empty lifecycle filter is deprecated by the provider (a warning that
# is to become an error); an empty prefix matches every key (S3 API, LifecycleRuleFilter).
EVERY_OBJECT = {"prefix": ""}
NONCURRENT_VERSION_DAYS = 30


def tls_only_policy(bucket_arn: str) -> str:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


@dataclass
class BucketArgs:
    deletion_protection: bool


class Bucket(pulumi.ComponentResource):
    def __init__(self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("dagster-celery-aws:bucket:Bucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protect = args.deletion_protection
        self.bucket = aws.s3.Bucket(
            naming.fit(aws.s3.Bucket, f"{name}-data"), force_destroy=not protect, opts=pulumi.ResourceOptions(parent=self, protect=protect)
        )
        bucket_id = self.bucket.id
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket_id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket_id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child,
        )  # fmt: skip
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket_id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}, "bucket_key_enabled": True}],
            opts=child,
        )  # fmt: skip
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket_id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
                {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": EVERY_OBJECT,
                 "abort_incomplete_multipart_upload": {"days_after_initiation": 7}},
                {"id": "expire-compute-logs", "status": "Enabled",
                 "filter": {"prefix": f"{contract.COMPUTE_LOGS_PREFIX}/"}, "expiration": {"days": COMPUTE_LOG_DAYS}},
                {"id": "expire-old-versions", "status": "Enabled", "filter": EVERY_OBJECT,
                 "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_DAYS}},
            ],  # fmt: skip
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=bucket_id, policy=tls_only_policy(self.bucket.arn), opts=child)
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name})
