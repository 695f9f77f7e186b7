"""Example code location for dagster-celery-aws: assets in two groups and one op job, every step on Celery.

It uses only the runtime's public API (the `dagster_celery_aws` package): the deployment's Celery executor on
`Definitions` -- so the UI's Materialize, backfills and every implicit asset job send their steps to the queues,
not only the jobs that name it -- and its resources, which put step outputs in the deployment's S3 bucket (a
remote worker cannot read another worker's disk). Replace this package with your own code location, or copy
what it does.
"""

from dagster import Definitions
from dagster_celery_aws import celery_executor, deployment_resources
from dagster_celery_aws.canary import canary_job

from dagster_project.assets import assets_job, order_totals, orders, totals_add_up
from dagster_project.example import example_job

defs = Definitions(
    assets=[orders, order_totals],
    asset_checks=[totals_add_up],
    jobs=[example_job, assets_job, canary_job],  # canary_job: `make verify ARGS=--canary` (optional)
    resources=deployment_resources(),
    executor=celery_executor,
)
