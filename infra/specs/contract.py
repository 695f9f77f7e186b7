"""The environment contract shared by every process of the topology.

The ECS task definitions, the local runner, the runtime files (``worker_image/``, ``runtime/``) and the tests all use
these names, so a variable that ``dagster.yaml`` reads can never be missing from one service (dagster
issue #2163: a Celery worker rebuilds the instance from the InstanceRef and needs the same environment).
"""

from __future__ import annotations

from urllib.parse import quote

# Paths inside the image (worker_image/Dockerfile lays them out).
APP_DIR = "/opt/dagster/app"  # workspace.yaml, dagster_project/
DAGSTER_HOME = "/opt/dagster/dagster_home"  # dagster.yaml
# The only paths processes write (docs/facts.md, "Measured"): Dagster under DAGSTER_HOME (.logs_queue, ...),
# and the system temp dir (compute logs while a step runs, multiprocessing, task-protection state). On ECS the
# root filesystem is read-only and each is a writable volume of the task; worker_image/Dockerfile declares
# both as VOLUMEs, so the image's files and ownership there are copied into them.
WRITABLE_DIRS = {"home": DAGSTER_HOME, "tmp": "/tmp"}

WEBSERVER_PORT = 3000
WEBSERVER_HEALTH_PATH = "/server_info"  # Dagster's: answers once the webserver has loaded its code locations
FLOWER_PORT = 5555
FLOWER_PATH = "/flower"  # served under the UI's load balancer

# Plain environment variables (never secret).
PG_HOST = "DAGSTER_PG_HOST"
PG_PORT = "DAGSTER_PG_PORT"
PG_DB = "DAGSTER_PG_DB"
S3_BUCKET = "DAGSTER_S3_BUCKET"
# The instance settings dagster.yaml cannot read with `env:` (run retries, concurrency), as JSON
# (infra/specs/instance.py), written into dagster.yaml by each container's entry point
# (dagster_celery_aws.instance_settings).
INSTANCE_SETTINGS = "DCA_INSTANCE_SETTINGS"
RUN_TASK_DEFINITION = "DAGSTER_RUN_TASK_DEFINITION"
# botocore reads the default region from AWS_DEFAULT_REGION (not AWS_REGION): EcsRunLauncher, the S3 clients
# and the queue-metrics publisher call the stack's region.
REGION = "AWS_DEFAULT_REGION"
# Every task: the runs mode (stack config runs.mode), which picks the run launcher (dagster_celery_aws.run_launcher):
# "task" (EcsRunLauncher, one Fargate task per run) or "daemon" (DefaultRunLauncher, in the daemon's task).
RUNS_MODE = "DCA_RUNS_MODE"
# Workers only: how long a worker's task stays protected from scale-in after a step starts
# (dagster_celery_aws.protection): the longest expected step, i.e. the broker's consumer timeout. Not in every
# task, so that changing it rolls the workers and nothing else.
PROTECTION_MINUTES = "DCA_PROTECTION_MINUTES"
# Workers only: how many deliveries of a step's message may start the step (broker.maxDeliveries;
# dagster_celery_aws.fast_task). The local runner gives it to its workers too.
MAX_DELIVERIES = "DCA_MAX_DELIVERIES"
# Daemon only (the process that launches runs): the subnets a run task may start in
# (dagster_celery_aws.run_launcher); its RUN_TASK_DEFINITION is the run task definition's ARN, not the family.
RUN_SUBNETS = "DCA_RUN_SUBNETS"
# Daemon only: the code locations the image must load, comma-separated (dagster_celery_aws.image_check).
CODE_LOCATIONS = "DCA_CODE_LOCATIONS"
RUN_CONTAINER = "run"  # container name in the run task definition (EcsRunLauncher's container_name)

# Secret environment variables: on ECS they come only through the container's `secrets`.
PG_USERNAME = "DAGSTER_PG_USERNAME"
PG_PASSWORD = "DAGSTER_PG_PASSWORD"
BROKER_URL = "DAGSTER_CELERY_BROKER_URL"
BACKEND_URL = "DAGSTER_CELERY_BACKEND_URL"  # Celery result backend: backend_url(...), in the same database

SECRET_VARS = (PG_USERNAME, PG_PASSWORD, BROKER_URL, BACKEND_URL)

FLOWER_BASIC_AUTH = "FLOWER_BASIC_AUTH"  # "user:password", Flower's own variable; the flower container only
# Every task: the pipeline alerts on (stack config `alerts`; dagster_celery_aws.alerts), comma-separated; the
# alerts location defines its sensors from it wherever it loads.
ALERTS = "DCA_ALERTS"
# RUN_TASK_DEFINITION only in runs mode "task" (mode "daemon" has no run task definition).
PLAIN_VARS = (PG_HOST, PG_PORT, PG_DB, S3_BUCKET, INSTANCE_SETTINGS, RUN_TASK_DEFINITION, REGION, RUNS_MODE, ALERTS)


# The stack's queues, comma-separated: the daemon's task (the queue-metrics publisher reads their depth, the image
# check and the run workers of runs mode "daemon" compare the jobs' queues with them) and the run task (the run
# worker's executor refuses a step for a queue outside them: dagster_celery_aws.queues).
QUEUES = "DCA_QUEUES"
# Where the run workers scale a cold queue's workers out of zero as a run starts (dagster_celery_aws.prewarm):
# the ECS cluster's name and {queue: worker service name} as JSON.
CLUSTER = "DCA_CLUSTER"
WORKER_SERVICES = "DCA_WORKER_SERVICES"
# The queue-metrics publisher's own settings (a sidecar of the daemon task; dagster_celery_aws.queue_metrics).
METRICS_STACK = "DCA_STACK"  # the Stack dimension of the metrics
BROKER_MANAGEMENT_URL = "DCA_BROKER_MANAGEMENT_URL"  # RabbitMQ management API base URL

# Pipeline alerts (ALERTS above). The daemon's task, which evaluates them: the rest. The local runner writes to
# a file instead of the topic.
ALERT_TOPIC = "DCA_ALERT_TOPIC"
ALERT_FILE = "DCA_ALERT_FILE"
ALERT_LONG_RUN_SECONDS = "DCA_ALERT_LONG_RUN_SECONDS"
UI_URL = "DCA_UI_URL"  # the UI's address, for the links in alerts
WORKSPACE_FILE = "DCA_WORKSPACE"  # the workspace whose locations the load check loads

# Key prefixes inside the bucket.
IO_PREFIX = "io"
COMPUTE_LOGS_PREFIX = "compute-logs"


def backend_url(username: str, password: str, host: str, port: int | str, db: str, sslmode: str | None = None) -> str:
    """Celery's database result backend on Dagster's PostgreSQL (celery_config.yaml: backend), as the stack's
    database secret (components/database.py) and the local runner (local/services.py) both write it.
    psycopg2 is named: SQLAlchemy 2.1 maps plain ``postgresql://`` to psycopg 3, which is not installed."""
    url = f"db+postgresql+psycopg2://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(db, safe='')}"
    return f"{url}?sslmode={sslmode}" if sslmode else url
