"""Example code location for dagster-celery-aws: `example_job` runs its steps on Celery workers.

It uses only the runtime's public API (the `dagster_celery_aws` package): the deployment's Celery executor,
and its resources, which put step outputs in the deployment's S3 bucket (a remote worker cannot read
another worker's disk). Replace this package with your own code location, or copy what it does.
"""

from dagster import Definitions
from dagster_celery_aws import deployment_resources

from dagster_project.example import example_job

defs = Definitions(jobs=[example_job], resources=deployment_resources())
