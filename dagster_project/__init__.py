"""Example code location for dagster-celery-aws: `example_job` runs its steps on Celery workers.

Step outputs go through the S3 pickle I/O manager to the deployment's bucket (a remote worker cannot
read another worker's disk). The S3 endpoint is boto3's: AWS on ECS, `AWS_ENDPOINT_URL_S3` locally.
"""

from dagster import Definitions

from dagster_project.celery_config import celery_executor_config
from dagster_project.example import build_job
from dagster_project.fast_path import CachedS3Resource, celery_executor, s3_pickle_io_manager

S3_BUCKET_VAR = "DAGSTER_S3_BUCKET"  # infra/contract.py S3_BUCKET
IO_PREFIX = "io"  # infra/contract.py IO_PREFIX

# dagster-celery's executor, which also tunes the run worker: pooled connections, a 0.1 s poll of the steps'
# results with one query per poll (dagster_project/fast_path.py)
executor = celery_executor.configured(celery_executor_config(), name="celery")
example_job = build_job(executor)

s3 = CachedS3Resource()  # S3Resource with one boto3 client per process, not one per step
defs = Definitions(
    jobs=[example_job],
    resources={
        "s3": s3,
        "io_manager": s3_pickle_io_manager.configured(
            {"s3_bucket": {"env": S3_BUCKET_VAR}, "s3_prefix": IO_PREFIX}
        ),
    },
)
